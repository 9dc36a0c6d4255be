/*
 * broker/broker.h - the broker core's shared types: messages, sessions, connections and the
 * event-loop workers that own them.
 *
 * Threads and locking (the whole scheme, in one place):
 *   - N workers (`threads`), each an event loop in its own thread. A worker owns the
 *     connections it runs and the sessions it created; nothing else ever touches them.
 *     The listening sockets are shared (EPOLLEXCLUSIVE: one worker wakes per connection).
 *   - A session never changes worker. When a CONNECT names a client id whose session lives
 *     on another worker, the connection (socket and unread bytes, the CONNECT included)
 *     is handed to that worker through its inbox and the CONNECT is handled there. So
 *     takeover, resume and clean start always run on the session's own worker.
 *   - Sessions are known to the rest of the broker only by a session reference (mg_sref):
 *     slot index + generation, see registry.c. The subscription tree and the inboxes hold
 *     references, never session pointers, so a session can be freed while a match or a
 *     delivery naming it is in flight: a stale reference (generation changed) is simply
 *     dropped by its worker.
 *     Slots are never freed before exit; slot.owner and slot.gen are atomics.
 *   - The registry (client id -> mg_sref) and the slot table: one mutex (reg_mu), taken on
 *     CONNECT, session end and shutdown only, never on the message path.
 *   - Subscription tree (broker/subtree.h) and retained store (broker/retain.h): their own
 *     rwlocks. Their callbacks never call back into them.
 *   - Messages (mg_msg) are immutable once built and refcounted with atomics: any thread may
 *     hold a reference.
 *   - Delivering to a session of another worker: the publishing worker appends (mg_sref,
 *     message reference, QoS, ...) to a per-target outbox; at the end of the loop turn each
 *     outbox is moved into the target's inbox under the target's inbox mutex and the target
 *     is woken with its eventfd (only when its inbox was empty). Order per publisher is kept.
 *   - Counters for $SYS are per-worker relaxed atomics summed by worker 0.
 *   - Backpressure: a worker whose connections would overfill another worker's inbox
 *     (MG_INBOX_HIGH) stops reading them until it drained (inbox_n is a relaxed atomic).
 *   - Config: read-only while workers run. SIGHUP stops the world (every worker parks on a
 *     barrier), reloads, and releases them; they then re-check who may stay connected.
 *   - Shutdown: every worker publishes its clients' wills, meets the others on the same
 *     barrier, takes the wills routed to it, flushes, and stops; the main thread then joins
 *     them and frees everything (no locks needed any more).
 *   Lock order: no two of these locks are ever held together (reg_mu, inbox mutexes, the
 *   tree and retained rwlocks are each taken alone; only the log mutex, a leaf, is taken
 *   under them), so there is no order to get wrong.
 */
#ifndef MG_BROKER_BROKER_H
#define MG_BROKER_BROKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"
#include "broker/fset.h"
#include "broker/retain.h"
#include "broker/subtree.h"
#include "net/framer.h"
#include "net/linger.h"
#include "net/listen.h"
#include "net/loop.h"
#include "net/transport.h"
#include "proto/proto.h"

typedef struct mg_worker mg_worker;
typedef struct mg_session mg_session;
typedef struct mg_conn mg_conn;
typedef struct mg_broker mg_broker;
typedef struct mg_subwork mg_subwork; /* a SUBSCRIBE/UNSUBSCRIBE in progress (subscribe.c) */
/* A session reference: names a session from any thread without keeping it alive (see above).
 * Never dereferenced; the subscription tree stores it as its void * subscriber. */
typedef struct mg_sref_opaque *mg_sref;

/* ---- messages (msg.c) ---- */

/* One PUBLISH as the broker keeps it: immutable after mg_msg_new, shared by every queue that
 * holds it. props is the forwardable MQTT 5 property block: the publisher's properties minus
 * topic alias, subscription identifiers and message expiry, which are written per recipient. */
typedef struct mg_msg {
	atomic_uint refs;
	uint8_t qos;      /* as published */
	bool retain;      /* as published */
	bool has_expiry;
	uint16_t topic_len;
	uint32_t payload_len, props_len;
	int64_t expire_at; /* mg_now_ms() deadline when has_expiry */
	uint8_t *payload, *props;
	uint8_t topic[];   /* then props, then payload, in one allocation */
} mg_msg;

/* Copies topic, payload and the forwardable part of props (may be NULL). refs = 1. */
mg_msg *mg_msg_new(const uint8_t *topic, size_t tlen, const uint8_t *payload, size_t plen,
                   const mg_props *props, uint8_t qos, bool retain, int64_t now);
static inline mg_msg *mg_msg_ref(mg_msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}
void mg_msg_unref(mg_msg *m);
bool mg_msg_expired(const mg_msg *m, int64_t now);
uint32_t mg_msg_remaining(const mg_msg *m, int64_t now); /* seconds left, >= 1 */

/* ---- a queued delivery (queue.c) ---- */

typedef struct mg_qitem {
	mg_msg *m;       /* one reference owned by the item */
	uint8_t qos;     /* delivered QoS: min(published, granted) */
	bool retain;     /* retain flag to send */
	uint16_t n_ids;  /* subscription identifiers */
	uint32_t id1;    /* the only one when n_ids == 1 */
	uint32_t *ids;   /* malloc'd when n_ids > 1 */
} mg_qitem;

void mg_qitem_clear(mg_qitem *q); /* drops the reference and the ids */
static inline const uint32_t *mg_qitem_ids(const mg_qitem *q)
{
	return q->n_ids > 1 ? q->ids : &q->id1;
}
/* Fills q's ids from a list (copies). Returns 0 or -ENOMEM. */
int mg_qitem_set_ids(mg_qitem *q, const uint32_t *ids, uint16_t n);

/* A ring of qitems (FIFO). */
typedef struct mg_qring {
	mg_qitem *v;
	size_t head, n, cap;
} mg_qring;

int mg_qring_push(mg_qring *r, const mg_qitem *q); /* takes ownership; 0 or -ENOMEM */
mg_qitem *mg_qring_peek(mg_qring *r);
void mg_qring_pop(mg_qring *r, mg_qitem *out);     /* moves the head into out */
void mg_qring_free(mg_qring *r);                  /* clears every item */

/* Outbound QoS 1/2 in flight, in send order. */
enum { MG_FL_PUBACK = 1, MG_FL_PUBREC, MG_FL_PUBCOMP };
typedef struct mg_flight {
	mg_qitem it;     /* it.m NULL once PUBREC arrived */
	uint16_t mid;
	uint8_t state;
} mg_flight;

typedef struct mg_fring {
	mg_flight *v;
	size_t head, n, cap;
} mg_fring;

mg_flight *mg_fring_at(mg_fring *r, size_t i);
mg_flight *mg_fring_find(mg_fring *r, uint16_t mid, size_t *idx);
int mg_fring_push(mg_fring *r, const mg_flight *f);
void mg_fring_remove(mg_fring *r, size_t i); /* clears the item; keeps order */
void mg_fring_free(mg_fring *r);

/* Inbound QoS 2 waiting for PUBREL. */
typedef struct mg_inq2 {
	uint16_t mid;
	mg_msg *m;
} mg_inq2;

/* ---- sessions (session.c) ---- */

struct mg_session {
	/* Ordered by size, no padding: every idle client holds one. */
	char *id;             /* NUL-terminated, stored right after the struct (one allocation) */
	size_t id_len;
	mg_sref ref;
	mg_conn *conn;        /* NULL while offline */
	int64_t expire_at;    /* ms, while offline and expiry < UINT32_MAX; 0 otherwise */
	mg_qring queue;
	size_t qbytes;
	mg_qring retained;    /* owed after a SUBSCRIBE: sent before queue, no queue limits */
	mg_fring flight;
	size_t flight_bytes;
	mg_inq2 *inq2;
	size_t n_inq2, cap_inq2;
	mg_fset subs;         /* the filters it holds in the tree, for removal */
	mg_msg *will;         /* will message, NULL if none */
	int64_t will_at;      /* ms: a delayed will is due */
	mg_session *next, *prev; /* the worker's list */
	int owner;            /* worker index, fixed */
	uint32_t expiry;      /* seconds after disconnect; UINT32_MAX never */
	uint32_t will_delay;
	uint32_t will_expiry; /* message expiry of the will, from when it is published; 0 none */
	uint16_t next_mid;
	uint8_t level;
	uint8_t will_qos;
	bool will_retain;
	bool dropping;        /* in a drop episode (logged once) */
};

/* Registry. Look up id (under reg_mu); if found sets *owner. Returns the session pointer only
 * when it is owned by `me` (else NULL with *owner set, or NULL with *owner -1 if absent). */
mg_session *mg_session_find(mg_broker *b, const char *id, size_t len, int me, int *owner);
/* Create and register a session for id on worker w. Returns NULL if another worker
 * registered the id meanwhile (*owner set) or on ENOMEM (*owner -1). */
mg_session *mg_session_create(mg_worker *w, const char *id, size_t len, int *owner);
/* Remove subscriptions, registry entry and slot; free. The session must be offline. */
void mg_session_destroy(mg_worker *w, mg_session *s);
/* The session that a reference names, if it is still alive and owned by w. */
mg_session *mg_session_resolve(mg_worker *w, mg_sref ref);
int mg_sref_owner(mg_broker *b, mg_sref ref); /* -1 if stale */
bool mg_sref_online(mg_broker *b, mg_sref ref);
void mg_session_set_online(mg_broker *b, mg_session *s, bool on);
void mg_registry_init(mg_broker *b);
void mg_registry_free(mg_broker *b);

/* Queue a delivery (takes ownership of q). Applies limits and counts drops. */
void mg_session_deliver(mg_worker *w, mg_session *s, mg_qitem *q);
/* Owe a retained message to a new subscription (takes ownership of q): it waits for the
 * socket and the inflight window like a queued one, and is not cut by max_queued_messages
 * [MQTT-3.3.1-6]: up to the retained store's size plus max_queued_messages are owed at once
 * (one reference each), more are dropped and counted. */
void mg_session_owe_retained(mg_worker *w, mg_session *s, mg_qitem *q);
/* Move owed retained, then queued messages into the connection's output as window and
 * buffer allow. */
void mg_session_pump(mg_worker *w, mg_session *s);
static inline bool mg_session_pending(const mg_session *s)
{
	return s->queue.n || s->retained.n;
}
/* Resend inflight (DUP) after a reconnect. */
void mg_session_resend(mg_worker *w, mg_session *s);
void mg_session_clear_will(mg_session *s);
void mg_session_clear_msgs(mg_session *s); /* queue, inflight, inbound QoS 2 */

/* ---- connections (conn.c) ---- */

enum { MG_CS_NEW = 0, MG_CS_ACTIVE, MG_CS_DEAD };

enum mg_close {
	MG_CLOSE_DISCONNECT,  /* clean DISCONNECT */
	MG_CLOSE_EOF,         /* peer closed */
	MG_CLOSE_SOCKET,      /* read/write error */
	MG_CLOSE_TIMEOUT,     /* keepalive */
	MG_CLOSE_PROTOCOL,    /* protocol error */
	MG_CLOSE_MALFORMED,   /* malformed packet */
	MG_CLOSE_TOO_LARGE,   /* over max_packet_size */
	MG_CLOSE_TAKEOVER,    /* another connection took the session */
	MG_CLOSE_SHUTDOWN,
	MG_CLOSE_NO_CONNECT,  /* no CONNECT in time */
	MG_CLOSE_REFUSED,     /* CONNACK refused it */
	MG_CLOSE_NOT_AUTH,
};

typedef struct mg_seg {
	uint32_t off, len; /* bytes in ob */
	mg_msg *m;         /* then this message's payload (a reference), or NULL */
} mg_seg;

struct mg_conn {
	/* Laid out for size: 10,000s of idle connections each hold one (see bench/README.md,
	 * "Memory per connection"). Buffers are allocated only while bytes are pending. */
	mg_transport tr;
	mg_worker *w;
	mg_session *s;
	const char *id;      /* the client id for logs: s->id, or NULL */
	const char *mp;      /* the listener's mount_point (borrowed from the config), or NULL */
	int64_t last_rx, created;
	/* input */
	mg_framer in;        /* lent the worker's buffer during a read; own memory only for a
	                      * partial packet (net/framer.h) */
	/* output: bytes in ob, described by segs (each optionally followed by a payload);
	 * both are freed whenever everything was written */
	uint8_t *ob;
	mg_seg *seg;
	uint32_t olen, ocap;
	uint32_t seg_head, nseg, segcap;
	uint32_t seg_done;   /* bytes of seg[seg_head] (header + payload) already written */
	size_t out_bytes;    /* bytes queued, not yet written */
	mg_conn *dirty_next;
	mg_conn *next, *prev; /* the worker's list */
	mg_subwork *sw;      /* a SUBSCRIBE/UNSUBSCRIBE handled in chunks: no reading meanwhile */
	/* MQTT 5 per connection */
	char **alias;        /* alias_max + 1 entries, malloc'd topics (NUL-terminated) */
	uint16_t *alias_len;
	struct mg_alias_out *aout; /* aliases we send (alias_out.c); NULL unless the client allows */
	uint32_t max_out;    /* client's maximum packet size, 0 = none */
	uint16_t recv_max;   /* client's receive maximum */
	uint16_t alias_max;  /* topic alias maximum we announced */
	uint16_t lidx;       /* cfg->listeners index */
	int8_t watch_mask;   /* MG_EV_* as last given to the loop, -1 unknown */
	uint8_t hops;        /* hand-offs so far (bounded) */
	uint16_t port;       /* the listener's */
	uint16_t mp_len;
	uint16_t keepalive;
	uint8_t state;
	uint8_t level;       /* 0 before CONNECT */
	uint8_t host_len;    /* peer[0..host_len) is "ADDR", for logs */
	bool dirty;
	/* rarely touched: bits, so that the struct stays in a smaller malloc size class */
	bool problem_info : 1;
	bool will_on_close : 1; /* DISCONNECT 0x04 or an unclean end */
	bool handed_off : 1;
	bool anonymous : 1;  /* connected without a user name */
	bool linger : 1;     /* its last packet says why it ends: lingering close (net/linger.h) */
	bool read_paused;
	bool throttled;      /* reading waits: another worker's inbox is too long */
	char peer[52];       /* "ADDR:PORT": 45 characters of IPv6 + ":65535" + NUL at most */
};

mg_conn *mg_conn_new(mg_worker *w, int fd, const char *peer, uint16_t port);
void mg_conn_attach(mg_worker *w, mg_conn *c);   /* watch on w's loop, put on w's list */
void mg_conn_close(mg_conn *c, enum mg_close why);
void mg_conn_free(mg_conn *c);
void mg_conn_uncount(mg_conn *c); /* max_connections bookkeeping when a socket goes */
/* Give a NEW connection (with its unread bytes) to worker `to`, which re-handles its CONNECT. */
void mg_conn_handoff(mg_conn *c, int to);
int mg_conn_process(mg_conn *c);                /* handle every whole packet in c->in; 1: handed off */
void mg_conn_flush(mg_conn *c);
void mg_conn_mark_dirty(mg_conn *c);
/* Reserve n bytes of output; returns a pointer to write into; commit with mg_conn_commit. */
uint8_t *mg_conn_reserve(mg_conn *c, size_t n);
void mg_conn_commit(mg_conn *c, size_t n, mg_msg *payload_ref);
/* Encode pkt (the connection's level) into the output. Returns 0 or -ENOMEM / -E2BIG
 * (larger than the client's maximum packet size: not sent). */
int mg_conn_send(mg_conn *c, const mg_packet *pkt);
bool mg_conn_out_full(const mg_conn *c);
/* 5.0: DISCONNECT with reason, then close. Earlier levels: close. */
void mg_conn_disconnect(mg_conn *c, uint8_t reason, enum mg_close why);
const char *mg_conn_name(const mg_conn *c); /* client id or "<unknown>" */
void mg_conn_pool_free(mg_worker *w);       /* the worker's spare output buffers, at exit */

#define MG_READ_CHUNK 65536
#define MG_OUT_LIMIT (512 * 1024)   /* pending output above which queued messages wait */
#define MG_CONNECT_TIMEOUT_MS 10000
/* Lingering close after a DISCONNECT with a reason or a refusing CONNACK: drain for at most
 * this long or this many bytes, at most MG_LINGER_MAX sockets per worker (beyond: closed at
 * once). Long enough for a client to read the reason, short enough to cost nothing. */
#define MG_LINGER_MS 2000
#define MG_LINGER_BYTES (1024 * 1024)
#define MG_LINGER_MAX 64

/* ---- outbound topic aliases (alias_out.c) ---- */

/* The broker -> client alias table of one connection, created only when the client's CONNECT
 * allows aliases (Topic Alias Maximum > 0). At most MG_ALIAS_OUT_MAX aliases are used. */
typedef struct mg_alias_out mg_alias_out;
#define MG_ALIAS_OUT_MAX 64
mg_alias_out *mg_alias_out_new(uint16_t client_max); /* NULL when client_max == 0 or ENOMEM */
void mg_alias_out_free(mg_alias_out *a);             /* NULL is fine */
/* The alias for a topic (as the client sees it). 1: already bound, send an empty topic and
 * *alias; 0: not yet bound, send the topic and *alias, then mg_alias_out_bind once the
 * PUBLISH is committed; -1: send the topic without an alias (a NULL, or the table is full). */
int mg_alias_out_get(mg_alias_out *a, mg_bytes topic, uint16_t *alias);
void mg_alias_out_bind(mg_alias_out *a, mg_bytes topic, uint16_t alias);

/* ---- packet handling (handle.c, connect.c) ---- */

/* May a client connect, by these settings? Nothing can verify a user name yet
 * (password_file is refused at startup), so with allow_anonymous false nobody may, user
 * name or not: mosquitto 2 refuses them all when it has no password file. CONNECT and the
 * re-check after a reload both ask here, so the two never disagree. */
static inline bool mg_may_connect(const mg_config *cfg, bool has_username)
{
	(void)has_username; /* what a password_file would check */
	return cfg->allow_anonymous;
}

int mg_handle_packet(mg_conn *c, const mg_packet *p);   /* 0 or closes c and returns -1 */
int mg_handle_connect(mg_conn *c, const mg_packet *p);  /* 0, -1 closed, 1 handed off */
int mg_handle_subscribe(mg_conn *c, const mg_packet *p);
int mg_handle_unsubscribe(mg_conn *c, const mg_packet *p);
void mg_subwork_drop(mg_conn *c); /* a closing connection's packet in progress, if any */
/* Log a protocol error with the client id, send DISCONNECT rc (5.0), close. Returns -1. */
int mg_proto_err(mg_conn *c, uint8_t rc, const char *why);
/* mount_point: prefix t with the connection's listener mount point into stack (cap bytes) or,
 * when longer, a malloc'd buffer returned in *heap (the caller frees it). Shared filters
 * keep "$share/group/" in front. Returns t itself without a mount point; .p NULL on ENOMEM. */
mg_bytes mg_mount(const mg_conn *c, mg_bytes t, bool filter, uint8_t *stack, size_t cap, uint8_t **heap);
/* Route a message to every matching subscriber (publisher may be NULL for wills/$SYS).
 * Returns how many subscriptions matched, counting those that were skipped (No Local, a
 * shared group with nobody eligible): 0 is "No matching subscribers" (0x10). */
int mg_route(mg_worker *w, mg_msg *m, mg_sref publisher);
/* Publish a message as the broker would on receipt: retain store + routing. */
int mg_publish_msg(mg_worker *w, mg_msg *m, mg_sref publisher);
/* May a client publish (a PUBLISH or a will) to topic t (after its mount point)? Not to
 * $SYS/..., except a bridge's $SYS/broker/connection/NAME/state, nor to "$share/...".
 * The broker's own messages ($SYS, route.c callers) are not asked. */
bool mg_client_may_publish(const uint8_t *t, size_t len);
mg_retain *mg_broker_retain_new(void); /* values are mg_msg, refcounted */
/* The end of a session's connection: wills, session expiry. */
void mg_session_detach(mg_worker *w, mg_session *s, bool send_will);
void mg_will_publish(mg_worker *w, mg_session *s);

/* ---- workers (worker.c) ---- */

enum { MG_POST_DELIVER = 1, MG_POST_ADOPT, MG_POST_PAUSE, MG_POST_SHUTDOWN };

typedef struct mg_post {
	int kind;
	mg_sref ref;
	mg_qitem it;
	mg_conn *conn;
} mg_post;

typedef struct mg_postv {
	mg_post *v;
	size_t n, cap;
} mg_postv;

typedef struct mg_stats {
	atomic_uint_fast64_t msgs_recv, msgs_sent, pub_recv, pub_sent, pub_dropped,
		bytes_recv, bytes_sent, conns_total, connects, pub_bytes_recv, pub_bytes_sent, expired;
} mg_stats;

/* An output buffer pair (mg_conn ob + seg) of a connection that wrote everything, kept for
 * the next connection of the same worker that has something to send (conn.c). */
typedef struct mg_outbuf {
	uint8_t *ob;
	mg_seg *seg;
	uint32_t ocap, segcap;
} mg_outbuf;

#define MG_OUTPOOL 256

struct mg_worker {
	int idx;
	mg_broker *b;
	pthread_t th;
	mg_loop *loop;
	pthread_mutex_t inbox_mu;
	mg_postv inbox;
	mg_postv spare;     /* the inbox's other half, swapped in on wake (keeps its capacity) */
	atomic_size_t inbox_n; /* inbox.n, readable without the lock (backpressure) */
	int n_throttled;    /* connections whose reading waits for other workers to catch up */
	int stopping;       /* shutdown: 1 wills published, 2 final drain done */
	long throttle_timer;
	mg_postv *outbox;   /* one per worker */
	mg_conn *conns;
	mg_session *sessions;
	mg_conn *dirty;
	mg_conn *dead;
	mg_matchset ms;
	mg_linger *linger;  /* sockets closing after a reason was sent */
	uint8_t *rbuf;      /* MG_READ_CHUNK bytes every read lands in first */
	mg_stats st;
	int n_conns;        /* connections it owns */
	long tick_timer;
	mg_conn **busy;     /* connections with a SUBSCRIBE/UNSUBSCRIBE in progress */
	int n_busy, cap_busy;
	long busy_timer;    /* the next chunk of theirs, or 0 */
	int reserve_fd;     /* /dev/null, given up to accept-and-close at the open-file limit; -1 */
	long accept_timer;  /* while it stopped watching the listeners (no reserve left), else 0 */
	int n_outpool;
	mg_outbuf outpool[MG_OUTPOOL];
};

void mg_worker_post(mg_worker *from, int to, mg_post *p); /* takes ownership of p's refs */
void mg_worker_flush_outboxes(mg_worker *w);
/* Backpressure between workers: when another worker's inbox holds more than MG_INBOX_HIGH
 * deliveries, connections of this worker stop reading (mg_worker_throttle) until it drains,
 * so a fast publisher cannot grow a busy worker's inbox without bound. */
#define MG_INBOX_HIGH 8192
bool mg_worker_backlogged(const mg_worker *w);
void mg_worker_throttle(mg_worker *w, mg_conn *c);
void mg_conn_set_watch(mg_conn *c);
int mg_worker_init(mg_broker *b, mg_worker *w, int idx);
int mg_worker_start(mg_worker *w);
void mg_worker_free(mg_worker *w); /* after its thread stopped */

/* ---- the broker (server.c) ---- */

typedef struct mg_slot {
	atomic_uint gen;
	atomic_int owner;
	uint32_t next_free;
	atomic_bool online;
	mg_session *s;      /* owner only */
} mg_slot;              /* 24 bytes: one per session ever live at once */

#define MG_SLOT_CHUNK 4096
#define MG_SLOT_CHUNKS 4096  /* up to 16M sessions */

typedef struct mg_regent {
	uint32_t len;        /* client ids are at most 65535 bytes */
	int owner;
	mg_sref ref;
	struct mg_regent *next;
	char id[];           /* len bytes + NUL, in the entry's own allocation */
} mg_regent;

struct mg_broker {
	mg_config *cfg;
	mg_subtree *tree;
	mg_retain *retain;
	int nworkers, nstarted;
	mg_worker *w;
	mg_listen_sock *ls;
	int nls;
	int *ls_lidx;             /* ls[i] belongs to cfg->listeners[ls_lidx[i]] */
	atomic_int *lcount;       /* connections per configured listener */
	pthread_mutex_t reg_mu;
	mg_regent **reg;
	size_t reg_cap, reg_n;
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

/* Helpers. */
void mg_log_publish(const char *dir, const char *who, const mg_publish *p, uint32_t plen);
bool mg_eligible(void *subscriber, void *ctx);

#endif
