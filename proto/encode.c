/*
 * proto/encode.c - mg_encode for all 15 packet types, and the PUBLISH header on its own for the
 * broker's per-recipient path.
 *
 * Each body is produced by one function run twice: first counting (mg_wr with p == NULL),
 * then writing. So the size returned is exactly what is written, by construction, and a
 * caller can size a buffer (or refuse a client's Maximum Packet Size) before writing.
 */
#include "proto/codec.h"

static bool str_ok(mg_bytes b)
{
	return b.len <= 65535;
}

static bool props_empty(const mg_props *p)
{
	return mg_props_body_size(p) == 0;
}

static bool body_connect(mg_wr *w, uint8_t level, const mg_packet *pkt)
{
	const mg_connect *c = &pkt->u.connect;
	static const mg_bytes mqtt = {(const uint8_t *)"MQTT", 4}, mqisdp = {(const uint8_t *)"MQIsdp", 6};
	if (c->will && c->will_qos > 2)
		return false;
	if (!str_ok(c->client_id) || !str_ok(c->will_topic) || !str_ok(c->will_payload) ||
	    !str_ok(c->username) || !str_ok(c->password))
		return false;
	uint8_t flags = (uint8_t)((c->has_username ? 0x80 : 0) | (c->has_password ? 0x40 : 0) |
	                          (c->clean ? 0x02 : 0));
	if (c->will)
		flags |= (uint8_t)(0x04 | c->will_qos << 3 | (c->will_retain ? 0x20 : 0));
	mg_wr_bin(w, level == MG_V31 ? mqisdp : mqtt);
	mg_wr_u8(w, (uint8_t)(level | (c->bridge && level != MG_V5 ? 0x80 : 0)));
	mg_wr_u8(w, flags);
	mg_wr_u16(w, c->keepalive);
	if (level == MG_V5 && !mg_props_write(w, &pkt->props))
		return false;
	mg_wr_bin(w, c->client_id);
	if (c->will) {
		if (level == MG_V5 && !mg_props_write(w, &c->will_props))
			return false;
		mg_wr_bin(w, c->will_topic);
		mg_wr_bin(w, c->will_payload);
	}
	if (c->has_username)
		mg_wr_bin(w, c->username);
	if (c->has_password)
		mg_wr_bin(w, c->password);
	return true;
}

/* Reason code and properties, in their shortest allowed form (PUBACK.., DISCONNECT, AUTH). */
static bool reason_props(mg_wr *w, const mg_packet *pkt)
{
	bool empty = props_empty(&pkt->props);
	if (pkt->reason_code == 0 && empty)
		return true;
	mg_wr_u8(w, pkt->reason_code);
	return empty || mg_props_write(w, &pkt->props);
}

/* CONNACK properties in the order mosquitto 2 writes them (connect__on_authorised, then
 * send__connack), so that tools comparing our bytes with mosquitto's see no difference where
 * the spec leaves the order free. Ids not listed follow in ascending order. */
static const uint8_t connack_order[] = {
	MG_PROP_TOPIC_ALIAS_MAXIMUM, MG_PROP_SERVER_KEEP_ALIVE, MG_PROP_ASSIGNED_CLIENT_ID,
	MG_PROP_AUTH_METHOD, MG_PROP_AUTH_DATA, MG_PROP_RETAIN_AVAILABLE,
	MG_PROP_MAXIMUM_PACKET_SIZE, MG_PROP_RECEIVE_MAXIMUM, MG_PROP_MAXIMUM_QOS,
};

static bool body(mg_wr *w, uint8_t level, const mg_packet *pkt)
{
	const bool v5 = level == MG_V5;
	switch (pkt->type) {
	case MG_CONNECT:
		return body_connect(w, level, pkt);
	case MG_CONNACK:
		mg_wr_u8(w, pkt->session_present && level != MG_V31 ? 1 : 0); /* reserved in 3.1 */
		mg_wr_u8(w, pkt->reason_code);
		return !v5 || mg_props_write_ordered(w, &pkt->props, connack_order, sizeof connack_order);
	case MG_PUBLISH: {
		const mg_publish *p = &pkt->u.publish;
		if (p->qos > 2 || !str_ok(p->topic))
			return false;
		mg_wr_bin(w, p->topic);
		if (p->qos)
			mg_wr_u16(w, p->packet_id);
		if (v5 && !mg_props_write(w, &pkt->props))
			return false;
		mg_wr_raw(w, p->payload.p, p->payload.len);
		return true;
	}
	case MG_PUBACK:
	case MG_PUBREC:
	case MG_PUBREL:
	case MG_PUBCOMP:
		mg_wr_u16(w, pkt->packet_id);
		return !v5 || reason_props(w, pkt);
	case MG_SUBSCRIBE:
	case MG_UNSUBSCRIBE:
		mg_wr_u16(w, pkt->packet_id);
		if (v5 && !mg_props_write(w, &pkt->props))
			return false;
		mg_wr_raw(w, pkt->u.sub.raw.p, pkt->u.sub.raw.len);
		return true;
	case MG_SUBACK:
	case MG_UNSUBACK:
		mg_wr_u16(w, pkt->packet_id);
		if (!v5 && pkt->type == MG_UNSUBACK)
			return true;
		if (v5 && !mg_props_write(w, &pkt->props))
			return false;
		mg_wr_raw(w, pkt->u.codes.p, pkt->u.codes.len);
		return true;
	case MG_PINGREQ:
	case MG_PINGRESP:
		return true;
	case MG_DISCONNECT:
		return !v5 || reason_props(w, pkt);
	case MG_AUTH:
		return v5 && reason_props(w, pkt);
	}
	return false;
}

static uint8_t first_byte(const mg_packet *pkt)
{
	uint8_t b = (uint8_t)(pkt->type << 4);
	switch (pkt->type) {
	case MG_PUBLISH: {
		const mg_publish *p = &pkt->u.publish;
		return (uint8_t)(b | (p->dup ? 8 : 0) | p->qos << 1 | (p->retain ? 1 : 0));
	}
	case MG_PUBREL:
	case MG_SUBSCRIBE:
	case MG_UNSUBSCRIBE:
		return b | 2;
	}
	return b;
}

size_t mg_encode(uint8_t *buf, size_t cap, uint8_t level, const mg_packet *pkt)
{
	if (pkt->type == MG_CONNECT && level == 0)
		level = pkt->u.connect.level;
	if (level != MG_V31 && level != MG_V5)
		level = MG_V311;
	mg_wr count = {NULL, 0};
	if (!body(&count, level, pkt) || count.n > MG_MAX_REMAINING)
		return 0;
	size_t total = 1 + mg_varint_size((uint32_t)count.n) + count.n;
	if (!buf || total > cap)
		return total;
	buf[0] = first_byte(pkt);
	size_t h = 1 + mg_varint_encode(buf + 1, (uint32_t)count.n);
	mg_wr w = {buf + h, 0};
	body(&w, level, pkt);
	return total;
}

size_t mg_encode_publish_header(uint8_t *buf, size_t cap, uint8_t level, const mg_publish *pub,
                                const mg_props *props, uint32_t payload_len)
{
	if (pub->qos > 2 || pub->topic.len > 65535)
		return 0;
	size_t plen = 0, pvar = 0;
	if (level == MG_V5) {
		plen = props ? mg_props_body_size(props) : 0;
		if (plen == SIZE_MAX)
			return 0;
		pvar = mg_varint_size((uint32_t)plen);
	}
	uint64_t rem = 2u + (uint64_t)pub->topic.len + (pub->qos ? 2u : 0u) + pvar + plen + payload_len;
	if (rem > MG_MAX_REMAINING)
		return 0;
	size_t total = 1 + mg_varint_size((uint32_t)rem) + (size_t)rem - payload_len;
	if (!buf || total > cap)
		return total;
	buf[0] = (uint8_t)(MG_PUBLISH << 4 | (pub->dup ? 8 : 0) | pub->qos << 1 | (pub->retain ? 1 : 0));
	mg_wr w = {buf, 1};
	w.n += mg_varint_encode(buf + 1, (uint32_t)rem);
	mg_wr_bin(&w, pub->topic);
	if (pub->qos)
		mg_wr_u16(&w, pub->packet_id);
	if (level == MG_V5) {
		mg_wr_varint(&w, (uint32_t)plen);
		if (plen)
			mg_props_write_body(&w, props);
	}
	return total;
}
