/*
 * broker/store_schema.h - the tables of midge's persistence file (SQLite, WAL mode), one source
 * of truth for the broker (broker/store.c) and midge_db. docs/persistence.md "Schema" explains
 * every column; change both together, and bump MG_STORE_SCHEMA_VERSION (PRAGMA user_version)
 * whenever a change would confuse an older reader.
 *
 * Conventions of the file:
 *   - times are Unix milliseconds (wall clock), so an expiry passing while the broker is down
 *     is seen at the next start; NULL means "none".
 *   - topics, filters and client ids are BLOBs: MQTT strings are UTF-8 but may hold U+0000, and
 *     the broker compares them as bytes.
 *   - a message body (msgs) is written once however many sessions queue it; queue, inq2 and
 *     sessions.will_msg refer to it by id. msgs.id grows in the order messages were accepted,
 *     so ORDER BY msg is the delivery order of one session's queue.
 *   - retained messages keep their own body (retained is a map topic -> message that outlives
 *     every queue), so replacing one never has to ask who else holds its body.
 * The statements are idempotent (IF NOT EXISTS): running them on an existing file of the same
 * version changes nothing.
 */
#ifndef MG_BROKER_STORE_SCHEMA_H
#define MG_BROKER_STORE_SCHEMA_H

/* 1: first version. 2: sessions.username (a version-1 file is migrated in place at open). */
#define MG_STORE_SCHEMA_VERSION 2
/* Written to application_id: `file` and midge_db recognise the file as midge's. 'MIDG' */
#define MG_STORE_APPLICATION_ID 0x4d494447

#define MG_STORE_SCHEMA_SQL \
	"CREATE TABLE IF NOT EXISTS msgs (\n" \
	"  id INTEGER PRIMARY KEY,      -- store id, increasing in the order messages were accepted\n" \
	"  topic BLOB NOT NULL,         -- topic name as routed (mount point included)\n" \
	"  payload BLOB NOT NULL,\n" \
	"  props BLOB,                  -- MQTT 5 properties forwarded to subscribers, wire format; NULL none\n" \
	"  qos INTEGER NOT NULL,        -- QoS as published\n" \
	"  retain INTEGER NOT NULL,     -- retain flag as published\n" \
	"  expire_at INTEGER            -- message expiry, Unix ms; NULL never\n" \
	");\n" \
	"CREATE TABLE IF NOT EXISTS retained (\n" \
	"  topic BLOB PRIMARY KEY,\n" \
	"  payload BLOB NOT NULL,       -- never empty: an empty retained message deletes the row\n" \
	"  props BLOB,\n" \
	"  qos INTEGER NOT NULL,\n" \
	"  expire_at INTEGER\n" \
	");\n" \
	"CREATE TABLE IF NOT EXISTS sessions (\n" \
	"  sid INTEGER PRIMARY KEY,     -- store id of the session\n" \
	"  client_id BLOB NOT NULL UNIQUE,\n" \
	"  level INTEGER NOT NULL,      -- protocol level: 3 (3.1), 4 (3.1.1), 5 (5.0)\n" \
	"  expiry INTEGER NOT NULL,     -- session expiry interval, s; 4294967295 never (3.x clean session 0)\n" \
	"  expire_at INTEGER,           -- offline: Unix ms it expires; NULL: online when last written, or never\n" \
	"  will_msg INTEGER,            -- msgs.id of a delayed will waiting to be published; NULL none\n" \
	"  will_at INTEGER,             -- Unix ms the delayed will is due\n" \
	"  will_expiry INTEGER,         -- message expiry of the will once published, s; NULL none\n" \
	"  username BLOB                -- user name it last connected with (what acl_file sees); NULL none\n" \
	");\n" \
	"CREATE TABLE IF NOT EXISTS subs (\n" \
	"  sid INTEGER NOT NULL,\n" \
	"  filter BLOB NOT NULL,        -- as subscribed: $share/group/ prefix and mount point included\n" \
	"  opts INTEGER NOT NULL,       -- MQTT 5 options byte: QoS | no local<<2 | retain as published<<3 | retain handling<<4\n" \
	"  sub_id INTEGER NOT NULL,     -- subscription identifier, 0 none\n" \
	"  PRIMARY KEY (sid, filter)\n" \
	") WITHOUT ROWID;\n" \
	"CREATE TABLE IF NOT EXISTS queue (\n" \
	"  sid INTEGER NOT NULL,\n" \
	"  msg INTEGER NOT NULL,        -- msgs.id; a session's queue in ORDER BY msg\n" \
	"  qos INTEGER NOT NULL,        -- QoS delivered: min(published, granted), 1 or 2\n" \
	"  retain INTEGER NOT NULL,     -- retain flag to send\n" \
	"  sub_ids BLOB,                -- subscription identifiers, 4 bytes each, big endian; NULL none\n" \
	"  mid INTEGER NOT NULL,        -- packet id once sent, 0 while queued\n" \
	"  state INTEGER NOT NULL,      -- 0 queued, 1 PUBLISH sent (waits for PUBACK/PUBREC), 2 PUBREC received (PUBREL sent, waits for PUBCOMP)\n" \
	"  PRIMARY KEY (sid, msg)\n" \
	") WITHOUT ROWID;\n" \
	"CREATE TABLE IF NOT EXISTS inq2 (\n" \
	"  sid INTEGER NOT NULL,        -- the publisher's session\n" \
	"  mid INTEGER NOT NULL,        -- its packet id: PUBREC sent, PUBREL not yet received\n" \
	"  msg INTEGER NOT NULL,        -- msgs.id, routed when the PUBREL comes\n" \
	"  PRIMARY KEY (sid, mid)\n" \
	") WITHOUT ROWID;\n"

/* Run after MG_STORE_SCHEMA_SQL on a version-1 file, inside the transaction that sets
 * user_version to 2. */
#define MG_STORE_MIGRATE_1_2_SQL "ALTER TABLE sessions ADD COLUMN username BLOB;\n"

#endif
