/* broker/tls.c - a listener's TLS settings as an SSL_CTX, and the user name a TLS client
 * brings (see tls.h). */
#include "broker/tls.h"
#include "broker/log.h"
#include "net/tls.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

bool mg_tls_listener(const mg_listener_conf *lc)
{
	return (lc->certfile && lc->keyfile) || lc->psk_hint;
}

static void log_openssl(void)
{
	char buf[256];
	unsigned long e;
	for (int i = 0; (e = ERR_get_error()) != 0; i++) {
		ERR_error_string_n(e, buf, sizeof buf);
		mg_log(MG_LOG_ERR, "OpenSSL Error[%d]: %s", i, buf);
	}
}

void mg_tls_log_errors(const mg_transport *t)
{
	char buf[256];
	for (int i = 0; mg_tls_error(t, i, buf, sizeof buf); i++)
		mg_log(MG_LOG_ERR, "OpenSSL Error[%d]: %s", i, buf);
}

/* ---- TLS-PSK: the psk_file's keys, held by the context that uses them ---- */

typedef struct psk_ent {
	char *identity;
	unsigned char key[PSK_MAX_PSK_LEN];
	unsigned len;
} psk_ent;

typedef struct psk_table {
	psk_ent *e;
	size_t n;
} psk_table;

static int psk_index = -1;

static void psk_table_free(psk_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		OPENSSL_cleanse(t->e[i].key, sizeof t->e[i].key);
		free(t->e[i].identity);
	}
	free(t->e);
	free(t);
}

/* OpenSSL calls this when the context's last reference goes (ex_data's free callback). */
static void psk_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	psk_table_free(ptr);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	     : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* mosquitto's psk_file: "identity:hexkey" per line, '#' comments, lines without ':' skipped.
 * A key that is not even-length hex, or longer than OpenSSL takes, is an error here (with
 * its line) where mosquitto would fail that client's handshakes. */
static psk_table *psk_load(const char *path, const mg_listener_conf *lc)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		mg_log(MG_LOG_ERR, "Error: %s:%d: Unable to open psk_file \"%s\": %s.", lc->file, lc->line, path,
		       strerror(errno));
		return NULL;
	}
	psk_table *t = calloc(1, sizeof *t);
	char line[1024];
	int ln = 0;
	bool ok = t != NULL;
	while (ok && fgets(line, sizeof line, f)) {
		ln++;
		char *colon = strchr(line, ':');
		if (line[0] == '#' || !colon)
			continue;
		*colon = '\0';
		char *id = trim(line), *hex = trim(colon + 1);
		size_t hl = strlen(hex);
		psk_ent e = { 0 };
		bool good = hl && hl % 2 == 0 && hl / 2 <= sizeof e.key;
		for (size_t i = 0; good && i < hl; i += 2) {
			int a = hexval(hex[i]), b = hexval(hex[i + 1]);
			good = a >= 0 && b >= 0;
			e.key[i / 2] = (unsigned char)(a << 4 | b);
		}
		if (!good) {
			mg_log(MG_LOG_ERR, "Error: %s:%d: the key of '%s' is not a hex string of at most %u bytes.",
			       path, ln, id, PSK_MAX_PSK_LEN);
			ok = false;
			break;
		}
		e.len = (unsigned)(hl / 2);
		psk_ent *ne = realloc(t->e, (t->n + 1) * sizeof *ne);
		if (ne)
			t->e = ne;
		if (!ne || !(e.identity = strdup(id))) {
			ok = false;
			break;
		}
		t->e[t->n++] = e;
		OPENSSL_cleanse(&e, sizeof e);
	}
	OPENSSL_cleanse(line, sizeof line);
	fclose(f);
	if (!ok) {
		psk_table_free(t);
		return NULL;
	}
	return t;
}

/* The identity a client's key was found under, kept on its SSL (SSL_get_psk_identity does
 * not give it back in TLS 1.3), for use_identity_as_username. */
static int psk_id_index = -1;

static void psk_id_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	free(ptr);
}

static unsigned psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk, unsigned max_len)
{
	const psk_table *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), psk_index);
	if (!t || !identity)
		return 0;
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->e[i].identity, identity) == 0) {
			if (t->e[i].len > max_len)
				return 0;
			char *id = strdup(identity);
			free(SSL_get_ex_data(ssl, psk_id_index));
			if (!id || !SSL_set_ex_data(ssl, psk_id_index, id)) {
				free(id);
				return 0;
			}
			memcpy(psk, t->e[i].key, t->e[i].len);
			return t->e[i].len;
		}
	return 0; /* unknown identity: the handshake fails */
}

/* ---- the context ---- */

static int verify_cb(int preverify_ok, X509_STORE_CTX *x)
{
	(void)x;
	return preverify_ok; /* OpenSSL's own checks: chain, dates, CRL */
}

/* The chain sent after the certificate, built once here rather than on every handshake.
 * With a certfile holding only the server's certificate, OpenSSL otherwise builds the chain
 * from the cafile store in each full handshake (X509_verify_cert, with an ECDSA or RSA
 * signature check of the certificate by its CA: 15% of the broker's CPU per handshake in
 * perf, bench/README.md) and sends what it found, the CA's self-signed root included. Built
 * here, the chain is the same certificates but the root: a client checks the chain against
 * its own copy of the root, never against the one the server sends (RFC 8446 4.4.2 lets a
 * server leave it out), so every client parses one certificate less as well. A certfile
 * that brings its own chain (intermediates, as a fullchain.pem) is sent as it is, as
 * before. Failure changes nothing: the chain is left to OpenSSL as before. */
static void build_chain(SSL_CTX *ctx)
{
	STACK_OF(X509) *chain = NULL, *extra = NULL;
	SSL_CTX_get0_chain_certs(ctx, &chain);
	SSL_CTX_get_extra_chain_certs(ctx, &extra);
	if (sk_X509_num(chain) > 0 || sk_X509_num(extra) > 0)
		return;
	if (SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_NO_ROOT | SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
	                                  SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR) <= 0)
		ERR_clear_error();
}

#define FAIL(...) do { mg_log(MG_LOG_ERR, __VA_ARGS__); log_openssl(); goto fail; } while (0)

SSL_CTX *mg_tls_listener_ctx(const mg_listener_conf *lc, const char *psk_file)
{
	const char *F = lc->file;
	int L = lc->line;
	ERR_clear_error();
	SSL_CTX *ctx = mg_tls_ctx_new(MG_TLS_SERVER);
	if (!ctx)
		FAIL("Error: %s:%d: Unable to create a TLS context.", F, L);
	if (lc->tls_version) {
		int v = strcmp(lc->tls_version, "tlsv1.3") == 0 ? TLS1_3_VERSION
		      : strcmp(lc->tls_version, "tlsv1.2") == 0 ? TLS1_2_VERSION : TLS1_1_VERSION;
		if (!SSL_CTX_set_min_proto_version(ctx, v))
			FAIL("Error: %s:%d: Unsupported tls_version \"%s\".", F, L, lc->tls_version);
	}
	SSL_CTX_set_dh_auto(ctx, 1);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/* Resumption (session ids and TLS 1.3 tickets) works per listener, as in mosquitto. */
	char sid[32];
	snprintf(sid, sizeof sid, "midge-%u", lc->port);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)sid, (unsigned)strlen(sid));
	/* One TLS 1.3 ticket per handshake instead of OpenSSL's two: an MQTT client holds one
	 * connection and resumes one session, and each ticket costs the broker an encryption
	 * and a MAC on every full and every resumed handshake. */
	SSL_CTX_set_num_tickets(ctx, 1);
	const char *ciphers = lc->ciphers ? lc->ciphers : "DEFAULT:!aNULL:!eNULL:!LOW:!EXPORT:!SSLv2:@STRENGTH";
	if (!SSL_CTX_set_cipher_list(ctx, ciphers))
		FAIL("Error: %s:%d: Unable to set TLS ciphers. Check cipher list \"%s\".", F, L, ciphers);
	if (lc->ciphers_tls13 && !SSL_CTX_set_ciphersuites(ctx, lc->ciphers_tls13))
		FAIL("Error: %s:%d: Unable to set TLS 1.3 ciphersuites. Check cipher_tls13 list \"%s\".", F, L,
		     lc->ciphers_tls13);
	if (lc->dhparamfile) {
		BIO *bio = BIO_new_file(lc->dhparamfile, "r");
		EVP_PKEY *dh = bio ? PEM_read_bio_Parameters(bio, NULL) : NULL;
		BIO_free(bio);
		if (!dh || !SSL_CTX_set0_tmp_dh_pkey(ctx, dh)) {
			EVP_PKEY_free(dh);
			FAIL("Error: %s:%d: Error loading dhparamfile \"%s\".", F, L, lc->dhparamfile);
		}
	}
	if (lc->psk_hint) {
		psk_table *t = psk_file ? psk_load(psk_file, lc) : NULL;
		if (!t)
			goto fail;
		if (!SSL_CTX_set_ex_data(ctx, psk_index, t)) {
			psk_table_free(t);
			FAIL("Error: %s:%d: Unable to set TLS PSK keys.", F, L);
		}
		SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
		if (!SSL_CTX_use_psk_identity_hint(ctx, lc->psk_hint))
			FAIL("Error: %s:%d: Unable to set TLS PSK hint.", F, L);
		return ctx;
	}
	if (lc->cafile && !SSL_CTX_load_verify_file(ctx, lc->cafile))
		FAIL("Error: %s:%d: Unable to load CA certificates. Check cafile \"%s\".", F, L, lc->cafile);
	if (lc->capath && !SSL_CTX_load_verify_dir(ctx, lc->capath))
		FAIL("Error: %s:%d: Unable to load CA certificates. Check capath \"%s\".", F, L, lc->capath);
	SSL_CTX_set_verify(ctx, lc->require_certificate ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
	                                                : SSL_VERIFY_NONE, verify_cb);
	if (SSL_CTX_use_certificate_chain_file(ctx, lc->certfile) != 1)
		FAIL("Error: %s:%d: Unable to load server certificate \"%s\". Check certfile.", F, L, lc->certfile);
	if (SSL_CTX_use_PrivateKey_file(ctx, lc->keyfile, SSL_FILETYPE_PEM) != 1)
		FAIL("Error: %s:%d: Unable to load server key file \"%s\". Check keyfile.", F, L, lc->keyfile);
	if (SSL_CTX_check_private_key(ctx) != 1)
		FAIL("Error: %s:%d: Server certificate/key are inconsistent.", F, L);
	build_chain(ctx);
	if (lc->crlfile) {
		X509_STORE *store = SSL_CTX_get_cert_store(ctx);
		X509_LOOKUP *lookup = store ? X509_STORE_add_lookup(store, X509_LOOKUP_file()) : NULL;
		if (!lookup || X509_load_crl_file(lookup, lc->crlfile, X509_FILETYPE_PEM) < 1)
			FAIL("Error: %s:%d: Unable to load certificate revocation file \"%s\". Check crlfile.", F, L,
			     lc->crlfile);
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Run once, before any context is made (the broker starts single-threaded). */
__attribute__((constructor)) static void psk_index_init(void)
{
	psk_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, psk_ex_free);
	psk_id_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, psk_id_free);
}

char *mg_tls_identity(const mg_transport *t, const mg_listener_conf *lc)
{
	SSL *ssl = mg_tls_ssl(t);
	if (!ssl)
		return NULL;
	if (lc->psk_hint) {
		const char *id = SSL_get_ex_data(ssl, psk_id_index);
		return id ? strdup(id) : NULL;
	}
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (!cert)
		return NULL;
	char *user = NULL;
	X509_NAME *name = X509_get_subject_name(cert);
	if (name && lc->use_identity_as_username) {
		int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
		X509_NAME_ENTRY *ent = i >= 0 ? X509_NAME_get_entry(name, i) : NULL;
		ASN1_STRING *s = ent ? X509_NAME_ENTRY_get_data(ent) : NULL;
		if (s) {
			int n = ASN1_STRING_length(s);
			const unsigned char *d = ASN1_STRING_get0_data(s);
			/* a CN with a NUL inside would name someone else: no user name at all */
			if (n > 0 && !memchr(d, 0, (size_t)n) && (user = malloc((size_t)n + 1))) {
				memcpy(user, d, (size_t)n);
				user[n] = '\0';
			}
		}
	} else if (name) {
		BIO *bio = BIO_new(BIO_s_mem());
		if (bio && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
			char *d = NULL;
			long n = BIO_get_mem_data(bio, &d);
			if (n >= 0 && (user = malloc((size_t)n + 1))) {
				memcpy(user, d, (size_t)n);
				user[n] = '\0';
			}
		}
		BIO_free(bio);
	}
	X509_free(cert);
	return user;
}
