/*
 * broker/handle.c - every packet after CONNECT: PUBLISH and its acks both ways, PINGREQ,
 * DISCONNECT (SUBSCRIBE and UNSUBSCRIBE are in subscribe.c, routing in route.c).
 */
#include "broker/packet.h"
#include "broker/broker.h"
#include "broker/cluster_ack.h"
#include "broker/log.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/store.h"
#include "broker/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

mg_bytes mg_mount(const mg_conn *c, mg_bytes t, bool filter, uint8_t *stack, size_t cap, uint8_t **heap)
{
	*heap = NULL;
	if (!c->mp_len)
		return t;
	mg_bytes group = { 0 }, inner = t;
	size_t pre = 0;
	if (filter && mg_share_parse(t.p, t.len, &group, &inner) == 1)
		pre = (size_t)(inner.p - t.p); /* "$share/group/" */
	size_t n = pre + c->mp_len + inner.len;
	uint8_t *p = n <= cap ? stack : (*heap = malloc(n));
	if (!p)
		return (mg_bytes){ 0 };
	memcpy(p, t.p, pre);
	memcpy(p + pre, c->mp, c->mp_len);
	memcpy(p + pre + c->mp_len, inner.p, inner.len);
	return (mg_bytes){ p, (uint32_t)n };
}

static void send_ack(mg_conn *c, int type, uint16_t mid, uint8_t rc)
{
	if (type != MG_PUBREL && mg_ack_queued(c, (uint8_t)type, mid, rc))
		return; /* behind acknowledgements that wait for JetStream (cluster_ack.h) */
	mg_packet p = { .type = (uint8_t)type, .packet_id = mid, .reason_code = rc };
	if (type == MG_PUBACK || type == MG_PUBREC)
		mg_log(MG_LOG_DEBUG, "Sending %s to %s (m%u, rc%d)", mg_ptype_name(type), c->id, mid, rc);
	else
		mg_log(MG_LOG_DEBUG, "Sending %s to %s (m%u)", mg_ptype_name(type), c->id, mid);
	mg_conn_send(c, &p);
}

int mg_proto_err(mg_conn *c, uint8_t rc, const char *why)
{
	mg_log(MG_LOG_INFO, "Protocol error from %s: %s.", c->id, why);
	mg_conn_disconnect(c, rc, rc == MG_RC_MALFORMED ? MG_CLOSE_MALFORMED : MG_CLOSE_PROTOCOL);
	return -1;
}

static mg_inq2 *inq2_find(mg_session *s, uint16_t mid, size_t *idx)
{
	for (size_t i = 0; i < s->n_inq2; i++)
		if (s->inq2[i].mid == mid) {
			*idx = i;
			return &s->inq2[i];
		}
	return NULL;
}

/* ---- PUBLISH from a client ---- */

/* The PUBLISH's topic after its 5.0 topic alias: a topic with an alias binds it, an empty one
 * uses it. Returns 0, or -1 when the alias or topic is invalid (c closed). */
static int apply_alias(mg_conn *c, const mg_packet *p, mg_publish *pub)
{
	if (c->level == MG_V5 && (p->props.present & MG_PROP_BIT(MG_PROP_TOPIC_ALIAS))) {
		uint16_t a = p->props.topic_alias;
		if (a == 0 || a > c->alias_max)
			return mg_proto_err(c, MG_RC_TOPIC_ALIAS_INVALID, "topic alias out of range");
		if (pub->topic.len) {
			char *t = malloc(pub->topic.len + 1);
			if (!t)
				return mg_proto_err(c, MG_RC_UNSPECIFIED, "out of memory");
			memcpy(t, pub->topic.p, pub->topic.len);
			t[pub->topic.len] = 0;
			free(c->alias[a]);
			c->alias[a] = t;
			c->alias_len[a] = (uint16_t)pub->topic.len;
		} else if (!c->alias[a]) {
			return mg_proto_err(c, MG_RC_PROTOCOL_ERROR, "unknown topic alias");
		} else {
			pub->topic = (mg_bytes){ (const uint8_t *)c->alias[a], c->alias_len[a] };
		}
	} else if (pub->topic.len == 0) {
		return mg_proto_err(c, MG_RC_PROTOCOL_ERROR, "empty topic");
	}
	return 0;
}

/* Keep an inbound QoS 2 message (takes m) until its PUBREL. 0 or -ENOMEM (m dropped). */
static int hold_qos2(mg_session *s, uint16_t mid, mg_msg *m)
{
	if (s->n_inq2 == s->cap_inq2) {
		uint32_t nc = s->cap_inq2 ? s->cap_inq2 * 2 : 8;
		mg_inq2 *v = realloc(s->inq2, nc * sizeof *v);
		if (!v) {
			mg_msg_unref(m);
			return -ENOMEM;
		}
		s->inq2 = v;
		s->cap_inq2 = nc;
	}
	s->inq2[s->n_inq2++] = (mg_inq2){ .mid = mid, .m = m };
	return 0;
}

static int handle_publish(mg_conn *c, const mg_packet *p)
{
	mg_worker *w = c->w;
	mg_session *s = c->s;
	const mg_config *cfg = w->b->cfg;
	/* Field by field, not `pub = p->u.publish`: the decoder has just stored them one by one,
	 * and the copy's 16-byte loads of those narrower stores stalled on store forwarding
	 * (perf annotate, pairs10-q0: a quarter of this function's samples). */
	const mg_publish *in = &p->u.publish;
	mg_publish pub;
	pub.qos = in->qos;
	pub.dup = in->dup;
	pub.retain = in->retain;
	pub.topic.p = in->topic.p;
	pub.topic.len = in->topic.len;
	pub.packet_id = in->packet_id;
	pub.payload.p = in->payload.p;
	pub.payload.len = in->payload.len;

	if (p->props.present & MG_PROP_BIT(MG_PROP_SUBSCRIPTION_ID))
		return mg_proto_err(c, MG_RC_PROTOCOL_ERROR, "subscription identifier in PUBLISH [MQTT-3.3.4-6]");
	if (apply_alias(c, p, &pub) < 0)
		return -1;
	MG_MET_ADD(w->st.pub_recv, 1);
	MG_MET_ADD(w->st.pub_bytes_recv, pub.payload.len);
	MG_MET_ADD(w->met.pub_in[pub.qos], 1);
	MG_MET_ADD(w->met.pub_in_bytes[pub.qos], pub.payload.len);
	if (mg_log_enabled(MG_LOG_DEBUG))
		mg_log_publish("Received PUBLISH from", c->id, &pub, pub.payload.len);

	size_t idx;
	mg_inq2 *held = pub.qos == 2 ? inq2_find(s, pub.packet_id, &idx) : NULL;
	if (held && !mg_store_inq2_lost(s, held->m)) {
		send_ack(c, MG_PUBREC, pub.packet_id, 0); /* a resend: exactly once */
		return 0;
	}
	if (pub.qos && mg_store_failing()) {
		/* the store cannot be written: an acknowledgement would promise what it cannot keep */
		mg_store_refused(c->id);
		if (c->level != MG_V5) {
			mg_conn_close(c, MG_CLOSE_STORE);
			return -1;
		}
		send_ack(c, pub.qos == 1 ? MG_PUBACK : MG_PUBREC, pub.packet_id, MG_RC_QUOTA_EXCEEDED);
		return 0;
	}
	if (held) { /* held, but its row was lost with a failed batch: stored again first */
		mg_store_inq2_put(s, pub.packet_id, held->m);
		mg_store_promise(c);
		send_ack(c, MG_PUBREC, pub.packet_id, 0);
		return 0;
	}
	if (pub.retain && !cfg->retain_available) {
		if (c->level == MG_V5)
			return mg_proto_err(c, MG_RC_RETAIN_NOT_SUPPORTED, "retain not available");
		pub.retain = false;
	}
	if (cfg->message_size_limit && pub.payload.len > cfg->message_size_limit) {
		mg_log_publish("Dropped too large PUBLISH from", c->id, &pub, pub.payload.len);
		uint8_t rc = c->level == MG_V5 ? MG_RC_PACKET_TOO_LARGE : 0;
		if (pub.qos == 1)
			send_ack(c, MG_PUBACK, pub.packet_id, rc);
		else if (pub.qos == 2)
			send_ack(c, MG_PUBREC, pub.packet_id, rc);
		return 0;
	}
	uint16_t recv_max = cfg->max_inflight_messages ? cfg->max_inflight_messages : 65535;
	if (pub.qos == 2 && s->n_inq2 >= recv_max && c->level == MG_V5)
		return mg_proto_err(c, MG_RC_RECEIVE_MAX_EXCEEDED, "receive maximum exceeded");
	/* 3.x has no Receive Maximum: a client that never sends PUBREL would make the broker keep
	 * a payload per packet id (65,535 of them), so max_incoming_qos2_messages bounds it. */
	if (pub.qos == 2 && c->level != MG_V5 && cfg->max_incoming_qos2 && s->n_inq2 >= cfg->max_incoming_qos2) {
		mg_log(MG_LOG_NOTICE, "Client %s has %u QoS 2 messages awaiting PUBREL "
		       "(max_incoming_qos2_messages %u): disconnecting.", c->id, s->n_inq2, cfg->max_incoming_qos2);
		mg_conn_disconnect(c, MG_RC_RECEIVE_MAX_EXCEEDED, MG_CLOSE_PROTOCOL);
		return -1;
	}

	uint8_t mbuf[256], *heap;
	mg_bytes topic = mg_mount(c, pub.topic, false, mbuf, sizeof mbuf, &heap);
	if (topic.p && (!mg_client_may_publish(topic.p, topic.len) ||
	                !mg_session_may(w, s, topic.p, topic.len, MG_ACL_WRITE))) {
		/* $SYS or $share/, or acl_file denies it: acknowledged and dropped, as mosquitto
		 * does, so nobody can spoof the broker's statistics; 5.0 says why (0x87) and ends a
		 * QoS 2 flow at PUBREC. */
		mg_publish shown = pub;
		shown.topic = topic;
		mg_log_publish("Denied PUBLISH from", c->id, &shown, pub.payload.len);
		MG_MET_ADD(w->met.pub_denied, 1);
		free(heap);
		uint8_t rc = c->level == MG_V5 ? MG_RC_NOT_AUTHORIZED : 0;
		if (pub.qos)
			send_ack(c, pub.qos == 1 ? MG_PUBACK : MG_PUBREC, pub.packet_id, rc);
		return 0;
	}
	mg_msg *m = topic.p ? mg_msg_new(topic.p, topic.len, pub.payload.p, pub.payload.len,
	                                 c->level == MG_V5 ? &p->props : NULL, pub.qos, pub.retain,
	                                 mg_loop_now_ms(w->loop))
	                    : NULL;
	free(heap);
	if (!m)
		return mg_proto_err(c, MG_RC_UNSPECIFIED, "out of memory");
	if (pub.qos == 2) {
		if (hold_qos2(s, pub.packet_id, m) < 0)
			return mg_proto_err(c, MG_RC_UNSPECIFIED, "out of memory");
		mg_store_inq2_put(s, pub.packet_id, m); /* committed before the PUBREC leaves */
		mg_store_promise(c);
		send_ack(c, MG_PUBREC, pub.packet_id, 0);
		return 0;
	}
	int n = mg_publish_msg_take(w, m, s->ref);
	if (pub.qos == 1) {
		mg_store_promise(c);
		uint8_t rc = c->level == MG_V5 && n == 0 ? MG_RC_NO_MATCHING_SUBSCRIBERS : 0;
		if (w->b->cluster && w->cluster_seq) /* once JetStream stored it (cluster_ack.h) */
			mg_ack_defer(c, w->cluster_seq, MG_PUBACK, pub.packet_id, rc);
		else
			send_ack(c, MG_PUBACK, pub.packet_id, rc);
	}
	return 0;
}

static int handle_pubrel(mg_conn *c, const mg_packet *p)
{
	mg_session *s = c->s;
	mg_log(MG_LOG_DEBUG, "Received PUBREL from %s (Mid: %u)", c->id, p->packet_id);
	size_t i;
	mg_inq2 *q = inq2_find(s, p->packet_id, &i);
	if (!q) {
		send_ack(c, MG_PUBCOMP, p->packet_id, c->level == MG_V5 ? MG_RC_PACKET_ID_NOT_FOUND : 0);
		return 0;
	}
	mg_msg *m = q->m;
	s->inq2[i] = s->inq2[--s->n_inq2];
	mg_worker *w = c->w;
	mg_publish_msg(w, m, s->ref);
	mg_store_inq2_del(s, p->packet_id, m); /* in the same commit as the queue rows it made */
	mg_msg_unref(m);
	mg_store_promise(c);
	if (w->b->cluster && w->cluster_seq) /* once JetStream stored it (cluster_ack.h) */
		mg_ack_defer(c, w->cluster_seq, MG_PUBCOMP, p->packet_id, 0);
	else
		send_ack(c, MG_PUBCOMP, p->packet_id, 0);
	return 0;
}

/* ---- acks for what we sent ---- */

/* What each state of a message in flight waits for, for the log and the errors. */
static const char *const flight_wants[] = {
	[MG_FL_PUBACK] = "PUBACK (QoS 1)", [MG_FL_PUBREC] = "PUBREC (QoS 2)",
	[MG_FL_PUBCOMP] = "PUBCOMP (QoS 2, PUBREL sent)",
};

/* An acknowledgement of the wrong type for the message in flight under that packet id is a
 * Protocol Error [MQTT-4.8.0-1]: ignoring it leaves the two sides disagreeing about the
 * message (a PUBREC for a QoS 1 message once even moved it into the QoS 2 exchange), so
 * the connection ends, as mosquitto ends it. An id with nothing in flight is not checked:
 * a late ack for a message already completed is harmless (mosquitto ignores it too). */
static int wrong_ack(mg_conn *c, const mg_packet *p, const mg_flight *f)
{
	char why[96];
	snprintf(why, sizeof why, "%s for message %u, which waits for %s", mg_ptype_name(p->type),
	         p->packet_id, flight_wants[f->state]);
	return mg_proto_err(c, MG_RC_PROTOCOL_ERROR, why);
}

static int handle_ack(mg_conn *c, const mg_packet *p)
{
	mg_session *s = c->s;
	size_t i;
	mg_flight *f = mg_fring_find(&s->flight, p->packet_id, &i);
	switch (p->type) {
	case MG_PUBACK:
	case MG_PUBCOMP:
		mg_log(MG_LOG_DEBUG, "Received %s from %s (Mid: %u, RC:%d)", mg_ptype_name(p->type), c->id,
		       p->packet_id, p->reason_code);
		if (!f)
			break;
		if (f->state != (p->type == MG_PUBACK ? MG_FL_PUBACK : MG_FL_PUBCOMP))
			return wrong_ack(c, p, f);
		if (f->it.m && f->state != MG_FL_PUBCOMP)
			s->flight_bytes -= f->it.m->payload_len;
		mg_store_done(s, &f->it);
		mg_fring_remove(&s->flight, i);
		break;
	case MG_PUBREC:
		mg_log(MG_LOG_DEBUG, "Received PUBREC from %s (Mid: %u)", c->id, p->packet_id);
		if (!f) {
			send_ack(c, MG_PUBREL, p->packet_id, c->level == MG_V5 ? MG_RC_PACKET_ID_NOT_FOUND : 0);
			break;
		}
		if (f->state == MG_FL_PUBACK)
			return wrong_ack(c, p, f);
		if (f->state == MG_FL_PUBCOMP) { /* a duplicate: the PUBREL again, as mosquitto */
			send_ack(c, MG_PUBREL, p->packet_id, 0);
			break;
		}
		if (f->it.m)
			s->flight_bytes -= f->it.m->payload_len;
		if (p->reason_code >= 0x80) { /* 5.0: refused: the flow ends here */
			mg_store_done(s, &f->it);
			mg_fring_remove(&s->flight, i);
			break;
		}
		if (f->it.stored) { /* its row names the body until PUBCOMP: kept, not counted */
			mg_store_pubrec(s, &f->it, f->mid);
		} else {
			mg_msg_unref(f->it.m);
			f->it.m = NULL;
		}
		f->state = MG_FL_PUBCOMP;
		send_ack(c, MG_PUBREL, p->packet_id, 0);
		break;
	}
	mg_session_pump(c->w, s);
	return 0;
}

static int handle_disconnect(mg_conn *c, const mg_packet *p)
{
	mg_log(MG_LOG_DEBUG, "Received DISCONNECT from %s", c->id);
	if (c->level == MG_V5) {
		if (p->props.present & MG_PROP_BIT(MG_PROP_SESSION_EXPIRY)) {
			if (c->s->expiry == 0 && p->props.session_expiry != 0)
				return mg_proto_err(c, MG_RC_PROTOCOL_ERROR, "session expiry set on DISCONNECT after 0");
			c->s->expiry = p->props.session_expiry;
		}
		c->will_on_close = p->reason_code == MG_RC_DISCONNECT_WITH_WILL;
	}
	mg_conn_close(c, MG_CLOSE_DISCONNECT);
	return -1;
}

int mg_handle_packet(mg_conn *c, const mg_packet *p)
{
	switch (p->type) {
	case MG_PUBLISH:
		return handle_publish(c, p);
	case MG_PUBACK:
	case MG_PUBREC:
	case MG_PUBCOMP:
		return handle_ack(c, p);
	case MG_PUBREL:
		return handle_pubrel(c, p);
	case MG_SUBSCRIBE:
		return mg_handle_subscribe(c, p);
	case MG_UNSUBSCRIBE:
		return mg_handle_unsubscribe(c, p);
	case MG_PINGREQ: {
		mg_log(MG_LOG_DEBUG, "Received PINGREQ from %s", c->id);
		mg_packet r = { .type = MG_PINGRESP };
		mg_log(MG_LOG_DEBUG, "Sending PINGRESP to %s", c->id);
		mg_conn_send(c, &r);
		return 0;
	}
	case MG_DISCONNECT:
		return handle_disconnect(c, p);
	case MG_CONNECT:
		mg_log(MG_LOG_INFO, "Bad client %s sending multiple CONNECT messages.", c->id);
		mg_conn_disconnect(c, MG_RC_PROTOCOL_ERROR, MG_CLOSE_PROTOCOL);
		return -1;
	default:
		return mg_proto_err(c, MG_RC_PROTOCOL_ERROR, "unexpected packet");
	}
}
