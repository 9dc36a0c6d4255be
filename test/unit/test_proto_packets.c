/*
 * test/unit/test_proto_packets.c - every packet type at every level where it exists, from the
 * byte layouts of MQTT 3.1, 3.1.1 (sections 3.1-3.14) and 5.0 (sections 3.1-3.15), written by
 * hand. Each is decoded whole, then fed one byte at a time (every prefix must say "need more"),
 * its fields are checked, and re-encoding the decoded packet (properties forwarded as raw)
 * must give back the same bytes.
 */
#include "test_proto_util.h"

/* Decode hex at level, check prefixes, and (if exact) that mg_encode gives the bytes back. */
static uint8_t *vec(const char *h, uint8_t level, mg_packet *pkt, bool exact)
{
	size_t n;
	uint8_t *b = hex(h, &n);
	CHECK_EQ_INT(prefixes_need_more(b, n, level), 0);
	int r = mg_decode(b, n, level, 0, pkt);
	if (r != (int)n) {
		t_fail(__FILE__, __LINE__, "decode of %s gave %d (%s)", h, r, r < 0 ? mg_err_str(r) : "size");
		return b;
	}
	CHECK_EQ_INT(pkt->size, n);
	/* a too-small max_size is refused from the fixed header alone */
	mg_packet tmp;
	CHECK_EQ_INT(mg_decode(b, n, level, (uint32_t)n - 1, &tmp), MG_E_TOO_LARGE);
	CHECK_EQ_INT(mg_decode(b, n, level, (uint32_t)n, &tmp), (int)n);
	if (exact) {
		mg_packet e = *pkt;
		e.props.present = 0; /* forward the property block verbatim */
		if (e.type == MG_CONNECT)
			e.u.connect.will_props.present = 0;
		uint8_t out[512];
		memset(out, 0xEE, sizeof out);
		size_t m = mg_encode(out, sizeof out, pkt->type == MG_CONNECT ? pkt->u.connect.level : level, &e);
		CHECK_EQ_INT(m, n);
		if (m == n)
			CHECK_MEM(out, b, n);
	}
	return b;
}

/* ---- MQTT 3.1.1 ---- */

TEST(v311_connect_minimal)
{
	mg_packet p;
	uint8_t *b = vec("10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 63 69 64", 4, &p, true);
	CHECK_EQ_INT(p.type, MG_CONNECT);
	CHECK_EQ_INT(p.u.connect.level, 4);
	CHECK_BYTES(p.u.connect.protocol_name, "MQTT");
	CHECK(p.u.connect.clean);
	CHECK_EQ_INT(p.u.connect.keepalive, 60);
	CHECK_BYTES(p.u.connect.client_id, "cid");
	CHECK(!p.u.connect.will && !p.u.connect.has_username && !p.u.connect.has_password);
	/* level argument is ignored for CONNECT */
	mg_packet q;
	size_t n;
	uint8_t *c = hex("10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 63 69 64", &n);
	CHECK_EQ_INT(mg_decode(c, n, 5, 0, &q), 17);
	CHECK_EQ_INT(mg_decode(c, n, 0, 0, &q), 17);
	free(c);
	free(b);
}

/* mosquitto's bridges set 0x80 in a 3.x level (try_private); the decoder strips it into
 * .bridge and the encoder writes it back, so a bridge client and the far end agree. */
TEST(bridge_connect_level)
{
	mg_packet p;
	uint8_t *b = vec("10 0F 00 04 4D 51 54 54 84 02 00 3C 00 03 63 69 64", 4, &p, true);
	CHECK_EQ_INT(p.u.connect.level, 4);
	CHECK(p.u.connect.bridge);
	free(b);
	b = vec("10 11 00 06 4D 51 49 73 64 70 83 02 00 3C 00 03 63 69 64", 3, &p, true);
	CHECK_EQ_INT(p.u.connect.level, 3);
	CHECK(p.u.connect.bridge);
	free(b);
	b = vec("10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 63 69 64", 4, &p, true);
	CHECK(!p.u.connect.bridge);
	free(b);
}

TEST(v311_connect_will_user_password)
{
	mg_packet p;
	uint8_t *b = vec("10 1F 00 04 4D 51 54 54 04 EE 00 0A 00 02 63 31 00 03 77 2F 74 00 03 62 79 65"
	                 " 00 01 75 00 02 01 02", 4, &p, true);
	mg_connect *c = &p.u.connect;
	CHECK(c->clean && c->will && c->will_retain && c->has_username && c->has_password);
	CHECK_EQ_INT(c->will_qos, 1);
	CHECK_EQ_INT(c->keepalive, 10);
	CHECK_BYTES(c->client_id, "c1");
	CHECK_BYTES(c->will_topic, "w/t");
	CHECK_BYTES(c->will_payload, "bye");
	CHECK_BYTES(c->username, "u");
	CHECK_EQ_INT(c->password.len, 2);
	CHECK(c->password.p[0] == 1 && c->password.p[1] == 2);
	free(b);
}

TEST(v311_connack)
{
	mg_packet p;
	uint8_t *b = vec("20 02 01 00", 4, &p, true);
	CHECK_EQ_INT(p.type, MG_CONNACK);
	CHECK(p.session_present);
	CHECK_EQ_INT(p.reason_code, 0);
	free(b);
	b = vec("20 02 00 05", 4, &p, true);
	CHECK(!p.session_present);
	CHECK_EQ_INT(p.reason_code, MG_CONNACK_NOT_AUTHORIZED);
	free(b);
}

TEST(v311_publish_qos0)
{
	mg_packet p;
	uint8_t *b = vec("30 0A 00 03 61 2F 62 68 65 6C 6C 6F", 4, &p, true);
	CHECK_EQ_INT(p.type, MG_PUBLISH);
	CHECK_EQ_INT(p.u.publish.qos, 0);
	CHECK(!p.u.publish.dup && !p.u.publish.retain);
	CHECK_BYTES(p.u.publish.topic, "a/b");
	CHECK_EQ_INT(p.u.publish.packet_id, 0);
	CHECK_BYTES(p.u.publish.payload, "hello");
	CHECK(p.u.publish.payload.p == b + 7); /* a view, not a copy */
	free(b);
}

TEST(v311_publish_qos1_dup_retain)
{
	mg_packet p;
	uint8_t *b = vec("3B 09 00 03 61 2F 62 00 0A 68 69", 4, &p, true);
	CHECK_EQ_INT(p.u.publish.qos, 1);
	CHECK(p.u.publish.dup && p.u.publish.retain);
	CHECK_EQ_INT(p.u.publish.packet_id, 10);
	CHECK_BYTES(p.u.publish.payload, "hi");
	free(b);
}

TEST(v311_publish_qos2_empty_payload)
{
	mg_packet p;
	uint8_t *b = vec("34 07 00 03 61 2F 62 FF FF", 4, &p, true);
	CHECK_EQ_INT(p.u.publish.qos, 2);
	CHECK_EQ_INT(p.u.publish.packet_id, 65535);
	CHECK_EQ_INT(p.u.publish.payload.len, 0);
	free(b);
}

TEST(v311_publish_two_byte_remaining_length)
{
	/* remaining length 203 = 0xCB 0x01 (2.2.3: 128 -> 0x80 0x01) */
	char h[800] = "30 CB 01 00 01 74";
	for (int i = 0; i < 200; i++)
		strcat(h, " 41");
	mg_packet p;
	uint8_t *b = vec(h, 4, &p, true);
	CHECK_EQ_INT(p.size, 206);
	CHECK_EQ_INT(p.u.publish.payload.len, 200);
	free(b);
}

TEST(v311_pub_acks)
{
	static const struct { const char *h; int type; int id; } c[] = {
		{"40 02 00 0A", MG_PUBACK, 10}, {"50 02 00 0B", MG_PUBREC, 11},
		{"62 02 00 0C", MG_PUBREL, 12}, {"70 02 00 0D", MG_PUBCOMP, 13},
	};
	for (size_t i = 0; i < 4; i++) {
		mg_packet p;
		uint8_t *b = vec(c[i].h, 4, &p, true);
		CHECK_EQ_INT(p.type, c[i].type);
		CHECK_EQ_INT(p.packet_id, c[i].id);
		CHECK_EQ_INT(p.reason_code, 0);
		free(b);
	}
}

TEST(v311_subscribe)
{
	mg_packet p;
	uint8_t *b = vec("82 0C 00 01 00 03 61 2F 62 01 00 01 23 02", 4, &p, true);
	CHECK_EQ_INT(p.type, MG_SUBSCRIBE);
	CHECK_EQ_INT(p.packet_id, 1);
	CHECK_EQ_INT(p.u.sub.count, 2);
	uint32_t off = 0;
	mg_bytes f;
	mg_subopts o;
	REQUIRE(mg_sub_next(&p, &off, &f, &o) == 1);
	CHECK_BYTES(f, "a/b");
	CHECK_EQ_INT(o.qos, 1);
	REQUIRE(mg_sub_next(&p, &off, &f, &o) == 1);
	CHECK_BYTES(f, "#");
	CHECK_EQ_INT(o.qos, 2);
	CHECK(!o.no_local && !o.retain_as_published && o.retain_handling == 0);
	CHECK_EQ_INT(mg_sub_next(&p, &off, &f, &o), 0);
	free(b);
}

/* 70,000 filters "a" (QoS 1) in one SUBSCRIBE: the count is exact past 65,535, which the
 * broker sizes its per-filter arrays by (the count once stopped at 65,535 and the broker
 * wrote past its arrays). Built by hand: 82, 4-byte remaining length, id, 70,000 x 00 01 61 01. */
TEST(subscribe_count_past_16_bits)
{
	enum { N = 70000 };
	size_t rl = 2 + (size_t)N * 4, n = 1 + 3 + rl;
	uint8_t *b = malloc(n);
	REQUIRE(b);
	b[0] = 0x82;
	b[1] = (uint8_t)(0x80 | (rl & 0x7F));
	b[2] = (uint8_t)(0x80 | ((rl >> 7) & 0x7F));
	b[3] = (uint8_t)(rl >> 14); /* 280,002 < 2^21: three bytes */
	b[4] = 0x00;
	b[5] = 0x07;
	for (size_t i = 0; i < N; i++)
		memcpy(b + 6 + 4 * i, "\x00\x01\x61\x01", 4);
	mg_packet p;
	CHECK_EQ_INT(mg_decode(b, n, 4, 0, &p), (int)n);
	CHECK_EQ_INT(p.u.sub.count, N);
	uint32_t off = 0, seen = 0;
	mg_bytes f;
	mg_subopts o;
	while (mg_sub_next(&p, &off, &f, &o))
		seen++;
	CHECK_EQ_INT(seen, N);
	free(b);
}

TEST(v311_suback)
{
	mg_packet p;
	uint8_t *b = vec("90 04 00 01 01 80", 4, &p, true);
	CHECK_EQ_INT(p.type, MG_SUBACK);
	CHECK_EQ_INT(p.packet_id, 1);
	REQUIRE(p.u.codes.len == 2);
	CHECK(p.u.codes.p[0] == 1 && p.u.codes.p[1] == 0x80);
	free(b);
}

TEST(v311_unsubscribe_unsuback)
{
	mg_packet p;
	uint8_t *b = vec("A2 0A 00 02 00 03 61 2F 62 00 01 23", 4, &p, true);
	CHECK_EQ_INT(p.type, MG_UNSUBSCRIBE);
	CHECK_EQ_INT(p.packet_id, 2);
	CHECK_EQ_INT(p.u.sub.count, 2);
	uint32_t off = 0;
	mg_bytes f;
	REQUIRE(mg_sub_next(&p, &off, &f, NULL) == 1);
	CHECK_BYTES(f, "a/b");
	REQUIRE(mg_sub_next(&p, &off, &f, NULL) == 1);
	CHECK_BYTES(f, "#");
	CHECK_EQ_INT(mg_sub_next(&p, &off, &f, NULL), 0);
	free(b);
	b = vec("B0 02 00 02", 4, &p, true);
	CHECK_EQ_INT(p.type, MG_UNSUBACK);
	CHECK_EQ_INT(p.packet_id, 2);
	free(b);
}

TEST(v311_ping_disconnect)
{
	static const struct { const char *h; int type; } c[] = {
		{"C0 00", MG_PINGREQ}, {"D0 00", MG_PINGRESP}, {"E0 00", MG_DISCONNECT},
	};
	for (int lvl = 3; lvl <= 5; lvl++)
		for (size_t i = 0; i < 3; i++) {
			mg_packet p;
			uint8_t *b = vec(c[i].h, (uint8_t)lvl, &p, true);
			CHECK_EQ_INT(p.type, c[i].type);
			CHECK_EQ_INT(p.reason_code, 0);
			free(b);
		}
}

/* ---- MQTT 3.1 ("MQIsdp", level 3) ---- */

TEST(v31_connect)
{
	mg_packet p;
	uint8_t *b = vec("10 11 00 06 4D 51 49 73 64 70 03 02 00 3C 00 03 63 69 64", 3, &p, true);
	CHECK_EQ_INT(p.u.connect.level, 3);
	CHECK_BYTES(p.u.connect.protocol_name, "MQIsdp");
	CHECK_BYTES(p.u.connect.client_id, "cid");
	free(b);
	b = vec("10 17 00 06 4D 51 49 73 64 70 03 C2 00 3C 00 03 63 69 64 00 01 75 00 01 70", 3, &p, true);
	CHECK_BYTES(p.u.connect.username, "u");
	CHECK_BYTES(p.u.connect.password, "p");
	free(b);
}

TEST(v31_other_packets)
{
	static const char *const c[] = {
		"20 02 00 00", "30 0A 00 03 61 2F 62 68 65 6C 6C 6F", "3B 09 00 03 61 2F 62 00 0A 68 69",
		"40 02 00 0A", "50 02 00 0B", "62 02 00 0C", "70 02 00 0D",
		"82 0C 00 01 00 03 61 2F 62 01 00 01 23 02", "90 05 00 01 00 01 02",
		"A2 0A 00 02 00 03 61 2F 62 00 01 23", "B0 02 00 02", "C0 00", "D0 00", "E0 00",
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		mg_packet p;
		free(vec(c[i], 3, &p, true));
	}
}

TEST(v31_dup_on_resent_pubrel_subscribe)
{
	/* 3.1 (section 2.1 "DUP") re-sends PUBREL, SUBSCRIBE and UNSUBSCRIBE with DUP set */
	mg_packet p;
	free(vec("6A 02 00 0C", 3, &p, false));
	CHECK_EQ_INT(p.type, MG_PUBREL);
	CHECK_EQ_INT(p.flags, 0x0A);
	free(vec("8A 06 00 01 00 01 23 00", 3, &p, false));
	free(vec("AA 05 00 01 00 01 23", 3, &p, false));
	size_t n;
	uint8_t *b = hex("6A 02 00 0C", &n);
	CHECK_EQ_INT(mg_decode(b, n, 4, 0, &p), MG_E_FLAGS); /* not in 3.1.1 */
	free(b);
}

/* ---- MQTT 5.0 ---- */

TEST(v5_connect_properties)
{
	mg_packet p;
	uint8_t *b = vec("10 35 00 04 4D 51 54 54 05 02 00 3C 27 11 00 00 00 3C 21 00 14 27 00 00 10 00"
	                 " 22 00 0A 19 01 17 00 26 00 01 6B 00 01 76 15 00 04 53 43 52 4D"
	                 " 16 00 02 01 02 00 01 63", 5, &p, true);
	mg_props *pr = &p.props;
	CHECK_EQ_INT(p.u.connect.level, 5);
	CHECK_BYTES(p.u.connect.client_id, "c");
	CHECK_EQ_INT(pr->session_expiry, 60);
	CHECK_EQ_INT(pr->receive_maximum, 20);
	CHECK_EQ_INT(pr->maximum_packet_size, 4096);
	CHECK_EQ_INT(pr->topic_alias_maximum, 10);
	CHECK_EQ_INT(pr->request_response_info, 1);
	CHECK_EQ_INT(pr->request_problem_info, 0);
	CHECK_BYTES(pr->auth_method, "SCRM");
	CHECK_EQ_INT(pr->auth_data.len, 2);
	CHECK_EQ_INT(pr->n_user, 1);
	CHECK_EQ_INT(pr->raw.len, 0x27);
	uint64_t want = MG_PROP_BIT(0x11) | MG_PROP_BIT(0x21) | MG_PROP_BIT(0x27) | MG_PROP_BIT(0x22) |
	                MG_PROP_BIT(0x19) | MG_PROP_BIT(0x17) | MG_PROP_BIT(0x26) | MG_PROP_BIT(0x15) |
	                MG_PROP_BIT(0x16);
	CHECK(pr->present == want);
	/* iterate the raw block: the user property comes back as a pair */
	uint32_t off = 0;
	mg_prop it;
	int n = 0, users = 0;
	while (mg_prop_next(pr->raw, &off, &it)) {
		n++;
		if (it.id == MG_PROP_USER) {
			users++;
			CHECK_BYTES(it.a, "k");
			CHECK_BYTES(it.b, "v");
		}
		if (it.id == MG_PROP_MAXIMUM_PACKET_SIZE)
			CHECK_EQ_INT(it.u, 4096);
	}
	CHECK_EQ_INT(n, 9);
	CHECK_EQ_INT(users, 1);
	CHECK_EQ_INT(off, pr->raw.len);
	free(b);
}

TEST(v5_connect_will_properties)
{
	mg_packet p;
	uint8_t *b = vec("10 43 00 04 4D 51 54 54 05 F6 00 1E 00 00 01 63 25 18 00 00 00 05 01 01"
	                 " 02 00 00 00 0A 03 00 04 74 65 78 74 08 00 03 72 2F 74 09 00 02 AB CD"
	                 " 26 00 01 61 00 01 62 00 03 77 2F 74 00 02 68 69 00 01 75 00 01 70", 5, &p, true);
	mg_connect *c = &p.u.connect;
	CHECK(c->will && c->will_retain && c->clean && c->has_username && c->has_password);
	CHECK_EQ_INT(c->will_qos, 2);
	CHECK_EQ_INT(c->keepalive, 30);
	CHECK_EQ_INT(p.props.present, 0);
	CHECK_EQ_INT(p.props.receive_maximum, 65535); /* default when absent */
	CHECK_EQ_INT(p.props.request_problem_info, 1);
	CHECK_EQ_INT(c->will_props.will_delay, 5);
	CHECK_EQ_INT(c->will_props.payload_format, 1);
	CHECK_EQ_INT(c->will_props.message_expiry, 10);
	CHECK_BYTES(c->will_props.content_type, "text");
	CHECK_BYTES(c->will_props.response_topic, "r/t");
	CHECK_EQ_INT(c->will_props.correlation_data.len, 2);
	CHECK_EQ_INT(c->will_props.n_user, 1);
	CHECK_BYTES(c->will_topic, "w/t");
	CHECK_BYTES(c->will_payload, "hi");
	CHECK_BYTES(c->username, "u");
	CHECK_BYTES(c->password, "p");
	free(b);
}

TEST(v5_connect_password_without_username)
{
	/* allowed in 5.0 (3.1.2.9), unlike 3.1.1 */
	mg_packet p;
	uint8_t *b = vec("10 11 00 04 4D 51 54 54 05 42 00 00 00 00 01 63 00 01 70", 5, &p, true);
	CHECK(!p.u.connect.has_username && p.u.connect.has_password);
	CHECK_BYTES(p.u.connect.password, "p");
	free(b);
}

TEST(v5_connack_all_properties)
{
	mg_packet p;
	uint8_t *b = vec("20 3B 00 00 38 11 00 00 00 78 21 00 0A 24 01 25 00 27 00 00 04 00"
	                 " 12 00 03 61 62 63 22 00 05 1F 00 02 6F 6B 28 00 29 00 2A 00 13 00 1E"
	                 " 1A 00 01 72 1C 00 01 73 15 00 01 6D 16 00 01 64", 5, &p, true);
	mg_props *pr = &p.props;
	CHECK_EQ_INT(pr->session_expiry, 120);
	CHECK_EQ_INT(pr->receive_maximum, 10);
	CHECK_EQ_INT(pr->maximum_qos, 1);
	CHECK_EQ_INT(pr->retain_available, 0);
	CHECK_EQ_INT(pr->maximum_packet_size, 1024);
	CHECK_BYTES(pr->assigned_client_id, "abc");
	CHECK_EQ_INT(pr->topic_alias_maximum, 5);
	CHECK_BYTES(pr->reason_string, "ok");
	CHECK_EQ_INT(pr->wildcard_sub_available, 0);
	CHECK_EQ_INT(pr->sub_id_available, 0);
	CHECK_EQ_INT(pr->shared_sub_available, 0);
	CHECK_EQ_INT(pr->server_keep_alive, 30);
	CHECK_BYTES(pr->response_info, "r");
	CHECK_BYTES(pr->server_reference, "s");
	CHECK_BYTES(pr->auth_method, "m");
	CHECK_BYTES(pr->auth_data, "d");
	free(b);
}

TEST(v5_connack_defaults)
{
	mg_packet p;
	uint8_t *b = vec("20 03 00 00 00", 5, &p, true);
	CHECK_EQ_INT(p.props.present, 0);
	CHECK_EQ_INT(p.props.maximum_qos, 2);
	CHECK_EQ_INT(p.props.retain_available, 1);
	CHECK_EQ_INT(p.props.wildcard_sub_available, 1);
	CHECK_EQ_INT(p.props.sub_id_available, 1);
	CHECK_EQ_INT(p.props.shared_sub_available, 1);
	CHECK_EQ_INT(p.props.receive_maximum, 65535);
	CHECK_EQ_INT(p.props.maximum_packet_size, 0);
	free(b);
	b = vec("20 03 00 87 00", 5, &p, true);
	CHECK_EQ_INT(p.reason_code, MG_RC_NOT_AUTHORIZED);
	free(b);
}

TEST(v5_publish_properties)
{
	mg_packet p;
	uint8_t *b = vec("32 2D 00 03 61 2F 62 00 07 22 23 00 01 0B 05 0B 81 01 01 01 02 00 00 00 3C"
	                 " 03 00 01 6A 08 00 01 72 09 00 01 78 26 00 01 6B 00 01 76 68 65 79", 5, &p, true);
	mg_props *pr = &p.props;
	CHECK_EQ_INT(p.u.publish.qos, 1);
	CHECK_EQ_INT(p.u.publish.packet_id, 7);
	CHECK_BYTES(p.u.publish.payload, "hey");
	CHECK_EQ_INT(pr->topic_alias, 1);
	CHECK_EQ_INT(pr->subscription_id, 5);
	CHECK_EQ_INT(pr->n_sub_id, 2);
	CHECK_EQ_INT(pr->payload_format, 1);
	CHECK_EQ_INT(pr->message_expiry, 60);
	CHECK_BYTES(pr->content_type, "j");
	CHECK_BYTES(pr->response_topic, "r");
	CHECK_BYTES(pr->correlation_data, "x");
	CHECK_EQ_INT(pr->n_user, 1);
	/* the second subscription identifier, 129 = 0x81 0x01, comes from iteration */
	uint32_t off = 0, ids[2], k = 0;
	mg_prop it;
	while (mg_prop_next(pr->raw, &off, &it))
		if (it.id == MG_PROP_SUBSCRIPTION_ID && k < 2)
			ids[k++] = it.u;
	REQUIRE(k == 2);
	CHECK_EQ_INT(ids[0], 5);
	CHECK_EQ_INT(ids[1], 129);
	free(b);
}

TEST(v5_publish_empty_topic_with_alias)
{
	mg_packet p;
	uint8_t *b = vec("30 07 00 00 03 23 00 02 78", 5, &p, true);
	CHECK_EQ_INT(p.u.publish.topic.len, 0);
	CHECK_EQ_INT(p.props.topic_alias, 2);
	CHECK_BYTES(p.u.publish.payload, "x");
	free(b);
}

TEST(v5_pub_acks)
{
	static const struct { const char *h; int type; int id; int rc; bool exact; } c[] = {
		{"40 02 00 01", MG_PUBACK, 1, 0, true},       /* only packet id: reason 0 (3.4.2.1) */
		{"40 03 00 01 10", MG_PUBACK, 1, 0x10, true}, /* reason, no property length */
		{"40 04 00 01 00 00", MG_PUBACK, 1, 0, false},/* explicit empty properties */
		{"40 11 00 01 80 0D 1F 00 03 62 61 64 26 00 01 6B 00 01 76", MG_PUBACK, 1, 0x80, true},
		{"50 03 00 02 91", MG_PUBREC, 2, 0x91, true},
		{"50 02 00 02", MG_PUBREC, 2, 0, true},
		{"62 03 00 03 92", MG_PUBREL, 3, 0x92, true},
		{"62 02 00 03", MG_PUBREL, 3, 0, true},
		{"70 03 00 04 92", MG_PUBCOMP, 4, 0x92, true},
		{"70 02 00 04", MG_PUBCOMP, 4, 0, true},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		mg_packet p;
		uint8_t *b = vec(c[i].h, 5, &p, c[i].exact);
		CHECK_EQ_INT(p.type, c[i].type);
		CHECK_EQ_INT(p.packet_id, c[i].id);
		CHECK_EQ_INT(p.reason_code, c[i].rc);
		if (i == 3) {
			CHECK_BYTES(p.props.reason_string, "bad");
			CHECK_EQ_INT(p.props.n_user, 1);
		}
		free(b);
	}
}

TEST(v5_subscribe)
{
	mg_packet p;
	uint8_t *b = vec("82 21 00 05 09 0B 0A 26 00 01 6B 00 01 76 00 03 61 2F 2B 2D"
	                 " 00 0C 24 73 68 61 72 65 2F 67 2F 78 2F 23 01", 5, &p, true);
	CHECK_EQ_INT(p.packet_id, 5);
	CHECK_EQ_INT(p.props.subscription_id, 10);
	CHECK_EQ_INT(p.props.n_sub_id, 1);
	CHECK_EQ_INT(p.u.sub.count, 2);
	uint32_t off = 0;
	mg_bytes f;
	mg_subopts o;
	REQUIRE(mg_sub_next(&p, &off, &f, &o) == 1);
	CHECK_BYTES(f, "a/+");
	CHECK_EQ_INT(o.qos, 1);
	CHECK(o.no_local && o.retain_as_published);
	CHECK_EQ_INT(o.retain_handling, 2);
	CHECK_EQ_INT(mg_subopts_byte(o), 0x2D);
	REQUIRE(mg_sub_next(&p, &off, &f, &o) == 1);
	CHECK_BYTES(f, "$share/g/x/#");
	CHECK_EQ_INT(o.qos, 1);
	CHECK(!o.no_local);
	CHECK_EQ_INT(mg_sub_next(&p, &off, &f, &o), 0);
	free(b);
}

TEST(v5_suback)
{
	mg_packet p;
	uint8_t *b = vec("90 0D 00 05 04 1F 00 01 72 00 01 02 80 8F A2", 5, &p, true);
	CHECK_EQ_INT(p.packet_id, 5);
	CHECK_BYTES(p.props.reason_string, "r");
	REQUIRE(p.u.codes.len == 6);
	CHECK(p.u.codes.p[3] == 0x80 && p.u.codes.p[5] == 0xA2);
	free(b);
}

TEST(v5_unsubscribe_unsuback)
{
	mg_packet p;
	uint8_t *b = vec("A2 1B 00 06 07 26 00 01 6B 00 01 76 00 03 61 2F 62"
	                 " 00 0A 24 73 68 61 72 65 2F 67 2F 23", 5, &p, true);
	CHECK_EQ_INT(p.u.sub.count, 2);
	CHECK_EQ_INT(p.props.n_user, 1);
	free(b);
	b = vec("B0 05 00 06 00 00 11", 5, &p, true);
	CHECK_EQ_INT(p.packet_id, 6);
	REQUIRE(p.u.codes.len == 2);
	CHECK(p.u.codes.p[0] == 0 && p.u.codes.p[1] == 0x11);
	free(b);
}

TEST(v5_disconnect)
{
	mg_packet p;
	uint8_t *b = vec("E0 00", 5, &p, true);
	CHECK_EQ_INT(p.reason_code, 0);
	free(b);
	b = vec("E0 01 04", 5, &p, true);
	CHECK_EQ_INT(p.reason_code, MG_RC_DISCONNECT_WITH_WILL);
	free(b);
	b = vec("E0 10 8E 0E 11 00 00 00 00 1F 00 02 68 69 1C 00 01 78", 5, &p, true);
	CHECK_EQ_INT(p.reason_code, MG_RC_SESSION_TAKEN_OVER);
	CHECK(p.props.present & MG_PROP_BIT(MG_PROP_SESSION_EXPIRY));
	CHECK_EQ_INT(p.props.session_expiry, 0);
	CHECK_BYTES(p.props.reason_string, "hi");
	CHECK_BYTES(p.props.server_reference, "x");
	free(b);
}

TEST(v5_auth)
{
	mg_packet p;
	uint8_t *b = vec("F0 00", 5, &p, true);
	CHECK_EQ_INT(p.type, MG_AUTH);
	CHECK_EQ_INT(p.reason_code, 0);
	free(b);
	b = vec("F0 12 18 10 15 00 04 53 43 52 4D 16 00 02 01 02 1F 00 01 78", 5, &p, true);
	CHECK_EQ_INT(p.reason_code, MG_RC_CONTINUE_AUTHENTICATION);
	CHECK_BYTES(p.props.auth_method, "SCRM");
	CHECK_EQ_INT(p.props.auth_data.len, 2);
	CHECK_BYTES(p.props.reason_string, "x");
	free(b);
}

TEST(stream_of_packets)
{
	/* three packets back to back: each decode returns one packet's size */
	size_t n;
	uint8_t *b = hex("30 0A 00 03 61 2F 62 68 65 6C 6C 6F 40 02 00 0A C0 00", &n);
	mg_packet p;
	size_t off = 0;
	int sizes[3], k = 0;
	while (off < n && k < 3) {
		int r = mg_decode(b + off, n - off, 4, 0, &p);
		REQUIRE(r > 0);
		sizes[k++] = r;
		off += (size_t)r;
	}
	CHECK_EQ_INT(k, 3);
	CHECK(sizes[0] == 12 && sizes[1] == 4 && sizes[2] == 2);
	free(b);
}

/* ---- bytes sent by third-party implementations, captured on loopback: Debian's mosquitto_pub /
 * mosquitto_sub 2.0 and python3-paho-mqtt 1.6 against a fake broker that only answered CONNACK
 * and SUBACK; and what mosquitto 2.0.11 (the broker) answered to a session of CONNECT,
 * SUBSCRIBE, PUBLISH QoS 1 and 2, PINGREQ, PUBREL, UNSUBSCRIBE, DISCONNECT. ---- */

static const struct { const char *who, *hex; } captures[] = {
	{"paho31",
	   "10 25 00 06 4D 51 49 73 64 70 03 EE 00 1E 00 07 70 61 68 6F 2D 33 31 00 03 77 2F 74 "
	   "00 03 62 79 65 00 01 75 00 01 70 31 07 00 03 61 2F 62 68 69 E0 00"},
	{"paho311",
	   "10 24 00 04 4D 51 54 54 04 EE 00 1E 00 08 70 61 68 6F 2D 33 31 31 00 03 77 2F 74 00 "
	   "03 62 79 65 00 01 75 00 01 70 31 07 00 03 61 2F 62 68 69 E0 00"},
	{"paho5",
	   "10 45 00 04 4D 51 54 54 05 EE 00 1E 0F 11 00 00 00 1E 21 00 0A 26 00 01 61 00 01 62 "
	   "00 06 70 61 68 6F 2D 35 12 03 00 0A 74 65 78 74 2F 70 6C 61 69 6E 18 00 00 00 05 00 "
	   "03 77 2F 74 00 03 62 79 65 00 01 75 00 01 70 30 28 00 03 61 2F 62 20 01 01 02 00 00 "
	   "00 3C 08 00 03 72 2F 74 09 00 02 01 02 26 00 01 78 00 01 79 26 00 01 78 00 01 7A 68 "
	   "69 E0 00"},
	{"pub31",
	   "10 28 00 06 4D 51 49 73 64 70 03 CE 00 3C 00 06 63 69 64 2D 33 31 00 03 77 2F 74 00 "
	   "03 62 79 65 00 04 75 73 65 72 00 02 70 77 30 0A 00 03 61 2F 62 68 65 6C 6C 6F E0 00"},
	{"pub311",
	   "10 27 00 04 4D 51 54 54 04 CE 00 3C 00 07 63 69 64 2D 33 31 31 00 03 77 2F 74 00 03 "
	   "62 79 65 00 04 75 73 65 72 00 02 70 77 30 0A 00 03 61 2F 62 68 65 6C 6C 6F E0 00"},
	{"pub5",
	   "10 2F 00 04 4D 51 54 54 05 CE 00 3C 08 11 00 00 00 3C 21 00 14 00 05 63 69 64 2D 35 "
	   "00 00 03 77 2F 74 00 03 62 79 65 00 04 75 73 65 72 00 02 70 77 30 12 00 03 61 2F 62 "
	   "07 26 00 01 6B 00 01 76 68 65 6C 6C 6F E0 00"},
	{"sub31",
	   "10 25 00 06 4D 51 49 73 64 70 03 02 00 3C 00 17 6D 6F 73 71 2D 4A 4E 72 6D 79 4C 64 "
	   "6F 34 6A 71 4A 55 6D 72 4F 79 4C 82 0E 00 01 00 03 61 2F 2B 02 00 03 78 2F 23 02"},
	{"sub311",
	   "10 0C 00 04 4D 51 54 54 04 02 00 3C 00 00 82 0E 00 01 00 03 61 2F 2B 02 00 03 78 2F "
	   "23 02"},
	{"sub5",
	   "10 10 00 04 4D 51 54 54 05 02 00 3C 03 21 00 14 00 00 82 1F 00 01 07 26 00 01 6B 00 "
	   "01 76 00 03 61 2F 2B 02 00 0C 24 73 68 61 72 65 2F 67 2F 78 2F 23 02"},
	{"mosquitto-broker-31",
	   "20 02 00 00 90 03 00 01 02 32 16 00 07 74 2F 65 6E 63 2F 78 00 01 70 61 79 6C 6F 61 "
	   "64 2D 6F 6E 65 40 02 00 05 D0 00 50 02 00 06 34 16 00 07 74 2F 65 6E 63 2F 79 00 02 "
	   "70 61 79 6C 6F 61 64 2D 74 77 6F 70 02 00 06 B0 02 00 02"},
	{"mosquitto-broker-311",
	   "20 02 00 00 90 03 00 01 02 32 16 00 07 74 2F 65 6E 63 2F 78 00 01 70 61 79 6C 6F 61 "
	   "64 2D 6F 6E 65 40 02 00 05 D0 00 50 02 00 06 34 16 00 07 74 2F 65 6E 63 2F 79 00 02 "
	   "70 61 79 6C 6F 61 64 2D 74 77 6F 70 02 00 06 B0 02 00 02"},
	{"mosquitto-broker-5",
	   "20 09 00 00 06 22 00 0A 21 00 14 90 04 00 01 00 02 32 42 00 07 74 2F 65 6E 63 2F 78 "
	   "00 01 2B 0B 07 01 01 03 00 0A 74 65 78 74 2F 70 6C 61 69 6E 08 00 06 74 2F 72 65 73 "
	   "70 09 00 02 01 02 26 00 01 6B 00 01 76 02 00 00 00 64 70 61 79 6C 6F 61 64 2D 6F 6E "
	   "65 40 02 00 05 D0 00 50 02 00 06 34 19 00 07 74 2F 65 6E 63 2F 78 00 02 02 0B 07 70 "
	   "61 79 6C 6F 61 64 2D 74 77 6F 70 02 00 06 B0 04 00 02 00 00"},
};

TEST(third_party_streams)
{
	for (size_t i = 0; i < sizeof captures / sizeof captures[0]; i++) {
		size_t n, off = 0;
		uint8_t *b = hex(captures[i].hex, &n);
		const char *w = captures[i].who;
		size_t wl = strlen(w);
		/* the name ends with the version: "...31", "...311" or "...5" */
		int want = w[wl - 1] == '5' ? 5 : strcmp(w + wl - 3, "311") == 0 ? 4 : 3;
		/* a client stream starts with CONNECT, which sets the level; a broker's does not */
		uint8_t level = strncmp(w, "mosquitto-broker", 16) == 0 ? (uint8_t)want : 0;
		int count = 0;
		while (off < n) {
			mg_packet p;
			/* each packet alone, exactly sized, and every prefix of it */
			uint8_t tf;
			int sz = mg_frame(b + off, n - off, level, 0, &tf);
			REQUIRE(sz > 0 && off + (size_t)sz <= n);
			uint8_t *one = malloc((size_t)sz);
			memcpy(one, b + off, (size_t)sz);
			CHECK_EQ_INT(prefixes_need_more(one, (size_t)sz, level), 0);
			int r = mg_decode(one, (size_t)sz, level, 0, &p);
			if (r != sz) {
				t_fail(__FILE__, __LINE__, "%s packet %d: %d (%s)", captures[i].who, count, r,
				       r < 0 ? mg_err_str(r) : "size");
				free(one);
				break;
			}
			if (p.type == MG_CONNECT)
				level = p.u.connect.level;
			free(one);
			off += (size_t)r;
			count++;
		}
		CHECK(count >= 2);
		CHECK_EQ_INT(level, want);
		free(b);
	}
}
