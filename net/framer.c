/* net/framer.c - the growing input buffer and the packets in it (see framer.h). */
#include "net/framer.h"

#include <stdlib.h>
#include <string.h>

void mg_framer_init(mg_framer *f, uint8_t spare)
{
	memset(f, 0, sizeof *f);
	f->spare = spare;
}

void mg_framer_free(mg_framer *f)
{
	if (!f->lent)
		free(f->buf);
	mg_framer_init(f, f->spare);
}

/* Move what is pending to the front of a buffer of exactly `cap` bytes (cap >= pending). */
static int rehome(mg_framer *f, size_t cap)
{
	size_t left = f->len - f->off;
	uint8_t *nb;
	if (f->lent) { /* never realloc a buffer we were lent */
		nb = malloc(cap);
		if (!nb)
			return MG_FRAMER_NOMEM;
		if (left)
			memcpy(nb, f->buf + f->off, left);
		f->lent = false;
	} else {
		if (f->off && left)
			memmove(f->buf, f->buf + f->off, left);
		f->len = (uint32_t)left;
		f->off = 0;
		nb = realloc(f->buf, cap);
		if (!nb)
			return MG_FRAMER_NOMEM;
	}
	f->buf = nb;
	f->cap = (uint32_t)cap;
	f->len = (uint32_t)left;
	f->off = 0;
	return 0;
}

/* Move what is pending to the front, in place (a lent buffer too: it is ours for the turn). */
static void compact(mg_framer *f)
{
	size_t left = f->len - f->off;
	if (f->off && left)
		memmove(f->buf, f->buf + f->off, left);
	f->len = (uint32_t)left;
	f->off = 0;
}

static size_t free_room(const mg_framer *f)
{
	size_t used = (size_t)f->len + f->spare;
	return f->cap > used ? f->cap - used : 0;
}

uint8_t *mg_framer_room(mg_framer *f, size_t min, size_t chunk, size_t *room)
{
	if (free_room(f) < min && f->off)
		compact(f);
	if (free_room(f) < min) {
		/* Room by `chunk` at a time, not doubling: a connection streaming at full speed holds
		 * one read's worth beyond its partial packet, however long it streams. */
		size_t cap = (size_t)(f->len - f->off) + f->spare + (chunk > min ? chunk : min);
		if (cap > UINT32_MAX || rehome(f, cap))
			return NULL;
	}
	*room = free_room(f);
	return f->buf + f->len;
}

void mg_framer_filled(mg_framer *f, size_t n)
{
	f->len += (uint32_t)n;
}

int mg_framer_feed(mg_framer *f, const void *bytes, size_t n)
{
	size_t room;
	if (!n)
		return 0;
	uint8_t *p = mg_framer_room(f, n, n, &room);
	if (!p)
		return MG_FRAMER_NOMEM;
	memcpy(p, bytes, n);
	f->len += (uint32_t)n;
	return 0;
}

bool mg_framer_lend(mg_framer *f, uint8_t *buf, size_t cap)
{
	size_t left = f->len - f->off;
	/* A small partial packet moves into the lent buffer and our own goes: a connection that
	 * streams small packets then reads into the one hot buffer and holds a few KiB between
	 * reads. Keeping a 64 KiB buffer of our own per streaming connection instead made the
	 * broker bimodal (pairs10-q0-1k 1.4M or 0.3M msgs/s): each time one of them was freed
	 * (a read ending on a packet boundary) glibc trimmed the heap and the next one faulted
	 * its pages back in. A large partial (over a quarter of buf) stays where it is. */
	if (f->lent || left + f->spare > cap / 4)
		return false;
	if (left)
		memcpy(buf, f->buf + f->off, left);
	free(f->buf);
	f->buf = buf;
	f->cap = (uint32_t)cap;
	f->len = (uint32_t)left;
	f->off = 0;
	f->lent = true;
	return true;
}

int mg_framer_next(mg_framer *f, uint8_t level, uint32_t max_size, mg_packet *p)
{
	size_t have = f->len - f->off;
	if (!have)
		return MG_NEED_MORE;
	const uint8_t *at = f->buf + f->off;
	int n = mg_decode(at, have, level, max_size, p);
	if (n != MG_NEED_MORE)
		return n;
	/* Not all here. Once the fixed header tells the size (already checked against max_size
	 * by mg_decode), make room for all of it: a large packet then arrives read by read into
	 * place instead of growing the buffer step by step. */
	int size = mg_frame(at, have, (at[0] >> 4) == MG_CONNECT ? 0 : level, max_size, NULL);
	size_t need = size > 0 ? (size_t)size + f->spare : 0;
	if (need > f->cap - f->off) {
		if (need > f->cap)
			return rehome(f, need); /* grows, never shrinks: need > cap */
		compact(f); /* it fits once moved to the front */
	}
	return MG_NEED_MORE;
}

int mg_framer_settle(mg_framer *f, size_t keep)
{
	size_t left = f->len - f->off;
	if (f->lent) { /* back from the lent buffer, with the partial packet if there is one */
		const uint8_t *src = f->buf + f->off;
		f->buf = NULL;
		f->cap = f->len = f->off = 0;
		f->lent = false;
		if (!left)
			return 0;
		size_t cap = left + f->spare < 4096 ? 4096 : left + f->spare;
		uint8_t *nb = malloc(cap);
		if (!nb)
			return MG_FRAMER_NOMEM;
		memcpy(nb, src, left);
		f->buf = nb;
		f->cap = (uint32_t)cap;
		f->len = (uint32_t)left;
		return 0;
	}
	if (f->off) {
		memmove(f->buf, f->buf + f->off, left);
		f->len = (uint32_t)left;
		f->off = 0;
	}
	if (keep == 0) {
		if (!left) { /* holds nothing: hold no memory */
			free(f->buf);
			f->buf = NULL;
			f->cap = 0;
		}
	} else if (keep != MG_FRAMER_KEEP_ALL && f->cap > 4 * keep && left + f->spare <= keep) {
		uint8_t *nb = realloc(f->buf, keep); /* a large packet has gone: its memory too */
		if (nb) {
			f->buf = nb;
			f->cap = (uint32_t)keep;
		}
	}
	return 0;
}
