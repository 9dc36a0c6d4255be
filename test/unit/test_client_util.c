/*
 * test/unit/test_client_util.c - the public checks and lookups of <midge/midge.h> that the
 * command-line tools use instead of proto/: UTF-8, topic names and filters, property names,
 * types, and which packet a client may put a property in. Expected answers are the spec's
 * (MQTT 5.0 sections 1.5.4, 4.7, 2.2.2.2, 3.3.4) and mosquitto_pub's -D spellings, written
 * out here, not read from proto's table.
 */
#include <midge/midge.h>

#include "t.h"

TEST(validate_utf8)
{
	CHECK_EQ_INT(midge_validate_utf8("", 0), MIDGE_OK);
	CHECK_EQ_INT(midge_validate_utf8(NULL, 0), MIDGE_OK);
	CHECK_EQ_INT(midge_validate_utf8(NULL, 1), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_validate_utf8("room/temp", 9), MIDGE_OK);
	CHECK_EQ_INT(midge_validate_utf8("gr\xc3\xbc\xc3\x9f", 6), MIDGE_OK);      /* "grüß" */
	CHECK_EQ_INT(midge_validate_utf8("\xf0\x9f\x90\x9d", 4), MIDGE_OK);        /* U+1F41D */
	CHECK_EQ_INT(midge_validate_utf8("\x01\x7f", 2), MIDGE_OK); /* controls: allowed */
	CHECK_EQ_INT(midge_validate_utf8("a\0b", 3), MIDGE_ERR_UTF8);            /* U+0000 */
	CHECK_EQ_INT(midge_validate_utf8("\xc0\xaf", 2), MIDGE_ERR_UTF8);        /* overlong '/' */
	CHECK_EQ_INT(midge_validate_utf8("\xed\xa0\x80", 3), MIDGE_ERR_UTF8);    /* U+D800 */
	CHECK_EQ_INT(midge_validate_utf8("\xf4\x90\x80\x80", 4), MIDGE_ERR_UTF8); /* > U+10FFFF */
	CHECK_EQ_INT(midge_validate_utf8("\xc3", 1), MIDGE_ERR_UTF8);            /* cut short */
	CHECK_EQ_INT(midge_validate_utf8("\xff", 1), MIDGE_ERR_UTF8);
	/* only len bytes are read: the bad byte after them does not count */
	CHECK_EQ_INT(midge_validate_utf8("ok\xff", 2), MIDGE_OK);
}

TEST(pub_topic_check)
{
	CHECK_EQ_INT(midge_pub_topic_check("room/temp"), MIDGE_OK);
	CHECK_EQ_INT(midge_pub_topic_check("/"), MIDGE_OK);
	CHECK_EQ_INT(midge_pub_topic_check("$SYS/x"), MIDGE_OK);
	CHECK_EQ_INT(midge_pub_topic_check(""), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_pub_topic_check("a/+"), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_pub_topic_check("a/#"), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_pub_topic_check("a+b"), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_pub_topic_check("a/\xc0\xaf"), MIDGE_ERR_UTF8);
	CHECK_EQ_INT(midge_pub_topic_check(NULL), MIDGE_ERR_INVAL);
	static char big[65537];
	memset(big, 'a', 65535);
	CHECK_EQ_INT(midge_pub_topic_check(big), MIDGE_OK);
	big[65535] = 'a';
	CHECK_EQ_INT(midge_pub_topic_check(big), MIDGE_ERR_TOPIC);
}

TEST(sub_topic_check)
{
	const char *good[] = {"a", "#", "+", "a/+/c", "a/#", "+/+", "/", "$SYS/#", "$share/g/a/#",
	                      "$share/g/#"};
	const char *bad[] = {"", "a#", "a/#/b", "a+", "+a/b", "a/b+", "$share/", "$share//a",
	                     "$share/g", "$share/g/", "$share/g+/a", "$share/#/a"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (midge_sub_topic_check(good[i]) != MIDGE_OK)
			t_fail(__FILE__, __LINE__, "\"%s\" refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (midge_sub_topic_check(bad[i]) != MIDGE_ERR_TOPIC)
			t_fail(__FILE__, __LINE__, "\"%s\" not MIDGE_ERR_TOPIC", bad[i]);
	CHECK_EQ_INT(midge_sub_topic_check("a/\xed\xa0\x80"), MIDGE_ERR_UTF8);
	CHECK_EQ_INT(midge_sub_topic_check(NULL), MIDGE_ERR_INVAL);
}

/* What midge_sub_topic_check accepts, midge_subscribe accepts: one rule, not two. Without a
 * connection subscribe answers MIDGE_ERR_NO_CONN after its argument checks. */
TEST(sub_topic_check_is_subscribes_rule)
{
	midge_client *c = midge_client_new("u", true, NULL, MIDGE_PROTOCOL_V5, MIDGE_TRANSPORT_TCP);
	REQUIRE(c);
	const char *f[] = {"a/+", "$share/g/a", "$share/g", "a#", "a/\xed\xa0\x80"};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		int want = midge_sub_topic_check(f[i]);
		int got = midge_subscribe(c, f[i], 0);
		if ((want == MIDGE_OK ? MIDGE_ERR_NO_CONN : want) != got)
			t_fail(__FILE__, __LINE__, "\"%s\": check %d, subscribe %d", f[i], want, got);
	}
	midge_client_free(c);
}

TEST(property_types)
{
	CHECK_EQ_INT(midge_property_type(MIDGE_PROP_PAYLOAD_FORMAT), MIDGE_PROP_TYPE_BYTE);
	CHECK_EQ_INT(midge_property_type(MIDGE_PROP_RECEIVE_MAXIMUM), MIDGE_PROP_TYPE_INT16);
	CHECK_EQ_INT(midge_property_type(MIDGE_PROP_SESSION_EXPIRY), MIDGE_PROP_TYPE_INT32);
	CHECK_EQ_INT(midge_property_type(MIDGE_PROP_SUBSCRIPTION_ID), MIDGE_PROP_TYPE_VARINT);
	CHECK_EQ_INT(midge_property_type(MIDGE_PROP_CORRELATION_DATA), MIDGE_PROP_TYPE_BINARY);
	CHECK_EQ_INT(midge_property_type(MIDGE_PROP_CONTENT_TYPE), MIDGE_PROP_TYPE_STRING);
	CHECK_EQ_INT(midge_property_type(MIDGE_PROP_USER_PROPERTY), MIDGE_PROP_TYPE_STRING_PAIR);
	/* identifiers the spec leaves out */
	int none[] = {0, 4, 0x0A, 0x14, 0x1B, 0x20, 0x2B, 64, -1, 1000};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		CHECK_EQ_INT(midge_property_type(none[i]), MIDGE_ERR_NOT_FOUND);
}

TEST(property_names_as_mosquitto_spells_them)
{
	static const struct {
		const char *name;
		int id, type;
	} want[] = {
		{"payload-format-indicator", 0x01, MIDGE_PROP_TYPE_BYTE},
		{"message-expiry-interval", 0x02, MIDGE_PROP_TYPE_INT32},
		{"content-type", 0x03, MIDGE_PROP_TYPE_STRING},
		{"response-topic", 0x08, MIDGE_PROP_TYPE_STRING},
		{"correlation-data", 0x09, MIDGE_PROP_TYPE_BINARY},
		{"subscription-identifier", 0x0B, MIDGE_PROP_TYPE_VARINT},
		{"session-expiry-interval", 0x11, MIDGE_PROP_TYPE_INT32},
		{"assigned-client-identifier", 0x12, MIDGE_PROP_TYPE_STRING},
		{"server-keep-alive", 0x13, MIDGE_PROP_TYPE_INT16},
		{"authentication-method", 0x15, MIDGE_PROP_TYPE_STRING},
		{"authentication-data", 0x16, MIDGE_PROP_TYPE_BINARY},
		{"request-problem-information", 0x17, MIDGE_PROP_TYPE_BYTE},
		{"will-delay-interval", 0x18, MIDGE_PROP_TYPE_INT32},
		{"request-response-information", 0x19, MIDGE_PROP_TYPE_BYTE},
		{"response-information", 0x1A, MIDGE_PROP_TYPE_STRING},
		{"server-reference", 0x1C, MIDGE_PROP_TYPE_STRING},
		{"reason-string", 0x1F, MIDGE_PROP_TYPE_STRING},
		{"receive-maximum", 0x21, MIDGE_PROP_TYPE_INT16},
		{"topic-alias-maximum", 0x22, MIDGE_PROP_TYPE_INT16},
		{"topic-alias", 0x23, MIDGE_PROP_TYPE_INT16},
		{"maximum-qos", 0x24, MIDGE_PROP_TYPE_BYTE},
		{"retain-available", 0x25, MIDGE_PROP_TYPE_BYTE},
		{"user-property", 0x26, MIDGE_PROP_TYPE_STRING_PAIR},
		{"maximum-packet-size", 0x27, MIDGE_PROP_TYPE_INT32},
		{"wildcard-subscription-available", 0x28, MIDGE_PROP_TYPE_BYTE},
		{"subscription-identifier-available", 0x29, MIDGE_PROP_TYPE_BYTE},
		{"shared-subscription-available", 0x2A, MIDGE_PROP_TYPE_BYTE},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int id = -1, type = -1;
		int rc = midge_string_to_property_info(want[i].name, &id, &type);
		if (rc != MIDGE_OK || id != want[i].id || type != want[i].type)
			t_fail(__FILE__, __LINE__, "%s: rc %d id 0x%02x type %d", want[i].name, rc, id,
			       type);
	}
	int id = 0;
	CHECK_EQ_INT(midge_string_to_property_info("Topic-Alias", &id, NULL), MIDGE_OK);
	CHECK_EQ_INT(id, 0x23);
	CHECK_EQ_INT(midge_string_to_property_info("MAXIMUM-QOS", NULL, NULL), MIDGE_OK);
	const char *bad[] = {"", "topic", "topic-alias-", "topic alias", "topic_alias",
	                     "Topic Alias", "topic-alias-maximumx", "unknown"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (midge_string_to_property_info(bad[i], NULL, NULL) != MIDGE_ERR_NOT_FOUND)
			t_fail(__FILE__, __LINE__, "\"%s\" found", bad[i]);
	CHECK_EQ_INT(midge_string_to_property_info(NULL, NULL, NULL), MIDGE_ERR_INVAL);
}

/* 2.2.2.2's table, read from the client's side. */
TEST(property_check_command)
{
	static const struct {
		int cmd, id, rc;
	} want[] = {
		{MIDGE_CMD_CONNECT, MIDGE_PROP_SESSION_EXPIRY, MIDGE_OK},
		{MIDGE_CMD_CONNECT, MIDGE_PROP_RECEIVE_MAXIMUM, MIDGE_OK},
		{MIDGE_CMD_CONNECT, MIDGE_PROP_AUTH_METHOD, MIDGE_OK},
		{MIDGE_CMD_CONNECT, MIDGE_PROP_USER_PROPERTY, MIDGE_OK},
		{MIDGE_CMD_CONNECT, MIDGE_PROP_WILL_DELAY, MIDGE_ERR_PROPERTY},
		{MIDGE_CMD_CONNECT, MIDGE_PROP_ASSIGNED_CLIENT_ID, MIDGE_ERR_PROPERTY}, /* CONNACK */
		{MIDGE_CMD_CONNECT, MIDGE_PROP_MAXIMUM_QOS, MIDGE_ERR_PROPERTY},        /* CONNACK */
		{MIDGE_CMD_WILL, MIDGE_PROP_WILL_DELAY, MIDGE_OK},
		{MIDGE_CMD_WILL, MIDGE_PROP_CONTENT_TYPE, MIDGE_OK},
		{MIDGE_CMD_WILL, MIDGE_PROP_TOPIC_ALIAS, MIDGE_ERR_PROPERTY},
		{MIDGE_CMD_WILL, MIDGE_PROP_SESSION_EXPIRY, MIDGE_ERR_PROPERTY},
		{MIDGE_CMD_PUBLISH, MIDGE_PROP_MESSAGE_EXPIRY, MIDGE_OK},
		{MIDGE_CMD_PUBLISH, MIDGE_PROP_TOPIC_ALIAS, MIDGE_OK},
		{MIDGE_CMD_PUBLISH, MIDGE_PROP_CORRELATION_DATA, MIDGE_OK},
		{MIDGE_CMD_PUBLISH, MIDGE_PROP_SUBSCRIPTION_ID, MIDGE_ERR_PROPERTY}, /* [MQTT-3.3.4-6] */
		{MIDGE_CMD_PUBLISH, MIDGE_PROP_WILL_DELAY, MIDGE_ERR_PROPERTY},
		{MIDGE_CMD_PUBLISH, MIDGE_PROP_SESSION_EXPIRY, MIDGE_ERR_PROPERTY},
		{MIDGE_CMD_PUBACK, MIDGE_PROP_REASON_STRING, MIDGE_OK},
		{MIDGE_CMD_PUBREL, MIDGE_PROP_USER_PROPERTY, MIDGE_OK},
		{MIDGE_CMD_PUBCOMP, MIDGE_PROP_CONTENT_TYPE, MIDGE_ERR_PROPERTY},
		{MIDGE_CMD_SUBSCRIBE, MIDGE_PROP_SUBSCRIPTION_ID, MIDGE_OK},
		{MIDGE_CMD_SUBSCRIBE, MIDGE_PROP_USER_PROPERTY, MIDGE_OK},
		{MIDGE_CMD_SUBSCRIBE, MIDGE_PROP_REASON_STRING, MIDGE_ERR_PROPERTY},
		{MIDGE_CMD_UNSUBSCRIBE, MIDGE_PROP_USER_PROPERTY, MIDGE_OK},
		{MIDGE_CMD_UNSUBSCRIBE, MIDGE_PROP_SUBSCRIPTION_ID, MIDGE_ERR_PROPERTY},
		{MIDGE_CMD_DISCONNECT, MIDGE_PROP_SESSION_EXPIRY, MIDGE_OK},
		{MIDGE_CMD_DISCONNECT, MIDGE_PROP_REASON_STRING, MIDGE_OK},
		{MIDGE_CMD_DISCONNECT, MIDGE_PROP_SERVER_REFERENCE, MIDGE_OK},
		{MIDGE_CMD_DISCONNECT, MIDGE_PROP_TOPIC_ALIAS, MIDGE_ERR_PROPERTY},
		{MIDGE_CMD_AUTH, MIDGE_PROP_AUTH_DATA, MIDGE_OK},
		{MIDGE_CMD_AUTH, MIDGE_PROP_SESSION_EXPIRY, MIDGE_ERR_PROPERTY},
		{MIDGE_CMD_CONNECT, 0x04, MIDGE_ERR_NOT_FOUND},
		{MIDGE_CMD_PUBLISH, 0, MIDGE_ERR_NOT_FOUND},
		{2 /* CONNACK: the server's */, MIDGE_PROP_ASSIGNED_CLIENT_ID, MIDGE_ERR_INVAL},
		{9 /* SUBACK */, MIDGE_PROP_REASON_STRING, MIDGE_ERR_INVAL},
		{0, MIDGE_PROP_USER_PROPERTY, MIDGE_ERR_INVAL},
		{17, MIDGE_PROP_USER_PROPERTY, MIDGE_ERR_INVAL},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int rc = midge_property_check_command(want[i].cmd, want[i].id);
		if (rc != want[i].rc)
			t_fail(__FILE__, __LINE__, "cmd %d id 0x%02x: %d, expected %d", want[i].cmd,
			       want[i].id, rc, want[i].rc);
	}
}

/* The library applies the same rule to what it is given: a Subscription Identifier is refused
 * in midge_publish and accepted in midge_subscribe_ex (which then fails only for want of a
 * connection). */
TEST(property_rule_is_the_librarys)
{
	midge_client *c = midge_client_new("u", true, NULL, MIDGE_PROTOCOL_V5, MIDGE_TRANSPORT_TCP);
	midge_properties *p = midge_properties_new();
	REQUIRE(c && p);
	CHECK_EQ_INT(midge_properties_set_subscription_id(p, 3), MIDGE_OK);
	CHECK_EQ_INT(midge_publish(c, "a", "x", 1, 0, false, p), MIDGE_ERR_PROPERTY);
	const char *t = "a";
	int o = 0;
	CHECK_EQ_INT(midge_subscribe_ex(c, &t, &o, 1, p), MIDGE_ERR_NO_CONN);
	midge_properties_clear(p);
	CHECK_EQ_INT(midge_properties_set_will_delay(p, 5), MIDGE_OK);
	CHECK_EQ_INT(midge_will_set(c, "w", "x", 1, 0, false, p), MIDGE_OK);
	CHECK_EQ_INT(midge_publish(c, "a", "x", 1, 0, false, p), MIDGE_ERR_PROPERTY);
	midge_properties_free(p);
	midge_client_free(c);
}
