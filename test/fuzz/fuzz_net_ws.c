/*
 * test/fuzz/fuzz_net_ws.c - the WebSocket frame decoder (net/ws_frame.c) on arbitrary bytes.
 * Input: 1 byte of setup (bit 0: decode as the server, which wants masked frames; bits 1-7:
 * how reads are cut), then the stream. Decoded in place whole, one byte at a time and in reads
 * of varying size, the stream must give the same data bytes, the same control frames and the
 * same error: how TCP cuts a stream never changes what the framer sees. Every close payload
 * also goes through mg_ws_close_status.
 */
#include <stdlib.h>
#include <string.h>

#include "net/ws.h"

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)
#define MAXEV 64

typedef struct {
	uint8_t *data;
	size_t n;
	int ev[MAXEV], nev;
	uint8_t ctl[MAXEV][126];
	uint8_t clen[MAXEV];
	int err;
} outcome;

static void run(const uint8_t *s, size_t len, bool server, unsigned cut, outcome *o)
{
	mg_ws_rx rx;
	mg_ws_rx_init(&rx, server, 4096); /* a small limit, so 1009 is reachable */
	o->n = 0;
	o->nev = 0;
	o->err = 0;
	uint8_t *buf = malloc(len ? len : 1);
	MUST(buf);
	unsigned prng = 12345;
	for (size_t at = 0; at < len && !o->err;) {
		size_t n = len - at;
		if (cut == 1) {
			n = 1;
		} else if (cut > 1) {
			prng = prng * 1103515245u + 12345u;
			size_t k = 1 + (prng >> 16) % cut;
			n = k < n ? k : n;
		}
		memcpy(buf, s + at, n);
		at += n;
		size_t pos = 0, out = 0;
		while (pos < n) {
			size_t before = pos;
			int ev = mg_ws_rx_run(&rx, buf, n, &pos, &out);
			MUST(out <= pos && pos <= n);
			if (ev < 0) {
				MUST(ev == -1002 || ev == -1003 || ev == -1009);
				o->err = ev;
				break;
			}
			MUST(ev != MG_WS_RX_MORE || pos == n);
			MUST(ev == MG_WS_RX_MORE || pos > before || rx.clen == 0);
			if (ev != MG_WS_RX_MORE && o->nev < MAXEV) {
				MUST(rx.clen <= 125);
				o->ev[o->nev] = ev;
				o->clen[o->nev] = rx.clen;
				memcpy(o->ctl[o->nev], rx.ctl, rx.clen);
				o->nev++;
				if (ev == MG_WS_RX_CLOSE) {
					int st = mg_ws_close_status(rx.ctl, rx.clen);
					MUST(st == 1005 || st == -1002 || st == -1007 || (st >= 1000 && st <= 4999));
				}
			}
		}
		memcpy(o->data + o->n, buf, out);
		o->n += out;
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t len)
{
	if (len < 1)
		return 0;
	bool server = d[0] & 1;
	unsigned cut = 2 + (d[0] >> 1);
	d++;
	len--;
	outcome a = { .data = malloc(len + 1) }, b = { .data = malloc(len + 1) }, c = { .data = malloc(len + 1) };
	MUST(a.data && b.data && c.data);
	run(d, len, server, 0, &a);
	run(d, len, server, 1, &b);
	run(d, len, server, cut, &c);
	const outcome *x[2] = { &b, &c };
	for (int i = 0; i < 2; i++) {
		MUST(x[i]->err == a.err && x[i]->nev == a.nev);
		/* an error may come at a different read, but the data before it is the same prefix */
		size_t n = a.n < x[i]->n ? a.n : x[i]->n;
		MUST(a.err || x[i]->n == a.n);
		MUST(memcmp(a.data, x[i]->data, n) == 0);
		for (int k = 0; k < a.nev; k++)
			MUST(x[i]->ev[k] == a.ev[k] && x[i]->clen[k] == a.clen[k] &&
			     memcmp(x[i]->ctl[k], a.ctl[k], a.clen[k]) == 0);
	}
	MUST(a.n <= len);
	free(a.data);
	free(b.data);
	free(c.data);
	return 0;
}
