/*
 * net/tls.h - the TLS row of the transport table (net/transport.h), over OpenSSL 3. One row
 * for both ends: the broker (server mode), libmidge, midge_bench and bridges (client mode).
 * The caller builds the SSL_CTX (certificates, verification, versions, PSK callbacks) and
 * owns it; this file only runs a connection over it.
 *
 *     SSL_CTX *ctx = ...;                       // caller's; may be shared by many threads
 *     mg_transport t;
 *     if (mg_tls_init(&t, fd, ctx, MG_TLS_SERVER, NULL) < 0) ...   // fd: connected, O_NONBLOCK
 *     // client: mg_tls_init(&t, fd, ctx, MG_TLS_CLIENT, "broker.example") sends that SNI;
 *     //         host name checks: SSL_set1_host(mg_tls_ssl(&t), host) before the handshake.
 *     for (;;) {                                // on the caller's loop, never blocking
 *         int r = mg_transport_handshake(&t);   // 0 done, -EAGAIN: wait, <0: failed
 *         if (r != -EAGAIN) break;
 *         wait for mg_transport_want_write(&t) ? writable : readable;
 *     }
 *     then mg_transport_read / _writev / _shutdown_write / _close as for TCP.
 *
 * - Deadlines are the caller's: the transport keeps no clock. A handshake that has not
 *   finished by the caller's deadline is ended with mg_transport_close.
 * - read fills as much of buf as the decrypted records give (several records per call) and
 *   returns -EAGAIN when the socket has nothing more. When buf fills up, bytes may stay
 *   inside OpenSSL where the socket's readiness cannot show them: mg_transport_pending(t)
 *   says so, and the caller reads again without waiting. 0 means the peer closed (a
 *   close_notify, or a TCP end without one: OpenSSL's unexpected EOF is an end of stream).
 * - writev copies the iovecs into one buffer of up to MG_TLS_WRITE_CHUNK bytes and writes it
 *   with ONE SSL_write (a few records, one per 16 KiB), so a flush of many small packets costs
 *   one encryption call, not one per packet. It returns the bytes taken from iov. On -EAGAIN
 *   the caller must call again with the same bytes first (what it would do anyway: it did not
 *   advance) - OpenSSL has part of them encrypted already.
 * - want_write: OpenSSL waits to write (a handshake message, a TLS 1.3 ticket or key update
 *   during a read). The caller waits for writability and calls handshake/read/writev again.
 * - Errors: -EPROTO for a TLS failure (bad handshake, bad record, certificate refused);
 *   mg_tls_error(t, i, ...) gives OpenSSL's error lines of the last failure, i = 0, 1, ...,
 *   as mosquitto logs them ("OpenSSL Error[i]: <line>"). Other negative errno values are the
 *   socket's.
 * - close sends close_notify (best effort, never waiting: it keeps the session resumable),
 *   frees the SSL and closes the fd; shutdown_write sends it and shuts the socket's write
 *   side, for the lingering close.
 *
 * Costs: an idle connection holds OpenSSL's SSL object (a few KiB) but no record buffers
 * (SSL_MODE_RELEASE_BUFFERS); writev uses a per-thread buffer of MG_TLS_WRITE_CHUNK bytes,
 * allocated on first use and freed by mg_tls_thread_cleanup() or at thread exit.
 */
#ifndef MG_NET_TLS_H
#define MG_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "net/transport.h"

struct ssl_ctx_st; /* SSL_CTX */
struct ssl_st;     /* SSL */

enum mg_tls_mode { MG_TLS_SERVER = 0, MG_TLS_CLIENT = 1 };

#define MG_TLS_WRITE_CHUNK (64 * 1024)

extern const mg_transport_ops mg_tls_ops;

/* Run TLS on fd (connected, non-blocking; the transport owns it from here, also on error:
 * on failure fd is closed and t->ops is NULL). ctx is borrowed: it must outlive t (OpenSSL
 * counts its references, so SSL_CTX_free by the caller after init is fine). sni: the host
 * name sent in a client's hello (NULL: none; ignored in server mode). 0 or -ENOMEM. */
int mg_tls_init(mg_transport *t, int fd, struct ssl_ctx_st *ctx, enum mg_tls_mode mode,
                const char *sni);

/* Server side: what the handshake's last step writes (the TLS 1.3 session tickets, sent
 * after the client's Finished) is held instead of sent, and leaves in the same send(2) as
 * the connection's first write (the CONNACK, when the CONNECT came with the Finished, as it
 * does from a TLS 1.3 client). The caller must then write, or call writev with no data, in
 * the turn in which the handshake finished, for mg_tls_held says there is something to
 * send. Saves a send, and the peer a wakeup, per connection. */
void mg_tls_hold_final_flight(mg_transport *t);
bool mg_tls_held(const mg_transport *t);

/* The SSL of a TLS transport (peer certificate, PSK identity, version, session reuse). */
struct ssl_st *mg_tls_ssl(const mg_transport *t);
bool mg_tls_handshake_done(const mg_transport *t);

/* Line i of the last failure's OpenSSL errors ("error:0A00010B:SSL routines::wrong version
 * number"), written into buf; NULL when there is no line i. */
const char *mg_tls_error(const mg_transport *t, int i, char *buf, size_t len);

/* A common base for a context: TLS 1.2 the floor, no compression, no renegotiation.
 * NULL on failure (OpenSSL's error queue says why). The caller frees it (SSL_CTX_free). */
struct ssl_ctx_st *mg_tls_ctx_new(enum mg_tls_mode mode);

/* Free this thread's write buffer now (threads that leave before the process ends). */
void mg_tls_thread_cleanup(void);

#endif
