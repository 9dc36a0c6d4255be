/*
 * test/unit/test_proto_malformed.c - one or more malformed packets per rule the decoder
 * enforces, each with the exact error expected. Every prefix of each is decoded too: it may
 * say "need more" or fail early, but never return a packet and never read past its length.
 */
#include "test_proto_util.h"

#define CONNECT4 "00 04 4D 51 54 54 04"  /* "MQTT" level 4 */
#define CONNECT5 "00 04 4D 51 54 54 05"
#define CONNECT3 "00 06 4D 51 49 73 64 70 03" /* "MQIsdp" level 3 */

static const struct mcase {
	const char *what;
	uint8_t level;
	const char *hex;
	int err;
} cases[] = {
	/* fixed header */
	{"packet type 0", 4, "00 00", MG_E_TYPE},
	{"AUTH at 3.1.1", 4, "F0 00", MG_E_TYPE},
	{"AUTH at 3.1", 3, "F0 00", MG_E_TYPE},
	{"AUTH before CONNECT", 0, "F0 00", MG_E_TYPE},
	{"PINGREQ flags", 4, "C1 00", MG_E_FLAGS},
	{"CONNECT flags", 4, "12 0D " CONNECT4 " 02 00 3C 00 01 63", MG_E_FLAGS},
	{"CONNACK flags", 4, "28 02 00 00", MG_E_FLAGS},
	{"PUBACK flags", 4, "42 02 00 01", MG_E_FLAGS},
	{"PUBREL flags 0", 4, "60 02 00 01", MG_E_FLAGS},
	{"SUBSCRIBE flags 0", 4, "80 06 00 01 00 01 23 00", MG_E_FLAGS},
	{"UNSUBSCRIBE flags 3", 4, "A3 05 00 01 00 01 23", MG_E_FLAGS},
	{"DISCONNECT flags", 5, "E8 00", MG_E_FLAGS},
	{"remaining length over 4 bytes", 4, "30 FF FF FF FF 01", MG_E_VARINT},
	{"non-minimal remaining length in 5.0", 5, "C0 80 00", MG_E_VARINT_NONMINIMAL},
	{"non-minimal remaining length in 5.0 CONNECT", 0,
	 "10 8E 00 " CONNECT5 " 02 00 3C 00 00 01 63", MG_E_VARINT_NONMINIMAL},
	{"non-minimal property length", 5, "40 05 00 01 80 80 00", MG_E_VARINT_NONMINIMAL},
	/* lengths */
	{"topic overruns the packet", 4, "30 03 00 05 61", MG_E_SHORT},
	{"packet id missing", 4, "40 01 00", MG_E_SHORT},
	{"property length overruns", 5, "40 04 00 01 00 05", MG_E_SHORT},
	{"property value overruns", 5, "40 06 00 01 80 02 1F 00", MG_E_SHORT},
	{"CONNECT cut after flags", 4, "10 08 " CONNECT4 " 02", MG_E_SHORT},
	{"CONNECT username missing", 4, "10 0D " CONNECT4 " 82 00 3C 00 01 63", MG_E_SHORT},
	{"PINGREQ with a body", 4, "C0 01 00", MG_E_TRAILING},
	{"PUBACK with a reason in 3.1.1", 4, "40 03 00 01 00", MG_E_TRAILING},
	{"CONNACK 3.1.1 with 3 bytes", 4, "20 03 00 00 00", MG_E_TRAILING},
	{"DISCONNECT with a body in 3.1.1", 4, "E0 01 00", MG_E_TRAILING},
	{"UNSUBACK with codes in 3.1.1", 4, "B0 03 00 01 00", MG_E_TRAILING},
	{"CONNECT with extra bytes", 4, "10 0E " CONNECT4 " 02 00 3C 00 01 63 FF", MG_E_TRAILING},
	/* UTF-8 */
	{"overlong '/' in topic", 4, "30 06 00 02 C0 AF 68 69", MG_E_UTF8},
	{"overlong 3-byte in topic", 4, "30 05 00 03 E0 80 AF", MG_E_UTF8},
	{"surrogate U+D800 in topic", 4, "30 05 00 03 ED A0 80", MG_E_UTF8},
	{"above U+10FFFF in topic", 4, "30 06 00 04 F4 90 80 80", MG_E_UTF8},
	{"lead byte F8 in topic", 4, "30 03 00 01 F8", MG_E_UTF8},
	{"lone continuation byte in topic", 4, "30 03 00 01 80", MG_E_UTF8},
	{"truncated sequence in topic", 4, "30 04 00 02 E2 82", MG_E_UTF8},
	{"U+0000 in topic", 4, "30 05 00 03 61 00 62", MG_E_UTF8_NUL},
	{"U+0000 in client id", 4, "10 0F " CONNECT4 " 02 00 3C 00 03 63 00 64", MG_E_UTF8_NUL},
	{"U+0000 in username", 4, "10 11 " CONNECT4 " 82 00 3C 00 01 63 00 02 75 00", MG_E_UTF8_NUL},
	{"bad UTF-8 in will topic", 4, "10 14 " CONNECT4 " 06 00 3C 00 01 63 00 02 C3 28 00 01 78",
	 MG_E_UTF8},
	{"U+0000 in user property key", 5, "40 0A 00 01 80 06 26 00 01 00 00 00", MG_E_UTF8_NUL},
	{"U+0000 in user property value", 5, "40 0B 00 01 80 07 26 00 01 61 00 01 00", MG_E_UTF8_NUL},
	{"bad UTF-8 in content type", 5, "30 09 00 01 74 05 03 00 02 C3 28", MG_E_UTF8},
	{"U+0000 in reason string", 5, "E0 06 80 04 1F 00 01 00", MG_E_UTF8_NUL},
	{"U+0000 in topic filter", 4, "82 07 00 01 00 02 61 00 00", MG_E_UTF8_NUL},
	{"bad UTF-8 in unsubscribe filter", 4, "A2 05 00 01 00 01 FF", MG_E_UTF8},
	{"U+0000 in auth method", 5, "F0 07 18 05 15 00 02 61 00", MG_E_UTF8_NUL},
	/* PUBLISH header */
	{"PUBLISH QoS 3", 4, "36 07 00 03 61 2F 62 00 01", MG_E_QOS},
	{"PUBLISH QoS 3 with DUP", 5, "3E 07 00 03 61 2F 62 00 01", MG_E_QOS},
	{"DUP on QoS 0", 4, "38 05 00 03 61 2F 62", MG_E_DUP_QOS0},
	{"DUP on QoS 0 in 3.1", 3, "38 05 00 03 61 2F 62", MG_E_DUP_QOS0},
	/* packet identifiers */
	{"PUBLISH QoS 1 packet id 0", 4, "32 07 00 03 61 2F 62 00 00", MG_E_PACKET_ID},
	{"PUBLISH QoS 2 packet id 0", 5, "34 08 00 03 61 2F 62 00 00 00", MG_E_PACKET_ID},
	{"PUBACK packet id 0", 4, "40 02 00 00", MG_E_PACKET_ID},
	{"PUBREC packet id 0", 5, "50 02 00 00", MG_E_PACKET_ID},
	{"PUBREL packet id 0", 4, "62 02 00 00", MG_E_PACKET_ID},
	{"PUBCOMP packet id 0", 3, "70 02 00 00", MG_E_PACKET_ID},
	{"SUBSCRIBE packet id 0", 4, "82 06 00 00 00 01 23 00", MG_E_PACKET_ID},
	{"UNSUBSCRIBE packet id 0", 4, "A2 05 00 00 00 01 23", MG_E_PACKET_ID},
	{"SUBACK packet id 0", 4, "90 03 00 00 00", MG_E_PACKET_ID},
	{"UNSUBACK packet id 0", 4, "B0 02 00 00", MG_E_PACKET_ID},
	/* topic names */
	{"'+' in topic name", 4, "30 05 00 03 61 2F 2B", MG_E_TOPIC_WILDCARD},
	{"'#' in topic name", 5, "30 03 00 00 01 23", MG_E_SHORT}, /* lengths first */
	{"'#' in topic name 5.0", 5, "30 04 00 01 23 00", MG_E_TOPIC_WILDCARD},
	{"wildcard in will topic", 4, "10 13 " CONNECT4 " 06 00 3C 00 01 63 00 01 23 00 01 78",
	 MG_E_TOPIC_WILDCARD},
	{"empty will topic", 4, "10 12 " CONNECT4 " 06 00 3C 00 01 63 00 00 00 01 78", MG_E_TOPIC_EMPTY},
	{"wildcard in response topic", 5, "30 09 00 01 74 05 08 00 02 61 23", MG_E_TOPIC_WILDCARD},
	{"empty topic name in 3.1.1", 4, "30 02 00 00", MG_E_TOPIC_EMPTY},
	{"empty topic name in 3.1", 3, "30 04 00 00 68 69", MG_E_TOPIC_EMPTY},
	{"empty topic name in 5.0 without alias", 5, "30 03 00 00 00", MG_E_TOPIC_EMPTY},
	/* topic filters */
	{"empty topic filter", 4, "82 05 00 01 00 00 00", MG_E_TOPIC_EMPTY},
	{"empty unsubscribe filter", 5, "A2 05 00 01 00 00 00", MG_E_TOPIC_EMPTY},
	{"'#' not last", 4, "82 0A 00 01 00 05 61 2F 23 2F 62 00", MG_E_FILTER},
	{"'#' not a whole level", 4, "82 07 00 01 00 02 61 23 00", MG_E_FILTER},
	{"'+' not a whole level (after)", 4, "82 09 00 01 00 04 61 2B 2F 62 00", MG_E_FILTER},
	{"'+' not a whole level (before)", 5, "82 08 00 01 00 00 02 2B 61 00", MG_E_FILTER},
	{"bad filter in UNSUBSCRIBE", 4, "A2 06 00 01 00 02 61 23", MG_E_FILTER},
	{"$share with empty group", 5, "82 0F 00 01 00 00 09 24 73 68 61 72 65 2F 2F 61 00",
	 MG_E_FILTER_SHARE},
	{"$share group with '+'", 5, "82 10 00 01 00 00 0A 24 73 68 61 72 65 2F 2B 2F 61 00",
	 MG_E_FILTER_SHARE},
	{"$share without filter", 5, "82 0E 00 01 00 00 08 24 73 68 61 72 65 2F 67 00",
	 MG_E_FILTER_SHARE},
	{"$share with empty filter", 4, "82 0E 00 01 00 09 24 73 68 61 72 65 2F 67 2F 00",
	 MG_E_FILTER_SHARE},
	{"$share with bad filter", 4, "82 10 00 01 00 0B 24 73 68 61 72 65 2F 67 2F 23 2B 00",
	 MG_E_FILTER},
	/* SUBSCRIBE / UNSUBSCRIBE payload */
	{"SUBSCRIBE without filters", 4, "82 02 00 01", MG_E_NO_TOPICS},
	{"SUBSCRIBE without filters 5.0", 5, "82 03 00 01 00", MG_E_NO_TOPICS},
	{"UNSUBSCRIBE without filters", 4, "A2 02 00 01", MG_E_NO_TOPICS},
	/* a SUBSCRIBE that ends where an options byte should be is malformed, whatever its filter */
	{"SUBSCRIBE ends before options byte", 4, "82 05 00 01 00 01 23", MG_E_SHORT},
	{"SUBSCRIBE ends before options byte, empty filter", 5, "82 05 00 01 00 00 00", MG_E_SHORT},
	{"SUBSCRIBE ends before options byte, empty filter 3.1.1", 4, "82 04 00 01 00 00", MG_E_SHORT},
	{"SUBSCRIBE ends before options byte, bad filter", 4, "82 06 00 01 00 02 61 23", MG_E_SHORT},
	{"SUBSCRIBE second filter ends before options", 5, "82 09 00 01 00 00 01 23 00 00 00",
	 MG_E_SHORT},
	{"SUBACK without codes", 4, "90 02 00 01", MG_E_NO_TOPICS},
	{"filter without options byte", 4, "82 05 00 01 00 01 23", MG_E_SHORT},
	{"3.1.1 subscription option bit 2", 4, "82 06 00 01 00 01 23 04", MG_E_SUB_OPTIONS},
	{"3.1.1 subscription option bit 7", 4, "82 06 00 01 00 01 23 80", MG_E_SUB_OPTIONS},
	{"3.1 subscription option bit 4", 3, "82 06 00 01 00 01 23 10", MG_E_SUB_OPTIONS},
	{"subscription QoS 3", 4, "82 06 00 01 00 01 23 03", MG_E_QOS},
	{"subscription QoS 3 in 5.0", 5, "82 07 00 01 00 00 01 23 03", MG_E_QOS},
	{"5.0 subscription option bit 6", 5, "82 07 00 01 00 00 01 23 40", MG_E_SUB_OPTIONS},
	{"5.0 retain handling 3", 5, "82 07 00 01 00 00 01 23 30", MG_E_SUB_OPTIONS_PROTOCOL},
	{"5.0 no local on shared subscription", 5,
	 "82 10 00 01 00 00 0A 24 73 68 61 72 65 2F 67 2F 61 04", MG_E_SUB_OPTIONS_PROTOCOL},
	/* properties */
	{"payload format twice", 5, "30 08 00 01 74 04 01 00 01 00", MG_E_PROP_DUP},
	{"subscription id twice in SUBSCRIBE", 5, "82 0B 00 01 04 0B 01 0B 02 00 01 23 00", MG_E_PROP_DUP},
	{"reason string twice", 5, "40 0C 00 01 80 08 1F 00 01 61 1F 00 01 62", MG_E_PROP_DUP},
	{"session expiry twice in CONNECT", 5,
	 "10 18 " CONNECT5 " 02 00 3C 0A 11 00 00 00 01 11 00 00 00 02 00 01 63", MG_E_PROP_DUP},
	{"topic alias in PUBACK", 5, "40 07 00 01 80 03 23 00 01", MG_E_PROP_NOT_ALLOWED},
	{"session expiry in PUBLISH", 5, "30 09 00 01 74 05 11 00 00 00 01", MG_E_PROP_NOT_ALLOWED},
	{"will delay in CONNECT properties", 5, "10 13 " CONNECT5 " 02 00 3C 05 18 00 00 00 05 00 01 63",
	 MG_E_PROP_NOT_ALLOWED},
	{"session expiry in will properties", 5,
	 "10 19 " CONNECT5 " 06 00 3C 00 00 01 63 05 11 00 00 00 05 00 01 74 00 00",
	 MG_E_PROP_NOT_ALLOWED},
	{"subscription id in UNSUBSCRIBE", 5, "A2 07 00 01 02 0B 01 00 01 23", MG_E_PROP_NOT_ALLOWED},
	{"maximum QoS in CONNECT", 5, "10 10 " CONNECT5 " 02 00 3C 02 24 01 00 01 63", MG_E_PROP_NOT_ALLOWED},
	{"unknown property 0x05", 5, "40 06 00 01 80 02 05 00", MG_E_PROP_UNKNOWN},
	{"unknown property 0x7F", 5, "E0 03 00 01 7F", MG_E_PROP_UNKNOWN},
	{"unknown two-byte property id", 5, "E0 04 00 02 81 01", MG_E_PROP_UNKNOWN},
	{"topic alias 0", 5, "30 07 00 01 74 03 23 00 00", MG_E_TOPIC_ALIAS_ZERO},
	{"subscription id 0 in SUBSCRIBE", 5, "82 09 00 01 02 0B 00 00 01 23 00", MG_E_PROP_VALUE},
	{"subscription id 0 in PUBLISH", 5, "30 06 00 01 74 02 0B 00", MG_E_PROP_VALUE},
	{"receive maximum 0", 5, "10 11 " CONNECT5 " 02 00 3C 03 21 00 00 00 01 63", MG_E_PROP_VALUE},
	{"maximum packet size 0", 5, "20 08 00 00 05 27 00 00 00 00", MG_E_PROP_VALUE},
	{"payload format 2", 5, "30 06 00 01 74 02 01 02", MG_E_PROP_VALUE},
	{"will payload format 2", 5, "10 16 " CONNECT5 " 06 00 3C 00 00 01 63 02 01 02 00 01 74 00 00",
	 MG_E_PROP_VALUE},
	{"maximum QoS 2", 5, "20 05 00 00 02 24 02", MG_E_PROP_VALUE},
	{"retain available 2", 5, "20 05 00 00 02 25 02", MG_E_PROP_VALUE},
	{"request problem information 2", 5, "10 10 " CONNECT5 " 02 00 3C 02 17 02 00 01 63",
	 MG_E_PROP_VALUE},
	{"request response information 2", 5, "10 10 " CONNECT5 " 02 00 3C 02 19 02 00 01 63",
	 MG_E_PROP_VALUE},
	{"auth data without auth method", 5, "F0 07 18 05 16 00 02 01 02", MG_E_PROP_VALUE},
	/* CONNECT flags and fields */
	{"password without username 3.1.1", 4, "10 10 " CONNECT4 " 42 00 3C 00 01 63 00 01 70",
	 MG_E_PASSWORD_NO_USER},
	{"password without username 3.1", 3, "10 12 " CONNECT3 " 42 00 3C 00 01 63 00 01 70",
	 MG_E_PASSWORD_NO_USER},
	{"will QoS without will flag", 4, "10 0D " CONNECT4 " 0A 00 3C 00 01 63", MG_E_WILL_FLAGS},
	{"will retain without will flag", 5, "10 0E " CONNECT5 " 22 00 3C 00 00 01 63", MG_E_WILL_FLAGS},
	{"will QoS 3", 4, "10 12 " CONNECT4 " 1E 00 3C 00 01 63 00 01 74 00 00", MG_E_WILL_FLAGS},
	{"CONNECT reserved flag", 4, "10 0D " CONNECT4 " 03 00 3C 00 01 63", MG_E_CONNECT_RESERVED},
	{"protocol name MQTX", 4, "10 0D 00 04 4D 51 54 58 04 02 00 3C 00 01 63", MG_E_PROTOCOL_NAME},
	{"protocol name mqtt", 4, "10 0D 00 04 6D 71 74 74 04 02 00 3C 00 01 63", MG_E_PROTOCOL_NAME},
	{"MQTT with level 3", 4, "10 0D 00 04 4D 51 54 54 03 02 00 3C 00 01 63", MG_E_PROTOCOL_LEVEL},
	{"MQTT with level 6", 5, "10 0D 00 04 4D 51 54 54 06 02 00 3C 00 01 63", MG_E_PROTOCOL_LEVEL},
	{"MQTT with level 0x85 (no 5.0 bridge bit)", 5, "10 0D 00 04 4D 51 54 54 85 02 00 3C 00 01 63",
	 MG_E_PROTOCOL_LEVEL},
	{"MQTT with level 0x83", 4, "10 0D 00 04 4D 51 54 54 83 02 00 3C 00 01 63", MG_E_PROTOCOL_LEVEL},
	{"MQIsdp with level 0x84", 4, "10 0F 00 06 4D 51 49 73 64 70 84 02 00 3C 00 01 63",
	 MG_E_PROTOCOL_LEVEL},
	{"MQTT with level 0x80", 4, "10 0D 00 04 4D 51 54 54 80 02 00 3C 00 01 63", MG_E_PROTOCOL_LEVEL},
	{"MQIsdp with level 4", 4, "10 0F 00 06 4D 51 49 73 64 70 04 02 00 3C 00 01 63",
	 MG_E_PROTOCOL_LEVEL},
	{"MQIsdp with level 5", 5, "10 0F 00 06 4D 51 49 73 64 70 05 02 00 3C 00 01 63",
	 MG_E_PROTOCOL_LEVEL},
	{"empty client id in 3.1", 3, "10 0E " CONNECT3 " 02 00 3C 00 00", MG_E_CLIENT_ID},
	{"empty client id, clean 0, 3.1.1", 4, "10 0C " CONNECT4 " 00 00 3C 00 00", MG_E_CLIENT_ID},
	/* reason codes */
	{"PUBACK reason 0x92", 5, "40 03 00 01 92", MG_E_REASON_CODE},
	{"PUBREL reason 0x10", 5, "62 03 00 01 10", MG_E_REASON_CODE},
	{"PUBCOMP reason 0x80", 5, "70 03 00 01 80", MG_E_REASON_CODE},
	{"PUBREC reason 0x04", 5, "50 03 00 01 04", MG_E_REASON_CODE},
	{"DISCONNECT reason 0x01", 5, "E0 01 01", MG_E_REASON_CODE},
	{"DISCONNECT reason 0x84", 5, "E0 01 84", MG_E_REASON_CODE},
	{"CONNACK reason 0x10", 5, "20 03 00 10 00", MG_E_REASON_CODE},
	{"CONNACK reason 0x8E", 5, "20 03 00 8E 00", MG_E_REASON_CODE},
	{"AUTH reason 0x80", 5, "F0 01 80", MG_E_REASON_CODE},
	{"SUBACK reason 0x11", 5, "90 04 00 01 00 11", MG_E_REASON_CODE},
	{"UNSUBACK reason 0x01", 5, "B0 04 00 01 00 01", MG_E_REASON_CODE},
	{"CONNACK 3.1.1 return code 6", 4, "20 02 00 06", MG_E_REASON_CODE},
	{"SUBACK 3.1.1 code 3", 4, "90 03 00 01 03", MG_E_SUBACK_CODE},
	{"SUBACK 3.1.1 code 0x81", 4, "90 03 00 01 81", MG_E_SUBACK_CODE},
	{"SUBACK 3.1 code 0x11", 3, "90 03 00 01 11", MG_E_SUBACK_CODE},
	{"CONNACK reserved ack flag", 4, "20 02 02 00", MG_E_FLAGS},
};

TEST(malformed_table)
{
	int bad = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct mcase *c = &cases[i];
		size_t n;
		uint8_t *b = hex(c->hex, &n);
		mg_packet p;
		int r = mg_decode(b, n, c->level, 0, &p);
		if (r != c->err) {
			printf("  %s: got %d (%s), expected %d (%s)\n", c->what, r,
			       r < 0 ? mg_err_str(r) : "ok", c->err, mg_err_str(c->err));
			bad++;
		}
		for (size_t k = 0; k < n; k++) {
			uint8_t *q = malloc(k ? k : 1);
			memcpy(q, b, k);
			int rk = mg_decode(q, k, c->level, 0, &p);
			if (rk > 0)
				t_fail(__FILE__, __LINE__, "%s: prefix %zu decoded as a packet", c->what, k);
			free(q);
		}
		free(b);
	}
	CHECK_EQ_INT(bad, 0);
}

TEST(valid_neighbours_of_malformed)
{
	/* the same shapes, legal: proves the cases above fail for the reason they name */
	static const struct { uint8_t level; const char *hex; } ok[] = {
		{4, "C0 80 00"},                                             /* non-minimal is 5.0-only */
		{4, "10 8D 00 " CONNECT4 " 02 00 3C 00 01 63"},
		{5, "40 12 00 01 80 0E 26 00 01 61 00 01 62 26 00 01 61 00 01 62"}, /* user prop x2 */
		{4, "10 0C " CONNECT4 " 02 00 3C 00 00"},                    /* empty id, clean 1 */
		{5, "10 0D " CONNECT5 " 00 00 3C 00 00 00"},                 /* 5.0: empty id, clean 0 */
		{5, "82 10 00 01 00 00 0A 24 73 68 61 72 65 2F 67 2F 61 2D - "},
		{4, "82 06 00 01 00 01 23 02"},
		{5, "82 07 00 01 00 00 01 23 2E"},
		{4, "30 05 00 03 EF BF BF"},                                  /* U+FFFF is allowed */
		{4, "30 06 00 04 F4 8F BF BF"},                               /* U+10FFFF */
		{4, "30 04 00 02 01 7F"},                                     /* control characters */
		{5, "30 07 00 01 74 03 23 FF FF"},
		{5, "20 05 00 00 02 24 00"},
		{4, "90 06 00 01 00 01 02 80"},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char h[256];
		snprintf(h, sizeof h, "%s", ok[i].hex);
		char *dash = strchr(h, '-');
		if (dash) /* "2D -": options 0x2D has no local; shared forbids it: use 0x29 */
			strcpy(dash - 3, "29");
		size_t n;
		uint8_t *b = hex(h, &n);
		mg_packet p;
		int r = mg_decode(b, n, ok[i].level, 0, &p);
		if (r != (int)n)
			t_fail(__FILE__, __LINE__, "case %zu (%s): got %d (%s)", i, h, r, r < 0 ? mg_err_str(r) : "");
		CHECK_EQ_INT(prefixes_need_more(b, n, ok[i].level), 0);
		free(b);
	}
}

TEST(too_large_from_fixed_header_alone)
{
	/* only the fixed header of a 16386-byte PUBLISH has arrived */
	static const uint8_t h[] = {0x30, 0xFF, 0x7F};
	mg_packet p;
	uint8_t tf = 0;
	CHECK_EQ_INT(mg_decode(h, 3, 4, 1000, &p), MG_E_TOO_LARGE);
	CHECK_EQ_INT(mg_frame(h, 3, 4, 1000, &tf), MG_E_TOO_LARGE);
	CHECK_EQ_INT(tf, 0x30);
	CHECK_EQ_INT(mg_decode(h, 3, 4, 16386, &p), 0);  /* exactly the maximum: need more */
	CHECK_EQ_INT(mg_decode(h, 3, 4, 16385, &p), MG_E_TOO_LARGE);
	CHECK_EQ_INT(mg_frame(h, 3, 4, 0, &tf), 16386);
	/* the largest packet there is: 268,435,455 remaining + 5 */
	static const uint8_t big[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
	CHECK_EQ_INT(mg_frame(big, 5, 5, 0, &tf), (int)MG_MAX_PACKET);
	CHECK_EQ_INT(mg_decode(big, 5, 5, 0, &p), 0);
	CHECK_EQ_INT(mg_decode(big, 5, 5, MG_MAX_PACKET - 1, &p), MG_E_TOO_LARGE);
	/* even before the length is complete, when what arrived already exceeds the maximum */
	static const uint8_t part[] = {0x30, 0xFF, 0xFF};
	CHECK_EQ_INT(mg_decode(part, 3, 4, 1000, &p), MG_E_TOO_LARGE);
	CHECK_EQ_INT(mg_decode(part, 2, 4, 1000, &p), 0); /* 127 + more: not yet known */
	CHECK_EQ_INT(mg_decode(part, 3, 4, 0, &p), 0);
	/* bad header bytes are reported before the rest arrives */
	static const uint8_t bad[] = {0x36};
	CHECK_EQ_INT(mg_decode(bad, 1, 4, 0, &p), MG_E_QOS);
}

TEST(error_reason_codes)
{
	CHECK_EQ_INT(mg_err_reason(MG_E_TOO_LARGE), MG_RC_PACKET_TOO_LARGE);
	CHECK_EQ_INT(mg_err_reason(MG_E_TOPIC_ALIAS_ZERO), MG_RC_TOPIC_ALIAS_INVALID);
	CHECK_EQ_INT(mg_err_reason(MG_E_PROTOCOL_LEVEL), MG_RC_UNSUPPORTED_PROTOCOL_VERSION);
	CHECK_EQ_INT(mg_err_reason(MG_E_UTF8), MG_RC_MALFORMED);
	CHECK_EQ_INT(mg_err_reason(MG_E_SHORT), MG_RC_MALFORMED);
	CHECK_EQ_INT(mg_err_reason(MG_E_FLAGS), MG_RC_MALFORMED);
	CHECK_EQ_INT(mg_err_reason(MG_E_CONNECT_RESERVED), MG_RC_MALFORMED);
	CHECK_EQ_INT(mg_err_reason(MG_E_PROP_DUP), MG_RC_PROTOCOL_ERROR);
	CHECK_EQ_INT(mg_err_reason(MG_E_PROP_VALUE), MG_RC_PROTOCOL_ERROR);
	CHECK_EQ_INT(mg_err_reason(MG_E_PROP_NOT_ALLOWED), MG_RC_MALFORMED);
	CHECK_EQ_INT(mg_err_reason(MG_E_SUB_OPTIONS), MG_RC_MALFORMED);          /* [MQTT-3.8.3-5] */
	CHECK_EQ_INT(mg_err_reason(MG_E_SUB_OPTIONS_PROTOCOL), MG_RC_PROTOCOL_ERROR);
	CHECK_EQ_INT(mg_err_reason(MG_E_NO_TOPICS), MG_RC_PROTOCOL_ERROR);
	CHECK_EQ_INT(mg_err_reason(MG_E_CLIENT_ID), MG_RC_CLIENT_ID_NOT_VALID);
	CHECK_EQ_INT(mg_err_reason(MG_E_TOPIC_WILDCARD), MG_RC_TOPIC_NAME_INVALID);
	CHECK_EQ_INT(mg_err_reason(MG_E_FILTER), MG_RC_TOPIC_FILTER_INVALID);
	CHECK_EQ_INT(mg_err_reason(MG_OK), 0);
	/* every error has its own message, naming a rule, and a reason code usable in DISCONNECT */
	for (int e = -1; e >= MG_E_MIN; e--) {
		const char *s = mg_err_str(e);
		CHECK(s && strlen(s) > 10 && strcmp(s, "unknown error") != 0);
		for (int f = e - 1; f >= MG_E_MIN; f--)
			if (strcmp(s, mg_err_str(f)) == 0)
				t_fail(__FILE__, __LINE__, "errors %d and %d share a message", e, f);
		uint8_t rc = mg_err_reason(e);
		CHECK(rc >= 0x80);
		if (e != MG_E_PROTOCOL_LEVEL && e != MG_E_PROTOCOL_NAME && e != MG_E_CLIENT_ID)
			CHECK(mg_reason_allowed(rc, MG_DISCONNECT));
		else
			CHECK(mg_reason_allowed(rc, MG_CONNACK));
	}
	CHECK_STR(mg_err_str(1), "unknown error");
	CHECK_STR(mg_err_str(MG_E_MIN - 1), "unknown error");
	CHECK(strstr(mg_err_str(MG_E_QOS), "MQTT-3.3.1-4") != NULL);
}

TEST(protocol_level_error_fills_connect)
{
	/* the broker answers CONNACK 0x01 (3.x) or 0x84 (5.0): it needs the level it was sent */
	size_t n;
	uint8_t *b = hex("10 0D 00 04 4D 51 54 54 07 02 00 3C 00 01 63", &n);
	mg_packet p;
	CHECK_EQ_INT(mg_decode(b, n, 0, 0, &p), MG_E_PROTOCOL_LEVEL);
	CHECK_EQ_INT(p.type, MG_CONNECT);
	CHECK_EQ_INT(p.u.connect.level, 7);
	CHECK_BYTES(p.u.connect.protocol_name, "MQTT");
	free(b);
	/* MG_E_CLIENT_ID comes with the whole CONNECT decoded */
	b = hex("10 0C 00 04 4D 51 54 54 04 00 00 1E 00 00", &n);
	CHECK_EQ_INT(mg_decode(b, n, 0, 0, &p), MG_E_CLIENT_ID);
	CHECK_EQ_INT(p.u.connect.level, 4);
	CHECK_EQ_INT(p.u.connect.keepalive, 30);
	CHECK(!p.u.connect.clean);
	free(b);
}

TEST(frame_errors)
{
	uint8_t tf = 0;
	static const uint8_t nonmin[] = {0xC0, 0x80, 0x00};
	CHECK_EQ_INT(mg_frame(nonmin, 3, 4, 0, &tf), 3);   /* 3.1.1 does not forbid it */
	CHECK_EQ_INT(mg_frame(nonmin, 3, 0, 0, &tf), 3);
	CHECK_EQ_INT(mg_frame(nonmin, 3, 5, 0, &tf), MG_E_VARINT_NONMINIMAL);
	CHECK_EQ_INT(tf, 0xC0);
	/* A 3.1.1 CONNECT framed by a caller at level 5: its own level decides, so mg_frame and
	 * mg_decode agree (found by fuzz_proto_decode). */
	static const uint8_t connect4[] = {0x10, 0x8C, 0x00, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
	                                   0x02, 0x00, 0x3C, 0x00, 0x00};
	mg_packet pk;
	CHECK_EQ_INT(mg_frame(connect4, sizeof connect4, 5, 0, &tf), sizeof connect4);
	CHECK_EQ_INT(mg_decode(connect4, sizeof connect4, 5, 0, &pk), sizeof connect4);
	static const uint8_t five[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
	CHECK_EQ_INT(mg_frame(five, 6, 4, 0, &tf), MG_E_VARINT);
	CHECK_EQ_INT(mg_frame(five, 5, 4, 0, &tf), MG_E_VARINT); /* known at the 4th length byte */
	CHECK_EQ_INT(mg_frame(five, 4, 4, 0, &tf), 0);
	CHECK_EQ_INT(mg_frame(five, 0, 4, 0, NULL), 0);
	static const uint8_t ping[] = {0xC0, 0x00};
	CHECK_EQ_INT(mg_frame(ping, 2, 5, 0, NULL), 2);
	CHECK_EQ_INT(mg_frame(ping, 2, 5, 2, NULL), 2);
	CHECK_EQ_INT(mg_frame(ping, 2, 5, 1, NULL), MG_E_TOO_LARGE);
}
