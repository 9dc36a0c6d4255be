/*
 * proto/decode_sub.c - SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK (sections 3.8 - 3.11), and
 * iterating the filters of a decoded SUBSCRIBE / UNSUBSCRIBE.
 * Every entry is validated here, so the receiver iterates without checking again.
 */
#include "proto/codec.h"

/* A filter, plain or $share/{ShareName}/{filter}; *shared tells which. */
static int check_filter(mg_bytes f, bool *shared)
{
	int s = mg_share_parse(f.p, f.len, NULL, NULL);
	*shared = s == 1;
	if (s < 0)
		return s;
	return s == 1 ? MG_OK : mg_topic_filter_check(f.p, f.len);
}

static int packet_id(mg_rd *r, mg_packet *out)
{
	int e = mg_rd_u16(r, &out->packet_id);
	if (e)
		return e;
	return out->packet_id ? MG_OK : MG_E_PACKET_ID; /* [MQTT-2.3.1-1] */
}

static int check_options(uint8_t o, uint8_t level, bool shared)
{
	if ((o & 3) == 3)
		return MG_E_QOS;
	if (level != MG_V5)
		return o & 0xFC ? MG_E_SUB_OPTIONS : MG_OK; /* 3.1.1 [MQTT-3-8.3-4] (sic) */
	if (o & 0xC0)
		return MG_E_SUB_OPTIONS; /* reserved bits [MQTT-3.8.3-5] */
	if (((o >> 4) & 3) == 3)
		return MG_E_SUB_OPTIONS_PROTOCOL; /* retain handling 3: a Protocol Error */
	if (shared && (o & 0x04))
		return MG_E_SUB_OPTIONS_PROTOCOL; /* No Local on a shared subscription [MQTT-3.8.3-4] (5.0) */
	return MG_OK;
}

static int decode_filters(mg_rd *r, uint8_t level, mg_packet *out, bool with_options)
{
	int e = packet_id(r, out);
	if (e)
		return e;
	if (level == MG_V5 && (e = mg_props_decode(r, out->type, &out->props)))
		return e;
	out->u.sub.raw.p = r->p;
	out->u.sub.raw.len = (uint32_t)mg_rd_left(r);
	out->u.sub.count = 0;
	if (mg_rd_left(r) == 0)
		return MG_E_NO_TOPICS; /* [MQTT-3.8.3-3], [MQTT-3.10.3-2] */
	while (mg_rd_left(r)) {
		mg_bytes f;
		bool shared;
		uint8_t o = 0;
		/* The options byte is read before the filter is judged: a packet that ends where
		 * it should be is malformed, whatever the filter (even an empty one). */
		if ((e = mg_rd_str(r, &f)) || (with_options && (e = mg_rd_u8(r, &o))))
			return e;
		if ((e = check_filter(f, &shared)))
			return e;
		if (with_options && (e = check_options(o, level, shared)))
			return e;
		out->u.sub.count++; /* at most a packet's length / 3: fits in 32 bits */
	}
	return MG_OK;
}

int mg_decode_subscribe(mg_rd *r, uint8_t level, mg_packet *out)
{
	return decode_filters(r, level, out, true);
}

int mg_decode_unsubscribe(mg_rd *r, uint8_t level, mg_packet *out)
{
	return decode_filters(r, level, out, false);
}

static int decode_codes(mg_rd *r, uint8_t level, mg_packet *out)
{
	out->u.codes.p = r->p;
	out->u.codes.len = (uint32_t)mg_rd_left(r);
	if (out->u.codes.len == 0)
		return MG_E_NO_TOPICS; /* one code per filter, and there was at least one filter */
	for (uint32_t i = 0; i < out->u.codes.len; i++) {
		uint8_t c = out->u.codes.p[i];
		if (level == MG_V5) {
			if (!mg_reason_allowed(c, out->type))
				return MG_E_REASON_CODE;
		} else if (c > 2 && c != 0x80) {
			return MG_E_SUBACK_CODE; /* [MQTT-3.9.3-2] (3.1.1) */
		}
	}
	r->p = r->end;
	return MG_OK;
}

int mg_decode_suback(mg_rd *r, uint8_t level, mg_packet *out)
{
	int e = packet_id(r, out);
	if (e)
		return e;
	if (level == MG_V5 && (e = mg_props_decode(r, MG_SUBACK, &out->props)))
		return e;
	return decode_codes(r, level, out);
}

int mg_decode_unsuback(mg_rd *r, uint8_t level, mg_packet *out)
{
	int e = packet_id(r, out);
	if (e)
		return e;
	out->u.codes.p = r->p;
	out->u.codes.len = 0;
	if (level != MG_V5)
		return MG_OK; /* 3.x UNSUBACK is just the packet identifier */
	if ((e = mg_props_decode(r, MG_UNSUBACK, &out->props)))
		return e;
	return decode_codes(r, level, out);
}
