/*
 * broker/passwd.h - mosquitto 2.0's password file (passwd.c): reading it the way mosquitto
 * reads it, checking a password against an entry, and writing a new entry (midge_passwd).
 *
 * A line is `user:$7$ITERATIONS$SALT$HASH` (PBKDF2-HMAC-SHA512, 64 bytes) or
 * `user:$6$SALT$HASH` (SHA-512 of password then salt); SALT is 12 bytes and HASH 64 bytes,
 * both base64. Lines starting with '#' or without ':' are skipped; a user on several lines
 * gets the last line that decodes (mosquitto's hash table finds the last one added).
 *
 * Nothing here logs or keeps global state: messages go to the caller's callback, so the
 * broker, the fuzzer and midge_passwd share it. Hashing is OpenSSL's libcrypto; whoever
 * links passwd.o links -lcrypto.
 */
#ifndef MG_BROKER_PASSWD_H
#define MG_BROKER_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { MG_PW_SHA512 = 6, MG_PW_PBKDF2 = 7 };
#define MG_PW_SALT 12
#define MG_PW_HASH 64
#define MG_PW_DEFAULT_ITERATIONS 101 /* mosquitto_passwd's default */

typedef struct mg_pwent {
	char *user;                 /* NUL-terminated, owned */
	int type;                   /* MG_PW_SHA512 or MG_PW_PBKDF2 */
	int iterations;             /* MG_PW_PBKDF2 only */
	uint8_t salt[MG_PW_SALT];
	uint8_t hash[MG_PW_HASH];
} mg_pwent;

typedef struct mg_pwfile {
	mg_pwent *v;                /* sorted by user, one entry per user */
	size_t n;
} mg_pwfile;

/* level: 0 notice ("Warning: Invalid line ..."), 1 error ("Error: ... removing entry."). */
typedef void (*mg_pw_msg_fn)(void *ud, int level, const char *msg);

/* Parse a whole file's bytes; name is the file's name for messages. Returns 0 or -ENOMEM
 * (out is then empty). Bad lines are reported through msg (may be NULL) and skipped. */
int mg_pwfile_parse(const char *name, const char *buf, size_t len, mg_pwfile *out,
		mg_pw_msg_fn msg, void *ud);
/* Read and parse path. Returns 0, or a negative errno when it cannot be read. */
int mg_pwfile_load(const char *path, mg_pwfile *out, mg_pw_msg_fn msg, void *ud);
void mg_pwfile_free(mg_pwfile *f);
/* isspace() from both ends of s, in place (mosquitto's misc__trimblanks; a lone character
 * stays): how a password file line's user and password are read, here and by midge_passwd. */
char *mg_pw_trim(char *s);
/* The entry of user (len bytes, no NUL needed), or NULL. O(log n). */
const mg_pwent *mg_pwfile_find(const mg_pwfile *f, const void *user, size_t len);

/* The 64-byte digest of pw under (type, iterations, salt). 0 or -1 (libcrypto failed).
 * A $7$ entry costs `iterations` HMAC-SHA512 rounds: call it off the event loop. */
int mg_pw_digest(int type, int iterations, const uint8_t salt[MG_PW_SALT], const void *pw,
		size_t pwlen, uint8_t out[MG_PW_HASH]);
/* Does pw match e? The comparison takes the same time wherever the digests differ. */
bool mg_pw_check(const mg_pwent *e, const void *pw, size_t pwlen);
/* Two entries that check the same passwords the same way (a reload keeps such a user). */
bool mg_pwent_same(const mg_pwent *a, const mg_pwent *b);

/* Write "user:$7$iterations$salt$hash\n" (or $6$) with a fresh random salt into out.
 * Returns the length, or -1 (no randomness, libcrypto failed, or cap too small). */
int mg_pw_format(char *out, size_t cap, const char *user, int type, int iterations,
		const char *pw);

#endif
