/*
 * broker/subtree_kids.h - the children of one topic-level node, keyed by the level bytes.
 * Private to subtree.c and retain.c (both trees of topic levels).
 *
 * Up to MG_KIDS_SMALL children sit in a dense array (a short scan beats hashing for the
 * usual handful); more turn it into an open-addressing table with linear probing, at most
 * half full, with backward-shift deletion (no tombstones). Each slot keeps the level's hash
 * beside the node pointer, so a probe rejects a slot without touching the other node.
 * The hash (broker/hash.h) is seeded per tree so that clients cannot cheaply pick levels
 * that all collide in one node.
 */
#ifndef MG_BROKER_SUBTREE_KIDS_H
#define MG_BROKER_SUBTREE_KIDS_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/hash.h"

/* The head of every node: the level it stands for (key points into the node itself). */
typedef struct mg_tnode {
	const uint8_t *key;
	uint32_t len;
	uint32_t hash;
} mg_tnode;

typedef struct mg_kslot {
	mg_tnode *node; /* NULL: empty */
	uint32_t hash;
} mg_kslot;

#define MG_KIDS_SMALL 8u
#define MG_KIDS_FIRST_TABLE 32u

typedef struct mg_kids {
	mg_kslot *v;
	uint32_t n;   /* children */
	uint32_t cap; /* <= MG_KIDS_SMALL: dense v[0..n), rest NULL; else a power-of-two table */
} mg_kids;

/* Level equality: short levels compare as words, no call into libc. */
static inline int mg_level_eq(const uint8_t *a, const uint8_t *b, uint32_t len)
{
	if (len <= 8)
		return mg_hash_word(a, len) == mg_hash_word(b, len);
	return memcmp(a, b, len) == 0;
}

static inline int mg_kids_eq(const mg_tnode *c, const uint8_t *p, uint32_t len)
{
	return c->len == len && mg_level_eq(c->key, p, len);
}

/* Small mode needs no hash: is k a table (then the caller hashes the level)? */
static inline int mg_kids_hashed(const mg_kids *k)
{
	return k->cap > MG_KIDS_SMALL;
}

static inline mg_tnode *mg_kids_find_small(const mg_kids *k, const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < k->n; i++)
		if (mg_kids_eq(k->v[i].node, p, len))
			return k->v[i].node;
	return NULL;
}

static inline mg_tnode *mg_kids_find_table(const mg_kids *k, const uint8_t *p, uint32_t len, uint32_t h)
{
	uint32_t mask = k->cap - 1;
	for (uint32_t i = h & mask;; i = (i + 1) & mask) {
		mg_tnode *c = k->v[i].node;
		if (!c)
			return NULL;
		if (k->v[i].hash == h && mg_kids_eq(c, p, len))
			return c;
	}
}

/* Find the child for level p/len whose hash is h (h is only read in table mode). */
static inline mg_tnode *mg_kids_find(const mg_kids *k, const uint8_t *p, uint32_t len, uint32_t h)
{
	return mg_kids_hashed(k) ? mg_kids_find_table(k, p, len, h) : mg_kids_find_small(k, p, len);
}

static inline void mg_kids_put(mg_kslot *v, uint32_t cap, mg_tnode *c)
{
	uint32_t mask = cap - 1;
	uint32_t i = c->hash & mask;
	while (v[i].node)
		i = (i + 1) & mask;
	v[i].node = c;
	v[i].hash = c->hash;
}

/* Rebuild into `cap` slots (a table if cap > MG_KIDS_SMALL, else a dense array). */
static inline int mg_kids_resize(mg_kids *k, uint32_t cap)
{
	mg_kslot *v = calloc(cap, sizeof *v);
	if (!v)
		return -ENOMEM;
	uint32_t old = k->cap <= MG_KIDS_SMALL ? k->n : k->cap, j = 0;
	for (uint32_t i = 0; i < old; i++) {
		if (!k->v[i].node)
			continue;
		if (cap > MG_KIDS_SMALL)
			mg_kids_put(v, cap, k->v[i].node);
		else
			v[j++] = k->v[i];
	}
	free(k->v);
	k->v = v;
	k->cap = cap;
	return 0;
}

/* Add c (not already present). Returns 0 or -ENOMEM (k unchanged). */
static inline int mg_kids_add(mg_kids *k, mg_tnode *c)
{
	if (k->cap <= MG_KIDS_SMALL) {
		if (k->n == k->cap) {
			uint32_t cap = k->cap ? k->cap * 2 : 2;
			if (cap > MG_KIDS_SMALL)
				cap = MG_KIDS_FIRST_TABLE;
			if (mg_kids_resize(k, cap) < 0)
				return -ENOMEM;
			if (cap > MG_KIDS_SMALL) {
				mg_kids_put(k->v, k->cap, c);
				k->n++;
				return 0;
			}
		}
		k->v[k->n].node = c;
		k->v[k->n].hash = c->hash;
		k->n++;
		return 0;
	}
	if ((k->n + 1) * 2 > k->cap && mg_kids_resize(k, k->cap * 2) < 0)
		return -ENOMEM;
	mg_kids_put(k->v, k->cap, c);
	k->n++;
	return 0;
}

/* Remove c (present). Never fails; frees the array when the last child goes. */
static inline void mg_kids_del(mg_kids *k, mg_tnode *c)
{
	if (k->cap <= MG_KIDS_SMALL) {
		for (uint32_t i = 0; i < k->n; i++) {
			if (k->v[i].node == c) {
				k->v[i] = k->v[k->n - 1];
				k->v[k->n - 1].node = NULL;
				k->n--;
				break;
			}
		}
	} else {
		uint32_t mask = k->cap - 1, i = c->hash & mask;
		while (k->v[i].node != c)
			i = (i + 1) & mask;
		/* backward shift: pull later members of the probe run into the hole */
		uint32_t j = i;
		for (;;) {
			j = (j + 1) & mask;
			if (!k->v[j].node)
				break;
			uint32_t home = k->v[j].hash & mask;
			/* move j to i unless its home lies cyclically in (i, j] */
			if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
				k->v[i] = k->v[j];
				i = j;
			}
		}
		k->v[i].node = NULL;
		k->n--;
		/* shrink back to a small array when few remain (memory follows the tree) */
		if (k->n <= MG_KIDS_SMALL / 2)
			(void)mg_kids_resize(k, MG_KIDS_SMALL); /* on ENOMEM the table just stays */
	}
	if (k->n == 0) {
		free(k->v);
		k->v = NULL;
		k->cap = 0;
	}
}

/* Slots to scan when iterating: for (i = 0; i < mg_kids_slots(k); i++) if (k->v[i].node) ... */
static inline uint32_t mg_kids_slots(const mg_kids *k)
{
	return k->cap <= MG_KIDS_SMALL ? k->n : k->cap;
}

/* Teardown only: detach and return some child, NULL when none are left. O(cap) in total
 * over all calls (cap doubles as a scan cursor), so freeing a tree needs no stack. */
static inline mg_tnode *mg_kids_take_any(mg_kids *k)
{
	while (k->cap > 0 && (!k->v || !k->v[k->cap - 1].node))
		k->cap--;
	if (k->cap == 0)
		return NULL;
	mg_tnode *c = k->v[k->cap - 1].node;
	k->v[k->cap - 1].node = NULL;
	k->n--;
	return c;
}

static inline void mg_kids_free(mg_kids *k)
{
	free(k->v);
	k->v = NULL;
	k->n = k->cap = 0;
}

#endif
