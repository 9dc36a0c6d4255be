/*
 * broker/worker.c - one event-loop thread: accepts, runs its connections, drains its inbox
 * (deliveries from other workers, handed-off connections), and a 1 s tick for keepalive,
 * CONNECT timeouts, delayed wills and session expiry.
 */
#include "broker/worker.h"
#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/cluster_ack.h"
#include "broker/cluster.h"
#include "broker/http.h"
#include "broker/log.h"
#include "broker/metrics.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/store.h"
#include "net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int postv_push(mg_postv *v, const mg_post *p)
{
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 64;
		mg_post *nv = realloc(v->v, nc * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		v->v = nv;
		v->cap = nc;
	}
	v->v[v->n++] = *p;
	return 0;
}

static void post_drop(mg_post *p)
{
	if (p->kind == MG_POST_DELIVER || p->kind == MG_POST_REMOTE)
		mg_qitem_clear(&p->it);
	if (p->kind == MG_POST_REMOTE && p->ref)
		mg_cgroup_unref((mg_cgroup *)(void *)p->ref);
	else if (p->kind == MG_POST_CALL)
		p->call.fn(NULL, p->call.arg); /* it frees what it owns (a parked connection too) */
	else if (p->kind == MG_POST_ADOPT) {
		mg_transport_close(&p->conn->tr);
		mg_conn_uncount(p->conn);
		mg_conn_free(p->conn);
	}
}

void mg_worker_post(mg_worker *from, int to, mg_post *p)
{
	if (postv_push(&from->outbox[to], p) < 0)
		post_drop(p);
}

int mg_worker_post_ext(mg_worker *to, const mg_post *p)
{
	pthread_mutex_lock(&to->inbox_mu);
	bool was_empty = to->inbox.n == 0;
	int r = postv_push(&to->inbox, p);
	atomic_store_explicit(&to->inbox_n, to->inbox.n, memory_order_relaxed);
	pthread_mutex_unlock(&to->inbox_mu);
	if (r == 0 && was_empty)
		mg_loop_wake(to->loop);
	return r;
}

static bool any_posts(const mg_worker *w)
{
	for (int t = 0; t < w->b->nworkers; t++)
		if (w->outbox[t].n)
			return true;
	return false;
}

void mg_worker_flush_outboxes(mg_worker *w)
{
	mg_broker *b = w->b;
	if (!any_posts(w))
		return;
	mg_store_commit(); /* what another worker will see was created by a committed message */
	for (int t = 0; t < b->nworkers; t++) {
		mg_postv *o = &w->outbox[t];
		if (!o->n)
			continue;
		mg_worker *tw = &b->w[t];
		pthread_mutex_lock(&tw->inbox_mu);
		bool was_empty = tw->inbox.n == 0;
		size_t i = 0;
		for (; i < o->n; i++)
			if (postv_push(&tw->inbox, &o->v[i]) < 0)
				break;
		atomic_store_explicit(&tw->inbox_n, tw->inbox.n, memory_order_relaxed);
		pthread_mutex_unlock(&tw->inbox_mu);
		for (; i < o->n; i++)
			post_drop(&o->v[i]);
		o->n = 0;
		if (was_empty)
			mg_loop_wake(tw->loop);
	}
}

/* After a reload: tightened access applies to who is connected, as mosquitto does: every
 * client that the new settings would refuse at CONNECT is closed (a removed user, a changed
 * password, anonymous clients once allow_anonymous is false). */
static void recheck_access(mg_worker *w)
{
	for (mg_conn *c = w->conns, *n; c; c = n) {
		n = c->next;
		if (c->state == MG_CS_ACTIVE && !c->outbound && !mg_auth_still_ok(c)) /* not a bridge's */
			mg_conn_disconnect(c, MG_RC_NOT_AUTHORIZED, MG_CLOSE_NOT_AUTH);
	}
}

static void on_wake(mg_loop *l, void *ud);

/* SIGTERM/SIGINT: the broker closes every connection without a DISCONNECT from the client,
 * so their wills are due [MQTT-3.1.2-8]. Every worker publishes its clients' wills, waits
 * until all have (barrier), takes the deliveries others sent it, flushes what it can
 * without blocking, and stops. */
static void shutdown_wills(mg_worker *w)
{
	for (mg_conn *c = w->conns; c; c = c->next)
		if (c->state == MG_CS_ACTIVE && c->s && c->s->will)
			mg_will_publish(w, c->s);
	mg_worker_flush_outboxes(w);
	pthread_barrier_wait(&w->b->pause);
	w->stopping = 1; /* the end of on_wake takes the wills others routed here, then stops */
}

static void shutdown_finish(mg_worker *w)
{
	w->stopping = 2;
	on_wake(w->loop, w); /* what arrived after the barrier: the other workers' wills */
	mg_store_shutdown(w);
	mg_store_commit(); /* every held acknowledgement may go with the rest */
	for (mg_conn *c = w->conns, *n; c; c = n) {
		n = c->next;
		if (c->out_bytes)
			mg_conn_flush(c);
	}
	mg_loop_stop(w->loop);
}

/* Wake-up: take the whole inbox at once, then handle it without the lock. */
static void on_wake(mg_loop *l, void *ud)
{
	mg_worker *w = ud;
	(void)l;
	mg_postv in;
	pthread_mutex_lock(&w->inbox_mu);
	in = w->inbox;
	w->inbox = w->spare;
	w->spare = (mg_postv){ 0 }; /* on_wake may run nested (shutdown): never share a buffer */
	atomic_store_explicit(&w->inbox_n, 0, memory_order_relaxed);
	pthread_mutex_unlock(&w->inbox_mu);
	for (size_t i = 0; i < in.n; i++) {
		mg_post *p = &in.v[i];
		switch (p->kind) {
		case MG_POST_DELIVER: {
			mg_session *s = mg_session_resolve(w, p->ref);
			if (s)
				mg_session_deliver(w, s, &p->it);
			else
				mg_qitem_clear(&p->it);
			if (w->n_early && !w->stopping) /* as between two reads (conn.c) */
				mg_conn_flush_early(w);
			break;
		}
		case MG_POST_ADOPT:
			mg_conn_attach(w, p->conn);
			break;
		case MG_POST_REMOTE: /* routed here, never sent on: it came from NATS */
			if (p->ref) { /* for one shared group (a NATS queue subscription) */
				mg_cgroup *g = (mg_cgroup *)(void *)p->ref;
				mg_route_group(w, p->it.m, g->f, g->len);
				mg_cgroup_unref(g);
			} else { /* the shared groups have subscriptions of their own */
				mg_route_remote(w, p->it.m, true);
			}
			mg_qitem_clear(&p->it);
			if (p->ext && w->b->cluster) /* acknowledged to JetStream after this turn's commit */
				w->b->cluster_ops->routed(w->b->cluster, w, p->ext);
			break;
		case MG_POST_CLUSTER_ACK:
			mg_ack_done(w, p->seq);
			break;
		case MG_POST_PAUSE:
			pthread_barrier_wait(&w->b->pause); /* everyone parked */
			pthread_barrier_wait(&w->b->pause); /* main thread reloaded */
			recheck_access(w);
			break;
		case MG_POST_SHUTDOWN:
			shutdown_wills(w);
			break;
		case MG_POST_AUTH_OK:
		case MG_POST_AUTH_BAD:
			mg_auth_verdict(w, p->conn, p->kind == MG_POST_AUTH_OK);
			break;
		case MG_POST_CALL:
			p->call.fn(w, p->call.arg);
			break;
		}
	}
	in.n = 0;
	if (!w->spare.v)
		w->spare = in; /* no malloc per wake-up in steady state */
	else
		free(in.v);
	if (w->stopping == 1)
		shutdown_finish(w);
}

bool mg_worker_backlogged(const mg_worker *w)
{
	const mg_broker *b = w->b;
	for (int i = 0; i < b->nworkers; i++)
		if (i != w->idx && atomic_load_explicit(&b->w[i].inbox_n, memory_order_relaxed) > MG_INBOX_HIGH)
			return true;
	return false;
}

/* Every 2 ms while some connections wait: let them read again once the others caught up.
 * O(connections of this worker), only while throttled. */
static void unthrottle(mg_loop *l, void *ud)
{
	mg_worker *w = ud;
	if (mg_worker_backlogged(w))
		return;
	for (mg_conn *c = w->conns; c; c = c->next)
		if (c->throttled) {
			c->throttled = false;
			mg_conn_set_watch(c);
		}
	w->n_throttled = 0;
	mg_loop_timer_cancel(l, w->throttle_timer);
	w->throttle_timer = 0;
}

void mg_worker_throttle(mg_worker *w, mg_conn *c)
{
	c->throttled = true;
	mg_conn_set_watch(c);
	if (w->n_throttled++ == 0)
		w->throttle_timer = mg_loop_timer(w->loop, 2, 2, unthrottle, w);
}

static void before_sleep(mg_loop *l, void *ud)
{
	mg_worker *w = ud;
	(void)l;
	/* Deliveries to other workers go before this worker's replies (PUBACK, PINGRESP): a
	 * client that has its reply knows the delivery is already in the other worker's inbox,
	 * which the tests' negative checks rely on. The flushes below may post more (a will
	 * on a failed write), hence the second pass.
	 * Persistence: the turn's batch is committed here, or only the previous turn's part of
	 * it (store.h, mg_store_turn_end); then the loop must not sleep while ops or held
	 * acknowledgements are carried. */
	mg_sbatch *sb = mg_store_tls;
	if (sb)
		mg_store_turn_end(sb, any_posts(w), mg_loop_now_ms(l));
	mg_worker_flush_outboxes(w);
	if (w->b->cluster) /* committed, handed on: JetStream may forget what was routed */
		w->b->cluster_ops->turn_end(w->b->cluster, w);
	while (w->dirty) {
		mg_conn *c = w->dirty;
		w->dirty = c->dirty_next;
		c->dirty = false;
		if (c->state != MG_CS_DEAD)
			mg_conn_flush(c);
	}
	mg_worker_flush_outboxes(w);
	mg_conn_early_reset(w); /* before the frees: it names connections */
	while (w->dead) {
		mg_conn *c = w->dead;
		w->dead = c->next;
		mg_conn_free(c);
	}
	int carry = sb ? mg_store_carrying(sb) : -1;
	if (carry >= 0)
		mg_loop_sleep_at_most(l, carry);
}

static void tick(mg_loop *l, void *ud)
{
	mg_worker *w = ud;
	int64_t now = mg_loop_now_ms(l);
	for (mg_conn *c = w->conns, *n; c; c = n) {
		n = c->next;
		if (c->state == MG_CS_NEW && c->auth != MG_AUTH_WAIT && !c->cluster_wait && now - c->created > MG_CONNECT_TIMEOUT_MS)
			mg_conn_close(c, MG_CLOSE_NO_CONNECT);
		else if (c->state == MG_CS_ACTIVE && c->keepalive &&
		         now - c->last_rx > (int64_t)c->keepalive * 1500)
			mg_conn_disconnect(c, MG_RC_KEEP_ALIVE_TIMEOUT, MG_CLOSE_TIMEOUT);
	}
	mg_session_tick(w, now);
	mg_metrics_tick(w);
	if (w->idx == 0)
		mg_sys_tick(w);
}

static void on_accept(mg_loop *l, int fd, void *ud, int mask);

static void watch_listeners(mg_worker *w, bool on)
{
	mg_broker *b = w->b;
	for (int i = 0; i < b->nls; i++)
		if (on)
			mg_loop_watch(w->loop, b->ls[i].fd, MG_EV_READ, on_accept, w, b->nworkers > 1);
		else
			mg_loop_unwatch(w->loop, b->ls[i].fd);
}

static void rewatch_listeners(mg_loop *l, void *ud)
{
	mg_worker *w = ud;
	(void)l;
	w->accept_timer = 0;
	watch_listeners(w, true);
}

/* accept failed for want of a descriptor (EMFILE, ENFILE) or of kernel memory. The pending
 * connection stays in the listen queue, so the listener stays readable: without this the
 * worker would spin at 100% CPU and the waiting client would get no answer at all. Give up
 * the reserve descriptor, accept the client and close it at once (it sees the close and can
 * retry elsewhere or later), and take the reserve back. When the reserve cannot be taken back
 * (another thread got the descriptor first), stop watching the listeners for 250 ms.
 * Logged once per episode, broker-wide: it ends with an accept a second after the last
 * failure. Returns true to go on accepting. */
static bool accept_short(mg_worker *w, int lfd, int err)
{
	mg_broker *b = w->b;
	atomic_store_explicit(&b->fd_short_ms, mg_loop_now_ms(w->loop), memory_order_relaxed);
	if (!atomic_exchange(&b->fd_short, true))
		mg_log(MG_LOG_WARNING, "Warning: cannot accept a connection: %s. New connections are closed at "
		       "once until descriptors are free: raise the open-file limit (ulimit -n, LimitNOFILE) or "
		       "lower max_connections.", strerror(-err));
	if (w->reserve_fd < 0) /* lost to another thread earlier: a descriptor may be free now */
		w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (w->reserve_fd >= 0) {
		close(w->reserve_fd);
		char peer[80];
		int cfd = mg_accept(lfd, peer, sizeof peer);
		if (cfd >= 0) {
			close(cfd);
			atomic_fetch_add_explicit(&b->fd_refused, 1, memory_order_relaxed);
		}
		w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (w->reserve_fd >= 0)
			return cfd >= 0;
	}
	if (!w->accept_timer) {
		watch_listeners(w, false);
		w->accept_timer = mg_loop_timer(w->loop, 250, 0, rewatch_listeners, w);
	}
	return false;
}

/* ud is the worker whose loop watches the listener (each worker watches every listener). */
static void on_accept(mg_loop *l, int fd, void *ud, int mask)
{
	mg_worker *w = ud;
	mg_broker *b = w->b;
	mg_listen_sock *ls = b->ls;
	(void)mask;
	while (ls->fd != fd) /* a handful of listeners; fd is one of them */
		ls++;
	const mg_config *cfg = b->cfg;
	for (int k = 0; k < 64; k++) {
		char peer[80];
		int cfd = mg_accept(fd, peer, sizeof peer);
		if (cfd == -EMFILE || cfd == -ENFILE || cfd == -ENOBUFS || cfd == -ENOMEM) {
			if (accept_short(w, fd, cfd))
				continue;
			return;
		}
		if (cfd < 0)
			return; /* -EAGAIN, or an error of that one connection: the next event */
		if (atomic_load_explicit(&b->fd_short, memory_order_relaxed) &&
		    mg_loop_now_ms(l) - atomic_load_explicit(&b->fd_short_ms, memory_order_relaxed) >= 1000 &&
		    atomic_exchange(&b->fd_short, false))
			mg_log(MG_LOG_NOTICE, "Accepting connections again (%u closed at once for want of descriptors).",
			       atomic_exchange(&b->fd_refused, 0));
		int lidx = b->ls_lidx[ls - b->ls];
		int lmax = cfg->listeners[lidx].max_connections;
		if ((cfg->max_connections >= 0 && atomic_load(&b->n_conns) >= cfg->max_connections) ||
		    (lmax >= 0 && atomic_load(&b->lcount[lidx]) >= lmax)) {
			mg_log(MG_LOG_NOTICE, "Client connection from %s denied: max_connections exceeded.", peer);
			close(cfd);
			continue;
		}
		atomic_fetch_add(&b->n_conns, 1);
		atomic_fetch_add(&b->lcount[lidx], 1);
		MG_MET_ADD(w->st.conns_total, 1);
		/* TLS sockets always: midge already gathers a turn's output into one SSL_write, so
		 * Nagle has nothing left to coalesce, and it would hold the CONNACK behind the TLS
		 * 1.3 session tickets until the client's delayed ACK (40 ms on Linux) */
		if (cfg->set_tcp_nodelay || b->tls[lidx])
			mg_tcp_nodelay(cfd, 1);
		mg_conn *c = mg_conn_new(w, cfd, peer, ls->port);
		if (!c) {
			close(cfd);
			atomic_fetch_sub(&b->n_conns, 1);
			atomic_fetch_sub(&b->lcount[lidx], 1);
			continue;
		}
		if (b->tls[lidx]) {
			/* TLS: the handshake runs on this loop (conn.c); the fd is the transport's now,
			 * closed by it also when this fails */
			if (mg_tls_init(&c->tr, cfd, b->tls[lidx], MG_TLS_SERVER, NULL) < 0) {
				mg_conn_free(c);
				atomic_fetch_sub(&b->n_conns, 1);
				atomic_fetch_sub(&b->lcount[lidx], 1);
				continue;
			}
			c->handshaking = true;
			if (cfg->listeners[lidx].protocol != MG_PROTO_WEBSOCKETS)
				mg_tls_hold_final_flight(&c->tr); /* tickets go with the CONNACK (conn.c) */
		}
		c->lidx = lidx;
		if (cfg->listeners[lidx].protocol == MG_PROTO_WEBSOCKETS && mg_http_ws_wrap(c) < 0) {
			mg_conn_free(c); /* the socket went with the failed wrap */
			atomic_fetch_sub(&b->n_conns, 1);
			atomic_fetch_sub(&b->lcount[lidx], 1);
			continue;
		}
		c->mp = cfg->listeners[lidx].mount_point;
		c->mp_len = c->mp ? (uint16_t)strlen(c->mp) : 0;
		mg_log(MG_LOG_NOTICE, "New connection from %s on port %u.", peer, ls->port);
		mg_conn_attach(w, c);
	}
}

static void *worker_main(void *arg)
{
	mg_worker *w = arg;
	mg_store_worker_start(w);
	mg_loop_run(w->loop);
	mg_store_worker_stop(w);
	return NULL;
}

int mg_worker_init(mg_broker *b, mg_worker *w, int idx)
{
	w->idx = idx;
	w->b = b;
	w->reserve_fd = -1;
	w->loop = mg_loop_new();
	w->outbox = calloc((size_t)b->nworkers, sizeof *w->outbox);
	w->rbuf = malloc(MG_READ_CHUNK);
	w->linger = w->loop ? mg_linger_new(w->loop, MG_LINGER_MAX, MG_LINGER_MS, MG_LINGER_BYTES) : NULL;
	if (!w->loop || !w->outbox || !w->rbuf || !w->linger)
		return -ENOMEM;
	pthread_mutex_init(&w->inbox_mu, NULL);
	mg_loop_before_sleep(w->loop, before_sleep, w);
	mg_loop_on_wake(w->loop, on_wake, w);
	w->tick_timer = mg_loop_timer(w->loop, 1000, 1000, tick, w);
	w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* -1: accept_short pauses instead */
	for (int i = 0; i < b->nls; i++)
		if (mg_loop_watch(w->loop, b->ls[i].fd, MG_EV_READ, on_accept, w, b->nworkers > 1) < 0)
			return -errno;
	if (idx == 0)
		mg_sys_init(w);
	return 0;
}

int mg_worker_start(mg_worker *w)
{
	return -pthread_create(&w->th, NULL, worker_main, w);
}

/* After the thread has stopped: free everything it owns (no wills, no routing). */
void mg_worker_free(mg_worker *w)
{
	mg_linger_free(w->linger); /* what still lingers is closed now: we are stopping */
	w->linger = NULL;
	if (!w->loop || !w->outbox) {
		free(w->outbox);
		free(w->rbuf);
		mg_conn_pool_free(w);
		return;
	}
	/* Verdicts first: they name connections, some owned by the verdict (auth.h), and so do
	 * the cluster's (a CONNECT parked while the client-id registry was asked). */
	for (size_t i = 0; i < w->inbox.n; i++)
		if (w->inbox.v[i].kind == MG_POST_AUTH_OK || w->inbox.v[i].kind == MG_POST_AUTH_BAD) {
			mg_auth_drop_verdict(w->inbox.v[i].conn);
			w->inbox.v[i].kind = 0;
		} else if (w->inbox.v[i].kind == MG_POST_CALL) {
			w->inbox.v[i].call.fn(NULL, w->inbox.v[i].call.arg);
			w->inbox.v[i].kind = 0;
		}
	for (mg_conn *c = w->conns, *n; c; c = n) {
		n = c->next;
		if (c->state == MG_CS_ACTIVE && c->level == MG_V5) {
			/* best effort, never blocking: what is pending, then DISCONNECT 0x8B */
			mg_conn_flush(c);
			if (c->out_bytes == 0 && c->state == MG_CS_ACTIVE) {
				mg_packet p = { .type = MG_DISCONNECT, .reason_code = MG_RC_SERVER_SHUTTING_DOWN };
				mg_conn_send(c, &p);
				mg_conn_flush(c);
			}
		}
		if (c->state == MG_CS_DEAD)
			continue; /* the flush failed: it is on the dead list now */
		mg_loop_unwatch(w->loop, c->tr.fd);
		mg_transport_close(&c->tr);
		mg_conn_free(c);
	}
	w->conns = NULL;
	while (w->dead) {
		mg_conn *c = w->dead;
		w->dead = c->next;
		mg_conn_free(c);
	}
	for (int t = 0; t < w->b->nworkers; t++) {
		for (size_t i = 0; i < w->outbox[t].n; i++)
			post_drop(&w->outbox[t].v[i]);
		free(w->outbox[t].v);
	}
	free(w->outbox);
	for (size_t i = 0; i < w->inbox.n; i++)
		post_drop(&w->inbox.v[i]);
	free(w->inbox.v);
	free(w->spare.v);
	while (w->sessions) {
		mg_session *s = w->sessions;
		s->conn = NULL;
		mg_session_destroy(w, s);
	}
	mg_ack_worker_free(w);
	mg_matchset_free(&w->ms);
	free(w->rbuf);
	mg_conn_pool_free(w);
	if (w->reserve_fd >= 0)
		close(w->reserve_fd);
	free(w->busy);
	pthread_mutex_destroy(&w->inbox_mu);
	/* the loop itself is freed by the broker once every worker is freed: conns of one
	 * worker may sit in another's inbox (hand-off) and are unwatched from their own */
}
