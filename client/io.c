/* client/io.c - bytes in and out of the socket, and what each incoming packet does.
 * Only the loop owner runs these. Reading happens without mu (c->in is the loop's); each packet
 * takes mu for the state it changes, and on_message gets views into c->in after mu is released. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "net/ws.h"

#define READ_CHUNK 65536

/* 5.0: tell the broker why we hang up, then close [MQTT-4.13.1-1]. err: an enum mg_err from
 * the decoder (< 0), a reason code to send (> 0), or 0 for "Protocol error". Under mu. */
static int protocol_error(midge_client *c, int err, const char *what)
{
	mgc_log(c, MIDGE_LOG_ERR, "Client %s protocol error: %s", mgc_cid(c), what);
	if (c->level == MIDGE_PROTOCOL_V5 && c->state != MG_S_TCP) {
		uint8_t rc = err < 0 && err >= MG_E_MIN ? mg_err_reason(err) :
		             err > 0 && err <= 255 ? (uint8_t)err : MG_RC_PROTOCOL_ERROR;
		if (mgc_send_simple(c, MG_DISCONNECT, 0, rc) == MIDGE_OK) {
			mgc_log(c, MIDGE_LOG_DEBUG, "Client %s sending DISCONNECT", mgc_cid(c));
			mgc_do_write(c); /* best effort: the socket is about to close */
		}
	}
	mgc_conn_close(c, 0, MIDGE_ERR_PROTOCOL, NULL);
	return MIDGE_ERR_PROTOCOL;
}

static midge_properties *props_of(midge_client *c, const mg_packet *p)
{
	return c->level == MIDGE_PROTOCOL_V5 ? mgc_props_from_wire(&p->props) : NULL;
}

static char *dup_bytes(mg_bytes b)
{
	char *s = malloc(b.len + 1u);
	if (s) {
		memcpy(s, b.p, b.len);
		s[b.len] = '\0';
	}
	return s;
}

static int on_connack(midge_client *c, const mg_packet *p)
{
	if (c->state != MG_S_CONNACK)
		return protocol_error(c, 0, "CONNACK out of order");
	const mg_props *pp = &p->props;
	if (c->level == MIDGE_PROTOCOL_V5) {
		if (pp->present & MG_PROP_BIT(MG_PROP_ASSIGNED_CLIENT_ID)) {
			char *id = dup_bytes(pp->assigned_client_id);
			if (id) {
				free(c->id);
				c->id = id;
			}
		}
		c->srv_receive_max = pp->receive_maximum ? pp->receive_maximum : 65535;
		c->srv_max_packet = pp->maximum_packet_size;
		c->srv_alias_max = pp->topic_alias_maximum;
		c->srv_max_qos = (pp->present & MG_PROP_BIT(MG_PROP_MAXIMUM_QOS)) ? pp->maximum_qos : 2;
		c->srv_retain = !(pp->present & MG_PROP_BIT(MG_PROP_RETAIN_AVAILABLE)) || pp->retain_available;
		if (pp->present & MG_PROP_BIT(MG_PROP_SERVER_KEEP_ALIVE))
			c->ka = pp->server_keep_alive;
	}
	int rc = p->reason_code;
	int flags = p->session_present ? MIDGE_CONNECT_FLAG_SESSION_PRESENT : 0;
	mgc_log(c, MIDGE_LOG_DEBUG, "Client %s received CONNACK (%d)", mgc_cid(c), rc);
	c->connect_done = true;
	c->connack_rc = rc;
	c->notify = true;
	mgc_event_push(c, MG_EV_CONNECT, flags, rc, NULL, 0, props_of(c, p));
	if (rc != 0) {
		c->auto_reconnect = false; /* refused: trying again will not help */
		c->state = MG_S_IDLE;      /* so close makes no on_disconnect */
		mgc_conn_close(c, 0, rc, NULL);
		return MIDGE_ERR_CONN_REFUSED;
	}
	c->state = MG_S_UP;
	c->auto_reconnect = true;
	c->connected_once = true;
	/* The session the broker kept: 5.0 says so in session present; 3.1.1 [MQTT-4.4.0-1] resends
	 * whenever clean session is 0. Without one, inbound QoS 2 state is stale. */
	bool kept = p->session_present || (c->level != MIDGE_PROTOCOL_V5 && !c->clean_session);
	if (!p->session_present)
		mgc_qin_clear(c);
	mgc_resend_inflight(c, kept);
	mgc_pump(c);
	return MIDGE_OK;
}

static void complete(midge_client *c, mgc_cmsg *m, int reason, const mg_packet *p)
{
	int mid = m->mid;
	mgc_msg_remove(c, m);
	mgc_msg_free(m);
	c->notify = true;
	mgc_event_push(c, MG_EV_PUBLISH, mid, reason, NULL, 0, props_of(c, p));
	mgc_pump(c);
}

/* on_message for a QoS 2 message whose PUBREL has come (takes ownership of q, may be NULL).
 * Under mu; released around the callback. */
static void deliver_held(midge_client *c, mgc_qin *q)
{
	if (!q)
		return;
	mgc_dispatch d;
	mgc_dispatch_take(c, q->topic, &d);
	mgc_unlock(c);
	{
		midge_message msg = {
			.mid = q->mid,
			.topic = q->topic,
			.payload = q->payload,
			.payloadlen = q->len,
			.qos = 2,
			.retain = q->retain,
			.dup = q->dup,
			.properties = q->props,
		};
		mgc_dispatch_run(c, &d, &msg);
	}
	mgc_qin_free(q);
	mgc_lock(c);
}

static int on_ack(midge_client *c, const mg_packet *p)
{
	uint16_t id = p->packet_id;
	int rc = p->reason_code;
	mgc_cmsg *m = mgc_msg_find(c, id);
	switch (p->type) {
	case MG_PUBACK:
		mgc_log(c, MIDGE_LOG_DEBUG, "Client %s received PUBACK (Mid: %d, RC:%d)", mgc_cid(c), id, rc);
		if (m && m->state == MG_M_WAIT_PUBACK)
			complete(c, m, rc, p);
		break;
	case MG_PUBREC:
		mgc_log(c, MIDGE_LOG_DEBUG, "Client %s received PUBREC (Mid: %d)", mgc_cid(c), id);
		if (m && m->state == MG_M_WAIT_PUBREC && rc >= 0x80) {
			complete(c, m, rc, p); /* 5.0: refused, the exchange ends here [MQTT-4.3.3-4] */
			break;
		}
		if (m && (m->state == MG_M_WAIT_PUBREC || m->state == MG_M_WAIT_PUBCOMP))
			m->state = MG_M_WAIT_PUBCOMP;
		/* An unknown id still gets its PUBREL, so the broker can finish (5.0: "not found"). */
		if (mgc_send_simple(c, MG_PUBREL, id, m ? 0 : (c->level == MIDGE_PROTOCOL_V5 ? MG_RC_PACKET_ID_NOT_FOUND : 0)) == MIDGE_OK)
			mgc_log(c, MIDGE_LOG_DEBUG, "Client %s sending PUBREL (m%d)", mgc_cid(c), id);
		break;
	case MG_PUBCOMP:
		mgc_log(c, MIDGE_LOG_DEBUG, "Client %s received PUBCOMP (Mid: %d, RC:%d)", mgc_cid(c), id, rc);
		if (m && m->state == MG_M_WAIT_PUBCOMP)
			complete(c, m, rc, p);
		break;
	case MG_PUBREL: {
		mgc_log(c, MIDGE_LOG_DEBUG, "Client %s received PUBREL (Mid: %d)", mgc_cid(c), id);
		bool known = c->qos2_in[id >> 3] & (1u << (id & 7));
		c->qos2_in[id >> 3] &= (uint8_t)~(1u << (id & 7));
		uint8_t r = known || c->level != MIDGE_PROTOCOL_V5 ? 0 : MG_RC_PACKET_ID_NOT_FOUND;
		/* manual acks: the PUBCOMP of a message delivered now waits for midge_ack (paho 2) */
		if ((!known || !c->manual_ack) && mgc_send_simple(c, MG_PUBCOMP, id, r) == MIDGE_OK)
			mgc_log(c, MIDGE_LOG_DEBUG, "Client %s sending PUBCOMP (m%d)", mgc_cid(c), id);
		/* As libmosquitto: PUBCOMP is queued, then on_message (paho calls it just before). */
		if (known)
			deliver_held(c, mgc_qin_take(c, id));
		break;
	}
	}
	return MIDGE_OK;
}

static int on_suback(midge_client *c, const mg_packet *p)
{
	mgc_log(c, MIDGE_LOG_DEBUG, "Client %s received %s", mgc_cid(c),
	       p->type == MG_SUBACK ? "SUBACK" : "UNSUBACK");
	int mid = mgc_psub_take(c, p->packet_id);
	if (!mid) {
		mgc_log(c, MIDGE_LOG_WARNING, "Client %s %s for unknown packet id %d ignored", mgc_cid(c),
		       p->type == MG_SUBACK ? "SUBACK" : "UNSUBACK", p->packet_id);
		return MIDGE_OK;
	}
	int n = (int)p->u.codes.len;
	int stackbuf[64];
	int *codes = n <= 64 ? stackbuf : malloc((size_t)n * sizeof(int));
	if (!codes)
		return MIDGE_ERR_NOMEM;
	for (int i = 0; i < n; i++)
		codes[i] = p->u.codes.p[i];
	mgc_event_push(c, p->type == MG_SUBACK ? MG_EV_SUBSCRIBE : MG_EV_UNSUBSCRIBE, mid, 0,
	              codes, n, props_of(c, p));
	if (codes != stackbuf)
		free(codes);
	return MIDGE_OK;
}

/* Resolve a 5.0 topic alias of an incoming PUBLISH. Returns the topic (borrowed), or NULL for
 * a protocol error. alias_in is loop-owned. */
static const char *inbound_alias(midge_client *c, const mg_publish *pub, const mg_props *pp,
                                 char *tbuf, size_t tcap, char **heap)
{
	*heap = NULL;
	uint16_t a = (pp->present & MG_PROP_BIT(MG_PROP_TOPIC_ALIAS)) ? pp->topic_alias : 0;
	if (a && (!c->alias_in || a > c->alias_max_in))
		return NULL; /* an alias we did not allow [MQTT-3.3.2-10] */
	if (pub->topic.len == 0) {
		return a ? c->alias_in[a] : NULL;
	}
	char *t = pub->topic.len < tcap ? tbuf : (*heap = malloc(pub->topic.len + 1u));
	if (!t)
		return NULL;
	memcpy(t, pub->topic.p, pub->topic.len);
	t[pub->topic.len] = '\0';
	if (a) {
		char *keep = strdup(t);
		if (keep) {
			free(c->alias_in[a]);
			c->alias_in[a] = keep;
		}
	}
	return t;
}

static int on_publish(midge_client *c, mg_packet *p, uint8_t *end)
{
	const mg_publish *pub = &p->u.publish;
	char tbuf[256], *heap = NULL;
	const char *topic = inbound_alias(c, pub, &p->props, tbuf, sizeof(tbuf), &heap);
	if (!topic)
		return protocol_error(c, MG_RC_TOPIC_ALIAS_INVALID, "PUBLISH with an unknown topic alias");
	uint16_t id = pub->packet_id;
	mgc_log(c, MIDGE_LOG_DEBUG, "Client %s received PUBLISH (d%d, q%d, r%d, m%d, '%s', ... (%ld bytes))",
	       mgc_cid(c), pub->dup, pub->qos, pub->retain, id, topic, (long)pub->payload.len);
	bool deliver = true;
	if (pub->qos == 1) {
		if (!c->manual_ack && mgc_send_simple(c, MG_PUBACK, id, 0) == MIDGE_OK)
			mgc_log(c, MIDGE_LOG_DEBUG, "Client %s sending PUBACK (m%d, rc%d)", mgc_cid(c), id, 0);
	} else if (pub->qos == 2) {
		/* Exactly once: hold a new id's message until PUBREL (inq.c); a duplicate (our PUBREC
		 * was lost) only gets its PUBREC again. */
		bool seen = c->qos2_in[id >> 3] & (1u << (id & 7));
		deliver = false;
		if (!seen) {
			if (c->n_qin >= c->recv_max) {
				free(heap);
				return protocol_error(c, MG_RC_RECEIVE_MAX_EXCEEDED,
				                      "more QoS 2 messages in flight than Receive Maximum");
			}
			if (mgc_qin_store(c, id, topic, pub, props_of(c, p)) != MIDGE_OK) {
				/* No memory to hold it: hand it over now rather than lose it. */
				mgc_log(c, MIDGE_LOG_WARNING, "Client %s out of memory: QoS 2 message %d delivered "
				       "before its PUBREL", mgc_cid(c), id);
				deliver = true;
			}
			c->qos2_in[id >> 3] |= (uint8_t)(1u << (id & 7));
		}
		if (mgc_send_simple(c, MG_PUBREC, id, 0) == MIDGE_OK)
			mgc_log(c, MIDGE_LOG_DEBUG, "Client %s sending PUBREC (m%d, rc%d)", mgc_cid(c), id, 0);
	}
	mgc_dispatch d;
	d.n = 0;
	if (deliver)
		mgc_dispatch_take(c, topic, &d);
	mgc_unlock(c);
	if (d.n) {
		midge_properties *props = props_of(c, p);
		midge_message msg = {
			.mid = id,
			.topic = topic,
			.payload = pub->payload.p,
			.payloadlen = pub->payload.len,
			.qos = pub->qos,
			.retain = pub->retain,
			.dup = pub->dup,
			.properties = props,
		};
		/* The payload ends where the packet ends: lend its next byte for a '\0' (c->in always
		 * keeps one spare byte) and give it back afterwards. */
		uint8_t saved = *end;
		*end = '\0';
		mgc_dispatch_run(c, &d, &msg);
		*end = saved;
		midge_properties_free(props);
	}
	free(heap);
	mgc_lock(c);
	return MIDGE_OK;
}

static int on_disconnect_pkt(midge_client *c, const mg_packet *p)
{
	/* libmosquitto words this one without the client id */
	mgc_log(c, MIDGE_LOG_DEBUG, "Received DISCONNECT (%d)", p->reason_code);
	mgc_conn_close(c, MIDGE_DISCONNECT_FLAG_FROM_SERVER, p->reason_code, props_of(c, p));
	return MIDGE_ERR_CONN_LOST;
}

/* One decoded packet, under mu. Returns MIDGE_OK or the error that closed the connection. */
static int handle(midge_client *c, mg_packet *p, uint8_t *end)
{
	if (c->state == MG_S_CONNACK && p->type != MG_CONNACK)
		return protocol_error(c, 0, "first packet is not CONNACK");
	switch (p->type) {
	case MG_CONNACK:
		return on_connack(c, p);
	case MG_PUBLISH:
		return on_publish(c, p, end);
	case MG_PUBACK:
	case MG_PUBREC:
	case MG_PUBREL:
	case MG_PUBCOMP:
		return on_ack(c, p);
	case MG_SUBACK:
	case MG_UNSUBACK:
		return on_suback(c, p);
	case MG_PINGRESP:
		mgc_log(c, MIDGE_LOG_DEBUG, "Client %s received PINGRESP", mgc_cid(c));
		c->ping_out = false;
		return MIDGE_OK;
	case MG_DISCONNECT:
		if (c->level == MIDGE_PROTOCOL_V5)
			return on_disconnect_pkt(c, p);
		break;
	}
	char what[64];
	snprintf(what, sizeof(what), "unexpected %s from the broker", mg_ptype_name(p->type));
	return protocol_error(c, 0, what);
}

int mgc_do_read(midge_client *c)
{
	mgc_lock(c);
	bool socks = c->socks_phase; /* a connect from another thread clears it */
	if (!socks && (c->tls_hs || c->ws_hs)) {
		int r = mgc_tls_step(c); /* which may start the WebSocket handshake when done */
		if (r == MIDGE_OK && !c->tls_hs)
			r = mgc_ws_step(c);
		if (r == MIDGE_OK && !c->tls_hs && !c->ws_hs)
			r = mgc_do_write(c); /* the CONNECT */
		bool more = r == MIDGE_OK && !c->tls_hs && !c->ws_hs && c->tr.fd >= 0;
		mgc_unlock(c);
		if (!more)
			return r;
	} else {
		mgc_unlock(c);
	}
	if (socks)
		return mgc_socks_read(c);
	for (int round = 0; round < 16; round++) {
		size_t room;
		uint8_t *at = mg_framer_room(&c->in, 4096, READ_CHUNK, &room);
		if (!at)
			return MIDGE_ERR_NOMEM;
		ssize_t n = mg_transport_read(&c->tr, at, room);
		bool ww = mg_transport_want_write(&c->tr);
		if (n == -EAGAIN) {
			if (ww != c->tr_ww) { /* unlocked read: races only with the owner's own writes */
				mgc_lock(c);
				c->tr_ww = ww;
				mgc_unlock(c);
			}
			return MIDGE_OK;
		}
		mgc_lock(c);
		c->tr_ww = ww;
		if (n <= 0) {
			if (c->state == MG_S_CLOSING && c->olen == c->ooff) {
				/* our DISCONNECT is out and the broker hung up: the end we asked for */
				mgc_conn_close(c, 0, c->disc_reason, NULL);
				mgc_unlock(c);
				return MIDGE_OK;
			}
			mgc_log(c, MIDGE_LOG_NOTICE, "Client %s connection lost: %s", mgc_cid(c),
			       n == 0 ? "closed by the broker" : mg_plat_strerror((int)-n));
			int why = MIDGE_ERR_CONN_LOST;
			if (n == -EPROTO && mg_ws_error(&c->tr)) /* a WebSocket rule broken by the broker */
				mgc_log(c, MIDGE_LOG_ERR, "Client %s: %s", mgc_cid(c), mg_ws_error(&c->tr));
			if (n == -EPROTO) {
				/* TLS: the broker's alert (no client certificate, ...). Before CONNACK the
				 * connect fails with errno EPROTO, as libmosquitto's does. */
				mgc_tls_log_errors(c);
				if (c->state == MG_S_CONNACK) {
					why = MIDGE_ERR_ERRNO;
					c->conn_errno = EPROTO;
				}
			}
			mgc_conn_close(c, 0, why, NULL);
			mgc_unlock(c);
			return why;
		}
		mg_framer_filled(&c->in, (size_t)n);
		c->last_in_ms = mgc_cl_now_ms();
		int rc = MIDGE_OK;
		/* After midge_disconnect (from a callback or another thread) nothing more is handled,
		 * as in libmosquitto: what the broker sends after that is read and dropped. */
		while (rc == MIDGE_OK && c->tr.fd >= 0 && c->state != MG_S_CLOSING) {
			mg_packet p;
			int r = mg_framer_next(&c->in, c->level, c->max_packet_in, &p);
			if (r == MG_FRAMER_NOMEM) {
				rc = protocol_error(c, MG_E_TOO_LARGE, "out of memory for a packet");
				break;
			}
			if (r < 0) {
				rc = protocol_error(c, r, mg_err_str(r));
				break;
			}
			if (r == 0)
				break;
			rc = handle(c, &p, mg_framer_data(&c->in) + (size_t)r);
			mg_framer_consume(&c->in, (size_t)r);
			/* This packet's callbacks (and log lines) come before the next packet is
			 * handled, so a callback that disconnects stops the rest. c->in is ours alone,
			 * so mu may be dropped here. */
			if (c->ev_head) {
				mgc_unlock(c);
				mgc_lock(c);
			}
		}
		if (c->tr.fd < 0) {
			mg_framer_drop(&c->in);
			mgc_unlock(c);
			return rc ? rc : MIDGE_ERR_CONN_LOST;
		}
		if (c->state == MG_S_CLOSING)
			mg_framer_drop(&c->in); /* not handled: see above */
		mg_framer_settle(&c->in, READ_CHUNK); /* a big packet has gone: its memory too */
		mgc_unlock(c);
		if ((size_t)n < room && !mg_transport_pending(&c->tr))
			return MIDGE_OK; /* drained */
	}
	return MIDGE_OK;
}

int mgc_do_write(midge_client *c)
{
	/* log_fence: another thread is still telling on_log about these bytes (client.c) */
	if (c->tr.fd < 0 || c->state == MG_S_TCP || c->log_fence)
		return MIDGE_OK;
	if (c->socks_phase)
		return mgc_socks_write(c);
	if (c->tls_hs) {
		int r = mgc_tls_step(c);
		if (r != MIDGE_OK || c->tls_hs)
			return r;
	}
	if (c->ws_hs) {
		int r = mgc_ws_step(c);
		if (r != MIDGE_OK || c->ws_hs)
			return r;
	}
	while (c->olen > c->ooff) {
		struct iovec iov = { c->obuf + c->ooff, c->olen - c->ooff };
		ssize_t n = mg_transport_writev(&c->tr, &iov, 1);
		if (n == -EAGAIN)
			break;
		if (n < 0) {
			mgc_log(c, MIDGE_LOG_NOTICE, "Client %s connection lost: %s", mgc_cid(c), mg_plat_strerror((int)-n));
			mgc_conn_close(c, 0, MIDGE_ERR_CONN_LOST, NULL);
			return MIDGE_ERR_CONN_LOST;
		}
		c->ooff += (size_t)n;
		c->out_written += (uint64_t)n;
		c->last_out_ms = mgc_cl_now_ms();
	}
	c->tr_ww = c->tr.fd >= 0 && mg_transport_want_write(&c->tr);
	if (c->ooff == c->olen) {
		c->ooff = c->olen = 0;
		if (c->ocap > 4 * READ_CHUNK) { /* after a big publish: give its memory back */
			free(c->obuf);
			c->obuf = NULL;
			c->ocap = 0;
		}
	}
	mgc_q0_done(c);
	return MIDGE_OK;
}
