/*
 * broker/registry.c - client id -> session reference, and the slot table that makes
 * references safe to hold in other threads (see the locking scheme in broker.h).
 *
 * An mg_sref is (generation << 32) | (slot index + 1). Destroying a session bumps its slot's
 * generation, so a reference still sitting in a matchset or an inbox no longer resolves.
 */
#include "broker/broker.h"
#include "broker/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static mg_slot *slot_at(mg_broker *b, uint32_t idx)
{
	mg_slot *chunk = atomic_load_explicit(&b->slots[idx / MG_SLOT_CHUNK], memory_order_acquire);
	return chunk ? &chunk[idx % MG_SLOT_CHUNK] : NULL;
}

static mg_slot *slot_of(mg_broker *b, mg_sref ref, uint32_t *gen)
{
	uintptr_t h = (uintptr_t)ref;
	uint32_t idx = (uint32_t)(h & 0xffffffffu);
	if (idx == 0 || idx > b->n_slots_seen)
		return NULL;
	*gen = (uint32_t)(h >> 32);
	return slot_at(b, idx - 1);
}

static size_t hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return (size_t)h;
}

void mg_registry_init(mg_broker *b)
{
	pthread_mutex_init(&b->reg_mu, NULL);
	b->reg_cap = 1024;
	b->reg = calloc(b->reg_cap, sizeof *b->reg);
}

void mg_registry_free(mg_broker *b)
{
	for (size_t i = 0; i < b->reg_cap; i++)
		for (mg_regent *e = b->reg ? b->reg[i] : NULL, *n; e; e = n) {
			n = e->next;
			free(e);
		}
	free(b->reg);
	b->reg = NULL;
	for (int i = 0; i < MG_SLOT_CHUNKS; i++)
		free(atomic_load(&b->slots[i]));
	pthread_mutex_destroy(&b->reg_mu);
}

static mg_regent **reg_find(mg_broker *b, const char *id, size_t len)
{
	mg_regent **pp = &b->reg[hash(id, len) & (b->reg_cap - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->len == len && memcmp((*pp)->id, id, len) == 0)
			return pp;
	return pp;
}

static void reg_grow(mg_broker *b)
{
	size_t nc = b->reg_cap * 2;
	mg_regent **nr = calloc(nc, sizeof *nr);
	if (!nr)
		return; /* keep the longer chains */
	for (size_t i = 0; i < b->reg_cap; i++)
		for (mg_regent *e = b->reg[i], *n; e; e = n) {
			n = e->next;
			size_t k = hash(e->id, e->len) & (nc - 1);
			e->next = nr[k];
			nr[k] = e;
		}
	free(b->reg);
	b->reg = nr;
	b->reg_cap = nc;
}

mg_session *mg_session_find(mg_broker *b, const char *id, size_t len, int me, int *owner)
{
	mg_session *s = NULL;
	pthread_mutex_lock(&b->reg_mu);
	mg_regent *e = *reg_find(b, id, len);
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

mg_session *mg_session_create(mg_worker *w, const char *id, size_t len, int *owner)
{
	mg_broker *b = w->b;
	/* The id lives in the same allocation as the session and as the registry entry: one
	 * malloc each instead of two saves a chunk header and rounding per session. */
	mg_session *s = calloc(1, sizeof *s + len + 1);
	mg_regent *e = calloc(1, sizeof *e + len + 1);
	*owner = -1;
	if (!s || !e)
		goto fail;
	char *cid = (char *)(s + 1);
	memcpy(cid, id, len);
	memcpy(e->id, id, len);
	pthread_mutex_lock(&b->reg_mu);
	if (b->reg_n >= b->reg_cap) /* chains of one on average: lookups happen at CONNECT only, */
		reg_grow(b);             /* and a sparser table costs 8 bytes per bucket per client */
	mg_regent **pp = reg_find(b, id, len);
	uint32_t idx;
	if (*pp) {
		*owner = (*pp)->owner;
		pthread_mutex_unlock(&b->reg_mu);
		goto fail;
	}
	if (slot_alloc(b, &idx) < 0) {
		pthread_mutex_unlock(&b->reg_mu);
		goto fail;
	}
	mg_slot *sl = slot_at(b, idx);
	uint32_t gen = atomic_load(&sl->gen);
	atomic_store(&sl->owner, w->idx);
	atomic_store(&sl->online, false);
	sl->s = s;
	s->ref = (mg_sref)(((uintptr_t)gen << 32) | (idx + 1));
	e->len = (uint32_t)len; /* an MQTT string: at most 65535 */
	e->ref = s->ref;
	e->owner = w->idx;
	e->next = NULL;
	*pp = e;
	b->reg_n++;
	pthread_mutex_unlock(&b->reg_mu);

	s->id = cid;
	s->id_len = len;
	s->owner = w->idx;
	s->next_mid = 1;
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
	atomic_fetch_add(&b->n_sessions, 1);
	mg_store_session_created(s);
	return s;
fail:
	free(s);
	free(e);
	return NULL;
}

typedef struct unsub_ctx {
	mg_broker *b;
	mg_sref ref;
} unsub_ctx;

static void unsub_one(void *ud, const uint8_t *f, size_t len)
{
	unsub_ctx *u = ud;
	mg_subtree_remove(u->b->tree, f, len, u->ref);
}

void mg_session_destroy(mg_worker *w, mg_session *s)
{
	mg_broker *b = w->b;
	mg_store_session_removed(s);
	unsub_ctx u = { b, s->ref };
	mg_fset_clear(&s->subs, unsub_one, &u);
	pthread_mutex_lock(&b->reg_mu);
	mg_regent **pp = reg_find(b, s->id, s->id_len);
	if (*pp && (*pp)->ref == s->ref) {
		mg_regent *e = *pp;
		*pp = e->next;
		free(e);
		b->reg_n--;
	}
	uint32_t gen;
	mg_slot *sl = slot_of(b, s->ref, &gen);
	atomic_fetch_add(&sl->gen, 1);
	atomic_store(&sl->online, false);
	atomic_store(&sl->owner, -1);
	sl->s = NULL;
	uint32_t idx = (uint32_t)((uintptr_t)s->ref & 0xffffffffu) - 1;
	sl->next_free = b->free_slot;
	b->free_slot = idx + 1;
	pthread_mutex_unlock(&b->reg_mu);

	mg_session_clear_msgs(s);
	mg_session_clear_will(s);
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	atomic_fetch_sub(&b->n_sessions, 1);
	free(s); /* s->id with it */
}

mg_session *mg_session_resolve(mg_worker *w, mg_sref ref)
{
	uint32_t gen;
	mg_slot *sl = slot_of(w->b, ref, &gen);
	if (!sl || atomic_load(&sl->gen) != gen || atomic_load(&sl->owner) != w->idx)
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

bool mg_sref_online(mg_broker *b, mg_sref ref)
{
	uint32_t gen;
	mg_slot *sl = slot_of(b, ref, &gen);
	return sl && atomic_load_explicit(&sl->gen, memory_order_relaxed) == gen &&
	       atomic_load_explicit(&sl->online, memory_order_relaxed);
}

void mg_session_set_online(mg_broker *b, mg_session *s, bool on)
{
	uint32_t gen;
	mg_slot *sl = slot_of(b, s->ref, &gen);
	atomic_store_explicit(&sl->online, on, memory_order_relaxed);
}

bool mg_eligible(void *subscriber, void *ctx)
{
	return mg_sref_online((mg_broker *)ctx, subscriber);
}
