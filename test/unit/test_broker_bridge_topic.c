/*
 * test/unit/test_broker_bridge_topic.c - bridges in mosquitto.conf (broker/config_bridge.c) and
 * the mapping of topics across a bridge (broker/bridge_topic.c): a table of `topic` lines and
 * topics mapped both ways, with the answers mosquitto 2.0's rules give (bridge_conf.h); every
 * keyword's value and default; the errors, each with its file and line.
 */
#include "t.h"

#include <stdlib.h>
#include <unistd.h>

#include "broker/bridge_conf.h"
#include "broker/config.h"

#define CONFIG_TEXT_FILE "b.conf"
#include "config_text.h"

#define HEAD "connection b\naddress 127.0.0.1\n"

/* One case: the topic lines of a bridge, a topic, a direction, and what it becomes. */
static const struct map_case {
	const char *topics;  /* `topic` lines after HEAD */
	bool out;            /* local -> remote */
	const char *topic;
	const char *want;    /* the topic on the other side */
	int entry;           /* the entry that decided, -1 none (the topic crosses unchanged) */
} map_cases[] = {
	/* no prefixes: nothing is mapped, either way */
	{ "topic room/# out 1\n", true, "room/kitchen/temp", "room/kitchen/temp", -1 },
	{ "topic room/# in 1\n", false, "room/kitchen/temp", "room/kitchen/temp", -1 },
	/* the lecture's camera: jpeg on the Pi is house1/jpeg centrally */
	{ "topic jpeg out 0 \"\" house1/\n", true, "jpeg", "house1/jpeg", 0 },
	{ "topic jpeg out 0 \"\" house1/\n", false, "house1/jpeg", "house1/jpeg", -1 }, /* out only */
	{ "topic jpeg both 0 \"\" house1/\n", false, "house1/jpeg", "jpeg", 0 },
	/* "" as the pattern: the prefixes alone are the topics */
	{ "topic \"\" out 0 jpeg house1/jpeg\n", true, "jpeg", "house1/jpeg", 0 },
	{ "topic \"\" in 0 cam/frame house1/jpeg\n", false, "house1/jpeg", "cam/frame", 0 },
	{ "topic \"\" out 0 jpeg house1/jpeg\n", true, "jpeg/x", "jpeg/x", -1 },
	/* both prefixes */
	{ "topic # both 0 local/ remote/\n", true, "local/a/b", "remote/a/b", 0 },
	{ "topic # both 0 local/ remote/\n", false, "remote/a/b", "local/a/b", 0 },
	{ "topic # both 0 local/ remote/\n", true, "other/a", "other/a", -1 },
	{ "topic # both 0 local/ remote/\n", false, "local/a", "local/a", -1 },
	{ "topic cmd/# in 1 pi/ central/pi/\n", false, "central/pi/cmd/on", "pi/cmd/on", 0 },
	{ "topic cmd/# in 1 pi/ central/pi/\n", true, "pi/cmd/on", "pi/cmd/on", -1 },
	/* a local prefix only: cut going out, put back coming in */
	{ "topic +/t both 0 l/ \"\"\n", true, "l/x/t", "x/t", 0 },
	{ "topic +/t both 0 l/ \"\"\n", false, "x/t", "l/x/t", 0 },
	/* the first entry that matches decides, as in mosquitto */
	{ "topic a/# out 0 \"\" r1/\ntopic a/b out 0 \"\" r2/\n", true, "a/b", "r1/a/b", 0 },
	{ "topic a/b out 0 \"\" r2/\ntopic a/# out 0 \"\" r1/\n", true, "a/b", "r2/a/b", 0 },
	{ "topic a/b out 0 \"\" r2/\ntopic a/# out 0 \"\" r1/\n", true, "a/c", "r1/a/c", 1 },
	/* entries of the other direction, and entries without prefixes, are passed over */
	{ "topic a/# in 0 \"\" r1/\ntopic a/# out 0 \"\" r2/\n", true, "a/x", "r2/a/x", 1 },
	{ "topic a/# out 0\ntopic a/# out 0 \"\" r2/\n", true, "a/x", "r2/a/x", 1 },
	/* '#' does not reach $SYS [MQTT-4.7.2-1] */
	{ "topic # out 0 \"\" r/\n", true, "$SYS/broker/uptime", "$SYS/broker/uptime", -1 },
	{ "topic $SYS/# out 0 \"\" r/\n", true, "$SYS/broker/uptime", "r/$SYS/broker/uptime", 0 },
	/* a wildcard pattern with a prefix: '+' levels stay */
	{ "topic +/temp out 1 sensors/ site1/sensors/\n", true, "sensors/k/temp", "site1/sensors/k/temp", 0 },
	{ "topic +/temp out 1 sensors/ site1/sensors/\n", true, "sensors/k/hum", "sensors/k/hum", -1 },
};

TEST(topic_mapping_table)
{
	for (size_t i = 0; i < sizeof map_cases / sizeof map_cases[0]; i++) {
		const struct map_case *k = &map_cases[i];
		char text[512], err[ERRLEN] = "";
		snprintf(text, sizeof text, HEAD "%s", k->topics);
		mg_config c;
		if (parse(&c, text, err) != 0) {
			t_fail(__FILE__, __LINE__, "case %zu: %s", i, err);
			mg_config_free(&c);
			continue;
		}
		mg_bridge_map m;
		int e = mg_bridge_map_topic(&c.bridges[0], k->out, (const uint8_t *)k->topic, strlen(k->topic), &m);
		uint8_t out[256];
		size_t n = mg_bridge_map_apply(&m, (const uint8_t *)k->topic, strlen(k->topic), out, sizeof out);
		if (e != k->entry)
			t_fail(__FILE__, __LINE__, "case %zu (%s): entry %d, expected %d", i, k->topic, e, k->entry);
		if (n != strlen(k->want) || memcmp(out, k->want, n) != 0)
			t_fail(__FILE__, __LINE__, "case %zu: %s %s -> '%.*s', expected '%s'", i,
			       k->out ? "out" : "in", k->topic, (int)n, (const char *)out, k->want);
		mg_config_free(&c);
	}
}

TEST(map_apply_bounds)
{
	mg_bridge_map m = { "abc/", 4, 0 };
	uint8_t buf[8];
	CHECK_EQ_INT(mg_bridge_map_apply(&m, (const uint8_t *)"xyzw", 4, buf, 8), 8);
	CHECK_MEM(buf, "abc/xyzw", 8);
	CHECK_EQ_INT(mg_bridge_map_apply(&m, (const uint8_t *)"xyzwv", 5, buf, 8), 0); /* no room */
	mg_bridge_map cut = { NULL, 0, 2 };
	CHECK_EQ_INT(mg_bridge_map_apply(&cut, (const uint8_t *)"l/", 2, buf, 8), 0); /* nothing left */
}

TEST(topic_entries_as_written)
{
	mg_config c;
	char err[ERRLEN] = "";
	REQUIRE(parse(&c, HEAD "topic # both 2\ntopic a/b in 1 # a comment\ntopic c\n"
	                       "topic jpeg out 0 \"\" house1/\ntopic x IN 1 l/ r/ # why\n", err) == 0);
	mg_bridge_conf *b = &c.bridges[0];
	REQUIRE(b->n_topics == 5);
	CHECK_STR(b->topics[0].pattern, "#"); /* '#' as the pattern is a topic, not a comment */
	CHECK_EQ_INT(b->topics[0].dir, MG_BRIDGE_BOTH);
	CHECK_EQ_INT(b->topics[0].qos, 2);
	CHECK(b->topics[0].local_prefix == NULL && b->topics[0].remote_prefix == NULL);
	CHECK_STR(b->topics[0].local_topic, "#");
	CHECK_STR(b->topics[1].pattern, "a/b");
	CHECK_EQ_INT(b->topics[1].dir, MG_BRIDGE_IN);
	CHECK_EQ_INT(b->topics[1].qos, 1);
	CHECK_EQ_INT(b->topics[2].dir, MG_BRIDGE_OUT); /* mosquitto's default direction and QoS */
	CHECK_EQ_INT(b->topics[2].qos, 0);
	CHECK(b->topics[3].local_prefix == NULL);
	CHECK_STR(b->topics[3].remote_prefix, "house1/");
	CHECK_STR(b->topics[3].local_topic, "jpeg");
	CHECK_STR(b->topics[3].remote_topic, "house1/jpeg");
	CHECK_EQ_INT(b->topics[4].dir, MG_BRIDGE_IN); /* directions in any case, as mosquitto */
	CHECK_STR(b->topics[4].local_topic, "l/x");
	CHECK_STR(b->topics[4].remote_topic, "r/x");
	mg_config_free(&c);
}

TEST(defaults_are_mosquittos)
{
	mg_config c;
	char err[ERRLEN] = "";
	REQUIRE(parse(&c, "connection pi\naddress central.example:1884 10.0.0.2 [::1]:1885\ntopic room/# out 1\n", err) == 0);
	REQUIRE(c.n_bridges == 1);
	mg_bridge_conf *b = &c.bridges[0];
	CHECK_STR(b->name, "pi");
	CHECK_STR(b->file, "b.conf");
	CHECK_EQ_INT(b->line, 1);
	REQUIRE(b->n_addrs == 3);
	CHECK_STR(b->addrs[0].host, "central.example");
	CHECK_EQ_INT(b->addrs[0].port, 1884);
	CHECK_STR(b->addrs[1].host, "10.0.0.2");
	CHECK_EQ_INT(b->addrs[1].port, 1883);
	CHECK_STR(b->addrs[2].host, "[::1]");
	CHECK_EQ_INT(b->addrs[2].port, 1885);
	CHECK_EQ_INT(b->protocol, 4);
	CHECK(!b->clean);
	CHECK_EQ_INT(b->local_clean, 0); /* as cleansession */
	CHECK(b->try_private && b->notifications && !b->notifications_local_only);
	CHECK(b->attempt_unsubscribe && b->outgoing_retain && !b->round_robin);
	CHECK_EQ_INT(b->start_type, MG_BRIDGE_START_AUTOMATIC);
	CHECK_EQ_INT(b->keepalive, 60);
	CHECK_EQ_INT(b->restart_timeout, 0);
	CHECK_EQ_INT(b->backoff_base, 5);
	CHECK_EQ_INT(b->backoff_cap, 30);
	CHECK_EQ_INT(b->threshold, 10);
	CHECK_EQ_INT(b->idle_timeout, 60);
	CHECK(b->notification_topic == NULL);
	char host[256], want[300];
	REQUIRE(gethostname(host, sizeof host) == 0);
	snprintf(want, sizeof want, "%s.pi", host);
	CHECK_STR(b->remote_clientid, want);
	snprintf(want, sizeof want, "local.%s.pi", host);
	CHECK_STR(b->local_clientid, want);
	mg_config_free(&c);
}

TEST(every_keyword_sets_its_field)
{
	mg_config c;
	char err[ERRLEN] = "";
	REQUIRE(parse(&c, "connection a\naddresses h1:1 h2:2\ntopic t in 2\n"
	                  "bridge_protocol_version mqttv50\ncleansession true\nlocal_cleansession false\n"
	                  "remote_clientid rc\nlocal_clientid lc\nremote_username ru\nremote_password rp\n"
	                  "local_username lu\nlocal_password lp\nkeepalive_interval 7\nrestart_timeout 3\n"
	                  "start_type lazy\nthreshold 4\nidle_timeout 9\nround_robin true\ntry_private false\n"
	                  "notifications false\nnotifications_local_only true\nnotification_topic n/t\n"
	                  "bridge_attempt_unsubscribe false\nbridge_outgoing_retain false\n"
	                  "bridge_max_packet_size 2000\nbridge_cafile /ca.pem\nbridge_capath /cadir\n"
	                  "bridge_certfile /c.pem\nbridge_keyfile /k.pem\nbridge_insecure true\n"
	                  "bridge_tls_version tlsv1.3\n"
	                  "connection b\naddress h3\ntopic u\nclientid rc2\nusername u2\npassword p2\n"
	                  "restart_timeout 2 20\nstart_type once\nbridge_protocol_version mqttv31\n"
	                  "bridge_identity id\nbridge_psk 0a0b\n", err) == 0);
	REQUIRE(c.n_bridges == 2);
	mg_bridge_conf *a = &c.bridges[0], *b = &c.bridges[1];
	CHECK_EQ_INT(a->protocol, 5);
	CHECK(a->clean);
	CHECK_EQ_INT(a->local_clean, 0);
	CHECK_STR(a->remote_clientid, "rc");
	CHECK_STR(a->local_clientid, "lc");
	CHECK_STR(a->remote_username, "ru");
	CHECK_STR(a->remote_password, "rp");
	CHECK_STR(a->local_username, "lu");
	CHECK_STR(a->local_password, "lp");
	CHECK_EQ_INT(a->keepalive, 7);
	CHECK_EQ_INT(a->restart_timeout, 3);
	CHECK_EQ_INT(a->backoff_cap, 0); /* a constant restart_timeout: no backoff */
	CHECK_EQ_INT(a->start_type, MG_BRIDGE_START_LAZY);
	CHECK_EQ_INT(a->threshold, 4);
	CHECK_EQ_INT(a->idle_timeout, 9);
	CHECK(a->round_robin && !a->try_private && !a->notifications && a->notifications_local_only);
	CHECK_STR(a->notification_topic, "n/t");
	CHECK(!a->attempt_unsubscribe && !a->outgoing_retain);
	CHECK_EQ_INT(a->max_packet_size, 2000);
	CHECK_STR(a->cafile, "/ca.pem");
	CHECK_STR(a->capath, "/cadir");
	CHECK_STR(a->certfile, "/c.pem");
	CHECK_STR(a->keyfile, "/k.pem");
	CHECK(a->tls_insecure);
	CHECK_STR(a->tls_version, "tlsv1.3");
	CHECK_STR(b->remote_clientid, "rc2");
	CHECK_STR(b->local_clientid, "local.rc2");
	CHECK_STR(b->remote_username, "u2");
	CHECK_STR(b->remote_password, "p2");
	CHECK_EQ_INT(b->restart_timeout, 2);
	CHECK_EQ_INT(b->backoff_base, 2);
	CHECK_EQ_INT(b->backoff_cap, 20);
	CHECK_EQ_INT(b->start_type, MG_BRIDGE_START_ONCE);
	CHECK_EQ_INT(b->protocol, 3);
	CHECK_STR(b->identity, "id");
	CHECK_STR(b->psk, "0a0b");
	mg_config_free(&c);

	/* values mosquitto raises to its minimum, with a notice */
	REQUIRE(parse(&c, HEAD "topic t\nkeepalive_interval 1\nrestart_timeout 0\nthreshold 0\nidle_timeout -3\n"
	                  "bridge_max_packet_size -5\n", err) == 0);
	CHECK_EQ_INT(c.bridges[0].keepalive, 5);
	CHECK_EQ_INT(c.bridges[0].restart_timeout, 1);
	CHECK_EQ_INT(c.bridges[0].threshold, 1);
	CHECK_EQ_INT(c.bridges[0].idle_timeout, 1);
	CHECK_EQ_INT(c.bridges[0].max_packet_size, 0);
	mg_config_free(&c);

	/* mosquitto 2.0's last three: the bound address, the ALPN offered, OCSP required */
	REQUIRE(parse(&c, HEAD "topic t\nbridge_cafile /ca\nbridge_bind_address 127.0.0.2\n"
	                  "bridge_alpn mqtt\nbridge_require_ocsp true\n", err) == 0);
	CHECK_STR(c.bridges[0].bind_address, "127.0.0.2");
	CHECK_STR(c.bridges[0].alpn, "mqtt");
	CHECK(c.bridges[0].require_ocsp);
	mg_config_free(&c);
	REQUIRE(parse(&c, HEAD "topic t\n", err) == 0);
	CHECK(!c.bridges[0].bind_address && !c.bridges[0].alpn && !c.bridges[0].require_ocsp);
	mg_config_free(&c);
}

TEST(errors_name_file_and_line)
{
	EXPECT_ERR("topic a out\n", "Error: b.conf:1: 'topic' is a bridge option: it belongs after a 'connection NAME' line.");
	EXPECT_ERR("address x\n", "Error: b.conf:1: 'address' is a bridge option: it belongs after a 'connection NAME' line.");
	EXPECT_ERR("connection\n", "Error: b.conf:1: 'connection' needs a value.");
	EXPECT_ERR(HEAD "topic a\nconnection b\n", "Error: b.conf:4: duplicate bridge name \"b\" (the first is at b.conf:1).");
	EXPECT_ERR("connection b\ntopic a\n", "Error: b.conf:1: bridge b: no remote address ('address HOST[:PORT]').");
	EXPECT_ERR(HEAD, "Error: b.conf:1: bridge b: no topics ('topic PATTERN [in|out|both] ...').");
	EXPECT_ERR(HEAD "address y\n", "Error: b.conf:3: 'address' given twice in bridge b (list every address on one line).");
	EXPECT_ERR("connection b\naddress h:0\n", "Error: b.conf:2: value 0 for 'address' is out of range (1 to 65535).");
	EXPECT_ERR("connection b\naddress h:x\n", "Error: b.conf:2: invalid value 'x' for 'address' (expected a whole number).");
	EXPECT_ERR(HEAD "topic\n", "Error: b.conf:3: 'topic' needs a value.");
	EXPECT_ERR(HEAD "topic a sideways\n", "Error: b.conf:3: invalid bridge topic direction 'sideways' (expected in, out or both).");
	EXPECT_ERR(HEAD "topic a out 3\n", "Error: b.conf:3: value 3 for 'topic' is out of range (0 to 2).");
	EXPECT_ERR(HEAD "topic \"\" out 0\n", "Error: b.conf:3: invalid bridge remapping: the pattern \"\" needs both "
	                                      "a local and a remote prefix.");
	EXPECT_ERR(HEAD "topic \"\" out 0 a \"\"\n", "Error: b.conf:3: invalid bridge remapping: the pattern \"\" needs both "
	                                      "a local and a remote prefix.");
	EXPECT_ERR(HEAD "topic a out 0 x/\n", "Error: b.conf:3: 'topic a': a local prefix needs a remote prefix after it (write \"\" for none).");
	EXPECT_ERR(HEAD "topic a out 0 x/+/ \"\"\n", "Error: b.conf:3: invalid bridge topic local prefix 'x/+/'.");
	EXPECT_ERR(HEAD "topic a out 0 \"\" r/#\n", "Error: b.conf:3: invalid bridge topic remote prefix 'r/#'.");
	EXPECT_ERR(HEAD "topic # out 0 \"\" r\n", "Error: b.conf:3: invalid bridge topic prefix and pattern combination 'r#'.");
	EXPECT_ERR(HEAD "topic a/#/b out\n", "Error: b.conf:3: invalid bridge topic pattern 'a/#/b'.");
	EXPECT_ERR(HEAD "topic a out 0 l/ r/ extra\n", "Error: b.conf:3: too many values for 'topic': unexpected 'extra'.");
	EXPECT_ERR(HEAD "bridge_protocol_version mqttv6\n", "Error: b.conf:3: invalid bridge_protocol_version value (mqttv6) "
	                                                   "(expected mqttv31, mqttv311 or mqttv50).");
	EXPECT_ERR(HEAD "start_type manual\n", "Error: b.conf:3: manual start_type not supported (mosquitto does not support it either).");
	EXPECT_ERR(HEAD "start_type soon\n", "Error: b.conf:3: invalid start_type value 'soon' (expected automatic, lazy or once).");
	EXPECT_ERR(HEAD "restart_timeout 20 2\n", "Error: b.conf:3: backoff cap is lower than the base in restart_timeout.");
	EXPECT_ERR(HEAD "restart_timeout 1 2 3\n", "Error: b.conf:3: too many values for 'restart_timeout': unexpected '3'.");
	EXPECT_ERR(HEAD "cleansession yes\n", "Error: b.conf:3: invalid value 'yes' for 'cleansession' (expected true or false).");
	EXPECT_ERR(HEAD "keepalive_interval 70000\n", "Error: b.conf:3: value 70000 for 'keepalive_interval' is out of range (-2147483647 to 65535).");
	EXPECT_ERR(HEAD "bridge_psk 00\nbridge_cafile /ca\n", "Error: b.conf:4: cannot use both certificate and psk encryption in a single bridge.");
	EXPECT_ERR(HEAD "bridge_certfile /c\nbridge_identity i\n", "Error: b.conf:4: cannot use both certificate and psk encryption in a single bridge.");
	EXPECT_ERR(HEAD "topic a\nbridge_psk 00\n", "Error: b.conf:1: bridge b: bridge_psk without bridge_identity.");
	EXPECT_ERR(HEAD "topic a\nbridge_identity i\nbridge_psk 00\nbridge_require_ocsp true\n",
	           "Error: b.conf:1: bridge b: bridge_require_ocsp needs the remote's certificate "
	           "(bridge_cafile or bridge_capath), not bridge_psk.");
	EXPECT_ERR(HEAD "bridge_require_ocsp maybe\n", "Error: b.conf:3: invalid value 'maybe' for 'bridge_require_ocsp' (expected true or false).");
	EXPECT_ERR(HEAD "bridge_alpn a b\n", "Error: b.conf:3: too many values for 'bridge_alpn': unexpected 'b'.");
	EXPECT_ERR(HEAD "bridge_frobnicate 1\n", "Error: b.conf:3: unknown bridge option 'bridge_frobnicate'.");
	EXPECT_ERR(HEAD "topic a\nconnection c\naddress h\ntopic b\nlocal_clientid local.x\nremote_clientid x\n"
	           "connection d\naddress h\ntopic b\nlocal_clientid local.x\n",
	           "Error: b.conf:9: bridge d: local_clientid 'local.x' is also bridge c's: set a different "
	           "local_clientid for one of them.");
}
