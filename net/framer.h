/*
 * net/framer.h - the one stream framer: the growing input buffer of a connection and the
 * packets in it. The broker's connections, the client library and midge_bench all read through
 * one, so the rules live in one place: a packet is handed out only when all of it is here, a
 * packet larger than the receiver's maximum is refused from its fixed header (before its body
 * is buffered), and the buffer grows to hold one large packet and gives the memory back after.
 *
 * It takes bytes, never an fd: a transport reads into mg_framer_room() (plain TCP, or TLS
 * decrypting in place), or hands over bytes it produced with mg_framer_feed() (WebSocket
 * frames). What a connection does with a packet stays with the caller: a bridge (a client
 * connection inside the broker) reads through the same framer as the client library.
 *
 * Use, one read at a time:
 *     p = mg_framer_room(f, min, chunk, &room); n = read(p, room); mg_framer_filled(f, n);
 *     while ((r = mg_framer_next(f, level, max, &pkt)) > 0) { handle(&pkt); mg_framer_consume(f, r); }
 *     if (r < 0) error; mg_framer_settle(f, keep);
 * The packet's views (topic, payload, properties) point into the buffer: they hold until the
 * next mg_framer_next, _room, _feed or _settle.
 */
#ifndef MG_NET_FRAMER_H
#define MG_NET_FRAMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

/* mg_framer_next/_feed: no memory for the buffer (not an mg_err: no reason code fits). */
#define MG_FRAMER_NOMEM (MG_E_MIN - 1)
/* mg_framer_settle: never give buffer memory back (a generator that reuses it every turn). */
#define MG_FRAMER_KEEP_ALL UINT32_MAX

typedef struct mg_framer {
	uint8_t *buf;  /* own (malloc'd, or NULL), or lent by mg_framer_lend */
	uint32_t len;  /* bytes held: buf[0..len) */
	uint32_t cap;
	uint32_t off;  /* buf[0..off) is handed out and consumed */
	uint8_t spare; /* bytes kept free after the last byte held (the client's '\0') */
	bool lent;
} mg_framer;

/* spare: bytes always left free after what is held, so a caller may write a '\0' after a
 * payload that ends the buffer. A zeroed mg_framer is one with spare 0. */
void mg_framer_init(mg_framer *f, uint8_t spare);
void mg_framer_free(mg_framer *f);

/* Bytes held that no packet has taken yet. */
static inline size_t mg_framer_pending(const mg_framer *f)
{
	return f->len - f->off;
}
/* The first byte not consumed: the start of the packet mg_framer_next last returned. */
static inline uint8_t *mg_framer_data(const mg_framer *f)
{
	return f->buf + f->off;
}

/* Somewhere to read into, at least `min` bytes: *room gets how many may be written. The buffer
 * grows by `chunk` (plus what it holds) when less than `min` is free. NULL: no memory. */
uint8_t *mg_framer_room(mg_framer *f, size_t min, size_t chunk, size_t *room);
/* n bytes were written at mg_framer_room. */
void mg_framer_filled(mg_framer *f, size_t n);
/* Copy n bytes in (a transport that produces bytes rather than reading into ours).
 * 0 or MG_FRAMER_NOMEM. */
int mg_framer_feed(mg_framer *f, const void *bytes, size_t n);

/* Read into buf (cap bytes, the caller's, e.g. a worker's shared buffer) for this turn
 * instead of holding a buffer of our own; mg_framer_settle copies what is left of a partial
 * packet into our own buffer, and a large packet moves to one of its own at once. A partial
 * packet held (up to cap / 4 bytes) is copied to the front of buf and our buffer freed.
 * Returns whether it lent (not when more is held, or already lent: bytes stay put). */
bool mg_framer_lend(mg_framer *f, uint8_t *buf, size_t cap);

/* The next whole packet, decoded into *p at mg_framer_data(f):
 *   > 0  its size: handle it, then mg_framer_consume(f, size) (or leave it to be returned
 *        again, e.g. a CONNECT passed to another thread with the connection);
 *   0    not all here: when its size is known and more than fits, the buffer was made room for
 *        all of it (so one read at a time can complete it);
 *   < 0  an mg_err from the decoder (MG_E_TOO_LARGE: its size exceeds max_size, 0 = the
 *        protocol's limit), or MG_FRAMER_NOMEM. The stream cannot be framed past it.
 * level and max_size as for mg_decode. */
int mg_framer_next(mg_framer *f, uint8_t level, uint32_t max_size, mg_packet *p);
static inline void mg_framer_consume(mg_framer *f, size_t n)
{
	f->off += (uint32_t)n;
}
/* Drop every byte held (the connection ended, or what follows is not to be handled). */
static inline void mg_framer_drop(mg_framer *f)
{
	f->off = f->len = 0;
}

/* After a turn: move the partial packet left to the front, back into our own buffer if it was
 * lent, and give memory back: keep 0 frees the buffer whenever it holds nothing (idle
 * connections hold no input memory); otherwise a buffer over 4 * keep that holds less than
 * keep (a large packet has gone) shrinks to keep; MG_FRAMER_KEEP_ALL keeps it all.
 * 0 or MG_FRAMER_NOMEM (the bytes held are lost). */
int mg_framer_settle(mg_framer *f, size_t keep);

#endif
