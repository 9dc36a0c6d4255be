/*
 * broker/connect.c - CONNECT: client ids, refusals, the keepalive, which session the
 * connection gets (resumed, taken over, new: session.c does the session's part), the will,
 * and the CONNACK.
 */
#include "broker/packet.h"
#include "broker/alias_out.h"
#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/cluster.h"
#include "broker/log.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/store.h"
#include "broker/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIAS_MAX 10 /* topic alias maximum we announce, as mosquitto's max_topic_alias */

/* Refuse a CONNECT; `who` is the client id when it is known (mosquitto's log names it). */
static void refuse_as(mg_conn *c, const char *who, uint8_t v3rc, uint8_t v5rc, enum mg_close why)
{
	mg_packet p = { .type = MG_CONNACK, .reason_code = c->level == MG_V5 ? v5rc : v3rc };
	mg_log(MG_LOG_DEBUG, "Sending CONNACK to %.*s (0, %d)", who ? (int)strlen(who) : c->host_len,
	       who ? who : c->peer, p.reason_code);
	c->linger = mg_conn_send(c, &p) == 0;
	mg_conn_close(c, why);
}

#define refuse(c, v3, v5, why) refuse_as(c, idstr, v3, v5, why)

static void assign_id(const char *prefix, char *out, size_t cap)
{
	/* mosquitto's shape: prefix + a random UUID in upper-case hex. */
	uint8_t r[16];
	FILE *f = fopen("/dev/urandom", "rb");
	if (!f || fread(r, 1, sizeof r, f) != sizeof r) {
		for (int i = 0; i < 16; i++)
			r[i] = (uint8_t)rand();
	}
	if (f)
		fclose(f);
	snprintf(out, cap, "%s%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
	         prefix ? prefix : "auto-", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
	         r[10], r[11], r[12], r[13], r[14], r[15]);
}

/* Another connection takes s over: the session lets its old connection (c0) go, which is
 * closed the way the spec says. */
void mg_takeover_close(mg_worker *w, mg_session *s, bool resume)
{
	mg_conn *c0 = mg_session_take_over(w, s, resume);
	if (c0->level == MG_V5) {
		mg_packet p = { .type = MG_DISCONNECT, .reason_code = MG_RC_SESSION_TAKEN_OVER };
		c0->linger = mg_conn_send(c0, &p) == 0;
	}
	c0->s = NULL;
	mg_conn_close(c0, MG_CLOSE_TAKEOVER);
}

/* The CONNECT's will, as a message under the listener's mount point, given to the session. */
static int make_will(mg_conn *c, mg_session *s, const mg_connect *k)
{
	mg_session_set_will(s, NULL, 0, false, 0, 0);
	if (!k->will)
		return 0;
	uint8_t mbuf[256], *heap;
	mg_bytes t = mg_mount(c, k->will_topic, false, mbuf, sizeof mbuf, &heap);
	if (t.p && !mg_client_may_publish(t.p, t.len)) {
		/* a will is the client's PUBLISH: never published where a PUBLISH may not go
		 * (mosquitto checks it when it would send it, and drops it the same way) */
		mg_log(MG_LOG_DEBUG, "Denied will of %s on '%.*s'.", s->id, (int)t.len, (const char *)t.p);
		free(heap);
		return 0;
	}
	mg_msg *m = t.p ? mg_msg_new(t.p, t.len, k->will_payload.p, k->will_payload.len,
	                             k->level == MG_V5 ? &k->will_props : NULL, k->will_qos,
	                             k->will_retain, mg_loop_now_ms(c->w->loop))
	                : NULL;
	free(heap);
	if (!m)
		return -1;
	bool v5 = k->level == MG_V5;
	mg_session_set_will(s, m, k->will_qos, k->will_retain, v5 ? k->will_props.will_delay : 0,
	                    v5 && (k->will_props.present & MG_PROP_BIT(MG_PROP_MESSAGE_EXPIRY))
	                    ? k->will_props.message_expiry : 0);
	return 0;
}

/* What one CONNECT decided, passed between the steps of mg_handle_connect. */
typedef struct connect_st {
	const char *id;      /* the client id: the packet's, or idbuf when assigned */
	size_t idlen;
	bool assigned;       /* the broker made the id up (zero-length id) */
	bool id_from_user;   /* use_username_as_clientid replaced it with the user name */
	bool server_ka;      /* the broker changed the keepalive (5.0 Server Keep Alive) */
	bool present;        /* an existing session resumes */
	uint16_t ka;
	char idbuf[128];
	char idstr[128];     /* the id for logs */
} connect_st;

/* The client id, or one the broker assigns. false: refused (c closed). */
static bool pick_id(mg_conn *c, const mg_config *cfg, const mg_connect *k, connect_st *st)
{
	st->id = (const char *)k->client_id.p;
	st->idlen = k->client_id.len;
	st->assigned = false;
	st->id_from_user = false;
	snprintf(st->idstr, sizeof st->idstr, "%.*s", (int)st->idlen, st->id);
	if (st->idlen)
		return true;
	if (k->level == MG_V31 || (k->level == MG_V311 && !k->clean) || !cfg->allow_zero_length_clientid) {
		refuse_as(c, NULL, MG_CONNACK_ID_REJECTED, MG_RC_CLIENT_ID_NOT_VALID, MG_CLOSE_PROTOCOL);
		return false;
	}
	assign_id(cfg->auto_id_prefix, st->idbuf, sizeof st->idbuf);
	st->id = st->idbuf;
	st->idlen = strlen(st->idbuf);
	st->assigned = true;
	snprintf(st->idstr, sizeof st->idstr, "%s", st->idbuf);
	return true;
}

/* Authentication, the will's size and retain flag, the keepalive. 1 admitted, 0 refused
 * (c closed), 2 parked while its password is hashed (auth.h). */
static int admit(mg_conn *c, const mg_config *cfg, const mg_packet *p, connect_st *st)
{
	const mg_connect *k = &p->u.connect;
	const char *idstr = st->idstr;
	if (k->level == MG_V5 && (p->props.present & MG_PROP_BIT(MG_PROP_AUTH_METHOD))) {
		refuse(c, MG_CONNACK_NOT_AUTHORIZED, MG_RC_BAD_AUTH_METHOD, MG_CLOSE_NOT_AUTH);
		return 0;
	}
	if (c->tls_no_identity) { /* use_identity/subject_as_username: no certificate, no name */
		refuse(c, MG_CONNACK_BAD_CREDENTIALS, MG_RC_BAD_USERNAME_OR_PASSWORD, MG_CLOSE_NOT_AUTH);
		return 0;
	}
	/* mosquitto 2.0 answers every refusal here with "not authorised" (5 / 0x87), a wrong
	 * password included: 4 / 0x86 only come from its TLS identity checks. */
	switch (mg_auth_connect(c, k, &st->id, &st->idlen)) {
	case MG_PARKED:
		return 2;
	case MG_REFUSE_AUTH:
		refuse(c, MG_CONNACK_NOT_AUTHORIZED, MG_RC_NOT_AUTHORIZED, MG_CLOSE_NOT_AUTH);
		return 0;
	}
	st->id_from_user = st->id != st->idbuf && st->id != (const char *)k->client_id.p;
	if (st->id_from_user) /* use_username_as_clientid */
		snprintf(st->idstr, sizeof st->idstr, "%.*s", (int)st->idlen, st->id);
	if (k->will && cfg->message_size_limit && k->will_payload.len > cfg->message_size_limit) {
		/* It could never be published as a PUBLISH of that size: refuse now, not drop it
		 * silently later (mosquitto: 3.1.1 CONNACK 5; 5.0 Packet too large). */
		mg_log(MG_LOG_INFO, "Client %s will payload of %u bytes is over message_size_limit %u, "
		       "refused.", idstr, k->will_payload.len, cfg->message_size_limit);
		refuse(c, MG_CONNACK_NOT_AUTHORIZED, MG_RC_PACKET_TOO_LARGE, MG_CLOSE_REFUSED);
		return 0;
	}
	if (k->will && k->will_retain && !cfg->retain_available && k->level == MG_V5) {
		refuse(c, MG_CONNACK_NOT_AUTHORIZED, MG_RC_RETAIN_NOT_SUPPORTED, MG_CLOSE_REFUSED);
		return 0;
	}
	st->ka = k->keepalive;
	st->server_ka = false;
	if (cfg->max_keepalive && k->level == MG_V5 && (st->ka == 0 || st->ka > cfg->max_keepalive)) {
		st->ka = cfg->max_keepalive;
		st->server_ka = true;
	} else if (cfg->max_keepalive && st->ka > cfg->max_keepalive) {
		refuse(c, MG_CONNACK_ID_REJECTED, MG_RC_CLIENT_ID_NOT_VALID, MG_CLOSE_PROTOCOL);
		return 0;
	}
	return 1;
}

/* The session this CONNECT gets: resumed, taken over, or new. Sets *out; returns 0, -1
 * refused (c closed) or 1 when the session lives on another worker (c handed to it). */
static int claim_session(mg_conn *c, const mg_connect *k, connect_st *st, mg_session **out)
{
	mg_worker *w = c->w;
	const char *idstr = st->idstr;
	int owner = -1;
	mg_session *s = NULL;
	if (!st->assigned || st->id_from_user) {
		s = mg_session_find(w, st->id, st->idlen, &owner);
		if (!s && owner >= 0 && owner != w->idx) {
			if (c->hops++ > 8) {
				refuse(c, MG_CONNACK_SERVER_UNAVAILABLE, MG_RC_SERVER_BUSY, MG_CLOSE_REFUSED);
				return -1;
			}
			mg_conn_handoff(c, owner);
			return 1;
		}
	}
	bool resume = !k->clean;
	if (s && mg_session_expire_if_due(w, s, mg_loop_now_ms(w->loop)))
		s = NULL;
	if (s && s->conn)
		mg_takeover_close(w, s, resume && s->expiry > 0);
	if (s && (!resume || s->expiry == 0)) {
		mg_session_end(w, s);
		s = NULL;
	}
	st->present = s != NULL;
	if (!s) {
		s = mg_session_create(w, st->id, st->idlen, &owner);
		if (!s) {
			if (owner >= 0 && owner != w->idx && c->hops++ <= 8) {
				mg_conn_handoff(c, owner);
				return 1;
			}
			refuse(c, MG_CONNACK_SERVER_UNAVAILABLE, MG_RC_SERVER_UNAVAILABLE, MG_CLOSE_REFUSED);
			return -1;
		}
	}
	*out = s;
	return 0;
}

/* The session's settings from this CONNECT: level, expiry, will. false: refused. */
static bool configure_session(mg_conn *c, const mg_config *cfg, const mg_packet *p,
                              mg_session *s, const connect_st *st)
{
	const mg_connect *k = &p->u.connect;
	const char *idstr = st->idstr;
	s->level = k->level;
	if (k->level == MG_V5)
		s->expiry = (p->props.present & MG_PROP_BIT(MG_PROP_SESSION_EXPIRY)) ? p->props.session_expiry : 0;
	else
		s->expiry = k->clean ? 0
		          : cfg->persistent_client_expiration < 0 ? UINT32_MAX
		          : (uint32_t)cfg->persistent_client_expiration;
	s->expire_at = 0;
	/* the name this connection ended up with (the certificate's with use_identity_as_username
	 * or use_subject_as_username, else the CONNECT's): what acl_file's user sections and %u
	 * see. A resumed session takes the new one. */
	free(s->username);
	s->username = NULL;
	if ((c->username && !(s->username = strdup(c->username))) ||
	    (!c->username && k->has_username &&
	     !(s->username = strndup((const char *)k->username.p, k->username.len)))) {
		mg_session_destroy(c->w, s);
		refuse(c, MG_CONNACK_SERVER_UNAVAILABLE, MG_RC_SERVER_UNAVAILABLE, MG_CLOSE_REFUSED);
		return false;
	}
	if (make_will(c, s, k) < 0) {
		mg_session_destroy(c->w, s);
		refuse(c, MG_CONNACK_SERVER_UNAVAILABLE, MG_RC_SERVER_UNAVAILABLE, MG_CLOSE_REFUSED);
		return false;
	}
	return true;
}

/* The connection's side of an accepted CONNECT: keepalive, 5.0 limits and topic aliases. */
static void configure_conn(mg_conn *c, const mg_config *cfg, const mg_packet *p, const connect_st *st)
{
	const mg_connect *k = &p->u.connect;
	c->state = MG_CS_ACTIVE;
	c->keepalive = st->ka;
	c->anonymous = !k->has_username && !c->user_from_cert;
	if (k->level != MG_V5)
		return;
	c->max_out = p->props.maximum_packet_size;
	c->recv_max = p->props.receive_maximum ? p->props.receive_maximum : 65535;
	c->problem_info = p->props.request_problem_info;
	c->alias_max = ALIAS_MAX;
	c->alias = calloc(ALIAS_MAX + 1, sizeof *c->alias);
	c->alias_len = calloc(ALIAS_MAX + 1, sizeof *c->alias_len);
	if (!c->alias || !c->alias_len)
		c->alias_max = 0;
	/* The client's Topic Alias Maximum bounds the aliases we send it [MQTT-3.1.2-26];
	 * absent or 0: none [MQTT-3.1.2-27]. A new connection starts with no mapping.
	 * Opt-in (outgoing_topic_aliases): libmosquitto 2.0.11 and paho 1.6 announce a
	 * maximum but cannot take an alias back, and mosquitto never sends one. */
	mg_alias_out_free(c->aout);
	c->aout = NULL;
	if (cfg->outgoing_topic_aliases && (p->props.present & MG_PROP_BIT(MG_PROP_TOPIC_ALIAS_MAXIMUM)))
		c->aout = mg_alias_out_new(p->props.topic_alias_maximum);
}

static void log_connect(const mg_conn *c, const mg_config *cfg, const mg_session *s, const mg_connect *k)
{
	if (cfg->connection_messages) {
		const char *what = c->bridge ? "bridge" : "client"; /* mosquitto's words */
		int pl = k->level == MG_V31 ? 1 : k->level == MG_V311 ? 2 : 5;
		if (c->user_from_cert) /* the certificate's name, as mosquitto logs it */
			mg_log(MG_LOG_NOTICE, "New %s connected from %s as %s (p%d, c%d, k%d, u'%s').", what, c->peer,
			       s->id, pl, k->clean, k->keepalive, c->username);
		else if (k->has_username)
			mg_log(MG_LOG_NOTICE, "New %s connected from %s as %s (p%d, c%d, k%d, u'%.*s').", what, c->peer,
			       s->id, pl, k->clean, k->keepalive, (int)k->username.len, (const char *)k->username.p);
		else
			mg_log(MG_LOG_NOTICE, "New %s connected from %s as %s (p%d, c%d, k%d).", what, c->peer,
			       s->id, pl, k->clean, k->keepalive);
	}
	if (k->will) {
		mg_log(MG_LOG_DEBUG, "Will message specified (%u bytes) (r%d, q%d).", k->will_payload.len,
		       k->will_retain, k->will_qos);
		mg_log(MG_LOG_DEBUG, "\t%.*s", (int)k->will_topic.len, (const char *)k->will_topic.p);
	} else {
		mg_log(MG_LOG_DEBUG, "No will message specified.");
	}
}

static void send_connack(mg_conn *c, const mg_config *cfg, const mg_session *s, const connect_st *st)
{
	mg_packet ack = { .type = MG_CONNACK, .session_present = st->present };
	if (c->level == MG_V5) {
		/* proto/ writes them in mosquitto's order; we say which, and the values */
		mg_props *ap = &ack.props;
		ap->present = MG_PROP_BIT(MG_PROP_TOPIC_ALIAS_MAXIMUM);
		ap->topic_alias_maximum = c->alias_max;
		if (st->server_ka) {
			ap->present |= MG_PROP_BIT(MG_PROP_SERVER_KEEP_ALIVE);
			ap->server_keep_alive = st->ka;
		}
		if (st->assigned) {
			ap->present |= MG_PROP_BIT(MG_PROP_ASSIGNED_CLIENT_ID);
			ap->assigned_client_id = (mg_bytes){ (const uint8_t *)st->id, (uint32_t)st->idlen };
		}
		if (!cfg->retain_available) {
			ap->present |= MG_PROP_BIT(MG_PROP_RETAIN_AVAILABLE);
			ap->retain_available = 0;
		}
		if (cfg->max_packet_size) {
			ap->present |= MG_PROP_BIT(MG_PROP_MAXIMUM_PACKET_SIZE);
			ap->maximum_packet_size = cfg->max_packet_size;
		}
		/* as mosquitto: absent when max_inflight_messages is 0 (no limit, kept as 65535) */
		if (cfg->max_inflight_messages && cfg->max_inflight_messages != 65535) {
			ap->present |= MG_PROP_BIT(MG_PROP_RECEIVE_MAXIMUM);
			ap->receive_maximum = (uint16_t)cfg->max_inflight_messages;
		}
	}
	mg_log(MG_LOG_DEBUG, "Sending CONNACK to %s (%d, 0)", s->id, st->present);
	mg_conn_send(c, &ack);
}

int mg_handle_connect(mg_conn *c, const mg_packet *p)
{
	mg_worker *w = c->w;
	const mg_config *cfg = w->b->cfg;
	const mg_connect *k = &p->u.connect;
	c->level = k->level;
	c->bridge = k->bridge;
	connect_st st;
	if (!pick_id(c, cfg, k, &st))
		return -1;
	int a = admit(c, cfg, p, &st);
	if (a != 1)
		return a ? 2 : -1;
	/* Clustered: the id is the cluster's, not this node's alone. The CONNECT waits (parked,
	 * its worker goes on) while the registry is asked and a session another node owned is
	 * moved here, then comes back here with cluster_ok (cluster.h). */
	mg_broker *b = w->b;
	if (b->cluster && !c->cluster_ok && (!st.assigned || st.id_from_user) &&
	    b->cluster_ops->claim(b->cluster, c, st.id, st.idlen, k->clean) == 1)
		return 2;
	mg_session *s;
	int r = claim_session(c, k, &st, &s);
	if (r)
		return r;
	if (!configure_session(c, cfg, p, s, &st))
		return -1;
	c->s = s;
	c->id = s->id;
	configure_conn(c, cfg, p, &st);
	mg_session_attach(w, s, c);
	mg_store_session_saved(s); /* a session that outlives its connection is written */
	mg_cluster_session(b, w, s, false); /* and the cluster's registry learns it */
	log_connect(c, cfg, s, k);
	send_connack(c, cfg, s, &st);
	if (st.present) {
		mg_session_recheck_queue(w, s);
		mg_session_resend(w, s);
	}
	mg_session_pump(w, s);
	return 0;
}
