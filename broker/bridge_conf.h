/*
 * broker/bridge_conf.h - a bridge as mosquitto.conf describes it (a `connection NAME` block,
 * config_bridge.c reads it) and its topic mapping (bridge_topic.c, pure: no I/O, no malloc
 * on the message path), with mosquitto 2.0's meaning for every keyword.
 *
 * `topic PATTERN [in|out|both] [QOS] [LOCAL_PREFIX REMOTE_PREFIX]` makes one mg_bridge_topic:
 *     local_topic  = LOCAL_PREFIX + PATTERN   the filter subscribed locally (out, both)
 *     remote_topic = REMOTE_PREFIX + PATTERN  the filter subscribed remotely (in, both)
 * A PATTERN of "" (written as two double quotes) needs both prefixes and then stands for the
 * prefix alone: `topic "" out 0 jpeg house1/jpeg` sends local `jpeg` as remote `house1/jpeg`.
 *
 * Mapping a message's topic (mg_bridge_map), as mosquitto's send__publish (out) and
 * bridge__remap_topic_in (in) do: the FIRST entry of the right direction that has a prefix
 * and whose filter on the message's side matches the topic decides; its prefix on that
 * side is cut when the topic starts with it, and its prefix on the other side is put in
 * front. No such entry: the topic crosses unchanged.
 */
#ifndef MG_BROKER_BRIDGE_CONF_H
#define MG_BROKER_BRIDGE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { MG_BRIDGE_OUT = 1, MG_BRIDGE_IN = 2, MG_BRIDGE_BOTH = 3 };
enum { MG_BRIDGE_START_AUTOMATIC = 0, MG_BRIDGE_START_LAZY, MG_BRIDGE_START_ONCE };

typedef struct mg_bridge_topic {
	char *pattern;       /* as written; NULL for "" */
	char *local_prefix;  /* NULL: none */
	char *remote_prefix;
	char *local_topic;   /* local_prefix + pattern */
	char *remote_topic;  /* remote_prefix + pattern */
	uint8_t dir;         /* MG_BRIDGE_OUT / _IN / _BOTH */
	uint8_t qos;
} mg_bridge_topic;

typedef struct mg_bridge_addr {
	char *host;
	uint16_t port;       /* 1883 unless host:port said otherwise */
} mg_bridge_addr;

typedef struct mg_bridge_conf {
	char *name;
	const char *file;    /* the `connection` line, for messages (owned by the config) */
	int line;
	mg_bridge_addr *addrs;
	int n_addrs;
	mg_bridge_topic *topics;
	int n_topics;
	uint8_t protocol;    /* 3 (mqttv31), 4 (mqttv311, the default), 5 (mqttv50) */
	bool clean;          /* cleansession: false */
	int8_t local_clean;  /* local_cleansession: -1 = as cleansession */
	bool try_private;    /* true */
	bool round_robin;    /* false */
	bool notifications;  /* true */
	bool notifications_local_only; /* false */
	bool attempt_unsubscribe;      /* true */
	bool outgoing_retain;          /* true */
	bool tls_insecure;
	uint8_t start_type;  /* MG_BRIDGE_START_* */
	uint16_t keepalive;  /* keepalive_interval: 60 (5 at least) */
	int restart_timeout; /* seconds, constant; with backoff_cap: the base */
	int backoff_base, backoff_cap; /* restart_timeout's default: 5 and 30 ("decorrelated jitter") */
	int threshold;       /* lazy: start when this many messages wait (10) */
	int idle_timeout;    /* lazy: stop after this many idle seconds (60) */
	uint32_t max_packet_size; /* bridge_max_packet_size: 0 = none */
	char *remote_clientid, *local_clientid; /* filled by the check: hostname.NAME, local.<remote> */
	char *remote_username, *remote_password, *local_username, *local_password;
	char *notification_topic; /* NULL: $SYS/broker/connection/<remote_clientid>/state */
	char *cafile, *capath, *certfile, *keyfile, *tls_version, *identity, *psk;
	char *bind_address;  /* bridge_bind_address: the local address the socket binds to */
	char *alpn;          /* bridge_alpn: the TLS ALPN protocol offered */
	bool require_ocsp;   /* bridge_require_ocsp: the remote must staple a good OCSP response */
} mg_bridge_conf;

/* Add a `topic` entry to b with mosquitto's checks. pattern NULL (or "\"\"") for "";
 * local_prefix / remote_prefix NULL for none. Returns 0, or -1 with a message in err
 * (without "Error:", without the file and line). */
int mg_bridge_topic_add(mg_bridge_conf *b, const char *pattern, int dir, int qos,
                        const char *local_prefix, const char *remote_prefix,
                        char *err, size_t errlen);

/* How to map one topic: the result is add[0..add_len) followed by topic[strip..]. */
typedef struct mg_bridge_map {
	const char *add;
	size_t add_len;
	size_t strip;
} mg_bridge_map;

/* Map topic t (out: a local topic going to the remote; in: a remote topic coming in). Returns
 * the index of the entry that decided, or -1 when the topic crosses unchanged (m is then
 * {NULL, 0, 0}). Costs a topic match per prefixed entry before the one that decides. */
int mg_bridge_map_topic(const mg_bridge_conf *b, bool out, const uint8_t *t, size_t len,
                        mg_bridge_map *m);

/* The mapped topic into buf (cap bytes); returns its length, or 0 when it does not fit. */
size_t mg_bridge_map_apply(const mg_bridge_map *m, const uint8_t *t, size_t len, uint8_t *buf,
                           size_t cap);

void mg_bridge_conf_init(mg_bridge_conf *b);
void mg_bridge_conf_free(mg_bridge_conf *b);

#endif
