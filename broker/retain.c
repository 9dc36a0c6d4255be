/* broker/retain.c - retained messages in a tree of topic levels (see retain.h). */
#include "broker/retain.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/subtree_kids.h"
#include "proto/proto.h"

/* A node holds its own level; a node with a value also holds a copy of the whole topic
 * name, so the callbacks get it without rebuilding it. (Keeping the prefix in every node
 * instead would cost O(levels^2) bytes for one deep topic: 1 GB for "/" x 32767.) */
typedef struct rnode {
	mg_tnode h; /* h.key points at lvl */
	struct rnode *parent;
	mg_kids kids;
	void *v;        /* the retained value, NULL if none */
	uint8_t *topic; /* with v: the topic name */
	uint32_t tlen;
	uint8_t lvl[];
} rnode;

struct mg_retain {
	pthread_rwlock_t lock;
	_Atomic size_t count;
	_Atomic size_t nodes; /* besides the root: shows that pruning works */
	uint64_t seed;
	void (*ref)(void *v);
	void (*unref)(void *v);
	rnode *root; /* stands for no level (a separate allocation: it ends in a flexible array) */
};

mg_retain *mg_retain_new(void (*ref)(void *v), void (*unref)(void *v))
{
	mg_retain *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	if (!(r->root = calloc(1, sizeof *r->root))) {
		free(r);
		return NULL;
	}
	r->root->h.key = r->root->lvl;
	pthread_rwlockattr_t a;
	if (pthread_rwlockattr_init(&a) != 0) {
		free(r->root);
		free(r);
		return NULL;
	}
	/* glibc prefers readers by default: SUBSCRIBE storms would starve retained PUBLISH */
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	int rc = pthread_rwlock_init(&r->lock, &a);
	pthread_rwlockattr_destroy(&a);
	if (rc) {
		free(r->root);
		free(r);
		return NULL;
	}
	r->seed = mg_hash_seed();
	r->ref = ref;
	r->unref = unref;
	return r;
}

void mg_retain_free(mg_retain *r)
{
	if (!r)
		return;
	/* depth-first through parent pointers: no stack, no recursion */
	rnode *n = r->root;
	while (n) {
		rnode *c = (rnode *)mg_kids_take_any(&n->kids);
		if (c) {
			n = c;
			continue;
		}
		rnode *p = n->parent;
		if (n->v && r->unref)
			r->unref(n->v);
		free(n->topic);
		mg_kids_free(&n->kids);
		free(n);
		n = p;
	}
	pthread_rwlock_destroy(&r->lock);
	free(r);
}

size_t mg_retain_count(const mg_retain *r)
{
	return atomic_load_explicit(&((mg_retain *)r)->count, memory_order_relaxed);
}

size_t mg_retain_nodes(const mg_retain *r)
{
	return atomic_load_explicit(&((mg_retain *)r)->nodes, memory_order_relaxed);
}

/* Free n and its ancestors while they hold nothing (never the root). */
static void prune(mg_retain *r, rnode *n)
{
	while (n != r->root && !n->v && n->kids.n == 0) {
		rnode *p = n->parent;
		mg_kids_del(&p->kids, &n->h);
		mg_kids_free(&n->kids);
		free(n->topic);
		free(n);
		atomic_fetch_sub_explicit(&r->nodes, 1, memory_order_relaxed);
		n = p;
	}
}

int mg_retain_set(mg_retain *r, const uint8_t *topic, size_t len, void *v)
{
	int rc = 0;
	pthread_rwlock_wrlock(&r->lock);
	rnode *n = r->root;
	size_t off = 0;
	mg_bytes l;
	while (mg_topic_next_level(topic, len, &off, &l) == 1) {
		uint32_t h = mg_hash_bytes(r->seed, l.p, l.len);
		rnode *c = (rnode *)mg_kids_find(&n->kids, l.p, l.len, h);
		if (!c) {
			if (!v)
				goto out; /* deleting what is not there */
			c = calloc(1, sizeof *c + l.len);
			if (!c) {
				rc = -ENOMEM;
				goto undo;
			}
			if (l.len)
				memcpy(c->lvl, l.p, l.len);
			c->h.key = c->lvl;
			c->h.len = l.len;
			c->h.hash = h;
			c->parent = n;
			if (mg_kids_add(&n->kids, &c->h) < 0) {
				free(c);
				rc = -ENOMEM;
				goto undo;
			}
			atomic_fetch_add_explicit(&r->nodes, 1, memory_order_relaxed);
		}
		n = c;
	}
	if (v && !n->v) {
		if (!(n->topic = malloc(len))) {
			rc = -ENOMEM;
			goto undo;
		}
		memcpy(n->topic, topic, len);
		n->tlen = (uint32_t)len;
	} else if (!v && n->v) {
		free(n->topic);
		n->topic = NULL;
	}
	if (v && r->ref)
		r->ref(v); /* before unref: v may be the value already stored */
	if (n->v && r->unref)
		r->unref(n->v);
	if (v && !n->v)
		atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
	else if (!v && n->v)
		atomic_fetch_sub_explicit(&r->count, 1, memory_order_relaxed);
	n->v = v;
undo:
	prune(r, n);
out:
	pthread_rwlock_unlock(&r->lock);
	return rc;
}

/* ---- walking: an explicit stack, so no topic depth can overflow the C stack ---- */

#define ALL SIZE_MAX /* frame.d for "every node below, '#' reached" */

typedef struct frame {
	rnode *n;
	size_t d; /* filter level to match against n's children, or ALL */
} frame;

typedef struct fstack {
	frame *v;
	size_t n, cap;
} fstack;

static int push(fstack *s, rnode *n, size_t d)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		frame *v = realloc(s->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = (frame){ n, d };
	return 0;
}

/* Push every child of n, with the $-rule when n is the root and `skip_dollar`. */
static int push_kids(fstack *s, rnode *n, size_t d, bool skip_dollar)
{
	for (uint32_t i = 0; i < mg_kids_slots(&n->kids); i++) {
		rnode *c = (rnode *)n->kids.v[i].node;
		if (!c || (skip_dollar && c->h.len && c->h.key[0] == '$'))
			continue;
		if (push(s, c, d) < 0)
			return -ENOMEM;
	}
	return 0;
}

int mg_retain_match(mg_retain *r, const uint8_t *filter, size_t len,
                    int (*fn)(void *ctx, const uint8_t *topic, size_t tlen, void *v), void *ctx)
{
	/* split the filter once (a few levels usually: the stack array covers them) */
	mg_bytes small[16], *lv = small;
	size_t nl = 0, cap = 16, off = 0;
	mg_bytes l;
	while (mg_topic_next_level(filter, len, &off, &l) == 1) {
		if (nl == cap) {
			mg_bytes *x = malloc(2 * cap * sizeof *x);
			if (!x) {
				if (lv != small)
					free(lv);
				return -ENOMEM;
			}
			memcpy(x, lv, nl * sizeof *x);
			if (lv != small)
				free(lv);
			lv = x;
			cap *= 2;
		}
		lv[nl++] = l;
	}

	fstack s = { 0 };
	int rc = 0;
	pthread_rwlock_rdlock(&r->lock);
	rnode *n = r->root;
	size_t d = 0;
	for (;;) {
		/* n matched the filter's levels [0, d); d == ALL: n is under a '#' */
		if (d == ALL) {
			if (n->v && (rc = fn(ctx, n->topic, n->tlen, n->v)) != 0)
				break;
			if ((rc = push_kids(&s, n, ALL, false)) < 0)
				break;
		} else if (d == nl) {
			if (n->v && (rc = fn(ctx, n->topic, n->tlen, n->v)) != 0)
				break;
		} else {
			bool root = n == r->root;
			if (lv[d].len == 1 && lv[d].p[0] == '#') {
				/* "x/#" matches "x" itself and everything below */
				if (!root && n->v && (rc = fn(ctx, n->topic, n->tlen, n->v)) != 0)
					break;
				if ((rc = push_kids(&s, n, ALL, root)) < 0)
					break;
			} else if (lv[d].len == 1 && lv[d].p[0] == '+') {
				if ((rc = push_kids(&s, n, d + 1, root)) < 0)
					break;
			} else {
				rnode *c = (rnode *)mg_kids_find(&n->kids, lv[d].p, lv[d].len,
				                                 mg_hash_bytes(r->seed, lv[d].p, lv[d].len));
				if (c) {
					n = c;
					d++;
					continue;
				}
			}
		}
		if (s.n == 0)
			break;
		s.n--;
		n = s.v[s.n].n;
		d = s.v[s.n].d;
	}
	pthread_rwlock_unlock(&r->lock);
	free(s.v);
	if (lv != small)
		free(lv);
	return rc;
}

void mg_retain_foreach(mg_retain *r, int (*fn)(void *ctx, const uint8_t *topic, size_t tlen, void *v),
                       void *ctx)
{
	fstack s = { 0 };
	rnode **dead = NULL; /* leaves emptied by fn, pruned after the walk */
	size_t ndead = 0, dcap = 0;

	pthread_rwlock_wrlock(&r->lock);
	rnode *n = r->root;
	for (;;) {
		if (n->v) {
			int x = fn(ctx, n->topic, n->tlen, n->v);
			if (x == 1) {
				if (r->unref)
					r->unref(n->v);
				n->v = NULL;
				free(n->topic);
				n->topic = NULL;
				atomic_fetch_sub_explicit(&r->count, 1, memory_order_relaxed);
				if (n->kids.n == 0) {
					if (ndead == dcap) {
						size_t c = dcap ? dcap * 2 : 64;
						rnode **d = realloc(dead, c * sizeof *d);
						if (d) {
							dead = d;
							dcap = c;
						}
					}
					if (ndead < dcap) /* else the empty node stays until set() or free */
						dead[ndead++] = n;
				}
			} else if (x != 0) {
				break;
			}
		}
		if (push_kids(&s, n, 0, false) < 0)
			break; /* out of memory: stop early, as if fn had asked to */
		if (s.n == 0)
			break;
		n = s.v[--s.n].n;
	}
	/* Nothing was freed during the walk; a dead leaf's ancestors are not leaves, so
	 * pruning one never frees another that is still listed. */
	for (size_t i = 0; i < ndead; i++)
		prune(r, dead[i]);
	pthread_rwlock_unlock(&r->lock);
	free(dead);
	free(s.v);
}
