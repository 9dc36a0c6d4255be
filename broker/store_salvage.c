/* broker/store_salvage.c - move a damaged store aside, keep what can be read (store_salvage.h). */
#include "broker/store_salvage.h"
#include "broker/store_schema.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int mg_store_create_schema(sqlite3 *db)
{
	char set[128];
	snprintf(set, sizeof set, "PRAGMA user_version = %d; PRAGMA application_id = %d",
	         MG_STORE_SCHEMA_VERSION, MG_STORE_APPLICATION_ID);
	int rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, MG_STORE_SCHEMA_SQL, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, set, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	else
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static bool exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0 || errno != ENOENT;
}

/* Picks <path>.damaged-<UTC>[-N] such that neither it nor its -wal/-shm exist, and reserves
 * it (O_EXCL) so a rename onto it replaces only our empty placeholder. */
static int reserve_aside(const char *path, char *aside, size_t len)
{
	char stamp[32], p[4200];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	for (int n = 0; n < 1000; n++) {
		if (n)
			snprintf(aside, len, "%s.damaged-%s-%d", path, stamp, n);
		else
			snprintf(aside, len, "%s.damaged-%s", path, stamp);
		snprintf(p, sizeof p, "%s-wal", aside);
		bool taken = exists(p);
		snprintf(p, sizeof p, "%s-shm", aside);
		taken = taken || exists(p);
		if (taken)
			continue;
		int fd = open(aside, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

/* file: URI of a path (read-only; '%', '?' and '#' escaped) */
static void uri_of(const char *path, const char *params, char *out, size_t len)
{
	size_t o = (size_t)snprintf(out, len, "file:");
	for (const char *s = path; *s && o + 4 < len; s++) {
		if (*s == '%' || *s == '?' || *s == '#')
			o += (size_t)snprintf(out + o, len - o, "%%%02X", (unsigned char)*s);
		else
			out[o++] = *s;
	}
	snprintf(out + o, len - o, "?%s", params);
}

static const struct {
	const char *name, *cols, *order;
	int ncols;
} TABLES[] = {
	{"msgs", "id, topic, payload, props, qos, retain, expire_at", "rowid", 7},
	{"retained", "topic, payload, props, qos, expire_at", "rowid", 5},
	{"sessions", "sid, client_id, level, expiry, expire_at, will_msg, will_at, will_expiry", "rowid", 8},
	{"subs", "sid, filter, opts, sub_id", "sid, filter", 4},
	{"queue", "sid, msg, qos, retain, sub_ids, mid, state", "sid, msg", 7},
	{"inq2", "sid, mid, msg", "sid, mid", 3},
};

/* Copies what can be read of one table, in one direction; returns rows inserted, and sets
 * *stopped when the scan ended on an error rather than at the end. */
static size_t copy_dir(sqlite3 *src, sqlite3 *dst, int t, bool desc, bool *stopped)
{
	char q[400];
	sqlite3_stmt *sel = NULL, *ins = NULL;
	size_t n = 0;
	snprintf(q, sizeof q, "SELECT %s FROM %s ORDER BY %s%s", TABLES[t].cols, TABLES[t].name,
	         TABLES[t].order, desc ? " DESC" : "");
	if (sqlite3_prepare_v2(src, q, -1, &sel, NULL) != SQLITE_OK) {
		*stopped = true; /* the table itself cannot be read (its schema row is damaged) */
		return 0;
	}
	char vals[64] = "";
	for (int i = 0; i < TABLES[t].ncols; i++)
		strcat(vals, i ? ", ?" : "?");
	snprintf(q, sizeof q, "INSERT OR IGNORE INTO %s (%s) VALUES (%s)", TABLES[t].name,
	         TABLES[t].cols, vals);
	if (sqlite3_prepare_v2(dst, q, -1, &ins, NULL) != SQLITE_OK) {
		sqlite3_finalize(sel);
		*stopped = true;
		return 0;
	}
	int rc;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		for (int i = 0; i < TABLES[t].ncols; i++)
			sqlite3_bind_value(ins, i + 1, sqlite3_column_value(sel, i));
		if (sqlite3_step(ins) == SQLITE_DONE && sqlite3_changes(dst) > 0)
			n++;
		sqlite3_reset(ins);
	}
	if (rc != SQLITE_DONE)
		*stopped = true;
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	return n;
}

int mg_store_salvage(const char *path, mg_salvage *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	char p[4200], a[4200];
	if (reserve_aside(path, out->aside, sizeof out->aside) < 0) {
		snprintf(err, errlen, "cannot make a name beside %s to move it to: %s", path, strerror(errno));
		return -1;
	}
	if (rename(path, out->aside) < 0) {
		snprintf(err, errlen, "cannot move %s to %s: %s", path, out->aside, strerror(errno));
		unlink(out->aside);
		out->aside[0] = 0;
		return -1;
	}
	/* the WAL holds commits not yet in the main file: it goes with it, and is read with it */
	static const char *const sfx[] = {"-wal", "-shm"};
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof p, "%s%s", path, sfx[i]);
		snprintf(a, sizeof a, "%s%s", out->aside, sfx[i]);
		if (rename(p, a) < 0 && errno != ENOENT) {
			snprintf(err, errlen, "cannot move %s to %s: %s", p, a, strerror(errno));
			return -1;
		}
	}
	sqlite3 *src = NULL, *dst = NULL;
	char uri[8600];
	uri_of(out->aside, "mode=ro", uri, sizeof uri);
	if (sqlite3_open_v2(uri, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK ||
	    sqlite3_exec(src, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
		/* a WAL that cannot be read: the main file alone, as it is */
		sqlite3_close(src);
		src = NULL;
		uri_of(out->aside, "immutable=1", uri, sizeof uri);
		if (sqlite3_open_v2(uri, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
			sqlite3_close(src);
			src = NULL;
		}
	}
	int rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc == SQLITE_OK)
		rc = mg_store_create_schema(dst);
	if (rc == SQLITE_OK && src) {
		sqlite3_exec(dst, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		size_t *counts[] = {&out->msgs, &out->retained, &out->sessions, &out->subs, &out->queue, &out->inq2};
		for (int t = 0; t < 6; t++) {
			bool stopped = false, stopped2 = false;
			*counts[t] = copy_dir(src, dst, t, false, &stopped);
			if (stopped) { /* rows past the damage: from the other end */
				*counts[t] += copy_dir(src, dst, t, true, &stopped2);
				out->partial++;
			}
		}
		rc = sqlite3_exec(dst, "COMMIT", NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK)
		snprintf(err, errlen, "cannot create %s anew: %s", path,
		         dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
	sqlite3_close(src);
	sqlite3_close(dst);
	return rc == SQLITE_OK ? 0 : -1;
}
