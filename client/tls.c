/* client/tls.c - TLS for libmidge with OpenSSL: the SSL_CTX built at connect from the settings
 * (midge_tls_*, tls_opts.c), and the handshake between the TCP (or SOCKS5) connect and the CONNECT, driven by the
 * loop through the TLS row of net/ (net/tls.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "client/tls_opts.h"
#include "net/tls.h"

/* The settings and their setters are tls_opts.c's; made is the SSL_CTX. */

int mgc_tls_be_supports(const mgc_tls_ask *ask)
{
	(void)ask; /* OpenSSL does all that midge_tls_* asks */
	return MIDGE_OK;
}

void mgc_tls_be_drop(void *made)
{
	SSL_CTX_free(made); /* an SSL made from it holds its own reference */
}

static int version_of(int min_version)
{
	return min_version == MGC_TLS_1_3 ? TLS1_3_VERSION :
	       min_version == MGC_TLS_1_1 ? TLS1_1_VERSION : TLS1_2_VERSION;
}

/* ---- the context ---- */

/* OpenSSL's error queue into on_log, in libmosquitto's words, and empty it. Under mu. */
static void log_queue(midge_client *c)
{
	unsigned long e;
	char buf[256];
	for (int i = 0; (e = ERR_get_error()) != 0; i++) {
		ERR_error_string_n(e, buf, sizeof(buf));
		mgc_log(c, MIDGE_LOG_ERR, "OpenSSL Error[%d]: %s", i, buf);
	}
}

/* The last failure of the connection's TLS transport into on_log. Under mu, before close. */
void mgc_tls_log_errors(midge_client *c)
{
	char buf[256];
	for (int i = 0; mg_tls_error(&c->tr, i, buf, sizeof(buf)); i++)
		mgc_log(c, MIDGE_LOG_ERR, "OpenSSL Error[%d]: %s", i, buf);
}

static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity,
                                  unsigned int max_identity_len, unsigned char *psk,
                                  unsigned int max_psk_len)
{
	(void)hint;
	midge_client *c = SSL_get_app_data(ssl); /* the handshake runs under mu: c->tls is stable */
	mgc_tls *t = c->tls;
	size_t il = strlen(t->psk_identity);
	if (il + 1 > max_identity_len || t->psk_len > max_psk_len)
		return 0;
	memcpy(identity, t->psk_identity, il + 1);
	memcpy(psk, t->psk, t->psk_len);
	return (unsigned int)t->psk_len;
}

/* Make the SSL_CTX from t. Runs without mu (a key's password callback is user code), while
 * t->building keeps the settings still. NULL after queueing log lines into *why. */
static SSL_CTX *make_ctx(const mgc_tls *t, void *userdata, char *why, size_t whylen)
{
	/* net/'s base: TLS 1.2 the floor, no compression or renegotiation, an end without
	 * close_notify is an end of stream */
	SSL_CTX *ctx = mg_tls_ctx_new(MG_TLS_CLIENT);
	if (!ctx) {
		snprintf(why, whylen, "Error: Unable to create TLS context.");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, version_of(t->min_version));
	if (t->ciphers && !SSL_CTX_set_cipher_list(ctx, t->ciphers)) {
		snprintf(why, whylen, "Error: Unable to set TLS ciphers. Check cipher list \"%s\".", t->ciphers);
		goto fail;
	}
	if (t->psk_len && !t->cafile && !t->capath && !t->os_certs) {
		SSL_CTX_set_psk_client_callback(ctx, psk_client_cb);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* no certificates in PSK */
		return ctx;
	}
	if (t->cafile || t->capath) {
		if (!SSL_CTX_load_verify_locations(ctx, t->cafile, t->capath)) {
			if (t->cafile)
				snprintf(why, whylen, "Error: Unable to load CA certificates, check cafile \"%s\".", t->cafile);
			else
				snprintf(why, whylen, "Error: Unable to load CA certificates, check capath \"%s\".", t->capath);
			goto fail;
		}
	}
	if (t->os_certs || (!t->cafile && !t->capath))
		SSL_CTX_set_default_verify_paths(ctx);
	SSL_CTX_set_verify(ctx, t->cert_reqs == MIDGE_TLS_CERT_NONE ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	if (t->certfile) {
		/* Without a callback OpenSSL's own asks on the terminal, as for mosquitto_pub; it must
		 * not get the userdata, which it would take for the password itself. */
		if (t->pw_cb) {
			SSL_CTX_set_default_passwd_cb(ctx, t->pw_cb);
			SSL_CTX_set_default_passwd_cb_userdata(ctx, userdata);
		}
		if (!SSL_CTX_use_certificate_chain_file(ctx, t->certfile)) {
			snprintf(why, whylen, "Error: Unable to load client certificate \"%s\".", t->certfile);
			goto fail;
		}
		if (!SSL_CTX_use_PrivateKey_file(ctx, t->keyfile, SSL_FILETYPE_PEM)) {
			snprintf(why, whylen, "Error: Unable to load client key file \"%s\".", t->keyfile);
			goto fail;
		}
		if (!SSL_CTX_check_private_key(ctx)) {
			snprintf(why, whylen, "Error: Client certificate/key are inconsistent.");
			goto fail;
		}
		/* the password callback is user code: it must not be called again from the loop */
		SSL_CTX_set_default_passwd_cb(ctx, NULL);
		SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void *mgc_tls_be_make(midge_client *c, const mgc_tls *t, void *userdata)
{
	char why[512] = "";
	ERR_clear_error();
	SSL_CTX *ctx = make_ctx(t, userdata, why, sizeof(why));
	if (!ctx) {
		mgc_lock(c);
		mgc_log(c, MIDGE_LOG_ERR, "%s", why);
		log_queue(c); /* this thread's OpenSSL queue, which make_ctx filled */
		mgc_unlock(c);
	}
	ERR_clear_error();
	return ctx;
}

/* ---- the handshake ---- */

static bool is_address(const char *host)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int mgc_tls_begin(midge_client *c)
{
	/* SNI for a name (RFC 6066 forbids it for an address) */
	if (!c->tls || !c->tls->made) { /* another thread's connect is still making it */
		mgc_log(c, MIDGE_LOG_ERR, "Client %s TLS: no context", mgc_cid(c));
		mgc_conn_close(c, 0, MIDGE_ERR_TLS, NULL);
		return MIDGE_ERR_TLS;
	}
	int fd = c->tr.fd;
	if (mg_tls_init(&c->tr, fd, c->tls->made, MG_TLS_CLIENT, is_address(c->host) ? NULL : c->host)) {
		/* mg_tls_init closed fd; the transport is the TCP row's again, closed */
		c->tr.ops = &mg_tcp_ops;
		c->tr.fd = -1;
		mgc_log(c, MIDGE_LOG_ERR, "Client %s TLS: out of memory", mgc_cid(c));
		mgc_conn_close(c, 0, MIDGE_ERR_TLS, NULL);
		return MIDGE_ERR_TLS;
	}
	SSL *ssl = mg_tls_ssl(&c->tr);
	SSL_set_app_data(ssl, c); /* for the PSK callback */
	/* A broker that hangs up in the handshake (a plaintext port) is OpenSSL's "unexpected eof
	 * while reading", as libmosquitto reports it; once up, such an end is an end of stream
	 * again (mgc_tls_step), as net/tls.h wants. */
	SSL_clear_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* The certificate must name the host we were asked to reach, DNS name or IP address
	 * (SSL_set1_host tells them apart). */
	if (!c->tls->insecure && c->tls->cert_reqs != MIDGE_TLS_CERT_NONE && !SSL_set1_host(ssl, c->host)) {
		mgc_conn_close(c, 0, MIDGE_ERR_TLS, NULL);
		return MIDGE_ERR_TLS;
	}
	c->tls_hs = true;
	return mgc_tls_step(c);
}

int mgc_tls_step(midge_client *c)
{
	if (!c->tls_hs)
		return MIDGE_OK;
	int r = mg_transport_handshake(&c->tr);
	c->tr_ww = mg_transport_want_write(&c->tr);
	if (r == -EAGAIN)
		return MIDGE_OK;
	if (r == 0) {
		/* No log line: libmosquitto has none, and midge_pub -d prints what mosquitto_pub -d
		 * prints. */
		c->tls_hs = false;
		SSL_set_options(mg_tls_ssl(&c->tr), SSL_OP_IGNORE_UNEXPECTED_EOF);
		if (mgc_ws_on(c))
			return mgc_ws_begin(c); /* wss: the WebSocket upgrade inside TLS */
		return MIDGE_OK; /* the CONNECT waiting in obuf goes out next */
	}
	SSL *ssl = mg_tls_ssl(&c->tr);
	long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	/* libmosquitto's lines, which midge_pub -d prints as mosquitto_pub -d does: the host name
	 * line from its verify callback, then OpenSSL's queue */
	if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
		mgc_log(c, MIDGE_LOG_ERR, "Error: host name verification failed.");
	else if (r != -EPROTO)
		mgc_log(c, MIDGE_LOG_ERR, "Client %s TLS handshake failed: %s", mgc_cid(c), strerror(-r));
	mgc_tls_log_errors(c);
	mgc_conn_close(c, 0, MIDGE_ERR_TLS, NULL);
	return MIDGE_ERR_TLS;
}
