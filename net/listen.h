/*
 * net/listen.h - listening TCP sockets and accept, IPv4 and IPv6.
 */
#ifndef MG_NET_LISTEN_H
#define MG_NET_LISTEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct mg_listen_sock {
	int fd;
	int family;    /* AF_INET or AF_INET6 */
	uint16_t port; /* the port actually bound (differs from the asked one when it was 0) */
} mg_listen_sock;

/* Open non-blocking listening sockets on port: address NULL means every address of both
 * families (0.0.0.0 and :: with IPV6_V6ONLY); otherwise every address that the name
 * resolves to (e.g. "localhost" gives 127.0.0.1 and ::1). SO_REUSEADDR is set. Port 0 binds
 * the first socket to an ephemeral port and the others to the same one.
 * Fills out[0..cap), returns how many, or a negative errno (all sockets then closed) with
 * *failed_family set to the family that failed. A family the host lacks (no IPv6) is skipped. */
int mg_listen_tcp(const char *address, uint16_t port, int backlog, mg_listen_sock *out, int cap,
                  int *failed_family);

/* accept4 non-blocking + close-on-exec. Writes "ADDR:PORT" into peer (v6 without brackets,
 * like mosquitto). Returns the fd or a negative errno (-EAGAIN when none is waiting). */
int mg_accept(int lfd, char *peer, size_t peerlen);

/* TCP_NODELAY on or off; returns 0 or negative errno. */
int mg_tcp_nodelay(int fd, int on);

#endif
