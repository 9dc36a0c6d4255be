/*
 * broker/fset.h - a session's own set of the filters it holds in the subscription tree, so
 * that a repeated SUBSCRIBE is recognised and an UNSUBSCRIBE or the end of the session can
 * remove them. O(1) per filter: a session may hold hundreds of thousands, and a scan per
 * filter made one SUBSCRIBE of 65,535 filters hold its worker for seconds.
 *
 * Up to MG_FSET_SMALL filters sit in a dense array (a short scan, no hashing: most sessions
 * hold a handful); more turn it into an open-addressing table with linear probing, at most
 * half full, with backward-shift deletion (no tombstones). The hash is seeded once per
 * process from getrandom, so that a client cannot pick filters that all collide.
 * Owned by the session's worker; no locking.
 */
#ifndef MG_BROKER_FSET_H
#define MG_BROKER_FSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct mg_fent {
	char *f;       /* malloc'd, NUL-terminated; NULL: empty slot */
	uint32_t len;
	uint32_t hash;
} mg_fent;

typedef struct mg_fset {
	mg_fent *v;
	uint32_t n;   /* filters */
	uint32_t cap; /* <= MG_FSET_SMALL: dense v[0..n); else a power-of-two table */
} mg_fset;

#define MG_FSET_SMALL 8u

/* 1: added (copied), 0: already there, -ENOMEM. */
int mg_fset_add(mg_fset *s, const uint8_t *f, size_t len);
/* 1: removed, 0: was not there. */
int mg_fset_del(mg_fset *s, const uint8_t *f, size_t len);
/* Calls fn for every filter, then frees them and the set (left empty). */
void mg_fset_clear(mg_fset *s, void (*fn)(void *ud, const uint8_t *f, size_t len), void *ud);

#endif
