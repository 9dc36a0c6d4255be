/*
 * proto/props.c - MQTT 5.0 properties (section 2.2.2.2): the table of identifiers with their
 * data type and the packets each may appear in, decoding a property block with every check
 * the specification names, iterating one, and encoding one.
 */
#include "proto/codec.h"

#define P(t) (1u << (t))
#define WILL P(MG_PTYPE_WILL)
#define PUB_WILL (P(MG_PUBLISH) | WILL)
#define ALL_ACKS (P(MG_PUBACK) | P(MG_PUBREC) | P(MG_PUBREL) | P(MG_PUBCOMP))

static const struct {
	uint8_t type;
	uint32_t packets;
	const char *name;
} table[64] = {
	[MG_PROP_PAYLOAD_FORMAT] = {MG_PT_BYTE, PUB_WILL, "Payload Format Indicator"},
	[MG_PROP_MESSAGE_EXPIRY] = {MG_PT_U32, PUB_WILL, "Message Expiry Interval"},
	[MG_PROP_CONTENT_TYPE] = {MG_PT_UTF8, PUB_WILL, "Content Type"},
	[MG_PROP_RESPONSE_TOPIC] = {MG_PT_UTF8, PUB_WILL, "Response Topic"},
	[MG_PROP_CORRELATION_DATA] = {MG_PT_BINARY, PUB_WILL, "Correlation Data"},
	[MG_PROP_SUBSCRIPTION_ID] = {MG_PT_VARINT, P(MG_PUBLISH) | P(MG_SUBSCRIBE),
	                             "Subscription Identifier"},
	[MG_PROP_SESSION_EXPIRY] = {MG_PT_U32, P(MG_CONNECT) | P(MG_CONNACK) | P(MG_DISCONNECT),
	                            "Session Expiry Interval"},
	[MG_PROP_ASSIGNED_CLIENT_ID] = {MG_PT_UTF8, P(MG_CONNACK), "Assigned Client Identifier"},
	[MG_PROP_SERVER_KEEP_ALIVE] = {MG_PT_U16, P(MG_CONNACK), "Server Keep Alive"},
	[MG_PROP_AUTH_METHOD] = {MG_PT_UTF8, P(MG_CONNECT) | P(MG_CONNACK) | P(MG_AUTH),
	                         "Authentication Method"},
	[MG_PROP_AUTH_DATA] = {MG_PT_BINARY, P(MG_CONNECT) | P(MG_CONNACK) | P(MG_AUTH),
	                       "Authentication Data"},
	[MG_PROP_REQUEST_PROBLEM_INFO] = {MG_PT_BYTE, P(MG_CONNECT), "Request Problem Information"},
	[MG_PROP_WILL_DELAY] = {MG_PT_U32, WILL, "Will Delay Interval"},
	[MG_PROP_REQUEST_RESPONSE_INFO] = {MG_PT_BYTE, P(MG_CONNECT), "Request Response Information"},
	[MG_PROP_RESPONSE_INFO] = {MG_PT_UTF8, P(MG_CONNACK), "Response Information"},
	[MG_PROP_SERVER_REFERENCE] = {MG_PT_UTF8, P(MG_CONNACK) | P(MG_DISCONNECT), "Server Reference"},
	[MG_PROP_REASON_STRING] = {MG_PT_UTF8, P(MG_CONNACK) | ALL_ACKS | P(MG_SUBACK) |
	                           P(MG_UNSUBACK) | P(MG_DISCONNECT) | P(MG_AUTH), "Reason String"},
	[MG_PROP_RECEIVE_MAXIMUM] = {MG_PT_U16, P(MG_CONNECT) | P(MG_CONNACK), "Receive Maximum"},
	[MG_PROP_TOPIC_ALIAS_MAXIMUM] = {MG_PT_U16, P(MG_CONNECT) | P(MG_CONNACK),
	                                 "Topic Alias Maximum"},
	[MG_PROP_TOPIC_ALIAS] = {MG_PT_U16, P(MG_PUBLISH), "Topic Alias"},
	[MG_PROP_MAXIMUM_QOS] = {MG_PT_BYTE, P(MG_CONNACK), "Maximum QoS"},
	[MG_PROP_RETAIN_AVAILABLE] = {MG_PT_BYTE, P(MG_CONNACK), "Retain Available"},
	[MG_PROP_USER] = {MG_PT_PAIR, P(MG_CONNECT) | P(MG_CONNACK) | PUB_WILL | ALL_ACKS |
	                  P(MG_SUBSCRIBE) | P(MG_SUBACK) | P(MG_UNSUBSCRIBE) | P(MG_UNSUBACK) |
	                  P(MG_DISCONNECT) | P(MG_AUTH), "User Property"},
	[MG_PROP_MAXIMUM_PACKET_SIZE] = {MG_PT_U32, P(MG_CONNECT) | P(MG_CONNACK),
	                                 "Maximum Packet Size"},
	[MG_PROP_WILDCARD_SUB_AVAILABLE] = {MG_PT_BYTE, P(MG_CONNACK),
	                                    "Wildcard Subscription Available"},
	[MG_PROP_SUB_ID_AVAILABLE] = {MG_PT_BYTE, P(MG_CONNACK), "Subscription Identifier Available"},
	[MG_PROP_SHARED_SUB_AVAILABLE] = {MG_PT_BYTE, P(MG_CONNACK), "Shared Subscription Available"},
};

int mg_prop_type(int id)
{
	return id > 0 && id < 64 ? table[id].type : MG_PT_NONE;
}

const char *mg_prop_name(int id)
{
	return mg_prop_type(id) ? table[id].name : "Unknown property";
}

bool mg_prop_allowed(int id, int ptype)
{
	if (!mg_prop_type(id) || ptype < 1 || ptype > MG_PTYPE_WILL)
		return false;
	return table[id].packets & P(ptype);
}

static const mg_props defaults = {
	.request_problem_info = 1,
	.maximum_qos = 2,
	.retain_available = 1,
	.wildcard_sub_available = 1,
	.sub_id_available = 1,
	.shared_sub_available = 1,
	.receive_maximum = 65535,
};

void mg_props_defaults(mg_props *p)
{
	/* Runs for every decoded packet. A memset of the struct became `rep stos` (gcc -O2,
	 * x86-64), whose start-up cost made this 1-3% of the broker's time in pairs10-q0 and
	 * fanin100-q0; memcpy of a constant becomes a few vector stores. */
	memcpy(p, &defaults, sizeof *p);
}

/* Read the value of property `id` (strings UTF-8 checked). */
static int read_value(mg_rd *r, uint32_t id, mg_prop *out)
{
	uint32_t v = 0;
	uint8_t b = 0;
	uint16_t s = 0;
	int e = MG_OK;
	int type = id < 64 ? mg_prop_type((int)id) : MG_PT_NONE;
	out->id = (uint8_t)id;
	switch (type) {
	case MG_PT_BYTE:
		e = mg_rd_u8(r, &b);
		v = b;
		break;
	case MG_PT_U16:
		e = mg_rd_u16(r, &s);
		v = s;
		break;
	case MG_PT_U32:
		e = mg_rd_u32(r, &v);
		break;
	case MG_PT_VARINT:
		e = mg_rd_varint(r, &v);
		break;
	case MG_PT_UTF8:
		e = mg_rd_str(r, &out->a);
		break;
	case MG_PT_BINARY:
		e = mg_rd_bin(r, &out->a);
		break;
	case MG_PT_PAIR:
		e = mg_rd_str(r, &out->a);
		if (!e)
			e = mg_rd_str(r, &out->b);
		break;
	default:
		return MG_E_PROP_UNKNOWN;
	}
	out->u = v;
	return e;
}

/* Read one property: identifier, then value. */
static int read_prop(mg_rd *r, mg_prop *out)
{
	uint32_t id;
	int e = mg_rd_varint(r, &id);
	return e ? e : read_value(r, id, out);
}

static int flag01(uint32_t v, uint8_t *field)
{
	if (v > 1)
		return MG_E_PROP_VALUE;
	*field = (uint8_t)v;
	return MG_OK;
}

/* Store one property in its field, with the value checks of section 3.x for each. */
static int store(mg_props *o, const mg_prop *pr)
{
	uint32_t v = pr->u;
	switch (pr->id) {
	case MG_PROP_PAYLOAD_FORMAT: return flag01(v, &o->payload_format);
	case MG_PROP_MESSAGE_EXPIRY: o->message_expiry = v; break;
	case MG_PROP_CONTENT_TYPE: o->content_type = pr->a; break;
	case MG_PROP_RESPONSE_TOPIC: /* a Topic Name: no wildcards [MQTT-3.3.2-14] */
		o->response_topic = pr->a;
		return mg_topic_name_check(pr->a.p, pr->a.len);
	case MG_PROP_CORRELATION_DATA: o->correlation_data = pr->a; break;
	case MG_PROP_SUBSCRIPTION_ID:
		if (v == 0)
			return MG_E_PROP_VALUE;
		if (o->n_sub_id == 0)
			o->subscription_id = v;
		if (o->n_sub_id < UINT16_MAX)
			o->n_sub_id++;
		break;
	case MG_PROP_SESSION_EXPIRY: o->session_expiry = v; break;
	case MG_PROP_ASSIGNED_CLIENT_ID: o->assigned_client_id = pr->a; break;
	case MG_PROP_SERVER_KEEP_ALIVE: o->server_keep_alive = (uint16_t)v; break;
	case MG_PROP_AUTH_METHOD: o->auth_method = pr->a; break;
	case MG_PROP_AUTH_DATA: o->auth_data = pr->a; break;
	case MG_PROP_REQUEST_PROBLEM_INFO: return flag01(v, &o->request_problem_info);
	case MG_PROP_WILL_DELAY: o->will_delay = v; break;
	case MG_PROP_REQUEST_RESPONSE_INFO: return flag01(v, &o->request_response_info);
	case MG_PROP_RESPONSE_INFO: o->response_info = pr->a; break;
	case MG_PROP_SERVER_REFERENCE: o->server_reference = pr->a; break;
	case MG_PROP_REASON_STRING: o->reason_string = pr->a; break;
	case MG_PROP_RECEIVE_MAXIMUM:
		if (v == 0)
			return MG_E_PROP_VALUE;
		o->receive_maximum = (uint16_t)v;
		break;
	case MG_PROP_TOPIC_ALIAS_MAXIMUM: o->topic_alias_maximum = (uint16_t)v; break;
	case MG_PROP_TOPIC_ALIAS:
		if (v == 0)
			return MG_E_TOPIC_ALIAS_ZERO; /* [MQTT-3.3.2-8] */
		o->topic_alias = (uint16_t)v;
		break;
	case MG_PROP_MAXIMUM_QOS: return flag01(v, &o->maximum_qos);
	case MG_PROP_RETAIN_AVAILABLE: return flag01(v, &o->retain_available);
	case MG_PROP_USER:
		if (o->n_user < UINT16_MAX)
			o->n_user++;
		break;
	case MG_PROP_MAXIMUM_PACKET_SIZE:
		if (v == 0)
			return MG_E_PROP_VALUE;
		o->maximum_packet_size = v;
		break;
	case MG_PROP_WILDCARD_SUB_AVAILABLE: return flag01(v, &o->wildcard_sub_available);
	case MG_PROP_SUB_ID_AVAILABLE: return flag01(v, &o->sub_id_available);
	case MG_PROP_SHARED_SUB_AVAILABLE: return flag01(v, &o->shared_sub_available);
	}
	return MG_OK;
}

int mg_props_decode(mg_rd *r, int ptype, mg_props *out)
{
	uint32_t len;
	mg_props_defaults(out);
	int e = mg_rd_varint(r, &len);
	if (e)
		return e;
	if (len > mg_rd_left(r))
		return MG_E_SHORT;
	mg_rd pr = {r->p, r->p + len};
	out->raw.p = r->p;
	out->raw.len = len;
	r->p += len;
	while (pr.p < pr.end) {
		mg_prop p;
		/* identifier first, so an unknown or misplaced one is named before its value */
		uint32_t id;
		if ((e = mg_rd_varint(&pr, &id)))
			return e;
		if (id >= 64 || !mg_prop_type((int)id))
			return MG_E_PROP_UNKNOWN;
		if (!mg_prop_allowed((int)id, ptype))
			return MG_E_PROP_NOT_ALLOWED;
		/* Only User Property may repeat, and Subscription Identifier in PUBLISH (a server
		 * sends one per matching subscription, 3.3.2.3.8). */
		bool multi = id == MG_PROP_USER || (id == MG_PROP_SUBSCRIPTION_ID && ptype == MG_PUBLISH);
		if ((out->present & MG_PROP_BIT(id)) && !multi)
			return MG_E_PROP_DUP;
		if ((e = read_value(&pr, id, &p)))
			return e;
		out->present |= MG_PROP_BIT(id);
		e = store(out, &p);
		if (e)
			return e;
	}
	/* "It is a Protocol Error to include Authentication Data if there is no Authentication
	 * Method" (3.1.2.11.10, 3.2.2.3.18, 3.15.2.2.3). */
	if ((out->present & MG_PROP_BIT(MG_PROP_AUTH_DATA)) &&
	    !(out->present & MG_PROP_BIT(MG_PROP_AUTH_METHOD)))
		return MG_E_PROP_VALUE;
	return MG_OK;
}

int mg_prop_next(mg_bytes raw, uint32_t *off, mg_prop *out)
{
	if (*off >= raw.len)
		return 0;
	mg_rd r = {raw.p + *off, raw.p + raw.len};
	memset(out, 0, sizeof *out);
	if (read_prop(&r, out) != MG_OK)
		return 0; /* not a validated block: stop rather than read garbage */
	*off = (uint32_t)(r.p - raw.p);
	return 1;
}

size_t mg_prop_put_user(uint8_t *buf, size_t cap, mg_bytes key, mg_bytes value)
{
	size_t n = 5 + (size_t)key.len + value.len;
	if (key.len > 65535 || value.len > 65535)
		return 0;
	if (buf && n <= cap) {
		mg_wr w = {buf, 0};
		mg_wr_u8(&w, MG_PROP_USER);
		mg_wr_bin(&w, key);
		mg_wr_bin(&w, value);
	}
	return n;
}

size_t mg_props_strip(uint8_t *buf, size_t cap, mg_bytes raw, uint64_t drop)
{
	/* two passes (size, then copy) so nothing is written unless all of it fits */
	size_t n = 0;
	for (int pass = 0; pass < 2; pass++) {
		uint32_t off = 0, start = 0;
		mg_prop pr;
		if (pass == 1 && (!buf || n > cap))
			break;
		n = 0;
		while (mg_prop_next(raw, &off, &pr)) {
			if (!(pr.id < 64 && (drop & MG_PROP_BIT(pr.id)))) {
				if (pass == 1)
					memcpy(buf + n, raw.p + start, off - start);
				n += off - start;
			}
			start = off;
		}
	}
	return n;
}

/* ---- encoding ---- */

static const mg_bytes *bytes_field(const mg_props *p, int id)
{
	switch (id) {
	case MG_PROP_CONTENT_TYPE: return &p->content_type;
	case MG_PROP_RESPONSE_TOPIC: return &p->response_topic;
	case MG_PROP_CORRELATION_DATA: return &p->correlation_data;
	case MG_PROP_ASSIGNED_CLIENT_ID: return &p->assigned_client_id;
	case MG_PROP_AUTH_METHOD: return &p->auth_method;
	case MG_PROP_AUTH_DATA: return &p->auth_data;
	case MG_PROP_RESPONSE_INFO: return &p->response_info;
	case MG_PROP_SERVER_REFERENCE: return &p->server_reference;
	case MG_PROP_REASON_STRING: return &p->reason_string;
	}
	return NULL;
}

static uint32_t num_field(const mg_props *p, int id)
{
	switch (id) {
	case MG_PROP_PAYLOAD_FORMAT: return p->payload_format;
	case MG_PROP_MESSAGE_EXPIRY: return p->message_expiry;
	case MG_PROP_SUBSCRIPTION_ID: return p->subscription_id;
	case MG_PROP_SESSION_EXPIRY: return p->session_expiry;
	case MG_PROP_SERVER_KEEP_ALIVE: return p->server_keep_alive;
	case MG_PROP_REQUEST_PROBLEM_INFO: return p->request_problem_info;
	case MG_PROP_WILL_DELAY: return p->will_delay;
	case MG_PROP_REQUEST_RESPONSE_INFO: return p->request_response_info;
	case MG_PROP_RECEIVE_MAXIMUM: return p->receive_maximum;
	case MG_PROP_TOPIC_ALIAS_MAXIMUM: return p->topic_alias_maximum;
	case MG_PROP_TOPIC_ALIAS: return p->topic_alias;
	case MG_PROP_MAXIMUM_QOS: return p->maximum_qos;
	case MG_PROP_RETAIN_AVAILABLE: return p->retain_available;
	case MG_PROP_MAXIMUM_PACKET_SIZE: return p->maximum_packet_size;
	case MG_PROP_WILDCARD_SUB_AVAILABLE: return p->wildcard_sub_available;
	case MG_PROP_SUB_ID_AVAILABLE: return p->sub_id_available;
	case MG_PROP_SHARED_SUB_AVAILABLE: return p->shared_sub_available;
	}
	return 0;
}

/* One property of p; false if its value cannot be represented. */
static bool write_one(mg_wr *w, const mg_props *p, int id)
{
	int type = mg_prop_type(id);
	if (type == MG_PT_NONE || type == MG_PT_PAIR)
		return true;
	mg_wr_u8(w, (uint8_t)id);
	uint32_t v = num_field(p, id);
	const mg_bytes *b = bytes_field(p, id);
	switch (type) {
	case MG_PT_BYTE: mg_wr_u8(w, (uint8_t)v); return true;
	case MG_PT_U16: mg_wr_u16(w, (uint16_t)v); return true;
	case MG_PT_U32: mg_wr_u32(w, v); return true;
	case MG_PT_VARINT:
		mg_wr_varint(w, v);
		return mg_varint_size(v) != 0;
	default: /* UTF8, BINARY */
		mg_wr_bin(w, *b);
		return b->len <= 65535;
	}
}

bool mg_props_write_body_ordered(mg_wr *w, const mg_props *p, const uint8_t *order, size_t n)
{
	bool ok = true;
	uint64_t m = p->present & ~MG_PROP_BIT(MG_PROP_USER); /* user properties travel in raw */
	for (size_t i = 0; i < n; i++) {
		if (order[i] < 64 && (m & MG_PROP_BIT(order[i]))) {
			m &= ~MG_PROP_BIT(order[i]);
			ok = write_one(w, p, order[i]) && ok;
		}
	}
	while (m) {
		int id = __builtin_ctzll(m);
		m &= m - 1;
		ok = write_one(w, p, id) && ok;
	}
	for (uint16_t i = 0; p->sub_ids && i < p->n_sub_id; i++) {
		ok = ok && mg_varint_size(p->sub_ids[i]) != 0;
		mg_wr_u8(w, MG_PROP_SUBSCRIPTION_ID);
		mg_wr_varint(w, p->sub_ids[i]);
	}
	mg_wr_raw(w, p->raw.p, p->raw.len);
	return ok;
}

/* The property block body; with w->p == NULL it only counts. Returns false if a value
 * cannot be represented (string over 65535 bytes, varint over 268,435,455). */
bool mg_props_write_body(mg_wr *w, const mg_props *p)
{
	return mg_props_write_body_ordered(w, p, NULL, 0);
}

size_t mg_props_size(const mg_props *p)
{
	mg_wr w = {NULL, 0};
	if (!p)
		return 0;
	mg_props_write_body(&w, p);
	return w.n;
}

size_t mg_props_body_size(const mg_props *p)
{
	mg_wr w = {NULL, 0};
	if (!p)
		return 0;
	if (!mg_props_write_body(&w, p) || w.n > MG_MAX_REMAINING)
		return SIZE_MAX;
	return w.n;
}

bool mg_props_write_ordered(mg_wr *w, const mg_props *p, const uint8_t *order, size_t n)
{
	size_t len = mg_props_body_size(p); /* the order never changes the size */
	if (len == SIZE_MAX)
		return false;
	mg_wr_varint(w, (uint32_t)len);
	if (p)
		mg_props_write_body_ordered(w, p, order, n);
	return true;
}

bool mg_props_write(mg_wr *w, const mg_props *p)
{
	return mg_props_write_ordered(w, p, NULL, 0);
}
