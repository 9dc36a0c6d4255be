/*
 * test/client/c/extcb.c - an external event loop driven only by the socket callbacks
 * (on_socket_open / close / register_write / unregister_write): it never asks midge_socket or
 * midge_want_write, so a change the callbacks do not report stalls it.
 *   extcb -p PORT [-V 4|5]
 * connect_async, subscribe in on_connect, publish N messages to itself at QoS 1 once
 * subscribed, disconnect after the last arrives, run until on_socket_close. Prints
 *   open=O close=C reg=R unreg=U bad=B msgs=M published=P
 * bad counts callbacks out of order (register twice, a close while write is registered, an fd
 * other than the open one, anything after close).
 */
#include <midge/midge.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N 50

static int fd = -1, opens, closes, regs, unregs, bad, msgs, published;
static int want_write, closed_fd = -1;

static void s_open(midge_client *c, void *ud, int s)
{
	(void)c;
	(void)ud;
	if (fd >= 0 || closes)
		bad++;
	fd = s;
	opens++;
}

static void s_close(midge_client *c, void *ud, int s)
{
	(void)c;
	(void)ud;
	if (s != fd || want_write)
		bad++;
	closed_fd = s;
	fd = -1;
	closes++;
}

static void s_reg(midge_client *c, void *ud, int s)
{
	(void)c;
	(void)ud;
	if (s != fd || want_write)
		bad++;
	want_write = 1;
	regs++;
}

static void s_unreg(midge_client *c, void *ud, int s)
{
	(void)c;
	(void)ud;
	if (s != fd || !want_write)
		bad++;
	want_write = 0;
	unregs++;
}

static void on_connect(midge_client *c, void *ud, int flags, int rc, const midge_properties *p)
{
	(void)ud;
	(void)flags;
	(void)p;
	if (rc == 0)
		midge_subscribe(c, "extcb/t", 1);
}

static void on_subscribe(midge_client *c, void *ud, int mid, int n, const int *g,
                         const midge_properties *p)
{
	(void)ud;
	(void)mid;
	(void)n;
	(void)g;
	(void)p;
	for (int i = 0; i < N; i++)
		if (midge_publish(c, "extcb/t", "x", 1, 1, false, NULL) > 0)
			published++;
}

static void on_message(midge_client *c, void *ud, const midge_message *m)
{
	(void)ud;
	(void)m;
	if (++msgs == N)
		midge_disconnect(c);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int port = 1883, proto = 4;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "-p"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "-V"))
			proto = atoi(argv[i + 1]);
	}
	midge_client *c = midge_client_new(NULL, true, NULL, proto, MIDGE_TRANSPORT_TCP);
	if (!c)
		return 1;
	midge_on_socket_open_set(c, s_open);
	midge_on_socket_close_set(c, s_close);
	midge_on_socket_register_write_set(c, s_reg);
	midge_on_socket_unregister_write_set(c, s_unreg);
	midge_on_connect_set(c, on_connect);
	midge_on_subscribe_set(c, on_subscribe);
	midge_on_message_set(c, on_message);
	int rc = midge_connect_async(c, "127.0.0.1", port, 60);
	if (rc != MIDGE_OK) {
		printf("connect_async rc=%d\n", rc);
		return 1;
	}
	long long end = now_ms() + 20000;
	while (!closes && now_ms() < end) {
		if (fd < 0) {
			bad++; /* connect_async opened a socket: we must have been told */
			break;
		}
		struct pollfd pf = { .fd = fd, .events = (short)(POLLIN | (want_write ? POLLOUT : 0)) };
		int n = poll(&pf, 1, 200);
		if (n > 0 && (pf.revents & (POLLIN | POLLHUP | POLLERR)))
			midge_loop_read(c);
		if (fd >= 0 && n > 0 && (pf.revents & POLLOUT))
			midge_loop_write(c);
		if (fd >= 0)
			midge_loop_misc(c);
	}
	int told_before_free = closes;
	midge_client_free(c);
	printf("open=%d close=%d reg=%d unreg=%d bad=%d msgs=%d published=%d closed_before_free=%d\n",
	       opens, closes, regs, unregs, bad, msgs, published, told_before_free);
	return 0;
}
