/*
 * broker/cluster_session.h - sessions across cluster nodes (cluster_session.c,
 * docs/cluster.md "Sessions"): the client-id registry in the JetStream key-value bucket
 * MQTT_SESSIONS, takeover of a session another node owns, recovery of a dead node's
 * persistent sessions, and the node heartbeat. Private to the NATS side (cluster.c); linked
 * into the midge binary only.
 */
#ifndef MG_BROKER_CLUSTER_SESSION_H
#define MG_BROKER_CLUSTER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "broker/broker.h"
#include "broker/queue.h"

typedef struct mg_csess mg_csess;
typedef struct mg_conn mg_conn;
typedef struct mg_session mg_session;
typedef struct mg_worker mg_worker;

/* Bind (or create) the bucket, start the registry's thread and the heartbeat. NULL when
 * JetStream is not there (said in the log): client ids are then per node, as before. */
mg_csess *mg_csess_start(mg_broker *b, natsConnection *nc, const char *name, uint64_t node_id);
/* Main thread, workers stopped, NATS still connected: stops both threads; every parked
 * CONNECT is handed back to its worker (dropped there). NULL is fine. */
void mg_csess_stop(mg_csess *cs);
/* After libnats's threads ended (no callback can run). NULL is fine. */
void mg_csess_free(mg_csess *cs);
/* The presence subscription's thread (cluster.c): a presence message from node name (alive false: bye). true:
 * a node this one did not know. */
bool mg_csess_seen(mg_csess *cs, const char *name, int n, bool alive);
/* Any thread: node name is in the table of peers (heard from, no bye, not silent for
 * DEAD_MS). Takes the table's lock alone (cluster.c may hold its totals' lock around it). */
bool mg_csess_alive(mg_csess *cs, const char *name);
/* cluster.h's claim and session hooks. */
int mg_csess_claim(mg_csess *cs, mg_conn *c, const char *id, size_t len, bool clean);
void mg_csess_changed(mg_csess *cs, mg_worker *w, mg_session *s, bool gone);
void mg_csess_queued(mg_csess *cs, mg_worker *w, mg_session *s, const mg_qitem *q);

#endif
