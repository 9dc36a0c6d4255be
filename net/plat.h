/*
 * net/plat.h - the platform layer: what libmidge and the TCP transport need from the operating
 * system where POSIX and Windows differ, behind one small interface with one file per platform
 * (as libuv has unix/ and win/):
 *
 *   net/plat_posix.c   Linux and every POSIX system: poll(2), a pipe to wake the loop,
 *                      CLOCK_MONOTONIC, getrandom(2), the plain TCP transport (read/sendmsg)
 *   net/plat_win.c     64-bit Windows (mingw-w64): Winsock2, select(), a loopback socket pair
 *                      to wake the loop, GetTickCount64, rand_s, winpthreads
 *
 * The Makefile builds exactly one of them (PLAT=posix or PLAT=win, see mk/windows.mk); client/
 * and net/'s shared files include this header instead of <sys/socket.h>, <poll.h> or
 * <winsock2.h> and never test _WIN32 themselves. The broker's own files (epoll, listeners) are
 * Linux-only and stay outside this layer.
 *
 * Sockets are ints on both: the public API hands them out as int (midge_socket), and a Winsock
 * SOCKET, though declared pointer-sized, is a kernel handle whose value fits in 32 bits.
 * Errors are negative errno values as everywhere in net/; plat_win.c turns WSA codes into the
 * errno names (ECONNREFUSED, EAGAIN, ...) so the callers need not know.
 */
#ifndef MG_NET_PLAT_H
#define MG_NET_PLAT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
/* writev's vector; mg_transport_ops.writev takes it on every platform. */
struct iovec {
	void *iov_base;
	size_t iov_len;
};
/* getaddrinfo on Windows reports failures as WSA codes and has no EAI_SYSTEM: a value it never
 * returns keeps the callers' test for it meaningful on both. */
#ifndef EAI_SYSTEM
#define EAI_SYSTEM (-11)
#endif
#else
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#endif

/* Once per process before the first socket (Windows: WSAStartup). Safe to call from any thread
 * any number of times. 0 or a negative errno. */
int mg_plat_init(void);

/* A non-blocking, close-on-exec TCP socket of family with TCP_NODELAY set: an fd or -errno. */
int mg_plat_tcp_socket(int family);
/* Start a connect: 0 connected, -EINPROGRESS under way (wait for writable, then
 * mg_plat_sock_error), or -errno. */
int mg_plat_connect(int fd, const struct sockaddr *addr, size_t len);
int mg_plat_bind(int fd, const struct sockaddr *addr, size_t len); /* 0 or -errno */
/* The result of a finished non-blocking connect: 0 or the errno value it failed with. */
int mg_plat_sock_error(int fd);
void mg_plat_close(int fd);

/* poll(2) on up to a few descriptors (struct pollfd and POLLIN/POLLOUT/POLLERR/POLLHUP come
 * from <poll.h> or <winsock2.h>). Returns as poll does: ready count, 0, or -1 with errno. */
int mg_plat_poll(struct pollfd *fds, int n, int timeout_ms);

/* The wake-up channel: a thread writes a byte to fds[1] so that a loop polling fds[0] wakes.
 * Both ends non-blocking. open: 0 or -errno. */
int mg_plat_wake_open(int fds[2]);
void mg_plat_wake(int fd);        /* write one byte; a full channel means a wake is pending */
void mg_plat_wake_drain(int fd);  /* read everything there */
void mg_plat_wake_close(int fds[2]);

/* strerror for the errno values this layer returns: Windows' C library has no words for the
 * socket ones (ECONNREFUSED, ECONNRESET, ...), which it numbers past its own table. */
const char *mg_plat_strerror(int err);

/* Milliseconds on a clock that never goes back (not the time of day). */
int64_t mg_plat_now_ms(void);
/* n unpredictable bytes (WebSocket masks, client ids): the OS's generator, else a weak mix. */
void mg_plat_random(void *buf, size_t n);

/* A condition variable that mg_plat_cond_wait_until can wait on with a deadline on
 * mg_plat_now_ms's clock (POSIX: CLOCK_MONOTONIC, so a clock change neither hangs nor hurries
 * a wait). wait_until returns 0 or ETIMEDOUT (spurious wake-ups return 0, as ever). */
int mg_plat_cond_init(pthread_cond_t *cv);
int mg_plat_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t until_ms);

#endif
