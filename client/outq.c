/* client/outq.c - the way out: the output buffer, packet ids, and outbound PUBLISH messages
 * (sent now, or queued for the inflight window or for a connection, and resent after a
 * reconnect). Everything here runs under mu. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

/* ---- obuf ---- */

int mgc_obuf_reserve(midge_client *c, size_t n)
{
	if (c->ooff && c->ooff == c->olen)
		c->ooff = c->olen = 0;
	if (c->ocap - c->olen >= n)
		return MIDGE_OK;
	if (c->ooff) { /* slide what is left to the front before growing */
		memmove(c->obuf, c->obuf + c->ooff, c->olen - c->ooff);
		c->olen -= c->ooff;
		c->ooff = 0;
		if (c->ocap - c->olen >= n)
			return MIDGE_OK;
	}
	size_t cap = c->ocap ? c->ocap : 4096;
	while (cap - c->olen < n)
		cap *= 2;
	uint8_t *b = realloc(c->obuf, cap);
	if (!b)
		return MIDGE_ERR_NOMEM;
	c->obuf = b;
	c->ocap = cap;
	return MIDGE_OK;
}

bool mgc_in_loop_thread(midge_client *c)
{
	return c->loop_owner_set && pthread_equal(c->loop_owner, pthread_self());
}

int mgc_send_packet(midge_client *c, const mg_packet *pkt)
{
	/* Nothing may follow our DISCONNECT [MQTT-3.14.4-1], and nothing goes out unconnected. */
	if (c->state == MG_S_NEW || c->state == MG_S_IDLE ||
	    (c->state == MG_S_CLOSING && pkt->type != MG_DISCONNECT))
		return MIDGE_ERR_NO_CONN;
	size_t size = mg_encode(NULL, 0, c->level, pkt);
	if (size == 0)
		return pkt->type == MG_PUBLISH ? MIDGE_ERR_PAYLOAD_SIZE : MIDGE_ERR_INVAL;
	if (c->srv_max_packet && size > c->srv_max_packet)
		return MIDGE_ERR_OVERSIZE_PACKET;
	int rc = mgc_obuf_reserve(c, size);
	if (rc)
		return rc;
	bool was_empty = c->olen == c->ooff;
	mg_encode(c->obuf + c->olen, size, c->level, pkt);
	c->olen += size;
	c->out_queued += size;
	/* The loop may sleep in poll(2) without POLLOUT: tell it. */
	if (was_empty && !mgc_in_loop_thread(c))
		mgc_wake(c);
	return MIDGE_OK;
}

int mgc_send_simple(midge_client *c, int type, uint16_t id, uint8_t reason)
{
	mg_packet p;
	memset(&p, 0, sizeof(p));
	p.type = (uint8_t)type;
	p.packet_id = id;
	p.reason_code = reason;
	return mgc_send_packet(c, &p);
}

/* ---- message ids and packet identifiers ---- */

static bool bit_get(const uint8_t *m, uint16_t i)
{
	return m[i >> 3] & (1u << (i & 7));
}
static void bit_set(uint8_t *m, uint16_t i)
{
	m[i >> 3] |= (uint8_t)(1u << (i & 7));
}
static void bit_clr(uint8_t *m, uint16_t i)
{
	m[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

static bool mid_pending(midge_client *c, int mid);

/* A packet id not in use. O(1) while ids are plentiful; a full scan only when almost all
 * 65535 are in flight. */
int mgc_pid_alloc(midge_client *c)
{
	for (int i = 0; i < 65535; i++) {
		c->last_pid = c->last_pid == 65535 ? 1 : (uint16_t)(c->last_pid + 1);
		if (!bit_get(c->pid_used, c->last_pid)) {
			bit_set(c->pid_used, c->last_pid);
			return c->last_pid;
		}
	}
	return MIDGE_ERR_QUEUE_FULL;
}

void mgc_pid_release(midge_client *c, uint16_t pid)
{
	if (pid)
		bit_clr(c->pid_used, pid);
}

/* The next message id. After the counter wraps (2^31-1 ids later) an id whose message or
 * (UN)SUBSCRIBE is still pending is skipped, so on_publish(mid) always means the message
 * that midge_publish returned mid for. That check is O(pending), paid only after a wrap. */
int mgc_mid_new(midge_client *c)
{
	for (;;) {
		if (c->last_mid == INT_MAX) {
			c->last_mid = 0;
			c->mid_wrapped = true;
		}
		int mid = ++c->last_mid;
		if (!c->mid_wrapped || !mid_pending(c, mid))
			return mid;
	}
}

/* Remember that mid was dropped with err. Bounded: the oldest record goes first. */
static void mid_fail(midge_client *c, int mid, int err)
{
	if (!c->failed) {
		c->failed = malloc(MG_FAILED_MAX * sizeof(*c->failed));
		if (!c->failed)
			return;
	}
	if (c->n_failed == MG_FAILED_MAX) {
		memmove(c->failed, c->failed + 1, (MG_FAILED_MAX - 1) * sizeof(*c->failed));
		c->n_failed--;
	}
	c->failed[c->n_failed].mid = mid;
	c->failed[c->n_failed].err = err;
	c->n_failed++;
}

int mgc_mid_failed(midge_client *c, int mid)
{
	for (int i = c->n_failed - 1; i >= 0; i--)
		if (c->failed[i].mid == mid)
			return c->failed[i].err;
	return 0;
}

/* ---- messages ---- */

void mgc_msg_free(mgc_cmsg *m)
{
	if (!m)
		return;
	free(m->topic);
	free(m->payload);
	midge_properties_free(m->props);
	free(m);
}

static void list_append(midge_client *c, mgc_cmsg *m)
{
	m->next = NULL;
	m->prev = c->m_tail;
	if (c->m_tail)
		c->m_tail->next = m;
	else
		c->m_head = m;
	c->m_tail = m;
	if (!c->m_queued)
		c->m_queued = m; /* appended messages are queued ones */
}

void mgc_msg_remove(midge_client *c, mgc_cmsg *m)
{
	if (c->m_queued == m)
		c->m_queued = m->next;
	if (m->prev)
		m->prev->next = m->next;
	else
		c->m_head = m->next;
	if (m->next)
		m->next->prev = m->prev;
	else
		c->m_tail = m->prev;
	if (m->state == MG_M_QUEUED)
		c->n_queued--;
	else
		c->n_inflight--;
	mgc_pid_release(c, m->pid);
	m->pid = 0;
}

/* In-flight messages come before queued ones (the queue is sent from its front), so the scan
 * stops at the first queued message: O(in flight). */
mgc_cmsg *mgc_msg_find(midge_client *c, uint16_t pid)
{
	for (mgc_cmsg *m = c->m_head; m && m->state != MG_M_QUEUED; m = m->next)
		if (m->pid == pid)
			return m;
	return NULL;
}

void mgc_outq_clear(midge_client *c)
{
	for (mgc_cmsg *m = c->m_head, *n; m; m = n) {
		n = m->next;
		mgc_msg_free(m);
	}
	c->m_head = c->m_tail = c->m_queued = NULL;
	c->n_inflight = c->n_queued = 0;
	for (mgc_q0 *q = c->q0_head, *n; q; q = n) {
		n = q->next;
		free(q);
	}
	c->q0_head = c->q0_tail = NULL;
	mgc_psub_clear(c);
	free(c->failed);
	c->failed = NULL;
	c->n_failed = 0;
}

/* ---- (UN)SUBSCRIBEs waiting for their ack ---- */

int mgc_psub_add(midge_client *c, uint16_t pid, int mid)
{
	mgc_psub *s = malloc(sizeof(*s));
	if (!s)
		return MIDGE_ERR_NOMEM;
	s->pid = pid;
	s->mid = mid;
	s->next = c->psub;
	c->psub = s;
	return MIDGE_OK;
}

int mgc_psub_take(midge_client *c, uint16_t pid)
{
	for (mgc_psub **pp = &c->psub; *pp; pp = &(*pp)->next) {
		mgc_psub *s = *pp;
		if (s->pid == pid) {
			int mid = s->mid;
			*pp = s->next;
			mgc_pid_release(c, pid);
			free(s);
			return mid;
		}
	}
	return 0;
}

void mgc_psub_clear(midge_client *c)
{
	for (mgc_psub *s = c->psub, *n; s; s = n) {
		n = s->next;
		mgc_pid_release(c, s->pid);
		free(s);
	}
	c->psub = NULL;
}

static int window(const midge_client *c)
{
	int w = c->max_inflight ? c->max_inflight : 65535;
	if (c->level == MIDGE_PROTOCOL_V5 && c->srv_receive_max < w)
		w = c->srv_receive_max;
	return w;
}

/* Which topic goes on the wire with a topic alias: empty when the broker already knows the
 * alias on this connection, the full topic otherwise (which also teaches it the alias). */
static const char *wire_topic(midge_client *c, const char *topic, uint16_t alias, bool alias_only)
{
	if (!alias || alias >= c->alias_out_n)
		return topic;
	if (alias_only && c->alias_out_gen[alias] == c->conn_gen && c->alias_out[alias] &&
	    strcmp(c->alias_out[alias], topic) == 0)
		return "";
	c->alias_out_gen[alias] = c->conn_gen;
	return topic;
}

/* Encode one PUBLISH into obuf and log it as libmosquitto does. */
static int send_publish(midge_client *c, int mid, uint16_t pid, const char *topic,
                        const void *payload, size_t len, uint8_t qos, bool retain, bool dup,
                        const midge_properties *props, uint16_t alias, bool alias_only)
{
	mgc_wprops w;
	int rc = mgc_wprops_make(&w, c->level == MIDGE_PROTOCOL_V5 ? props : NULL, MG_PUBLISH);
	if (rc)
		return rc;
	const char *t = topic;
	if (alias && alias <= c->srv_alias_max) {
		t = wire_topic(c, topic, alias, alias_only);
	} else if (alias) {
		/* Queued before this broker said how many aliases it takes, and too many: send the
		 * full topic without the alias rather than break the connection. */
		w.p.present &= ~MG_PROP_BIT(MG_PROP_TOPIC_ALIAS);
	}
	mg_packet p;
	memset(&p, 0, sizeof(p));
	p.type = MG_PUBLISH;
	p.u.publish.qos = qos;
	p.u.publish.dup = dup;
	p.u.publish.retain = retain;
	p.u.publish.topic = (mg_bytes){ (const uint8_t *)t, (uint32_t)strlen(t) };
	p.u.publish.packet_id = qos ? pid : 0;
	p.u.publish.payload = (mg_bytes){ payload, (uint32_t)len };
	p.props = w.p;
	rc = mgc_send_packet(c, &p);
	mgc_wprops_free(&w);
	if (rc == MIDGE_OK)
		mgc_log(c, MIDGE_LOG_DEBUG, "Client %s sending PUBLISH (d%d, q%d, r%d, m%d, '%s', ... (%ld bytes))",
		       mgc_cid(c), dup, qos, retain, qos ? (int)pid : mid, topic, (long)len);
	return rc;
}

static void q0_record(midge_client *c, int mid)
{
	mgc_q0 *q = malloc(sizeof(*q));
	if (!q)
		return; /* on_publish for this one is lost; the message itself is not */
	q->next = NULL;
	q->end = c->out_queued;
	q->mid = mid;
	if (c->q0_tail)
		c->q0_tail->next = q;
	else
		c->q0_head = q;
	c->q0_tail = q;
}

/* Report QoS 0 messages whose bytes have all been written. */
void mgc_q0_done(midge_client *c)
{
	bool any = false;
	while (c->q0_head && c->q0_head->end <= c->out_written) {
		mgc_q0 *q = c->q0_head;
		c->q0_head = q->next;
		if (!c->q0_head)
			c->q0_tail = NULL;
		mgc_event_push(c, MG_EV_PUBLISH, q->mid, 0, NULL, 0, NULL);
		any = true;
		free(q);
	}
	if (any)
		c->notify = true;
}

/* m could not be sent (too large for this broker): drop it, tell on_publish with 0x95
 * "Packet too large", and remember it for midge_wait_for_publish / midge_is_published. */
static void drop_msg(midge_client *c, mgc_cmsg *m, int err)
{
	mgc_log(c, MIDGE_LOG_ERR, "Client %s dropped message %d on '%s': %s", mgc_cid(c), m->mid,
	       m->topic, midge_strerror(err));
	mgc_event_push(c, MG_EV_PUBLISH, m->mid, MG_RC_PACKET_TOO_LARGE, NULL, 0, NULL);
	mid_fail(c, m->mid, err);
	mgc_msg_remove(c, m);
	mgc_msg_free(m);
	c->notify = true;
}

/* Send the queued message m now, in flight from here on (m->pid taken by the caller for QoS
 * 1/2). A message that cannot be encoded is dropped (drop_msg). */
static void send_msg(midge_client *c, mgc_cmsg *m, uint8_t qos)
{
	int rc = send_publish(c, m->mid, m->pid, m->topic, m->payload, m->len, qos, m->retain,
	                      m->dup, m->props, m->alias, m->alias_only);
	if (rc != MIDGE_OK) {
		drop_msg(c, m, rc);
		return;
	}
	if (qos == 0) {
		q0_record(c, m->mid);
		mgc_msg_remove(c, m);
		mgc_msg_free(m);
		c->notify = true;
		return;
	}
	m->qos = qos;
	m->state = qos == 1 ? MG_M_WAIT_PUBACK : MG_M_WAIT_PUBREC;
	m->dup = true;
}

void mgc_pump(midge_client *c)
{
	if (c->state != MG_S_UP)
		return;
	mgc_cmsg *m = c->m_queued;
	int w = window(c);
	while (m) {
		mgc_cmsg *next = m->next;
		uint8_t qos = m->qos;
		if (c->level == MIDGE_PROTOCOL_V5 && qos > c->srv_max_qos)
			qos = c->srv_max_qos; /* the broker said it takes no more [MQTT-3.2.2-11] */
		if (qos > 0) {
			if (c->n_inflight >= w)
				break;
			/* The packet id is taken only now: the queue behind needs none. */
			int pid = mgc_pid_alloc(c);
			if (pid < 0)
				break; /* all 65535 in use: an ack frees one and pumps again */
			m->pid = (uint16_t)pid;
		}
		c->n_queued--;
		c->n_inflight++;
		c->m_queued = next;
		m->state = MG_M_WAIT_PUBACK; /* in flight from here on; send_msg sets the real state */
		send_msg(c, m, qos);
		m = next;
	}
}

/* After CONNACK: messages in flight go out again. With the session kept they are
 * retransmissions (DUP, and PUBREL for those past PUBREC); without it, plain new sends. */
void mgc_resend_inflight(midge_client *c, bool as_dup)
{
	for (mgc_cmsg *m = c->m_head, *next; m && m->state != MG_M_QUEUED; m = next) {
		next = m->next;
		if (m->state == MG_M_WAIT_PUBCOMP) {
			if (mgc_send_simple(c, MG_PUBREL, m->pid, 0) == MIDGE_OK)
				mgc_log(c, MIDGE_LOG_DEBUG, "Client %s sending PUBREL (m%d)", mgc_cid(c), m->pid);
			continue;
		}
		int rc = send_publish(c, m->mid, m->pid, m->topic, m->payload, m->len, m->qos, m->retain,
		                      as_dup, m->props, m->alias, m->alias_only);
		if (rc == MIDGE_ERR_OVERSIZE_PACKET || rc == MIDGE_ERR_PAYLOAD_SIZE)
			drop_msg(c, m, rc); /* this broker takes smaller packets than the last one */
		else if (rc != MIDGE_OK)
			mgc_log(c, MIDGE_LOG_ERR, "Client %s could not resend message %d: %s", mgc_cid(c),
			       m->mid, midge_strerror(rc));
	}
}

/* ---- midge_publish ---- */

/* Checks the arguments; *size is the PUBLISH's size on the wire (with the topic as given). */
static int check_publish(midge_client *c, const char *topic, const void *payload, size_t len,
                         int qos, const midge_properties *props, uint32_t *alias, size_t *size)
{
	if (!c || !topic || (!payload && len) || qos < 0 || qos > 2)
		return MIDGE_ERR_INVAL;
	*alias = 0;
	if (props && props->n) {
		if (c->level != MIDGE_PROTOCOL_V5)
			return MIDGE_ERR_PROPERTY;
		int rc = mgc_props_check_allowed(props, MG_PUBLISH);
		if (rc)
			return rc;
		midge_properties_get_int(props, MIDGE_PROP_TOPIC_ALIAS, alias);
	}
	size_t tl = strlen(topic);
	if (tl == 0) {
		if (!*alias)
			return MIDGE_ERR_TOPIC;
	} else {
		int rc = midge_pub_topic_check(topic);
		if (rc)
			return rc;
	}
	/* Remaining length: topic (2 + tl), packet id, properties (with their length), payload. */
	mgc_wprops w;
	size_t psize = 0;
	if (props && props->n) {
		int rc = mgc_wprops_make(&w, props, MG_PUBLISH);
		if (rc)
			return rc;
		psize = mg_props_size(&w.p);
		psize += mg_varint_size((uint32_t)psize);
		mgc_wprops_free(&w);
	} else if (c->level == MIDGE_PROTOCOL_V5) {
		psize = 1;
	}
	size_t need = 2 + tl + (qos ? 2 : 0) + psize;
	if (len > MG_MAX_REMAINING || need > MG_MAX_REMAINING - len)
		return MIDGE_ERR_PAYLOAD_SIZE;
	*size = 1 + mg_varint_size((uint32_t)(need + len)) + need + len;
	return MIDGE_OK;
}

int midge_publish(midge_client *c, const char *topic, const void *payload, size_t len, int qos,
                  bool retain, const midge_properties *props)
{
	uint32_t alias = 0;
	size_t size = 0;
	int rc = check_publish(c, topic, payload, len, qos, props, &alias, &size);
	if (rc)
		return rc;
	mgc_cmsg *m = calloc(1, sizeof(*m));
	if (!m)
		return MIDGE_ERR_NOMEM;
	m->qos = (uint8_t)qos;
	m->retain = retain;
	m->len = len;
	m->alias = (uint16_t)alias;

	mgc_lock(c);
	bool up = c->state == MG_S_UP;
	/* The broker's Maximum Packet Size, as its last CONNACK gave it. A message queued before
	 * any CONNACK is checked when it goes out, and its drop reported through on_publish. */
	if (c->srv_max_packet && size > c->srv_max_packet) {
		rc = MIDGE_ERR_OVERSIZE_PACKET;
		goto fail;
	}
	if (up && c->level == MIDGE_PROTOCOL_V5) {
		if (alias > c->srv_alias_max) {
			rc = MIDGE_ERR_PROPERTY; /* the broker takes no alias this large [MQTT-3.3.2-9] */
			goto fail;
		}
		if (retain && !c->srv_retain) {
			rc = MIDGE_ERR_NOT_SUPPORTED;
			goto fail;
		}
	}
	if (alias) {
		if (alias >= c->alias_out_n) {
			char **t = realloc(c->alias_out, (alias + 1u) * sizeof(char *));
			if (t)
				c->alias_out = t;
			uint32_t *g = t ? realloc(c->alias_out_gen, (alias + 1u) * sizeof(uint32_t)) : NULL;
			if (!t || !g) {
				rc = MIDGE_ERR_NOMEM;
				goto fail;
			}
			c->alias_out_gen = g;
			for (unsigned i = c->alias_out_n; i <= alias; i++) {
				c->alias_out[i] = NULL;
				c->alias_out_gen[i] = 0;
			}
			c->alias_out_n = (uint16_t)(alias + 1);
		}
		if (!topic[0]) {
			if (!c->alias_out[alias]) {
				rc = MIDGE_ERR_TOPIC; /* an alias nobody bound to a topic yet */
				goto fail;
			}
			m->alias_only = true;
			topic = c->alias_out[alias];
		} else if (!c->alias_out[alias] || strcmp(c->alias_out[alias], topic) != 0) {
			char *t = strdup(topic);
			if (!t) {
				rc = MIDGE_ERR_NOMEM;
				goto fail;
			}
			free(c->alias_out[alias]);
			c->alias_out[alias] = t;
			c->alias_out_gen[alias] = 0;
		}
	}
	bool now = up && (qos == 0 || (c->n_queued == 0 && c->n_inflight < window(c)));
	if (!now && c->max_queued && c->n_queued >= c->max_queued) {
		rc = MIDGE_ERR_QUEUE_FULL;
		goto fail;
	}
	m->mid = mgc_mid_new(c);

	if (now && qos == 0) {
		/* QoS 0 on a live connection: straight from the caller's buffer, no copy kept. */
		rc = send_publish(c, m->mid, 0, topic, payload, len, 0, retain, false, props, m->alias,
		                  m->alias_only);
		if (rc)
			goto fail;
		q0_record(c, m->mid);
		rc = m->mid;
		mgc_unlock(c);
		free(m);
		return rc;
	}
	m->topic = strdup(topic);
	m->payload = len ? malloc(len) : NULL;
	m->props = props && props->n ? midge_properties_dup(props) : NULL;
	if (!m->topic || (len && !m->payload) || (props && props->n && !m->props)) {
		rc = MIDGE_ERR_NOMEM;
		goto fail;
	}
	if (len)
		memcpy(m->payload, payload, len);
	m->state = MG_M_QUEUED;
	list_append(c, m);
	c->n_queued++;
	rc = m->mid;
	if (now)
		mgc_pump(c);
	mgc_unlock(c);
	return rc;
fail:
	mgc_unlock(c);
	mgc_msg_free(m);
	return rc;
}

/* O(pending): messages, QoS 0 messages not yet written, (UN)SUBSCRIBEs not yet acked. */
static bool mid_pending(midge_client *c, int mid)
{
	for (mgc_cmsg *m = c->m_head; m; m = m->next)
		if (m->mid == mid)
			return true;
	for (mgc_q0 *q = c->q0_head; q; q = q->next)
		if (q->mid == mid)
			return true;
	for (mgc_psub *s = c->psub; s; s = s->next)
		if (s->mid == mid)
			return true;
	return false;
}

bool midge_is_published(midge_client *c, int mid)
{
	if (!c || mid <= 0)
		return true;
	mgc_lock(c);
	bool p = !mid_pending(c, mid) && !mgc_mid_failed(c, mid);
	mgc_unlock(c);
	return p;
}

bool mgc_mid_pending(midge_client *c, int mid)
{
	return mid_pending(c, mid);
}
