/*
 * proto/sublist.c - the payload of SUBSCRIBE / UNSUBSCRIBE as a list: iterate a decoded one,
 * build one entry at a time for mg_encode (mg_packet.u.sub.raw).
 */
#include "proto/codec.h"

uint8_t mg_subopts_byte(mg_subopts o)
{
	return (uint8_t)((o.qos & 3) | (o.no_local ? 0x04 : 0) | (o.retain_as_published ? 0x08 : 0) |
	                 ((o.retain_handling & 3) << 4));
}

int mg_sub_next(const mg_packet *pkt, uint32_t *off, mg_bytes *filter, mg_subopts *opts)
{
	mg_bytes raw = pkt->u.sub.raw;
	if (*off >= raw.len)
		return 0;
	mg_rd r = {raw.p + *off, raw.p + raw.len};
	mg_bytes f;
	if (mg_rd_bin(&r, &f))
		return 0;
	if (pkt->type == MG_SUBSCRIBE) {
		uint8_t o;
		if (mg_rd_u8(&r, &o))
			return 0;
		if (opts) {
			opts->qos = o & 3;
			opts->no_local = o & 0x04;
			opts->retain_as_published = o & 0x08;
			opts->retain_handling = (o >> 4) & 3;
		}
	}
	if (filter)
		*filter = f;
	*off = (uint32_t)(r.p - raw.p);
	return 1;
}

size_t mg_sub_put(uint8_t *buf, size_t cap, mg_bytes filter, const mg_subopts *opts)
{
	if (filter.len > 65535)
		return 0;
	size_t n = 2 + (size_t)filter.len + (opts ? 1 : 0);
	if (buf && n <= cap) {
		mg_wr w = {buf, 0};
		mg_wr_bin(&w, filter);
		if (opts)
			mg_wr_u8(&w, mg_subopts_byte(*opts));
	}
	return n;
}
