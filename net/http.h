/*
 * net/http.h - a strict HTTP/1.x request and response head parser (picohttpparser's shape):
 * pure functions over the caller's bytes, pointer + length views into them, no copies, no
 * allocation, no I/O. It is what the WebSocket upgrade (net/ws.c) and the broker's HTTP
 * answers (http_dir, /metrics) read, and what test/fuzz/fuzz_net_http.c calls.
 *
 * Strict on purpose (a broker's HTTP is small and faces the internet): CRLF line ends only,
 * no obsolete line folding, header names are RFC 9110 tokens, values hold no control
 * characters, the request target is visible ASCII, HTTP/1.0 and HTTP/1.1 only. Anything else
 * is invalid (the caller answers 400) rather than guessed at.
 */
#ifndef MG_NET_HTTP_H
#define MG_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define MG_HTTP_MAX_HEADERS 32

enum {
	MG_HTTP_INCOMPLETE = -2, /* no blank line yet: read more (or 431 when the room is full) */
	MG_HTTP_INVALID = -1,    /* 400 */
	MG_HTTP_TOO_MANY = -3,   /* more than MG_HTTP_MAX_HEADERS header lines: 431 */
};

typedef struct mg_http_hdr {
	const char *name, *value; /* views; value without leading and trailing white space */
	size_t name_len, value_len;
} mg_http_hdr;

typedef struct mg_http_msg {
	/* request: method and target; response: status and reason */
	const char *method, *target, *reason;
	size_t method_len, target_len, reason_len;
	int status;
	int minor;               /* HTTP/1.<minor>: 0 or 1 */
	mg_http_hdr hdr[MG_HTTP_MAX_HEADERS];
	size_t nhdr;
} mg_http_msg;

/* Parse the head of a request (or response) in buf[0..len). Returns the bytes of the head
 * including its blank line (> 0), or MG_HTTP_INCOMPLETE / _INVALID / _TOO_MANY. An invalid
 * line is reported as soon as it is whole, before the blank line arrives, and a request whose
 * first bytes cannot begin a method (MQTT sent to a WebSockets port) at once. m's views point
 * into buf. */
int mg_http_parse_request(const char *buf, size_t len, mg_http_msg *m);
int mg_http_parse_response(const char *buf, size_t len, mg_http_msg *m);

/* The first header named name (case-insensitive), or NULL; *count gets how many there are
 * (a request that repeats a header it may have once is refused by the caller). */
const mg_http_hdr *mg_http_header(const mg_http_msg *m, const char *name, int *count);
/* Does the comma-separated list v[0..len) hold token (case-insensitive)? "Upgrade, keep-alive". */
bool mg_http_has_token(const char *v, size_t len, const char *token);
/* Case-insensitive equality of v[0..len) and the NUL-terminated s. */
bool mg_http_eq(const char *v, size_t len, const char *s);

/* The file under dir that target names (percent-decoded, query cut off, "/" -> index.html),
 * into out; -1 when target is not a plain path inside dir ("..", NUL, bad %-escapes), so no
 * name outside dir is ever opened. Pure: the unit test and the fuzzer call it. */
int mg_http_path(const char *dir, const char *target, size_t tlen, char *out, size_t outlen);

/* Content-Type by the file name's extension. */
const char *mg_http_ctype(const char *path);

#endif
