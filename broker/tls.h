/*
 * broker/tls.h - TLS on the broker's listeners (tls.c): a listener's settings become an
 * SSL_CTX for net/tls.h (certificate chain, key, CA file/path, CRL, versions, ciphers,
 * DH parameters, TLS-PSK from psk_file), made at start and again on SIGHUP; and the user
 * name a TLS connection brings to CONNECT (use_identity_as_username, use_subject_as_username).
 *
 * Messages are mosquitto's, prefixed with the listener's file and line, followed by
 * OpenSSL's own lines as mosquitto logs them ("OpenSSL Error[0]: ...").
 */
#ifndef MG_BROKER_TLS_H
#define MG_BROKER_TLS_H

#include <stdbool.h>

#include "broker/config.h"
#include "net/transport.h"

struct ssl_ctx_st;

/* Is this listener a TLS listener (certfile + keyfile, or psk_hint)? */
bool mg_tls_listener(const mg_listener_conf *lc);

/* A new context for lc (psk_file: the broker's, for a psk_hint listener). NULL on failure,
 * every reason logged at MG_LOG_ERR. The caller frees it with SSL_CTX_free; connections made
 * from it hold their own reference, so freeing it never cuts a connected client. */
struct ssl_ctx_st *mg_tls_listener_ctx(const mg_listener_conf *lc, const char *psk_file);

/* Log OpenSSL's lines for a failed TLS transport (its saved errors) as mosquitto does. */
void mg_tls_log_errors(const mg_transport *t);

/* After the handshake, on a use_identity_as_username / use_subject_as_username listener:
 * the user name the client's certificate (or PSK identity) gives, malloc'd, or NULL when
 * it has none (mosquitto then refuses CONNECT as a bad user name or password). */
char *mg_tls_identity(const mg_transport *t, const mg_listener_conf *lc);

#endif
