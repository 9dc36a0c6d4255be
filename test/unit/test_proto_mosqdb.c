/*
 * test/unit/test_proto_mosqdb.c - the mosquitto.db reader of midge_db (tools/midge_db/mosqdb.c).
 *
 * The reader is a pure function over bytes that uses proto/ for MQTT properties, so it is
 * tested as a proto-layer unit: its source is compiled into this test (the Makefile links
 * unit tests by layer, and tools/ is not one). Files are built here field by field from
 * mosquitto's struct layouts (src/persist.h: 64-bit ids in host order, the rest big endian,
 * struct padding written as it lies); test/tools/test_midge_db.py reads files that Debian's
 * mosquitto itself wrote.
 */
#include "t.h"

#include <stdlib.h>

#include "tools/midge_db/mosqdb.c"

typedef struct fb {
	uint8_t b[4096];
	size_t n;
} fb;

static void put(fb *f, const void *p, size_t n)
{
	if (n)
		memcpy(f->b + f->n, p, n);
	f->n += n;
}
static void u8(fb *f, uint8_t v) { put(f, &v, 1); }
static void u16(fb *f, uint16_t v) { u8(f, (uint8_t)(v >> 8)); u8(f, (uint8_t)v); }
static void u32(fb *f, uint32_t v) { u16(f, (uint16_t)(v >> 16)); u16(f, (uint16_t)v); }
static void l64(fb *f, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		u8(f, (uint8_t)(v >> (8 * i)));
}
static void str(fb *f, const char *s) { put(f, s, strlen(s)); }
static void pad(fb *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		u8(f, 0xAA); /* padding is whatever was in memory */
}

static void header(fb *f, uint32_t version)
{
	f->n = 0;
	put(f, MAGIC, sizeof MAGIC);
	u32(f, 0); /* crc: never checked */
	u32(f, version);
}
static void chunk(fb *f, uint32_t type, uint32_t len)
{
	u32(f, type);
	u32(f, len);
}
static void cfg(fb *f, uint64_t last)
{
	chunk(f, MQDB_CHUNK_CFG, 16);
	l64(f, last);
	u8(f, 1);
	u8(f, 8);
	pad(f, 6);
}
/* props: a whole property block with its varint length, or NULL */
static void msg(fb *f, uint64_t id, const char *topic, const char *payload, uint8_t qos,
                uint8_t retain, const uint8_t *props, size_t plen)
{
	const char *src = "pubber";
	chunk(f, MQDB_CHUNK_MSG, (uint32_t)(32 + strlen(src) + strlen(topic) + strlen(payload) + plen));
	l64(f, id);
	l64(f, 0);
	u32(f, (uint32_t)strlen(payload));
	u16(f, 9);
	u16(f, (uint16_t)strlen(src));
	u16(f, 0);
	u16(f, (uint16_t)strlen(topic));
	u16(f, 1883);
	u8(f, qos);
	u8(f, retain);
	str(f, src);
	str(f, topic);
	str(f, payload);
	put(f, props, plen);
}
static void client6(fb *f, const char *id, uint32_t interval, int64_t at)
{
	chunk(f, MQDB_CHUNK_CLIENT, (uint32_t)(24 + strlen(id)));
	l64(f, (uint64_t)at);
	u32(f, interval);
	u16(f, 5);
	u16(f, (uint16_t)strlen(id));
	u16(f, 1883);
	u16(f, 0);
	pad(f, 4);
	str(f, id);
}
static void cmsg(fb *f, uint64_t id, const char *client, uint16_t mid, uint8_t qos, uint8_t state,
                 uint8_t dir, const uint8_t *props, size_t plen)
{
	chunk(f, MQDB_CHUNK_CLIENT_MSG, (uint32_t)(16 + strlen(client) + plen));
	l64(f, id);
	u16(f, mid);
	u16(f, (uint16_t)strlen(client));
	u8(f, qos);
	u8(f, state);
	u8(f, 0x10); /* retain 1, dup 0 */
	u8(f, dir);
	str(f, client);
	put(f, props, plen);
}
static void sub(fb *f, const char *client, const char *filter, uint8_t qos, uint8_t opts, uint32_t ident)
{
	chunk(f, MQDB_CHUNK_SUB, (uint32_t)(12 + strlen(client) + strlen(filter)));
	u32(f, ident);
	u16(f, (uint16_t)strlen(client));
	u16(f, (uint16_t)strlen(filter));
	u8(f, qos);
	u8(f, opts);
	pad(f, 2);
	str(f, client);
	str(f, filter);
}
static void retain(fb *f, uint64_t id)
{
	chunk(f, MQDB_CHUNK_RETAIN, 8);
	l64(f, id);
}

static const uint8_t USER_PROP[] = {8, 0x26, 0, 1, 'k', 0, 2, 'v', 'v'};
static const uint8_t SUB_ID7[] = {2, 0x0B, 7};

/* A file with every kind of chunk, in the order mosquitto 2.0 writes them. */
static void sample(fb *f)
{
	header(f, 6);
	cfg(f, 0x0102030405ull);
	msg(f, 0x0102030405ull, "a/b", "hello", 1, 1, USER_PROP, sizeof USER_PROP);
	msg(f, 7, "q/1", "x", 2, 0, NULL, 0);
	client6(f, "c1", 3600, 1800000000);
	cmsg(f, 7, "c1", 42, 1, MQDB_MS_WAIT_FOR_PUBACK, 1, SUB_ID7, sizeof SUB_ID7);
	sub(f, "c1", "q/#", 1, 0x04, 7);
	retain(f, 0x0102030405ull);
}

TEST(mosqdb_reads_every_chunk)
{
	fb f;
	sample(&f);
	mqdb db;
	char err[300] = "";
	int rc = mqdb_parse(f.b, f.n, &db, err, sizeof err);
	if (rc)
		t_fail(__FILE__, __LINE__, "%s", err);
	REQUIRE(rc == 0);
	CHECK_EQ_INT(db.version, 6);
	CHECK(db.shutdown);
	CHECK_EQ_INT(db.last_db_id, 0x0102030405ll);
	REQUIRE(db.n_msgs == 2 && db.n_clients == 1 && db.n_cmsgs == 1 && db.n_subs == 1 && db.n_retains == 1);
	/* sorted by store id */
	CHECK_EQ_INT(db.msgs[0].store_id, 7);
	const mqdb_msg *m = mqdb_find_msg(&db, 0x0102030405ull);
	REQUIRE(m != NULL);
	CHECK(m->topic.len == 3 && !memcmp(m->topic.p, "a/b", 3));
	CHECK(m->payload.len == 5 && !memcmp(m->payload.p, "hello", 5));
	CHECK(m->source_id.len == 6 && !memcmp(m->source_id.p, "pubber", 6));
	CHECK_EQ_INT(m->source_mid, 9);
	CHECK_EQ_INT(m->source_port, 1883);
	CHECK_EQ_INT(m->qos, 1);
	CHECK_EQ_INT(m->retain, 1);
	CHECK(m->props.len == sizeof USER_PROP - 1 && !memcmp(m->props.p, USER_PROP + 1, m->props.len));
	CHECK(mqdb_find_msg(&db, 8) == NULL);
	const mqdb_client *c = &db.clients[0];
	CHECK_EQ_INT(c->session_expiry_time, 1800000000);
	CHECK_EQ_INT(c->session_expiry_interval, 3600);
	CHECK_EQ_INT(c->last_mid, 5);
	CHECK_EQ_INT(c->listener_port, 1883);
	CHECK(c->id.len == 2 && !memcmp(c->id.p, "c1", 2));
	CHECK_EQ_INT(c->username.len, 0);
	const mqdb_cmsg *cm = &db.cmsgs[0];
	CHECK_EQ_INT(cm->store_id, 7);
	CHECK_EQ_INT(cm->mid, 42);
	CHECK_EQ_INT(cm->state, MQDB_MS_WAIT_FOR_PUBACK);
	CHECK_EQ_INT(cm->retain, 1);
	CHECK_EQ_INT(cm->dup, 0);
	CHECK_EQ_INT(cm->direction, 1);
	CHECK(cm->props.len == 2 && cm->props.p[0] == 0x0B && cm->props.p[1] == 7);
	const mqdb_sub *s = &db.subs[0];
	CHECK(s->filter.len == 3 && !memcmp(s->filter.p, "q/#", 3));
	CHECK_EQ_INT(s->qos, 1);
	CHECK_EQ_INT(s->options, 0x04);
	CHECK_EQ_INT(s->identifier, 7);
	CHECK_EQ_INT(db.retains[0], 0x0102030405ll);
	mqdb_free(&db);
	CHECK_NO_LEAKS();
}

TEST(mosqdb_version5_client)
{
	fb f;
	header(&f, 5);
	cfg(&f, 1);
	chunk(&f, MQDB_CHUNK_CLIENT, 16 + 3);
	l64(&f, 0);
	u32(&f, 0xFFFFFFFF);
	u16(&f, 1);
	u16(&f, 3);
	str(&f, "old");
	mqdb db;
	char err[300];
	REQUIRE(mqdb_parse(f.b, f.n, &db, err, sizeof err) == 0);
	REQUIRE(db.n_clients == 1);
	CHECK(db.clients[0].id.len == 3 && !memcmp(db.clients[0].id.p, "old", 3));
	CHECK_EQ_INT(db.clients[0].session_expiry_interval, 0xFFFFFFFF);
	mqdb_free(&db);
}

/* Every prefix of a valid file is refused (a file mosquitto was writing when the power went),
 * with the word "truncated" once a chunk header is whole; no read goes past the prefix: the
 * prefix is copied to a buffer of its own size so ASan sees any overrun. */
/* A version 6 client chunk with a username field of ulen bytes from u (u may be shorter:
 * the rest is what lay after it in memory, here 0xAA). */
static void client6u(fb *f, const char *id, uint16_t ulen, const char *u)
{
	chunk(f, MQDB_CHUNK_CLIENT, (uint32_t)(24 + strlen(id) + ulen));
	l64(f, 0);
	u32(f, 0xFFFFFFFF);
	u16(f, 0);
	u16(f, (uint16_t)strlen(id));
	u16(f, 1883);
	u16(f, ulen);
	pad(f, 4);
	str(f, id);
	size_t n = strlen(u) < ulen ? strlen(u) : ulen;
	put(f, u, n);
	pad(f, ulen - n);
}

/* mosquitto < 2.0.16 (one client chunk reused, swapped in place): after "al" a client with no
 * name gets 0x0200 bytes that start with "al", then 2 bytes "al", then 0x0200 again. Those
 * are no names; real names before and after, the same name twice in a row, and a name after
 * a client with none stay. */
TEST(mosqdb_usernames_left_over_by_mosquitto_are_none)
{
	fb f;
	header(&f, 6);
	cfg(&f, 1);
	client6u(&f, "a", 2, "al");     /* alice's own */
	client6u(&f, "b", 0x0200, "al"); /* leftover: swapped length, then memory after "al" */
	client6u(&f, "c", 2, "al");     /* leftover: the length swapped back */
	client6u(&f, "d", 3, "bob");    /* a real name again */
	client6u(&f, "e", 3, "bob");    /* the same name, not swapped: real */
	client6u(&f, "f", 0, "");
	client6u(&f, "g", 2, "al");
	mqdb db;
	char err[300];
	REQUIRE(mqdb_parse(f.b, f.n, &db, err, sizeof err) == 0);
	REQUIRE(db.n_clients == 7);
	static const char *const want[] = { "al", NULL, NULL, "bob", "bob", NULL, "al" };
	for (size_t i = 0; i < 7; i++) {
		const mqdb_client *c = &db.clients[i];
		if (want[i]) {
			CHECK(c->username.len == strlen(want[i]) && !memcmp(c->username.p, want[i], c->username.len));
			CHECK(!c->username_stale);
		} else {
			CHECK_EQ_INT(c->username.len, 0);
		}
	}
	CHECK(db.clients[1].username_stale && db.clients[2].username_stale && !db.clients[5].username_stale);
	CHECK_EQ_INT(db.n_stale_usernames, 2);
	mqdb_free(&db);
	/* a name that is not UTF-8 and no leftover is still refused */
	header(&f, 6);
	cfg(&f, 1);
	client6u(&f, "a", 2, "\xff\xfe");
	CHECK(mqdb_parse(f.b, f.n, &db, err, sizeof err) < 0);
	CHECK(strstr(err, "username is not UTF-8") != NULL);
}

TEST(mosqdb_every_truncation_refused)
{
	fb f;
	sample(&f);
	size_t header_end = sizeof MAGIC + 8;
	for (size_t n = 0; n < f.n; n++) {
		uint8_t *b = malloc(n ? n : 1);
		memcpy(b, f.b, n);
		mqdb db;
		char err[300] = "";
		int rc = mqdb_parse(b, n, &db, err, sizeof err);
		/* a cut exactly between chunks is a shorter valid file only if the config is in */
		bool boundary = false;
		size_t off = header_end;
		while (off < f.n) {
			if (off == n)
				boundary = true;
			off += 8 + be32(f.b + off + 4);
		}
		if (boundary && n >= header_end + 24) {
			CHECK(rc == 0);
		} else {
			if (rc == 0)
				t_fail(__FILE__, __LINE__, "prefix of %zu bytes accepted", n);
			if (n > header_end + 8 && !boundary && !strstr(err, "truncated"))
				t_fail(__FILE__, __LINE__, "prefix %zu: %s", n, err);
		}
		mqdb_free(&db);
		free(b);
	}
}

/* Flipping any bit of any byte never makes the reader read outside the file. */
TEST(mosqdb_bit_flips_stay_in_bounds)
{
	fb f;
	sample(&f);
	uint8_t *b = malloc(f.n);
	for (size_t i = 0; i < f.n; i++)
		for (int bit = 0; bit < 8; bit++) {
			memcpy(b, f.b, f.n);
			b[i] ^= (uint8_t)(1 << bit);
			mqdb db;
			char err[300];
			if (mqdb_parse(b, f.n, &db, err, sizeof err) == 0) {
				for (size_t k = 0; k < db.n_msgs; k++) {
					CHECK(db.msgs[k].topic.p >= b && db.msgs[k].topic.p + db.msgs[k].topic.len <= b + f.n);
					CHECK(db.msgs[k].payload.len == 0 ||
					      (db.msgs[k].payload.p >= b && db.msgs[k].payload.p + db.msgs[k].payload.len <= b + f.n));
				}
			}
			mqdb_free(&db);
		}
	free(b);
	CHECK_NO_LEAKS();
}

static void refused(const fb *f, const char *want)
{
	mqdb db;
	char err[300] = "";
	int rc = mqdb_parse(f->b, f->n, &db, err, sizeof err);
	if (rc == 0)
		t_fail(__FILE__, __LINE__, "accepted; expected an error with \"%s\"", want);
	else if (!strstr(err, want))
		t_fail(__FILE__, __LINE__, "error \"%s\" does not say \"%s\"", err, want);
	mqdb_free(&db);
}

TEST(mosqdb_refusals_name_the_problem)
{
	fb f;
	sample(&f);
	f.b[3] = 'M';
	refused(&f, "not a mosquitto persistence file");

	header(&f, 4);
	cfg(&f, 1);
	refused(&f, "start mosquitto 2.0 on it once");
	header(&f, 7);
	cfg(&f, 1);
	refused(&f, "format version 7");

	header(&f, 6);
	chunk(&f, MQDB_CHUNK_CFG, 16);
	l64(&f, 1);
	u8(&f, 0);
	u8(&f, 4); /* 32-bit store ids */
	pad(&f, 6);
	refused(&f, "store ids of 4 bytes");

	header(&f, 6);
	refused(&f, "no config chunk");

	/* a property no PUBLISH carries (Session Expiry Interval) */
	static const uint8_t sess_exp[] = {5, 0x11, 0, 0, 0, 1};
	header(&f, 6);
	cfg(&f, 1);
	msg(&f, 1, "t", "p", 0, 0, sess_exp, sizeof sess_exp);
	refused(&f, "property 0x11");

	/* an unknown property id */
	static const uint8_t unknown[] = {2, 0x7F, 0};
	header(&f, 6);
	cfg(&f, 1);
	msg(&f, 1, "t", "p", 0, 0, unknown, sizeof unknown);
	refused(&f, "malformed");

	/* property length that does not fill the chunk */
	static const uint8_t short_len[] = {1, 0x0B, 7};
	header(&f, 6);
	cfg(&f, 1);
	cmsg(&f, 1, "c", 1, 1, MQDB_MS_QUEUED, 1, short_len, sizeof short_len);
	refused(&f, "does not fill");

	header(&f, 6);
	cfg(&f, 1);
	msg(&f, 5, "t", "p", 0, 0, NULL, 0);
	msg(&f, 5, "u", "p", 0, 0, NULL, 0);
	refused(&f, "two messages with store id 5");

	header(&f, 6);
	cfg(&f, 1);
	sub(&f, "c", "t", 1, 0x40, 0);
	refused(&f, "options byte 0x40");

	header(&f, 6);
	cfg(&f, 1);
	cmsg(&f, 1, "c", 1, 1, 12, 1, NULL, 0);
	refused(&f, "state 12");

	header(&f, 6);
	cfg(&f, 1);
	msg(&f, 1, "bad\xff", "p", 0, 0, NULL, 0);
	refused(&f, "topic is not UTF-8");

	/* a chunk claiming more bytes than the file has */
	header(&f, 6);
	cfg(&f, 1);
	chunk(&f, MQDB_CHUNK_RETAIN, 1000);
	l64(&f, 1);
	refused(&f, "truncated");

	/* a string length running past its chunk */
	header(&f, 6);
	cfg(&f, 1);
	chunk(&f, MQDB_CHUNK_SUB, 12 + 2);
	u32(&f, 0);
	u16(&f, 1);
	u16(&f, 200);
	u8(&f, 0);
	u8(&f, 0);
	pad(&f, 2);
	str(&f, "cf");
	refused(&f, "runs past the end of the chunk");
}

TEST(mosqdb_unknown_chunks_skipped)
{
	fb f;
	header(&f, 6);
	cfg(&f, 1);
	chunk(&f, 99, 3);
	str(&f, "xyz");
	retain(&f, 4);
	mqdb db;
	char err[300];
	REQUIRE(mqdb_parse(f.b, f.n, &db, err, sizeof err) == 0);
	CHECK_EQ_INT(db.n_unknown, 1);
	CHECK_EQ_INT(db.n_retains, 1);
	mqdb_free(&db);
}

TEST(mosqdb_state_names)
{
	CHECK_STR(mqdb_state_name(MQDB_MS_QUEUED), "queued");
	CHECK_STR(mqdb_state_name(MQDB_MS_WAIT_FOR_PUBCOMP), "wait_for_pubcomp");
	CHECK_STR(mqdb_state_name(0), "?");
	CHECK_STR(mqdb_state_name(200), "?");
}
