/* tools/midge_db/store_file.c - opening a midge.db from midge_db, and dumping one. */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker/store_schema.h"
#include "tools/midge_db/midge_db.h"
#include "tools/midge_db/store_file.h"

static int pragma_int(sqlite3 *db, const char *q, int *v)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(db, q, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int(s, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	return rc;
}

int mdb_open(const char *path, int flags, sqlite3 **out, int *version)
{
	sqlite3 *db = NULL;
	*out = NULL;
	int rc = sqlite3_open_v2(path, &db, flags, NULL);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "midge_db: %s: %s\n", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 10000);
	int app = 0, ver = 0, tables = 0;
	if ((rc = pragma_int(db, "PRAGMA application_id", &app)) != SQLITE_OK ||
	    (rc = pragma_int(db, "PRAGMA user_version", &ver)) != SQLITE_OK ||
	    (rc = pragma_int(db, "SELECT count(*) FROM sqlite_master", &tables)) != SQLITE_OK) {
		fprintf(stderr, "midge_db: %s: %s\n", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return -1;
	}
	if (app != MG_STORE_APPLICATION_ID && !(app == 0 && tables == 0)) {
		fprintf(stderr, "midge_db: %s is an SQLite database but not a midge store "
		        "(application_id %#x)\n", path, (unsigned)app);
		sqlite3_close(db);
		return -1;
	}
	if (ver > MG_STORE_SCHEMA_VERSION) {
		fprintf(stderr, "midge_db: %s was written by a newer midge (schema version %d; this "
		        "midge_db knows up to %d): use that midge's midge_db\n", path, ver,
		        MG_STORE_SCHEMA_VERSION);
		sqlite3_close(db);
		return -1;
	}
	*out = db;
	*version = app ? ver : 0;
	return 0;
}

int mdb_create_schema(sqlite3 *db, int ver)
{
	char set[128];
	snprintf(set, sizeof set, "PRAGMA user_version = %d; PRAGMA application_id = %d",
	         MG_STORE_SCHEMA_VERSION, MG_STORE_APPLICATION_ID);
	int rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, MG_STORE_SCHEMA_SQL, NULL, NULL, NULL);
	if (rc == SQLITE_OK && ver == 1)
		rc = sqlite3_exec(db, MG_STORE_MIGRATE_1_2_SQL, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, set, NULL, NULL, NULL);
	return rc;
}

/* ---- dump ---- */

#define SHOW 64

static void print_ms(FILE *out, sqlite3_stmt *s, int col)
{
	char buf[40];
	time_t t = (time_t)(sqlite3_column_int64(s, col) / 1000);
	struct tm tm;
	if (gmtime_r(&t, &tm) && strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm))
		fputs(buf, out);
}

static void col_bytes(FILE *out, sqlite3_stmt *s, int col, size_t max)
{
	mdb_print_bytes(out, sqlite3_column_blob(s, col), (size_t)sqlite3_column_bytes(s, col), max);
}

static void col_props(FILE *out, sqlite3_stmt *s, int col)
{
	mg_bytes raw = {sqlite3_column_blob(s, col), (uint32_t)sqlite3_column_bytes(s, col)};
	uint32_t off = 0;
	mg_prop pr;
	while (mg_prop_next(raw, &off, &pr)) {
		fprintf(out, ", %s", mg_prop_name(pr.id));
		int t = mg_prop_type(pr.id);
		if (t == MG_PT_UTF8 || t == MG_PT_BINARY || t == MG_PT_PAIR) {
			fputc(' ', out);
			mdb_print_bytes(out, pr.a.p, pr.a.len, SHOW);
			if (t == MG_PT_PAIR) {
				fputc('=', out);
				mdb_print_bytes(out, pr.b.p, pr.b.len, SHOW);
			}
		} else {
			fprintf(out, " %u", pr.u);
		}
	}
}

static const char *const STATE[] = {"queued", "PUBLISH sent", "PUBREC received"};

int mdb_dump_midge(const char *path, FILE *out)
{
	sqlite3 *db;
	int ver;
	if (mdb_open(path, SQLITE_OPEN_READONLY, &db, &ver) != 0)
		return 1;
	int rc = SQLITE_OK;
	sqlite3_stmt *s = NULL, *sub = NULL, *q = NULL, *in = NULL;
	int counts[6] = {0};
	const char *cq[6] = {"SELECT count(*) FROM retained", "SELECT count(*) FROM sessions",
	                     "SELECT count(*) FROM subs", "SELECT count(*) FROM queue",
	                     "SELECT count(*) FROM inq2", "SELECT count(*) FROM msgs"};
	if (ver == 0) {
		fprintf(out, "%s: an empty midge store (no tables yet)\n", path);
		sqlite3_close(db);
		return 0;
	}
	for (int i = 0; i < 6 && rc == SQLITE_OK; i++)
		rc = pragma_int(db, cq[i], &counts[i]);
	if (rc != SQLITE_OK)
		goto fail;
	fprintf(out, "%s: midge store, schema version %d\n", path, ver);
	fprintf(out, "%d retained messages, %d sessions, %d subscriptions, %d queued or in-flight "
	        "messages, %d incoming QoS 2, %d message bodies\n", counts[0], counts[1], counts[2],
	        counts[3], counts[4], counts[5]);
	rc = sqlite3_prepare_v2(db, "SELECT topic, qos, payload, props, expire_at FROM retained "
	                        "ORDER BY topic", -1, &s, NULL);
	while (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
		fputs("retained ", out);
		col_bytes(out, s, 0, 1024);
		fprintf(out, " qos %d, %d bytes ", sqlite3_column_int(s, 1), sqlite3_column_bytes(s, 2));
		col_bytes(out, s, 2, SHOW);
		if (sqlite3_column_type(s, 4) != SQLITE_NULL) {
			fputs(", expires ", out);
			print_ms(out, s, 4);
		}
		col_props(out, s, 3);
		fputc('\n', out);
	}
	sqlite3_finalize(s);
	s = NULL;
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, ver >= 2 ? "SELECT sid, client_id, level, expiry, expire_at, "
		                        "will_msg, will_at, username FROM sessions ORDER BY client_id"
		                        : "SELECT sid, client_id, level, expiry, expire_at, will_msg, "
		                        "will_at, NULL FROM sessions ORDER BY client_id", -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "SELECT filter, opts, sub_id FROM subs WHERE sid = ?1 "
		                        "ORDER BY filter", -1, &sub, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "SELECT q.msg, m.topic, q.qos, q.retain, q.mid, q.state, "
		                        "length(m.payload), m.payload, q.sub_ids, m.props FROM queue q "
		                        "LEFT JOIN msgs m ON m.id = q.msg WHERE q.sid = ?1 ORDER BY q.msg",
		                        -1, &q, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "SELECT i.mid, i.msg, m.topic FROM inq2 i LEFT JOIN msgs m "
		                        "ON m.id = i.msg WHERE i.sid = ?1 ORDER BY i.mid", -1, &in, NULL);
	while (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
		int64_t sid = sqlite3_column_int64(s, 0);
		int64_t exp = sqlite3_column_int64(s, 3);
		fputs("session ", out);
		col_bytes(out, s, 1, 1024);
		fprintf(out, ": level %d, ", sqlite3_column_int(s, 2));
		if (exp == 4294967295LL)
			fputs("expiry never", out);
		else
			fprintf(out, "expiry %" PRId64 " s", exp);
		if (sqlite3_column_type(s, 4) != SQLITE_NULL) {
			fputs(", offline, expires ", out);
			print_ms(out, s, 4);
		}
		if (sqlite3_column_type(s, 5) != SQLITE_NULL) {
			fprintf(out, ", delayed will (message %lld) due ", (long long)sqlite3_column_int64(s, 5));
			print_ms(out, s, 6);
		}
		if (sqlite3_column_type(s, 7) != SQLITE_NULL) {
			fputs(", username ", out);
			col_bytes(out, s, 7, 1024);
		}
		fputc('\n', out);
		sqlite3_bind_int64(sub, 1, sid);
		while (sqlite3_step(sub) == SQLITE_ROW) {
			int o = sqlite3_column_int(sub, 1);
			fputs("  subscription ", out);
			col_bytes(out, sub, 0, 1024);
			fprintf(out, " qos %d%s%s", o & 3, o & 4 ? " no-local" : "",
			        o & 8 ? " retain-as-published" : "");
			if ((o >> 4) & 3)
				fprintf(out, " retain-handling %d", (o >> 4) & 3);
			if (sqlite3_column_int64(sub, 2))
				fprintf(out, " id %lld", (long long)sqlite3_column_int64(sub, 2));
			fputc('\n', out);
		}
		sqlite3_reset(sub);
		sqlite3_bind_int64(q, 1, sid);
		while (sqlite3_step(q) == SQLITE_ROW) {
			int st = sqlite3_column_int(q, 5);
			fprintf(out, "  queue: message %lld ", (long long)sqlite3_column_int64(q, 0));
			col_bytes(out, q, 1, 1024);
			fprintf(out, " qos %d%s, %s", sqlite3_column_int(q, 2),
			        sqlite3_column_int(q, 3) ? " retain" : "",
			        st >= 0 && st <= 2 ? STATE[st] : "?");
			if (st)
				fprintf(out, " m%d", sqlite3_column_int(q, 4));
			fprintf(out, ", %d bytes ", sqlite3_column_int(q, 6));
			col_bytes(out, q, 7, SHOW);
			const uint8_t *ids = sqlite3_column_blob(q, 8);
			int n = sqlite3_column_bytes(q, 8) / 4;
			for (int i = 0; ids && i < n; i++)
				fprintf(out, ", subscription id %u",
				        (unsigned)ids[4 * i] << 24 | (unsigned)ids[4 * i + 1] << 16 |
				            (unsigned)ids[4 * i + 2] << 8 | ids[4 * i + 3]);
			col_props(out, q, 9);
			fputc('\n', out);
		}
		sqlite3_reset(q);
		sqlite3_bind_int64(in, 1, sid);
		while (sqlite3_step(in) == SQLITE_ROW) {
			fprintf(out, "  incoming QoS 2 m%d awaiting PUBREL: message %lld ",
			        sqlite3_column_int(in, 0), (long long)sqlite3_column_int64(in, 1));
			col_bytes(out, in, 2, 1024);
			fputc('\n', out);
		}
		sqlite3_reset(in);
	}
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_finalize(s);
	sqlite3_finalize(sub);
	sqlite3_finalize(q);
	sqlite3_finalize(in);
	sqlite3_close(db);
	return 0;
fail:
	fprintf(stderr, "midge_db: %s: %s\n", path, sqlite3_errmsg(db));
	sqlite3_finalize(s);
	sqlite3_finalize(sub);
	sqlite3_finalize(q);
	sqlite3_finalize(in);
	sqlite3_close(db);
	return 1;
}
