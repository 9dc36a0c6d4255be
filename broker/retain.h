/*
 * broker/retain.h - retained messages, keyed by topic name.
 *
 * A tree of topic levels like the subscription tree's, so that a filter such as "#" or
 * "a/+/c" walks only the matching branches instead of testing every retained topic.
 * Values are opaque pointers to the broker's refcounted messages: the store calls ref()
 * when it takes a value and unref() when it drops one (replace, delete, free).
 *
 * Locking: the store owns a pthread_rwlock (writer-preferring). mg_retain_match takes it
 * for reading (many threads in parallel); mg_retain_set, mg_retain_foreach take it for
 * writing; mg_retain_count reads an atomic. Callbacks run UNDER the lock: they must not
 * call into the same store. ref()/unref() are also called under the write lock, so they
 * must not call into the store either (unref freeing the message is fine).
 *
 * Costs: set is O(levels); match is O(nodes visited): an exact filter is O(levels), "#"
 * visits every node once. Each retained topic's node keeps the whole topic name, so the
 * callbacks get it without rebuilding it.
 */
#ifndef MG_BROKER_RETAIN_H
#define MG_BROKER_RETAIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct mg_retain mg_retain;

/* ref/unref: called when the store takes or drops a value (either may be NULL: no-op). */
mg_retain *mg_retain_new(void (*ref)(void *v), void (*unref)(void *v)); /* NULL on ENOMEM */
/* Drops (unref) every value and frees the store. */
void mg_retain_free(mg_retain *r);

/* Set topic's retained value (a valid topic name; the store takes a reference and copies
 * the topic bytes); v == NULL deletes it (no error if there was none).
 * Returns 0 or -ENOMEM (the old value is then left in place). */
int mg_retain_set(mg_retain *r, const uint8_t *topic, size_t len, void *v);

size_t mg_retain_count(const mg_retain *r); /* retained topics; lock-free */
size_t mg_retain_nodes(const mg_retain *r); /* topic levels held, root not counted; lock-free */

/* Call fn for every retained topic that `filter` (a valid, non-shared topic filter)
 * matches, with '+', '#' ("a/#" matches "a" too) and the $-rule: a filter starting with a
 * wildcard does not match topics starting with '$' [MQTT-4.7.2-1]. fn borrows the topic
 * and the value: take your own reference to keep the value. Stops early if fn returns
 * non-zero. Returns 0, the non-zero value fn returned, or -ENOMEM. Order is unspecified. */
int mg_retain_match(mg_retain *r, const uint8_t *filter, size_t len,
                    int (*fn)(void *ctx, const uint8_t *topic, size_t tlen, void *v), void *ctx);

/* Call fn for every retained topic (persistence, expiry sweeps), under the write lock.
 * fn returns 0 to keep the entry, 1 to delete it (unref'd), anything else to stop.
 * Order is unspecified. */
void mg_retain_foreach(mg_retain *r, int (*fn)(void *ctx, const uint8_t *topic, size_t tlen, void *v),
                       void *ctx);

#endif
