/*
 * broker/cluster.h - several midge nodes as one broker over NATS (docs/cluster.md).
 *
 * The broker core calls the cluster through this narrow door only; the NATS side
 * (broker/cluster.c, libnats) is linked into the midge binary alone, so libmgbroker.a, the
 * unit tests and the fuzzers stay free of libnats. main.c hands mg_broker_start the table
 * (b->cluster_ops); without `cluster_nats_url` nothing is started and b->cluster stays NULL:
 * the hooks below are then one load and one branch.
 *
 * Threads: interest() runs on any worker (SUBSCRIBE, UNSUBSCRIBE, session end) and takes
 * the cluster's own mutex, alone (worker.h's lock rules: it is a leaf, never held with
 * another broker lock). send() runs on a worker and touches that worker's slot only.
 * start() and stop() run on the main thread, before the workers start and after they
 * stopped.
 */
#ifndef MG_BROKER_CLUSTER_H
#define MG_BROKER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "broker/broker.h"
#include "broker/msg.h"
#include "broker/queue.h"

typedef struct mg_conn mg_conn;
typedef struct mg_session mg_session;

typedef struct mg_cluster mg_cluster;

/* What $SYS/broker/cluster/... shows (sys.c), a moment stale. */
typedef struct mg_cluster_stats {
	const char *name;   /* this node's, owned by the cluster */
	bool connected;     /* to a NATS server right now */
	size_t filters;     /* distinct filters subscribed on NATS */
	uint64_t sent, received, duplicates, dropped, invalid, retained_put, retained_applied;
} mg_cluster_stats;

/* A node's own numbers, shared with the others every sys_interval for the cluster totals
 * ($SYS/broker/cluster/total/..., docs/cluster.md "Operations and numbers"). */
typedef struct mg_cluster_load {
	int interval;       /* the node's sys_interval, seconds */
	uint64_t connected, sessions, msgs_recv, msgs_sent, pub_recv, pub_sent, subs, retained;
} mg_cluster_load;

/* Totals over the live nodes: this one and every other whose numbers arrived and that has
 * not left (bye, or no heartbeat). */
typedef struct mg_cluster_totals {
	int nodes;
	char names[2048];   /* sorted, comma separated (cut short past 2047 bytes) */
	mg_cluster_load sum; /* retained: the largest node's when the retained bucket is shared */
} mg_cluster_totals;

typedef struct mg_cluster_ops {
	/* Connect to NATS and subscribe to every filter already in b->tree (restored sessions).
	 * 0, or -1 with the reason logged. */
	int (*start)(mg_broker *b, mg_cluster **out);
	void (*stop)(mg_cluster *c); /* no callback runs after it returns */
	/* One local subscription to filter (as in the tree; "$share/g/f" is the shared group's
	 * own) came (+1) or went (-1). */
	void (*interest)(mg_cluster *c, const uint8_t *filter, size_t len, int delta);
	/* Send m to the other nodes; true if it went to NATS. A QoS 1/2 message that went to
	 * JetStream sets w->cluster_seq: its answer comes back as MG_POST_CLUSTER_ACK. Sets
	 * w->cluster_shared when the shared groups get m through NATS (this node's members
	 * too); otherwise the caller serves this node's shared groups itself. */
	bool (*send)(mg_cluster *c, mg_worker *w, const mg_msg *m);
	/* w routed a message from NATS whose post carried ext: it may be acknowledged to
	 * JetStream once what the routing made is committed (turn_end). */
	void (*routed)(mg_cluster *c, mg_worker *w, void *ext);
	/* w's loop turn committed its store batch and handed its deliveries on */
	void (*turn_end)(mg_cluster *c, mg_worker *w);
	/* m is a retained PUBLISH this node took (an empty payload clears): into the cluster's
	 * retained bucket, when there is one. */
	void (*retain)(mg_cluster *c, mg_worker *w, const mg_msg *m);
	void (*stats)(mg_cluster *c, mg_cluster_stats *out); /* any thread */
	/* Any thread: the totals over the live nodes with mine for this node; share: publish
	 * mine to the others too (sys.c, every sys_interval). */
	void (*totals)(mg_cluster *c, const mg_cluster_load *mine, bool share, mg_cluster_totals *out);
	/* Sessions (broker/cluster_session.c, docs/cluster.md "Sessions"). A CONNECT for client
	 * id on conn's worker: 1 when conn is parked while the cluster's client-id registry is
	 * asked (the CONNECT is handled again when it answered, with conn->cluster_ok set), 0
	 * to go on at once (no registry). */
	int (*claim)(mg_cluster *c, mg_conn *conn, const char *id, size_t len, bool clean);
	/* On s's worker: s was attached, its subscriptions changed (gone false), or it ends
	 * (gone true). */
	void (*session)(mg_cluster *c, mg_worker *w, mg_session *s, bool gone);
	/* On s's worker: q (QoS 1/2) was queued for s, persistent and offline: kept in
	 * JetStream too, so that another node recovers it if this one dies. */
	void (*queued)(mg_cluster *c, mg_worker *w, mg_session *s, const mg_qitem *q);
} mg_cluster_ops;

/* One shared group "$share/g/f" that this node subscribed on NATS (a queue subscription):
 * a message that arrives there goes to one member of it (worker.h MG_POST_REMOTE .ref).
 * Refcounted: the cluster's table and every message posted for it hold one. */
typedef struct mg_cgroup {
	atomic_int refs;
	void *cl;    /* the cluster's */
	uint32_t len;
	uint8_t f[]; /* "$share/g/f" */
} mg_cgroup;

static inline void mg_cgroup_unref(mg_cgroup *g)
{
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
		free(g);
}

/* In broker/cluster.c; linked into midge only (a weak reference in main.c). */
extern const mg_cluster_ops mg_cluster_nats_ops;

static inline void mg_cluster_interest(mg_broker *b, const uint8_t *f, size_t len, int delta)
{
	if (b->cluster)
		b->cluster_ops->interest(b->cluster, f, len, delta);
}

static inline void mg_cluster_session(mg_broker *b, mg_worker *w, mg_session *s, bool gone)
{
	if (b->cluster)
		b->cluster_ops->session(b->cluster, w, s, gone);
}

static inline void mg_cluster_queued(mg_broker *b, mg_worker *w, mg_session *s, const mg_qitem *q)
{
	if (b->cluster)
		b->cluster_ops->queued(b->cluster, w, s, q);
}

#endif
