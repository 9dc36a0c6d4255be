/* test/unit/test_broker_resolve.c - broker/resolve.h: literal addresses without a lookup, a
 * name found by the helper thread, and a lookup dropped while it waits on DNS (a DNS server of
 * the test's own on 127.0.0.1, MIDGE_TEST_RESOLVER): the helper ends on its own and touches
 * nothing freed (ASan fails the test on a use after free). Whether it then frees the lookup
 * LeakSanitizer cannot tell here: ASan's record of the ended thread still holds its argument. */
#include "t.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "broker/resolve.h"

static uint16_t port_of(const struct addrinfo *a)
{
	if (a->ai_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)a->ai_addr)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)a->ai_addr)->sin6_port);
}

/* The threads of this process (the test's child; TSan adds one of its own). */
static int threads_now(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void *noop(void *arg)
{
	return arg;
}

/* The count before a helper starts. One thread made and joined first: TSan starts a thread of
 * its own with the first pthread_create, and it stays. */
static int base_threads(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, noop, NULL) == 0)
		pthread_join(t, NULL);
	return threads_now();
}

/* Back to n threads: every helper has ended. */
static int wait_threads(int n)
{
	for (int i = 0; i < 20000 && threads_now() != n; i++)
		usleep(1000); /* bounded: 20 s; the helper ends when getaddrinfo does */
	return threads_now();
}

TEST(literal_addresses_need_no_lookup)
{
	struct addrinfo *ai, *bai;
	REQUIRE(mg_resolve_numeric("127.0.0.1", 1884, NULL, &ai, &bai) == 0);
	CHECK(ai && !bai && ai->ai_family == AF_INET && port_of(ai) == 1884);
	freeaddrinfo(ai);
	REQUIRE(mg_resolve_numeric("::1", 1883, "::1", &ai, &bai) == 0);
	CHECK(ai && bai && ai->ai_family == AF_INET6 && port_of(ai) == 1883);
	freeaddrinfo(ai);
	freeaddrinfo(bai);
	CHECK(mg_resolve_numeric("localhost", 1883, NULL, &ai, &bai) == -1);
	CHECK(!ai && !bai);
	CHECK(mg_resolve_numeric("127.0.0.1", 1883, "localhost", &ai, &bai) == -1); /* bind: a name */
	CHECK(!ai && !bai);
	CHECK_NO_LEAKS();
}

TEST(a_name_is_found_by_the_helper)
{
	int base = base_threads();
	mg_resolve *r = mg_resolve_start("localhost", 1885, "localhost");
	REQUIRE(r);
	struct addrinfo *ai = NULL, *bai = NULL;
	int gai = -1, i = 0;
	while (!mg_resolve_done(r, &ai, &bai, &gai) && i++ < 20000)
		usleep(1000);
	CHECK_EQ_INT(gai, 0);
	REQUIRE(ai && bai);
	CHECK_EQ_INT(port_of(ai), 1885);
	freeaddrinfo(ai);
	freeaddrinfo(bai);
	mg_resolve_drop(r);
	CHECK_EQ_INT(wait_threads(base), base);
	CHECK_NO_LEAKS();
}

/* Start a lookup the test's DNS server (fd) holds, drop it while it waits. In a function of
 * its own so that no pointer to it stays in the test's frame for LeakSanitizer to find. */
__attribute__((noinline)) static void start_and_drop(int fd)
{
	mg_resolve *r = mg_resolve_start("far.midge-test.", 1883, NULL);
	REQUIRE(r);
	unsigned char q[512];
	CHECK(recv(fd, q, sizeof q, 0) > 12); /* the helper is inside getaddrinfo now */
	struct addrinfo *ai = NULL, *bai = NULL;
	int gai = 0;
	CHECK(!mg_resolve_done(r, &ai, &bai, &gai)); /* nobody answered: still waiting */
	mg_resolve_drop(r);                          /* the helper owns it from here */
}

TEST(dropped_while_waiting_on_dns_ends_safely)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	REQUIRE(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
	REQUIRE(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
	char env[64];
	snprintf(env, sizeof env, "127.0.0.1:%u", ntohs(sa.sin_port));
	setenv("MIDGE_TEST_RESOLVER", env, 1);
	setenv("RES_OPTIONS", "timeout:1 attempts:1", 1); /* unanswered, glibc gives up in ~1 s */
	struct timeval tv = { .tv_sec = 20 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	int base = base_threads();
	start_and_drop(fd);
	CHECK_EQ_INT(wait_threads(base), base);
	close(fd);
	CHECK_NO_LEAKS();
}
