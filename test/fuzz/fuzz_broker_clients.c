/*
 * test/fuzz/fuzz_broker_clients.c - the whole broker, in-process, fed sequences of bytes from
 * up to eight clients at once: CONNECT, SUBSCRIBE, PUBLISH, acknowledgements, takeovers,
 * wills, malformed packets, closes. The proto/ fuzzers stop at the decoder; the remote crash
 * of issue 8 (a SUBSCRIBE with more than 65,535 filters) was in broker/, behind it.
 *
 * No network: each client is a socketpair whose one end is a broker connection (the
 * broker's own mg_conn, transport and worker code), the other end the fuzzer's. The worker
 * loops do not run in threads: this thread turns them one at a time (mg_loop_run_once) until
 * nothing moves, so a run is repeatable. One or two workers, so deliveries and session
 * takeovers also cross between workers through their inboxes.
 *
 * Input: a config byte, then operations. An operation byte is (kind << 3) | client:
 *   kind 0  send: a length byte, then that many bytes
 *   kind 1  send: a 16-bit big-endian length, then that many bytes
 *   kind 2  repeat: a unit length byte (0 = 1), the unit, a 24-bit count; sends the unit
 *           count times (at most 1 MiB), so a small input can be an 800 KB SUBSCRIBE
 *   kind 3  close the client's end (the broker sees EOF); the next send reconnects
 *   kind 4  toggle acknowledging: the client answers QoS 1/2 PUBLISH and PUBREL
 *   kind 5  toggle reading: a client that stops reading fills the broker's queues
 * Seeds: test/fuzz/corpus/fuzz_broker_clients/, written by test/fuzz/gen_broker_clients.py
 * (three of them are the SUBSCRIBE / UNSUBSCRIBE with 70,000 filters that crashed the broker
 * before 8a0e473; each made this fuzzer fail at once under ASan and UBSan before that fix).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CLIENTS 8
#define REPEAT_MAX (1u << 20)
#define ACKBUF_MAX (4u << 20)

typedef struct {
	int fd;          /* the fuzzer's end, -1 when not connected */
	bool ack, stall; /* answer QoS 1/2 flows; stop reading */
	uint8_t *in;     /* what the broker sent, not yet parsed (ack mode) */
	size_t inlen, incap;
} client;

static mg_broker b;
static client cl[CLIENTS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN); /* as broker/main.c: a peer gone mid-write is an error, not a kill */
	/* Every log line is formatted (the -v lines carry client data) and written nowhere. */
	mg_config quiet;
	mg_config_init(&quiet);
	quiet.log_types = MG_LOG_ALL;
	quiet.log_dests = 0;
	mg_log_open(&quiet);
	mg_config_free(&quiet);
	return 0;
}

static void configure(mg_config *c, uint8_t f)
{
	mg_config_init(c);
	c->allow_anonymous = true;
	c->threads = f & 1 ? 2 : 1;
	if (f & 2) {
		c->max_queued_messages = 2;
		c->queue_qos0_messages = true;
	}
	if (f & 4)
		c->max_inflight_messages = 1;
	if (f & 8)
		c->message_size_limit = 100;
	if (f & 16)
		c->retain_available = false;
	if (f & 32)
		c->allow_zero_length_clientid = false;
	if (f & 64)
		c->max_packet_size = 300;
	if (f & 128) {
		c->outgoing_topic_aliases = true;
		c->max_keepalive = 10;
	}
}

/* Does what on_accept does for a TCP connection, for a socketpair end. */
static int open_client(int i)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	mg_worker *w = &b.w[i % b.nworkers];
	char peer[32];
	snprintf(peer, sizeof peer, "10.0.0.%d:%d", i + 1, 40000 + i);
	mg_conn *c = mg_conn_new(w, sv[0], peer, 1883);
	if (!c) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	atomic_fetch_add(&b.n_conns, 1);
	atomic_fetch_add(&b.lcount[0], 1);
	c->lidx = 0;
	mg_conn_attach(w, c);
	cl[i].fd = sv[1];
	cl[i].inlen = 0;
	return 0;
}

static void close_client(int i)
{
	if (cl[i].fd >= 0)
		close(cl[i].fd);
	cl[i].fd = -1;
	cl[i].inlen = 0;
}

static size_t send_some(int i, const uint8_t *p, size_t n)
{
	ssize_t w = write(cl[i].fd, p, n);
	return w > 0 ? (size_t)w : 0;
}

/* Answers what a well-behaved client would: PUBACK / PUBREC for QoS 1 / 2, PUBCOMP for
 * PUBREL. Packets are framed by their fixed header only; the broker's bytes are trusted to
 * be well formed here (a wrong frame just ends the answering for this connection). */
static size_t answer(int i)
{
	client *k = &cl[i];
	size_t pos = 0, sent = 0;
	for (;;) {
		size_t avail = k->inlen - pos;
		if (avail < 2)
			break;
		const uint8_t *p = k->in + pos;
		uint32_t len = 0;
		size_t hl = 1;
		int shift = 0;
		for (;;) {
			if (hl >= avail || hl > 4)
				goto out;
			len |= (uint32_t)(p[hl] & 0x7F) << shift;
			shift += 7;
			if (!(p[hl++] & 0x80))
				break;
		}
		if (avail < hl + len)
			break;
		uint8_t type = p[0] >> 4, qos = (p[0] >> 1) & 3;
		uint8_t reply[4] = { 0, 2, 0, 0 };
		if (type == 3 && qos && len >= 2) { /* PUBLISH: topic, then the packet id */
			size_t tl = (size_t)p[hl] << 8 | p[hl + 1];
			if (2 + tl + 2 <= len) {
				reply[0] = qos == 1 ? 0x40 : 0x50;
				memcpy(reply + 2, p + hl + 2 + tl, 2);
			}
		} else if (type == 6 && len >= 2) { /* PUBREL */
			reply[0] = 0x70;
			memcpy(reply + 2, p + hl, 2);
		}
		if (reply[0] && k->fd >= 0)
			sent += send_some(i, reply, sizeof reply);
		pos += hl + len;
	}
out:
	memmove(k->in, k->in + pos, k->inlen - pos);
	k->inlen -= pos;
	return sent;
}

/* Reads what the broker sent client i; returns bytes written back (acknowledgements). */
static size_t drain(int i)
{
	client *k = &cl[i];
	static uint8_t scratch[65536];
	size_t sent = 0;
	while (k->fd >= 0 && !k->stall) {
		ssize_t n = read(k->fd, scratch, sizeof scratch);
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR))
				close_client(i); /* the broker closed it */
			break;
		}
		if (!k->ack)
			continue;
		if (k->inlen + (size_t)n > ACKBUF_MAX) {
			k->inlen = 0; /* lost the frame boundaries: stop answering this stream */
			k->ack = false;
			continue;
		}
		if (k->inlen + (size_t)n > k->incap) {
			size_t nc = k->incap ? k->incap : 65536;
			while (nc < k->inlen + (size_t)n)
				nc *= 2;
			uint8_t *ni = realloc(k->in, nc);
			if (!ni)
				abort();
			k->in = ni;
			k->incap = nc;
		}
		memcpy(k->in + k->inlen, scratch, (size_t)n);
		k->inlen += (size_t)n;
		sent += answer(i);
	}
	return sent;
}

/* Turns every worker's loop until a whole round moves nothing (bounded). */
static void pump(void)
{
	for (int round = 0; round < 200; round++) {
		int moved = 0;
		for (int w = 0; w < b.nworkers; w++) {
			int r = mg_loop_run_once(b.w[w].loop, 0);
			moved += r > 0 ? r : 0;
		}
		for (int i = 0; i < CLIENTS; i++)
			moved += drain(i) > 0;
		if (!moved)
			return;
	}
}

/* Sends n bytes as one client, letting the broker read in between when the socket is full;
   gives up on the rest when the broker stops reading (it paused or closed this client). */
static void send_all(int i, const uint8_t *p, size_t n)
{
	if (cl[i].fd < 0 && open_client(i) < 0)
		return;
	int idle = 0;
	while (n > 0 && cl[i].fd >= 0 && idle < 8) {
		size_t w = send_some(i, p, n);
		p += w;
		n -= w;
		if (n) {
			pump();
			idle = w ? 0 : idle + 1;
		}
	}
}

static void send_repeat(int i, const uint8_t *unit, size_t ulen, size_t count)
{
	static uint8_t buf[65536];
	size_t per = sizeof buf / ulen; /* units per write */
	for (size_t k = 0; k < per; k++)
		memcpy(buf + k * ulen, unit, ulen);
	while (count > 0 && (cl[i].fd >= 0 || open_client(i) == 0)) {
		size_t m = count < per ? count : per;
		send_all(i, buf, m * ulen);
		count -= m;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	mg_config cfg;
	configure(&cfg, data[0]);
	memset(&b, 0, sizeof b);
	if (mg_broker_init(&b, &cfg) < 0)
		abort();
	for (int i = 0; i < CLIENTS; i++)
		cl[i] = (client){ .fd = -1 };

	size_t pos = 1;
	while (pos < size) {
		uint8_t op = data[pos++];
		int i = op & 7;
		size_t n;
		int kind = (op >> 3) % 6;
		switch (kind) {
		case 0:
		case 1:
			if (kind == 0) {
				n = pos < size ? data[pos++] : 0;
			} else {
				n = pos + 1 < size ? (size_t)data[pos] << 8 | data[pos + 1] : 0;
				pos += 2;
			}
			if (pos > size)
				pos = size;
			if (n > size - pos)
				n = size - pos;
			send_all(i, data + pos, n);
			pos += n;
			break;
		case 2: {
			size_t ulen = pos < size ? data[pos++] : 1;
			if (!ulen)
				ulen = 1;
			if (ulen > size - pos)
				break;
			const uint8_t *unit = data + pos;
			pos += ulen;
			if (size - pos < 3)
				break;
			size_t count = (size_t)data[pos] << 16 | (size_t)data[pos + 1] << 8 | data[pos + 2];
			pos += 3;
			if (count * ulen > REPEAT_MAX)
				count = REPEAT_MAX / ulen;
			send_repeat(i, unit, ulen, count);
			break;
		}
		case 3:
			close_client(i);
			break;
		case 4:
			cl[i].ack = !cl[i].ack;
			break;
		case 5:
			cl[i].stall = !cl[i].stall;
			break;
		}
		pump();
	}

	for (int i = 0; i < CLIENTS; i++) {
		close_client(i);
		cl[i].stall = false;
	}
	pump(); /* the broker sees every EOF: wills, session ends */
	mg_broker_stop(&b);
	mg_config_free(&cfg);
	for (int i = 0; i < CLIENTS; i++) {
		free(cl[i].in);
		cl[i] = (client){ .fd = -1 };
	}
	return 0;
}
