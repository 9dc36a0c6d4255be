/* tools/midge_db/store_file.h - a midge.db as midge_db opens it. */
#ifndef MIDGE_DB_STORE_FILE_H
#define MIDGE_DB_STORE_FILE_H

#include <sqlite3.h>

/* Opens path with sqlite3_open_v2 flags and checks it is midge's (application_id) or an
 * empty database, and not from a newer schema. *version: its schema version, 0 if empty.
 * 0, or -1 after printing why to stderr. */
int mdb_open(const char *path, int flags, sqlite3 **out, int *version);
/* WAL mode, the tables, user_version and application_id: what midge's own open does. ver: the
 * file's schema version (0 empty); a version-1 file is migrated. */
int mdb_create_schema(sqlite3 *db, int ver);

#endif
