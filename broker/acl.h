/*
 * broker/acl.h - mosquitto's acl_file, compiled (acl.c).
 *
 * The file's language is mosquitto 2.0's, parsed as mosquitto parses it (docs/security.md,
 * "Access control"): `topic [read|write|readwrite|deny] FILTER` lines before any `user` line
 * apply to clients without a user name; after `user NAME` they apply to that user;
 * `pattern [ACCESS] FILTER` lines apply to everybody, with %c replaced by the client id and
 * %u by the user name. A line whose first character is '#' is a comment.
 *
 * The decision is mosquitto's, step for step: the client's own topic rules first (any
 * matching `deny` denies, else any matching rule granting the access allows); then, if
 * there are patterns at all, a client id or user name containing '+' or '#' is denied
 * (CVE-2017-7650: such a name would widen a pattern); then the patterns the same way;
 * otherwise denied. An empty file denies everything.
 *
 * Cost: each rule set is a tree of topic levels built once at load (literal children sorted
 * for binary search, '+' and '#' beside them, pattern levels holding %c/%u compared in place
 * against the topic's bytes with the id or name substituted, no copy). A check walks only
 * the branches the topic matches: a few node visits per level, no allocation, whatever the
 * number of rules. A user's rules are found by binary search on the name.
 *
 * Immutable once loaded: any thread may check concurrently. The broker swaps the pointer
 * only while every worker is parked (SIGHUP, broker/server.c).
 */
#ifndef MG_BROKER_ACL_H
#define MG_BROKER_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mg_acl mg_acl;

enum { MG_ACL_READ = 1, MG_ACL_WRITE = 2 };

enum mg_acl_result {
	MG_ACL_ALLOW = 0,
	MG_ACL_DENY = 1,
	MG_ACL_DENY_UNSAFE_USER = 2, /* user name holds '+' or '#' and patterns exist */
	MG_ACL_DENY_UNSAFE_ID = 3,   /* the same for the client id */
};

/* Read and compile the file at path. NULL on error with a message naming the file and line
 * in err ("Error: acl.conf:3: invalid topic access type 'rw' ..."). Pattern lines without
 * %c or %u are accepted with a warning through warn (may be NULL), as mosquitto does. */
mg_acl *mg_acl_load(const char *path, char *err, size_t errlen,
                    void (*warn)(const char *msg));
/* The same on a buffer (the fuzzer, tests); name is used in messages. */
mg_acl *mg_acl_parse(const char *name, const char *buf, size_t len, char *err, size_t errlen,
                     void (*warn)(const char *msg));
/* An ACL that denies everything (a broken file on reload: fail closed); static, never NULL,
 * mg_acl_free ignores it. */
mg_acl *mg_acl_deny_all(void);
void mg_acl_free(mg_acl *a);

/* May the client (id: NUL-terminated; user: NULL when it gave no user name) read or write
 * (MG_ACL_READ / MG_ACL_WRITE) topic t (a valid topic name, after the mount point)? */
enum mg_acl_result mg_acl_check(const mg_acl *a, const char *id, const char *user,
                                const uint8_t *t, size_t tlen, int access);

/* Rules compiled, for the startup log. */
size_t mg_acl_rule_count(const mg_acl *a);

#endif
