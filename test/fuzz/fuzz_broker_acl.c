/*
 * test/fuzz/fuzz_broker_acl.c - the acl_file parser and the compiled check, differentially.
 *
 * Input: an ACL file, then "\n\x00\n", then checks, one a line: a flags byte (bit 0: the
 * client has a user name, bit 1: write, else read), then client id, user name and topic
 * separated by \x01. The file goes through mg_acl_parse and through a slow reference written
 * the way mosquitto 2.0 writes it (security_default.c): rule lists per user with denials
 * put first, patterns substituted into a fresh string and matched with mg_topic_match. Both
 * must accept or refuse the same files and give the same decision for every check.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/acl.h"
#include "proto/proto.h"

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)

enum { R = 1, W = 2 };

typedef struct rule { char *user; bool pattern, has_user; int access; char *topic; } rule;

typedef struct ref {
	rule *v;
	size_t n, cap;
} ref;

static void ref_free(ref *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].user);
		free(r->v[i].topic);
	}
	free(r->v);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t l = strlen(s);
	while (l > 1 && isspace((unsigned char)s[l - 1]))
		s[--l] = 0;
	return s;
}

static bool sub_topic_ok(const char *s)
{
	size_t len = strlen(s), sl = 0;
	for (size_t i = 0; i < len; i++) {
		char prev = i ? s[i - 1] : 0;
		if (s[i] == '+' && ((prev && prev != '/') || (s[i + 1] && s[i + 1] != '/')))
			return false;
		if (s[i] == '#' && ((prev && prev != '/') || s[i + 1]))
			return false;
		sl += s[i] == '/';
	}
	return len <= 65535 && sl <= 200;
}

/* mosquitto's aclfile__parse, into a flat list in file order. false: it refuses the file. */
static bool ref_parse(ref *r, const char *buf, size_t len)
{
	char *user = NULL;
	bool ok = true;
	for (size_t off = 0; off < len && ok;) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t l = nl ? (size_t)(nl - (buf + off)) : len - off;
		char *line = strndup(buf + off, l);
		off += l + (nl != NULL);
		size_t sl = strlen(line);
		while (sl && isspace((unsigned char)line[sl - 1]))
			line[--sl] = 0;
		char *save = NULL, *tok = line[0] == '#' ? NULL : strtok_r(line, " ", &save);
		if (!tok) {
		} else if (!strcmp(tok, "topic") || !strcmp(tok, "pattern")) {
			char *acc = strtok_r(NULL, " ", &save), *rest, *topic;
			int a = R | W;
			if (!acc) {
				ok = false;
			} else if ((rest = strtok_r(NULL, "", &save))) {
				topic = trim(rest);
				a = !strcmp(acc, "read") ? R : !strcmp(acc, "write") ? W
				  : !strcmp(acc, "readwrite") ? R | W : !strcmp(acc, "deny") ? 0 : -1;
			} else {
				topic = acc;
			}
			if (ok && (a < 0 || !sub_topic_ok(topic)))
				ok = false;
			if (ok) {
				if (r->n == r->cap) {
					r->cap = r->cap ? r->cap * 2 : 16;
					r->v = realloc(r->v, r->cap * sizeof *r->v);
					MUST(r->v);
				}
				bool pat = tok[0] == 'p';
				r->v[r->n++] = (rule){ user && !pat ? strdup(user) : NULL, pat, user && !pat, a,
				                       strdup(topic) };
			}
		} else if (!strcmp(tok, "user")) {
			char *rest = strtok_r(NULL, "", &save);
			if (rest) {
				free(user);
				user = strdup(trim(rest));
			} else {
				ok = false;
			}
		} else {
			ok = false;
		}
		free(line);
	}
	free(user);
	return ok;
}

/* Substitute as mosquitto does; NULL: the pattern has %u and the client no user name. */
static char *subst(const char *t, const char *id, const char *user)
{
	size_t tl = strlen(t), n = 0;
	char *out = malloc(tl * (strlen(id) + (user ? strlen(user) : 0) + 2) + 1);
	MUST(out);
	for (size_t i = 0; i < tl; i++) {
		if (i + 1 < tl && t[i] == '%' && t[i + 1] == 'u' && !user) {
			free(out);
			return NULL;
		}
		if (i + 1 < tl && t[i] == '%' && (t[i + 1] == 'c' || t[i + 1] == 'u')) {
			const char *s = t[i + 1] == 'c' ? id : user;
			memcpy(out + n, s, strlen(s));
			n += strlen(s);
			i++;
			continue;
		}
		out[n++] = t[i];
	}
	out[n] = 0;
	return out;
}

static bool matches(const char *filter, const uint8_t *t, size_t tl)
{
	return filter[0] && mg_topic_match((const uint8_t *)filter, strlen(filter), t, tl);
}

/* mosquitto_acl_check_default: the client's list (deny first), then patterns (deny first). */
static bool ref_check(const ref *r, const char *id, const char *user, const uint8_t *t, size_t tl, int access)
{
	bool any_list = false, any_pattern = false;
	for (size_t i = 0; i < r->n; i++) {
		const rule *x = &r->v[i];
		if (x->pattern)
			any_pattern = true;
		else if (user ? x->has_user && !strcmp(x->user, user) : !x->has_user)
			any_list = true;
	}
	if (any_list) {
		bool allow = false;
		for (size_t i = 0; i < r->n; i++) {
			const rule *x = &r->v[i];
			if (x->pattern || (user ? !x->has_user || strcmp(x->user, user) : x->has_user))
				continue;
			if (matches(x->topic, t, tl)) {
				if (x->access == 0)
					return false;
				allow |= (x->access & access) != 0;
			}
		}
		if (allow)
			return true;
	}
	if (!any_pattern)
		return false;
	if ((user && strpbrk(user, "+#")) || strpbrk(id, "+#"))
		return false;
	bool allow = false;
	for (size_t i = 0; i < r->n; i++) {
		const rule *x = &r->v[i];
		if (!x->pattern)
			continue;
		char *f = subst(x->topic, id, user);
		if (f && matches(f, t, tl)) {
			if (x->access == 0) {
				free(f);
				return false;
			}
			allow |= (x->access & access) != 0;
		}
		free(f);
	}
	return allow;
}

static char *field(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *q = *p;
	while (q < end && *q != 1)
		q++;
	char *s = strndup((const char *)*p, (size_t)(q - *p)); /* stops at a NUL too */
	MUST(s);
	*p = q < end ? q + 1 : end;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sep[] = "\n\0\n";
	const uint8_t *cut = memmem(data, size, sep, 3);
	size_t flen = cut ? (size_t)(cut - data) : size;
	char err[512];
	mg_acl *a = mg_acl_parse("fuzz.acl", (const char *)data, flen, err, sizeof err, NULL);
	ref r = { 0 };
	bool ok = ref_parse(&r, (const char *)data, flen);
	MUST(ok == (a != NULL));
	if (!a) {
		MUST(strncmp(err, "Error: fuzz.acl:", 16) == 0);
		ref_free(&r);
		return 0;
	}
	const uint8_t *p = cut ? cut + 3 : data + size, *end = data + size;
	for (int n = 0; p < end && n < 64; n++) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *le = nl ? nl : end;
		uint8_t flags = *p++;
		if (p > le)
			p = le;
		char *id = field(&p, le), *user = field(&p, le);
		const uint8_t *t = p;
		size_t tl = (size_t)(le - p);
		if (tl && mg_topic_name_check(t, tl) == 0 && id[0]) {
			int access = flags & 2 ? MG_ACL_WRITE : MG_ACL_READ;
			const char *u = flags & 1 ? user : NULL;
			bool got = mg_acl_check(a, id, u, t, tl, access) == MG_ACL_ALLOW;
			MUST(got == ref_check(&r, id, u, t, tl, access));
		}
		free(id);
		free(user);
		p = nl ? nl + 1 : end;
	}
	mg_acl_free(a);
	ref_free(&r);
	return 0;
}
