/*
 * broker/msg.h - a PUBLISH as the broker keeps it: immutable, refcounted, shared by every queue
 * that holds it. Any thread may hold a reference.
 */
#ifndef MG_BROKER_MSG_H
#define MG_BROKER_MSG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

/* One PUBLISH as the broker keeps it: immutable after mg_msg_new, shared by every queue that
 * holds it. props is the forwardable MQTT 5 property block: the publisher's properties minus
 * topic alias, subscription identifiers and message expiry, which are written per recipient. */
typedef struct mg_msg {
	atomic_uint refs;
	uint8_t qos;      /* as published */
	bool retain;      /* as published */
	bool has_expiry;
	uint16_t topic_len;
	_Atomic uint16_t store_pending; /* batches holding an uncommitted write of its body */
	uint32_t payload_len, props_len;
	atomic_uint store_refs; /* rows of the store that refer to its body (store.c) */
	int64_t expire_at; /* mg_now_ms() deadline when has_expiry */
	atomic_llong store_id;  /* its msgs row, 0 none; kept when the row is deleted (store.c) */
	uint8_t *payload, *props;
	uint8_t topic[];   /* then props, then payload, in one allocation */
} mg_msg;

/* Copies topic, payload and the forwardable part of props (may be NULL). refs = 1. */
mg_msg *mg_msg_new(const uint8_t *topic, size_t tlen, const uint8_t *payload, size_t plen,
                   const mg_props *props, uint8_t qos, bool retain, int64_t now);
/* The same from parts already in the kept form (props forwardable as they are): the store's
 * start-up. */
mg_msg *mg_msg_new_raw(const uint8_t *topic, size_t tlen, const uint8_t *payload, size_t plen,
                       const uint8_t *props, size_t proplen, uint8_t qos, bool retain,
                       bool has_expiry, int64_t expire_at);
static inline mg_msg *mg_msg_ref(mg_msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}
void mg_msg_unref(mg_msg *m);
bool mg_msg_expired(const mg_msg *m, int64_t now);
uint32_t mg_msg_remaining(const mg_msg *m, int64_t now); /* seconds left, >= 1 */

#endif
