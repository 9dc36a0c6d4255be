/*
 * broker/registry.c - client id -> session reference, and the slot table that makes
 * references safe to hold in other threads (see registry.h).
 *
 * An mg_sref is (generation << SREF_IDX_BITS) | (slot index + 1). Destroying a session bumps
 * its slot's generation, so a reference still sitting in a matchset or an inbox no longer
 * resolves.
 *
 * An mg_sref is pointer-sized (the subscription tree keeps it as a void *): 32 index bits and
 * 32 generation bits on 64-bit machines; on 32-bit ones (armhf, the 32-bit Raspberry Pi OS)
 * 20 index bits (about a million sessions, more than such a machine holds) and 12 generation
 * bits. The cost there: a stale reference resolves again if its slot is reused exactly 4096
 * times while the reference is in flight (one matchset or inbox pass), which does not happen.
 */
#include "broker/registry.h"
#include "broker/broker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if UINTPTR_MAX > 0xffffffffu
#define SREF_IDX_BITS 32
#else
#define SREF_IDX_BITS 20
#endif
#define SREF_IDX_MASK ((uintptr_t)(UINTPTR_MAX >> (sizeof(uintptr_t) * 8 - SREF_IDX_BITS)))
#define SREF_GEN_MASK ((uint32_t)(UINTPTR_MAX >> SREF_IDX_BITS))

struct mg_slot {
	atomic_uint gen;
	atomic_int owner;
	uint32_t next_free;
	atomic_bool online;
	mg_session *s;      /* owner only */
	atomic_llong sid;   /* the session's store id, 0 not stored: routing writes its queue rows */
};                     /* 32 bytes: one per session ever live at once */

struct mg_regent {
	mg_btent h;          /* key: id; client ids are at most 65535 bytes */
	int owner;
	mg_sref ref;
	char id[];           /* len bytes + NUL, in the entry's own allocation */
};

static mg_slot *slot_at(mg_broker *b, uint32_t idx)
{
	mg_slot *chunk = atomic_load_explicit(&b->slots[idx / MG_SLOT_CHUNK], memory_order_acquire);
	return chunk ? &chunk[idx % MG_SLOT_CHUNK] : NULL;
}

static mg_slot *slot_of(mg_broker *b, mg_sref ref, uint32_t *gen)
{
	uintptr_t h = (uintptr_t)ref;
	uint32_t idx = (uint32_t)(h & SREF_IDX_MASK);
	if (idx == 0 || idx > b->n_slots_seen)
		return NULL;
	*gen = (uint32_t)(h >> SREF_IDX_BITS);
	return slot_at(b, idx - 1);
}

void mg_registry_init(mg_broker *b)
{
	pthread_mutex_init(&b->reg_mu, NULL);
	b->reg = (mg_btab){ 0 };
	mg_btab_room(&b->reg);
}

static void free_ent(mg_btent *e)
{
	free(e);
}

void mg_registry_free(mg_broker *b)
{
	mg_btab_free(&b->reg, free_ent);
	for (int i = 0; i < MG_SLOT_CHUNKS; i++)
		free(atomic_load(&b->slots[i]));
	pthread_mutex_destroy(&b->reg_mu);
}

/* The registry's entry for id, or NULL; under reg_mu. */
static mg_regent *reg_get(mg_broker *b, const char *id, size_t len)
{
	return (mg_regent *)*mg_btab_slot(&b->reg, id, len);
}

mg_session *mg_registry_find(mg_broker *b, const char *id, size_t len, int me, int *owner)
{
	mg_session *s = NULL;
	pthread_mutex_lock(&b->reg_mu);
	mg_regent *e = reg_get(b, id, len);
	*owner = e ? e->owner : -1;
	if (e && e->owner == me) {
		uint32_t gen;
		s = slot_of(b, e->ref, &gen)->s;
	}
	pthread_mutex_unlock(&b->reg_mu);
	return s;
}

static int slot_alloc(mg_broker *b, uint32_t *idx)
{
	if (b->free_slot) {
		*idx = b->free_slot - 1;
		b->free_slot = slot_at(b, *idx)->next_free;
		return 0;
	}
	uint32_t i = b->n_slots;
	if (i / MG_SLOT_CHUNK >= MG_SLOT_CHUNKS)
		return -ENOMEM;
#if SREF_IDX_BITS < 32
	if (i + 1 > SREF_IDX_MASK) /* the index must fit in an mg_sref */
		return -ENOMEM;
#endif
	if (!atomic_load(&b->slots[i / MG_SLOT_CHUNK])) {
		mg_slot *chunk = calloc(MG_SLOT_CHUNK, sizeof *chunk);
		if (!chunk)
			return -ENOMEM;
		for (int k = 0; k < MG_SLOT_CHUNK; k++)
			atomic_init(&chunk[k].gen, 1);
		atomic_store_explicit(&b->slots[i / MG_SLOT_CHUNK], chunk, memory_order_release);
	}
	b->n_slots++;
	atomic_store_explicit(&b->n_slots_seen, b->n_slots, memory_order_release);
	*idx = i;
	return 0;
}

mg_sref mg_registry_add(mg_broker *b, const char *id, size_t len, int me, mg_session *s, int *owner)
{
	/* The id lives in the registry entry's own allocation (one malloc instead of two). */
	mg_regent *e = calloc(1, sizeof *e + len + 1);
	*owner = -1;
	if (!e)
		return NULL;
	memcpy(e->id, id, len);
	pthread_mutex_lock(&b->reg_mu);
	/* chains of one on average: lookups happen at CONNECT only, and a sparser table costs 8
	 * bytes per bucket per client; registry_init made the table, so room does not fail */
	if (mg_btab_room(&b->reg) < 0) {
		pthread_mutex_unlock(&b->reg_mu);
		free(e);
		return NULL;
	}
	mg_btent **pp = mg_btab_slot(&b->reg, id, len);
	uint32_t idx;
	if (*pp) {
		*owner = ((mg_regent *)*pp)->owner;
		pthread_mutex_unlock(&b->reg_mu);
		free(e);
		return NULL;
	}
	if (slot_alloc(b, &idx) < 0) {
		pthread_mutex_unlock(&b->reg_mu);
		free(e);
		return NULL;
	}
	mg_slot *sl = slot_at(b, idx);
	uint32_t gen = atomic_load(&sl->gen);
	atomic_store(&sl->owner, me);
	atomic_store(&sl->online, false);
	atomic_store_explicit(&sl->sid, 0, memory_order_relaxed);
	sl->s = s;
	mg_sref ref = (mg_sref)(((uintptr_t)gen << SREF_IDX_BITS) | (idx + 1));
	e->h.key = (const uint8_t *)e->id;
	e->h.len = (uint32_t)len; /* an MQTT string: at most 65535 */
	e->ref = ref;
	e->owner = me;
	mg_btab_link(&b->reg, pp, &e->h);
	pthread_mutex_unlock(&b->reg_mu);
	return ref;
}

void mg_registry_remove(mg_broker *b, const char *id, size_t len, mg_sref ref)
{
	pthread_mutex_lock(&b->reg_mu);
	mg_btent **pp = mg_btab_slot(&b->reg, id, len);
	if (*pp && ((mg_regent *)*pp)->ref == ref)
		free(mg_btab_unlink(&b->reg, pp));
	uint32_t gen;
	mg_slot *sl = slot_of(b, ref, &gen);
	/* Under reg_mu, the only writer: the generation stays within what an mg_sref holds and
	 * skips 0 when it wraps. */
	uint32_t next = (atomic_load(&sl->gen) + 1) & SREF_GEN_MASK;
	atomic_store(&sl->gen, next ? next : 1);
	atomic_store(&sl->online, false);
	atomic_store(&sl->owner, -1);
	sl->s = NULL;
	uint32_t idx = (uint32_t)((uintptr_t)ref & SREF_IDX_MASK) - 1;
	sl->next_free = b->free_slot;
	b->free_slot = idx + 1;
	pthread_mutex_unlock(&b->reg_mu);
}

mg_session *mg_sref_resolve(mg_broker *b, mg_sref ref, int me)
{
	uint32_t gen;
	mg_slot *sl = slot_of(b, ref, &gen);
	if (!sl || atomic_load(&sl->gen) != gen || atomic_load(&sl->owner) != me)
		return NULL;
	return sl->s;
}

int mg_sref_owner(mg_broker *b, mg_sref ref)
{
	uint32_t gen;
	mg_slot *sl = slot_of(b, ref, &gen);
	if (!sl || atomic_load_explicit(&sl->gen, memory_order_acquire) != gen)
		return -1;
	return atomic_load_explicit(&sl->owner, memory_order_acquire);
}

int64_t mg_sref_sid(mg_broker *b, mg_sref ref)
{
	uint32_t gen;
	mg_slot *sl = slot_of(b, ref, &gen);
	if (!sl || atomic_load_explicit(&sl->gen, memory_order_acquire) != gen)
		return 0;
	return atomic_load_explicit(&sl->sid, memory_order_relaxed);
}

void mg_sref_set_sid(mg_broker *b, mg_sref ref, int64_t sid)
{
	uint32_t gen;
	mg_slot *sl = slot_of(b, ref, &gen);
	atomic_store_explicit(&sl->sid, sid, memory_order_relaxed);
}

bool mg_sref_online(mg_broker *b, mg_sref ref)
{
	uint32_t gen;
	mg_slot *sl = slot_of(b, ref, &gen);
	return sl && atomic_load_explicit(&sl->gen, memory_order_relaxed) == gen &&
	       atomic_load_explicit(&sl->online, memory_order_relaxed);
}

void mg_sref_set_online(mg_broker *b, mg_sref ref, bool on)
{
	uint32_t gen;
	mg_slot *sl = slot_of(b, ref, &gen);
	atomic_store_explicit(&sl->online, on, memory_order_relaxed);
}

bool mg_eligible(void *subscriber, void *ctx)
{
	return mg_sref_online((mg_broker *)ctx, subscriber);
}
