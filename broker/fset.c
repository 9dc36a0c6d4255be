/* broker/fset.c - a session's set of filters (broker/fset.h). */
#include "broker/fset.h"
#include "broker/hash.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint64_t seed;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void)
{
	seed = mg_hash_seed();
}

static uint32_t hash(const uint8_t *f, size_t len)
{
	pthread_once(&seed_once, seed_init);
	return mg_hash_bytes(seed, f, len);
}

static int same(const mg_fent *e, const uint8_t *f, size_t len, uint32_t h)
{
	return e->hash == h && e->len == len && memcmp(e->f, f, len) == 0;
}

/* Index of f's entry, or (table mode) of the empty slot where the probe stopped; small
 * mode: n when absent. */
static uint32_t find(const mg_fset *s, const uint8_t *f, size_t len, uint32_t h)
{
	if (s->cap <= MG_FSET_SMALL) {
		uint32_t i = 0;
		while (i < s->n && !same(&s->v[i], f, len, h))
			i++;
		return i;
	}
	uint32_t mask = s->cap - 1, i = h & mask;
	while (s->v[i].f && !same(&s->v[i], f, len, h))
		i = (i + 1) & mask;
	return i;
}

static void put(mg_fent *v, uint32_t cap, mg_fent e)
{
	uint32_t mask = cap - 1, i = e.hash & mask;
	while (v[i].f)
		i = (i + 1) & mask;
	v[i] = e;
}

static int grow(mg_fset *s)
{
	uint32_t nc = s->cap < MG_FSET_SMALL ? (s->cap ? s->cap * 2 : 2)
	            : s->cap == MG_FSET_SMALL ? 32 : s->cap * 2;
	if (nc <= MG_FSET_SMALL) {
		mg_fent *v = realloc(s->v, nc * sizeof *v);
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = nc;
		return 0;
	}
	mg_fent *v = calloc(nc, sizeof *v);
	if (!v)
		return -ENOMEM;
	uint32_t used = s->cap <= MG_FSET_SMALL ? s->n : s->cap;
	for (uint32_t i = 0; i < used; i++)
		if (s->v[i].f)
			put(v, nc, s->v[i]);
	free(s->v);
	s->v = v;
	s->cap = nc;
	return 0;
}

int mg_fset_add(mg_fset *s, const uint8_t *f, size_t len)
{
	uint32_t h = hash(f, len);
	if (s->n) {
		uint32_t i = find(s, f, len, h);
		if (s->cap <= MG_FSET_SMALL ? i < s->n : s->v[i].f != NULL)
			return 0;
	}
	bool full = s->cap <= MG_FSET_SMALL ? s->n == s->cap : (s->n + 1) * 2 > s->cap;
	if (full && grow(s) < 0)
		return -ENOMEM;
	char *t = malloc(len + 1);
	if (!t)
		return -ENOMEM;
	memcpy(t, f, len);
	t[len] = 0;
	mg_fent e = { t, (uint32_t)len, h };
	if (s->cap <= MG_FSET_SMALL)
		s->v[s->n] = e;
	else
		put(s->v, s->cap, e);
	s->n++;
	return 1;
}

int mg_fset_del(mg_fset *s, const uint8_t *f, size_t len)
{
	if (!s->n)
		return 0;
	uint32_t h = hash(f, len);
	uint32_t i = find(s, f, len, h);
	if (s->cap <= MG_FSET_SMALL) {
		if (i == s->n)
			return 0;
		free(s->v[i].f);
		s->v[i] = s->v[--s->n];
		return 1;
	}
	if (!s->v[i].f)
		return 0;
	free(s->v[i].f);
	s->n--;
	/* Backward shift: pull later entries of the probe run into the hole when their home
	 * slot is not between the hole and them (cyclically), so no lookup stops early. */
	uint32_t mask = s->cap - 1, hole = i;
	for (uint32_t j = (i + 1) & mask; s->v[j].f; j = (j + 1) & mask) {
		uint32_t home = s->v[j].hash & mask;
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			s->v[hole] = s->v[j];
			hole = j;
		}
	}
	s->v[hole] = (mg_fent){ 0 };
	return 1;
}

void mg_fset_clear(mg_fset *s, void (*fn)(void *ud, const uint8_t *f, size_t len), void *ud)
{
	uint32_t used = s->cap <= MG_FSET_SMALL ? s->n : s->cap;
	for (uint32_t i = 0; i < used; i++)
		if (s->v[i].f) {
			if (fn)
				fn(ud, (const uint8_t *)s->v[i].f, s->v[i].len);
			free(s->v[i].f);
		}
	free(s->v);
	*s = (mg_fset){ 0 };
}
