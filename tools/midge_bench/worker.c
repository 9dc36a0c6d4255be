/*
 * tools/midge_bench/worker.c - one generator thread: an epoll loop over its slice of the
 * connections. Each turn it opens connections (setup), lets each of its publishers write
 * what the window or the pacing allows, waits for readiness, and handles what arrived.
 *
 * Closed loop: a publisher may have `window` messages in flight end to end (sent but not
 * yet delivered to every subscriber). Deliveries are counted by the receiving thread; when
 * a publisher of another thread waits on its window, the receiver wakes that thread through
 * its eventfd once per loop turn, not once per message.
 * Open loop: message k of a publisher is due at t_start + phase + k * interval and carries
 * that due time, so time spent waiting in the generator or in a full socket shows up as
 * latency instead of silently lowering the offered rate.
 */
#include "tools/midge_bench/bench.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64                  /* messages per publisher per turn: fairness between them */
#define OUT_HIGH (256 * 1024)     /* stop filling a publisher's buffer above this */
#define MAX_WAIT_NS 100000000ull  /* wake at least every 100 ms: keepalive, phase changes */

void mb_worker_kick(mb_worker *w)
{
	uint64_t one = 1;
	ssize_t r = write(w->evfd, &one, sizeof one);
	(void)r; /* EAGAIN means a wake-up is already pending */
}

/* Closed loop: may p send one more message now? */
static bool window_open(const mb_pub *p, const mb_opts *o)
{
	uint64_t out = (uint64_t)p->seq * p->fan;
	uint64_t done = atomic_load(&p->delivered) + p->forgiven;
	return out < done + (uint64_t)o->window * p->fan;
}

/* Closed loop, window full: sleep until a receiver wakes us, or after `stall` seconds
 * write the missing deliveries off (a QoS 0 message the broker dropped would otherwise
 * hold the window shut for ever; the count is reported). Returns true to send anyway. */
static bool window_wait(mb_pub *p, const mb_opts *o, uint64_t now, uint64_t *next)
{
	if (!p->blocked_since)
		p->blocked_since = now;
	uint64_t limit = p->blocked_since + (uint64_t)(o->stall * 1e9);
	if (now >= limit) {
		p->forgiven = (uint64_t)p->seq * p->fan - atomic_load(&p->delivered);
		p->w->st.stalls++;
		p->blocked_since = 0;
		return true;
	}
	atomic_store(&p->waiting, 1);
	if (window_open(p, o)) { /* a delivery raced with us setting the flag */
		atomic_store(&p->waiting, 0);
		p->blocked_since = 0;
		return true;
	}
	if (limit < *next)
		*next = limit;
	return false;
}

/* Let every publisher of this worker write what it may; returns when one is next due. */
static uint64_t service_pubs(mb_worker *w, uint64_t now)
{
	mb_run *g = mb_g;
	const mb_opts *o = &g->o;
	uint64_t next = UINT64_MAX;
	if (now >= g->t_end)
		return next;
	for (int i = 0; i < w->npubs; i++) {
		mb_pub *p = w->pubs[i];
		mb_conn *c = p->c;
		if (c->state != CS_READY || c->filler || mb_conn_pending(c) > OUT_HIGH)
			continue; /* EPOLLOUT brings us back */
		uint32_t cap = (uint32_t)o->inflight;
		if (cap > c->recv_max)
			cap = c->recv_max;
		int k = 0;
		while (k < BATCH) {
			if (o->qos && atomic_load_explicit(&p->unacked, memory_order_relaxed) >= cap)
				break; /* acknowledgements arrive on this thread and bring us back */
			uint64_t stamp;
			if (o->rate > 0) {
				if (p->next_due > now) {
					if (p->next_due < next)
						next = p->next_due;
					break;
				}
				if (p->next_due >= g->t_end)
					break;
				stamp = p->next_due;
				p->next_due += p->interval;
			} else {
				if (!window_open(p, o) && !window_wait(p, o, now, &next))
					break;
				if (p->waiting)
					atomic_store(&p->waiting, 0);
				p->blocked_since = 0;
				stamp = now;
			}
			if (mb_conn_publish(c, stamp) < 0) {
				fprintf(stderr, "midge_bench: cannot encode a PUBLISH of %u bytes\n", o->size);
				atomic_store(&g->phase, PH_STOP);
				return next;
			}
			w->st.sent++;
			if (stamp >= g->t_warm && stamp < g->t_end) {
				w->st.sent_win++;
				if (o->rate > 0) /* how late the generator itself was */
					mb_hist_add(&w->st.lag, now - stamp);
			}
			k++;
			if (c->filler || mb_conn_pending(c) > OUT_HIGH)
				break;
		}
		if (k == BATCH)
			next = now; /* more to send: poll, do not sleep */
		if (k && mb_conn_flush(c) < 0)
			mb_conn_fail(c, "write failed");
	}
	return next;
}

static void setup_more(mb_worker *w)
{
	int limit = mb_g->o.connect_conc / mb_g->o.threads;
	if (limit < 1)
		limit = 1;
	while (w->pending < limit && w->next_start < w->nconns) {
		mb_conn *c = w->conns[w->next_start++];
		int e = mb_conn_start(c);
		if (e < 0) {
			static _Atomic int reported;
			if (atomic_fetch_add(&reported, 1) < 5)
				fprintf(stderr, "midge_bench: connect %d: %s\n", c->idx, strerror(-e));
			w->st.connect_fail++;
			atomic_fetch_add(&mb_g->failed, 1);
			c->state = CS_CLOSED;
			continue;
		}
		w->pending++;
	}
}

/* Keepalive: a connection quiet for half its keepalive sends PINGREQ. */
static void keepalive(mb_worker *w, uint64_t now)
{
	uint64_t half = (uint64_t)mb_g->o.keepalive * 500000000ull;
	if (!half)
		return;
	for (int i = 0; i < w->nconns; i++) {
		mb_conn *c = w->conns[i];
		/* last_tx may be later than `now`, taken at the top of this turn */
		if (c->state == CS_READY && now > c->last_tx && now - c->last_tx > half)
			mb_conn_ping(c);
	}
}

void *mb_worker_main(void *arg)
{
	mb_worker *w = arg;
	mb_run *g = mb_g;
	struct epoll_event ev[512];
	uint64_t next_ka = mb_now() + 1000000000ull;
	for (;;) {
		int phase = atomic_load(&g->phase);
		if (phase == PH_STOP)
			break;
		uint64_t now = mb_now();
		uint64_t due = now + MAX_WAIT_NS;
		if (phase == PH_SETUP)
			setup_more(w);
		if (phase == PH_RUN) {
			uint64_t n = service_pubs(w, now);
			if (n < due)
				due = n;
			if (now < g->t_end && g->t_end < due)
				due = g->t_end;
		}
		if (now >= next_ka) {
			keepalive(w, now);
			next_ka = now + 1000000000ull;
		}
		uint64_t wait = due > now ? due - now : 0;
		struct timespec ts = {(time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull)};
		int n = epoll_pwait2(w->ep, ev, 512, &ts, NULL);
		if (n < 0 && errno != EINTR) {
			perror("midge_bench: epoll_pwait2");
			break;
		}
		for (int i = 0; i < n; i++) {
			if (!ev[i].data.ptr) {
				uint64_t v;
				ssize_t r = read(w->evfd, &v, sizeof v);
				(void)r;
				continue;
			}
			mb_conn_on_event(ev[i].data.ptr, ev[i].events);
		}
		for (int t = 0; t < g->o.threads; t++) {
			if (w->wake[t]) {
				w->wake[t] = 0;
				mb_worker_kick(&g->w[t]);
			}
		}
	}
	for (int i = 0; i < w->nconns; i++)
		mb_conn_disconnect(w->conns[i]);
	return NULL;
}
