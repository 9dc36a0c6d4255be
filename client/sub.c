/* client/sub.c - SUBSCRIBE and UNSUBSCRIBE: check every filter, encode one packet, log each
 * filter the way libmosquitto does. */
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

static mg_bytes str(const char *s)
{
	return (mg_bytes){ (const uint8_t *)s, (uint32_t)strlen(s) };
}

/* The payload of SUBSCRIBE (with options bytes) or UNSUBSCRIBE, as mg_encode wants it: proto's
 * mg_sub_put writes each entry. send_list has checked every filter (<= 65535 bytes) and options
 * word, so the options byte written is options[i] itself. */
static uint8_t *build_list(const char *const *topics, const int *options, int count, size_t *len)
{
	mg_subopts o = { 0 };
	size_t n = 0, off = 0;
	for (int i = 0; i < count; i++)
		n += mg_sub_put(NULL, 0, str(topics[i]), options ? &o : NULL);
	uint8_t *b = malloc(n ? n : 1);
	if (!b)
		return NULL;
	for (int i = 0; i < count; i++) {
		if (options)
			o = (mg_subopts){ .qos = (uint8_t)(options[i] & 3),
			                  .no_local = options[i] & MIDGE_SUB_NO_LOCAL,
			                  .retain_as_published = options[i] & MIDGE_SUB_RETAIN_AS_PUBLISHED,
			                  .retain_handling = (uint8_t)((options[i] >> 4) & 3) };
		off += mg_sub_put(b + off, n - off, str(topics[i]), options ? &o : NULL);
	}
	*len = n;
	return b;
}

static bool can_send(const midge_client *c)
{
	return c->state == MG_S_TCP || c->state == MG_S_CONNACK || c->state == MG_S_UP;
}

static int send_list(midge_client *c, int type, const char *const *topics, const int *options,
                     int count, const midge_properties *props)
{
	if (!c || !topics || count <= 0 || count > 65535)
		return MIDGE_ERR_INVAL;
	int rc;
	for (int i = 0; i < count; i++) {
		if ((rc = midge_sub_topic_check(topics[i])))
			return rc;
		if (options) {
			int o = options[i];
			/* qos 0..2, retain handling 0..2, no reserved bits [MQTT-3.8.3-5] */
			if ((o & 3) == 3 || (o & 0x30) == 0x30 || (o & ~0x3F))
				return MIDGE_ERR_INVAL;
		}
	}
	/* 3.1/3.1.1 have no options byte, only the QoS: the 5.0 bits are left out, as the header
	 * promises (paho sends only the QoS too). Up to 64 on the stack, more on the heap. */
	int qbuf[64], *qos_only = NULL;
	if (options && c->level != MIDGE_PROTOCOL_V5) {
		qos_only = count <= 64 ? qbuf : malloc((size_t)count * sizeof(int));
		if (!qos_only)
			return MIDGE_ERR_NOMEM;
		for (int i = 0; i < count; i++)
			qos_only[i] = options[i] & 3;
		options = qos_only;
	}
	mgc_wprops w;
	uint8_t *list = NULL;
	size_t len;
	if (props && props->n && c->level != MIDGE_PROTOCOL_V5) {
		rc = MIDGE_ERR_PROPERTY;
		goto early;
	}
	if ((rc = mgc_wprops_make(&w, c->level == MIDGE_PROTOCOL_V5 ? props : NULL, type)))
		goto early;
	list = build_list(topics, options, count, &len);
	if (!list) {
		mgc_wprops_free(&w);
		rc = MIDGE_ERR_NOMEM;
		goto early;
	}
	mgc_lock(c);
	if (!can_send(c)) {
		rc = MIDGE_ERR_NO_CONN;
		goto out;
	}
	if ((rc = mgc_pid_alloc(c)) < 0)
		goto out;
	uint16_t pid = (uint16_t)rc;
	int mid = mgc_mid_new(c);
	mg_packet p;
	memset(&p, 0, sizeof(p));
	p.type = (uint8_t)type;
	p.packet_id = pid;
	p.u.sub.raw = (mg_bytes){ list, (uint32_t)len };
	p.u.sub.count = (uint32_t)count;
	p.props = w.p;
	rc = mgc_send_packet(c, &p);
	if (rc == MIDGE_OK)
		rc = mgc_psub_add(c, pid, mid);
	if (rc) {
		mgc_pid_release(c, pid);
		goto out;
	}
	for (int i = 0; i < count; i++) {
		if (type == MG_SUBSCRIBE)
			mgc_log(c, MIDGE_LOG_DEBUG,
			       "Client %s sending SUBSCRIBE (Mid: %d, Topic: %s, QoS: %d, Options: 0x%02x)",
			       mgc_cid(c), pid, topics[i], options[i] & 3, options[i] & 0xFC);
		else
			mgc_log(c, MIDGE_LOG_DEBUG, "Client %s sending UNSUBSCRIBE (Mid: %d, Topic: %s)",
			       mgc_cid(c), pid, topics[i]);
	}
	rc = mid;
out:
	mgc_unlock(c);
	mgc_wprops_free(&w);
	free(list);
early:
	if (qos_only != qbuf)
		free(qos_only);
	return rc;
}

int midge_subscribe(midge_client *c, const char *topic, int qos)
{
	if (qos < 0 || qos > 2)
		return MIDGE_ERR_INVAL;
	return midge_subscribe_ex(c, &topic, &qos, 1, NULL);
}

int midge_subscribe_ex(midge_client *c, const char *const *topics, const int *options, int count,
                       const midge_properties *props)
{
	if (!options)
		return MIDGE_ERR_INVAL;
	return send_list(c, MG_SUBSCRIBE, topics, options, count, props);
}

int midge_unsubscribe(midge_client *c, const char *topic)
{
	return midge_unsubscribe_ex(c, &topic, 1, NULL);
}

int midge_unsubscribe_ex(midge_client *c, const char *const *topics, int count,
                         const midge_properties *props)
{
	return send_list(c, MG_UNSUBSCRIBE, topics, NULL, count, props);
}
