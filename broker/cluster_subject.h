/*
 * broker/cluster_subject.h - MQTT topic names and filters as NATS subjects (cluster_subject.c).
 *
 * Pure: no allocation, no I/O, no locks; the caller gives the buffer. docs/cluster.md has the
 * rules and a table of examples; in short:
 *   - "mqtt." + levels for a topic whose first byte is not '$', "mqtt$." + levels for one
 *     that is (a filter starting with a wildcard never matches a '$' topic [MQTT-4.7.2-1]);
 *   - one NATS token per MQTT level; inside a level '.', '*', '>', '%', bytes <= 0x20 and
 *     0x7f are written %XX (upper-case hex); an empty level is the token "%";
 *   - in a filter '+' is "*" and '#' is ">", and "x/#" also subscribes "x" (MQTT's '#'
 *     matches the parent level, NATS's '>' needs one more token).
 * Topic -> subject -> topic is the identity. For any filter and topic, some subject of the
 * filter matches the topic's subject under NATS's rules exactly when mg_topic_match says so
 * (test/fuzz/fuzz_broker_cluster_subject.c checks both).
 */
#ifndef MG_BROKER_CLUSTER_SUBJECT_H
#define MG_BROKER_CLUSTER_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest subject midge sends or subscribes: it travels in NATS's protocol line, which the
 * server caps at max_control_line (4096 by default), with the verb, sid and size beside it.
 * A pattern matches only subjects at least as long as itself, so a filter whose subject is
 * longer could only match topics that are never sent either. */
#define MG_CSUBJ_MAX 3584

/* topic (a valid MQTT topic name, non-empty) -> NUL-terminated subject in out[cap].
 * Returns the subject's length, -E2BIG when it would exceed MG_CSUBJ_MAX or cap-1, -EINVAL
 * for an empty topic. */
int mg_csubj_from_topic(const uint8_t *topic, size_t len, char *out, size_t cap);

/* subject (as mg_csubj_from_topic writes them) -> topic in out[cap] (not NUL-terminated).
 * Returns the topic's length, or -EINVAL when s is not such a subject (wrong prefix, a bad
 * escape, a wildcard token, an unescaped byte that must be escaped), -E2BIG when cap is
 * too small. */
int mg_csubj_to_topic(const char *s, size_t len, uint8_t *out, size_t cap);

/* filter (a valid MQTT filter, not "$share/...") -> its NATS subscription subjects, written
 * one after the other into out[cap], each NUL-terminated. Returns how many (1 or 2), or
 * -E2BIG when none fits in MG_CSUBJ_MAX and the buffer (2 * MG_CSUBJ_MAX + 2 is always
 * enough). The second subject, when there is one, is the parent level of a "/#"; when only
 * the "x.>" of a "x/#" is too long, "x" alone is returned (the rest could match only
 * subjects too long to be sent). */
int mg_csubj_from_filter(const uint8_t *filter, size_t len, char *out, size_t cap);

/* topic (a valid topic name) -> a NATS key-value key in out[cap] (NUL-terminated): the
 * retained bucket's key (docs/cluster.md "Retained messages"). KV keys allow only
 * [-/_=.A-Za-z0-9] and no empty token, so levels are joined by '.', every byte but
 * [A-Za-z0-9_-] is written =XX (upper-case hex), and an empty level is "=". Injective:
 * two topics never share a key. Returns the key's length, -E2BIG past MG_CSUBJ_MAX - 64
 * (room for the bucket's subject prefix) or cap-1, -EINVAL for an empty topic. */
int mg_csubj_kv_key(const uint8_t *topic, size_t len, char *out, size_t cap);

/* NATS's own matching of a subscription subject (with "*" and ">" tokens) against a
 * subject: what nats-server does. For the tests and the fuzzer, and debugging. */
bool mg_csubj_match(const char *pattern, size_t plen, const char *subject, size_t slen);

#endif
