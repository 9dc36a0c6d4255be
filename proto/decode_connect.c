/*
 * proto/decode_connect.c - CONNECT (3.1 section 3.1, 3.1.1 section 3.1, 5.0 section 3.1).
 * The only packet that carries its own protocol level; the decoder reads it from the packet.
 *
 * On MG_E_PROTOCOL_NAME / MG_E_PROTOCOL_LEVEL, out->u.connect.protocol_name and .level are
 * filled, so the receiver can pick its answer (CONNACK 0x01 in 3.x, 0x84 in 5.0).
 * On MG_E_CLIENT_ID the whole packet has been decoded into out (answer CONNACK 0x02 / 0x85).
 */
#include "proto/codec.h"

static bool is(mg_bytes b, const char *s)
{
	size_t n = strlen(s);
	return b.len == n && memcmp(b.p, s, n) == 0;
}

int mg_decode_connect(mg_rd *r, mg_packet *out)
{
	mg_connect *c = &out->u.connect;
	uint8_t flags;
	memset(c, 0, sizeof *c);
	int e = mg_rd_bin(r, &c->protocol_name);
	if (!e)
		e = mg_rd_u8(r, &c->level);
	if (e)
		return e;
	/* A 3.x level with 0x80 is a broker bridging to us (mosquitto's try_private, not in the
	 * standard): the level proper is the low bits. 5.0 bridges use No Local instead. */
	if (c->level == (0x80 | MG_V31) || c->level == (0x80 | MG_V311)) {
		c->bridge = true;
		c->level &= 0x7f;
	}
	if (is(c->protocol_name, "MQTT")) {
		if (c->level != MG_V311 && c->level != MG_V5)
			return MG_E_PROTOCOL_LEVEL;
	} else if (is(c->protocol_name, "MQIsdp")) {
		if (c->level != MG_V31)
			return MG_E_PROTOCOL_LEVEL;
	} else {
		return MG_E_PROTOCOL_NAME;
	}
	const bool v5 = c->level == MG_V5;

	if ((e = mg_rd_u8(r, &flags)) || (e = mg_rd_u16(r, &c->keepalive)))
		return e;
	if (flags & 0x01)
		return MG_E_CONNECT_RESERVED; /* [MQTT-3.1.2-3] */
	c->clean = flags & 0x02;
	c->will = flags & 0x04;
	c->will_qos = (flags >> 3) & 3;
	c->will_retain = flags & 0x20;
	c->has_password = flags & 0x40;
	c->has_username = flags & 0x80;
	if (c->will_qos == 3 || (!c->will && (c->will_qos || c->will_retain)))
		return MG_E_WILL_FLAGS; /* [MQTT-3.1.2-11], [MQTT-3.1.2-14] */
	if (!v5 && c->has_password && !c->has_username)
		return MG_E_PASSWORD_NO_USER; /* [MQTT-3.1.2-22]; 5.0 allows it */

	if (v5 && (e = mg_props_decode(r, MG_CONNECT, &out->props)))
		return e;
	if ((e = mg_rd_str(r, &c->client_id)))
		return e;
	mg_props_defaults(&c->will_props);
	if (c->will) {
		if (v5 && (e = mg_props_decode(r, MG_PTYPE_WILL, &c->will_props)))
			return e;
		if ((e = mg_rd_bin(r, &c->will_topic)))
			return e;
		/* the will is published to it, so it must be a valid Topic Name (3.1.3.3) */
		if ((e = mg_topic_name_check(c->will_topic.p, c->will_topic.len)))
			return e;
		if ((e = mg_rd_bin(r, &c->will_payload)))
			return e;
	}
	if (c->has_username && (e = mg_rd_str(r, &c->username)))
		return e;
	if (c->has_password && (e = mg_rd_bin(r, &c->password)))
		return e;
	if (r->p != r->end)
		return MG_E_TRAILING;
	/* 3.1 requires 1 to 23 characters (we do not enforce 23, as mosquitto does not);
	 * 3.1.1 refuses an empty id that asks for a persistent session [MQTT-3.1.3-8]. */
	if (c->client_id.len == 0 && (c->level == MG_V31 || (c->level == MG_V311 && !c->clean)))
		return MG_E_CLIENT_ID;
	return MG_OK;
}
