/* broker/bytetab.c - a small chained hash table keyed by byte strings (bytetab.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/bytetab.h"
#include "broker/hash.h"

int mg_btab_room(mg_btab *t)
{
	if (t->n < t->cap)
		return 0;
	if (!t->v)
		t->seed = mg_hash_seed();
	size_t nc = t->cap ? t->cap * 2 : 256;
	mg_btent **nv = calloc(nc, sizeof *nv);
	if (!nv)
		return t->cap ? 0 : -ENOMEM; /* keep the longer chains */
	for (size_t i = 0; i < t->cap; i++)
		for (mg_btent *e = t->v[i], *nx; e; e = nx) {
			nx = e->next;
			mg_btent **b = &nv[e->hash & (nc - 1)];
			e->next = *b;
			*b = e;
		}
	free(t->v);
	t->v = nv;
	t->cap = nc;
	return 0;
}

mg_btent **mg_btab_slot(mg_btab *t, const void *key, size_t len)
{
	uint32_t h = mg_hash_bytes(t->seed, key, len);
	mg_btent **pp = &t->v[h & (t->cap - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0)
			break;
	return pp;
}

void mg_btab_link(mg_btab *t, mg_btent **slot, mg_btent *e)
{
	e->hash = mg_hash_bytes(t->seed, e->key, e->len);
	e->next = *slot;
	*slot = e;
	t->n++;
}

mg_btent *mg_btab_unlink(mg_btab *t, mg_btent **slot)
{
	mg_btent *e = *slot;
	*slot = e->next;
	e->next = NULL;
	t->n--;
	return e;
}

mg_btent *mg_btab_next(const mg_btab *t, size_t *i, const mg_btent *e)
{
	if (e && e->next)
		return e->next;
	if (e)
		++*i;
	for (; *i < t->cap; ++*i)
		if (t->v[*i])
			return t->v[*i];
	return NULL;
}

void mg_btab_free(mg_btab *t, void (*free_ent)(mg_btent *))
{
	for (size_t i = 0; i < t->cap; i++)
		for (mg_btent *e = t->v[i], *nx; e; e = nx) {
			nx = e->next;
			free_ent(e);
		}
	free(t->v);
	*t = (mg_btab){ 0 };
}
