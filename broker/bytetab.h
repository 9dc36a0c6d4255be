/*
 * broker/bytetab.h - a small chained hash table keyed by byte strings, for the broker's
 * tables off the message path: client id -> session (registry.c), the cluster's filters
 * (cluster.c). The caller owns the entries and the locking; an entry embeds an mg_btent as
 * its first member, its key pointing into the entry's own allocation.
 *
 * Costs: a bucket pointer per entry (the table doubles at one entry a bucket: chains of one
 * on average) and 24 bytes of head per entry. The hash is seeded per table (broker/hash.h).
 */
#ifndef MG_BROKER_BYTETAB_H
#define MG_BROKER_BYTETAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct mg_btent {
	struct mg_btent *next;
	const uint8_t *key; /* len bytes, set by the caller before mg_btab_link */
	uint32_t len;
	uint32_t hash;      /* mg_btab's */
} mg_btent;

typedef struct mg_btab {
	mg_btent **v;       /* NULL until the first mg_btab_room */
	size_t cap, n;      /* cap: 0 or a power of two */
	uint64_t seed;
} mg_btab;

/* Before a lookup that may add: grow when full. 0, or -ENOMEM when there is no table at all
 * (a table that cannot grow keeps working with longer chains). */
int mg_btab_room(mg_btab *t);
/* Where key's entry is (*slot its entry) or would be linked (*slot NULL). Needs a table:
 * after mg_btab_room, or where t->cap != 0. Valid until the table changes. */
mg_btent **mg_btab_slot(mg_btab *t, const void *key, size_t len);
/* Link e (key and len set) at a slot mg_btab_slot gave for its key. */
void mg_btab_link(mg_btab *t, mg_btent **slot, mg_btent *e);
/* Unlink *slot's entry and hand it back. */
mg_btent *mg_btab_unlink(mg_btab *t, mg_btent **slot);
/* Call each entry's free_ent (which may free it), then free the table. */
void mg_btab_free(mg_btab *t, void (*free_ent)(mg_btent *));
/* Walk: for (mg_btent *e = mg_btab_first(t, &i); e; e = mg_btab_next(t, &i, e)). An entry
 * must not be unlinked during a walk. */
mg_btent *mg_btab_next(const mg_btab *t, size_t *i, const mg_btent *e);
static inline mg_btent *mg_btab_first(const mg_btab *t, size_t *i)
{
	*i = 0;
	return mg_btab_next(t, i, NULL);
}

#endif
