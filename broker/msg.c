/* broker/msg.c - the shared, immutable, refcounted message (see msg.h). */
#include "broker/msg.h"

#include <stdlib.h>
#include <string.h>

/* Properties written per recipient (or, for a will, used up before it is published), never
 * forwarded as they came. */
#define PER_RECIPIENT                                                                          \
	(MG_PROP_BIT(MG_PROP_TOPIC_ALIAS) | MG_PROP_BIT(MG_PROP_SUBSCRIPTION_ID) |                  \
	 MG_PROP_BIT(MG_PROP_MESSAGE_EXPIRY) | MG_PROP_BIT(MG_PROP_WILL_DELAY))

/* One allocation: the struct, then topic + NUL, properties, payload. The caller fills the
 * properties, the payload and the expiry. */
static mg_msg *msg_alloc(const uint8_t *topic, size_t tlen, size_t proplen, size_t plen,
                         uint8_t qos, bool retain)
{
	mg_msg *m = malloc(sizeof *m + tlen + proplen + plen + 1);
	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	atomic_init(&m->store_refs, 0);
	atomic_init(&m->store_pending, 0);
	atomic_init(&m->store_id, 0);
	m->qos = qos;
	m->retain = retain;
	m->topic_len = (uint16_t)tlen;
	m->payload_len = (uint32_t)plen;
	m->props_len = (uint32_t)proplen;
	memcpy(m->topic, topic, tlen);
	m->topic[tlen] = 0; /* handy for logs */
	m->props = m->topic + tlen + 1;
	m->payload = m->props + proplen;
	return m;
}

mg_msg *mg_msg_new(const uint8_t *topic, size_t tlen, const uint8_t *payload, size_t plen,
                   const mg_props *props, uint8_t qos, bool retain, int64_t now)
{
	mg_bytes raw = props ? props->raw : (mg_bytes){ NULL, 0 };
	size_t fwd = raw.len ? mg_props_strip(NULL, 0, raw, PER_RECIPIENT) : 0;
	mg_msg *m = msg_alloc(topic, tlen, fwd, plen, qos, retain);
	if (!m)
		return NULL;
	if (fwd)
		mg_props_strip(m->props, fwd, raw, PER_RECIPIENT);
	if (plen)
		memcpy(m->payload, payload, plen);
	m->has_expiry = props && (props->present & MG_PROP_BIT(MG_PROP_MESSAGE_EXPIRY));
	m->expire_at = m->has_expiry ? now + (int64_t)props->message_expiry * 1000 : 0;
	return m;
}

mg_msg *mg_msg_new_raw(const uint8_t *topic, size_t tlen, const uint8_t *payload, size_t plen,
                       const uint8_t *props, size_t proplen, uint8_t qos, bool retain,
                       bool has_expiry, int64_t expire_at)
{
	mg_msg *m = msg_alloc(topic, tlen, proplen, plen, qos, retain);
	if (!m)
		return NULL;
	if (proplen)
		memcpy(m->props, props, proplen);
	if (plen)
		memcpy(m->payload, payload, plen);
	m->has_expiry = has_expiry;
	m->expire_at = has_expiry ? expire_at : 0;
	return m;
}

void mg_msg_unref(mg_msg *m)
{
	if (!m)
		return;
	/* The last reference goes without a locked instruction (the `lock sub` was 6-7% of the
	 * broker's time in pairs10-q0 and fanin100-q0; most messages have one recipient and die
	 * in the turn they came in). A count of 1 read by a holder means no other reference
	 * exists, so no other thread can take one (it would need one to copy); the acquire load
	 * orders every other holder's release decrement, and its uses, before the free. */
	if (atomic_load_explicit(&m->refs, memory_order_acquire) == 1 ||
	    atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
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
