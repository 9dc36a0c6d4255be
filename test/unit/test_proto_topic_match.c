/*
 * test/unit/test_proto_topic_match.c - topic names, filters, matching and shared subscriptions,
 * from MQTT 5.0 section 4.7 / 4.8.2 and 3.1.1 section 4.7 (including their examples).
 */
#include "test_proto_util.h"

static bool match(const char *f, const char *n)
{
	/* exactly-sized heap copies: the matcher must not look past either end */
	size_t fl = strlen(f), nl = strlen(n);
	uint8_t *fp = malloc(fl ? fl : 1), *np = malloc(nl ? nl : 1);
	memcpy(fp, f, fl);
	memcpy(np, n, nl);
	bool r = mg_topic_match(fp, fl, np, nl);
	free(fp);
	free(np);
	return r;
}

TEST(topic_match_table)
{
	static const struct { const char *filter, *name; bool m; } c[] = {
		/* 4.7.1.2 multi-level wildcard */
		{"sport/tennis/player1/#", "sport/tennis/player1", true},
		{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
		{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
		{"sport/#", "sport", true},
		{"#", "sport/tennis", true},
		{"#", "/", true},
		{"a/#", "a/", true},
		{"a/#", "ab", false},
		{"a/#", "b/a", false},
		/* 4.7.1.3 single-level wildcard */
		{"sport/tennis/+", "sport/tennis/player1", true},
		{"sport/tennis/+", "sport/tennis/player2", true},
		{"sport/tennis/+", "sport/tennis/player1/ranking", false},
		{"sport/+", "sport", false},
		{"sport/+", "sport/", true},
		{"+", "finance", true},
		{"+/+", "/finance", true},
		{"/+", "/finance", true},
		{"+", "/finance", false},
		{"+/tennis/#", "sport/tennis/x", true},
		{"+/tennis/#", "sport/tennis", true},
		{"+/+/+", "a/b", false},
		{"a/+/c", "a//c", true},
		{"+", "", false},
		/* 4.7.2 topics beginning with $ */
		{"#", "$SYS/x", false},
		{"+/monitor/Clients", "$SYS/monitor/Clients", false},
		{"$SYS/#", "$SYS/x", true},
		{"$SYS/#", "$SYS", true},
		{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
		{"+", "$x", false},
		{"a/+", "a/$x", true},
		/* literal */
		{"a/b", "a/b", true},
		{"a/b", "a/b/", false},
		{"a/b/", "a/b/", true},
		{"a/b", "a/bc", false},
		{"a/bc", "a/b", false},
		{"/", "/", true},
		{"//", "/", false},
		{"A/b", "a/b", false},
		{"a/b/c", "a/b", false},
		{"", "a", false},
		{"a", "", false},
		/* invalid filters never match past their literal reading */
		{"a+", "a+", true},  /* "+" inside a level is no wildcard to the matcher */
		{"a/#/b", "a/x/b", true}, /* stops at '#'; filters are validated on SUBSCRIBE */
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
		if (match(c[i].filter, c[i].name) != c[i].m)
			t_fail(__FILE__, __LINE__, "\"%s\" vs \"%s\": expected %s", c[i].filter, c[i].name,
			       c[i].m ? "match" : "no match");
}

TEST(topic_name_check)
{
	static const struct { const char *t; int e; } c[] = {
		{"a", MG_OK}, {"a/b", MG_OK}, {"/", MG_OK}, {"$SYS/x", MG_OK}, {" ", MG_OK},
		{"", MG_E_TOPIC_EMPTY}, {"+", MG_E_TOPIC_WILDCARD}, {"a/#", MG_E_TOPIC_WILDCARD},
		{"a+b", MG_E_TOPIC_WILDCARD}, {"\xC0\xAF", MG_E_UTF8}, {"caf\xC3\xA9", MG_OK},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int e = mg_topic_name_check((const uint8_t *)c[i].t, strlen(c[i].t));
		if (e != c[i].e)
			t_fail(__FILE__, __LINE__, "\"%s\": %d, expected %d", c[i].t, e, c[i].e);
	}
	CHECK_EQ_INT(mg_topic_name_check((const uint8_t *)"a\0b", 3), MG_E_UTF8_NUL);
	/* 65,535 bytes is the longest; one more cannot be encoded */
	uint8_t *big = malloc(65536);
	memset(big, 'x', 65536);
	CHECK_EQ_INT(mg_topic_name_check(big, 65535), MG_OK);
	CHECK_EQ_INT(mg_topic_name_check(big, 65536), MG_E_ARG);
	free(big);
}

/* Names of 8 bytes and more are cleared 8 bytes at a time: one byte that is not plain ASCII
 * at any position of any length, in the last overlapping word too, must still be found. */
TEST(topic_name_check_every_position)
{
	static const struct { uint8_t b; int e; } bad[] = {
		{'+', MG_E_TOPIC_WILDCARD}, {'#', MG_E_TOPIC_WILDCARD}, {0, MG_E_UTF8_NUL},
		{0x80, MG_E_UTF8}, {0xFF, MG_E_UTF8}, {0xC3, MG_E_UTF8}, /* C3 truncated at the end */
	};
	uint8_t t[40];
	for (size_t len = 1; len <= sizeof t; len++) {
		for (size_t i = 0; i < len; i++)
			t[i] = i % 5 == 4 ? '/' : (uint8_t)('a' + i % 26);
		CHECK_EQ_INT(mg_topic_name_check(t, len), MG_OK);
		for (size_t at = 0; at < len; at++) {
			uint8_t was = t[at];
			for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
				t[at] = bad[k].b;
				int want = bad[k].e;
				if (bad[k].b == 0xC3 && at + 1 < len)
					want = MG_E_UTF8; /* C3 followed by ASCII: a broken sequence as well */
				int e = mg_topic_name_check(t, len);
				if (e != want)
					t_fail(__FILE__, __LINE__, "length %zu, byte 0x%02X at %zu: %d, expected %d",
					       len, bad[k].b, at, e, want);
			}
			/* a valid two-byte character (U+00E9) there is fine */
			if (at + 1 < len) {
				uint8_t next = t[at + 1];
				t[at] = 0xC3;
				t[at + 1] = 0xA9;
				CHECK_EQ_INT(mg_topic_name_check(t, len), MG_OK);
				t[at + 1] = next;
			}
			t[at] = was;
		}
	}
}

TEST(topic_filter_check)
{
	static const struct { const char *f; int e; } c[] = {
		{"#", MG_OK}, {"+", MG_OK}, {"a/#", MG_OK}, {"+/+", MG_OK}, {"/+", MG_OK},
		{"+/tennis/#", MG_OK}, {"sport/tennis/+", MG_OK}, {"a//b", MG_OK}, {"/", MG_OK},
		{"$SYS/#", MG_OK}, {"$share/g/a", MG_OK}, /* a plain filter here; see mg_share_parse */
		{"", MG_E_TOPIC_EMPTY}, {"sport/tennis#", MG_E_FILTER}, {"sport/tennis/#/ranking", MG_E_FILTER},
		{"sport+", MG_E_FILTER}, {"+sport", MG_E_FILTER}, {"a/+b/c", MG_E_FILTER}, {"##", MG_E_FILTER},
		{"#/", MG_E_FILTER}, {"++", MG_E_FILTER}, {"a/\xED\xA0\x80", MG_E_UTF8},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int e = mg_topic_filter_check((const uint8_t *)c[i].f, strlen(c[i].f));
		if (e != c[i].e)
			t_fail(__FILE__, __LINE__, "\"%s\": %d, expected %d", c[i].f, e, c[i].e);
	}
}

TEST(share_parse)
{
	mg_bytes g, f;
	const char *s = "$share/grp/a/+/c";
	CHECK_EQ_INT(mg_share_parse((const uint8_t *)s, strlen(s), &g, &f), 1);
	CHECK_BYTES(g, "grp");
	CHECK_BYTES(f, "a/+/c");
	s = "$share/g/#";
	CHECK_EQ_INT(mg_share_parse((const uint8_t *)s, strlen(s), &g, &f), 1);
	CHECK_BYTES(f, "#");
	static const struct { const char *f; int r; } c[] = {
		{"a/b", 0}, {"$share", 0}, {"$SYS/x", 0}, {"$shared/g/a", 0}, {"$Share/g/a", 0},
		{"$share/", MG_E_FILTER_SHARE}, {"$share//a", MG_E_FILTER_SHARE},
		{"$share/g", MG_E_FILTER_SHARE}, {"$share/g/", MG_E_FILTER_SHARE},
		{"$share/g+/a", MG_E_FILTER_SHARE}, {"$share/#/a", MG_E_FILTER_SHARE},
		{"$share/g/a#", MG_E_FILTER}, {"$share/g/a/#/b", MG_E_FILTER},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int r = mg_share_parse((const uint8_t *)c[i].f, strlen(c[i].f), &g, &f);
		if (r != c[i].r)
			t_fail(__FILE__, __LINE__, "\"%s\": %d, expected %d", c[i].f, r, c[i].r);
	}
}

TEST(topic_next_level)
{
	static const struct { const char *t; int n; const char *levels[5]; } c[] = {
		{"a/b/c", 3, {"a", "b", "c"}},
		{"/finance", 2, {"", "finance"}},
		{"a/", 2, {"a", ""}},
		{"a", 1, {"a"}},
		{"//", 3, {"", "", ""}},
		{"$SYS/+/#", 3, {"$SYS", "+", "#"}},
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		size_t off = 0, len = strlen(c[i].t);
		mg_bytes lv;
		int k = 0;
		while (mg_topic_next_level((const uint8_t *)c[i].t, len, &off, &lv)) {
			REQUIRE(k < 5);
			if (k < c[i].n && !bytes_is(lv, c[i].levels[k]))
				t_fail(__FILE__, __LINE__, "\"%s\" level %d: \"%.*s\"", c[i].t, k, (int)lv.len,
				       (const char *)lv.p);
			CHECK(lv.p >= (const uint8_t *)c[i].t && lv.p + lv.len <= (const uint8_t *)c[i].t + len);
			k++;
		}
		if (k != c[i].n)
			t_fail(__FILE__, __LINE__, "\"%s\": %d levels, expected %d", c[i].t, k, c[i].n);
	}
}

/* The reference for the test below: the spec's matching rules (4.7) written out again over
 * plain C strings, sharing no code with proto/ (its own level split), so the matcher is not
 * checked against itself. Levels are at most 7 of up to 15 bytes in the tables below. */
enum { REF_LEVELS = 8, REF_LEN = 16 };

static int ref_split(const char *s, char lv[REF_LEVELS][REF_LEN])
{
	int n = 0;
	size_t k = 0;
	for (;; s++) {
		if (*s == '/' || *s == '\0') {
			lv[n][k] = '\0';
			n++;
			k = 0;
			if (*s == '\0' || n == REF_LEVELS)
				return n;
		} else if (k + 1 < REF_LEN) {
			lv[n][k++] = *s;
		}
	}
}

static bool ref_match(const char *filter, const char *name)
{
	char f[REF_LEVELS][REF_LEN], t[REF_LEVELS][REF_LEN];
	if (name[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return false; /* [MQTT-4.7.2-1] */
	int nf = ref_split(filter, f), nt = ref_split(name, t);
	for (int i = 0; i < nf; i++) {
		if (strcmp(f[i], "#") == 0)
			return true; /* also the parent level: "a/#" matches "a" [MQTT-4.7.1-2] */
		if (i >= nt)
			return false;
		if (strcmp(f[i], "+") != 0 && strcmp(f[i], t[i]) != 0)
			return false;
	}
	return nf == nt;
}

TEST(match_agrees_with_reference)
{
	/* every pair of these, against the independent reference above */
	static const char *const filters[] = {"#", "+", "a/#", "a/+", "+/b", "a/b", "+/+", "/+", "a/+/#",
	                                      "$SYS/#", "+/#", "a//#", "a/b/", "/"};
	static const char *const names[] = {"a", "a/b", "a/b/c", "/", "/b", "a/", "$SYS/x", "$SYS",
	                                    "b", "a//c", "a/b/", "//"};
	for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
		for (size_t j = 0; j < sizeof names / sizeof names[0]; j++) {
			bool want = ref_match(filters[i], names[j]);
			if (match(filters[i], names[j]) != want)
				t_fail(__FILE__, __LINE__, "\"%s\" vs \"%s\": expected %d", filters[i], names[j], want);
		}
}

TEST(reference_matcher_spot_checks)
{
	/* the reference itself, on the spec's own examples (4.7.1.2, 4.7.1.3, 4.7.2) */
	CHECK(ref_match("sport/tennis/player1/#", "sport/tennis/player1"));
	CHECK(ref_match("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
	CHECK(ref_match("sport/#", "sport"));
	CHECK(ref_match("sport/tennis/+", "sport/tennis/player1"));
	CHECK(!ref_match("sport/tennis/+", "sport/tennis/player1/ranking"));
	CHECK(!ref_match("sport/+", "sport"));
	CHECK(ref_match("sport/+", "sport/"));
	CHECK(ref_match("+/+", "/finance"));
	CHECK(ref_match("/+", "/finance"));
	CHECK(!ref_match("+", "/finance"));
	CHECK(!ref_match("#", "$SYS/x"));
	CHECK(ref_match("$SYS/#", "$SYS/x"));
	CHECK(!ref_match("+/monitor/Clients", "$SYS/monitor/Clients"));
}
