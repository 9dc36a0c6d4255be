/* client/conn.c - opening and closing a connection: name lookup, non-blocking TCP connect over
 * each address in turn, CONNECT, DISCONNECT, and what a closed connection leaves behind. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

/* Blocking (as paho's connect is): called without mu. */
int mgc_resolve(const char *host, int port, struct addrinfo **out)
{
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	int rc = getaddrinfo(host, ps, &hints, out);
	if (rc == EAI_SYSTEM)
		return MIDGE_ERR_ERRNO;
	if (rc == EAI_MEMORY)
		return MIDGE_ERR_NOMEM;
	return rc ? MIDGE_ERR_LOOKUP : MIDGE_OK;
}

/* Start a TCP connect to the next address: MIDGE_OK with state MG_S_TCP (in progress) or
 * with the transport ready; MIDGE_ERR_ERRNO (errno kept) when no address is left. */
static int try_next(midge_client *c)
{
	int err = ECONNREFUSED;
	while (c->ai_next) {
		struct addrinfo *a = c->ai_next;
		c->ai_next = a->ai_next;
		int fd = mg_plat_tcp_socket(a->ai_family);
		if (fd < 0) {
			err = -fd;
			continue;
		}
		if (c->bind_ai) {
			/* connect_bind: the first local address of this address's family */
			struct addrinfo *b = c->bind_ai;
			while (b && b->ai_family != a->ai_family)
				b = b->ai_next;
			int r = b ? mg_plat_bind(fd, b->ai_addr, b->ai_addrlen) : -EAFNOSUPPORT;
			if (r != 0) {
				err = -r;
				mg_plat_close(fd);
				continue;
			}
		}
		int r = mg_plat_connect(fd, a->ai_addr, a->ai_addrlen);
		if (r == 0 || r == -EINPROGRESS) {
			mg_tcp_init(&c->tr, fd);
			return MIDGE_OK;
		}
		err = -r;
		mg_plat_close(fd);
	}
	errno = err;
	return MIDGE_ERR_ERRNO;
}

int mgc_tcp_progress(midge_client *c)
{
	int err = mg_plat_sock_error(c->tr.fd);
	if (err == 0) {
		c->state = MG_S_CONNACK;
		freeaddrinfo(c->ai);
		c->ai = c->ai_next = NULL;
		if (c->proxy_host)
			mgc_socks_begin(c); /* TLS, if any, starts once the proxy has connected us */
		else if (mgc_tls_on(c))
			return mgc_tls_begin(c); /* then WebSocket, if any (tls.c) */
		else if (mgc_ws_on(c))
			return mgc_ws_begin(c);
		return MIDGE_OK;
	}
	mg_transport_close(&c->tr);
	int rc = try_next(c);
	if (rc != MIDGE_OK)
		errno = err;
	return rc;
}

static mg_bytes bytes_of(const char *s)
{
	return (mg_bytes){ (const uint8_t *)s, s ? (uint32_t)strlen(s) : 0 };
}

static int encode_connect(midge_client *c)
{
	mgc_wprops cp, wp;
	bool v5 = c->level == MIDGE_PROTOCOL_V5;
	int rc = mgc_wprops_make(&cp, v5 ? c->connect_props : NULL, MG_CONNECT);
	if (rc)
		return rc;
	if ((rc = mgc_wprops_make(&wp, v5 && c->will ? c->will_props : NULL, MG_PTYPE_WILL))) {
		mgc_wprops_free(&cp);
		return rc;
	}
	mg_packet p;
	memset(&p, 0, sizeof(p));
	p.type = MG_CONNECT;
	mg_connect *k = &p.u.connect;
	k->level = c->level;
	k->protocol_name = bytes_of(c->level == MIDGE_PROTOCOL_V31 ? "MQIsdp" : "MQTT");
	/* 5.0, as paho's MQTT_CLEAN_START_FIRST_ONLY: the loop's own reconnects resume the session
	 * (it matters when a Session Expiry Interval keeps one). 3.x: clean session is the
	 * session's lifetime, so it never changes. */
	k->clean = v5 ? c->clean_start && !(c->reconnecting && c->connected_once) : c->clean_session;
	k->keepalive = (uint16_t)c->keepalive;
	k->client_id = bytes_of(c->id ? c->id : "");
	if (c->will) {
		k->will = true;
		k->will_qos = c->will_qos;
		k->will_retain = c->will_retain;
		k->will_props = wp.p;
		k->will_topic = bytes_of(c->will_topic);
		k->will_payload = (mg_bytes){ c->will_payload, (uint32_t)c->will_len };
	}
	if (c->username) {
		k->has_username = true;
		k->username = bytes_of(c->username);
	}
	if (c->password) {
		k->has_password = true;
		k->password = bytes_of(c->password);
	}
	p.props = cp.p;
	rc = mgc_send_packet(c, &p);
	mgc_wprops_free(&cp);
	mgc_wprops_free(&wp);
	if (rc == MIDGE_OK)
		mgc_log(c, MIDGE_LOG_DEBUG, "Client %s sending CONNECT", mgc_cid(c));
	return rc;
}

/* Our own limits for this connection, from the CONNECT properties. */
static int take_our_limits(midge_client *c)
{
	uint32_t v;
	c->max_packet_in = 0;
	if (midge_properties_get_int(c->connect_props, MIDGE_PROP_MAXIMUM_PACKET_SIZE, &v) == MIDGE_OK)
		c->max_packet_in = v;
	/* 3.1.1 has no Receive Maximum: the 65535 packet ids bound the held QoS 2 messages. */
	c->recv_max = 65535;
	if (c->level == MIDGE_PROTOCOL_V5 &&
	    midge_properties_get_int(c->connect_props, MIDGE_PROP_RECEIVE_MAXIMUM, &v) == MIDGE_OK && v)
		c->recv_max = (uint16_t)v;
	for (int i = 0; c->alias_in && i <= c->alias_max_in; i++)
		free(c->alias_in[i]);
	free(c->alias_in);
	c->alias_in = NULL;
	c->alias_max_in = 0;
	if (midge_properties_get_int(c->connect_props, MIDGE_PROP_TOPIC_ALIAS_MAXIMUM, &v) == MIDGE_OK && v) {
		c->alias_in = calloc(v + 1u, sizeof(char *));
		if (!c->alias_in)
			return MIDGE_ERR_NOMEM;
		c->alias_max_in = (uint16_t)v;
	}
	return MIDGE_OK;
}

/* Under mu, state NEW or IDLE, c->host etc. set; takes ownership of ai. */
int mgc_start_connect(midge_client *c, struct addrinfo *ai)
{
	if (c->ai)
		freeaddrinfo(c->ai);
	c->ai = c->ai_next = ai;
	c->olen = c->ooff = 0;
	c->socks_phase = 0;
	c->soutlen = c->soutoff = c->sinlen = 0;
	c->tls_hs = false;
	c->ws_hs = false;
	c->srv_receive_max = 65535;
	c->srv_max_packet = 0;
	c->srv_alias_max = 0;
	c->srv_max_qos = 2;
	c->srv_retain = true;
	c->ping_out = false;
	c->ka = (uint16_t)c->keepalive;
	c->connect_done = false;
	c->user_disconnect = false;
	c->conn_gen++;
	c->connect_start_ms = c->last_in_ms = c->last_out_ms = mgc_cl_now_ms();
	int rc = take_our_limits(c);
	if (rc == MIDGE_OK)
		rc = try_next(c);
	if (rc == MIDGE_OK) {
		/* CONNECT goes into obuf now, so anything sent before the TCP handshake ends (a
		 * SUBSCRIBE right after connect_async) follows it. */
		c->state = MG_S_TCP;
		rc = encode_connect(c);
		if (rc != MIDGE_OK)
			mg_transport_close(&c->tr);
	}
	if (rc != MIDGE_OK) {
		int e = errno;
		freeaddrinfo(c->ai);
		c->ai = c->ai_next = NULL;
		c->state = MG_S_IDLE;
		c->olen = c->ooff = 0;
		errno = e;
	}
	c->notify = true;
	return rc;
}

/* Packet ids still in use after a connection ends: those of messages in flight (kept for the
 * session's resend). The (UN)SUBSCRIBEs that never got their ack are forgotten, with their
 * ids. */
static void rebuild_pids(midge_client *c)
{
	mgc_psub_clear(c);
	memset(c->pid_used, 0, sizeof(c->pid_used));
	for (mgc_cmsg *m = c->m_head; m; m = m->next)
		if (m->pid)
			c->pid_used[m->pid >> 3] |= (uint8_t)(1u << (m->pid & 7));
}

void mgc_conn_close(midge_client *c, int flags, int reason, midge_properties *props)
{
	int was = c->state;
	if (c->tr.fd >= 0)
		mg_transport_close(&c->tr);
	if (c->ai)
		freeaddrinfo(c->ai);
	c->ai = c->ai_next = NULL;
	c->state = MG_S_IDLE;
	c->olen = c->ooff = 0;
	mg_framer_drop(&c->in);
	c->socks_phase = 0;
	c->soutlen = c->soutoff = c->sinlen = 0;
	c->tls_hs = false;
	c->tr_ww = false;
	c->ws_hs = false;
	c->ping_out = false;
	/* QoS 0 messages still in obuf are gone: say nothing about them (paho does the same). */
	for (mgc_q0 *q = c->q0_head, *n; q; q = n) {
		n = q->next;
		free(q);
	}
	c->q0_head = c->q0_tail = NULL;
	rebuild_pids(c);
	c->notify = true;
	if (was == MG_S_TCP || was == MG_S_CONNACK) {
		/* The connect attempt failed (or was cancelled by midge_disconnect). */
		c->connect_done = true;
		c->connack_rc = reason < 0 ? reason : MIDGE_ERR_CONN_LOST;
		if (c->user_disconnect)
			mgc_event_push(c, MG_EV_DISCONNECT, flags, reason, NULL, 0, props);
		else {
			midge_properties_free(props);
			mgc_event_push(c, MG_EV_CONNECT_FAIL, c->connack_rc, 0, NULL, 0, NULL);
		}
		return;
	}
	if (was == MG_S_UP || was == MG_S_CLOSING)
		mgc_event_push(c, MG_EV_DISCONNECT, flags, reason, NULL, 0, props);
	else
		midge_properties_free(props);
}

/* Queue DISCONNECT and move to CLOSING; the loop closes once it is written. Under mu. */
int mgc_begin_disconnect(midge_client *c, int reason, const midge_properties *props)
{
	if (c->state == MG_S_NEW || c->state == MG_S_IDLE) {
		/* A running loop_forever / loop_start thread waiting to reconnect: stop that (the
		 * usual way to end it from on_disconnect or another thread). */
		if (c->loop_owner_set && c->auto_reconnect) {
			c->user_disconnect = true;
			c->auto_reconnect = false;
			c->notify = true;
			if (!mgc_in_loop_thread(c))
				mgc_wake(c);
			return MIDGE_OK;
		}
		/* Otherwise not connected is an error, and nothing changes: a later loop_forever
		 * still reconnects. */
		return MIDGE_ERR_NO_CONN;
	}
	c->user_disconnect = true;
	c->auto_reconnect = false;
	c->notify = true;
	if (c->state == MG_S_CLOSING)
		return MIDGE_OK;
	c->disc_reason = reason;
	c->closing_ms = mgc_cl_now_ms();
	if (c->state == MG_S_TCP) {
		/* Nothing went out yet: drop the attempt. */
		c->state = MG_S_CLOSING;
		c->olen = c->ooff = 0;
		return MIDGE_OK;
	}
	mgc_wprops w;
	int rc = mgc_wprops_make(&w, c->level == MIDGE_PROTOCOL_V5 ? props : NULL, MG_DISCONNECT);
	if (rc)
		return rc;
	mg_packet p;
	memset(&p, 0, sizeof(p));
	p.type = MG_DISCONNECT;
	p.reason_code = (uint8_t)reason;
	p.props = w.p;
	rc = mgc_send_packet(c, &p);
	mgc_wprops_free(&w);
	if (rc == MIDGE_OK)
		mgc_log(c, MIDGE_LOG_DEBUG, "Client %s sending DISCONNECT", mgc_cid(c));
	c->state = MG_S_CLOSING;
	if (!mgc_in_loop_thread(c))
		mgc_wake(c);
	return MIDGE_OK;
}
