/* net/tcp.c - the plain TCP transport: read(2) and sendmsg(2) on a non-blocking socket. */
#include "net/transport.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t tcp_read(mg_transport *t, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(t->fd, buf, len);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

/* sendmsg with MSG_NOSIGNAL rather than writev: a write to a connection the peer has reset
 * or that was shut down returns EPIPE instead of raising SIGPIPE, which would kill a program
 * using libmidge that never asked for signals (the broker ignores SIGPIPE anyway). */
static ssize_t tcp_writev(mg_transport *t, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	for (;;) {
		ssize_t n = sendmsg(t->fd, &m, MSG_NOSIGNAL);
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
