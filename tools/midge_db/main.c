/*
 * tools/midge_db/main.c - midge_db: import mosquitto's persistence file into midge's store,
 * dump either kind of file, back up a live store. docs/man/midge_db.1 is its manual.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/midge_db/midge_db.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: midge_db import MOSQUITTO_DB [MIDGE_DB]   (MIDGE_DB defaults to midge.db)\n"
	           "       midge_db dump FILE                        (a midge.db or a mosquitto.db)\n"
	           "       midge_db backup SRC DST                   (a copy of a midge.db, safe while midge runs)\n"
	           "See midge_db(1).\n");
}

int mdb_read_file(const char *path, uint8_t **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		errno = EINVAL;
		return -1;
	}
	size_t n = (size_t)st.st_size;
	uint8_t *b = malloc(n ? n : 1);
	if (!b || fread(b, 1, n, f) != n) {
		int e = b ? EIO : ENOMEM;
		free(b);
		fclose(f);
		errno = e;
		return -1;
	}
	fclose(f);
	*buf = b;
	*len = n;
	return 0;
}

void mdb_print_bytes(FILE *out, const uint8_t *p, size_t len, size_t max)
{
	fputc('\'', out);
	for (size_t i = 0; i < len && i < max; i++) {
		uint8_t c = p[i];
		if (c == '\'' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			fputc(c, out);
		else
			fprintf(out, "\\x%02x", c);
	}
	fputc('\'', out);
	if (len > max)
		fputs("...", out);
}

static const uint8_t SQLITE_MAGIC[16] = "SQLite format 3";

static int dump(const char *path)
{
	uint8_t *buf;
	size_t len;
	if (mdb_read_file(path, &buf, &len) != 0) {
		fprintf(stderr, "midge_db: %s: %s\n", path, strerror(errno));
		return 1;
	}
	int rc;
	if (len >= 16 && memcmp(buf, SQLITE_MAGIC, 16) == 0) {
		free(buf);
		rc = mdb_dump_midge(path, stdout);
	} else {
		rc = mdb_dump_mosquitto(path, buf, len, stdout);
		free(buf);
	}
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "dump") && argc == 3)
		return dump(argv[2]);
	if (argc >= 3 && !strcmp(argv[1], "import") && argc <= 4)
		return mdb_import(argv[2], argc == 4 ? argv[3] : "midge.db", stdout);
	if (argc == 4 && !strcmp(argv[1], "backup"))
		return mdb_backup(argv[2], argv[3], stdout);
	usage(stderr);
	return 2;
}
