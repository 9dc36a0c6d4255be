/* test/unit/test_net_ws.c - RFC 6455 in net/ws_frame.c and net/ws.c: SHA-1 and the accept key
 * against published vectors, frame headers, the in-place decoder on byte-exact frames (each
 * fed whole and one byte at a time), and the transport's two ends talking over a socketpair. */
#include "t.h"

#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/ws.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

TEST(sha1_vectors)
{
	uint8_t d[20];
	char h[41];
	mg_sha1("abc", 3, d);
	hex(d, 20, h);
	CHECK_STR(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
	mg_sha1("", 0, d);
	hex(d, 20, h);
	CHECK_STR(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes: 2 blocks */
	mg_sha1(two, strlen(two), d);
	hex(d, 20, h);
	CHECK_STR(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	char a[1000];
	memset(a, 'a', sizeof a);
	mg_sha1(a, 64, d); /* exactly one block: padding in a second */
	hex(d, 20, h);
	CHECK_STR(h, "0098ba824b5c16427bd7a1122a5a442a25ec644d");
}

TEST(accept_key_rfc_example)
{
	char out[29];
	mg_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
	CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	char b[8];
	CHECK_EQ_INT(mg_base64((const uint8_t *)"fo", 2, b), 4);
	CHECK_STR(b, "Zm8=");
	CHECK_EQ_INT(mg_base64((const uint8_t *)"f", 1, b), 4);
	CHECK_STR(b, "Zg==");
}

TEST(frame_headers)
{
	uint8_t h[14];
	const uint8_t m[4] = { 1, 2, 3, 4 };
	CHECK_EQ_INT(mg_ws_frame_header(h, MG_WS_OP_BINARY, true, 125, NULL), 2);
	CHECK_MEM(h, "\x82\x7d", 2);
	CHECK_EQ_INT(mg_ws_frame_header(h, MG_WS_OP_BINARY, true, 126, NULL), 4);
	CHECK_MEM(h, "\x82\x7e\x00\x7e", 4);
	CHECK_EQ_INT(mg_ws_frame_header(h, MG_WS_OP_BINARY, false, 65536, NULL), 10);
	CHECK_MEM(h, "\x02\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
	CHECK_EQ_INT(mg_ws_frame_header(h, MG_WS_OP_CLOSE, true, 2, m), 6);
	CHECK_MEM(h, "\x88\x82\x01\x02\x03\x04", 6);
}

typedef struct {
	uint8_t data[512];
	size_t n;
	int events[8], nev;
	int err;
} outcome;

/* Decode in[0..len) in reads of `cut` bytes (0: whole), as ws_read would. */
static void decode(const uint8_t *in, size_t len, size_t cut, bool server, uint64_t max, outcome *o)
{
	mg_ws_rx rx;
	mg_ws_rx_init(&rx, server, max);
	memset(o, 0, sizeof *o);
	uint8_t buf[512];
	for (size_t at = 0; at < len && !o->err;) {
		size_t n = cut && len - at > cut ? cut : len - at;
		memcpy(buf, in + at, n);
		at += n;
		size_t pos = 0, out = 0;
		while (pos < n) {
			int ev = mg_ws_rx_run(&rx, buf, n, &pos, &out);
			if (ev < 0) {
				o->err = ev;
				break;
			}
			if (ev != MG_WS_RX_MORE && o->nev < 8)
				o->events[o->nev++] = ev;
		}
		memcpy(o->data + o->n, buf, out);
		o->n += out;
	}
}

static void expect(const char *what, const void *in, size_t len, bool server, const void *data,
                   size_t dlen, int err, int nev)
{
	for (size_t cut = 0; cut <= 3; cut++) {
		outcome o;
		decode(in, len, cut, server, 100, &o);
		if (o.err != err || o.nev != nev || (!err && (o.n != dlen || memcmp(o.data, data, dlen) != 0)))
			t_fail(__FILE__, __LINE__, "%s (reads of %zu): err %d nev %d n %zu", what, cut, o.err, o.nev, o.n);
	}
}

/* RFC 6455 5.7's examples, as binary frames (a text frame is MQTT's 1003) */
TEST(decoder_rfc_examples)
{
	expect("masked Hello", "\x82\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11, true, "Hello", 5, 0, 0);
	expect("masked Hello to a client", "\x82\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11, false, "", 0,
	       -MG_WS_CLOSE_PROTOCOL, 0);
	expect("unmasked to a client", "\x82\x05Hello", 7, false, "Hello", 5, 0, 0);
	expect("unmasked to a server", "\x82\x05Hello", 7, true, "", 0, -MG_WS_CLOSE_PROTOCOL, 0);
	expect("fragmented", "\x02\x03Hel\x80\x02lo", 9, false, "Hello", 5, 0, 0);
	expect("ping between fragments", "\x02\x03Hel\x89\x05Hello\x80\x02lo", 16, false, "Hello", 5, 0, 1);
	expect("text", "\x81\x05Hello", 7, false, "", 0, -MG_WS_CLOSE_UNSUPPORTED, 0);
	expect("empty binary then close", "\x82\x00\x88\x02\x03\xe8", 6, false, "", 0, 0, 1);
	expect("rsv", "\xc2\x00", 2, false, "", 0, -MG_WS_CLOSE_PROTOCOL, 0);
	expect("opcode 0xB", "\x8b\x00", 2, false, "", 0, -MG_WS_CLOSE_PROTOCOL, 0);
	expect("lone continuation", "\x80\x00", 2, false, "", 0, -MG_WS_CLOSE_PROTOCOL, 0);
	expect("binary inside a message", "\x02\x01x\x82\x01y", 6, false, "x", 1, -MG_WS_CLOSE_PROTOCOL, 0);
	expect("fragmented ping", "\x09\x00", 2, false, "", 0, -MG_WS_CLOSE_PROTOCOL, 0);
	expect("non-minimal 16", "\x82\x7e\x00\x05Hello", 9, false, "", 0, -MG_WS_CLOSE_PROTOCOL, 0);
	expect("non-minimal 64", "\x82\x7f\x00\x00\x00\x00\x00\x00\x00\x05Hello", 15, false, "", 0,
	       -MG_WS_CLOSE_PROTOCOL, 0);
	/* the limit is 100 here: a message of 60 + 41 crosses it at the second fragment */
	static uint8_t big[2 + 60 + 2 + 41];
	memcpy(big, "\x02\x3c", 2);
	memset(big + 2, 'a', 60);
	memcpy(big + 62, "\x80\x29", 2);
	memset(big + 64, 'b', 41);
	outcome o;
	decode(big, sizeof big, 0, false, 100, &o);
	CHECK_EQ_INT(o.err, -MG_WS_CLOSE_TOO_BIG);
	CHECK_EQ_INT(o.n, 60);
	/* two messages of 60 each are fine: the count starts again with each message */
	memcpy(big + 62, "\x82\x29", 2);
	big[0] = 0x82;
	decode(big, sizeof big, 0, false, 100, &o);
	CHECK_EQ_INT(o.err, 0);
	CHECK_EQ_INT(o.n, 101);
}

TEST(close_payloads)
{
	CHECK_EQ_INT(mg_ws_close_status((const uint8_t *)"", 0), 1005);
	CHECK_EQ_INT(mg_ws_close_status((const uint8_t *)"\x03", 1), -1002);
	CHECK_EQ_INT(mg_ws_close_status((const uint8_t *)"\x03\xe8", 2), 1000);
	CHECK_EQ_INT(mg_ws_close_status((const uint8_t *)"\x03\xed", 2), -1002); /* 1005 */
	CHECK_EQ_INT(mg_ws_close_status((const uint8_t *)"\x0b\xb8", 2), 3000);
	CHECK_EQ_INT(mg_ws_close_status((const uint8_t *)"\x13\x88", 2), -1002); /* 5000 */
	CHECK_EQ_INT(mg_ws_close_status((const uint8_t *)"\x03\xe8\xc3\xa9t\xc3\xa9", 7), 1000);
	CHECK_EQ_INT(mg_ws_close_status((const uint8_t *)"\x03\xe8\xc0\xaf", 4), -1007); /* overlong */
	CHECK_EQ_INT(mg_ws_close_status((const uint8_t *)"\x03\xe8\xed\xa0\x80", 5), -1007); /* surrogate */
	CHECK_EQ_INT(mg_ws_close_status((const uint8_t *)"\x03\xe8\xe2\x82", 4), -1007); /* cut */
}

/* ---- both ends over a socketpair ---- */

static void pump_handshakes(mg_transport *s, mg_transport *c)
{
	int rs = -EAGAIN, rc = -EAGAIN;
	for (int i = 0; i < 100 && (rs || rc); i++) {
		if (rc)
			rc = mg_transport_handshake(c);
		if (rs)
			rs = mg_transport_handshake(s);
		if (rs == 0 && mg_transport_want_write(s))
			mg_transport_writev(s, NULL, 0);
		if ((rs && rs != -EAGAIN) || (rc && rc != -EAGAIN))
			break;
	}
	CHECK_EQ_INT(rs, 0);
	CHECK_EQ_INT(rc, 0);
}

static void pair(mg_transport *s, mg_transport *c, const char *headers)
{
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	int sz = 16384;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	mg_transport ts, tc;
	mg_tcp_init(&ts, sv[0]);
	mg_tcp_init(&tc, sv[1]);
	REQUIRE(mg_ws_server_init(s, &ts, NULL) == 0);
	REQUIRE(mg_ws_client_init(c, &tc, "example:9001", "/mqtt", headers) == 0);
	pump_handshakes(s, c);
}

/* Move len bytes from a to b through the transports, with the socket filling up. */
static void stream(mg_transport *a, mg_transport *b, size_t len)
{
	uint8_t *src = malloc(len), *dst = malloc(len + 1);
	for (size_t i = 0; i < len; i++)
		src[i] = (uint8_t)(i * 7 + i / 251);
	size_t sent = 0, got = 0;
	for (int spins = 0; got < len && spins < 100000; spins++) {
		if (sent < len || mg_transport_want_write(a)) {
			/* the caller's iovecs: three pieces, as a connection's output would be */
			size_t left = len - sent, p1 = left / 3, p2 = left / 3;
			struct iovec v[3] = { { src + sent, p1 }, { src + sent + p1, p2 }, { src + sent + p1 + p2, left - p1 - p2 } };
			ssize_t n = mg_transport_writev(a, v, sent < len ? 3 : 0);
			if (n > 0)
				sent += (size_t)n;
			else if (n != -EAGAIN && n != 0)
				break;
		}
		ssize_t n = mg_transport_read(b, dst + got, len + 1 - got);
		if (n > 0)
			got += (size_t)n;
		else if (n != -EAGAIN)
			break;
	}
	CHECK_EQ_INT(got, len);
	CHECK(memcmp(src, dst, len) == 0);
	free(src);
	free(dst);
}

TEST(client_and_server_move_bytes_both_ways)
{
	mg_transport s, c;
	pair(&s, &c, "Authorization: Bearer x\r\n");
	stream(&c, &s, 10);
	stream(&s, &c, 10);
	stream(&c, &s, 1000000); /* masked frames of 256 KiB at most, the socket full */
	stream(&s, &c, 1000000); /* frames continued across calls (frame_left) */
	mg_transport_close(&c);
	uint8_t b[16];
	ssize_t n;
	for (int i = 0; i < 100 && (n = mg_transport_read(&s, b, sizeof b)) == -EAGAIN; i++)
		usleep(1000);
	CHECK_EQ_INT(n, 0); /* the client's close frame (1000): the end */
	mg_transport_close(&s);
	CHECK_NO_LEAKS();
}

TEST(server_answers_ping_and_close)
{
	mg_transport s, c;
	pair(&s, &c, NULL);
	/* a masked ping from the client (by hand), then a close with 1001 */
	const uint8_t ping[] = { 0x89, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2 };
	const uint8_t close_[] = { 0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe9 };
	int cfd = c.fd;
	REQUIRE(write(cfd, ping, sizeof ping) == sizeof ping);
	uint8_t b[64];
	CHECK_EQ_INT(mg_transport_read(&s, b, sizeof b), -EAGAIN);
	uint8_t got[64];
	ssize_t n = read(cfd, got, sizeof got);
	CHECK_EQ_INT(n, 4);
	CHECK_MEM(got, "\x8a\x02hi", 4);
	REQUIRE(write(cfd, close_, sizeof close_) == sizeof close_);
	CHECK_EQ_INT(mg_transport_read(&s, b, sizeof b), 0);
	n = read(cfd, got, sizeof got);
	CHECK_EQ_INT(n, 4);
	CHECK_MEM(got, "\x88\x02\x03\xe9", 4);
	mg_transport_close(&s);
	mg_transport_close(&c);
	CHECK_NO_LEAKS();
}

TEST(client_refuses_a_wrong_accept)
{
	int sv[2];
	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	mg_transport tc, c;
	mg_tcp_init(&tc, sv[1]);
	REQUIRE(mg_ws_client_init(&c, &tc, "h", "/", NULL) == 0);
	CHECK_EQ_INT(mg_transport_handshake(&c), -EAGAIN);
	char req[1024];
	ssize_t n = read(sv[0], req, sizeof req - 1);
	REQUIRE(n > 0);
	req[n] = 0;
	CHECK(strncmp(req, "GET / HTTP/1.1\r\nHost: h\r\n", 25) == 0);
	CHECK(strstr(req, "Sec-WebSocket-Protocol: mqtt\r\n") != NULL);
	const char *ans = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	                  "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
	REQUIRE(write(sv[0], ans, strlen(ans)) == (ssize_t)strlen(ans));
	CHECK_EQ_INT(mg_transport_handshake(&c), -EPROTO);
	CHECK(strstr(mg_ws_error(&c), "Sec-WebSocket-Accept") != NULL);
	mg_transport_close(&c);
	close(sv[0]);
	CHECK_EQ_INT(mg_ws_client_init(&c, &tc, "h", "no-slash", NULL), -EINVAL);
	CHECK_NO_LEAKS();
}
