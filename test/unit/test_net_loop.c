/* test/unit/test_net_loop.c - the epoll loop: file events, timers, cross-thread wake-up. */
#include "t.h"

#include "net/listen.h"
#include "net/loop.h"

#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <errno.h>
#include <unistd.h>

static int reads;

static void on_read(mg_loop *l, int fd, void *ud, int mask)
{
	char buf[16];
	CHECK(mask & MG_EV_READ);
	ssize_t n = read(fd, buf, sizeof buf);
	CHECK(n > 0);
	reads++;
	if (reads == 2)
		mg_loop_stop(l);
	(void)ud;
}

TEST(file_event_fires_per_write)
{
	mg_loop *l = mg_loop_new();
	REQUIRE(l);
	int p[2];
	REQUIRE(pipe(p) == 0);
	CHECK_EQ_INT(mg_loop_watch(l, p[0], MG_EV_READ, on_read, NULL, false), 0);
	CHECK(write(p[1], "a", 1) == 1);
	CHECK(write(p[1], "b", 1) == 1); /* may be read in one go: the next write is after */
	reads = 1;
	CHECK_EQ_INT(mg_loop_run(l), 0);
	CHECK_EQ_INT(reads, 2);
	close(p[0]);
	close(p[1]);
	mg_loop_free(l);
}

static int ticks;
static void on_tick(mg_loop *l, void *ud)
{
	if (++ticks == 3)
		mg_loop_stop(l);
	(void)ud;
}

TEST(periodic_timer_runs_and_stops)
{
	mg_loop *l = mg_loop_new();
	REQUIRE(l);
	int64_t t0 = mg_now_ms();
	CHECK(mg_loop_timer(l, 10, 10, on_tick, NULL) > 0);
	mg_loop_run(l);
	CHECK_EQ_INT(ticks, 3);
	CHECK(mg_now_ms() - t0 >= 25);
	mg_loop_free(l);
}

static atomic_int woke;
static void on_wake(mg_loop *l, void *ud)
{
	atomic_fetch_add(&woke, 1);
	mg_loop_stop(l);
	(void)ud;
}

static void *waker(void *arg)
{
	usleep(20000);
	mg_loop_wake(arg);
	return NULL;
}

TEST(wake_from_another_thread)
{
	mg_loop *l = mg_loop_new();
	REQUIRE(l);
	mg_loop_on_wake(l, on_wake, NULL);
	pthread_t th;
	pthread_create(&th, NULL, waker, l);
	mg_loop_run(l);
	pthread_join(th, NULL);
	CHECK_EQ_INT(atomic_load(&woke), 1);
	mg_loop_free(l);
}

static int wakes_seen;
static void count_wake(mg_loop *l, void *ud)
{
	wakes_seen++;
	(void)l;
	(void)ud;
}

/* The wake-up eventfd is edge-triggered and read only every MG_LOOP_WAKE_READ_EVERY-th
 * wake-up: each wake still comes exactly once (not lost, not repeated on later turns),
 * also across the turns where the counter is read and reset. */
TEST(each_wake_once_across_counter_resets)
{
	mg_loop *l = mg_loop_new();
	REQUIRE(l);
	mg_loop_on_wake(l, count_wake, NULL);
	int bad = 0;
	for (int i = 0; i < 3 * MG_LOOP_WAKE_READ_EVERY + 7 && !bad; i++) {
		int before = wakes_seen;
		mg_loop_wake(l);
		if (i % 3 == 0)
			mg_loop_wake(l); /* two before one turn: merged into one wake-up */
		int n = mg_loop_run_once(l, 10000); /* a failure, not a timing threshold */
		if (n != 1 || wakes_seen != before + 1)
			bad = i + 1;
		if (mg_loop_run_once(l, 0) != 0 || wakes_seen != before + 1) /* nothing left over */
			bad = i + 1;
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(wakes_seen, 3 * MG_LOOP_WAKE_READ_EVERY + 7);
	mg_loop_free(l);
}

/* Edge-triggered: a reader that takes 10 bytes per call and asks again (mg_loop_again)
 * while its reads come back full gets everything the peer wrote once, turn by turn, without
 * another write; the callback never sees MG_EV_EDGE. */
static int edge_got, edge_calls, edge_bad_mask;
static bool edge_ask_again = true;
static void edge_read(mg_loop *l, int fd, void *ud, int mask)
{
	char buf[10];
	edge_calls++;
	if (mask & ~MG_EV_READ)
		edge_bad_mask++;
	ssize_t n = read(fd, buf, sizeof buf);
	if (n > 0)
		edge_got += (int)n;
	if (n == (ssize_t)sizeof buf && edge_ask_again)
		mg_loop_again(l, fd);
	(void)ud;
}

TEST(edge_triggered_reader_asks_again)
{
	mg_loop *l = mg_loop_new();
	REQUIRE(l);
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	char data[95];
	memset(data, 'x', sizeof data);
	REQUIRE(write(sv[1], data, sizeof data) == (ssize_t)sizeof data);
	CHECK_EQ_INT(mg_loop_watch(l, sv[0], MG_EV_READ | MG_EV_EDGE, edge_read, NULL, false), 0);
	for (int i = 0; i < 20 && edge_got < 95; i++)
		mg_loop_run_once(l, 0); /* one read per turn, no wait: no timing involved */
	CHECK_EQ_INT(edge_got, 95);
	CHECK_EQ_INT(edge_calls, 10); /* nine full reads and the short one: none wasted */
	CHECK_EQ_INT(edge_bad_mask, 0);
	CHECK_EQ_INT(mg_loop_run_once(l, 0), 0); /* drained: no event, nothing asked again */
	CHECK_EQ_INT(edge_calls, 10);

	/* Not asking again: the rest waits for the next edge (what do_read must never do). */
	edge_got = edge_calls = 0;
	edge_ask_again = false;
	REQUIRE(write(sv[1], data, 25) == 25);
	CHECK_EQ_INT(mg_loop_run_once(l, 10000), 1);
	CHECK_EQ_INT(mg_loop_run_once(l, 0), 0);
	CHECK_EQ_INT(edge_got, 10);
	/* Taking MG_EV_READ out and putting it back re-checks the fd (a paused connection). */
	CHECK_EQ_INT(mg_loop_watch(l, sv[0], 0, edge_read, NULL, false), 0);
	CHECK_EQ_INT(mg_loop_watch(l, sv[0], MG_EV_READ | MG_EV_EDGE, edge_read, NULL, false), 0);
	CHECK_EQ_INT(mg_loop_run_once(l, 10000), 1);
	CHECK_EQ_INT(edge_got, 20);

	/* Asked again, then unwatched: the request goes with it. */
	edge_ask_again = true;
	REQUIRE(write(sv[1], data, 20) == 20);
	CHECK_EQ_INT(mg_loop_run_once(l, 10000), 1); /* reads 10, asks again */
	CHECK_EQ_INT(edge_got, 30);
	CHECK_EQ_INT(mg_loop_unwatch(l, sv[0]), 0);
	int calls = edge_calls;
	CHECK_EQ_INT(mg_loop_run_once(l, 0), 0);
	CHECK_EQ_INT(edge_calls, calls);
	close(sv[0]);
	close(sv[1]);
	mg_loop_free(l);
}

static int rearm_writes;
static void rearm_write(mg_loop *l, int fd, void *ud, int mask)
{
	(void)l;
	(void)fd;
	(void)ud;
	if (mask & MG_EV_WRITE)
		rearm_writes++;
}

/* An edge-triggered writer that stopped before EAGAIN gets no second edge on its own;
 * mg_loop_rearm makes epoll report the still-writable fd again (mg_conn_flush's round limit). */
TEST(edge_triggered_writer_rearmed)
{
	mg_loop *l = mg_loop_new();
	REQUIRE(l);
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	CHECK_EQ_INT(mg_loop_watch(l, sv[0], MG_EV_WRITE | MG_EV_EDGE, rearm_write, NULL, false), 0);
	CHECK_EQ_INT(mg_loop_run_once(l, 10000), 1); /* the first edge: writable */
	CHECK_EQ_INT(rearm_writes, 1);
	REQUIRE(write(sv[0], "x", 1) == 1); /* wrote without EAGAIN: no new edge */
	CHECK_EQ_INT(mg_loop_run_once(l, 0), 0);
	CHECK_EQ_INT(rearm_writes, 1);
	CHECK_EQ_INT(mg_loop_rearm(l, sv[0]), 0);
	CHECK_EQ_INT(mg_loop_run_once(l, 0), 1);
	CHECK_EQ_INT(rearm_writes, 2);
	CHECK_EQ_INT(mg_loop_run_once(l, 0), 0); /* once per rearm */
	CHECK_EQ_INT(mg_loop_rearm(l, 1000000), -ENOENT);
	close(sv[0]);
	close(sv[1]);
	mg_loop_free(l);
}

TEST(listen_ephemeral_and_accept)
{
	mg_listen_sock ls[4];
	int fam = 0;
	int n = mg_listen_tcp("127.0.0.1", 0, 16, ls, 4, &fam);
	REQUIRE(n == 1);
	CHECK(ls[0].port != 0);
	char peer[80];
	CHECK_EQ_INT(mg_accept(ls[0].fd, peer, sizeof peer), -EAGAIN);
	/* the same port again is in use */
	mg_listen_sock ls2[4];
	CHECK_EQ_INT(mg_listen_tcp("127.0.0.1", ls[0].port, 16, ls2, 4, &fam), -EADDRINUSE);
	close(ls[0].fd);
}
