/* net/tls.c - the TLS transport over OpenSSL 3 (see tls.h for the contract). */
#include "net/tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_ERRS 4

typedef struct tls_state {
	SSL *ssl;
	int fd;
	uint8_t *held;               /* bytes written by the handshake, not sent yet (see hold) */
	size_t nheld, held_cap;
	unsigned long err[MAX_ERRS]; /* the last failure's OpenSSL error codes */
	int fail;                    /* a read ended in this error after it returned bytes */
	uint8_t nerr;
	bool want_write;
	bool full;                   /* the last read filled the caller's buffer */
	bool hold_final;             /* mg_tls_hold_final_flight */
	bool holding;                /* inside SSL_do_handshake: writes go to held */
	bool drained;                /* a recv in this call came back short: the socket is empty */
} tls_state;

/* Held output is at most this much; more goes out at once (with what is held before it). */
#define HELD_MAX (16 * 1024)

/* ---- the per-thread write buffer ---- */

/* One buffer per thread rather than per connection: 10,000 idle TLS clients should not hold
 * 64 KiB each. The key's destructor frees it when a thread ends; __thread keeps the hot path
 * free of pthread_getspecific. */
static __thread uint8_t *wbuf;
static pthread_key_t wkey;
static pthread_once_t wonce = PTHREAD_ONCE_INIT;
static bool wkey_ok;

static void wbuf_free(void *p)
{
	free(p);
	wbuf = NULL;
}

static void wkey_init(void)
{
	wkey_ok = pthread_key_create(&wkey, wbuf_free) == 0;
}

static uint8_t *thread_wbuf(void)
{
	if (wbuf)
		return wbuf;
	pthread_once(&wonce, wkey_init);
	wbuf = malloc(MG_TLS_WRITE_CHUNK);
	if (wbuf && wkey_ok)
		pthread_setspecific(wkey, wbuf);
	return wbuf;
}

void mg_tls_thread_cleanup(void)
{
	if (!wbuf)
		return;
	if (wkey_ok)
		pthread_setspecific(wkey, NULL);
	free(wbuf);
	wbuf = NULL;
}

/* ---- errors ---- */

static void save_errors(tls_state *st)
{
	unsigned long e;
	st->nerr = 0;
	while ((e = ERR_get_error()) != 0)
		if (st->nerr < MAX_ERRS)
			st->err[st->nerr++] = e;
}

/* What an SSL call's failure means for the caller: -EAGAIN (and why), 0 for the peer's end,
 * or an error. */
static int map_error(tls_state *st, int r)
{
	int saved = errno;
	int e = SSL_get_error(st->ssl, r);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		st->want_write = true;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		save_errors(st);
		if (saved == EAGAIN || saved == EWOULDBLOCK)
			return -EAGAIN;
		/* errno 0: the peer closed the TCP connection in the middle of a handshake */
		return saved ? -saved : -ECONNRESET;
	default:
		save_errors(st);
		return -EPROTO;
	}
}

/* ---- the socket BIO: send(2) with MSG_NOSIGNAL ----
 *
 * OpenSSL's socket BIO writes with write(2), which raises SIGPIPE when the peer has gone; a
 * program using libmidge never asked for signals, and the TCP row sends with MSG_NOSIGNAL for
 * the same reason. Both modes use it: the close_notify that close sends may meet a peer that
 * has gone, in a program (a test, a bridge's host) that did not ignore SIGPIPE. Kernel TLS
 * (SSL_OP_ENABLE_KTLS) would need OpenSSL's own socket BIO; it was not kept (see
 * docs/security.md: the test machine's kernel has no tls module, so it could not be shown
 * to be faster). */

/* Keep n bytes in st->held. false: no room (over HELD_MAX, or no memory). */
static bool hold(tls_state *st, const void *p, size_t n)
{
	if (st->nheld + n > st->held_cap) {
		size_t cap = st->held_cap ? st->held_cap : 1024;
		while (cap < st->nheld + n)
			cap *= 2;
		uint8_t *h = cap <= HELD_MAX ? realloc(st->held, cap) : NULL;
		if (!h)
			return false;
		st->held = h;
		st->held_cap = cap;
	}
	memcpy(st->held + st->nheld, p, n);
	st->nheld += n;
	return true;
}

/* The held bytes leave first, in the same send as buf (buf may be empty): how many of buf's
 * bytes were sent, or -1 with errno (EAGAIN also when only held bytes went out). */
static ssize_t send_after_held(tls_state *st, const void *buf, size_t len)
{
	ssize_t n;
	if (!st->nheld) {
		do
			n = send(st->fd, buf, len, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		return n;
	}
	struct iovec iov[2] = { { st->held, st->nheld }, { (void *)buf, len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	do
		n = sendmsg(st->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return n;
	if ((size_t)n < st->nheld) {
		memmove(st->held, st->held + n, st->nheld - (size_t)n);
		st->nheld -= (size_t)n;
		errno = EAGAIN;
		return -1;
	}
	n -= (ssize_t)st->nheld;
	st->nheld = 0;
	free(st->held); /* an idle connection holds nothing */
	st->held = NULL;
	st->held_cap = 0;
	if (n == 0 && len) {
		errno = EAGAIN;
		return -1;
	}
	return n;
}

/* Send what is held. 0 when nothing is left, -EAGAIN (want_write set), or -errno. */
static int flush_held(tls_state *st)
{
	if (!st->nheld)
		return 0;
	if (send_after_held(st, NULL, 0) < 0 && st->nheld) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			st->want_write = true;
			return -EAGAIN;
		}
		return -errno;
	}
	return 0;
}

static int nosig_write(BIO *b, const char *buf, int len)
{
	tls_state *st = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (st->holding && hold(st, buf, (size_t)len))
		return len;
	ssize_t n = send_after_held(st, buf, (size_t)len);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_write(b);
	return (int)n;
}

/* One recv per call from the loop when it comes back short. A short recv emptied the
 * socket; the next one in the same call would almost always find nothing (EAGAIN), and it
 * came twice in every TLS connection to the broker: after the ClientHello, when OpenSSL
 * looks for the client's Finished before the server's flight has even left, and after the
 * Finished and CONNECT, when the read loop asks for more. Each is a system call (2 of the 15
 * a resumed connection cost the broker, epoll_wait and OpenSSL's getpid aside). The loop's
 * epoll is level-triggered, so whatever arrives after the short recv wakes the loop and is
 * read in the next call. The broker's sockets only (hold_final, non-blocking): on a blocking
 * socket (midge_bench, a program using libmidge that way) the next recv waits for the rest
 * of a record, it is not a question. */
static int nosig_read(BIO *b, char *buf, int len)
{
	tls_state *st = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (st->drained) {
		BIO_set_retry_read(b);
		errno = EAGAIN;
		return -1;
	}
	ssize_t n;
	do
		n = recv(st->fd, buf, (size_t)len, 0);
	while (n < 0 && errno == EINTR);
	if (st->hold_final && n > 0 && n < len)
		st->drained = true;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_read(b);
	if (n == 0)
		BIO_set_flags(b, BIO_FLAGS_IN_EOF); /* how OpenSSL tells a TCP end (BIO_CTRL_EOF) */
	return (int)n;
}

static long nosig_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num, (void)ptr;
	if (cmd == BIO_CTRL_EOF)
		return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* nothing is buffered here */
}

static BIO_METHOD *nosig_method; /* made once, lives as long as the process */
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static void nosig_make(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "midge socket");
	if (m && BIO_meth_set_write(m, nosig_write) && BIO_meth_set_read(m, nosig_read) &&
	    BIO_meth_set_ctrl(m, nosig_ctrl))
		nosig_method = m;
	else
		BIO_meth_free(m);
}

/* SSL_set_fd with the BIO above, on st->fd. 1 or 0, as SSL_set_fd. */
static int set_nosig_fd(SSL *ssl, tls_state *st)
{
	pthread_once(&nosig_once, nosig_make);
	BIO *b = nosig_method ? BIO_new(nosig_method) : NULL;
	if (!b)
		return 0;
	BIO_set_data(b, st);
	BIO_set_init(b, 1);
	SSL_set_bio(ssl, b, b); /* the SSL owns it now */
	return 1;
}

/* ---- the row ---- */

static ssize_t read_records(mg_transport *t, void *buf, size_t len)
{
	tls_state *st = t->ctx;
	size_t got = 0;
	st->want_write = false;
	st->full = false;
	if (st->fail) {
		int f = st->fail;
		st->fail = 0;
		return f == 1 ? 0 : f;
	}
	/* One SSL_read gives at most one record (16 KiB): keep going until the buffer is full or
	 * the socket is empty, so a 64 KiB read costs one call from the loop, as with TCP. */
	while (got < len) {
		size_t n = 0;
		ERR_clear_error();
		if (SSL_read_ex(st->ssl, (uint8_t *)buf + got, len - got, &n) == 1) {
			got += n;
			continue;
		}
		int r = map_error(st, 0);
		if (r == -EAGAIN)
			break;
		if (!got)
			return r;
		st->fail = r == 0 ? 1 : r; /* hand over the bytes first, the end next time */
		return (ssize_t)got;
	}
	st->full = got == len;
	return got ? (ssize_t)got : -EAGAIN;
}

static ssize_t tls_writev(mg_transport *t, const struct iovec *iov, int iovcnt)
{
	tls_state *st = t->ctx;
	st->drained = false;
	const void *p;
	size_t len;
	st->want_write = false;
	if (iovcnt <= 0) {
		/* nothing of its own to send: what the handshake held goes; a read that wants
		 * write is retried by reading */
		int r = flush_held(st);
		return r == -EAGAIN || !r ? 0 : r;
	}
	/* The same iov prefix always gives the same bytes and at least the same length, which is
	 * what OpenSSL needs when a write that returned WANT_WRITE is retried (with
	 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER the address may change, the bytes may not). */
	if (iovcnt == 1 || iov[0].iov_len >= MG_TLS_WRITE_CHUNK) {
		p = iov[0].iov_base;
		len = iov[0].iov_len;
	} else {
		uint8_t *b = thread_wbuf();
		if (!b)
			return -ENOMEM;
		len = 0;
		for (int i = 0; i < iovcnt && len < MG_TLS_WRITE_CHUNK; i++) {
			size_t n = iov[i].iov_len;
			if (n > MG_TLS_WRITE_CHUNK - len)
				n = MG_TLS_WRITE_CHUNK - len;
			if (n)
				memcpy(b + len, iov[i].iov_base, n);
			len += n;
		}
		p = b;
	}
	if (!len)
		return 0;
	size_t n = 0;
	ERR_clear_error();
	if (SSL_write_ex(st->ssl, p, len, &n) == 1)
		return (ssize_t)n;
	int r = map_error(st, 0);
	if (r == -EAGAIN)
		st->want_write = true; /* a write waits for writability, whatever OpenSSL said */
	return r == 0 ? -EPIPE : r;
}

static int handshake_step(mg_transport *t)
{
	tls_state *st = t->ctx;
	st->want_write = false;
	if (SSL_is_init_finished(st->ssl))
		return 0;
	int f = flush_held(st); /* a flight that did not fit in the socket, first */
	if (f < 0)
		return f;
	ERR_clear_error();
	st->holding = st->hold_final;
	int r = SSL_do_handshake(st->ssl);
	st->holding = false;
	if (r == 1)
		return 0; /* what the last step wrote (TLS 1.3 tickets) waits for the first write */
	r = map_error(st, r);
	f = flush_held(st); /* a flight the peer waits for goes now */
	if (f < 0 && f != -EAGAIN)
		return f;
	return r == 0 ? -ECONNRESET : r;
}

/* drained (nosig_read) lasts one call: a read ends it whatever it returns, and a handshake
 * step that did not complete. The broker's completed step (hold_final) keeps it for the read
 * that follows in the same turn (conn.c reads the CONNECT that came with the Finished at
 * once): that read takes what OpenSSL already holds and does not ask the socket again. */
static ssize_t tls_read(mg_transport *t, void *buf, size_t len)
{
	ssize_t r = read_records(t, buf, len);
	((tls_state *)t->ctx)->drained = false;
	return r;
}

static int tls_handshake(mg_transport *t)
{
	tls_state *st = t->ctx;
	int r = handshake_step(t);
	if (r)
		st->drained = false;
	return r;
}

static bool tls_want_write(const mg_transport *t)
{
	const tls_state *st = t->ctx;
	return st && st->want_write;
}

static bool tls_pending(const mg_transport *t)
{
	const tls_state *st = t->ctx;
	/* SSL_has_pending also counts a read-ahead partial record, which needs the socket: only
	 * after a read that stopped because the buffer was full is it worth reading again. */
	return st && (st->fail || (st->full && SSL_has_pending(st->ssl)));
}

static void tls_close(mg_transport *t)
{
	tls_state *st = t->ctx;
	if (st) {
		/* close_notify, best effort and never waiting: without it OpenSSL marks the
		 * session not resumable (a TLS 1.2 session id could not be resumed) */
		if (SSL_is_init_finished(st->ssl) && !(SSL_get_shutdown(st->ssl) & SSL_SENT_SHUTDOWN)) {
			ERR_clear_error();
			SSL_shutdown(st->ssl);
			ERR_clear_error();
		}
		SSL_free(st->ssl);
		free(st->held);
		free(st);
	}
	t->ctx = NULL;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

static int tls_shutdown_write(mg_transport *t)
{
	tls_state *st = t->ctx;
	/* close_notify is best effort: if the socket is full, the TCP end says the same. */
	if (st && SSL_is_init_finished(st->ssl)) {
		ERR_clear_error();
		SSL_shutdown(st->ssl);
		ERR_clear_error();
	}
	return shutdown(t->fd, SHUT_WR) == 0 ? 0 : -errno;
}

const mg_transport_ops mg_tls_ops = {
	.name = "tls",
	.read = tls_read,
	.writev = tls_writev,
	.handshake = tls_handshake,
	.want_write = tls_want_write,
	.close = tls_close,
	.shutdown_write = tls_shutdown_write,
	.pending = tls_pending,
};

int mg_tls_init(mg_transport *t, int fd, SSL_CTX *ctx, enum mg_tls_mode mode, const char *sni)
{
	t->ops = NULL;
	t->fd = fd;
	t->ctx = NULL;
	tls_state *st = calloc(1, sizeof *st);
	SSL *ssl = st ? SSL_new(ctx) : NULL;
	if (st)
		st->fd = fd;
	if (!ssl || !set_nosig_fd(ssl, st) ||
	    (mode == MG_TLS_CLIENT && sni && !SSL_set_tlsext_host_name(ssl, sni))) {
		SSL_free(ssl);
		free(st);
		close(fd);
		t->fd = -1;
		ERR_clear_error();
		return -ENOMEM;
	}
	/* No partial writes (with them SSL_write returns after every record): one SSL_write
	 * sends the whole chunk, and after WANT_WRITE OpenSSL remembers how far it got, so the
	 * retry with the same bytes goes on from there. Moving buffer: a retry may come from
	 * another address (the per-thread buffer, re-filled). Release buffers: idle connections
	 * hold no 16 KiB record buffers. */
	SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	/* Read-ahead: one read(2) takes as many records as the socket holds, instead of two
	 * read(2) calls (header, body) per record. */
	SSL_set_read_ahead(ssl, 1);
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF); /* whoever made ctx (see ctx_new) */
	if (mode == MG_TLS_SERVER)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	st->ssl = ssl;
	t->ctx = st;
	t->ops = &mg_tls_ops;
	return 0;
}

void mg_tls_hold_final_flight(mg_transport *t)
{
	if (t->ops == &mg_tls_ops && t->ctx)
		((tls_state *)t->ctx)->hold_final = true;
}

bool mg_tls_held(const mg_transport *t)
{
	return t->ops == &mg_tls_ops && t->ctx && ((tls_state *)t->ctx)->nheld;
}

SSL *mg_tls_ssl(const mg_transport *t)
{
	return t->ops == &mg_tls_ops && t->ctx ? ((tls_state *)t->ctx)->ssl : NULL;
}

bool mg_tls_handshake_done(const mg_transport *t)
{
	SSL *ssl = mg_tls_ssl(t);
	return ssl && SSL_is_init_finished(ssl);
}

const char *mg_tls_error(const mg_transport *t, int i, char *buf, size_t len)
{
	const tls_state *st = t->ops == &mg_tls_ops ? t->ctx : NULL;
	if (!st || i < 0 || i >= st->nerr || !len)
		return NULL;
	ERR_error_string_n(st->err[i], buf, len);
	return buf;
}

SSL_CTX *mg_tls_ctx_new(enum mg_tls_mode mode)
{
	SSL_CTX *ctx = SSL_CTX_new(mode == MG_TLS_SERVER ? TLS_server_method() : TLS_client_method());
	if (!ctx)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* An end without close_notify is an end of stream, as a TCP FIN is: MQTT has its own
	 * DISCONNECT, and truncation cannot cut a packet the framer would accept. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                         SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE);
	return ctx;
}
