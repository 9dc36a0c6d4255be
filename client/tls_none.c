/* client/tls_none.c - libmidge without TLS, in place of client/tls.c where there is no OpenSSL
 * to link: the Windows build (Debian's mingw-w64 ships none, docs/windows.md). Every
 * midge_tls_* call says MIDGE_ERR_NOT_SUPPORTED, so a program asking for TLS learns it at
 * setup instead of talking plain text to a TLS port. The Linux build never compiles this. */
#include "client/client.h"

bool mgc_tls_on(const midge_client *c)
{
	return false;
}

int mgc_tls_prepare(midge_client *c)
{
	return MIDGE_OK;
}

int mgc_tls_begin(midge_client *c)
{
	mgc_conn_close(c, 0, MIDGE_ERR_TLS, NULL);
	return MIDGE_ERR_TLS;
}

/* Called on every read while a WebSocket handshake runs too: no TLS handshake, nothing to do. */
int mgc_tls_step(midge_client *c)
{
	return MIDGE_OK;
}

void mgc_tls_free(midge_client *c)
{
}

void mgc_tls_log_errors(midge_client *c)
{
}

int midge_tls_set(midge_client *c, const char *cafile, const char *capath, const char *certfile,
                  const char *keyfile, int (*pw_callback)(char *buf, int size, int rwflag, void *userdata))
{
	return c ? MIDGE_ERR_NOT_SUPPORTED : MIDGE_ERR_INVAL;
}

int midge_tls_use_os_certs(midge_client *c, bool use)
{
	return c ? MIDGE_ERR_NOT_SUPPORTED : MIDGE_ERR_INVAL;
}

int midge_tls_opts_set(midge_client *c, int cert_reqs, const char *tls_version, const char *ciphers)
{
	return c ? MIDGE_ERR_NOT_SUPPORTED : MIDGE_ERR_INVAL;
}

int midge_tls_insecure_set(midge_client *c, bool insecure)
{
	return c ? MIDGE_ERR_NOT_SUPPORTED : MIDGE_ERR_INVAL;
}

int midge_tls_psk_set(midge_client *c, const char *psk_hex, const char *identity, const char *ciphers)
{
	return c ? MIDGE_ERR_NOT_SUPPORTED : MIDGE_ERR_INVAL;
}
