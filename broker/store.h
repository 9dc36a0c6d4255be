/*
 * broker/store.h - what the broker tells durable storage when durable state changes.
 *
 * The seam persistence plugs into, and nothing more yet: the broker keeps everything in
 * memory, so every hook below is an empty inline that compiles to nothing. A SQLite store
 * (its own issue) replaces these bodies with calls into store code, batching writes per loop
 * turn; the call sites stay as they are. The broker calls them from the worker that owns the
 * session (retained: from any worker). Arguments are borrowed for the duration of the call.
 */
#ifndef MG_BROKER_STORE_H
#define MG_BROKER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

struct mg_session;
struct mg_msg;

static inline void mg_store_session_created(const struct mg_session *s) { (void)s; }
static inline void mg_store_session_removed(const struct mg_session *s) { (void)s; }
static inline void mg_store_sub_added(const struct mg_session *s, const uint8_t *filter, size_t len,
                                      mg_subopts o, uint32_t sub_id)
{
	(void)s; (void)filter; (void)len; (void)o; (void)sub_id;
}
static inline void mg_store_sub_removed(const struct mg_session *s, const uint8_t *filter, size_t len)
{
	(void)s; (void)filter; (void)len;
}
static inline void mg_store_msg_queued(const struct mg_session *s, const struct mg_msg *m, uint8_t qos)
{
	(void)s; (void)m; (void)qos;
}
static inline void mg_store_msg_acked(const struct mg_session *s, uint16_t mid) { (void)s; (void)mid; }
/* m NULL: the retained message of topic was deleted. */
static inline void mg_store_retained(const uint8_t *topic, size_t len, const struct mg_msg *m)
{
	(void)topic; (void)len; (void)m;
}

#endif
