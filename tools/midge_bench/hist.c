/*
 * tools/midge_bench/hist.c - latency histogram with logarithmic buckets (the HdrHistogram
 * idea): values below 128 ns are exact, above that each power of two is split into 64
 * buckets, so any value is kept within 1/64 (~1.6%). Fixed size (20 KiB), no allocation per
 * sample: adding is a count-leading-zeros and an increment.
 */
#include "tools/midge_bench/bench.h"

#include <string.h>

static unsigned bucket_of(uint64_t v)
{
	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	if (v >> HIST_MAX_EXP)
		v = (1ull << HIST_MAX_EXP) - 1;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - HIST_SUB_BITS;
	return shift * HIST_SUB + (unsigned)(v >> shift);
}

/* The highest value that falls into bucket i, so percentiles never understate. */
static uint64_t bucket_top(unsigned i)
{
	if (i < 2 * HIST_SUB)
		return i;
	unsigned shift = i / HIST_SUB - 1;
	uint64_t m = i - shift * HIST_SUB;
	return ((m + 1) << shift) - 1;
}

void mb_hist_init(mb_hist *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

void mb_hist_add(mb_hist *h, uint64_t v)
{
	h->b[bucket_of(v)]++;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
	if (v < h->min)
		h->min = v;
}

void mb_hist_merge(mb_hist *into, const mb_hist *h)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->b[i] += h->b[i];
	into->n += h->n;
	into->sum += h->sum;
	if (h->max > into->max)
		into->max = h->max;
	if (h->min < into->min)
		into->min = h->min;
}

uint64_t mb_hist_pct(const mb_hist *h, double pct)
{
	if (!h->n)
		return 0;
	if (pct >= 100.0)
		return h->max;
	/* the smallest value with at least pct% of the samples at or below it */
	uint64_t want = (uint64_t)((double)h->n * pct / 100.0 + 0.999999);
	if (want == 0)
		want = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want) {
			uint64_t v = bucket_top(i);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}
