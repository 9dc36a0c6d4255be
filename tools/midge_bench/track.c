/*
 * tools/midge_bench/track.c - lost, duplicated and out-of-order messages.
 *
 * A subscriber keeps, per publisher it expects, the lowest sequence number not yet seen
 * (`next`) and a ring of TRACK_W seen-flags above it. Memory is fixed (520 bytes per pair)
 * whatever the run length. A number below `next` was seen already: a duplicate. A number
 * TRACK_W or more above `next` pushes the ring forward and the skipped numbers are given up
 * (they count as lost at the end: expected minus unique). Out of order means a number
 * arrived after a higher one from the same publisher.
 */
#include "tools/midge_bench/bench.h"

#define BIT(s) (1ull << ((s) & 63))
#define WORD(t, s) ((t)->bits[((s) / 64) % (TRACK_W / 64)])

int mb_track_see(mb_track *t, uint32_t seq)
{
	if (seq < t->next) {
		t->dup++;
		return 0;
	}
	if (seq - t->next >= 2 * TRACK_W) { /* a long gap: forget everything */
		for (unsigned i = 0; i < TRACK_W / 64; i++)
			t->bits[i] = 0;
		t->next = seq - TRACK_W + 1;
	}
	while (seq - t->next >= TRACK_W) { /* give up on the oldest gap */
		WORD(t, t->next) &= ~BIT(t->next);
		t->next++;
	}
	if (WORD(t, seq) & BIT(seq)) {
		t->dup++;
		return 0;
	}
	if (seq < t->top)
		t->ooo++;
	else
		t->top = seq + 1;
	WORD(t, seq) |= BIT(seq);
	t->unique++;
	while (WORD(t, t->next) & BIT(t->next)) { /* slide over what is complete */
		WORD(t, t->next) &= ~BIT(t->next);
		t->next++;
	}
	return 1;
}

int mb_sring_see(_Atomic uint64_t *ring, uint32_t seq)
{
	uint32_t s = seq % SRING_BITS;
	uint64_t old = atomic_fetch_or_explicit(&ring[s / 64], BIT(s), memory_order_relaxed);
	return !(old & BIT(s));
}

void mb_sring_clear(_Atomic uint64_t *ring, uint32_t seq)
{
	uint32_t s = seq % SRING_BITS;
	if (atomic_load_explicit(&ring[s / 64], memory_order_relaxed) & BIT(s))
		atomic_fetch_and_explicit(&ring[s / 64], ~BIT(s), memory_order_relaxed);
}
