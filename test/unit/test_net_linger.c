/* test/unit/test_net_linger.c - the lingering close: the peer reads end of stream at once,
 * what it still sends is drained, and each socket ends on the peer's close, the byte bound or
 * the deadline; beyond the set's size a socket is closed at once. */
#include "t.h"

#include "net/linger.h"
#include "net/loop.h"
#include "net/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ours: non-blocking, handed to the set; *peer: the other end, blocking */
static int pair(int *peer)
{
	int sv[2] = { -1, -1 };
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 ||
	    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) != 0)
		t_fail(__FILE__, __LINE__, "socketpair: %s", strerror(errno));
	*peer = sv[1];
	return sv[0];
}

static mg_linger *G;
static void until_empty(mg_loop *l, void *ud)
{
	(void)ud;
	if (mg_linger_count(G) == 0)
		mg_loop_stop(l);
}
static void give_up(mg_loop *l, void *ud)
{
	(void)ud;
	mg_loop_stop(l);
}

/* Run the loop until the set is empty (or 10 s: a failure, not a timing threshold). */
static void run_until_empty(mg_loop *l, mg_linger *g)
{
	G = g;
	long a = mg_loop_timer(l, 1, 1, until_empty, NULL);
	long b = mg_loop_timer(l, 10000, 0, give_up, NULL);
	mg_loop_run(l);
	mg_loop_timer_cancel(l, a);
	mg_loop_timer_cancel(l, b);
	CHECK_EQ_INT(mg_linger_count(g), 0);
}

static void add(mg_linger *g, int fd)
{
	mg_transport t;
	mg_tcp_init(&t, fd);
	mg_linger_add(g, &t);
	CHECK(t.ops == NULL);
}

TEST(drains_until_the_peer_closes)
{
	mg_loop *l = mg_loop_new();
	mg_linger *g = mg_linger_new(l, 4, 10000, 1 << 20);
	REQUIRE(l && g);
	int peer, fd = pair(&peer);
	add(g, fd);
	CHECK_EQ_INT(mg_linger_count(g), 1);
	char buf[8192];
	CHECK_EQ_INT((int)read(peer, buf, sizeof buf), 0); /* our write side is shut: end of stream */
	memset(buf, 'x', sizeof buf);
	for (int i = 0; i < 8; i++) /* 64 KiB: more than the socket buffer, so it must be drained */
		CHECK_EQ_INT((int)write(peer, buf, sizeof buf), (int)sizeof buf);
	close(peer);
	run_until_empty(l, g);
	mg_linger_free(g);
	mg_loop_free(l);
}

TEST(bounded_by_bytes)
{
	mg_loop *l = mg_loop_new();
	mg_linger *g = mg_linger_new(l, 4, 10000, 1000);
	REQUIRE(l && g);
	int peer, fd = pair(&peer);
	add(g, fd);
	char buf[4096];
	memset(buf, 'x', sizeof buf);
	CHECK_EQ_INT((int)write(peer, buf, sizeof buf), (int)sizeof buf); /* and it stays open */
	run_until_empty(l, g);
	close(peer);
	mg_linger_free(g);
	mg_loop_free(l);
}

TEST(bounded_by_time)
{
	mg_loop *l = mg_loop_new();
	mg_linger *g = mg_linger_new(l, 4, 20, 1 << 20);
	REQUIRE(l && g);
	int peer, fd = pair(&peer);
	add(g, fd); /* the peer neither sends nor closes */
	run_until_empty(l, g);
	/* closed by now: the peer's next write fails */
	CHECK(send(peer, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE);
	close(peer);
	mg_linger_free(g);
	mg_loop_free(l);
}

TEST(full_set_closes_at_once)
{
	mg_loop *l = mg_loop_new();
	mg_linger *g = mg_linger_new(l, 1, 10000, 1 << 20);
	REQUIRE(l && g);
	int p1, f1 = pair(&p1);
	int p2, f2 = pair(&p2);
	add(g, f1);
	add(g, f2);
	CHECK_EQ_INT(mg_linger_count(g), 1);
	CHECK_EQ_INT((int)send(p1, "x", 1, MSG_NOSIGNAL), 1); /* the first lingers */
	CHECK(send(p2, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE); /* the second is gone */
	mg_linger_free(g); /* closes the first */
	CHECK(send(p1, "x", 1, MSG_NOSIGNAL) < 0);
	close(p1);
	close(p2);
	mg_loop_free(l);
}
