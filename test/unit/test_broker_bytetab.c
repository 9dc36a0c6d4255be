/* test/unit/test_broker_bytetab.c - the broker's chained byte-string table (bytetab.h) checked
 * against a plain array through growth, and the one hash (hash.h): every byte of a key counts,
 * and topics that differ only at their end spread over a small table's low bits. */
#include "t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/bytetab.h"
#include "broker/hash.h"

typedef struct ent {
	mg_btent h;
	int value;
	char key[32];
} ent;

static ent *add(mg_btab *t, const char *k, int value)
{
	if (mg_btab_room(t) < 0)
		return NULL;
	mg_btent **pp = mg_btab_slot(t, k, strlen(k));
	if (*pp)
		return NULL;
	ent *e = calloc(1, sizeof *e);
	snprintf(e->key, sizeof e->key, "%s", k);
	e->h.key = (const uint8_t *)e->key;
	e->h.len = (uint32_t)strlen(k);
	e->value = value;
	mg_btab_link(t, pp, &e->h);
	return e;
}

static ent *get(mg_btab *t, const char *k)
{
	return (ent *)*mg_btab_slot(t, k, strlen(k));
}

static void free_ent(mg_btent *e)
{
	free(e);
}

TEST(grows_and_finds_against_array)
{
	enum { N = 3000 }; /* past 256, 512, 1024 and 2048 buckets */
	mg_btab t = { 0 };
	char k[32];
	for (int i = 0; i < N; i++) {
		snprintf(k, sizeof k, "client-%d", i);
		REQUIRE(add(&t, k, i) != NULL);
		CHECK(add(&t, k, -1) == NULL); /* a second add of the same key finds the first */
	}
	CHECK_EQ_INT(t.n, N);
	CHECK(t.cap >= N);
	for (int i = 0; i < N; i++) {
		snprintf(k, sizeof k, "client-%d", i);
		ent *e = get(&t, k);
		REQUIRE(e != NULL);
		CHECK_EQ_INT(e->value, i);
	}
	CHECK(get(&t, "client-") == NULL);
	CHECK(get(&t, "client-30000") == NULL);
	/* remove the even ones; the odd ones stay findable, the walk sees exactly them */
	for (int i = 0; i < N; i += 2) {
		snprintf(k, sizeof k, "client-%d", i);
		mg_btent **pp = mg_btab_slot(&t, k, strlen(k));
		REQUIRE(*pp != NULL);
		free(mg_btab_unlink(&t, pp));
		CHECK(get(&t, k) == NULL);
	}
	CHECK_EQ_INT(t.n, N / 2);
	static char seen[N];
	memset(seen, 0, sizeof seen);
	size_t i, walked = 0;
	for (mg_btent *e = mg_btab_first(&t, &i); e; e = mg_btab_next(&t, &i, e), walked++) {
		int v = ((ent *)e)->value;
		REQUIRE(v >= 0 && v < N);
		CHECK(v % 2 == 1);
		CHECK(!seen[v]);
		seen[v] = 1;
	}
	CHECK_EQ_INT(walked, N / 2);
	mg_btab_free(&t, free_ent);
	CHECK(t.v == NULL && t.cap == 0 && t.n == 0);
}

TEST(binary_keys_and_the_empty_key)
{
	mg_btab t = { 0 };
	ent *a = add(&t, "", 1);
	REQUIRE(a != NULL);
	CHECK(get(&t, "") == a);
	/* keys with NUL bytes: only len bytes count */
	static const uint8_t k1[] = { 'a', 0, 'b' }, k2[] = { 'a', 0, 'c' };
	ent *e = calloc(1, sizeof *e);
	memcpy(e->key, k1, 3);
	e->h.key = (const uint8_t *)e->key;
	e->h.len = 3;
	REQUIRE(mg_btab_room(&t) == 0);
	mg_btent **pp = mg_btab_slot(&t, k1, 3);
	REQUIRE(*pp == NULL);
	mg_btab_link(&t, pp, &e->h);
	CHECK(*mg_btab_slot(&t, k1, 3) == &e->h);
	CHECK(*mg_btab_slot(&t, k2, 3) == NULL);
	CHECK(*mg_btab_slot(&t, k1, 2) == NULL);
	mg_btab_free(&t, free_ent);
}

TEST(hash_every_byte_counts)
{
	/* a change in any byte of keys of every length from 1 to 40 changes the hash */
	uint8_t b[40];
	for (size_t len = 1; len <= sizeof b; len++) {
		memset(b, 'x', sizeof b);
		uint32_t h0 = mg_hash_bytes(7, b, len);
		for (size_t i = 0; i < len; i++) {
			b[i] ^= 1;
			CHECK(mg_hash_bytes(7, b, len) != h0);
			b[i] ^= 1;
		}
		CHECK(mg_hash_bytes(7, b, len) == h0);
		CHECK(mg_hash_bytes(8, b, len) != h0); /* the seed counts */
	}
}

TEST(hash_spreads_topics_differing_at_the_end)
{
	/* "site/0".."site/99" and "sensors/room-17/temp/0".. into 128 slots by the low bits:
	 * a hash whose low bits missed the last bytes put 100 such topics into 2 slots. */
	const char *fmt[] = { "site/%d", "sensors/room-17/temp/%d" };
	for (int f = 0; f < 2; f++) {
		static int used[128];
		memset(used, 0, sizeof used);
		int distinct = 0;
		for (int i = 0; i < 100; i++) {
			char t[64];
			int n = snprintf(t, sizeof t, fmt[f], i);
			uint32_t s = mg_hash_bytes(0, t, (size_t)n) & 127;
			distinct += !used[s]++;
		}
		CHECK(distinct >= 50); /* a uniform hash gives about 70 */
	}
}
