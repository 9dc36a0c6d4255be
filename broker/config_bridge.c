/*
 * broker/config_bridge.c - the `connection NAME` blocks of mosquitto.conf: every bridge
 * keyword of mosquitto 2.0 with its meaning and defaults (src/conf.c there), and the checks
 * that need the whole block (run when the whole file is read). A bridge option outside a
 * block is refused with its file and line, as is everything mosquitto itself refuses.
 * What the options do at run time: broker/bridge.c. The keywords in prose: midge.conf(5).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/bridge_conf.h"
#include "broker/config_int.h"
#include "broker/log.h"
#include "proto/proto.h"

static mg_bridge_conf *cur(mg_parse *p)
{
	return p->bridge > 0 ? &p->c->bridges[p->bridge - 1] : NULL;
}

static int set_str(mg_parse *p, char **field, const char *value)
{
	char *s = strdup(value);
	if (!s)
		return mg_perr(p, "out of memory");
	free(*field);
	*field = s;
	return 0;
}

static int get_bool(mg_parse *p, const char *kw, const char *s, bool *out)
{
	if (strcmp(s, "true") == 0)
		*out = true;
	else if (strcmp(s, "false") == 0)
		*out = false;
	else
		return mg_perr(p, "invalid value '%s' for '%s' (expected true or false)", s, kw);
	return 0;
}

/* A whole number (mosquitto's atoi takes "12abc"; midge names the mistake). */
static int get_int(mg_parse *p, const char *kw, const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (end == s || *end)
		return mg_perr(p, "invalid value '%s' for '%s' (expected a whole number)", s, kw);
	if (errno == ERANGE || v < min || v > max)
		return mg_perr(p, "value %s for '%s' is out of range (%ld to %ld)", s, kw, min, max);
	*out = v;
	return 0;
}

int mg_kw_connection(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	(void)kw;
	(void)argc;
	(void)rest;
	mg_config *c = p->c;
	for (int i = 0; i < c->n_bridges; i++)
		if (strcmp(c->bridges[i].name, argv[0]) == 0)
			return mg_perr(p, "duplicate bridge name \"%s\" (the first is at %s:%d)", argv[0],
			               c->bridges[i].file, c->bridges[i].line);
	mg_bridge_conf *v = realloc(c->bridges, (size_t)(c->n_bridges + 1) * sizeof *v);
	if (!v)
		return mg_perr(p, "out of memory");
	c->bridges = v;
	mg_bridge_conf *b = &v[c->n_bridges];
	mg_bridge_conf_init(b);
	if (!(b->name = strdup(argv[0])))
		return mg_perr(p, "out of memory");
	b->file = p->file;
	b->line = p->line;
	c->n_bridges++;
	p->bridge = c->n_bridges;
	return 0;
}

/* address host[:port] ...: the port after the last ':' (an IPv6 address needs one) */
static int kw_address(mg_parse *p, mg_bridge_conf *b, const char *kw, int argc, char **argv)
{
	if (b->n_addrs)
		return mg_perr(p, "'%s' given twice in bridge %s (list every address on one line)", kw, b->name);
	if (argc < 1)
		return mg_perr(p, "'%s' needs a value", kw);
	b->addrs = calloc((size_t)argc, sizeof *b->addrs);
	if (!b->addrs)
		return mg_perr(p, "out of memory");
	for (int i = 0; i < argc; i++) {
		char *h = strdup(argv[i]);
		if (!h)
			return mg_perr(p, "out of memory");
		b->addrs[b->n_addrs++].host = h;
		b->addrs[i].port = 1883;
		char *colon = strrchr(h, ':');
		if (colon) {
			long port;
			*colon = '\0';
			if (get_int(p, kw, colon + 1, 1, 65535, &port) < 0)
				return -1;
			b->addrs[i].port = (uint16_t)port;
		}
		if (!*h)
			return mg_perr(p, "empty host in '%s %s'", kw, argv[i]);
	}
	return 0;
}

/* topic PATTERN [in|out|both] [QOS] [LOCAL_PREFIX REMOTE_PREFIX], read from the raw line:
 * a PATTERN of '#' is a topic, not a comment (mosquitto reads it so); after it a word
 * starting with '#' begins a comment. */
static int kw_topic(mg_parse *p, mg_bridge_conf *b)
{
	char buf[1024];
	const char *raw = p->raw_args ? p->raw_args : "";
	if (strlen(raw) >= sizeof buf)
		return mg_perr(p, "'topic' line too long");
	strcpy(buf, raw);
	char *w[6];
	int n = 0;
	for (char *s = buf; n < 6;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || (n > 0 && *s == '#'))
			break;
		w[n++] = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		if (*s)
			*s++ = '\0';
		if (n == 6)
			return mg_perr(p, "too many values for 'topic': unexpected '%s'", w[5]);
	}
	if (n == 0)
		return mg_perr(p, "'topic' needs a value");
	int dir = MG_BRIDGE_OUT;
	long qos = 0;
	if (n > 1) {
		if (strcasecmp(w[1], "out") == 0)
			dir = MG_BRIDGE_OUT;
		else if (strcasecmp(w[1], "in") == 0)
			dir = MG_BRIDGE_IN;
		else if (strcasecmp(w[1], "both") == 0)
			dir = MG_BRIDGE_BOTH;
		else
			return mg_perr(p, "invalid bridge topic direction '%s' (expected in, out or both)", w[1]);
	}
	if (n > 2 && get_int(p, "topic", w[2], 0, 2, &qos) < 0)
		return -1;
	if (n == 4)
		return mg_perr(p, "'topic %s': a local prefix needs a remote prefix after it (write \"\" for none)", w[0]);
	char err[300];
	if (mg_bridge_topic_add(b, w[0], dir, (int)qos, n > 3 ? w[3] : NULL, n > 4 ? w[4] : NULL, err,
	                        sizeof err) < 0)
		return mg_perr(p, "%s", err);
	return 0;
}

static int kw_restart_timeout(mg_parse *p, mg_bridge_conf *b, const char *kw, int argc, char **argv)
{
	long base, cap = 0;
	if (argc < 1)
		return mg_perr(p, "'%s' needs a value", kw);
	if (argc > 2)
		return mg_perr(p, "too many values for '%s': unexpected '%s'", kw, argv[2]);
	if (get_int(p, kw, argv[0], -1000000, 1000000, &base) < 0 ||
	    (argc > 1 && get_int(p, kw, argv[1], 0, 1000000, &cap) < 0))
		return -1;
	if (base < 1) {
		mg_log(MG_LOG_NOTICE, "restart_timeout interval too low, using 1 second.");
		base = 1;
	}
	b->restart_timeout = (int)base;
	b->backoff_base = b->backoff_cap = 0;
	if (argc > 1) {
		if (cap < base)
			return mg_perr(p, "backoff cap is lower than the base in restart_timeout");
		b->backoff_base = (int)base;
		b->backoff_cap = (int)cap;
	}
	return 0;
}

static int kw_protocol_version(mg_parse *p, mg_bridge_conf *b, const char *v)
{
	if (strcmp(v, "mqttv31") == 0)
		b->protocol = MG_V31;
	else if (strcmp(v, "mqttv311") == 0)
		b->protocol = MG_V311;
	else if (strcmp(v, "mqttv50") == 0)
		b->protocol = MG_V5;
	else
		return mg_perr(p, "invalid bridge_protocol_version value (%s) (expected mqttv31, mqttv311 or mqttv50)", v);
	return 0;
}

static int kw_start_type(mg_parse *p, mg_bridge_conf *b, const char *v)
{
	if (strcmp(v, "automatic") == 0)
		b->start_type = MG_BRIDGE_START_AUTOMATIC;
	else if (strcmp(v, "lazy") == 0)
		b->start_type = MG_BRIDGE_START_LAZY;
	else if (strcmp(v, "once") == 0)
		b->start_type = MG_BRIDGE_START_ONCE;
	else if (strcmp(v, "manual") == 0)
		return mg_perr(p, "manual start_type not supported (mosquitto does not support it either)");
	else
		return mg_perr(p, "invalid start_type value '%s' (expected automatic, lazy or once)", v);
	return 0;
}

/* Certificates and a pre-shared key exclude each other, as in mosquitto. */
static int tls_kind_clash(mg_parse *p, const mg_bridge_conf *b, bool psk)
{
	if (psk ? (b->cafile || b->capath || b->certfile || b->keyfile) : (b->psk || b->identity))
		return mg_perr(p, "cannot use both certificate and psk encryption in a single bridge");
	return 0;
}

int mg_kw_bridge(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	(void)rest;
	mg_bridge_conf *b = cur(p);
	if (!b)
		return mg_perr(p, "'%s' is a bridge option: it belongs after a 'connection NAME' line", kw);
	if (strcmp(kw, "address") == 0 || strcmp(kw, "addresses") == 0)
		return kw_address(p, b, kw, argc, argv);
	if (strcmp(kw, "topic") == 0)
		return kw_topic(p, b);
	if (strcmp(kw, "restart_timeout") == 0)
		return kw_restart_timeout(p, b, kw, argc, argv);
	if (argc < 1)
		return mg_perr(p, "'%s' needs a value", kw);
	if (argc > 1)
		return mg_perr(p, "too many values for '%s': unexpected '%s'", kw, argv[1]);
	const char *v = argv[0];
	long n;
	/* booleans */
	struct { const char *kw; bool *field; } bools[] = {
		{ "bridge_attempt_unsubscribe", &b->attempt_unsubscribe },
		{ "bridge_outgoing_retain", &b->outgoing_retain },
		{ "cleansession", &b->clean },
		{ "notifications", &b->notifications },
		{ "notifications_local_only", &b->notifications_local_only },
		{ "round_robin", &b->round_robin },
		{ "try_private", &b->try_private },
		{ "bridge_require_ocsp", &b->require_ocsp },
	};
	for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
		if (strcmp(kw, bools[i].kw) == 0)
			return get_bool(p, kw, v, bools[i].field);
	/* strings */
	struct { const char *kw; char **field; } strs[] = {
		{ "clientid", &b->remote_clientid }, { "remote_clientid", &b->remote_clientid },
		{ "local_clientid", &b->local_clientid },
		{ "username", &b->remote_username }, { "remote_username", &b->remote_username },
		{ "password", &b->remote_password }, { "remote_password", &b->remote_password },
		{ "local_username", &b->local_username }, { "local_password", &b->local_password },
		{ "notification_topic", &b->notification_topic },
		{ "bridge_tls_version", &b->tls_version },
		{ "bridge_bind_address", &b->bind_address },
		{ "bridge_alpn", &b->alpn },
	};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		if (strcmp(kw, strs[i].kw) == 0)
			return set_str(p, strs[i].field, v);
	struct { const char *kw; char **field; bool psk; } tls[] = {
		{ "bridge_cafile", &b->cafile, false }, { "bridge_capath", &b->capath, false },
		{ "bridge_certfile", &b->certfile, false }, { "bridge_keyfile", &b->keyfile, false },
		{ "bridge_identity", &b->identity, true }, { "bridge_psk", &b->psk, true },
	};
	for (size_t i = 0; i < sizeof tls / sizeof tls[0]; i++)
		if (strcmp(kw, tls[i].kw) == 0)
			return tls_kind_clash(p, b, tls[i].psk) < 0 ? -1 : set_str(p, tls[i].field, v);
	if (strcmp(kw, "local_cleansession") == 0) {
		bool lc = false;
		if (get_bool(p, kw, v, &lc) < 0)
			return -1;
		b->local_clean = lc;
		return 0;
	}
	if (strcmp(kw, "bridge_insecure") == 0) {
		if (get_bool(p, kw, v, &b->tls_insecure) < 0)
			return -1;
		if (b->tls_insecure)
			mg_pwarn(p, "bridge %s using insecure mode (the remote's certificate host name is not checked)", b->name);
		return 0;
	}
	if (strcmp(kw, "bridge_protocol_version") == 0)
		return kw_protocol_version(p, b, v);
	if (strcmp(kw, "start_type") == 0)
		return kw_start_type(p, b, v);
	if (strcmp(kw, "bridge_max_packet_size") == 0) {
		if (get_int(p, kw, v, -2147483647L, 268435460L, &n) < 0)
			return -1;
		b->max_packet_size = n < 0 ? 0 : (uint32_t)n;
		return 0;
	}
	if (strcmp(kw, "keepalive_interval") == 0) {
		if (get_int(p, kw, v, -2147483647L, 65535, &n) < 0)
			return -1;
		if (n < 5) {
			mg_log(MG_LOG_NOTICE, "keepalive interval too low, using 5 seconds.");
			n = 5;
		}
		b->keepalive = (uint16_t)n;
		return 0;
	}
	if (strcmp(kw, "idle_timeout") == 0 || strcmp(kw, "threshold") == 0) {
		bool idle = kw[0] == 'i';
		if (get_int(p, kw, v, -2147483647L, 2147483647L, &n) < 0)
			return -1;
		if (n < 1) {
			mg_log(MG_LOG_NOTICE, idle ? "idle_timeout interval too low, using 1 second."
			                           : "threshold too low, using 1 message.");
			n = 1;
		}
		*(idle ? &b->idle_timeout : &b->threshold) = (int)n;
		return 0;
	}
	return mg_perr(p, "unknown bridge option '%s'", kw);
}

/* After the whole file: what mosquitto checks and derives once every line is read. */
int mg_bridge_check_all(mg_parse *p)
{
	mg_config *c = p->c;
	for (int i = 0; i < c->n_bridges; i++) {
		mg_bridge_conf *b = &c->bridges[i];
		p->file = b->file;
		p->line = b->line;
		if (!b->n_addrs)
			return mg_perr(p, "bridge %s: no remote address ('address HOST[:PORT]')", b->name);
		if (!b->n_topics)
			return mg_perr(p, "bridge %s: no topics ('topic PATTERN [in|out|both] ...')", b->name);
		if (b->psk && !b->identity)
			return mg_perr(p, "bridge %s: bridge_psk without bridge_identity", b->name);
		if (b->identity && !b->psk)
			return mg_perr(p, "bridge %s: bridge_identity without bridge_psk", b->name);
		if (b->require_ocsp && b->psk)
			return mg_perr(p, "bridge %s: bridge_require_ocsp needs the remote's certificate "
			               "(bridge_cafile or bridge_capath), not bridge_psk", b->name);
		if ((b->alpn || b->require_ocsp) && !b->cafile && !b->capath && !b->psk)
			mg_pwarn(p, "bridge %s: %s has no effect without TLS (bridge_cafile, bridge_capath "
			         "or bridge_psk)", b->name, b->alpn ? "bridge_alpn" : "bridge_require_ocsp");
		if (b->local_clean < 0)
			b->local_clean = b->clean;
		if (!b->remote_clientid) {
			char host[256];
			if (gethostname(host, sizeof host) != 0)
				strcpy(host, "localhost");
			host[sizeof host - 1] = '\0';
			size_t n = strlen(host) + strlen(b->name) + 2;
			if (!(b->remote_clientid = malloc(n)))
				return mg_perr(p, "out of memory");
			snprintf(b->remote_clientid, n, "%s.%s", host, b->name);
		}
		if (!b->local_clientid) {
			size_t n = strlen(b->remote_clientid) + 7;
			if (!(b->local_clientid = malloc(n)))
				return mg_perr(p, "out of memory");
			snprintf(b->local_clientid, n, "local.%s", b->remote_clientid);
		}
		for (int j = 0; j < i; j++)
			if (strcmp(c->bridges[j].local_clientid, b->local_clientid) == 0)
				return mg_perr(p, "bridge %s: local_clientid '%s' is also bridge %s's: "
				               "set a different local_clientid for one of them", b->name,
				               b->local_clientid, c->bridges[j].name);
	}
	return 0;
}

void mg_bridge_conf_free_all(mg_config *c)
{
	for (int i = 0; i < c->n_bridges; i++)
		mg_bridge_conf_free(&c->bridges[i]);
	free(c->bridges);
	c->bridges = NULL;
	c->n_bridges = 0;
}
