/* client/inq.c - inbound QoS 2 messages held from their PUBLISH to their PUBREL.
 *
 * paho-mqtt and libmosquitto hand a QoS 2 message to on_message when the PUBREL arrives (the
 * spec's method B), so a program sees it once the broker has let go of it; libmidge does the
 * same. The ids live in the qos2_in bitmap (a duplicate PUBLISH is answered, not stored twice);
 * the messages in a list, searched in O(held), which Receive Maximum bounds in 5.0 and the
 * broker's own in-flight limit bounds in practice for 3.1.1 (at most 65535 ids either way).
 * Everything here runs under mu. */
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

void mgc_qin_free(mgc_qin *q)
{
	if (!q)
		return;
	free(q->topic);
	free(q->payload);
	midge_properties_free(q->props);
	free(q);
}

int mgc_qin_store(midge_client *c, uint16_t mid, const char *topic, const mg_publish *pub,
                 midge_properties *props)
{
	mgc_qin *q = calloc(1, sizeof(*q));
	if (!q)
		goto fail;
	q->topic = strdup(topic);
	q->payload = malloc(pub->payload.len + 1u);
	if (!q->topic || !q->payload)
		goto fail;
	memcpy(q->payload, pub->payload.p, pub->payload.len);
	q->payload[pub->payload.len] = '\0';
	q->len = pub->payload.len;
	q->mid = mid;
	q->retain = pub->retain;
	q->dup = pub->dup;
	q->props = props;
	q->next = c->qin_head; /* newest first: a PUBREL usually answers a recent PUBREC */
	c->qin_head = q;
	c->n_qin++;
	return MIDGE_OK;
fail:
	if (q)
		q->props = NULL;
	mgc_qin_free(q);
	midge_properties_free(props);
	return MIDGE_ERR_NOMEM;
}

mgc_qin *mgc_qin_take(midge_client *c, uint16_t mid)
{
	for (mgc_qin **pp = &c->qin_head; *pp; pp = &(*pp)->next) {
		mgc_qin *q = *pp;
		if (q->mid == mid) {
			*pp = q->next;
			c->n_qin--;
			return q;
		}
	}
	return NULL;
}

void mgc_qin_clear(midge_client *c)
{
	for (mgc_qin *q = c->qin_head, *n; q; q = n) {
		n = q->next;
		mgc_qin_free(q);
	}
	c->qin_head = NULL;
	c->n_qin = 0;
	memset(c->qos2_in, 0, sizeof(c->qos2_in));
}
