/* net/plat_win.c - the platform layer (net/plat.h) on 64-bit Windows, built with mingw-w64
 * (mk/windows.mk, docs/windows.md), and the plain TCP transport over Winsock2. net/plat_posix.c
 * is the same for POSIX.
 *
 * Threads are winpthreads (linked statically), so client/'s mutexes, condition variables and
 * the loop_start thread are the same code as on Linux; what differs is here. */
#define _CRT_RAND_S /* rand_s in <stdlib.h> */
#include "net/plat.h"
#include "net/transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

/* A WSA error as the errno name the callers test for (they never see WSA codes). */
static int wsa_errno(int e)
{
	switch (e) {
	case WSAEWOULDBLOCK: return EAGAIN;
	case WSAEINPROGRESS: return EINPROGRESS;
	case WSAEINTR: return EINTR;
	case WSAECONNREFUSED: return ECONNREFUSED;
	case WSAECONNRESET: return ECONNRESET;
	case WSAECONNABORTED: return ECONNABORTED;
	case WSAESHUTDOWN: return EPIPE;
	case WSAENOTCONN: return ENOTCONN;
	case WSAETIMEDOUT: return ETIMEDOUT;
	case WSAENETUNREACH: return ENETUNREACH;
	case WSAENETDOWN: return ENETDOWN;
	case WSAEHOSTUNREACH: return EHOSTUNREACH;
	case WSAEADDRINUSE: return EADDRINUSE;
	case WSAEADDRNOTAVAIL: return EADDRNOTAVAIL;
	case WSAEAFNOSUPPORT: return EAFNOSUPPORT;
	case WSAEACCES: return EACCES;
	case WSAENOBUFS: return ENOMEM;
	case WSAEMFILE: return EMFILE;
	case WSAEINVAL: return EINVAL;
	case WSANOTINITIALISED: return EINVAL;
	default: return EIO;
	}
}

static int last_err(void)
{
	return wsa_errno(WSAGetLastError());
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

/* Winsock 2.2 for the life of the process: WSACleanup is left to process exit, as a library
 * cannot know when the program's last socket (its own or ours) is gone. */
static void init_wsa(void)
{
	WSADATA d;
	int e = WSAStartup(MAKEWORD(2, 2), &d);
	init_rc = e ? -wsa_errno(e) : 0;
}

int mg_plat_init(void)
{
	pthread_once(&init_once, init_wsa);
	return init_rc;
}

static int set_nonblock(SOCKET s)
{
	u_long on = 1;
	return ioctlsocket(s, FIONBIO, &on) == 0 ? 0 : -last_err();
}

/* Winsock sockets are not inherited by child processes unless asked, so nothing stands for
 * SOCK_CLOEXEC. */
int mg_plat_tcp_socket(int family)
{
	SOCKET s = socket(family, SOCK_STREAM, IPPROTO_TCP);
	if (s == INVALID_SOCKET)
		return -last_err();
	int r = set_nonblock(s);
	if (r) {
		closesocket(s);
		return r;
	}
	BOOL one = TRUE;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof(one));
	return (int)s;
}

int mg_plat_connect(int fd, const struct sockaddr *addr, size_t len)
{
	if (connect((SOCKET)fd, addr, (int)len) == 0)
		return 0;
	int e = WSAGetLastError();
	/* a non-blocking connect under way says WSAEWOULDBLOCK, not EINPROGRESS */
	return e == WSAEWOULDBLOCK || e == WSAEINPROGRESS ? -EINPROGRESS : -wsa_errno(e);
}

int mg_plat_bind(int fd, const struct sockaddr *addr, size_t len)
{
	return bind((SOCKET)fd, addr, (int)len) == 0 ? 0 : -last_err();
}

int mg_plat_sock_error(int fd)
{
	int err = 0;
	int len = sizeof(err);
	if (getsockopt((SOCKET)fd, SOL_SOCKET, SO_ERROR, (char *)&err, &len) != 0)
		return last_err();
	return err ? wsa_errno(err) : 0;
}

void mg_plat_close(int fd)
{
	closesocket((SOCKET)fd);
}

/* select() rather than WSAPoll: WSAPoll does not report a refused non-blocking connect
 * before Windows 10 2004 (it waits for the timeout), where select sets the socket in the
 * exception set. Windows' fd_set is a count and an array, so the cost is a few copies per
 * turn for the two sockets the client polls, and no FD_SETSIZE limit on socket values. */
int mg_plat_poll(struct pollfd *fds, int n, int timeout_ms)
{
	fd_set rs, ws, es;
	FD_ZERO(&rs);
	FD_ZERO(&ws);
	FD_ZERO(&es);
	int any = 0;
	for (int i = 0; i < n; i++) {
		fds[i].revents = 0;
		if (fds[i].fd == INVALID_SOCKET || any >= FD_SETSIZE)
			continue;
		if (fds[i].events & POLLIN)
			FD_SET(fds[i].fd, &rs);
		if (fds[i].events & POLLOUT)
			FD_SET(fds[i].fd, &ws);
		FD_SET(fds[i].fd, &es);
		any++;
	}
	if (!any) { /* select refuses three empty sets (WSAEINVAL) */
		Sleep(timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
		return 0;
	}
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	int r = select(0, &rs, &ws, &es, timeout_ms < 0 ? NULL : &tv);
	if (r == SOCKET_ERROR) {
		errno = last_err();
		return -1;
	}
	int ready = 0;
	for (int i = 0; i < n; i++) {
		if (fds[i].fd == INVALID_SOCKET)
			continue;
		if (FD_ISSET(fds[i].fd, &rs))
			fds[i].revents |= POLLIN;
		if (FD_ISSET(fds[i].fd, &ws))
			fds[i].revents |= POLLOUT;
		if (FD_ISSET(fds[i].fd, &es))
			fds[i].revents |= POLLERR;
		ready += fds[i].revents != 0;
	}
	return ready;
}

/* Windows has no pipe that select() can wait on, so the wake-up channel is a connected pair of
 * loopback TCP sockets, made through a listener on 127.0.0.1 that lives only for this call. */
int mg_plat_wake_open(int fds[2])
{
	fds[0] = fds[1] = -1;
	int r = mg_plat_init();
	if (r)
		return r;
	SOCKET l = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), a = INVALID_SOCKET, b = INVALID_SOCKET;
	struct sockaddr_in sa;
	int len = sizeof(sa);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l == INVALID_SOCKET || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 1) != 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &len) != 0)
		goto fail;
	if ((b = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)) == INVALID_SOCKET ||
	    connect(b, (struct sockaddr *)&sa, sizeof(sa)) != 0 || (a = accept(l, NULL, NULL)) == INVALID_SOCKET)
		goto fail;
	closesocket(l);
	BOOL one = TRUE;
	setsockopt(b, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof(one));
	if ((r = set_nonblock(a)) || (r = set_nonblock(b))) {
		closesocket(a);
		closesocket(b);
		return r;
	}
	fds[0] = (int)a;
	fds[1] = (int)b;
	return 0;
fail:
	r = -last_err();
	if (l != INVALID_SOCKET)
		closesocket(l);
	if (a != INVALID_SOCKET)
		closesocket(a);
	if (b != INVALID_SOCKET)
		closesocket(b);
	return r;
}

void mg_plat_wake(int fd)
{
	char b = 1;
	send((SOCKET)fd, &b, 1, 0); /* full buffer: a wake is pending anyway */
}

void mg_plat_wake_drain(int fd)
{
	char buf[64];
	while (recv((SOCKET)fd, buf, sizeof(buf), 0) > 0)
		;
}

void mg_plat_wake_close(int fds[2])
{
	if (fds[0] >= 0)
		closesocket((SOCKET)fds[0]);
	if (fds[1] >= 0)
		closesocket((SOCKET)fds[1]);
	fds[0] = fds[1] = -1;
}

const char *mg_plat_strerror(int err)
{
	switch (err) {
	case EAGAIN: return "Resource temporarily unavailable";
	case EINPROGRESS: return "Operation now in progress";
	case ECONNREFUSED: return "Connection refused";
	case ECONNRESET: return "Connection reset by peer";
	case ECONNABORTED: return "Software caused connection abort";
	case EPIPE: return "Broken pipe";
	case ENOTCONN: return "Transport endpoint is not connected";
	case ETIMEDOUT: return "Connection timed out";
	case ENETUNREACH: return "Network is unreachable";
	case ENETDOWN: return "Network is down";
	case EHOSTUNREACH: return "No route to host";
	case EADDRINUSE: return "Address already in use";
	case EADDRNOTAVAIL: return "Cannot assign requested address";
	case EAFNOSUPPORT: return "Address family not supported by protocol";
	case EPROTO: return "Protocol error";
	default: return strerror(err);
	}
}

int64_t mg_plat_now_ms(void)
{
	return (int64_t)GetTickCount64();
}

void mg_plat_random(void *buf, size_t n)
{
	uint8_t *q = buf;
	for (size_t i = 0; i < n; i += sizeof(unsigned int)) {
		unsigned int r = 0;
		if (rand_s(&r) != 0) /* no generator: still unpredictable enough to a proxy */
			r = (unsigned int)GetTickCount64() ^ (unsigned int)(uintptr_t)&r ^ (unsigned int)i;
		memcpy(q + i, &r, n - i < sizeof(r) ? n - i : sizeof(r));
	}
}

int mg_plat_cond_init(pthread_cond_t *cv)
{
	return pthread_cond_init(cv, NULL);
}

/* winpthreads' timed wait takes the time of day; its relative wait does not, and so follows
 * GetTickCount64's clock like the deadline. */
int mg_plat_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t until_ms)
{
	int64_t left = until_ms - mg_plat_now_ms();
	if (left < 0)
		left = 0;
	struct timespec rel = { .tv_sec = (time_t)(left / 1000), .tv_nsec = (long)(left % 1000) * 1000000L };
	return pthread_cond_timedwait_relative_np(cv, mu, &rel);
}

/* ---- the plain TCP transport ---- */

static ssize_t tcp_read(mg_transport *t, void *buf, size_t len)
{
	int n = recv((SOCKET)t->fd, buf, len > INT_MAX ? INT_MAX : (int)len, 0);
	if (n >= 0)
		return n;
	return -last_err();
}

/* WSASend takes the vector as WSABUFs; more than 16 pieces go out in the next call (a short
 * write, which every caller handles). Winsock raises no SIGPIPE. */
static ssize_t tcp_writev(mg_transport *t, const struct iovec *iov, int iovcnt)
{
	WSABUF b[16];
	DWORD nb = 0, sent = 0;
	for (int i = 0; i < iovcnt && nb < 16; i++) {
		b[nb].buf = iov[i].iov_base;
		b[nb].len = iov[i].iov_len > 0x7fffffff ? 0x7fffffff : (ULONG)iov[i].iov_len;
		nb++;
	}
	if (WSASend((SOCKET)t->fd, b, nb, &sent, 0, NULL, NULL) != 0)
		return -last_err();
	return (ssize_t)sent;
}

static int tcp_handshake(mg_transport *t)
{
	(void)t;
	return 0;
}

static void tcp_close(mg_transport *t)
{
	if (t->fd >= 0)
		closesocket((SOCKET)t->fd);
	t->fd = -1;
}

static int tcp_shutdown_write(mg_transport *t)
{
	return shutdown((SOCKET)t->fd, SD_SEND) == 0 ? 0 : -last_err();
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
