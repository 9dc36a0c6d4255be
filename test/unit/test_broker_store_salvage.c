/*
 * test/unit/test_broker_store_salvage.c - a damaged midge.db is moved aside, never
 * overwritten, and a fresh store holds what SQLite could still read (broker/store_salvage.c).
 * Files are damaged the ways disks and people damage them: a page of garbage in the middle, a
 * file cut short, a file that is not a database at all.
 */
#include "t.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/store_salvage.h"
#include "broker/store_schema.h"

#define ROWS 3000

static void tmpdir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/midge-salvage-XXXXXX");
	if (!mkdtemp(dir))
		dir[0] = 0;
}

static void rmdir_all(const char *dir)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		t_fail(__FILE__, __LINE__, "cannot remove %s", dir);
}

/* A store with ROWS retained messages and one session with a subscription and a queued
 * message, closed cleanly (no WAL left). */
static int make_store(const char *path)
{
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK || mg_store_create_schema(db) != SQLITE_OK)
		return -1;
	char payload[200];
	memset(payload, 'p', sizeof payload);
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	sqlite3_stmt *s;
	sqlite3_prepare_v2(db, "INSERT INTO retained (topic, payload, qos) VALUES (?1, ?2, 1)", -1, &s, NULL);
	for (int i = 0; i < ROWS; i++) {
		char topic[32];
		int n = snprintf(topic, sizeof topic, "t/%05d", i);
		sqlite3_bind_blob(s, 1, topic, n, SQLITE_TRANSIENT);
		sqlite3_bind_blob(s, 2, payload, sizeof payload, SQLITE_STATIC);
		sqlite3_step(s);
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	int rc = sqlite3_exec(db, "INSERT INTO sessions (sid, client_id, level, expiry) VALUES (1, CAST('c1' AS BLOB), 4, 4294967295);"
	                          "INSERT INTO subs VALUES (1, CAST('a/#' AS BLOB), 1, 0);"
	                          "INSERT INTO msgs (id, topic, payload, qos, retain) VALUES (1, CAST('a/b' AS BLOB), CAST('x' AS BLOB), 1, 0);"
	                          "INSERT INTO queue VALUES (1, 1, 1, 0, NULL, 0, 0);"
	                          "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static long file_size(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static char *slurp(const char *p, long *n)
{
	FILE *f = fopen(p, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	*n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)*n + 1);
	if (fread(b, 1, (size_t)*n, f) != (size_t)*n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	return b;
}

static long count(const char *path, const char *q)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	long n = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, q, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			n = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return n;
}

static void check_fresh(const char *path)
{
	CHECK_EQ_INT(count(path, "PRAGMA user_version"), MG_STORE_SCHEMA_VERSION);
	CHECK_EQ_INT(count(path, "PRAGMA application_id"), 0x4d494447);
	sqlite3 *db;
	sqlite3_stmt *s;
	REQUIRE(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
	REQUIRE(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) == SQLITE_OK);
	REQUIRE(sqlite3_step(s) == SQLITE_ROW);
	CHECK_STR((const char *)sqlite3_column_text(s, 0), "ok");
	sqlite3_finalize(s);
	sqlite3_close(db);
}

TEST(salvage_garbage_page_keeps_both_sides)
{
	char dir[64], path[128];
	tmpdir(dir, sizeof dir);
	REQUIRE(dir[0]);
	snprintf(path, sizeof path, "%s/midge.db", dir);
	REQUIRE(make_store(path) == 0);
	long size = file_size(path);
	REQUIRE(size > 100 * 4096);
	/* 4 pages of garbage in the middle of the retained table */
	int fd = open(path, O_WRONLY);
	char junk[4 * 4096];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 131 + 7);
	REQUIRE(pwrite(fd, junk, sizeof junk, (size / 4096 / 2) * 4096) == (ssize_t)sizeof junk);
	close(fd);
	long n_before;
	char *damaged = slurp(path, &n_before);
	REQUIRE(damaged);

	mg_salvage sv;
	char err[300] = "";
	int rc = mg_store_salvage(path, &sv, err, sizeof err);
	if (rc)
		t_fail(__FILE__, __LINE__, "%s", err);
	REQUIRE(rc == 0);
	/* the damaged file is kept byte for byte under a new name */
	CHECK(strncmp(sv.aside, path, strlen(path)) == 0 && strstr(sv.aside, ".damaged-"));
	long n_after;
	char *kept = slurp(sv.aside, &n_after);
	REQUIRE(kept);
	CHECK(n_after == n_before && memcmp(kept, damaged, (size_t)n_before) == 0);
	free(kept);
	free(damaged);
	check_fresh(path);
	/* some retained rows are lost with the damaged pages, those on both sides survive */
	long r = count(path, "SELECT count(*) FROM retained");
	CHECK(r > ROWS / 4 && r < ROWS);
	CHECK_EQ_INT(sv.retained, r);
	CHECK(sv.partial >= 1);
	CHECK_EQ_INT(count(path, "SELECT count(*) FROM retained WHERE topic = CAST('t/00000' AS BLOB)"), 1);
	CHECK_EQ_INT(count(path, "SELECT count(*) FROM retained WHERE topic = CAST('t/02999' AS BLOB)"), 1);
	/* the session, its subscription and queue are on other pages: all there */
	CHECK_EQ_INT(count(path, "SELECT count(*) FROM sessions"), 1);
	CHECK_EQ_INT(count(path, "SELECT count(*) FROM subs"), 1);
	CHECK_EQ_INT(count(path, "SELECT count(*) FROM queue"), 1);
	CHECK_EQ_INT(count(path, "SELECT count(*) FROM msgs"), 1);
	rmdir_all(dir);
}

TEST(salvage_truncated_file)
{
	char dir[64], path[128];
	tmpdir(dir, sizeof dir);
	REQUIRE(dir[0]);
	snprintf(path, sizeof path, "%s/midge.db", dir);
	REQUIRE(make_store(path) == 0);
	long size = file_size(path);
	REQUIRE(truncate(path, size / 3) == 0);
	mg_salvage sv;
	char err[300] = "";
	REQUIRE(mg_store_salvage(path, &sv, err, sizeof err) == 0);
	CHECK_EQ_INT(file_size(sv.aside), size / 3);
	check_fresh(path);
	long r = count(path, "SELECT count(*) FROM retained");
	CHECK(r >= 0 && r < ROWS);
	CHECK_EQ_INT(sv.retained, r);
	rmdir_all(dir);
}

/* Not a database at all (the header is garbage): nothing to read; a fresh empty store, and
 * the next salvage in the same second gets another name instead of overwriting the first. */
TEST(salvage_not_a_database_never_overwrites)
{
	char dir[64], path[128];
	tmpdir(dir, sizeof dir);
	REQUIRE(dir[0]);
	snprintf(path, sizeof path, "%s/midge.db", dir);
	FILE *f = fopen(path, "wb");
	REQUIRE(f);
	fputs("this is not an SQLite file, it is 64 bytes of text for the test.", f);
	fclose(f);
	mg_salvage a, b;
	char err[300] = "";
	REQUIRE(mg_store_salvage(path, &a, err, sizeof err) == 0);
	check_fresh(path);
	CHECK_EQ_INT(count(path, "SELECT count(*) FROM retained"), 0);
	CHECK_EQ_INT(file_size(a.aside), 64);
	/* damage the new one too and salvage again: a second name, the first file untouched */
	f = fopen(path, "wb");
	REQUIRE(f);
	fputs("second", f);
	fclose(f);
	REQUIRE(mg_store_salvage(path, &b, err, sizeof err) == 0);
	CHECK(strcmp(a.aside, b.aside) != 0);
	CHECK_EQ_INT(file_size(a.aside), 64);
	CHECK_EQ_INT(file_size(b.aside), 6);
	check_fresh(path);
	rmdir_all(dir);
}
