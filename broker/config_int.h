/*
 * broker/config_int.h - private to broker/config*.c: the parser's state and the keyword
 * table's interface. Nothing outside the config files includes this.
 */
#ifndef MG_BROKER_CONFIG_INT_H
#define MG_BROKER_CONFIG_INT_H

#include <stdarg.h>

#include "broker/config.h"

/* One parse of a main file and the files its include_dir lines pull in. */
typedef struct mg_parse {
	mg_config *c;
	const char *file;        /* the file being read now (owned by c->files_) */
	int line;
	bool main_file;          /* include_dir is allowed only here (mosquitto's rule) */
	const char *main_path;   /* for "include_dir must not contain the main file"; may be NULL */
	char *err;
	size_t errlen;
	int cur;                 /* index of the listener that listener options apply to; -1 none */
	/* The "default listener" of old-style `port` / `bind_address`; listener options given
	   before any `listener` line also apply to it. It is added as listeners[0] at the end
	   when `port` or `bind_address` made it real. */
	mg_listener_conf deflt;
	bool deflt_real;
	const char *deflt_first_file; /* first option that touched it, for the error */
	int deflt_first_line;
	const char *deflt_first_kw;
	bool log_type_seen;      /* the first log_type replaces the default set, later ones add */
	bool log_dest_seen;      /* likewise for log_dest */
	bool sec_seen;           /* a security setting came: per_listener_settings is too late */
	int bridge;              /* bridge options apply to c->bridges[bridge - 1]; 0: none yet */
	const char *raw_args;    /* the line after the keyword, comments and all (`topic #`) */
} mg_parse;

/* A handler gets the words after the keyword (argv[0] is the first argument) and `rest`,
   the raw text after the keyword with the trailing comment and spaces cut (for keywords
   whose value may hold spaces: paths, strftime formats). Returns 0 or -1 (err is set). */
typedef int (*mg_kw_fn)(mg_parse *p, const char *kw, int argc, char **argv, const char *rest);

typedef struct mg_keyword {
	const char *name;
	mg_kw_fn fn;
	int min_args, max_args;  /* max_args -1: the value is `rest` (anything, may hold spaces) */
	bool prefix;             /* name is a prefix (auth_opt_*, plugin_opt_*) */
} mg_keyword;

const mg_keyword *mg_kw_find(const char *name);
const char *mg_kw_suggest(const char *name); /* closest known keyword, or NULL */

/* "Error: FILE:LINE: <fmt>." into p->err; returns -1. */
int mg_perr(mg_parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "Warning: FILE:LINE: <fmt>." through mg_log(MG_LOG_WARNING). */
void mg_pwarn(mg_parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse `buf` as one config file named `name` (a main file or an include_dir file). */
int mg_parse_text(mg_parse *p, const char *name, const char *buf, size_t len);
/* The include_dir keyword (it reads files, so it lives with the parser). */
int mg_kw_include_dir(mg_parse *p, const char *kw, int argc, char **argv, const char *rest);
/* Read a whole file into memory (the caller frees); NULL with errno set on failure. */
char *mg_read_file(const char *path, size_t *len);
/* Keep a copy of a file name in c for as long as c lives; NULL on ENOMEM. */
const char *mg_config_keep_name(mg_config *c, const char *name);

/* A listener's TLS options make sense together (called once the whole file is read). */
int mg_kw_check_tls(mg_parse *p, const mg_listener_conf *l);

/* Bridges (config_bridge.c): `connection`, every bridge option, the checks at the end. */
int mg_kw_connection(mg_parse *p, const char *kw, int argc, char **argv, const char *rest);
int mg_kw_bridge(mg_parse *p, const char *kw, int argc, char **argv, const char *rest);
int mg_bridge_check_all(mg_parse *p);
void mg_bridge_conf_free_all(mg_config *c);

void mg_listener_conf_init(mg_listener_conf *l);
void mg_listener_conf_free(mg_listener_conf *l);
/* Appends a listener (taking ownership of l's strings); returns its index or -1 (ENOMEM). */
int mg_config_add_listener(mg_config *c, const mg_listener_conf *l);

#endif
