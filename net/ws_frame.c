/* net/ws_frame.c - RFC 6455 frames without I/O: the in-place decoder, frame headers, close
 * payloads, and the handshake's key (SHA-1 and base64, a few dozen lines each rather than a
 * crypto library for one hash of 60 bytes per connection). */
#include "net/ws.h"

#include <string.h>

void mg_ws_rx_init(mg_ws_rx *rx, bool server, uint64_t max_msg)
{
	memset(rx, 0, sizeof *rx);
	rx->want_masked = server;
	rx->max_msg = max_msg ? max_msg : MG_WS_MAX_MSG;
}

static size_t header_need(const mg_ws_rx *rx)
{
	if (rx->hlen < 2)
		return 2;
	uint8_t l7 = rx->hdr[1] & 0x7f;
	return 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((rx->hdr[1] & 0x80) ? 4 : 0);
}

/* A whole header in rx->hdr: check it against the rules and start its frame. */
static int begin_frame(mg_ws_rx *rx)
{
	const uint8_t *h = rx->hdr;
	bool fin = h[0] & 0x80, masked = h[1] & 0x80;
	uint8_t op = h[0] & 0x0f, l7 = h[1] & 0x7f;
	size_t at = 2;
	uint64_t len = l7;
	if (h[0] & 0x70)
		return -MG_WS_CLOSE_PROTOCOL; /* RSV bits: no extension was negotiated */
	if (masked != rx->want_masked)
		return -MG_WS_CLOSE_PROTOCOL; /* 5.1: clients mask every frame, servers none */
	if (l7 == 126) {
		len = (uint64_t)h[2] << 8 | h[3];
		at = 4;
		if (len < 126)
			return -MG_WS_CLOSE_PROTOCOL; /* 5.2: the minimal number of bytes */
	} else if (l7 == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | h[2 + i];
		at = 10;
		if (len >> 63 || len < 65536)
			return -MG_WS_CLOSE_PROTOCOL;
	}
	if (masked)
		memcpy(rx->mask, h + at, 4);
	if (op >= 0x8) {
		if (op != MG_WS_OP_CLOSE && op != MG_WS_OP_PING && op != MG_WS_OP_PONG)
			return -MG_WS_CLOSE_PROTOCOL;
		if (!fin || len > 125)
			return -MG_WS_CLOSE_PROTOCOL; /* 5.5: control frames are whole and short */
	} else if (op == MG_WS_OP_CONT) {
		if (!rx->in_msg)
			return -MG_WS_CLOSE_PROTOCOL;
	} else if (rx->in_msg) {
		return -MG_WS_CLOSE_PROTOCOL; /* 5.4: a new message inside a fragmented one */
	} else if (op == MG_WS_OP_TEXT) {
		return -MG_WS_CLOSE_UNSUPPORTED; /* [MQTT-6.0.0-1]: MQTT travels in binary frames */
	} else if (op != MG_WS_OP_BINARY) {
		return -MG_WS_CLOSE_PROTOCOL;
	} else {
		rx->msg_len = 0;
	}
	if (op < 0x8) {
		if (len > rx->max_msg - rx->msg_len)
			return -MG_WS_CLOSE_TOO_BIG;
		rx->msg_len += len;
		rx->in_msg = !fin;
	}
	rx->op = op;
	rx->fin = fin;
	rx->masked = masked;
	rx->left = len;
	rx->moff = 0;
	rx->clen = 0;
	rx->hlen = 0;
	rx->in_frame = true;
	return 0;
}

/* Move n payload bytes from src down to dst (dst <= src), unmasking them. Eight at a time:
 * each word is loaded before anything at or after it is stored, so the overlap is safe. */
static void unmask_move(mg_ws_rx *rx, uint8_t *dst, const uint8_t *src, size_t n)
{
	if (!rx->masked) {
		if (dst != src)
			memmove(dst, src, n);
		return;
	}
	size_t i = 0;
	if (n >= 16) {
		uint8_t m8[8];
		for (int k = 0; k < 8; k++)
			m8[k] = rx->mask[(rx->moff + k) & 3];
		uint64_t m;
		memcpy(&m, m8, 8);
		for (; i + 8 <= n; i += 8) {
			uint64_t v;
			memcpy(&v, src + i, 8);
			v ^= m;
			memcpy(dst + i, &v, 8);
		}
	}
	for (; i < n; i++)
		dst[i] = src[i] ^ rx->mask[(rx->moff + i) & 3];
	rx->moff = (uint8_t)((rx->moff + n) & 3);
}

int mg_ws_rx_run(mg_ws_rx *rx, uint8_t *buf, size_t n, size_t *pos, size_t *out)
{
	size_t p = *pos, o = *out;
	int ev = MG_WS_RX_MORE;
	while (p < n && ev == MG_WS_RX_MORE) {
		if (!rx->in_frame) {
			while (p < n && rx->hlen < header_need(rx))
				rx->hdr[rx->hlen++] = buf[p++];
			if (rx->hlen < header_need(rx))
				break;
			int r = begin_frame(rx);
			if (r < 0) {
				*pos = p;
				*out = o;
				return r;
			}
		} else {
			size_t take = n - p < rx->left ? n - p : (size_t)rx->left;
			if (rx->op >= 0x8) {
				unmask_move(rx, rx->ctl + rx->clen, buf + p, take);
				rx->clen = (uint8_t)(rx->clen + take);
			} else {
				unmask_move(rx, buf + o, buf + p, take);
				o += take;
			}
			p += take;
			rx->left -= take;
		}
		if (rx->in_frame && rx->left == 0) {
			rx->in_frame = false;
			if (rx->op == MG_WS_OP_PING)
				ev = MG_WS_RX_PING;
			else if (rx->op == MG_WS_OP_PONG)
				ev = MG_WS_RX_PONG;
			else if (rx->op == MG_WS_OP_CLOSE)
				ev = MG_WS_RX_CLOSE;
		}
	}
	*pos = p;
	*out = o;
	return ev;
}

size_t mg_ws_frame_header(uint8_t *out, uint8_t op, bool fin, uint64_t len, const uint8_t *mask)
{
	size_t n = 2;
	out[0] = (uint8_t)((fin ? 0x80 : 0) | (op & 0x0f));
	uint8_t mbit = mask ? 0x80 : 0;
	if (len < 126) {
		out[1] = (uint8_t)(mbit | len);
	} else if (len < 65536) {
		out[1] = mbit | 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		n = 4;
	} else {
		out[1] = mbit | 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		n = 10;
	}
	if (mask) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

int mg_ws_close_status(const uint8_t *p, size_t n)
{
	if (n == 0)
		return 1005; /* no status: "no status received" */
	if (n == 1)
		return -MG_WS_CLOSE_PROTOCOL;
	int code = p[0] << 8 | p[1];
	/* 7.4: codes an endpoint may send; 1004-1006 and 1015 are reserved, 1016-2999 unassigned */
	bool ok = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	          (code >= 3000 && code <= 4999);
	if (!ok)
		return -MG_WS_CLOSE_PROTOCOL;
	if (!utf8_ok(p + 2, n - 2))
		return -MG_WS_CLOSE_BAD_DATA;
	return code;
}

/* ---- SHA-1 (FIPS 180-4), for the handshake's accept key only ---- */

static uint32_t rol(uint32_t x, int n)
{
	return x << n | x >> (32 - n);
}

static void sha1_block(uint32_t h[5], const uint8_t *b)
{
	uint32_t w[80];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 | (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
	for (int i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20) {
			f = (bb & c) | (~bb & d);
			k = 0x5a827999;
		} else if (i < 40) {
			f = bb ^ c ^ d;
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = (bb & c) | (bb & d) | (c & d);
			k = 0x8f1bbcdc;
		} else {
			f = bb ^ c ^ d;
			k = 0xca62c1d6;
		}
		uint32_t t = rol(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol(bb, 30);
		bb = a;
		a = t;
	}
	h[0] += a;
	h[1] += bb;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

void mg_sha1(const void *data, size_t len, uint8_t out[20])
{
	uint32_t h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
	const uint8_t *p = data;
	size_t left = len;
	while (left >= 64) {
		sha1_block(h, p);
		p += 64;
		left -= 64;
	}
	uint8_t last[128] = { 0 };
	memcpy(last, p, left);
	last[left] = 0x80;
	size_t blocks = left + 9 <= 64 ? 1 : 2;
	uint64_t bits = (uint64_t)len * 8;
	for (int i = 0; i < 8; i++)
		last[blocks * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
	for (size_t i = 0; i < blocks; i++)
		sha1_block(h, last + 64 * i);
	for (int i = 0; i < 5; i++) {
		out[4 * i] = (uint8_t)(h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h[i] >> 8);
		out[4 * i + 3] = (uint8_t)h[i];
	}
}

size_t mg_base64(const uint8_t *in, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
		             (i + 2 < n ? in[i + 2] : 0);
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

void mg_ws_accept_key(const char *key, size_t key_len, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	uint8_t buf[128], d[20];
	if (key_len > sizeof buf - (sizeof guid - 1))
		key_len = sizeof buf - (sizeof guid - 1); /* callers pass 24-character keys */
	memcpy(buf, key, key_len);
	memcpy(buf + key_len, guid, sizeof guid - 1);
	mg_sha1(buf, key_len + sizeof guid - 1, d);
	mg_base64(d, 20, out);
}
