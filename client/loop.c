/* client/loop.c - the client's own small loop: poll(2) on the socket and the wake pipe,
 * keepalive, timeouts; and the calls built on it (connect, disconnect, loop_forever,
 * loop_start, wait_for_publish, the socket API for other event loops).
 *
 * One thread at a time owns the loop (loop_owner). A call that needs the loop takes ownership
 * for its duration, or, when another thread owns it (loop_start), waits on cv for the result. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

/* ---- ownership ---- */

enum { OWN_TAKEN = 0, OWN_OTHER = 1, OWN_SELF = 2 };

/* Under mu. OWN_TAKEN: now ours (release with release_loop); OWN_OTHER: another thread runs the
 * loop; OWN_SELF: we run it already (we are inside a callback). */
static int acquire_loop(midge_client *c)
{
	if (c->loop_owner_set)
		return pthread_equal(c->loop_owner, pthread_self()) ? OWN_SELF : OWN_OTHER;
	c->loop_owner_set = true;
	c->loop_owner = pthread_self();
	return OWN_TAKEN;
}

static void release_loop(midge_client *c)
{
	c->loop_owner_set = false;
	c->notify = true;
}

static void drain_wake(midge_client *c)
{
	mg_plat_wake_drain(c->wake[0]);
}

static bool active(int st)
{
	return st == MG_S_TCP || st == MG_S_CONNACK || st == MG_S_UP || st == MG_S_CLOSING;
}

/* ---- the loop ---- */

/* Milliseconds until mgc_misc has something to do; -1 for never. Under mu. */
static int64_t next_deadline(midge_client *c, int64_t now)
{
	int64_t t = -1;
	if (c->state == MG_S_TCP || c->state == MG_S_CONNACK)
		t = c->connect_start_ms + c->connect_timeout_ms;
	if (c->state == MG_S_CLOSING)
		t = c->closing_ms + c->connect_timeout_ms;
	if (c->state == MG_S_UP && c->ka) {
		int64_t ka = (int64_t)c->ka * 1000;
		if (c->ping_out)
			t = c->ping_sent_ms + ka;
		else
			t = (c->last_out_ms < c->last_in_ms ? c->last_out_ms : c->last_in_ms) + ka;
	}
	return t < 0 ? -1 : (t > now ? t - now : 0);
}

int mgc_misc(midge_client *c)
{
	int64_t now = mgc_cl_now_ms();
	switch (c->state) {
	case MG_S_TCP:
	case MG_S_CONNACK:
		if (now - c->connect_start_ms >= c->connect_timeout_ms) {
			mgc_log(c, MIDGE_LOG_ERR, "Client %s connect timed out", mgc_cid(c));
			mgc_conn_close(c, 0, MIDGE_ERR_TIMEOUT, NULL);
			return MIDGE_ERR_TIMEOUT;
		}
		break;
	case MG_S_CLOSING:
		/* Our DISCONNECT is out (or the broker is too slow to take it): close. */
		if (c->olen == c->ooff || now - c->closing_ms >= c->connect_timeout_ms)
			mgc_conn_close(c, 0, c->disc_reason, NULL);
		break;
	case MG_S_UP: {
		if (!c->ka)
			break;
		int64_t ka = (int64_t)c->ka * 1000;
		if (c->ping_out) {
			if (now - c->ping_sent_ms >= ka) {
				mgc_log(c, MIDGE_LOG_NOTICE, "Client %s has exceeded timeout, disconnecting.", mgc_cid(c));
				mgc_conn_close(c, 0, MIDGE_ERR_KEEPALIVE, NULL);
				return MIDGE_ERR_KEEPALIVE;
			}
		} else if (now - c->last_out_ms >= ka || now - c->last_in_ms >= ka) {
			if (mgc_send_simple(c, MG_PINGREQ, 0, 0) == MIDGE_OK) {
				mgc_log(c, MIDGE_LOG_DEBUG, "Client %s sending PINGREQ", mgc_cid(c));
				c->ping_out = true;
				c->ping_sent_ms = now;
				return mgc_do_write(c);
			}
		}
		break;
	}
	}
	return MIDGE_OK;
}

/* One turn: wait up to timeout_ms for the socket or a wake-up, then read, write, misc.
 * Loop owner only; called without mu. */
int mgc_loop_once(midge_client *c, int timeout_ms)
{
	mgc_lock(c);
	int st = c->state;
	if (!active(st)) {
		mgc_unlock(c);
		return MIDGE_ERR_NO_CONN;
	}
	struct pollfd pf[2] = { { .fd = c->tr.fd, .events = POLLIN }, { .fd = c->wake[0], .events = POLLIN } };
	if (st == MG_S_TCP)
		pf[0].events = POLLOUT;
	else if (mgc_want_write(c))
		pf[0].events |= POLLOUT; /* a fence ends with a wake-up */
	/* TLS may need to write to go on reading (a key update): retry the read when writable */
	bool read_on_out = st != MG_S_TCP && mg_transport_want_write(&c->tr);
	/* TLS: bytes already inside OpenSSL, which poll cannot see: read them without waiting */
	bool pending = st != MG_S_TCP && mg_transport_pending(&c->tr);
	int64_t dl = next_deadline(c, mgc_cl_now_ms());
	int t = timeout_ms;
	if (dl >= 0 && (t < 0 || dl < t))
		t = (int)dl;
	if (pending)
		t = 0;
	mgc_unlock(c);

	int n = mg_plat_poll(pf, 2, t);
	if (n < 0 && errno != EINTR)
		return MIDGE_ERR_ERRNO;
	if (n > 0 && (pf[1].revents & POLLIN))
		drain_wake(c);

	int rc = MIDGE_OK;
	short re = n > 0 ? pf[0].revents : 0;
	if (st == MG_S_TCP && re) {
		mgc_lock(c);
		if (c->state == MG_S_TCP) {
			int r = mgc_tcp_progress(c);
			if (r != MIDGE_OK && c->state == MG_S_TCP) {
				c->conn_errno = errno;
				mgc_log(c, MIDGE_LOG_ERR, "Client %s connect failed: %s", mgc_cid(c), mg_plat_strerror(errno));
				mgc_conn_close(c, 0, r, NULL);
			}
			rc = r; /* a failed TLS start has closed already */
		}
		mgc_unlock(c);
		if (rc)
			return rc;
		re &= (short)~POLLOUT; /* writable now; written below */
	}
	if (st != MG_S_TCP && ((re & (POLLIN | POLLHUP | POLLERR)) || pending || (read_on_out && (re & POLLOUT))))
		rc = mgc_do_read(c);
	mgc_lock(c);
	int r2 = MIDGE_OK;
	if (c->tr.fd >= 0 && c->state != MG_S_TCP)
		r2 = mgc_do_write(c);
	int r3 = mgc_misc(c);
	mgc_unlock(c);
	if (rc == MIDGE_OK)
		rc = r2 ? r2 : r3;
	return rc;
}

int midge_loop(midge_client *c, int timeout_ms)
{
	if (!c)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	int own = acquire_loop(c);
	mgc_unlock(c);
	if (own != OWN_TAKEN)
		return MIDGE_ERR_BUSY;
	int rc = mgc_loop_once(c, timeout_ms < 0 ? 1000 : timeout_ms);
	mgc_lock(c);
	release_loop(c);
	mgc_unlock(c);
	return rc;
}

/* ---- waiting for a result ---- */

/* Wait until done(c) or the deadline (-1: none). Runs the loop when nobody does. Returns
 * MIDGE_OK, MIDGE_ERR_TIMEOUT, MIDGE_ERR_BUSY (called from a callback), or the error that
 * ended the connection when we run the loop ourselves and nobody will reconnect. */
static int wait_for(midge_client *c, bool (*done)(midge_client *, void *), void *arg, int64_t deadline)
{
	mgc_lock(c);
	int own = acquire_loop(c);
	if (own == OWN_SELF) {
		bool d = done(c, arg);
		mgc_unlock(c);
		return d ? MIDGE_OK : MIDGE_ERR_BUSY;
	}
	if (own == OWN_OTHER) {
		int rc = MIDGE_OK;
		while (!done(c, arg)) {
			if (deadline >= 0 && mgc_cl_now_ms() >= deadline) {
				rc = MIDGE_ERR_TIMEOUT;
				break;
			}
			if (!c->loop_owner_set) { /* the loop thread went away: run the loop here */
				mgc_unlock(c);
				return wait_for(c, done, arg, deadline);
			}
			int64_t at = mgc_cl_now_ms() + 1000;
			if (deadline >= 0 && deadline < at)
				at = deadline;
			mg_plat_cond_wait_until(&c->cv, &c->mu, at);
		}
		/* Done in the state; the loop thread may still be making the callbacks that go with
		 * it (on_publish for this mid, on_connect): as in paho, they have returned before the
		 * wait does. Bounded by the same deadline; past it the result stands. */
		uint64_t upto = c->ev_seq;
		while (rc == MIDGE_OK && !mgc_events_done(c, upto) &&
		       (deadline < 0 || mgc_cl_now_ms() < deadline)) {
			int64_t at = mgc_cl_now_ms() + 1000;
			if (deadline >= 0 && deadline < at)
				at = deadline;
			mg_plat_cond_wait_until(&c->cv, &c->mu, at);
		}
		mgc_unlock(c);
		return rc;
	}
	int rc = MIDGE_OK;
	while (!done(c, arg)) {
		if (!active(c->state)) {
			rc = MIDGE_ERR_NO_CONN;
			break;
		}
		int64_t now = mgc_cl_now_ms();
		if (deadline >= 0 && now >= deadline) {
			rc = MIDGE_ERR_TIMEOUT;
			break;
		}
		int t = deadline < 0 || deadline - now > 1000 ? 1000 : (int)(deadline - now);
		mgc_unlock(c);
		int r = mgc_loop_once(c, t);
		mgc_lock(c);
		if (r < 0 && r != MIDGE_ERR_NO_CONN && !done(c, arg)) {
			rc = r;
			break;
		}
	}
	release_loop(c);
	mgc_unlock(c);
	return rc;
}

static bool connect_done(midge_client *c, void *arg)
{
	(void)arg;
	return c->connect_done;
}

static bool published(midge_client *c, void *arg)
{
	return !mgc_mid_pending(c, *(int *)arg);
}

int midge_wait_for_publish(midge_client *c, int mid, int timeout_ms)
{
	if (!c || mid <= 0)
		return MIDGE_ERR_INVAL;
	int64_t dl = timeout_ms < 0 ? -1 : mgc_cl_now_ms() + timeout_ms;
	int rc = wait_for(c, published, &mid, dl);
	if (rc == MIDGE_OK) {
		mgc_lock(c);
		rc = mgc_mid_failed(c, mid); /* dropped unsent: not published */
		mgc_unlock(c);
	}
	return rc;
}

/* ---- connect ---- */

static int check_connect(midge_client *c, const char *host, int port, int keepalive,
                         const midge_properties *props)
{
	if (!c || !host || !host[0] || port < 1 || port > 65535 || keepalive < 0 || keepalive > 65535)
		return MIDGE_ERR_INVAL;
	if (props && props->n && c->level != MIDGE_PROTOCOL_V5)
		return MIDGE_ERR_PROPERTY;
	return mgc_props_check_allowed(props, MG_CONNECT);
}

/* Under mu: loop_forever / the loop_start thread should not (re)connect any more. */
static bool reconnect_cancelled(midge_client *c)
{
	return c->user_disconnect || !c->auto_reconnect || (c->thread_running && c->thread_stop);
}

/* The loop's reconnect: the lookup runs in a helper thread (lookup.c) while this one checks
 * every 100 ms whether midge_disconnect or midge_loop_stop called the reconnect off. Returns
 * mgc_resolve's result, or MIDGE_ERR_NO_CONN when cancelled. Without mu. */
static int resolve_cancellable(midge_client *c, const char *host, int port, struct addrinfo **ai)
{
	mgc_lookup *l = mgc_lookup_start(host, port);
	if (!l)
		return mgc_resolve(host, port, ai);
	int rc;
	while (!mgc_lookup_wait(l, 100, ai, &rc)) {
		mgc_lock(c);
		bool off = reconnect_cancelled(c);
		mgc_unlock(c);
		if (off) {
			mgc_lookup_drop(l);
			return MIDGE_ERR_NO_CONN;
		}
	}
	int e = errno;
	mgc_lookup_drop(l);
	errno = e;
	return rc;
}

/* Start a connection with the stored parameters. Without mu (the name lookup blocks).
 * automatic: loop_forever's reconnect (not the user's connect / reconnect). */
static int start(midge_client *c, bool sync, bool automatic)
{
	mgc_lock(c);
	/* Through a SOCKS5 proxy the proxy is what we connect to; it resolves the broker's name. */
	char *host = c->proxy_host ? strdup(c->proxy_host) : c->host ? strdup(c->host) : NULL;
	int port = c->proxy_host ? c->proxy_port : c->port;
	mgc_unlock(c);
	if (!host)
		return MIDGE_ERR_NOMEM;
	int trc = mgc_tls_prepare(c);
	if (trc) {
		free(host);
		return trc;
	}
	struct addrinfo *ai = NULL;
	int rc = automatic ? resolve_cancellable(c, host, port, &ai) : mgc_resolve(host, port, &ai);
	int e = errno;
	free(host);
	if (rc) {
		errno = e;
		return rc;
	}
	mgc_lock(c);
	if (active(c->state)) {
		freeaddrinfo(ai);
		rc = MIDGE_ERR_BUSY;
	} else if (automatic && reconnect_cancelled(c)) {
		freeaddrinfo(ai); /* midge_disconnect / loop_stop while we looked the name up */
		rc = MIDGE_ERR_NO_CONN;
	} else {
		c->reconnecting = automatic;
		rc = mgc_start_connect(c, ai);
		e = errno;
		c->auto_reconnect = !sync;
	}
	mgc_unlock(c);
	errno = e;
	return rc;
}

static int connect_common(midge_client *c, const char *host, int port, int keepalive,
                          bool clean_start, const midge_properties *props, bool sync)
{
	int rc = check_connect(c, host, port, keepalive, props);
	if (rc)
		return rc;
	char *h = strdup(host);
	midge_properties *p = props ? midge_properties_dup(props) : NULL;
	if (!h || (props && !p)) {
		free(h);
		midge_properties_free(p);
		return MIDGE_ERR_NOMEM;
	}
	mgc_lock(c);
	if (active(c->state)) {
		mgc_unlock(c);
		free(h);
		midge_properties_free(p);
		return MIDGE_ERR_BUSY;
	}
	free(c->host);
	midge_properties_free(c->connect_props);
	c->host = h;
	c->port = port;
	c->keepalive = keepalive;
	c->clean_start = clean_start;
	c->connect_props = p;
	if (c->state == MG_S_NEW)
		c->state = MG_S_IDLE;
	mgc_unlock(c);
	mgc_lock(c);
	c->connected_once = false;
	mgc_unlock(c);
	if ((rc = start(c, sync, false)))
		return rc;
	if (!sync)
		return MIDGE_OK;
	mgc_lock(c);
	int64_t dl = mgc_cl_now_ms() + c->connect_timeout_ms + 1000;
	mgc_unlock(c);
	rc = wait_for(c, connect_done, NULL, dl);
	if (rc == MIDGE_ERR_BUSY)
		return MIDGE_OK; /* called from a callback: the loop finishes it, on_connect reports */
	mgc_lock(c);
	if (rc == MIDGE_OK || c->connect_done)
		rc = c->connack_rc;
	int e = c->conn_errno;
	mgc_unlock(c);
	if (rc == MIDGE_ERR_ERRNO)
		errno = e; /* callbacks since may have changed it */
	return rc;
}

int midge_connect(midge_client *c, const char *host, int port, int keepalive)
{
	return c ? connect_common(c, host, port, keepalive, c->clean_session, NULL, true) : MIDGE_ERR_INVAL;
}

int midge_connect_ex(midge_client *c, const char *host, int port, int keepalive, bool clean_start,
                     const midge_properties *props)
{
	return connect_common(c, host, port, keepalive, clean_start, props, true);
}

int midge_connect_async(midge_client *c, const char *host, int port, int keepalive)
{
	return c ? connect_common(c, host, port, keepalive, c->clean_session, NULL, false) : MIDGE_ERR_INVAL;
}

int midge_connect_async_ex(midge_client *c, const char *host, int port, int keepalive,
                           bool clean_start, const midge_properties *props)
{
	return connect_common(c, host, port, keepalive, clean_start, props, false);
}

int midge_reconnect(midge_client *c)
{
	if (!c)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	bool have = c->host != NULL;
	mgc_unlock(c);
	if (!have)
		return MIDGE_ERR_NO_CONN;
	int rc = start(c, true, false);
	if (rc)
		return rc;
	mgc_lock(c);
	int64_t dl = mgc_cl_now_ms() + c->connect_timeout_ms + 1000;
	mgc_unlock(c);
	rc = wait_for(c, connect_done, NULL, dl);
	if (rc == MIDGE_ERR_BUSY)
		return MIDGE_OK;
	mgc_lock(c);
	if (rc == MIDGE_OK || c->connect_done)
		rc = c->connack_rc;
	int e = c->conn_errno;
	mgc_unlock(c);
	if (rc == MIDGE_ERR_ERRNO)
		errno = e;
	return rc;
}

bool midge_is_connected(midge_client *c)
{
	if (!c)
		return false;
	mgc_lock(c);
	bool up = c->state == MG_S_UP;
	mgc_unlock(c);
	return up;
}

/* ---- disconnect ---- */

static bool closed(midge_client *c, void *arg)
{
	(void)arg;
	return !active(c->state);
}

int midge_disconnect_ex(midge_client *c, int reason_code, const midge_properties *props)
{
	if (!c || reason_code < 0 || reason_code > 255)
		return MIDGE_ERR_INVAL;
	if (c->level == MIDGE_PROTOCOL_V5) {
		if (!mg_reason_allowed((uint8_t)reason_code, MG_DISCONNECT))
			return MIDGE_ERR_INVAL;
		int rc = mgc_props_check_allowed(props, MG_DISCONNECT);
		if (rc)
			return rc;
	} else if (reason_code != 0 || (props && props->n)) {
		return MIDGE_ERR_NOT_SUPPORTED;
	}
	mgc_lock(c);
	int rc = mgc_begin_disconnect(c, reason_code, props);
	bool inline_close = rc == MIDGE_OK && !c->loop_owner_set;
	int64_t dl = mgc_cl_now_ms() + 2000;
	mgc_unlock(c);
	if (inline_close) /* nobody runs the loop: flush the DISCONNECT and close here */
		wait_for(c, closed, NULL, dl);
	return rc;
}

int midge_disconnect(midge_client *c)
{
	return midge_disconnect_ex(c, 0, NULL);
}

/* ---- loop_forever, loop_start ---- */

/* Sleep until the deadline, or until something worth looking at happens. Under mu.
 * Callbacks queued by this thread are made first (and nap returns at once, so the caller looks
 * again): the wait releases mu without making them, and another thread's mgc_unlock would then
 * make them in that thread. */
static void nap(midge_client *c, int64_t until)
{
	if (c->ev_head) {
		mgc_unlock(c);
		mgc_lock(c);
		return;
	}
	mg_plat_cond_wait_until(&c->cv, &c->mu, until);
}

/* threaded: loop_start's thread, which waits for a connect instead of returning and runs until
 * loop_stop. Ownership is already ours. */
static int forever(midge_client *c, bool threaded)
{
	mgc_lock(c);
	int delay = c->reconnect_min;
	int64_t retry_at = -1;
	int rc = MIDGE_OK;
	for (;;) {
		/* loop_stop right after disconnect: let the DISCONNECT go out first */
		if (threaded && c->thread_stop && c->state != MG_S_CLOSING)
			break;
		int st = c->state;
		if (st == MG_S_UP)
			delay = c->reconnect_min;
		if (active(st)) {
			retry_at = -1;
			mgc_unlock(c);
			mgc_loop_once(c, 1000);
			mgc_lock(c);
			continue;
		}
		/* not connected */
		if (c->user_disconnect || !c->auto_reconnect || st == MG_S_NEW) {
			if (!threaded) {
				if (c->user_disconnect)
					rc = MIDGE_OK;
				else if (st == MG_S_NEW)
					rc = MIDGE_ERR_NO_CONN;
				else
					rc = c->connack_rc > 0 ? MIDGE_ERR_CONN_REFUSED :
					     c->connack_rc < 0 ? c->connack_rc : MIDGE_ERR_NO_CONN;
				break;
			}
			nap(c, mgc_cl_now_ms() + 1000);
			continue;
		}
		int64_t now = mgc_cl_now_ms();
		if (retry_at < 0) {
			retry_at = now + (int64_t)delay * 1000;
			mgc_log(c, MIDGE_LOG_INFO, "Client %s reconnecting in %d s", mgc_cid(c), delay);
		}
		if (now < retry_at) {
			nap(c, retry_at);
			continue;
		}
		retry_at = -1;
		delay = delay * 2 > c->reconnect_max ? c->reconnect_max : (delay ? delay * 2 : 1);
		mgc_unlock(c);
		int r = start(c, false, true);
		mgc_lock(c);
		if (r != MIDGE_OK && !active(c->state) && !reconnect_cancelled(c)) {
			mgc_log(c, MIDGE_LOG_ERR, "Client %s reconnect failed: %s", mgc_cid(c), midge_strerror(r));
			mgc_event_push(c, MG_EV_CONNECT_FAIL, r, 0, NULL, 0, NULL);
		}
	}
	release_loop(c);
	mgc_unlock(c);
	return rc;
}

int midge_loop_forever(midge_client *c)
{
	if (!c)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	int own = acquire_loop(c);
	mgc_unlock(c);
	if (own != OWN_TAKEN)
		return MIDGE_ERR_BUSY;
	return forever(c, false);
}

static void *thread_main(void *arg)
{
	forever(arg, true);
	return NULL;
}

int midge_loop_start(midge_client *c)
{
	if (!c)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	if (c->thread_running || c->loop_owner_set) {
		mgc_unlock(c);
		return MIDGE_ERR_BUSY;
	}
	c->thread_stop = false;
	/* Owned by the new thread from the start, so a connect right after loop_start waits for it
	 * instead of racing it for the loop. */
	if (pthread_create(&c->thread, NULL, thread_main, c) != 0) {
		mgc_unlock(c);
		return MIDGE_ERR_ERRNO;
	}
	c->loop_owner_set = true;
	c->loop_owner = c->thread;
	c->thread_running = true;
	mgc_unlock(c);
	return MIDGE_OK;
}

int midge_loop_stop(midge_client *c)
{
	if (!c)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	if (!c->thread_running) {
		mgc_unlock(c);
		return MIDGE_ERR_INVAL;
	}
	if (pthread_equal(c->thread, pthread_self())) {
		mgc_unlock(c);
		return MIDGE_ERR_BUSY;
	}
	c->thread_stop = true;
	c->notify = true;
	mgc_wake(c);
	mgc_unlock(c);
	pthread_join(c->thread, NULL);
	mgc_lock(c);
	c->thread_running = false;
	mgc_unlock(c);
	return MIDGE_OK;
}

/* ---- for other event loops ---- */

int midge_socket(midge_client *c)
{
	if (!c)
		return -1;
	mgc_lock(c);
	int fd = active(c->state) ? c->tr.fd : -1;
	mgc_unlock(c);
	return fd;
}

bool midge_want_write(midge_client *c)
{
	if (!c)
		return false;
	mgc_lock(c);
	bool w = c->state == MG_S_TCP ||
	         (active(c->state) && mgc_want_write(c));
	mgc_unlock(c);
	return w;
}

/* The prologue of the socket-level calls: check the connection and take the loop. Returns
 * MIDGE_OK with the lock held and the loop ours (release_loop when done), or an error with
 * the lock released. */
static int enter_socket_call(midge_client *c)
{
	if (!c)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	if (!active(c->state)) {
		mgc_unlock(c);
		return MIDGE_ERR_NO_CONN;
	}
	if (acquire_loop(c) != OWN_TAKEN) {
		mgc_unlock(c);
		return MIDGE_ERR_BUSY;
	}
	return MIDGE_OK;
}

int midge_loop_read(midge_client *c)
{
	int rc = enter_socket_call(c);
	if (rc)
		return rc;
	int st = c->state;
	mgc_unlock(c);
	rc = st == MG_S_TCP ? MIDGE_OK : mgc_do_read(c);
	mgc_lock(c);
	release_loop(c);
	mgc_unlock(c);
	return rc;
}

int midge_loop_write(midge_client *c)
{
	int rc = enter_socket_call(c);
	if (rc)
		return rc;
	if (c->state == MG_S_TCP) {
		struct pollfd pf = { .fd = c->tr.fd, .events = POLLOUT };
		if (mg_plat_poll(&pf, 1, 0) > 0) {
			rc = mgc_tcp_progress(c);
			if (rc && c->state == MG_S_TCP)
				mgc_conn_close(c, 0, rc, NULL);
		}
	}
	if (rc == MIDGE_OK)
		rc = mgc_do_write(c);
	release_loop(c);
	mgc_unlock(c);
	return rc;
}

int midge_loop_misc(midge_client *c)
{
	int rc = enter_socket_call(c);
	if (rc)
		return rc;
	drain_wake(c);
	rc = mgc_misc(c);
	release_loop(c);
	mgc_unlock(c);
	return rc;
}

/* ---- connect_bind ---- */

/* Resolve bind_address (blocking, like the host name) and keep it for this and every later
 * connect; NULL clears it. */
static int set_bind(midge_client *c, const char *bind_address)
{
	struct addrinfo *ai = NULL;
	char *s = NULL;
	if (bind_address) {
		struct addrinfo hints;
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE;
		int g = getaddrinfo(bind_address, NULL, &hints, &ai);
		if (g)
			return g == EAI_SYSTEM ? MIDGE_ERR_ERRNO : g == EAI_MEMORY ? MIDGE_ERR_NOMEM :
			       MIDGE_ERR_LOOKUP;
		if (!(s = strdup(bind_address))) {
			freeaddrinfo(ai);
			return MIDGE_ERR_NOMEM;
		}
	}
	mgc_lock(c);
	if (active(c->state)) {
		mgc_unlock(c);
		free(s);
		if (ai)
			freeaddrinfo(ai);
		return MIDGE_ERR_BUSY;
	}
	free(c->bind_address);
	if (c->bind_ai)
		freeaddrinfo(c->bind_ai);
	c->bind_address = s;
	c->bind_ai = ai;
	mgc_unlock(c);
	return MIDGE_OK;
}

static int connect_bind(midge_client *c, const char *host, int port, int keepalive,
                        const char *bind_address, bool blocking)
{
	if (!c)
		return MIDGE_ERR_INVAL;
	int rc = check_connect(c, host, port, keepalive, NULL);
	if (rc == MIDGE_OK)
		rc = set_bind(c, bind_address);
	return rc ? rc : connect_common(c, host, port, keepalive, c->clean_session, NULL, blocking);
}

int midge_connect_bind(midge_client *c, const char *host, int port, int keepalive,
                       const char *bind_address)
{
	return connect_bind(c, host, port, keepalive, bind_address, true);
}

int midge_connect_bind_async(midge_client *c, const char *host, int port, int keepalive,
                             const char *bind_address)
{
	return connect_bind(c, host, port, keepalive, bind_address, false);
}
