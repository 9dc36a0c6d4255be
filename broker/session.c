/*
 * broker/session.c - a session's whole life (create, attach, detach, will, expire, destroy)
 * and its outbound side: the bounded queue, the inflight window, and writing PUBLISH
 * headers per recipient (the payload goes out as its own iovec).
 */
#include "broker/session.h"
#include "broker/alias_out.h"
#include "broker/bridge.h"
#include "broker/broker.h"
#include "broker/cluster.h"
#include "broker/conn.h"
#include "broker/log.h"
#include "broker/route.h"
#include "broker/store.h"
#include "broker/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void mg_session_clear_will(mg_session *s)
{
	if (s->will)
		mg_store_will_clear(s, s->will);
	mg_msg_unref(s->will);
	s->will = NULL;
	s->will_at = 0;
}

void mg_session_clear_msgs(mg_session *s)
{
	mg_qring_free(&s->queue);
	s->qbytes = 0;
	mg_qring_free(&s->retained);
	mg_fring_free(&s->flight);
	s->flight_bytes = 0;
	for (size_t i = 0; i < s->n_inq2; i++) {
		if (s->sid)
			mg_store_msg_unref(s->inq2[i].m);
		mg_msg_unref(s->inq2[i].m);
	}
	free(s->inq2);
	s->inq2 = NULL;
	s->n_inq2 = s->cap_inq2 = 0;
}

/* ---- life ---- */

mg_session *mg_session_find(mg_worker *w, const char *id, size_t len, int *owner)
{
	return mg_registry_find(w->b, id, len, w->idx, owner);
}

mg_session *mg_session_resolve(mg_worker *w, mg_sref ref)
{
	return mg_sref_resolve(w->b, ref, w->idx);
}

mg_session *mg_session_create(mg_worker *w, const char *id, size_t len, int *owner)
{
	/* The id lives in the same allocation as the session: one malloc instead of two saves a
	 * chunk header and rounding per session. */
	mg_session *s = calloc(1, sizeof *s + len + 1);
	if (s)
		s->lidx = 255;
	*owner = -1;
	if (!s)
		return NULL;
	char *cid = (char *)(s + 1);
	memcpy(cid, id, len);
	s->ref = mg_registry_add(w->b, id, len, w->idx, s, owner);
	if (!s->ref) {
		free(s);
		return NULL;
	}
	s->id = cid;
	s->id_len = (uint32_t)len;
	s->next_mid = 1;
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
	atomic_fetch_add(&w->b->n_sessions, 1);
	return s;
}

typedef struct unsub_ctx {
	mg_broker *b;
	mg_sref ref;
} unsub_ctx;

static void unsub_one(void *ud, const uint8_t *f, size_t len)
{
	unsub_ctx *u = ud;
	if (mg_subtree_remove(u->b->tree, f, len, u->ref) == 0)
		mg_cluster_interest(u->b, f, len, -1);
}

void mg_session_destroy(mg_worker *w, mg_session *s)
{
	mg_broker *b = w->b;
	mg_cluster_session(b, w, s, true);
	unsub_ctx u = { b, s->ref };
	mg_fset_clear(&s->subs, unsub_one, &u);
	mg_registry_remove(b, s->id, s->id_len, s->ref);
	mg_session_clear_msgs(s);  /* stored bodies lose their references first */
	mg_session_clear_will(s);
	mg_store_session_removed(s);
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	atomic_fetch_sub(&b->n_sessions, 1);
	free(s->username);
	free(s); /* s->id with it */
}

/* The rules s is under: the broker's acl_file, or with per_listener_settings its listener's
 * (NULL: that listener has none, everything allowed). One branch more than a plain load on
 * the delivery path. */
static const mg_acl *acl_of(const mg_worker *w, const mg_session *s)
{
	const mg_broker *b = w->b;
	if (!b->cfg->per_listener_settings)
		return b->acl;
	int l = s->conn ? s->conn->lidx : s->lidx;
	if (!b->lacl || l >= b->cfg->n_listeners)
		return mg_acl_deny_all();
	return b->lacl[l];
}

bool mg_session_may(mg_worker *w, const mg_session *s, const uint8_t *t, size_t len, int access)
{
	const mg_acl *a = acl_of(w, s);
	if (!a)
		return true;
	enum mg_acl_result r = mg_acl_check(a, s->id, s->username, t, len, access);
	/* mosquitto logs these on every check; a delivery would log one line per message, so
	 * only the client's own PUBLISH or will says it */
	if (r == MG_ACL_DENY_UNSAFE_USER && access == MG_ACL_WRITE)
		mg_log(MG_LOG_NOTICE, "ACL denying access to client with dangerous username \"%s\"", s->username);
	else if (r == MG_ACL_DENY_UNSAFE_ID && access == MG_ACL_WRITE)
		mg_log(MG_LOG_NOTICE, "ACL denying access to client with dangerous client id \"%s\"", s->id);
	return r == MG_ACL_ALLOW;
}

void mg_session_recheck_queue(mg_worker *w, mg_session *s)
{
	if (!acl_of(w, s))
		return;
	for (size_t n = s->queue.n; n > 0; n--) {
		mg_qitem it;
		mg_qring_pop(&s->queue, &it);
		if (mg_session_may(w, s, it.m->topic, it.m->topic_len, MG_ACL_READ) &&
		    mg_qring_push(&s->queue, &it) == 0)
			continue;
		s->qbytes -= it.m->payload_len;
		mg_qitem_clear(&it);
	}
}

void mg_will_publish(mg_worker *w, mg_session *s)
{
	mg_msg *m = s->will;
	s->will = NULL;
	s->will_at = 0;
	if (m && !mg_session_may(w, s, m->topic, m->topic_len, MG_ACL_WRITE)) {
		/* checked when it is published, with the rules of that moment, as mosquitto does */
		mg_log(MG_LOG_DEBUG, "Denied will of %s on '%.*s'.", s->id, (int)m->topic_len,
		       (const char *)m->topic);
		mg_msg_unref(m);
		m = NULL;
	}
	if (m) {
		if (m->has_expiry) /* only this session holds it: still safe to change */
			m->expire_at = mg_loop_now_ms(w->loop) + (int64_t)s->will_expiry * 1000;
		mg_publish_msg(w, m, NULL);
		mg_store_will_clear(s, m); /* after routing: its queue rows keep the body */
		mg_msg_unref(m);
	}
}

void mg_session_set_will(mg_session *s, mg_msg *m, uint8_t qos, bool retain, uint32_t delay,
                         uint32_t expiry)
{
	mg_session_clear_will(s);
	s->will = m;
	if (!m)
		return;
	s->will_qos = qos;
	s->will_retain = retain;
	s->will_delay = delay;
	/* the expiry clock of a will starts when it is published, not now */
	if (m->has_expiry)
		m->expire_at = INT64_MAX;
	s->will_expiry = expiry;
}

bool mg_session_expire_if_due(mg_worker *w, mg_session *s, int64_t now)
{
	if (!s->expire_at || now < s->expire_at || s->conn)
		return false;
	if (s->will)
		mg_will_publish(w, s);
	mg_session_destroy(w, s);
	return true;
}

void mg_session_end(mg_worker *w, mg_session *s)
{
	if (s->will)
		mg_will_publish(w, s); /* a delayed will: the session ends now */
	mg_session_destroy(w, s);
}

static void go_offline(mg_worker *w, mg_session *s)
{
	if (s->conn && s->conn->level < 6) /* the level counted at attach: the connection's own */
		MG_MET_ADD(w->met.clients[s->conn->level], -1);
	MG_MET_ADD(w->met.disconnects, 1);
	s->conn = NULL;
	mg_sref_set_online(w->b, s->ref, false);
	atomic_fetch_sub(&w->b->n_clients, 1);
}

mg_conn *mg_session_take_over(mg_worker *w, mg_session *s, bool resume)
{
	mg_conn *old = s->conn;
	mg_log(MG_LOG_INFO, "Client %s already connected, closing old connection.", s->id);
	if (s->will) {
		if (s->level == MG_V5 && s->will_delay > 0 && resume)
			mg_session_clear_will(s); /* reconnected within the delay [MQTT-3.1.3-9] */
		else
			mg_will_publish(w, s);
	}
	go_offline(w, s);
	return old;
}

void mg_session_attach(mg_worker *w, mg_session *s, mg_conn *c)
{
	mg_broker *b = w->b;
	s->conn = c;
	s->lidx = c->lidx < 255 ? (uint8_t)c->lidx : 255;
	if (c->level < 6)
		MG_MET_ADD(w->met.clients[c->level], 1);
	mg_sref_set_online(b, s->ref, true);
	MG_MET_ADD(w->st.connects, 1);
	int n = atomic_fetch_add(&b->n_clients, 1) + 1;
	int mx = atomic_load(&b->max_clients);
	while (n > mx && !atomic_compare_exchange_weak(&b->max_clients, &mx, n))
		;
}

void mg_session_detach(mg_worker *w, mg_session *s, bool send_will)
{
	int64_t now = mg_loop_now_ms(w->loop);
	go_offline(w, s);
	if (!send_will)
		mg_session_clear_will(s);
	else if (s->will) {
		if (s->will_delay == 0 || s->expiry == 0)
			mg_will_publish(w, s);
		else
			s->will_at = now + (int64_t)(s->will_delay < s->expiry ? s->will_delay : s->expiry) * 1000;
	}
	if (s->expiry == 0) {
		mg_session_destroy(w, s);
		return;
	}
	if (s->expiry != UINT32_MAX)
		s->expire_at = now + (int64_t)s->expiry * 1000;
	mg_store_will(s);
	mg_store_session_offline(s);
	if (w->b->cluster) {
		/* what it has in flight and queued waits for it here; another node recovers it from
		 * JetStream if this one dies (cluster.h), in the order it would have been sent */
		for (size_t i = 0; i < s->flight.n; i++) {
			const mg_flight *f = mg_fring_at(&s->flight, i);
			if (f->it.m && f->it.qos)
				mg_cluster_queued(w->b, w, s, &f->it);
		}
		for (uint32_t i = 0; i < s->queue.n; i++) {
			const mg_qitem *q = &s->queue.v[(s->queue.head + i) % s->queue.cap];
			if (q->qos)
				mg_cluster_queued(w->b, w, s, q);
		}
	}
}

void mg_session_tick(mg_worker *w, int64_t now)
{
	for (mg_session *s = w->sessions, *n; s; s = n) {
		n = s->next;
		if (s->conn)
			continue;
		if (s->will && s->will_at && now >= s->will_at)
			mg_will_publish(w, s);
		if (s->expire_at && now >= s->expire_at) {
			if (s->will)
				mg_will_publish(w, s);
			mg_log(MG_LOG_NOTICE, "Expiring client %s.", s->id);
			MG_MET_ADD(w->st.expired, 1);
			n = s->next; /* publishing the will never frees a session: n is still valid */
			mg_session_destroy(w, s);
		}
	}
}

/* ---- messages ---- */

static bool online(const mg_session *s)
{
	return s->conn && s->conn->state == MG_CS_ACTIVE;
}

static size_t window(const mg_worker *w, const mg_session *s)
{
	size_t win = w->b->cfg->max_inflight_messages ? w->b->cfg->max_inflight_messages : 65535;
	if (s->conn && s->conn->recv_max && s->conn->recv_max < win)
		win = s->conn->recv_max;
	return win;
}

static bool can_send(const mg_worker *w, const mg_session *s, const mg_qitem *q)
{
	if (!online(s) || mg_conn_out_full(s->conn))
		return false;
	if (q->qos == 0)
		return true;
	if (s->flight.n >= window(w, s))
		return false;
	uint64_t maxb = w->b->cfg->max_inflight_bytes;
	return !maxb || s->flight.n == 0 || s->flight_bytes + q->m->payload_len <= maxb;
}

void mg_log_publish(const char *dir, const char *who, const mg_publish *p, uint32_t plen)
{
	/* a 64 KiB topic would push the rest out of the 999-byte line: show its start, marked */
	mg_log(MG_LOG_DEBUG, "%s %s (d%d, q%d, r%d, m%u, '%.*s%s', ... (%u bytes))", dir, who, p->dup,
	       p->qos, p->retain, p->packet_id, MG_LOG_CLIPPED(p->topic), plen);
}

/* payloads up to this many bytes are copied into the output buffer (write_publish_as) */
#define INLINE_PAYLOAD 256

/* n <= INLINE_PAYLOAD bytes from s to d, with overlapping 16-, 8- and 4-byte moves. With
 * its bound known, gcc inlined memcpy here as `rep movsq`, whose start-up cost made it
 * 35% of write_publish_as's samples for a 16-byte payload (perf annotate, fanin100-q0). */
static inline void copy_small(uint8_t *d, const uint8_t *s, size_t n)
{
	if (n >= 16) {
		for (size_t i = 0; i + 16 < n; i += 16)
			memcpy(d + i, s + i, 16);
		memcpy(d + n - 16, s + n - 16, 16);
	} else if (n >= 8) {
		uint64_t a, b;
		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
		memcpy(d, &a, 8);
		memcpy(d + n - 8, &b, 8);
	} else if (n >= 4) {
		uint32_t a, b;
		memcpy(&a, s, 4);
		memcpy(&b, s + n - 4, 4);
		memcpy(d, &a, 4);
		memcpy(d + n - 4, &b, 4);
	} else if (n) {
		d[0] = s[0];
		d[n >> 1] = s[n >> 1];
		d[n - 1] = s[n - 1];
	}
}

/* Write one PUBLISH into c's output, on topic tp/tlen with retain flag `retain`. Returns 0, or
 * -E2BIG when the client's maximum packet size forbids it (nothing written), -ENOMEM.
 * Runs once per recipient: the topic comes as pointer and length (an mg_bytes the caller
 * had just built was read back with an 8-byte load over its 4-byte length store, which
 * does not forward: a quarter of the function's samples in fanin100-q0), the packet is
 * built field by field, because whole-struct copies of what was just written field by field stalled on
 * store forwarding (perf annotate: half of this function's samples in pairs10-q0 and
 * fanin100-q0), and the ~200-byte properties are cleared only for a 5.0 client (a `rep
 * stos` per recipient otherwise). */
static int write_publish_as(mg_worker *w, mg_conn *c, const mg_qitem *it, uint16_t mid, bool dup,
                            const uint8_t *tp, uint32_t tlen, bool retain)
{
	static const mg_props no_props;
	mg_msg *m = it->m;
	mg_bytes topic = { tp, tlen };
	if (it->qos == 2)
		mg_store_need_full(); /* exactly once: never ahead of the commit (store.h) */
	if (c->mp_len) { /* the client sees topics without its listener's mount point */
		if (m->topic_len <= c->mp_len || memcmp(m->topic, c->mp, c->mp_len) != 0)
			return -E2BIG;
		topic = (mg_bytes){ m->topic + c->mp_len, (uint32_t)(m->topic_len - c->mp_len) };
	}
	/* as sent: the topic may give way to an alias; logs show the topic */
	mg_publish wire = { .qos = it->qos, .dup = dup, .retain = retain, .topic = topic, .packet_id = mid };
	mg_props pr, *prp = NULL;
	int bound = -1;        /* mg_alias_out_get: 1 known alias, 0 new alias, -1 none */
	uint16_t alias = 0;
	if (c->level == MG_V5) {
		memcpy(&pr, &no_props, sizeof pr);
		prp = &pr;
		pr.raw = (mg_bytes){ m->props, m->props_len };
		if (c->aout && (bound = mg_alias_out_get(c->aout, topic, &alias)) >= 0) {
			pr.present |= MG_PROP_BIT(MG_PROP_TOPIC_ALIAS);
			pr.topic_alias = alias;
			if (bound == 1)
				wire.topic.len = 0; /* [MQTT-3.3.2-12]: the alias stands for the topic */
		}
		if (m->has_expiry) {
			pr.present |= MG_PROP_BIT(MG_PROP_MESSAGE_EXPIRY);
			pr.message_expiry = mg_msg_remaining(m, mg_loop_now_ms(w->loop));
		}
		if (it->n_ids) {
			pr.n_sub_id = it->n_ids;
			pr.sub_ids = mg_qitem_ids(it);
		}
	}
	/* A small payload of a message with one recipient is copied behind its header: the
	 * output buffer then holds whole packets, consecutive ones go out as one iovec, and the
	 * message needs no second reference (an atomic add and subtract) nor outlives the loop
	 * turn (freed while the allocator's per-thread cache has room). With many recipients the
	 * one payload is shared instead: 100 copies in 100 buffers cost a fan-out 1.6x the CPU
	 * per message (cache footprint, buffers outgrowing the worker's pool). Measured in
	 * bench/README.md (Profiles). */
	size_t guess = 16 + topic.len + m->props_len + 5u * it->n_ids + 8 + 3;
	size_t inl = it->copy && m->payload_len <= INLINE_PAYLOAD ? m->payload_len : 0;
	uint8_t *p = mg_conn_reserve(c, guess + inl);
	if (!p)
		return -ENOMEM;
	size_t n = mg_encode_publish_header(p, guess, c->level, &wire, prp, m->payload_len);
	if (n == 0)
		return -E2BIG;
	if (n > guess) {
		p = mg_conn_reserve(c, n + inl);
		if (!p)
			return -ENOMEM;
		mg_encode_publish_header(p, n, c->level, &wire, prp, m->payload_len);
	}
	if (c->max_out && n + m->payload_len > c->max_out)
		return -E2BIG; /* [MQTT-3.1.2-24]: never send it; it is discarded */
	if (mg_log_enabled(MG_LOG_DEBUG)) {
		mg_publish shown = wire;
		shown.topic = topic;
		mg_log_publish("Sending PUBLISH to", c->id, &shown, m->payload_len);
	}
	copy_small(p + n, m->payload, inl);
	mg_conn_commit(c, n + inl, m->payload_len > inl ? mg_msg_ref(m) : NULL);
	if (bound == 0) /* only now: a PUBLISH that was not sent must not bind the alias */
		mg_alias_out_bind(c->aout, topic, alias);
	MG_MET_ADD(w->st.pub_sent, 1);
	MG_MET_ADD(w->st.pub_bytes_sent, m->payload_len);
	MG_MET_ADD(w->met.pub_out[it->qos], 1);
	MG_MET_ADD(w->met.pub_out_bytes[it->qos], m->payload_len);
	MG_MET_ADD(w->st.msgs_sent, 1);
	return 0;
}

static int write_publish(mg_worker *w, mg_conn *c, const mg_qitem *it, uint16_t mid, bool dup)
{
	if (!c->outbound)
		return write_publish_as(w, c, it, mid, dup, it->m->topic, it->m->topic_len, it->retain);
	/* a bridge: the remote's name for the topic, and its retain rules (bridge.h) */
	uint8_t buf[256], *heap;
	bool retain = it->retain;
	mg_bytes t = { it->m->topic, it->m->topic_len };
	t = mg_bridge_out_topic(c, t, &retain, buf, sizeof buf, &heap);
	int r = t.p ? write_publish_as(w, c, it, mid, dup, t.p, t.len, retain) : -E2BIG;
	free(heap);
	return r;
}

static void count_drop(mg_worker *w, mg_session *s, int cause)
{
	MG_MET_ADD(w->st.pub_dropped, 1);
	MG_MET_ADD(w->met.dropped[cause], 1);
	if (!s->dropping) { /* once per episode; the episode ends when the queue has drained */
		s->dropping = true;
		mg_log(MG_LOG_NOTICE, "Outgoing messages are being dropped for client %s.", s->id);
	}
}

static uint16_t next_mid(mg_session *s)
{
	for (;;) {
		uint16_t mid = s->next_mid++;
		if (s->next_mid == 0)
			s->next_mid = 1;
		/* a scan of up to max_inflight_messages per PUBLISH sent was 12% of the broker's
		 * time in pairs10-q1-persist (1,000 in flight); mg_fring_has answers in O(1) */
		if (mid && !mg_fring_has(&s->flight, mid))
			return mid;
	}
}

/* Send q now (takes ownership). can_send() was true. */
static void send_item(mg_worker *w, mg_session *s, mg_qitem *q)
{
	mg_conn *c = s->conn;
	if (c->outbound && q->qos > c->remote_max_qos)
		q->qos = c->remote_max_qos; /* above it the remote disconnects (0x9B), as mosquitto's bridge caps */
	if (q->qos == 0) {
		int r = write_publish(w, c, q, 0, false);
		if (r < 0)
			count_drop(w, s, r == -E2BIG ? MG_DROP_TOO_LARGE : MG_DROP_NOMEM);
		mg_store_done(s, q); /* a stored QoS 0 (queue_qos0_messages): its row goes */
		mg_qitem_clear(q);
		return;
	}
	mg_flight f = { .it = *q, .mid = next_mid(s), .state = q->qos == 1 ? MG_FL_PUBACK : MG_FL_PUBREC };
	int r = write_publish(w, c, q, f.mid, false);
	if (r < 0) {
		count_drop(w, s, r == -E2BIG ? MG_DROP_TOO_LARGE : MG_DROP_NOMEM);
		mg_store_done(s, q);
		mg_qitem_clear(q);
		return;
	}
	if (mg_fring_push(&s->flight, &f) < 0) {
		mg_store_done(s, q);
		mg_qitem_clear(q);
		return;
	}
	mg_store_sent(s, &f.it, f.mid); /* committed before the PUBLISH leaves (store.h) */
	s->flight_bytes += f.it.m->payload_len;
}

void mg_session_deliver(mg_worker *w, mg_session *s, mg_qitem *q)
{
	const mg_config *cfg = w->b->cfg;
	if (acl_of(w, s) && !mg_session_may(w, s, q->m->topic, q->m->topic_len, MG_ACL_READ)) {
		MG_MET_ADD(w->met.dropped[MG_DROP_DENIED], 1);
		mg_qitem_clear(q);
		return;
	}
	if (mg_msg_expired(q->m, mg_loop_now_ms(w->loop))) {
		MG_MET_ADD(w->met.dropped[MG_DROP_EXPIRED], 1);
		mg_store_done(s, q);
		mg_qitem_clear(q);
		return;
	}
	if (!online(s) && q->qos == 0 && !cfg->queue_qos0_messages) {
		MG_MET_ADD(w->met.dropped[MG_DROP_OFFLINE_QOS0], 1);
		mg_qitem_clear(q);
		return;
	}
	if (!mg_session_pending(s) && can_send(w, s, q)) {
		send_item(w, s, q);
		return;
	}
	if ((cfg->max_queued_messages > 0 && s->queue.n >= (size_t)cfg->max_queued_messages) ||
	    (cfg->max_queued_bytes > 0 && s->qbytes >= cfg->max_queued_bytes)) { /* mosquitto: until exceeded */
		count_drop(w, s, MG_DROP_QUEUE_FULL);
		mg_store_done(s, q);
		mg_qitem_clear(q);
		return;
	}
	/* queue_qos0_messages with persistence: a QoS 0 message queued for an offline stored
	 * session is written too (in this worker's batch: no acknowledgement waits for it), so it
	 * survives a restart as mosquitto's saved queue does. QoS 1/2 rows were written when the
	 * message was routed. */
	if (q->qos == 0 && s->sid && !online(s))
		mg_store_queued(s->sid, q); /* the body may be shared with other workers' rows (store.c) */
	if (mg_qring_push(&s->queue, q) < 0) {
		count_drop(w, s, MG_DROP_NOMEM);
		mg_store_done(s, q);
		mg_qitem_clear(q);
		return;
	}
	s->qbytes += q->m->payload_len;
	if (q->qos && s->expiry > 0 && !online(s)) /* another node recovers it if this one dies */
		mg_cluster_queued(w->b, w, s, q);
}

void mg_session_owe_retained(mg_worker *w, mg_session *s, mg_qitem *q)
{
	/* One '#' needs a reference per retained message; a SUBSCRIBE repeating '#' 100,000 times
	 * (each repeat re-sends them, [MQTT-3.8.4-3]) must not need 100,000 of them. Allow the
	 * whole store plus max_queued_messages more, for overlapping filters. */
	int qmax = w->b->cfg->max_queued_messages;
	if (qmax > 0 && s->retained.n >= mg_retain_count(w->b->retain) + (size_t)qmax) {
		count_drop(w, s, MG_DROP_QUEUE_FULL);
		mg_qitem_clear(q);
		return;
	}
	if (mg_qring_push(&s->retained, q) < 0) {
		count_drop(w, s, MG_DROP_NOMEM);
		mg_qitem_clear(q);
	}
}

void mg_session_pump(mg_worker *w, mg_session *s)
{
	int64_t now = mg_loop_now_ms(w->loop);
	mg_qitem *q;
	/* Retained first: a live message on the same topic, queued after the SUBSCRIBE, is newer.
	 * Not before the SUBACK, while a long SUBSCRIBE is still being handled. */
	if (s->retained.n && s->conn && s->conn->sw)
		return;
	while ((q = mg_qring_peek(&s->retained))) {
		if (!mg_msg_expired(q->m, now) && !can_send(w, s, q))
			return;
		mg_qitem it;
		mg_qring_pop(&s->retained, &it);
		if (mg_msg_expired(it.m, now)) {
			MG_MET_ADD(w->met.dropped[MG_DROP_EXPIRED], 1);
			mg_qitem_clear(&it);
		}
		else
			send_item(w, s, &it);
	}
	while ((q = mg_qring_peek(&s->queue))) {
		if (!mg_msg_expired(q->m, now) && !can_send(w, s, q))
			break;
		mg_qitem it;
		mg_qring_pop(&s->queue, &it);
		s->qbytes -= it.m->payload_len;
		if (mg_msg_expired(it.m, now)) {
			MG_MET_ADD(w->met.dropped[MG_DROP_EXPIRED], 1);
			mg_store_done(s, &it);
			mg_qitem_clear(&it);
		}
		else
			send_item(w, s, &it);
	}
	if (s->queue.n == 0)
		s->dropping = false;
}

void mg_session_resend(mg_worker *w, mg_session *s)
{
	mg_conn *c = s->conn;
	for (size_t i = 0; i < s->flight.n; i++) {
		mg_flight *f = mg_fring_at(&s->flight, i);
		if (f->state == MG_FL_PUBCOMP) {
			mg_packet p = { .type = MG_PUBREL, .packet_id = f->mid };
			mg_log(MG_LOG_DEBUG, "Sending PUBREL to %s (m%u)", c->id, f->mid);
			mg_conn_send(c, &p);
		} else if (write_publish(w, c, &f->it, f->mid, true) == -E2BIG) {
			MG_MET_ADD(w->met.dropped[MG_DROP_TOO_LARGE], 1);
			s->flight_bytes -= f->it.m->payload_len;
			mg_store_done(s, &f->it);
			mg_fring_remove(&s->flight, i--);
		}
	}
}
