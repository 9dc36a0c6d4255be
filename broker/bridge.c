/*
 * broker/bridge.c - bridges at run time (bridge.h): connect, CONNACK, subscriptions both
 * sides, notifications, keepalive, restart with backoff, address failover, lazy and once
 * start. Log lines are mosquitto's (src/bridge.c, src/handle_connack.c there).
 */
#include "broker/bridge.h"
#include "broker/bridge_conf.h"
#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/log.h"
#include "broker/packet.h"
#include "broker/resolve.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/store.h"
#include "broker/worker.h"
#include "net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TICK_MS 250        /* restart, keepalive, lazy start/idle are checked this often */
#define PRIMARY_RETRY_MS 5000 /* round_robin false: how often the first address is tried again */
/* A host name lookup longer than this counts as failed: the bridge plans its restart (and
 * moves to its next address) while the helper thread runs on; glibc's own limit is
 * resolv.conf's timeout x attempts per server, up to minutes. */
#define RESOLVE_LIMIT_MS 30000

struct mg_bridge {
	const mg_bridge_conf *conf;
	mg_worker *w;
	mg_session *s;         /* its local session; a client may take the id over and end it:
	                        * checked against ref (live_session) before each use */
	mg_sref ref;
	mg_conn *c;            /* NULL while down */
	SSL_CTX *tls;          /* bridge_cafile / capath / psk: the remote is reached over TLS */
	char *state_topic;     /* notification_topic, or $SYS/broker/connection/<remote_clientid>/state */
	int cur;               /* the address tried or in use */
	int restart_timeout;   /* seconds to wait after a failure: constant, or the backoff's now */
	int64_t restart_at;    /* ms; when down, no attempt before it */
	int64_t last_pub;      /* ms: the last PUBLISH either way (lazy idle_timeout) */
	int64_t last_ping;     /* ms: the last PINGREQ */
	int64_t primary_at;    /* ms: the next check whether the first address is back (0: none) */
	int probe_fd;          /* that check's socket, -1 */
	mg_resolve *rs;        /* a host name being looked up (resolve.h), NULL */
	int64_t rs_until;      /* ms: given up then (RESOLVE_LIMIT_MS) */
	bool rs_probe;         /* for primary_check, not for connecting */
	bool rs_stale;         /* given up or no longer wanted: dropped when it ends */
	uint16_t sub_mid;      /* packet ids of our SUBSCRIBE / UNSUBSCRIBE */
	uint8_t level;         /* 3, 4 or 5; 5 drops to 4 when the remote refuses 5.0 */
	bool private_ok;       /* try_private until the remote refused it once */
	bool initial_done;     /* the first local '0' went out */
	bool once_done;        /* start_type once: it ran, it does not restart */
	bool up;               /* CONNACK accepted */
	bool retain_ok;        /* 5.0 remote: Retain Available */
	bool to_store;         /* its new session is still to be written (bridge_store) */
};

/* ---- helpers ---- */

static mg_bridge *bridge_of(const mg_conn *c)
{
	mg_broker *b = c->w->b;
	for (int i = 0; i < b->n_bridges; i++)
		if (b->bridges[i].c == c)
			return &b->bridges[i];
	return NULL;
}

/* The state topic locally, retained, QoS 1, as published by the bridge's own session: its
 * own subscriptions are No Local, so the remote gets it only through the will or on
 * connect, as in mosquitto. */
static void publish_state_local(mg_bridge *br, char state)
{
	mg_worker *w = br->w;
	mg_msg *m = mg_msg_new((const uint8_t *)br->state_topic, strlen(br->state_topic),
	                       (const uint8_t *)&state, 1, NULL, 1, true, mg_loop_now_ms(w->loop));
	if (!m)
		return;
	mg_publish_msg(w, m, br->s ? br->ref : NULL);
	mg_msg_unref(m);
}

static void plan_restart(mg_bridge *br)
{
	const mg_bridge_conf *bc = br->conf;
	int64_t now = mg_loop_now_ms(br->w->loop);
	br->restart_at = now + (int64_t)br->restart_timeout * 1000;
	br->cur = (br->cur + 1) % bc->n_addrs; /* mosquitto moves on after every end */
}

/* restart_timeout BASE CAP: "decorrelated jitter" (a random wait between the base and three
 * times the last one, at most the cap), taken before each attempt; a success resets it. */
static void backoff_step(mg_bridge *br)
{
	const mg_bridge_conf *bc = br->conf;
	if (!bc->backoff_cap)
		return;
	int hi = br->restart_timeout * 3;
	int span = hi > bc->backoff_base ? hi - bc->backoff_base : 1;
	int t = bc->backoff_base + (int)((unsigned)rand() % (unsigned)span);
	br->restart_timeout = t > bc->backoff_cap ? bc->backoff_cap : t;
}

/* A non-blocking TCP connect to the first address of ai that takes it, from the first
 * address of bind_ai (bridge_bind_address; NULL: any) that binds, as mosquitto's
 * net__try_connect_tcp does. fd or -errno. */
static int connect_ai(const struct addrinfo *ai, const struct addrinfo *bind_ai)
{
	int fd = -ECONNREFUSED;
	for (const struct addrinfo *a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			fd = -errno;
			continue;
		}
		const struct addrinfo *b = bind_ai;
		for (; b; b = b->ai_next)
			if (bind(fd, b->ai_addr, b->ai_addrlen) == 0)
				break;
		if (bind_ai && !b) {
			int e = errno;
			close(fd);
			fd = -e;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS)
			break;
		int e = errno;
		close(fd);
		fd = -e;
	}
	return fd;
}

/* ---- resolving: a host name is looked up off the loop (resolve.h) ---- */

/* Start finding address i (and bridge_bind_address). 1: *ai (and *bind_ai) are there now,
 * literal addresses; 0: a helper thread looks the name up, bridge_tick collects it
 * (resolve_step); -1: failed, logged (a lookup given up on still runs: one per bridge). */
static int resolve_begin(mg_bridge *br, int i, bool probe, struct addrinfo **ai,
                         struct addrinfo **bind_ai)
{
	const mg_bridge_conf *bc = br->conf;
	const mg_bridge_addr *a = &bc->addrs[i];
	if (mg_resolve_numeric(a->host, a->port, bc->bind_address, ai, bind_ai) == 0)
		return 1;
	if (br->rs) {
		mg_log(MG_LOG_ERR, "Error creating bridge: the lookup of %s is still running.", a->host);
		return -1;
	}
	if (!(br->rs = mg_resolve_start(a->host, a->port, bc->bind_address))) {
		mg_log(MG_LOG_ERR, "Error creating bridge: %s.", strerror(ENOMEM));
		return -1;
	}
	br->rs_probe = probe;
	br->rs_stale = false;
	br->rs_until = mg_loop_now_ms(br->w->loop) + RESOLVE_LIMIT_MS;
	return 0;
}

/* The lookup is over: 1 with *ai (and *bind_ai) for the caller, 0 still running, -1 failed
 * (logged in mosquitto's words) or given up after RESOLVE_LIMIT_MS. A lookup the bridge no
 * longer wants (rs_stale) is dropped when it ends. */
static int resolve_step(mg_bridge *br, int64_t now, struct addrinfo **ai, struct addrinfo **bind_ai)
{
	int gai = 0;
	if (!mg_resolve_done(br->rs, ai, bind_ai, &gai)) {
		if (br->rs_stale || now < br->rs_until)
			return 0;
		mg_log(MG_LOG_ERR, "Error creating bridge: the lookup of %s took more than %d s.",
		       br->conf->addrs[br->rs_probe ? 0 : br->cur].host, RESOLVE_LIMIT_MS / 1000);
		br->rs_stale = true; /* it goes on; no second one starts for this bridge meanwhile */
		return -1;
	}
	bool stale = br->rs_stale;
	mg_resolve_drop(br->rs);
	br->rs = NULL;
	if (stale) {
		if (*ai)
			freeaddrinfo(*ai);
		if (*bind_ai)
			freeaddrinfo(*bind_ai);
		*ai = *bind_ai = NULL;
		return 0;
	}
	if (gai) {
		mg_log(MG_LOG_ERR, "Error creating bridge: %s.", gai_strerror(gai));
		return -1;
	}
	return 1;
}

static void free_ai(struct addrinfo *ai, struct addrinfo *bind_ai)
{
	if (ai)
		freeaddrinfo(ai);
	if (bind_ai)
		freeaddrinfo(bind_ai);
}

/* ---- the local session ---- */

/* The bridge's session if it is still there and not taken over by a client that connected
 * with local_clientid (then the bridge waits: two connections on one session would each
 * think they own it). NULL: none now. */
static mg_session *live_session(mg_bridge *br)
{
	if (!br->s)
		return NULL;
	mg_session *s = mg_session_resolve(br->w, br->ref);
	if (s != br->s) {
		br->s = NULL; /* ended (a client's clean start): made again at the next tick */
		return NULL;
	}
	return s->conn && (!br->c || s->conn != br->c) ? NULL : s;
}

/* The bridge's session (local_clientid): found (restored) or made, never expiring, holding
 * the local subscriptions of the out/both entries. NULL: not now (retried next tick). */
static mg_session *bridge_session(mg_bridge *br)
{
	mg_worker *w = br->w;
	const mg_bridge_conf *bc = br->conf;
	size_t len = strlen(bc->local_clientid);
	int owner;
	mg_session *s = mg_session_find(w, bc->local_clientid, len, &owner);
	if (!s && owner >= 0)
		return NULL; /* a client holds the id on another worker */
	bool made = !s;
	if (!s && !(s = mg_session_create(w, bc->local_clientid, len, &owner)))
		return NULL;
	s->expiry = UINT32_MAX;
	s->expire_at = 0;
	s->level = br->level;
	if (bc->local_username && !s->username)
		s->username = strdup(bc->local_username); /* what acl_file sees */
	br->to_store = made && !bc->local_clean; /* on the worker's thread: bridge_store */
	for (int i = 0; i < bc->n_topics; i++) {
		const mg_bridge_topic *t = &bc->topics[i];
		if (!(t->dir & MG_BRIDGE_OUT))
			continue;
		mg_log(MG_LOG_DEBUG, "Bridge %s doing local SUBSCRIBE on topic %s", s->id, t->local_topic);
		mg_subopts o = { .qos = t->qos, .no_local = true, .retain_as_published = true };
		size_t tl = strlen(t->local_topic);
		int r = mg_subtree_add(w->b->tree, (const uint8_t *)t->local_topic, tl, s->ref, o, 0);
		if (r == 0 && mg_fset_add(&s->subs, (const uint8_t *)t->local_topic, tl) < 0)
			mg_subtree_remove(w->b->tree, (const uint8_t *)t->local_topic, tl, s->ref);

	}
	return s;
}

/* persistence true, local_cleansession false: the new session is written like a client's that
 * outlives its connection, with its subscriptions, so that what waits for the remote survives
 * a restart of this broker. On the worker's own thread (its store batch); a no-op without a
 * store. */
static void bridge_store(mg_bridge *br)
{
	mg_session *s = br->s;
	br->to_store = false;
	mg_store_session_saved(s);
	if (!s->sid)
		return;
	mg_sref_set_sid(br->w->b, s->ref, s->sid); /* routing on any worker writes its rows */
	for (int i = 0; i < br->conf->n_topics; i++) {
		const mg_bridge_topic *t = &br->conf->topics[i];
		if (t->dir & MG_BRIDGE_OUT) {
			mg_subopts o = { .qos = t->qos, .no_local = true, .retain_as_published = true };
			mg_store_sub_added(s, (const uint8_t *)t->local_topic, strlen(t->local_topic), o, 0);
		}
	}
}

/* ---- connecting ---- */

static int send_connect(mg_bridge *br, mg_conn *c)
{
	const mg_bridge_conf *bc = br->conf;
	mg_packet p = { .type = MG_CONNECT };
	mg_connect *k = &p.u.connect;
	k->level = br->level;
	k->bridge = br->level != MG_V5 && bc->try_private && br->private_ok;
	k->clean = bc->clean;
	k->keepalive = bc->keepalive;
	k->client_id = (mg_bytes){ (const uint8_t *)bc->remote_clientid, (uint32_t)strlen(bc->remote_clientid) };
	if (bc->notifications && !bc->notifications_local_only) {
		k->will = true; /* the remote learns of our end from the will: '0', retained */
		k->will_qos = 1;
		k->will_retain = true;
		k->will_topic = (mg_bytes){ (const uint8_t *)br->state_topic, (uint32_t)strlen(br->state_topic) };
		k->will_payload = (mg_bytes){ (const uint8_t *)"0", 1 };
	}
	if (bc->remote_username) {
		k->has_username = true;
		k->username = (mg_bytes){ (const uint8_t *)bc->remote_username, (uint32_t)strlen(bc->remote_username) };
	}
	if (bc->remote_password) {
		k->has_password = true;
		k->password = (mg_bytes){ (const uint8_t *)bc->remote_password, (uint32_t)strlen(bc->remote_password) };
	}
	if (br->level == MG_V5) {
		/* cleansession false: the remote keeps our subscriptions and queue while we are away */
		p.props.present |= MG_PROP_BIT(MG_PROP_SESSION_EXPIRY);
		p.props.session_expiry = bc->clean ? 0 : UINT32_MAX;
	}
	mg_log(MG_LOG_DEBUG, "Bridge %s sending CONNECT", bc->remote_clientid);
	return mg_conn_send(c, &p);
}

/* The addresses are known: the socket, TLS, CONNECT. Borrows ai and bind_ai. */
static void bridge_connect_to(mg_bridge *br, const struct addrinfo *ai, const struct addrinfo *bind_ai)
{
	const mg_bridge_conf *bc = br->conf;
	mg_worker *w = br->w;
	const mg_bridge_addr *a = &bc->addrs[br->cur];
	int fd = connect_ai(ai, bind_ai);
	if (fd < 0) {
		mg_log(MG_LOG_ERR, "Error creating bridge: %s.", strerror(-fd));
		plan_restart(br);
		return;
	}
	char peer[300];
	snprintf(peer, sizeof peer, "%s:%u", a->host, a->port);
	mg_conn *c = mg_conn_new(w, fd, peer, a->port);
	if (!c) {
		close(fd);
		plan_restart(br);
		return;
	}
	c->outbound = true;
	c->level = br->level;
	c->id = br->s->id;
	c->lidx = 0;
	c->max_out = bc->max_packet_size; /* nothing larger goes to the remote (0: no limit) */
	c->remote_max_qos = 2;
	if (br->tls) {
		if (mg_tls_init(&c->tr, fd, br->tls, MG_TLS_CLIENT, a->host) < 0) {
			mg_conn_free(c);
			plan_restart(br);
			return;
		}
		if (!bc->tls_insecure && !bc->psk)
			SSL_set1_host(mg_tls_ssl(&c->tr), a->host);
		c->handshaking = true;
	}
	br->c = c;
	br->up = false;
	if (send_connect(br, c) < 0) {
		mg_transport_close(&c->tr);
		mg_conn_free(c);
		br->c = NULL;
		plan_restart(br);
		return;
	}
	mg_conn_attach(w, c); /* the CONNECT goes out when the socket is connected (writable) */
	if (c->handshaking)
		mg_conn_handshake(c);
}

static void bridge_connect(mg_bridge *br)
{
	const mg_bridge_conf *bc = br->conf;
	const mg_bridge_addr *a = &bc->addrs[br->cur];
	br->restart_at = 0;
	if (bc->clean)
		mg_session_clear_msgs(br->s); /* a clean remote session: nothing to resume (mosquitto) */
	backoff_step(br);
	if (bc->notifications && !br->initial_done) {
		publish_state_local(br, '0');
		br->initial_done = true;
	}
	mg_log(MG_LOG_NOTICE, "Connecting bridge %s (%s:%u)", bc->name, a->host, a->port);
	struct addrinfo *ai = NULL, *bind_ai = NULL;
	int r = resolve_begin(br, br->cur, false, &ai, &bind_ai);
	if (r < 0)
		plan_restart(br);
	if (r <= 0)
		return; /* r == 0: bridge_tick goes on when the name is found */
	bridge_connect_to(br, ai, bind_ai);
	free_ai(ai, bind_ai);
}

/* ---- CONNACK ---- */

static const char *refused_text(uint8_t rc)
{
	switch (rc) {
	case MG_CONNACK_BAD_PROTOCOL: return "unacceptable protocol version";
	case MG_CONNACK_ID_REJECTED: return "identifier rejected";
	case MG_CONNACK_SERVER_UNAVAILABLE: return "broker unavailable";
	case MG_CONNACK_BAD_CREDENTIALS: return "bad user name or password";
	case MG_CONNACK_NOT_AUTHORIZED: return "not authorised";
	default: return "unknown reason";
	}
}

static void send_sub(mg_bridge *br, mg_conn *c, const mg_bridge_topic *t, bool unsub)
{
	mg_subopts o = { .qos = t->qos < c->remote_max_qos ? t->qos : c->remote_max_qos };
	if (br->level == MG_V5) { /* what try_private does for 3.x: no echo, the retain flag kept */
		o.no_local = true;
		o.retain_as_published = true;
	}
	mg_bytes f = { (const uint8_t *)t->remote_topic, (uint32_t)strlen(t->remote_topic) };
	size_t n = mg_sub_put(NULL, 0, f, unsub ? NULL : &o);
	uint8_t *raw = malloc(n ? n : 1);
	if (!raw)
		return;
	mg_sub_put(raw, n, f, unsub ? NULL : &o);
	if (++br->sub_mid == 0)
		br->sub_mid = 1;
	mg_packet p = { .type = unsub ? MG_UNSUBSCRIBE : MG_SUBSCRIBE, .packet_id = br->sub_mid };
	p.u.sub = (mg_sublist){ { raw, (uint32_t)n }, 1 };
	if (unsub)
		mg_log(MG_LOG_DEBUG, "Bridge %s sending UNSUBSCRIBE (Mid: %u, Topic: %s)", c->id, br->sub_mid, t->remote_topic);
	else
		mg_log(MG_LOG_DEBUG, "Bridge %s sending SUBSCRIBE (Mid: %u, Topic: %s, QoS: %u, Options: 0x%02x)",
		       c->id, br->sub_mid, t->remote_topic, o.qos, mg_subopts_byte(o) & 0xFC);
	mg_conn_send(c, &p);
	free(raw);
}

typedef struct owe_ctx {
	mg_bridge *br;
	uint8_t qos;
} owe_ctx;

static int owe_retained(void *ctx, const uint8_t *topic, size_t tlen, void *v)
{
	owe_ctx *o = ctx;
	mg_msg *m = v;
	(void)topic;
	(void)tlen;
	if (mg_msg_expired(m, mg_loop_now_ms(o->br->w->loop)))
		return 0;
	mg_qitem q = { .m = mg_msg_ref(m), .qos = m->qos < o->qos ? m->qos : o->qos, .retain = true };
	mg_session_owe_retained(o->br->w, o->br->s, &q);
	return 0;
}

/* The remote said yes: notifications, subscriptions there, retained messages here, and
 * whatever waited (inflight again with DUP, then the queue). */
static void bridge_up(mg_bridge *br, mg_conn *c, const mg_packet *p)
{
	const mg_bridge_conf *bc = br->conf;
	mg_worker *w = br->w;
	mg_session *s = br->s;
	br->retain_ok = true;
	if (br->level == MG_V5) {
		if (p->props.present & MG_PROP_BIT(MG_PROP_RECEIVE_MAXIMUM))
			c->recv_max = p->props.receive_maximum;
		if ((p->props.present & MG_PROP_BIT(MG_PROP_MAXIMUM_PACKET_SIZE)) &&
		    (!c->max_out || p->props.maximum_packet_size < c->max_out))
			c->max_out = p->props.maximum_packet_size;
		if (p->props.present & MG_PROP_BIT(MG_PROP_SERVER_KEEP_ALIVE))
			c->keepalive = p->props.server_keep_alive;
		if (p->props.present & MG_PROP_BIT(MG_PROP_RETAIN_AVAILABLE))
			br->retain_ok = p->props.retain_available != 0;
		if ((p->props.present & MG_PROP_BIT(MG_PROP_MAXIMUM_QOS)) && p->props.maximum_qos < 2)
			c->remote_max_qos = p->props.maximum_qos; /* subscriptions, notifications, messages */
	}
	c->state = MG_CS_ACTIVE;
	c->s = s;
	mg_session_attach(w, s, c);
	br->up = true;
	br->last_pub = br->last_ping = mg_loop_now_ms(w->loop);
	if (bc->backoff_cap)
		br->restart_timeout = bc->backoff_base;
	if (bc->notifications) {
		if (!bc->notifications_local_only) {
			uint16_t mid = 0; /* an id the session's window does not use: its PUBACK finds none */
			uint8_t qos = c->remote_max_qos ? 1 : 0; /* mosquitto's choice too */
			while (qos && (!mid || mg_fring_has(&s->flight, mid))) {
				mid = s->next_mid++;
				if (s->next_mid == 0)
					s->next_mid = 1;
			}
			mg_packet n = { .type = MG_PUBLISH };
			n.u.publish = (mg_publish){ .qos = qos, .retain = br->retain_ok, .packet_id = mid,
				.topic = { (const uint8_t *)br->state_topic, (uint32_t)strlen(br->state_topic) },
				.payload = { (const uint8_t *)"1", 1 } };
			mg_conn_send(c, &n);
		}
		publish_state_local(br, '1');
	}
	for (int i = 0; i < bc->n_topics; i++) {
		const mg_bridge_topic *t = &bc->topics[i];
		if (t->dir & MG_BRIDGE_IN)
			send_sub(br, c, t, false);
		else if (bc->attempt_unsubscribe)
			send_sub(br, c, t, true); /* it may have been an `in` topic before */
	}
	for (int i = 0; i < bc->n_topics; i++) {
		const mg_bridge_topic *t = &bc->topics[i];
		if (t->dir & MG_BRIDGE_OUT) {
			owe_ctx o = { br, t->qos };
			mg_retain_match(w->b->retain, (const uint8_t *)t->local_topic, strlen(t->local_topic),
			                owe_retained, &o);
		}
	}
	mg_session_resend(w, s);
	mg_session_pump(w, s);
}

static int handle_connack(mg_bridge *br, mg_conn *c, const mg_packet *p)
{
	mg_log(MG_LOG_DEBUG, "Received CONNACK on connection %s.", c->id);
	uint8_t rc = p->reason_code;
	if (rc == 0 && !live_session(br)) {
		mg_log(MG_LOG_NOTICE, "Bridge %s: a client connected as %s meanwhile; the bridge waits "
		       "until it has gone.", br->conf->name, br->conf->local_clientid);
		mg_conn_close(c, MG_CLOSE_REFUSED);
		return -1;
	}
	if (rc == 0) {
		bridge_up(br, c, p);
		return 0;
	}
	if (br->level == MG_V5 && rc == MG_CONNACK_BAD_PROTOCOL && p->size == 4) {
		/* a 3.x broker answered in 3.x: mosquitto goes on in 3.1.1 */
		mg_log(MG_LOG_NOTICE, "Warning: Remote bridge %s does not support MQTT v5.0, reconnecting using MQTT v3.1.1.",
		       br->conf->name);
		br->level = MG_V311;
	} else if (br->level == MG_V5) {
		mg_log(MG_LOG_ERR, "Connection Refused: %s", mg_reason_name(rc, MG_CONNACK));
	} else {
		if (rc == MG_CONNACK_BAD_PROTOCOL)
			br->private_ok = false; /* next time without the bridge bit */
		mg_log(MG_LOG_ERR, "Connection Refused: %s", refused_text(rc));
	}
	mg_conn_close(c, MG_CLOSE_REFUSED);
	return -1;
}

/* ---- what conn.c and session.c call ---- */

int mg_bridge_packet(mg_conn *c, const mg_packet *p)
{
	mg_bridge *br = bridge_of(c);
	if (!br) {
		mg_conn_close(c, MG_CLOSE_PROTOCOL);
		return -1;
	}
	if (c->state == MG_CS_NEW) {
		if (p->type == MG_CONNACK)
			return handle_connack(br, c, p);
		mg_log(MG_LOG_INFO, "Protocol error from bridge %s: %s before CONNACK.", br->conf->name,
		       mg_ptype_name(p->type));
		mg_conn_close(c, MG_CLOSE_PROTOCOL);
		return -1;
	}
	switch (p->type) {
	case MG_SUBACK:
		mg_log(MG_LOG_DEBUG, "Received SUBACK from %s", c->id);
		return 0;
	case MG_UNSUBACK:
		mg_log(MG_LOG_DEBUG, "Received UNSUBACK from %s", c->id);
		return 0;
	case MG_PINGRESP:
		mg_log(MG_LOG_DEBUG, "Received PINGRESP from %s", c->id);
		return 0;
	case MG_DISCONNECT:
		mg_log(MG_LOG_NOTICE, "Bridge %s: the remote disconnected (%s).", br->conf->name,
		       mg_reason_name(p->reason_code, MG_DISCONNECT));
		mg_conn_close(c, MG_CLOSE_EOF);
		return -1;
	case MG_PUBLISH: {
		br->last_pub = mg_loop_now_ms(br->w->loop);
		mg_bridge_map m;
		const mg_publish *pub = &p->u.publish;
		if (mg_bridge_map_topic(br->conf, false, pub->topic.p, pub->topic.len, &m) < 0)
			return mg_handle_packet(c, p);
		uint8_t buf[256], *heap = NULL;
		size_t n = m.add_len + pub->topic.len - m.strip;
		uint8_t *at = n <= sizeof buf ? buf : (heap = malloc(n ? n : 1));
		if (!at)
			return mg_proto_err(c, MG_RC_UNSPECIFIED, "out of memory");
		mg_packet q = *p;
		q.u.publish.topic = (mg_bytes){ at, (uint32_t)mg_bridge_map_apply(&m, pub->topic.p, pub->topic.len, at, n) };
		int r = mg_handle_packet(c, &q);
		free(heap);
		return r;
	}
	case MG_PUBACK:
	case MG_PUBREC:
	case MG_PUBREL:
	case MG_PUBCOMP:
		return mg_handle_packet(c, p);
	default:
		return mg_proto_err(c, MG_RC_PROTOCOL_ERROR, "unexpected packet from the remote of a bridge");
	}
}

void mg_bridge_closed(mg_conn *c)
{
	mg_bridge *br = bridge_of(c);
	if (!br)
		return;
	bool was_up = br->up;
	br->c = NULL;
	br->up = false;
	if (br->probe_fd >= 0) {
		close(br->probe_fd);
		br->probe_fd = -1;
	}
	br->primary_at = 0;
	if (br->rs && br->rs_probe)
		br->rs_stale = true; /* the first address is no longer a question */
	if (was_up && br->conf->notifications)
		publish_state_local(br, '0'); /* mosquitto publishes the bridge's will locally too */
	if (br->conf->start_type == MG_BRIDGE_START_ONCE)
		br->once_done = true;
	plan_restart(br);
}

mg_bytes mg_bridge_out_topic(mg_conn *c, mg_bytes t, bool *retain, uint8_t *buf, size_t cap,
                             uint8_t **heap)
{
	*heap = NULL;
	mg_bridge *br = bridge_of(c);
	if (!br)
		return (mg_bytes){ 0 };
	br->last_pub = mg_loop_now_ms(br->w->loop);
	if (!br->conf->outgoing_retain || !br->retain_ok)
		*retain = false;
	mg_bridge_map m;
	if (mg_bridge_map_topic(br->conf, true, t.p, t.len, &m) < 0)
		return t;
	size_t n = m.add_len + t.len - m.strip;
	uint8_t *at = n <= cap ? buf : (*heap = malloc(n ? n : 1));
	if (!at)
		return (mg_bytes){ 0 };
	n = mg_bridge_map_apply(&m, t.p, t.len, at, n);
	return n ? (mg_bytes){ at, (uint32_t)n } : (mg_bytes){ 0 };
}

/* ---- the tick: start, restart, keepalive, idle, the first address back ---- */

/* primary_check's connect to the first address, found. */
static void probe_start(mg_bridge *br, const struct addrinfo *ai, const struct addrinfo *bind_ai,
                        int64_t now)
{
	br->probe_fd = connect_ai(ai, bind_ai);
	if (br->probe_fd < 0) {
		br->probe_fd = -1;
		br->primary_at = now + PRIMARY_RETRY_MS;
	}
}

/* round_robin false and on a later address: every 5 s, is the first one there again? Then
 * the bridge goes back to it, as mosquitto does. */
static void primary_check(mg_bridge *br, int64_t now)
{
	const mg_bridge_conf *bc = br->conf;
	if (bc->round_robin || br->cur == 0 || bc->n_addrs < 2)
		return;
	if (!br->primary_at) {
		br->primary_at = now + PRIMARY_RETRY_MS;
		return;
	}
	if (br->probe_fd >= 0) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(br->probe_fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof ss;
			if (getpeername(br->probe_fd, (struct sockaddr *)&ss, &sl) != 0)
				return; /* still connecting */
			close(br->probe_fd);
			br->probe_fd = -1;
			mg_conn_disconnect(br->c, MG_RC_SUCCESS, MG_CLOSE_DISCONNECT); /* plans a restart */
			br->cur = 0;
			br->restart_at = now; /* at once, to the first address */
			return;
		}
		close(br->probe_fd);
		br->probe_fd = -1;
		br->primary_at = now + PRIMARY_RETRY_MS;
		return;
	}
	if (now < br->primary_at || br->rs)
		return; /* a lookup of the first address is running (resolve_step collects it) */
	struct addrinfo *ai = NULL, *bind_ai = NULL;
	int r = resolve_begin(br, 0, true, &ai, &bind_ai);
	if (r < 0)
		br->primary_at = now + PRIMARY_RETRY_MS;
	if (r > 0)
		probe_start(br, ai, bind_ai, now);
	free_ai(ai, bind_ai);
}

/* A lookup was running: 1 when the bridge is busy with it and the tick stops here. */
static int resolve_tick(mg_bridge *br, int64_t now)
{
	struct addrinfo *ai = NULL, *bind_ai = NULL;
	bool probe = br->rs_probe;
	int r = resolve_step(br, now, &ai, &bind_ai);
	if (r > 0) {
		if (probe)
			probe_start(br, ai, bind_ai, now);
		else
			bridge_connect_to(br, ai, bind_ai);
		free_ai(ai, bind_ai);
	} else if (r < 0) {
		if (probe)
			br->primary_at = now + PRIMARY_RETRY_MS;
		else
			plan_restart(br);
	} else if (!br->rs || br->rs_stale) {
		return 0; /* nothing wanted runs: on as without it */
	}
	return !probe; /* a probe's lookup leaves the up bridge's keepalive to go on */
}

static void bridge_tick(mg_loop *l, void *ud)
{
	mg_bridge *br = ud;
	const mg_bridge_conf *bc = br->conf;
	int64_t now = mg_loop_now_ms(l);
	if (br->w->stopping)
		return;
	if (!br->s && (br->s = bridge_session(br)))
		br->ref = br->s->ref;
	if (!live_session(br))
		return; /* none yet, or a client holds local_clientid: later */
	if (br->to_store)
		bridge_store(br);
	if (br->rs && resolve_tick(br, now))
		return;
	mg_conn *c = br->c;
	if (c) {
		if (!br->up)
			return; /* the worker's tick ends a connect that takes too long */
		/* idle: no PUBLISH either way for idle_timeout, and nothing waits for an ack or to go
		 * (closing then would resend it as a duplicate on the next start) */
		if (bc->start_type == MG_BRIDGE_START_LAZY && now - br->last_pub >= (int64_t)bc->idle_timeout * 1000 &&
		    br->s->flight.n == 0 && !mg_session_pending(br->s)) {
			mg_log(MG_LOG_NOTICE, "Bridge connection %s has exceeded idle timeout, disconnecting.", c->id);
			mg_conn_disconnect(c, MG_RC_SUCCESS, MG_CLOSE_DISCONNECT);
			return;
		}
		if (c->keepalive && now - c->last_rx >= (int64_t)c->keepalive * 1000 &&
		    now - br->last_ping >= (int64_t)c->keepalive * 1000) {
			mg_packet ping = { .type = MG_PINGREQ };
			mg_log(MG_LOG_DEBUG, "Sending PINGREQ to %s", c->id);
			mg_conn_send(c, &ping);
			br->last_ping = now;
		}
		primary_check(br, now);
		return;
	}
	switch (bc->start_type) {
	case MG_BRIDGE_START_ONCE:
		if (br->once_done)
			return;
		break;
	case MG_BRIDGE_START_LAZY:
		if (br->s->queue.n + br->s->flight.n < (size_t)bc->threshold)
			return;
		break;
	default:
		if (now < br->restart_at)
			return;
	}
	bridge_connect(br);
}

/* ---- set up and tear down ---- */

static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity, unsigned int max_id,
                                  unsigned char *psk, unsigned int max_psk)
{
	(void)hint;
	const mg_bridge_conf *bc = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (!bc || !bc->identity || !bc->psk || strlen(bc->identity) >= max_id)
		return 0;
	strcpy(identity, bc->identity);
	size_t hl = strlen(bc->psk);
	if (hl % 2 || hl / 2 > max_psk)
		return 0;
	for (size_t i = 0; i < hl / 2; i++) {
		unsigned v;
		if (sscanf(bc->psk + 2 * i, "%2x", &v) != 1)
			return 0;
		psk[i] = (unsigned char)v;
	}
	return (unsigned int)(hl / 2);
}

static int tls_version(const char *v)
{
	if (!v)
		return 0;
	if (strcmp(v, "tlsv1.3") == 0)
		return TLS1_3_VERSION;
	if (strcmp(v, "tlsv1.2") == 0)
		return TLS1_2_VERSION;
	return -1;
}

/* The issuer of the remote's certificate: in the chain it sent, else in our CA store. The
 * caller frees it. */
static X509 *issuer_of(X509 *cert, STACK_OF(X509) *chain, X509_STORE *st)
{
	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *c = sk_X509_value(chain, i);
		if (X509_check_issued(c, cert) == X509_V_OK && X509_up_ref(c))
			return c;
	}
	X509 *iss = NULL;
	X509_STORE_CTX *sc = X509_STORE_CTX_new();
	if (sc && X509_STORE_CTX_init(sc, st, cert, chain) == 1)
		if (X509_STORE_CTX_get1_issuer(&iss, sc, cert) != 1)
			iss = NULL;
	X509_STORE_CTX_free(sc);
	return iss;
}

/* bridge_require_ocsp: the remote must staple an OCSP response (RFC 6066 status_request),
 * signed for our CA store, that says its certificate is good and is current (5 minutes of
 * leeway, as mosquitto). Unlike mosquitto (which looks at every status in the response), the
 * status must be the one for the certificate the remote presented. 0 fails the handshake.
 * Log lines are mosquitto's (lib/net_mosq_ocsp.c), as errors: they say why the bridge does
 * not come up. */
static int ocsp_check(SSL *ssl, void *arg)
{
	const mg_bridge *br = arg;
	const unsigned char *p = NULL;
	long len = SSL_get_tlsext_status_ocsp_resp(ssl, &p);
	OCSP_RESPONSE *rsp = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_CERTID *id = NULL;
	X509 *iss = NULL;
	int ok = 0, st, reason;
	ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;
	X509 *peer = SSL_get0_peer_certificate(ssl);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	X509_STORE *store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
	if (!p || len <= 0) {
		mg_log(MG_LOG_ERR, "Bridge %s: OCSP: no response (bridge_require_ocsp true).", br->conf->name);
		goto end;
	}
	if (!(rsp = d2i_OCSP_RESPONSE(NULL, &p, len)) || !(bs = OCSP_response_get1_basic(rsp))) {
		mg_log(MG_LOG_ERR, "Bridge %s: OCSP: invalid response", br->conf->name);
		goto end;
	}
	if ((st = OCSP_response_status(rsp)) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		mg_log(MG_LOG_ERR, "Bridge %s: OCSP: invalid status: %s (%d)", br->conf->name,
		       OCSP_response_status_str(st), st);
		goto end;
	}
	if (!peer || (st = OCSP_basic_verify(bs, chain, store, 0)) <= 0) {
		mg_log(MG_LOG_ERR, "Bridge %s: OCSP: response verification failed (error: %d)", br->conf->name, st);
		goto end;
	}
	if (!(iss = issuer_of(peer, chain, store)) || !(id = OCSP_cert_to_id(NULL, peer, iss)) ||
	    OCSP_resp_find_status(bs, id, &st, &reason, &rev, &thisupd, &nextupd) != 1) {
		mg_log(MG_LOG_ERR, "Bridge %s: OCSP: no status for the remote's certificate", br->conf->name);
		goto end;
	}
	if (st != V_OCSP_CERTSTATUS_GOOD) {
		mg_log(MG_LOG_ERR, "Bridge %s: OCSP: SSL certificate status: %s (%d)", br->conf->name,
		       OCSP_cert_status_str(st), st);
		if (st == V_OCSP_CERTSTATUS_REVOKED)
			mg_log(MG_LOG_ERR, "Bridge %s: OCSP: SSL certificate revocation reason: %s (%d)",
			       br->conf->name, OCSP_crl_reason_str(reason), reason);
		goto end;
	}
	if (!OCSP_check_validity(thisupd, nextupd, 300L, -1L)) {
		mg_log(MG_LOG_ERR, "Bridge %s: OCSP: OCSP response has expired", br->conf->name);
		goto end;
	}
	mg_log(MG_LOG_DEBUG, "Bridge %s: OCSP: SSL certificate status: good (0)", br->conf->name);
	ok = 1;
end:
	OCSP_CERTID_free(id);
	X509_free(iss);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(rsp);
	return ok;
}

/* mosquitto runs a bridge over TLS when it has bridge_cafile, bridge_capath or bridge_psk. */
static int make_tls(mg_bridge *br)
{
	const mg_bridge_conf *bc = br->conf;
	if (!bc->cafile && !bc->capath && !bc->psk)
		return 0;
	SSL_CTX *ctx = mg_tls_ctx_new(MG_TLS_CLIENT);
	if (!ctx)
		return -ENOMEM;
	int v = tls_version(bc->tls_version);
	const char *what = NULL;
	if (v < 0)
		what = "bridge_tls_version (tlsv1.2 or tlsv1.3)";
	else if (v && (!SSL_CTX_set_min_proto_version(ctx, v) || !SSL_CTX_set_max_proto_version(ctx, v)))
		what = "bridge_tls_version";
	else if ((bc->cafile || bc->capath) && SSL_CTX_load_verify_locations(ctx, bc->cafile, bc->capath) != 1)
		what = bc->cafile ? "bridge_cafile" : "bridge_capath";
	else if (bc->certfile && SSL_CTX_use_certificate_chain_file(ctx, bc->certfile) != 1)
		what = "bridge_certfile";
	else if (bc->keyfile && SSL_CTX_use_PrivateKey_file(ctx, bc->keyfile, SSL_FILETYPE_PEM) != 1)
		what = "bridge_keyfile";
	if (!what && bc->alpn) { /* one protocol, in ALPN's wire form: length, then the name */
		size_t n = strlen(bc->alpn);
		unsigned char wire[256];
		if (n == 0 || n > 255) {
			what = "bridge_alpn (1 to 255 characters)";
		} else {
			wire[0] = (unsigned char)n;
			memcpy(wire + 1, bc->alpn, n);
			if (SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)n + 1) != 0)
				what = "bridge_alpn";
		}
	}
	if (!what && bc->require_ocsp &&
	    (!SSL_CTX_set_tlsext_status_type(ctx, TLSEXT_STATUSTYPE_ocsp) ||
	     !SSL_CTX_set_tlsext_status_cb(ctx, ocsp_check) || !SSL_CTX_set_tlsext_status_arg(ctx, br)))
		what = "bridge_require_ocsp";
	if (what) {
		mg_log(MG_LOG_ERR, "Error: bridge %s (%s:%d): unable to load %s.", bc->name, bc->file, bc->line, what);
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	if (bc->psk) {
		SSL_CTX_set_app_data(ctx, (void *)bc);
		SSL_CTX_set_psk_client_callback(ctx, psk_client_cb);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	br->tls = ctx;
	return 0;
}

int mg_bridges_init(mg_broker *b)
{
	const mg_config *cfg = b->cfg;
	if (!cfg->n_bridges)
		return 0;
	b->bridges = calloc((size_t)cfg->n_bridges, sizeof *b->bridges);
	if (!b->bridges)
		return -ENOMEM;
	b->n_bridges = cfg->n_bridges;
	for (int i = 0; i < cfg->n_bridges; i++) {
		mg_bridge *br = &b->bridges[i];
		const mg_bridge_conf *bc = &cfg->bridges[i];
		br->conf = bc;
		int owner = -1; /* a session restored from the store stays on its worker */
		mg_registry_find(b, bc->local_clientid, strlen(bc->local_clientid), -1, &owner);
		br->w = &b->w[owner >= 0 && owner < b->nworkers ? owner : i % b->nworkers];
		br->level = bc->protocol;
		br->private_ok = true;
		br->retain_ok = true;
		br->probe_fd = -1;
		br->restart_timeout = bc->backoff_cap ? bc->backoff_base : bc->restart_timeout;
		if (bc->notification_topic) {
			br->state_topic = strdup(bc->notification_topic);
		} else {
			size_t n = strlen(bc->remote_clientid) + 32;
			if ((br->state_topic = malloc(n)))
				snprintf(br->state_topic, n, "$SYS/broker/connection/%s/state", bc->remote_clientid);
		}
		if (!br->state_topic)
			return -ENOMEM;
		int r = make_tls(br);
		if (r < 0)
			return r;
		/* the session and its local subscriptions now, before any client is served: a message
		 * published at once is already the bridge's (threads are not running yet) */
		if ((br->s = bridge_session(br)))
			br->ref = br->s->ref;
		if (mg_loop_timer(br->w->loop, 1, TICK_MS, bridge_tick, br) < 0)
			return -ENOMEM;
	}
	return 0;
}

void mg_bridges_free(mg_broker *b)
{
	for (int i = 0; i < b->n_bridges; i++) {
		mg_bridge *br = &b->bridges[i];
		free(br->state_topic);
		SSL_CTX_free(br->tls);
		if (br->probe_fd >= 0)
			close(br->probe_fd);
		mg_resolve_drop(br->rs); /* a running helper frees it when its lookup ends */
	}
	free(b->bridges);
	b->bridges = NULL;
	b->n_bridges = 0;
}
