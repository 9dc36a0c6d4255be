/* net/http.c - the strict HTTP/1.x head parser (see http.h). One pass over each line; a line
 * is looked at once it is whole, so feeding the head one byte at a time gives the same answer
 * as feeding it whole (the unit test does both). */
#include "net/http.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 tchar: the characters of a token (method, header name). */
static bool tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

bool mg_http_eq(const char *v, size_t len, const char *s)
{
	size_t n = strlen(s);
	if (n != len)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)v[i]) != lower((unsigned char)s[i]))
			return false;
	return true;
}

bool mg_http_has_token(const char *v, size_t len, const char *token)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t s = i;
		while (i < len && v[i] != ',')
			i++;
		size_t e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e > s && mg_http_eq(v + s, e - s, token))
			return true;
	}
	return false;
}

const mg_http_hdr *mg_http_header(const mg_http_msg *m, const char *name, int *count)
{
	const mg_http_hdr *first = NULL;
	int n = 0;
	for (size_t i = 0; i < m->nhdr; i++)
		if (mg_http_eq(m->hdr[i].name, m->hdr[i].name_len, name)) {
			if (!first)
				first = &m->hdr[i];
			n++;
		}
	if (count)
		*count = n;
	return first;
}

/* The next line of buf[at..len): its length without CRLF in *ll. 1: whole, 0: not yet,
 * -1: a CR or LF that is not part of a CRLF (bare LF, CR followed by anything but LF). */
static int line(const char *buf, size_t len, size_t at, size_t *ll)
{
	for (size_t i = at; i < len; i++) {
		if (buf[i] == '\n')
			return -1;
		if (buf[i] == '\r') {
			if (i + 1 == len)
				return 0;
			if (buf[i + 1] != '\n')
				return -1;
			*ll = i - at;
			return 1;
		}
	}
	return 0;
}

/* "HTTP/1.0" or "HTTP/1.1" */
static int version(const char *p, size_t n)
{
	if (n != 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1'))
		return -1;
	return p[7] - '0';
}

static int request_line(const char *p, size_t n, mg_http_msg *m)
{
	size_t i = 0;
	while (i < n && tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ' ')
		return -1;
	m->method = p;
	m->method_len = i;
	size_t t = ++i;
	while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
		i++;
	if (i == t || i == n || p[i] != ' ')
		return -1;
	m->target = p + t;
	m->target_len = i - t;
	i++;
	if ((m->minor = version(p + i, n - i)) < 0)
		return -1;
	return 0;
}

static int status_line(const char *p, size_t n, mg_http_msg *m)
{
	if (n < 12 || (m->minor = version(p, 8)) < 0 || p[8] != ' ')
		return -1;
	int st = 0;
	for (int i = 9; i < 12; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		st = st * 10 + (p[i] - '0');
	}
	if (st < 100 || (n > 12 && p[12] != ' '))
		return -1;
	m->status = st;
	m->reason = n > 12 ? p + 13 : p + 12;
	m->reason_len = n > 12 ? n - 13 : 0;
	for (size_t i = 0; i < m->reason_len; i++) {
		unsigned char c = (unsigned char)m->reason[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -1;
	}
	return 0;
}

static int header_line(const char *p, size_t n, mg_http_msg *m)
{
	size_t i = 0;
	while (i < n && tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ':') /* also refuses obs-fold: a line starting with SP/HT */
		return MG_HTTP_INVALID;
	size_t vs = i + 1, ve = n;
	for (size_t k = vs; k < n; k++) {
		unsigned char c = (unsigned char)p[k];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return MG_HTTP_INVALID;
	}
	while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
		vs++;
	while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
		ve--;
	if (m->nhdr == MG_HTTP_MAX_HEADERS)
		return MG_HTTP_TOO_MANY;
	m->hdr[m->nhdr++] = (mg_http_hdr){ .name = p, .name_len = i, .value = p + vs, .value_len = ve - vs };
	return 0;
}

static int parse(const char *buf, size_t len, mg_http_msg *m, bool request)
{
	memset(m, 0, sizeof *m);
	size_t at = 0, ll;
	int r = line(buf, len, at, &ll);
	if (r == 0 && request) { /* not a request at all (MQTT on the port): say so now */
		size_t i = 0;
		while (i < len && tchar((unsigned char)buf[i]))
			i++;
		if (i < len && (buf[i] != ' ' || i == 0) && buf[i] != '\r')
			return MG_HTTP_INVALID;
	}
	if (r == 0 && !request && memcmp(buf, "HTTP/1.", len < 7 ? len : 7) != 0)
		return MG_HTTP_INVALID; /* not an HTTP answer at all: say so now */
	if (r <= 0)
		return r < 0 ? MG_HTTP_INVALID : MG_HTTP_INCOMPLETE;
	if ((request ? request_line : status_line)(buf, ll, m) < 0)
		return MG_HTTP_INVALID;
	at += ll + 2;
	for (;;) {
		r = line(buf, len, at, &ll);
		if (r <= 0)
			return r < 0 ? MG_HTTP_INVALID : MG_HTTP_INCOMPLETE;
		if (ll == 0)
			return (int)(at + 2);
		int h = header_line(buf + at, ll, m);
		if (h < 0)
			return h;
		at += ll + 2;
	}
}

int mg_http_parse_request(const char *buf, size_t len, mg_http_msg *m)
{
	return parse(buf, len, m, true);
}

int mg_http_parse_response(const char *buf, size_t len, mg_http_msg *m)
{
	return parse(buf, len, m, false);
}

/* ---- request targets as file names (http_dir) ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int mg_http_path(const char *dir, const char *target, size_t tlen, char *out, size_t outlen)
{
	size_t dl = strlen(dir);
	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	if (tlen == 0 || target[0] != '/' || outlen < dl + 2)
		return -1;
	memcpy(out, dir, dl);
	size_t o = dl, seg = dl; /* out[seg..o) is the segment being decoded */
	for (size_t i = 0; i < tlen && target[i] != '?' && target[i] != '#'; i++) {
		char c = target[i];
		if (c == '%') {
			int hi = i + 2 < tlen ? hexval(target[i + 1]) : -1;
			int lo = i + 2 < tlen ? hexval(target[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
			if (c == '/')
				return -1; /* an encoded slash is not a separator: refuse the ambiguity */
		}
		if (c == '\0' || c == '\\')
			return -1;
		if (c == '/') {
			size_t sl = o - seg;
			if ((sl == 2 && out[seg] == '.' && out[seg + 1] == '.') || (sl == 1 && out[seg] == '.'))
				return -1;
			if (o > dl && out[o - 1] == '/')
				continue; /* "//": one separator */
			seg = o + 1;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = c;
	}
	size_t sl = o - seg;
	if ((sl == 2 && out[seg] == '.' && out[seg + 1] == '.') || (sl == 1 && out[seg] == '.'))
		return -1;
	if (out[o - 1] == '/') {
		static const char idx[] = "index.html";
		if (o + sizeof idx > outlen)
			return -1;
		memcpy(out + o, idx, sizeof idx);
		return 0;
	}
	out[o] = '\0';
	return 0;
}

const char *mg_http_ctype(const char *path)
{
	static const struct { const char *ext, *type; } types[] = {
		{ "html", "text/html; charset=utf-8" }, { "htm", "text/html; charset=utf-8" },
		{ "js", "text/javascript; charset=utf-8" }, { "mjs", "text/javascript; charset=utf-8" },
		{ "css", "text/css; charset=utf-8" }, { "json", "application/json" },
		{ "map", "application/json" }, { "txt", "text/plain; charset=utf-8" },
		{ "svg", "image/svg+xml" }, { "png", "image/png" }, { "jpg", "image/jpeg" },
		{ "jpeg", "image/jpeg" }, { "gif", "image/gif" }, { "webp", "image/webp" },
		{ "ico", "image/x-icon" }, { "wasm", "application/wasm" }, { "woff", "font/woff" },
		{ "woff2", "font/woff2" }, { "webmanifest", "application/manifest+json" },
	};
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash : path, '.');
	if (dot)
		for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}
