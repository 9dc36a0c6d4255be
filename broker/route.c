/*
 * broker/route.c - a message to every matching subscriber: match in the shared tree, then
 * deliver to sessions of this worker directly and to other workers through their inboxes.
 * Retained messages are set here too (the retained store holds mg_msg references).
 */
#include "broker/route.h"
#include "broker/broker.h"
#include "broker/cluster.h"
#include "broker/session.h"
#include "broker/store.h"
#include "broker/worker.h"

#include <string.h>

/* Deliver m to w->ms.m[from..to) of the last match (n entries in all). take: the caller's
 * reference goes to the last recipient (or is dropped); m may be freed before this returns. */
static void deliver(mg_worker *w, mg_msg *m, size_t from, size_t to, size_t n, bool take)
{
	mg_broker *b = w->b;
	/* Persistence: the queue rows of stored sessions are written here, by the worker that
	 * acknowledges the message, whichever worker owns the session (store.h). A reference
	 * held while routing keeps a drop during the loop from deleting the body. */
	bool store = b->store && m->qos;
	if (store)
		mg_store_pin(m);
	for (size_t i = from; i < to; i++) {
		const mg_match *x = &w->ms.m[i];
		int owner = mg_sref_owner(b, x->subscriber);
		if (owner < 0)
			continue;
		/* the last one may get the caller's reference: after its delivery m may be gone */
		bool last = take && i == to - 1;
		if (last)
			take = false;
		mg_qitem q = { .m = last ? m : mg_msg_ref(m), .qos = m->qos < x->qos ? m->qos : x->qos,
		               .retain = x->retain_as_published ? m->retain : false, .copy = n == 1 };
		if (x->n_ids)
			mg_qitem_set_ids(&q, w->ms.ids + x->ids_off, x->n_ids);
		int64_t sid;
		if (store && q.qos && (sid = mg_sref_sid(b, x->subscriber)))
			mg_store_queued(sid, &q);
		if (owner == w->idx) {
			mg_session *s = mg_session_resolve(w, x->subscriber);
			if (s)
				mg_session_deliver(w, s, &q);
			else
				mg_qitem_clear(&q);
		} else {
			mg_post p = { .kind = MG_POST_DELIVER, .ref = x->subscriber, .it = q };
			mg_worker_post(w, owner, &p);
		}
	}
	if (store)
		mg_store_msg_unref(m);
	if (take)
		mg_msg_unref(m); /* not given: nobody matched, or the last match was skipped */
}

/* plain: deliver to the plain subscribers only, not to the shared groups' picks (the
 * m[n - n_shared .. n) tail, left in w->ms): a cluster serves shared groups through NATS. */
static int route(mg_worker *w, mg_msg *m, mg_sref publisher, bool take, bool plain)
{
	mg_broker *b = w->b;
	int n = mg_subtree_match(b->tree, m->topic, m->topic_len, publisher, mg_eligible, b, &w->ms);
	size_t k = n < 0 ? 0 : (size_t)n;
	deliver(w, m, 0, plain ? k - w->ms.n_shared : k, k, take);
	/* recipients, and matches that give none (No Local, ...): 0 means nobody subscribed */
	return n < 0 ? 0 : n + (int)w->ms.n_unsent;
}

int mg_route(mg_worker *w, mg_msg *m, mg_sref publisher)
{
	return route(w, m, publisher, false, false);
}

int mg_route_remote(mg_worker *w, mg_msg *m, bool plain)
{
	return route(w, m, NULL, false, plain);
}

bool mg_route_group(mg_worker *w, mg_msg *m, const uint8_t *share, size_t len)
{
	mg_bytes f;
	if (mg_share_parse(share, len, NULL, &f) != 1 || !mg_topic_match(f.p, f.len, m->topic, m->topic_len))
		return false;
	int n = mg_subtree_match_group(w->b->tree, share, len, mg_eligible, w->b, &w->ms);
	if (n <= 0)
		return false;
	deliver(w, m, 0, (size_t)n, (size_t)n, false);
	return true;
}

/* Mirrors mosquitto's check of '$' topics on write: $SYS is the broker's, except the state
 * topic that a bridge publishes about itself; "$share/..." is a subscription form, never a
 * topic name. */
bool mg_client_may_publish(const uint8_t *t, size_t len)
{
	if (len >= 7 && memcmp(t, "$share/", 7) == 0)
		return false;
	if (len < 4 || memcmp(t, "$SYS", 4) != 0 || (len > 4 && t[4] != '/'))
		return true;
	static const char bridge[] = "$SYS/broker/connection/+/state";
	return mg_topic_match((const uint8_t *)bridge, sizeof bridge - 1, t, len);
}

static void retain_ref(void *v) { mg_msg_ref(v); }
static void retain_unref(void *v) { mg_msg_unref(v); }

mg_retain *mg_broker_retain_new(void)
{
	return mg_retain_new(retain_ref, retain_unref);
}

static int publish(mg_worker *w, mg_msg *m, mg_sref publisher, bool take)
{
	mg_broker *b = w->b;
	if (m->retain && b->cfg->retain_available) {
		mg_retain_set(b->retain, m->topic, m->topic_len, m->payload_len ? m : NULL);
		mg_store_retained(m->topic, m->topic_len, m->payload_len ? m : NULL);
		if (b->cluster)
			b->cluster_ops->retain(b->cluster, w, m);
	}
	/* local subscribers first, from here; then the other nodes (cluster.h). With a cluster a
	 * message that went to NATS may have subscribers elsewhere: not "no matching
	 * subscribers". */
	/* Routing may free a taken m: with a cluster (m goes on to NATS below) or a stored QoS
	 * 1/2 message (route() uses it after the loop) the reference is dropped here instead. */
	bool late = take && (b->cluster || (b->store && m->qos));
	int n = route(w, m, publisher, take && !late, b->cluster != NULL);
	if (b->cluster) {
		/* Shared groups: served through NATS, this node's members too (one member per
		 * group in the cluster), unless m did not go there or went where no shared group
		 * reads: then here, with the picks the match made (w->ms, untouched by send). */
		size_t k = w->ms.n;
		w->cluster_seq = 0;
		w->cluster_shared = false;
		if (b->cluster_ops->send(b->cluster, w, m))
			n++;
		if (!w->cluster_shared && w->ms.n_shared)
			deliver(w, m, k - w->ms.n_shared, k, k, false);
	}
	if (late)
		mg_msg_unref(m);
	return n;
}

int mg_publish_msg(mg_worker *w, mg_msg *m, mg_sref publisher)
{
	return publish(w, m, publisher, false);
}

int mg_publish_msg_take(mg_worker *w, mg_msg *m, mg_sref publisher)
{
	return publish(w, m, publisher, true);
}

