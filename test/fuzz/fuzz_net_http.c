/*
 * test/fuzz/fuzz_net_http.c - the HTTP head parser (net/http.c) and request targets as file
 * names, on arbitrary bytes. Checks: views lie inside the input; a head found in the whole
 * input is found, with the same length, in every prefix that holds it, and every shorter
 * prefix is incomplete (or invalid where the whole is invalid); a file name made from a
 * target starts with the directory and has no "." or ".." segment and no NUL.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http.h"

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)

static void inside(const char *b, size_t len, const char *p, size_t n)
{
	MUST(!n || (p >= b && p + n <= b + len));
}

static void views(const char *b, size_t len, const mg_http_msg *m)
{
	inside(b, len, m->method, m->method_len);
	inside(b, len, m->target, m->target_len);
	inside(b, len, m->reason, m->reason_len);
	MUST(m->nhdr <= MG_HTTP_MAX_HEADERS);
	for (size_t i = 0; i < m->nhdr; i++) {
		inside(b, len, m->hdr[i].name, m->hdr[i].name_len);
		inside(b, len, m->hdr[i].value, m->hdr[i].value_len);
		MUST(m->hdr[i].name_len > 0);
	}
}

static void path_check(const char *t, size_t tlen)
{
	static const char dir[] = "/srv/www";
	char out[512];
	if (mg_http_path(dir, t, tlen, out, sizeof out) < 0)
		return;
	size_t n = strlen(out);
	MUST(n < sizeof out && strncmp(out, dir, 8) == 0 && out[8] == '/');
	MUST(!strstr(out, "/../") && !strstr(out, "/./") && !strstr(out, "\\"));
	MUST(!(n >= 3 && strcmp(out + n - 3, "/..") == 0) && !(n >= 2 && strcmp(out + n - 2, "/.") == 0));
	(void)mg_http_ctype(out);
}

static void one(const char *b, size_t len, bool request)
{
	mg_http_msg m;
	int (*parse)(const char *, size_t, mg_http_msg *) = request ? mg_http_parse_request : mg_http_parse_response;
	int r = parse(b, len, &m);
	MUST(r > 0 || r == MG_HTTP_INCOMPLETE || r == MG_HTTP_INVALID || r == MG_HTTP_TOO_MANY);
	if (r > 0) {
		MUST((size_t)r <= len && r >= 4 && memcmp(b + r - 4, "\r\n\r\n", 4) == 0);
		views(b, len, &m);
		if (request) {
			MUST(m.method_len > 0 && m.target_len > 0 && (m.minor == 0 || m.minor == 1));
			path_check(m.target, m.target_len);
			for (size_t i = 0; i < m.nhdr; i++)
				(void)mg_http_has_token(m.hdr[i].value, m.hdr[i].value_len, "upgrade");
		} else {
			MUST(m.status >= 100 && m.status <= 999);
		}
	}
	/* prefixes: a few, not all (quadratic) */
	for (size_t k = 0; k < len; k += 1 + len / 16) {
		int p = parse(b, k, &m);
		if (r > 0)
			MUST(k < (size_t)r ? p == MG_HTTP_INCOMPLETE : p == r);
		else if (r == MG_HTTP_INCOMPLETE)
			MUST(p == MG_HTTP_INCOMPLETE);
		else
			MUST(p == MG_HTTP_INCOMPLETE || p == r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t len)
{
	one((const char *)d, len, true);
	one((const char *)d, len, false);
	path_check((const char *)d, len);
	return 0;
}
