/* broker/subtree.c - the subscription tree (see subtree.h for the locking scheme). */
#include "broker/subtree.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "broker/subtree_kids.h"

/* ---- a node's subscribers: an array, plus an index by subscriber once it is long ---- */

#define SUBLIST_INDEX_AT 16u /* below this, a linear scan on add/remove is cheaper */

typedef struct sublist {
	mg_sub_entry *v;
	uint32_t n, cap;
	uint32_t *idx; /* open addressing: position + 1, 0 = empty; NULL while short */
	uint32_t idx_cap;
	uint32_t n_no_local; /* entries with no_local: without any, fan-out skips the test */
} sublist;

static inline uint32_t ptr_hash(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 33;
	x *= 0xFF51AFD7ED558CCDull;
	x ^= x >> 33;
	return (uint32_t)x;
}

/* Position of subscriber in sl, or -1. */
static long sublist_find(const sublist *sl, const void *sub)
{
	if (!sl->idx) {
		for (uint32_t i = 0; i < sl->n; i++)
			if (sl->v[i].subscriber == sub)
				return i;
		return -1;
	}
	uint32_t mask = sl->idx_cap - 1;
	for (uint32_t i = ptr_hash(sub) & mask;; i = (i + 1) & mask) {
		uint32_t e = sl->idx[i];
		if (!e)
			return -1;
		if (sl->v[e - 1].subscriber == sub)
			return e - 1;
	}
}

static void idx_put(uint32_t *idx, uint32_t cap, const void *sub, uint32_t pos)
{
	uint32_t mask = cap - 1, i = ptr_hash(sub) & mask;
	while (idx[i])
		i = (i + 1) & mask;
	idx[i] = pos + 1;
}

static int idx_build(sublist *sl, uint32_t cap)
{
	uint32_t *idx = calloc(cap, sizeof *idx);
	if (!idx)
		return -ENOMEM;
	for (uint32_t i = 0; i < sl->n; i++)
		idx_put(idx, cap, sl->v[i].subscriber, i);
	free(sl->idx);
	sl->idx = idx;
	sl->idx_cap = cap;
	return 0;
}

/* Slot of the index that holds position pos. */
static uint32_t idx_slot(const sublist *sl, uint32_t pos)
{
	uint32_t mask = sl->idx_cap - 1;
	uint32_t i = ptr_hash(sl->v[pos].subscriber) & mask;
	while (sl->idx[i] != pos + 1)
		i = (i + 1) & mask;
	return i;
}

static int sublist_append(sublist *sl, const mg_sub_entry *e)
{
	if (sl->n == sl->cap) {
		uint32_t cap = sl->cap ? sl->cap * 2 : 1;
		mg_sub_entry *v = realloc(sl->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		sl->v = v;
		sl->cap = cap;
	}
	if (sl->idx && (sl->n + 1) * 2 > sl->idx_cap) {
		if (idx_build(sl, sl->idx_cap * 2) < 0)
			return -ENOMEM;
	} else if (!sl->idx && sl->n + 1 >= SUBLIST_INDEX_AT) {
		if (idx_build(sl, 4 * SUBLIST_INDEX_AT) < 0)
			return -ENOMEM;
	}
	sl->v[sl->n] = *e;
	sl->n_no_local += e->opts.no_local;
	if (sl->idx)
		idx_put(sl->idx, sl->idx_cap, e->subscriber, sl->n);
	sl->n++;
	return 0;
}

static void sublist_free(sublist *sl)
{
	free(sl->v);
	free(sl->idx);
	memset(sl, 0, sizeof *sl);
}

/* Remove position pos: the last entry moves into its place. Never fails. */
static void sublist_del(sublist *sl, uint32_t pos)
{
	uint32_t last = sl->n - 1;
	sl->n_no_local -= sl->v[pos].opts.no_local;
	if (sl->idx) {
		/* backward-shift delete pos's slot, then repoint last's slot to pos */
		uint32_t mask = sl->idx_cap - 1, i = idx_slot(sl, pos), j = i;
		for (;;) {
			j = (j + 1) & mask;
			if (!sl->idx[j])
				break;
			uint32_t home = ptr_hash(sl->v[sl->idx[j] - 1].subscriber) & mask;
			if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
				sl->idx[i] = sl->idx[j];
				i = j;
			}
		}
		sl->idx[i] = 0;
		if (pos != last)
			sl->idx[idx_slot(sl, last)] = pos + 1;
	}
	sl->v[pos] = sl->v[last];
	sl->n--;
	if (sl->n == 0)
		sublist_free(sl);
}

/* ---- nodes ---- */

typedef struct sgroup {
	struct sgroup *next;
	_Atomic uint32_t rr; /* round-robin cursor, bumped by concurrent matchers */
	sublist members;
	uint32_t len;
	uint8_t name[];
} sgroup;

typedef struct snode {
	mg_tnode h; /* the level; h.key points at lvl */
	struct snode *parent;
	struct snode *plus;  /* the '+' child */
	struct snode *multi; /* the '#' child */
	mg_kids kids;        /* exact children */
	sublist subs;        /* non-shared subscriptions */
	sgroup *groups;      /* shared subscriptions on this filter */
	uint8_t lvl[];
} snode;

/* ---- the lock: one pthread_rwlock per reader slot ("big-reader lock") ----
 * A single rwlock makes every match write the lock's cache line, so N matching threads
 * bounce that line between cores (2 threads were ~2x slower per match than 1). Instead a
 * reader takes only the rwlock of its own slot (threads get slots round-robin, so with up
 * to RW_SLOTS threads no two share one); a writer takes all slots in order. Writers pay
 * RW_SLOTS lock operations (~1 us), which SUBSCRIBE/UNSUBSCRIBE can afford. */
#define RW_SLOTS 32

typedef struct rwslot {
	_Alignas(64) pthread_rwlock_t l;
} rwslot;

static atomic_uint next_slot;
static _Thread_local int my_slot = -1;

struct mg_subtree {
	rwslot locks[RW_SLOTS];
	_Atomic size_t count;
	_Atomic size_t nodes; /* besides the root: shows that pruning works */
	uint64_t seed;
	uint64_t gen; /* this state of the tree, for the match cache: written under the write
	               * lock, read under a read lock; unique over all trees (gen_source) */
	snode *root; /* stands for no level (a separate allocation: it ends in a flexible array) */
	bool one_thread; /* mg_subtree_one_thread: no locks taken */
};

static inline int read_lock(mg_subtree *t)
{
	if (t->one_thread)
		return -1;
	int slot = my_slot;
	if (slot < 0)
		slot = my_slot = (int)(atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed) % RW_SLOTS);
	pthread_rwlock_rdlock(&t->locks[slot].l);
	return slot;
}

static inline void read_unlock(mg_subtree *t, int slot)
{
	if (slot >= 0)
		pthread_rwlock_unlock(&t->locks[slot].l);
}

static void write_lock(mg_subtree *t)
{
	if (t->one_thread)
		return;
	for (int i = 0; i < RW_SLOTS; i++)
		pthread_rwlock_wrlock(&t->locks[i].l);
}

/* Generations come from one counter for all trees, so a cache entry's generation names
 * one state of one tree: a tree freed and another allocated at its address never matches
 * an old entry. 0 is never handed out (an empty cache slot). */
static _Atomic uint64_t gen_source;

static uint64_t next_gen(void)
{
	return atomic_fetch_add_explicit(&gen_source, 1, memory_order_relaxed) + 1;
}

static void write_unlock(mg_subtree *t)
{
	t->gen = next_gen(); /* any change may have freed or added nodes: every cache entry is stale */
	if (t->one_thread)
		return;
	for (int i = RW_SLOTS - 1; i >= 0; i--)
		pthread_rwlock_unlock(&t->locks[i].l);
}

static int rwlock_init(pthread_rwlock_t *l)
{
	pthread_rwlockattr_t a;
	if (pthread_rwlockattr_init(&a) != 0)
		return -ENOMEM;
	/* glibc prefers readers by default: a busy broker would starve SUBSCRIBE */
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	int rc = pthread_rwlock_init(l, &a);
	pthread_rwlockattr_destroy(&a);
	return rc ? -ENOMEM : 0;
}

mg_subtree *mg_subtree_new(void)
{
	mg_subtree *t = aligned_alloc(_Alignof(mg_subtree), sizeof *t);
	if (!t)
		return NULL;
	memset(t, 0, sizeof *t);
	if (!(t->root = calloc(1, sizeof *t->root))) {
		free(t);
		return NULL;
	}
	t->root->h.key = t->root->lvl;
	for (int i = 0; i < RW_SLOTS; i++) {
		if (rwlock_init(&t->locks[i].l) < 0) {
			while (i--)
				pthread_rwlock_destroy(&t->locks[i].l);
			free(t->root);
			free(t);
			return NULL;
		}
	}
	t->seed = mg_hash_seed();
	t->gen = next_gen();
	return t;
}

static void node_release(snode *n)
{
	sublist_free(&n->subs);
	for (sgroup *g = n->groups, *next; g; g = next) {
		next = g->next;
		sublist_free(&g->members);
		free(g);
	}
	n->groups = NULL;
	mg_kids_free(&n->kids);
}

void mg_subtree_free(mg_subtree *t)
{
	if (!t)
		return;
	/* Depth-first teardown through parent pointers: no stack, so no allocation and no
	 * recursion however deep a filter went. */
	snode *n = t->root;
	while (n) {
		snode *c = n->plus;
		if (c)
			n->plus = NULL;
		else if ((c = n->multi))
			n->multi = NULL;
		else
			c = (snode *)mg_kids_take_any(&n->kids);
		if (c) {
			n = c;
			continue;
		}
		snode *p = n->parent;
		node_release(n);
		free(n);
		n = p;
	}
	for (int i = 0; i < RW_SLOTS; i++)
		pthread_rwlock_destroy(&t->locks[i].l);
	free(t);
}

void mg_subtree_one_thread(mg_subtree *t, bool on)
{
	t->one_thread = on;
}

size_t mg_subtree_count(const mg_subtree *t)
{
	return atomic_load_explicit(&((mg_subtree *)t)->count, memory_order_relaxed);
}

size_t mg_subtree_nodes(const mg_subtree *t)
{
	return atomic_load_explicit(&((mg_subtree *)t)->nodes, memory_order_relaxed);
}

static bool is_plus(mg_bytes l) { return l.len == 1 && l.p[0] == '+'; }
static bool is_multi(mg_bytes l) { return l.len == 1 && l.p[0] == '#'; }

static snode *child_of(const mg_subtree *t, snode *n, mg_bytes l)
{
	if (is_plus(l))
		return n->plus;
	if (is_multi(l))
		return n->multi;
	return (snode *)mg_kids_find(&n->kids, l.p, l.len, mg_hash_bytes(t->seed, l.p, l.len));
}

static snode *child_add(mg_subtree *t, snode *n, mg_bytes l)
{
	snode *c = calloc(1, sizeof *c + l.len);
	if (!c)
		return NULL;
	if (l.len)
		memcpy(c->lvl, l.p, l.len);
	c->h.key = c->lvl;
	c->h.len = l.len;
	c->parent = n;
	if (is_plus(l)) {
		n->plus = c;
	} else if (is_multi(l)) {
		n->multi = c;
	} else {
		c->h.hash = mg_hash_bytes(t->seed, l.p, l.len);
		if (mg_kids_add(&n->kids, &c->h) < 0) {
			free(c);
			return NULL;
		}
	}
	atomic_fetch_add_explicit(&t->nodes, 1, memory_order_relaxed);
	return c;
}

static bool node_empty(const snode *n)
{
	return n->subs.n == 0 && !n->groups && n->kids.n == 0 && !n->plus && !n->multi;
}

/* Free n and its ancestors while they are empty (never the root). */
static void prune(mg_subtree *t, snode *n)
{
	while (n != t->root && node_empty(n)) {
		snode *p = n->parent;
		if (p->plus == n)
			p->plus = NULL;
		else if (p->multi == n)
			p->multi = NULL;
		else
			mg_kids_del(&p->kids, &n->h);
		node_release(n);
		free(n);
		atomic_fetch_sub_explicit(&t->nodes, 1, memory_order_relaxed);
		n = p;
	}
}

/* Where n's share group named name is linked (*result NULL: none). Under either lock. */
static sgroup **group_of(snode *n, mg_bytes name)
{
	sgroup **pp = &n->groups;
	while (*pp && !((*pp)->len == name.len && memcmp((*pp)->name, name.p, name.len) == 0))
		pp = &(*pp)->next;
	return pp;
}

/* Split "$share/group/filter"; returns 1 shared, 0 not, <0 malformed. */
static int split_share(const uint8_t *f, size_t len, mg_bytes *group, mg_bytes *filter)
{
	int rc = mg_share_parse(f, len, group, filter);
	if (rc == 0) {
		group->p = NULL;
		group->len = 0;
		filter->p = f;
		filter->len = (uint32_t)len;
	}
	return rc < 0 ? -EINVAL : rc;
}

int mg_subtree_add(mg_subtree *t, const uint8_t *filter, size_t len, void *subscriber,
                   mg_subopts opts, uint32_t sub_id)
{
	mg_bytes group, f;
	int shared = split_share(filter, len, &group, &f);
	if (shared < 0)
		return shared;
	mg_sub_entry e = { .subscriber = subscriber, .opts = opts, .sub_id = sub_id };

	write_lock(t);
	int rc = -ENOMEM;
	snode *n = t->root;
	size_t off = 0;
	mg_bytes l;
	while (mg_topic_next_level(f.p, f.len, &off, &l) == 1) {
		snode *c = child_of(t, n, l);
		if (!c && !(c = child_add(t, n, l)))
			goto fail;
		n = c;
	}
	sublist *sl = &n->subs;
	sgroup *g = NULL, *newg = NULL;
	if (shared) {
		g = *group_of(n, group);
		if (!g) {
			g = newg = calloc(1, sizeof *g + group.len);
			if (!g)
				goto fail;
			memcpy(g->name, group.p, group.len);
			g->len = group.len;
			g->next = n->groups;
			n->groups = g;
		}
		sl = &g->members;
	}
	long pos = sublist_find(sl, subscriber);
	if (pos >= 0) {
		sl->n_no_local += (uint32_t)e.opts.no_local - sl->v[pos].opts.no_local;
		sl->v[pos] = e;
		rc = 1;
	} else if (sublist_append(sl, &e) == 0) {
		atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
		rc = 0;
	} else if (newg) { /* a new group whose first member did not fit */
		n->groups = newg->next;
		sublist_free(&newg->members);
		free(newg);
	}
fail:
	prune(t, n); /* undo nodes created for a subscription that did not fit */
	write_unlock(t);
	return rc;
}

/* The node of filter f (a shared filter's topic part), or NULL (none, or the root: an empty
 * filter). Under either lock. */
static snode *node_of(mg_subtree *t, mg_bytes f)
{
	snode *n = t->root;
	size_t off = 0;
	mg_bytes l;
	while (n && mg_topic_next_level(f.p, f.len, &off, &l) == 1)
		n = child_of(t, n, l);
	return n == t->root ? NULL : n;
}

int mg_subtree_remove(mg_subtree *t, const uint8_t *filter, size_t len, void *subscriber)
{
	mg_bytes group, f;
	int shared = split_share(filter, len, &group, &f);
	if (shared < 0)
		return -ENOENT;

	write_lock(t);
	int rc = -ENOENT;
	snode *n = node_of(t, f);
	if (!n)
		goto out;
	sgroup **pp = NULL;
	sublist *sl = &n->subs;
	if (shared) {
		pp = group_of(n, group);
		if (!*pp)
			goto out;
		sl = &(*pp)->members;
	}
	long pos = sublist_find(sl, subscriber);
	if (pos < 0)
		goto out;
	sublist_del(sl, (uint32_t)pos);
	atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
	if (shared && sl->n == 0) {
		sgroup *g = *pp;
		*pp = g->next;
		free(g);
	}
	prune(t, n);
	rc = 0;
out:
	write_unlock(t);
	return rc;
}

int mg_subtree_get(mg_subtree *t, const uint8_t *filter, size_t len, const void *subscriber,
                   mg_sub_entry *out)
{
	mg_bytes group, f;
	int shared = split_share(filter, len, &group, &f);
	if (shared < 0)
		return -ENOENT;
	int slot = read_lock(t);
	int rc = -ENOENT;
	snode *n = node_of(t, f);
	if (!n)
		goto out;
	const sublist *sl = &n->subs;
	if (shared) {
		const sgroup *g = *group_of(n, group);
		if (!g)
			goto out;
		sl = &g->members;
	}
	long pos = sublist_find(sl, subscriber);
	if (pos >= 0) {
		*out = sl->v[pos];
		rc = 0;
	}
out:
	read_unlock(t, slot);
	return rc;
}

/* ---- foreach: rebuild each node's filter from its parents ---- */

typedef struct buf {
	uint8_t *p;
	size_t len, cap;
} buf;

static int buf_reserve(buf *b, size_t need)
{
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Write "[$share/group/]level/level/..." for node n into b. */
static int node_filter(const mg_subtree *t, const snode *n, const sgroup *g, buf *b)
{
	size_t len = g ? 8 + g->len : 0; /* "$share/" + group + "/" */
	for (const snode *x = n; x != t->root; x = x->parent)
		len += x->h.len + (x->parent != t->root);
	if (buf_reserve(b, len + 1) < 0)
		return -ENOMEM;
	size_t end = len;
	for (const snode *x = n; x != t->root; x = x->parent) {
		end -= x->h.len;
		memcpy(b->p + end, x->h.key, x->h.len);
		if (x->parent != t->root)
			b->p[--end] = '/';
	}
	if (g) {
		memcpy(b->p, "$share/", 7);
		memcpy(b->p + 7, g->name, g->len);
		b->p[7 + g->len] = '/';
	}
	b->len = len;
	return 0;
}

int mg_subtree_foreach(mg_subtree *t,
                       int (*fn)(void *ctx, const uint8_t *filter, size_t flen, const mg_sub_entry *e),
                       void *ctx)
{
	buf b = { 0 };
	snode **stack = NULL;
	size_t sp = 0, scap = 0;
	int rc = 0;

	int slot = read_lock(t);
	snode *n = t->root;
	for (;;) {
		if (n->subs.n && (rc = node_filter(t, n, NULL, &b)) == 0)
			for (uint32_t i = 0; i < n->subs.n && !rc; i++)
				rc = fn(ctx, b.p, b.len, &n->subs.v[i]);
		for (sgroup *g = n->groups; g && !rc; g = g->next)
			if ((rc = node_filter(t, n, g, &b)) == 0)
				for (uint32_t i = 0; i < g->members.n && !rc; i++)
					rc = fn(ctx, b.p, b.len, &g->members.v[i]);
		if (rc)
			break;
		size_t need = sp + mg_kids_slots(&n->kids) + 2;
		if (need > scap) {
			size_t cap = scap ? scap : 64;
			while (cap < need)
				cap *= 2;
			snode **s = realloc(stack, cap * sizeof *s);
			if (!s) {
				rc = -ENOMEM;
				break;
			}
			stack = s;
			scap = cap;
		}
		if (n->plus)
			stack[sp++] = n->plus;
		if (n->multi)
			stack[sp++] = n->multi;
		for (uint32_t i = 0; i < mg_kids_slots(&n->kids); i++)
			if (n->kids.v[i].node)
				stack[sp++] = (snode *)n->kids.v[i].node;
		if (sp == 0)
			break;
		n = stack[--sp];
	}
	read_unlock(t, slot);
	free(stack);
	free(b.p);
	return rc;
}

/* ---- match ---- */

typedef struct lvl {
	const uint8_t *p;
	uint32_t len;
	uint32_t hash; /* computed on first need: only nodes with many children hash */
	bool hashed;
} lvl;

typedef struct frame {
	const snode *n;
	size_t d;
} frame;

typedef struct raw {
	void *subscriber;
	uint32_t sub_id;
	uint32_t merged; /* index of its merged entry */
	uint8_t qos;
	bool rap;
} raw;

/* ---- the match cache: exact topic -> the nodes collect() took subscribers from ----
 * Direct-mapped and per matchset (one thread): no lock of its own, a colliding topic just
 * replaces the entry. An entry holds node pointers, which stay valid while the tree's
 * generation is the one recorded (every add/remove bumps it under the write lock, and
 * nodes are freed only there); the generation is compared under the read lock, so the
 * nodes cannot go away between the check and the reads. Topics that never repeat pay a
 * hash and a copy of up to MC_TOPIC bytes per match. */
#define MC_SLOTS 512u
#define MC_TOPIC 96u /* longer topics are walked every time */
#define MC_NODES 6u  /* topics matched on more nodes are walked every time */

typedef struct mcent {
	uint64_t gen; /* 0 = empty */
	uint32_t hash;
	uint16_t len;
	uint8_t n_nodes;
	const struct snode *nodes[MC_NODES];
	uint8_t topic[MC_TOPIC];
} mcent;

void mg_matchset_free(mg_matchset *s)
{
	free(s->cache);
	free(s->m);
	free(s->ids);
	free(s->lv);
	free(s->stack);
	free(s->raw);
	free(s->seen);
	memset(s, 0, sizeof *s);
}

/* Grow *p (elements of size sz) to hold at least need; never shrinks. */
static int grow(void **p, size_t *cap, size_t need, size_t sz)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 16;
	while (c < need)
		c *= 2;
	void *q = realloc(*p, c * sz);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

/* Everything the walk needs, so that helpers take one pointer. */
typedef struct walk {
	mg_matchset *s;
	const void *publisher;
	bool (*eligible)(void *, void *);
	void *ctx;
	size_t nodes; /* nodes that contributed non-shared entries */
	size_t n_raw; /* shared picks, in s->raw */
	const snode *rec[MC_NODES]; /* the nodes collected from, in order, for the cache */
	size_t n_rec;               /* > MC_NODES: too many to cache */
} walk;

/* Append n's non-shared subscriptions to s->m, one entry each, ids as they come.
 * This is the fan-out loop: a straight copy, with the no_local test only on nodes that
 * have a no_local subscription. */
static int collect_subs(walk *w, const snode *n)
{
	mg_matchset *s = w->s;
	uint32_t k = n->subs.n;
	if (grow((void **)&s->m, &s->cap, s->n + k, sizeof *s->m) < 0 ||
	    grow((void **)&s->ids, &s->cap_ids, s->n_ids + k, sizeof *s->ids) < 0)
		return -ENOMEM;
	const mg_sub_entry *e = n->subs.v;
	mg_match *m = s->m + s->n;
	uint32_t *ids = s->ids;
	uint32_t ni = (uint32_t)s->n_ids;
	const void *skip = n->subs.n_no_local ? w->publisher : NULL;
	for (uint32_t i = 0; i < k; i++) {
		if (skip && e[i].opts.no_local && e[i].subscriber == skip) {
			s->n_unsent++; /* matched all the same: not "no matching subscribers" */
			continue;
		}
		m->subscriber = e[i].subscriber;
		m->qos = e[i].opts.qos;
		m->retain_as_published = e[i].opts.retain_as_published;
		m->n_ids = e[i].sub_id != 0;
		m->ids_off = ni;
		ids[ni] = e[i].sub_id; /* branch-free: kept only if non-zero */
		ni += e[i].sub_id != 0;
		m++;
	}
	s->n = (size_t)(m - s->m);
	s->n_ids = ni;
	w->nodes++;
	return 0;
}

/* One member per shared group of n, round-robin, into s->raw. When ineligible members were
 * skipped, the cursor moves past the chosen one, so the eligible share the load evenly
 * (racing matchers may disturb that order a little: it is fairness, not correctness). */
static int pick_member(walk *w, const sgroup *g)
{
	mg_matchset *s = w->s;
	uint32_t cnt = g->members.n;
	_Atomic uint32_t *rr = (_Atomic uint32_t *)&g->rr;
	uint32_t i = atomic_fetch_add_explicit(rr, 1, memory_order_relaxed) % cnt;
	uint32_t tried = 0;
	for (; tried < cnt; tried++, i = i + 1 == cnt ? 0 : i + 1) {
		const mg_sub_entry *e = &g->members.v[i];
		if (w->eligible && !w->eligible(e->subscriber, w->ctx))
			continue;
		if (tried)
			atomic_store_explicit(rr, i + 1, memory_order_relaxed);
		if (grow(&s->raw, &s->raw_cap, w->n_raw + 1, sizeof(raw)) < 0)
			return -ENOMEM;
		raw *r = (raw *)s->raw + w->n_raw++;
		r->subscriber = e->subscriber;
		r->sub_id = e->sub_id;
		r->qos = e->opts.qos;
		r->rap = e->opts.retain_as_published;
		return 0;
	}
	s->n_unsent++;
	return 0;
}

static int collect_groups(walk *w, const snode *n)
{
	for (const sgroup *g = n->groups; g; g = g->next)
		if (pick_member(w, g) < 0)
			return -ENOMEM;
	return 0;
}

static inline int collect(walk *w, const snode *n)
{
	if (!n->subs.n && !n->groups)
		return 0;
	if (w->n_rec < MC_NODES)
		w->rec[w->n_rec] = n;
	w->n_rec++;
	if (n->subs.n && collect_subs(w, n) < 0)
		return -ENOMEM;
	if (n->groups && collect_groups(w, n) < 0)
		return -ENOMEM;
	return 0;
}

/* Several nodes matched: fold the entries of s->m to one per subscriber (max QoS, any
 * retain_as_published, all ids), using s->raw after the shared picks as the copy. */
static int merge(walk *w)
{
	mg_matchset *s = w->s;
	size_t n = s->n;
	if (grow(&s->raw, &s->raw_cap, w->n_raw + n, sizeof(raw)) < 0)
		return -ENOMEM;
	size_t scap = 16;
	while (scap < 2 * n)
		scap *= 2;
	if (grow((void **)&s->seen, &s->seen_cap, scap, sizeof *s->seen) < 0)
		return -ENOMEM;
	raw *r = (raw *)s->raw + w->n_raw;
	for (size_t i = 0; i < n; i++) {
		r[i].subscriber = s->m[i].subscriber;
		r[i].sub_id = s->m[i].n_ids ? s->ids[s->m[i].ids_off] : 0;
		r[i].qos = s->m[i].qos;
		r[i].rap = s->m[i].retain_as_published;
	}
	memset(s->seen, 0, scap * sizeof *s->seen);
	uint32_t mask = (uint32_t)scap - 1, out = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t h = ptr_hash(r[i].subscriber) & mask;
		while (s->seen[h] && s->m[s->seen[h] - 1].subscriber != r[i].subscriber)
			h = (h + 1) & mask;
		mg_match *m;
		if (!s->seen[h]) {
			s->seen[h] = ++out;
			m = &s->m[out - 1];
			m->subscriber = r[i].subscriber;
			m->qos = r[i].qos;
			m->retain_as_published = r[i].rap;
			m->n_ids = 0;
		} else {
			m = &s->m[s->seen[h] - 1];
			if (r[i].qos > m->qos)
				m->qos = r[i].qos;
			m->retain_as_published |= r[i].rap;
		}
		if (r[i].sub_id && m->n_ids < UINT16_MAX)
			m->n_ids++;
		r[i].merged = s->seen[h] - 1;
	}
	/* lay the ids out per merged entry; n_ids counts again as they are filled */
	uint32_t off = 0;
	for (uint32_t j = 0; j < out; j++) {
		s->m[j].ids_off = off;
		off += s->m[j].n_ids;
		s->m[j].n_ids = 0;
	}
	for (size_t i = 0; i < n; i++) {
		mg_match *m = &s->m[r[i].merged];
		if (r[i].sub_id && m->n_ids < UINT16_MAX)
			s->ids[m->ids_off + m->n_ids++] = r[i].sub_id;
	}
	s->n = out;
	s->n_ids = off;
	return 0;
}

/* Append the shared picks (s->raw[0..n_raw)) after the merged entries. */
static int append_shared(walk *w)
{
	mg_matchset *s = w->s;
	size_t k = w->n_raw;
	if (grow((void **)&s->m, &s->cap, s->n + k, sizeof *s->m) < 0 ||
	    grow((void **)&s->ids, &s->cap_ids, s->n_ids + k, sizeof *s->ids) < 0)
		return -ENOMEM;
	const raw *r = s->raw;
	for (size_t i = 0; i < k; i++) {
		mg_match *m = &s->m[s->n++];
		m->subscriber = r[i].subscriber;
		m->qos = r[i].qos;
		m->retain_as_published = r[i].rap;
		m->n_ids = r[i].sub_id != 0;
		m->ids_off = (uint32_t)s->n_ids;
		if (r[i].sub_id)
			s->ids[s->n_ids++] = r[i].sub_id;
	}
	s->n_shared = k;
	return 0;
}

int mg_subtree_match(mg_subtree *t, const uint8_t *topic, size_t len, const void *publisher,
                     bool (*eligible)(void *subscriber, void *ctx), void *ctx, mg_matchset *s)
{
	s->n = s->n_ids = s->n_shared = s->n_unsent = 0;
	walk w = { .s = s, .publisher = publisher, .eligible = eligible, .ctx = ctx };
	int rc = 0;

	mcent *ce = NULL;
	uint32_t h = 0;
	if (len <= MC_TOPIC) {
		if (!s->cache)
			s->cache = calloc(MC_SLOTS, sizeof(mcent)); /* NULL: no cache, still correct */
		if (s->cache) {
			h = mg_hash_bytes(0, topic, len); /* unseeded: a collision only costs a walk, and a
			                                   * fixed hash keeps the cache's hits reproducible */
			ce = (mcent *)s->cache + (h & (MC_SLOTS - 1));
			if (ce->gen && ce->hash == h && ce->len == len && memcmp(ce->topic, topic, len) == 0) {
				int slot = read_lock(t);
				if (ce->gen == t->gen) {
					for (size_t i = 0; i < ce->n_nodes && rc == 0; i++)
						rc = collect(&w, ce->nodes[i]);
					read_unlock(t, slot);
					s->cache_hits++;
					goto done;
				}
				read_unlock(t, slot);
			}
		}
	}

	/* Split the topic once, outside the lock: offsets and hashes of every level. */
	size_t nl = 0, off = 0;
	mg_bytes l;
	while (mg_topic_next_level(topic, len, &off, &l) == 1) {
		if (grow(&s->lv, &s->lv_cap, nl + 1, sizeof(lvl)) < 0)
			return -ENOMEM;
		lvl *x = (lvl *)s->lv + nl++;
		x->p = l.p;
		x->len = l.len;
		x->hashed = false;
	}
	/* at most one pending '+' branch per level */
	if (grow(&s->stack, &s->stack_cap, nl + 1, sizeof(frame)) < 0)
		return -ENOMEM;
	lvl *lv = s->lv;
	frame *stack = s->stack;
	size_t sp = 0;
	bool dollar = len > 0 && topic[0] == '$';

	int slot = read_lock(t);
	uint64_t gen = t->gen;
	const snode *n = t->root;
	size_t d = 0;
	for (;;) {
		if (d == nl) {
			/* the topic ends here: this node's subscribers, and "x/#" matches "x" */
			if ((rc = collect(&w, n)) < 0 || (n->multi && (rc = collect(&w, n->multi)) < 0))
				break;
		} else {
			/* wildcards in the first level never match a "$..." topic [MQTT-4.7.2-1] */
			bool wild = d > 0 || !dollar;
			if (wild && n->multi && (rc = collect(&w, n->multi)) < 0)
				break;
			if (wild && n->plus)
				stack[sp++] = (frame){ n->plus, d + 1 };
			const mg_tnode *c;
			if (!mg_kids_hashed(&n->kids)) {
				c = mg_kids_find_small(&n->kids, lv[d].p, lv[d].len);
			} else {
				if (!lv[d].hashed) {
					lv[d].hash = mg_hash_bytes(t->seed, lv[d].p, lv[d].len);
					lv[d].hashed = true;
				}
				c = mg_kids_find_table(&n->kids, lv[d].p, lv[d].len, lv[d].hash);
			}
			if (c) {
				n = (const snode *)c;
				d++;
				continue;
			}
		}
		if (sp == 0)
			break;
		sp--;
		n = stack[sp].n;
		d = stack[sp].d;
	}
	read_unlock(t, slot);

	if (ce && rc == 0) {
		if (w.n_rec <= MC_NODES) {
			ce->gen = gen;
			ce->hash = h;
			ce->len = (uint16_t)len;
			ce->n_nodes = (uint8_t)w.n_rec;
			memcpy(ce->nodes, w.rec, w.n_rec * sizeof *w.rec);
			memcpy(ce->topic, topic, len);
		} else {
			ce->gen = 0;
		}
	}
done:
	if (rc == 0 && w.nodes > 1)
		rc = merge(&w);
	if (rc == 0 && w.n_raw)
		rc = append_shared(&w);
	if (rc < 0) {
		s->n = s->n_ids = s->n_shared = s->n_unsent = 0;
		return rc;
	}
	return (int)s->n;
}

int mg_subtree_match_group(mg_subtree *t, const uint8_t *share, size_t len,
                           bool (*eligible)(void *subscriber, void *ctx), void *ctx, mg_matchset *s)
{
	s->n = s->n_ids = s->n_shared = s->n_unsent = 0;
	mg_bytes group, f;
	if (split_share(share, len, &group, &f) != 1)
		return -EINVAL;
	walk w = { .s = s, .eligible = eligible, .ctx = ctx };
	int rc = 0;
	int slot = read_lock(t);
	snode *n = node_of(t, f);
	const sgroup *g = n ? *group_of(n, group) : NULL;
	if (g)
		rc = pick_member(&w, g);
	read_unlock(t, slot);
	if (rc == 0 && w.n_raw)
		rc = append_shared(&w);
	if (rc < 0) {
		s->n = s->n_ids = s->n_shared = s->n_unsent = 0;
		return rc;
	}
	return (int)s->n;
}
