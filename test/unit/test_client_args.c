/* test/unit/test_client_args.c - every libmidge call refuses bad input with an error code
 * instead of crashing or sending a bad packet. No network: nothing here connects. */
#include <stdlib.h>

#include "midge/midge.h"
#include "t.h"

static midge_client *new311(void)
{
	return midge_client_new("unit", true, NULL, MIDGE_PROTOCOL_V311, MIDGE_TRANSPORT_TCP);
}

TEST(client_new_checks)
{
	CHECK(midge_client_new("x", true, NULL, 6, MIDGE_TRANSPORT_TCP) == NULL);
	CHECK(midge_client_new("x", true, NULL, 2, MIDGE_TRANSPORT_TCP) == NULL);
	CHECK(midge_client_new("x", true, NULL, MIDGE_PROTOCOL_V311, 7) == NULL);
	/* 3.1.1: no id needs a clean session [MQTT-3.1.3-7] */
	CHECK(midge_client_new(NULL, false, NULL, MIDGE_PROTOCOL_V311, MIDGE_TRANSPORT_TCP) == NULL);
	CHECK(midge_client_new("bad\xff", true, NULL, MIDGE_PROTOCOL_V311, MIDGE_TRANSPORT_TCP) == NULL);
	midge_client *c = midge_client_new(NULL, true, NULL, MIDGE_PROTOCOL_V311, MIDGE_TRANSPORT_TCP);
	REQUIRE(c);
	CHECK(midge_client_id(c) == NULL);
	midge_client_free(c);
	/* 3.1 needs an id: one is made up, at most 23 characters */
	c = midge_client_new(NULL, true, NULL, MIDGE_PROTOCOL_V31, MIDGE_TRANSPORT_TCP);
	REQUIRE(c);
	REQUIRE(midge_client_id(c) != NULL);
	CHECK(strlen(midge_client_id(c)) <= 23 && strlen(midge_client_id(c)) > 0);
	midge_client_free(c);
	/* 5.0 allows no id with clean start false (the broker assigns one) */
	c = midge_client_new(NULL, false, NULL, MIDGE_PROTOCOL_V5, MIDGE_TRANSPORT_TCP);
	CHECK(c != NULL);
	midge_client_free(c);
	midge_client_free(NULL);
}

TEST(null_client)
{
	CHECK_EQ_INT(midge_publish(NULL, "a", "x", 1, 0, false, NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_subscribe(NULL, "a", 0), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_unsubscribe(NULL, "a"), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_connect(NULL, "localhost", 1883, 60), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_disconnect(NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_loop(NULL, 0), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_loop_forever(NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_loop_start(NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_loop_stop(NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_socket(NULL), -1);
	CHECK(!midge_want_write(NULL));
	CHECK(!midge_is_connected(NULL));
	CHECK_EQ_INT(midge_username_pw_set(NULL, "u", "p"), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_will_set(NULL, "t", "p", 1, 0, false, NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_wait_for_publish(NULL, 1, 0), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_reconnect(NULL), MIDGE_ERR_INVAL);
}

TEST(publish_topic_checks)
{
	midge_client *c = new311();
	REQUIRE(c);
	CHECK_EQ_INT(midge_publish(c, NULL, "x", 1, 0, false, NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_publish(c, "a/+/b", "x", 1, 0, false, NULL), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_publish(c, "a/#", "x", 1, 0, false, NULL), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_publish(c, "#", "x", 1, 0, false, NULL), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_publish(c, "", "x", 1, 0, false, NULL), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_publish(c, "bad\xc0\x80", "x", 1, 0, false, NULL), MIDGE_ERR_UTF8);
	CHECK_EQ_INT(midge_publish(c, "surrogate\xed\xa0\x80", "x", 1, 0, false, NULL), MIDGE_ERR_UTF8);
	CHECK_EQ_INT(midge_publish(c, "a", "x", 1, 3, false, NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_publish(c, "a", "x", 1, -1, false, NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_publish(c, "a", NULL, 5, 0, false, NULL), MIDGE_ERR_INVAL);
	/* a payload that cannot fit in one packet is refused before anything is copied (topic "a"
	 * takes 3 bytes of the 268435455 a remaining length can hold) */
	CHECK_EQ_INT(midge_publish(c, "a", "x", 268435455, 0, false, NULL), MIDGE_ERR_PAYLOAD_SIZE);
	CHECK_EQ_INT(midge_publish(c, "a", "x", 268435455 - 2, 0, false, NULL), MIDGE_ERR_PAYLOAD_SIZE);
	CHECK_EQ_INT(midge_publish(c, "a", "x", SIZE_MAX, 1, false, NULL), MIDGE_ERR_PAYLOAD_SIZE);
	/* a valid one: queued (not connected), with a message id */
	CHECK_EQ_INT(midge_publish(c, "a/b", NULL, 0, 1, true, NULL), 1);
	CHECK_EQ_INT(midge_publish(c, "a/b", "x", 1, 0, false, NULL), 2);
	midge_client_free(c);
}

TEST(properties_need_v5)
{
	midge_client *c = new311();
	REQUIRE(c);
	midge_properties *p = midge_properties_new();
	REQUIRE(p);
	CHECK_EQ_INT(midge_properties_set_content_type(p, "text/plain"), MIDGE_OK);
	CHECK_EQ_INT(midge_publish(c, "a", "x", 1, 0, false, p), MIDGE_ERR_PROPERTY);
	CHECK_EQ_INT(midge_will_set(c, "w", "x", 1, 0, false, p), MIDGE_ERR_NOT_SUPPORTED);
	CHECK_EQ_INT(midge_connect_ex(c, "127.0.0.1", 1883, 60, true, p), MIDGE_ERR_PROPERTY);
	CHECK_EQ_INT(midge_disconnect_ex(c, 4, NULL), MIDGE_ERR_NOT_SUPPORTED);
	/* an empty property list is no property at all */
	midge_properties_clear(p);
	CHECK_EQ_INT(midge_publish(c, "a", "x", 1, 0, false, p), 1);
	midge_properties_free(p);
	midge_client_free(c);
}

TEST(properties_allowed_per_packet)
{
	midge_client *c = midge_client_new("u5", true, NULL, MIDGE_PROTOCOL_V5, MIDGE_TRANSPORT_TCP);
	REQUIRE(c);
	midge_properties *p = midge_properties_new();
	/* Session Expiry belongs to CONNECT / DISCONNECT, not PUBLISH */
	midge_properties_set_session_expiry(p, 10);
	CHECK_EQ_INT(midge_publish(c, "a", "x", 1, 0, false, p), MIDGE_ERR_PROPERTY);
	CHECK_EQ_INT(midge_will_set(c, "w", "x", 1, 0, false, p), MIDGE_ERR_PROPERTY);
	midge_properties_clear(p);
	/* Subscription Identifier goes from broker to client only in PUBLISH */
	midge_properties_set_subscription_id(p, 5);
	CHECK_EQ_INT(midge_publish(c, "a", "x", 1, 0, false, p), MIDGE_ERR_PROPERTY);
	midge_properties_clear(p);
	/* Message Expiry is fine on PUBLISH and on the will */
	midge_properties_set_message_expiry(p, 10);
	CHECK_EQ_INT(midge_publish(c, "a", "x", 1, 0, false, p), 1);
	CHECK_EQ_INT(midge_will_set(c, "w", "x", 1, 0, false, p), MIDGE_OK);
	midge_properties_clear(p);
	/* an empty topic only with a topic alias, and only one the client has bound */
	CHECK_EQ_INT(midge_publish(c, "", "x", 1, 0, false, NULL), MIDGE_ERR_TOPIC);
	midge_properties_set_topic_alias(p, 3);
	CHECK_EQ_INT(midge_publish(c, "", "x", 1, 0, false, p), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_publish(c, "bound/topic", "x", 1, 0, false, p), 2);
	CHECK_EQ_INT(midge_publish(c, "", "x", 1, 0, false, p), 3);
	/* disconnect reason codes must be ones DISCONNECT allows */
	CHECK_EQ_INT(midge_disconnect_ex(c, 0x01, NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_disconnect_ex(c, 300, NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_disconnect_ex(c, 4, NULL), MIDGE_ERR_NO_CONN);
	midge_properties_free(p);
	midge_client_free(c);
}

TEST(subscribe_checks)
{
	midge_client *c = new311();
	REQUIRE(c);
	CHECK_EQ_INT(midge_subscribe(c, "a/#/b", 0), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_subscribe(c, "a/b#", 0), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_subscribe(c, "a+", 0), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_subscribe(c, "", 0), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_subscribe(c, "$share//x", 0), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_subscribe(c, NULL, 0), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_subscribe(c, "a", 3), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_subscribe(c, "bad\xff", 0), MIDGE_ERR_UTF8);
	/* well-formed, but not connected */
	CHECK_EQ_INT(midge_subscribe(c, "a/+/b/#", 2), MIDGE_ERR_NO_CONN);
	CHECK_EQ_INT(midge_unsubscribe(c, "a/#"), MIDGE_ERR_NO_CONN);
	CHECK_EQ_INT(midge_unsubscribe(c, "a/#/x"), MIDGE_ERR_TOPIC);
	const char *topics[] = { "a", "b" };
	int opts[] = { 1, 1 | MIDGE_SUB_NO_LOCAL };
	/* 5.0 options on a 3.1.1 client are accepted (only the QoS is sent): here only "not
	 * connected" stops it (test/client/test_client_api_edges.py checks the bytes) */
	CHECK_EQ_INT(midge_subscribe_ex(c, topics, opts, 2, NULL), MIDGE_ERR_NO_CONN);
	int bad[] = { 1, MIDGE_SUB_RETAIN_HANDLING(3) };
	CHECK_EQ_INT(midge_subscribe_ex(c, topics, bad, 2, NULL), MIDGE_ERR_INVAL);
	int reserved[] = { 1, 0x40 };
	CHECK_EQ_INT(midge_subscribe_ex(c, topics, reserved, 2, NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_subscribe_ex(c, topics, opts, 0, NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_subscribe_ex(c, topics, NULL, 2, NULL), MIDGE_ERR_INVAL);
	midge_client_free(c);
}

TEST(connect_checks)
{
	midge_client *c = new311();
	REQUIRE(c);
	CHECK_EQ_INT(midge_connect(c, NULL, 1883, 60), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_connect(c, "", 1883, 60), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_connect(c, "localhost", 0, 60), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_connect(c, "localhost", 65536, 60), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_connect(c, "localhost", 1883, -1), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_connect(c, "localhost", 1883, 65536), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_connect(c, "no-such-host.invalid", 1883, 60), MIDGE_ERR_LOOKUP);
	CHECK_EQ_INT(midge_reconnect(c) == MIDGE_OK, 0);
	/* never connected */
	CHECK_EQ_INT(midge_loop(c, 0), MIDGE_ERR_NO_CONN);
	CHECK_EQ_INT(midge_loop_forever(c), MIDGE_ERR_NO_CONN);
	CHECK_EQ_INT(midge_disconnect(c), MIDGE_ERR_NO_CONN);
	CHECK_EQ_INT(midge_socket(c), -1);
	CHECK_EQ_INT(midge_loop_stop(c), MIDGE_ERR_INVAL);
	midge_client_free(c);

	/* WebSockets is a transport now (32aa8ba); a transport libmidge does not know is refused */
	CHECK(midge_client_new("x", true, NULL, MIDGE_PROTOCOL_V311, 2) == NULL);
}

TEST(settings_checks)
{
	midge_client *c = new311();
	REQUIRE(c);
	CHECK_EQ_INT(midge_will_set(c, "a/+", "x", 1, 0, false, NULL), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(midge_will_set(c, "a", "x", 1, 3, false, NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_will_set(c, NULL, "x", 1, 0, false, NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_will_set(c, "a", "x", 1, 1, true, NULL), MIDGE_OK);
	CHECK_EQ_INT(midge_will_clear(c), MIDGE_OK);
	CHECK_EQ_INT(midge_username_pw_set(c, NULL, "pw"), MIDGE_ERR_INVAL); /* 3.1.1 */
	CHECK_EQ_INT(midge_username_pw_set(c, "bad\xff", NULL), MIDGE_ERR_UTF8);
	CHECK_EQ_INT(midge_username_pw_set(c, "user", "pw"), MIDGE_OK);
	CHECK_EQ_INT(midge_username_pw_set(c, NULL, NULL), MIDGE_OK);
	{
		/* 70 kB of valid UTF-8 is too long (65535 bytes at most): a length error, not
		 * "Malformed UTF-8" (issue 8, item 19) */
		char *big = malloc(70001);
		REQUIRE(big);
		memset(big, 'a', 70000);
		big[70000] = '\0';
		CHECK_EQ_INT(midge_username_pw_set(c, big, NULL), MIDGE_ERR_INVAL);
		CHECK_EQ_INT(midge_username_pw_set(c, "u", big), MIDGE_ERR_INVAL);
		big[65535] = '\0';
		CHECK_EQ_INT(midge_username_pw_set(c, big, big), MIDGE_OK);
		free(big);
	}
	CHECK_EQ_INT(midge_reconnect_delay_set(c, 5, 1), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_reconnect_delay_set(c, -1, 1), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_reconnect_delay_set(c, 1, 30), MIDGE_OK);
	CHECK_EQ_INT(midge_max_inflight_messages_set(c, -1), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_max_queued_messages_set(c, -1), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_connect_timeout_set(c, 0), MIDGE_ERR_INVAL);
	int x;
	midge_user_data_set(c, &x);
	CHECK(midge_user_data(c) == &x);
	midge_client_free(c);
}

TEST(queue_bound_and_ids)
{
	midge_client *c = new311();
	REQUIRE(c);
	CHECK_EQ_INT(midge_max_queued_messages_set(c, 3), MIDGE_OK);
	CHECK_EQ_INT(midge_publish(c, "q", "1", 1, 1, false, NULL), 1);
	CHECK_EQ_INT(midge_publish(c, "q", "2", 1, 0, false, NULL), 2);
	CHECK_EQ_INT(midge_publish(c, "q", "3", 1, 2, false, NULL), 3);
	CHECK_EQ_INT(midge_publish(c, "q", "4", 1, 1, false, NULL), MIDGE_ERR_QUEUE_FULL);
	CHECK(!midge_is_published(c, 1));
	CHECK(!midge_is_published(c, 2));
	CHECK(midge_is_published(c, 4)); /* unknown ids count as done */
	/* not connected and nobody to connect: waiting says so at once */
	CHECK_EQ_INT(midge_wait_for_publish(c, 1, 100), MIDGE_ERR_NO_CONN);
	CHECK_EQ_INT(midge_wait_for_publish(c, 0, 100), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_max_queued_messages_set(c, 0), MIDGE_OK); /* 0: no bound */
	for (int i = 0; i < 100; i++)
		CHECK(midge_publish(c, "q", "x", 1, 1, false, NULL) > 0);
	midge_client_free(c);
}

TEST(queued_messages_need_no_packet_ids)
{
	midge_client *c = new311();
	REQUIRE(c);
	/* The default queue has no bound (paho's), and a waiting message holds no packet id: the
	 * 65536th and later QoS 1 messages queue like the first, each with its own mid. */
	for (int i = 1; i <= 70000; i++) {
		int mid = midge_publish(c, "q", NULL, 0, 1, false, NULL);
		if (mid != i) {
			CHECK_EQ_INT(mid, i);
			break;
		}
	}
	CHECK(!midge_is_published(c, 70000));
	midge_client_free(c);
	/* A bound, when set, holds. */
	c = new311();
	REQUIRE(c);
	midge_max_queued_messages_set(c, 3);
	for (int i = 0; i < 3; i++)
		CHECK(midge_publish(c, "q", NULL, 0, 1, false, NULL) > 0);
	CHECK_EQ_INT(midge_publish(c, "q", NULL, 0, 1, false, NULL), MIDGE_ERR_QUEUE_FULL);
	midge_client_free(c);
}

TEST(strings)
{
	CHECK_STR(midge_strerror(MIDGE_OK), "No error.");
	CHECK_STR(midge_strerror(MIDGE_ERR_NO_CONN), "The client is not currently connected.");
	CHECK_STR(midge_strerror(-1000), "Unknown error.");
	CHECK_STR(midge_connack_string(0), "Connection Accepted.");
	CHECK_STR(midge_connack_string(5), "Connection Refused: not authorised.");
	CHECK_STR(midge_connack_string(0x87), "Not authorized");
	CHECK_STR(midge_connack_string(0x86), "Bad User Name or Password");
	CHECK_STR(midge_connack_string(MIDGE_ERR_TIMEOUT), "Timed out.");
	CHECK_STR(midge_reason_string(0), "Success");
	CHECK_STR(midge_reason_string(0x10), "No matching subscribers");
	CHECK_STR(midge_reason_string(0x97), "Quota exceeded");
	int maj, min, rev;
	CHECK_EQ_INT(midge_lib_version(&maj, &min, &rev), MIDGE_VERSION_MAJOR * 1000000 + MIDGE_VERSION_MINOR * 1000 + MIDGE_VERSION_REVISION);
	CHECK_EQ_INT(maj, MIDGE_VERSION_MAJOR);
}
