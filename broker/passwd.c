/*
 * broker/passwd.c - mosquitto 2.0's password file: read as mosquitto reads it (the same
 * tokenising, the same trimming, the same reasons to drop a line, the same messages), so a
 * file behaves the same under both brokers. See passwd.h.
 */
#include "broker/passwd.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define MAX_FIELD 65535 /* mosquitto drops a longer user name or hash */

static void say(mg_pw_msg_fn msg, void *ud, int level, const char *fmt, const char *a, const char *b)
{
	if (!msg)
		return;
	char text[512];
	snprintf(text, sizeof text, fmt, a, b);
	msg(ud, level, text);
}

char *mg_pw_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 1 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* base64 through OpenSSL's BIO without newlines, as mosquitto decodes it, so the same
 * strings are accepted. Returns the decoded length or -1. */
static int b64_decode(const char *in, uint8_t *out, size_t cap)
{
	size_t slen = strlen(in);
	if (slen > MAX_FIELD)
		return -1;
	BIO *b64 = BIO_new(BIO_f_base64()), *mem = BIO_new(BIO_s_mem());
	if (!b64 || !mem) {
		BIO_free(b64);
		BIO_free(mem);
		return -1;
	}
	BIO_set_flags(b64, BIO_FLAGS_BASE64_NO_NL);
	b64 = BIO_push(b64, mem);
	int len = -1;
	uint8_t *tmp = malloc(slen + 1);
	if (tmp && BIO_write(mem, in, (int)slen) == (int)slen) {
		len = BIO_read(b64, tmp, (int)slen + 1);
		if (len > 0 && (size_t)len <= cap)
			memcpy(out, tmp, (size_t)len);
		else if (len > 0)
			len = (int)cap + 1; /* the wrong length: the caller says so */
	}
	free(tmp);
	BIO_free_all(b64);
	return len > 0 ? len : -1;
}

/* The hash part of one line ("$7$101$salt$hash"), into e. false: dropped (said why). */
static bool decode_hash(char *pw, mg_pwent *e, mg_pw_msg_fn msg, void *ud)
{
	char *save = NULL;
	char *tok = strtok_r(pw, "$", &save);
	if (!tok) {
		say(msg, ud, 1, "Error: Invalid password hash for user %s, removing entry.", e->user, NULL);
		return false;
	}
	if (strcmp(tok, "6") == 0) {
		e->type = MG_PW_SHA512;
	} else if (strcmp(tok, "7") == 0) {
		e->type = MG_PW_PBKDF2;
	} else {
		say(msg, ud, 1, "Error: Invalid password hash type for user %s, removing entry.", e->user, NULL);
		return false;
	}
	if (e->type == MG_PW_PBKDF2) {
		if (!(tok = strtok_r(NULL, "$", &save))) {
			say(msg, ud, 1, "Error: Invalid password hash for user %s, removing entry.", e->user, NULL);
			return false;
		}
		e->iterations = (int)strtol(tok, NULL, 10); /* glibc's atoi, which mosquitto calls */
		if (e->iterations < 1) {
			say(msg, ud, 1, "Error: Invalid hash iterations for user %s, removing entry.", e->user, NULL);
			return false;
		}
	}
	if (!(tok = strtok_r(NULL, "$", &save))) {
		say(msg, ud, 1, "Error: Invalid password hash for user %s, removing entry.", e->user, NULL);
		return false;
	}
	if (b64_decode(tok, e->salt, sizeof e->salt) != MG_PW_SALT) {
		say(msg, ud, 1, "Error: Unable to decode password salt for user %s, removing entry.", e->user, NULL);
		return false;
	}
	if (!(tok = strtok_r(NULL, "$", &save))) {
		say(msg, ud, 1, "Error: Invalid password hash for user %s, removing entry.", e->user, NULL);
		return false;
	}
	if (b64_decode(tok, e->hash, sizeof e->hash) != MG_PW_HASH) {
		say(msg, ud, 1, "Error: Unable to decode password for user %s, removing entry.", e->user, NULL);
		return false;
	}
	return true;
}

/* One line (a C string: it ends at its first NUL, as fgets' buffer does for mosquitto).
 * Returns 1 with *e filled, 0 skipped, -1 out of memory. */
static int parse_line(const char *name, char *buf, mg_pwent *e, mg_pw_msg_fn msg, void *ud)
{
	if (buf[0] == '#' || !strchr(buf, ':'))
		return 0;
	char *save = NULL;
	char *user = strtok_r(buf, ":", &save);
	if (!user)
		return 0;
	user = mg_pw_trim(user);
	if (strlen(user) > MAX_FIELD) {
		say(msg, ud, 0, "Warning: Invalid line in password file '%s', username too long.", name, NULL);
		return 0;
	}
	char *pw = strtok_r(NULL, ":", &save);
	if (!pw) {
		say(msg, ud, 0, "Warning: Invalid line in password file '%s': %s", name, buf);
		return 0;
	}
	pw = mg_pw_trim(pw);
	if (strlen(pw) > MAX_FIELD) {
		say(msg, ud, 0, "Warning: Invalid line in password file '%s', password too long.", name, NULL);
		return 0;
	}
	memset(e, 0, sizeof *e);
	if (!(e->user = strdup(user)))
		return -1;
	if (!decode_hash(pw, e, msg, ud)) {
		free(e->user);
		e->user = NULL;
		return 0;
	}
	return 1;
}

/* Sorting keeps line order among one user's lines: (user, line index) is a unique key. */
typedef struct ord {
	mg_pwent e;
	size_t idx;
} ord;

static int cmp_ord(const void *a, const void *b)
{
	const ord *x = a, *y = b;
	int c = strcmp(x->e.user, y->e.user);
	return c ? c : x->idx < y->idx ? -1 : 1;
}

int mg_pwfile_parse(const char *name, const char *buf, size_t len, mg_pwfile *out,
		mg_pw_msg_fn msg, void *ud)
{
	out->v = NULL;
	out->n = 0;
	size_t cap = 0;
	char *line = NULL;
	size_t linecap = 0;
	size_t pos = 0;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) + 1 : len - pos;
		if (n + 1 > linecap) {
			char *l = realloc(line, n + 1);
			if (!l)
				goto nomem;
			line = l;
			linecap = n + 1;
		}
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos += n;
		if (out->n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			mg_pwent *v = realloc(out->v, nc * sizeof *v);
			if (!v)
				goto nomem;
			out->v = v;
			cap = nc;
		}
		int r = parse_line(name, line, &out->v[out->n], msg, ud);
		if (r < 0)
			goto nomem;
		if (r > 0)
			out->n++;
	}
	free(line);
	/* One entry per user, the last line that decoded: mosquitto's hash table finds the
	 * entry added last. */
	if (out->n > 1) {
		ord *o = malloc(out->n * sizeof *o);
		if (!o)
			goto nomem_nofree_line;
		for (size_t i = 0; i < out->n; i++)
			o[i] = (ord){ out->v[i], i };
		qsort(o, out->n, sizeof *o, cmp_ord);
		size_t m = 0;
		for (size_t i = 0; i < out->n; i++) {
			if (i + 1 < out->n && strcmp(o[i].e.user, o[i + 1].e.user) == 0)
				free(o[i].e.user); /* an earlier line of the same user */
			else
				out->v[m++] = o[i].e;
		}
		free(o);
		out->n = m;
	}
	return 0;
nomem:
	free(line);
nomem_nofree_line:
	mg_pwfile_free(out);
	return -ENOMEM;
}

int mg_pwfile_load(const char *path, mg_pwfile *out, mg_pw_msg_fn msg, void *ud)
{
	out->v = NULL;
	out->n = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 4096;
			char *b = realloc(buf, nc);
			if (!b) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = b;
			cap = nc;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	int err = ferror(f) ? -EIO : 0;
	fclose(f);
	if (!err)
		err = mg_pwfile_parse(path, buf, len, out, msg, ud);
	OPENSSL_cleanse(buf, cap); /* hashes only, but no reason to leave them in the heap */
	free(buf);
	return err;
}

void mg_pwfile_free(mg_pwfile *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i].user);
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

const mg_pwent *mg_pwfile_find(const mg_pwfile *f, const void *user, size_t len)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *u = f->v[mid].user;
		size_t ul = strlen(u);
		int c = memcmp(u, user, ul < len ? ul : len);
		if (c == 0)
			c = ul < len ? -1 : ul > len;
		if (c == 0)
			return &f->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int mg_pw_digest(int type, int iterations, const uint8_t salt[MG_PW_SALT], const void *pw,
		size_t pwlen, uint8_t out[MG_PW_HASH])
{
	if (pwlen > INT32_MAX)
		return -1;
	if (type == MG_PW_PBKDF2) {
		if (iterations < 1)
			return -1;
		return PKCS5_PBKDF2_HMAC(pw, (int)pwlen, salt, MG_PW_SALT, iterations, EVP_sha512(),
				MG_PW_HASH, out) == 1 ? 0 : -1;
	}
	if (type != MG_PW_SHA512)
		return -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1 &&
		EVP_DigestUpdate(ctx, pw, pwlen) == 1 && EVP_DigestUpdate(ctx, salt, MG_PW_SALT) == 1 &&
		EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == MG_PW_HASH;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

bool mg_pw_check(const mg_pwent *e, const void *pw, size_t pwlen)
{
	uint8_t d[MG_PW_HASH];
	if (mg_pw_digest(e->type, e->iterations, e->salt, pw, pwlen, d) < 0)
		return false;
	bool ok = CRYPTO_memcmp(d, e->hash, MG_PW_HASH) == 0;
	OPENSSL_cleanse(d, sizeof d);
	return ok;
}

bool mg_pwent_same(const mg_pwent *a, const mg_pwent *b)
{
	return a->type == b->type && a->iterations == b->iterations &&
		memcmp(a->salt, b->salt, MG_PW_SALT) == 0 && memcmp(a->hash, b->hash, MG_PW_HASH) == 0;
}

int mg_pw_format(char *out, size_t cap, const char *user, int type, int iterations, const char *pw)
{
	uint8_t salt[MG_PW_SALT], hash[MG_PW_HASH];
	char salt64[4 * ((MG_PW_SALT + 2) / 3) + 1], hash64[4 * ((MG_PW_HASH + 2) / 3) + 1];
	if (RAND_bytes(salt, sizeof salt) != 1)
		return -1;
	if (mg_pw_digest(type, iterations, salt, pw, strlen(pw), hash) < 0)
		return -1;
	EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof salt);
	EVP_EncodeBlock((unsigned char *)hash64, hash, sizeof hash);
	int n = type == MG_PW_PBKDF2
		? snprintf(out, cap, "%s:$7$%d$%s$%s\n", user, iterations, salt64, hash64)
		: snprintf(out, cap, "%s:$6$%s$%s\n", user, salt64, hash64);
	OPENSSL_cleanse(hash, sizeof hash);
	return n < 0 || (size_t)n >= cap ? -1 : n;
}
