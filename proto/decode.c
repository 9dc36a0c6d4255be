/*
 * proto/decode.c - mg_decode: frame one packet, check its fixed header, and hand its body to
 * the decoder for its type. PUBLISH and the small packets are decoded here; CONNECT and the
 * subscription packets have their own files.
 *
 * Everything is a view into buf; nothing is allocated or copied. A decoder reads only inside
 * [buf, buf + size) through mg_rd, so a lying length field gives MG_E_SHORT, never an over-read.
 */
#include "proto/codec.h"

/* Fixed-header checks that need only byte 0, done before waiting for the rest: a receiver
 * can drop a connection that sends garbage without buffering a body. */
static int check_header(uint8_t type, uint8_t flags, uint8_t level)
{
	switch (type) {
	case 0:
		return MG_E_TYPE;
	case MG_AUTH:
		if (level != MG_V5)
			return MG_E_TYPE;
		break;
	case MG_PUBLISH:
		if (((flags >> 1) & 3) == 3)
			return MG_E_QOS; /* [MQTT-3.3.1-4] */
		if ((flags & 8) && !(flags & 6))
			return MG_E_DUP_QOS0; /* [MQTT-3.3.1-2] */
		return MG_OK;
	case MG_PUBREL:
	case MG_SUBSCRIBE:
	case MG_UNSUBSCRIBE:
		/* QoS 1 in the fixed header [MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]. 3.1 also
		 * sets DUP when it re-sends one of these, as mosquitto accepts. */
		if (level == MG_V31)
			flags &= (uint8_t)~8;
		return flags == 2 ? MG_OK : MG_E_FLAGS;
	}
	return flags == 0 ? MG_OK : MG_E_FLAGS;
}

static int decode_publish(mg_rd *r, uint8_t level, mg_packet *out)
{
	mg_publish *p = &out->u.publish;
	uint8_t f = out->flags;
	p->qos = (f >> 1) & 3;
	p->dup = f & 8;
	p->retain = f & 1;
	p->packet_id = 0;
	int e = mg_rd_bin(r, &p->topic);
	if (e)
		return e;
	if (p->topic.len > 0 || level != MG_V5) {
		e = mg_topic_name_check(p->topic.p, p->topic.len);
		if (e)
			return e;
	}
	if (p->qos) {
		if ((e = mg_rd_u16(r, &p->packet_id)))
			return e;
		if (p->packet_id == 0)
			return MG_E_PACKET_ID;
	}
	if (level == MG_V5) {
		if ((e = mg_props_decode(r, MG_PUBLISH, &out->props)))
			return e;
		/* 5.0 allows an empty name only with a Topic Alias; whether the alias is known is
		 * the receiver's business (3.3.2.3.4). */
		if (p->topic.len == 0 && !(out->props.present & MG_PROP_BIT(MG_PROP_TOPIC_ALIAS)))
			return MG_E_TOPIC_EMPTY;
	}
	p->payload.p = r->p;
	p->payload.len = (uint32_t)mg_rd_left(r);
	r->p = r->end;
	return MG_OK;
}

/* DISCONNECT and AUTH, and an ack after its packet id: 5.0 may send nothing (reason 0),
 * only the reason, or both. */
static int decode_reason_props(mg_rd *r, uint8_t level, mg_packet *out)
{
	if (level != MG_V5 || mg_rd_left(r) == 0)
		return MG_OK;
	mg_rd_u8(r, &out->reason_code);
	if (!mg_reason_allowed(out->reason_code, out->type))
		return MG_E_REASON_CODE;
	if (mg_rd_left(r) == 0)
		return MG_OK;
	return mg_props_decode(r, out->type, &out->props);
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP. 5.0 may omit the reason code (then 0) and, below a
 * Remaining Length of 4, the property length (3.4.2.1). */
static int decode_ack(mg_rd *r, uint8_t level, mg_packet *out)
{
	int e = mg_rd_u16(r, &out->packet_id);
	if (e)
		return e;
	if (out->packet_id == 0)
		return MG_E_PACKET_ID;
	return decode_reason_props(r, level, out); /* the rest is DISCONNECT's shape */
}

static int decode_connack(mg_rd *r, uint8_t level, mg_packet *out)
{
	uint8_t ack;
	int e = mg_rd_u8(r, &ack);
	if (!e)
		e = mg_rd_u8(r, &out->reason_code);
	if (e)
		return e;
	if (ack & 0xFE)
		return MG_E_FLAGS; /* Connect Acknowledge Flags bits 7-1 are reserved [MQTT-3.2.2-1] */
	out->session_present = (ack & 1) && level != MG_V31; /* 3.1: "reserved, not used" */
	if (level != MG_V5)
		return out->reason_code <= MG_CONNACK_NOT_AUTHORIZED ? MG_OK : MG_E_REASON_CODE;
	if (!mg_reason_allowed(out->reason_code, MG_CONNACK))
		return MG_E_REASON_CODE;
	return mg_props_decode(r, MG_CONNACK, &out->props);
}

int mg_decode(const uint8_t *buf, size_t len, uint8_t level, uint32_t max_size, mg_packet *out)
{
	if (len == 0)
		return MG_NEED_MORE;
	uint8_t type = buf[0] >> 4, flags = buf[0] & 0x0F;
	if (level != MG_V31 && level != MG_V5)
		level = MG_V311; /* 0 (before CONNECT) and anything unknown decode like 3.1.1 */
	int e = check_header(type, flags, level);
	if (e)
		return e;
	/* CONNECT's level is inside it: frame leniently, re-check the varint once it is known. */
	int n = mg_frame(buf, len, type == MG_CONNECT ? 0 : level, max_size, NULL);
	if (n <= 0)
		return n;
	if ((size_t)n > len)
		return MG_NEED_MORE;
	size_t hdr = 2;
	while (buf[hdr - 1] & 0x80)
		hdr++;

	out->type = type;
	out->flags = flags;
	out->size = (uint32_t)n;
	out->packet_id = 0;
	out->reason_code = 0;
	out->session_present = false;
	mg_props_defaults(&out->props);
	mg_rd r = {buf + hdr, buf + n};

	switch (type) {
	case MG_CONNECT:
		e = mg_decode_connect(&r, out);
		if ((e == MG_OK || e == MG_E_CLIENT_ID) && out->u.connect.level == MG_V5 && hdr > 2 && buf[hdr - 1] == 0)
			e = MG_E_VARINT_NONMINIMAL;
		break;
	case MG_CONNACK: e = decode_connack(&r, level, out); break;
	case MG_PUBLISH: e = decode_publish(&r, level, out); break;
	case MG_PUBACK:
	case MG_PUBREC:
	case MG_PUBREL:
	case MG_PUBCOMP: e = decode_ack(&r, level, out); break;
	case MG_SUBSCRIBE: e = mg_decode_subscribe(&r, level, out); break;
	case MG_SUBACK: e = mg_decode_suback(&r, level, out); break;
	case MG_UNSUBSCRIBE: e = mg_decode_unsubscribe(&r, level, out); break;
	case MG_UNSUBACK: e = mg_decode_unsuback(&r, level, out); break;
	case MG_PINGREQ:
	case MG_PINGRESP: break;
	case MG_DISCONNECT:
	case MG_AUTH: e = decode_reason_props(&r, level, out); break;
	}
	if (e == MG_OK && r.p != r.end)
		e = MG_E_TRAILING;
	return e ? e : n;
}
