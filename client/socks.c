/* client/socks.c - a SOCKS5 proxy between us and the broker (RFC 1928; user name and password
 * as RFC 1929): after the TCP connect to the proxy, greet it, authenticate if it asks, ask it
 * to connect to the broker (by name: the proxy resolves it, as paho's proxy_rdns), then MQTT
 * runs through as if the proxy were not there. The handshake is non-blocking like the rest of
 * the loop and counts against the connect timeout; the CONNECT already in obuf waits for it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

bool mgc_want_write(midge_client *c)
{
	if (c->socks_phase)
		return c->soutoff < c->soutlen;
	if (c->tls_hs || c->ws_hs) /* CONNECT waits in obuf; the handshake says when it needs to write */
		return c->tr_ww;
	return (c->olen > c->ooff && !c->log_fence) || c->tr_ww;
}

static void sput(midge_client *c, const void *p, size_t n)
{
	memcpy(c->sout + c->soutlen, p, n); /* sout holds the largest message (a 515-byte auth) */
	c->soutlen += n;
}

void mgc_socks_begin(midge_client *c)
{
	c->soutlen = c->soutoff = c->sinlen = 0;
	/* version 5; methods: 0 no authentication, and 2 user name / password if we have one */
	if (c->proxy_user)
		sput(c, "\x05\x02\x00\x02", 4);
	else
		sput(c, "\x05\x01\x00", 3);
	c->socks_phase = 1;
}

static int fail(midge_client *c, const char *why)
{
	mgc_log(c, MIDGE_LOG_ERR, "Client %s SOCKS5 proxy %s:%d: %s", mgc_cid(c), c->proxy_host,
	       c->proxy_port, why);
	mgc_conn_close(c, 0, MIDGE_ERR_PROXY, NULL);
	return MIDGE_ERR_PROXY;
}

static const char *reply_name(uint8_t rep)
{
	static const char *const names[] = { "succeeded", "general SOCKS server failure",
		"connection not allowed by ruleset", "network unreachable", "host unreachable",
		"connection refused", "TTL expired", "command not supported",
		"address type not supported" };
	return rep < sizeof(names) / sizeof(names[0]) ? names[rep] : "unknown reply";
}

/* CONNECT to the broker: an address literal as one, a name as a name. */
static int send_request(midge_client *c)
{
	uint8_t a[16];
	size_t hl = strlen(c->host);
	sput(c, "\x05\x01\x00", 3);
	if (inet_pton(AF_INET, c->host, a) == 1) {
		sput(c, "\x01", 1);
		sput(c, a, 4);
	} else if (inet_pton(AF_INET6, c->host, a) == 1) {
		sput(c, "\x04", 1);
		sput(c, a, 16);
	} else {
		if (hl > 255)
			return fail(c, "host name longer than 255 bytes");
		uint8_t l = (uint8_t)hl;
		sput(c, "\x03", 1);
		sput(c, &l, 1);
		sput(c, c->host, hl);
	}
	uint8_t port[2] = { (uint8_t)(c->port >> 8), (uint8_t)c->port };
	sput(c, port, 2);
	c->socks_phase = 3;
	return MIDGE_OK;
}

static void consume(midge_client *c, size_t n)
{
	memmove(c->sin, c->sin + n, c->sinlen - n);
	c->sinlen -= n;
}

/* What the proxy said so far, under mu. */
static int step(midge_client *c)
{
	for (;;) {
		if (c->socks_phase == 1) {
			if (c->sinlen < 2)
				return MIDGE_OK;
			if (c->sin[0] != 5)
				return fail(c, "not a SOCKS5 proxy");
			uint8_t m = c->sin[1];
			consume(c, 2);
			if (m == 0) {
				if (send_request(c))
					return MIDGE_ERR_PROXY;
			} else if (m == 2 && c->proxy_user) {
				uint8_t ul = (uint8_t)strlen(c->proxy_user);
				uint8_t pl = c->proxy_pass ? (uint8_t)strlen(c->proxy_pass) : 0;
				sput(c, "\x01", 1);
				sput(c, &ul, 1);
				sput(c, c->proxy_user, ul);
				sput(c, &pl, 1);
				if (pl)
					sput(c, c->proxy_pass, pl);
				c->socks_phase = 2;
			} else {
				return fail(c, "no acceptable authentication method");
			}
		} else if (c->socks_phase == 2) {
			if (c->sinlen < 2)
				return MIDGE_OK;
			uint8_t st = c->sin[1];
			consume(c, 2);
			if (st != 0)
				return fail(c, "user name or password refused");
			if (send_request(c))
				return MIDGE_ERR_PROXY;
		} else {
			if (c->sinlen < 5)
				return MIDGE_OK;
			if (c->sin[0] != 5)
				return fail(c, "malformed reply");
			if (c->sin[1] != 0)
				return fail(c, reply_name(c->sin[1]));
			size_t need = c->sin[3] == 1 ? 10 : c->sin[3] == 4 ? 22 :
			              c->sin[3] == 3 ? 7u + c->sin[4] : 0;
			if (!need)
				return fail(c, "malformed reply");
			if (c->sinlen < need)
				return MIDGE_OK;
			if (c->sinlen > need)
				return fail(c, "bytes after the reply"); /* the broker speaks after CONNECT only */
			c->sinlen = 0;
			c->socks_phase = 0;
			mgc_log(c, MIDGE_LOG_DEBUG, "Client %s connected through SOCKS5 proxy %s:%d",
			       mgc_cid(c), c->proxy_host, c->proxy_port);
			if (mgc_tls_on(c))
				return mgc_tls_begin(c); /* TLS to the broker, through the tunnel */
			if (mgc_ws_on(c))
				return mgc_ws_begin(c);
			return MIDGE_OK; /* the CONNECT in obuf goes out on the next write */
		}
		if (c->soutoff < c->soutlen)
			return MIDGE_OK; /* our next message first */
	}
}

int mgc_socks_read(midge_client *c)
{
	mgc_lock(c);
	ssize_t n = mg_transport_read(&c->tr, c->sin + c->sinlen, sizeof(c->sin) - c->sinlen);
	int rc = MIDGE_OK;
	if (n == -EAGAIN)
		rc = MIDGE_OK;
	else if (n <= 0)
		rc = fail(c, n == 0 ? "closed the connection" : mg_plat_strerror((int)-n));
	else {
		c->sinlen += (size_t)n;
		rc = step(c);
	}
	mgc_unlock(c);
	return rc;
}

int mgc_socks_write(midge_client *c)
{
	while (c->soutoff < c->soutlen) {
		struct iovec iov = { c->sout + c->soutoff, c->soutlen - c->soutoff };
		ssize_t n = mg_transport_writev(&c->tr, &iov, 1);
		if (n == -EAGAIN)
			return MIDGE_OK;
		if (n < 0)
			return fail(c, mg_plat_strerror((int)-n));
		c->soutoff += (size_t)n;
	}
	c->soutoff = c->soutlen = 0;
	return MIDGE_OK;
}

int midge_proxy_set(midge_client *c, int type, const char *host, int port,
                    const char *username, const char *password)
{
	if (!c || (host && (!host[0] || port < 1 || port > 65535)))
		return MIDGE_ERR_INVAL;
	if (host && type != MIDGE_PROXY_SOCKS5)
		return MIDGE_ERR_NOT_SUPPORTED;
	/* RFC 1929: each at most 255 bytes; a password needs a user name */
	if ((username && (!username[0] || strlen(username) > 255)) ||
	    (password && (strlen(password) > 255 || !username)))
		return MIDGE_ERR_INVAL;
	char *h = host ? strdup(host) : NULL;
	char *u = host && username ? strdup(username) : NULL;
	char *p = host && password ? strdup(password) : NULL;
	if ((host && !h) || (host && username && !u) || (host && password && !p)) {
		free(h);
		free(u);
		free(p);
		return MIDGE_ERR_NOMEM;
	}
	mgc_lock(c);
	free(c->proxy_host);
	free(c->proxy_user);
	free(c->proxy_pass);
	c->proxy_host = h;
	c->proxy_port = port;
	c->proxy_user = u;
	c->proxy_pass = p;
	mgc_unlock(c);
	return MIDGE_OK;
}
