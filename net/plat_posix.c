/* net/plat_posix.c - the platform layer (net/plat.h) on Linux and other POSIX systems, and the
 * plain TCP transport: recv(2), send(2) and sendmsg(2) on a non-blocking socket. net/plat_win.c is the
 * same for Windows. */
#include "net/plat.h"
#include "net/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int mg_plat_init(void)
{
	return 0;
}

int mg_plat_tcp_socket(int family)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int mg_plat_connect(int fd, const struct sockaddr *addr, size_t len)
{
	return connect(fd, addr, (socklen_t)len) == 0 ? 0 : -errno;
}

int mg_plat_bind(int fd, const struct sockaddr *addr, size_t len)
{
	return bind(fd, addr, (socklen_t)len) == 0 ? 0 : -errno;
}

int mg_plat_sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	return err;
}

void mg_plat_close(int fd)
{
	close(fd);
}

int mg_plat_poll(struct pollfd *fds, int n, int timeout_ms)
{
	return poll(fds, (nfds_t)n, timeout_ms);
}

int mg_plat_wake_open(int fds[2])
{
	return pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0 ? 0 : -errno;
}

void mg_plat_wake(int fd)
{
	char b = 1;
	ssize_t n = write(fd, &b, 1); /* full pipe: a wake is pending anyway */
	(void)n;
}

void mg_plat_wake_drain(int fd)
{
	char buf[64];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

void mg_plat_wake_close(int fds[2])
{
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	fds[0] = fds[1] = -1;
}

const char *mg_plat_strerror(int err)
{
	return strerror(err);
}

int64_t mg_plat_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mg_plat_random(void *buf, size_t n)
{
	uint8_t *q = buf;
	while (n) {
		ssize_t r = getrandom(q, n, 0);
		if (r <= 0) { /* no entropy source at all: still unpredictable enough to a proxy */
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			for (size_t i = 0; i < n; i++)
				q[i] = (uint8_t)(ts.tv_nsec >> (i % 4 * 8)) ^ (uint8_t)(uintptr_t)&ts;
			return;
		}
		q += r;
		n -= (size_t)r;
	}
}

int mg_plat_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return rc;
}

int mg_plat_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t until_ms)
{
	struct timespec ts = { .tv_sec = (time_t)(until_ms / 1000),
	                       .tv_nsec = (long)(until_ms % 1000) * 1000000L };
	return pthread_cond_timedwait(cv, mu, &ts);
}

/* ---- the plain TCP transport ---- */

/* recv(2) rather than read(2): the same bytes without the file layer's checks around it
 * (rw_verify_area, fsnotify), ~60 ns less per call of ~1.3 us on the benchmark VM; every
 * message at a low rate costs one (bench/README.md, "Wake-up costs"). The fd is always a
 * socket (mg_tcp_init). */
static ssize_t tcp_read(mg_transport *t, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = recv(t->fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

/* send/sendmsg with MSG_NOSIGNAL rather than write/writev: a write to a connection the peer
 * has reset or that was shut down returns EPIPE instead of raising SIGPIPE, which would kill a
 * program using libmidge that never asked for signals (the broker ignores SIGPIPE anyway).
 * One iovec (the common case: consecutive whole packets share one segment) goes with send(2),
 * which skips copying in a msghdr and importing the iovec array. */
static ssize_t tcp_writev(mg_transport *t, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	for (;;) {
		ssize_t n = iovcnt == 1 ? send(t->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL)
		                        : sendmsg(t->fd, &m, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

static int tcp_handshake(mg_transport *t)
{
	(void)t;
	return 0;
}

static void tcp_close(mg_transport *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

static int tcp_shutdown_write(mg_transport *t)
{
	return shutdown(t->fd, SHUT_WR) == 0 ? 0 : -errno;
}

const mg_transport_ops mg_tcp_ops = {
	.name = "tcp",
	.read = tcp_read,
	.writev = tcp_writev,
	.handshake = tcp_handshake,
	.want_write = NULL,
	.close = tcp_close,
	.shutdown_write = tcp_shutdown_write,
};

void mg_tcp_init(mg_transport *t, int fd)
{
	t->ops = &mg_tcp_ops;
	t->fd = fd;
	t->ctx = NULL;
}
