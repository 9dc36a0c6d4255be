/*
 * test/fuzz/fuzz_broker_cluster_subject.c - the MQTT <-> NATS subject mapping
 * (broker/cluster_subject.c). Input: a filter, a 0 byte, a topic (no 0 byte: the whole input
 * is the topic, and the filter is "#").
 *   - a valid topic maps to a subject that maps back to the same bytes;
 *   - any bytes that map back to a topic are exactly what that topic maps to (one spelling
 *     per topic: the mapping is a bijection, so two subjects never merge two topics);
 *   - for a valid filter and a valid topic, some subject of the filter matches the topic's
 *     subject under NATS's rules exactly when MQTT matching says the filter matches;
 *   - a valid topic's KV key uses NATS's key alphabet with no empty token, and two different
 *     topics (the filter part read as a topic) never share a key.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/cluster_subject.h"
#include "proto/proto.h"

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)

static char ts[MG_CSUBJ_MAX + 1], ts2[MG_CSUBJ_MAX + 1], fs[2 * MG_CSUBJ_MAX + 2];
static uint8_t back[MG_CSUBJ_MAX];
static char k1[MG_CSUBJ_MAX + 1], k2[MG_CSUBJ_MAX + 1];

static void check_key(const char *k, int n)
{
	MUST(n > 0 && k[0] != '.' && k[n - 1] != '.');
	for (int i = 0; i < n; i++) {
		char ch = k[i];
		MUST((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		     ch == '_' || ch == '-' || ch == '=' || ch == '.');
		MUST(!(ch == '.' && k[i + 1] == '.'));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *z = memchr(data, 0, size);
	const uint8_t *filter = (const uint8_t *)"#", *topic = data;
	size_t flen = 1, tlen = size;
	if (z) {
		filter = data;
		flen = (size_t)(z - data);
		topic = z + 1;
		tlen = size - flen - 1;
	}

	/* the input's topic part read as a subject: if it maps back, it is the only spelling */
	int n = mg_csubj_to_topic((const char *)topic, tlen, back, sizeof back);
	MUST(n == -EINVAL || n == -E2BIG || n > 0);
	if (n > 0) {
		int m = mg_csubj_from_topic(back, (size_t)n, ts2, sizeof ts2);
		MUST(m == (int)tlen && memcmp(ts2, topic, tlen) == 0);
	}

	if (mg_topic_name_check(topic, tlen) != MG_OK)
		return 0;
	int tl = mg_csubj_from_topic(topic, tlen, ts, sizeof ts);
	MUST(tl > 0 || tl == -E2BIG);
	if (tl < 0)
		return 0;
	MUST((size_t)tl <= MG_CSUBJ_MAX && strlen(ts) == (size_t)tl);
	n = mg_csubj_to_topic(ts, (size_t)tl, back, sizeof back);
	MUST(n == (int)tlen && memcmp(back, topic, tlen) == 0);

	int kn = mg_csubj_kv_key(topic, tlen, k1, sizeof k1);
	MUST(kn > 0 || kn == -E2BIG);
	if (kn > 0) {
		check_key(k1, kn);
		if (z && mg_topic_name_check(filter, flen) == MG_OK) {
			int kn2 = mg_csubj_kv_key(filter, flen, k2, sizeof k2);
			if (kn2 > 0)
				MUST((kn == kn2 && memcmp(k1, k2, (size_t)kn) == 0) ==
				     (flen == tlen && memcmp(filter, topic, tlen) == 0));
		}
	}

	if (mg_topic_filter_check(filter, flen) != MG_OK || mg_share_parse(filter, flen, NULL, NULL) != 0)
		return 0;
	int k = mg_csubj_from_filter(filter, flen, fs, sizeof fs);
	MUST(k == 1 || k == 2 || k == -E2BIG);
	bool nats = false;
	const char *s = fs;
	for (int i = 0; i < k; i++, s += strlen(s) + 1) {
		MUST(strlen(s) <= MG_CSUBJ_MAX);
		nats |= mg_csubj_match(s, strlen(s), ts, (size_t)tl);
	}
	/* a filter too long to subscribe matches only topics too long to send (tl fits here) */
	MUST(nats == mg_topic_match(filter, flen, topic, tlen));
	return 0;
}
