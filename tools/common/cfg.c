/*
 * tools/common/cfg.c - argv to mg_cfg, with mosquitto_pub/sub's flags, defaults and errors.
 */
#include "tools/common/cfg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <midge/midge.h>

const char *mg_cfg_progname(const mg_cfg *cfg)
{
	return cfg->tool == MG_TOOL_PUB ? "midge_pub" : "midge_sub";
}

void mg_err_printf(const mg_cfg *cfg, const char *fmt, ...)
{
	va_list ap;

	if (cfg->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static bool parse_long(const char *s, long *out)
{
	char *end;

	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end)
		return false;
	*out = v;
	return true;
}

static int push(const char ***arr, int *n, const char *s)
{
	const char **a = realloc(*arr, (size_t)(*n + 1) * sizeof(*a));

	if (!a)
		return -1;
	a[(*n)++] = s;
	*arr = a;
	return 0;
}

static int check_utf8(const char *s, const char *flag)
{
	if (midge_validate_utf8(s, strlen(s)) != MIDGE_OK) {
		fprintf(stderr, "Error: Malformed UTF-8 in %s argument.\n\n", flag);
		return 1;
	}
	return 0;
}

/* A -t argument: one publish topic for midge_pub, one more filter for midge_sub. */
static int add_topic(mg_cfg *cfg, const char *topic, const char *flag)
{
	if (check_utf8(topic, flag))
		return 1;
	if (cfg->tool == MG_TOOL_PUB) {
		if (midge_pub_topic_check(topic) != MIDGE_OK) {
			fprintf(stderr, "Error: Invalid publish topic '%s', does it contain '+' or '#'?\n",
				topic);
			return 1;
		}
		cfg->topic = topic;
		return 0;
	}
	if (midge_sub_topic_check(topic) != MIDGE_OK) {
		fprintf(stderr,
			"Error: Invalid subscription topic '%s', are all '+' and '#' wildcards correct?\n",
			topic);
		return 1;
	}
	return push(&cfg->topics, &cfg->ntopics, topic) ? 1 : 0;
}

static int set_mode(mg_cfg *cfg, int mode)
{
	if (cfg->pub_mode != MG_PUB_NONE) {
		fprintf(stderr, "Error: Only one type of message can be sent at once.\n\n");
		return 1;
	}
	cfg->pub_mode = mode;
	return 0;
}

static int parse_version(mg_cfg *cfg, const char *v)
{
	if (!strcmp(v, "mqttv31") || !strcmp(v, "31"))
		cfg->protocol = 3;
	else if (!strcmp(v, "mqttv311") || !strcmp(v, "311"))
		cfg->protocol = 4;
	else if (!strcmp(v, "mqttv5") || !strcmp(v, "5"))
		cfg->protocol = 5;
	else {
		fprintf(stderr, "Error: Invalid protocol version argument given.\n\n");
		return 1;
	}
	return 0;
}

static int parse_session_expiry(mg_cfg *cfg, const char *v)
{
	long long x;
	char *end;

	if (!strcmp(v, "\xe2\x88\x9e")) { /* "∞" */
		cfg->session_expiry = UINT32_MAX;
		return 0;
	}
	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || end == v || *end || x < -1 || x > (long long)UINT32_MAX) {
		fprintf(stderr, "Error: session-expiry-interval out of range.\n\n");
		return 1;
	}
	cfg->session_expiry = x == -1 ? (int64_t)UINT32_MAX : x;
	return 0;
}

/* Flags with one value: returns the value, or NULL after printing mosquitto's complaint. */
static const char *value_of(int argc, char **argv, int i, const char *what)
{
	if (i == argc - 1) {
		fprintf(stderr, "Error: %s argument given but no %s specified.\n\n", argv[i], what);
		return NULL;
	}
	return argv[i + 1];
}

static int parse_common(mg_cfg *cfg, int argc, char **argv, int *ip)
{
	int i = *ip;
	const char *a = argv[i];
	const char *v;
	long n;

#define VALUE(what)                                          \
	do {                                                 \
		if (!(v = value_of(argc, argv, i, what)))    \
			return 1;                            \
		*ip = i + 1;                                 \
	} while (0)

	if (!strcmp(a, "-h") || !strcmp(a, "--host")) {
		VALUE("host");
		cfg->host = v;
	} else if (!strcmp(a, "-p") || !strcmp(a, "--port")) {
		VALUE("port");
		if (!parse_long(v, &n) || n < 1 || n > 65535) {
			fprintf(stderr, "Error: Invalid port given: %s\n", v);
			return 1;
		}
		cfg->port = (int)n;
	} else if (!strcmp(a, "-i") || !strcmp(a, "--id")) {
		VALUE("id");
		if (cfg->id_prefix) {
			fprintf(stderr, "Error: -i and -I argument cannot be used together.\n\n");
			return 1;
		}
		if (check_utf8(v, a))
			return 1;
		cfg->id = v;
	} else if (!strcmp(a, "-I") || !strcmp(a, "--id-prefix")) {
		VALUE("id prefix");
		if (cfg->id) {
			fprintf(stderr, "Error: -i and -I argument cannot be used together.\n\n");
			return 1;
		}
		cfg->id_prefix = v;
	} else if (!strcmp(a, "-c") || !strcmp(a, "--disable-clean-session")) {
		cfg->clean_session = false;
	} else if (!strcmp(a, "-k") || !strcmp(a, "--keepalive")) {
		VALUE("keepalive");
		if (!parse_long(v, &n) || n < 5 || n > 65535) {
			fprintf(stderr,
				"Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.\n\n");
			return 1;
		}
		cfg->keepalive = (int)n;
	} else if (!strcmp(a, "-u") || !strcmp(a, "--username")) {
		VALUE("username");
		if (check_utf8(v, a))
			return 1;
		cfg->username = v;
	} else if (!strcmp(a, "-P") || !strcmp(a, "--pw")) {
		VALUE("password");
		cfg->password = v;
	} else if (!strcmp(a, "-V") || !strcmp(a, "--protocol-version")) {
		VALUE("protocol version");
		return parse_version(cfg, v);
	} else if (!strcmp(a, "-x")) {
		VALUE("session expiry interval");
		return parse_session_expiry(cfg, v);
	} else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
		cfg->debug = true;
	} else if (!strcmp(a, "--quiet")) {
		cfg->quiet = true;
	} else if (!strcmp(a, "-q") || !strcmp(a, "--qos")) {
		VALUE("QoS");
		if (!parse_long(v, &n) || n < 0 || n > 2) {
			fprintf(stderr, "Error: Invalid QoS given: %s\n", v);
			return 1;
		}
		cfg->qos = (int)n;
	} else if (!strcmp(a, "-t") || !strcmp(a, "--topic")) {
		VALUE("topic");
		return add_topic(cfg, v, a);
	} else if (!strcmp(a, "-L") || !strcmp(a, "--url")) {
		VALUE("URL");
		return mg_cfg_parse_url(cfg, v);
	} else if (!strcmp(a, "-D") || !strcmp(a, "--property")) {
		int used = mg_cfg_parse_prop(cfg, argc, argv, i);
		if (used < 0)
			return 1;
		*ip = i + used - 1;
	} else if (!strcmp(a, "--will-topic")) {
		VALUE("will topic");
		if (check_utf8(v, a))
			return 1;
		if (midge_pub_topic_check(v) != MIDGE_OK) {
			fprintf(stderr, "Error: Invalid will topic '%s', does it contain '+' or '#'?\n", v);
			return 1;
		}
		cfg->will_topic = v;
	} else if (!strcmp(a, "--will-payload")) {
		VALUE("will payload");
		cfg->will_payload = v;
	} else if (!strcmp(a, "--will-qos")) {
		VALUE("will QoS");
		if (!parse_long(v, &n) || n < 0 || n > 2) {
			fprintf(stderr, "Error: Invalid will QoS %s.\n\n", v);
			return 1;
		}
		cfg->will_qos = (int)n;
	} else if (!strcmp(a, "--will-retain")) {
		cfg->will_retain = true;
	} else if (!strcmp(a, "--cafile")) {
		VALUE("file");
		cfg->cafile = v;
	} else if (!strcmp(a, "--capath")) {
		VALUE("directory");
		cfg->capath = v;
	} else if (!strcmp(a, "--cert")) {
		VALUE("file");
		cfg->certfile = v;
	} else if (!strcmp(a, "--key")) {
		VALUE("file");
		cfg->keyfile = v;
	} else if (!strcmp(a, "--ciphers")) {
		VALUE("ciphers");
		cfg->ciphers = v;
	} else if (!strcmp(a, "--tls-version")) {
		VALUE("version");
		cfg->tls_version = v;
	} else if (!strcmp(a, "--insecure")) {
		cfg->insecure = true;
	} else if (!strcmp(a, "--tls-use-os-certs")) {
		cfg->tls_use_os_certs = true;
	} else if (!strcmp(a, "--psk")) {
		VALUE("key");
		cfg->psk = v;
	} else if (!strcmp(a, "--psk-identity")) {
		VALUE("identity");
		cfg->psk_identity = v;
	} else {
		return -1; /* not a common flag */
	}
	return 0;
#undef VALUE
}

static int parse_pub(mg_cfg *cfg, int argc, char **argv, int *ip)
{
	int i = *ip;
	const char *a = argv[i];
	const char *v;
	long n;

	if (!strcmp(a, "-m") || !strcmp(a, "--message")) {
		if (!(v = value_of(argc, argv, i, "message")))
			return 1;
		*ip = i + 1;
		if (set_mode(cfg, MG_PUB_MESSAGE))
			return 1;
		cfg->message = v;
	} else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
		if (!(v = value_of(argc, argv, i, "file")))
			return 1;
		*ip = i + 1;
		if (set_mode(cfg, MG_PUB_FILE))
			return 1;
		cfg->file = v;
	} else if (!strcmp(a, "-s") || !strcmp(a, "--stdin-file")) {
		return set_mode(cfg, MG_PUB_STDIN);
	} else if (!strcmp(a, "-l") || !strcmp(a, "--stdin-line")) {
		return set_mode(cfg, MG_PUB_LINES);
	} else if (!strcmp(a, "-n") || !strcmp(a, "--null-message")) {
		return set_mode(cfg, MG_PUB_NULL);
	} else if (!strcmp(a, "-r") || !strcmp(a, "--retain")) {
		cfg->retain = true;
	} else if (!strcmp(a, "--repeat")) {
		if (!(v = value_of(argc, argv, i, "count")))
			return 1;
		*ip = i + 1;
		if (!parse_long(v, &n) || n < 1) {
			fprintf(stderr, "Error: --repeat argument must be >0.\n\n");
			return 1;
		}
		cfg->repeat = n;
	} else if (!strcmp(a, "--repeat-delay")) {
		char *end;
		if (!(v = value_of(argc, argv, i, "time")))
			return 1;
		*ip = i + 1;
		cfg->repeat_delay = strtod(v, &end);
		if (end == v || *end || cfg->repeat_delay < 0) {
			fprintf(stderr, "Error: --repeat-delay argument must be >=0.0.\n\n");
			return 1;
		}
	} else {
		return -1;
	}
	return 0;
}

static int parse_sub(mg_cfg *cfg, int argc, char **argv, int *ip)
{
	int i = *ip;
	const char *a = argv[i];
	const char *v;
	long n;

	if (!strcmp(a, "-T") || !strcmp(a, "--filter-out")) {
		if (!(v = value_of(argc, argv, i, "topic filter")))
			return 1;
		*ip = i + 1;
		if (check_utf8(v, a))
			return 1;
		if (midge_sub_topic_check(v) != MIDGE_OK) {
			fprintf(stderr, "Error: Invalid filter topic '%s', are all '+' and '#' wildcards correct?\n", v);
			return 1;
		}
		return push(&cfg->filter_outs, &cfg->nfilter_outs, v) ? 1 : 0;
	} else if (!strcmp(a, "-U") || !strcmp(a, "--unsubscribe")) {
		if (!(v = value_of(argc, argv, i, "unsubscribe topic")))
			return 1;
		*ip = i + 1;
		if (check_utf8(v, a))
			return 1;
		if (midge_sub_topic_check(v) != MIDGE_OK) {
			fprintf(stderr, "Error: Invalid unsubscribe topic '%s', are all '+' and '#' wildcards correct?\n", v);
			return 1;
		}
		return push(&cfg->unsub_topics, &cfg->nunsub_topics, v) ? 1 : 0;
	} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
		cfg->verbose = true;
	} else if (!strcmp(a, "-N")) {
		cfg->eol = false;
	} else if (!strcmp(a, "-R")) {
		cfg->no_retain = true;
	} else if (!strcmp(a, "-E")) {
		cfg->exit_after_sub = true;
	} else if (!strcmp(a, "--retained-only")) {
		cfg->retained_only = true;
	} else if (!strcmp(a, "--remove-retained")) {
		cfg->remove_retained = true;
	} else if (!strcmp(a, "-C")) {
		if (!(v = value_of(argc, argv, i, "count")))
			return 1;
		*ip = i + 1;
		if (!parse_long(v, &n) || n < 1) {
			fprintf(stderr, "Error: Invalid message count \"%s\".\n\n", v);
			return 1;
		}
		cfg->msg_count = n;
	} else if (!strcmp(a, "-W")) {
		if (!(v = value_of(argc, argv, i, "timeout")))
			return 1;
		*ip = i + 1;
		if (!parse_long(v, &n) || n < 1 || n > 3600 * 24 * 365) {
			fprintf(stderr, "Error: Invalid timeout \"%s\".\n\n", v);
			return 1;
		}
		cfg->timeout = n;
	} else if (!strcmp(a, "-F")) {
		if (!(v = value_of(argc, argv, i, "format")))
			return 1;
		*ip = i + 1;
		cfg->format = v;
	} else {
		return -1;
	}
	return 0;
}

/* Checks across flags, once argv is read (mosquitto's client_config_load order). */
static int check(mg_cfg *cfg)
{
	if (cfg->will_payload && !cfg->will_topic) {
		fprintf(stderr, "Error: Will payload given, but no will topic given.\n");
		return 1;
	}
	if (cfg->will_retain && !cfg->will_topic) {
		fprintf(stderr, "Error: Will retain given, but no will topic given.\n");
		return 1;
	}
	if ((cfg->certfile && !cfg->keyfile) || (cfg->keyfile && !cfg->certfile)) {
		fprintf(stderr, "Error: Both certfile and keyfile must be provided if one of them is set.\n");
		return 1;
	}
	if ((cfg->cafile || cfg->capath) && cfg->psk) {
		fprintf(stderr, "Error: Only one of --psk or --cafile/--capath may be used at once.\n");
		return 1;
	}
	if (cfg->psk && !cfg->psk_identity) {
		fprintf(stderr, "Error: --psk-identity required if --psk used.\n");
		return 1;
	}
	if (cfg->protocol == 5) {
		/* -c without -x asks for a session that never expires. */
		if (!cfg->clean_session && cfg->session_expiry == -1)
			cfg->session_expiry = UINT32_MAX;
		if (cfg->session_expiry == UINT32_MAX && (cfg->id_prefix || !cfg->id)) {
			fprintf(stderr, "Error: You must provide a client id if you are using an "
					"infinite session expiry interval.\n");
			return 1;
		}
	} else if (!cfg->clean_session && (cfg->id_prefix || !cfg->id)) {
		fprintf(stderr, "Error: You must provide a client id if you are using the -c option.\n");
		return 1;
	}
	if (cfg->tool == MG_TOOL_SUB && cfg->ntopics == 0 && cfg->nunsub_topics == 0) {
		fprintf(stderr, "Error: You must specify a topic to subscribe to (-t) or unsubscribe "
				"from (-U).\n");
		return 1;
	}
	if (cfg->id_prefix) {
		size_t len = strlen(cfg->id_prefix) + 24;
		cfg->id_owned = malloc(len);
		if (!cfg->id_owned)
			return 1;
		snprintf(cfg->id_owned, len, "%s%ld", cfg->id_prefix, (long)getpid());
		cfg->id = cfg->id_owned;
	}
	return 0;
}

int mg_cfg_parse(mg_cfg *cfg, int tool, int argc, char **argv)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->tool = tool;
	cfg->port = -1;
	cfg->clean_session = true;
	cfg->keepalive = 60;
	cfg->protocol = 4;
	cfg->session_expiry = -1;
	cfg->repeat = 1;
	cfg->eol = true;

	for (int i = 1; i < argc; i++) {
		int rc;

		if (!strcmp(argv[i], "--help"))
			return 2;
		rc = parse_common(cfg, argc, argv, &i);
		if (rc < 0)
			rc = tool == MG_TOOL_PUB ? parse_pub(cfg, argc, argv, &i)
						 : parse_sub(cfg, argc, argv, &i);
		if (rc < 0) {
			fprintf(stderr, "Error: Unknown option '%s'.\n", argv[i]);
			return 1;
		}
		if (rc)
			return 1;
	}
	if (check(cfg))
		return 1;
	if (!cfg->host)
		cfg->host = "localhost";
	/* As mosquitto_pub: the MQTT-over-TLS port means TLS with the system's CAs when no CA or
	 * key is given (the port the user gave, not the default below). */
	if (cfg->port == 8883 && !cfg->cafile && !cfg->capath && !cfg->psk)
		cfg->tls_use_os_certs = true;
	if (cfg->port < 0)
		cfg->port = cfg->cafile || cfg->capath || cfg->psk ? 8883 : 1883;
	return 0;
}

void mg_cfg_free(mg_cfg *cfg)
{
	free(cfg->id_owned);
	free(cfg->props);
	free(cfg->topics);
	free(cfg->filter_outs);
	free(cfg->unsub_topics);
	free(cfg->url_copy);
	free(cfg->ws_path_copy);
	memset(cfg, 0, sizeof(*cfg));
}
