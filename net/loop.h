/*
 * net/loop.h - a small epoll event loop in redis ae's spirit: file events (fd, mask,
 * callback, void *), one-shot or periodic timers, a hook that runs once per loop turn
 * before the loop sleeps (where output is flushed with writev), and an eventfd wake-up so
 * other threads can nudge a loop whose queue they filled.
 *
 * One loop belongs to one thread. Only mg_loop_wake and mg_loop_stop may be called from
 * another thread. Errors are negative errno values.
 */
#ifndef MG_NET_LOOP_H
#define MG_NET_LOOP_H

#include <stdbool.h>
#include <stdint.h>

/* MG_EV_EDGE, only in the mask given to mg_loop_watch: edge-triggered (EPOLLET). Then a
 * callback that stops reading before the fd said EAGAIN, or before a read came back short
 * (a stream socket: nothing was left), must call mg_loop_again, and one that stops watching
 * for reading must take MG_EV_READ out of the mask (mg_loop_watch), so that putting it back
 * re-checks the fd. Callbacks never see the bit. */
enum { MG_EV_READ = 1, MG_EV_WRITE = 2, MG_EV_EDGE = 4 };

typedef struct mg_loop mg_loop;
typedef void (*mg_io_fn)(mg_loop *l, int fd, void *ud, int mask);
typedef void (*mg_loop_fn)(mg_loop *l, void *ud);

mg_loop *mg_loop_new(void); /* NULL on failure */
void mg_loop_free(mg_loop *l);

/* Watch fd for mask (MG_EV_READ|MG_EV_WRITE); calling it again changes the mask (0 keeps
 * the fd registered with no events). exclusive: EPOLLEXCLUSIVE, for a listening socket that
 * several loops share so one connection wakes one loop. */
int mg_loop_watch(mg_loop *l, int fd, int mask, mg_io_fn fn, void *ud, bool exclusive);
int mg_loop_unwatch(mg_loop *l, int fd);
/* An edge-triggered fd that may still be readable: its callback runs again with MG_EV_READ
 * next turn (once, in that turn's wait-free poll) while it is watched for reading, as level
 * triggering would have it. */
void mg_loop_again(mg_loop *l, int fd);
/* An edge-triggered fd whose callback stopped writing before a write said EAGAIN (a round
 * limit): epoll looks at it again (EPOLL_CTL_MOD with the same events), so that a socket that
 * still takes data reports MG_EV_WRITE in the next wait instead of waiting for an edge that
 * will not come (no EAGAIN, so the kernel will not signal write space). */
int mg_loop_rearm(mg_loop *l, int fd);

/* Millisecond monotonic clock, read once per loop turn (cheap to call). */
int64_t mg_loop_now_ms(const mg_loop *l);
int64_t mg_now_ms(void);

/* A timer calls fn every period_ms (0 = once) starting after first_ms. Returns an id > 0.
 * Timers are kept in a short unsorted list: the broker uses a handful, so O(n) is fine. */
long mg_loop_timer(mg_loop *l, int64_t first_ms, int64_t period_ms, mg_loop_fn fn, void *ud);
void mg_loop_timer_cancel(mg_loop *l, long id);

/* fn runs once per loop turn after events were handled, before sleeping. */
void mg_loop_before_sleep(mg_loop *l, mg_loop_fn fn, void *ud);
/* Called from the before-sleep callback: the coming wait lasts ms at most (0: a poll), for
 * work that must go on soon even when no event comes. */
void mg_loop_sleep_at_most(mg_loop *l, int ms);
/* fn runs in the loop's thread after mg_loop_wake was called (possibly merged). */
void mg_loop_on_wake(mg_loop *l, mg_loop_fn fn, void *ud);
void mg_loop_wake(mg_loop *l); /* any thread */
/* The wake-up eventfd is edge-triggered and not read per wake-up; its counter is read (reset)
 * on every this-many-th wake-up taken. In the header for the unit test. */
#define MG_LOOP_WAKE_READ_EVERY 1024

int mg_loop_run(mg_loop *l);    /* until mg_loop_stop */
/* One turn: the before-sleep hook, wait at most timeout_ms (-1: until the next timer) for
 * events, handle them, run due timers. Returns the number of events, or -errno. For a
 * program that drives a loop itself, one turn at a time (the broker fuzzer). */
int mg_loop_run_once(mg_loop *l, int timeout_ms);
/* Nanoseconds spent handling events, and turns run, since the loop was made (any thread; a
 * turn late at most). For /metrics. */
void mg_loop_busy(const mg_loop *l, uint64_t *busy_ns, uint64_t *turns);
void mg_loop_stop(mg_loop *l);  /* any thread */

#endif
