/* test/unit/test_broker_fset.c - a session's filter set: add/remove/membership through the
 * small-array and table modes, backward-shift deletion checked against a plain array. */
#include "t.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/fset.h"


static int add(mg_fset *s, const char *f)
{
	return mg_fset_add(s, (const uint8_t *)f, strlen(f));
}

static int del(mg_fset *s, const char *f)
{
	return mg_fset_del(s, (const uint8_t *)f, strlen(f));
}

static void count_one(void *ud, const uint8_t *f, size_t len)
{
	(void)f;
	(void)len;
	++*(int *)ud;
}

TEST(small_set)
{
	mg_fset s = { 0 };
	CHECK_EQ_INT(del(&s, "a"), 0);
	CHECK_EQ_INT(add(&s, "a/b"), 1);
	CHECK_EQ_INT(add(&s, "a/b"), 0);
	CHECK_EQ_INT(add(&s, "a/+"), 1);
	CHECK_EQ_INT(add(&s, "a"), 1);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_INT(del(&s, "a/b"), 1);
	CHECK_EQ_INT(del(&s, "a/b"), 0);
	CHECK_EQ_INT(add(&s, "a/+"), 0);
	CHECK_EQ_INT(add(&s, "a"), 0);
	int n = 0;
	mg_fset_clear(&s, count_one, &n);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(s.n, 0);
	CHECK(s.v == NULL);
	CHECK_NO_LEAKS();
}

/* 20,000 filters in and out in a seeded order; membership always equals a plain array's. */
TEST(table_against_array)
{
	enum { N = 20000 };
	static char in[N];
	mg_fset s = { 0 };
	char f[32];
	unsigned x = 12345;
	for (int round = 0; round < 6 * N; round++) {
		x = x * 1103515245u + 12345u;
		int k = (int)((x >> 8) % N);
		snprintf(f, sizeof f, "t/%d/x", k);
		bool adding = round < 2 * N || (x >> 30) & 1;
		if (adding) {
			CHECK_EQ_INT(add(&s, f), in[k] ? 0 : 1);
			in[k] = 1;
		} else {
			CHECK_EQ_INT(del(&s, f), in[k] ? 1 : 0);
			in[k] = 0;
		}
	}
	int want = 0;
	for (int k = 0; k < N; k++) {
		want += in[k];
		snprintf(f, sizeof f, "t/%d/x", k);
		/* adding a member says "already there"; adding a non-member adds it: undo that */
		int r = add(&s, f);
		CHECK_EQ_INT(r, in[k] ? 0 : 1);
		if (r == 1)
			CHECK_EQ_INT(del(&s, f), 1);
	}
	CHECK_EQ_INT(s.n, want);
	int n = 0;
	mg_fset_clear(&s, count_one, &n);
	CHECK_EQ_INT(n, want);
	CHECK_NO_LEAKS();
}

/* Empty filters and filters that differ only after 8 bytes (the hash reads words). */
TEST(lengths)
{
	mg_fset s = { 0 };
	CHECK_EQ_INT(mg_fset_add(&s, (const uint8_t *)"", 0), 1);
	CHECK_EQ_INT(mg_fset_add(&s, (const uint8_t *)"", 0), 0);
	for (int i = 0; i < 100; i++) {
		char f[40];
		snprintf(f, sizeof f, "abcdefghijklmnop/%03d", i);
		CHECK_EQ_INT(add(&s, f), 1);
	}
	CHECK_EQ_INT(add(&s, "abcdefghijklmnop/050"), 0);
	CHECK_EQ_INT(add(&s, "abcdefghijklmnop/05"), 1);
	CHECK_EQ_INT(s.n, 102);
	mg_fset_clear(&s, NULL, NULL);
	CHECK_NO_LEAKS();
}
