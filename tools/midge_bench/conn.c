/*
 * tools/midge_bench/conn.c - one MQTT connection of the generator: connect, CONNECT /
 * CONNACK, SUBSCRIBE / SUBACK, PUBLISH out with the QoS 1 and 2 flows, PUBLISH in with its
 * acknowledgements, all through proto/proto.h.
 *
 * I/O habits, so the generator is not what limits a run: input is read in one large read()
 * and every whole packet in it is handled before the next; everything a connection has to
 * say (acknowledgements, a batch of PUBLISHes) is appended to one output buffer and written
 * with one writev() per loop turn. Large payloads are not copied: the bytes after the
 * 16-byte stamp are sent from a shared zero page (`filler`) as extra iovecs.
 */
#include "tools/midge_bench/bench.h"
#include "net/tls.h"
#include "net/ws.h"

#include "net/framer.h"
#include "net/transport.h"
#include "proto/proto.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define INLINE_MAX 8192          /* payloads up to this are copied into the output buffer */
#define FILLER_SIZE (64 * 1024)
static const uint8_t filler[FILLER_SIZE];

uint64_t mb_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

size_t mb_conn_pending(const mb_conn *c)
{
	return c->out_len - c->out_off + c->filler;
}

static void set_epollout(mb_conn *c, bool on)
{
	if (c->epollout == on || c->fd < 0)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
	epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->epollout = on;
}

/* Room for `need` more bytes at out + out_len. Exits on out of memory: a benchmark that
 * cannot hold its buffers has nothing meaningful to report. */
static uint8_t *out_room(mb_conn *c, size_t need)
{
	if (c->out_cap - c->out_len >= need)
		return c->out + c->out_len;
	if (c->out_off) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		if (c->filler)
			c->fill_pos -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_cap - c->out_len < need) {
		size_t cap = c->out_cap ? c->out_cap : 256;
		while (cap - c->out_len < need)
			cap *= 2;
		uint8_t *p = realloc(c->out, cap);
		if (!p) {
			fprintf(stderr, "midge_bench: out of memory\n");
			exit(2);
		}
		c->out = p;
		c->out_cap = cap;
	}
	return c->out + c->out_len;
}

static int level(void)
{
	return mb_g->o.protocol;
}

static void append(mb_conn *c, const mg_packet *pkt)
{
	size_t n = mg_encode(c->out + c->out_len, c->out_cap - c->out_len, (uint8_t)level(), pkt);
	if (n > c->out_cap - c->out_len) {
		out_room(c, n);
		n = mg_encode(c->out + c->out_len, c->out_cap - c->out_len, (uint8_t)level(), pkt);
	}
	if (n == 0) {
		fprintf(stderr, "midge_bench: cannot encode %s\n", mg_ptype_name(pkt->type));
		exit(2);
	}
	c->out_len += n;
}

static void append_ack(mb_conn *c, int type, uint16_t id)
{
	mg_packet p;
	memset(&p, 0, sizeof p);
	p.type = (uint8_t)type;
	p.packet_id = id;
	append(c, &p);
}

/* The bytes waiting, in order: out[out_off..fill_pos), `filler` bytes of the zero page,
 * out[fill_pos..out_len) (without a filler, simply out[out_off..out_len)). */
int mb_conn_flush(mb_conn *c)
{
	while (c->out_len > c->out_off || c->filler) {
		struct iovec iov[18];
		int n = 0;
		size_t head = c->filler ? c->fill_pos - c->out_off : c->out_len - c->out_off;
		if (head)
			iov[n++] = (struct iovec){c->out + c->out_off, head};
		for (uint64_t f = c->filler; f && n < 17; n++) {
			size_t k = f < FILLER_SIZE ? (size_t)f : FILLER_SIZE;
			iov[n] = (struct iovec){(void *)filler, k};
			f -= k;
		}
		if (c->filler && c->out_len > c->fill_pos)
			iov[n++] = (struct iovec){c->out + c->fill_pos, c->out_len - c->fill_pos};
		ssize_t w = mg_transport_writev(&c->tr, iov, n);
		if (w == -EAGAIN) {
			set_epollout(c, true);
			return 0;
		}
		if (w < 0)
			return (int)w;
		c->last_tx = mb_now();
		size_t left = (size_t)w;
		if (left <= head) {
			c->out_off += left;
			left = 0;
		} else {
			c->out_off += head;
			left -= head;
		}
		if (left && c->filler) {
			uint64_t f = left < c->filler ? left : c->filler;
			c->filler -= f;
			left -= (size_t)f;
		}
		c->out_off += left; /* the part after the filler */
		if (c->out_off == c->out_len && !c->filler)
			c->out_off = c->out_len = 0;
	}
	set_epollout(c, false);
	return 0;
}

void mb_conn_fail(mb_conn *c, const char *why)
{
	static _Atomic int reported;
	if (c->state == CS_CLOSED)
		return;
	bool in_setup = c->state != CS_READY;
	if (atomic_load(&mb_g->phase) != PH_STOP) {
		if (atomic_fetch_add(&reported, 1) < 5)
			fprintf(stderr, "midge_bench: connection %d: %s\n", c->idx, why);
		if (in_setup)
			c->w->st.connect_fail++;
		else
			c->w->st.closed++;
	}
	if (c->fd >= 0)
		mg_transport_close(&c->tr); /* closes the fd: it also leaves the epoll set */
	c->fd = -1;
	c->state = CS_CLOSED;
	if (in_setup) {
		c->w->pending--;
		atomic_fetch_add(&mb_g->failed, 1);
	}
}

int mb_conn_start(mb_conn *c)
{
	mb_run *g = mb_g;
	int fd = socket(g->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (g->o.src_ips > 0 && g->addr.ss_family == AF_INET) {
		/* many source addresses: the 4-tuple, not the local port alone, must be unique */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(c->idx % g->o.src_ips));
		if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
	}
	bool sub = c->role == ROLE_SUB;
	if (connect(fd, (struct sockaddr *)(sub ? &g->sub_addr : &g->addr), sub ? g->sub_addrlen : g->addrlen) < 0 &&
	    errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		return -e;
	}
	c->fd = fd;
	mg_tcp_init(&c->tr, fd);
	c->state = CS_CONNECTING;
	c->epollout = true;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
	if (epoll_ctl(c->w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		close(fd);
		c->fd = -1;
		return -e;
	}
	return 0;
}

static void send_connect(mb_conn *c)
{
	char id[64];
	int n = snprintf(id, sizeof id, "mb-%d-%d", (int)getpid(), c->idx);
	mg_packet p;
	memset(&p, 0, sizeof p);
	p.type = MG_CONNECT;
	p.u.connect.level = (uint8_t)level();
	p.u.connect.protocol_name = (mg_bytes){(const uint8_t *)"MQTT", 4};
	p.u.connect.clean = !mb_g->o.no_clean;
	if (mb_g->o.no_clean && level() == MG_V5) {
		p.props.present |= MG_PROP_BIT(MG_PROP_SESSION_EXPIRY);
		p.props.session_expiry = 3600;
	}
	p.u.connect.keepalive = (uint16_t)mb_g->o.keepalive;
	p.u.connect.client_id = (mg_bytes){(const uint8_t *)id, (uint32_t)n};
	append(c, &p);
}

static void send_subscribe(mb_conn *c)
{
	uint8_t raw[160];
	size_t fl = strlen(c->sub->filter);
	raw[0] = (uint8_t)(fl >> 8);
	raw[1] = (uint8_t)fl;
	memcpy(raw + 2, c->sub->filter, fl);
	raw[2 + fl] = mg_subopts_byte((mg_subopts){.qos = (uint8_t)mb_g->o.qos});
	mg_packet p;
	memset(&p, 0, sizeof p);
	p.type = MG_SUBSCRIBE;
	p.packet_id = 1;
	p.u.sub.raw = (mg_bytes){raw, (uint32_t)(fl + 3)};
	p.u.sub.count = 1;
	append(c, &p);
}

static void became_ready(mb_conn *c)
{
	c->state = CS_READY;
	c->w->pending--;
	atomic_fetch_add(&mb_g->ready, 1);
}

int mb_conn_publish(mb_conn *c, uint64_t stamp)
{
	mb_pub *p = c->pub;
	mb_run *g = mb_g;
	uint16_t id = 0;
	if (g->o.qos) {
		/* at most `inflight` (< 65535) ids are taken, so this finds one */
		while (p->next_id == 0 || p->idstate[p->next_id])
			p->next_id++;
		id = p->next_id++;
		p->idstate[id] = 1;
		atomic_fetch_add_explicit(&p->unacked, 1, memory_order_relaxed);
	}
	mg_publish pb = {.qos = (uint8_t)g->o.qos,
	                 .topic = {(const uint8_t *)p->topic, p->topic_len},
	                 .packet_id = id};
	mg_props props;
	memset(&props, 0, sizeof props);
	uint32_t size = g->o.size;
	uint32_t inl = size <= INLINE_MAX ? size : MB_STAMP;
	size_t room = c->out_cap - c->out_len;
	size_t h = mg_encode_publish_header(c->out + c->out_len, room, (uint8_t)level(), &pb, &props, size);
	if (h == 0)
		return -1;
	if (h + inl > room) {
		out_room(c, h + inl);
		mg_encode_publish_header(c->out + c->out_len, c->out_cap - c->out_len, (uint8_t)level(), &pb,
		                         &props, size);
	}
	uint8_t *o = c->out + c->out_len + h;
	put32(o, p->id);
	put32(o + 4, p->seq);
	put64(o + 8, stamp);
	if (inl > MB_STAMP)
		memset(o + MB_STAMP, 0, inl - MB_STAMP);
	c->out_len += h + inl;
	if (size > inl) { /* service_pubs never publishes while a filler is pending */
		c->filler = size - inl;
		c->fill_pos = c->out_len;
	}
	if (p->sring)
		mb_sring_clear(p->sring, p->seq);
	p->seq++;
	atomic_store_explicit(&p->sent, p->seq, memory_order_relaxed);
	return 0;
}

void mb_conn_ping(mb_conn *c)
{
	mg_packet p;
	memset(&p, 0, sizeof p);
	p.type = MG_PINGREQ;
	append(c, &p);
	if (mb_conn_flush(c) < 0)
		mb_conn_fail(c, "write failed");
}

void mb_conn_disconnect(mb_conn *c)
{
	if (c->state == CS_CLOSED)
		return;
	if (c->state == CS_READY) {
		mg_packet p;
		memset(&p, 0, sizeof p);
		p.type = MG_DISCONNECT;
		append(c, &p);
		mb_conn_flush(c); /* best effort: we close anyway */
	}
	mg_transport_close(&c->tr);
	c->fd = -1;
	c->state = CS_CLOSED;
}

/* A PUBLISH for a subscriber: acknowledge, then account for the message. */
static void on_message(mb_conn *c, const mg_packet *pk, uint64_t now)
{
	const mg_publish *m = &pk->u.publish;
	mb_stats *st = &c->w->st;
	mb_sub *s = c->sub;
	mb_run *g = mb_g;
	if (m->qos == 1) {
		append_ack(c, MG_PUBACK, m->packet_id);
	} else if (m->qos == 2) {
		uint64_t bit = 1ull << (m->packet_id & 63);
		uint64_t *word = &s->qos2[m->packet_id / 64];
		append_ack(c, MG_PUBREC, m->packet_id);
		if (*word & bit) { /* sent again before our PUBREC arrived: not a new message */
			st->redeliveries++;
			return;
		}
		*word |= bit;
	}
	if (m->payload.len < MB_STAMP) {
		st->foreign++;
		return;
	}
	uint32_t pid = get32(m->payload.p);
	uint32_t seq = get32(m->payload.p + 4);
	uint64_t ts = get64(m->payload.p + 8);
	int fresh;
	if (!s->tr) { /* shared: any publisher of the run, duplicates across the group */
		if (pid >= (uint32_t)g->npubs) {
			st->foreign++;
			return;
		}
		fresh = mb_sring_see(g->pubs[pid].sring, seq);
		if (!fresh)
			st->dup++;
		else if (seq < s->last[pid])
			st->ooo++;
		else
			s->last[pid] = seq + 1;
	} else {
		if (pid < s->first_pub || pid - s->first_pub >= s->npubs) {
			st->foreign++;
			return;
		}
		fresh = mb_track_see(&s->tr[pid - s->first_pub], seq);
	}
	if (!fresh)
		return;
	mb_pub *p = &g->pubs[pid];
	atomic_fetch_add(&p->delivered, 1);
	if (atomic_load(&p->waiting) && p->w != c->w)
		c->w->wake[p->w->id] = 1;
	st->recv++;
	if (now >= g->t_warm && now < g->t_end) {
		st->recv_win++;
		st->bytes_win += m->payload.len;
	}
	if (ts >= g->t_warm && ts < g->t_end)
		mb_hist_add(&st->lat, now > ts ? now - ts : 0);
}

/* An acknowledgement for one of our PUBLISHes. */
static void on_pub_ack(mb_conn *c, const mg_packet *pk)
{
	mb_pub *p = c->pub;
	mb_stats *st = &c->w->st;
	uint16_t id = pk->packet_id;
	bool v5 = level() == MG_V5;
	if (!p || !p->idstate || id == 0) {
		st->proto_err++;
		return;
	}
	uint8_t want = pk->type == MG_PUBCOMP ? 2 : 1;
	if (p->idstate[id] != want || (pk->type == MG_PUBACK) != (mb_g->o.qos == 1)) {
		st->proto_err++;
		return;
	}
	bool refused = v5 && pk->reason_code >= 0x80;
	if (refused)
		st->rejected++;
	if (pk->type == MG_PUBREC && !refused) {
		p->idstate[id] = 2;
		append_ack(c, MG_PUBREL, id);
		return;
	}
	p->idstate[id] = 0;
	atomic_fetch_sub_explicit(&p->unacked, 1, memory_order_relaxed);
	st->acks++;
}

static void on_packet(mb_conn *c, const mg_packet *pk, uint64_t now)
{
	switch (pk->type) {
	case MG_CONNACK:
		if (c->state != CS_WAIT_CONNACK)
			goto unexpected;
		if (pk->reason_code != 0) {
			char why[64];
			snprintf(why, sizeof why, "CONNACK refused: 0x%02x", pk->reason_code);
			mb_conn_fail(c, why);
			return;
		}
		c->recv_max = 65535;
		if (pk->props.present & MG_PROP_BIT(MG_PROP_RECEIVE_MAXIMUM))
			c->recv_max = pk->props.receive_maximum;
		if (c->role == ROLE_SUB) {
			send_subscribe(c);
			c->state = CS_WAIT_SUBACK;
		} else {
			became_ready(c);
		}
		return;
	case MG_SUBACK:
		if (c->state != CS_WAIT_SUBACK)
			goto unexpected;
		if (pk->u.codes.len < 1 || pk->u.codes.p[0] >= 0x80) {
			mb_conn_fail(c, "SUBSCRIBE refused");
			return;
		}
		became_ready(c);
		return;
	case MG_PUBLISH:
		if (c->role != ROLE_SUB || !c->sub)
			goto unexpected;
		on_message(c, pk, now);
		return;
	case MG_PUBACK:
	case MG_PUBREC:
	case MG_PUBCOMP:
		on_pub_ack(c, pk);
		return;
	case MG_PUBREL:
		if (!c->sub || !(c->sub->qos2[pk->packet_id / 64] & (1ull << (pk->packet_id & 63)))) {
			c->w->st.proto_err++;
		} else {
			c->sub->qos2[pk->packet_id / 64] &= ~(1ull << (pk->packet_id & 63));
		}
		append_ack(c, MG_PUBCOMP, pk->packet_id);
		return;
	case MG_PINGRESP:
		return;
	case MG_DISCONNECT: {
		char why[64];
		snprintf(why, sizeof why, "broker sent DISCONNECT 0x%02x", pk->reason_code);
		mb_conn_fail(c, why);
		return;
	}
	default:
		break;
	}
unexpected:
	c->w->st.proto_err++;
}

static void read_once(mb_conn *c)
{
	size_t room;
	uint8_t *at = mg_framer_room(&c->in, 1, c->in_chunk, &room);
	if (!at) {
		fprintf(stderr, "midge_bench: out of memory\n");
		exit(2);
	}
	ssize_t n = mg_transport_read(&c->tr, at, room);
	if (mg_transport_want_write(&c->tr))
		set_epollout(c, true); /* TLS: OpenSSL must write to go on reading */
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		mb_conn_fail(c, n == 0 ? "closed by the broker" : "read failed");
		return;
	}
	mg_framer_filled(&c->in, (size_t)n);
	uint64_t now = mb_now();
	int r = 0;
	mg_packet pk;
	while (c->state != CS_CLOSED && (r = mg_framer_next(&c->in, (uint8_t)level(), 0, &pk)) > 0) {
		on_packet(c, &pk, now);
		mg_framer_consume(&c->in, (size_t)r);
	}
	if (c->state == CS_CLOSED)
		return;
	if (r == MG_FRAMER_NOMEM) {
		fprintf(stderr, "midge_bench: out of memory\n");
		exit(2);
	}
	if (r < 0) {
		c->w->st.proto_err++;
		mb_conn_fail(c, mg_err_str(r));
		return;
	}
	mg_framer_settle(&c->in, MG_FRAMER_KEEP_ALL);
	if (mb_conn_flush(c) < 0)
		mb_conn_fail(c, "write failed");
}

/* TLS keeps decrypted bytes the socket's readiness cannot show once the buffer is full. */
static void read_input(mb_conn *c)
{
	int rounds = 0;
	do
		read_once(c);
	while (c->state != CS_CLOSED && mg_transport_pending(&c->tr) && ++rounds < 64);
}

static void start_mqtt(mb_conn *c)
{
	c->state = CS_WAIT_CONNACK;
	send_connect(c);
	if (mb_conn_flush(c) < 0)
		mb_conn_fail(c, "write failed");
}

static void tls_step(mb_conn *c)
{
	int r = mg_transport_handshake(&c->tr);
	if (r == -EAGAIN) {
		set_epollout(c, mg_transport_want_write(&c->tr));
		return;
	}
	if (r < 0) {
		char why[300] = "TLS handshake failed", line[256];
		if (mb_g->o.ws_path)
			snprintf(why, sizeof why, "WebSocket handshake failed: %s", mg_ws_error(&c->tr));
		else if (mg_tls_error(&c->tr, 0, line, sizeof line))
			snprintf(why, sizeof why, "TLS handshake failed: %s", line);
		mb_conn_fail(c, why);
		return;
	}
	set_epollout(c, false);
	start_mqtt(c);
}

void mb_conn_on_event(mb_conn *c, uint32_t ev)
{
	if (c->state == CS_CLOSED)
		return;
	if (c->state == CS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			mb_conn_fail(c, strerror(err));
			return;
		}
		if (mb_g->tls) {
			/* the handshake on this loop, then CONNECT; the transport owns the fd now */
			if (mg_tls_init(&c->tr, c->fd, mb_g->tls, MG_TLS_CLIENT, mb_tls_sni(&mb_g->o)) < 0) {
				c->fd = -1;
				mb_conn_fail(c, "out of memory for TLS");
				return;
			}
			c->state = CS_TLS;
			tls_step(c);
			return;
		}
		if (mb_g->o.ws_path) {
			/* the WebSocket upgrade on this loop (tls_step drives any handshake), then
			 * CONNECT; the transport owns the fd now */
			char host[300];
			snprintf(host, sizeof host, "%s:%d", mb_g->o.host, mb_g->o.port);
			mg_transport inner = c->tr;
			if (mg_ws_client_init(&c->tr, &inner, host, mb_g->o.ws_path, NULL) < 0) {
				c->fd = -1;
				mb_conn_fail(c, "out of memory for WebSocket");
				return;
			}
			c->state = CS_TLS;
			tls_step(c);
			return;
		}
		start_mqtt(c);
		return;
	}
	if (c->state == CS_TLS) {
		tls_step(c);
		return;
	}
	if ((ev & EPOLLOUT) && c->out_len == c->out_off && !c->filler && mg_transport_want_write(&c->tr))
		read_input(c); /* TLS: the read that wanted to write goes on */
	if (c->state == CS_CLOSED)
		return;
	if (ev & EPOLLOUT) {
		if (mb_conn_flush(c) < 0) {
			mb_conn_fail(c, "write failed");
			return;
		}
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
		read_input(c);
}
