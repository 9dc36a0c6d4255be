/* test/unit/test_broker_retain.c - the retained-message store: set/replace/delete, references,
 * wildcard matching with the $-rule, foreach with deletion, a seeded cross-check against
 * mg_topic_match, and readers in parallel with a writer. */
#include "t.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "broker/retain.h"
#include "proto/proto.h"

/* Values: counters of references held by the store. */
typedef struct val {
	atomic_int refs;
	int id;
} val;

static void ref(void *v) { atomic_fetch_add(&((val *)v)->refs, 1); }
static void unref(void *v) { atomic_fetch_sub(&((val *)v)->refs, 1); }

static int set(mg_retain *r, const char *topic, val *v)
{
	return mg_retain_set(r, (const uint8_t *)topic, strlen(topic), v);
}

/* Collects the topics a filter matches as "t1|t2|..." sorted, for comparisons. */
typedef struct hits {
	char *t[64];
	int n;
	int stop_at;
} hits;

static int collect(void *ctx, const uint8_t *topic, size_t tlen, void *v)
{
	hits *h = ctx;
	(void)v;
	if (h->n < 64)
		h->t[h->n++] = strndup((const char *)topic, tlen);
	return h->stop_at && h->n == h->stop_at ? 7 : 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted matches of filter, joined with '|'. Static buffer: one call per CHECK. */
static const char *matches(mg_retain *r, const char *filter)
{
	static char out[1024];
	hits h = { .n = 0 };
	int rc = mg_retain_match(r, (const uint8_t *)filter, strlen(filter), collect, &h);
	qsort(h.t, (size_t)h.n, sizeof h.t[0], cmp);
	out[0] = 0;
	for (int i = 0; i < h.n; i++) {
		if (i)
			strcat(out, "|");
		strcat(out, h.t[i]);
		free(h.t[i]);
	}
	if (rc)
		strcpy(out, "ERROR");
	return out;
}

TEST(set_replace_delete)
{
	val a = { 0, 1 }, b = { 0, 2 };
	mg_retain *r = mg_retain_new(ref, unref);
	REQUIRE(r);
	CHECK_EQ_INT(mg_retain_count(r), 0);
	CHECK_EQ_INT(set(r, "a/b", &a), 0);
	CHECK_EQ_INT(a.refs, 1);
	CHECK_EQ_INT(mg_retain_count(r), 1);
	CHECK_STR(matches(r, "a/b"), "a/b");
	/* replace: the new value is referenced, the old one dropped */
	CHECK_EQ_INT(set(r, "a/b", &b), 0);
	CHECK_EQ_INT(a.refs, 0);
	CHECK_EQ_INT(b.refs, 1);
	CHECK_EQ_INT(mg_retain_count(r), 1);
	/* the same value again keeps exactly one reference */
	CHECK_EQ_INT(set(r, "a/b", &b), 0);
	CHECK_EQ_INT(b.refs, 1);
	/* a prefix is a different topic */
	CHECK_EQ_INT(set(r, "a", &a), 0);
	CHECK_EQ_INT(mg_retain_count(r), 2);
	CHECK_EQ_INT(mg_retain_nodes(r), 2);
	CHECK_STR(matches(r, "a"), "a");
	/* delete */
	CHECK_EQ_INT(set(r, "a/b", NULL), 0);
	CHECK_EQ_INT(b.refs, 0);
	CHECK_EQ_INT(mg_retain_count(r), 1);
	CHECK_STR(matches(r, "a/b"), "");
	CHECK_STR(matches(r, "a"), "a");
	CHECK_EQ_INT(set(r, "x/y/z", NULL), 0); /* deleting nothing is fine */
	CHECK_EQ_INT(set(r, "a/b/c", NULL), 0);
	CHECK_EQ_INT(mg_retain_count(r), 1);
	CHECK_EQ_INT(mg_retain_nodes(r), 1);
	/* free drops the rest */
	mg_retain_free(r);
	CHECK_NO_LEAKS();
	CHECK_EQ_INT(a.refs, 0);
}

TEST(wildcards)
{
	val v = { 0, 0 };
	mg_retain *r = mg_retain_new(ref, unref);
	REQUIRE(r);
	const char *topics[] = { "sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player2",
		                 "sport/tennis/player1/ranking", "sport/golf", "/finance", "finance", "a//b",
		                 "sport/", "$SYS/broker/uptime", "$SYS", "x/$y" };
	for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
		CHECK_EQ_INT(set(r, topics[i], &v), 0);
	CHECK_EQ_INT(v.refs, 13);
	CHECK_STR(matches(r, "sport/tennis/player1/#"), "sport/tennis/player1|sport/tennis/player1/ranking");
	CHECK_STR(matches(r, "sport/#"), "sport|sport/|sport/golf|sport/tennis|sport/tennis/player1|"
	                                 "sport/tennis/player1/ranking|sport/tennis/player2");
	CHECK_STR(matches(r, "sport/tennis/+"), "sport/tennis/player1|sport/tennis/player2");
	CHECK_STR(matches(r, "sport/+"), "sport/|sport/golf|sport/tennis");
	CHECK_STR(matches(r, "+"), "finance|sport");
	CHECK_STR(matches(r, "+/+"), "/finance|sport/|sport/golf|sport/tennis|x/$y");
	CHECK_STR(matches(r, "/+"), "/finance");
	CHECK_STR(matches(r, "a/+/b"), "a//b");
	CHECK_STR(matches(r, "+/tennis/#"), "sport/tennis|sport/tennis/player1|sport/tennis/player1/ranking|"
	                                    "sport/tennis/player2");
	/* [MQTT-4.7.2-1]: no '$' topics for leading wildcards */
	CHECK_STR(matches(r, "#"), "/finance|a//b|finance|sport|sport/|sport/golf|sport/tennis|"
	                           "sport/tennis/player1|sport/tennis/player1/ranking|sport/tennis/player2|x/$y");
	CHECK_STR(matches(r, "+/broker/uptime"), "");
	CHECK_STR(matches(r, "$SYS/#"), "$SYS|$SYS/broker/uptime");
	CHECK_STR(matches(r, "$SYS/+/uptime"), "$SYS/broker/uptime");
	CHECK_STR(matches(r, "nothing/#"), "");
	CHECK_STR(matches(r, "sport/tennis/player1/ranking/+"), "");
	mg_retain_free(r);
	CHECK_NO_LEAKS();
	CHECK_EQ_INT(v.refs, 0);
}

TEST(match_stops_early)
{
	val v = { 0, 0 };
	mg_retain *r = mg_retain_new(ref, unref);
	REQUIRE(r);
	char t[32];
	for (int i = 0; i < 50; i++) {
		snprintf(t, sizeof t, "m/%d", i);
		set(r, t, &v);
	}
	hits h = { .n = 0, .stop_at = 3 };
	CHECK_EQ_INT(mg_retain_match(r, (const uint8_t *)"m/#", 3, collect, &h), 7);
	CHECK_EQ_INT(h.n, 3);
	for (int i = 0; i < h.n; i++)
		free(h.t[i]);
	mg_retain_free(r);
	CHECK_NO_LEAKS();
	CHECK_EQ_INT(v.refs, 0);
}

static int count_cb(void *ctx, const uint8_t *topic, size_t tlen, void *v)
{
	(void)topic;
	(void)tlen;
	(void)v;
	(*(long *)ctx)++;
	return 0;
}

static int drop_even(void *ctx, const uint8_t *topic, size_t tlen, void *v)
{
	(*(int *)ctx)++;
	(void)topic;
	(void)tlen;
	return ((val *)v)->id % 2 == 0;
}

/* Removing everything frees every node: with SAN=asan the leak check proves it. */
TEST(foreach_deletes_and_prunes)
{
	enum { N = 2000 };
	static val vs[N];
	mg_retain *r = mg_retain_new(ref, unref);
	REQUIRE(r);
	char t[64];
	for (int i = 0; i < N; i++) {
		vs[i].id = i;
		atomic_store(&vs[i].refs, 0);
		snprintf(t, sizeof t, "f/%d/%d/x", i % 13, i);
		CHECK_EQ_INT(set(r, t, &vs[i]), 0);
		if (i % 5 == 0) { /* values on inner nodes too */
			snprintf(t, sizeof t, "f/%d/%d", i % 13, i);
			CHECK_EQ_INT(set(r, t, &vs[i]), 0);
		}
	}
	CHECK_EQ_INT(mg_retain_count(r), N + N / 5);
	int seen = 0;
	mg_retain_foreach(r, drop_even, &seen);
	CHECK_EQ_INT(seen, N + N / 5);
	CHECK_EQ_INT(mg_retain_count(r), N / 2 + N / 10);
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(vs[i].refs, i % 2 ? (i % 5 == 0 ? 2 : 1) : 0);
	long n = 0, want = 0;
	for (int i = 1; i < N; i += 2)
		want += i % 13 == 0;
	CHECK_EQ_INT(mg_retain_match(r, (const uint8_t *)"f/0/+/x", 7, count_cb, &n), 0);
	CHECK_EQ_INT(n, want);
	/* drop the rest by deleting each: the count returns to 0 */
	for (int i = 1; i < N; i += 2) {
		snprintf(t, sizeof t, "f/%d/%d/x", i % 13, i);
		CHECK_EQ_INT(set(r, t, NULL), 0);
		if (i % 5 == 0) {
			snprintf(t, sizeof t, "f/%d/%d", i % 13, i);
			CHECK_EQ_INT(set(r, t, NULL), 0);
		}
	}
	CHECK_EQ_INT(mg_retain_count(r), 0);
	CHECK_EQ_INT(mg_retain_nodes(r), 0);
	for (int i = 0; i < N; i++)
		CHECK_EQ_INT(vs[i].refs, 0);
	CHECK_STR(matches(r, "#"), "");
	mg_retain_free(r);
	CHECK_NO_LEAKS();
}

static int drop_all(void *ctx, const uint8_t *topic, size_t tlen, void *v)
{
	(void)ctx;
	(void)topic;
	(void)tlen;
	(void)v;
	return 1;
}

/* foreach deleting every entry leaves an empty tree: the emptied nodes are pruned. */
TEST(foreach_delete_all)
{
	val v = { 0, 0 };
	mg_retain *r = mg_retain_new(ref, unref);
	REQUIRE(r);
	char t[32];
	for (int i = 0; i < 500; i++) {
		snprintf(t, sizeof t, "d/%d/%d", i % 10, i);
		set(r, t, &v);
		if (i % 10 == 0) {
			snprintf(t, sizeof t, "d/%d", i % 10);
			set(r, t, &v); /* inner nodes with values, and children */
		}
	}
	CHECK_EQ_INT(mg_retain_nodes(r), 1 + 10 + 500);
	mg_retain_foreach(r, drop_all, NULL);
	CHECK_EQ_INT(mg_retain_count(r), 0);
	CHECK_EQ_INT(mg_retain_nodes(r), 0);
	CHECK_EQ_INT(v.refs, 0);
	mg_retain_free(r);
	CHECK_NO_LEAKS();
}

static int stop_second(void *ctx, const uint8_t *topic, size_t tlen, void *v)
{
	(void)topic;
	(void)tlen;
	(void)v;
	return ++*(int *)ctx == 2 ? 5 : 0;
}

TEST(foreach_stops)
{
	val v = { 0, 1 };
	mg_retain *r = mg_retain_new(NULL, NULL); /* no refcounting at all is allowed */
	REQUIRE(r);
	set(r, "a", &v);
	set(r, "b", &v);
	set(r, "c", &v);
	int n = 0;
	mg_retain_foreach(r, stop_second, &n);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(mg_retain_count(r), 3);
	mg_retain_free(r);
	CHECK_NO_LEAKS();
}

/* "#" over 100,000 topics is a walk of the tree, each visited once. */
TEST(many_topics)
{
	val v = { 0, 0 };
	mg_retain *r = mg_retain_new(ref, unref);
	REQUIRE(r);
	char t[64];
	for (int i = 0; i < 100000; i++) {
		snprintf(t, sizeof t, "dev/%d/sensor/%d", i % 1000, i);
		REQUIRE(set(r, t, &v) == 0);
	}
	CHECK_EQ_INT(mg_retain_count(r), 100000);
	long n = 0;
	CHECK_EQ_INT(mg_retain_match(r, (const uint8_t *)"#", 1, count_cb, &n), 0);
	CHECK_EQ_INT(n, 100000);
	n = 0;
	CHECK_EQ_INT(mg_retain_match(r, (const uint8_t *)"dev/7/sensor/+", 14, count_cb, &n), 0);
	CHECK_EQ_INT(n, 100);
	n = 0;
	CHECK_EQ_INT(mg_retain_match(r, (const uint8_t *)"dev/+/sensor/99999", 18, count_cb, &n), 0);
	CHECK_EQ_INT(n, 1);
	mg_retain_free(r);
	CHECK_NO_LEAKS();
	CHECK_EQ_INT(v.refs, 0);
}

TEST(deep_topic)
{
	enum { L = 30000 };
	val v = { 0, 0 };
	mg_retain *r = mg_retain_new(ref, unref);
	REQUIRE(r);
	char *t = malloc(2 * L);
	REQUIRE(t);
	for (int i = 0; i < L; i++) {
		t[2 * i] = 'a';
		t[2 * i + 1] = '/';
	}
	t[2 * L - 1] = 0;
	CHECK_EQ_INT(mg_retain_set(r, (const uint8_t *)t, strlen(t), &v), 0);
	long n = 0;
	CHECK_EQ_INT(mg_retain_match(r, (const uint8_t *)"#", 1, count_cb, &n), 0);
	CHECK_EQ_INT(n, 1);
	n = 0;
	t[2 * L - 2] = '+';
	CHECK_EQ_INT(mg_retain_match(r, (const uint8_t *)t, strlen(t), count_cb, &n), 0);
	CHECK_EQ_INT(n, 1);
	free(t);
	mg_retain_free(r);
	CHECK_NO_LEAKS();
	CHECK_EQ_INT(v.refs, 0);
}

/* ---- seeded cross-check against mg_topic_match ---- */

static size_t rand_topic(char *out, int wild)
{
	static const char *const lv[] = { "a", "b", "c", "" };
	int n = 1 + rand() % 5;
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		int x = rand() % 10;
		const char *l = wild && x < 2 ? "+" : wild && i == n - 1 && x < 4 ? "#" : i == 0 && x == 9 ? "$s" : lv[rand() % 4];
		if (i)
			out[len++] = '/';
		len += (size_t)sprintf(out + len, "%s", l);
	}
	return len ? len : rand_topic(out, wild);
}

typedef struct xr {
	char t[64];
	size_t len;
	int live;
} xr;

static xr TOPICS[300];

static int mark_cb(void *ctx, const uint8_t *topic, size_t tlen, void *v)
{
	int *seen = ctx;
	xr *x = v;
	if (x->len != tlen || memcmp(x->t, topic, tlen) != 0)
		seen[0] = -1000000; /* the topic handed out is not the value's */
	seen[1 + (x - TOPICS)]++;
	return 0;
}

TEST(cross_check_random)
{
	enum { NT = 300, NF = 3000 };
	mg_retain *r = mg_retain_new(NULL, NULL);
	REQUIRE(r);
	srand(4242);
	int live = 0;
	for (int i = 0; i < NT; i++) {
		TOPICS[i].len = rand_topic(TOPICS[i].t, 0);
		TOPICS[i].live = 1;
		for (int j = 0; j < i; j++)
			if (TOPICS[j].live && TOPICS[j].len == TOPICS[i].len && !memcmp(TOPICS[j].t, TOPICS[i].t, TOPICS[i].len)) {
				TOPICS[j].live = 0; /* replaced */
				live--;
			}
		live++;
		REQUIRE(mg_retain_set(r, (const uint8_t *)TOPICS[i].t, TOPICS[i].len, &TOPICS[i]) == 0);
	}
	long total = 0;
	for (int phase = 0; phase < 2; phase++) {
		CHECK_EQ_INT(mg_retain_count(r), live);
		for (int k = 0; k < NF && !t_failed; k++) {
			char f[64];
			size_t fl = rand_topic(f, 1);
			static int seen[1 + NT];
			memset(seen, 0, sizeof seen);
			CHECK_EQ_INT(mg_retain_match(r, (const uint8_t *)f, fl, mark_cb, seen), 0);
			CHECK(seen[0] == 0);
			for (int i = 0; i < NT; i++) {
				int want = TOPICS[i].live && mg_topic_match((const uint8_t *)f, fl, (const uint8_t *)TOPICS[i].t, TOPICS[i].len);
				total += want;
				if (seen[1 + i] != want) {
					t_fail(__FILE__, __LINE__, "filter %.*s topic %s: seen %d times, want %d", (int)fl, f,
					       TOPICS[i].t, seen[1 + i], want);
					break;
				}
			}
		}
		for (int i = 0; i < NT; i++)
			if (TOPICS[i].live && rand() % 2) {
				CHECK_EQ_INT(mg_retain_set(r, (const uint8_t *)TOPICS[i].t, TOPICS[i].len, NULL), 0);
				TOPICS[i].live = 0;
				live--;
			}
	}
	CHECK(total > NF);
	mg_retain_free(r);
	CHECK_NO_LEAKS();
}

/* ---- readers in parallel with a writer (SAN=tsan) ---- */

static mg_retain *stress_r;
static atomic_int stress_done;
static val stable = { 0, -1 };

static int check_cb(void *ctx, const uint8_t *topic, size_t tlen, void *v)
{
	long *c = ctx;
	if (v == &stable)
		c[0]++;
	else if (tlen < 2 || topic[0] != 'w')
		c[1]++;
	return 0;
}

static void *reader(void *arg)
{
	long *bad = arg, rounds = 0;
	while (!atomic_load(&stress_done) || rounds < 10) {
		long c[2] = { 0, 0 };
		if (mg_retain_match(stress_r, (const uint8_t *)"w/#", 3, check_cb, c) != 0 || c[0] != 1 || c[1] != 0)
			(*bad)++;
		rounds++;
	}
	return NULL;
}

TEST(threads_match_while_setting)
{
	enum { NR = 3, NV = 64 };
	static val vals[NV];
	stress_r = mg_retain_new(ref, unref);
	REQUIRE(stress_r);
	REQUIRE(set(stress_r, "w/stable", &stable) == 0);
	pthread_t th[NR];
	long bad[NR] = { 0 };
	for (int i = 0; i < NR; i++)
		REQUIRE(pthread_create(&th[i], NULL, reader, &bad[i]) == 0);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unsigned seed = 5;
	long ops = 0;
	char t[32];
	do {
		for (int k = 0; k < 200; k++, ops++) {
			int i = rand_r(&seed) % NV;
			snprintf(t, sizeof t, "w/%d/%d", i % 8, i);
			set(stress_r, t, rand_r(&seed) % 2 ? &vals[i] : NULL);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) < 1000000000L);
	atomic_store(&stress_done, 1);
	for (int i = 0; i < NR; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(bad[i], 0);
	}
	CHECK(ops > 1000);
	mg_retain_free(stress_r);
	CHECK_NO_LEAKS();
	CHECK_EQ_INT(stable.refs, 0);
	for (int i = 0; i < NV; i++)
		CHECK_EQ_INT(vals[i].refs, 0);
}
