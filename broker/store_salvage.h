/*
 * broker/store_salvage.h - a damaged store is moved aside and what SQLite can still read of it
 * goes into a fresh one, so the broker starts (docs/persistence.md "Failure modes").
 *
 * A broker that will not come back after a power cut is worse than one that starts and says
 * what it lost: the damaged file is never deleted or overwritten, only renamed, and the log
 * names both files and what to do.
 */
#ifndef MG_BROKER_STORE_SALVAGE_H
#define MG_BROKER_STORE_SALVAGE_H

#include <stddef.h>

typedef struct mg_salvage {
	char aside[4096];  /* where the damaged file went: <path>.damaged-<UTC time>[-N] */
	/* rows copied per table, and whether a table could only be read in part */
	size_t msgs, retained, sessions, subs, queue, inq2;
	int partial;       /* tables whose scan stopped at damage */
} mg_salvage;

/* path is damaged (SQLite reports it corrupt, or it is not a database). Renames it, with its
 * -wal and -shm, to a name that did not exist, then creates path anew with the schema and
 * copies every row of midge's tables that can still be read (each table is scanned forwards
 * and backwards, so rows on both sides of a damaged page survive). 0, or -1 with errno-like
 * detail in err (then path is untouched if the rename had not happened, or aside names the
 * moved file and path does not exist). */
int mg_store_salvage(const char *path, mg_salvage *out, char *err, size_t errlen);

/* A fresh store's connection: WAL mode, the tables, user_version and application_id. Used by
 * the salvage; SQLITE_OK or an SQLite error code. */
struct sqlite3;
int mg_store_create_schema(struct sqlite3 *db);

#endif
