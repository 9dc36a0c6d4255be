/* broker/msg.c - the shared, immutable, refcounted message (see broker.h). */
#include "broker/broker.h"

#include <stdlib.h>
#include <string.h>

/* Properties written per recipient, never forwarded as they came. */
static bool per_recipient(uint8_t id)
{
	return id == MG_PROP_TOPIC_ALIAS || id == MG_PROP_SUBSCRIPTION_ID || id == MG_PROP_MESSAGE_EXPIRY ||
	       id == MG_PROP_WILL_DELAY;
}

mg_msg *mg_msg_new(const uint8_t *topic, size_t tlen, const uint8_t *payload, size_t plen,
                   const mg_props *props, uint8_t qos, bool retain, int64_t now)
{
	size_t fwd = 0;
	if (props && props->raw.len) {
		uint32_t off = 0, prev = 0;
		mg_prop pr;
		while (mg_prop_next(props->raw, &off, &pr)) {
			if (!per_recipient(pr.id))
				fwd += off - prev;
			prev = off;
		}
	}
	mg_msg *m = malloc(sizeof *m + tlen + fwd + plen + 1);
	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	m->qos = qos;
	m->retain = retain;
	m->topic_len = (uint16_t)tlen;
	m->payload_len = (uint32_t)plen;
	m->props_len = (uint32_t)fwd;
	memcpy(m->topic, topic, tlen);
	m->topic[tlen] = 0; /* handy for logs */
	m->props = m->topic + tlen + 1;
	m->payload = m->props + fwd;
	if (fwd) {
		uint32_t off = 0, prev = 0;
		size_t w = 0;
		mg_prop pr;
		while (mg_prop_next(props->raw, &off, &pr)) {
			if (!per_recipient(pr.id)) {
				memcpy(m->props + w, props->raw.p + prev, off - prev);
				w += off - prev;
			}
			prev = off;
		}
	}
	if (plen)
		memcpy(m->payload, payload, plen);
	m->has_expiry = props && (props->present & MG_PROP_BIT(MG_PROP_MESSAGE_EXPIRY));
	m->expire_at = m->has_expiry ? now + (int64_t)props->message_expiry * 1000 : 0;
	return m;
}

void mg_msg_unref(mg_msg *m)
{
	if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		free(m);
}

bool mg_msg_expired(const mg_msg *m, int64_t now)
{
	return m->has_expiry && now >= m->expire_at;
}

uint32_t mg_msg_remaining(const mg_msg *m, int64_t now)
{
	int64_t left = (m->expire_at - now + 999) / 1000;
	return left < 1 ? 1 : (uint32_t)left;
}
