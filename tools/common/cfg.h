/*
 * tools/common/cfg.h - the command line of midge_pub and midge_sub.
 *
 * The flags, their defaults and their error messages are mosquitto_pub's and mosquitto_sub's,
 * so a script can swap the tool names and keep working (and see the same complaints).
 * Strings in mg_cfg borrow from argv unless a comment says otherwise; mg_cfg_free frees
 * only what the parser allocated.
 */
#ifndef MG_TOOLS_CFG_H
#define MG_TOOLS_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mg_tool { MG_TOOL_PUB, MG_TOOL_SUB };

enum mg_pub_mode {
	MG_PUB_NONE,
	MG_PUB_MESSAGE, /* -m */
	MG_PUB_FILE,    /* -f: the whole file, binary safe */
	MG_PUB_STDIN,   /* -s: the whole of stdin */
	MG_PUB_LINES,   /* -l: one message per line of stdin */
	MG_PUB_NULL,    /* -n: a zero-length message */
};

/* One -D argument, checked by libmidge's property lookups when parsed (props.c). */
typedef struct mg_cfg_prop {
	int cmd;           /* the packet it goes into: MIDGE_CMD_* */
	int id;            /* MIDGE_PROP_* */
	int type;          /* MIDGE_PROP_TYPE_* */
	const char *value; /* borrows argv */
	const char *value2; /* user-property's value; NULL otherwise */
} mg_cfg_prop;

typedef struct mg_cfg {
	int tool; /* enum mg_tool */

	/* connection */
	const char *host; /* default "localhost" */
	int port;         /* default 1883, 8883 with --cafile / --capath / --psk */
	const char *id;   /* NULL: empty id, the broker assigns one */
	const char *id_prefix;
	char *id_owned;   /* id_prefix + pid; freed by mg_cfg_free */
	bool clean_session;
	int keepalive;
	const char *username;
	const char *password;
	int protocol;            /* 3, 4 or 5 (3.1, 3.1.1, 5.0); default 4 */
	int64_t session_expiry;  /* -x; -1 unset */
	bool debug;
	bool quiet;

	/* TLS (mosquitto_pub's flags) */
	const char *cafile, *capath, *certfile, *keyfile;
	const char *ciphers, *tls_version;
	const char *psk, *psk_identity;
	bool insecure;
	bool tls_use_os_certs; /* --tls-use-os-certs, -L mqtts://, or -p 8883 without a CA */

	/* will */
	const char *will_topic;
	const char *will_payload;
	int will_qos;
	bool will_retain;

	/* -D */
	mg_cfg_prop *props; /* owned */
	int nprops;

	/* midge_pub */
	const char *topic;
	int pub_mode; /* enum mg_pub_mode */
	const char *message;
	const char *file;
	int qos;
	bool retain;
	long repeat;         /* --repeat N, default 1 */
	double repeat_delay; /* --repeat-delay seconds */

	/* midge_sub */
	const char **topics; /* owned array, borrowed strings */
	int ntopics;
	const char **filter_outs;
	int nfilter_outs;
	const char **unsub_topics;
	int nunsub_topics;
	bool verbose;
	bool eol;       /* false with -N */
	bool no_retain; /* -R */
	bool exit_after_sub; /* -E */
	bool retained_only;
	bool remove_retained;
	long msg_count;  /* -C; 0 none */
	long timeout;    /* -W seconds; 0 none */
	const char *format; /* -F */

	char *url_copy; /* -L: the URL split in place; host/topic/... may point into it */
	bool ws;             /* -L ws:// or wss://: MQTT over WebSockets */
	char *ws_path_copy;  /* its path ("/mqtt" when none) */
} mg_cfg;

/* Parses argv into cfg. Returns 0 to go on, 1 after printing an error (exit 1), 2 for --help
 * (the caller prints its usage and exits 0... mosquitto exits 1 after --help too; see main). */
int mg_cfg_parse(mg_cfg *cfg, int tool, int argc, char **argv);
void mg_cfg_free(mg_cfg *cfg);

/* -L mqtt://[user[:pass]@]host[:port]/topic into cfg (topic: the -t for pub, one more topic
 * for sub). Returns 0 or 1 after printing an error. */
int mg_cfg_parse_url(mg_cfg *cfg, const char *url);

/* -D command identifier value [value2]; consumes 3 or 4 argv words from argv[i].
 * Returns the count consumed, or -1 after printing an error. */
int mg_cfg_parse_prop(mg_cfg *cfg, int argc, char **argv, int i);

/* "midge_pub" / "midge_sub", for messages. */
const char *mg_cfg_progname(const mg_cfg *cfg);

/* Prints "Error: ...\n" unless --quiet. */
void mg_err_printf(const mg_cfg *cfg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
