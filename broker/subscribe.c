/*
 * broker/subscribe.c - SUBSCRIBE and UNSUBSCRIBE: the tree, the session's own set of its
 * filters, retained messages after the SUBACK (retain handling 0/1/2), mount points.
 */
#include "broker/broker.h"
#include "broker/log.h"
#include "broker/store.h"

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
	mg_qitem q = { .m = mg_msg_ref(m), .qos = m->qos < r->qos ? m->qos : r->qos, .retain = true };
	if (r->sub_id)
		mg_qitem_set_ids(&q, &r->sub_id, 1);
	mg_session_owe_retained(r->w, r->s, &q);
	return 0;
}

/* The arrays below hold one entry per filter of a packet, and a packet may carry hundreds of
 * thousands of filters (an 800 KB SUBSCRIBE of 3-byte filters): they live on the heap, never on
 * the stack. Running out of memory closes this one connection. */
static int out_of_memory(mg_conn *c, const char *what)
{
	mg_log(MG_LOG_ERR, "Out of memory handling %s from %s: closing its connection.", what, c->id);
	mg_conn_disconnect(c, MG_RC_UNSPECIFIED, MG_CLOSE_SOCKET);
	return -1;
}

int mg_handle_subscribe(mg_conn *c, const mg_packet *p)
{
	mg_worker *w = c->w;
	mg_session *s = c->s;
	mg_broker *b = w->b;
	uint32_t sub_id = (c->level == MG_V5 && (p->props.present & MG_PROP_BIT(MG_PROP_SUBSCRIPTION_ID)))
	                  ? p->props.subscription_id : 0;
	size_t count = p->u.sub.count ? p->u.sub.count : 1;
	struct want { mg_bytes f; uint8_t qos; } *want = malloc(count * sizeof *want);
	uint8_t *codes = malloc(count);
	/* mounted filters must live until the retained messages are sent: one heap copy each */
	uint8_t **heaps = c->mp_len ? malloc(count * sizeof *heaps) : NULL;
	size_t n_want = 0, n = 0, n_heaps = 0;
	int ret = 0;
	if (!want || !codes || (c->mp_len && !heaps)) {
		ret = out_of_memory(c, "SUBSCRIBE");
		goto done;
	}
	mg_log(MG_LOG_DEBUG, "Received SUBSCRIBE from %s", c->id);
	uint32_t off = 0;
	mg_bytes f;
	mg_subopts o;
	while (n < count && mg_sub_next(p, &off, &f, &o)) {
		mg_log(MG_LOG_DEBUG, "\t%.*s (QoS %d)", (int)f.len, (const char *)f.p, o.qos);
		if (c->level != MG_V5)
			o = (mg_subopts){ .qos = o.qos };
		mg_bytes group, inner;
		int shared = mg_share_parse(f.p, f.len, &group, &inner);
		uint8_t *heap;
		f = mg_mount(c, f, true, NULL, 0, &heap);
		if (heap)
			heaps[n_heaps++] = heap;
		if (!f.p) {
			codes[n++] = 0x80;
			continue;
		}
		if (shared == 1 && o.no_local && c->level == MG_V5) {
			ret = mg_proto_err(c, MG_RC_PROTOCOL_ERROR, "no local on a shared subscription");
			goto done;
		}
		uint8_t rc = o.qos;
		int r = shared < 0 ? shared : mg_subtree_add(b->tree, f.p, f.len, s->handle, o, sub_id);
		if (r < 0) {
			rc = shared < 0 && c->level == MG_V5 ? MG_RC_TOPIC_FILTER_INVALID : 0x80;
		} else {
			if (r == 0 && mg_fset_add(&s->subs, f.p, f.len) < 0) {
				mg_subtree_remove(b->tree, f.p, f.len, s->handle);
				rc = 0x80;
			} else {
				mg_store_sub_added(s, f.p, f.len, o, sub_id);
				mg_log(MG_LOG_SUBSCRIBE, "%s %d %.*s", c->id, o.qos, (int)f.len, (const char *)f.p);
				if (shared != 1 && (o.retain_handling == 0 || (o.retain_handling == 1 && r == 0)))
					want[n_want++] = (struct want){ f, o.qos };
			}
		}
		codes[n++] = rc;
	}
	mg_packet ack = { .type = MG_SUBACK, .packet_id = p->packet_id, .u.codes = { codes, (uint32_t)n } };
	mg_log(MG_LOG_DEBUG, "Sending SUBACK to %s", c->id);
	mg_conn_send(c, &ack);
	for (size_t i = 0; i < n_want; i++) {
		retained_ctx r = { w, s, want[i].qos, sub_id };
		mg_retain_match(b->retain, want[i].f.p, want[i].f.len, send_retained, &r);
	}
	if (n_want)
		mg_session_pump(w, s);
done:
	while (n_heaps)
		free(heaps[--n_heaps]);
	free(heaps);
	free(codes);
	free(want);
	return ret;
}

int mg_handle_unsubscribe(mg_conn *c, const mg_packet *p)
{
	mg_session *s = c->s;
	size_t count = p->u.sub.count ? p->u.sub.count : 1;
	uint8_t *codes = malloc(count);
	size_t n = 0;
	if (!codes)
		return out_of_memory(c, "UNSUBSCRIBE");
	mg_log(MG_LOG_DEBUG, "Received UNSUBSCRIBE from %s", c->id);
	uint32_t off = 0;
	mg_bytes f;
	while (n < count && mg_sub_next(p, &off, &f, NULL)) {
		mg_log(MG_LOG_DEBUG, "\t%.*s", (int)f.len, (const char *)f.p);
		uint8_t mb[256], *heap;
		mg_bytes mf = mg_mount(c, f, true, mb, sizeof mb, &heap);
		int r = mf.p ? mg_subtree_remove(c->w->b->tree, mf.p, mf.len, s->handle) : -1;
		if (r == 0) {
			mg_fset_del(&s->subs, mf.p, mf.len);
			mg_store_sub_removed(s, mf.p, mf.len);
		}
		free(heap);
		mg_log(MG_LOG_UNSUBSCRIBE, "%s %.*s", c->id, (int)f.len, (const char *)f.p);
		codes[n++] = r == 0 ? 0 : MG_RC_NO_SUBSCRIPTION_EXISTED;
	}
	mg_packet ack = { .type = MG_UNSUBACK, .packet_id = p->packet_id, .u.codes = { codes, (uint32_t)n } };
	mg_log(MG_LOG_DEBUG, "Sending UNSUBACK to %s", c->id);
	mg_conn_send(c, &ack);
	free(codes);
	return 0;
}
