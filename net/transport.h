/*
 * net/transport.h - a byte stream over some transport (plain TCP; TLS and WebSocket plug
 * in as rows: net/tls.h, net/ws.h), as a small table of functions like redis's ConnectionType. The broker and
 * the client library hold an mg_transport and never ask which kind it is.
 *
 * Return values: >= 0 bytes moved; 0 from read means the peer closed; negative errno on
 * error, -EAGAIN when the socket is not ready (the caller waits for readiness and retries).
 * A transport may need to write while reading (TLS): mg_transport_want_write tells the loop.
 */
#ifndef MG_NET_TRANSPORT_H
#define MG_NET_TRANSPORT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "net/plat.h"

typedef struct mg_transport mg_transport;

typedef struct mg_transport_ops {
	const char *name; /* "tcp", "tls", "ws", "wss" */
	ssize_t (*read)(mg_transport *t, void *buf, size_t len);
	ssize_t (*writev)(mg_transport *t, const struct iovec *iov, int iovcnt);
	/* Drive a handshake (TLS, WebSocket upgrade): 0 done, -EAGAIN again later, <0 error. */
	int (*handshake)(mg_transport *t);
	/* Bytes it holds that the socket has not taken yet (TLS records, WS frames). */
	bool (*want_write)(const mg_transport *t);
	/* Close the fd and free what the transport owns; t itself is the caller's. */
	void (*close)(mg_transport *t);
	/* Stop writing, keep reading (TCP: shutdown(SHUT_WR), the peer reads end of stream).
	 * May be NULL: then the lingering close (net/linger.h) just closes. */
	int (*shutdown_write)(mg_transport *t);
	/* Bytes readable now that the socket's readiness does not show (TLS: decrypted or
	 * read-ahead bytes inside OpenSSL after a read filled the caller's buffer; WebSocket: data
	 * that came with the handshake, or a close behind data): read again without waiting.
	 * May be NULL (never). */
	bool (*pending)(const mg_transport *t);
} mg_transport_ops;

struct mg_transport {
	const mg_transport_ops *ops;
	int fd;
	void *ctx; /* the transport's own state (SSL *, WebSocket framer, ...) */
};

extern const mg_transport_ops mg_tcp_ops;

static inline ssize_t mg_transport_read(mg_transport *t, void *buf, size_t len)
{
	return t->ops->read(t, buf, len);
}
static inline ssize_t mg_transport_writev(mg_transport *t, const struct iovec *iov, int n)
{
	return t->ops->writev(t, iov, n);
}
static inline bool mg_transport_want_write(const mg_transport *t)
{
	return t->ops->want_write ? t->ops->want_write(t) : false;
}
static inline int mg_transport_handshake(mg_transport *t)
{
	return t->ops->handshake ? t->ops->handshake(t) : 0;
}
static inline bool mg_transport_pending(const mg_transport *t)
{
	return t->ops->pending ? t->ops->pending(t) : false;
}
static inline int mg_transport_shutdown_write(mg_transport *t)
{
	return t->ops->shutdown_write ? t->ops->shutdown_write(t) : -EOPNOTSUPP;
}
static inline void mg_transport_close(mg_transport *t)
{
	if (t->ops)
		t->ops->close(t);
}

/* Plain TCP on an already-connected, non-blocking fd. */
void mg_tcp_init(mg_transport *t, int fd);

#endif
