/*
 * test/unit/test_net_framer.c - the stream framer (net/framer.h) that the broker, libmidge and
 * midge_bench read through. Each case of the table is a byte stream with the packets it must
 * yield (type and size, fixed by the spec's fixed header) and how it ends (needs more, or the
 * error); every case runs fed whole, one byte at a time, in 7-byte reads through
 * mg_framer_room, and read into a lent buffer, and must give the same answer each way.
 */
#include "t.h"

#include "net/framer.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define MAXP 8

typedef struct {
	const char *name;
	uint8_t level;
	uint32_t max;          /* max_size given to mg_framer_next, 0 = the protocol's limit */
	size_t len;
	uint8_t bytes[64];
	int n;                 /* packets expected */
	uint8_t type[MAXP];
	uint32_t size[MAXP];
	int end;               /* mg_framer_next's last answer: 0 (needs more) or the error */
	size_t err_at;         /* bytes fed when the error must show (fed one at a time) */
} fcase;

static const fcase cases[] = {
	{ "pingreq", 4, 0, 2, { 0xC0, 0x00 }, 1, { MG_PINGREQ }, { 2 }, 0, 0 },
	{ "two packets back to back", 4, 0, 6, { 0xD0, 0x00, 0x40, 0x02, 0x00, 0x01 },
	  2, { MG_PINGRESP, MG_PUBACK }, { 2, 4 }, 0, 0 },
	{ "publish a/b hi", 4, 0, 9, { 0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i' },
	  1, { MG_PUBLISH }, { 9 }, 0, 0 },
	{ "a packet and the start of the next", 4, 0, 5, { 0xC0, 0x00, 0x30, 0x07, 0x00 },
	  1, { MG_PINGREQ }, { 2 }, 0, 0 },
	{ "header only, remaining length not ended", 4, 0, 3, { 0x30, 0x80, 0x80 }, 0, { 0 }, { 0 }, 0, 0 },
	{ "remaining length of five bytes", 4, 0, 6, { 0x30, 0x80, 0x80, 0x80, 0x80, 0x01 },
	  0, { 0 }, { 0 }, MG_E_VARINT, 5 },
	{ "5.0: remaining length not minimal", 5, 0, 3, { 0xC0, 0x80, 0x00 }, 0, { 0 }, { 0 },
	  MG_E_VARINT_NONMINIMAL, 3 },
	{ "3.1.1: remaining length not minimal is accepted", 4, 0, 3, { 0xC0, 0x80, 0x00 },
	  1, { MG_PINGREQ }, { 3 }, 0, 0 },
	{ "reserved flags of PUBREL wrong, refused from byte 0", 4, 0, 4, { 0x60, 0x02, 0x00, 0x01 },
	  0, { 0 }, { 0 }, MG_E_FLAGS, 1 },
	{ "type 0 after a good packet", 4, 0, 4, { 0xC0, 0x00, 0x00, 0x00 },
	  1, { MG_PINGREQ }, { 2 }, MG_E_TYPE, 3 },
	{ "exactly max_size", 4, 9, 9, { 0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i' },
	  1, { MG_PUBLISH }, { 9 }, 0, 0 },
	{ "one over max_size, refused from its header", 4, 8, 9,
	  { 0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i' }, 0, { 0 }, { 0 }, MG_E_TOO_LARGE, 2 },
	{ "the largest remaining length over max_size, refused before it ends", 4, 1000, 5,
	  { 0x30, 0xFF, 0xFF, 0xFF, 0x7F }, 0, { 0 }, { 0 }, MG_E_TOO_LARGE, 3 },
	{ "oversize and not minimal: the same answer however it arrives", 5, 100, 5,
	  { 0x30, 0xFF, 0xFF, 0x80, 0x00 }, 0, { 0 }, { 0 }, MG_E_TOO_LARGE, 2 },
	{ "oversize start of a malformed length: the same answer however it arrives", 5, 33, 6,
	  { 0x20, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF }, 0, { 0 }, { 0 }, MG_E_TOO_LARGE, 2 },
	{ "malformed length within the limit", 4, 0, 5, { 0xC0, 0xFF, 0xFF, 0xFF, 0xFF },
	  0, { 0 }, { 0 }, MG_E_VARINT, 5 },
	{ "a field that overruns the packet", 4, 0, 4, { 0x30, 0x02, 0x00, 0x05 },
	  0, { 0 }, { 0 }, MG_E_SHORT, 4 },
	{ "5.0 disconnect with no reason code", 5, 0, 2, { 0xE0, 0x00 }, 1, { MG_DISCONNECT }, { 2 }, 0, 0 },
};

typedef struct {
	int n;
	uint8_t type[MAXP];
	uint32_t size[MAXP];
	int end;
	size_t fed_at_end; /* bytes fed when the error showed */
} outcome;

enum mode { WHOLE, BYTEWISE, READS, LENT };

/* Hand out every whole packet; stop at the first error. Returns the last answer. */
static int drain(mg_framer *f, const fcase *k, outcome *o, size_t fed)
{
	int r;
	mg_packet p;
	while ((r = mg_framer_next(f, k->level, k->max, &p)) > 0) {
		if (o->n < MAXP) {
			o->type[o->n] = p.type;
			o->size[o->n] = (uint32_t)r;
			/* the packet is where the framer says, and the spare byte after it exists */
			CHECK(mg_framer_data(f)[0] >> 4 == p.type);
			CHECK((size_t)f->off + (size_t)r + f->spare <= f->cap);
		}
		o->n++;
		mg_framer_consume(f, (size_t)r);
	}
	if (r < 0) {
		o->end = r;
		o->fed_at_end = fed;
	}
	return r;
}

static void run(const fcase *k, enum mode m, uint8_t spare, outcome *o)
{
	mg_framer f;
	mg_framer_init(&f, spare);
	memset(o, 0, sizeof *o);
	uint8_t lend[16];
	size_t fed = 0;
	while (fed < k->len) {
		size_t step = m == WHOLE ? k->len : m == BYTEWISE ? 1 : 7;
		if (step > k->len - fed)
			step = k->len - fed;
		if (m == WHOLE || m == BYTEWISE) {
			REQUIRE(mg_framer_feed(&f, k->bytes + fed, step) == 0);
		} else {
			if (m == LENT)
				mg_framer_lend(&f, lend, sizeof lend);
			size_t room;
			uint8_t *at = mg_framer_room(&f, 1, 4, &room);
			REQUIRE(at && room >= 1);
			if (step > room)
				step = room;
			memcpy(at, k->bytes + fed, step);
			mg_framer_filled(&f, step);
		}
		fed += step;
		if (drain(&f, k, o, fed) < 0)
			break;
		REQUIRE(mg_framer_settle(&f, 0) == 0);
		CHECK(!f.lent);
		CHECK(f.off == 0);
	}
	mg_framer_free(&f);
}

TEST(table_each_way_of_feeding)
{
	static const char *mode_name[] = { "whole", "one byte at a time", "7-byte reads", "lent buffer" };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const fcase *k = &cases[i];
		for (int m = WHOLE; m <= LENT; m++) {
			for (uint8_t spare = 0; spare <= 1; spare++) {
				outcome o;
				run(k, (enum mode)m, spare, &o);
				bool ok = o.n == k->n && o.end == k->end;
				for (int j = 0; ok && j < k->n; j++)
					ok = o.type[j] == k->type[j] && o.size[j] == k->size[j];
				if (ok && m == BYTEWISE && k->end)
					ok = o.fed_at_end == k->err_at;
				if (!ok)
					t_fail(__FILE__, __LINE__, "case \"%s\", fed %s, spare %u: %d packets "
					       "(first %u bytes), ended %d after %zu bytes; expected %d, %d after %zu",
					       k->name, mode_name[m], spare, o.n, o.size[0], o.end, o.fed_at_end,
					       k->n, k->end, k->err_at);
			}
		}
	}
}

/* A PUBLISH of topic "t" and `payload` bytes: 3.1.1, QoS 0. Returns its size. */
static size_t publish(uint8_t *out, size_t payload)
{
	size_t rem = 3 + payload, i = 1;
	out[0] = 0x30;
	for (size_t v = rem;; v >>= 7) {
		out[i++] = (uint8_t)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
		if (v <= 0x7F)
			break;
	}
	out[i++] = 0x00;
	out[i++] = 0x01;
	out[i++] = 't';
	for (size_t j = 0; j < payload; j++)
		out[i++] = (uint8_t)(j * 7 + 1);
	return i;
}

/* Remaining length at each width's edges (1 to 3 bytes: 127/128, 16383/16384), fed whole and
 * one byte at a time; the payload view holds the payload's bytes. */
TEST(remaining_length_edges)
{
	static const size_t rems[] = { 3, 127, 128, 16383, 16384, 70000 };
	static const size_t hdr[] = { 2, 2, 3, 3, 4, 4 };
	uint8_t *buf = malloc(80000);
	REQUIRE(buf);
	for (size_t i = 0; i < sizeof rems / sizeof rems[0]; i++) {
		size_t rem = rems[i];
		size_t n = publish(buf, rem - 3);
		CHECK_EQ_INT(n, hdr[i] + rem);
		for (int bytewise = 0; bytewise <= 1; bytewise++) {
			mg_framer f;
			mg_framer_init(&f, 1);
			int got = 0;
			mg_packet p;
			for (size_t fed = 0; fed < n;) {
				size_t step = bytewise ? 1 : n;
				REQUIRE(mg_framer_feed(&f, buf + fed, step) == 0);
				fed += step;
				int r = mg_framer_next(&f, 4, 0, &p);
				if (fed < n) {
					CHECK_EQ_INT(r, 0);
					continue;
				}
				CHECK_EQ_INT(r, (int)n);
				CHECK_EQ_INT(p.u.publish.payload.len, rem - 3);
				CHECK(p.u.publish.payload.p == mg_framer_data(&f) + hdr[i] + 3);
				CHECK_MEM(p.u.publish.payload.p, buf + hdr[i] + 3, rem - 3);
				got = 1;
			}
			CHECK(got);
			mg_framer_free(&f);
		}
	}
	free(buf);
}

/* A packet larger than the buffer: once its header is here the buffer holds all of it (plus
 * the spare byte) in one allocation, so the rest arrives read by read into place. */
TEST(large_packet_gets_room_for_all_of_it)
{
	size_t payload = 200000;
	uint8_t *buf = malloc(payload + 16);
	REQUIRE(buf);
	size_t n = publish(buf, payload);
	mg_framer f;
	mg_framer_init(&f, 1);
	size_t room;
	uint8_t *at = mg_framer_room(&f, 4096, 4096, &room);
	REQUIRE(at);
	CHECK_EQ_INT(room, 4096);
	memcpy(at, buf, 4096);
	mg_framer_filled(&f, 4096);
	mg_packet p;
	CHECK_EQ_INT(mg_framer_next(&f, 4, 0, &p), 0);
	CHECK_EQ_INT(f.cap, n + 1);
	size_t fed = 4096;
	while (fed < n) {
		at = mg_framer_room(&f, 1, 4096, &room);
		REQUIRE(at);
		CHECK_EQ_INT(room, n - fed); /* no growth: it was made room for */
		size_t step = room < 65536 ? room : 65536;
		memcpy(at, buf + fed, step);
		mg_framer_filled(&f, step);
		fed += step;
		int r = mg_framer_next(&f, 4, 0, &p);
		CHECK_EQ_INT(r, fed < n ? 0 : (int)n);
	}
	mg_framer_consume(&f, n);
	/* Gone: a buffer over 4 * keep holding less than keep shrinks to keep. */
	CHECK_EQ_INT(mg_framer_settle(&f, 4096), 0);
	CHECK_EQ_INT(f.cap, 4096);
	CHECK_EQ_INT(f.len, 0);
	mg_framer_free(&f);
	free(buf);
}

/* The broker's way: reads land in the worker's buffer; an idle connection holds no memory; a
 * partial packet is copied into the connection's own buffer; a large packet leaves the lent
 * buffer at once (which is never reallocated). */
TEST(lent_buffer)
{
	static uint8_t worker[64];
	mg_framer f;
	mg_framer_init(&f, 0);
	CHECK(mg_framer_lend(&f, worker, sizeof worker));
	size_t room;
	uint8_t *at = mg_framer_room(&f, 16, 64, &room);
	CHECK(at == worker);
	CHECK_EQ_INT(room, sizeof worker);
	/* PINGREQ, then the first 3 bytes of "publish a/b hi" */
	const uint8_t in[] = { 0xC0, 0x00, 0x30, 0x07, 0x00 };
	memcpy(at, in, sizeof in);
	mg_framer_filled(&f, sizeof in);
	mg_packet p;
	CHECK_EQ_INT(mg_framer_next(&f, 4, 0, &p), 2);
	mg_framer_consume(&f, 2);
	CHECK_EQ_INT(mg_framer_next(&f, 4, 0, &p), 0);
	CHECK_EQ_INT(mg_framer_settle(&f, 0), 0);
	CHECK(!f.lent && f.buf && f.buf != worker);
	CHECK_EQ_INT(f.len, 3);
	CHECK_MEM(f.buf, in + 2, 3);
	/* a small partial packet moves into the lent buffer, and the connection's own goes */
	CHECK(mg_framer_lend(&f, worker, sizeof worker));
	CHECK(f.lent && f.buf == worker && f.off == 0);
	CHECK_EQ_INT(f.len, 3);
	CHECK_MEM(worker, in + 2, 3);
	CHECK(!mg_framer_lend(&f, worker, sizeof worker)); /* already lent */
	const uint8_t rest[] = { 0x03, 'a', '/', 'b', 'h', 'i' };
	at = mg_framer_room(&f, 16, 64, &room);
	CHECK(at == worker + 3);
	memcpy(at, rest, sizeof rest);
	mg_framer_filled(&f, sizeof rest);
	CHECK_EQ_INT(mg_framer_next(&f, 4, 0, &p), 9);
	mg_framer_consume(&f, 9);
	CHECK_EQ_INT(mg_framer_settle(&f, 0), 0);
	CHECK(f.buf == NULL && f.cap == 0); /* idle: no input memory */

	/* a packet larger than the lent buffer moves to one of its own */
	CHECK(mg_framer_lend(&f, worker, sizeof worker));
	const uint8_t hdr[] = { 0x30, 0xC8, 0x01, 0x00, 0x01, 't' }; /* remaining length 200 */
	at = mg_framer_room(&f, 1, 64, &room);
	memcpy(at, hdr, sizeof hdr);
	mg_framer_filled(&f, sizeof hdr);
	CHECK_EQ_INT(mg_framer_next(&f, 4, 0, &p), 0);
	CHECK(!f.lent && f.buf != worker);
	CHECK_EQ_INT(f.cap, 203);
	CHECK_MEM(f.buf, hdr, sizeof hdr);
	/* more than a quarter of the lent buffer held: it stays in its own buffer */
	const uint8_t more[12] = { 0 };
	CHECK_EQ_INT(mg_framer_feed(&f, more, sizeof more), 0);
	uint8_t *own = f.buf;
	CHECK(!mg_framer_lend(&f, worker, sizeof worker));
	CHECK(!f.lent && f.buf == own && f.len == 18);
	mg_framer_free(&f);
}

/* Keep policies: 0 frees an empty buffer, KEEP_ALL keeps everything, keep K shrinks only a
 * buffer over 4 K that holds less than K. */
TEST(settle_keep)
{
	mg_framer f;
	mg_framer_init(&f, 0);
	const uint8_t ping[] = { 0xC0, 0x00 };
	mg_packet p;
	CHECK_EQ_INT(mg_framer_feed(&f, ping, 2), 0);
	size_t room;
	REQUIRE(mg_framer_room(&f, 100000, 100000, &room));
	uint32_t cap = f.cap;
	CHECK(cap >= 100002);
	CHECK_EQ_INT(mg_framer_next(&f, 4, 0, &p), 2);
	mg_framer_consume(&f, 2);
	CHECK_EQ_INT(mg_framer_settle(&f, MG_FRAMER_KEEP_ALL), 0);
	CHECK_EQ_INT(f.cap, cap);
	CHECK_EQ_INT(mg_framer_settle(&f, 30000), 0); /* cap < 4 * 30000: kept */
	CHECK_EQ_INT(f.cap, cap);
	CHECK_EQ_INT(mg_framer_settle(&f, 20000), 0);
	CHECK_EQ_INT(f.cap, 20000);
	CHECK_EQ_INT(mg_framer_settle(&f, 0), 0);
	CHECK(f.buf == NULL && f.cap == 0);
	mg_framer_free(&f);
}

/* A packet left in place (the broker's CONNECT, handed to another worker) is returned again;
 * settle moves it to the front. */
TEST(unconsumed_packet_is_returned_again)
{
	mg_framer f;
	mg_framer_init(&f, 0);
	const uint8_t in[] = { 0xC0, 0x00, 0xD0, 0x00 };
	CHECK_EQ_INT(mg_framer_feed(&f, in, sizeof in), 0);
	mg_packet p;
	CHECK_EQ_INT(mg_framer_next(&f, 4, 0, &p), 2);
	mg_framer_consume(&f, 2);
	CHECK_EQ_INT(mg_framer_next(&f, 4, 0, &p), 2);
	CHECK_EQ_INT(p.type, MG_PINGRESP);
	CHECK_EQ_INT(mg_framer_settle(&f, 0), 0);
	CHECK_EQ_INT(f.off, 0);
	CHECK_EQ_INT(mg_framer_pending(&f), 2);
	CHECK_EQ_INT(mg_framer_next(&f, 4, 0, &p), 2);
	CHECK_EQ_INT(p.type, MG_PINGRESP);
	mg_framer_drop(&f);
	CHECK_EQ_INT(mg_framer_pending(&f), 0);
	CHECK_EQ_INT(mg_framer_next(&f, 4, 0, &p), 0);
	mg_framer_free(&f);
}

/* A partial packet at the end of a large buffer is moved to the front, never given a buffer
 * of its own size: the next read still gets the whole buffer (midge_bench's subscriber once
 * read 10 bytes at a time after this). */
TEST(partial_packet_at_the_end_keeps_the_buffer)
{
	mg_framer f;
	mg_framer_init(&f, 0);
	size_t room;
	uint8_t *at = mg_framer_room(&f, 4096, 4096, &room);
	REQUIRE(at && room == 4096);
	/* PINGREQs up to 4 bytes before the end, then the first 4 bytes of a 9-byte PUBLISH */
	for (size_t i = 0; i < 4092; i += 2) {
		at[i] = 0xC0;
		at[i + 1] = 0x00;
	}
	const uint8_t pub[] = { 0x30, 0x07, 0x00, 0x03 };
	memcpy(at + 4092, pub, 4);
	mg_framer_filled(&f, 4096);
	mg_packet p;
	int r, n = 0;
	while ((r = mg_framer_next(&f, 4, 0, &p)) > 0) {
		mg_framer_consume(&f, (size_t)r);
		n++;
	}
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(n, 2046);
	CHECK_EQ_INT(f.cap, 4096);
	CHECK_EQ_INT(mg_framer_settle(&f, MG_FRAMER_KEEP_ALL), 0);
	CHECK_EQ_INT(f.cap, 4096);
	CHECK_MEM(f.buf, pub, 4);
	at = mg_framer_room(&f, 1, 4096, &room);
	CHECK_EQ_INT(room, 4092);
	mg_framer_free(&f);
}
