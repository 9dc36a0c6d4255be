/* client/tls_opts.c - the midge_tls_* setters, one copy for both TLS backends (tls_opts.h).
 * They check their arguments, ask the backend whether it can do what is asked
 * (mgc_tls_be_supports), store the settings under mu and drop what the backend made from the
 * old ones (mgc_tls_be_drop), so the next connect makes it again. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/tls_opts.h"

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* The PSK must not linger in freed memory; a volatile store is one the compiler keeps. */
static void wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;
	while (n--)
		*v++ = 0;
}

/* Under mu: the settings, created on first use. NULL: out of memory. */
static mgc_tls *settings(midge_client *c)
{
	if (!c->tls) {
		c->tls = calloc(1, sizeof(*c->tls));
		if (c->tls) {
			c->tls->cert_reqs = MIDGE_TLS_CERT_REQUIRED;
			c->tls->min_version = MGC_TLS_1_2;
		}
	}
	return c->tls;
}

static void drop_made(mgc_tls *t)
{
	if (t->made)
		mgc_tls_be_drop(t->made);
	t->made = NULL;
}

void mgc_tls_free(midge_client *c)
{
	mgc_tls *t = c->tls;
	if (!t)
		return;
	drop_made(t);
	free(t->cafile);
	free(t->capath);
	free(t->certfile);
	free(t->keyfile);
	free(t->ciphers);
	free(t->psk_identity);
	wipe(t->psk, sizeof(t->psk));
	free(t);
	c->tls = NULL;
}

bool mgc_tls_on(const midge_client *c)
{
	return c->tls && c->tls->on;
}

/* Under mu: may the settings change now? Not while a connection uses them. */
static int settable(midge_client *c)
{
	bool live = c->state == MG_S_TCP || c->state == MG_S_CONNACK || c->state == MG_S_UP ||
	            c->state == MG_S_CLOSING;
	if (live || (c->tls && c->tls->building))
		return MIDGE_ERR_BUSY;
	return settings(c) ? MIDGE_OK : MIDGE_ERR_NOMEM;
}

int mgc_tls_prepare(midge_client *c)
{
	mgc_lock(c);
	mgc_tls *t = c->tls;
	if (!t || !t->on || t->made || t->building) {
		mgc_unlock(c);
		return MIDGE_OK;
	}
	t->building = true;
	void *ud = c->userdata;
	mgc_unlock(c);
	void *made = mgc_tls_be_make(c, t, ud);
	mgc_lock(c);
	t->building = false;
	t->made = made;
	mgc_unlock(c);
	return made ? MIDGE_OK : MIDGE_ERR_TLS;
}

static bool readable(const char *path)
{
	FILE *f = path ? fopen(path, "r") : NULL;
	if (f)
		fclose(f);
	return f != NULL;
}

int midge_tls_set(midge_client *c, const char *cafile, const char *capath, const char *certfile,
                  const char *keyfile, int (*pw_callback)(char *buf, int size, int rwflag, void *userdata))
{
	if (!c || (certfile && !keyfile) || (keyfile && !certfile))
		return MIDGE_ERR_INVAL;
	/* libmosquitto checks that the files open here, so a typo fails before any connect; a
	 * capath it does not check (OpenSSL looks into it only while verifying), nor do we */
	if ((cafile && !readable(cafile)) || (certfile && !readable(certfile)) ||
	    (keyfile && !readable(keyfile)))
		return MIDGE_ERR_INVAL;
	int rc = mgc_tls_be_supports(&(mgc_tls_ask){ .cafile = cafile, .capath = capath,
	                                             .certfile = certfile, .keyfile = keyfile });
	if (rc != MIDGE_OK)
		return rc;
	char *ca = dup_or_null(cafile), *cp = dup_or_null(capath), *ce = dup_or_null(certfile),
	     *k = dup_or_null(keyfile);
	if ((cafile && !ca) || (capath && !cp) || (certfile && !ce) || (keyfile && !k)) {
		free(ca), free(cp), free(ce), free(k);
		return MIDGE_ERR_NOMEM;
	}
	mgc_lock(c);
	rc = settable(c);
	if (rc == MIDGE_OK) {
		mgc_tls *t = c->tls;
		free(t->cafile), free(t->capath), free(t->certfile), free(t->keyfile);
		t->cafile = ca, t->capath = cp, t->certfile = ce, t->keyfile = k;
		ca = cp = ce = k = NULL;
		t->pw_cb = pw_callback;
		t->psk_len = 0;
		t->on = true;
		drop_made(t);
	}
	mgc_unlock(c);
	free(ca), free(cp), free(ce), free(k);
	return rc;
}

int midge_tls_use_os_certs(midge_client *c, bool use)
{
	if (!c)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	int rc = settable(c);
	if (rc == MIDGE_OK) {
		c->tls->os_certs = use;
		if (use)
			c->tls->on = true;
		drop_made(c->tls);
	}
	mgc_unlock(c);
	return rc;
}

int midge_tls_opts_set(midge_client *c, int cert_reqs, const char *tls_version, const char *ciphers)
{
	if (!c || (cert_reqs != MIDGE_TLS_CERT_NONE && cert_reqs != MIDGE_TLS_CERT_REQUIRED))
		return MIDGE_ERR_INVAL;
	int v = MGC_TLS_1_2;
	if (tls_version) {
		if (!strcmp(tls_version, "tlsv1.3"))
			v = MGC_TLS_1_3;
		else if (!strcmp(tls_version, "tlsv1.2"))
			v = MGC_TLS_1_2;
		else if (!strcmp(tls_version, "tlsv1.1"))
			v = MGC_TLS_1_1;
		else
			return MIDGE_ERR_INVAL;
	}
	int rc = mgc_tls_be_supports(&(mgc_tls_ask){ .ciphers = ciphers });
	if (rc != MIDGE_OK)
		return rc;
	char *ci = dup_or_null(ciphers);
	if (ciphers && !ci)
		return MIDGE_ERR_NOMEM;
	mgc_lock(c);
	rc = settable(c);
	if (rc == MIDGE_OK) {
		mgc_tls *t = c->tls;
		t->cert_reqs = cert_reqs;
		t->min_version = v;
		free(t->ciphers);
		t->ciphers = ci;
		ci = NULL;
		drop_made(t);
	}
	mgc_unlock(c);
	free(ci);
	return rc;
}

int midge_tls_insecure_set(midge_client *c, bool insecure)
{
	if (!c)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	int rc = settable(c);
	if (rc == MIDGE_OK)
		c->tls->insecure = insecure; /* read per connection: made stays */
	mgc_unlock(c);
	return rc;
}

static int hexval(int ch)
{
	return isdigit(ch) ? ch - '0' : tolower(ch) - 'a' + 10;
}

int midge_tls_psk_set(midge_client *c, const char *psk_hex, const char *identity, const char *ciphers)
{
	if (!c)
		return MIDGE_ERR_INVAL;
	/* asked before the arguments: a backend without TLS-PSK (Schannel) says so to any call */
	int rc = mgc_tls_be_supports(&(mgc_tls_ask){ .psk = true, .ciphers = ciphers });
	if (rc != MIDGE_OK)
		return rc;
	if (!psk_hex || !identity || !identity[0] || strlen(identity) > 128)
		return MIDGE_ERR_INVAL;
	size_t n = strlen(psk_hex);
	if (n == 0 || n > 2 * sizeof(((mgc_tls *)0)->psk) || strspn(psk_hex, "0123456789abcdefABCDEF") != n)
		return MIDGE_ERR_INVAL;
	char *id = strdup(identity), *ci = dup_or_null(ciphers);
	if (!id || (ciphers && !ci)) {
		free(id), free(ci);
		return MIDGE_ERR_NOMEM;
	}
	mgc_lock(c);
	rc = settable(c);
	if (rc == MIDGE_OK) {
		mgc_tls *t = c->tls;
		/* An odd count of digits has a leading 0 (mosquitto reads the key with BN_hex2bn). */
		size_t len = (n + 1) / 2;
		for (size_t i = 0, j = 0; i < len; i++) {
			int hi = (n % 2 && i == 0) ? 0 : hexval((unsigned char)psk_hex[j++]);
			int lo = hexval((unsigned char)psk_hex[j++]);
			t->psk[i] = (uint8_t)(hi << 4 | lo);
		}
		t->psk_len = len;
		free(t->psk_identity);
		t->psk_identity = id;
		free(t->ciphers);
		t->ciphers = ci;
		id = ci = NULL;
		free(t->cafile), free(t->capath), free(t->certfile), free(t->keyfile);
		t->cafile = t->capath = t->certfile = t->keyfile = NULL;
		t->on = true;
		drop_made(t);
	}
	mgc_unlock(c);
	free(id), free(ci);
	return rc;
}
