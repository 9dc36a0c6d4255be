/* client/ws.c - MQTT over WebSockets for libmidge (paho's transport="websockets"): once TCP
 * (and TLS, and a SOCKS5 proxy, when used) is up, the connection's transport becomes the
 * WebSocket row of net/ws.h over it, whose handshake (GET path, Sec-WebSocket-Protocol: mqtt,
 * the 101 and its accept key checked) runs on the client's loop without blocking it and
 * counts against the connect timeout. The CONNECT waits in obuf meanwhile, as for TLS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "net/ws.h"

bool mgc_ws_on(const midge_client *c)
{
	return c->transport == MIDGE_TRANSPORT_WEBSOCKETS;
}

/* headers: "Name: value" lines, each ended by "\r\n" or "\n" (the last may have no end); made
 * into CRLF lines. NULL when a line is empty, has no name, or holds a CR or control byte. */
static char *norm_headers(const char *h)
{
	size_t n = strlen(h);
	char *o = malloc(2 * n + 3), *q = o;
	if (!o)
		return NULL;
	const char *p = h;
	while (*p) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l && p[l - 1] == '\r')
			l--;
		const char *colon = memchr(p, ':', l);
		if (!l || !colon || colon == p)
			goto bad;
		for (size_t i = 0; i < l; i++)
			if (((unsigned char)p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
				goto bad;
		for (const char *k = p; k < colon; k++)
			if (*k == ' ' || *k == '\t')
				goto bad;
		memcpy(q, p, l);
		q += l;
		*q++ = '\r';
		*q++ = '\n';
		p = e ? e + 1 : p + l;
	}
	*q = '\0';
	return o;
bad:
	free(o);
	return NULL;
}

int midge_ws_set_options(midge_client *c, const char *path, const char *headers)
{
	if (!c || (path && (path[0] != '/' || strpbrk(path, " \t\r\n"))))
		return MIDGE_ERR_INVAL;
	char *p = path ? strdup(path) : NULL;
	char *h = headers && headers[0] ? norm_headers(headers) : NULL;
	if ((path && !p) || (headers && headers[0] && !h)) {
		free(p);
		free(h);
		return path && !p ? MIDGE_ERR_NOMEM : MIDGE_ERR_INVAL;
	}
	mgc_lock(c);
	free(c->ws_path);
	free(c->ws_headers);
	c->ws_path = p;
	c->ws_headers = h;
	mgc_unlock(c);
	return MIDGE_OK;
}

int mgc_ws_begin(midge_client *c)
{
	char host[320];
	bool v6 = strchr(c->host, ':') != NULL;
	snprintf(host, sizeof host, "%s%.256s%s:%d", v6 ? "[" : "", c->host, v6 ? "]" : "", c->port);
	mg_transport inner = c->tr;
	int r = mg_ws_client_init(&c->tr, &inner, host, c->ws_path ? c->ws_path : "/mqtt", c->ws_headers);
	if (r < 0) { /* inner was closed */
		c->tr.ops = &mg_tcp_ops;
		c->tr.fd = -1;
		mgc_log(c, MIDGE_LOG_ERR, "Client %s WebSocket: %s", mgc_cid(c), mg_plat_strerror(-r));
		mgc_conn_close(c, 0, r == -ENOMEM ? MIDGE_ERR_NOMEM : MIDGE_ERR_INVAL, NULL);
		return r == -ENOMEM ? MIDGE_ERR_NOMEM : MIDGE_ERR_INVAL;
	}
	c->ws_hs = true;
	return mgc_ws_step(c);
}

int mgc_ws_step(midge_client *c)
{
	if (!c->ws_hs)
		return MIDGE_OK;
	int r = mg_transport_handshake(&c->tr);
	c->tr_ww = mg_transport_want_write(&c->tr); /* for mgc_want_write (client.h) */
	if (r == -EAGAIN)
		return MIDGE_OK;
	if (r == 0) {
		c->ws_hs = false;
		return MIDGE_OK; /* the CONNECT waiting in obuf goes out next */
	}
	const char *why = mg_ws_error(&c->tr);
	mgc_log(c, MIDGE_LOG_ERR, "Client %s WebSocket handshake with %s:%d failed: %s", mgc_cid(c), c->host,
	        c->port, why ? why : mg_plat_strerror(-r));
	mgc_conn_close(c, 0, MIDGE_ERR_PROTOCOL, NULL);
	return MIDGE_ERR_PROTOCOL;
}
