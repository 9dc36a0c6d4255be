/*
 * test/unit/test_broker_cluster_subject.c - MQTT topics and filters as NATS subjects
 * (broker/cluster_subject.c, docs/cluster.md): the documented examples byte for byte, the
 * way back, what the way back refuses, the length limit, and for a table of filters x topics
 * that NATS matching of the mapped subjects agrees with MQTT matching.
 */
#include "t.h"

#include <errno.h>

#include "broker/cluster_subject.h"
#include "proto/proto.h"

#define U(s) (const uint8_t *)(s), strlen(s)

static const struct { const char *topic, *subject; } topics[] = {
	{ "room/temp", "mqtt.room.temp" },
	{ "a.b/c d", "mqtt.a%2Eb.c%20d" },
	{ "/x", "mqtt.%.x" },
	{ "a//b/", "mqtt.a.%.b.%" },
	{ "/", "mqtt.%.%" },
	{ "50%/*/>", "mqtt.50%25.%2A.%3E" },
	{ "$devices/7/state", "mqtt$.$devices.7.state" },
	{ "$SYS", "mqtt$.$SYS" },
	{ "a$/b", "mqtt.a$.b" },
	{ "tab\there\r\n", "mqtt.tab%09here%0D%0A" },
	{ "del\x7f", "mqtt.del%7F" },
	{ "caf\xc3\xa9/\xe2\x82\xac", "mqtt.caf\xc3\xa9.\xe2\x82\xac" },
	{ "a*b>c", "mqtt.a%2Ab%3Ec" },
	{ "x", "mqtt.x" },
};

TEST(topic_to_subject_examples)
{
	for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
		char out[256];
		int n = mg_csubj_from_topic(U(topics[i].topic), out, sizeof out);
		CHECK_EQ_INT(n, strlen(topics[i].subject));
		CHECK_STR(out, topics[i].subject);
	}
}

TEST(subject_to_topic_examples)
{
	for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++) {
		uint8_t out[256];
		int n = mg_csubj_to_topic(topics[i].subject, strlen(topics[i].subject), out, sizeof out);
		CHECK_EQ_INT(n, strlen(topics[i].topic));
		if (n > 0)
			CHECK_MEM(out, topics[i].topic, (size_t)n);
	}
}

TEST(subject_to_topic_refuses_what_no_topic_maps_to)
{
	static const char *bad[] = {
		"", "mqtt", "mqtt.", "mqtt$.", "mqt.a", "nats.a", "mqtt..a", "mqtt.a.", "mqtt.a..b",
		"mqtt.*", "mqtt.a.>", "mqtt.a b", "mqtt.%2", "mqtt.%zz", "mqtt.%2e", /* lower case */
		"mqtt.%41",   /* 'A' needs no escape: two spellings would name one topic */
		"mqtt.a%",    /* a lone % is only the empty level */
		"mqtt.%%",
		"mqtt.$x",    /* '$' topics live in mqtt$. */
		"mqtt$.x",    /* and only they */
		"mqtt.a\tb", "mqtt.a%",
		"mqtt.L/x",   /* '/' is the '.' between tokens: "L/x" maps to mqtt.L.x */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint8_t out[64];
		int n = mg_csubj_to_topic(bad[i], strlen(bad[i]), out, sizeof out);
		if (n != -EINVAL)
			t_fail(__FILE__, __LINE__, "\"%s\" gave %d, expected -EINVAL", bad[i], n);
	}
	uint8_t small[3];
	CHECK_EQ_INT(mg_csubj_to_topic("mqtt.abcd", 9, small, sizeof small), -E2BIG);
}

TEST(empty_topic_is_refused)
{
	char out[16];
	CHECK_EQ_INT(mg_csubj_from_topic((const uint8_t *)"", 0, out, sizeof out), -EINVAL);
}

TEST(length_limit)
{
	static uint8_t t[MG_CSUBJ_MAX];
	static char out[2 * MG_CSUBJ_MAX + 2];
	memset(t, 'a', sizeof t);
	/* "mqtt." + n bytes: exactly MG_CSUBJ_MAX fits, one more does not */
	size_t n = MG_CSUBJ_MAX - 5;
	CHECK_EQ_INT(mg_csubj_from_topic(t, n, out, sizeof out), MG_CSUBJ_MAX);
	CHECK_EQ_INT(mg_csubj_from_topic(t, n + 1, out, sizeof out), -E2BIG);
	/* escapes count three bytes each */
	t[0] = '.';
	CHECK_EQ_INT(mg_csubj_from_topic(t, n - 2, out, sizeof out), MG_CSUBJ_MAX);
	CHECK_EQ_INT(mg_csubj_from_topic(t, n - 1, out, sizeof out), -E2BIG);
	/* the caller's buffer limits too, and the NUL needs its byte */
	CHECK_EQ_INT(mg_csubj_from_topic(U("ab"), out, 8), 7);
	CHECK_EQ_INT(mg_csubj_from_topic(U("abc"), out, 8), -E2BIG);
	/* a filter: both subjects must fit */
	memset(t, 'a', sizeof t);
	t[n - 2] = '/';
	t[n - 1] = '#';
	CHECK_EQ_INT(mg_csubj_from_filter(t, n, out, sizeof out), 2);
	t[n - 1] = '+'; /* "aaa/+": MG_CSUBJ_MAX, then "aaa/+/#": two over */
	CHECK_EQ_INT(mg_csubj_from_filter(t, n, out, sizeof out), 1);
	CHECK_EQ_INT(strlen(out), MG_CSUBJ_MAX);
	t[n] = '/';
	t[n + 1] = '#';
	/* its ".>" subject is over, and would match only topics that are never sent; the parent
	 * level still fits and is subscribed alone */
	CHECK_EQ_INT(mg_csubj_from_filter(t, n + 2, out, sizeof out), 1);
	CHECK_EQ_INT(strlen(out), MG_CSUBJ_MAX);
	CHECK_EQ_INT(out[MG_CSUBJ_MAX - 1], '*');
	t[n - 1] = 'a'; /* "aaa/aa/#": neither fits */
	t[n] = 'a';
	t[n + 1] = '/';
	t[n + 2] = '#';
	CHECK_EQ_INT(mg_csubj_from_filter(t, n + 3, out, sizeof out), -E2BIG);
}

static const struct { const char *filter, *s1, *s2; } filters[] = {
	{ "room/temp", "mqtt.room.temp", NULL },
	{ "room/+", "mqtt.room.*", NULL },
	{ "room/#", "mqtt.room.>", "mqtt.room" },
	{ "#", "mqtt.>", NULL },
	{ "+", "mqtt.*", NULL },
	{ "+/+", "mqtt.*.*", NULL },
	{ "+/#", "mqtt.*.>", "mqtt.*" },
	{ "$SYS/#", "mqtt$.$SYS.>", "mqtt$.$SYS" },
	{ "$SYS/+/x", "mqtt$.$SYS.*.x", NULL },
	{ "/#", "mqtt.%.>", "mqtt.%" },
	{ "a//+", "mqtt.a.%.*", NULL },
	{ "a.b/+/c d/#", "mqtt.a%2Eb.*.c%20d.>", "mqtt.a%2Eb.*.c%20d" },
	{ "a+/b#", "mqtt.a+.b#", NULL }, /* not a valid filter, but plain bytes all the same */
};

TEST(filter_to_subjects_examples)
{
	for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
		char out[512];
		int n = mg_csubj_from_filter(U(filters[i].filter), out, sizeof out);
		CHECK_EQ_INT(n, filters[i].s2 ? 2 : 1);
		CHECK_STR(out, filters[i].s1);
		if (n == 2)
			CHECK_STR(out + strlen(out) + 1, filters[i].s2);
	}
}

TEST(nats_matching)
{
	static const struct { const char *p, *s; bool m; } v[] = {
		{ "a.b", "a.b", true }, { "a.b", "a.c", false }, { "a.*", "a.b", true },
		{ "a.*", "a", false }, { "a.*", "a.b.c", false }, { "a.>", "a.b.c", true },
		{ "a.>", "a", false }, { "a.>", "a.b", true }, { "*.b", "a.b", true },
		{ ">", "a", true }, { "a", "ab", false }, { "ab", "a", false }, { "a.b", "a", false },
		{ "a", "a.b", false }, { "*", "a.b", false }, { "*.*", "a.b", true },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		if (mg_csubj_match(v[i].p, strlen(v[i].p), v[i].s, strlen(v[i].s)) != v[i].m)
			t_fail(__FILE__, __LINE__, "%s vs %s: expected %d", v[i].p, v[i].s, v[i].m);
}

/* Some subject of the filter matches the topic's subject exactly when MQTT matches. */
static bool nats_says(const char *filter, const char *topic)
{
	char fs[512], ts[512];
	int n = mg_csubj_from_filter(U(filter), fs, sizeof fs);
	int tl = mg_csubj_from_topic(U(topic), ts, sizeof ts);
	if (n < 0 || tl < 0)
		return false;
	const char *s = fs;
	for (int k = 0; k < n; k++, s += strlen(s) + 1)
		if (mg_csubj_match(s, strlen(s), ts, (size_t)tl))
			return true;
	return false;
}

TEST(filter_mapping_matches_as_mqtt_does)
{
	static const char *fl[] = {
		"#", "+", "+/+", "+/#", "a", "a/#", "a/+", "a/+/c", "a/b", "/#", "/+", "+/", "//",
		"$SYS/#", "$SYS/+", "+/broker", "$x/#", "$x", "a/b/#", "a/+/#", "a.b/#", "a%2E/+",
		"%", "*", ">", "a b",
	};
	static const char *tl[] = {
		"a", "a/b", "a/b/c", "a/", "/a", "/", "//", "$SYS", "$SYS/broker", "$x", "$x/y",
		"a.b", "a.b/c", "a%2E/q", "%", "*", ">", "a b", "b", "a/c/c", "x/broker",
	};
	int agreed = 0, matched = 0;
	for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++)
		for (size_t j = 0; j < sizeof tl / sizeof tl[0]; j++) {
			bool mq = mg_topic_match(U(fl[i]), U(tl[j]));
			if (nats_says(fl[i], tl[j]) != mq)
				t_fail(__FILE__, __LINE__, "filter %s, topic %s: MQTT says %d, NATS not", fl[i], tl[j], mq);
			else
				agreed++;
			matched += mq;
		}
	CHECK(matched > 40); /* the table is not all misses */
	CHECK_EQ_INT(agreed, (sizeof fl / sizeof fl[0]) * (sizeof tl / sizeof tl[0]));
}

TEST(kv_keys)
{
	static const struct { const char *topic, *key; } v[] = {
		{ "room/temp", "room.temp" },
		{ "$SYS/x", "=24SYS.x" },
		{ "a.b/c d", "a=2Eb.c=20d" },
		{ "/", "=.=" },
		{ "a//b/", "a.=.b.=" },
		{ "x=y/%", "x=3Dy.=25" },
		{ "caf\xc3\xa9", "caf=C3=A9" },
		{ "A-z_9", "A-z_9" },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char out[64];
		int n = mg_csubj_kv_key(U(v[i].topic), out, sizeof out);
		CHECK_EQ_INT(n, strlen(v[i].key));
		CHECK_STR(out, v[i].key);
	}
	char out[8];
	CHECK_EQ_INT(mg_csubj_kv_key((const uint8_t *)"", 0, out, sizeof out), -EINVAL);
	CHECK_EQ_INT(mg_csubj_kv_key(U("abcdefgh"), out, sizeof out), -E2BIG);
}
