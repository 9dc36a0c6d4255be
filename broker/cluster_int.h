/*
 * broker/cluster_int.h - what the NATS side of clustering shares between its files:
 * broker/cluster.c (connection, core NATS messages, interest, retained bucket) and
 * broker/cluster_js.c (QoS 1/2 through JetStream). Linked into the midge binary only.
 */
#ifndef MG_BROKER_CLUSTER_INT_H
#define MG_BROKER_CLUSTER_INT_H

#include "broker/cluster.h"
#include "broker/cluster_subject.h"
#include "broker/worker.h"

#include <nats/nats.h>

typedef struct dec { /* a decoding thread's scratch (the delivery thread, the KV watcher) */
	uint8_t topic[MG_CSUBJ_MAX];
	uint8_t *vbuf;
	size_t vcap;
} dec;

/* The envelope's fields (docs/cluster.md "What travels in a NATS message"), pointing into
 * the NATS message. */
typedef struct env {
	uint8_t flags;
	uint64_t node, seq;
	uint32_t worker;
	int64_t left;
	const uint8_t *props, *payload;
	size_t plen, paylen;
} env;

bool mg_cl_parse_env(const uint8_t *d, size_t dl, env *e);
/* The message a client's PUBLISH on topic with these contents would have made; NULL if the
 * properties do not decode as a 5.0 PUBLISH's (*bad) or out of memory (*bad false). */
mg_msg *mg_cl_build_msg(dec *x, const uint8_t *topic, size_t tl, const env *e, int64_t age, bool *bad);
void mg_cl_warn_bad(mg_cluster *c, const char *where);
/* From a libnats thread: p into worker to's inbox, waiting while that worker is behind.
 * false when the cluster is closing or out of memory (p's references are the caller's). */
bool mg_cl_post(mg_cluster *c, int to, const mg_post *p);
uint64_t mg_cl_node_id(const mg_cluster *c);
/* The replicas of a bucket or stream this node creates: 3 when it knows 3 NATS servers or
 * more (the ones it was given and those the server told it of), else 1. */
int mg_cl_replicas(natsConnection *nc);
/* A control subscription (takeover requests, presence): read by a thread of its own, not by
 * libnats's one delivery thread, which waits in mg_cl_post while a worker is behind and would
 * hold these behind the message traffic (a takeover request then timed out on the asking
 * node). cb runs on that thread, one message at a time, and destroys the message. NULL when
 * the subscription or the thread cannot be made (said in the log). */
typedef struct mg_clsub mg_clsub;
mg_clsub *mg_cl_sub(natsConnection *nc, const char *subj, natsMsgHandler cb, void *closure);
/* Unsubscribes, waits for the thread (a message in cb is finished; those not read yet are
 * dropped) and frees. NULL is fine. */
void mg_cl_sub_stop(mg_clsub *s);
const char *mg_cl_name(const mg_cluster *c);

/* ---- cluster_js.c: QoS 1/2 through JetStream (docs/cluster.md) ---- */
typedef struct mg_cljs mg_cljs;
/* Bind (or create) the stream and this node's durable consumer; NULL when JetStream is not
 * there (QoS 1/2 then go over core NATS, as in phase 1, and it is said). */
mg_cljs *mg_cljs_start(mg_cluster *c, natsConnection *nc, mg_broker *b);
/* The encoded envelope buf[len] for subject subj, published to JetStream with its message
 * id; the answer comes back to worker w as MG_POST_CLUSTER_ACK(seq). false: not sent. */
bool mg_cljs_publish(mg_cljs *q, mg_worker *w, const char *subj, const uint8_t *buf, int len, uint64_t seq);
void mg_cljs_routed(mg_cljs *q, mg_worker *w, void *ext);
void mg_cljs_turn_end(mg_cljs *q, mg_worker *w);
/* Closing, with the workers stopped: what they did not acknowledge is acknowledged (they
 * routed it), what is still in their inboxes is left to JetStream to redeliver. */
void mg_cljs_stop(mg_cljs *q);
/* Closing: no more JetStream messages for the delivery thread (the durable stays); what it
 * has queued is handled before the barrier that follows (cluster.c drain_delivery). */
void mg_cljs_unsubscribe(mg_cljs *q);
void mg_cljs_close(mg_cljs *q); /* after natsConnection_Close */
void mg_cljs_free(mg_cljs *q); /* when no libnats thread runs any more */
void mg_cljs_stats(mg_cljs *q, uint64_t *sent, uint64_t *received, uint64_t *failed);

#endif
