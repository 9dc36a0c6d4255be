/*
 * bench/trivial_router.c - the ceiling bench/compare measures the brokers against.
 *
 * NOT A BROKER, and never to be run as one. It forwards MQTT 3.1.1 QoS 0 PUBLISH packets by
 * topic and does nothing else a broker must: no sessions, no client ids, no authentication,
 * no keepalive, no retained messages, no QoS 1/2 (a PUBLISH with QoS > 0 closes the
 * connection), no topic tree (exact topics in a hash table, plus a linear list of wildcard
 * filters, matched per PUBLISH), no checks on what a client sends beyond what it needs to
 * find the next packet, no limits but one: a connection whose unsent output passes 64 MiB is
 * closed. A subscriber whose exact and wildcard subscriptions both match gets a message
 * twice. CONNECT is answered with a fixed CONNACK and SUBSCRIBE with a SUBACK granting QoS 0,
 * without reading what was asked.
 *
 * What it is for: the CPU a router needs per message when it has nothing to do but move
 * bytes, so that bench/compare can say how far a broker's CPU per message is from it
 * (column "x ceiling"). It does the I/O the way a fast broker would: one thread, epoll,
 * one large read per readiness event with every whole packet in it handled before the
 * next, each PUBLISH copied (retain bit cleared, otherwise byte for byte) into every
 * matching subscriber's output buffer, and every buffer written with one write() at the
 * end of the loop turn, so a turn that forwards many messages to one subscriber costs one
 * system call for all of them.
 *
 *     build/bench/trivial_router -p PORT [-h 127.0.0.1]
 *
 * It runs until killed (bench/compare sends SIGTERM).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
#define OUT_MAX ((size_t)64 << 20)
#define BUCKETS 4096 /* exact topics: chained, never resized (the bench has <= 100 topics) */

typedef struct conn conn;

typedef struct route { /* one exact topic and the connections subscribed to it */
	struct route *next;
	uint64_t hash;
	uint16_t len;
	conn **subs;
	int n, cap;
	uint8_t topic[];
} route;

typedef struct wild { /* one wildcard filter of one connection */
	conn *c;
	uint16_t len;
	uint8_t *filter;
} wild;

struct conn {
	int fd;
	bool connected, dirty, epollout;
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out;
	size_t out_off, out_len, out_cap;
	route **routes; /* the routes this connection is in, to leave them when it closes */
	int nroutes, routes_cap;
	conn *next_dirty, *next_dead;
};

static int ep;
static route *table[BUCKETS];
static wild *wilds;
static int nwilds, wilds_cap;
static conn *dirty, *dead;

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "trivial_router: out of memory\n");
		exit(2);
	}
	return p;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static route *find_route(const uint8_t *t, uint16_t len, uint64_t h)
{
	for (route *r = table[h % BUCKETS]; r; r = r->next)
		if (r->hash == h && r->len == len && memcmp(r->topic, t, len) == 0)
			return r;
	return NULL;
}

/* MQTT filter matching for + and # (valid filters assumed; no $-topic rule). */
static bool match(const uint8_t *f, size_t fl, const uint8_t *t, size_t tl)
{
	size_t i = 0, j = 0;
	while (i < fl) {
		if (f[i] == '#')
			return true;
		if (f[i] == '+') {
			while (j < tl && t[j] != '/')
				j++;
			i++;
			continue;
		}
		if (j == tl) /* "a/#" also matches "a" */
			return fl - i == 2 && f[i] == '/' && f[i + 1] == '#';
		if (f[i] != t[j])
			return false;
		i++;
		j++;
	}
	return j == tl;
}

static void set_epollout(conn *c, bool on)
{
	if (c->epollout == on)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->epollout = on;
}

static void conn_close(conn *c)
{
	if (c->fd < 0)
		return;
	close(c->fd); /* leaves the epoll set too */
	c->fd = -1;
	for (int i = 0; i < c->nroutes; i++) {
		route *r = c->routes[i];
		for (int k = 0; k < r->n; k++)
			if (r->subs[k] == c)
				r->subs[k--] = r->subs[--r->n];
	}
	for (int k = 0; k < nwilds; k++)
		if (wilds[k].c == c) {
			free(wilds[k].filter);
			wilds[k--] = wilds[--nwilds];
		}
	c->next_dead = dead; /* freed at the end of the turn: later events may still name it */
	dead = c;
}

/* Room for n more bytes of output, or NULL when the connection was closed for not reading. */
static uint8_t *out_room(conn *c, size_t n)
{
	if (c->out_cap - c->out_len >= n)
		return c->out + c->out_len;
	if (c->out_len - c->out_off + n > OUT_MAX) {
		conn_close(c);
		return NULL;
	}
	if (c->out_off) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_cap - c->out_len < n) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap - c->out_len < n)
			cap *= 2;
		c->out = xrealloc(c->out, cap);
		c->out_cap = cap;
	}
	return c->out + c->out_len;
}

static void send_bytes(conn *c, const uint8_t *p, size_t n)
{
	if (c->fd < 0)
		return;
	uint8_t *o = out_room(c, n);
	if (!o)
		return;
	memcpy(o, p, n);
	c->out_len += n;
	if (!c->dirty) {
		c->dirty = true;
		c->next_dirty = dirty;
		dirty = c;
	}
}

static void forward(const uint8_t *pkt, size_t n, const uint8_t *topic, uint16_t tl)
{
	uint8_t b0 = pkt[0] & 0xFE; /* retain flag off: a live delivery */
	route *r = find_route(topic, tl, fnv1a(topic, tl));
	int nr = r ? r->n : 0;
	for (int k = 0; k < nr + nwilds; k++) {
		conn *s;
		if (k < nr) {
			s = r->subs[k];
		} else {
			wild *w = &wilds[k - nr];
			if (!match(w->filter, w->len, topic, tl))
				continue;
			s = w->c;
		}
		if (s->fd < 0)
			continue;
		uint8_t *o = out_room(s, n);
		if (!o)
			continue;
		memcpy(o, pkt, n);
		o[0] = b0;
		s->out_len += n;
		if (!s->dirty) {
			s->dirty = true;
			s->next_dirty = dirty;
			dirty = s;
		}
	}
}

static void subscribe(conn *c, const uint8_t *f, uint16_t len)
{
	if (memchr(f, '+', len) || memchr(f, '#', len)) {
		if (nwilds == wilds_cap) {
			wilds_cap = wilds_cap ? 2 * wilds_cap : 16;
			wilds = xrealloc(wilds, (size_t)wilds_cap * sizeof *wilds);
		}
		wilds[nwilds].c = c;
		wilds[nwilds].len = len;
		wilds[nwilds].filter = xrealloc(NULL, len ? len : 1);
		memcpy(wilds[nwilds].filter, f, len);
		nwilds++;
		return;
	}
	uint64_t h = fnv1a(f, len);
	route *r = find_route(f, len, h);
	if (!r) {
		r = xrealloc(NULL, sizeof *r + len);
		memset(r, 0, sizeof *r);
		r->hash = h;
		r->len = len;
		memcpy(r->topic, f, len);
		r->next = table[h % BUCKETS];
		table[h % BUCKETS] = r;
	}
	for (int k = 0; k < r->n; k++)
		if (r->subs[k] == c)
			return;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 4;
		r->subs = xrealloc(r->subs, (size_t)r->cap * sizeof *r->subs);
	}
	r->subs[r->n++] = c;
	if (c->nroutes == c->routes_cap) {
		c->routes_cap = c->routes_cap ? 2 * c->routes_cap : 4;
		c->routes = xrealloc(c->routes, (size_t)c->routes_cap * sizeof *c->routes);
	}
	c->routes[c->nroutes++] = r;
}

static void unsubscribe(conn *c, const uint8_t *f, uint16_t len)
{
	for (int k = 0; k < nwilds; k++)
		if (wilds[k].c == c && wilds[k].len == len && memcmp(wilds[k].filter, f, len) == 0) {
			free(wilds[k].filter);
			wilds[k--] = wilds[--nwilds];
		}
	route *r = find_route(f, len, fnv1a(f, len));
	if (r)
		for (int k = 0; k < r->n; k++)
			if (r->subs[k] == c)
				r->subs[k--] = r->subs[--r->n];
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* One whole packet: body[0..n) after a fixed header of h bytes at pkt. false: close. */
static bool on_packet(conn *c, const uint8_t *pkt, size_t h, size_t n)
{
	const uint8_t *b = pkt + h;
	uint8_t type = pkt[0] >> 4;
	if (!c->connected && type != 1)
		return false;
	switch (type) {
	case 1: { /* CONNECT: 3.1.1 (level 4) or 3.1 (level 3) only */
		if (c->connected || n < 8)
			return false;
		uint16_t pl = get16(b);
		if ((size_t)pl + 3 > n)
			return false;
		uint8_t level = b[2 + pl];
		if (level != 3 && level != 4) { /* 0x01: unacceptable protocol version */
			static const uint8_t refuse[] = {0x20, 0x02, 0x00, 0x01};
			send_bytes(c, refuse, sizeof refuse);
			return false;
		}
		static const uint8_t connack[] = {0x20, 0x02, 0x00, 0x00};
		c->connected = true;
		send_bytes(c, connack, sizeof connack);
		return true;
	}
	case 3: { /* PUBLISH */
		if ((pkt[0] >> 1 & 3) != 0 || n < 2)
			return false; /* QoS 0 only */
		uint16_t tl = get16(b);
		if ((size_t)tl + 2 > n)
			return false;
		forward(pkt, h + n, b + 2, tl);
		return true;
	}
	case 8: /* SUBSCRIBE: grant QoS 0 to every filter */
	case 10: { /* UNSUBSCRIBE */
		if (n < 2 || n > 65535)
			return false;
		uint8_t ack[4 + 65535];
		size_t k = 4, i = 2;
		while (i + 2 <= n) {
			uint16_t fl = get16(b + i);
			if (i + 2 + fl + (type == 8) > n)
				return false;
			if (type == 8) {
				subscribe(c, b + i + 2, fl);
				ack[k++] = 0x00;
			} else {
				unsubscribe(c, b + i + 2, fl);
			}
			i += 2u + fl + (type == 8);
		}
		if (type == 10)
			k = 4;
		if (k - 2 > 127)
			return false; /* one length byte is all this router writes */
		ack[0] = type == 8 ? 0x90 : 0xB0;
		ack[1] = (uint8_t)(k - 2);
		ack[2] = b[0];
		ack[3] = b[1];
		send_bytes(c, ack, k);
		return true;
	}
	case 12: { /* PINGREQ */
		static const uint8_t pong[] = {0xD0, 0x00};
		send_bytes(c, pong, sizeof pong);
		return true;
	}
	default: /* DISCONNECT, and everything a QoS 0 router has no use for */
		return false;
	}
}

/* One read, then every whole packet in the buffer. */
static void on_readable(conn *c)
{
	if (c->in_cap - c->in_len < READ_CHUNK) {
		c->in_cap = c->in_len + READ_CHUNK;
		c->in = xrealloc(c->in, c->in_cap);
	}
	ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		conn_close(c);
		return;
	}
	c->in_len += (size_t)r;
	size_t off = 0;
	while (c->fd >= 0 && c->in_len - off >= 2) {
		const uint8_t *p = c->in + off;
		size_t avail = c->in_len - off, len = 0, h = 1;
		for (int shift = 0;; shift += 7, h++) {
			if (h >= avail)
				goto partial;
			if (h > 4) {
				conn_close(c);
				return;
			}
			len |= (size_t)(p[h] & 0x7F) << shift;
			if (!(p[h] & 0x80))
				break;
		}
		h++;
		if (avail < h + len) {
			if (c->in_cap < h + len) { /* a packet larger than the buffer: make room */
				memmove(c->in, p, avail);
				c->in_len = avail;
				off = 0;
				c->in_cap = h + len + READ_CHUNK;
				c->in = xrealloc(c->in, c->in_cap);
			}
			break;
		}
		if (!on_packet(c, p, h, len)) {
			if (c->fd >= 0 && c->out_len > c->out_off) { /* a refusal: best effort */
				ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
				(void)w;
			}
			conn_close(c);
			return;
		}
		off += h + len;
	}
partial:
	if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
}

static void flush(conn *c)
{
	while (c->out_len > c->out_off) {
		ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				set_epollout(c, true);
				return;
			}
			conn_close(c);
			return;
		}
		c->out_off += (size_t)w;
	}
	c->out_off = c->out_len = 0;
	set_epollout(c, false);
}

static void accept_all(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		conn *c = xrealloc(NULL, sizeof *c);
		memset(c, 0, sizeof *c);
		c->fd = fd;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
		}
	}
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = -1, opt;
	while ((opt = getopt(argc, argv, "p:h:")) != -1) {
		if (opt == 'p')
			port = atoi(optarg);
		else if (opt == 'h')
			host = optarg;
		else
			port = -1;
	}
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "usage: trivial_router -p PORT [-h ADDRESS]\n"
		                "  the ceiling of bench/compare: forwards QoS 0 PUBLISH by topic; not a broker\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		fprintf(stderr, "trivial_router: %s: not an IPv4 address\n", host);
		return 2;
	}
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 1024) < 0) {
		perror("trivial_router: listen");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			conn *c = evs[i].data.ptr;
			if (!c) {
				accept_all(lfd);
				continue;
			}
			if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
				flush(c);
			if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				on_readable(c);
		}
		/* one write per connection for everything this turn gave it */
		while (dirty) {
			conn *c = dirty;
			dirty = c->next_dirty;
			c->dirty = false;
			if (c->fd >= 0 && !c->epollout)
				flush(c);
		}
		while (dead) {
			conn *c = dead;
			dead = c->next_dead;
			free(c->in);
			free(c->out);
			free(c->routes);
			free(c);
		}
	}
}
