/* net/loop.c - epoll backend of net/loop.h. */
#include "net/loop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

typedef struct io_ev {
	mg_io_fn fn;
	void *ud;
	int mask;
	bool used;
	uint8_t again; /* mg_loop_again: AGAIN_NEXT on the list, AGAIN_NOW on this turn's */
} io_ev;

enum { AGAIN_NO, AGAIN_NEXT, AGAIN_NOW };

typedef struct timer {
	long id;
	int64_t when, period;
	mg_loop_fn fn;
	void *ud;
} timer;

struct mg_loop {
	int ep, wakefd;
	io_ev *ev; /* indexed by fd */
	int nev;
	timer *t;
	int nt, tcap;
	int *again, nagain, againcap; /* fds for mg_loop_again, the next turn's */
	int *again_run, againrun_cap; /* the list being run (swapped with again) */
	long next_id;
	int64_t now;
	mg_loop_fn before, onwake;
	void *before_ud, *onwake_ud;
	int max_wait; /* mg_loop_sleep_at_most: this turn's wait, at most (ms); -1 none */
	unsigned wakes; /* wake-ups taken since the eventfd's counter was last read */
	atomic_bool stop;
	/* Time spent handling events (from epoll_wait's return to the end of the turn) and turns
	 * run, for /metrics (broker/metrics.c). Written by the loop's own thread only (a relaxed
	 * load and store, no locked instruction); any thread may read them, a turn late. */
	atomic_uint_fast64_t busy_ns, turns;
};

int64_t mg_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mg_loop_now_ms(const mg_loop *l)
{
	return l->now;
}

static int grow_ev(mg_loop *l, int fd)
{
	if (fd < l->nev)
		return 0;
	int n = l->nev ? l->nev : 64;
	while (n <= fd)
		n *= 2;
	io_ev *e = realloc(l->ev, (size_t)n * sizeof *e);
	if (!e)
		return -ENOMEM;
	memset(e + l->nev, 0, (size_t)(n - l->nev) * sizeof *e);
	l->ev = e;
	l->nev = n;
	return 0;
}

mg_loop *mg_loop_new(void)
{
	mg_loop *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->max_wait = -1;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->ep < 0 || l->wakefd < 0)
		goto fail;
	/* Edge-triggered: every write(2) to the eventfd queues one event even while its counter
	 * is already non-zero, so a wake-up needs no read(2) to re-arm it (one system call less
	 * per hand-off between workers at low rates, ~1.3 us on the benchmark VM). The counter
	 * is read now and then so that it never nears its limit, where a write would fail
	 * (EAGAIN) and the wake-up be lost. */
	struct epoll_event e = { .events = EPOLLIN | EPOLLET, .data.fd = l->wakefd };
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wakefd, &e) < 0)
		goto fail;
	l->now = mg_now_ms();
	return l;
fail:
	if (l->ep >= 0)
		close(l->ep);
	if (l->wakefd >= 0)
		close(l->wakefd);
	free(l);
	return NULL;
}

void mg_loop_free(mg_loop *l)
{
	if (!l)
		return;
	close(l->ep);
	close(l->wakefd);
	free(l->ev);
	free(l->t);
	free(l->again);
	free(l->again_run);
	free(l);
}

int mg_loop_watch(mg_loop *l, int fd, int mask, mg_io_fn fn, void *ud, bool exclusive)
{
	if (fd < 0)
		return -EBADF;
	int r = grow_ev(l, fd);
	if (r < 0)
		return r;
	io_ev *ev = &l->ev[fd];
	struct epoll_event e = { .data.fd = fd };
	if (mask & MG_EV_READ)
		e.events |= EPOLLIN;
	if (mask & MG_EV_WRITE)
		e.events |= EPOLLOUT;
	if (mask & MG_EV_EDGE)
		e.events |= EPOLLET;
	if (exclusive)
		e.events |= EPOLLEXCLUSIVE;
	if (ev->used && ev->mask == mask) {
		ev->fn = fn;
		ev->ud = ud;
		return 0;
	}
	if (epoll_ctl(l->ep, ev->used ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &e) < 0)
		return -errno;
	if (!ev->used)
		ev->again = AGAIN_NO; /* a new fd of that number: not the old one's request */
	ev->used = true;
	ev->mask = mask;
	ev->fn = fn;
	ev->ud = ud;
	return 0;
}

int mg_loop_rearm(mg_loop *l, int fd)
{
	if (fd < 0 || fd >= l->nev || !l->ev[fd].used)
		return -ENOENT;
	int mask = l->ev[fd].mask;
	struct epoll_event e = { .data.fd = fd };
	e.events = (mask & MG_EV_READ ? EPOLLIN : 0) | (mask & MG_EV_WRITE ? EPOLLOUT : 0) |
	           (mask & MG_EV_EDGE ? EPOLLET : 0);
	return epoll_ctl(l->ep, EPOLL_CTL_MOD, fd, &e) < 0 ? -errno : 0;
}

int mg_loop_unwatch(mg_loop *l, int fd)
{
	if (fd < 0 || fd >= l->nev || !l->ev[fd].used)
		return -ENOENT;
	l->ev[fd].used = false;
	l->ev[fd].again = AGAIN_NO;
	epoll_ctl(l->ep, EPOLL_CTL_DEL, fd, NULL);
	return 0;
}

void mg_loop_again(mg_loop *l, int fd)
{
	if (fd < 0 || fd >= l->nev || !l->ev[fd].used || l->ev[fd].again == AGAIN_NEXT)
		return; /* (AGAIN_NOW: on this turn's list, which now skips it: next turn instead) */
	if (l->nagain == l->againcap) {
		int n = l->againcap ? l->againcap * 2 : 64;
		int *a = realloc(l->again, (size_t)n * sizeof *a);
		if (!a)
			return; /* out of memory: the fd waits for its next edge */
		l->again = a;
		l->againcap = n;
	}
	l->again[l->nagain++] = fd;
	l->ev[fd].again = AGAIN_NEXT;
}

/* The fds mg_loop_again named up to now become this turn's list (run after the turn's
 * events, by run_again); those named from here on wait for the next turn, as they would
 * with level triggering. Returns how many. */
static int take_again(mg_loop *l)
{
	int n = l->nagain;
	if (!n)
		return 0;
	if (l->againrun_cap < l->againcap) { /* swap in a list as large, so that again never fails */
		int *a = realloc(l->again_run, (size_t)l->againcap * sizeof *a);
		if (!a)
			return 0; /* out of memory: they wait for a turn when it works */
		l->again_run = a;
		l->againrun_cap = l->againcap;
	}
	int *run = l->again;
	int cap = l->againcap;
	l->again = l->again_run;
	l->againcap = l->againrun_cap;
	l->again_run = run;
	l->againrun_cap = cap;
	l->nagain = 0;
	for (int i = 0; i < n; i++)
		l->ev[run[i]].again = AGAIN_NOW; /* listed fds are watched (unwatch clears them) */
	return n;
}

/* This turn's list: the fds still watched for reading and not already read for an event. */
static void run_again(mg_loop *l, int n)
{
	for (int i = 0; i < n; i++) {
		int fd = l->again_run[i];
		io_ev *ev = &l->ev[fd];
		if (!ev->used || ev->again != AGAIN_NOW)
			continue; /* unwatched, read for an event this turn, or asked for the next */
		ev->again = AGAIN_NO;
		if (ev->mask & MG_EV_READ)
			ev->fn(l, fd, ev->ud, MG_EV_READ);
	}
}

long mg_loop_timer(mg_loop *l, int64_t first_ms, int64_t period_ms, mg_loop_fn fn, void *ud)
{
	if (l->nt == l->tcap) {
		int n = l->tcap ? l->tcap * 2 : 8;
		timer *t = realloc(l->t, (size_t)n * sizeof *t);
		if (!t)
			return -ENOMEM;
		l->t = t;
		l->tcap = n;
	}
	timer *t = &l->t[l->nt++];
	t->id = ++l->next_id;
	t->when = mg_now_ms() + first_ms;
	t->period = period_ms;
	t->fn = fn;
	t->ud = ud;
	return t->id;
}

void mg_loop_timer_cancel(mg_loop *l, long id)
{
	for (int i = 0; i < l->nt; i++)
		if (l->t[i].id == id) {
			l->t[i] = l->t[--l->nt];
			return;
		}
}

void mg_loop_before_sleep(mg_loop *l, mg_loop_fn fn, void *ud)
{
	l->before = fn;
	l->before_ud = ud;
}

void mg_loop_sleep_at_most(mg_loop *l, int ms)
{
	l->max_wait = ms;
}

void mg_loop_on_wake(mg_loop *l, mg_loop_fn fn, void *ud)
{
	l->onwake = fn;
	l->onwake_ud = ud;
}

void mg_loop_wake(mg_loop *l)
{
	uint64_t one = 1;
	ssize_t r = write(l->wakefd, &one, sizeof one);
	(void)r; /* EAGAIN only at the counter's limit, which the loop's periodic read prevents */
}

void mg_loop_stop(mg_loop *l)
{
	atomic_store(&l->stop, true);
	mg_loop_wake(l);
}

static void run_timers(mg_loop *l)
{
	/* A timer callback may add or cancel timers: walk by id, re-finding the index. */
	for (int i = 0; i < l->nt; i++) {
		if (l->t[i].when > l->now)
			continue;
		timer t = l->t[i];
		if (t.period > 0)
			l->t[i].when = l->now + t.period;
		else
			l->t[i] = l->t[--l->nt];
		t.fn(l, t.ud);
		i = -1; /* the list may have changed: rescan; due timers were rescheduled */
	}
}

static int next_timeout(mg_loop *l)
{
	int64_t best = -1;
	for (int i = 0; i < l->nt; i++) {
		int64_t d = l->t[i].when - l->now;
		if (d < 0)
			d = 0;
		if (best < 0 || d < best)
			best = d;
	}
	return best > 60000 || best < 0 ? 60000 : (int)best;
}

int mg_loop_run_once(mg_loop *l, int timeout_ms)
{
	struct epoll_event evs[256];
	if (l->before)
		l->before(l, l->before_ud);
	int t = next_timeout(l);
	if (l->max_wait >= 0 && l->max_wait < t)
		t = l->max_wait;
	l->max_wait = -1;
	int nagain = take_again(l);
	if (nagain || l->nagain)
		t = 0; /* an fd is still readable: poll, do not sleep */
	int n = epoll_wait(l->ep, evs, 256, timeout_ms >= 0 && timeout_ms < t ? timeout_ms : t);
	/* One clock read gives both the loop's time and the start of the busy span (two vDSO
	 * clock reads per turn in all, ~40 ns). */
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	l->now = (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000;
	if (n < 0) {
		int err = errno;
		run_again(l, nagain); /* taken off the list: never left behind */
		return err == EINTR ? 0 : -err;
	}
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;
		if (fd == l->wakefd) {
			if (++l->wakes >= MG_LOOP_WAKE_READ_EVERY) {
				uint64_t v;
				ssize_t r = read(l->wakefd, &v, sizeof v);
				(void)r;
				l->wakes = 0;
			}
			if (l->onwake)
				l->onwake(l, l->onwake_ud);
			continue;
		}
		if (fd >= l->nev || !l->ev[fd].used)
			continue; /* unwatched by an earlier callback in this batch */
		int mask = 0;
		if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			mask |= MG_EV_READ;
		if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			mask |= MG_EV_WRITE;
		io_ev *ev = &l->ev[fd];
		int want = ev->mask & ~MG_EV_EDGE;
		mask &= want ? want : MG_EV_READ;
		if (mask & MG_EV_READ)
			ev->again = AGAIN_NO; /* read now: it asks again if it stops short once more */
		ev->fn(l, fd, ev->ud, mask);
	}
	run_again(l, nagain);
	run_timers(l);
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int64_t d = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
	atomic_store_explicit(&l->busy_ns, atomic_load_explicit(&l->busy_ns, memory_order_relaxed) +
	                      (uint64_t)(d > 0 ? d : 0), memory_order_relaxed);
	atomic_store_explicit(&l->turns, atomic_load_explicit(&l->turns, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
	return n;
}

void mg_loop_busy(const mg_loop *l, uint64_t *busy_ns, uint64_t *turns)
{
	*busy_ns = atomic_load_explicit(&((mg_loop *)l)->busy_ns, memory_order_relaxed);
	*turns = atomic_load_explicit(&((mg_loop *)l)->turns, memory_order_relaxed);
}

int mg_loop_run(mg_loop *l)
{
	while (!atomic_load(&l->stop)) {
		int r = mg_loop_run_once(l, -1);
		if (r < 0)
			return r;
	}
	return 0;
}
