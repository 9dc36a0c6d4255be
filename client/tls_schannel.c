/* client/tls_schannel.c - TLS for libmidge on Windows, with Windows' own TLS (Schannel, through
 * SSPI in secur32.dll) in place of client/tls.c: Debian's mingw-w64 has no OpenSSL, and a
 * Windows user should not need one. The same midge_tls_* settings (tls_opts.c, through its two
 * hooks here), the same internal interface
 * (client.h: mgc_tls_*), and a transport row (net/transport.h) of its own that runs the
 * handshake, EncryptMessage and DecryptMessage on the client loop, never blocking.
 *
 * What it does, and what it leaves out (docs/windows.md):
 * - The broker's certificate is checked here, not by Schannel (SCH_CRED_MANUAL_CRED_VALIDATION):
 *   with a cafile, the chain CertGetCertificateChain builds must end in one of the cafile's
 *   certificates (a memory store made from the PEM file at connect); without one, in a root
 *   Windows trusts. Then the host name against the certificate's subjectAltName (DNS names with
 *   a left-most wildcard, IP addresses; the CN only when there is no DNS name), as OpenSSL's
 *   X509_check_host does for client/tls.c. midge_tls_insecure_set skips the name,
 *   MIDGE_TLS_CERT_NONE skips both.
 * - TLS 1.2 and 1.3 as the system offers them (SCH_CREDENTIALS, which Windows 11 needs for 1.3;
 *   the older SCHANNEL_CRED where it is refused, as on Wine 8 and Windows before 10 1809).
 * - A client certificate comes from a PKCS#12 file named as both certfile and keyfile
 *   (PFXImportCertStore puts its key into a Windows key store, which is where Schannel wants
 *   it; not kept on disk). MIDGE_ERR_NOT_SUPPORTED for: a client certificate and key as PEM
 *   files, capath (an OpenSSL hash directory), TLS-PSK (Schannel has none) and OpenSSL cipher
 *   strings.
 *
 * Costs: per connection the SSPI context, an input buffer of one record (~16 KiB, grown while a
 * long certificate chain arrives), one record of decrypted bytes and one of encrypted output.
 * Nothing per thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/tls_opts.h"
#include "net/ws.h"

#define SECURITY_WIN32
#define SCHANNEL_USE_BLACKLISTS 1 /* SCH_CREDENTIALS and TLS_PARAMETERS */
#include <windows.h>
#include <subauth.h> /* UNICODE_STRING, which TLS_PARAMETERS uses */
#include <wincrypt.h>
#include <schannel.h>
#include <security.h>
#include <sspi.h>

/* ---- the transport row ---- */

#define CLIENT_PROTOS (SP_PROT_SSL3_CLIENT | SP_PROT_TLS1_0_CLIENT | SP_PROT_TLS1_1_CLIENT | \
                       SP_PROT_TLS1_2_CLIENT | SP_PROT_TLS1_3_CLIENT)
#define MAX_IN (1024 * 1024) /* a handshake flight bigger than this is not a broker's */

typedef struct sch {
	CredHandle cred;
	CtxtHandle ctx;
	bool have_cred, have_ctx;
	bool started;   /* the ClientHello is made */
	bool connected; /* handshake and verification done */
	bool need_more; /* in holds part of a record only */
	bool eof;       /* close_notify or TCP end */
	bool failed;
	char *host;     /* as given: SNI when a name, and the name checked */
	HCERTSTORE ca;  /* the cafile's certificates, or NULL: Windows' roots */
	PCCERT_CONTEXT mine; /* the client certificate (with its key), or NULL */
	bool verify, check_host, os_certs;
	DWORD protos;   /* SP_PROT_*_CLIENT allowed: the version chosen must be one */
	bool name_failed; /* the failure was the host name */
	SecPkgContext_StreamSizes sizes;
	uint8_t *in;    /* bytes from the socket, not yet decrypted */
	size_t in_len, in_cap;
	uint8_t *plain; /* decrypted bytes the caller's buffer had no room for */
	size_t plain_off, plain_len;
	uint8_t *out;   /* bytes for the socket: handshake tokens, records */
	size_t out_off, out_len, out_cap;
	size_t out_taken; /* writev: caller bytes in out, reported once out is sent */
	char err[256];
} sch;

extern const mg_transport_ops mg_schannel_ops;

static const char *status_words(SECURITY_STATUS st)
{
	switch (st) {
	case SEC_E_ILLEGAL_MESSAGE: return "the broker sent something that is not TLS (a plain MQTT port?) or an alert";
	case SEC_E_ALGORITHM_MISMATCH: return "no TLS version or cipher in common with the broker";
	case SEC_E_UNTRUSTED_ROOT: return "certificate verify failed: unable to get local issuer certificate";
	case SEC_E_CERT_EXPIRED: return "certificate verify failed: certificate has expired";
	case SEC_E_WRONG_PRINCIPAL: return "host name verification failed";
	case SEC_E_INVALID_TOKEN: return "invalid TLS message from the broker";
	case SEC_E_MESSAGE_ALTERED: return "a TLS record failed its integrity check";
	case SEC_E_DECRYPT_FAILURE: return "a TLS record could not be decrypted";
	case SEC_E_INTERNAL_ERROR: return "Schannel internal error";
	case SEC_E_NO_CREDENTIALS: return "no credentials (Schannel)";
	case SEC_E_UNSUPPORTED_FUNCTION: return "the broker asked for something Schannel does not do";
	default: return NULL;
	}
}

static int fail(sch *s, SECURITY_STATUS st, const char *what)
{
	const char *w = st ? status_words(st) : NULL;
	if (!s->err[0]) {
		if (w)
			snprintf(s->err, sizeof(s->err), "%s: %s", what, w);
		else if (st)
			snprintf(s->err, sizeof(s->err), "%s: Schannel error 0x%08lx", what, (unsigned long)st);
		else
			snprintf(s->err, sizeof(s->err), "%s", what);
	}
	s->failed = true;
	return -EPROTO;
}

/* The socket, through the plain TCP row: its WSA errors are errno values already. */
static ssize_t sock_read(mg_transport *t, void *buf, size_t len)
{
	mg_transport tcp = { &mg_tcp_ops, t->fd, NULL };
	return mg_transport_read(&tcp, buf, len);
}

/* Send what out holds: 0 all sent, -EAGAIN some left (want_write), or -errno. */
static int flush(mg_transport *t, sch *s)
{
	mg_transport tcp = { &mg_tcp_ops, t->fd, NULL };
	while (s->out_off < s->out_len) {
		struct iovec iov = { s->out + s->out_off, s->out_len - s->out_off };
		ssize_t n = mg_transport_writev(&tcp, &iov, 1);
		if (n < 0)
			return (int)n;
		s->out_off += (size_t)n;
	}
	s->out_off = s->out_len = 0;
	return 0;
}

static bool out_room(sch *s, size_t n)
{
	if (s->out_cap >= n)
		return true;
	uint8_t *p = realloc(s->out, n);
	if (!p)
		return false;
	s->out = p;
	s->out_cap = n;
	return true;
}

/* A token InitializeSecurityContext allocated, queued for the socket and freed. */
static bool queue_token(sch *s, SecBuffer *b)
{
	bool ok = true;
	if (b->pvBuffer && b->cbBuffer) {
		ok = out_room(s, s->out_len + b->cbBuffer);
		if (ok) {
			memcpy(s->out + s->out_len, b->pvBuffer, b->cbBuffer);
			s->out_len += b->cbBuffer;
		}
	}
	if (b->pvBuffer)
		FreeContextBuffer(b->pvBuffer);
	b->pvBuffer = NULL;
	return ok;
}

static int in_room(sch *s)
{
	if (s->in_len < s->in_cap)
		return 0;
	size_t cap = s->in_cap ? s->in_cap * 2 : 18 * 1024;
	if (cap > MAX_IN)
		return -EMSGSIZE;
	uint8_t *p = realloc(s->in, cap);
	if (!p)
		return -ENOMEM;
	s->in = p;
	s->in_cap = cap;
	return 0;
}

/* What is left in `in` after a call: the EXTRA buffer's bytes moved to the front, else none. */
static void keep_extra(sch *s, const SecBuffer *b, int n)
{
	for (int i = 0; i < n; i++)
		if (b[i].BufferType == SECBUFFER_EXTRA && b[i].cbBuffer) {
			memmove(s->in, s->in + s->in_len - b[i].cbBuffer, b[i].cbBuffer);
			s->in_len = b[i].cbBuffer;
			return;
		}
	s->in_len = 0;
}

static const ULONG ISC_FLAGS = ISC_REQ_SEQUENCE_DETECT | ISC_REQ_REPLAY_DETECT |
                               ISC_REQ_CONFIDENTIALITY | ISC_REQ_ALLOCATE_MEMORY |
                               ISC_REQ_STREAM | ISC_REQ_USE_SUPPLIED_CREDS |
                               ISC_REQ_MANUAL_CRED_VALIDATION;

static bool is_address(const char *host, uint8_t *buf)
{
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* One call of InitializeSecurityContext; input: what `in` holds (none for the ClientHello). */
static SECURITY_STATUS isc(sch *s, bool with_input)
{
	SecBuffer ib[2] = { { (ULONG)s->in_len, SECBUFFER_TOKEN, s->in }, { 0, SECBUFFER_EMPTY, NULL } };
	SecBuffer ob[1] = { { 0, SECBUFFER_TOKEN, NULL } };
	SecBufferDesc id = { SECBUFFER_VERSION, 2, ib }, od = { SECBUFFER_VERSION, 1, ob };
	uint8_t a[16];
	char *target = is_address(s->host, a) ? NULL : s->host; /* SNI for a name only (RFC 6066) */
	ULONG attrs = 0;
	SECURITY_STATUS st = InitializeSecurityContextA(&s->cred, s->have_ctx ? &s->ctx : NULL, target,
	                                                ISC_FLAGS, 0, 0, with_input ? &id : NULL, 0,
	                                                &s->ctx, &od, &attrs, NULL);
	if (st == SEC_E_OK || st == SEC_I_CONTINUE_NEEDED || st == SEC_I_INCOMPLETE_CREDENTIALS)
		s->have_ctx = true;
	if (!queue_token(s, &ob[0]))
		return SEC_E_INSUFFICIENT_MEMORY;
	if (with_input && st != SEC_E_INCOMPLETE_MESSAGE)
		keep_extra(s, ib, 2);
	return st;
}

/* ---- the broker's certificate ---- */

/* A DNS name from the certificate (UTF-16, ASCII expected) against host: case-insensitive,
 * "*." matching exactly one left-most label. */
static bool dns_match(const WCHAR *w, const char *host)
{
	char name[256];
	size_t n = 0;
	for (; w[n]; n++) {
		if (n + 1 >= sizeof(name) || w[n] > 0x7e)
			return false;
		name[n] = (char)w[n];
	}
	name[n] = '\0';
	if (name[0] == '*' && name[1] == '.') {
		const char *dot = strchr(host, '.');
		return dot && dot != host && strchr(name + 2, '.') && !strcasecmp(dot + 1, name + 2);
	}
	return !strcasecmp(name, host);
}

static bool host_matches(PCCERT_CONTEXT cert, const char *host)
{
	uint8_t ip[16];
	DWORD iplen = inet_pton(AF_INET, host, ip) == 1 ? 4 : inet_pton(AF_INET6, host, ip) == 1 ? 16 : 0;
	bool ok = false, had_dns = false;
	PCERT_EXTENSION ext = CertFindExtension(szOID_SUBJECT_ALT_NAME2, cert->pCertInfo->cExtension,
	                                        cert->pCertInfo->rgExtension);
	CERT_ALT_NAME_INFO *info = NULL;
	DWORD sz = 0;
	if (ext && CryptDecodeObjectEx(X509_ASN_ENCODING, X509_ALTERNATE_NAME, ext->Value.pbData,
	                               ext->Value.cbData, CRYPT_DECODE_ALLOC_FLAG, NULL, &info, &sz)) {
		for (DWORD i = 0; i < info->cAltEntry && !ok; i++) {
			CERT_ALT_NAME_ENTRY *e = &info->rgAltEntry[i];
			if (e->dwAltNameChoice == CERT_ALT_NAME_DNS_NAME) {
				had_dns = true;
				ok = !iplen && dns_match(e->pwszDNSName, host);
			} else if (e->dwAltNameChoice == CERT_ALT_NAME_IP_ADDRESS) {
				ok = iplen && e->IPAddress.cbData == iplen && !memcmp(e->IPAddress.pbData, ip, iplen);
			}
		}
		LocalFree(info);
	}
	if (!ok && !had_dns && !iplen) { /* no DNS name: the CN, as OpenSSL falls back to it */
		char cn[256];
		if (CertGetNameStringA(cert, CERT_NAME_ATTR_TYPE, 0, (void *)szOID_COMMON_NAME, cn, sizeof(cn)) > 1)
			ok = !strcasecmp(cn, host);
	}
	return ok;
}

/* After the handshake: the chain to a trusted root, then the name. 0 or -EPROTO. */
static int verify(sch *s)
{
	PCCERT_CONTEXT cert = NULL;
	SECURITY_STATUS st = QueryContextAttributesA(&s->ctx, SECPKG_ATTR_REMOTE_CERT_CONTEXT, &cert);
	if (st != SEC_E_OK || !cert)
		return fail(s, st, "certificate verify failed: the broker sent no certificate");
	/* The chain may use the cafile's certificates and the intermediates the broker sent. */
	HCERTSTORE more = CertOpenStore(CERT_STORE_PROV_COLLECTION, 0, 0, 0, NULL);
	if (more) {
		if (s->ca)
			CertAddStoreToCollection(more, s->ca, 0, 0);
		if (cert->hCertStore)
			CertAddStoreToCollection(more, cert->hCertStore, 0, 0);
	}
	CERT_CHAIN_PARA para;
	memset(&para, 0, sizeof(para));
	para.cbSize = sizeof(para);
	PCCERT_CHAIN_CONTEXT chain = NULL;
	int rc = 0;
	if (!CertGetCertificateChain(NULL, cert, NULL, more, &para, 0, NULL, &chain) || !chain ||
	    !chain->cChain || !chain->rgpChain[0]->cElement) {
		rc = fail(s, 0, "certificate verify failed: no chain could be built");
		goto out;
	}
	DWORD e = chain->TrustStatus.dwErrorStatus &
	          ~(DWORD)(CERT_TRUST_REVOCATION_STATUS_UNKNOWN | CERT_TRUST_IS_OFFLINE_REVOCATION);
	const CERT_SIMPLE_CHAIN *sc = chain->rgpChain[0];
	PCCERT_CONTEXT root = sc->rgpElement[sc->cElement - 1]->pCertContext;
	bool in_ca = false;
	if (s->ca) {
		PCCERT_CONTEXT f = CertFindCertificateInStore(s->ca, X509_ASN_ENCODING, 0, CERT_FIND_EXISTING, root, NULL);
		in_ca = f != NULL;
		if (f)
			CertFreeCertificateContext(f);
	}
	/* With a cafile, its certificates are the only roots (as OpenSSL's verify locations),
	 * unless midge_tls_use_os_certs adds Windows' own. */
	bool trusted_root = in_ca ? !(e & ~(DWORD)CERT_TRUST_IS_UNTRUSTED_ROOT) && !(e & CERT_TRUST_IS_PARTIAL_CHAIN)
	                          : e == 0 && (!s->ca || s->os_certs);
	if (!trusted_root) {
		if (e & CERT_TRUST_IS_NOT_TIME_VALID)
			rc = fail(s, 0, "certificate verify failed: certificate has expired or is not yet valid");
		else if (e & (CERT_TRUST_IS_UNTRUSTED_ROOT | CERT_TRUST_IS_PARTIAL_CHAIN) || e == 0)
			rc = fail(s, 0, s->ca ? "certificate verify failed: unable to get local issuer certificate (not signed by a cafile certificate)"
			                      : "certificate verify failed: unable to get local issuer certificate (no root Windows trusts)");
		else {
			char w[128];
			snprintf(w, sizeof(w), "certificate verify failed: chain trust status 0x%lx", (unsigned long)e);
			rc = fail(s, 0, w);
		}
		goto out;
	}
	if (s->check_host && !host_matches(cert, s->host)) {
		s->name_failed = true;
		rc = fail(s, 0, "host name verification failed");
	}
out:
	if (chain)
		CertFreeCertificateChain(chain);
	if (more)
		CertCloseStore(more, 0);
	CertFreeCertificateContext(cert);
	return rc;
}

/* ---- the row's functions ---- */

static int sch_handshake(mg_transport *t)
{
	sch *s = t->ctx;
	if (s->failed)
		return -EPROTO;
	for (;;) {
		int r = flush(t, s);
		if (r == -EAGAIN)
			return -EAGAIN;
		if (r < 0)
			return r;
		if (s->connected)
			return 0;
		SECURITY_STATUS st;
		if (!s->started) {
			s->started = true;
			st = isc(s, false);
			if (st != SEC_I_CONTINUE_NEEDED)
				return fail(s, st, "TLS handshake failed");
			continue;
		}
		if (!s->in_len || s->need_more) {
			if ((r = in_room(s)) < 0)
				return fail(s, 0, r == -ENOMEM ? "out of memory" : "TLS handshake failed: a handshake message too big");
			ssize_t n = sock_read(t, s->in + s->in_len, s->in_cap - s->in_len);
			if (n == -EAGAIN)
				return -EAGAIN;
			if (n == 0)
				return fail(s, 0, "TLS handshake failed: unexpected eof while reading (is the port a TLS port?)");
			if (n < 0)
				return (int)n;
			s->in_len += (size_t)n;
			s->need_more = false;
		}
		st = isc(s, true);
		if (st == SEC_E_INCOMPLETE_MESSAGE) {
			s->need_more = true;
			continue;
		}
		if (st == SEC_I_CONTINUE_NEEDED || st == SEC_I_INCOMPLETE_CREDENTIALS)
			continue; /* no client certificate to offer: the next call sends none */
		if (st != SEC_E_OK)
			return fail(s, st, "TLS handshake failed");
		if (QueryContextAttributesA(&s->ctx, SECPKG_ATTR_STREAM_SIZES, &s->sizes) != SEC_E_OK)
			return fail(s, 0, "TLS handshake failed: no stream sizes");
		/* The minimum version is checked here too: an SSPI that ignores the credentials'
		 * protocol bits (Wine 8 does, for 1.3) would otherwise settle for less. */
		SecPkgContext_ConnectionInfo ci;
		if (QueryContextAttributesA(&s->ctx, SECPKG_ATTR_CONNECTION_INFO, &ci) == SEC_E_OK &&
		    !(ci.dwProtocol & s->protos)) {
			snprintf(s->err, sizeof(s->err), "TLS handshake failed: %s was negotiated, below the minimum version asked for",
			         ci.dwProtocol & SP_PROT_TLS1_2_CLIENT ? "TLS 1.2" : ci.dwProtocol & SP_PROT_TLS1_1_CLIENT ? "TLS 1.1" : "an older TLS");
			return fail(s, 0, s->err);
		}
		if (s->verify && (r = verify(s)) < 0)
			return r;
		s->plain = malloc(s->sizes.cbMaximumMessage);
		if (!s->plain)
			return fail(s, 0, "out of memory");
		s->connected = true; /* bytes left in `in` are the first records */
	}
}

/* TLS 1.3 after the handshake: a session ticket or key update comes as SEC_I_RENEGOTIATE and
 * goes to InitializeSecurityContext with what follows it. */
static int renegotiate(sch *s)
{
	SECURITY_STATUS st = isc(s, true);
	if (st != SEC_E_OK && st != SEC_I_CONTINUE_NEEDED && st != SEC_E_INCOMPLETE_MESSAGE)
		return fail(s, st, "TLS error after a post-handshake message");
	return 0;
}

static ssize_t sch_read(mg_transport *t, void *buf, size_t len)
{
	sch *s = t->ctx;
	if (s->failed)
		return -EPROTO;
	int fr = flush(t, s); /* a post-handshake answer, if any */
	if (fr < 0 && fr != -EAGAIN)
		return fr;
	size_t got = 0;
	while (got < len) {
		if (s->plain_len) {
			size_t k = s->plain_len < len - got ? s->plain_len : len - got;
			memcpy((uint8_t *)buf + got, s->plain + s->plain_off, k);
			got += k;
			s->plain_off += k;
			s->plain_len -= k;
			continue;
		}
		if (s->eof)
			break;
		if (s->in_len && !s->need_more) {
			SecBuffer b[4] = { { (ULONG)s->in_len, SECBUFFER_DATA, s->in }, { 0, SECBUFFER_EMPTY, NULL },
			                   { 0, SECBUFFER_EMPTY, NULL }, { 0, SECBUFFER_EMPTY, NULL } };
			SecBufferDesc d = { SECBUFFER_VERSION, 4, b };
			SECURITY_STATUS st = DecryptMessage(&s->ctx, &d, 0, NULL);
			if (st == SEC_E_INCOMPLETE_MESSAGE) {
				s->need_more = true;
				continue;
			}
			if (st == SEC_I_CONTEXT_EXPIRED) { /* close_notify */
				s->eof = true;
				break;
			}
			if (st != SEC_E_OK && st != SEC_I_RENEGOTIATE) {
				if (got)
					break; /* the error comes with the next call */
				return fail(s, st, "TLS read failed");
			}
			for (int i = 0; i < 4; i++)
				if (b[i].BufferType == SECBUFFER_DATA && b[i].cbBuffer) {
					size_t k = b[i].cbBuffer < len - got ? b[i].cbBuffer : len - got;
					memcpy((uint8_t *)buf + got, b[i].pvBuffer, k);
					got += k;
					s->plain_off = 0;
					s->plain_len = b[i].cbBuffer - k; /* fits: one record's worth */
					memcpy(s->plain, (uint8_t *)b[i].pvBuffer + k, s->plain_len);
				}
			keep_extra(s, b, 4);
			if (st == SEC_I_RENEGOTIATE && renegotiate(s) < 0) {
				if (got)
					break;
				return -EPROTO;
			}
			continue;
		}
		int r = in_room(s);
		if (r < 0)
			return got ? (ssize_t)got : fail(s, 0, "TLS read failed: a record too big");
		ssize_t n = sock_read(t, s->in + s->in_len, s->in_cap - s->in_len);
		if (n == -EAGAIN)
			break;
		if (n == 0) { /* an end without close_notify is an end of stream too (net/tls.h) */
			s->eof = true;
			break;
		}
		if (n < 0)
			return got ? (ssize_t)got : n;
		s->in_len += (size_t)n;
		s->need_more = false;
	}
	flush(t, s);
	if (got)
		return (ssize_t)got;
	return s->eof ? 0 : -EAGAIN;
}

/* One record per call, up to cbMaximumMessage of the caller's bytes. As net/tls.h's row: the
 * bytes count as taken only once their record is on the socket; on -EAGAIN the caller comes
 * back with the same bytes first. */
static ssize_t sch_writev(mg_transport *t, const struct iovec *iov, int iovcnt)
{
	sch *s = t->ctx;
	if (s->failed)
		return -EPROTO;
	if (s->out_off < s->out_len) {
		int r = flush(t, s);
		if (r < 0)
			return r;
		size_t k = s->out_taken;
		s->out_taken = 0;
		if (k)
			return (ssize_t)k;
	}
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	size_t take = total < s->sizes.cbMaximumMessage ? total : s->sizes.cbMaximumMessage;
	if (!take)
		return 0;
	size_t hdr = s->sizes.cbHeader, trl = s->sizes.cbTrailer;
	if (!out_room(s, hdr + take + trl))
		return -ENOMEM;
	size_t at = 0;
	for (int i = 0; i < iovcnt && at < take; i++) {
		size_t k = iov[i].iov_len < take - at ? iov[i].iov_len : take - at;
		memcpy(s->out + hdr + at, iov[i].iov_base, k);
		at += k;
	}
	SecBuffer b[4] = { { (ULONG)hdr, SECBUFFER_STREAM_HEADER, s->out },
	                   { (ULONG)take, SECBUFFER_DATA, s->out + hdr },
	                   { (ULONG)trl, SECBUFFER_STREAM_TRAILER, s->out + hdr + take },
	                   { 0, SECBUFFER_EMPTY, NULL } };
	SecBufferDesc d = { SECBUFFER_VERSION, 4, b };
	SECURITY_STATUS st = EncryptMessage(&s->ctx, 0, &d, 0);
	if (st != SEC_E_OK)
		return fail(s, st, "TLS write failed");
	s->out_off = 0;
	s->out_len = b[0].cbBuffer + b[1].cbBuffer + b[2].cbBuffer;
	int r = flush(t, s);
	if (r == -EAGAIN) {
		s->out_taken = take;
		return -EAGAIN;
	}
	return r < 0 ? r : (ssize_t)take;
}

static bool sch_want_write(const mg_transport *t)
{
	const sch *s = t->ctx;
	return s->out_off < s->out_len;
}

static bool sch_pending(const mg_transport *t)
{
	const sch *s = t->ctx;
	return !s->failed && (s->plain_len || (s->in_len && !s->need_more && s->connected));
}

/* close_notify, best effort: one non-blocking send, never waiting. */
static void send_close_notify(mg_transport *t, sch *s)
{
	if (!s->connected || s->failed || s->eof || t->fd < 0)
		return;
	DWORD type = SCHANNEL_SHUTDOWN;
	SecBuffer b = { sizeof(type), SECBUFFER_TOKEN, &type };
	SecBufferDesc d = { SECBUFFER_VERSION, 1, &b };
	if (ApplyControlToken(&s->ctx, &d) != SEC_E_OK)
		return;
	s->out_off = s->out_len = 0;
	s->in_len = 0;
	isc(s, false);
	flush(t, s);
	s->eof = true;
}

static void sch_free(sch *s)
{
	if (s->have_ctx)
		DeleteSecurityContext(&s->ctx);
	if (s->have_cred)
		FreeCredentialsHandle(&s->cred);
	if (s->ca)
		CertCloseStore(s->ca, 0);
	if (s->mine)
		CertFreeCertificateContext(s->mine);
	free(s->host);
	free(s->in);
	free(s->plain);
	free(s->out);
	free(s);
}

static void sch_close(mg_transport *t)
{
	sch *s = t->ctx;
	if (s) {
		send_close_notify(t, s);
		sch_free(s);
	}
	t->ctx = NULL;
	if (t->fd >= 0)
		mg_plat_close(t->fd);
	t->fd = -1;
}

static int sch_shutdown_write(mg_transport *t)
{
	send_close_notify(t, t->ctx);
	return shutdown((SOCKET)t->fd, SD_SEND) == 0 ? 0 : -EIO;
}

const mg_transport_ops mg_schannel_ops = {
	.name = "tls",
	.read = sch_read,
	.writev = sch_writev,
	.handshake = sch_handshake,
	.want_write = sch_want_write,
	.close = sch_close,
	.shutdown_write = sch_shutdown_write,
	.pending = sch_pending,
};

/* SCH_CREDENTIALS first (TLS 1.3 on Windows 11 needs it), SCHANNEL_CRED where it is not known;
 * and without 1.3 where SCHANNEL_CRED refuses it (Windows 10). */
static SECURITY_STATUS acquire(CredHandle *h, DWORD protos, PCCERT_CONTEXT mine)
{
	DWORD flags = SCH_CRED_MANUAL_CRED_VALIDATION | SCH_CRED_NO_DEFAULT_CREDS | SCH_USE_STRONG_CRYPTO;
	TLS_PARAMETERS tp;
	memset(&tp, 0, sizeof(tp));
	tp.grbitDisabledProtocols = CLIENT_PROTOS & ~protos;
	SCH_CREDENTIALS sc;
	memset(&sc, 0, sizeof(sc));
	sc.dwVersion = SCH_CREDENTIALS_VERSION;
	sc.dwFlags = flags;
	sc.cTlsParameters = 1;
	sc.pTlsParameters = &tp;
	if (mine) {
		sc.cCreds = 1;
		sc.paCred = &mine;
	}
	SECURITY_STATUS st = AcquireCredentialsHandleA(NULL, (char *)UNISP_NAME_A, SECPKG_CRED_OUTBOUND, NULL,
	                                               &sc, NULL, NULL, h, NULL);
	if (st == SEC_E_OK)
		return st;
	SCHANNEL_CRED old;
	memset(&old, 0, sizeof(old));
	old.dwVersion = SCHANNEL_CRED_VERSION;
	old.dwFlags = flags;
	old.grbitEnabledProtocols = protos;
	if (mine) {
		old.cCreds = 1;
		old.paCred = &mine;
	}
	st = AcquireCredentialsHandleA(NULL, (char *)UNISP_NAME_A, SECPKG_CRED_OUTBOUND, NULL, &old, NULL,
	                               NULL, h, NULL);
	if (st != SEC_E_OK && (protos & SP_PROT_TLS1_2_CLIENT)) {
		old.grbitEnabledProtocols = protos & ~(DWORD)SP_PROT_TLS1_3_CLIENT;
		st = AcquireCredentialsHandleA(NULL, (char *)UNISP_NAME_A, SECPKG_CRED_OUTBOUND, NULL, &old,
		                               NULL, NULL, h, NULL);
	}
	return st;
}

/* ---- the settings (tls_opts.c's); made is what prepare loaded from them ---- */

typedef struct loaded {
	HCERTSTORE ca;       /* the cafile's certificates, or NULL */
	HCERTSTORE pfx_store;
	PCCERT_CONTEXT mine; /* the client certificate with its key, from pfx_store, or NULL */
} loaded;

static bool is_pfx(const char *path)
{
	size_t n = strlen(path);
	return n > 4 && (!strcasecmp(path + n - 4, ".pfx") || !strcasecmp(path + n - 4, ".p12"));
}

int mgc_tls_be_supports(const mgc_tls_ask *a)
{
	/* Schannel has no TLS-PSK, and takes the system's cipher list, not an OpenSSL string */
	if (a->psk || a->ciphers)
		return MIDGE_ERR_NOT_SUPPORTED;
	/* OpenSSL hash directories, and a client certificate and key as PEM files: not with
	 * Schannel (file comment). A PKCS#12 file holding both, given as certfile and keyfile: yes. */
	if ((a->capath && !a->cafile) ||
	    (a->certfile && (!is_pfx(a->certfile) || strcmp(a->certfile, a->keyfile))))
		return MIDGE_ERR_NOT_SUPPORTED;
	return MIDGE_OK;
}

static void release(const loaded *l)
{
	if (l->ca)
		CertCloseStore(l->ca, 0);
	if (l->mine)
		CertFreeCertificateContext(l->mine);
	if (l->pfx_store)
		CertCloseStore(l->pfx_store, 0);
}

void mgc_tls_be_drop(void *made)
{
	release(made);
	free(made);
}

/* The SP_PROT_*_CLIENT versions allowed from midge_tls_opts_set's lowest one. */
static DWORD protos_of(int min_version)
{
	DWORD p = SP_PROT_TLS1_3_CLIENT;
	if (min_version <= MGC_TLS_1_2)
		p |= SP_PROT_TLS1_2_CLIENT;
	if (min_version <= MGC_TLS_1_1)
		p |= SP_PROT_TLS1_1_CLIENT;
	return p;
}

/* The whole file, NUL-terminated; NULL if it cannot be read (or is over 16 MiB). */
static char *read_file(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 0, len = 0;
	char *text = NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *p = realloc(text, cap = cap ? cap * 2 : 16384);
			if (!p || cap > 16 * 1024 * 1024) {
				free(p ? p : text);
				fclose(f);
				return NULL;
			}
			text = p;
		}
		size_t n = fread(text + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	text[len] = '\0';
	*lenp = len;
	return text;
}

/* The PEM file's certificates in a memory store; NULL if it holds none or cannot be read. */
static HCERTSTORE load_pem(const char *path)
{
	size_t len;
	char *text = read_file(path, &len);
	if (!text)
		return NULL;
	HCERTSTORE st = CertOpenStore(CERT_STORE_PROV_MEMORY, 0, 0, 0, NULL);
	int count = 0;
	static const char begin[] = "-----BEGIN CERTIFICATE-----", end[] = "-----END CERTIFICATE-----";
	for (char *p = text; st && (p = strstr(p, begin)) != NULL;) {
		char *e = strstr(p, end);
		if (!e)
			break;
		e += sizeof(end) - 1;
		DWORD n = 0;
		if (CryptStringToBinaryA(p, (DWORD)(e - p), CRYPT_STRING_BASE64HEADER, NULL, &n, NULL, NULL) && n) {
			BYTE *der = malloc(n);
			if (der && CryptStringToBinaryA(p, (DWORD)(e - p), CRYPT_STRING_BASE64HEADER, der, &n, NULL, NULL) &&
			    CertAddEncodedCertificateToStore(st, X509_ASN_ENCODING, der, n, CERT_STORE_ADD_ALWAYS, NULL))
				count++;
			free(der);
		}
		p = e;
	}
	free(text);
	if (st && !count) {
		CertCloseStore(st, 0);
		st = NULL;
	}
	return st;
}

/* The PKCS#12 file's certificate that has a private key, its key not kept on disk
 * (PKCS12_NO_PERSIST_KEY); the password from pw_cb (as OpenSSL asks for a PEM key's), else
 * none. The store is returned in *store: the certificate's key lives as long as it. */
static PCCERT_CONTEXT load_pfx(const char *path, int (*pw_cb)(char *, int, int, void *), void *ud,
                               HCERTSTORE *store)
{
	size_t len;
	char *der = read_file(path, &len);
	if (!der)
		return NULL;
	char pw[256] = "";
	if (pw_cb) {
		int n = pw_cb(pw, (int)sizeof(pw), 0, ud);
		pw[n > 0 && n < (int)sizeof(pw) ? n : 0] = '\0';
	}
	WCHAR wpw[256];
	if (!MultiByteToWideChar(CP_UTF8, 0, pw, -1, wpw, 256))
		wpw[0] = 0;
	CRYPT_DATA_BLOB blob = { (DWORD)len, (BYTE *)der };
	*store = PFXImportCertStore(&blob, wpw, CRYPT_USER_KEYSET | PKCS12_NO_PERSIST_KEY);
	if (!*store) /* an SSPI without PKCS12_NO_PERSIST_KEY (before Windows 10) */
		*store = PFXImportCertStore(&blob, wpw, CRYPT_USER_KEYSET);
	SecureZeroMemory(pw, sizeof(pw));
	SecureZeroMemory(wpw, sizeof(wpw));
	free(der);
	PCCERT_CONTEXT found = NULL;
	for (PCCERT_CONTEXT x = NULL; *store && (x = CertEnumCertificatesInStore(*store, x)) != NULL;) {
		DWORD n = 0;
		if (CertGetCertificateContextProperty(x, CERT_KEY_PROV_INFO_PROP_ID, NULL, &n) ||
		    CertGetCertificateContextProperty(x, CERT_KEY_CONTEXT_PROP_ID, NULL, &n) ||
		    CertGetCertificateContextProperty(x, CERT_NCRYPT_KEY_HANDLE_PROP_ID, NULL, &n)) {
			found = CertDuplicateCertificateContext(x);
			CertFreeCertificateContext(x);
			break;
		}
	}
	if (!found && *store) {
		CertCloseStore(*store, 0);
		*store = NULL;
	}
	return found;
}

void *mgc_tls_be_make(midge_client *c, const mgc_tls *t, void *userdata)
{
	/* certfile is the PKCS#12 file (mgc_tls_be_supports let only that through), keyfile
	 * names it again */
	HCERTSTORE ca = t->cafile ? load_pem(t->cafile) : NULL, pfx_store = NULL;
	PCCERT_CONTEXT mine = t->certfile && (!t->cafile || ca) ? load_pfx(t->certfile, t->pw_cb, userdata, &pfx_store) : NULL;
	bool ok = (!t->cafile || ca) && (!t->certfile || mine);
	loaded *l = ok ? calloc(1, sizeof(*l)) : NULL;
	if (l) {
		*l = (loaded){ ca, pfx_store, mine };
		return l;
	}
	mgc_lock(c);
	if (!ok && t->cafile && !ca)
		mgc_log(c, MIDGE_LOG_ERR, "Error: Unable to load CA certificates, check cafile \"%s\".", t->cafile);
	else if (!ok)
		mgc_log(c, MIDGE_LOG_ERR, "Error: Unable to load client certificate \"%s\" (a PKCS#12 file with its key; wrong password?).", t->certfile);
	else
		mgc_log(c, MIDGE_LOG_ERR, "Client %s TLS: out of memory", mgc_cid(c));
	mgc_unlock(c);
	release(&(loaded){ ca, pfx_store, mine });
	return NULL;
}

/* ---- the handshake on the client's loop ---- */

int mgc_tls_begin(midge_client *c)
{
	mgc_tls *t = c->tls;
	const loaded *l = t ? t->made : NULL;
	if (!l) { /* another thread's connect is still loading the cafile */
		mgc_log(c, MIDGE_LOG_ERR, "Client %s TLS: no context", mgc_cid(c));
		mgc_conn_close(c, 0, MIDGE_ERR_TLS, NULL);
		return MIDGE_ERR_TLS;
	}
	sch *s = calloc(1, sizeof(*s));
	if (s)
		s->host = strdup(c->host);
	if (!s || !s->host) {
		free(s);
		mgc_log(c, MIDGE_LOG_ERR, "Client %s TLS: out of memory", mgc_cid(c));
		mgc_conn_close(c, 0, MIDGE_ERR_TLS, NULL);
		return MIDGE_ERR_TLS;
	}
	s->verify = t->cert_reqs != MIDGE_TLS_CERT_NONE;
	s->check_host = s->verify && !t->insecure;
	s->os_certs = t->os_certs;
	s->protos = protos_of(t->min_version);
	s->ca = l->ca ? CertDuplicateStore(l->ca) : NULL;
	/* the transport owns the socket from here, closed with it */
	c->tr.ops = &mg_schannel_ops;
	c->tr.ctx = s;
	s->mine = l->mine ? CertDuplicateCertificateContext(l->mine) : NULL;
	SECURITY_STATUS st = acquire(&s->cred, s->protos, s->mine);
	if (st != SEC_E_OK) {
		mgc_log(c, MIDGE_LOG_ERR, "Client %s TLS: AcquireCredentialsHandle failed (0x%08lx)", mgc_cid(c),
		        (unsigned long)st);
		mgc_conn_close(c, 0, MIDGE_ERR_TLS, NULL);
		return MIDGE_ERR_TLS;
	}
	s->have_cred = true;
	c->tls_hs = true;
	return mgc_tls_step(c);
}

/* The Schannel transport under c->tr (itself, or under the WebSocket of wss), or NULL. */
static sch *conn_of(midge_client *c)
{
	const mg_transport *t = mg_ws_inner(&c->tr);
	if (!t)
		t = &c->tr;
	return t->ops == &mg_schannel_ops ? t->ctx : NULL;
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
		c->tls_hs = false;
		if (mgc_ws_on(c))
			return mgc_ws_begin(c); /* wss: the WebSocket upgrade inside TLS */
		return MIDGE_OK;
	}
	sch *s = conn_of(c);
	if (s && s->name_failed)
		mgc_log(c, MIDGE_LOG_ERR, "Error: host name verification failed.");
	else if (s && s->err[0])
		mgc_log(c, MIDGE_LOG_ERR, "Client %s %s", mgc_cid(c), s->err);
	else
		mgc_log(c, MIDGE_LOG_ERR, "Client %s TLS handshake failed: %s", mgc_cid(c), mg_plat_strerror(-r));
	mgc_conn_close(c, 0, MIDGE_ERR_TLS, NULL);
	return MIDGE_ERR_TLS;
}

void mgc_tls_log_errors(midge_client *c)
{
	sch *s = conn_of(c);
	if (s && s->err[0])
		mgc_log(c, MIDGE_LOG_ERR, "Client %s %s", mgc_cid(c), s->err);
}
