/*
 * tools/midge_db/mosqdb.h - a strict reader of mosquitto's persistence file (mosquitto.db).
 *
 * The format (mosquitto 1.6 and 2.0 write version 5 and 6 of it) is a 15-byte magic, a
 * 4-byte CRC that nothing checks, a 4-byte big-endian version, then chunks: a big-endian
 * (type, length) header and a body. A body is a fixed part, mosquitto's C struct written
 * as it lies in memory, then strings and, for messages, MQTT 5 properties. Most fixed fields
 * are big endian; the 64-bit ones (store ids, expiry times) are in the writing machine's
 * order, taken here as little endian (x86, ARM), and the structs' padding is skipped.
 *
 *   1 config      last store id (u64), shutdown (u8), size of a store id (u8, must be 8)
 *   2 message     store id, expiry time (s, 0 none), payload length, source mid, lengths of
 *                 source client id, source username and topic, source port, QoS, retain;
 *                 then those strings, the topic, the payload and the properties
 *   3 client msg  store id, packet id, client id length, QoS, state, retain<<4|dup,
 *                 direction (0 in, 1 out); the client id; properties (subscription ids)
 *   4 retain      store id
 *   5 sub         identifier, client id length, filter length, QoS, options; the strings
 *   6 client      session expiry time (s, 0 none), expiry interval, last mid, id length,
 *                 (version 6:) listener port, username length; the id, the username
 *
 * mosquitto before 2.0.16 reused one client chunk for all clients and wrote it byte-swapped in
 * place (fixed upstream in b1c29e88, "Fix potential file persistence crash"): a client with no
 * user name that follows one with a name gets the name's length, byte-swapped every other
 * chunk (3, 0x0300, 3, ...), and that many bytes read from the previous name onwards (the
 * name again, or the name and whatever lay after it in mosquitto's memory). mqdb_parse knows
 * that signature (see read_client) and gives such a client no user name (username_stale)
 * rather than refusing the file or handing out someone else's name.
 *
 * mqdb_parse is a pure function of the bytes: no I/O, every length checked against the chunk
 * and the chunk against the file, every property block decoded in full. A file it accepts
 * holds nothing it did not look at. The records hand out views into the caller's buffer,
 * which must outlive the mqdb.
 */
#ifndef MIDGE_DB_MOSQDB_H
#define MIDGE_DB_MOSQDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

#define MQDB_CHUNK_CFG 1
#define MQDB_CHUNK_MSG 2
#define MQDB_CHUNK_CLIENT_MSG 3
#define MQDB_CHUNK_RETAIN 4
#define MQDB_CHUNK_SUB 5
#define MQDB_CHUNK_CLIENT 6

/* mosquitto's message states (lib/mosquitto_internal.h, enum mosquitto_msg_state) */
enum mqdb_state {
	MQDB_MS_PUBLISH_QOS0 = 1,
	MQDB_MS_PUBLISH_QOS1 = 2,
	MQDB_MS_WAIT_FOR_PUBACK = 3,
	MQDB_MS_PUBLISH_QOS2 = 4,
	MQDB_MS_WAIT_FOR_PUBREC = 5,
	MQDB_MS_RESEND_PUBREL = 6,
	MQDB_MS_WAIT_FOR_PUBREL = 7,
	MQDB_MS_RESEND_PUBCOMP = 8,
	MQDB_MS_WAIT_FOR_PUBCOMP = 9,
	MQDB_MS_SEND_PUBREC = 10,
	MQDB_MS_QUEUED = 11,
};

typedef struct mqdb_msg {
	uint64_t store_id;
	int64_t expiry_time;      /* Unix s, 0 never */
	uint16_t source_mid, source_port;
	uint8_t qos, retain;
	mg_bytes source_id, source_username, topic, payload;
	mg_bytes props;           /* property block without its length, validated */
	uint32_t offset;          /* of the chunk in the file, for messages */
} mqdb_msg;

typedef struct mqdb_client {
	int64_t session_expiry_time; /* Unix s it expires (offline sessions), 0 none */
	uint32_t session_expiry_interval; /* s; 0xFFFFFFFF never */
	uint16_t last_mid, listener_port;
	mg_bytes id, username;       /* username empty: none (or stale) */
	bool username_stale;         /* the writer's leftover from the client before: none */
} mqdb_client;

typedef struct mqdb_cmsg {
	uint64_t store_id;
	uint16_t mid;
	uint8_t qos, state, retain, dup, direction; /* direction 0 in, 1 out */
	mg_bytes client_id;
	mg_bytes props;           /* validated; subscription identifiers */
} mqdb_cmsg;

typedef struct mqdb_sub {
	uint32_t identifier;
	uint8_t qos, options;     /* options: no local << 2 | retain as published << 3 */
	mg_bytes client_id, filter;
} mqdb_sub;

typedef struct mqdb {
	uint32_t version;         /* 5 or 6 */
	bool have_cfg, shutdown;
	uint64_t last_db_id;
	mqdb_msg *msgs;           /* sorted by store_id after mqdb_parse */
	mqdb_client *clients;
	mqdb_cmsg *cmsgs;
	mqdb_sub *subs;
	uint64_t *retains;        /* store ids */
	size_t n_msgs, n_clients, n_cmsgs, n_subs, n_retains;
	size_t n_unknown;         /* chunks of a type this reader does not know, skipped */
	size_t n_stale_usernames; /* clients whose username field was mosquitto's leftover */
} mqdb;

/* Parse a whole file. Returns 0, or -1 with a message naming the offset and what is wrong
 * in err (the mqdb is then empty). Free with mqdb_free either way. */
int mqdb_parse(const uint8_t *buf, size_t len, mqdb *db, char *err, size_t errlen);
void mqdb_free(mqdb *db);
/* The message with that store id, NULL if none (mosquitto drops expired ones). */
const mqdb_msg *mqdb_find_msg(const mqdb *db, uint64_t store_id);
/* "queued", "wait_for_puback", ... for dump; "?" for others. */
const char *mqdb_state_name(uint8_t state);

#endif
