/* client/tls_opts.h - the midge_tls_* settings of a client, shared by the two TLS backends
 * (client/tls.c with OpenSSL, client/tls_schannel.c with Windows' Schannel). tls_opts.c owns
 * the settings and the public setters; a backend owns what it makes from them at a connect
 * (`made`) and answers the two hooks below. */
#ifndef MIDGE_CLIENT_TLS_OPTS_H
#define MIDGE_CLIENT_TLS_OPTS_H

#include "client/client.h"

/* The lowest TLS version midge_tls_opts_set allows, as a backend-neutral number. */
enum { MGC_TLS_1_1 = 11, MGC_TLS_1_2 = 12, MGC_TLS_1_3 = 13 };

/* All fields under mu; read without it only by the backend's mgc_tls_prepare while building
 * is set (the setters then answer MIDGE_ERR_BUSY). */
struct mgc_tls {
	bool on;          /* TLS at the next connect */
	char *cafile, *capath, *certfile, *keyfile;
	int (*pw_cb)(char *, int, int, void *);
	bool os_certs;
	bool insecure;    /* no host name check; read per connection, never baked into made */
	int cert_reqs;    /* MIDGE_TLS_CERT_* */
	int min_version;  /* MGC_TLS_1_* */
	char *ciphers;
	uint8_t psk[256];
	size_t psk_len;   /* 0: no PSK */
	char *psk_identity;
	bool building;    /* connect is making `made` from these without mu: hands off */
	void *made;       /* the backend's, made at the next connect from the above (OpenSSL: the
	                   * SSL_CTX; Schannel: the loaded certificate stores); NULL until then and
	                   * again whenever a setter changes them */
};

/* What a setter is asked to take, for mgc_tls_be_supports (NULL / false: not asked). */
typedef struct mgc_tls_ask {
	const char *cafile, *capath, *certfile, *keyfile;
	const char *ciphers;
	bool psk;
} mgc_tls_ask;

/* Backend hook: can this backend do what is asked? MIDGE_OK or MIDGE_ERR_NOT_SUPPORTED.
 * Called by a setter after its arguments are found valid, before anything changes. */
int mgc_tls_be_supports(const mgc_tls_ask *ask);
/* Backend hook: the settings changed (or the client goes): free `made`. Under mu. */
void mgc_tls_be_drop(void *made);
/* Backend hook, for mgc_tls_prepare: make `made` from t, without mu (it reads files and may
 * call the key's password callback, user code) while t->building keeps t still. NULL after
 * logging why (taking mu for that). */
void *mgc_tls_be_make(midge_client *c, const mgc_tls *t, void *userdata);

#endif
