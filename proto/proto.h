/*
 * proto/proto.h - the MQTT 3.1 / 3.1.1 / 5.0 codec.
 *
 * Conventions (for all of midge; see docs/CONVENTIONS.md):
 *   - midge_* is public API (include/midge/), mg_* is internal and may change.
 *   - Errors are negative ints (enum mg_err here; negative errno in net/).
 *   - proto/ is pure: no I/O, no malloc, no globals that change. Decoders hand back
 *     views (mg_bytes) into the caller's buffer; they never read past `len`.
 *   - Encoders write into caller buffers and return the exact size they need; when the
 *     buffer is too small they write nothing and still return the size (like snprintf).
 *
 * Shape of a decode (like picohttpparser):
 *     n = mg_decode(buf, len, level, max_size, &pkt);
 *     n > 0   one whole packet of n bytes decoded into pkt (views into buf)
 *     n == 0  need more bytes (MG_NEED_MORE)
 *     n < 0   malformed / protocol error: an enum mg_err; mg_err_str() and mg_err_reason()
 */
#ifndef MG_PROTO_H
#define MG_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- protocol levels and packet types ---- */

#define MG_V31  3 /* MQTT 3.1, protocol name "MQIsdp" */
#define MG_V311 4 /* MQTT 3.1.1, "MQTT" */
#define MG_V5   5 /* MQTT 5.0, "MQTT" */

enum mg_ptype {
	MG_CONNECT = 1,
	MG_CONNACK = 2,
	MG_PUBLISH = 3,
	MG_PUBACK = 4,
	MG_PUBREC = 5,
	MG_PUBREL = 6,
	MG_PUBCOMP = 7,
	MG_SUBSCRIBE = 8,
	MG_SUBACK = 9,
	MG_UNSUBSCRIBE = 10,
	MG_UNSUBACK = 11,
	MG_PINGREQ = 12,
	MG_PINGRESP = 13,
	MG_DISCONNECT = 14,
	MG_AUTH = 15,
};

const char *mg_ptype_name(int type); /* "CONNECT", ... ; "UNKNOWN" otherwise */

#define MG_MAX_REMAINING 268435455u /* 0xFFFFFF7F encoded, 4 bytes */
#define MG_MAX_PACKET (MG_MAX_REMAINING + 5u)

/* A view into someone else's buffer: a string (UTF-8, validated by the decoder) or binary. */
typedef struct mg_bytes {
	const uint8_t *p;
	uint32_t len;
} mg_bytes;

/* ---- errors: each names the rule broken ---- */

enum mg_err {
	MG_OK = 0,
	MG_NEED_MORE = 0,             /* decode: not a whole packet yet */
	MG_E_VARINT = -1,             /* remaining length / varint over 4 bytes */
	MG_E_VARINT_NONMINIMAL = -2,  /* 5.0: varint not in its shortest form [MQTT-1.5.5-1] */
	MG_E_TOO_LARGE = -3,          /* packet larger than the receiver's maximum (0x95) */
	MG_E_TYPE = -4,               /* packet type 0 (reserved), or 15 (AUTH) before 5.0 */
	MG_E_FLAGS = -5,              /* reserved fixed-header flags wrong [MQTT-2.2.2-1] */
	MG_E_SHORT = -6,              /* a field overruns the remaining length */
	MG_E_TRAILING = -7,           /* bytes left over after the last field */
	MG_E_UTF8 = -8,               /* ill-formed UTF-8: surrogates, overlongs, > U+10FFFF */
	MG_E_UTF8_NUL = -9,           /* U+0000 in a string [MQTT-1.5.3-2] */
	MG_E_QOS = -10,               /* QoS 3 [MQTT-3.3.1-4] */
	MG_E_DUP_QOS0 = -11,          /* DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2] */
	MG_E_PACKET_ID = -12,         /* packet identifier 0 where one is required */
	MG_E_TOPIC_WILDCARD = -13,    /* '+' or '#' in a topic name [MQTT-3.3.2-2] */
	MG_E_TOPIC_EMPTY = -14,       /* empty topic name (without alias) or empty filter */
	MG_E_FILTER = -15,            /* '#' not last, or '+'/'#' not a whole level */
	MG_E_NO_TOPICS = -16,         /* SUBSCRIBE / UNSUBSCRIBE with no filter [MQTT-3.8.3-3] */
	MG_E_SUB_OPTIONS = -17,       /* reserved subscription option bits (malformed) */
	MG_E_PROP_DUP = -18,          /* a property twice where only one is allowed */
	MG_E_PROP_NOT_ALLOWED = -19,  /* property not allowed in this packet */
	MG_E_PROP_UNKNOWN = -20,      /* unknown property identifier */
	MG_E_PROP_VALUE = -21,        /* property value out of range (e.g. receive maximum 0) */
	MG_E_TOPIC_ALIAS_ZERO = -22,  /* topic alias 0 [MQTT-3.3.2-8] */
	MG_E_PASSWORD_NO_USER = -23,  /* 3.1/3.1.1: password flag without username [MQTT-3.1.2-22] */
	MG_E_WILL_FLAGS = -24,        /* will QoS / retain set without will flag, or will QoS 3 */
	MG_E_CONNECT_RESERVED = -25,  /* CONNECT reserved flag set [MQTT-3.1.2-3] */
	MG_E_PROTOCOL_NAME = -26,     /* not "MQTT" / "MQIsdp" */
	MG_E_PROTOCOL_LEVEL = -27,    /* level not 3/4/5 or not matching the name (0x84 / CONNACK 1) */
	MG_E_REASON_CODE = -28,       /* reason code not valid in this packet */
	MG_E_SUBACK_CODE = -29,       /* 3.1.1 SUBACK return code not 0,1,2,0x80 */
	MG_E_FILTER_SHARE = -30,      /* malformed $share/{group}/{filter} */
	MG_E_CLIENT_ID = -31,         /* client identifier that the decoder itself must refuse */
	MG_E_ARG = -32,               /* encoder given something it cannot encode */
	MG_E_SUB_OPTIONS_PROTOCOL = -33, /* 5.0: retain handling 3, or No Local on a shared subscription */
};
#define MG_E_MIN MG_E_SUB_OPTIONS_PROTOCOL

const char *mg_err_str(int err);     /* one line in English, names the rule */
uint8_t mg_err_reason(int err);      /* the MQTT 5 reason code to send (0x81, 0x82, 0x95, ...) */

/* ---- reason codes (MQTT 5.0, section 2.4; also the 3.1.1 CONNACK / SUBACK values) ---- */

enum mg_reason {
	MG_RC_SUCCESS = 0x00, /* also Normal disconnection, Granted QoS 0 */
	MG_RC_GRANTED_QOS1 = 0x01,
	MG_RC_GRANTED_QOS2 = 0x02,
	MG_RC_DISCONNECT_WITH_WILL = 0x04,
	MG_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
	MG_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
	MG_RC_CONTINUE_AUTHENTICATION = 0x18,
	MG_RC_REAUTHENTICATE = 0x19,
	MG_RC_UNSPECIFIED = 0x80,
	MG_RC_MALFORMED = 0x81,
	MG_RC_PROTOCOL_ERROR = 0x82,
	MG_RC_IMPL_SPECIFIC = 0x83,
	MG_RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84,
	MG_RC_CLIENT_ID_NOT_VALID = 0x85,
	MG_RC_BAD_USERNAME_OR_PASSWORD = 0x86,
	MG_RC_NOT_AUTHORIZED = 0x87,
	MG_RC_SERVER_UNAVAILABLE = 0x88,
	MG_RC_SERVER_BUSY = 0x89,
	MG_RC_BANNED = 0x8A,
	MG_RC_SERVER_SHUTTING_DOWN = 0x8B,
	MG_RC_BAD_AUTH_METHOD = 0x8C,
	MG_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
	MG_RC_SESSION_TAKEN_OVER = 0x8E,
	MG_RC_TOPIC_FILTER_INVALID = 0x8F,
	MG_RC_TOPIC_NAME_INVALID = 0x90,
	MG_RC_PACKET_ID_IN_USE = 0x91,
	MG_RC_PACKET_ID_NOT_FOUND = 0x92,
	MG_RC_RECEIVE_MAX_EXCEEDED = 0x93,
	MG_RC_TOPIC_ALIAS_INVALID = 0x94,
	MG_RC_PACKET_TOO_LARGE = 0x95,
	MG_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
	MG_RC_QUOTA_EXCEEDED = 0x97,
	MG_RC_ADMINISTRATIVE_ACTION = 0x98,
	MG_RC_PAYLOAD_FORMAT_INVALID = 0x99,
	MG_RC_RETAIN_NOT_SUPPORTED = 0x9A,
	MG_RC_QOS_NOT_SUPPORTED = 0x9B,
	MG_RC_USE_ANOTHER_SERVER = 0x9C,
	MG_RC_SERVER_MOVED = 0x9D,
	MG_RC_SHARED_SUBS_NOT_SUPPORTED = 0x9E,
	MG_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
	MG_RC_MAX_CONNECT_TIME = 0xA0,
	MG_RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
	MG_RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2,
};

/* 3.1 / 3.1.1 CONNACK return codes */
enum mg_connack_v3 {
	MG_CONNACK_ACCEPTED = 0,
	MG_CONNACK_BAD_PROTOCOL = 1,
	MG_CONNACK_ID_REJECTED = 2,
	MG_CONNACK_SERVER_UNAVAILABLE = 3,
	MG_CONNACK_BAD_CREDENTIALS = 4,
	MG_CONNACK_NOT_AUTHORIZED = 5,
};

const char *mg_reason_name(uint8_t code, int ptype); /* "Success"/"Normal disconnection"/... */
bool mg_reason_allowed(uint8_t code, int ptype);     /* 5.0: may this code appear in ptype? */

/* ---- properties (MQTT 5.0, section 2.2.2.2) ---- */

enum mg_prop_id {
	MG_PROP_PAYLOAD_FORMAT = 0x01,        /* byte */
	MG_PROP_MESSAGE_EXPIRY = 0x02,        /* u32 */
	MG_PROP_CONTENT_TYPE = 0x03,          /* utf8 */
	MG_PROP_RESPONSE_TOPIC = 0x08,        /* utf8 */
	MG_PROP_CORRELATION_DATA = 0x09,      /* binary */
	MG_PROP_SUBSCRIPTION_ID = 0x0B,       /* varint */
	MG_PROP_SESSION_EXPIRY = 0x11,        /* u32 */
	MG_PROP_ASSIGNED_CLIENT_ID = 0x12,    /* utf8 */
	MG_PROP_SERVER_KEEP_ALIVE = 0x13,     /* u16 */
	MG_PROP_AUTH_METHOD = 0x15,           /* utf8 */
	MG_PROP_AUTH_DATA = 0x16,             /* binary */
	MG_PROP_REQUEST_PROBLEM_INFO = 0x17,  /* byte */
	MG_PROP_WILL_DELAY = 0x18,            /* u32 */
	MG_PROP_REQUEST_RESPONSE_INFO = 0x19, /* byte */
	MG_PROP_RESPONSE_INFO = 0x1A,         /* utf8 */
	MG_PROP_SERVER_REFERENCE = 0x1C,      /* utf8 */
	MG_PROP_REASON_STRING = 0x1F,         /* utf8 */
	MG_PROP_RECEIVE_MAXIMUM = 0x21,       /* u16 */
	MG_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,   /* u16 */
	MG_PROP_TOPIC_ALIAS = 0x23,           /* u16 */
	MG_PROP_MAXIMUM_QOS = 0x24,           /* byte */
	MG_PROP_RETAIN_AVAILABLE = 0x25,      /* byte */
	MG_PROP_USER = 0x26,                  /* utf8 pair */
	MG_PROP_MAXIMUM_PACKET_SIZE = 0x27,   /* u32 */
	MG_PROP_WILDCARD_SUB_AVAILABLE = 0x28,/* byte */
	MG_PROP_SUB_ID_AVAILABLE = 0x29,      /* byte */
	MG_PROP_SHARED_SUB_AVAILABLE = 0x2A,  /* byte */
};

enum mg_prop_type { MG_PT_NONE = 0, MG_PT_BYTE, MG_PT_U16, MG_PT_U32, MG_PT_VARINT, MG_PT_UTF8, MG_PT_BINARY, MG_PT_PAIR };

/* "Will" is not a packet type; property checks for the will properties in CONNECT use this. */
#define MG_PTYPE_WILL 16

int mg_prop_type(int id);                    /* enum mg_prop_type, MG_PT_NONE if unknown */
const char *mg_prop_name(int id);            /* "Message Expiry Interval", ... */
bool mg_prop_allowed(int id, int ptype);     /* ptype: enum mg_ptype or MG_PTYPE_WILL */

#define MG_PROP_BIT(id) (1ull << (id)) /* ids are all < 64 */

/* All properties of one packet. On decode, `present` has MG_PROP_BIT(id) set for each property
 * seen and `raw` is the whole property block (without its length), to iterate user properties
 * and subscription identifiers (mg_prop_next) or to forward as it is.
 * On encode, the encoder writes each property whose bit is set in `present`, then the
 * sub_ids (encode only), then `raw` verbatim (already-encoded properties, e.g. user properties
 * copied from an incoming packet). It does not check `raw`. */
typedef struct mg_props {
	uint64_t present;
	mg_bytes raw;
	uint8_t payload_format;
	uint8_t request_problem_info;   /* default 1 when absent; decoder sets the default */
	uint8_t request_response_info;
	uint8_t maximum_qos;            /* default 2 */
	uint8_t retain_available;       /* default 1 */
	uint8_t wildcard_sub_available; /* default 1 */
	uint8_t sub_id_available;       /* default 1 */
	uint8_t shared_sub_available;   /* default 1 */
	uint16_t server_keep_alive;
	uint16_t receive_maximum;       /* default 65535 */
	uint16_t topic_alias_maximum;
	uint16_t topic_alias;
	uint32_t message_expiry;
	uint32_t session_expiry;
	uint32_t will_delay;
	uint32_t maximum_packet_size;   /* 0 = absent (no limit) */
	uint32_t subscription_id;       /* decode: the first one */
	mg_bytes content_type;
	mg_bytes response_topic;
	mg_bytes correlation_data;
	mg_bytes assigned_client_id;
	mg_bytes auth_method;
	mg_bytes auth_data;
	mg_bytes response_info;
	mg_bytes server_reference;
	mg_bytes reason_string;
	uint16_t n_user;                /* decode: number of user properties */
	uint16_t n_sub_id;              /* decode: count; encode: entries in sub_ids */
	const uint32_t *sub_ids;        /* encode only */
} mg_props;

/* One property, as mg_prop_next hands it back. */
typedef struct mg_prop {
	uint8_t id;
	uint32_t u;   /* BYTE, U16, U32, VARINT */
	mg_bytes a;   /* UTF8, BINARY, PAIR key */
	mg_bytes b;   /* PAIR value */
} mg_prop;

/* Iterate a property block that a decoder has already validated (props.raw).
 * Start with *off = 0; returns 1 and fills *out, or 0 at the end. */
int mg_prop_next(mg_bytes raw, uint32_t *off, mg_prop *out);

/* Encode one user property (0x26, key, value) into buf; returns the size (writes only if it fits).
 * Used to build mg_props.raw for encoding. */
size_t mg_prop_put_user(uint8_t *buf, size_t cap, mg_bytes key, mg_bytes value);

/* Copy a validated property block (e.g. a decoded props.raw) into buf without the properties
 * whose MG_PROP_BIT(id) is in `drop`; returns the size of the result (writes only if it fits).
 * For forwarding a PUBLISH: drop Topic Alias, Subscription Identifiers and Message Expiry,
 * then set per-recipient values through `present`/`sub_ids` and pass the copy as `raw`. */
size_t mg_props_strip(uint8_t *buf, size_t cap, mg_bytes raw, uint64_t drop);

/* Size of the property block (without its varint length) as mg_encode would write it. */
size_t mg_props_size(const mg_props *p);

/* ---- packets ---- */

typedef struct mg_connect {
	uint8_t level;          /* 3, 4 or 5 */
	bool bridge;            /* 3.x level byte had 0x80 (mosquitto's try_private): a bridge */
	mg_bytes protocol_name; /* "MQIsdp" or "MQTT" */
	bool clean;             /* clean session (3.x) / clean start (5.0) */
	uint16_t keepalive;
	mg_bytes client_id;     /* may be empty */
	bool will;
	uint8_t will_qos;
	bool will_retain;
	mg_props will_props;    /* 5.0 only */
	mg_bytes will_topic;
	mg_bytes will_payload;
	bool has_username;
	bool has_password;
	mg_bytes username;
	mg_bytes password;
} mg_connect;

typedef struct mg_publish {
	uint8_t qos;
	bool dup;
	bool retain;
	mg_bytes topic;     /* may be empty in 5.0 when a topic alias is given */
	uint16_t packet_id; /* 0 for QoS 0 */
	mg_bytes payload;
} mg_publish;

/* SUBSCRIBE / UNSUBSCRIBE: the decoder validates every entry; iterate with mg_sub_next. */
typedef struct mg_sublist {
	mg_bytes raw;   /* the payload */
	uint32_t count; /* number of filters: a packet may hold far more than 65,535 */
} mg_sublist;

/* Subscription options byte (SUBSCRIBE); in 3.x only qos is used. */
typedef struct mg_subopts {
	uint8_t qos;
	bool no_local;
	bool retain_as_published;
	uint8_t retain_handling; /* 0, 1, 2 */
} mg_subopts;

uint8_t mg_subopts_byte(mg_subopts o);

typedef struct mg_packet {
	uint8_t type;   /* enum mg_ptype */
	uint8_t flags;  /* low nibble of the first byte */
	uint32_t size;  /* whole packet, fixed header included (decode) */
	uint16_t packet_id;   /* PUBACK..PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK; PUBLISH uses publish.packet_id */
	uint8_t reason_code;  /* CONNACK (3.x return code or 5.0 reason), PUBACK..PUBCOMP, DISCONNECT, AUTH */
	bool session_present; /* CONNACK */
	mg_props props;       /* 5.0 properties of this packet */
	union {
		mg_connect connect;
		mg_publish publish;
		mg_sublist sub;   /* SUBSCRIBE, UNSUBSCRIBE */
		mg_bytes codes;   /* SUBACK, UNSUBACK: one reason/return code per filter */
	} u;
} mg_packet;

/* Iterate a decoded SUBSCRIBE (opts filled) or UNSUBSCRIBE (opts may be NULL).
 * Start with *off = 0; returns 1 per entry, 0 at the end. */
int mg_sub_next(const mg_packet *pkt, uint32_t *off, mg_bytes *filter, mg_subopts *opts);

/* Encode one SUBSCRIBE entry (filter + options byte) or, with opts NULL, one UNSUBSCRIBE entry
 * into buf; returns its size (writes only if it fits; 0 if the filter is over 65535 bytes).
 * Concatenated entries form mg_packet.u.sub.raw for mg_encode. In 3.x pass only opts->qos. */
size_t mg_sub_put(uint8_t *buf, size_t cap, mg_bytes filter, const mg_subopts *opts);

/* Decode one packet from buf[0..len).
 * level: the connection's protocol level (3, 4, 5); ignored for CONNECT, whose level the decoder
 *        reads from the packet. 0 (before CONNECT) decodes like 4; the caller checks packet order.
 * max_size: largest whole packet accepted (0 = MG_MAX_PACKET); a larger one gives MG_E_TOO_LARGE
 *        as soon as its fixed header is readable, before its body has arrived.
 * Returns bytes consumed (> 0), 0 for need more, or a negative enum mg_err.
 * On MG_E_PROTOCOL_NAME / MG_E_PROTOCOL_LEVEL, out->type, u.connect.protocol_name and
 * u.connect.level are set (to pick CONNACK 0x01 or 0x84); on MG_E_CLIENT_ID (empty id in 3.1,
 * or empty id with clean session 0 in 3.1.1: CONNACK 0x02) the whole CONNECT is in *out. */
int mg_decode(const uint8_t *buf, size_t len, uint8_t level, uint32_t max_size, mg_packet *out);

/* Just the fixed header: returns the whole packet's size (> 0), 0 for need more, or an error
 * (MG_E_VARINT, MG_E_VARINT_NONMINIMAL only when level == 5 and the packet is not a CONNECT,
 * whose own level decides: mg_decode checks that, MG_E_TOO_LARGE). *type_flags gets byte 0. */
int mg_frame(const uint8_t *buf, size_t len, uint8_t level, uint32_t max_size, uint8_t *type_flags);

/* Encode pkt for the given protocol level. Returns the exact size of the whole packet; writes
 * it only if size <= cap. Returns 0 if pkt cannot be encoded (MG_E_ARG cases: remaining length
 * over the maximum, QoS 3, ...). Properties are written only when level == 5. For PUBLISH,
 * flags come from pkt->u.publish (pkt->flags is ignored); for other types the fixed flags. */
size_t mg_encode(uint8_t *buf, size_t cap, uint8_t level, const mg_packet *pkt);

/* PUBLISH without its payload: the fixed header (remaining length counts payload_len),
 * topic, packet id and properties. The caller sends the payload bytes after it (writev).
 * This is the broker's per-recipient hot path. Same return convention as mg_encode. */
size_t mg_encode_publish_header(uint8_t *buf, size_t cap, uint8_t level, const mg_publish *pub,
                                const mg_props *props, uint32_t payload_len);

/* ---- variable byte integers and UTF-8 ---- */

/* Returns bytes used (1..4), 0 need more, or MG_E_VARINT. *nonminimal set if not shortest form. */
int mg_varint_decode(const uint8_t *buf, size_t len, uint32_t *value, bool *nonminimal);
size_t mg_varint_size(uint32_t value);                /* 1..4, 0 if > MG_MAX_REMAINING */
size_t mg_varint_encode(uint8_t *buf, uint32_t value); /* buf has room for 4 */

/* MG_OK, MG_E_UTF8 or MG_E_UTF8_NUL. Control characters other than U+0000 are allowed. */
int mg_utf8_check(const uint8_t *s, size_t len);

/* ---- topics (MQTT 5.0 section 4.7; 3.1.1 section 4.7) ---- */

/* Topic name for PUBLISH: non-empty, no '+' or '#', valid UTF-8, <= 65535 bytes. */
int mg_topic_name_check(const uint8_t *t, size_t len);
/* Topic filter for SUBSCRIBE / UNSUBSCRIBE: non-empty, '#' only as the whole last level, '+'
 * only as a whole level, valid UTF-8. A $share filter is checked by mg_share_parse. */
int mg_topic_filter_check(const uint8_t *f, size_t len);
/* Does topic name match filter? Implements '+', '#' (including "a/#" matching "a"), and that
 * a filter starting with a wildcard does not match a name starting with '$' [MQTT-4.7.2-1]. */
bool mg_topic_match(const uint8_t *filter, size_t flen, const uint8_t *name, size_t nlen);
/* "$share/group/filter": returns 1 and sets *group, *filter if shared; 0 if not a shared
 * filter; MG_E_FILTER_SHARE if it starts with "$share/" but the group is empty, contains
 * '+' or '#', or no filter follows. The filter after the group is checked too
 * (mg_topic_filter_check's error if it is invalid). group/filter may be NULL. */
int mg_share_parse(const uint8_t *f, size_t len, mg_bytes *group, mg_bytes *filter);

/* Level-by-level walk without copying: *off starts at 0; returns 1 and sets *level for each
 * level (possibly empty), 0 after the last. For matching trees. */
int mg_topic_next_level(const uint8_t *t, size_t len, size_t *off, mg_bytes *level);

#endif
