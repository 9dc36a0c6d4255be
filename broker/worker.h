/*
 * broker/worker.h - an event-loop thread and everything it owns (worker.c).
 *
 * Threads and locking of the whole broker (the scheme in one place; registry.h, subtree.h,
 * retain.h and msg.h hold their own parts to it):
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
 *   - Counters for $SYS and /metrics are per-worker atomics that only their worker writes,
 *     with a relaxed load and store (MG_MET_ADD: no locked instruction); worker 0 ($SYS) or
 *     the worker answering a scrape (metrics.c) sums them with relaxed loads.
 *   - Backpressure: a worker whose connections would overfill another worker's inbox
 *     (MG_INBOX_HIGH) stops reading them until it drained (inbox_n is a relaxed atomic).
 *   - Config: read-only while workers run. SIGHUP stops the world (every worker parks on a
 *     barrier), reloads, and releases them; they then re-check who may stay connected.
 *   - Shutdown: every worker publishes its clients' wills, meets the others on the same
 *     barrier, takes the wills routed to it, flushes, and stops; the main thread then joins
 *     them and frees everything (no locks needed any more).
 *   Lock order: no two of these locks are ever held together (reg_mu, inbox mutexes, the
 *   tree and retained rwlocks are each taken alone; only the log mutex, a leaf, is taken
 *   under them), so there is no order to get wrong. One exception: an auth thread posts
 *   a password verdict into an inbox under the auth pool's mutex (auth.h), and nothing
 *   takes the pool's mutex under an inbox mutex.
 */
#ifndef MG_BROKER_WORKER_H
#define MG_BROKER_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/conn.h"
#include "broker/queue.h"
#include "broker/registry.h"
#include "broker/subtree.h"
#include "net/linger.h"
#include "net/loop.h"

typedef struct mg_broker mg_broker;
typedef struct mg_session mg_session;

enum { MG_POST_DELIVER = 1, MG_POST_ADOPT, MG_POST_PAUSE, MG_POST_SHUTDOWN,
	MG_POST_AUTH_OK, MG_POST_AUTH_BAD /* a password verdict for .conn (auth.h) */,
	MG_POST_REMOTE /* .it.m came from another node (cluster.h): route it here; .ext, when
	                * not NULL, is the cluster's to acknowledge once routed (routed()); .ref,
	                * when not NULL, is a mg_cgroup (cluster.h): for that shared group only */,
	MG_POST_CALL /* .call.fn(w, .call.arg) on the worker; fn(NULL, arg) when dropped */,
	MG_POST_CLUSTER_ACK /* JetStream answered the publish .seq of this worker (cluster.h) */ };

/* MG_POST_CLUSTER_ACK's .seq: the sequence, with this bit when JetStream refused it */
#define MG_CLUSTER_ACK_FAILED (1ull << 63)

typedef struct mg_post {
	int kind;
	mg_sref ref;
	union {
		mg_qitem it;
		struct { void (*fn)(mg_worker *w, void *arg); void *arg; } call;
	};
	union {
		mg_conn *conn;
		void *ext;
		uint64_t seq;
	};
} mg_post;

typedef struct mg_postv {
	mg_post *v;
	size_t n, cap;
} mg_postv;

typedef struct mg_stats {
	atomic_uint_fast64_t msgs_recv, msgs_sent, pub_recv, pub_sent, pub_dropped,
		bytes_recv, bytes_sent, conns_total, connects, pub_bytes_recv, pub_bytes_sent, expired;
} mg_stats;

/* Counters for /metrics (broker/metrics.c), one set per worker. Only the owning worker
 * writes them (MG_MET_ADD: a relaxed load and store, a plain add on x86, no locked
 * instruction); the scrape, on any worker, reads them relaxed and sums, a moment stale. */
enum { MG_DROP_QUEUE_FULL, MG_DROP_EXPIRED, MG_DROP_DENIED, MG_DROP_TOO_LARGE, MG_DROP_OFFLINE_QOS0,
       MG_DROP_NOMEM, MG_DROP_N };
typedef struct mg_wmet {
	atomic_uint_fast64_t pub_in[3], pub_in_bytes[3], pub_out[3], pub_out_bytes[3];
	atomic_uint_fast64_t dropped[MG_DROP_N];
	atomic_uint_fast64_t disconnects, pub_denied;
	/* gauges counted up and down by the owner: CONNECTed clients by protocol level (index
	 * 3, 4, 5; 3.1, 3.1.1, 5.0) */
	atomic_int_fast64_t clients[6];
	/* gauges recomputed every tick (1 s) from the worker's own sessions */
	atomic_int_fast64_t queued, queued_bytes, inflight, inflight_bytes, conns;
} mg_wmet;
#define MG_MET_ADD(var, n) \
	atomic_store_explicit(&(var), atomic_load_explicit(&(var), memory_order_relaxed) + (n), \
	                      memory_order_relaxed)

/* An output buffer pair (mg_conn ob + seg) of a connection that wrote everything, kept for
 * the next connection of the same worker that has something to send (conn.c). */
typedef struct mg_outbuf {
	uint8_t *ob;
	mg_seg *seg;
	uint32_t ocap, segcap;
} mg_outbuf;

#define MG_OUTPOOL 256
#define MG_EARLY_MAX 8

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
	mg_wmet met;
	int n_conns;        /* connections it owns */
	long tick_timer;
	mg_conn **busy;     /* connections with a SUBSCRIBE/UNSUBSCRIBE in progress */
	int n_busy, cap_busy;
	long busy_timer;    /* the next chunk of theirs, or 0 */
	int reserve_fd;     /* /dev/null, given up to accept-and-close at the open-file limit; -1 */
	long accept_timer;  /* while it stopped watching the listeners (no reserve left), else 0 */
	int n_outpool;
	mg_outbuf outpool[MG_OUTPOOL];
	/* connections whose output passed MG_OUT_EARLY this turn (conn.c mg_conn_flush_early);
	 * stuck: its early write left it above that (the socket is full): not tried again
	 * before the turn ends */
	int n_early;
	mg_conn *early[MG_EARLY_MAX];
	bool early_stuck[MG_EARLY_MAX];
	/* clustering (cluster.h): the JetStream publish the last mg_publish_msg made (its
	 * sequence, 0 none), whose answer an acknowledgement to the publisher waits for; and
	 * the connections waiting (cluster_ack.c) */
	uint64_t cluster_seq;
	bool cluster_shared; /* the cluster took that message to the shared groups too */
	struct mg_ackwait *ackwait;
};

void mg_worker_post(mg_worker *from, int to, mg_post *p); /* takes ownership of p's refs */
void mg_worker_flush_outboxes(mg_worker *w);
/* From a thread that is no worker (the auth threads): straight into to's inbox, under its
 * lock, waking it. 0 or -ENOMEM. */
int mg_worker_post_ext(mg_worker *to, const mg_post *p);
/* Backpressure between workers: when another worker's inbox holds more than MG_INBOX_HIGH
 * deliveries, connections of this worker stop reading (mg_worker_throttle) until it drains,
 * so a fast publisher cannot grow a busy worker's inbox without bound. */
#define MG_INBOX_HIGH 8192
bool mg_worker_backlogged(const mg_worker *w);
void mg_worker_throttle(mg_worker *w, mg_conn *c);
int mg_worker_init(mg_broker *b, mg_worker *w, int idx);
int mg_worker_start(mg_worker *w);
void mg_worker_free(mg_worker *w); /* after its thread stopped */

#endif
