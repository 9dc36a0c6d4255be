/*
 * test/fuzz/fuzz_broker_passwd.c - the password-file parser (broker/passwd.c).
 *
 * Input: a password file. Whatever it holds, the table must come out sorted with one entry
 * per user, every entry of a known type with 12 salt and 64 hash bytes, and every user
 * found again by mg_pwfile_find. Each entry is then written back as a line in mosquitto's
 * format and read again: the decoder must give back the same entry (a round trip through
 * OpenSSL's base64, which is what mosquitto reads the file with). Nothing is hashed: a file
 * may ask for any number of rounds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "broker/passwd.h"

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mg_pwfile f;
	if (mg_pwfile_parse("fuzz", (const char *)data, size, &f, NULL, NULL) < 0)
		return 0;
	for (size_t i = 0; i < f.n; i++) {
		const mg_pwent *e = &f.v[i];
		MUST(e->type == MG_PW_SHA512 || e->type == MG_PW_PBKDF2);
		MUST(e->type == MG_PW_SHA512 || e->iterations >= 1);
		MUST(!strchr(e->user, ':') && !strchr(e->user, '\n'));
		if (i)
			MUST(strcmp(f.v[i - 1].user, e->user) < 0);
		MUST(mg_pwfile_find(&f, e->user, strlen(e->user)) == e);
		/* round trip, for users a line can hold as they are (a leading '#' makes a comment,
		 * an empty name lets strtok take the hash for the name, as in mosquitto) */
		if (!e->user[0] || e->user[0] == '#' || strlen(e->user) > 4096)
			continue;
		char salt64[32], hash64[96], line[4400];
		EVP_EncodeBlock((unsigned char *)salt64, e->salt, MG_PW_SALT);
		EVP_EncodeBlock((unsigned char *)hash64, e->hash, MG_PW_HASH);
		int n = e->type == MG_PW_PBKDF2
			? snprintf(line, sizeof line, "%s:$7$%d$%s$%s\n", e->user, e->iterations, salt64, hash64)
			: snprintf(line, sizeof line, "%s:$6$%s$%s\n", e->user, salt64, hash64);
		mg_pwfile g;
		MUST(mg_pwfile_parse("again", line, (size_t)n, &g, NULL, NULL) == 0);
		MUST(g.n == 1 && strcmp(g.v[0].user, e->user) == 0 && mg_pwent_same(&g.v[0], e));
		mg_pwfile_free(&g);
	}
	mg_pwfile_free(&f);
	return 0;
}
