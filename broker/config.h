/*
 * broker/config.h - the broker's configuration: mosquitto.conf's language, the command
 * line, and SIGHUP reload.
 *
 * Typical use (broker/main.c):
 *     mg_config c; mg_cli cli; char err[512];
 *     mg_config_init(&c);
 *     switch (mg_cli_parse(argc, argv, &cli, err, sizeof err)) { 1: usage, -1: err, exit 3 }
 *     if (cli.config_file && mg_config_load(&c, cli.config_file, err, sizeof err) < 0)
 *         { fprintf(stderr, "%s\n", err); exit 3; }
 *     mg_config_apply_cli(&c, &cli);  // also calls mg_config_finish (local only mode)
 *     mg_log_open(&c);
 *     if (mg_config_local_only(&c)) mg_config_log_local_only(&c);
 *     for each c.listeners[i]: listen on bind_address (NULL = all; "localhost" in local
 *         only mode: resolve it, both 127.0.0.1 and ::1) and port.
 *
 * Exit status for a bad config or command line is 3 (mosquitto's).
 *
 * Every string in mg_config is owned by it (malloc'd) and freed by mg_config_free.
 * Keywords for features this version does not have yet are recognised and refused with a
 * message naming the file and line ("... is not yet implemented in this version"), never
 * silently ignored. See docs/man/midge.conf.5 for every keyword.
 */
#ifndef MG_BROKER_CONFIG_H
#define MG_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { MG_PROTO_MQTT = 0, MG_PROTO_WEBSOCKETS = 1 };

typedef struct mg_listener_conf {
	uint16_t port;          /* 0 = ephemeral (tests) */
	char *bind_address;     /* NULL = all addresses (IPv4 and IPv6) */
	int protocol;           /* MG_PROTO_MQTT or MG_PROTO_WEBSOCKETS */
	int max_connections;    /* -1 = unlimited */
	char *mount_point;
	char *http_dir;         /* websockets: static files served on the same port, or NULL */
	/* TLS (broker/tls.c), mosquitto's meaning: the listener runs TLS when it has certfile
	 * and keyfile, or psk_hint (TLS-PSK, keys from psk_file); the other options need one of
	 * the two (checked when the file is read). Files are re-read on SIGHUP. */
	char *cafile, *capath, *certfile, *keyfile, *crlfile, *dhparamfile;
	char *ciphers, *ciphers_tls13, *tls_version, *psk_hint;
	char *psk_file;         /* per_listener_settings true: this listener's psk_file */
	bool require_certificate, use_identity_as_username, use_subject_as_username;
	/* per_listener_settings true: this listener's own security settings (else unused) */
	int8_t allow_anonymous;     /* -1 = not said (mg_config_finish decides) */
	char *password_file, *acl_file;
	bool use_username_as_clientid; /* the CONNECT's user name becomes the client id */
	bool http_metrics;      /* websockets: /metrics and /healthz answered here (metrics.c) */
	const char *file;       /* where it was declared, for messages; "-p" for the command line */
	int line;
} mg_listener_conf;

typedef struct mg_config {
	mg_listener_conf *listeners;
	int n_listeners;
	bool allow_anonymous;            /* see mg_config_finish */
	bool allow_anonymous_set;        /* the file said allow_anonymous explicitly */
	int max_connections;             /* -1 */
	uint16_t max_keepalive;          /* 65535 */
	uint32_t max_packet_size;        /* 0 = protocol maximum */
	uint32_t message_size_limit;     /* 0 = none */
	uint16_t max_inflight_messages;  /* 20 (0 in the file = unlimited -> stored as 65535) */
	uint64_t max_inflight_bytes;     /* 0 = no limit */
	int max_queued_messages;         /* 1000 (0 = unlimited) */
	uint64_t max_queued_bytes;       /* 0 = no limit */
	uint32_t max_incoming_qos2;      /* 3.x QoS 2 awaiting PUBREL per session: 1000 (0 = no limit) */
	int listen_backlog;              /* 0 = the system's maximum (net.core.somaxconn) */
	bool queue_qos0_messages;        /* false */
	bool retain_available;           /* true */
	bool outgoing_topic_aliases;     /* false: see midge.conf(5) for why it is opt-in */
	bool allow_zero_length_clientid; /* true */
	char *auto_id_prefix;            /* "auto-" */
	int64_t persistent_client_expiration; /* seconds, -1 = never */
	int sys_interval;                /* 10 (0 = no $SYS updates) */
	unsigned log_types;              /* MG_LOG_* mask */
	unsigned log_dests;              /* MG_LOGD_* mask */
	char *log_file;                  /* with MG_LOGD_FILE */
	bool log_timestamp;              /* true */
	char *log_timestamp_format;      /* NULL = unix seconds like mosquitto */
	bool connection_messages;        /* true */
	char *pid_file;
	char *user;                      /* drop privileges to this user when started as root */
	bool set_tcp_nodelay;            /* false */
	int threads;                     /* 0 = online CPUs */
	bool persistence;                /* false */
	bool persistence_fsync;          /* false: synchronous=NORMAL; true: FULL (store.h) */
	char *persistence_location, *persistence_file;
	char *password_file;             /* without per_listener_settings */
	char *acl_file;                  /* compiled by the broker (acl.h); reloaded on SIGHUP */
	char *psk_file;                  /* TLS-PSK "identity:hexkey" lines, for psk_hint listeners
	                                  * (per_listener_settings: the listener's) */
	bool per_listener_settings;      /* allow_anonymous, password_file, acl_file per listener */
	char *clientid_prefixes;         /* a client id must start with it (mosquitto: deprecated) */
	char *config_path;               /* the file loaded, for "Config loaded from F." */
	int log_facility;                /* syslog: -1 = LOG_DAEMON, 0..7 = LOG_LOCAL0..7 */
	bool verbose;                    /* -v was given: reload keeps log_types at all */
	bool local_only;                 /* set by mg_config_finish: no listener was configured */
	uint16_t local_port;             /* port of the local only listener: 1883, or -p */
	/* private: file names that listeners[].file points into; reload's absolute path */
	char **files_;
	int n_files_;
	char *config_abspath_;
	int websockets_headers_size;     /* largest HTTP request head; 0 = 4096 */
	int cli_port_;                   /* -p, or -1: reload compares listeners as started */
	struct mg_bridge_conf *bridges;  /* `connection` blocks (bridge_conf.h); not reloaded */
	int n_bridges;
	/* several nodes as one broker over NATS (docs/cluster.md); NULL = not set. Not reloaded. */
	char *cluster_nats_url;          /* "nats://h:p[,nats://...]": clustering on */
	char *cluster_node_name;         /* NULL: host name and pid */
	char *cluster_nats_user, *cluster_nats_password, *cluster_nats_token, *cluster_nats_creds;
	char *cluster_nats_cafile, *cluster_nats_certfile, *cluster_nats_keyfile;
	int cluster_js_replicas; /* MQTT_MSGS's replicas when a node creates it; 0: 3 or 1 */
} mg_config;

void mg_config_init(mg_config *c);                 /* defaults */

/* Load a file into c (on top of what is there). Returns 0, or -1 with a message in err like
   "Error: mos.conf:3: unknown keyword 'listner'." Follows include_dir (files ending .conf,
   sorted). Warnings ("Warning: FILE:LINE: ...") go to mg_log(MG_LOG_WARNING). On error c
   may be half-filled: mg_config_free it. Sets c->config_path. */
int mg_config_load(mg_config *c, const char *path, char *err, size_t errlen);

/* The same on a buffer already in memory (the fuzzer, tests); name is used in messages.
   include_dir is followed relative to the real file system. */
int mg_config_parse_buffer(mg_config *c, const char *name, const char *buf, size_t len,
		char *err, size_t errlen);

void mg_config_free(mg_config *c);

typedef struct mg_cli {
	const char *config_file;
	int port;                        /* -1 = not given */
	bool verbose;
	bool daemon;
	bool help;
	bool test_config;
} mg_cli;

/* midge [-c FILE] [-p PORT] [-v] [-d] [-h] (also --help, --test-config, --verbose,
   --daemon, --config-file, --port); returns 0, 1 for help asked, -1 on a bad argument
   (message in err). */
int mg_cli_parse(int argc, char **argv, mg_cli *cli, char *err, size_t errlen);

/* Apply the command line on top of the loaded file, then mg_config_finish(c):
   -p sets the port of the default listener (listeners[0]: `port`'s listener, or the first
   `listener`); if the file has no listener, -p sets the port of the local only listener
   (mosquitto 2 does the same: -p alone does not open the broker to the network).
   -v sets log_types to all; log_dests stay as configured (default stderr), as mosquitto's
   -v does. */
void mg_config_apply_cli(mg_config *c, const mg_cli *cli);

/* Derive what depends on everything else (idempotent; apply_cli calls it). With no listener
   at all (mosquitto 2's "local only mode"): adds ONE listener on local_port with
   bind_address "localhost" (the core resolves it: 127.0.0.1 and ::1), sets local_only, and
   allow_anonymous true unless the file set it. Otherwise allow_anonymous is false unless
   the file said true. */
void mg_config_finish(mg_config *c);

/* No listener was configured (mosquitto 2's "local only mode"); true after finish added
   the loopback listener too. */
bool mg_config_local_only(const mg_config *c);

/* Lines to log (MG_LOG_NOTICE) at startup in local only mode, in this order. */
#define MG_MSG_LOCAL_ONLY "Starting in local only mode. Connections will only be possible from clients running on this machine."
#define MG_MSG_LOCAL_ONLY_HINT "Create a configuration file which defines a listener, e.g. `listener 1883` and `allow_anonymous true`, to allow remote access."
/* Logs both lines above at MG_LOG_NOTICE when c is in local only mode; else nothing. */
void mg_config_log_local_only(const mg_config *c);

/* SIGHUP: re-read live->config_path and update only the reloadable fields (allow_anonymous,
   limits, log settings, ...), leaving listeners, threads, user, pid_file alone. On error
   returns -1 with a message in err and leaves live unchanged. Not thread-safe: call it
   where no other thread reads live, then mg_log_open(live) to apply the log settings. */
int mg_config_reload(mg_config *live, char *err, size_t errlen);

const char *mg_usage(void);   /* the -h text, in mosquitto's shape */

/* The security settings a client of listener lidx is under: its listener's with
 * per_listener_settings, else the broker's. */
static inline bool mg_config_anonymous_ok(const mg_config *cfg, int lidx)
{
	if (cfg->per_listener_settings && lidx >= 0 && lidx < cfg->n_listeners)
		return cfg->listeners[lidx].allow_anonymous > 0;
	return cfg->allow_anonymous;
}

static inline const char *mg_config_psk_file(const mg_config *cfg, int lidx)
{
	if (cfg->per_listener_settings)
		return lidx >= 0 && lidx < cfg->n_listeners ? cfg->listeners[lidx].psk_file : NULL;
	return cfg->psk_file;
}

static inline const char *mg_config_password_file(const mg_config *cfg, int lidx)
{
	if (cfg->per_listener_settings)
		return lidx >= 0 && lidx < cfg->n_listeners ? cfg->listeners[lidx].password_file : NULL;
	return cfg->password_file;
}

#endif
