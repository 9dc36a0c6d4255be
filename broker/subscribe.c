/*
 * broker/subscribe.c - SUBSCRIBE and UNSUBSCRIBE: the tree, the session's own set of its
 * filters, retained messages after the SUBACK (retain handling 0/1/2), mount points.
 */
#include "broker/packet.h"
#include "broker/broker.h"
#include "broker/cluster.h"
#include "broker/log.h"
#include "broker/session.h"
#include "broker/store.h"
#include "broker/worker.h"

#include <stdlib.h>
#include <string.h>

typedef struct retained_ctx {
	mg_worker *w;
	mg_session *s;
	uint8_t qos;
	uint32_t sub_id;
} retained_ctx;

static int send_retained(void *ctx, const uint8_t *topic, size_t tlen, void *v)
{
	retained_ctx *r = ctx;
	mg_msg *m = v;
	(void)topic;
	(void)tlen;
	if (mg_msg_expired(m, mg_loop_now_ms(r->w->loop)))
		return 0;
	if (!mg_session_may(r->w, r->s, m->topic, m->topic_len, MG_ACL_READ))
		return 0;
	mg_qitem q = { .m = mg_msg_ref(m), .qos = m->qos < r->qos ? m->qos : r->qos, .retain = true };
	if (r->sub_id)
		mg_qitem_set_ids(&q, &r->sub_id, 1);
	mg_session_owe_retained(r->w, r->s, &q);
	return 0;
}

/* A SUBSCRIBE or UNSUBSCRIBE is handled MG_SUB_CHUNK filters per loop turn. A packet may
 * carry millions of filters (max_packet_size allows 256 MB); handled in one go it would hold
 * the worker, and every other client of it, for as long as it takes. When more remain, the
 * rest of the payload is copied into a mg_subwork, the connection stops reading (its later
 * packets must see the subscriptions), and a 1 ms timer handles the next chunk after the
 * worker's other events. The reply goes out when the last filter is done; owed retained
 * messages wait for it (mg_session_pump). Per-filter arrays live on the heap, never on the
 * stack. Running out of memory closes this one connection. */
#define MG_SUB_CHUNK 2048

struct mg_subwork {
	mg_packet p;     /* the packet, u.sub.raw pointing into raw once continued */
	uint8_t *raw;    /* owned copy of the filters not yet handled, or NULL */
	uint32_t off;    /* mg_sub_next's position */
	uint32_t n;      /* filters handled, codes[0..n) */
	uint32_t sub_id;
	uint8_t *codes;  /* one per filter */
};

static int out_of_memory(mg_conn *c, const char *what)
{
	mg_log(MG_LOG_ERR, "Out of memory handling %s from %s: closing its connection.", what, c->id);
	mg_conn_disconnect(c, MG_RC_UNSPECIFIED, MG_CLOSE_SOCKET);
	return -1;
}

static void work_free(mg_subwork *sw)
{
	if (sw) {
		free(sw->raw);
		free(sw->codes);
		free(sw);
	}
}

/* Up to MG_SUB_CHUNK filters of a SUBSCRIBE. 1: more remain, 0: done, -1: c was closed. */
static int subscribe_chunk(mg_conn *c, mg_subwork *sw)
{
	mg_worker *w = c->w;
	mg_session *s = c->s;
	mg_broker *b = w->b;
	const mg_packet *p = &sw->p;
	struct want { mg_bytes f; uint8_t qos; } want[MG_SUB_CHUNK];
	/* mounted filters must live until the retained messages are owed: one heap copy each */
	uint8_t *heaps[MG_SUB_CHUNK];
	size_t n_want = 0, n_heaps = 0, k = 0;
	int ret = 1;
	mg_bytes f;
	mg_subopts o;
	for (;; k++) {
		if (k == MG_SUB_CHUNK || sw->n == p->u.sub.count)
			break;
		if (!mg_sub_next(p, &sw->off, &f, &o)) {
			ret = 0;
			break;
		}
		mg_log(MG_LOG_DEBUG, "\t%.*s%s (QoS %d)", MG_LOG_CLIPPED(f), o.qos);
		/* A 3.x bridge must not get its own messages back (two brokers bridged both ways would
		 * echo each message forever), and sees the retain flag as published, as mosquitto does. */
		if (c->level != MG_V5)
			o = (mg_subopts){ .qos = o.qos, .no_local = c->bridge, .retain_as_published = c->bridge };
		mg_bytes group, inner;
		int shared = mg_share_parse(f.p, f.len, &group, &inner);
		uint8_t *heap;
		f = mg_mount(c, f, true, NULL, 0, &heap);
		if (heap)
			heaps[n_heaps++] = heap;
		if (!f.p) {
			sw->codes[sw->n++] = 0x80;
			continue;
		}
		if (shared == 1 && o.no_local && c->level == MG_V5) {
			ret = mg_proto_err(c, MG_RC_PROTOCOL_ERROR, "no local on a shared subscription");
			goto done;
		}
		uint8_t rc = o.qos;
		int r = shared < 0 ? shared : mg_subtree_add(b->tree, f.p, f.len, s->ref, o, sw->sub_id);
		if (r < 0) {
			rc = shared < 0 && c->level == MG_V5 ? MG_RC_TOPIC_FILTER_INVALID : 0x80;
		} else if (r == 0 && mg_fset_add(&s->subs, f.p, f.len) < 0) {
			mg_subtree_remove(b->tree, f.p, f.len, s->ref);
			rc = 0x80;
		} else {
			if (r == 0) /* a new filter of this session: the cluster may want to know */
				mg_cluster_interest(b, f.p, f.len, +1);
			mg_store_sub_added(s, f.p, f.len, o, sw->sub_id);
			mg_log(MG_LOG_SUBSCRIBE, "%s %d %.*s%s", c->id, o.qos, MG_LOG_CLIPPED(f));
			if (shared != 1 && (o.retain_handling == 0 || (o.retain_handling == 1 && r == 0)))
				want[n_want++] = (struct want){ f, o.qos };
		}
		sw->codes[sw->n++] = rc;
	}
	if (sw->n == p->u.sub.count)
		ret = 0;
	for (size_t i = 0; i < n_want; i++) {
		retained_ctx r = { w, s, want[i].qos, sw->sub_id };
		mg_retain_match(b->retain, want[i].f.p, want[i].f.len, send_retained, &r);
	}
done:
	while (n_heaps)
		free(heaps[--n_heaps]);
	return ret;
}

/* Up to MG_SUB_CHUNK filters of an UNSUBSCRIBE; returns as subscribe_chunk. */
static int unsubscribe_chunk(mg_conn *c, mg_subwork *sw)
{
	mg_session *s = c->s;
	const mg_packet *p = &sw->p;
	mg_bytes f;
	for (size_t k = 0; k < MG_SUB_CHUNK; k++) {
		if (sw->n == p->u.sub.count || !mg_sub_next(p, &sw->off, &f, NULL))
			return 0;
		mg_log(MG_LOG_DEBUG, "\t%.*s%s", MG_LOG_CLIPPED(f));
		uint8_t mb[256], *heap;
		mg_bytes mf = mg_mount(c, f, true, mb, sizeof mb, &heap);
		int r = mf.p ? mg_subtree_remove(c->w->b->tree, mf.p, mf.len, s->ref) : -1;
		if (r == 0) {
			mg_fset_del(&s->subs, mf.p, mf.len);
			mg_store_sub_removed(s, mf.p, mf.len);
			mg_cluster_interest(c->w->b, mf.p, mf.len, -1);
		}
		free(heap);
		mg_log(MG_LOG_UNSUBSCRIBE, "%s %.*s%s", c->id, MG_LOG_CLIPPED(f));
		sw->codes[sw->n++] = r == 0 ? 0 : MG_RC_NO_SUBSCRIPTION_EXISTED;
	}
	return sw->n == p->u.sub.count ? 0 : 1;
}

static void work_finish(mg_conn *c, mg_subwork *sw)
{
	bool sub = sw->p.type == MG_SUBSCRIBE;
	mg_packet ack = { .type = sub ? MG_SUBACK : MG_UNSUBACK, .packet_id = sw->p.packet_id,
	                  .u.codes = { sw->codes, sw->n } };
	mg_log(MG_LOG_DEBUG, "Sending %s to %s", sub ? "SUBACK" : "UNSUBACK", c->id);
	mg_conn_send(c, &ack);
	if (c->s->expiry > 0) /* its subscriptions as the cluster recovers them (cluster.h) */
		mg_cluster_session(c->w->b, c->w, c->s, false);
	if (sub && mg_session_pending(c->s))
		mg_session_pump(c->w, c->s); /* the retained messages owed, after the SUBACK */
}

static int work_step(mg_conn *c, mg_subwork *sw)
{
	return sw->p.type == MG_SUBSCRIBE ? subscribe_chunk(c, sw) : unsubscribe_chunk(c, sw);
}

static void busy_remove(mg_worker *w, mg_conn *c)
{
	for (int i = 0; i < w->n_busy; i++)
		if (w->busy[i] == c) {
			w->busy[i] = w->busy[--w->n_busy];
			return;
		}
}

static void resume_busy(mg_loop *l, void *ud);

static void arm(mg_worker *w)
{
	if (!w->busy_timer)
		w->busy_timer = mg_loop_timer(w->loop, 1, 0, resume_busy, w);
}

/* The next chunk of every connection with a packet in progress; from the end, so that one
 * that finishes (swapped out by busy_remove) is not visited twice. */
static void resume_busy(mg_loop *l, void *ud)
{
	mg_worker *w = ud;
	(void)l;
	w->busy_timer = 0;
	for (int i = w->n_busy - 1; i >= 0; i--) {
		if (i >= w->n_busy)
			continue;
		mg_conn *c = w->busy[i];
		mg_subwork *sw = c->sw;
		int r = work_step(c, sw);
		if (r == 1)
			continue;
		if (r < 0)
			continue; /* closed: mg_subwork_drop already freed it */
		c->sw = NULL;
		busy_remove(w, c);
		work_finish(c, sw);
		work_free(sw);
		mg_conn_set_watch(c);
		if (c->state != MG_CS_DEAD && mg_framer_pending(&c->in))
			mg_conn_process(c); /* what arrived behind the packet (it settles c->in) */
		else if (c->state != MG_CS_DEAD)
			mg_framer_settle(&c->in, 0); /* as do_read: no idle input buffer */
	}
	if (w->n_busy)
		arm(w);
}

void mg_subwork_drop(mg_conn *c)
{
	if (!c->sw)
		return;
	busy_remove(c->w, c);
	work_free(c->sw);
	c->sw = NULL;
}

/* Handle a SUBSCRIBE or UNSUBSCRIBE: the first chunk now, the rest on later loop turns. */
static int handle_filters(mg_conn *c, const mg_packet *p, uint32_t sub_id)
{
	const char *what = p->type == MG_SUBSCRIBE ? "SUBSCRIBE" : "UNSUBSCRIBE";
	mg_subwork one = { .p = *p, .sub_id = sub_id };
	one.codes = malloc(p->u.sub.count ? p->u.sub.count : 1);
	if (!one.codes)
		return out_of_memory(c, what);
	mg_log(MG_LOG_DEBUG, "Received %s from %s", what, c->id);
	int r = work_step(c, &one);
	if (r <= 0) {
		if (r == 0)
			work_finish(c, &one);
		free(one.codes);
		return r;
	}
	/* More to do: keep the filters not yet handled; the input buffer will move on. */
	mg_worker *w = c->w;
	mg_subwork *sw = malloc(sizeof *sw);
	uint32_t left = p->u.sub.raw.len - one.off;
	uint8_t *raw = malloc(left ? left : 1);
	mg_conn **nb = w->busy;
	if (w->n_busy == w->cap_busy) {
		int nc = w->cap_busy ? w->cap_busy * 2 : 4;
		if ((nb = realloc(w->busy, (size_t)nc * sizeof *nb))) {
			w->busy = nb;
			w->cap_busy = nc;
		}
	}
	if (!sw || !raw || !nb) {
		free(sw);
		free(raw);
		free(one.codes);
		return out_of_memory(c, what);
	}
	memcpy(raw, p->u.sub.raw.p + one.off, left);
	*sw = one;
	sw->raw = raw;
	sw->p.u.sub.raw = (mg_bytes){ raw, left };
	sw->off = 0;
	c->sw = sw;
	w->busy[w->n_busy++] = c;
	mg_conn_set_watch(c); /* no reading until it is done */
	arm(w);
	return 0;
}

int mg_handle_subscribe(mg_conn *c, const mg_packet *p)
{
	uint32_t sub_id = (c->level == MG_V5 && (p->props.present & MG_PROP_BIT(MG_PROP_SUBSCRIPTION_ID)))
	                  ? p->props.subscription_id : 0;
	return handle_filters(c, p, sub_id);
}

int mg_handle_unsubscribe(mg_conn *c, const mg_packet *p)
{
	return handle_filters(c, p, 0);
}
