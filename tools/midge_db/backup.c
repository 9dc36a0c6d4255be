/*
 * tools/midge_db/backup.c - `midge_db backup SRC DST`: a consistent copy of a midge store
 * while the broker writes it, through SQLite's online backup API.
 *
 * The whole copy is one sqlite3_backup_step(-1), which reads under one read transaction: in
 * WAL mode that never blocks the broker's writers (they append to the WAL meanwhile) and the
 * copy is the store as of one commit, never half of a batch. Copying in slices instead would
 * restart whenever the broker commits between two slices, which on a busy broker is always.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/midge_db/midge_db.h"
#include "tools/midge_db/store_file.h"

int mdb_backup(const char *src, const char *dst, FILE *out)
{
	struct stat st;
	if (stat(src, &st) != 0) {
		fprintf(stderr, "midge_db: %s: %s\n", src, strerror(errno));
		return 1;
	}
	if (lstat(dst, &st) == 0) {
		fprintf(stderr, "midge_db: %s exists; a backup never overwrites a file\n", dst);
		return 1;
	}
	sqlite3 *s = NULL, *d = NULL;
	int ver, rc, ret = 1;
	if (mdb_open(src, SQLITE_OPEN_READONLY, &s, &ver) != 0)
		return 1;
	rc = sqlite3_open_v2(dst, &d, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "midge_db: %s: %s\n", dst, d ? sqlite3_errmsg(d) : sqlite3_errstr(rc));
		goto done;
	}
	sqlite3_backup *b = sqlite3_backup_init(d, "main", s, "main");
	if (!b) {
		fprintf(stderr, "midge_db: backup of %s to %s: %s\n", src, dst, sqlite3_errmsg(d));
		goto done;
	}
	/* BUSY: the broker holds a lock only for the moment a checkpoint or a recovery needs one */
	for (int tries = 0; tries < 1000; tries++) {
		rc = sqlite3_backup_step(b, -1);
		if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			break;
		sqlite3_sleep(10);
	}
	int pages = sqlite3_backup_pagecount(b);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "midge_db: backup of %s to %s: %s\n", src, dst, sqlite3_errstr(rc));
		goto done;
	}
	/* the copy is checked, not trusted: a damaged source page would be copied as it is */
	sqlite3_stmt *q;
	rc = sqlite3_prepare_v2(d, "PRAGMA integrity_check", -1, &q, NULL);
	const char *res = rc == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW
	                      ? (const char *)sqlite3_column_text(q, 0) : sqlite3_errmsg(d);
	if (!res || strcmp(res, "ok") != 0) {
		fprintf(stderr, "midge_db: the copy in %s fails SQLite's integrity check: %s\n", dst,
		        res ? res : "?");
		sqlite3_finalize(q);
		goto done;
	}
	sqlite3_finalize(q);
	fprintf(out, "Backed up %s to %s (%d pages, schema version %d), integrity ok.\n", src, dst,
	        pages, ver);
	ret = 0;
done:
	sqlite3_close(d);
	sqlite3_close(s);
	if (ret && d) {
		unlink(dst);
	}
	return ret;
}
