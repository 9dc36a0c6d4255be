/*
 * broker/config_parse.c - reading mosquitto.conf's language: lines, words, comments,
 * include_dir, and the checks that need the whole file (the default listener, duplicate
 * listeners). What each keyword means is config_keywords.c.
 *
 * A line is a keyword and its values separated by spaces or tabs. '#' starts a comment at
 * the start of a line and at the start of any word, so `listener 1883 # open to all` works
 * (mosquitto only reads the words it wants and drops the rest; we check every word, so the
 * comment has to be recognised). A '#' inside a word (`a/#`) is not a comment.
 */
#include "broker/config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/config_int.h"
#include "broker/log.h"

#define MAX_WORDS 16

static void vmsg(mg_parse *p, char *out, size_t outlen, const char *kind, const char *fmt, va_list ap)
{
	int n = snprintf(out, outlen, "%s: %s:%d: ", kind, p->file ? p->file : "?", p->line);
	if (n < 0 || (size_t)n >= outlen)
		return;
	int m = vsnprintf(out + n, outlen - (size_t)n, fmt, ap);
	if (m < 0 || (size_t)(n + m) + 1 >= outlen)
		return;
	/* Messages end with a full stop, unless the text already ends a sentence. */
	char last = out[n + m - 1];
	if (last != '.' && last != '?' && last != '!')
		strcat(out, ".");
}

int mg_perr(mg_parse *p, const char *fmt, ...)
{
	va_list ap;
	if (p->err && p->errlen) {
		va_start(ap, fmt);
		vmsg(p, p->err, p->errlen, "Error", fmt, ap);
		va_end(ap);
	}
	return -1;
}

void mg_pwarn(mg_parse *p, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	if (!mg_log_enabled(MG_LOG_WARNING))
		return;
	va_start(ap, fmt);
	vmsg(p, buf, sizeof buf, "Warning", fmt, ap);
	va_end(ap);
	mg_log(MG_LOG_WARNING, "%s", buf);
}

char *mg_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	errno = 0;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (n < cap) {
			if (ferror(f)) {
				int e = errno ? errno : EIO; /* EISDIR for a directory given as the file */
				free(buf);
				buf = NULL;
				errno = e;
			}
			break;
		}
		char *nb = realloc(buf, cap * 2);
		if (!nb) {
			free(buf);
			buf = NULL;
			errno = ENOMEM;
			break;
		}
		buf = nb;
		cap *= 2;
	}
	fclose(f);
	if (buf)
		*len = n;
	return buf;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\v' || ch == '\f';
}

/* The value text after the keyword: leading spaces skipped, a trailing " # comment" and
   trailing spaces cut. Works in place on s. */
static char *rest_of_line(char *s)
{
	while (is_space(*s))
		s++;
	for (char *q = s; *q; q++) {
		if (*q == '#' && (q == s || is_space(q[-1]))) {
			*q = '\0';
			break;
		}
	}
	size_t n = strlen(s);
	while (n > 0 && is_space(s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int parse_line(mg_parse *p, char *line, char *copy)
{
	char *words[MAX_WORDS];
	int nw = 0, total = 0;
	char *s = line;
	char *after_kw = NULL;

	for (;;) {
		while (is_space(*s))
			s++;
		if (*s == '\0' || *s == '#')
			break;
		if (total == 1)
			after_kw = copy + (s - line);
		if (nw < MAX_WORDS)
			words[nw++] = s;
		total++;
		while (*s && !is_space(*s))
			s++;
		if (total == 1)
			p->raw_args = copy + (s - line);
		if (*s)
			*s++ = '\0';
	}
	if (total == 0)
		return 0;

	const char *kw = words[0];
	const mg_keyword *k = mg_kw_find(kw);
	if (!k) {
		const char *sug = mg_kw_suggest(kw);
		if (sug)
			return mg_perr(p, "unknown keyword '%s'. Did you mean '%s'?", kw, sug);
		return mg_perr(p, "unknown keyword '%s'", kw);
	}
	int argc = total - 1;
	char empty[1] = "";
	char *rest = rest_of_line(after_kw ? after_kw : empty);
	if (argc < k->min_args)
		return mg_perr(p, "'%s' needs a value", kw);
	if (k->max_args >= 0 && argc > k->max_args)
		return mg_perr(p, "too many values for '%s': unexpected '%s'",
				kw, words[k->max_args + 1 < nw ? k->max_args + 1 : nw - 1]);
	/* Handlers get the table's copy of the name when they can: it outlives this line. */
	return k->fn(p, k->prefix ? kw : k->name, nw - 1, words + 1, rest);
}

int mg_parse_text(mg_parse *p, const char *name, const char *buf, size_t len)
{
	const char *saved_file = p->file;
	int saved_line = p->line;
	int rc = 0;

	p->file = mg_config_keep_name(p->c, name);
	if (!p->file) {
		p->file = name;
		p->line = 0;
		rc = mg_perr(p, "out of memory");
		goto out;
	}
	p->line = 0;
	size_t off = 0;
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		off = 3; /* a UTF-8 byte order mark, as some editors write */
	while (off < len && rc == 0) {
		const char *start = buf + off;
		const char *nl = memchr(start, '\n', len - off);
		size_t n = nl ? (size_t)(nl - start) : len - off;
		off += n + (nl ? 1 : 0);
		p->line++;
		if (n > 0 && start[n - 1] == '\r')
			n--; /* CRLF files */
		if (memchr(start, '\0', n)) {
			rc = mg_perr(p, "the line holds a NUL byte (is this a text file?)");
			break;
		}
		/* Two copies: one is cut into words, the other keeps the raw value text. */
		char *line = malloc(2 * n + 2);
		if (!line) {
			rc = mg_perr(p, "out of memory");
			break;
		}
		memcpy(line, start, n);
		line[n] = '\0';
		memcpy(line + n + 1, start, n);
		line[2 * n + 1] = '\0';
		rc = parse_line(p, line, line + n + 1);
		free(line);
	}
out:
	p->file = saved_file;
	p->line = saved_line;
	return rc;
}

/* mosquitto's include_dir order: alphabetical, each upper case letter just before its
   lower case ("A.conf" < "a.conf" < "B.conf"). */
static int include_cmp(const void *a, const void *b)
{
	const unsigned char *x = *(const unsigned char *const *)a;
	const unsigned char *y = *(const unsigned char *const *)b;
	for (;; x++, y++) {
		int lx = (*x >= 'A' && *x <= 'Z') ? *x + 32 : *x;
		int ly = (*y >= 'A' && *y <= 'Z') ? *y + 32 : *y;
		if (lx != ly)
			return lx - ly;
		if (*x != *y) /* same letter, different case: upper first */
			return (*x >= 'A' && *x <= 'Z') ? -1 : 1;
		if (*x == '\0')
			return 0;
	}
}

static bool ends_with_conf(const char *name)
{
	size_t n = strlen(name);
	return n > 5 && strcmp(name + n - 5, ".conf") == 0;
}

int mg_kw_include_dir(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	if (!p->main_file)
		return mg_perr(p, "'include_dir' is only allowed in the main configuration file");
	DIR *d = opendir(rest);
	if (!d)
		return mg_perr(p, "cannot open include_dir '%s': %s", rest, strerror(errno));

	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	/* readdir's NULL means the end or an error (EOVERFLOW on a 32-bit build without 64-bit
	   file offsets): an error must not pass as a shorter directory. */
	for (;;) {
		errno = 0;
		if (!(e = readdir(d))) {
			if (errno != 0)
				rc = mg_perr(p, "cannot read include_dir '%s': %s", rest, strerror(errno));
			break;
		}
		if (!ends_with_conf(e->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof *nn);
			if (!nn) {
				rc = mg_perr(p, "out of memory");
				break;
			}
			names = nn;
		}
		if (!(names[n] = strdup(e->d_name))) {
			rc = mg_perr(p, "out of memory");
			break;
		}
		n++;
	}
	closedir(d);
	if (rc == 0 && n > 1)
		qsort(names, n, sizeof *names, include_cmp);

	char main_real[PATH_MAX];
	bool have_main = p->main_path && realpath(p->main_path, main_real);
	bool saved_main = p->main_file;
	p->main_file = false;
	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t plen = strlen(rest) + 1 + strlen(names[i]) + 1;
		char *path = malloc(plen);
		if (!path) {
			rc = mg_perr(p, "out of memory");
			break;
		}
		snprintf(path, plen, "%s%s%s", rest, rest[strlen(rest) - 1] == '/' ? "" : "/", names[i]);
		struct stat st;
		char real[PATH_MAX];
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(path); /* a directory or a dangling link named x.conf: not a config file */
			continue;
		}
		if (have_main && realpath(path, real) && strcmp(real, main_real) == 0) {
			rc = mg_perr(p, "include_dir '%s' holds the main configuration file itself", rest);
			free(path);
			break;
		}
		size_t len = 0;
		char *buf = mg_read_file(path, &len);
		if (!buf)
			rc = mg_perr(p, "cannot read '%s': %s", path, strerror(errno));
		else
			rc = mg_parse_text(p, path, buf, len);
		free(buf);
		free(path);
	}
	p->main_file = saved_main;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static bool same_address(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* After the whole main file (and its includes): place the default listener, check what
   needs every line. */
static int finish_parse(mg_parse *p)
{
	mg_config *c = p->c;
	if (p->deflt_first_kw && !p->deflt_real) {
		p->file = p->deflt_first_file;
		p->line = p->deflt_first_line;
		return mg_perr(p, "'%s' is a listener option, but no 'listener' line comes before it "
				"(write 'listener PORT' first)", p->deflt_first_kw);
	}
	if (p->deflt_real) {
		if (mg_config_add_listener(c, &p->deflt) < 0)
			return mg_perr(p, "out of memory");
		/* The default listener is listeners[0], the one -p changes. */
		memmove(&c->listeners[1], &c->listeners[0], (size_t)(c->n_listeners - 1) * sizeof *c->listeners);
		c->listeners[0] = p->deflt;
		mg_listener_conf_init(&p->deflt);
		p->deflt_real = false;
	}
	for (int i = 0; i < c->n_listeners; i++)
		if (mg_kw_check_tls(p, &c->listeners[i]) < 0)
			return -1;
	if (mg_bridge_check_all(p) < 0)
		return -1;
	for (int i = 0; i < c->n_listeners; i++) {
		for (int j = 0; j < i; j++) {
			const mg_listener_conf *a = &c->listeners[j], *b = &c->listeners[i];
			if (a->port != 0 && a->port == b->port && same_address(a->bind_address, b->bind_address)) {
				p->file = b->file;
				p->line = b->line;
				return mg_perr(p, "a listener on port %u%s%s is already defined at %s:%d",
						b->port, b->bind_address ? " address " : "",
						b->bind_address ? b->bind_address : "", a->file, a->line);
			}
		}
	}
	return 0;
}

static int parse_main(mg_config *c, const char *name, const char *main_path,
		const char *buf, size_t len, char *err, size_t errlen)
{
	mg_parse p;
	memset(&p, 0, sizeof p);
	p.c = c;
	p.main_file = true;
	p.main_path = main_path;
	p.err = err;
	p.errlen = errlen;
	p.cur = -1;
	mg_listener_conf_init(&p.deflt);
	if (err && errlen)
		err[0] = '\0';
	int rc = mg_parse_text(&p, name, buf, len);
	if (rc == 0)
		rc = finish_parse(&p);
	mg_listener_conf_free(&p.deflt);
	return rc;
}

int mg_config_parse_buffer(mg_config *c, const char *name, const char *buf, size_t len,
		char *err, size_t errlen)
{
	return parse_main(c, name, NULL, buf, len, err, errlen);
}

int mg_config_load(mg_config *c, const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	char *buf = mg_read_file(path, &len);
	if (!buf) {
		snprintf(err, errlen, "Error: Unable to open config file %s: %s.", path, strerror(errno));
		return -1;
	}
	int rc = parse_main(c, path, path, buf, len, err, errlen);
	free(buf);
	if (rc < 0)
		return -1;
	char *cp = strdup(path);
	char *abs = realpath(path, NULL);
	free(c->config_path);
	free(c->config_abspath_);
	c->config_path = cp;
	c->config_abspath_ = abs;
	if (!cp) {
		snprintf(err, errlen, "Error: out of memory.");
		return -1;
	}
	return 0;
}
