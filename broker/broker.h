/*
 * broker/broker.h - the broker as a whole (server.c): the listeners, the workers, the shared
 * subscription tree, retained store and session registry, signals and shutdown. main.c and
 * the broker fuzzer drive it; a worker reaches it through its own w->b, never a global.
 *
 * Which header owns what (the calls run one way, top to bottom; see docs/CONVENTIONS.md):
 *   conn.h      a client socket: read, frame, dispatch (packet.h), buffer output, close
 *   packet.h    the packet handlers: CONNECT, SUBSCRIBE/UNSUBSCRIBE, the rest
 *   session.h   a session's whole life, its queues (queue.h) and its will
 *   route.h     retained store + subscription match -> deliveries
 *   worker.h    the event-loop threads, their inboxes, and the threading rules
 *   registry.h  client id -> session; session references (mg_sref) other threads may hold
 *   msg.h, queue.h, alias_out.h, fset.h, subtree.h, retain.h: the data structures under them
 */
#ifndef MG_BROKER_BROKER_H
#define MG_BROKER_BROKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "broker/acl.h"
#include "broker/bytetab.h"
#include "broker/config.h"
#include "broker/registry.h"
#include "broker/retain.h"
#include "broker/subtree.h"
#include "broker/worker.h"
#include "net/listen.h"

struct mg_broker {
	mg_config *cfg;
	mg_acl *acl;              /* acl_file compiled, NULL without one; replaced only while
	                           * every worker is parked (reload) */
	mg_acl **lacl;            /* per_listener_settings: each listener's acl_file compiled
	                           * (NULL entries: none), cfg->n_listeners of them; else NULL */
	struct mg_auth *auth;     /* password tables and the auth threads (auth.h) */
	mg_subtree *tree;
	mg_retain *retain;
	struct mg_store *store;   /* persistence (store.h); NULL when off */
	/* several nodes as one broker over NATS (cluster.h); cluster NULL when off */
	const struct mg_cluster_ops *cluster_ops;
	struct mg_cluster *cluster;
	int nworkers, nstarted;
	mg_worker *w;
	mg_listen_sock *ls;
	int nls;
	int *ls_lidx;             /* ls[i] belongs to cfg->listeners[ls_lidx[i]] */
	atomic_int *lcount;       /* connections per configured listener */
	/* per configured listener: its TLS context (broker/tls.h), NULL for plain TCP. Replaced
	 * only on SIGHUP while every worker is parked; a connection holds its own reference. */
	struct ssl_ctx_st **tls;
	pthread_mutex_t reg_mu;
	mg_btab reg;              /* client id -> mg_regent (registry.c), under reg_mu */
	mg_slot *_Atomic slots[MG_SLOT_CHUNKS];
	uint32_t n_slots, free_slot; /* under reg_mu; free_slot: index+1, 0 none */
	atomic_uint n_slots_seen;    /* n_slots, readable without the lock */
	atomic_int n_conns;       /* connected sockets, for max_connections */
	atomic_bool fd_short;     /* accept hit the open-file limit; logged once until it passes */
	atomic_llong fd_short_ms; /* when it last did (mg_now_ms) */
	atomic_uint fd_refused;   /* connections closed at once meanwhile */
	atomic_int n_clients;     /* active (CONNECTed) clients */
	atomic_int n_sessions;
	atomic_int max_clients;
	int64_t start_ms;
	time_t start_time;
	pthread_barrier_t pause;
	atomic_bool paused_req;
	struct mg_bridge *bridges;  /* one per `connection` block (bridge.h), each on one worker */
	int n_bridges;
};

/* Start listeners and workers; run until stopped; stop; free. main.c drives it. */
int mg_broker_start(mg_broker *b, mg_config *cfg);
/* What mg_broker_start does before it starts the worker threads: listeners, shared state,
 * workers with their loops. A caller that drives the loops itself (mg_loop_run_once, the
 * broker fuzzer) stops with mg_broker_stop. */
int mg_broker_init(mg_broker *b, mg_config *cfg);
void mg_broker_run_signals(mg_broker *b);
void mg_broker_stop(mg_broker *b);

/* $SYS (sys.c) */
void mg_sys_init(mg_worker *w);
void mg_sys_tick(mg_worker *w);

#endif
