/*
 * net/ws.h - MQTT over WebSockets (RFC 6455): the frame decoder, the opening handshake, and
 * the "ws" row of the transport table (net/transport.h) for both ends of a connection.
 *
 * The transport's read hands plain MQTT stream bytes to the one framer (net/framer.h): frame
 * headers are taken out and payloads unmasked in the caller's buffer, in place. Its writev
 * puts one frame header in front of whatever the caller gathered for this flush (one frame
 * per flush, not per message); on the broker's side the payloads themselves go to the socket
 * untouched (a server does not mask). A wss connection is this transport over the TLS one:
 * ws reads and writes through an inner mg_transport, whatever it is.
 */
#ifndef MG_NET_WS_H
#define MG_NET_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/http.h"
#include "net/transport.h"

/* ---- the frame decoder: pure, no I/O (fuzz_net_ws.c calls it) ---- */

enum {
	MG_WS_OP_CONT = 0x0, MG_WS_OP_TEXT = 0x1, MG_WS_OP_BINARY = 0x2,
	MG_WS_OP_CLOSE = 0x8, MG_WS_OP_PING = 0x9, MG_WS_OP_PONG = 0xA,
};

/* Close status codes we send (RFC 6455 7.4.1). */
enum {
	MG_WS_CLOSE_NORMAL = 1000, MG_WS_CLOSE_GOING_AWAY = 1001, MG_WS_CLOSE_PROTOCOL = 1002,
	MG_WS_CLOSE_UNSUPPORTED = 1003, MG_WS_CLOSE_BAD_DATA = 1007, MG_WS_CLOSE_TOO_BIG = 1009,
};

/* What mg_ws_rx_run stopped for. Negative: the stream is broken, close with -code. */
enum { MG_WS_RX_MORE = 0, MG_WS_RX_PING, MG_WS_RX_PONG, MG_WS_RX_CLOSE };

typedef struct mg_ws_rx {
	uint64_t left;       /* payload bytes of the current frame still to come */
	uint64_t msg_len;    /* data bytes of the current message so far */
	uint64_t max_msg;    /* more than this in one message: 1009 */
	uint8_t hdr[14];     /* a frame header that has not fully arrived */
	uint8_t hlen;
	uint8_t op;          /* opcode of the current frame */
	uint8_t mask[4];
	uint8_t moff;        /* position in the mask of the next payload byte */
	bool masked;         /* the current frame is masked */
	bool fin;
	bool in_msg;         /* a data message has begun and its last frame not yet come */
	bool in_frame;       /* a header was read and its payload not all */
	bool want_masked;    /* a server: every frame must be masked; a client: none may be */
	uint8_t ctl[125];    /* the payload of the control frame being read */
	uint8_t clen;
} mg_ws_rx;

void mg_ws_rx_init(mg_ws_rx *rx, bool server, uint64_t max_msg);
/* Decode buf[*pos..n) in place: the payload bytes of binary data frames (unmasked) are moved
 * to buf[*out..) (the caller starts *out at or before *pos: data never moves right), *pos and
 * *out advance. Stops at the end of the input (MG_WS_RX_MORE) or after a whole control frame
 * (PING / PONG / CLOSE: its payload is rx->ctl[0..clen)), so the caller can answer it and
 * call again. Negative: -close code (1002, 1003, 1007, 1009) for the frame that broke a rule. */
int mg_ws_rx_run(mg_ws_rx *rx, uint8_t *buf, size_t n, size_t *pos, size_t *out);

/* A frame header into out (at most 14 bytes); mask NULL: unmasked. Returns its size. */
size_t mg_ws_frame_header(uint8_t *out, uint8_t op, bool fin, uint64_t len, const uint8_t *mask);
/* The close status of a CLOSE payload (1005 when it has none), or -1002 when the payload is
 * not a valid close (1 byte, a code one may not send) and -1007 when its reason is not UTF-8. */
int mg_ws_close_status(const uint8_t *p, size_t n);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), 28 characters and a NUL. */
void mg_ws_accept_key(const char *key, size_t key_len, char out[29]);
/* base64 of n bytes into out (4 * ((n + 2) / 3) + 1 bytes with the NUL); returns the length. */
size_t mg_base64(const uint8_t *in, size_t n, char *out);
void mg_sha1(const void *data, size_t len, uint8_t out[20]);

/* ---- the transport ---- */

/* A plain HTTP request (not an upgrade) on a WebSockets listener: the server's owner answers
 * it (static files, /metrics). Fill *r; body is malloc'd and the transport frees it. */
typedef struct mg_http_reply {
	int status;             /* 200, 404, ... */
	const char *ctype;      /* Content-Type, or NULL */
	const char *extra;      /* more header lines, each ending "\r\n", or NULL */
	char *body;             /* malloc'd or NULL; the transport takes ownership */
	size_t body_len;
} mg_http_reply;
typedef void (*mg_ws_http_fn)(void *ud, const mg_http_msg *req, mg_http_reply *r);

typedef struct mg_ws_server_opts {
	size_t headers_max;     /* largest request head (websockets_headers_size); 0 = 4096 */
	uint64_t max_msg;       /* largest WebSocket message; 0 = MG_WS_MAX_MSG */
	mg_ws_http_fn http;     /* NULL: every plain request gets 404 */
	void *http_ud;
} mg_ws_server_opts;

/* The largest message taken: the largest MQTT packet (1 + 4 + 268,435,455 bytes), so one whole
 * packet always fits; larger is 1009. Messages are never buffered whole (bytes stream through
 * to the framer), so the limit costs no memory. */
#define MG_WS_MAX_MSG 268435460ull

/* Make t a server WebSocket over inner (plain TCP or TLS, whose handshake is done), taking
 * ownership of inner. The opening handshake runs in mg_transport's handshake:
 *   0: upgraded, MQTT flows;  -EAGAIN: call again when readable (or writable: want_write);
 *   MG_WS_HTTP_DONE: a plain HTTP request was answered (or refused: 400, 404, 405, 431) and
 *   the answer written: close the connection;  other negative errno: failed.
 * -ENOMEM when it cannot allocate (inner is then closed). */
int mg_ws_server_init(mg_transport *t, mg_transport *inner, const mg_ws_server_opts *o);
#define MG_WS_HTTP_DONE (-ECONNABORTED)

/* Make t a client WebSocket over inner: the handshake sends GET path with Host: host (the
 * header's value: "name:port", "[v6]:port"),
 * Sec-WebSocket-Protocol: mqtt and the extra header lines (each "Name: value\r\n", or NULL),
 * then waits for the 101 and checks it. Returns 0 or -ENOMEM / -EINVAL. After a failed
 * handshake mg_ws_error(t) says why (for a user's log). */
int mg_ws_client_init(mg_transport *t, mg_transport *inner, const char *host, const char *path,
                      const char *headers);
const char *mg_ws_error(const mg_transport *t);
/* The transport a WebSocket runs over (TCP, or TLS for wss), or NULL if t is not one. */
const mg_transport *mg_ws_inner(const mg_transport *t);
/* The read fails with this when the peer broke the protocol (a close frame with the code is on
 * its way out): a lingering close lets the peer read it. */
#define MG_WS_EPROTO (-EPROTO)

extern const mg_transport_ops mg_ws_ops;

#endif
