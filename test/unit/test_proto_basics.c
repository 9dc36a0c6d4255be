/*
 * test/unit/test_proto_basics.c - Variable Byte Integers, UTF-8, the property and reason code
 * tables, and names.
 */
#include "test_proto_util.h"

TEST(varint_spec_table)
{
	/* MQTT 5.0 table 1-1 / 3.1.1 table 2.4: the boundaries of each size */
	static const struct { uint32_t v; const char *h; } c[] = {
		{0, "00"}, {127, "7F"}, {128, "80 01"}, {16383, "FF 7F"}, {16384, "80 80 01"},
		{2097151, "FF FF 7F"}, {2097152, "80 80 80 01"}, {268435455, "FF FF FF 7F"},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		size_t n;
		uint8_t *b = hex(c[i].h, &n);
		uint8_t out[4];
		CHECK_EQ_INT(mg_varint_size(c[i].v), n);
		CHECK_EQ_INT(mg_varint_encode(out, c[i].v), n);
		CHECK_MEM(out, b, n);
		uint32_t v = 1;
		bool nm = true;
		CHECK_EQ_INT(mg_varint_decode(b, n, &v, &nm), (int)n);
		CHECK_EQ_INT(v, c[i].v);
		CHECK(!nm);
		for (size_t k = 0; k < n; k++) /* every prefix: need more */
			CHECK_EQ_INT(mg_varint_decode(b, k, &v, &nm), 0);
		free(b);
	}
	CHECK_EQ_INT(mg_varint_size(268435456u), 0);
}

TEST(varint_errors)
{
	static const uint8_t five[] = {0x80, 0x80, 0x80, 0x80, 0x01};
	uint32_t v;
	bool nm;
	CHECK_EQ_INT(mg_varint_decode(five, 5, &v, &nm), MG_E_VARINT);
	CHECK_EQ_INT(mg_varint_decode(five, 4, &v, &nm), MG_E_VARINT); /* known after 4 bytes */
	static const uint8_t nonmin[] = {0x80, 0x00};
	CHECK_EQ_INT(mg_varint_decode(nonmin, 2, &v, &nm), 2);
	CHECK(nm);
	CHECK_EQ_INT(v, 0);
	static const uint8_t nonmin2[] = {0xFF, 0x80, 0x00};
	CHECK_EQ_INT(mg_varint_decode(nonmin2, 3, &v, &nm), 3);
	CHECK(nm);
	CHECK_EQ_INT(v, 127);
	CHECK_EQ_INT(mg_varint_decode(nonmin2, 3, &v, NULL), 3);
}

TEST(utf8_check)
{
	static const struct { const char *h; int e; } c[] = {
		{"", MG_OK}, {"61 62 63", MG_OK}, {"01 1F 7F", MG_OK},  /* controls allowed */
		{"C2 80", MG_OK}, {"DF BF", MG_OK}, {"E0 A0 80", MG_OK}, {"ED 9F BF", MG_OK},
		{"EE 80 80", MG_OK}, {"EF BB BF", MG_OK} /* BOM */, {"EF BF BF", MG_OK},
		{"F0 90 80 80", MG_OK}, {"F4 8F BF BF", MG_OK}, {"E2 82 AC 41", MG_OK},
		{"00", MG_E_UTF8_NUL}, {"61 00", MG_E_UTF8_NUL},
		{"C0 80", MG_E_UTF8} /* overlong U+0000 */, {"C1 BF", MG_E_UTF8},
		{"E0 9F BF", MG_E_UTF8}, {"F0 8F BF BF", MG_E_UTF8},
		{"ED A0 80", MG_E_UTF8}, {"ED BF BF", MG_E_UTF8}, /* surrogates */
		{"F4 90 80 80", MG_E_UTF8}, {"F5 80 80 80", MG_E_UTF8}, {"FF", MG_E_UTF8},
		{"80", MG_E_UTF8}, {"C2", MG_E_UTF8}, {"E2 82", MG_E_UTF8}, {"F0 90 80", MG_E_UTF8},
		{"C2 41", MG_E_UTF8}, {"E2 41 AC", MG_E_UTF8}, {"F0 90 41 80", MG_E_UTF8},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		size_t n;
		uint8_t *b = hex(c[i].h, &n);
		int e = mg_utf8_check(b, n);
		if (e != c[i].e)
			t_fail(__FILE__, __LINE__, "\"%s\": %d, expected %d", c[i].h, e, c[i].e);
		free(b);
	}
}

TEST(ptype_names)
{
	CHECK_STR(mg_ptype_name(MG_CONNECT), "CONNECT");
	CHECK_STR(mg_ptype_name(MG_UNSUBACK), "UNSUBACK");
	CHECK_STR(mg_ptype_name(MG_AUTH), "AUTH");
	CHECK_STR(mg_ptype_name(0), "UNKNOWN");
	CHECK_STR(mg_ptype_name(16), "UNKNOWN");
	CHECK_STR(mg_ptype_name(-1), "UNKNOWN");
}

TEST(property_table)
{
	/* MQTT 5.0 table 2-4: every property, its type and where it may appear */
	static const struct { int id, type; const char *name; int in[15]; } c[] = {
		{0x01, MG_PT_BYTE, "Payload Format Indicator", {MG_PUBLISH, MG_PTYPE_WILL}},
		{0x02, MG_PT_U32, "Message Expiry Interval", {MG_PUBLISH, MG_PTYPE_WILL}},
		{0x03, MG_PT_UTF8, "Content Type", {MG_PUBLISH, MG_PTYPE_WILL}},
		{0x08, MG_PT_UTF8, "Response Topic", {MG_PUBLISH, MG_PTYPE_WILL}},
		{0x09, MG_PT_BINARY, "Correlation Data", {MG_PUBLISH, MG_PTYPE_WILL}},
		{0x0B, MG_PT_VARINT, "Subscription Identifier", {MG_PUBLISH, MG_SUBSCRIBE}},
		{0x11, MG_PT_U32, "Session Expiry Interval", {MG_CONNECT, MG_CONNACK, MG_DISCONNECT}},
		{0x12, MG_PT_UTF8, "Assigned Client Identifier", {MG_CONNACK}},
		{0x13, MG_PT_U16, "Server Keep Alive", {MG_CONNACK}},
		{0x15, MG_PT_UTF8, "Authentication Method", {MG_CONNECT, MG_CONNACK, MG_AUTH}},
		{0x16, MG_PT_BINARY, "Authentication Data", {MG_CONNECT, MG_CONNACK, MG_AUTH}},
		{0x17, MG_PT_BYTE, "Request Problem Information", {MG_CONNECT}},
		{0x18, MG_PT_U32, "Will Delay Interval", {MG_PTYPE_WILL}},
		{0x19, MG_PT_BYTE, "Request Response Information", {MG_CONNECT}},
		{0x1A, MG_PT_UTF8, "Response Information", {MG_CONNACK}},
		{0x1C, MG_PT_UTF8, "Server Reference", {MG_CONNACK, MG_DISCONNECT}},
		{0x1F, MG_PT_UTF8, "Reason String", {MG_CONNACK, MG_PUBACK, MG_PUBREC, MG_PUBREL, MG_PUBCOMP,
		                                     MG_SUBACK, MG_UNSUBACK, MG_DISCONNECT, MG_AUTH}},
		{0x21, MG_PT_U16, "Receive Maximum", {MG_CONNECT, MG_CONNACK}},
		{0x22, MG_PT_U16, "Topic Alias Maximum", {MG_CONNECT, MG_CONNACK}},
		{0x23, MG_PT_U16, "Topic Alias", {MG_PUBLISH}},
		{0x24, MG_PT_BYTE, "Maximum QoS", {MG_CONNACK}},
		{0x25, MG_PT_BYTE, "Retain Available", {MG_CONNACK}},
		{0x26, MG_PT_PAIR, "User Property", {MG_CONNECT, MG_CONNACK, MG_PUBLISH, MG_PTYPE_WILL,
		                                     MG_PUBACK, MG_PUBREC, MG_PUBREL, MG_PUBCOMP, MG_SUBSCRIBE,
		                                     MG_SUBACK, MG_UNSUBSCRIBE, MG_UNSUBACK, MG_DISCONNECT, MG_AUTH}},
		{0x27, MG_PT_U32, "Maximum Packet Size", {MG_CONNECT, MG_CONNACK}},
		{0x28, MG_PT_BYTE, "Wildcard Subscription Available", {MG_CONNACK}},
		{0x29, MG_PT_BYTE, "Subscription Identifier Available", {MG_CONNACK}},
		{0x2A, MG_PT_BYTE, "Shared Subscription Available", {MG_CONNACK}},
	};
	int known = 0;
	for (int id = 0; id < 256; id++)
		if (mg_prop_type(id) != MG_PT_NONE)
			known++;
	CHECK_EQ_INT(known, 27);
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		CHECK_EQ_INT(mg_prop_type(c[i].id), c[i].type);
		CHECK_STR(mg_prop_name(c[i].id), c[i].name);
		for (int t = 0; t <= 17; t++) {
			bool want = false;
			for (int k = 0; k < 15 && c[i].in[k]; k++)
				want = want || c[i].in[k] == t;
			if (mg_prop_allowed(c[i].id, t) != want)
				t_fail(__FILE__, __LINE__, "property 0x%02X in %s (%d): %d", c[i].id, mg_ptype_name(t), t, !want);
		}
	}
	CHECK_STR(mg_prop_name(0x05), "Unknown property");
	CHECK(!mg_prop_allowed(0x05, MG_PUBLISH));
	CHECK(!mg_prop_allowed(-1, MG_PUBLISH));
	CHECK(!mg_prop_allowed(200, MG_PUBLISH));
}

TEST(reason_codes)
{
	CHECK_STR(mg_reason_name(0x00, MG_CONNACK), "Success");
	CHECK_STR(mg_reason_name(0x00, MG_DISCONNECT), "Normal disconnection");
	CHECK_STR(mg_reason_name(0x00, MG_SUBACK), "Granted QoS 0");
	CHECK_STR(mg_reason_name(0x01, MG_SUBACK), "Granted QoS 1");
	CHECK_STR(mg_reason_name(0x87, MG_PUBACK), "Not authorized");
	CHECK_STR(mg_reason_name(0x94, MG_DISCONNECT), "Topic Alias invalid");
	CHECK_STR(mg_reason_name(0xA2, MG_SUBACK), "Wildcard Subscriptions not supported");
	CHECK_STR(mg_reason_name(0x03, MG_SUBACK), "Unknown reason code");
	/* MQTT 5.0 table 2-6, a row per code: which packets may carry it */
	static const struct { uint8_t code; int in[10]; } c[] = {
		{0x00, {MG_CONNACK, MG_PUBACK, MG_PUBREC, MG_PUBREL, MG_PUBCOMP, MG_SUBACK, MG_UNSUBACK,
		        MG_DISCONNECT, MG_AUTH}},
		{0x01, {MG_SUBACK}}, {0x02, {MG_SUBACK}}, {0x04, {MG_DISCONNECT}},
		{0x10, {MG_PUBACK, MG_PUBREC}}, {0x11, {MG_UNSUBACK}}, {0x18, {MG_AUTH}}, {0x19, {MG_AUTH}},
		{0x80, {MG_CONNACK, MG_PUBACK, MG_PUBREC, MG_SUBACK, MG_UNSUBACK, MG_DISCONNECT}},
		{0x81, {MG_CONNACK, MG_DISCONNECT}}, {0x82, {MG_CONNACK, MG_DISCONNECT}},
		{0x83, {MG_CONNACK, MG_PUBACK, MG_PUBREC, MG_SUBACK, MG_UNSUBACK, MG_DISCONNECT}},
		{0x84, {MG_CONNACK}}, {0x85, {MG_CONNACK}}, {0x86, {MG_CONNACK}},
		{0x87, {MG_CONNACK, MG_PUBACK, MG_PUBREC, MG_SUBACK, MG_UNSUBACK, MG_DISCONNECT}},
		{0x88, {MG_CONNACK}}, {0x89, {MG_CONNACK, MG_DISCONNECT}}, {0x8A, {MG_CONNACK}},
		{0x8B, {MG_DISCONNECT}}, {0x8C, {MG_CONNACK, MG_DISCONNECT}}, {0x8D, {MG_DISCONNECT}},
		{0x8E, {MG_DISCONNECT}}, {0x8F, {MG_SUBACK, MG_UNSUBACK, MG_DISCONNECT}},
		{0x90, {MG_CONNACK, MG_PUBACK, MG_PUBREC, MG_DISCONNECT}},
		{0x91, {MG_PUBACK, MG_PUBREC, MG_SUBACK, MG_UNSUBACK}}, {0x92, {MG_PUBREL, MG_PUBCOMP}},
		{0x93, {MG_DISCONNECT}}, {0x94, {MG_DISCONNECT}}, {0x95, {MG_CONNACK, MG_DISCONNECT}},
		{0x96, {MG_DISCONNECT}}, {0x97, {MG_CONNACK, MG_PUBACK, MG_PUBREC, MG_SUBACK, MG_DISCONNECT}},
		{0x98, {MG_DISCONNECT}}, {0x99, {MG_CONNACK, MG_PUBACK, MG_PUBREC, MG_DISCONNECT}},
		{0x9A, {MG_CONNACK, MG_DISCONNECT}}, {0x9B, {MG_CONNACK, MG_DISCONNECT}},
		{0x9C, {MG_CONNACK, MG_DISCONNECT}}, {0x9D, {MG_CONNACK, MG_DISCONNECT}},
		{0x9E, {MG_SUBACK, MG_DISCONNECT}}, {0x9F, {MG_CONNACK, MG_DISCONNECT}},
		{0xA0, {MG_DISCONNECT}}, {0xA1, {MG_SUBACK, MG_DISCONNECT}}, {0xA2, {MG_SUBACK, MG_DISCONNECT}},
	};
	int rows = 0;
	for (int code = 0; code < 256; code++) {
		const int *in = NULL;
		for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
			if (c[i].code == code)
				in = c[i].in;
		if (in)
			rows++;
		for (int t = 0; t <= 16; t++) {
			bool want = false;
			for (int k = 0; in && k < 10 && in[k]; k++)
				want = want || in[k] == t;
			if (mg_reason_allowed((uint8_t)code, t) != want)
				t_fail(__FILE__, __LINE__, "reason 0x%02X in %s: %d", code, mg_ptype_name(t), !want);
		}
		if (in)
			CHECK(strcmp(mg_reason_name((uint8_t)code, MG_CONNACK), "Unknown reason code") != 0);
	}
	CHECK_EQ_INT(rows, 43);
}
