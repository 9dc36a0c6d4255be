/*
 * proto/codec.h - private to proto/: a bounded reader and a counting writer shared by the
 * decoders and encoders. Other layers include proto/proto.h only.
 *
 * The reader never moves past `end`; every read checks first and reports MG_E_SHORT, so a
 * decoder cannot read past the packet whatever its length fields say.
 * The writer runs twice over the same code: once with p == NULL to count (so sizes are exact
 * by construction), then with a buffer to write.
 */
#ifndef MG_PROTO_CODEC_H
#define MG_PROTO_CODEC_H

#include <string.h>

#include "proto/proto.h"

typedef struct mg_rd {
	const uint8_t *p;
	const uint8_t *end;
} mg_rd;

static inline size_t mg_rd_left(const mg_rd *r) { return (size_t)(r->end - r->p); }

static inline int mg_rd_u8(mg_rd *r, uint8_t *v)
{
	if (r->p >= r->end)
		return MG_E_SHORT;
	*v = *r->p++;
	return MG_OK;
}

static inline int mg_rd_u16(mg_rd *r, uint16_t *v)
{
	if (mg_rd_left(r) < 2)
		return MG_E_SHORT;
	*v = (uint16_t)(r->p[0] << 8 | r->p[1]);
	r->p += 2;
	return MG_OK;
}

static inline int mg_rd_u32(mg_rd *r, uint32_t *v)
{
	if (mg_rd_left(r) < 4)
		return MG_E_SHORT;
	*v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
	r->p += 4;
	return MG_OK;
}

/* Two-byte length + bytes, a view into the packet; no UTF-8 check (binary data). */
static inline int mg_rd_bin(mg_rd *r, mg_bytes *b)
{
	uint16_t n;
	int e = mg_rd_u16(r, &n);
	if (e)
		return e;
	if (mg_rd_left(r) < n)
		return MG_E_SHORT;
	b->p = r->p;
	b->len = n;
	r->p += n;
	return MG_OK;
}

/* A UTF-8 Encoded String: checked for well-formedness and U+0000 [MQTT-1.5.4-1/2]. */
static inline int mg_rd_str(mg_rd *r, mg_bytes *b)
{
	int e = mg_rd_bin(r, b);
	return e ? e : mg_utf8_check(b->p, b->len);
}

/* Variable Byte Integer inside a packet body: a truncated one is a field overrun. Property
 * identifiers and most lengths are one byte, so that case is inline. */
int mg_rd_varint_slow(mg_rd *r, uint32_t *v);
static inline int mg_rd_varint(mg_rd *r, uint32_t *v)
{
	if (r->p < r->end && *r->p < 0x80) {
		*v = *r->p++;
		return MG_OK;
	}
	return mg_rd_varint_slow(r, v);
}

typedef struct mg_wr {
	uint8_t *p; /* NULL: count only */
	size_t n;
} mg_wr;

static inline void mg_wr_u8(mg_wr *w, uint8_t v)
{
	if (w->p)
		w->p[w->n] = v;
	w->n++;
}

static inline void mg_wr_u16(mg_wr *w, uint16_t v)
{
	if (w->p) {
		w->p[w->n] = (uint8_t)(v >> 8);
		w->p[w->n + 1] = (uint8_t)v;
	}
	w->n += 2;
}

static inline void mg_wr_u32(mg_wr *w, uint32_t v)
{
	if (w->p) {
		w->p[w->n] = (uint8_t)(v >> 24);
		w->p[w->n + 1] = (uint8_t)(v >> 16);
		w->p[w->n + 2] = (uint8_t)(v >> 8);
		w->p[w->n + 3] = (uint8_t)v;
	}
	w->n += 4;
}

static inline void mg_wr_raw(mg_wr *w, const uint8_t *s, size_t len)
{
	if (w->p && len)
		memcpy(w->p + w->n, s, len);
	w->n += len;
}

/* Length-prefixed string or binary; the caller has checked len <= 65535. */
static inline void mg_wr_bin(mg_wr *w, mg_bytes b)
{
	mg_wr_u16(w, (uint16_t)b.len);
	mg_wr_raw(w, b.p, b.len);
}

static inline void mg_wr_varint(mg_wr *w, uint32_t v)
{
	if (w->p)
		w->n += mg_varint_encode(w->p + w->n, v);
	else
		w->n += mg_varint_size(v);
}

/* Properties (props.c). Decode a length-prefixed property block for ptype (an enum mg_ptype
 * or MG_PTYPE_WILL), with every check of section 2.2.2.2; sets the defaults first. */
int mg_props_decode(mg_rd *r, int ptype, mg_props *out);
/* Zero with the defaults of absent properties (request problem info 1, maximum QoS 2, ...). */
void mg_props_defaults(mg_props *p);
/* Writes the properties without their length (false if one cannot be encoded). */
bool mg_props_write_body(mg_wr *w, const mg_props *p);
/* Writes length + properties; returns false if they cannot be encoded (too long). */
bool mg_props_write(mg_wr *w, const mg_props *p);
/* The same with the ids in order[0..n) first, in that order (those present), then the
 * others in ascending order, then subscription ids and raw: for a packet whose bytes peers
 * compare with another implementation's where the spec leaves the order free. */
bool mg_props_write_body_ordered(mg_wr *w, const mg_props *p, const uint8_t *order, size_t n);
bool mg_props_write_ordered(mg_wr *w, const mg_props *p, const uint8_t *order, size_t n);
/* Property block size without its length, or SIZE_MAX if it cannot be encoded. */
size_t mg_props_body_size(const mg_props *p);

/* Per-packet decoders (decode_*.c): read the body in r for the given level into out.
 * They need not consume all of r: mg_decode reports what is left as MG_E_TRAILING. */
int mg_decode_connect(mg_rd *r, mg_packet *out);
int mg_decode_subscribe(mg_rd *r, uint8_t level, mg_packet *out);
int mg_decode_unsubscribe(mg_rd *r, uint8_t level, mg_packet *out);
int mg_decode_suback(mg_rd *r, uint8_t level, mg_packet *out);
int mg_decode_unsuback(mg_rd *r, uint8_t level, mg_packet *out);

#endif
