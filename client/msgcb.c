/* client/msgcb.c - where a received message goes: per-topic callbacks
 * (midge_message_callback_add, paho's message_callback_add) or on_message; and copies of a
 * message for a program that keeps one past its callback. */
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

int midge_message_callback_add(midge_client *c, const char *sub,
                               void (*cb)(midge_client *c, void *userdata,
                                          const midge_message *msg))
{
	if (!c || !sub || !cb)
		return MIDGE_ERR_INVAL;
	bool r;
	int rc = midge_topic_matches_sub(sub, "x", &r); /* checks the filter */
	if (rc)
		return rc;
	mgc_msgcb *n = malloc(sizeof(*n));
	char *s = strdup(sub);
	if (!n || !s) {
		free(n);
		free(s);
		return MIDGE_ERR_NOMEM;
	}
	n->sub = s;
	/* checked once here, so a message costs one match per callback and nothing else */
	mg_bytes inner = { (const uint8_t *)s, (uint32_t)strlen(s) };
	(void)mg_share_parse(inner.p, inner.len, NULL, &inner); /* valid: checked above */
	n->match = (const char *)inner.p;
	n->match_len = inner.len;
	n->cb = cb;
	n->next = NULL;
	mgc_lock(c);
	/* The same filter again replaces its callback (paho keeps one per filter). */
	mgc_msgcb **pp = &c->msgcbs;
	while (*pp && strcmp((*pp)->sub, sub) != 0)
		pp = &(*pp)->next;
	bool replaced = *pp != NULL;
	if (replaced)
		(*pp)->cb = cb;
	else
		*pp = n;
	mgc_unlock(c);
	if (replaced) {
		free(n->sub);
		free(n);
	}
	return MIDGE_OK;
}

int midge_message_callback_remove(midge_client *c, const char *sub)
{
	if (!c || !sub)
		return MIDGE_ERR_INVAL;
	mgc_msgcb *gone = NULL;
	mgc_lock(c);
	for (mgc_msgcb **pp = &c->msgcbs; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->sub, sub) == 0) {
			gone = *pp;
			*pp = gone->next;
			break;
		}
	}
	mgc_unlock(c);
	if (!gone)
		return MIDGE_ERR_NOT_FOUND;
	free(gone->sub);
	free(gone);
	return MIDGE_OK;
}

void mgc_msgcb_clear(midge_client *c)
{
	for (mgc_msgcb *m = c->msgcbs, *n; m; m = n) {
		n = m->next;
		free(m->sub);
		free(m);
	}
	c->msgcbs = NULL;
}

/* O(callbacks) per message: each filter is matched against the topic. */
void mgc_dispatch_take(midge_client *c, const char *topic, mgc_dispatch *d)
{
	d->ud = c->userdata;
	d->n = 0;
	d->cbs = d->buf;
	int cap = (int)(sizeof(d->buf) / sizeof(d->buf[0]));
	size_t tl = strlen(topic); /* a received topic: the decoder has checked it */
	for (mgc_msgcb *m = c->msgcbs; m; m = m->next) {
		if (!mg_topic_match((const uint8_t *)m->match, m->match_len, (const uint8_t *)topic, tl))
			continue;
		if (d->n == cap) {
			mgc_msg_cb *b = malloc((size_t)cap * 2 * sizeof(*b));
			if (!b)
				break; /* out of memory: the callbacks found so far get it */
			memcpy(b, d->cbs, (size_t)d->n * sizeof(*b));
			if (d->cbs != d->buf)
				free(d->cbs);
			d->cbs = b;
			cap *= 2;
		}
		d->cbs[d->n++] = m->cb;
	}
	if (d->n == 0 && c->on_message)
		d->cbs[d->n++] = c->on_message;
}

void mgc_dispatch_run(midge_client *c, mgc_dispatch *d, const midge_message *msg)
{
	for (int i = 0; i < d->n; i++)
		d->cbs[i](c, d->ud, msg);
	if (d->cbs != d->buf)
		free(d->cbs);
	d->n = 0;
}

midge_message *midge_message_copy(const midge_message *src)
{
	if (!src || !src->topic || (!src->payload && src->payloadlen))
		return NULL;
	size_t tl = strlen(src->topic);
	/* One block: the struct, the topic and the payload with its '\0'. */
	size_t size = sizeof(midge_message) + tl + 1 + src->payloadlen + 1;
	if (src->payloadlen > (size_t)-1 / 2 - tl - sizeof(midge_message))
		return NULL;
	midge_message *m = malloc(size);
	if (!m)
		return NULL;
	*m = *src;
	char *t = (char *)(m + 1);
	memcpy(t, src->topic, tl + 1);
	char *pl = t + tl + 1;
	if (src->payloadlen)
		memcpy(pl, src->payload, src->payloadlen);
	pl[src->payloadlen] = '\0';
	m->topic = t;
	m->payload = pl;
	m->properties = NULL;
	if (src->properties) {
		m->properties = midge_properties_dup(src->properties);
		if (!m->properties) {
			free(m);
			return NULL;
		}
	}
	return m;
}

void midge_message_free(midge_message *m)
{
	if (!m)
		return;
	midge_properties_free((midge_properties *)m->properties);
	free(m);
}

/* ---- manual acknowledgements (paho 2: manual_ack_set / ack) ---- */

int midge_manual_ack_set(midge_client *c, bool on)
{
	if (!c)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	c->manual_ack = on;
	mgc_unlock(c);
	return MIDGE_OK;
}

int midge_ack(midge_client *c, int mid, int qos)
{
	if (!c || mid < 1 || mid > 65535 || qos < 1 || qos > 2)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	int rc = c->state == MG_S_UP ? mgc_send_simple(c, qos == 1 ? MG_PUBACK : MG_PUBCOMP,
	                                              (uint16_t)mid, 0) : MIDGE_ERR_NO_CONN;
	if (rc == MIDGE_OK)
		mgc_log(c, MIDGE_LOG_DEBUG, qos == 1 ? "Client %s sending PUBACK (m%d, rc%d)" :
		       "Client %s sending PUBCOMP (m%d)", mgc_cid(c), mid, 0);
	mgc_unlock(c);
	return rc;
}
