/*
 * proto/topic.c - topic names, topic filters, matching and shared subscriptions
 * (MQTT 5.0 section 4.7 and 4.8.2; 3.1.1 section 4.7).
 *
 * '+' and '#' are ASCII and never appear inside a multi-byte UTF-8 sequence, so the byte scans
 * below are correct on UTF-8 without decoding it.
 */
#include "proto/codec.h"

/* Nonzero if a byte of v is 0, '+', '#' or >= 0x80. Never misses one; may flag a byte above
 * one that is (borrows), which only sends the caller to its exact byte loop. */
static inline uint64_t special_bytes(uint64_t v)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	uint64_t plus = v ^ (ones * '+'), hash = v ^ (ones * '#');
	return (v | ((v - ones) & ~v) | ((plus - ones) & ~plus) | ((hash - ones) & ~hash)) & highs;
}

int mg_topic_name_check(const uint8_t *t, size_t len)
{
	if (len == 0)
		return MG_E_TOPIC_EMPTY; /* [MQTT-4.7.3-1] */
	if (len > 65535)
		return MG_E_ARG;
	/* Every PUBLISH runs this (3-5% of the broker's time in pairs10-q0 and fanin100-q0 with
	 * the byte loop alone): a plain ASCII name without wildcards is cleared 8 bytes at a
	 * time (the last word overlaps the one before); anything else, or a name shorter than
	 * 8 bytes, takes the byte loop below. */
	if (len >= 8) {
		uint64_t v, any = 0;
		for (size_t i = 0; i + 8 <= len; i += 8) {
			memcpy(&v, t + i, 8);
			any |= special_bytes(v);
		}
		memcpy(&v, t + len - 8, 8);
		if (!(any | special_bytes(v)))
			return MG_OK;
	}
	/* One pass for the common all-ASCII name; UTF-8 is checked only if a byte needs it. */
	bool ascii = true;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = t[i];
		if (c == '+' || c == '#')
			return MG_E_TOPIC_WILDCARD; /* [MQTT-3.3.2-2] */
		if (c == 0 || c >= 0x80)
			ascii = false;
	}
	return ascii ? MG_OK : mg_utf8_check(t, len);
}

int mg_topic_filter_check(const uint8_t *f, size_t len)
{
	if (len == 0)
		return MG_E_TOPIC_EMPTY; /* [MQTT-4.7.3-1] */
	if (len > 65535)
		return MG_E_ARG;
	for (size_t i = 0; i < len; i++) {
		bool level_start = i == 0 || f[i - 1] == '/';
		if (f[i] == '#') {
			/* the whole last level [MQTT-4.7.1-2] (3.1.1 numbering) */
			if (!level_start || i + 1 != len)
				return MG_E_FILTER;
		} else if (f[i] == '+') {
			/* a whole level [MQTT-4.7.1-3] */
			if (!level_start || (i + 1 < len && f[i + 1] != '/'))
				return MG_E_FILTER;
		}
	}
	return mg_utf8_check(f, len);
}

/*
 * One pass over both strings, level by level, no copies. Filters are assumed valid (checked
 * on SUBSCRIBE); an invalid one never matches more than its literal reading and never makes
 * this read out of bounds.
 */
bool mg_topic_match(const uint8_t *filter, size_t flen, const uint8_t *name, size_t nlen)
{
	size_t i = 0, j = 0;
	if (flen == 0 || nlen == 0)
		return false;
	/* [MQTT-4.7.2-1]: a leading wildcard does not match a name starting with '$'. */
	if (name[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return false;
	for (;;) {
		/* here i and j are both at the start of a level */
		if (i < flen && filter[i] == '#')
			return true;
		if (i < flen && filter[i] == '+') {
			i++;
			while (j < nlen && name[j] != '/')
				j++;
		} else {
			while (i < flen && filter[i] != '/') {
				if (j >= nlen || name[j] != filter[i])
					return false;
				i++;
				j++;
			}
			if (j < nlen && name[j] != '/')
				return false;
		}
		if (i == flen)
			return j == nlen;
		if (filter[i] != '/')
			return false; /* invalid filter such as "a+" */
		if (j == nlen) /* name has no more levels: only "x/#" still matches "x" */
			return flen - i == 2 && filter[i + 1] == '#';
		i++;
		j++;
	}
}

int mg_share_parse(const uint8_t *f, size_t len, mg_bytes *group, mg_bytes *filter)
{
	static const char pfx[] = "$share/";
	const size_t plen = sizeof pfx - 1;
	if (len < plen || memcmp(f, pfx, plen) != 0)
		return 0;
	size_t g = plen, k = plen;
	while (k < len && f[k] != '/') {
		if (f[k] == '+' || f[k] == '#')
			return MG_E_FILTER_SHARE; /* [MQTT-4.8.2-2] */
		k++;
	}
	if (k == g || k >= len - 1)
		return MG_E_FILTER_SHARE; /* empty ShareName [MQTT-4.8.2-1] or no filter after it */
	int e = mg_utf8_check(f + g, k - g);
	if (e)
		return e;
	e = mg_topic_filter_check(f + k + 1, len - k - 1);
	if (e)
		return e;
	if (group) {
		group->p = f + g;
		group->len = (uint32_t)(k - g);
	}
	if (filter) {
		filter->p = f + k + 1;
		filter->len = (uint32_t)(len - k - 1);
	}
	return 1;
}

int mg_topic_next_level(const uint8_t *t, size_t len, size_t *off, mg_bytes *level)
{
	size_t s = *off;
	if (s > len)
		return 0;
	const uint8_t *slash = s < len ? memchr(t + s, '/', len - s) : NULL;
	size_t e = slash ? (size_t)(slash - t) : len;
	level->p = t ? t + s : t;
	level->len = (uint32_t)(e - s);
	*off = e + 1;
	return 1;
}
