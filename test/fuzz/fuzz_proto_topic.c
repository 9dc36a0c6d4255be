/*
 * test/fuzz/fuzz_proto_topic.c - topic checks, matching and $share parsing on arbitrary input split
 * in two (first byte picks the split). mg_topic_match is compared with a slow matcher built
 * on mg_topic_next_level; the level walk must rebuild the string it walked.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)

static bool is_level(mg_bytes l, char c)
{
	return l.len == 1 && l.p[0] == c;
}

static bool slow_match(const uint8_t *f, size_t fl, const uint8_t *n, size_t nl)
{
	if (fl == 0 || nl == 0)
		return false;
	if (n[0] == '$' && (f[0] == '+' || f[0] == '#'))
		return false;
	size_t fo = 0, no = 0;
	mg_bytes a, b;
	for (;;) {
		int hf = mg_topic_next_level(f, fl, &fo, &a);
		int hn = mg_topic_next_level(n, nl, &no, &b);
		if (hf && is_level(a, '#'))
			return true;
		if (!hf || !hn)
			return !hf && !hn;
		if (is_level(a, '+'))
			continue;
		if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0)
			return false;
	}
}

static void walk_rebuilds(const uint8_t *t, size_t len)
{
	size_t off = 0, pos = 0;
	mg_bytes l;
	int levels = 0;
	while (mg_topic_next_level(t, len, &off, &l)) {
		MUST(l.p == t + pos || len == 0);
		MUST(memchr(l.p, '/', l.len) == NULL);
		pos += l.len;
		if (pos < len) {
			MUST(t[pos] == '/');
			pos++;
		}
		MUST(++levels <= (int)len + 1);
	}
	MUST(pos == len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t split = data[0] % size;
	size_t fl = split, nl = size - 1 - split;
	uint8_t *f = malloc(fl ? fl : 1), *n = malloc(nl ? nl : 1);
	memcpy(f, data + 1, fl);
	memcpy(n, data + 1 + fl, nl);

	int fe = mg_topic_filter_check(f, fl);
	int ne = mg_topic_name_check(n, nl);
	mg_bytes g, sf;
	int s = mg_share_parse(f, fl, &g, &sf);
	MUST(s == 0 || s == 1 || s < 0);
	if (s == 1) {
		MUST(g.len > 0 && sf.len > 0 && g.p > f && sf.p + sf.len == f + fl);
		MUST(mg_topic_filter_check(sf.p, sf.len) == MG_OK);
	}
	bool m = mg_topic_match(f, fl, n, nl);
	if (fe == MG_OK && ne == MG_OK)
		MUST(m == slow_match(f, fl, n, nl));
	if (ne == MG_OK) {
		MUST(mg_topic_filter_check(n, nl) == MG_OK); /* every name is a filter */
		MUST(mg_topic_match(n, nl, n, nl));          /* that matches itself */
	}
	walk_rebuilds(f, fl);
	walk_rebuilds(n, nl);
	free(f);
	free(n);
	return 0;
}
