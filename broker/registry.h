/*
 * broker/registry.h - client id -> session, and session references that other threads may
 * hold (registry.c).
 *
 * A session reference (mg_sref) names a session from any thread without keeping it alive:
 * slot index + generation. The subscription tree and the inboxes hold references, never
 * session pointers, so a session can be freed while a match or a delivery naming it is in
 * flight: a stale reference (its slot's generation moved on) resolves to nothing and is
 * dropped by the worker that owns the slot. Slots are never freed before exit; a slot's
 * owner, generation and online flag are atomics, read without a lock on the message path.
 * The id table and slot allocation take one mutex (reg_mu), on CONNECT, session end and
 * shutdown only; nothing else is ever locked under it.
 */
#ifndef MG_BROKER_REGISTRY_H
#define MG_BROKER_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mg_broker mg_broker;
typedef struct mg_session mg_session;

/* Never dereferenced; the subscription tree stores it as its void * subscriber. */
typedef struct mg_sref_opaque *mg_sref;

/* Private to registry.c; the broker holds them by pointer only. */
typedef struct mg_slot mg_slot;
typedef struct mg_regent mg_regent;
#define MG_SLOT_CHUNK 4096
#define MG_SLOT_CHUNKS 4096  /* up to 16M sessions */

void mg_registry_init(mg_broker *b);
void mg_registry_free(mg_broker *b);
/* Look up id (under reg_mu); sets *owner (-1 if absent). Returns the session only when
 * worker `me` owns it, else NULL. */
mg_session *mg_registry_find(mg_broker *b, const char *id, size_t len, int me, int *owner);
/* Register s (offline) under id for worker `me`. Returns its reference, or NULL when
 * another worker registered the id meanwhile (*owner set) or on ENOMEM (*owner -1). */
mg_sref mg_registry_add(mg_broker *b, const char *id, size_t len, int me, mg_session *s, int *owner);
/* Forget id and retire ref's slot: every copy of ref goes stale. */
void mg_registry_remove(mg_broker *b, const char *id, size_t len, mg_sref ref);

/* The session ref names, if it is still alive and owned by worker `me`; else NULL. */
mg_session *mg_sref_resolve(mg_broker *b, mg_sref ref, int me);
int mg_sref_owner(mg_broker *b, mg_sref ref); /* -1 if stale */
bool mg_sref_online(mg_broker *b, mg_sref ref);
/* The store id of the session (store.h), 0 when it is not stored or ref is stale. Set by the
 * owner when the session starts or stops outliving its connection; read by routing. */
int64_t mg_sref_sid(mg_broker *b, mg_sref ref);
void mg_sref_set_sid(mg_broker *b, mg_sref ref, int64_t sid);
void mg_sref_set_online(mg_broker *b, mg_sref ref, bool on);
/* The subscription tree's eligibility test (ctx: the broker): is the subscriber online? */
bool mg_eligible(void *subscriber, void *ctx);

#endif
