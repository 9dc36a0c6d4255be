/*
 * broker/cluster_subject.c - MQTT topics and filters <-> NATS subjects (cluster_subject.h,
 * docs/cluster.md). One pass over the bytes; nothing is allocated.
 */
#include "broker/cluster_subject.h"

#include <errno.h>
#include <string.h>

static const char hex[] = "0123456789ABCDEF";

/* Bytes NATS cannot carry inside a token: its separator, its wildcards when they stand alone
 * (escaped always, so a level "*" can never read as a wildcard), our escape, and anything
 * the protocol line would split on or a terminal would mangle. */
static bool must_escape(uint8_t c)
{
	return c <= 0x20 || c == 0x7f || c == '.' || c == '*' || c == '>' || c == '%';
}

typedef struct wbuf {
	char *p;
	size_t n, cap;
	bool over;
} wbuf;

static void put(wbuf *w, const char *s, size_t n)
{
	if (w->over || w->n + n > w->cap) {
		w->over = true;
		return;
	}
	memcpy(w->p + w->n, s, n);
	w->n += n;
}

static void put_level(wbuf *w, const uint8_t *l, size_t n)
{
	if (n == 0) {
		put(w, "%", 1);
		return;
	}
	size_t run = 0; /* plain bytes go in runs: most levels need no escape at all */
	for (size_t i = 0; i < n; i++) {
		if (!must_escape(l[i]))
			continue;
		put(w, (const char *)l + run, i - run);
		char e[3] = { '%', hex[l[i] >> 4], hex[l[i] & 15] };
		put(w, e, 3);
		run = i + 1;
	}
	put(w, (const char *)l + run, n - run);
}

/* The limit is the smaller of the caller's buffer (less the NUL) and MG_CSUBJ_MAX. */
static size_t limit(size_t cap)
{
	size_t room = cap ? cap - 1 : 0;
	return room < MG_CSUBJ_MAX ? room : MG_CSUBJ_MAX;
}

static void put_prefix(wbuf *w, const uint8_t *t, size_t len)
{
	if (len && t[0] == '$')
		put(w, "mqtt$", 5);
	else
		put(w, "mqtt", 4);
}

int mg_csubj_from_topic(const uint8_t *topic, size_t len, char *out, size_t cap)
{
	if (len == 0)
		return -EINVAL;
	wbuf w = { out, 0, limit(cap), false };
	put_prefix(&w, topic, len);
	size_t start = 0;
	for (size_t i = 0; i <= len; i++)
		if (i == len || topic[i] == '/') {
			put(&w, ".", 1);
			put_level(&w, topic + start, i - start);
			start = i + 1;
		}
	if (w.over)
		return -E2BIG;
	out[w.n] = 0;
	return (int)w.n;
}

static bool kv_plain(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

int mg_csubj_kv_key(const uint8_t *topic, size_t len, char *out, size_t cap)
{
	if (len == 0)
		return -EINVAL;
	size_t lim = limit(cap);
	wbuf w = { out, 0, lim < MG_CSUBJ_MAX - 64 ? lim : MG_CSUBJ_MAX - 64, false };
	for (size_t i = 0, start = 0; i <= len; i++) {
		if (i < len && topic[i] != '/')
			continue;
		if (start)
			put(&w, ".", 1);
		if (i == start)
			put(&w, "=", 1);
		for (size_t k = start; k < i; k++) {
			if (kv_plain(topic[k])) {
				put(&w, (const char *)topic + k, 1);
			} else {
				char e[3] = { '=', hex[topic[k] >> 4], hex[topic[k] & 15] };
				put(&w, e, 3);
			}
		}
		start = i + 1;
	}
	if (w.over)
		return -E2BIG;
	out[w.n] = 0;
	return (int)w.n;
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int mg_csubj_to_topic(const char *s, size_t len, uint8_t *out, size_t cap)
{
	size_t i;
	bool dollar;
	if (len >= 6 && memcmp(s, "mqtt$.", 6) == 0) {
		i = 6;
		dollar = true;
	} else if (len >= 5 && memcmp(s, "mqtt.", 5) == 0) {
		i = 5;
		dollar = false;
	} else {
		return -EINVAL;
	}
	size_t n = 0;
	size_t tok = i; /* where the current token started */
	for (;; i++) {
		if (i == len || s[i] == '.') {
			if (i == tok)
				return -EINVAL; /* NATS has no empty tokens; an empty level is "%" */
			if (i == len)
				break;
			if (n == cap)
				return -E2BIG;
			out[n++] = '/';
			tok = i + 1;
			continue;
		}
		uint8_t c = (uint8_t)s[i];
		if (c == '%') {
			if (i + 1 == len || s[i + 1] == '.') {
				if (i != tok)
					return -EINVAL; /* "%" alone is the empty level, nothing else */
				continue;
			}
			if (i + 2 >= len)
				return -EINVAL;
			int hi = unhex(s[i + 1]), lo = unhex(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = (uint8_t)(hi << 4 | lo);
			if (!must_escape(c))
				return -EINVAL; /* one spelling per topic: the mapping stays a bijection */
			i += 2;
		} else if (must_escape(c) || c == '/') {
			return -EINVAL; /* a '/' in a token would split it into two levels */
		}
		if (n == cap)
			return -E2BIG;
		out[n++] = c;
	}
	/* the namespace must agree with the first byte, or two subjects would read as one topic */
	if (n == 0 || dollar != (out[0] == '$'))
		return -EINVAL;
	return (int)n;
}

/* One subject of a filter: levels [0, nlev) with '+' -> "*", then ">" when gt. */
static int filter_subject(const uint8_t *f, size_t len, size_t upto, bool gt, char *out, size_t cap)
{
	wbuf w = { out, 0, limit(cap), false };
	put_prefix(&w, f, len);
	size_t start = 0;
	for (size_t i = 0; i <= upto; i++)
		if (i == upto || f[i] == '/') {
			put(&w, ".", 1);
			if (i - start == 1 && f[start] == '+')
				put(&w, "*", 1);
			else
				put_level(&w, f + start, i - start);
			start = i + 1;
		}
	if (gt)
		put(&w, ".>", 2);
	if (w.over)
		return -E2BIG;
	out[w.n] = 0;
	return (int)w.n;
}

int mg_csubj_from_filter(const uint8_t *filter, size_t len, char *out, size_t cap)
{
	bool hash = len >= 1 && filter[len - 1] == '#' && (len == 1 || filter[len - 2] == '/');
	if (!hash) {
		int r = filter_subject(filter, len, len, false, out, cap);
		return r < 0 ? r : 1;
	}
	if (len == 1) { /* "#": every topic has a first level, and '$' topics are not ours */
		wbuf w = { out, 0, limit(cap), false };
		put(&w, "mqtt.>", 6);
		if (w.over)
			return -E2BIG;
		out[w.n] = 0;
		return 1;
	}
	size_t parent = len - 2; /* "x/#": the levels of x, then ">"; and x itself */
	int a = filter_subject(filter, len, parent, true, out, cap);
	if (a < 0) /* x.> matches only subjects longer than itself, none of which is sent; x may */
		return filter_subject(filter, len, parent, false, out, cap) < 0 ? -E2BIG : 1;
	int b = filter_subject(filter, len, parent, false, out + a + 1, cap - (size_t)a - 1);
	return b < 0 ? b : 2;
}

bool mg_csubj_match(const char *p, size_t plen, const char *s, size_t slen)
{
	size_t i = 0, j = 0;
	for (;;) {
		size_t pe = i, se = j;
		while (pe < plen && p[pe] != '.')
			pe++;
		if (pe - i == 1 && p[i] == '>')
			return j < slen; /* one or more tokens, whatever they are */
		while (se < slen && s[se] != '.')
			se++;
		bool star = pe - i == 1 && p[i] == '*';
		if (!star && (pe - i != se - j || memcmp(p + i, s + j, pe - i) != 0))
			return false;
		if (pe == plen || se == slen)
			return pe == plen && se == slen;
		i = pe + 1;
		j = se + 1;
	}
}
