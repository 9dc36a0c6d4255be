/*
 * broker/store.h - what the broker tells durable storage when durable state changes.
 *
 * Today every call is a no-op (store.c): the broker keeps everything in memory. A SQLite
 * store (its own issue) implements these, batching writes per loop turn. The broker calls
 * them from the worker that owns the session (retained: from any worker). Arguments are
 * borrowed for the duration of the call.
 */
#ifndef MG_BROKER_STORE_H
#define MG_BROKER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

struct mg_session;
struct mg_msg;

void mg_store_session_created(const struct mg_session *s);
void mg_store_session_removed(const struct mg_session *s);
void mg_store_sub_added(const struct mg_session *s, const uint8_t *filter, size_t len, mg_subopts o,
                        uint32_t sub_id);
void mg_store_sub_removed(const struct mg_session *s, const uint8_t *filter, size_t len);
void mg_store_msg_queued(const struct mg_session *s, const struct mg_msg *m, uint8_t qos);
void mg_store_msg_acked(const struct mg_session *s, uint16_t mid);
void mg_store_retained(const uint8_t *topic, size_t len, const struct mg_msg *m /* NULL deleted */);

#endif
