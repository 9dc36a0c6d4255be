/*
 * test/fuzz/fuzz_net_framer.c - the stream framer on arbitrary streams. Input: 4 bytes of
 * setup (level, maximum packet size, spare byte, how reads are cut), then the stream. The same
 * stream fed whole, in reads of varying size (some into a lent buffer) and one byte at a time
 * must yield the same packets (sizes and bytes) and end the same way: how TCP cuts a stream
 * never changes what the broker or the client sees.
 */
#include <stdlib.h>
#include <string.h>

#include "net/framer.h"

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)
#define MAXP 64

typedef struct {
	int n;
	uint32_t size[MAXP];
	uint32_t at[MAXP]; /* offset of the packet in the stream */
	int end;
} outcome;

static const uint8_t levels[4] = { 0, MG_V31, MG_V311, MG_V5 };

/* One read of at most n bytes, as a transport makes it: into the framer's room. */
static size_t take(mg_framer *f, const uint8_t *src, size_t n)
{
	size_t room;
	uint8_t *at = mg_framer_room(f, 1, 64, &room);
	MUST(at && room >= 1);
	n = n < room ? n : room;
	memcpy(at, src, n);
	mg_framer_filled(f, n);
	return n;
}

/* cut: 0 whole, 1 one byte at a time, else reads of 1 + (prng % cut) bytes */
static void run(const uint8_t *s, size_t len, uint8_t level, uint32_t max, uint8_t spare,
                unsigned cut, bool lend, outcome *o)
{
	static uint8_t lent[512];
	mg_framer f;
	mg_framer_init(&f, spare);
	memset(o, 0, sizeof *o);
	uint32_t rng = 2463534242u ^ cut, consumed = 0;
	size_t fed = 0;
	while (fed < len) {
		size_t want = cut == 0 ? len - fed : cut == 1 ? 1 : 1 + (rng % cut);
		rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
		if (lend && (rng & 1))
			mg_framer_lend(&f, lent, sizeof lent);
		fed += take(&f, s + fed, want < len - fed ? want : len - fed);
		int r;
		mg_packet p;
		while ((r = mg_framer_next(&f, level, max, &p)) > 0) {
			MUST((size_t)f.off + (size_t)r + spare <= f.cap);
			MUST(memcmp(mg_framer_data(&f), s + consumed, (size_t)r) == 0);
			if (o->n < MAXP) {
				o->size[o->n] = (uint32_t)r;
				o->at[o->n] = consumed;
			}
			o->n++;
			consumed += (uint32_t)r;
			mg_framer_consume(&f, (size_t)r);
		}
		if (r < 0) {
			o->end = r;
			break;
		}
		MUST(mg_framer_settle(&f, (rng & 2) ? 0 : 256) == 0);
		MUST(!f.lent && f.off == 0 && f.len == fed - consumed);
	}
	mg_framer_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	uint8_t level = levels[data[0] & 3];
	uint8_t spare = (data[0] >> 2) & 1;
	/* 1 to 4096: the protocol's own limit would let one header claim 256 MB per run */
	uint32_t max = 1 + ((uint32_t)(data[1] & 15) << 8 | data[2]);
	unsigned cut = 2 + (data[3] & 31);
	const uint8_t *s = data + 4;
	size_t len = size - 4;

	outcome whole, bytes, reads, lent;
	run(s, len, level, max, spare, 0, false, &whole);
	run(s, len, level, max, spare, 1, false, &bytes);
	run(s, len, level, max, spare, cut, false, &reads);
	run(s, len, level, max, spare, cut, true, &lent);
	const outcome *all[3] = { &bytes, &reads, &lent };
	for (int i = 0; i < 3; i++) {
		MUST(all[i]->n == whole.n && all[i]->end == whole.end);
		for (int j = 0; j < whole.n && j < MAXP; j++)
			MUST(all[i]->size[j] == whole.size[j] && all[i]->at[j] == whole.at[j]);
	}
	return 0;
}
