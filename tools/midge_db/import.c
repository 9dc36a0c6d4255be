/*
 * tools/midge_db/import.c - `midge_db import mosquitto.db midge.db`: mosquitto's retained
 * messages, persistent sessions, subscriptions, queued and in-flight messages become rows of
 * midge's store (broker/store_schema.h), in one transaction: either all of it lands or the
 * target is left as it was.
 *
 * How mosquitto's records map (docs/persistence.md "Coming from mosquitto: midge_db"):
 *   client           -> sessions (expiry interval 0: it ended with its connection, left out;
 *                       protocol level: not in the file; 5 if anything 5.0-only is seen)
 *   sub              -> subs (options byte: QoS | no local << 2 | retain as published << 3)
 *   client msg, out  -> queue: queued / publish_qos1|2 -> 0 (mid 0); wait_for_puback|pubrec
 *                       -> 1; resend_pubrel / wait_for_pubcomp -> 2; QoS 0 is left out
 *   client msg, in   -> inq2 when wait_for_pubrel (PUBREC sent, PUBREL awaited)
 *   message          -> msgs, once, in store id order so ORDER BY msg keeps mosquitto's order
 *   retain           -> retained ($SYS topics left out, as mosquitto does)
 * Expired messages and sessions are left out: midge would drop them at start anyway.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/store_schema.h"
#include "tools/midge_db/midge_db.h"
#include "tools/midge_db/store_file.h"

/* Properties a stored message never forwards as they are (midge's msg.c keeps the rest). */
#define PER_RECIPIENT                                                                          \
	(MG_PROP_BIT(MG_PROP_TOPIC_ALIAS) | MG_PROP_BIT(MG_PROP_SUBSCRIPTION_ID) |                  \
	 MG_PROP_BIT(MG_PROP_MESSAGE_EXPIRY) | MG_PROP_BIT(MG_PROP_WILL_DELAY))

typedef struct counts {
	size_t retained, sessions, subs, queued, inflight, inq2, msgs;
	size_t ended, expired_sess, expired_msgs, qos0, orphans, bad_topics, other_states, dups;
} counts;

typedef struct imp {
	const mqdb *db;
	sqlite3 *sq;
	int64_t now_s;
	int64_t *sid;        /* per client (db->clients order): session id, 0 left out */
	size_t *by_id;       /* client indices sorted by client id */
	int64_t *msg_id;     /* per message (db->msgs order): msgs.id, 0 not needed */
	bool counting;       /* cmsg_msg counts what it leaves out */
	counts n;
} imp;

static int cmp_bytes(mg_bytes a, mg_bytes b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = n ? memcmp(a.p, b.p, n) : 0;
	return c ? c : (a.len > b.len) - (a.len < b.len);
}

static const mqdb *sort_db;
static int cmp_client(const void *a, const void *b)
{
	return cmp_bytes(sort_db->clients[*(const size_t *)a].id, sort_db->clients[*(const size_t *)b].id);
}

/* Session id of client `id`, 0 if it has no client chunk or was left out. */
static int64_t sid_of(const imp *im, mg_bytes id)
{
	size_t lo = 0, hi = im->db->n_clients;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_bytes(im->db->clients[im->by_id[mid]].id, id);
		if (c == 0)
			return im->sid[im->by_id[mid]];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static bool msg_expired(const imp *im, const mqdb_msg *m)
{
	return m->expiry_time && m->expiry_time <= im->now_s;
}

static void bind_blob(sqlite3_stmt *s, int i, mg_bytes b)
{
	sqlite3_bind_blob(s, i, b.p ? (const void *)b.p : "", (int)b.len, SQLITE_STATIC);
}

static void bind_expiry(sqlite3_stmt *s, int i, int64_t t)
{
	if (t)
		sqlite3_bind_int64(s, i, t * 1000);
	else
		sqlite3_bind_null(s, i);
}

/* Binds the forwardable properties of m (malloc'd into *tmp, which the caller frees). */
static int bind_props(sqlite3_stmt *s, int i, const mqdb_msg *m, uint8_t **tmp)
{
	*tmp = NULL;
	size_t n = m->props.len ? mg_props_strip(NULL, 0, m->props, PER_RECIPIENT) : 0;
	if (!n)
		return sqlite3_bind_null(s, i);
	if (!(*tmp = malloc(n)))
		return SQLITE_NOMEM;
	mg_props_strip(*tmp, n, m->props, PER_RECIPIENT);
	return sqlite3_bind_blob(s, i, *tmp, (int)n, SQLITE_STATIC);
}

static int step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Which clients become sessions, and at which level. */
static int put_sessions(imp *im)
{
	const mqdb *db = im->db;
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(im->sq, "INSERT INTO sessions (sid, client_id, level, expiry, "
	                            "expire_at, username) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	/* 5.0-only traces per client: subscription options or identifiers */
	bool *v5 = calloc(db->n_clients ? db->n_clients : 1, sizeof *v5);
	if (!v5) {
		sqlite3_finalize(s);
		return SQLITE_NOMEM;
	}
	int64_t next = 1;
	for (size_t i = 0; i < db->n_subs; i++) {
		const mqdb_sub *sb = &db->subs[i];
		if (!sb->options && !sb->identifier)
			continue;
		for (size_t lo = 0, hi = db->n_clients; lo < hi;) {
			size_t mid = lo + (hi - lo) / 2;
			int c = cmp_bytes(db->clients[im->by_id[mid]].id, sb->client_id);
			if (c == 0) {
				v5[im->by_id[mid]] = true;
				break;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	for (size_t i = 0; i < db->n_clients && rc == SQLITE_OK; i++) {
		const mqdb_client *c = &db->clients[i];
		im->sid[i] = 0;
		if (c->session_expiry_interval == 0) {
			im->n.ended++;
			continue;
		}
		bool never = c->session_expiry_interval == UINT32_MAX;
		/* mosquitto sets the expiry time when the session goes offline; 0 means it was online
		 * when the file was written, and its expiry runs from the import */
		int64_t at = never ? 0 : c->session_expiry_time ? c->session_expiry_time
		                                               : im->now_s + c->session_expiry_interval;
		if (!never && at <= im->now_s) {
			im->n.expired_sess++;
			continue;
		}
		im->sid[i] = next++;
		sqlite3_bind_int64(s, 1, im->sid[i]);
		bind_blob(s, 2, c->id);
		sqlite3_bind_int(s, 3, never && !v5[i] ? 4 : 5);
		sqlite3_bind_int64(s, 4, c->session_expiry_interval);
		bind_expiry(s, 5, never ? 0 : at);
		/* the user name it last connected with (mosquitto 2.0 keeps it per client): the
		 * restored session is judged by acl_file as that user until its client comes back,
		 * as in mosquitto. Length 0 is none (mosquitto writes an empty name as none too). */
		if (c->username.len)
			bind_blob(s, 6, c->username);
		rc = step_done(s);
		if (rc == SQLITE_CONSTRAINT) { /* two client chunks with one id: the first wins */
			im->sid[i] = 0;
			im->n.dups++;
			rc = SQLITE_OK;
			continue;
		}
		im->n.sessions++;
	}
	free(v5);
	sqlite3_finalize(s);
	return rc;
}

static int put_subs(imp *im)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(im->sq, "INSERT OR REPLACE INTO subs (sid, filter, opts, sub_id) "
	                            "VALUES (?1, ?2, ?3, ?4)", -1, &s, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < im->db->n_subs; i++) {
		const mqdb_sub *sb = &im->db->subs[i];
		int64_t sid = sid_of(im, sb->client_id);
		if (!sid) {
			im->n.orphans++;
			continue;
		}
		if (mg_topic_filter_check(sb->filter.p, sb->filter.len) != MG_OK) {
			im->n.bad_topics++;
			continue;
		}
		sqlite3_bind_int64(s, 1, sid);
		bind_blob(s, 2, sb->filter);
		sqlite3_bind_int(s, 3, sb->qos | (sb->options & 0x0C));
		sqlite3_bind_int64(s, 4, sb->identifier);
		rc = step_done(s);
		im->n.subs++;
	}
	sqlite3_finalize(s);
	return rc;
}

/* midge's queue state for a mosquitto outgoing state; -1: not one midge keeps. */
static int out_state(uint8_t st)
{
	switch (st) {
	case MQDB_MS_QUEUED:
	case MQDB_MS_PUBLISH_QOS1:
	case MQDB_MS_PUBLISH_QOS2:
		return 0;
	case MQDB_MS_WAIT_FOR_PUBACK:
	case MQDB_MS_WAIT_FOR_PUBREC:
		return 1;
	case MQDB_MS_RESEND_PUBREL:
	case MQDB_MS_WAIT_FOR_PUBCOMP:
		return 2;
	default:
		return -1;
	}
}

/* The message of a client message that becomes a row, NULL (counted) if it does not. */
static const mqdb_msg *cmsg_msg(imp *im, const mqdb_cmsg *c, int64_t *sid, int *state)
{
	counts scratch = {0}, *n = im->counting ? &im->n : &scratch;
	*sid = sid_of(im, c->client_id);
	if (!*sid) {
		n->orphans++;
		return NULL;
	}
	if (c->direction == 1) {
		*state = out_state(c->state);
		if (c->qos == 0) {
			n->qos0++;
			return NULL;
		}
	} else {
		*state = c->state == MQDB_MS_WAIT_FOR_PUBREL && c->qos == 2 ? 0 : -1;
	}
	if (*state < 0) {
		n->other_states++;
		return NULL;
	}
	const mqdb_msg *m = mqdb_find_msg(im->db, c->store_id);
	/* mosquitto leaves out a message that expired before the file was written */
	if (!m || (msg_expired(im, m) && (c->direction == 0 || *state == 0))) {
		n->expired_msgs++;
		return NULL;
	}
	if (mg_topic_name_check(m->topic.p, m->topic.len) != MG_OK) {
		n->bad_topics++;
		return NULL;
	}
	return m;
}

static int put_msgs(imp *im)
{
	const mqdb *db = im->db;
	for (size_t i = 0; i < db->n_cmsgs; i++) {
		int64_t sid;
		int state;
		const mqdb_msg *m = cmsg_msg(im, &db->cmsgs[i], &sid, &state);
		if (m)
			im->msg_id[m - db->msgs] = -1; /* needed */
	}
	im->counting = true; /* put_queue walks the same records again and counts them */
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(im->sq, "INSERT INTO msgs (id, topic, payload, props, qos, retain, "
	                            "expire_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1, &s, NULL);
	int64_t next = 1;
	for (size_t i = 0; rc == SQLITE_OK && i < db->n_msgs; i++) {
		if (!im->msg_id[i])
			continue;
		const mqdb_msg *m = &db->msgs[i];
		uint8_t *tmp;
		im->msg_id[i] = next++;
		sqlite3_bind_int64(s, 1, im->msg_id[i]);
		bind_blob(s, 2, m->topic);
		bind_blob(s, 3, m->payload);
		rc = bind_props(s, 4, m, &tmp);
		sqlite3_bind_int(s, 5, m->qos);
		sqlite3_bind_int(s, 6, m->retain);
		bind_expiry(s, 7, m->expiry_time);
		if (rc == SQLITE_OK)
			rc = step_done(s);
		free(tmp);
		im->n.msgs++;
	}
	sqlite3_finalize(s);
	return rc;
}

static int put_queue(imp *im)
{
	const mqdb *db = im->db;
	sqlite3_stmt *q = NULL, *in = NULL;
	int rc = sqlite3_prepare_v2(im->sq, "INSERT OR IGNORE INTO queue (sid, msg, qos, retain, "
	                            "sub_ids, mid, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1, &q,
	                            NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(im->sq, "INSERT OR IGNORE INTO inq2 (sid, mid, msg) VALUES "
		                        "(?1, ?2, ?3)", -1, &in, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < db->n_cmsgs; i++) {
		const mqdb_cmsg *c = &db->cmsgs[i];
		int64_t sid;
		int state;
		const mqdb_msg *m = cmsg_msg(im, c, &sid, &state);
		if (!m)
			continue;
		int64_t id = im->msg_id[m - db->msgs];
		if (c->direction == 0) {
			sqlite3_bind_int64(in, 1, sid);
			sqlite3_bind_int(in, 2, c->mid);
			sqlite3_bind_int64(in, 3, id);
			rc = step_done(in);
			if (rc == SQLITE_OK && sqlite3_changes(im->sq) == 0)
				im->n.dups++;
			else
				im->n.inq2++;
			continue;
		}
		/* subscription identifiers: 4 bytes each, big endian */
		uint8_t ids[4 * 32];
		size_t nid = 0;
		uint32_t off = 0;
		mg_prop pr;
		while (mg_prop_next(c->props, &off, &pr))
			if (pr.id == MG_PROP_SUBSCRIPTION_ID && nid < sizeof ids / 4) {
				ids[4 * nid] = (uint8_t)(pr.u >> 24);
				ids[4 * nid + 1] = (uint8_t)(pr.u >> 16);
				ids[4 * nid + 2] = (uint8_t)(pr.u >> 8);
				ids[4 * nid + 3] = (uint8_t)pr.u;
				nid++;
			}
		sqlite3_bind_int64(q, 1, sid);
		sqlite3_bind_int64(q, 2, id);
		sqlite3_bind_int(q, 3, c->qos);
		sqlite3_bind_int(q, 4, c->retain);
		if (nid)
			sqlite3_bind_blob(q, 5, ids, (int)(4 * nid), SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(q, 5);
		sqlite3_bind_int(q, 6, state ? c->mid : 0);
		sqlite3_bind_int(q, 7, state);
		rc = step_done(q);
		if (rc == SQLITE_OK && sqlite3_changes(im->sq) == 0)
			im->n.dups++; /* the same message twice for one session (overlapping filters) */
		else if (state)
			im->n.inflight++;
		else
			im->n.queued++;
	}
	sqlite3_finalize(q);
	sqlite3_finalize(in);
	return rc;
}

static int put_retained(imp *im)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(im->sq, "INSERT OR REPLACE INTO retained (topic, payload, props, "
	                            "qos, expire_at) VALUES (?1, ?2, ?3, ?4, ?5)", -1, &s, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < im->db->n_retains; i++) {
		const mqdb_msg *m = mqdb_find_msg(im->db, im->db->retains[i]);
		if (!m || msg_expired(im, m)) {
			im->n.expired_msgs++;
			continue;
		}
		if (m->topic.len >= 4 && !memcmp(m->topic.p, "$SYS", 4))
			continue;
		if (!m->payload.len)
			continue; /* an empty retained message deletes, it is never stored */
		if (mg_topic_name_check(m->topic.p, m->topic.len) != MG_OK) {
			im->n.bad_topics++;
			continue;
		}
		uint8_t *tmp;
		bind_blob(s, 1, m->topic);
		bind_blob(s, 2, m->payload);
		rc = bind_props(s, 3, m, &tmp);
		sqlite3_bind_int(s, 4, m->qos);
		bind_expiry(s, 5, m->expiry_time);
		if (rc == SQLITE_OK)
			rc = step_done(s);
		free(tmp);
		im->n.retained++;
	}
	sqlite3_finalize(s);
	return rc;
}

static void remove_new(const char *dst)
{
	char p[4096];
	unlink(dst);
	snprintf(p, sizeof p, "%s-wal", dst);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", dst);
	unlink(p);
}

static int count_rows(sqlite3 *sq, long long *n)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(sq, "SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM "
	                            "retained) + (SELECT count(*) FROM msgs)", -1, &s, NULL);
	if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	else if (rc == SQLITE_OK)
		rc = sqlite3_errcode(sq);
	sqlite3_finalize(s);
	return rc;
}

int mdb_import(const char *src, const char *dst, FILE *out)
{
	uint8_t *buf;
	size_t len;
	if (mdb_read_file(src, &buf, &len) != 0) {
		fprintf(stderr, "midge_db: %s: %s\n", src, strerror(errno));
		return 1;
	}
	mqdb db;
	char err[300];
	if (mqdb_parse(buf, len, &db, err, sizeof err) != 0) {
		fprintf(stderr, "midge_db: %s: %s; nothing imported\n", src, err);
		free(buf);
		return 1;
	}
	struct stat st;
	bool created = stat(dst, &st) != 0;
	imp im = {.db = &db, .now_s = (int64_t)time(NULL)};
	int ver = 0, rc = SQLITE_OK, ret = 1;
	const char *what = "creating the tables of";
	if (mdb_open(dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &im.sq, &ver) != 0)
		goto done;
	if (ver) {
		long long n = 0;
		what = "reading";
		if ((rc = count_rows(im.sq, &n)) != SQLITE_OK)
			goto sqlfail;
		if (n) {
			fprintf(stderr, "midge_db: %s already holds sessions, retained or queued messages; "
			        "import into a new file (or move this one aside first)\n", dst);
			goto done;
		}
	}
	if (ver < MG_STORE_SCHEMA_VERSION && (rc = mdb_create_schema(im.sq, ver)) != SQLITE_OK) {
		goto sqlfail;
	}
	im.sid = calloc(db.n_clients + 1, sizeof *im.sid);
	im.by_id = calloc(db.n_clients + 1, sizeof *im.by_id);
	im.msg_id = calloc(db.n_msgs + 1, sizeof *im.msg_id);
	if (!im.sid || !im.by_id || !im.msg_id) {
		fprintf(stderr, "midge_db: out of memory\n");
		goto done;
	}
	for (size_t i = 0; i < db.n_clients; i++)
		im.by_id[i] = i;
	sort_db = &db;
	qsort(im.by_id, db.n_clients, sizeof *im.by_id, cmp_client);
	what = "writing";
	rc = sqlite3_exec(im.sq, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = put_sessions(&im);
	if (rc == SQLITE_OK)
		rc = put_subs(&im);
	if (rc == SQLITE_OK)
		rc = put_msgs(&im);
	if (rc == SQLITE_OK)
		rc = put_queue(&im);
	if (rc == SQLITE_OK)
		rc = put_retained(&im);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(im.sq, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto sqlfail;
	const counts *n = &im.n;
	fprintf(out, "Imported %s into %s: %zu retained messages, %zu sessions, %zu subscriptions, "
	        "%zu queued and %zu in-flight messages, %zu incoming QoS 2 awaiting PUBREL (%zu "
	        "message bodies).\n", src, dst, n->retained, n->sessions, n->subs, n->queued,
	        n->inflight, n->inq2, n->msgs);
	if (n->ended || n->expired_sess || n->expired_msgs || n->qos0 || n->orphans ||
	    n->bad_topics || n->other_states || n->dups)
		fprintf(out, "Left out: %zu sessions that ended with their connection (expiry 0), %zu "
		        "expired sessions, %zu expired messages, %zu queued QoS 0 messages, %zu records "
		        "of clients without a session, %zu invalid topics or filters, %zu messages in "
		        "states midge does not keep, %zu duplicates.\n", n->ended, n->expired_sess,
		        n->expired_msgs, n->qos0, n->orphans, n->bad_topics, n->other_states, n->dups);
	if (im.db->n_stale_usernames)
		fprintf(out, "%zu sessions have no user name: mosquitto before 2.0.16 wrote the previous "
		        "client's into their records (its bug, fixed in 2.0.16); each gets its own again "
		        "when its client reconnects.\n", im.db->n_stale_usernames);
	ret = 0;
	goto done;
sqlfail:
	fprintf(stderr, "midge_db: %s %s: %s; nothing imported\n", what, dst, sqlite3_errmsg(im.sq));
	if (!sqlite3_get_autocommit(im.sq))
		sqlite3_exec(im.sq, "ROLLBACK", NULL, NULL, NULL);
done:
	sqlite3_close(im.sq);
	if (ret && created)
		remove_new(dst);
	free(im.sid);
	free(im.by_id);
	free(im.msg_id);
	mqdb_free(&db);
	free(buf);
	return ret;
}
