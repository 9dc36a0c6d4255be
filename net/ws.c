/*
 * net/ws.c - the WebSocket transport (RFC 6455) for the broker's WebSockets listeners and for
 * libmidge's MIDGE_TRANSPORT_WEBSOCKETS.
 *
 * Own code rather than a library, on purpose. Debian's maintained candidates were weighed:
 * libwebsockets owns the event loop and the sockets (mosquitto 2.0's reason for ignoring a
 * WebSockets listener's bind address and refusing to start with one alone; mosquitto 2.1
 * dropped it for its own code), and wslay (libwslay-dev), which fits an event loop, keeps its
 * own queue of messages and buffers what it reads before handing it over: a copy of every
 * payload on the way in, and on the way out either a copy per message or one frame per
 * message. What MQTT needs of RFC 6455 is small (binary frames, fragmentation, three control
 * frames, a close code), and done here it costs no copy: frame headers are taken out of the
 * read buffer and payloads unmasked in place on their way to the framer (net/framer.h), and
 * a server's writev puts one header in front of the caller's gathered iovecs, so a message
 * payload shared by many subscribers goes to each socket from the message itself. The price
 * is owning the rules: net/ws_frame.c is fuzzed (test/fuzz/fuzz_net_ws.c) and every rule has
 * a byte-exact test (test/broker/test_websockets.py).
 *
 * A client masks what it sends (5.3): that costs one copy per flush into a scratch buffer,
 * on the client's side only.
 */
#include "net/ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ST_HS_SEND, ST_HS_READ, ST_REPLY, ST_OPEN, ST_CLOSED };

#define MAX_IOV 128
#define CLIENT_FRAME_MAX (256 * 1024) /* a client's masked frame: bounded scratch */

typedef struct ws {
	mg_transport in;       /* what carries the frames: TCP or TLS */
	mg_ws_rx rx;
	uint8_t state;
	bool server;
	bool close_sent;
	bool close_rcvd;       /* reads return 0 from now on */
	/* the handshake's bytes (a request or a response), then what followed them */
	char *h;
	size_t hlen, hcap, hoff; /* h[hoff..hlen) read but not yet returned by read */
	/* bytes that must go out next: the handshake's answer, a header's rest, a masked frame */
	uint8_t *p;
	size_t plen, poff, pcap;
	/* control frames (pong, close) waiting for the end of the frame being written */
	uint8_t cq[2 * (14 + 125)];
	uint16_t cqlen;
	uint64_t frame_left;   /* payload bytes still owed to the frame being written */
	mg_ws_server_opts o;
	char key[25];          /* a client's Sec-WebSocket-Key */
	const char *err;
	char errbuf[96];
} ws;

static ws *W(const mg_transport *t)
{
	return t->ctx;
}

/* ---- output ---- */

static int pend_add(ws *w, const void *b, size_t n)
{
	if (w->poff == w->plen)
		w->poff = w->plen = 0;
	if (w->pcap - w->plen < n) {
		size_t nc = w->pcap ? w->pcap : 256;
		while (nc - w->plen < n)
			nc *= 2;
		uint8_t *q = realloc(w->p, nc);
		if (!q)
			return -ENOMEM;
		w->p = q;
		w->pcap = nc;
	}
	memcpy(w->p + w->plen, b, n);
	w->plen += n;
	return 0;
}

/* Write what is pending: 0 when it all went, -EAGAIN when some is left, or an error. */
static int pend_flush(ws *w)
{
	while (w->poff < w->plen) {
		struct iovec v = { w->p + w->poff, w->plen - w->poff };
		ssize_t n = mg_transport_writev(&w->in, &v, 1);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EAGAIN;
		w->poff += (size_t)n;
	}
	w->poff = w->plen = 0;
	if (w->pcap > 65536) { /* a large answer (a file) went: give it back */
		free(w->p);
		w->p = NULL;
		w->pcap = 0;
	}
	return 0;
}

static void random_bytes(void *b, size_t n)
{
	mg_plat_random(b, n);
}

/* A control frame into cq (a client masks it). */
static void ctl_queue(ws *w, uint8_t op, const uint8_t *payload, size_t n)
{
	uint8_t h[14], mask[4];
	if (n > 125 || w->cqlen + 14 + n > sizeof w->cq)
		return; /* one pong is enough of an answer to a flood of pings */
	if (!w->server)
		random_bytes(mask, 4);
	size_t hl = mg_ws_frame_header(h, op, true, n, w->server ? NULL : mask);
	memcpy(w->cq + w->cqlen, h, hl);
	for (size_t i = 0; i < n; i++)
		w->cq[w->cqlen + hl + i] = w->server ? payload[i] : payload[i] ^ mask[i & 3];
	w->cqlen = (uint16_t)(w->cqlen + hl + n);
}

static void close_queue(ws *w, int code)
{
	if (w->close_sent)
		return;
	w->close_sent = true;
	if (code == 1005) { /* the peer gave no code: an empty close answers it */
		ctl_queue(w, MG_WS_OP_CLOSE, NULL, 0);
		return;
	}
	uint8_t b[2] = { (uint8_t)(code >> 8), (uint8_t)code };
	ctl_queue(w, MG_WS_OP_CLOSE, b, 2);
}

/* Everything that may go now: pending bytes, then control frames at a frame boundary. */
static int out_flush(ws *w)
{
	int r = pend_flush(w);
	if (r < 0)
		return r;
	if (w->frame_left || !w->cqlen)
		return 0;
	r = pend_add(w, w->cq, w->cqlen);
	if (r < 0)
		return r;
	w->cqlen = 0;
	return pend_flush(w);
}

/* A client's data: one masked frame of up to CLIENT_FRAME_MAX bytes, copied into p. All of
 * it counts as written: what the socket did not take stays in p for the next call. */
static ssize_t client_writev(ws *w, const struct iovec *iov, int iovcnt)
{
	size_t total = 0;
	for (int i = 0; i < iovcnt && total < CLIENT_FRAME_MAX; i++)
		total += iov[i].iov_len;
	if (total > CLIENT_FRAME_MAX)
		total = CLIENT_FRAME_MAX;
	if (!total)
		return 0;
	uint8_t h[14], mask[4];
	random_bytes(mask, 4);
	size_t hl = mg_ws_frame_header(h, MG_WS_OP_BINARY, true, total, mask);
	if (pend_add(w, h, hl) < 0)
		return -ENOMEM;
	if (w->pcap - w->plen < total) {
		size_t nc = w->pcap;
		while (nc - w->plen < total)
			nc *= 2;
		uint8_t *q = realloc(w->p, nc);
		if (!q) {
			w->plen -= hl;
			return -ENOMEM;
		}
		w->p = q;
		w->pcap = nc;
	}
	size_t k = 0;
	for (int i = 0; i < iovcnt && k < total; i++) {
		const uint8_t *s = iov[i].iov_base;
		size_t n = iov[i].iov_len < total - k ? iov[i].iov_len : total - k;
		for (size_t j = 0; j < n; j++, k++)
			w->p[w->plen + k] = s[j] ^ mask[k & 3];
	}
	w->plen += total;
	int r = pend_flush(w);
	if (r < 0 && r != -EAGAIN)
		return r;
	return (ssize_t)total;
}

/* A server's data: one unmasked frame header in front of the caller's iovecs, which go to the
 * socket as they are. A frame's length is promised in its header, so until its payload is all
 * written (frame_left), later calls continue it with the caller's next bytes. */
static ssize_t ws_writev(mg_transport *t, const struct iovec *iov, int iovcnt)
{
	ws *w = W(t);
	int r = out_flush(w);
	if (r < 0)
		return r;
	if (iovcnt <= 0)
		return 0;
	if (w->state != ST_OPEN || w->close_sent)
		return -EPIPE;
	if (!w->server)
		return client_writev(w, iov, iovcnt);
	struct iovec v[MAX_IOV + 1];
	uint8_t h[14];
	size_t hl = 0, total = 0;
	int k = 0;
	uint64_t cap = w->frame_left ? w->frame_left : UINT64_MAX;
	for (int i = 0; i < iovcnt && k < MAX_IOV && total < cap; i++) {
		size_t n = iov[i].iov_len;
		if (n > cap - total)
			n = (size_t)(cap - total);
		if (!n)
			continue;
		v[1 + k++] = (struct iovec){ iov[i].iov_base, n };
		total += n;
	}
	if (!total)
		return 0;
	struct iovec *vp = v + 1;
	if (!w->frame_left) {
		hl = mg_ws_frame_header(h, MG_WS_OP_BINARY, true, total, NULL);
		v[0] = (struct iovec){ h, hl };
		vp = v;
		k++;
	}
	ssize_t n = mg_transport_writev(&w->in, vp, k);
	if (n < 0)
		return n; /* nothing went: no frame was begun */
	if (hl) {
		w->frame_left = total;
		if ((size_t)n < hl) { /* the header's rest goes first next time */
			if (pend_add(w, h + n, hl - (size_t)n) < 0)
				return -ENOMEM;
			return 0;
		}
		n -= (ssize_t)hl;
	}
	w->frame_left -= (uint64_t)n;
	if (!w->frame_left && w->cqlen)
		out_flush(w); /* a pong waited for this frame's end */
	return n;
}

static bool ws_want_write(const mg_transport *t)
{
	const ws *w = W(t);
	return w->poff < w->plen || (w->cqlen && !w->frame_left) || mg_transport_want_write(&w->in);
}

/* ---- input ---- */

/* The peer broke a rule: say which with a close frame, and fail the read. */
static ssize_t fail(ws *w, int code)
{
	close_queue(w, code);
	out_flush(w);
	w->close_rcvd = true; /* nothing more is read as MQTT */
	snprintf(w->errbuf, sizeof w->errbuf, "WebSocket protocol error (close %d)", code);
	w->err = w->errbuf;
	return MG_WS_EPROTO;
}

static ssize_t ws_read(mg_transport *t, void *buf, size_t len)
{
	ws *w = W(t);
	if (w->close_rcvd)
		return w->close_sent ? mg_transport_read(&w->in, buf, len) /* lingering: drain */ : 0;
	if (w->state != ST_OPEN)
		return -EAGAIN;
	for (;;) {
		size_t n;
		if (w->hoff < w->hlen) { /* what came right after the handshake */
			n = w->hlen - w->hoff < len ? w->hlen - w->hoff : len;
			memcpy(buf, w->h + w->hoff, n);
			w->hoff += n;
			if (w->hoff == w->hlen) {
				free(w->h);
				w->h = NULL;
				w->hlen = w->hoff = w->hcap = 0;
			}
		} else {
			ssize_t r = mg_transport_read(&w->in, buf, len);
			if (r <= 0)
				return r;
			n = (size_t)r;
		}
		size_t pos = 0, out = 0;
		while (pos < n) {
			int ev = mg_ws_rx_run(&w->rx, buf, n, &pos, &out);
			if (ev < 0)
				return fail(w, -ev);
			if (ev == MG_WS_RX_PING) {
				ctl_queue(w, MG_WS_OP_PONG, w->rx.ctl, w->rx.clen);
				out_flush(w);
			} else if (ev == MG_WS_RX_CLOSE) {
				int st = mg_ws_close_status(w->rx.ctl, w->rx.clen);
				if (st < 0)
					return fail(w, -st);
				close_queue(w, st); /* 5.5.1: echo the status */
				out_flush(w);
				w->close_rcvd = true;
				return (ssize_t)out; /* 0 (the end) unless data came before the close */
			}
		}
		if (out)
			return (ssize_t)out;
		/* only frame headers or control frames: read on until data or EAGAIN */
	}
}

static bool ws_pending(const mg_transport *t)
{
	const ws *w = W(t);
	return (w->state == ST_OPEN && w->hoff < w->hlen) || (w->close_rcvd && !w->close_sent) ||
	       mg_transport_pending(&w->in);
}

/* ---- the opening handshake ---- */

static const char *status_text(int st)
{
	switch (st) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

/* Queue a whole HTTP answer and close after it (takes r->body). */
static int reply(ws *w, mg_http_reply *r, bool head_only)
{
	char hd[512];
	if (!r->body && r->status >= 400) { /* a line of text a person can read */
		char msg[128];
		int ml = snprintf(msg, sizeof msg, "%d %s\n", r->status, status_text(r->status));
		r->body = malloc((size_t)ml);
		if (r->body) {
			memcpy(r->body, msg, (size_t)ml);
			r->body_len = (size_t)ml;
			r->ctype = "text/plain; charset=utf-8";
		}
	}
	int n = snprintf(hd, sizeof hd,
	                 "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
	                 r->status, status_text(r->status), r->ctype ? "Content-Type: " : "",
	                 r->ctype ? r->ctype : "", r->ctype ? "\r\n" : "", r->body_len,
	                 r->extra ? r->extra : "");
	int e = 0;
	if (n < 0 || (size_t)n >= sizeof hd || pend_add(w, hd, (size_t)n) < 0 ||
	    (!head_only && r->body_len && pend_add(w, r->body, r->body_len) < 0))
		e = -ENOMEM;
	free(r->body);
	r->body = NULL;
	free(w->h);
	w->h = NULL;
	w->hlen = w->hoff = w->hcap = 0;
	w->state = ST_REPLY;
	return e;
}

static int refuse(ws *w, int status, const char *extra)
{
	mg_http_reply r = { .status = status, .extra = extra };
	return reply(w, &r, false);
}

/* 16 bytes in base64: 22 characters of the alphabet and "==" (4.2.1 item 5). */
static bool key_ok(const mg_http_hdr *k)
{
	if (!k || k->value_len != 24 || k->value[22] != '=' || k->value[23] != '=')
		return false;
	for (int i = 0; i < 22; i++) {
		char c = k->value[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return false;
	}
	return true;
}

/* The subprotocol offered, "mqtt" first ([MQTT-6.0.0-3]), "mqttv3.1" for old clients; NULL
 * when neither (every Sec-WebSocket-Protocol line counts). */
static const char *subprotocol(const mg_http_msg *m)
{
	const char *pick = NULL;
	for (size_t i = 0; i < m->nhdr; i++) {
		const mg_http_hdr *h = &m->hdr[i];
		if (!mg_http_eq(h->name, h->name_len, "Sec-WebSocket-Protocol"))
			continue;
		if (mg_http_has_token(h->value, h->value_len, "mqtt"))
			return "mqtt";
		if (mg_http_has_token(h->value, h->value_len, "mqttv3.1"))
			pick = "mqttv3.1";
	}
	return pick;
}

static int upgrade(ws *w, const mg_http_msg *m, size_t head)
{
	int nkey, nver, nhost;
	const mg_http_hdr *conn = mg_http_header(m, "Connection", NULL);
	const mg_http_hdr *key = mg_http_header(m, "Sec-WebSocket-Key", &nkey);
	const mg_http_hdr *ver = mg_http_header(m, "Sec-WebSocket-Version", &nver);
	mg_http_header(m, "Host", &nhost);
	if (m->minor != 1 || nhost != 1 || !conn || !mg_http_has_token(conn->value, conn->value_len, "upgrade") ||
	    nkey != 1 || !key_ok(key) || nver > 1 || mg_http_header(m, "Content-Length", NULL) ||
	    mg_http_header(m, "Transfer-Encoding", NULL))
		return refuse(w, 400, NULL);
	if (!ver || !mg_http_eq(ver->value, ver->value_len, "13"))
		return refuse(w, 426, "Sec-WebSocket-Version: 13\r\n");
	const char *proto = subprotocol(m);
	if (!proto)
		return refuse(w, 400, NULL); /* not an MQTT client */
	char accept[29], hd[256];
	mg_ws_accept_key(key->value, key->value_len, accept);
	int n = snprintf(hd, sizeof hd,
	                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	                 "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: %s\r\n\r\n", accept, proto);
	if (pend_add(w, hd, (size_t)n) < 0)
		return -ENOMEM;
	w->hoff = head; /* frames sent right behind the request */
	if (w->hoff == w->hlen) { /* none: an idle connection keeps no request buffer */
		free(w->h);
		w->h = NULL;
		w->hlen = w->hoff = w->hcap = 0;
	}
	w->state = ST_OPEN;
	return 0;
}

static int answer(ws *w, const mg_http_msg *m, size_t head)
{
	const mg_http_hdr *up = mg_http_header(m, "Upgrade", NULL);
	bool get = mg_http_eq(m->method, m->method_len, "GET");
	bool headm = mg_http_eq(m->method, m->method_len, "HEAD");
	int nhost;
	mg_http_header(m, "Host", &nhost);
	if (get && up && mg_http_has_token(up->value, up->value_len, "websocket"))
		return upgrade(w, m, head);
	if (!get && !headm)
		return refuse(w, 405, "Allow: GET, HEAD\r\n");
	if (nhost > 1 || (m->minor == 1 && nhost != 1)) /* RFC 9112 3.2 */
		return refuse(w, 400, NULL);
	if (m->target[0] != '/')
		return refuse(w, 400, NULL); /* no absolute-form or asterisk-form here */
	mg_http_reply r = { .status = 404 };
	if (w->o.http)
		w->o.http(w->o.http_ud, m, &r);
	return reply(w, &r, headm);
}

static int server_handshake(ws *w)
{
	if (w->state == ST_REPLY) {
		int r = pend_flush(w);
		return r < 0 ? r : MG_WS_HTTP_DONE;
	}
	if (w->state == ST_OPEN)
		return 0;
	for (;;) {
		if (w->hlen == w->hcap) {
			int r = refuse(w, 431, NULL);
			return r < 0 ? r : server_handshake(w);
		}
		ssize_t n = mg_transport_read(&w->in, w->h + w->hlen, w->hcap - w->hlen);
		if (n == 0)
			return -ECONNRESET; /* closed before a whole request */
		if (n < 0)
			return (int)n;
		w->hlen += (size_t)n;
		mg_http_msg m;
		int h = mg_http_parse_request(w->h, w->hlen, &m);
		if (h == MG_HTTP_INCOMPLETE)
			continue;
		int r = h == MG_HTTP_INVALID ? refuse(w, 400, NULL)
		      : h == MG_HTTP_TOO_MANY ? refuse(w, 431, NULL) : answer(w, &m, (size_t)h);
		if (r < 0)
			return r;
		if (w->state == ST_OPEN) {
			r = pend_flush(w); /* the 101; what the socket does not take goes before any frame */
			return r == -EAGAIN ? 0 : r;
		}
		return server_handshake(w);
	}
}

static int client_handshake(ws *w)
{
	if (w->state == ST_OPEN)
		return 0;
	if (w->state == ST_HS_SEND) {
		int r = pend_flush(w);
		if (r < 0)
			return r;
		w->state = ST_HS_READ;
	}
	for (;;) {
		if (w->hlen == w->hcap) {
			w->err = "the broker's WebSocket handshake answer is too large";
			return -EPROTO;
		}
		ssize_t n = mg_transport_read(&w->in, w->h + w->hlen, w->hcap - w->hlen);
		if (n == 0) {
			w->err = "the broker closed the connection during the WebSocket handshake";
			return -ECONNRESET;
		}
		if (n < 0)
			return (int)n;
		w->hlen += (size_t)n;
		mg_http_msg m;
		int h = mg_http_parse_response(w->h, w->hlen, &m);
		if (h == MG_HTTP_INCOMPLETE)
			continue;
		if (h < 0) {
			w->err = "the broker's WebSocket handshake answer is not HTTP";
			return -EPROTO;
		}
		if (m.status != 101) {
			snprintf(w->errbuf, sizeof w->errbuf, "WebSocket handshake refused: HTTP %d %.*s", m.status,
			         (int)(m.reason_len > 40 ? 40 : m.reason_len), m.reason);
			w->err = w->errbuf;
			return -EPROTO;
		}
		const mg_http_hdr *up = mg_http_header(&m, "Upgrade", NULL);
		const mg_http_hdr *cn = mg_http_header(&m, "Connection", NULL);
		const mg_http_hdr *ac = mg_http_header(&m, "Sec-WebSocket-Accept", NULL);
		const mg_http_hdr *pr = mg_http_header(&m, "Sec-WebSocket-Protocol", NULL);
		char want[29];
		mg_ws_accept_key(w->key, 24, want);
		if (!up || !mg_http_eq(up->value, up->value_len, "websocket") || !cn ||
		    !mg_http_has_token(cn->value, cn->value_len, "upgrade") || !ac ||
		    ac->value_len != 28 || memcmp(ac->value, want, 28) != 0 ||
		    (pr && !mg_http_eq(pr->value, pr->value_len, "mqtt"))) {
			w->err = "the broker's WebSocket handshake answer is wrong (4.1: Upgrade, Connection, "
			         "Sec-WebSocket-Accept or -Protocol)";
			return -EPROTO;
		}
		w->hoff = (size_t)h;
		if (w->hoff == w->hlen) {
			free(w->h);
			w->h = NULL;
			w->hlen = w->hoff = w->hcap = 0;
		}
		w->state = ST_OPEN;
		return 0;
	}
}

static int ws_handshake(mg_transport *t)
{
	ws *w = W(t);
	int r = mg_transport_handshake(&w->in); /* TLS first, when it is under us */
	if (r < 0)
		return r;
	return w->server ? server_handshake(w) : client_handshake(w);
}

/* ---- the end ---- */

static void ws_free(ws *w)
{
	free(w->h);
	free(w->p);
	free(w);
}

static void ws_close(mg_transport *t)
{
	ws *w = W(t);
	if (!w)
		return;
	if (w->state == ST_OPEN && !w->frame_left) {
		close_queue(w, MG_WS_CLOSE_NORMAL); /* best effort: the socket closes either way */
		out_flush(w);
	}
	mg_transport_close(&w->in);
	ws_free(w);
	t->ctx = NULL;
	t->fd = -1;
}

static int ws_shutdown_write(mg_transport *t)
{
	ws *w = W(t);
	if (w->state == ST_OPEN && !w->frame_left)
		close_queue(w, MG_WS_CLOSE_NORMAL);
	out_flush(w); /* best effort: a close frame, or the rest of an HTTP answer */
	w->close_rcvd = w->close_sent = true; /* from here on reads only drain */
	return mg_transport_shutdown_write(&w->in);
}

const mg_transport_ops mg_ws_ops = {
	.name = "ws",
	.read = ws_read,
	.writev = ws_writev,
	.handshake = ws_handshake,
	.want_write = ws_want_write,
	.close = ws_close,
	.shutdown_write = ws_shutdown_write,
	.pending = ws_pending,
};

static ws *ws_new(mg_transport *t, mg_transport *inner, bool server, size_t hcap)
{
	ws *w = calloc(1, sizeof *w);
	if (w)
		w->h = malloc(hcap);
	if (!w || !w->h) {
		free(w);
		mg_transport_close(inner);
		return NULL;
	}
	w->hcap = hcap;
	w->in = *inner;
	w->server = server;
	t->ops = &mg_ws_ops;
	t->fd = inner->fd;
	t->ctx = w;
	inner->ops = NULL;
	inner->fd = -1;
	return w;
}

const mg_transport *mg_ws_inner(const mg_transport *t)
{
	return t->ops == &mg_ws_ops && t->ctx ? &((const ws *)t->ctx)->in : NULL;
}

int mg_ws_server_init(mg_transport *t, mg_transport *inner, const mg_ws_server_opts *o)
{
	size_t hmax = o && o->headers_max ? o->headers_max : 4096;
	ws *w = ws_new(t, inner, true, hmax);
	if (!w)
		return -ENOMEM;
	if (o)
		w->o = *o;
	mg_ws_rx_init(&w->rx, true, w->o.max_msg);
	w->state = ST_HS_READ;
	return 0;
}

int mg_ws_client_init(mg_transport *t, mg_transport *inner, const char *host, const char *path,
                      const char *headers)
{
	if (!host || (path && (path[0] != '/' || strpbrk(path, " \r\n"))) ||
	    strpbrk(host, " \r\n/") || (headers && strstr(headers, "\r\n\r\n"))) {
		mg_transport_close(inner);
		return -EINVAL;
	}
	ws *w = ws_new(t, inner, false, 8192);
	if (!w)
		return -ENOMEM;
	mg_ws_rx_init(&w->rx, false, 0);
	uint8_t k[16];
	random_bytes(k, sizeof k);
	mg_base64(k, sizeof k, w->key);
	size_t hl = headers ? strlen(headers) : 0;
	char *req = malloc(512 + strlen(host) + (path ? strlen(path) : 1) + hl);
	if (!req) {
		mg_transport_close(t);
		return -ENOMEM;
	}
	int n = sprintf(req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n"
	                "%s%s\r\n", path ? path : "/", host, w->key,
	                headers ? headers : "", hl && headers[hl - 1] != '\n' ? "\r\n" : "");
	int r = pend_add(w, req, (size_t)n);
	free(req);
	if (r < 0) {
		mg_transport_close(t);
		return -ENOMEM;
	}
	w->state = ST_HS_SEND;
	return 0;
}

const char *mg_ws_error(const mg_transport *t)
{
	return t->ops == &mg_ws_ops && W(t) ? W(t)->err : NULL;
}
