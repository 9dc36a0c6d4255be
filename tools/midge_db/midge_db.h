/* tools/midge_db/midge_db.h - the commands of midge_db, one file each. */
#ifndef MIDGE_DB_H
#define MIDGE_DB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/midge_db/mosqdb.h"

/* Exit codes: 0 done, 1 the input is bad or the command refused, 2 usage. */

/* Reads a whole file into memory (the caller frees *buf). 0, or -1 with errno. */
int mdb_read_file(const char *path, uint8_t **buf, size_t *len);
/* Prints bytes as a quoted string, escaping what is not printable ASCII; at most max bytes,
 * then "...". */
void mdb_print_bytes(FILE *out, const uint8_t *p, size_t len, size_t max);

int mdb_dump_mosquitto(const char *path, const uint8_t *buf, size_t len, FILE *out);
int mdb_dump_midge(const char *path, FILE *out);
int mdb_import(const char *src, const char *dst, FILE *out);
int mdb_backup(const char *src, const char *dst, FILE *out);

#endif
