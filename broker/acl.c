/*
 * broker/acl.c - mosquitto's acl_file: parsed line by line as mosquitto 2.0 parses it, then
 * compiled into trees of topic levels (see acl.h for the decision and its cost).
 *
 * Parsing follows mosquitto's aclfile__parse exactly, quirks included, so that a file
 * mosquitto accepts means the same here and a file it refuses is refused: trailing white
 * space is cut; a line whose FIRST character is '#' is a comment (" # x" is an invalid
 * line); words are separated by spaces only (a tab after "topic" makes "topic\tx" one
 * unknown word); the topic is the rest of the line after the access word, blanks trimmed,
 * and may contain spaces; "topic X" with one word means readwrite on X; "user NAME" takes
 * the rest of the line, trimmed. Filters are checked as mosquitto_sub_topic_check does.
 */
#include "broker/acl.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { F_READ = MG_ACL_READ, F_WRITE = MG_ACL_WRITE, F_DENY = 4 };

typedef struct node node;

typedef struct edge {
	char *lvl;       /* one level of the filter (malloc'd), not NUL-terminated in use */
	uint32_t len;
	node *to;
} edge;

struct node {
	edge *kids;      /* literal levels, sorted by (len, bytes) once loaded */
	uint32_t nkids, capkids;
	edge *tm;        /* pattern levels holding %c or %u, substituted at check time */
	uint32_t ntm, captm;
	node *plus;      /* '+' */
	uint8_t here;    /* F_* of rules ending at this node */
	uint8_t hash;    /* F_* of rules ending in '#' below this node */
};

typedef struct user_rules {
	char *name;
	node *root;
} user_rules;

struct mg_acl {
	node *anon;          /* topic lines before any user line: clients without a user name */
	user_rules *users;   /* sorted by name, one entry per name once loaded */
	size_t nusers, capusers;
	node *patterns;      /* NULL when the file has no pattern line */
	size_t nrules;
};

/* No rules at all: every check is denied. Static, so failing closed never needs memory. */
static mg_acl deny_all;

/* ---- the trees ---- */

static void node_free(node *n)
{
	if (!n)
		return;
	for (uint32_t i = 0; i < n->nkids; i++) {
		free(n->kids[i].lvl);
		node_free(n->kids[i].to);
	}
	for (uint32_t i = 0; i < n->ntm; i++) {
		free(n->tm[i].lvl);
		node_free(n->tm[i].to);
	}
	free(n->kids);
	free(n->tm);
	node_free(n->plus);
	free(n);
}

static int edge_push(edge **v, uint32_t *n, uint32_t *cap, edge e)
{
	if (*n == *cap) {
		uint32_t nc = *cap ? *cap * 2 : 2;
		edge *nv = realloc(*v, nc * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = e;
	return 0;
}

/* Does this pattern level hold %c or %u? Scanned as mosquitto substitutes: left to right. */
static bool has_subst(const char *p, size_t l)
{
	for (size_t i = 0; i + 1 < l; i++)
		if (p[i] == '%' && (p[i + 1] == 'c' || p[i + 1] == 'u'))
			return true;
	return false;
}

/* Add a rule. Levels are appended without looking for an equal one (that would be quadratic
 * in a node's width); finish() sorts and merges them once. */
static int insert(node **rootp, const char *filter, uint8_t flags, bool pattern)
{
	if (!*rootp && !(*rootp = calloc(1, sizeof **rootp)))
		return -ENOMEM;
	node *n = *rootp;
	const char *p = filter;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t l = slash ? (size_t)(slash - p) : strlen(p);
		if (l == 1 && p[0] == '#') { /* the last level (checked) */
			n->hash |= flags;
			return 0;
		}
		if (l == 1 && p[0] == '+') {
			if (!n->plus && !(n->plus = calloc(1, sizeof *n->plus)))
				return -ENOMEM;
			n = n->plus;
		} else {
			node *to = calloc(1, sizeof *to);
			char *lv = malloc(l + 1);
			if (!to || !lv) {
				free(to);
				free(lv);
				return -ENOMEM;
			}
			memcpy(lv, p, l);
			lv[l] = 0;
			edge e = { lv, (uint32_t)l, to };
			int r = pattern && has_subst(p, l) ? edge_push(&n->tm, &n->ntm, &n->captm, e)
			                                   : edge_push(&n->kids, &n->nkids, &n->capkids, e);
			if (r < 0) {
				free(to);
				free(lv);
				return r;
			}
			n = to;
		}
		if (!slash)
			break;
		p = slash + 1;
	}
	n->here |= flags;
	return 0;
}

static int cmp_edge(const void *x, const void *y)
{
	const edge *a = x, *b = y;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->lvl, b->lvl, a->len);
}

/* Room for more edges in v, before anything moves (so a failure leaves both nodes whole). */
static int reserve(edge **v, uint32_t n, uint32_t *cap, uint32_t more)
{
	if (n + more <= *cap)
		return 0;
	edge *nv = realloc(*v, (size_t)(n + more) * sizeof *nv);
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = n + more;
	return 0;
}

/* Fold b into a and free b; b's children move to a. On failure b keeps what did not move
 * (the caller keeps b reachable, for node_free). Depth is bounded by the 200 levels a
 * filter may have. */
static int merge_into(node *a, node *b)
{
	if (reserve(&a->kids, a->nkids, &a->capkids, b->nkids) < 0 ||
	    reserve(&a->tm, a->ntm, &a->captm, b->ntm) < 0)
		return -ENOMEM;
	a->here |= b->here;
	a->hash |= b->hash;
	if (b->nkids)
		memcpy(a->kids + a->nkids, b->kids, b->nkids * sizeof *b->kids);
	a->nkids += b->nkids;
	if (b->ntm)
		memcpy(a->tm + a->ntm, b->tm, b->ntm * sizeof *b->tm);
	a->ntm += b->ntm;
	free(b->kids);
	free(b->tm);
	b->kids = b->tm = NULL;
	b->nkids = b->ntm = b->capkids = b->captm = 0;
	if (b->plus && a->plus) {
		if (merge_into(a->plus, b->plus) < 0)
			return -ENOMEM;
	} else if (b->plus) {
		a->plus = b->plus;
	}
	free(b);
	return 0;
}

static int sort_merge(edge *v, uint32_t *n)
{
	if (*n > 1)
		qsort(v, *n, sizeof *v, cmp_edge);
	uint32_t j = 0;
	for (uint32_t i = 0; i < *n; i++) {
		if (j && cmp_edge(&v[j - 1], &v[i]) == 0) {
			if (merge_into(v[j - 1].to, v[i].to) < 0) { /* keep the rest for node_free */
				for (uint32_t k = i; k < *n; k++)
					v[j++] = v[k];
				*n = j;
				return -ENOMEM;
			}
			free(v[i].lvl);
		} else {
			v[j++] = v[i];
		}
	}
	*n = j;
	return 0;
}

static int finish(node *n)
{
	if (!n)
		return 0;
	int r = sort_merge(n->kids, &n->nkids);
	if (r == 0)
		r = sort_merge(n->tm, &n->ntm);
	for (uint32_t i = 0; r == 0 && i < n->nkids; i++)
		r = finish(n->kids[i].to);
	for (uint32_t i = 0; r == 0 && i < n->ntm; i++)
		r = finish(n->tm[i].to);
	if (r == 0)
		r = finish(n->plus);
	return r;
}

/* ---- checking ---- */

typedef struct sctx {
	const uint8_t *t;
	size_t tlen;
	const char *id, *user;
	size_t idl, ul;
} sctx;

static const edge *find_kid(const node *n, const uint8_t *l, size_t len)
{
	size_t lo = 0, hi = n->nkids;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const edge *e = &n->kids[mid];
		int c = e->len != len ? (e->len < len ? -1 : 1) : memcmp(e->lvl, l, len);
		if (c == 0)
			return e;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The pattern level e with %c/%u substituted, compared with the topic from pos: the end of
 * what it matched (at a level boundary), or -1. The id or name may hold '/', so one pattern
 * level can span several topic levels, exactly as mosquitto's substituted string does; they
 * cannot hold '+' or '#' (mg_acl_check refuses those first). A pattern with %u does not apply
 * to a client without a user name. */
static long tm_match(const edge *e, const sctx *x, size_t pos)
{
	size_t q = pos;
	for (uint32_t i = 0; i < e->len; i++) {
		char ch = e->lvl[i];
		if (ch == '%' && i + 1 < e->len && (e->lvl[i + 1] == 'c' || e->lvl[i + 1] == 'u')) {
			const char *s = e->lvl[i + 1] == 'c' ? x->id : x->user;
			size_t sl = e->lvl[i + 1] == 'c' ? x->idl : x->ul;
			if (!s || x->tlen - q < sl || memcmp(x->t + q, s, sl) != 0)
				return -1;
			q += sl;
			i++;
			continue;
		}
		if (q >= x->tlen || x->t[q] != (uint8_t)ch)
			return -1;
		q++;
	}
	if (q < x->tlen && x->t[q] != '/')
		return -1;
	return (long)q;
}

/* The F_* of every rule under n that matches the topic from level pos on (done: every level
 * consumed). Each node is visited at most once: every edge consumes a fixed span. A topic
 * starting with '$' is not matched by a leading '+' or '#' (mosquitto's rule for ACL topics
 * as for subscriptions). */
static uint8_t walk(const node *n, const sctx *x, size_t pos, bool done, bool root)
{
	if (done)
		return n->here | n->hash;
	bool dollar = root && x->t[0] == '$';
	uint8_t acc = dollar ? 0 : n->hash;
	size_t e = pos;
	while (e < x->tlen && x->t[e] != '/')
		e++;
	bool last = e == x->tlen;
	size_t next = last ? e : e + 1;
	const edge *k = find_kid(n, x->t + pos, e - pos);
	if (k)
		acc |= walk(k->to, x, next, last, false);
	if (n->plus && !dollar)
		acc |= walk(n->plus, x, next, last, false);
	for (uint32_t i = 0; i < n->ntm && !(acc & F_DENY); i++) {
		long q = tm_match(&n->tm[i], x, pos);
		if (q >= 0)
			acc |= walk(n->tm[i].to, x, (size_t)q == x->tlen ? (size_t)q : (size_t)q + 1,
			            (size_t)q == x->tlen, false);
	}
	return acc;
}

static const node *find_user(const mg_acl *a, const char *user)
{
	size_t lo = 0, hi = a->nusers;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(a->users[mid].name, user);
		if (c == 0)
			return a->users[mid].root;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

enum mg_acl_result mg_acl_check(const mg_acl *a, const char *id, const char *user,
                                const uint8_t *t, size_t tlen, int access)
{
	if (!tlen) /* not a topic: mosquitto's matcher says no match */
		return MG_ACL_DENY;
	sctx x = { t, tlen, id, user, strlen(id), user ? strlen(user) : 0 };
	const node *r = user ? find_user(a, user) : a->anon;
	if (r) {
		uint8_t acc = walk(r, &x, 0, false, true);
		if (acc & F_DENY)
			return MG_ACL_DENY;
		if (acc & access)
			return MG_ACL_ALLOW;
	}
	if (!a->patterns)
		return MG_ACL_DENY;
	/* CVE-2017-7650: "%c/#" with a client id "#" would be "#/#". mosquitto refuses such
	 * names whenever patterns exist, whether or not one would match. */
	if (user && strpbrk(user, "+#"))
		return MG_ACL_DENY_UNSAFE_USER;
	if (strpbrk(id, "+#"))
		return MG_ACL_DENY_UNSAFE_ID;
	uint8_t acc = walk(a->patterns, &x, 0, false, true);
	if (!(acc & F_DENY) && (acc & access))
		return MG_ACL_ALLOW;
	return MG_ACL_DENY;
}

size_t mg_acl_rule_count(const mg_acl *a)
{
	return a ? a->nrules : 0;
}

/* ---- parsing ---- */

static int cmp_user(const void *x, const void *y)
{
	const user_rules *a = x, *b = y;
	return strcmp(a->name, b->name);
}

void mg_acl_free(mg_acl *a)
{
	if (!a || a == &deny_all)
		return;
	node_free(a->anon);
	node_free(a->patterns);
	for (size_t i = 0; i < a->nusers; i++) {
		free(a->users[i].name);
		node_free(a->users[i].root);
	}
	free(a->users);
	free(a);
}

mg_acl *mg_acl_deny_all(void)
{
	return &deny_all;
}

/* mosquitto_sub_topic_check: '+' and '#' only as whole levels, '#' last, at most 65535 bytes
 * and 200 '/'. */
static bool filter_ok(const char *s)
{
	char prev = 0;
	size_t len = 0, slashes = 0;
	for (; *s; s++, len++) {
		if (*s == '+') {
			if ((prev && prev != '/') || (s[1] && s[1] != '/'))
				return false;
		} else if (*s == '#') {
			if ((prev && prev != '/') || s[1])
				return false;
		} else if (*s == '/') {
			slashes++;
		}
		prev = *s;
	}
	return len <= 65535 && slashes <= 200;
}

static char *trimblanks(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t l = strlen(s);
	while (l > 1 && isspace((unsigned char)s[l - 1]))
		s[--l] = 0;
	return s;
}

typedef struct parse_st {
	mg_acl *a;
	const char *name;
	size_t line;
	char *err;
	size_t errlen;
	void (*warn)(const char *msg);
	long user;           /* index in a->users of the current `user` section, -1 none */
} parse_st;

__attribute__((format(printf, 2, 3)))
static int perr(parse_st *st, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(st->err, st->errlen, "Error: %s:%zu: %s", st->name, st->line, msg);
	return -1;
}

static int add_user(parse_st *st, const char *name)
{
	mg_acl *a = st->a;
	if (a->nusers == a->capusers) {
		size_t nc = a->capusers ? a->capusers * 2 : 8;
		user_rules *v = realloc(a->users, nc * sizeof *v);
		if (!v)
			return -ENOMEM;
		a->users = v;
		a->capusers = nc;
	}
	char *n = strdup(name);
	if (!n)
		return -ENOMEM;
	a->users[a->nusers] = (user_rules){ n, NULL };
	st->user = (long)a->nusers++;
	return 0;
}

static int topic_line(parse_st *st, bool pattern, char **save)
{
	const char *kw = pattern ? "pattern" : "topic";
	char *access_s = strtok_r(NULL, " ", save);
	if (!access_s)
		return perr(st, "empty topic: '%s' needs [read|write|readwrite|deny] and a topic filter.", kw);
	char *rest = strtok_r(NULL, "", save);
	char *topic;
	uint8_t flags;
	if (rest) {
		topic = trimblanks(rest);
		if (!strcmp(access_s, "read"))
			flags = F_READ;
		else if (!strcmp(access_s, "write"))
			flags = F_WRITE;
		else if (!strcmp(access_s, "readwrite"))
			flags = F_READ | F_WRITE;
		else if (!strcmp(access_s, "deny"))
			flags = F_DENY;
		else
			return perr(st, "invalid topic access type '%.100s' (read, write, readwrite or deny).", access_s);
	} else {
		topic = access_s; /* "topic X": readwrite on X */
		flags = F_READ | F_WRITE;
	}
	if (!filter_ok(topic))
		return perr(st, "invalid ACL topic '%.200s' ('+' and '#' only as a whole level, '#' "
		            "last; at most 65535 bytes and 200 levels).", topic);
	size_t tl = strlen(topic);
	if (pattern && !has_subst(topic, tl) && st->warn) {
		char msg[400];
		snprintf(msg, sizeof msg, "Warning: %s:%zu: ACL pattern '%.200s' does not contain '%%c' or '%%u'.",
		         st->name, st->line, topic);
		st->warn(msg);
	}
	node **root = pattern ? &st->a->patterns
	            : st->user >= 0 ? &st->a->users[st->user].root : &st->a->anon;
	if (insert(root, topic, flags, pattern) < 0)
		return perr(st, "out of memory.");
	st->a->nrules++;
	return 0;
}

/* One line, NUL-terminated and writable (strtok_r cuts it as mosquitto's does). */
static int parse_line(parse_st *st, char *buf)
{
	size_t slen = strlen(buf);
	while (slen > 0 && isspace((unsigned char)buf[slen - 1]))
		buf[--slen] = 0;
	if (buf[0] == '#')
		return 0;
	char *save = NULL;
	char *tok = strtok_r(buf, " ", &save);
	if (!tok)
		return 0;
	if (!strcmp(tok, "topic") || !strcmp(tok, "pattern"))
		return topic_line(st, tok[0] == 'p', &save);
	if (!strcmp(tok, "user")) {
		char *rest = strtok_r(NULL, "", &save);
		if (!rest)
			return perr(st, "missing username after 'user'.");
		if (add_user(st, trimblanks(rest)) < 0)
			return perr(st, "out of memory.");
		return 0;
	}
	return perr(st, "invalid line starting '%.100s' (expected topic, pattern or user; a "
	            "comment has '#' in the first column).", tok);
}

/* One entry per user name: sections of the same name are one (mosquitto adds to the first). */
static int merge_users(mg_acl *a)
{
	if (a->nusers > 1)
		qsort(a->users, a->nusers, sizeof *a->users, cmp_user);
	size_t j = 0;
	for (size_t i = 0; i < a->nusers; i++) {
		user_rules *u = &a->users[i];
		if (j && strcmp(a->users[j - 1].name, u->name) == 0) {
			user_rules *d = &a->users[j - 1];
			if (!d->root) {
				d->root = u->root;
			} else if (u->root && merge_into(d->root, u->root) < 0) {
				for (size_t k = i; k < a->nusers; k++) /* kept for mg_acl_free */
					a->users[j++] = a->users[k];
				a->nusers = j;
				return -ENOMEM;
			}
			free(u->name);
		} else {
			a->users[j++] = *u;
		}
	}
	a->nusers = j;
	for (size_t i = 0; i < a->nusers; i++)
		if (finish(a->users[i].root) < 0)
			return -ENOMEM;
	return 0;
}

mg_acl *mg_acl_parse(const char *name, const char *buf, size_t len, char *err, size_t errlen,
                     void (*warn)(const char *msg))
{
	mg_acl *a = calloc(1, sizeof *a);
	parse_st st = { a, name, 0, err, errlen, warn, -1 };
	char *line = NULL;
	size_t cap = 0;
	if (!a)
		goto nomem;
	for (size_t off = 0; off < len;) {
		const char *p = buf + off;
		const char *nl = memchr(p, '\n', len - off);
		size_t l = nl ? (size_t)(nl - p) : len - off;
		off += l + (nl != NULL);
		st.line++;
		if (l + 1 > cap) {
			char *nb = realloc(line, l + 1);
			if (!nb)
				goto nomem;
			line = nb;
			cap = l + 1;
		}
		memcpy(line, p, l); /* a NUL byte ends the line, as in mosquitto's strlen */
		line[l] = 0;
		if (parse_line(&st, line) < 0)
			goto fail;
	}
	free(line);
	line = NULL;
	if (finish(a->anon) < 0 || finish(a->patterns) < 0 || merge_users(a) < 0)
		goto nomem;
	return a;
nomem:
	snprintf(err, errlen, "Error: %s: out of memory.", name);
fail:
	free(line);
	mg_acl_free(a);
	return NULL;
}

mg_acl *mg_acl_load(const char *path, char *err, size_t errlen, void (*warn)(const char *msg))
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "Error: Unable to open acl_file \"%s\": %s.", path, strerror(errno));
		return NULL;
	}
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, nc);
			if (!nb) {
				free(buf);
				fclose(f);
				snprintf(err, errlen, "Error: %s: out of memory.", path);
				return NULL;
			}
			buf = nb;
			cap = nc;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	int rerr = ferror(f);
	fclose(f);
	if (rerr) {
		free(buf);
		snprintf(err, errlen, "Error: Unable to read acl_file \"%s\".", path);
		return NULL;
	}
	mg_acl *a = mg_acl_parse(path, buf, len, err, errlen, warn);
	free(buf);
	return a;
}
