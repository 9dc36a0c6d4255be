/*
 * broker/cluster_ack.h - acknowledgements to a publisher held until JetStream stored the
 * message (docs/cluster.md "QoS 1 and 2 across nodes").
 *
 * With clustering on, a QoS 1 PUBLISH (a QoS 2 one at its PUBREL) goes to JetStream
 * asynchronously (broker/cluster_js.c); its PUBACK (PUBCOMP) leaves only when JetStream's
 * PubAck came back, which a libnats thread posts to the publishing worker
 * (MG_POST_CLUSTER_ACK). MQTT wants PUBACKs and PUBRECs in the order of their PUBLISHes
 * [MQTT-4.6.0-2, -3]: once a connection holds one acknowledgement, every later one queues
 * behind it (mg_ack_send), and they leave from the head as their answers come.
 *
 * All of it runs on the connection's worker. Nothing is allocated while clustering is off
 * (c->ackq stays NULL, w->ackwait stays NULL).
 */
#ifndef MG_BROKER_CLUSTER_ACK_H
#define MG_BROKER_CLUSTER_ACK_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/conn.h"

struct mg_ackq { /* one connection's acknowledgements, in PUBLISH order */
	struct mg_ackent *v;
	uint32_t head, n, cap;
};

/* The ack of type (MG_PUBACK, MG_PUBREC, MG_PUBCOMP) for mid waits for the answer to the
 * JetStream publish seq of c's worker. */
void mg_ack_defer(mg_conn *c, uint64_t seq, uint8_t type, uint16_t mid, uint8_t rc);
/* true: c holds acknowledgements, so this one was queued behind them (sent in order later). */
static inline bool mg_ack_queued(mg_conn *c, uint8_t type, uint16_t mid, uint8_t rc)
{
	bool mg_ack_queue_(mg_conn *c, uint8_t type, uint16_t mid, uint8_t rc);
	return c->ackq && c->ackq->n > c->ackq->head && mg_ack_queue_(c, type, mid, rc);
}
/* JetStream answered publish seq (| MG_CLUSTER_ACK_FAILED when it refused or never answered):
 * the waiting acknowledgements that are now at their connection's head go out. */
void mg_ack_done(mg_worker *w, uint64_t seq);
void mg_ack_conn_free(mg_conn *c); /* from mg_conn_free: its waits are forgotten */
void mg_ack_worker_free(mg_worker *w); /* after its connections were freed */

#endif
