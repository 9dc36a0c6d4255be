/* test/unit/test_net_tls.c - the TLS transport over a socketpair: a non-blocking handshake in
 * both modes, bytes both ways, one flush is one record on the wire, a write that meets a full
 * socket is retried with the same bytes, bytes left inside OpenSSL are reported as pending,
 * a plaintext peer fails the handshake with OpenSSL's reason, and both kinds of end. The
 * server's certificate is made in memory (EC P-256, self-signed) for each test. */
#include "t.h"

#include "net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* recv(2) calls on one socket, counted here: the transport's BIO calls recv, and this
 * definition (the test binary's own) comes before libc's; it passes each call on as it is. */
static int counted_fd = -1;
static int recvs;

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	if (fd == counted_fd)
		recvs++;
	return recvfrom(fd, buf, len, flags, NULL, NULL);
}

static SSL_CTX *server_ctx(void)
{
	SSL_CTX *ctx = mg_tls_ctx_new(MG_TLS_SERVER);
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	if (!ctx || !k || !x)
		return NULL;
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, n);
	int ok = X509_sign(x, k, EVP_sha256()) > 0 && SSL_CTX_use_certificate(ctx, x) == 1 &&
	         SSL_CTX_use_PrivateKey(ctx, k) == 1;
	X509_free(x);
	EVP_PKEY_free(k);
	if (!ok) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static SSL_CTX *client_ctx(void)
{
	SSL_CTX *ctx = mg_tls_ctx_new(MG_TLS_CLIENT);
	if (ctx)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* self-signed; verification is the caller's */
	return ctx;
}

static void nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static bool hold_server; /* duo_open: the server holds its last flight (the broker's way) */

typedef struct duo {
	SSL_CTX *sctx, *cctx;
	mg_transport s, c;
} duo;

/* A connected pair: both TLS, both non-blocking, driven in turn on this thread (a handshake
 * over a socketpair needs a few round trips, each a call that returns -EAGAIN first). */
static int duo_open(duo *d, int sndbuf)
{
	int sv[2];
	memset(d, 0, sizeof *d);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return -1;
	if (sndbuf) {
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
		setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf);
	}
	nonblock(sv[0]);
	nonblock(sv[1]);
	d->sctx = server_ctx();
	d->cctx = client_ctx();
	if (!d->sctx || !d->cctx)
		return -1;
	if (mg_tls_init(&d->s, sv[0], d->sctx, MG_TLS_SERVER, NULL) != 0 ||
	    mg_tls_init(&d->c, sv[1], d->cctx, MG_TLS_CLIENT, "localhost") != 0)
		return -1;
	if (hold_server)
		mg_tls_hold_final_flight(&d->s);
	int rs = -EAGAIN, rc = -EAGAIN;
	for (int i = 0; i < 100 && (rs == -EAGAIN || rc == -EAGAIN); i++) {
		if (rc == -EAGAIN)
			rc = mg_transport_handshake(&d->c);
		if (rs == -EAGAIN)
			rs = mg_transport_handshake(&d->s);
	}
	return rs == 0 && rc == 0 ? 0 : -1;
}

static void duo_close(duo *d)
{
	mg_transport_close(&d->s);
	mg_transport_close(&d->c);
	SSL_CTX_free(d->sctx);
	SSL_CTX_free(d->cctx);
}

/* Read exactly n bytes from t, pumping for at most 1000 calls. */
static size_t read_all(mg_transport *t, uint8_t *buf, size_t n)
{
	size_t got = 0;
	for (int i = 0; i < 1000 && got < n; i++) {
		ssize_t r = mg_transport_read(t, buf + got, n - got);
		if (r > 0)
			got += (size_t)r;
		else if (r != -EAGAIN)
			break;
	}
	return got;
}

TEST(handshake_and_bytes_both_ways)
{
	duo d;
	REQUIRE(duo_open(&d, 0) == 0);
	CHECK(mg_tls_handshake_done(&d.s));
	CHECK(mg_tls_handshake_done(&d.c));
	CHECK_STR(d.s.ops->name, "tls");
	CHECK(SSL_version(mg_tls_ssl(&d.s)) == TLS1_3_VERSION);
	uint8_t buf[64];
	CHECK_EQ_INT(mg_transport_read(&d.s, buf, sizeof buf), -EAGAIN); /* nothing yet */
	struct iovec iov = { "\x10\x02hi", 4 };
	CHECK_EQ_INT(mg_transport_writev(&d.c, &iov, 1), 4);
	CHECK_EQ_INT(read_all(&d.s, buf, 4), 4);
	CHECK_MEM(buf, "\x10\x02hi", 4);
	iov = (struct iovec){ "\x20\x02\x00\x00", 4 };
	CHECK_EQ_INT(mg_transport_writev(&d.s, &iov, 1), 4);
	CHECK_EQ_INT(read_all(&d.c, buf, 4), 4);
	CHECK_MEM(buf, "\x20\x02\x00\x00", 4);
	duo_close(&d);
	CHECK_NO_LEAKS();
}

/* 100 packets of 16 bytes in 100 iovecs are one SSL_write: one application-data record on
 * the wire (TLS 1.3: type 23, length = 1600 + 1 inner type byte + 16 tag bytes). */
TEST(one_flush_is_one_record)
{
	duo d;
	REQUIRE(duo_open(&d, 0) == 0);
	uint8_t pkt[100][16];
	struct iovec iov[100];
	for (int i = 0; i < 100; i++) {
		memset(pkt[i], i, sizeof pkt[i]);
		iov[i] = (struct iovec){ pkt[i], sizeof pkt[i] };
	}
	/* the server's TLS 1.3 tickets went out after its handshake: read them on the client
	 * first, so the raw read below sees only what this flush sends */
	uint8_t drain[64];
	CHECK_EQ_INT(mg_transport_read(&d.c, drain, sizeof drain), -EAGAIN);
	CHECK_EQ_INT(mg_transport_writev(&d.s, iov, 100), 1600);
	uint8_t raw[4096];
	ssize_t n = read(d.c.fd, raw, sizeof raw); /* under TLS: the record itself */
	CHECK_EQ_INT(n, 5 + 1600 + 17);
	CHECK_EQ_INT(raw[0], 23);
	CHECK_EQ_INT((raw[3] << 8) | raw[4], 1600 + 17);
	duo_close(&d);
}

/* A flush larger than the socket takes: -EAGAIN (want_write), then the same bytes again
 * once the peer has read; every byte arrives once, in order. */
TEST(full_socket_retry_with_same_bytes)
{
	duo d;
	REQUIRE(duo_open(&d, 4096) == 0);
	size_t total = 1 << 20, sent = 0, got = 0;
	uint8_t *src = malloc(total), *dst = malloc(total);
	REQUIRE(src && dst);
	for (size_t i = 0; i < total; i++)
		src[i] = (uint8_t)(i * 7 + (i >> 11));
	bool saw_again = false;
	for (int i = 0; i < 100000 && got < total; i++) {
		if (sent < total) {
			/* two iovecs, so the coalescing path (the per-thread buffer) is what retries */
			size_t left = total - sent, a = left < 100 ? left : 100;
			struct iovec iov[2] = { { src + sent, a }, { src + sent + a, left - a } };
			ssize_t w = mg_transport_writev(&d.s, iov, left > a ? 2 : 1);
			if (w == -EAGAIN) {
				saw_again = true;
				CHECK(mg_transport_want_write(&d.s));
			} else {
				REQUIRE(w > 0);
				sent += (size_t)w;
			}
		}
		ssize_t r = mg_transport_read(&d.c, dst + got, total - got);
		if (r > 0)
			got += (size_t)r;
		else
			REQUIRE(r == -EAGAIN);
	}
	CHECK(saw_again);
	CHECK_EQ_INT(got, total);
	CHECK(memcmp(src, dst, total) == 0);
	free(src);
	free(dst);
	duo_close(&d);
	mg_tls_thread_cleanup();
	CHECK_NO_LEAKS();
}

/* A read into a small buffer leaves decrypted bytes inside OpenSSL, where the socket's
 * readiness cannot show them: pending says so until they are read. */
TEST(pending_after_a_full_buffer)
{
	duo d;
	REQUIRE(duo_open(&d, 0) == 0);
	uint8_t big[20000], buf[20000];
	memset(big, 'm', sizeof big);
	struct iovec iov = { big, sizeof big };
	CHECK_EQ_INT(mg_transport_writev(&d.s, &iov, 1), (int)sizeof big);
	CHECK(!mg_transport_pending(&d.c));
	CHECK_EQ_INT(mg_transport_read(&d.c, buf, 1000), 1000);
	CHECK(mg_transport_pending(&d.c));
	size_t got = 1000;
	while (mg_transport_pending(&d.c) && got < sizeof buf) {
		ssize_t r = mg_transport_read(&d.c, buf + got, 1000);
		REQUIRE(r > 0);
		got += (size_t)r;
	}
	CHECK_EQ_INT(got, sizeof big);
	CHECK_EQ_INT(mg_transport_read(&d.c, buf, sizeof buf), -EAGAIN);
	CHECK(!mg_transport_pending(&d.c));
	duo_close(&d);
}

/* A plaintext MQTT client on a TLS port: the handshake fails with OpenSSL's reason, in the
 * words mosquitto logs ("error:0A00010B:SSL routines::wrong version number"). */
TEST(plaintext_peer_fails_the_handshake)
{
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	nonblock(sv[0]);
	SSL_CTX *ctx = server_ctx();
	REQUIRE(ctx);
	mg_transport s;
	REQUIRE(mg_tls_init(&s, sv[0], ctx, MG_TLS_SERVER, NULL) == 0);
	static const uint8_t connect[] = { 0x10, 0x10, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60,
	                                   0, 4, 'a', 'b', 'c', 'd' };
	CHECK_EQ_INT(write(sv[1], connect, sizeof connect), (int)sizeof connect);
	CHECK_EQ_INT(mg_transport_handshake(&s), -EPROTO);
	char line[256];
	const char *e = mg_tls_error(&s, 0, line, sizeof line);
	REQUIRE(e);
	CHECK(strstr(e, "SSL routines") != NULL);
	CHECK(strstr(e, "wrong version number") != NULL);
	mg_transport_close(&s);
	close(sv[1]);
	SSL_CTX_free(ctx);
	CHECK_NO_LEAKS();
}

/* The peer that goes away in the middle of a handshake; a TLS end (close_notify, sent by
 * shutdown_write) and a bare TCP end after the handshake are each an end of stream. */
TEST(ends)
{
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	nonblock(sv[0]);
	SSL_CTX *ctx = server_ctx();
	REQUIRE(ctx);
	mg_transport s;
	REQUIRE(mg_tls_init(&s, sv[0], ctx, MG_TLS_SERVER, NULL) == 0);
	CHECK_EQ_INT(mg_transport_handshake(&s), -EAGAIN);
	CHECK(!mg_transport_want_write(&s));
	close(sv[1]);
	CHECK(mg_transport_handshake(&s) < 0);
	mg_transport_close(&s);
	SSL_CTX_free(ctx);

	duo d;
	REQUIRE(duo_open(&d, 0) == 0);
	uint8_t buf[64];
	CHECK_EQ_INT(mg_transport_shutdown_write(&d.s), 0);
	CHECK_EQ_INT(mg_transport_read(&d.c, buf, sizeof buf), 0);
	duo_close(&d);

	REQUIRE(duo_open(&d, 0) == 0);
	struct iovec iov = { "last", 4 };
	CHECK_EQ_INT(mg_transport_writev(&d.s, &iov, 1), 4);
	shutdown(d.s.fd, SHUT_WR); /* no close_notify */
	CHECK_EQ_INT(read_all(&d.c, buf, 4), 4); /* the bytes first */
	CHECK_MEM(buf, "last", 4);
	CHECK_EQ_INT(mg_transport_read(&d.c, buf, sizeof buf), 0); /* then the end */
	duo_close(&d);
	CHECK_NO_LEAKS();
}

/* A client writing to a peer that has gone gets -EPIPE, never SIGPIPE: libmidge lives in
 * programs that never asked for signals (OpenSSL's socket BIO writes with write(2), which would
 * raise it and kill the program). */
TEST(client_write_to_a_gone_peer_is_epipe)
{
	duo d;
	REQUIRE(duo_open(&d, 0) == 0);
	mg_transport_close(&d.s);
	struct iovec iov = { "after", 5 };
	ssize_t r = mg_transport_writev(&d.c, &iov, 1);
	CHECK(r == -EPIPE || r == -ECONNRESET);
	duo_close(&d);
	CHECK_NO_LEAKS();
}

/* Bytes waiting to be read on fd, without taking them (0 when none). */
static int waiting(int fd)
{
	uint8_t b[8192];
	ssize_t n = recv(fd, b, sizeof b, MSG_PEEK | MSG_DONTWAIT);
	return n > 0 ? (int)n : 0;
}

/* Whether the client's session carries a ticket it could resume with. */
static bool client_has_ticket(mg_transport *c)
{
	SSL_SESSION *s = SSL_get1_session(mg_tls_ssl(c));
	bool r = s && SSL_SESSION_is_resumable(s);
	SSL_SESSION_free(s);
	return r;
}

/* The broker's way (mg_tls_hold_final_flight): the TLS 1.3 ticket written by the server's
 * last handshake step is held, and leaves in one send with the first write (the CONNACK):
 * nothing is on the wire before it, ticket and data come in one read after it. */
TEST(held_ticket_leaves_with_the_first_write)
{
	duo d;
	hold_server = true;
	REQUIRE(duo_open(&d, 0) == 0);
	hold_server = false;
	CHECK(mg_tls_held(&d.s));
	CHECK_EQ_INT(waiting(d.c.fd), 0);
	struct iovec iov = { "\x20\x02\x00\x00", 4 };
	CHECK_EQ_INT(mg_transport_writev(&d.s, &iov, 1), 4);
	CHECK(!mg_tls_held(&d.s));
	/* a ticket record (far more than 5 + 4 + 17 bytes) ahead of the CONNACK's record */
	CHECK(waiting(d.c.fd) > 5 + 4 + 17 + 100);
	uint8_t buf[8];
	CHECK_EQ_INT(read_all(&d.c, buf, 4), 4);
	CHECK_MEM(buf, "\x20\x02\x00\x00", 4);
	CHECK(client_has_ticket(&d.c));
	duo_close(&d);
	CHECK_NO_LEAKS();
}

/* With nothing to send in that turn, writev with no data sends the held ticket alone; a
 * close sends it ahead of its close_notify. */
TEST(held_ticket_flushed_by_an_empty_writev_or_close)
{
	duo d;
	hold_server = true;
	REQUIRE(duo_open(&d, 0) == 0);
	CHECK(mg_tls_held(&d.s));
	CHECK_EQ_INT(mg_transport_writev(&d.s, NULL, 0), 0);
	CHECK(!mg_tls_held(&d.s));
	uint8_t buf[8];
	CHECK_EQ_INT(mg_transport_read(&d.c, buf, sizeof buf), -EAGAIN); /* the ticket, no data */
	CHECK(client_has_ticket(&d.c));
	duo_close(&d);

	REQUIRE(duo_open(&d, 0) == 0);
	hold_server = false;
	CHECK(mg_tls_held(&d.s));
	mg_transport_close(&d.s);
	CHECK_EQ_INT(mg_transport_read(&d.c, buf, sizeof buf), 0); /* ticket, then the end */
	CHECK(client_has_ticket(&d.c));
	duo_close(&d);
	CHECK_NO_LEAKS();
}

/* The server's flight meets a full socket: the handshake waits to write (want_write) with
 * the flight held, sends the rest when called again, and the handshake completes. */
TEST(held_flight_on_a_full_socket)
{
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	int small = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	nonblock(sv[0]);
	nonblock(sv[1]);
	SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
	REQUIRE(sctx && cctx);
	mg_transport s, c;
	REQUIRE(mg_tls_init(&s, sv[0], sctx, MG_TLS_SERVER, NULL) == 0);
	REQUIRE(mg_tls_init(&c, sv[1], cctx, MG_TLS_CLIENT, "localhost") == 0);
	mg_tls_hold_final_flight(&s);
	CHECK_EQ_INT(mg_transport_handshake(&c), -EAGAIN); /* ClientHello out */
	/* fill the server's socket with junk the client's end takes out raw below */
	static uint8_t junk[1024];
	size_t filled = 0;
	for (;;) {
		ssize_t w = write(sv[0], junk, sizeof junk);
		if (w <= 0)
			break;
		filled += (size_t)w;
	}
	REQUIRE(filled > 0);
	CHECK_EQ_INT(mg_transport_handshake(&s), -EAGAIN);
	CHECK(mg_transport_want_write(&s)); /* the flight is held: it waits for room */
	CHECK(mg_tls_held(&s));
	size_t drained = 0;
	uint8_t b[1024];
	while (drained < filled) {
		size_t want = filled - drained < sizeof b ? filled - drained : sizeof b;
		ssize_t r = read(sv[1], b, want);
		REQUIRE(r > 0);
		drained += (size_t)r;
	}
	int rs = -EAGAIN, rc = -EAGAIN;
	for (int i = 0; i < 100 && (rs == -EAGAIN || rc == -EAGAIN); i++) {
		if (rs == -EAGAIN)
			rs = mg_transport_handshake(&s);
		if (rc == -EAGAIN)
			rc = mg_transport_handshake(&c);
	}
	CHECK_EQ_INT(rs, 0);
	CHECK_EQ_INT(rc, 0);
	struct iovec iov = { "hi", 2 };
	CHECK_EQ_INT(mg_transport_writev(&s, &iov, 1), 2);
	uint8_t buf[8];
	CHECK_EQ_INT(read_all(&c, buf, 2), 2);
	CHECK_MEM(buf, "hi", 2);
	mg_transport_close(&s);
	mg_transport_close(&c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	CHECK_NO_LEAKS();
}

/* A recv that comes back short has emptied the socket: the transport does not ask again in
 * the same call, where it could only find nothing (EAGAIN). The server's first handshake step
 * reads the ClientHello once and sends its flight without looking for the client's Finished
 * first (the client has not seen the flight: two recv calls before); the step that takes the
 * Finished with the data behind it, and the read that follows in the same turn (the broker
 * reads the CONNECT at once), ask the socket once between them (two before). A later call
 * asks the socket again: what came after the short read is read then. */
TEST(short_recv_is_the_last_of_a_call)
{
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	nonblock(sv[0]);
	nonblock(sv[1]);
	SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
	REQUIRE(sctx && cctx);
	mg_transport s, c;
	REQUIRE(mg_tls_init(&s, sv[0], sctx, MG_TLS_SERVER, NULL) == 0);
	REQUIRE(mg_tls_init(&c, sv[1], cctx, MG_TLS_CLIENT, "localhost") == 0);
	mg_tls_hold_final_flight(&s);
	counted_fd = sv[0];
	CHECK_EQ_INT(mg_transport_handshake(&c), -EAGAIN); /* ClientHello out */
	recvs = 0;
	CHECK_EQ_INT(mg_transport_handshake(&s), -EAGAIN); /* ClientHello in, flight out */
	CHECK_EQ_INT(recvs, 1);
	CHECK(waiting(sv[1]) > 0);
	CHECK_EQ_INT(mg_transport_handshake(&c), 0); /* the flight in, Finished out */
	struct iovec iov = { "\x10\x0c", 2 };
	CHECK_EQ_INT(mg_transport_writev(&c, &iov, 1), 2);
	recvs = 0;
	CHECK_EQ_INT(mg_transport_handshake(&s), 0); /* Finished and the data: one recv */
	uint8_t buf[16];
	CHECK_EQ_INT(mg_transport_read(&s, buf, sizeof buf), 2);
	CHECK_MEM(buf, "\x10\x0c", 2);
	CHECK_EQ_INT(recvs, 1);
	CHECK_EQ_INT(mg_transport_read(&s, buf, sizeof buf), -EAGAIN); /* a new call asks */
	CHECK_EQ_INT(recvs, 2);
	iov.iov_base = "\xc0\x00";
	CHECK_EQ_INT(mg_transport_writev(&c, &iov, 1), 2);
	CHECK_EQ_INT(mg_transport_read(&s, buf, sizeof buf), 2);
	CHECK_MEM(buf, "\xc0\x00", 2);
	counted_fd = -1;
	mg_transport_close(&s);
	mg_transport_close(&c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	CHECK_NO_LEAKS();
}
