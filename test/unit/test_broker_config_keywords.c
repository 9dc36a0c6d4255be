/*
 * test/unit/test_broker_config_keywords.c - every keyword of midge.conf: good values land in the
 * right field, bad values stop the load with "Error: FILE:LINE: ..." saying what is wrong,
 * and keywords for features not implemented yet say so instead of being ignored.
 */
#include "t.h"

#include <stdlib.h>
#include <unistd.h>

#include "broker/config.h"
#include "broker/log.h"

#include "config_text.h"

TEST(bool_keywords_good_and_bad)
{
	static const char *kws[] = {"allow_anonymous", "allow_zero_length_clientid",
		"queue_qos0_messages", "retain_available", "connection_messages", "log_timestamp",
		"set_tcp_nodelay"};
	for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++) {
		char text[128], want[256];
		mg_config c;
		char err[ERRLEN];
		snprintf(text, sizeof text, "%s true\n", kws[i]);
		CHECK(parse(&c, text, err) == 0);
		mg_config_free(&c);
		snprintf(text, sizeof text, "%s false\n", kws[i]);
		CHECK(parse(&c, text, err) == 0);
		mg_config_free(&c);
		snprintf(text, sizeof text, "\n%s yes\n", kws[i]);
		snprintf(want, sizeof want, "Error: t.conf:2: invalid value 'yes' for '%s' (expected true or false).", kws[i]);
		EXPECT_ERR(text, want);
		snprintf(text, sizeof text, "%s\n", kws[i]);
		snprintf(want, sizeof want, "Error: t.conf:1: '%s' needs a value.", kws[i]);
		EXPECT_ERR(text, want);
		snprintf(text, sizeof text, "%s true false\n", kws[i]);
		snprintf(want, sizeof want, "Error: t.conf:1: too many values for '%s': unexpected 'false'.", kws[i]);
		EXPECT_ERR(text, want);
	}
}

TEST(bool_keywords_set_fields)
{
	mg_config c;
	char err[ERRLEN];
	REQUIRE(parse(&c, "allow_anonymous true\nallow_zero_length_clientid false\n"
			"queue_qos0_messages true\nretain_available false\nconnection_messages false\n"
			"log_timestamp false\nset_tcp_nodelay true\n", err) == 0);
	CHECK(c.allow_anonymous && c.allow_anonymous_set);
	CHECK(!c.allow_zero_length_clientid);
	CHECK(c.queue_qos0_messages);
	CHECK(!c.retain_available);
	CHECK(!c.connection_messages);
	CHECK(!c.log_timestamp);
	CHECK(c.set_tcp_nodelay);
	mg_config_free(&c);
}

TEST(number_keywords)
{
	mg_config c;
	char err[ERRLEN];
	REQUIRE(parse(&c, "max_keepalive 60\nmax_packet_size 20\nmessage_size_limit 268435455\n"
			"max_inflight_messages 1\nmax_inflight_bytes 5000000000\nmax_queued_messages 0\n"
			"max_queued_bytes 1024\nsys_interval 0\nthreads 4\nmax_connections 7\n"
			"max_incoming_qos2_messages 50\nlisten_backlog 64\n", err) == 0);
	CHECK_EQ_INT(c.max_keepalive, 60);
	CHECK_EQ_INT(c.max_packet_size, 20);
	CHECK_EQ_INT(c.message_size_limit, 268435455);
	CHECK_EQ_INT(c.max_inflight_messages, 1);
	CHECK(c.max_inflight_bytes == 5000000000ull);
	CHECK_EQ_INT(c.max_queued_messages, 0);
	CHECK_EQ_INT(c.max_queued_bytes, 1024);
	CHECK_EQ_INT(c.sys_interval, 0);
	CHECK_EQ_INT(c.threads, 4);
	CHECK_EQ_INT(c.max_connections, 7);
	CHECK_EQ_INT(c.max_incoming_qos2, 50);
	CHECK_EQ_INT(c.listen_backlog, 64);
	mg_config_free(&c);

	REQUIRE(parse(&c, "max_inflight_messages 0\nthreads auto\nmax_packet_size 0\nmax_keepalive 65535\n", err) == 0);
	CHECK_EQ_INT(c.max_inflight_messages, 65535); /* 0 = no maximum */
	CHECK_EQ_INT(c.threads, 0);
	CHECK_EQ_INT(c.max_packet_size, 0);
	CHECK_EQ_INT(c.max_keepalive, 65535);
	CHECK_EQ_INT(c.max_incoming_qos2, 1000); /* defaults */
	CHECK_EQ_INT(c.listen_backlog, 0);
	mg_config_free(&c);
	REQUIRE(parse(&c, "max_incoming_qos2_messages 0\n", err) == 0);
	CHECK_EQ_INT(c.max_incoming_qos2, 0); /* 0 = no limit */
	CHECK_EQ_INT(c.cluster_js_replicas, 0); /* 0 = 3 or 1 by the NATS servers known */
	mg_config_free(&c);
	REQUIRE(parse(&c, "cluster_js_replicas 1\n", err) == 0);
	CHECK_EQ_INT(c.cluster_js_replicas, 1);
	mg_config_free(&c);
}

TEST(number_keywords_bad_values)
{
	EXPECT_ERR("max_inflight_messages abc\n",
		"Error: t.conf:1: invalid value 'abc' for 'max_inflight_messages' (expected a whole number).");
	EXPECT_ERR("max_inflight_messages 12abc\n",
		"Error: t.conf:1: invalid value '12abc' for 'max_inflight_messages' (expected a whole number).");
	EXPECT_ERR("max_inflight_messages 65536\n",
		"Error: t.conf:1: value 65536 for 'max_inflight_messages' is out of range (0 to 65535).");
	EXPECT_ERR("max_keepalive 70000\n",
		"Error: t.conf:1: value 70000 for 'max_keepalive' is out of range (0 to 65535).");
	EXPECT_ERR("max_keepalive -1\n",
		"Error: t.conf:1: value -1 for 'max_keepalive' is out of range (0 to 65535).");
	EXPECT_ERR("max_keepalive 10 20\n",
		"Error: t.conf:1: too many values for 'max_keepalive': unexpected '20'.");
	EXPECT_ERR("max_packet_size 19\n",
		"Error: t.conf:1: value 19 for 'max_packet_size' is too small (0 for no limit, or at least 20).");
	EXPECT_ERR("max_packet_size 268435461\n",
		"Error: t.conf:1: value 268435461 for 'max_packet_size' is out of range (0 to 268435460).");
	EXPECT_ERR("message_size_limit 268435456\n",
		"Error: t.conf:1: value 268435456 for 'message_size_limit' is out of range (0 to 268435455).");
	EXPECT_ERR("max_queued_messages -1\n",
		"Error: t.conf:1: value -1 for 'max_queued_messages' is out of range (0 to 2147483647).");
	EXPECT_ERR("max_queued_bytes 99999999999999999999\n",
		"Error: t.conf:1: value 99999999999999999999 for 'max_queued_bytes' is out of range (0 to 9223372036854775807).");
	EXPECT_ERR("max_inflight_bytes -5\n",
		"Error: t.conf:1: value -5 for 'max_inflight_bytes' is out of range (0 to 9223372036854775807).");
	EXPECT_ERR("sys_interval 1.5\n",
		"Error: t.conf:1: invalid value '1.5' for 'sys_interval' (expected a whole number).");
	EXPECT_ERR("threads 0x4\n",
		"Error: t.conf:1: invalid value '0x4' for 'threads' (expected a whole number).");
	EXPECT_ERR("threads 1025\n",
		"Error: t.conf:1: value 1025 for 'threads' is out of range (0 to 1024).");
	EXPECT_ERR("max_connections -2\n",
		"Error: t.conf:1: value -2 for 'max_connections' is out of range (-1 to 2147483647).");
	EXPECT_ERR("max_connections\n", "Error: t.conf:1: 'max_connections' needs a value.");
	EXPECT_ERR("max_incoming_qos2_messages 65536\n",
		"Error: t.conf:1: value 65536 for 'max_incoming_qos2_messages' is out of range (0 to 65535).");
	EXPECT_ERR("listen_backlog -1\n",
		"Error: t.conf:1: value -1 for 'listen_backlog' is out of range (0 to 2147483647).");
	EXPECT_ERR("cluster_js_replicas 0\n",
		"Error: t.conf:1: value 0 for 'cluster_js_replicas' is out of range (1 to 5).");
	EXPECT_ERR("cluster_js_replicas 6\n",
		"Error: t.conf:1: value 6 for 'cluster_js_replicas' is out of range (1 to 5).");
	EXPECT_ERR("message_size_limit -\n",
		"Error: t.conf:1: invalid value '-' for 'message_size_limit' (expected a whole number).");
}

TEST(persistent_client_expiration_units)
{
	static const struct { const char *v; int64_t secs; } ok[] = {
		{"1h", 3600}, {"2d", 2 * 86400}, {"3w", 3 * 7 * 86400}, {"4m", 4 * 30 * 86400LL},
		{"5y", 5 * 365 * 86400LL}, {"14d", 14 * 86400}, {"1000000y", 1000000LL * 365 * 86400},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		mg_config c;
		char err[ERRLEN], text[64];
		snprintf(text, sizeof text, "persistent_client_expiration %s\n", ok[i].v);
		CHECK(parse(&c, text, err) == 0);
		CHECK(c.persistent_client_expiration == ok[i].secs);
		mg_config_free(&c);
	}
	mg_config c;
	mg_config_init(&c);
	CHECK_EQ_INT(c.persistent_client_expiration, -1); /* never */
	mg_config_free(&c);
	static const char *bad[] = {"3x", "h", "0d", "-1d", "10", "1.5d", "1dd", "d1", "1000001y"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char text[64], want[256];
		snprintf(text, sizeof text, "persistent_client_expiration %s\n", bad[i]);
		snprintf(want, sizeof want, "Error: t.conf:1: invalid duration '%s' for "
				"'persistent_client_expiration' (expected a number and a unit: h, d, w, m or y, e.g. 14d).", bad[i]);
		EXPECT_ERR(text, want);
	}
}

TEST(string_keywords)
{
	mg_config c;
	char err[ERRLEN];
	REQUIRE(parse(&c, "auto_id_prefix gen-\npid_file /run/my midge.pid # comment\nuser nobody\n"
			"persistence_location /var/lib/midge/\npersistence_file m.db\n"
			"log_timestamp_format %Y-%m-%dT%H:%M:%S   \n", err) == 0);
	CHECK_STR(c.auto_id_prefix, "gen-");
	CHECK_STR(c.pid_file, "/run/my midge.pid"); /* paths may hold spaces, as in mosquitto */
	CHECK_STR(c.user, "nobody");
	CHECK_STR(c.persistence_location, "/var/lib/midge/");
	CHECK_STR(c.persistence_file, "m.db");
	CHECK_STR(c.log_timestamp_format, "%Y-%m-%dT%H:%M:%S");
	mg_config_free(&c);
	REQUIRE(parse(&c, "log_timestamp_format %Y-%m-%d %H:%M:%S\n", err) == 0);
	CHECK_STR(c.log_timestamp_format, "%Y-%m-%d %H:%M:%S");
	mg_config_free(&c);
	EXPECT_ERR("auto_id_prefix\n", "Error: t.conf:1: 'auto_id_prefix' needs a value.");
	EXPECT_ERR("auto_id_prefix # nothing\n", "Error: t.conf:1: 'auto_id_prefix' needs a value.");
	EXPECT_ERR("auto_id_prefix 012345678901234567890123456789012345678901234567890\n",
		"Error: t.conf:1: 'auto_id_prefix' is longer than 50 bytes.");
	EXPECT_OK("auto_id_prefix 01234567890123456789012345678901234567890123456789\n");
	EXPECT_ERR("pid_file\n", "Error: t.conf:1: 'pid_file' needs a value.");
}

TEST(log_type_first_replaces_then_adds)
{
	mg_config c;
	char err[ERRLEN];
	mg_config_init(&c);
	CHECK_EQ_INT(c.log_types, MG_LOG_ERR | MG_LOG_WARNING | MG_LOG_NOTICE | MG_LOG_INFO);
	mg_config_free(&c);
	REQUIRE(parse(&c, "log_type error\nlog_type subscribe\n", err) == 0);
	CHECK_EQ_INT(c.log_types, MG_LOG_ERR | MG_LOG_SUBSCRIBE);
	mg_config_free(&c);
	REQUIRE(parse(&c, "log_type all\n", err) == 0);
	CHECK_EQ_INT(c.log_types, MG_LOG_ALL);
	mg_config_free(&c);
	REQUIRE(parse(&c, "log_type all\nlog_type none\n", err) == 0);
	CHECK_EQ_INT(c.log_types, 0);
	mg_config_free(&c);
	REQUIRE(parse(&c, "log_type debug\nlog_type unsubscribe\nlog_type websockets\nlog_type notice\n"
			"log_type warning\nlog_type information\n", err) == 0);
	CHECK_EQ_INT(c.log_types, MG_LOG_DEBUG | MG_LOG_UNSUBSCRIBE | MG_LOG_WEBSOCKETS |
			MG_LOG_NOTICE | MG_LOG_WARNING | MG_LOG_INFO);
	mg_config_free(&c);
	EXPECT_ERR("log_type info\n", "Error: t.conf:1: invalid value 'info' for 'log_type' (expected "
			"error, warning, notice, information, debug, subscribe, unsubscribe, websockets, all or none).");
	EXPECT_ERR("log_type error warning\n", "Error: t.conf:1: too many values for 'log_type': unexpected 'warning'.");
}

TEST(log_dest_values)
{
	mg_config c;
	char err[ERRLEN];
	mg_config_init(&c);
	CHECK_EQ_INT(c.log_dests, MG_LOGD_STDERR);
	mg_config_free(&c);
	REQUIRE(parse(&c, "log_dest stdout\n", err) == 0);
	CHECK_EQ_INT(c.log_dests, MG_LOGD_STDOUT);
	mg_config_free(&c);
	REQUIRE(parse(&c, "log_dest syslog\nlog_dest file /var/log/midge log.txt\nlog_dest stderr\n", err) == 0);
	CHECK_EQ_INT(c.log_dests, MG_LOGD_SYSLOG | MG_LOGD_FILE | MG_LOGD_STDERR);
	CHECK_STR(c.log_file, "/var/log/midge log.txt");
	mg_config_free(&c);
	REQUIRE(parse(&c, "log_dest stdout\nlog_dest none\n", err) == 0);
	CHECK_EQ_INT(c.log_dests, 0);
	mg_config_free(&c);
	REQUIRE(parse(&c, "log_facility 5\n", err) == 0);
	CHECK_EQ_INT(c.log_facility, 5);
	mg_config_free(&c);
	EXPECT_ERR("log_dest file\n", "Error: t.conf:1: 'log_dest file' needs a file name.");
	EXPECT_ERR("log_dest file a\nlog_dest file b\n",
		"Error: t.conf:2: only one 'log_dest file' may be given (the first names a).");
	EXPECT_ERR("log_dest console\n", "Error: t.conf:1: invalid value 'console' for 'log_dest' "
			"(expected stdout, stderr, file PATH, syslog, topic or none).");
	EXPECT_ERR("log_dest stdout stderr\n", "Error: t.conf:1: too many values for 'log_dest': unexpected 'stderr'.");
	EXPECT_ERR("log_dest topic\n", "Error: t.conf:1: 'log_dest topic': publishing the log on "
			"$SYS/broker/log/# is not yet implemented in this version of midge.");
	EXPECT_ERR("log_dest dlt\n", "Error: t.conf:1: 'log_dest dlt' is not supported by midge.");
	EXPECT_ERR("log_facility 8\n", "Error: t.conf:1: value 8 for 'log_facility' is out of range (0 to 7).");
}

TEST(listener_keyword)
{
	mg_config c;
	char err[ERRLEN];
	REQUIRE(parse(&c, "listener 1883\nlistener 8883 127.0.0.1\nmax_connections 10\n"
			"protocol mqtt\nlistener 0 ::1\n", err) == 0);
	REQUIRE(c.n_listeners == 3);
	CHECK_EQ_INT(c.listeners[0].port, 1883);
	CHECK(c.listeners[0].bind_address == NULL);
	CHECK_EQ_INT(c.listeners[0].max_connections, -1);
	CHECK_EQ_INT(c.listeners[0].protocol, MG_PROTO_MQTT);
	CHECK_STR(c.listeners[0].file, "t.conf");
	CHECK_EQ_INT(c.listeners[0].line, 1);
	CHECK_EQ_INT(c.listeners[1].port, 8883);
	CHECK_STR(c.listeners[1].bind_address, "127.0.0.1");
	CHECK_EQ_INT(c.listeners[1].max_connections, 10);
	CHECK(c.listeners[1].mount_point == NULL);
	CHECK_EQ_INT(c.listeners[1].line, 2);
	CHECK_EQ_INT(c.listeners[2].port, 0);
	CHECK_STR(c.listeners[2].bind_address, "::1");
	CHECK_EQ_INT(c.max_connections, -1); /* the broker-wide limit was not touched */
	mg_config_free(&c);

	EXPECT_ERR("listener\n", "Error: t.conf:1: 'listener' needs a value.");
	EXPECT_ERR("listener 65536\n", "Error: t.conf:1: value 65536 for 'listener' is out of range (0 to 65535).");
	EXPECT_ERR("listener port\n", "Error: t.conf:1: invalid value 'port' for 'listener' (expected a whole number).");
	EXPECT_ERR("listener 1883 0.0.0.0 extra\n", "Error: t.conf:1: too many values for 'listener': unexpected 'extra'.");
	EXPECT_ERR("listener 0 /run/midge.sock\n",
		"Error: t.conf:1: 'listener': unix domain sockets are not yet implemented in this version of midge.");
	EXPECT_ERR("listener 1883\nlistener 1884\nlistener 1883\n",
		"Error: t.conf:3: a listener on port 1883 is already defined at t.conf:1.");
	EXPECT_ERR("listener 1883 ::1\nlistener 1883 ::1\n",
		"Error: t.conf:2: a listener on port 1883 address ::1 is already defined at t.conf:1.");
	EXPECT_OK("listener 1883 ::1\nlistener 1883 127.0.0.1\nlistener 0\nlistener 0\n");
	EXPECT_ERR("listener 1883\nmount_point a/+/\n",
		"Error: t.conf:2: invalid mount_point 'a/+/': it may not hold the wildcards + or #.");
	{
		mg_config m;
		mg_config_init(&m);
		char merr[256];
		const char *txt = "listener 1883\nmount_point tenant/\n";
		CHECK_EQ_INT(mg_config_parse_buffer(&m, "t.conf", txt, strlen(txt), merr, sizeof merr), 0);
		CHECK_STR(m.listeners[0].mount_point, "tenant/");
		mg_config_free(&m);
	}
	EXPECT_ERR("listener 1883\nprotocol http\n",
		"Error: t.conf:2: invalid value 'http' for 'protocol' (expected mqtt or websockets).");
}

TEST(old_style_port_and_bind_address)
{
	mg_config c;
	char err[ERRLEN];
	capture_log();
	REQUIRE(parse(&c, "listener 1885\nport 1884\nbind_address 127.0.0.1\n", err) == 0);
	REQUIRE(c.n_listeners == 2);
	/* the default listener comes first: it is the one -p changes */
	CHECK_EQ_INT(c.listeners[0].port, 1884);
	CHECK_STR(c.listeners[0].bind_address, "127.0.0.1");
	CHECK_EQ_INT(c.listeners[0].line, 2);
	CHECK_EQ_INT(c.listeners[1].port, 1885);
	CHECK(c.listeners[1].bind_address == NULL);
	mg_config_free(&c);
	const char *log = captured();
	CHECK(strstr(log, "Warning: t.conf:2: 'port' is deprecated (as in mosquitto 2); use 'listener 1884' instead.\n") != NULL);
	CHECK(strstr(log, "Warning: t.conf:3: 'bind_address' is deprecated") != NULL);

	/* bind_address alone: the default listener on 1883 */
	REQUIRE(parse(&c, "bind_address localhost\n", err) == 0);
	REQUIRE(c.n_listeners == 1);
	CHECK_EQ_INT(c.listeners[0].port, 1883);
	CHECK_STR(c.listeners[0].bind_address, "localhost");
	mg_config_free(&c);

	/* listener options before any listener line go to the default listener */
	REQUIRE(parse(&c, "protocol mqtt\nport 1999\n", err) == 0);
	REQUIRE(c.n_listeners == 1);
	CHECK_EQ_INT(c.listeners[0].protocol, MG_PROTO_MQTT);
	mg_config_free(&c);
	EXPECT_ERR("port 1883\nlistener 1883\n", "Error: t.conf:2: a listener on port 1883 is already defined at t.conf:1.");
	EXPECT_OK("protocol mqtt\nlistener 1883\n");
}

TEST(not_yet_implemented_features_are_named)
{
	EXPECT_ERR("listener 8883\ntls_engine pkcs11\n",
		"Error: t.conf:2: 'tls_engine': keys held by an OpenSSL engine are not yet implemented in this version of midge.");
	EXPECT_ERR("listener 8883\ntls_keyform engine\n",
		"Error: t.conf:2: 'tls_keyform': keys held by an OpenSSL engine are not yet implemented in this version of midge.");
	EXPECT_ERR("listener 1\nbind_interface eth0\n", "Error: t.conf:2: 'bind_interface': binding to an "
			"interface by name is not yet implemented in this version of midge.");
	EXPECT_ERR("topic # both 0\n", "Error: t.conf:1: 'topic' is a bridge option: it belongs after a "
			"'connection NAME' line.");
	EXPECT_ERR("bridge_protocol_version mqttv50\n", "Error: t.conf:1: 'bridge_protocol_version' is a bridge "
			"option: it belongs after a 'connection NAME' line.");
	EXPECT_ERR("auth_plugin /usr/lib/x.so\n", "Error: t.conf:1: 'auth_plugin': plugins are not yet implemented in this version of midge.");
	EXPECT_ERR("plugin_opt_db x\n", "Error: t.conf:1: 'plugin_opt_db': plugins are not yet implemented in this version of midge.");
	EXPECT_ERR("listener 1\nsocket_domain ipv4\n", "Error: t.conf:2: 'socket_domain': restricting a listener "
			"to one IP version is not yet implemented in this version of midge.");
	EXPECT_ERR("listener 1\nmax_qos 1\n", "Error: t.conf:2: 'max_qos': limiting a listener's QoS is not yet implemented in this version of midge.");
	EXPECT_ERR("memory_limit 1000\n", "Error: t.conf:1: 'memory_limit': a heap memory limit is not yet implemented in this version of midge.");
	EXPECT_ERR("upgrade_outgoing_qos true\n", "Error: t.conf:1: 'upgrade_outgoing_qos true': upgrading the "
			"QoS of delivered messages is not yet implemented in this version of midge.");

	/* values that ask for nothing missing are accepted */
	mg_config w;
	char werr[ERRLEN];
	REQUIRE(parse(&w, "websockets_headers_size 8192\nlistener 9001 127.0.0.1\nprotocol websockets\n"
			"http_dir /srv/my www\n", werr) == 0);
	CHECK(w.n_listeners == 1 && w.listeners[0].protocol == MG_PROTO_WEBSOCKETS);
	CHECK(strcmp(w.listeners[0].http_dir, "/srv/my www") == 0);
	CHECK(strcmp(w.listeners[0].bind_address, "127.0.0.1") == 0);
	CHECK(w.websockets_headers_size == 8192);
	mg_config_free(&w);
	EXPECT_OK("persistence false\npersistence_location /tmp/\npersistence_file x.db\n");
	EXPECT_OK("listener 1883\nprotocol mqtt\nrequire_certificate false\nuse_identity_as_username false\n"
			"use_subject_as_username false\ntls_keyform pem\nmax_qos 2\nmax_topic_alias 10\nuse_username_as_clientid false\n");
	EXPECT_OK("per_listener_settings false\nupgrade_outgoing_qos false\nmemory_limit 0\n");
	EXPECT_ERR("persistence maybe\n", "Error: t.conf:1: invalid value 'maybe' for 'persistence' (expected true or false).");
	mg_config c;
	char err[ERRLEN];
	REQUIRE(parse(&c, "persistence true\npersistence_fsync true\n", err) == 0);
	CHECK(c.persistence && c.persistence_fsync);
	mg_config_free(&c);
	REQUIRE(parse(&c, "persistence false\n", err) == 0);
	CHECK(!c.persistence && !c.password_file && !c.acl_file);
	mg_config_free(&c);
	/* acl_file is read by the broker when it starts (broker/acl.h): the config keeps the path,
	 * the rest of the line as mosquitto keeps it */
	REQUIRE(parse(&c, "acl_file /etc/midge/my acl\n", err) == 0);
	CHECK_STR(c.acl_file, "/etc/midge/my acl");
	mg_config_free(&c);
}

TEST(harmless_obsolete_keywords_warn)
{
	capture_log();
	EXPECT_OK("autosave_interval 1800\nautosave_on_changes false\nallow_duplicate_messages true\n"
			"check_retain_source true\nwebsockets_log_level 0\n");
	const char *log = captured();
	CHECK(strstr(log, "Warning: t.conf:1: 'autosave_interval' has no effect in midge and is ignored.\n") != NULL);
	CHECK(strstr(log, "Warning: t.conf:2: 'autosave_on_changes' has no effect in midge and is ignored.\n") != NULL);
	CHECK(strstr(log, "Warning: t.conf:3: 'allow_duplicate_messages' has no effect in midge and is ignored.\n") != NULL);
	CHECK(strstr(log, "Warning: t.conf:4: 'check_retain_source' has no effect in midge and is ignored.\n") != NULL);
	CHECK(strstr(log, "Warning: t.conf:5: 'websockets_log_level' has no effect in midge (it tunes "
			"libwebsockets, which midge does not use); 'log_type websockets' logs WebSocket handshakes "
			"and HTTP requests.\n") != NULL);
	EXPECT_ERR("autosave_interval soon\n",
		"Error: t.conf:1: invalid value 'soon' for 'autosave_interval' (expected a whole number).");
}

/* TLS listener options: stored on their listener with mosquitto's meaning; combinations that
 * could not work are errors at the listener's line (mosquitto would serve plain TCP, or fail
 * every handshake). Reading the files is broker/tls.c's, at start. */
TEST(tls_listener_options)
{
	mg_config c;
	char err[ERRLEN] = "";
	REQUIRE(parse(&c, "psk_file /p\nlistener 1883\nlistener 8883\ncafile /ca dir/ca.crt\ncapath /cap\n"
			"certfile /s.crt\nkeyfile /s.key\ncrlfile /crl\ndhparamfile /dh\nciphers HIGH\n"
			"ciphers_tls1.3 TLS_AES_256_GCM_SHA384\ntls_version tlsv1.3\nrequire_certificate true\n"
			"use_identity_as_username true\nlistener 8884\npsk_hint hint\nuse_subject_as_username true\n",
			err) == 0);
	REQUIRE(c.n_listeners == 3);
	const mg_listener_conf *p = &c.listeners[0], *t = &c.listeners[1], *k = &c.listeners[2];
	CHECK(!p->certfile && !p->cafile && !p->psk_hint && !p->require_certificate);
	CHECK_STR(t->cafile, "/ca dir/ca.crt");
	CHECK_STR(t->capath, "/cap");
	CHECK_STR(t->certfile, "/s.crt");
	CHECK_STR(t->keyfile, "/s.key");
	CHECK_STR(t->crlfile, "/crl");
	CHECK_STR(t->dhparamfile, "/dh");
	CHECK_STR(t->ciphers, "HIGH");
	CHECK_STR(t->ciphers_tls13, "TLS_AES_256_GCM_SHA384");
	CHECK_STR(t->tls_version, "tlsv1.3");
	CHECK(t->require_certificate && t->use_identity_as_username && !t->use_subject_as_username);
	CHECK_STR(k->psk_hint, "hint");
	CHECK(k->use_subject_as_username);
	CHECK_STR(c.psk_file, "/p");
	mg_config_free(&c);

	EXPECT_ERR("listener 8883\ntls_version tlsv1.0\n", "Error: t.conf:2: invalid value 'tlsv1.0' for "
			"'tls_version' (expected tlsv1.3, tlsv1.2 or tlsv1.1: the oldest version the listener accepts).");
	EXPECT_ERR("listener 8883\ncertfile /s.crt\n",
		"Error: t.conf:1: listener 8883 has 'certfile' without 'keyfile': TLS needs both.");
	EXPECT_ERR("listener 8883\nkeyfile /s.key\n",
		"Error: t.conf:1: listener 8883 has 'keyfile' without 'certfile': TLS needs both.");
	EXPECT_ERR("listener 1883\nlistener 8883\ncafile /ca.crt\n", "Error: t.conf:2: listener 8883 has "
			"'cafile' but is not a TLS listener: add 'certfile' and 'keyfile' (or 'psk_hint').");
	EXPECT_ERR("listener 8883\nrequire_certificate true\n", "Error: t.conf:1: listener 8883 has "
			"'require_certificate' but is not a TLS listener: add 'certfile' and 'keyfile' (or 'psk_hint').");
	EXPECT_ERR("listener 8883\ncertfile /s\nkeyfile /k\nrequire_certificate true\n", "Error: t.conf:1: "
			"listener 8883 has 'require_certificate true' but no 'cafile' or 'capath' to check client "
			"certificates against.");
	EXPECT_ERR("listener 8883\npsk_hint h\n",
		"Error: t.conf:1: listener 8883 has 'psk_hint' but no 'psk_file' holds the keys.");
	EXPECT_ERR("psk_file /p\nlistener 8883\npsk_hint h\ncertfile /s\nkeyfile /k\n", "Error: t.conf:2: "
			"Cannot use both certificate and psk encryption in a single listener (certfile/keyfile and psk_hint).");
	/* per_listener_settings true: psk_file is the listener's, as mosquitto's security options */
	REQUIRE(parse(&c, "per_listener_settings true\nlistener 8883\npsk_hint h\npsk_file /a\n"
			"listener 8884\npsk_hint h2\npsk_file /b\n", err) == 0);
	CHECK_STR(c.listeners[0].psk_file, "/a");
	CHECK_STR(c.listeners[1].psk_file, "/b");
	CHECK(c.psk_file == NULL);
	CHECK_STR(mg_config_psk_file(&c, 1), "/b");
	mg_config_free(&c);
	EXPECT_ERR("per_listener_settings true\nlistener 8883\npsk_hint h\npsk_file /a\nlistener 8884\n"
			"psk_hint h2\n", "Error: t.conf:5: listener 8884 has 'psk_hint' but no 'psk_file' holds the keys.");
	/* before any listener line: the default listener of `port`, as for every listener option */
	REQUIRE(parse(&c, "port 8883\ncertfile /s\nkeyfile /k\n", err) == 0);
	CHECK_STR(c.listeners[0].certfile, "/s");
	mg_config_free(&c);
}

TEST(security_settings_global_and_per_listener)
{
	mg_config c;
	char err[ERRLEN];
	/* without per_listener_settings: the broker's, wherever they stand */
	REQUIRE(parse(&c, "listener 1\nlistener 2\nallow_anonymous true\npassword_file /p\n"
			"clientid_prefixes sec-\n", err) == 0);
	mg_config_finish(&c);
	CHECK(!c.per_listener_settings);
	CHECK_STR(c.password_file, "/p");
	CHECK_STR(c.clientid_prefixes, "sec-");
	CHECK(mg_config_anonymous_ok(&c, 0) && mg_config_anonymous_ok(&c, 1));
	CHECK_STR(mg_config_password_file(&c, 0), "/p");
	CHECK(c.listeners[0].password_file == NULL);
	mg_config_free(&c);

	/* with it: each listener its own, and a listener that says nothing is closed */
	REQUIRE(parse(&c, "per_listener_settings true\nlistener 1\nallow_anonymous true\n"
			"listener 2\npassword_file /two\nuse_username_as_clientid true\n", err) == 0);
	mg_config_finish(&c);
	CHECK(c.per_listener_settings);
	CHECK(mg_config_anonymous_ok(&c, 0));
	CHECK(!mg_config_anonymous_ok(&c, 1));
	CHECK(mg_config_password_file(&c, 0) == NULL);
	CHECK_STR(mg_config_password_file(&c, 1), "/two");
	CHECK(!c.listeners[0].use_username_as_clientid && c.listeners[1].use_username_as_clientid);
	CHECK(c.password_file == NULL && !c.allow_anonymous_set);
	mg_config_free(&c);

	/* mosquitto's rules: per_listener_settings first; one password_file per scope */
	EXPECT_ERR("allow_anonymous true\nper_listener_settings true\n",
		"Error: t.conf:2: per_listener_settings must be set before any other security settings.");
	EXPECT_ERR("password_file /a\npassword_file /b\n",
		"Error: t.conf:2: duplicate 'password_file' (the first names /a).");
	EXPECT_OK("per_listener_settings true\nlistener 1\npassword_file /a\nlistener 2\npassword_file /b\n");
	/* a listener's setting needs a listener to belong to */
	EXPECT_ERR("per_listener_settings true\nallow_anonymous true\nlistener 1\n",
		"Error: t.conf:2: 'allow_anonymous' is a listener option, but no 'listener' line comes "
		"before it (write 'listener PORT' first).");
	EXPECT_ERR("listener 1\nuse_username_as_clientid maybe\n",
		"Error: t.conf:2: invalid value 'maybe' for 'use_username_as_clientid' (expected true or false).");
}
