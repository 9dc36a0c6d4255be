/*
 * broker/conn.c - one client socket: read in large chunks and handle every complete packet,
 * gather output (packet bytes + message payloads by reference) and flush it with writev
 * once per loop turn; EPOLLOUT only while output is pending.
 */
#include "broker/conn.h"
#include "broker/cluster_ack.h"
#include "broker/auth.h"
#include "broker/bridge.h"
#include "broker/alias_out.h"
#include "broker/broker.h"
#include "broker/log.h"
#include "broker/packet.h"
#include "broker/session.h"
#include "broker/tls.h"
#include "broker/store.h"
#include "broker/worker.h"
#include "net/tls.h"
#include "net/ws.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#define OUT_PAUSE_READ (4 * MG_OUT_LIMIT) /* stop reading a client that does not read its acks */

const char *mg_conn_name(const mg_conn *c)
{
	return c->id ? c->id : "<unknown>";
}

static void on_io(mg_loop *l, int fd, void *ud, int mask);
static void early_remove(mg_worker *w, int i);

mg_conn *mg_conn_new(mg_worker *w, int fd, const char *peer, uint16_t port)
{
	mg_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	mg_tcp_init(&c->tr, fd);
	c->w = w;
	snprintf(c->peer, sizeof c->peer, "%s", peer);
	char *colon = strrchr(c->peer, ':');
	c->host_len = (uint8_t)(colon ? colon - c->peer : (ptrdiff_t)strlen(c->peer));
	c->port = port;
	c->created = c->last_rx = mg_loop_now_ms(w->loop);
	c->recv_max = 65535;
	c->problem_info = true;
	return c;
}

/* Output that may be written now: all of it, or what is before a hold (store.h). */
static size_t out_allowed(const mg_conn *c)
{
	if (!c->hold)
		return c->out_bytes;
	uint64_t written = c->out_seq - c->out_bytes;
	return c->hold - 1 > written ? (size_t)(c->hold - 1 - written) : 0;
}

static void set_watch(mg_conn *c)
{
	bool tw = mg_transport_want_write(&c->tr);
	int mask = (c->read_paused || c->throttled || c->sw || c->auth == MG_AUTH_WAIT || c->cluster_wait ? 0 : MG_EV_READ) | (out_allowed(c) || tw ? MG_EV_WRITE : 0);
	if (c->handshaking) /* an answer going out is all it waits for; else the request */
		mask = tw ? MG_EV_WRITE : MG_EV_READ;
	/* Plain TCP is edge-triggered: level triggering has epoll poll every fd it returned
	 * once more in the next wait, to find it drained (about a quarter of epoll's polls at
	 * open10k, bench/README.md "wake-up costs at low rates"). do_read asks again when a read
	 * filled its buffer; a paused connection's mask has no MG_EV_READ, and putting it back
	 * re-checks the fd.
	 * TLS and WebSocket keep level triggering: they buffer inside, reading ahead. */
	if (mask && c->tr.ops == &mg_tcp_ops)
		mask |= MG_EV_EDGE;
	if (mask != c->watch_mask) {
		c->watch_mask = mask;
		mg_loop_watch(c->w->loop, c->tr.fd, mask, on_io, c, false);
	}
}

void mg_conn_set_watch(mg_conn *c)
{
	set_watch(c);
}

void mg_conn_attach(mg_worker *w, mg_conn *c)
{
	c->w = w;
	c->next = w->conns;
	c->prev = NULL;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->n_conns++;
	c->watch_mask = -1;
	set_watch(c);
	if (mg_framer_pending(&c->in))
		mg_conn_process(c); /* a handed-off connection brings its unread bytes */
}

static void unlink_conn(mg_conn *c)
{
	mg_worker *w = c->w;
	if (c->prev)
		c->prev->next = c->next;
	else if (w->conns == c)
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	w->n_conns--;
}

void mg_conn_handoff(mg_conn *c, int to)
{
	mg_worker *w = c->w;
	mg_loop_unwatch(w->loop, c->tr.fd);
	unlink_conn(c);
	/* Its unread bytes (the CONNECT first) into its own buffer: the worker's buffer they may
	 * sit in is not the next worker's. Out of memory: the CONNECT is lost and the new worker
	 * sees a connection that sends nothing until its connect timeout. */
	mg_framer_settle(&c->in, 0);
	mg_post p = { .kind = MG_POST_ADOPT, .conn = c };
	mg_worker_post(w, to, &p);
}

void mg_conn_uncount(mg_conn *c)
{
	if (c->outbound)
		return; /* a bridge's connection counts against no listener */
	mg_broker *b = c->w->b;
	atomic_fetch_sub(&b->n_conns, 1);
	atomic_fetch_sub(&b->lcount[c->lidx], 1);
}

void mg_conn_free(mg_conn *c)
{
	for (int i = 0; c->early && i < c->w->n_early; i++)
		if (c->w->early[i] == c)
			early_remove(c->w, i);
	if (c->hold)
		mg_store_conn_gone(c);
	mg_subwork_drop(c);
	for (size_t i = c->seg_head; i < c->nseg; i++)
		mg_msg_unref(c->seg[i].m);
	free(c->seg);
	free(c->ob);
	mg_framer_free(&c->in);
	if (c->alias) {
		for (unsigned i = 0; i <= c->alias_max; i++)
			free(c->alias[i]);
		free(c->alias);
		free(c->alias_len);
	}
	mg_alias_out_free(c->aout);
	if (c->ackq)
		mg_ack_conn_free(c);
	free(c->username);
	free(c);
}

static const char *close_text(enum mg_close why)
{
	switch (why) {
	case MG_CLOSE_EOF: return "closed its connection.";
	case MG_CLOSE_SOCKET: return NULL;
	case MG_CLOSE_TIMEOUT: return "has exceeded timeout, disconnecting.";
	case MG_CLOSE_PROTOCOL: return "disconnected due to protocol error.";
	case MG_CLOSE_MALFORMED: return "disconnected due to malformed packet.";
	case MG_CLOSE_TOO_LARGE: return "disconnected due to oversize packet.";
	case MG_CLOSE_NOT_AUTH: return "disconnected, not authorised.";
	case MG_CLOSE_NO_CONNECT: return "disconnected: no CONNECT received in time.";
	case MG_CLOSE_DISCONNECT: return "disconnected.";
	case MG_CLOSE_HTTP: return NULL;
	case MG_CLOSE_TLS: return "disconnected: Protocol error."; /* mosquitto's words */
	case MG_CLOSE_STORE: return "disconnected: what it sent could not be stored (persistence).";
	default: return NULL;
	}
}

void mg_conn_close(mg_conn *c, enum mg_close why)
{
	if (c->state == MG_CS_DEAD)
		return;
	mg_worker *w = c->w;
	if (!w->b->cfg->connection_messages)
		; /* connection_messages false: mosquitto says nothing either */
	else if (why == MG_CLOSE_SOCKET)
		mg_log(MG_LOG_NOTICE, "Socket error on client %s, disconnecting.", mg_conn_name(c));
	else if (why == MG_CLOSE_SHUTDOWN || why == MG_CLOSE_TAKEOVER || why == MG_CLOSE_REFUSED)
		; /* said elsewhere, or said nothing, like mosquitto */
	else if (close_text(why))
		mg_log(MG_LOG_NOTICE, "Client %s %s", mg_conn_name(c), close_text(why));
	bool was_active = c->state == MG_CS_ACTIVE;
	c->state = MG_CS_DEAD; /* first: a failing flush below must not close it again */
	mg_subwork_drop(c);
	if (c->out_bytes)
		mg_conn_flush(c); /* best effort: a CONNACK refusal or DISCONNECT reason */
	if (was_active && c->s) {
		mg_session *s = c->s;
		c->s = NULL;
		mg_session_detach(w, s, why != MG_CLOSE_DISCONNECT || c->will_on_close);
	}
	if (c->outbound)
		mg_bridge_closed(c); /* down: the bridge plans its restart */
	c->id = NULL;
	mg_loop_unwatch(w->loop, c->tr.fd);
	if (c->linger && !c->out_bytes && why != MG_CLOSE_SHUTDOWN)
		mg_linger_add(w->linger, &c->tr); /* the reason went out: let the client read it */
	else
		mg_transport_close(&c->tr);
	unlink_conn(c);
	mg_conn_uncount(c);
	if (c->auth == MG_AUTH_WAIT || c->cluster_wait)
		return; /* its password or registry job owns it now: freed when the verdict comes */
	c->next = w->dead;
	w->dead = c;
}

void mg_conn_disconnect(mg_conn *c, uint8_t reason, enum mg_close why)
{
	if (c->level == MG_V5 && c->state == MG_CS_ACTIVE) {
		mg_packet p = { .type = MG_DISCONNECT, .reason_code = reason };
		mg_log(MG_LOG_DEBUG, "Sending DISCONNECT to %s (%d)", mg_conn_name(c), reason);
		c->linger = mg_conn_send(c, &p) == 0;
	}
	mg_conn_close(c, why);
}

void mg_conn_drop_unstored(mg_conn *c)
{
	c->out_bytes = 0; /* nothing of it is written: its segments go with mg_conn_free */
	c->linger = false;
	if (c->state != MG_CS_DEAD)
		mg_conn_close(c, MG_CLOSE_STORE);
}

void mg_conn_mark_dirty(mg_conn *c)
{
	if (!c->dirty && c->state != MG_CS_DEAD) {
		c->dirty = true;
		c->dirty_next = c->w->dirty;
		c->w->dirty = c;
	}
}

bool mg_conn_out_full(const mg_conn *c)
{
	return c->out_bytes >= MG_OUT_LIMIT;
}

/*
 * Output buffers are held only while output is pending: when everything was written, the
 * pair (ob, seg) goes to the worker's pool, and the next connection of that worker with
 * something to send takes it from there. So 10,000s of idle connections hold no output
 * memory, while a busy one trades a malloc/free per loop turn for a pop/push. The pool is
 * bounded in entries and keeps only buffers of moderate size; larger ones (a burst) are
 * freed. Only the worker's own thread touches its pool.
 */
#define POOL_MAX_OCAP 8192
#define POOL_MAX_SEGCAP 256

static void out_release(mg_conn *c)
{
	mg_worker *w = c->w;
	if (c->ob && w->n_outpool < MG_OUTPOOL && c->ocap <= POOL_MAX_OCAP &&
	    c->segcap <= POOL_MAX_SEGCAP) {
		w->outpool[w->n_outpool++] = (mg_outbuf){ c->ob, c->seg, c->ocap, c->segcap };
	} else {
		free(c->ob);
		free(c->seg);
	}
	c->ob = NULL;
	c->seg = NULL;
	c->ocap = c->segcap = 0;
}

static void out_acquire(mg_conn *c)
{
	mg_worker *w = c->w;
	if (c->ob || c->seg || !w->n_outpool)
		return;
	mg_outbuf *o = &w->outpool[--w->n_outpool];
	c->ob = o->ob;
	c->ocap = o->ocap;
	c->seg = o->seg;
	c->segcap = o->segcap;
}

void mg_conn_pool_free(mg_worker *w)
{
	while (w->n_outpool) {
		mg_outbuf *o = &w->outpool[--w->n_outpool];
		free(o->ob);
		free(o->seg);
	}
}

#define SEG_MERGE_MAX 65536

/*
 * Early flush. Output is written at the end of a loop turn (before_sleep), once every
 * readable connection was read. With many publishers and one subscriber (fan-in) a turn's
 * reads made more output for it than MG_OUT_LIMIT, and the rest waited in its session queue
 * as messages, each an allocation freed turns later, past the allocator's per-thread cache,
 * then moved out by mg_session_pump in the same before_sleep: 43% of the messages of
 * fanin100-q0 (callgrind; bench/README.md). A connection whose output passes MG_OUT_EARLY is
 * written between two reads instead (on_io; with several workers also between two
 * deliveries from another worker's inbox, on_wake), so later reads find room in it. Not with
 * persistence or a cluster, whose commits at the end of the turn decide what may leave
 * (store.h holds, cluster_ack.h). A write that leaves it above MG_OUT_EARLY (the socket is
 * full) is not tried again before the turn ends.
 */
static void early_add(mg_conn *c)
{
	mg_worker *w = c->w;
	if (w->n_early == MG_EARLY_MAX || w->b->store || w->b->cluster)
		return;
	c->early = true;
	w->early_stuck[w->n_early] = false;
	w->early[w->n_early++] = c;
}

static void early_remove(mg_worker *w, int i)
{
	w->early[i]->early = false;
	w->n_early--;
	w->early[i] = w->early[w->n_early];
	w->early_stuck[i] = w->early_stuck[w->n_early];
}

void mg_conn_flush_early(mg_worker *w)
{
	/* a flush may add entries (its pump refills the output): they are looked at too */
	for (int i = 0; i < w->n_early; i++) {
		mg_conn *c = w->early[i];
		if (w->early_stuck[i])
			continue;
		if (c->state != MG_CS_DEAD) {
			mg_worker_flush_outboxes(w); /* deliveries to other workers first (before_sleep) */
			mg_conn_flush(c);
		}
		if (c->state != MG_CS_DEAD && c->out_bytes < MG_OUT_EARLY)
			early_remove(w, i--);
		else
			w->early_stuck[i] = true;
	}
}

void mg_conn_early_reset(mg_worker *w)
{
	for (int i = 0; i < w->n_early; i++)
		w->early[i]->early = false;
	w->n_early = 0;
}

uint8_t *mg_conn_reserve(mg_conn *c, size_t n)
{
	if (!c->ob)
		out_acquire(c);
	if (c->ocap - c->olen < n) {
		size_t nc = c->ocap ? c->ocap : 1024;
		while (nc - c->olen < n)
			nc *= 2;
		if (nc > UINT32_MAX)
			return NULL; /* offsets are 32-bit; output is bounded far below this */
		uint8_t *p = realloc(c->ob, nc);
		if (!p)
			return NULL;
		c->ob = p;
		c->ocap = (uint32_t)nc;
	}
	return c->ob + c->olen;
}

void mg_conn_commit(mg_conn *c, size_t n, mg_msg *payload)
{
	mg_seg *last = c->nseg > c->seg_head ? &c->seg[c->nseg - 1] : NULL;
	/* Whole packets merge into one segment (one iovec), up to SEG_MERGE_MAX: a segment
	 * leaves the buffer only once all of it is written, and compact() only moves whole ones,
	 * so a merged segment that kept growing under a subscriber that never quite catches up
	 * would keep its written bytes too. */
	if (last && !last->m && last->off + last->len == c->olen && last->len + n <= SEG_MERGE_MAX) {
		last->len += (uint32_t)n;
		last->m = payload;
	} else {
		if (c->nseg == c->segcap) {
			size_t nc = c->segcap ? c->segcap * 2 : 64;
			mg_seg *s = realloc(c->seg, nc * sizeof *s);
			if (!s) {
				mg_msg_unref(payload); /* out of memory: this packet is lost */
				return;
			}
			c->seg = s;
			c->segcap = (uint32_t)nc;
		}
		c->seg[c->nseg++] = (mg_seg){ .off = (uint32_t)c->olen, .len = (uint32_t)n, .m = payload };
	}
	c->olen += (uint32_t)n;
	c->out_bytes += n + (payload ? payload->payload_len : 0);
	c->out_seq += n + (payload ? payload->payload_len : 0);
	mg_conn_mark_dirty(c);
	if (c->out_bytes >= MG_OUT_EARLY && !c->early)
		early_add(c);
}

int mg_conn_send(mg_conn *c, const mg_packet *pkt)
{
	if (pkt->type != MG_PUBACK)
		mg_store_need_full(); /* only a PUBACK may go out before everything is committed */
	uint8_t *p = mg_conn_reserve(c, 256);
	if (!p)
		return -ENOMEM;
	size_t n = mg_encode(p, 256, c->level ? c->level : MG_V311, pkt);
	if (n == 0)
		return -EINVAL;
	if (n > 256) {
		p = mg_conn_reserve(c, n);
		if (!p)
			return -ENOMEM;
		mg_encode(p, n, c->level, pkt);
	}
	if (c->max_out && n > c->max_out)
		return -E2BIG;
	mg_conn_commit(c, n, NULL);
	MG_MET_ADD(c->w->st.msgs_sent, 1);
	return 0;
}

/* Drop the first `done` bytes of output after a write. */
static void advance(mg_conn *c, size_t done)
{
	c->out_bytes -= done;
	while (done && c->seg_head < c->nseg) {
		mg_seg *s = &c->seg[c->seg_head];
		size_t total = s->len + (s->m ? s->m->payload_len : 0);
		size_t left = total - c->seg_done;
		if (done < left) {
			c->seg_done += (uint32_t)done;
			return;
		}
		done -= left;
		mg_msg_unref(s->m);
		c->seg_head++;
		c->seg_done = 0;
	}
	if (c->seg_head == c->nseg) {
		c->seg_head = c->nseg = 0;
		c->olen = 0;
		out_release(c);
	}
}

static void compact(mg_conn *c)
{
	if (c->seg_head == 0)
		return;
	size_t base = c->seg[c->seg_head].off;
	if (base < 65536 && c->seg_head < 1024)
		return;
	memmove(c->ob, c->ob + base, c->olen - base);
	c->olen -= base;
	size_t n = c->nseg - c->seg_head;
	memmove(c->seg, c->seg + c->seg_head, n * sizeof *c->seg);
	c->seg_head = 0;
	c->nseg = n;
	for (size_t i = 0; i < n; i++)
		c->seg[i].off -= (uint32_t)base;
}

void mg_conn_flush(mg_conn *c)
{
	if (c->state == MG_CS_DEAD && c->tr.fd < 0)
		return;
	bool was_dead = c->state == MG_CS_DEAD; /* mg_conn_close's last flush */
	mg_store_before_write(); /* no acknowledgement leaves before what it promises is committed */
	if (!was_dead && c->state == MG_CS_DEAD)
		return; /* it was acknowledged against a batch that could not be stored */
	if (c->handshaking)
		return; /* the handshake writes its own answer */
	if (!c->out_bytes && (mg_transport_want_write(&c->tr) || mg_tls_held(&c->tr))) {
		/* bytes of the transport's own (a pong, a close frame, TLS session tickets) */
		ssize_t w = mg_transport_writev(&c->tr, NULL, 0);
		if (w < 0 && w != -EAGAIN && c->state != MG_CS_DEAD) {
			mg_conn_close(c, MG_CLOSE_SOCKET);
			return;
		}
	}
	bool full = false; /* a write said EAGAIN: the kernel signals write space later */
	for (int round = 0; round < 16 && out_allowed(c); round++) {
		struct iovec iov[128];
		int n = 0;
		size_t skip = c->seg_done;
		for (size_t i = c->seg_head; i < c->nseg && n < 126; i++) {
			mg_seg *s = &c->seg[i];
			if (skip < s->len) {
				iov[n++] = (struct iovec){ c->ob + s->off + skip, s->len - skip };
				skip = 0;
			} else {
				skip -= s->len;
			}
			if (s->m && s->m->payload_len) {
				if (skip < s->m->payload_len)
					iov[n++] = (struct iovec){ s->m->payload + skip, s->m->payload_len - skip };
				skip = 0;
			}
		}
		size_t allowed = out_allowed(c), sum = 0;
		for (int i = 0; i < n; i++) { /* a hold stops the write (store.h) */
			if (sum + iov[i].iov_len >= allowed) {
				iov[i].iov_len = allowed - sum;
				n = i + 1;
				break;
			}
			sum += iov[i].iov_len;
		}
		ssize_t w = mg_transport_writev(&c->tr, iov, n);
		if (w == -EAGAIN) {
			full = true;
			break;
		}
		if (w < 0) {
			if (c->state != MG_CS_DEAD) {
				c->out_bytes = 0; /* nothing more can be written */
				mg_conn_close(c, MG_CLOSE_SOCKET);
			}
			return;
		}
		MG_MET_ADD(c->w->st.bytes_sent, (uint64_t)w);
		advance(c, (size_t)w);
		if (!c->out_bytes && c->s && c->state == MG_CS_ACTIVE && mg_session_pending(c->s))
			mg_session_pump(c->w, c->s); /* room again: move queued messages out */
	}
	if (c->state == MG_CS_DEAD)
		return;
	compact(c);
	if (c->s && c->state == MG_CS_ACTIVE && mg_session_pending(c->s) && !mg_conn_out_full(c))
		mg_session_pump(c->w, c->s);
	c->read_paused = c->out_bytes > OUT_PAUSE_READ;
	int before = c->watch_mask;
	set_watch(c);
	/* Edge-triggered and stopped by the round limit with the socket still taking data: no
	 * EAGAIN, so no write-space edge will come; when set_watch left the mask (and so epoll)
	 * alone, have epoll look again, else the rest waits for the client's next packet. */
	if (!full && out_allowed(c) && (c->watch_mask & MG_EV_EDGE) && (c->watch_mask & MG_EV_WRITE) &&
	    c->watch_mask == before)
		mg_loop_rearm(c->w->loop, c->tr.fd);
}

static int protocol_error(mg_conn *c, int err)
{
	uint8_t rc = mg_err_reason(err);
	enum mg_close why = rc == MG_RC_MALFORMED ? MG_CLOSE_MALFORMED
	                  : rc == MG_RC_PACKET_TOO_LARGE ? MG_CLOSE_TOO_LARGE : MG_CLOSE_PROTOCOL;
	mg_log(MG_LOG_INFO, "Protocol error from %s: %s.", mg_conn_name(c), mg_err_str(err));
	mg_conn_disconnect(c, rc ? rc : MG_RC_PROTOCOL_ERROR, why);
	return -1;
}

/* A refusal before the session exists goes out as 3.1.1 CONNACK (a 3.x client reads it, and a
 * 5.0 client that sent a bad level is answered as mosquitto answers it). */
static void refuse_connect(mg_conn *c, uint8_t code)
{
	mg_packet p = { .type = MG_CONNACK, .reason_code = code };
	mg_log(MG_LOG_DEBUG, "Sending CONNACK to %.*s (0, %u)", c->host_len, c->peer, code);
	uint8_t lv = c->level;
	c->level = MG_V311;
	mg_conn_send(c, &p);
	c->level = lv;
}

/* p is what the decoder filled before it failed: on a bad protocol name or level that is the
 * name and the level (proto/decode_connect.c), so nothing here reads wire bytes itself. */
static int connect_error(mg_conn *c, int err, const mg_packet *p)
{
	if (err == MG_E_CLIENT_ID) /* empty id in 3.1, or in 3.1.1 without clean session */
		refuse_connect(c, MG_CONNACK_ID_REJECTED);
	if (err == MG_E_PROTOCOL_LEVEL) {
		mg_log(MG_LOG_INFO, "Invalid protocol version %u in CONNECT from %.*s.",
		       p->u.connect.level, c->host_len, c->peer);
		refuse_connect(c, MG_CONNACK_BAD_PROTOCOL);
	} else if (err == MG_E_PROTOCOL_NAME) {
		mg_log(MG_LOG_INFO, "Invalid protocol \"%s\" in CONNECT from %.*s.", "MQTT?", c->host_len, c->peer);
	}
	mg_conn_close(c, MG_CLOSE_PROTOCOL);
	return -1;
}

/* Handle every whole packet in c->in. Returns 1 when the connection went to another worker
 * (with its unread bytes): it is no longer ours to touch. */
int mg_conn_process(mg_conn *c)
{
	const mg_config *cfg = c->w->b->cfg;
	int n = 0;
	mg_packet p;
	while (c->state != MG_CS_DEAD) {
		n = mg_framer_next(&c->in, c->level, cfg->max_packet_size, &p);
		if (n <= 0)
			break;
		MG_MET_ADD(c->w->st.msgs_recv, 1);
		if (c->outbound) {
			if (mg_bridge_packet(c, &p) < 0)
				return 0;
		} else if (c->state == MG_CS_NEW) {
			if (p.type != MG_CONNECT) {
				mg_conn_close(c, MG_CLOSE_PROTOCOL);
				return 0;
			}
			/* The CONNECT stays in c->in until it is handled: a hand-off re-reads it. */
			int r = mg_handle_connect(c, &p);
			if (r == 2)
				break; /* parked: the CONNECT stays unread until its verdict (auth.h) */
			if (r > 0)
				return 1;
			if (r != 0)
				return 0; /* closed */
		} else if (mg_handle_packet(c, &p) < 0) {
			return 0;
		}
		mg_framer_consume(&c->in, (size_t)n);
		if (c->sw)
			break; /* the rest of it on later loop turns; later packets wait for it */
	}
	if (c->state == MG_CS_DEAD)
		return 0;
	if (n == MG_FRAMER_NOMEM) {
		mg_conn_close(c, MG_CLOSE_SOCKET);
	} else if (n < 0 && c->outbound) {
		mg_log(MG_LOG_INFO, "Protocol error from the remote of bridge %s: %s.", mg_conn_name(c), mg_err_str(n));
		mg_conn_close(c, MG_CLOSE_PROTOCOL);
	} else if (n < 0 && c->state == MG_CS_NEW) {
		if (n == MG_E_TOO_LARGE)
			mg_conn_close(c, MG_CLOSE_TOO_LARGE);
		else
			connect_error(c, n, &p);
	} else if (n < 0) {
		protocol_error(c, n);
	} else if (mg_framer_settle(&c->in, 0)) {
		mg_conn_close(c, MG_CLOSE_SOCKET);
	}
	return 0;
}

/* Reads land in the worker's 64 KiB buffer (lent to the framer) and are handled there; only
 * the tail of a packet that has not fully arrived is copied into the connection's own buffer.
 * So an idle connection holds no input buffer at all. false: the connection was handed off
 * to another worker and is not this thread's to touch any more. */
static bool do_read(mg_conn *c)
{
	mg_worker *w = c->w;
	size_t room;
	ssize_t n;
	int again = 0;
more:
	mg_framer_lend(&c->in, w->rbuf, MG_READ_CHUNK);
	uint8_t *at = mg_framer_room(&c->in, MG_READ_CHUNK / 4, MG_READ_CHUNK, &room);
	if (!at) {
		mg_conn_close(c, MG_CLOSE_SOCKET);
		return true;
	}
	n = mg_transport_read(&c->tr, at, room);
	if ((size_t)n == room && c->watch_mask > 0 && (c->watch_mask & MG_EV_EDGE))
		mg_loop_again(w->loop, c->tr.fd); /* more may wait: no new edge will say so */
	if (n > 0) {
		MG_MET_ADD(w->st.bytes_recv, (uint64_t)n);
		mg_framer_filled(&c->in, (size_t)n);
		c->last_rx = mg_loop_now_ms(w->loop);
		if (mg_conn_process(c))
			return false; /* handed off */
	}
	/* never leave the worker's buffer lent past this read (a no-op when process settled) */
	if (c->state != MG_CS_DEAD && mg_framer_settle(&c->in, 0)) {
		mg_conn_close(c, MG_CLOSE_SOCKET);
		return true;
	}
	if (c->state == MG_CS_DEAD)
		return true;
	if (mg_transport_want_write(&c->tr))
		mg_conn_mark_dirty(c); /* a pong or close frame the read queued */
	/* what the transport holds (data behind a handshake, a close behind data) comes without
	 * the socket becoming readable again; bounded, so one client cannot hold the worker */
	if ((n > 0 || n == -EAGAIN) && mg_transport_pending(&c->tr) && ++again < 16 && !c->read_paused &&
	    !c->throttled && !c->sw)
		goto more;
	if (n == -EAGAIN || n > 0)
		return true;
	if (n == MG_WS_EPROTO && c->tr.ops == &mg_tls_ops) {
		mg_tls_log_errors(&c->tr); /* a bad TLS record: OpenSSL's reason, as mosquitto logs it */
		mg_conn_close(c, MG_CLOSE_TLS);
		return true;
	}
	if (n == MG_WS_EPROTO) {
		mg_log(MG_LOG_INFO, "Client %s (%.*s): %s.", mg_conn_name(c), c->host_len, c->peer,
		       mg_ws_error(&c->tr) ? mg_ws_error(&c->tr) : "protocol error");
		c->linger = true; /* the close frame with the code went out: let the client read it */
		mg_conn_close(c, MG_CLOSE_PROTOCOL);
		return true;
	}
	mg_conn_close(c, n == 0 || n == -ECONNRESET ? MG_CLOSE_EOF : MG_CLOSE_SOCKET);
	return true;
}

/* On an identity listener (use_identity_as_username / use_subject_as_username, or PSK) the
 * user name comes from the TLS session tls, before CONNECT: the connection's own transport,
 * or the one under its WebSocket (wss). */
static void take_identity(mg_conn *c, const mg_transport *tls)
{
	const mg_listener_conf *lc = &c->w->b->cfg->listeners[c->lidx];
	if (lc->use_identity_as_username || lc->use_subject_as_username) {
		free(c->username);
		c->username = mg_tls_identity(tls, lc);
		c->user_from_cert = c->username != NULL;
		c->tls_no_identity = c->username == NULL;
	}
}

/* The end of a TLS handshake. A failure is logged in mosquitto's words and closes only this
 * socket. On an identity listener the user name comes from the certificate (or the PSK
 * identity) now, before CONNECT. */
static void tls_handshake_done(mg_conn *c, int r)
{
	if (r < 0) {
		mg_tls_log_errors(&c->tr); /* at MG_LOG_ERR, as mosquitto: a failed handshake is news */
		mg_conn_close(c, r == -EPROTO ? MG_CLOSE_TLS : MG_CLOSE_EOF);
		return;
	}
	c->handshaking = false;
	if (c->outbound) { /* a bridge: its CONNECT waits in the output */
		mg_conn_mark_dirty(c);
		set_watch(c);
		return;
	}
	take_identity(c, &c->tr);
	set_watch(c);
	/* the CONNECT may have come with the last handshake message. The session tickets the
	 * handshake held leave at the end of this turn, in one send with the CONNACK if the
	 * CONNECT came along; a connection handed to another worker takes them along, ahead of
	 * the CONNACK that worker sends. */
	if (do_read(c) && c->state != MG_CS_DEAD && mg_tls_held(&c->tr))
		mg_conn_mark_dirty(c);
}

/* The transport's handshake (TLS; a WebSocket upgrade, or a plain HTTP request answered).
 * The connect timeout (MG_CONNECT_TIMEOUT_MS, a NEW connection) is its deadline too: a
 * client that connects and sends nothing is closed by the worker's tick. */
static void do_handshake(mg_conn *c)
{
	int r = mg_transport_handshake(&c->tr);
	if (r == -EAGAIN) {
		set_watch(c);
		return;
	}
	if (c->tr.ops == &mg_tls_ops) {
		tls_handshake_done(c, r);
		return;
	}
	if (r == MG_WS_HTTP_DONE) {
		c->linger = true; /* the answer is out: a client still sending must not get a reset */
		mg_conn_close(c, MG_CLOSE_HTTP);
		return;
	}
	if (r < 0) {
		if (r != -ECONNRESET)
			mg_log(MG_LOG_WEBSOCKETS, "WebSocket handshake with %s failed: %s.", c->peer, strerror(-r));
		mg_conn_close(c, MG_CLOSE_HTTP);
		return;
	}
	c->handshaking = false;
	const mg_transport *in = mg_ws_inner(&c->tr);
	if (in && in->ops == &mg_tls_ops)
		take_identity(c, in); /* wss: the TLS session under the WebSocket */
	mg_log(MG_LOG_WEBSOCKETS, "WebSocket connection from %s upgraded.", c->peer);
	if (mg_transport_want_write(&c->tr))
		mg_conn_mark_dirty(c); /* the rest of the 101 */
	set_watch(c);
	if (mg_transport_pending(&c->tr))
		do_read(c); /* frames that came right behind the request */
}

void mg_conn_handshake(mg_conn *c)
{
	do_handshake(c);
}

static void on_io(mg_loop *l, int fd, void *ud, int mask)
{
	mg_conn *c = ud;
	mg_worker *w = c->w; /* c may go to another worker while it is read */
	(void)l;
	(void)fd;
	if (c->handshaking) {
		do_handshake(c);
		return;
	}
	if ((mask & MG_EV_WRITE) && c->state != MG_CS_DEAD && !c->out_bytes && c->tr.ops == &mg_tls_ops &&
	    mg_transport_want_write(&c->tr)) {
		do_read(c); /* OpenSSL had to write to go on reading: the read again does it */
		if (c->state != MG_CS_DEAD)
			set_watch(c);
		return;
	}
	if ((mask & MG_EV_WRITE) && c->state != MG_CS_DEAD)
		mg_conn_flush(c);
	if ((mask & MG_EV_READ) && c->state != MG_CS_DEAD && !c->read_paused && !c->throttled && !c->sw &&
	    c->auth != MG_AUTH_WAIT && !c->cluster_wait) {
		if (c->w->b->nworkers > 1 && mg_worker_backlogged(c->w))
			mg_worker_throttle(c->w, c);
		else
			do_read(c);
	}
	if (w->n_early)
		mg_conn_flush_early(w);
}
