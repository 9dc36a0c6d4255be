/* test/unit/test_client_props.c - the midge_properties builder and getters, and their way to
 * and from the wire through proto/ (bytes checked against the MQTT 5.0 layout). */
#include <stdlib.h>

#include "client/client.h"
#include "t.h"

TEST(set_get_numbers)
{
	midge_properties *p = midge_properties_new();
	REQUIRE(p);
	uint32_t v = 0;
	CHECK_EQ_INT(midge_properties_get_int(p, MIDGE_PROP_MESSAGE_EXPIRY, &v), MIDGE_ERR_NOT_FOUND);
	CHECK_EQ_INT(midge_properties_set_message_expiry(p, 60), MIDGE_OK);
	CHECK_EQ_INT(midge_properties_set_message_expiry(p, 61), MIDGE_OK); /* replaces */
	CHECK_EQ_INT(midge_properties_get_int(p, MIDGE_PROP_MESSAGE_EXPIRY, &v), MIDGE_OK);
	CHECK_EQ_INT(v, 61);
	CHECK_EQ_INT(midge_properties_count(p), 1);
	CHECK_EQ_INT(midge_properties_set_session_expiry(p, 0xFFFFFFFFu), MIDGE_OK);
	CHECK_EQ_INT(midge_properties_get_int(p, MIDGE_PROP_SESSION_EXPIRY, &v), MIDGE_OK);
	CHECK(v == 0xFFFFFFFFu);
	/* ranges the spec fixes */
	CHECK_EQ_INT(midge_properties_set_payload_format(p, 2), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_properties_set_receive_maximum(p, 0), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_properties_set_topic_alias(p, 0), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_properties_set_maximum_packet_size(p, 0), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_properties_set_subscription_id(p, 0), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_properties_set_subscription_id(p, 268435456), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_properties_set_int(p, MIDGE_PROP_TOPIC_ALIAS_MAXIMUM, 65536), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_properties_set_int(p, MIDGE_PROP_CONTENT_TYPE, 1), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_properties_set_int(p, 0x7F, 1), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_properties_count(p), 2);
	CHECK_EQ_INT(midge_properties_remove(p, MIDGE_PROP_MESSAGE_EXPIRY), MIDGE_OK);
	CHECK_EQ_INT(midge_properties_remove(p, MIDGE_PROP_MESSAGE_EXPIRY), MIDGE_ERR_NOT_FOUND);
	CHECK(!midge_properties_has(p, MIDGE_PROP_MESSAGE_EXPIRY));
	CHECK(midge_properties_has(p, MIDGE_PROP_SESSION_EXPIRY));
	midge_properties_free(p);
}

TEST(strings_binary_users)
{
	midge_properties *p = midge_properties_new();
	REQUIRE(p);
	CHECK_EQ_INT(midge_properties_set_content_type(p, "text/plain"), MIDGE_OK);
	CHECK_STR(midge_properties_get_string(p, MIDGE_PROP_CONTENT_TYPE), "text/plain");
	CHECK_EQ_INT(midge_properties_set_content_type(p, "bad\xff"), MIDGE_ERR_UTF8);
	CHECK_EQ_INT(midge_properties_set_content_type(p, NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_properties_set_response_topic(p, "a/+"), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_properties_set_response_topic(p, "reply/here"), MIDGE_OK);
	CHECK_EQ_INT(midge_properties_set_correlation_data(p, "\0\1\2", 3), MIDGE_OK);
	const void *d;
	size_t n;
	CHECK_EQ_INT(midge_properties_get_binary(p, MIDGE_PROP_CORRELATION_DATA, &d, &n), MIDGE_OK);
	CHECK_EQ_INT(n, 3);
	CHECK_MEM(d, "\0\1\2", 3);
	CHECK(midge_properties_get_string(p, MIDGE_PROP_CORRELATION_DATA) == NULL); /* binary */
	CHECK_EQ_INT(midge_properties_add_user(p, "k", "v1"), MIDGE_OK);
	CHECK_EQ_INT(midge_properties_add_user(p, "k", "v2"), MIDGE_OK); /* keys repeat */
	CHECK_EQ_INT(midge_properties_add_user(p, "z", ""), MIDGE_OK);
	CHECK_EQ_INT(midge_properties_add_user(p, "bad\xc0", "x"), MIDGE_ERR_UTF8);
	CHECK_EQ_INT(midge_properties_user_count(p), 3);
	const char *k, *v;
	CHECK_EQ_INT(midge_properties_user_at(p, 1, &k, &v), MIDGE_OK);
	CHECK_STR(k, "k");
	CHECK_STR(v, "v2");
	CHECK_EQ_INT(midge_properties_user_at(p, 3, &k, &v), MIDGE_ERR_NOT_FOUND);
	CHECK_STR(midge_properties_get_user(p, "k"), "v1");
	CHECK(midge_properties_get_user(p, "nope") == NULL);

	midge_properties *q = midge_properties_dup(p);
	REQUIRE(q);
	midge_properties_free(p);
	CHECK_STR(midge_properties_get_string(q, MIDGE_PROP_RESPONSE_TOPIC), "reply/here");
	CHECK_EQ_INT(midge_properties_user_count(q), 3);
	midge_properties_free(q);
}

TEST(null_is_empty)
{
	uint32_t v;
	CHECK_EQ_INT(midge_properties_count(NULL), 0);
	CHECK(!midge_properties_has(NULL, 1));
	CHECK_EQ_INT(midge_properties_get_int(NULL, MIDGE_PROP_MESSAGE_EXPIRY, &v), MIDGE_ERR_NOT_FOUND);
	CHECK(midge_properties_get_string(NULL, MIDGE_PROP_CONTENT_TYPE) == NULL);
	CHECK_EQ_INT(midge_properties_user_count(NULL), 0);
	CHECK_EQ_INT(midge_properties_get_subscription_ids(NULL, NULL, 0), 0);
	CHECK_EQ_INT(midge_properties_set_message_expiry(NULL, 1), MIDGE_ERR_INVAL);
	CHECK(midge_properties_dup(NULL) == NULL);
	midge_properties_free(NULL);
	CHECK_STR(midge_property_name(MIDGE_PROP_MESSAGE_EXPIRY), "Message Expiry Interval");
	CHECK_STR(midge_property_name(0x7F), "Unknown");
}

/* PUBLISH "t", QoS 0, content type "a", user property k=v, payload "x" (MQTT 5.0 3.3). */
static const uint8_t publish_bytes[] = {
	0x30, 0x10,             /* PUBLISH, remaining length 16 */
	0x00, 0x01, 't',        /* topic */
	0x0B,                   /* property length 11 */
	0x03, 0x00, 0x01, 'a',  /* content type */
	0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', /* user property */
	'x',                    /* payload */
};

TEST(to_wire_bytes)
{
	midge_properties *p = midge_properties_new();
	REQUIRE(p);
	midge_properties_add_user(p, "k", "v");
	midge_properties_set_content_type(p, "a");
	mgc_wprops w;
	REQUIRE(mgc_wprops_make(&w, p, MG_PUBLISH) == MIDGE_OK);
	mg_packet pkt;
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MG_PUBLISH;
	pkt.u.publish.topic = (mg_bytes){ (const uint8_t *)"t", 1 };
	pkt.u.publish.payload = (mg_bytes){ (const uint8_t *)"x", 1 };
	pkt.props = w.p;
	uint8_t buf[64];
	size_t n = mg_encode(buf, sizeof(buf), MG_V5, &pkt);
	CHECK_EQ_INT(n, sizeof(publish_bytes));
	CHECK_MEM(buf, publish_bytes, sizeof(publish_bytes));
	mgc_wprops_free(&w);
	/* not allowed in PUBLISH */
	midge_properties_set_receive_maximum(p, 10);
	CHECK_EQ_INT(mgc_wprops_make(&w, p, MG_PUBLISH), MIDGE_ERR_PROPERTY);
	midge_properties_free(p);
}

TEST(from_wire)
{
	mg_packet pkt;
	int n = mg_decode(publish_bytes, sizeof(publish_bytes), MG_V5, 0, &pkt);
	REQUIRE(n == (int)sizeof(publish_bytes));
	midge_properties *p = mgc_props_from_wire(&pkt.props);
	REQUIRE(p);
	CHECK_EQ_INT(midge_properties_count(p), 2);
	CHECK_STR(midge_properties_get_string(p, MIDGE_PROP_CONTENT_TYPE), "a");
	CHECK_STR(midge_properties_get_user(p, "k"), "v");
	midge_properties_free(p);
}

TEST(subscription_ids_from_wire)
{
	/* a PUBLISH matching two subscriptions carries both identifiers (3.3.2.3.8) */
	static const uint8_t b[] = { 0x30, 0x09, 0x00, 0x01, 't', 0x05, 0x0B, 0x05, 0x0B, 0x81, 0x01 };
	mg_packet pkt;
	REQUIRE(mg_decode(b, sizeof(b), MG_V5, 0, &pkt) == (int)sizeof(b));
	midge_properties *p = mgc_props_from_wire(&pkt.props);
	REQUIRE(p);
	uint32_t ids[4];
	CHECK_EQ_INT(midge_properties_get_subscription_ids(p, ids, 4), 2);
	CHECK_EQ_INT(ids[0], 5);
	CHECK_EQ_INT(ids[1], 129);
	uint32_t first;
	CHECK_EQ_INT(midge_properties_get_int(p, MIDGE_PROP_SUBSCRIPTION_ID, &first), MIDGE_OK);
	CHECK_EQ_INT(first, 5);
	midge_properties_free(p);
}
