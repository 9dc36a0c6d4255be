/*
 * broker/config_keywords.c - what each keyword of mosquitto.conf means to midge.
 *
 * Every keyword mosquitto 2 documents is known here. Those midge implements set a field;
 * those asking for a feature midge does not have yet (plugins, OpenSSL engines) stop the load with a message naming
 * the file, the line and the missing feature, while their harmless values ("persistence
 * false", "protocol mqtt", "tls_keyform pem") are accepted. Obsolete or no-op keywords
 * are accepted with a warning that says so. Nothing is ignored silently.
 * docs/man/midge.conf.5 is this table in prose; keep them together.
 */
#include "broker/config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config_int.h"
#include "broker/log.h"
#include "proto/proto.h"

/* ---- value parsers: each sets p->err on failure ---- */

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

/* Strict decimal: an optional '-', digits, nothing else (mosquitto's atoi takes "12abc"). */
static int get_ll(mg_parse *p, const char *kw, const char *s, long long min, long long max, long long *out)
{
	const char *q = s;
	if (*q == '-')
		q++;
	if (*q < '0' || *q > '9')
		return mg_perr(p, "invalid value '%s' for '%s' (expected a whole number)", s, kw);
	for (const char *r = q; *r; r++)
		if (*r < '0' || *r > '9')
			return mg_perr(p, "invalid value '%s' for '%s' (expected a whole number)", s, kw);
	errno = 0;
	long long v = strtoll(s, NULL, 10);
	if (errno == ERANGE || v < min || v > max)
		return mg_perr(p, "value %s for '%s' is out of range (%lld to %lld)", s, kw, min, max);
	*out = v;
	return 0;
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

static int not_yet(mg_parse *p, const char *kw, const char *what)
{
	return mg_perr(p, "'%s': %s not yet implemented in this version of midge", kw, what);
}

/* The listener that listener options apply to: the last `listener`, or before any, the
   default listener of `port` / `bind_address`. */
static mg_listener_conf *cur_listener(mg_parse *p, const char *kw)
{
	if (p->cur >= 0)
		return &p->c->listeners[p->cur];
	if (!p->deflt_first_kw) {
		p->deflt_first_kw = kw;
		p->deflt_first_file = p->file;
		p->deflt_first_line = p->line;
	}
	return &p->deflt;
}

/* ---- listeners ---- */

static int kw_listener(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long port;
	if (get_ll(p, kw, argv[0], 0, 65535, &port) < 0)
		return -1;
	if (argc > 1 && argv[1][0] == '/')
		return not_yet(p, kw, "unix domain sockets are");
	mg_listener_conf l;
	mg_listener_conf_init(&l);
	l.port = (uint16_t)port;
	l.file = p->file;
	l.line = p->line;
	if (argc > 1 && !(l.bind_address = strdup(argv[1])))
		return mg_perr(p, "out of memory");
	int i = mg_config_add_listener(p->c, &l);
	if (i < 0) {
		mg_listener_conf_free(&l);
		return mg_perr(p, "out of memory");
	}
	p->cur = i;
	return 0;
}

static void deflt_make_real(mg_parse *p)
{
	if (!p->deflt_real) {
		p->deflt_real = true;
		p->deflt.port = 1883;
		p->deflt.file = p->file;
		p->deflt.line = p->line;
	}
}

static int kw_port(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long port;
	if (get_ll(p, kw, argv[0], 0, 65535, &port) < 0)
		return -1;
	deflt_make_real(p);
	p->deflt.port = (uint16_t)port;
	mg_pwarn(p, "'port' is deprecated (as in mosquitto 2); use 'listener %lld' instead", port);
	return 0;
}

static int kw_bind_address(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	deflt_make_real(p);
	if (set_str(p, &p->deflt.bind_address, argv[0]) < 0)
		return -1;
	mg_pwarn(p, "'bind_address' is deprecated (as in mosquitto 2) and applies only to the "
			"default listener of 'port'; use 'listener PORT %s' instead", argv[0]);
	return 0;
}

static int kw_protocol(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	if (strcmp(argv[0], "mqtt") == 0) {
		if (p->cur >= 0)
			p->c->listeners[p->cur].protocol = MG_PROTO_MQTT;
		else
			p->deflt.protocol = MG_PROTO_MQTT; /* the default anyway: not a reason to exist */
		return 0;
	}
	if (strcmp(argv[0], "websockets") == 0) {
		cur_listener(p, kw)->protocol = MG_PROTO_WEBSOCKETS;
		return 0;
	}
	return mg_perr(p, "invalid value '%s' for 'protocol' (expected mqtt or websockets)", argv[0]);
}

static int kw_mount_point(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	if (strpbrk(argv[0], "+#"))
		return mg_perr(p, "invalid mount_point '%s': it may not hold the wildcards + or #", argv[0]);
	return set_str(p, &cur_listener(p, kw)->mount_point, argv[0]) < 0 ? -1 : 0;
}

static int kw_max_connections(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], -1, INT_MAX, &v) < 0)
		return -1;
	/* Before any listener it is the broker-wide limit; after one, that listener's. */
	if (p->cur >= 0)
		p->c->listeners[p->cur].max_connections = (int)v;
	else
		p->c->max_connections = (int)v;
	return 0;
}

static int kw_max_qos(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, 2, &v) < 0)
		return -1;
	return v == 2 ? 0 : not_yet(p, kw, "limiting a listener's QoS is");
}

static int kw_max_topic_alias(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, 65535, &v) < 0)
		return -1;
	return v == 10 ? 0 : not_yet(p, kw, "changing the topic alias maximum (10) is");
}

static int kw_socket_domain(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	if (strcmp(argv[0], "ipv4") != 0 && strcmp(argv[0], "ipv6") != 0)
		return mg_perr(p, "invalid value '%s' for 'socket_domain' (expected ipv4 or ipv6)", argv[0]);
	return not_yet(p, kw, "restricting a listener to one IP version is");
}

static int kw_not_yet_listener(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	return not_yet(p, kw, "binding to an interface by name is");
}

/* http_dir DIR: static files on a WebSockets listener (broker/http.c). The rest of the line is
 * the directory, spaces and all, as mosquitto reads it. */
static int kw_http_dir(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	return set_str(p, &cur_listener(p, kw)->http_dir, rest) < 0 ? -1 : 0;
}

/* http_metrics true: /metrics (Prometheus) and /healthz on this WebSockets listener
 * (broker/metrics.c). Off by default: the numbers tell anyone who can reach the port how busy
 * the broker is and how many clients it has. */
static int kw_http_metrics(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	return get_bool(p, kw, argv[0], &cur_listener(p, kw)->http_metrics);
}

static int kw_use_username_as_clientid(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	return get_bool(p, kw, argv[0], &cur_listener(p, kw)->use_username_as_clientid);
}

/* Global, as in mosquitto: the largest HTTP request head a WebSockets listener reads. */
static int kw_websockets_headers_size(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, 1024 * 1024, &v) < 0)
		return -1;
	p->c->websockets_headers_size = (int)v;
	return 0;
}

/* mosquitto passes it to libwebsockets' logging; midge has no libwebsockets. Its own WebSocket
 * and HTTP lines are `log_type websockets`. */
static int kw_websockets_log_level(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, INT_MAX, &v) < 0)
		return -1;
	mg_pwarn(p, "'%s' has no effect in midge (it tunes libwebsockets, which midge does not use); "
			"'log_type websockets' logs WebSocket handshakes and HTTP requests", kw);
	return 0;
}

/* ---- TLS (mosquitto's listener options; the files are read by broker/tls.c) ---- */

static char **tls_field(mg_listener_conf *l, const char *kw)
{
	static const struct { const char *kw; size_t off; } f[] = {
		{"cafile", offsetof(mg_listener_conf, cafile)},
		{"capath", offsetof(mg_listener_conf, capath)},
		{"certfile", offsetof(mg_listener_conf, certfile)},
		{"keyfile", offsetof(mg_listener_conf, keyfile)},
		{"crlfile", offsetof(mg_listener_conf, crlfile)},
		{"dhparamfile", offsetof(mg_listener_conf, dhparamfile)},
		{"ciphers", offsetof(mg_listener_conf, ciphers)},
		{"ciphers_tls1.3", offsetof(mg_listener_conf, ciphers_tls13)},
		{"tls_version", offsetof(mg_listener_conf, tls_version)},
		{"psk_hint", offsetof(mg_listener_conf, psk_hint)},
	};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (strcmp(kw, f[i].kw) == 0)
			return (char **)((char *)l + f[i].off);
	return NULL;
}

static int kw_tls_path(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	if (strcmp(kw, "tls_version") == 0 && strcmp(rest, "tlsv1.3") != 0 &&
	    strcmp(rest, "tlsv1.2") != 0 && strcmp(rest, "tlsv1.1") != 0)
		return mg_perr(p, "invalid value '%s' for 'tls_version' (expected tlsv1.3, tlsv1.2 or "
				"tlsv1.1: the oldest version the listener accepts)", rest);
	if (strcmp(kw, "tls_keyform") == 0)
		return strcmp(rest, "pem") == 0 ? 0 : not_yet(p, kw, "keys held by an OpenSSL engine are");
	char **field = tls_field(cur_listener(p, kw), kw);
	if (!field)
		return not_yet(p, kw, "keys held by an OpenSSL engine are"); /* tls_engine* */
	return set_str(p, field, rest);
}

static int kw_tls_bool(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	mg_listener_conf *l = cur_listener(p, kw);
	bool *b = strcmp(kw, "require_certificate") == 0 ? &l->require_certificate
	        : strcmp(kw, "use_identity_as_username") == 0 ? &l->use_identity_as_username
	        : &l->use_subject_as_username;
	return get_bool(p, kw, argv[0], b);
}


/* After the whole file: TLS options that cannot work as given are errors at the listener's
 * line, where mosquitto would run the listener without TLS or fail every handshake. */
int mg_kw_check_tls(mg_parse *p, const mg_listener_conf *l)
{
	p->file = l->file;
	p->line = l->line;
	bool certs = l->certfile || l->keyfile;
	if (l->psk_hint && certs)
		return mg_perr(p, "Cannot use both certificate and psk encryption in a single listener "
				"(certfile/keyfile and psk_hint)");
	if (certs && !(l->certfile && l->keyfile))
		return mg_perr(p, "listener %u has '%s' without '%s': TLS needs both", l->port,
				l->certfile ? "certfile" : "keyfile", l->certfile ? "keyfile" : "certfile");
	if (l->psk_hint && !(p->c->per_listener_settings ? l->psk_file : p->c->psk_file))
		return mg_perr(p, "listener %u has 'psk_hint' but no 'psk_file' holds the keys", l->port);
	const char *opt = l->cafile ? "cafile" : l->capath ? "capath" : l->crlfile ? "crlfile"
	                : l->dhparamfile ? "dhparamfile" : l->ciphers ? "ciphers"
	                : l->ciphers_tls13 ? "ciphers_tls1.3" : l->tls_version ? "tls_version"
	                : l->require_certificate ? "require_certificate"
	                : l->use_identity_as_username ? "use_identity_as_username"
	                : l->use_subject_as_username ? "use_subject_as_username" : NULL;
	if (opt && !certs && !l->psk_hint)
		return mg_perr(p, "listener %u has '%s' but is not a TLS listener: add 'certfile' and "
				"'keyfile' (or 'psk_hint')", l->port, opt);
	if (l->require_certificate && !l->cafile && !l->capath)
		return mg_perr(p, "listener %u has 'require_certificate true' but no 'cafile' or 'capath' "
				"to check client certificates against", l->port);
	return 0;
}

/* ---- security ---- */

/* allow_anonymous, password_file, acl_file: the broker's, or with per_listener_settings
   true the listener's they follow (mosquitto's meaning). */
static int kw_allow_anonymous(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	bool b = false;
	if (get_bool(p, kw, argv[0], &b) < 0)
		return -1;
	p->sec_seen = true;
	if (p->c->per_listener_settings) {
		cur_listener(p, kw)->allow_anonymous = b;
		return 0;
	}
	p->c->allow_anonymous = b;
	p->c->allow_anonymous_set = true;
	return 0;
}

static int set_sec_file(mg_parse *p, const char *kw, const char *rest, char **global, size_t off)
{
	p->sec_seen = true;
	char **field = p->c->per_listener_settings ? (char **)((char *)cur_listener(p, kw) + off) : global;
	if (*field) /* mosquitto refuses a second one too */
		return mg_perr(p, "duplicate '%s' (the first names %s)", kw, *field);
	return set_str(p, field, rest);
}

static int kw_password_file(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	return set_sec_file(p, kw, rest, &p->c->password_file, offsetof(mg_listener_conf, password_file));
}

/* A security setting in mosquitto: per listener with per_listener_settings. */
static int kw_psk_file(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	return set_sec_file(p, kw, rest, &p->c->psk_file, offsetof(mg_listener_conf, psk_file));
}

static int kw_acl_file(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	return set_sec_file(p, kw, rest, &p->c->acl_file, offsetof(mg_listener_conf, acl_file));
}

static int kw_per_listener_settings(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	if (get_bool(p, kw, argv[0], &p->c->per_listener_settings) < 0)
		return -1;
	if (p->c->per_listener_settings && p->sec_seen) /* mosquitto's rule and words */
		return mg_perr(p, "per_listener_settings must be set before any other security settings");
	return 0;
}

static int kw_plugin(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	return not_yet(p, kw, "plugins are");
}

static int kw_clientid_prefixes(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	mg_pwarn(p, "'clientid_prefixes' is deprecated (as in mosquitto 2); it still applies");
	return set_str(p, &p->c->clientid_prefixes, rest);
}

/* ---- bool / number / string settings ---- */

#define BOOL_KW(name) \
	static int kw_##name(mg_parse *p, const char *kw, int argc, char **argv, const char *rest) \
	{ return get_bool(p, kw, argv[0], &p->c->name); }
BOOL_KW(allow_zero_length_clientid)
BOOL_KW(queue_qos0_messages)
BOOL_KW(retain_available)
BOOL_KW(outgoing_topic_aliases)
BOOL_KW(connection_messages)
BOOL_KW(log_timestamp)
BOOL_KW(set_tcp_nodelay)

static int kw_auto_id_prefix(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	/* mosquitto 2's limit, so a file means the same to both brokers. */
	if (strlen(rest) > 50)
		return mg_perr(p, "'auto_id_prefix' is longer than 50 bytes");
	return set_str(p, &p->c->auto_id_prefix, rest);
}

static int kw_max_keepalive(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, 65535, &v) < 0)
		return -1;
	p->c->max_keepalive = (uint16_t)v;
	return 0;
}

static int kw_max_packet_size(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, MG_MAX_PACKET, &v) < 0)
		return -1;
	if (v > 0 && v < 20) /* mosquitto's floor: a CONNACK alone can need more */
		return mg_perr(p, "value %s for 'max_packet_size' is too small (0 for no limit, or at least 20)", argv[0]);
	p->c->max_packet_size = (uint32_t)v;
	return 0;
}

static int kw_message_size_limit(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, MG_MAX_REMAINING, &v) < 0)
		return -1;
	p->c->message_size_limit = (uint32_t)v;
	return 0;
}

static int kw_max_inflight_messages(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, 65535, &v) < 0)
		return -1;
	/* 0 = no maximum; MQTT 5's Receive Maximum cannot exceed 65535 anyway. */
	p->c->max_inflight_messages = v == 0 ? 65535 : (uint16_t)v;
	return 0;
}

static int kw_max_queued_messages(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, INT_MAX, &v) < 0)
		return -1;
	p->c->max_queued_messages = (int)v;
	return 0;
}

static int kw_max_incoming_qos2(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, 65535, &v) < 0)
		return -1;
	p->c->max_incoming_qos2 = (uint32_t)v;
	return 0;
}

static int kw_listen_backlog(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, INT_MAX, &v) < 0)
		return -1;
	p->c->listen_backlog = (int)v;
	return 0;
}

static int kw_bytes(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, LLONG_MAX, &v) < 0)
		return -1;
	if (strcmp(kw, "max_inflight_bytes") == 0)
		p->c->max_inflight_bytes = (uint64_t)v;
	else
		p->c->max_queued_bytes = (uint64_t)v;
	return 0;
}

static int kw_sys_interval(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, 65535, &v) < 0)
		return -1;
	p->c->sys_interval = (int)v;
	return 0;
}

static int kw_threads(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (strcmp(argv[0], "auto") == 0) {
		p->c->threads = 0;
		return 0;
	}
	if (get_ll(p, kw, argv[0], 0, 1024, &v) < 0)
		return -1;
	p->c->threads = (int)v;
	return 0;
}

/* mosquitto's format: a positive whole number and one of h d w m y (30-day months,
   365-day years). */
static int kw_persistent_client_expiration(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	const char *s = argv[0];
	size_t n = strlen(s);
	int64_t unit = 0;
	switch (n ? s[n - 1] : 0) {
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	case 'w': unit = 7 * 86400; break;
	case 'm': unit = 30 * 86400; break;
	case 'y': unit = 365 * 86400; break;
	}
	bool digits = n >= 2;
	for (size_t i = 0; i + 1 < n; i++)
		if (s[i] < '0' || s[i] > '9')
			digits = false;
	long long v = digits ? strtoll(s, NULL, 10) : 0;
	if (!unit || !digits || v <= 0 || v > 1000000)
		return mg_perr(p, "invalid duration '%s' for 'persistent_client_expiration' (expected "
				"a number and a unit: h, d, w, m or y, e.g. 14d)", s);
	p->c->persistent_client_expiration = (int64_t)v * unit;
	return 0;
}

static int kw_string(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	mg_config *c = p->c;
	char **field = strcmp(kw, "pid_file") == 0 ? &c->pid_file
		: strcmp(kw, "user") == 0 ? &c->user
		: strcmp(kw, "persistence_location") == 0 ? &c->persistence_location
		: &c->persistence_file;
	return set_str(p, field, rest);
}

/* ---- cluster (docs/cluster.md) ---- */

static int kw_cluster(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	mg_config *c = p->c;
	static const struct { const char *kw; size_t off; } f[] = {
		{ "cluster_nats_url", offsetof(mg_config, cluster_nats_url) },
		{ "cluster_node_name", offsetof(mg_config, cluster_node_name) },
		{ "cluster_nats_user", offsetof(mg_config, cluster_nats_user) },
		{ "cluster_nats_password", offsetof(mg_config, cluster_nats_password) },
		{ "cluster_nats_token", offsetof(mg_config, cluster_nats_token) },
		{ "cluster_nats_creds", offsetof(mg_config, cluster_nats_creds) },
		{ "cluster_nats_cafile", offsetof(mg_config, cluster_nats_cafile) },
		{ "cluster_nats_certfile", offsetof(mg_config, cluster_nats_certfile) },
		{ "cluster_nats_keyfile", offsetof(mg_config, cluster_nats_keyfile) },
	};
	if (strcmp(kw, "cluster_js_replicas") == 0) {
		long long v;
		if (get_ll(p, kw, argv[0], 1, 5, &v) < 0)
			return -1;
		c->cluster_js_replicas = (int)v;
		return 0;
	}
	size_t i = 0;
	while (strcmp(f[i].kw, kw) != 0)
		i++;
	if (i == 0 && strncmp(rest, "nats://", 7) != 0 && strncmp(rest, "tls://", 6) != 0)
		return mg_perr(p, "invalid URL '%s' for 'cluster_nats_url' (expected "
				"nats://host:port or tls://host:port, several separated by commas)", rest);
	return set_str(p, (char **)((char *)c + f[i].off), rest);
}

/* ---- persistence ---- */

static int kw_persistence(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	bool b = false;
	if (get_bool(p, kw, argv[0], &b) < 0)
		return -1;
	if (kw[11] == '_')
		p->c->persistence_fsync = b;
	else
		p->c->persistence = b;
	return 0;
}

/* Persistence commits per loop turn, not on a timer: nothing to set. */
static int kw_autosave_interval(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, INT_MAX, &v) < 0)
		return -1;
	mg_pwarn(p, "'%s' has no effect in midge and is ignored", kw);
	return 0;
}

static int kw_noop_bool(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	bool b = false;
	if (get_bool(p, kw, argv[0], &b) < 0)
		return -1;
	mg_pwarn(p, "'%s' has no effect in midge and is ignored", kw);
	return 0;
}

static int kw_upgrade_outgoing_qos(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	bool b = false;
	if (get_bool(p, kw, argv[0], &b) < 0)
		return -1;
	return b ? not_yet(p, "upgrade_outgoing_qos true", "upgrading the QoS of delivered messages is") : 0;
}

static int kw_memory_limit(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, LLONG_MAX, &v) < 0)
		return -1;
	return v == 0 ? 0 : not_yet(p, kw, "a heap memory limit is");
}

/* ---- logging ---- */

static int kw_log_type(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	static const struct { const char *name; unsigned bits; } types[] = {
		{"error", MG_LOG_ERR}, {"warning", MG_LOG_WARNING}, {"notice", MG_LOG_NOTICE},
		{"information", MG_LOG_INFO}, {"debug", MG_LOG_DEBUG}, {"subscribe", MG_LOG_SUBSCRIBE},
		{"unsubscribe", MG_LOG_UNSUBSCRIBE}, {"websockets", MG_LOG_WEBSOCKETS},
		{"all", MG_LOG_ALL}, {"none", 0},
	};
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		if (strcmp(argv[0], types[i].name) != 0)
			continue;
		/* The first log_type replaces the default set; later ones add to it. */
		if (!p->log_type_seen || types[i].bits == 0)
			p->c->log_types = 0;
		p->log_type_seen = true;
		p->c->log_types |= types[i].bits;
		return 0;
	}
	return mg_perr(p, "invalid value '%s' for 'log_type' (expected error, warning, notice, "
			"information, debug, subscribe, unsubscribe, websockets, all or none)", argv[0]);
}

static int kw_log_dest(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	mg_config *c = p->c;
	const char *d = argv[0];
	unsigned bit = 0;
	if (strcmp(d, "file") == 0) {
		const char *path = rest + strlen(d);
		while (*path == ' ' || *path == '\t')
			path++;
		if (!*path)
			return mg_perr(p, "'log_dest file' needs a file name");
		if (c->log_file && (c->log_dests & MG_LOGD_FILE))
			return mg_perr(p, "only one 'log_dest file' may be given (the first names %s)", c->log_file);
		if (set_str(p, &c->log_file, path) < 0)
			return -1;
		bit = MG_LOGD_FILE;
	} else {
		if (argc > 1)
			return mg_perr(p, "too many values for 'log_dest': unexpected '%s'", argv[1]);
		if (strcmp(d, "stdout") == 0)
			bit = MG_LOGD_STDOUT;
		else if (strcmp(d, "stderr") == 0)
			bit = MG_LOGD_STDERR;
		else if (strcmp(d, "syslog") == 0)
			bit = MG_LOGD_SYSLOG;
		else if (strcmp(d, "topic") == 0)
			return not_yet(p, "log_dest topic", "publishing the log on $SYS/broker/log/# is");
		else if (strcmp(d, "dlt") == 0)
			return mg_perr(p, "'log_dest dlt' is not supported by midge");
		else if (strcmp(d, "none") != 0)
			return mg_perr(p, "invalid value '%s' for 'log_dest' (expected stdout, stderr, "
					"file PATH, syslog, topic or none)", d);
	}
	/* The first log_dest replaces the default (stderr); later ones add to it. */
	if (!p->log_dest_seen || bit == 0) {
		c->log_dests = 0;
		if (bit != MG_LOGD_FILE) {
			free(c->log_file);
			c->log_file = NULL;
		}
	}
	p->log_dest_seen = true;
	c->log_dests |= bit;
	return 0;
}

static int kw_log_timestamp_format(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	return set_str(p, &p->c->log_timestamp_format, rest);
}

static int kw_log_facility(mg_parse *p, const char *kw, int argc, char **argv, const char *rest)
{
	long long v;
	if (get_ll(p, kw, argv[0], 0, 7, &v) < 0)
		return -1;
	p->c->log_facility = (int)v;
	return 0;
}

/* ---- the table ---- */

#define ANY -1
static const mg_keyword keywords[] = {
	/* listeners */
	{"listener", kw_listener, 1, 2, false},
	{"port", kw_port, 1, 1, false},
	{"bind_address", kw_bind_address, 1, 1, false},
	{"bind_interface", kw_not_yet_listener, 1, 1, false},
	{"http_dir", kw_http_dir, 1, ANY, false},
	{"protocol", kw_protocol, 1, 1, false},
	{"mount_point", kw_mount_point, 1, 1, false},
	{"max_connections", kw_max_connections, 1, 1, false},
	{"listen_backlog", kw_listen_backlog, 1, 1, false},
	{"max_qos", kw_max_qos, 1, 1, false},
	{"max_topic_alias", kw_max_topic_alias, 1, 1, false},
	{"socket_domain", kw_socket_domain, 1, 1, false},
	{"use_username_as_clientid", kw_use_username_as_clientid, 1, 1, false},
	{"http_metrics", kw_http_metrics, 1, 1, false},
	{"websockets_log_level", kw_websockets_log_level, 1, 1, false},
	{"websockets_headers_size", kw_websockets_headers_size, 1, 1, false},
	/* TLS */
	{"cafile", kw_tls_path, 1, ANY, false},
	{"capath", kw_tls_path, 1, ANY, false},
	{"certfile", kw_tls_path, 1, ANY, false},
	{"keyfile", kw_tls_path, 1, ANY, false},
	{"crlfile", kw_tls_path, 1, ANY, false},
	{"dhparamfile", kw_tls_path, 1, ANY, false},
	{"ciphers", kw_tls_path, 1, ANY, false},
	{"ciphers_tls1.3", kw_tls_path, 1, ANY, false},
	{"tls_version", kw_tls_path, 1, ANY, false},
	{"tls_engine", kw_tls_path, 1, ANY, false},
	{"tls_engine_kpass_sha1", kw_tls_path, 1, ANY, false},
	{"tls_keyform", kw_tls_path, 1, ANY, false},
	{"psk_hint", kw_tls_path, 1, ANY, false},
	{"psk_file", kw_psk_file, 1, ANY, false},
	{"require_certificate", kw_tls_bool, 1, 1, false},
	{"use_identity_as_username", kw_tls_bool, 1, 1, false},
	{"use_subject_as_username", kw_tls_bool, 1, 1, false},
	/* security */
	{"allow_anonymous", kw_allow_anonymous, 1, 1, false},
	{"password_file", kw_password_file, 1, ANY, false},
	{"acl_file", kw_acl_file, 1, ANY, false},
	{"per_listener_settings", kw_per_listener_settings, 1, 1, false},
	{"auth_plugin", kw_plugin, 1, ANY, false},
	{"plugin", kw_plugin, 1, ANY, false},
	{"global_plugin", kw_plugin, 1, ANY, false},
	{"auth_opt_", kw_plugin, 0, ANY, true},
	{"plugin_opt_", kw_plugin, 0, ANY, true},
	{"global_plugin_opt_", kw_plugin, 0, ANY, true},
	{"auth_plugin_deny_special_chars", kw_noop_bool, 1, 1, false},
	{"check_retain_source", kw_noop_bool, 1, 1, false},
	{"clientid_prefixes", kw_clientid_prefixes, 1, ANY, false},
	/* clients and messages */
	{"allow_zero_length_clientid", kw_allow_zero_length_clientid, 1, 1, false},
	{"auto_id_prefix", kw_auto_id_prefix, 1, ANY, false},
	{"max_keepalive", kw_max_keepalive, 1, 1, false},
	{"max_packet_size", kw_max_packet_size, 1, 1, false},
	{"message_size_limit", kw_message_size_limit, 1, 1, false},
	{"max_inflight_messages", kw_max_inflight_messages, 1, 1, false},
	{"max_inflight_bytes", kw_bytes, 1, 1, false},
	{"max_queued_messages", kw_max_queued_messages, 1, 1, false},
	{"max_queued_bytes", kw_bytes, 1, 1, false},
	{"max_incoming_qos2_messages", kw_max_incoming_qos2, 1, 1, false},
	{"queue_qos0_messages", kw_queue_qos0_messages, 1, 1, false},
	{"retain_available", kw_retain_available, 1, 1, false},
	{"outgoing_topic_aliases", kw_outgoing_topic_aliases, 1, 1, false},
	{"persistent_client_expiration", kw_persistent_client_expiration, 1, 1, false},
	{"upgrade_outgoing_qos", kw_upgrade_outgoing_qos, 1, 1, false},
	{"allow_duplicate_messages", kw_noop_bool, 1, 1, false},
	{"memory_limit", kw_memory_limit, 1, 1, false},
	{"sys_interval", kw_sys_interval, 1, 1, false},
	{"set_tcp_nodelay", kw_set_tcp_nodelay, 1, 1, false},
	{"threads", kw_threads, 1, 1, false},
	/* process */
	{"include_dir", mg_kw_include_dir, 1, ANY, false},
	{"pid_file", kw_string, 1, ANY, false},
	{"user", kw_string, 1, ANY, false},
	/* cluster */
	{"cluster_nats_url", kw_cluster, 1, 1, false},
	{"cluster_node_name", kw_cluster, 1, 1, false},
	{"cluster_nats_user", kw_cluster, 1, 1, false},
	{"cluster_nats_password", kw_cluster, 1, ANY, false},
	{"cluster_nats_token", kw_cluster, 1, ANY, false},
	{"cluster_nats_creds", kw_cluster, 1, ANY, false},
	{"cluster_nats_cafile", kw_cluster, 1, ANY, false},
	{"cluster_nats_certfile", kw_cluster, 1, ANY, false},
	{"cluster_nats_keyfile", kw_cluster, 1, ANY, false},
	{"cluster_js_replicas", kw_cluster, 1, 1, false},
	/* persistence */
	{"persistence", kw_persistence, 1, 1, false},
	{"persistence_fsync", kw_persistence, 1, 1, false},
	{"persistence_location", kw_string, 1, ANY, false},
	{"persistence_file", kw_string, 1, ANY, false},
	{"autosave_interval", kw_autosave_interval, 1, 1, false},
	{"autosave_on_changes", kw_noop_bool, 1, 1, false},
	/* logging */
	{"log_type", kw_log_type, 1, 1, false},
	{"log_dest", kw_log_dest, 1, ANY, false},
	{"log_timestamp", kw_log_timestamp, 1, 1, false},
	{"log_timestamp_format", kw_log_timestamp_format, 1, ANY, false},
	{"log_facility", kw_log_facility, 1, 1, false},
	{"connection_messages", kw_connection_messages, 1, 1, false},
	/* bridges */
	{"connection", mg_kw_connection, 1, 1, false},
	{"address", mg_kw_bridge, 0, ANY, false},
	{"addresses", mg_kw_bridge, 0, ANY, false},
	{"bridge_", mg_kw_bridge, 0, ANY, true},
	{"cleansession", mg_kw_bridge, 0, ANY, false},
	{"clientid", mg_kw_bridge, 0, ANY, false},
	{"idle_timeout", mg_kw_bridge, 0, ANY, false},
	{"keepalive_interval", mg_kw_bridge, 0, ANY, false},
	{"local_cleansession", mg_kw_bridge, 0, ANY, false},
	{"local_clientid", mg_kw_bridge, 0, ANY, false},
	{"local_password", mg_kw_bridge, 0, ANY, false},
	{"local_username", mg_kw_bridge, 0, ANY, false},
	{"notifications", mg_kw_bridge, 0, ANY, false},
	{"notifications_local_only", mg_kw_bridge, 0, ANY, false},
	{"notification_topic", mg_kw_bridge, 0, ANY, false},
	{"password", mg_kw_bridge, 0, ANY, false},
	{"remote_clientid", mg_kw_bridge, 0, ANY, false},
	{"remote_password", mg_kw_bridge, 0, ANY, false},
	{"remote_username", mg_kw_bridge, 0, ANY, false},
	{"restart_timeout", mg_kw_bridge, 0, ANY, false},
	{"round_robin", mg_kw_bridge, 0, ANY, false},
	{"start_type", mg_kw_bridge, 0, ANY, false},
	{"threshold", mg_kw_bridge, 0, ANY, false},
	{"topic", mg_kw_bridge, 0, ANY, false},
	{"try_private", mg_kw_bridge, 0, ANY, false},
	{"username", mg_kw_bridge, 0, ANY, false},
};
#define N_KEYWORDS (sizeof keywords / sizeof keywords[0])

const mg_keyword *mg_kw_find(const char *name)
{
	for (size_t i = 0; i < N_KEYWORDS; i++) {
		const mg_keyword *k = &keywords[i];
		if (k->prefix ? strncmp(name, k->name, strlen(k->name)) == 0 && name[strlen(k->name)]
				: strcmp(name, k->name) == 0)
			return k;
	}
	return NULL;
}

/* Levenshtein distance, bounded: keywords are short, so an O(n*m) table on the stack. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 40 || lb > 40)
		return 99;
	size_t d[41][41];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
			d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
	}
	return d[la][lb];
}

const char *mg_kw_suggest(const char *name)
{
	const char *best = NULL;
	size_t best_d = 3; /* two edits at most, or the hint is noise */
	for (size_t i = 0; i < N_KEYWORDS; i++) {
		if (keywords[i].prefix)
			continue;
		size_t d = distance(name, keywords[i].name);
		if (d < best_d) {
			best_d = d;
			best = keywords[i].name;
		}
	}
	return best;
}
