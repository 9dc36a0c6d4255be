/* net/listen.c - listening sockets (net/listen.h). */
#include "net/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int open_one(const struct sockaddr *sa, socklen_t salen, int backlog, uint16_t *port)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	struct sockaddr_storage ss;
	memcpy(&ss, sa, salen);
	if (*port) {
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons(*port);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(*port);
	}
	if (bind(fd, (struct sockaddr *)&ss, salen) < 0 || listen(fd, backlog) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if (!*port) {
		socklen_t l = sizeof ss;
		getsockname(fd, (struct sockaddr *)&ss, &l);
		*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
		                                      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return fd;
}

int mg_listen_tcp(const char *address, uint16_t port, int backlog, mg_listen_sock *out, int cap,
                  int *failed_family)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE, .ai_family = AF_UNSPEC };
	struct addrinfo *res = NULL;
	char ps[8];
	snprintf(ps, sizeof ps, "%u", (unsigned)port);
	int gr = getaddrinfo(address, ps, &hints, &res);
	if (gr != 0)
		return gr == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
	int n = 0, err = 0;
	/* IPv4 first, like mosquitto's log order. */
	for (int pass = 0; pass < 2 && !err; pass++) {
		for (struct addrinfo *ai = res; ai && !err; ai = ai->ai_next) {
			int fam = pass == 0 ? AF_INET : AF_INET6;
			if (ai->ai_family != fam || n >= cap)
				continue;
			int fd = open_one(ai->ai_addr, ai->ai_addrlen, backlog, &port);
			if (fd == -EAFNOSUPPORT)
				continue;
			if (fd < 0) {
				err = fd;
				*failed_family = fam;
				break;
			}
			out[n++] = (mg_listen_sock){ .fd = fd, .family = fam, .port = port };
		}
	}
	freeaddrinfo(res);
	if (err) {
		while (n > 0)
			close(out[--n].fd);
		return err;
	}
	return n;
}

int mg_accept(int lfd, char *peer, size_t peerlen)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	int fd;
	do
		fd = accept4(lfd, (struct sockaddr *)&ss, &l, SOCK_NONBLOCK | SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned p = 0;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
		p = ntohs(s->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
		p = ntohs(s->sin6_port);
	}
	snprintf(peer, peerlen, "%s:%u", host, p);
	return fd;
}

int mg_tcp_nodelay(int fd, int on)
{
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) < 0 ? -errno : 0;
}
