/*
 * test/unit/test_proto_encode.c - the encoders against hand-written bytes, their size
 * contract (exact size; nothing written when it does not fit), their limits, and round trips
 * encode -> decode -> same fields for every packet type at every level.
 */
#include "test_proto_util.h"

/* Encode and compare with hex; also check the size contract with every smaller cap. */
static void check_encode(const mg_packet *p, uint8_t level, const char *h, int line)
{
	size_t n;
	uint8_t *want = hex(h, &n);
	uint8_t buf[600];
	size_t m = mg_encode(NULL, 0, level, p);
	if (m != n) {
		t_fail(__FILE__, line, "size %zu, expected %zu", m, n);
		free(want);
		return;
	}
	for (size_t cap = 0; cap < n; cap++) {
		memset(buf, 0xEE, sizeof buf);
		if (mg_encode(buf, cap, level, p) != n || buf[0] != 0xEE)
			t_fail(__FILE__, line, "cap %zu: wrote or misreported", cap);
	}
	memset(buf, 0xEE, sizeof buf);
	CHECK_EQ_INT(mg_encode(buf, sizeof buf, level, p), n);
	if (memcmp(buf, want, n) != 0) {
		printf("  got:");
		for (size_t i = 0; i < n; i++)
			printf(" %02X", buf[i]);
		printf("\n");
		t_fail(__FILE__, line, "bytes differ from %s", h);
	}
	CHECK_EQ_INT(buf[n], 0xEE); /* not one byte more */
	free(want);
}
#define ENC(p, level, h) check_encode((p), (level), (h), __LINE__)

TEST(encode_connect_311)
{
	mg_packet p = {.type = MG_CONNECT};
	mg_connect *c = &p.u.connect;
	c->clean = true;
	c->keepalive = 10;
	c->client_id = B("c1");
	c->will = true;
	c->will_qos = 1;
	c->will_retain = true;
	c->will_topic = B("w/t");
	c->will_payload = B("bye");
	c->has_username = c->has_password = true;
	c->username = B("u");
	c->password = (mg_bytes){(const uint8_t *)"\x01\x02", 2};
	ENC(&p, 4, "10 1F 00 04 4D 51 54 54 04 EE 00 0A 00 02 63 31 00 03 77 2F 74 00 03 62 79 65"
	           " 00 01 75 00 02 01 02");
	/* level 0 takes the level from the packet */
	c->level = 4;
	uint8_t a[64], b[64];
	CHECK_EQ_INT(mg_encode(a, sizeof a, 0, &p), mg_encode(b, sizeof b, 4, &p));
	CHECK_MEM(a, b, 33);
}

TEST(encode_connect_31)
{
	mg_packet p = {.type = MG_CONNECT};
	p.u.connect.clean = true;
	p.u.connect.keepalive = 60;
	p.u.connect.client_id = B("cid");
	ENC(&p, 3, "10 11 00 06 4D 51 49 73 64 70 03 02 00 3C 00 03 63 69 64");
}

TEST(encode_connect_5_properties)
{
	mg_packet p = {.type = MG_CONNECT};
	uint8_t user[16];
	p.u.connect.clean = true;
	p.u.connect.keepalive = 60;
	p.u.connect.client_id = B("c");
	p.props.present = MG_PROP_BIT(MG_PROP_SESSION_EXPIRY) | MG_PROP_BIT(MG_PROP_RECEIVE_MAXIMUM) |
	                  MG_PROP_BIT(MG_PROP_MAXIMUM_PACKET_SIZE) | MG_PROP_BIT(MG_PROP_TOPIC_ALIAS_MAXIMUM) |
	                  MG_PROP_BIT(MG_PROP_REQUEST_RESPONSE_INFO) | MG_PROP_BIT(MG_PROP_REQUEST_PROBLEM_INFO) |
	                  MG_PROP_BIT(MG_PROP_USER); /* no field: user properties come from raw */
	p.props.session_expiry = 60;
	p.props.receive_maximum = 20;
	p.props.maximum_packet_size = 4096;
	p.props.topic_alias_maximum = 10;
	p.props.request_response_info = 1;
	p.props.request_problem_info = 0;
	size_t un = mg_prop_put_user(user, sizeof user, B("k"), B("v"));
	CHECK_EQ_INT(un, 7);
	CHECK_EQ_INT(mg_prop_put_user(user, 6, B("k"), B("v")), 7); /* too small: size only */
	p.props.raw = (mg_bytes){user, (uint32_t)un};
	CHECK_EQ_INT(mg_props_size(&p.props), 27);
	ENC(&p, 5, "10 29 00 04 4D 51 54 54 05 02 00 3C 1B 11 00 00 00 3C 17 00 19 01 21 00 14"
	           " 22 00 0A 27 00 00 10 00 26 00 01 6B 00 01 76 00 01 63");
}

TEST(encode_connect_5_will)
{
	mg_packet p = {.type = MG_CONNECT};
	mg_connect *c = &p.u.connect;
	c->clean = true;
	c->client_id = B("c");
	c->will = true;
	c->will_qos = 2;
	c->will_topic = B("w");
	c->will_payload = B("x");
	c->will_props.present = MG_PROP_BIT(MG_PROP_PAYLOAD_FORMAT) | MG_PROP_BIT(MG_PROP_WILL_DELAY) |
	                        MG_PROP_BIT(MG_PROP_CORRELATION_DATA);
	c->will_props.payload_format = 1;
	c->will_props.will_delay = 5;
	c->will_props.correlation_data = B("z");
	/* will props: 01 01, 09 00 01 7A, 18 00 00 00 05 = 11 bytes */
	ENC(&p, 5, "10 20 00 04 4D 51 54 54 05 16 00 00 00 00 01 63 0B 01 01 09 00 01 7A 18 00 00 00 05"
	           " 00 01 77 00 01 78");
	/* the same at 3.1.1: no property blocks at all */
	ENC(&p, 4, "10 13 00 04 4D 51 54 54 04 16 00 00 00 01 63 00 01 77 00 01 78");
}

TEST(encode_connack)
{
	mg_packet p = {.type = MG_CONNACK, .session_present = true};
	ENC(&p, 4, "20 02 01 00");
	ENC(&p, 3, "20 02 00 00"); /* 3.1: the byte is reserved */
	p.session_present = false;
	p.reason_code = MG_CONNACK_BAD_CREDENTIALS;
	ENC(&p, 4, "20 02 00 04");
	p.reason_code = 0;
	ENC(&p, 5, "20 03 00 00 00");
	p.props.present = MG_PROP_BIT(MG_PROP_ASSIGNED_CLIENT_ID) | MG_PROP_BIT(MG_PROP_SERVER_KEEP_ALIVE) |
	                  MG_PROP_BIT(MG_PROP_MAXIMUM_QOS) | MG_PROP_BIT(MG_PROP_RETAIN_AVAILABLE) |
	                  MG_PROP_BIT(MG_PROP_WILDCARD_SUB_AVAILABLE) | MG_PROP_BIT(MG_PROP_SUB_ID_AVAILABLE) |
	                  MG_PROP_BIT(MG_PROP_SHARED_SUB_AVAILABLE) | MG_PROP_BIT(MG_PROP_TOPIC_ALIAS_MAXIMUM);
	p.props.assigned_client_id = B("id");
	p.props.server_keep_alive = 30;
	p.props.maximum_qos = 1;
	p.props.topic_alias_maximum = 16;
	/* mosquitto's order: 22 00 10 | 13 00 1E | 12 00 02 69 64 | 25 00 | 24 01, then the rest
	 * ascending: 28 00 | 29 00 | 2A 00 = 21 */
	ENC(&p, 5, "20 18 00 00 15 22 00 10 13 00 1E 12 00 02 69 64 25 00 24 01 28 00 29 00 2A 00");
	p.props.present |= MG_PROP_BIT(MG_PROP_MAXIMUM_PACKET_SIZE) | MG_PROP_BIT(MG_PROP_RECEIVE_MAXIMUM) |
	                   MG_PROP_BIT(MG_PROP_SESSION_EXPIRY);
	p.props.maximum_packet_size = 1000;
	p.props.receive_maximum = 10;
	p.props.session_expiry = 7;
	/* ... 25 00 | 27 00 00 03 E8 | 21 00 0A | 24 01, then 11 00 00 00 07 | 28 00 ... = 34 */
	ENC(&p, 5, "20 25 00 00 22 22 00 10 13 00 1E 12 00 02 69 64 25 00 27 00 00 03 E8 21 00 0A 24 01"
	           " 11 00 00 00 07 28 00 29 00 2A 00");
}

TEST(encode_publish)
{
	mg_packet p = {.type = MG_PUBLISH};
	p.u.publish.topic = B("a/b");
	p.u.publish.payload = B("hello");
	ENC(&p, 4, "30 0A 00 03 61 2F 62 68 65 6C 6C 6F");
	p.flags = 0x0F; /* ignored: flags come from u.publish */
	ENC(&p, 4, "30 0A 00 03 61 2F 62 68 65 6C 6C 6F");
	p.u.publish.qos = 1;
	p.u.publish.dup = p.u.publish.retain = true;
	p.u.publish.packet_id = 10;
	p.u.publish.payload = B("hi");
	ENC(&p, 4, "3B 09 00 03 61 2F 62 00 0A 68 69");
	ENC(&p, 5, "3B 0A 00 03 61 2F 62 00 0A 00 68 69");
	p.u.publish.qos = 2;
	p.u.publish.dup = false;
	p.props.present = MG_PROP_BIT(MG_PROP_MESSAGE_EXPIRY) | MG_PROP_BIT(MG_PROP_CONTENT_TYPE) |
	                  MG_PROP_BIT(MG_PROP_RESPONSE_TOPIC);
	p.props.message_expiry = 0x01020304;
	p.props.content_type = B("j");
	p.props.response_topic = B("r");
	/* 02 01 02 03 04 | 03 00 01 6A | 08 00 01 72 = 13 */
	ENC(&p, 5, "35 17 00 03 61 2F 62 00 0A 0D 02 01 02 03 04 03 00 01 6A 08 00 01 72 68 69");
}

TEST(encode_publish_header)
{
	mg_publish pub = {.qos = 1, .topic = B("a/b"), .packet_id = 7};
	mg_props pr = {0};
	static const uint32_t ids[] = {5, 129};
	pr.present = MG_PROP_BIT(MG_PROP_TOPIC_ALIAS);
	pr.topic_alias = 1;
	pr.sub_ids = ids;
	pr.n_sub_id = 2;
	size_t n;
	uint8_t *want = hex("32 13 00 03 61 2F 62 00 07 08 23 00 01 0B 05 0B 81 01", &n);
	uint8_t buf[64];
	memset(buf, 0xEE, sizeof buf);
	CHECK_EQ_INT(mg_encode_publish_header(buf, 5, 5, &pub, &pr, 3), n);
	CHECK_EQ_INT(buf[0], 0xEE);
	CHECK_EQ_INT(mg_encode_publish_header(buf, sizeof buf, 5, &pub, &pr, 3), n);
	CHECK_MEM(buf, want, n);
	CHECK_EQ_INT(buf[n], 0xEE);
	free(want);
	/* header + payload decodes, and equals mg_encode of the whole packet */
	memcpy(buf + n, "hey", 3);
	mg_packet d;
	CHECK_EQ_INT(mg_decode(buf, n + 3, 5, 0, &d), (int)n + 3);
	CHECK_EQ_INT(d.props.n_sub_id, 2);
	CHECK_BYTES(d.u.publish.payload, "hey");
	mg_packet p = {.type = MG_PUBLISH, .u.publish = pub};
	p.u.publish.payload = B("hey");
	p.props = pr;
	uint8_t whole[64];
	CHECK_EQ_INT(mg_encode(whole, sizeof whole, 5, &p), n + 3);
	CHECK_MEM(whole, buf, n + 3);
	/* 3.1.1, QoS 0, no properties argument */
	mg_publish q0 = {.topic = B("a/b")};
	want = hex("30 0A 00 03 61 2F 62", &n);
	CHECK_EQ_INT(mg_encode_publish_header(buf, sizeof buf, 4, &q0, &pr, 5), n); /* props ignored */
	CHECK_MEM(buf, want, n);
	CHECK_EQ_INT(mg_encode_publish_header(buf, sizeof buf, 5, &q0, NULL, 5), n + 1);
	free(want);
}

TEST(encode_largest_remaining_length)
{
	/* 268,435,455 is representable (FF FF FF 7F); one more is not */
	mg_publish pub = {.topic = B("t")};
	uint8_t buf[16];
	uint32_t pl = MG_MAX_REMAINING - 3;
	CHECK_EQ_INT(mg_encode_publish_header(buf, sizeof buf, 4, &pub, NULL, pl), 8);
	static const uint8_t want[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, 't'};
	CHECK_MEM(buf, want, 8);
	uint8_t tf;
	CHECK_EQ_INT(mg_frame(buf, 8, 4, 0, &tf), (int)MG_MAX_PACKET);
	CHECK_EQ_INT(mg_encode_publish_header(buf, sizeof buf, 4, &pub, NULL, pl + 1), 0);
	/* 5.0 adds one byte of property length */
	CHECK_EQ_INT(mg_encode_publish_header(buf, sizeof buf, 5, &pub, NULL, pl - 1), 9);
	CHECK_EQ_INT(mg_encode_publish_header(buf, sizeof buf, 5, &pub, NULL, pl), 0);
}

TEST(encode_longest_topic)
{
	uint8_t *t = malloc(65536);
	memset(t, 'x', 65536);
	mg_packet p = {.type = MG_PUBLISH};
	p.u.publish.topic = (mg_bytes){t, 65535};
	size_t n = mg_encode(NULL, 0, 4, &p);
	CHECK_EQ_INT(n, 1 + 3 + 2 + 65535);
	uint8_t *buf = malloc(n);
	CHECK_EQ_INT(mg_encode(buf, n, 4, &p), n);
	mg_packet d;
	CHECK_EQ_INT(mg_decode(buf, n, 4, 0, &d), (int)n);
	CHECK_EQ_INT(d.u.publish.topic.len, 65535);
	free(buf);
	p.u.publish.topic.len = 65536;
	CHECK_EQ_INT(mg_encode(NULL, 0, 4, &p), 0);
	free(t);
}

TEST(encode_acks_short_forms)
{
	mg_packet p = {.type = MG_PUBACK, .packet_id = 1};
	ENC(&p, 4, "40 02 00 01");
	ENC(&p, 5, "40 02 00 01");
	p.reason_code = 0x10;
	ENC(&p, 5, "40 03 00 01 10");
	ENC(&p, 4, "40 02 00 01"); /* no reason codes before 5.0 */
	p.props.present = MG_PROP_BIT(MG_PROP_REASON_STRING);
	p.props.reason_string = B("x");
	ENC(&p, 5, "40 08 00 01 10 04 1F 00 01 78");
	p.reason_code = 0; /* properties force the reason code out */
	ENC(&p, 5, "40 08 00 01 00 04 1F 00 01 78");
	mg_packet r = {.type = MG_PUBREL, .packet_id = 0x1234};
	ENC(&r, 4, "62 02 12 34");
	r.reason_code = 0x92;
	ENC(&r, 5, "62 03 12 34 92");
	mg_packet c = {.type = MG_PUBCOMP, .packet_id = 9};
	ENC(&c, 3, "70 02 00 09");
	mg_packet rec = {.type = MG_PUBREC, .packet_id = 9};
	ENC(&rec, 5, "50 02 00 09");
}

TEST(encode_subscribe_unsubscribe)
{
	uint8_t raw[64];
	size_t n = 0;
	mg_subopts o1 = {.qos = 1}, o2 = {.qos = 2};
	n += mg_sub_put(raw + n, sizeof raw - n, B("a/b"), &o1);
	n += mg_sub_put(raw + n, sizeof raw - n, B("#"), &o2);
	CHECK_EQ_INT(n, 10);
	CHECK_EQ_INT(mg_sub_put(raw, 2, B("#"), &o2), 4);
	mg_packet p = {.type = MG_SUBSCRIBE, .packet_id = 1};
	p.u.sub.raw = (mg_bytes){raw, (uint32_t)n};
	p.u.sub.count = 2;
	ENC(&p, 4, "82 0C 00 01 00 03 61 2F 62 01 00 01 23 02");
	static const uint32_t id = 10;
	p.props.sub_ids = &id;
	p.props.n_sub_id = 1;
	ENC(&p, 5, "82 0F 00 01 02 0B 0A 00 03 61 2F 62 01 00 01 23 02");
	mg_subopts all = {.qos = 1, .no_local = true, .retain_as_published = true, .retain_handling = 2};
	CHECK_EQ_INT(mg_subopts_byte(all), 0x2D);
	n = mg_sub_put(raw, sizeof raw, B("a/b"), NULL);
	n += mg_sub_put(raw + n, sizeof raw - n, B("#"), NULL);
	mg_packet u = {.type = MG_UNSUBSCRIBE, .packet_id = 2};
	u.u.sub.raw = (mg_bytes){raw, (uint32_t)n};
	ENC(&u, 4, "A2 0A 00 02 00 03 61 2F 62 00 01 23");
	ENC(&u, 5, "A2 0B 00 02 00 00 03 61 2F 62 00 01 23");
}

TEST(encode_suback_unsuback)
{
	static const uint8_t codes[] = {0x01, 0x80};
	mg_packet p = {.type = MG_SUBACK, .packet_id = 1};
	p.u.codes = (mg_bytes){codes, 2};
	ENC(&p, 4, "90 04 00 01 01 80");
	ENC(&p, 5, "90 05 00 01 00 01 80");
	mg_packet u = {.type = MG_UNSUBACK, .packet_id = 2};
	u.u.codes = (mg_bytes){codes, 1};
	ENC(&u, 4, "B0 02 00 02");
	ENC(&u, 5, "B0 04 00 02 00 01");
}

TEST(encode_ping_disconnect_auth)
{
	mg_packet p = {.type = MG_PINGREQ};
	ENC(&p, 4, "C0 00");
	p.type = MG_PINGRESP;
	ENC(&p, 5, "D0 00");
	p.type = MG_DISCONNECT;
	ENC(&p, 3, "E0 00");
	ENC(&p, 5, "E0 00");
	p.reason_code = MG_RC_DISCONNECT_WITH_WILL;
	ENC(&p, 5, "E0 01 04");
	ENC(&p, 4, "E0 00");
	p.reason_code = MG_RC_SERVER_MOVED;
	p.props.present = MG_PROP_BIT(MG_PROP_SERVER_REFERENCE);
	p.props.server_reference = B("h");
	ENC(&p, 5, "E0 06 9D 04 1C 00 01 68");
	mg_packet a = {.type = MG_AUTH, .reason_code = MG_RC_CONTINUE_AUTHENTICATION};
	a.props.present = MG_PROP_BIT(MG_PROP_AUTH_METHOD) | MG_PROP_BIT(MG_PROP_AUTH_DATA);
	a.props.auth_method = B("m");
	a.props.auth_data = B("d");
	ENC(&a, 5, "F0 0A 18 08 15 00 01 6D 16 00 01 64");
	mg_packet a0 = {.type = MG_AUTH};
	ENC(&a0, 5, "F0 00");
}

TEST(encode_refuses_what_cannot_be_encoded)
{
	uint8_t buf[64];
	mg_packet p = {.type = MG_PUBLISH};
	p.u.publish.topic = B("t");
	p.u.publish.qos = 3;
	CHECK_EQ_INT(mg_encode(buf, sizeof buf, 4, &p), 0);
	mg_publish q3 = {.qos = 3, .topic = B("t")};
	CHECK_EQ_INT(mg_encode_publish_header(buf, sizeof buf, 4, &q3, NULL, 0), 0);
	mg_packet a = {.type = MG_AUTH};
	CHECK_EQ_INT(mg_encode(buf, sizeof buf, 4, &a), 0);
	mg_packet z = {.type = 0};
	CHECK_EQ_INT(mg_encode(buf, sizeof buf, 4, &z), 0);
	z.type = 16;
	CHECK_EQ_INT(mg_encode(buf, sizeof buf, 4, &z), 0);
	mg_packet c = {.type = MG_CONNECT};
	c.u.connect.will = true;
	c.u.connect.will_qos = 3;
	c.u.connect.will_topic = B("w");
	CHECK_EQ_INT(mg_encode(buf, sizeof buf, 4, &c), 0);
	mg_packet s = {.type = MG_SUBSCRIBE, .packet_id = 1};
	static const uint32_t big = MG_MAX_REMAINING + 1;
	s.props.sub_ids = &big;
	s.props.n_sub_id = 1;
	CHECK_EQ_INT(mg_encode(buf, sizeof buf, 5, &s), 0);
	CHECK_EQ_INT(mg_encode(buf, sizeof buf, 4, &s), 4); /* no properties at 3.1.1 */
	mg_packet r = {.type = MG_PUBACK, .packet_id = 1};
	r.props.present = MG_PROP_BIT(MG_PROP_REASON_STRING);
	r.props.reason_string.p = buf;
	r.props.reason_string.len = 70000;
	CHECK_EQ_INT(mg_encode(buf, sizeof buf, 5, &r), 0);
}

TEST(props_size_matches_written)
{
	/* every property set at once: mg_props_size is what the encoder writes */
	mg_props pr = {0};
	uint8_t user[32];
	static const uint32_t ids[] = {1, 200, 70000, MG_MAX_REMAINING};
	for (int id = 1; id < 64; id++)
		if (mg_prop_type(id))
			pr.present |= MG_PROP_BIT(id);
	pr.content_type = B("text/plain");
	pr.response_topic = B("r/t");
	pr.correlation_data = B("cd");
	pr.assigned_client_id = B("a");
	pr.auth_method = B("SCRAM");
	pr.auth_data = B("xyz");
	pr.response_info = B("ri");
	pr.server_reference = B("sr");
	pr.reason_string = B("why");
	pr.subscription_id = 300;
	pr.sub_ids = ids;
	pr.n_sub_id = 4;
	pr.raw = (mg_bytes){user, (uint32_t)mg_prop_put_user(user, sizeof user, B("key"), B("value"))};
	size_t n = mg_props_size(&pr);
	/* id + value: 01:2 02:5 03:13 08:6 09:5 0B(300):3 11:5 12:4 13:3 15:8 16:6 17:2 18:5 19:2
	 * 1A:5 1C:5 1F:6 21:3 22:3 23:3 24:2 25:2 27:5 28:2 29:2 2A:2 = 109; sub_ids 2+3+4+5 = 14;
	 * user property 1+(2+3)+(2+5) = 13 */
	CHECK_EQ_INT(n, 136);
	mg_packet p = {.type = MG_DISCONNECT, .reason_code = 0x80, .props = pr};
	uint8_t buf[300];
	size_t m = mg_encode(buf, sizeof buf, 5, &p);
	CHECK_EQ_INT(m, 1 + 2 + 1 + 2 + n); /* type, rem (2 bytes), reason, prop len (2 bytes) */
	CHECK_EQ_INT(mg_props_size(NULL), 0);
	mg_props empty = {0};
	CHECK_EQ_INT(mg_props_size(&empty), 0);
}

/* ---- round trips ---- */

static int roundtrip(const mg_packet *in, uint8_t level, mg_packet *out, uint8_t *buf, size_t cap)
{
	size_t n = mg_encode(buf, cap, level, in);
	if (n == 0 || n > cap)
		return -100;
	int r = mg_decode(buf, n, level, 0, out);
	if (r != (int)n)
		printf("  roundtrip decode of %s at %d: %d (%s)\n", mg_ptype_name(in->type), level, r,
		       r < 0 ? mg_err_str(r) : "size");
	CHECK_EQ_INT(prefixes_need_more(buf, n, level), 0);
	return r == (int)n ? 0 : -1;
}

static bool same(mg_bytes a, mg_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

TEST(roundtrip_connect_all_levels)
{
	for (uint8_t lvl = 3; lvl <= 5; lvl++) {
		mg_packet p = {.type = MG_CONNECT}, d;
		mg_connect *c = &p.u.connect;
		c->clean = lvl != 5;
		c->keepalive = 0xABCD;
		c->client_id = B("client-42");
		c->will = true;
		c->will_qos = 2;
		c->will_retain = true;
		c->will_topic = B("last/will");
		c->will_payload = B("gone");
		c->has_username = true;
		c->username = B("user");
		c->has_password = true;
		c->password = B("secret");
		if (lvl == 5) {
			p.props.present = MG_PROP_BIT(MG_PROP_SESSION_EXPIRY) | MG_PROP_BIT(MG_PROP_RECEIVE_MAXIMUM);
			p.props.session_expiry = 3600;
			p.props.receive_maximum = 100;
			c->will_props.present = MG_PROP_BIT(MG_PROP_WILL_DELAY);
			c->will_props.will_delay = 9;
		}
		uint8_t buf[256];
		REQUIRE(roundtrip(&p, lvl, &d, buf, sizeof buf) == 0);
		mg_connect *e = &d.u.connect;
		CHECK_EQ_INT(e->level, lvl);
		CHECK_BYTES(e->protocol_name, lvl == 3 ? "MQIsdp" : "MQTT");
		CHECK(e->clean == c->clean && e->will && e->will_retain && e->has_username && e->has_password);
		CHECK_EQ_INT(e->will_qos, 2);
		CHECK_EQ_INT(e->keepalive, 0xABCD);
		CHECK(same(e->client_id, c->client_id) && same(e->will_topic, c->will_topic));
		CHECK(same(e->will_payload, c->will_payload) && same(e->username, c->username));
		CHECK(same(e->password, c->password));
		if (lvl == 5) {
			CHECK_EQ_INT(d.props.session_expiry, 3600);
			CHECK_EQ_INT(d.props.receive_maximum, 100);
			CHECK_EQ_INT(e->will_props.will_delay, 9);
		} else {
			CHECK_EQ_INT(d.props.present, 0);
		}
	}
}

TEST(roundtrip_every_other_type)
{
	static const uint8_t codes[] = {0x00, 0x02};
	uint8_t raw[32];
	mg_subopts so = {.qos = 2};
	size_t rn = mg_sub_put(raw, sizeof raw, B("x/+/z"), &so);
	for (uint8_t lvl = 3; lvl <= 5; lvl++)
		for (int type = MG_CONNACK; type <= MG_AUTH; type++) {
			if (type == MG_AUTH && lvl != 5)
				continue;
			mg_packet p = {.type = (uint8_t)type, .packet_id = 0x0102}, d;
			switch (type) {
			case MG_CONNACK:
				p.session_present = true;
				p.reason_code = lvl == 5 ? 0x86 : 4;
				break;
			case MG_PUBLISH:
				p.u.publish = (mg_publish){.qos = 2, .dup = true, .retain = true, .topic = B("t/x"),
				                           .packet_id = 77, .payload = B("payload")};
				break;
			case MG_PUBACK:
			case MG_PUBREC:
				p.reason_code = lvl == 5 ? 0x10 : 0;
				break;
			case MG_PUBREL:
			case MG_PUBCOMP:
				p.reason_code = lvl == 5 ? 0x92 : 0;
				break;
			case MG_SUBSCRIBE:
				p.u.sub.raw = (mg_bytes){raw, (uint32_t)rn};
				break;
			case MG_UNSUBSCRIBE:
				p.u.sub.raw = (mg_bytes){raw, (uint32_t)rn - 1}; /* no options byte */
				break;
			case MG_SUBACK:
			case MG_UNSUBACK:
				p.u.codes = (mg_bytes){codes, type == MG_SUBACK || lvl == 5 ? 2 : 0};
				if (type == MG_UNSUBACK)
					p.u.codes.len = lvl == 5 ? 1 : 0;
				break;
			case MG_DISCONNECT:
				p.reason_code = lvl == 5 ? 0x8B : 0;
				break;
			case MG_AUTH:
				p.reason_code = 0x19;
				break;
			}
			uint8_t user[16];
			if (lvl == 5 && type != MG_PINGREQ && type != MG_PINGRESP) {
				size_t un = mg_prop_put_user(user, sizeof user, B("a"), B("b"));
				p.props.raw = (mg_bytes){user, (uint32_t)un};
			}
			uint8_t buf[128];
			if (roundtrip(&p, lvl, &d, buf, sizeof buf) != 0) {
				t_fail(__FILE__, __LINE__, "%s at level %d", mg_ptype_name(type), lvl);
				continue;
			}
			CHECK_EQ_INT(d.type, type);
			if (type == MG_PUBLISH) {
				CHECK_EQ_INT(d.u.publish.qos, 2);
				CHECK(d.u.publish.dup && d.u.publish.retain);
				CHECK_EQ_INT(d.u.publish.packet_id, 77);
				CHECK(same(d.u.publish.topic, B("t/x")) && same(d.u.publish.payload, B("payload")));
			} else if (type >= MG_PUBACK && type <= MG_UNSUBACK) {
				CHECK_EQ_INT(d.packet_id, 0x0102);
			}
			if (type == MG_SUBSCRIBE || type == MG_UNSUBSCRIBE) {
				uint32_t off = 0;
				mg_bytes f;
				mg_subopts o;
				REQUIRE(mg_sub_next(&d, &off, &f, &o) == 1);
				CHECK_BYTES(f, "x/+/z");
				if (type == MG_SUBSCRIBE)
					CHECK_EQ_INT(o.qos, 2);
				CHECK_EQ_INT(d.u.sub.count, 1);
			}
			if (type == MG_SUBACK || (type == MG_UNSUBACK && lvl == 5))
				CHECK(same(d.u.codes, p.u.codes));
			if (type != MG_PUBLISH && type != MG_SUBSCRIBE && type != MG_UNSUBSCRIBE)
				CHECK_EQ_INT(d.reason_code, p.reason_code);
			if (type == MG_CONNACK) /* 3.1 has no session present flag: encoded as 0 */
				CHECK(d.session_present == (lvl != 3));
			if (lvl == 5 && type != MG_PINGREQ && type != MG_PINGRESP)
				CHECK_EQ_INT(d.props.n_user, 1);
		}
}

TEST(props_strip_for_forwarding)
{
	/* a 5.0 PUBLISH's properties as decoded; forward them without alias, sub ids and expiry */
	mg_packet p;
	size_t n;
	uint8_t *b = hex("32 2D 00 03 61 2F 62 00 07 22 23 00 01 0B 05 0B 81 01 01 01 02 00 00 00 3C"
	                 " 03 00 01 6A 08 00 01 72 09 00 01 78 26 00 01 6B 00 01 76 68 65 79", &n);
	REQUIRE(mg_decode(b, n, 5, 0, &p) == (int)n);
	uint64_t drop = MG_PROP_BIT(MG_PROP_TOPIC_ALIAS) | MG_PROP_BIT(MG_PROP_SUBSCRIPTION_ID) |
	                MG_PROP_BIT(MG_PROP_MESSAGE_EXPIRY);
	uint8_t out[64];
	memset(out, 0xEE, sizeof out);
	size_t want_n;
	uint8_t *want = hex("01 01 03 00 01 6A 08 00 01 72 09 00 01 78 26 00 01 6B 00 01 76", &want_n);
	CHECK_EQ_INT(mg_props_strip(out, 3, p.props.raw, drop), want_n); /* too small: nothing */
	CHECK_EQ_INT(out[0], 0xEE);
	CHECK_EQ_INT(mg_props_strip(out, sizeof out, p.props.raw, drop), want_n);
	CHECK_MEM(out, want, want_n);
	CHECK_EQ_INT(out[want_n], 0xEE);
	CHECK_EQ_INT(mg_props_strip(NULL, 0, p.props.raw, drop), want_n);
	uint8_t all[64];
	CHECK_EQ_INT(mg_props_strip(all, sizeof all, p.props.raw, 0), p.props.raw.len);
	CHECK_MEM(all, p.props.raw.p, p.props.raw.len);
	/* re-encode for a recipient: its own alias and subscription id, the expiry left */
	mg_props fw = {0};
	static const uint32_t sid = 42;
	fw.present = MG_PROP_BIT(MG_PROP_TOPIC_ALIAS) | MG_PROP_BIT(MG_PROP_MESSAGE_EXPIRY);
	fw.topic_alias = 9;
	fw.message_expiry = 50;
	fw.sub_ids = &sid;
	fw.n_sub_id = 1;
	fw.raw = (mg_bytes){out, (uint32_t)want_n};
	mg_publish pub = p.u.publish;
	uint8_t hdr[128];
	size_t h = mg_encode_publish_header(hdr, sizeof hdr, 5, &pub, &fw, pub.payload.len);
	REQUIRE(h > 0 && h + pub.payload.len <= sizeof hdr);
	memcpy(hdr + h, pub.payload.p, pub.payload.len);
	mg_packet d;
	REQUIRE(mg_decode(hdr, h + pub.payload.len, 5, 0, &d) == (int)(h + pub.payload.len));
	CHECK_EQ_INT(d.props.topic_alias, 9);
	CHECK_EQ_INT(d.props.message_expiry, 50);
	CHECK_EQ_INT(d.props.subscription_id, 42);
	CHECK_EQ_INT(d.props.n_sub_id, 1);
	CHECK_EQ_INT(d.props.payload_format, 1);
	CHECK_BYTES(d.props.content_type, "j");
	CHECK_EQ_INT(d.props.n_user, 1);
	free(want);
	free(b);
}
