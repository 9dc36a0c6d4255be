/*
 * broker/subtree.h - the subscription tree: topic filters -> subscribers.
 *
 * A tree of topic levels. Each node has its exact children (a small array, or an
 * open-addressing hash table keyed by the level bytes once there are more than a few), and
 * beside them at most one '+' child and one '#' child, so matching one topic name looks up
 * at most three children per level and never copies a level. "$share/group/filter" puts the
 * subscription into a shared group hung on filter's node; the key of a shared subscription
 * is (group, filter), and each matching group delivers to exactly one of its members.
 * Subscribers are opaque `void *` (the broker's session); the tree never dereferences them.
 *
 * Locking scheme (the broker runs N event-loop threads on one tree):
 *   - The tree owns a reader-writer lock made of 32 pthread_rwlocks, one per reader slot
 *     (a "big-reader lock"): a thread is given a slot, round-robin, the first time it reads
 *     any tree, so up to 32 reading threads never write the same lock cache line (a 33rd
 *     shares a slot); a writer takes every slot. Each rwlock is writer-preferring, so a
 *     steady stream of matches cannot starve SUBSCRIBE. A shared group's round-robin cursor
 *     is the one cache line that matching threads do write in common.
 *   - mg_subtree_match takes it for reading: any number of threads match in parallel.
 *     The round-robin cursor of a shared group is an atomic, bumped under the read lock.
 *   - mg_subtree_add / mg_subtree_remove take it for writing (~1 us: 32 slots);
 *     mg_subtree_foreach for reading.
 *   - mg_subtree_count reads an atomic: no lock.
 *   - The `eligible` callback of mg_subtree_match runs UNDER the read lock: it may take the
 *     session's own lock, but must never call back into the same tree (the lock is not
 *     recursive, and with a writer waiting a second read lock would deadlock).
 *   - A mg_matchset belongs to one thread (one per event loop); it is not shared.
 *   - mg_subtree_one_thread(t, true) switches all of this off for a tree that only one
 *     thread at a time uses (a broker with one worker).
 *   - Lifetime: match hands back subscriber pointers after the lock is released, so the
 *     broker must keep a subscriber object alive until no match that could have returned
 *     it is still in flight (refcount it, or free it only from a quiescent point), even
 *     after removing all its subscriptions.
 *
 * Costs: match splits the topic once (no copies; not at all when the topic is in the cache
 * described at mg_subtree_match), then visits the matching nodes only:
 * O(levels) for exact filters, plus one branch per '+' node met; no malloc once the
 * matchset has grown. Children are found by a short scan (<= 8) or a hash probe; only the
 * latter hashes the level. A node's subscribers are copied with a straight loop (fan-out
 * 1000 = 1000 16-byte copies, ~1 ns each). Overlapping subscriptions of one subscriber
 * are merged with a small hash over the results, only when more than one node matched.
 * add/remove are O(levels) plus O(1) (a node indexes its subscribers by pointer once it
 * has 16), plus, for a shared subscription, a scan of the groups on that filter's node.
 * bench/micro_broker_subtree prints the numbers.
 */
#ifndef MG_BROKER_SUBTREE_H
#define MG_BROKER_SUBTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

typedef struct mg_subtree mg_subtree;

/* One subscription of one subscriber to one filter. */
typedef struct mg_sub_entry {
	void *subscriber;
	mg_subopts opts;  /* qos, no_local, retain_as_published, retain_handling */
	uint32_t sub_id;  /* subscription identifier, 0 = none */
} mg_sub_entry;

mg_subtree *mg_subtree_new(void); /* NULL if out of memory */
void mg_subtree_free(mg_subtree *t);
/* Promise that from now on one thread at a time uses t, each handing it to the next with a
 * synchronisation of its own (thread start and join, a barrier): the read and write locks
 * are then skipped. The broker with one worker does this; the uncontended read lock around
 * every match was 5.7% of its time in pairs10-q0 (perf, bench/README.md). Call it before
 * other threads use t. */
void mg_subtree_one_thread(mg_subtree *t, bool on);

/* Add or replace the subscription of `subscriber` to `filter`. The caller has validated the
 * filter (mg_topic_filter_check, or mg_share_parse for "$share/group/filter"); the tree
 * splits a shared filter itself. The tree copies the filter bytes.
 * Returns 1 if it replaced this subscriber's existing subscription to the same
 * (group, filter) (options and sub_id are updated), 0 if new, -ENOMEM, or -EINVAL if a
 * "$share/" filter does not parse. */
int mg_subtree_add(mg_subtree *t, const uint8_t *filter, size_t len, void *subscriber,
                   mg_subopts opts, uint32_t sub_id);

/* Remove the subscription of `subscriber` to `filter` (same (group, filter) key as add).
 * Returns 0 if removed, -ENOENT if there was none. Empty nodes are freed on the way up. */
int mg_subtree_remove(mg_subtree *t, const uint8_t *filter, size_t len, void *subscriber);

/* The subscription of `subscriber` to `filter` (same key as add) into *out: 0, or -ENOENT.
 * Read lock; for moving a session to another node (cluster_session.c). */
int mg_subtree_get(mg_subtree *t, const uint8_t *filter, size_t len, const void *subscriber,
                   mg_sub_entry *out);

/* Subscriptions in total (each shared membership counts one), for $SYS. Lock-free. */
size_t mg_subtree_count(const mg_subtree *t);
/* Nodes (topic levels) in the tree, the root not counted: memory, for $SYS and tests. */
size_t mg_subtree_nodes(const mg_subtree *t);

/* Call fn for every subscription (read lock held: fn must not call into the tree).
 * filter/flen is the filter as added (with "$share/group/" for shared ones), in a
 * scratch buffer valid only during the call. Stops early if fn returns non-zero.
 * Returns 0, the non-zero value fn returned, or -ENOMEM. For $SYS, debugging, and tests. */
int mg_subtree_foreach(mg_subtree *t,
                       int (*fn)(void *ctx, const uint8_t *filter, size_t flen, const mg_sub_entry *e),
                       void *ctx);

/* One recipient of a message. The subscription identifiers of this recipient are
 * s->ids[ids_off .. ids_off + n_ids). */
typedef struct mg_match {
	void *subscriber;
	uint8_t qos;              /* the maximum QoS over its matching subscriptions */
	bool retain_as_published; /* set if any of its matching subscriptions has it */
	uint16_t n_ids;
	uint32_t ids_off;
} mg_match;

/* The result of a match, reused across calls by one thread: it grows and never shrinks,
 * so matching allocates nothing in steady state. Zero-initialise it ({0}) before first use;
 * free with mg_matchset_free. Fields after n_shared are the matcher's scratch space. */
typedef struct mg_matchset {
	mg_match *m;
	size_t n, cap;
	uint32_t *ids;
	size_t n_ids, cap_ids;
	size_t n_shared; /* m[n - n_shared .. n) were chosen from shared groups */
	size_t n_unsent; /* subscriptions that matched but give no entry: No Local skips of the
	                  * publisher's own, shared groups with no eligible member. A match
	                  * is "no matching subscribers" (0x10) only when n + n_unsent == 0. */
	size_t cache_hits; /* matches answered from the topic cache (tests, micro bench) */
	/* scratch, private to subtree.c */
	void *cache;     /* exact topic -> matching nodes, see mg_subtree_match */
	void *lv;        /* the topic split into levels */
	size_t lv_cap;
	void *stack;     /* the walk's explicit stack */
	size_t stack_cap;
	void *raw;       /* unmerged candidates */
	size_t raw_cap;
	uint32_t *seen;  /* open-addressing set for merging */
	size_t seen_cap;
} mg_matchset;

void mg_matchset_free(mg_matchset *s); /* frees the arrays; s may be reused afterwards */

/* Match `topic` (a valid topic name: no wildcards, non-empty). Clears s, then appends one
 * mg_match per recipient:
 *   - Non-shared subscriptions: one entry per SUBSCRIBER. Overlapping subscriptions of one
 *     subscriber are merged (MQTT 5.0 section 3.3.4): the maximum QoS, retain_as_published
 *     if any has it, and ALL their non-zero subscription identifiers (in no particular
 *     order; an identifier given to two matching subscriptions appears twice). A subscription with no_local whose subscriber ==
 *     publisher is skipped [MQTT-3.8.3-3]. Filters starting with a wildcard do not match
 *     topics starting with '$' [MQTT-4.7.2-1].
 *   - Shared groups: for each (group, filter) that matches, exactly one member, chosen
 *     round-robin across calls, skipping members for which eligible(subscriber, ctx)
 *     returns false (eligible may be NULL: all are eligible); none if no member is eligible.
 *     no_local is not applied (it is a protocol error on a shared subscription).
 *     These entries come last (s->n_shared of them) and are never merged with others: a
 *     subscriber that matches through a shared and a non-shared subscription gets two.
 *   - Matching subscriptions that give no entry (No Local, a group with no eligible member)
 *     are counted in s->n_unsent.
 * A topic matched before by this matchset skips the split and the walk: s keeps a small
 * cache (MC_SLOTS direct-mapped entries of topics up to MC_TOPIC bytes, ~80 KiB per
 * matchset, allocated on first use) from the exact topic to the nodes whose subscribers it
 * matched, valid for one generation of the tree (any add/remove makes it stale). The
 * subscribers are still read from those nodes under the read lock, so options, No Local,
 * identifiers and the shared groups' round-robin come out exactly as from a walk.
 * Returns the number of entries (s->n) or -ENOMEM (s is then empty). */
int mg_subtree_match(mg_subtree *t, const uint8_t *topic, size_t len, const void *publisher,
                     bool (*eligible)(void *subscriber, void *ctx), void *ctx, mg_matchset *s);

/* One member of the one shared group share ("$share/group/filter"), chosen as
 * mg_subtree_match chooses one (round-robin, eligible first), into s as its only entry
 * (s->n_shared 1); none when the group has no member here or none eligible (n_unsent 1).
 * For a message that a cluster node got for this group alone (cluster.h). Returns s->n,
 * -EINVAL if share is not a shared filter, or -ENOMEM. */
int mg_subtree_match_group(mg_subtree *t, const uint8_t *share, size_t len,
                           bool (*eligible)(void *subscriber, void *ctx), void *ctx, mg_matchset *s);

#endif
