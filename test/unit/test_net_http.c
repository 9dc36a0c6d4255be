/* test/unit/test_net_http.c - the strict HTTP head parser (net/http.c): a table of requests,
 * each parsed whole and then fed one byte more at a time (every shorter prefix must be
 * "incomplete", or "invalid" where the case is invalid), and request targets as file names. */
#include "t.h"

#include <stdbool.h>

#include "net/http.h"

typedef struct {
	const char *text;
	int want; /* > 0: the head's length is strlen(text) - tail; else an MG_HTTP_* */
	int tail; /* bytes after the head (a body, or the first WebSocket frame) */
} rcase;

static const rcase requests[] = {
	{ "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, 0 },
	{ "GET /mqtt HTTP/1.1\r\nHost: b:9001\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
	  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x82\x80", 1, 2 },
	{ "HEAD /a.js HTTP/1.0\r\n\r\n", 1, 0 },
	{ "GET / HTTP/1.1\r\nX-Empty:\r\nX-Tabs:\t v \t\r\n\r\n", 1, 0 },
	{ "GET / HTTP/1.1\nHost: x\n\n", MG_HTTP_INVALID, 0 },        /* bare LF */
	{ "GET / HTTP/1.1\r\nHost: x\r\r\n\r\n", MG_HTTP_INVALID, 0 }, /* CR not before LF */
	{ "GET / HTTP/2.0\r\n\r\n", MG_HTTP_INVALID, 0 },
	{ "GET / HTTP/1.10\r\n\r\n", MG_HTTP_INVALID, 0 },
	{ "GET  / HTTP/1.1\r\n\r\n", MG_HTTP_INVALID, 0 },
	{ "GET / HTTP/1.1 \r\n\r\n", MG_HTTP_INVALID, 0 },
	{ "G(T / HTTP/1.1\r\n\r\n", MG_HTTP_INVALID, 0 },
	{ "GET /\x7f HTTP/1.1\r\n\r\n", MG_HTTP_INVALID, 0 },
	{ "GET / HTTP/1.1\r\n Host: x\r\n\r\n", MG_HTTP_INVALID, 0 },  /* obs-fold */
	{ "GET / HTTP/1.1\r\nHost : x\r\n\r\n", MG_HTTP_INVALID, 0 },  /* space before colon */
	{ "GET / HTTP/1.1\r\n: x\r\n\r\n", MG_HTTP_INVALID, 0 },
	{ "GET / HTTP/1.1\r\nHost: \x01\r\n\r\n", MG_HTTP_INVALID, 0 },
	{ "GET / HTTP/1.1\r\nNoColon\r\n\r\n", MG_HTTP_INVALID, 0 },
	{ "\x10\x0c\x00\x04MQTT", MG_HTTP_INVALID, 0 },                /* MQTT on the port: at once */
};

static void check_request(const rcase *c)
{
	size_t len = strlen(c->text);
	mg_http_msg m;
	int want = c->want > 0 ? (int)len - c->tail : c->want;
	int r = mg_http_parse_request(c->text, len, &m);
	if (r != want)
		t_fail(__FILE__, __LINE__, "\"%.40s\": %d, expected %d", c->text, r, want);
	/* one byte more at a time: "incomplete" until the head is whole (a valid case), or until
	 * the broken line is (an invalid one), never a different answer */
	for (size_t k = 0; k < len; k++) {
		int p = mg_http_parse_request(c->text, k, &m);
		bool ok = want > 0 ? (k < (size_t)want ? p == MG_HTTP_INCOMPLETE : p == want)
		                   : (p == MG_HTTP_INCOMPLETE || p == want);
		if (!ok)
			t_fail(__FILE__, __LINE__, "\"%.40s\" prefix %zu: %d", c->text, k, p);
	}
}

TEST(request_table_whole_and_byte_by_byte)
{
	for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++)
		check_request(&requests[i]);
}

TEST(request_views_point_into_the_buffer)
{
	const char *t = "GET /mqtt?x=1 HTTP/1.1\r\nHost:  b:9001 \r\nSec-WebSocket-Protocol: foo, MQTT\r\n"
	                "Sec-WebSocket-Protocol: bar\r\n\r\n";
	mg_http_msg m;
	REQUIRE(mg_http_parse_request(t, strlen(t), &m) == (int)strlen(t));
	CHECK(m.method == t && m.method_len == 3);
	CHECK(m.target == t + 4 && m.target_len == 9);
	CHECK_EQ_INT(m.minor, 1);
	CHECK_EQ_INT(m.nhdr, 3);
	int n;
	const mg_http_hdr *h = mg_http_header(&m, "host", &n);
	REQUIRE(h);
	CHECK(n == 1 && h->value_len == 6 && memcmp(h->value, "b:9001", 6) == 0);
	h = mg_http_header(&m, "SEC-WEBSOCKET-PROTOCOL", &n);
	REQUIRE(h);
	CHECK_EQ_INT(n, 2);
	CHECK(mg_http_has_token(h->value, h->value_len, "mqtt"));
	CHECK(!mg_http_has_token(h->value, h->value_len, "mqt"));
	CHECK(!mg_http_header(&m, "Upgrade", &n) && n == 0);
}

TEST(too_many_headers)
{
	char buf[4096] = "GET / HTTP/1.1\r\n";
	for (int i = 0; i <= MG_HTTP_MAX_HEADERS; i++)
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "X-%d: v\r\n", i);
	strcat(buf, "\r\n");
	mg_http_msg m;
	CHECK_EQ_INT(mg_http_parse_request(buf, strlen(buf), &m), MG_HTTP_TOO_MANY);
}

TEST(response_status_line)
{
	const char *t = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
	mg_http_msg m;
	REQUIRE(mg_http_parse_response(t, strlen(t), &m) == (int)strlen(t));
	CHECK_EQ_INT(m.status, 101);
	CHECK(m.reason_len == 19 && memcmp(m.reason, "Switching Protocols", 19) == 0);
	CHECK_EQ_INT(mg_http_parse_response("HTTP/1.1 404\r\n\r\n", 16, &m), 16);
	CHECK_EQ_INT(m.status, 404);
	CHECK_EQ_INT(mg_http_parse_response("HTTP/1.1 99 x\r\n\r\n", 17, &m), MG_HTTP_INVALID);
	CHECK_EQ_INT(mg_http_parse_response("HTTP/1.1 1O1 x\r\n\r\n", 18, &m), MG_HTTP_INVALID);
	CHECK_EQ_INT(mg_http_parse_response("HTTP/1.1 200 OK\r\n", 17, &m), MG_HTTP_INCOMPLETE);
}

static void path_ok(const char *target, const char *want)
{
	char out[256];
	int r = mg_http_path("/srv/www/", target, strlen(target), out, sizeof out);
	if (r != 0 || strcmp(out, want) != 0)
		t_fail(__FILE__, __LINE__, "%s -> %d \"%s\", expected \"%s\"", target, r, r == 0 ? out : "", want);
}

static void path_bad(const char *target)
{
	char out[256];
	if (mg_http_path("/srv/www", target, strlen(target), out, sizeof out) != -1)
		t_fail(__FILE__, __LINE__, "%s accepted as \"%s\"", target, out);
}

TEST(targets_as_file_names)
{
	path_ok("/", "/srv/www/index.html");
	path_ok("/a/b.js", "/srv/www/a/b.js");
	path_ok("/a//b.js", "/srv/www/a/b.js");
	path_ok("/sub/", "/srv/www/sub/index.html");
	path_ok("/a%20b.txt?x=/../..", "/srv/www/a b.txt");
	path_ok("/x#frag", "/srv/www/x");
	path_ok("/..a/b..", "/srv/www/..a/b..");
	path_bad("/..");
	path_bad("/../x");
	path_bad("/a/../../x");
	path_bad("/%2e%2e/x");
	path_bad("/%2E%2E");
	path_bad("/a%2fb");
	path_bad("/./x");
	path_bad("/a/.");
	path_bad("/a\\b");
	path_bad("/%00");
	path_bad("/%0");
	path_bad("/%g0");
	path_bad("relative");
	path_bad("");
	char small[12];
	CHECK_EQ_INT(mg_http_path("/srv/www", "/long-name.html", 15, small, sizeof small), -1);
}

TEST(content_types)
{
	CHECK_STR(mg_http_ctype("/d/index.HTML"), "text/html; charset=utf-8");
	CHECK_STR(mg_http_ctype("/d/app.js"), "text/javascript; charset=utf-8");
	CHECK_STR(mg_http_ctype("/d/pic.jpeg"), "image/jpeg");
	CHECK_STR(mg_http_ctype("/d.dir/noext"), "application/octet-stream");
}
