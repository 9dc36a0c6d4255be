/*
 * test/fuzz/fuzz_proto_mosqdb.c - midge_db's mosquitto.db reader (tools/midge_db/mosqdb.c) on
 * arbitrary files. The reader is pure and uses proto/ for properties, so it is fuzzed as a
 * proto-layer target with its source compiled in (tools/ is not a layer the Makefile links).
 * Beyond "no crash, no overrun, no leak": an accepted file's every view lies inside the input,
 * its messages are sorted by store id, and each one is found by its id.
 */
#include <stdlib.h>
#include <string.h>

#include "tools/midge_db/mosqdb.c"

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)

static const uint8_t *lo, *hi;

static void inside(mg_bytes b)
{
	MUST(b.len == 0 || (b.p >= lo && b.p + b.len <= hi));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of its own size, so ASan sees a read one byte past the end */
	uint8_t *buf = malloc(size ? size : 1);
	if (size)
		memcpy(buf, data, size);
	lo = buf;
	hi = buf + size;
	mqdb db;
	char err[300];
	if (mqdb_parse(buf, size, &db, err, sizeof err) == 0) {
		MUST(db.version == 5 || db.version == 6);
		for (size_t i = 0; i < db.n_msgs; i++) {
			const mqdb_msg *m = &db.msgs[i];
			inside(m->topic);
			inside(m->payload);
			inside(m->props);
			inside(m->source_id);
			inside(m->source_username);
			MUST(m->topic.len > 0 && m->qos <= 2);
			MUST(i == 0 || db.msgs[i - 1].store_id < m->store_id);
			MUST(mqdb_find_msg(&db, m->store_id) == m);
		}
		for (size_t i = 0; i < db.n_cmsgs; i++) {
			inside(db.cmsgs[i].client_id);
			inside(db.cmsgs[i].props);
			MUST(db.cmsgs[i].client_id.len > 0);
		}
		for (size_t i = 0; i < db.n_subs; i++) {
			inside(db.subs[i].client_id);
			inside(db.subs[i].filter);
		}
		for (size_t i = 0; i < db.n_clients; i++) {
			inside(db.clients[i].id);
			inside(db.clients[i].username);
		}
		for (size_t i = 0; i < db.n_retains; i++)
			(void)mqdb_find_msg(&db, db.retains[i]);
	} else {
		MUST(err[0] != 0);
	}
	mqdb_free(&db);
	free(buf);
	return 0;
}
