/* test/unit/test_broker_subtree.c - the subscription tree: spec examples, merging, shared groups,
 * replace/remove/pruning, and a seeded cross-check against mg_topic_match. */
#include "t.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "broker/subtree.h"


/* Subscribers are opaque pointers: use addresses of this array. */
static char S[4096];
#define SUB(i) ((void *)&S[i])

static mg_subopts Q(uint8_t qos) { return (mg_subopts){ .qos = qos }; }

static int add(mg_subtree *t, const char *f, int who, uint8_t qos, uint32_t id)
{
	return mg_subtree_add(t, (const uint8_t *)f, strlen(f), SUB(who), Q(qos), id);
}

static int rm(mg_subtree *t, const char *f, int who)
{
	return mg_subtree_remove(t, (const uint8_t *)f, strlen(f), SUB(who));
}

static int match(mg_subtree *t, const char *topic, mg_matchset *s)
{
	return mg_subtree_match(t, (const uint8_t *)topic, strlen(topic), NULL, NULL, NULL, s);
}

/* Index of subscriber `who` among the non-shared entries of s, or -1. */
static int find(const mg_matchset *s, int who)
{
	for (size_t i = 0; i < s->n - s->n_shared; i++)
		if (s->m[i].subscriber == SUB(who))
			return (int)i;
	return -1;
}

/* Does the topic reach subscriber `who` (non-shared)? */
static int hits(mg_subtree *t, const char *topic, int who)
{
	mg_matchset s = { 0 };
	int n = match(t, topic, &s);
	int r = n >= 0 && find(&s, who) >= 0;
	mg_matchset_free(&s);
	return r;
}

TEST(exact_and_empty)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	mg_matchset s = { 0 };
	CHECK_EQ_INT(match(t, "a/b", &s), 0);
	CHECK_EQ_INT(add(t, "a/b", 1, 1, 0), 0);
	CHECK_EQ_INT(match(t, "a/b", &s), 1);
	CHECK(s.m[0].subscriber == SUB(1));
	CHECK_EQ_INT(s.m[0].qos, 1);
	CHECK_EQ_INT(s.m[0].n_ids, 0);
	CHECK_EQ_INT(s.n_shared, 0);
	CHECK_EQ_INT(match(t, "a", &s), 0);
	CHECK_EQ_INT(match(t, "a/b/c", &s), 0);
	CHECK_EQ_INT(match(t, "a/bb", &s), 0);
	CHECK_EQ_INT(match(t, "/a/b", &s), 0);
	/* empty levels are levels: "/" is two empty levels, "a//b" three */
	CHECK_EQ_INT(add(t, "/", 2, 0, 0), 0);
	CHECK_EQ_INT(add(t, "a//b", 3, 0, 0), 0);
	CHECK(hits(t, "/", 2));
	CHECK(!hits(t, "//", 2));
	CHECK(hits(t, "a//b", 3));
	CHECK(!hits(t, "a/b", 3));
	CHECK_EQ_INT(mg_subtree_count(t), 3);
	mg_matchset_free(&s);
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

/* MQTT 5.0 section 4.7.1.2: "sport/tennis/player1/#" */
TEST(spec_multi_level)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	add(t, "sport/tennis/player1/#", 1, 0, 0);
	CHECK(hits(t, "sport/tennis/player1", 1));
	CHECK(hits(t, "sport/tennis/player1/ranking", 1));
	CHECK(hits(t, "sport/tennis/player1/score/wimbledon", 1));
	CHECK(!hits(t, "sport/tennis/player2", 1));
	CHECK(!hits(t, "sport/tennis", 1));
	add(t, "sport/#", 2, 0, 0);
	CHECK(hits(t, "sport", 2)); /* "sport/#" matches "sport" */
	CHECK(hits(t, "sport/", 2));
	CHECK(hits(t, "sport/tennis/player1", 2));
	CHECK(!hits(t, "sports", 2));
	add(t, "#", 3, 0, 0);
	CHECK(hits(t, "sport", 3));
	CHECK(hits(t, "/", 3));
	CHECK(hits(t, "a/b/c/d/e/f/g", 3));
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

/* MQTT 5.0 section 4.7.1.3: '+' */
TEST(spec_single_level)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	add(t, "sport/tennis/+", 1, 0, 0);
	CHECK(hits(t, "sport/tennis/player1", 1));
	CHECK(hits(t, "sport/tennis/player2", 1));
	CHECK(!hits(t, "sport/tennis/player1/ranking", 1));
	CHECK(!hits(t, "sport/tennis", 1));
	CHECK(hits(t, "sport/tennis/", 1)); /* '+' matches an empty level */
	add(t, "sport/+", 2, 0, 0);
	CHECK(!hits(t, "sport", 2));
	CHECK(hits(t, "sport/", 2));
	add(t, "+", 3, 0, 0);
	CHECK(hits(t, "x", 3));
	CHECK(!hits(t, "/finance", 3));
	add(t, "+/+", 4, 0, 0);
	CHECK(hits(t, "/finance", 4));
	add(t, "/+", 5, 0, 0);
	CHECK(hits(t, "/finance", 5));
	CHECK(!hits(t, "finance", 5));
	add(t, "+/tennis/#", 6, 0, 0);
	CHECK(hits(t, "sport/tennis", 6));
	CHECK(hits(t, "sport/tennis/x/y", 6));
	CHECK(!hits(t, "sport/golf/x", 6));
	add(t, "+/#", 7, 0, 0);
	CHECK(hits(t, "a", 7)); /* '+' takes "a", '#' its parent level */
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

/* MQTT 5.0 section 4.7.2 [MQTT-4.7.2-1]: leading wildcards do not match "$..." topics. */
TEST(dollar_topics)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	add(t, "#", 1, 0, 0);
	add(t, "+/monitor/Clients", 2, 0, 0);
	add(t, "$SYS/#", 3, 0, 0);
	add(t, "$SYS/monitor/+", 4, 0, 0);
	add(t, "+", 5, 0, 0);
	add(t, "+/#", 6, 0, 0);
	const char *tp = "$SYS/monitor/Clients";
	CHECK(!hits(t, tp, 1));
	CHECK(!hits(t, tp, 2));
	CHECK(hits(t, tp, 3));
	CHECK(hits(t, tp, 4));
	CHECK(!hits(t, "$SYS", 5));
	CHECK(!hits(t, "$SYS", 6));
	CHECK(hits(t, "$SYS", 3));
	/* a '$' that is not first is an ordinary character */
	CHECK(hits(t, "a/$b", 1));
	CHECK(hits(t, "x/monitor/Clients", 2));
	CHECK(hits(t, "a/$SYS", 6));
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

/* MQTT 5.0 section 3.3.4: overlapping subscriptions give one message with the maximum QoS
 * and all subscription identifiers. */
TEST(overlap_merged)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	mg_matchset s = { 0 };
	add(t, "a/+", 1, 1, 5);
	add(t, "a/#", 1, 2, 7);
	add(t, "a/b", 1, 0, 0);
	add(t, "#", 1, 0, 9);
	add(t, "a/b", 2, 1, 3);
	add(t, "+/b", 2, 0, 0);
	CHECK_EQ_INT(match(t, "a/b", &s), 2);
	int i = find(&s, 1), j = find(&s, 2);
	REQUIRE(i >= 0 && j >= 0);
	CHECK_EQ_INT(s.m[i].qos, 2);
	CHECK_EQ_INT(s.m[i].n_ids, 3);
	uint32_t got = 0;
	for (int k = 0; k < s.m[i].n_ids; k++)
		got |= 1u << s.ids[s.m[i].ids_off + k];
	CHECK_EQ_INT(got, (1u << 5) | (1u << 7) | (1u << 9));
	CHECK_EQ_INT(s.m[j].qos, 1);
	CHECK_EQ_INT(s.m[j].n_ids, 1);
	CHECK_EQ_INT(s.ids[s.m[j].ids_off], 3);
	CHECK_EQ_INT(s.n_ids, 4);
	/* a topic only one of them reaches */
	CHECK_EQ_INT(match(t, "a/c", &s), 1);
	CHECK(s.m[0].subscriber == SUB(1));
	CHECK_EQ_INT(s.m[0].qos, 2);
	CHECK_EQ_INT(s.m[0].n_ids, 3);
	/* retain_as_published: set if any matching subscription has it */
	mg_subopts o = { .qos = 0, .retain_as_published = true };
	CHECK_EQ_INT(mg_subtree_add(t, (const uint8_t *)"+/c", 3, SUB(1), o, 0), 0);
	CHECK_EQ_INT(match(t, "a/c", &s), 1);
	CHECK(s.m[0].retain_as_published);
	CHECK_EQ_INT(match(t, "a/b", &s), 2);
	CHECK(!s.m[find(&s, 1)].retain_as_published);
	mg_matchset_free(&s);
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

/* [MQTT-3.8.3-3]: no_local: not sent back to the client that published it. */
TEST(no_local)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	mg_matchset s = { 0 };
	mg_subopts nl = { .qos = 1, .no_local = true };
	CHECK_EQ_INT(mg_subtree_add(t, (const uint8_t *)"a/b", 3, SUB(1), nl, 0), 0);
	/* skipped, but it matched: counted apart, so the publisher hears 0x00, not 0x10 */
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"a/b", 3, SUB(1), NULL, NULL, &s), 0);
	CHECK_EQ_INT(s.n_unsent, 1);
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"x/y", 3, SUB(1), NULL, NULL, &s), 0);
	CHECK_EQ_INT(s.n_unsent, 0);
	add(t, "a/b", 2, 0, 0);
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"a/b", 3, SUB(1), NULL, NULL, &s), 1);
	CHECK(s.m[0].subscriber == SUB(2));
	CHECK_EQ_INT(s.n_unsent, 1);
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"a/b", 3, SUB(2), NULL, NULL, &s), 2);
	CHECK_EQ_INT(s.n_unsent, 0);
	/* another subscription of the publisher without no_local still delivers */
	add(t, "a/#", 1, 0, 4);
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"a/b", 3, SUB(1), NULL, NULL, &s), 2);
	int i = find(&s, 1);
	REQUIRE(i >= 0);
	CHECK_EQ_INT(s.m[i].qos, 0);
	CHECK_EQ_INT(s.m[i].n_ids, 1);
	/* replacing the subscription without no_local delivers to the publisher again */
	CHECK_EQ_INT(rm(t, "a/#", 1), 0);
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"a/b", 3, SUB(1), NULL, NULL, &s), 1);
	CHECK_EQ_INT(add(t, "a/b", 1, 1, 0), 1);
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"a/b", 3, SUB(1), NULL, NULL, &s), 2);
	CHECK_EQ_INT(mg_subtree_add(t, (const uint8_t *)"a/b", 3, SUB(1), nl, 0), 1);
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"a/b", 3, SUB(1), NULL, NULL, &s), 1);
	/* with many subscribers on the node (its index), no_local still applies */
	for (int k = 10; k < 60; k++)
		add(t, "a/b", k, 0, 0);
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"a/b", 3, SUB(1), NULL, NULL, &s), 51);
	CHECK(find(&s, 1) < 0);
	CHECK_EQ_INT(rm(t, "a/b", 1), 0);
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"a/b", 3, SUB(1), NULL, NULL, &s), 51);
	/* turning no_local on by replacing a subscription that had it off */
	CHECK_EQ_INT(add(t, "n/l", 7, 0, 0), 0);
	CHECK_EQ_INT(mg_subtree_add(t, (const uint8_t *)"n/l", 3, SUB(7), nl, 0), 1);
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"n/l", 3, SUB(7), NULL, NULL, &s), 0);
	mg_matchset_free(&s);
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

TEST(replace_and_remove)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	mg_matchset s = { 0 };
	CHECK_EQ_INT(add(t, "a/+/c", 1, 0, 0), 0);
	CHECK_EQ_INT(mg_subtree_nodes(t), 3);
	CHECK_EQ_INT(add(t, "a/+/c", 1, 2, 11), 1);
	CHECK_EQ_INT(mg_subtree_nodes(t), 3);
	CHECK_EQ_INT(mg_subtree_count(t), 1);
	CHECK_EQ_INT(match(t, "a/b/c", &s), 1);
	CHECK_EQ_INT(s.m[0].qos, 2);
	CHECK_EQ_INT(s.m[0].n_ids, 1);
	CHECK_EQ_INT(s.ids[s.m[0].ids_off], 11);
	CHECK_EQ_INT(add(t, "a/+/c", 2, 1, 0), 0);
	CHECK_EQ_INT(add(t, "$share/g/a/+/c", 1, 1, 0), 0); /* a different key */
	CHECK_EQ_INT(add(t, "$share/h/a/+/c", 1, 1, 0), 0);
	CHECK_EQ_INT(add(t, "$share/g/a/+/c", 1, 0, 0), 1);
	CHECK_EQ_INT(mg_subtree_count(t), 4);
	CHECK_EQ_INT(rm(t, "a/+/c", 3), -ENOENT);
	CHECK_EQ_INT(rm(t, "a/+", 1), -ENOENT);
	CHECK_EQ_INT(rm(t, "a/+/c/d", 1), -ENOENT);
	CHECK_EQ_INT(rm(t, "$share/x/a/+/c", 1), -ENOENT);
	CHECK_EQ_INT(rm(t, "a/+/c", 1), 0);
	CHECK_EQ_INT(rm(t, "a/+/c", 1), -ENOENT);
	CHECK_EQ_INT(match(t, "a/b/c", &s), 3);
	CHECK_EQ_INT(s.n_shared, 2);
	CHECK(find(&s, 2) >= 0);
	CHECK_EQ_INT(rm(t, "$share/g/a/+/c", 1), 0);
	CHECK_EQ_INT(rm(t, "$share/h/a/+/c", 1), 0);
	CHECK_EQ_INT(rm(t, "a/+/c", 2), 0);
	CHECK_EQ_INT(mg_subtree_count(t), 0);
	CHECK_EQ_INT(mg_subtree_nodes(t), 0);
	CHECK_EQ_INT(match(t, "a/b/c", &s), 0);
	/* malformed $share filters are refused, not taken literally */
	CHECK_EQ_INT(add(t, "$share/g", 1, 0, 0), -EINVAL);
	CHECK_EQ_INT(add(t, "$share//a", 1, 0, 0), -EINVAL);
	mg_matchset_free(&s);
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

static int count_cb(void *ctx, const uint8_t *f, size_t flen, const mg_sub_entry *e)
{
	(void)f;
	(void)flen;
	(void)e;
	(*(int *)ctx)++;
	return 0;
}

/* After removing everything the tree is back to an empty root: foreach sees nothing, and
 * ASan's leak check (SAN=asan) proves the pruned nodes were freed. */
TEST(prune_to_empty)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	char f[64];
	for (int i = 0; i < 300; i++) {
		snprintf(f, sizeof f, "p/%d/+/x%d/#", i % 17, i);
		CHECK_EQ_INT(add(t, f, i % 50, 1, 0), 0);
		snprintf(f, sizeof f, "$share/g%d/p/%d", i % 3, i % 7);
		CHECK(add(t, f, i, 0, 0) >= 0);
	}
	size_t c = mg_subtree_count(t);
	CHECK_EQ_INT(c, 300 + 300);
	int seen = 0;
	CHECK_EQ_INT(mg_subtree_foreach(t, count_cb, &seen), 0);
	CHECK_EQ_INT(seen, 600);
	for (int i = 299; i >= 0; i--) {
		snprintf(f, sizeof f, "p/%d/+/x%d/#", i % 17, i);
		CHECK_EQ_INT(rm(t, f, i % 50), 0);
		snprintf(f, sizeof f, "$share/g%d/p/%d", i % 3, i % 7);
		CHECK_EQ_INT(rm(t, f, i), 0);
	}
	CHECK_EQ_INT(mg_subtree_count(t), 0);
	CHECK_EQ_INT(mg_subtree_nodes(t), 0);
	seen = 0;
	mg_subtree_foreach(t, count_cb, &seen);
	CHECK_EQ_INT(seen, 0);
	/* the tree still works after being emptied */
	CHECK_EQ_INT(add(t, "p/1", 1, 0, 0), 0);
	CHECK(hits(t, "p/1", 1));
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

typedef struct fe {
	char buf[4096];
	size_t len;
} fe;

static int list_cb(void *ctx, const uint8_t *f, size_t flen, const mg_sub_entry *e)
{
	fe *x = ctx;
	x->len += (size_t)snprintf(x->buf + x->len, sizeof x->buf - x->len, "%.*s=%d:%u:%u;", (int)flen,
	                           (const char *)f, (int)((char *)e->subscriber - S), e->opts.qos, e->sub_id);
	return 0;
}

static int stop_cb(void *ctx, const uint8_t *f, size_t flen, const mg_sub_entry *e)
{
	(void)f;
	(void)flen;
	(void)e;
	return ++*(int *)ctx == 2 ? 42 : 0;
}

TEST(foreach_filters)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	add(t, "a/b", 1, 1, 2);
	add(t, "$share/grp/+/x/#", 3, 2, 0);
	add(t, "/", 4, 0, 0);
	fe x = { .len = 0 };
	CHECK_EQ_INT(mg_subtree_foreach(t, list_cb, &x), 0);
	CHECK(strstr(x.buf, "a/b=1:1:2;") != NULL);
	CHECK(strstr(x.buf, "$share/grp/+/x/#=3:2:0;") != NULL);
	CHECK(strstr(x.buf, "/=4:0:0;") != NULL);
	CHECK_EQ_INT(x.len, strlen("a/b=1:1:2;") + strlen("$share/grp/+/x/#=3:2:0;") + strlen("/=4:0:0;"));
	int n = 0;
	CHECK_EQ_INT(mg_subtree_foreach(t, stop_cb, &n), 42);
	CHECK_EQ_INT(n, 2);
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

/* ---- shared subscriptions (MQTT 5.0 section 4.8.2) ---- */

static bool not_banned(void *sub, void *ctx)
{
	return sub != ctx;
}

static bool nobody(void *sub, void *ctx)
{
	(void)sub;
	(void)ctx;
	return false;
}

TEST(shared_round_robin)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	mg_matchset s = { 0 };
	add(t, "$share/g/a/+", 1, 1, 0);
	add(t, "$share/g/a/+", 2, 1, 0);
	add(t, "$share/g/a/+", 3, 2, 8);
	int got[4] = { 0 };
	int prev = -1;
	for (int i = 0; i < 30; i++) {
		CHECK_EQ_INT(match(t, "a/x", &s), 1);
		CHECK_EQ_INT(s.n_shared, 1);
		int who = (int)((char *)s.m[0].subscriber - S);
		REQUIRE(who >= 1 && who <= 3);
		CHECK(who != prev); /* round robin: never the same one twice in a row */
		prev = who;
		got[who]++;
		if (who == 3) {
			CHECK_EQ_INT(s.m[0].qos, 2);
			CHECK_EQ_INT(s.m[0].n_ids, 1);
			CHECK_EQ_INT(s.ids[s.m[0].ids_off], 8);
		}
	}
	CHECK_EQ_INT(got[1], 10);
	CHECK_EQ_INT(got[2], 10);
	CHECK_EQ_INT(got[3], 10);

	/* an ineligible member (offline, queue full) is skipped; the others share its load */
	memset(got, 0, sizeof got);
	for (int i = 0; i < 30; i++) {
		CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"a/y", 3, NULL, not_banned, SUB(2), &s), 1);
		got[(char *)s.m[0].subscriber - S]++;
	}
	CHECK_EQ_INT(got[2], 0);
	CHECK_EQ_INT(got[1], 15); /* evenly: the cursor moves past the one chosen */
	CHECK_EQ_INT(got[3], 15);
	/* nobody eligible: nobody gets it */
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"a/y", 3, NULL, nobody, NULL, &s), 0);
	CHECK_EQ_INT(s.n_shared, 0);
	CHECK_EQ_INT(s.n_unsent, 1); /* the group matched: not "no matching subscribers" */

	/* two groups on one filter, and one group name on two filters: one pick per (group, filter) */
	add(t, "$share/h/a/+", 4, 0, 0);
	add(t, "$share/g/a/#", 5, 0, 0);
	CHECK_EQ_INT(match(t, "a/x", &s), 3);
	CHECK_EQ_INT(s.n_shared, 3);
	mg_matchset_free(&s);
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

TEST(shared_and_plain_both_delivered)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	mg_matchset s = { 0 };
	add(t, "$share/g/t", 1, 1, 4);
	add(t, "t", 1, 0, 5);
	add(t, "#", 1, 2, 6);
	CHECK_EQ_INT(match(t, "t", &s), 2);
	CHECK_EQ_INT(s.n_shared, 1);
	/* the non-shared ones merged, the shared one apart */
	CHECK(s.m[0].subscriber == SUB(1));
	CHECK_EQ_INT(s.m[0].qos, 2);
	CHECK_EQ_INT(s.m[0].n_ids, 2);
	CHECK(s.m[1].subscriber == SUB(1));
	CHECK_EQ_INT(s.m[1].qos, 1);
	CHECK_EQ_INT(s.m[1].n_ids, 1);
	CHECK_EQ_INT(s.ids[s.m[1].ids_off], 4);
	/* no_local does not apply to shared subscriptions (a protocol error there anyway) */
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"t", 1, SUB(1), NULL, NULL, &s), 2);
	/* '$' topics and a shared "#" */
	add(t, "$share/g/#", 2, 0, 0);
	CHECK_EQ_INT(match(t, "$SYS/x", &s), 0);
	mg_matchset_free(&s);
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

/* mg_subtree_match_group: one member of the one (group, filter) named, round-robin like a
 * match, never of another group on the filter, nor a plain subscriber (cluster.h). */
TEST(match_one_group)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	mg_matchset s = { 0 };
	add(t, "$share/g/a/+", 1, 1, 0);
	add(t, "$share/g/a/+", 2, 2, 7);
	add(t, "$share/h/a/+", 3, 0, 0);
	add(t, "$share/g/a/b", 4, 0, 0);
	add(t, "a/+", 5, 0, 0);
	const char *g = "$share/g/a/+";
	int got[6] = { 0 };
	for (int i = 0; i < 10; i++) {
		CHECK_EQ_INT(mg_subtree_match_group(t, (const uint8_t *)g, strlen(g), NULL, NULL, &s), 1);
		CHECK_EQ_INT(s.n_shared, 1);
		int who = (int)((char *)s.m[0].subscriber - S);
		REQUIRE(who >= 1 && who <= 5);
		got[who]++;
		if (who == 2) {
			CHECK_EQ_INT(s.m[0].qos, 2);
			CHECK_EQ_INT(s.m[0].n_ids, 1);
			CHECK_EQ_INT(s.ids[s.m[0].ids_off], 7);
		}
	}
	CHECK_EQ_INT(got[1], 5);
	CHECK_EQ_INT(got[2], 5);
	/* ineligible members skipped; nobody eligible: none, counted unsent */
	for (int i = 0; i < 4; i++) {
		CHECK_EQ_INT(mg_subtree_match_group(t, (const uint8_t *)g, strlen(g), not_banned, SUB(1), &s), 1);
		CHECK(s.m[0].subscriber == SUB(2));
	}
	CHECK_EQ_INT(mg_subtree_match_group(t, (const uint8_t *)g, strlen(g), nobody, NULL, &s), 0);
	CHECK_EQ_INT(s.n_unsent, 1);
	/* no such group, no such filter, not a shared filter */
	CHECK_EQ_INT(mg_subtree_match_group(t, (const uint8_t *)"$share/x/a/+", 12, NULL, NULL, &s), 0);
	CHECK_EQ_INT(mg_subtree_match_group(t, (const uint8_t *)"$share/g/a/c", 12, NULL, NULL, &s), 0);
	CHECK_EQ_INT(mg_subtree_match_group(t, (const uint8_t *)"a/+", 3, NULL, NULL, &s), -EINVAL);
	rm(t, "$share/h/a/+", 3);
	CHECK_EQ_INT(mg_subtree_match_group(t, (const uint8_t *)"$share/h/a/+", 12, NULL, NULL, &s), 0);
	mg_matchset_free(&s);
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

/* Many subscribers on one node (its index by subscriber) and many children on one node
 * (the hash table), added and removed in an order that moves entries around. */
TEST(big_nodes)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	mg_matchset s = { 0 };
	enum { N = 1000 };
	static char present[N];
	memset(present, 0, sizeof present);
	char f[32];
	srand(7);
	for (int i = 0; i < N; i++) {
		CHECK_EQ_INT(add(t, "fan/out", i, (uint8_t)(i % 3), (uint32_t)i + 1), 0);
		present[i] = 1;
		snprintf(f, sizeof f, "kids/%d", i);
		CHECK_EQ_INT(add(t, f, i, 0, 0), 0);
	}
	CHECK_EQ_INT(add(t, "fan/out", 500, 2, 501), 1);
	for (int round = 0; round < 3; round++) {
		for (int k = 0; k < N / 2; k++) {
			int i = rand() % N;
			snprintf(f, sizeof f, "kids/%d", i);
			if (present[i]) {
				CHECK_EQ_INT(rm(t, "fan/out", i), 0);
				CHECK_EQ_INT(rm(t, f, i), 0);
			} else {
				CHECK_EQ_INT(add(t, "fan/out", i, (uint8_t)(i % 3), (uint32_t)i + 1), 0);
				CHECK_EQ_INT(add(t, f, i, 0, 0), 0);
			}
			present[i] ^= 1;
		}
		int want = 0;
		for (int i = 0; i < N; i++)
			want += present[i];
		CHECK_EQ_INT(mg_subtree_count(t), 2 * want);
		CHECK_EQ_INT(match(t, "fan/out", &s), want);
		static char seen[N];
		memset(seen, 0, sizeof seen);
		for (size_t j = 0; j < s.n; j++) {
			int who = (int)((char *)s.m[j].subscriber - S);
			REQUIRE(who >= 0 && who < N && present[who] && !seen[who]);
			seen[who] = 1;
			CHECK_EQ_INT(s.m[j].qos, who == 500 ? 2 : who % 3);
			REQUIRE(s.m[j].n_ids == 1);
			CHECK_EQ_INT(s.ids[s.m[j].ids_off], who + 1);
		}
		for (int i = 0; i < N; i++) {
			snprintf(f, sizeof f, "kids/%d", i);
			int n = match(t, f, &s);
			CHECK_EQ_INT(n, present[i]);
			if (n == 1)
				CHECK(s.m[0].subscriber == SUB(i));
		}
	}
	mg_matchset_free(&s);
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

/* One node's children grow into a hash table and shrink back, removed in random order
 * (backward-shift deletion), every remaining child findable after every step. */
TEST(kids_grow_shrink)
{
	enum { K = 100 };
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	mg_matchset s = { 0 };
	char on[K] = { 0 }, f[16];
	unsigned seed = 3;
	for (int step = 0; step < 1500 && !t_failed; step++) {
		int i = rand_r(&seed) % K;
		/* mostly adds in the first third, mostly removes in the last */
		int want_on = (rand_r(&seed) % 3) < (step < 500 ? 2 : step < 1000 ? 1 : 0) + (step < 1000);
		snprintf(f, sizeof f, "k/%d", i);
		if (want_on && !on[i])
			CHECK_EQ_INT(add(t, f, i, 0, 0), 0);
		else if (!want_on && on[i])
			CHECK_EQ_INT(rm(t, f, i), 0);
		on[i] = (char)want_on;
		for (int j = 0; j < K; j++) {
			snprintf(f, sizeof f, "k/%d", j);
			if (match(t, f, &s) != on[j]) {
				t_fail(__FILE__, __LINE__, "step %d: k/%d should %smatch", step, j, on[j] ? "" : "not ");
				break;
			}
		}
	}
	for (int j = 0; j < K; j++)
		if (on[j]) {
			snprintf(f, sizeof f, "k/%d", j);
			CHECK_EQ_INT(rm(t, f, j), 0);
		}
	CHECK_EQ_INT(mg_subtree_count(t), 0);
	CHECK_EQ_INT(mg_subtree_nodes(t), 0);
	mg_matchset_free(&s);
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

/* A deep filter and topic: no recursion, so no stack overflow, and teardown is iterative. */
TEST(deep_levels)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	enum { L = 30000 };
	char *f = malloc(2 * L);
	REQUIRE(f);
	for (int i = 0; i < L; i++) {
		f[2 * i] = (i % 3 == 0) ? '+' : 'a';
		f[2 * i + 1] = '/';
	}
	f[2 * L - 1] = 0;
	CHECK_EQ_INT(mg_subtree_add(t, (const uint8_t *)f, strlen(f), SUB(1), Q(1), 0), 0);
	for (int i = 0; i < L; i++)
		f[2 * i] = 'a';
	mg_matchset s = { 0 };
	CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)f, strlen(f), NULL, NULL, NULL, &s), 1);
	mg_matchset_free(&s);
	free(f);
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

/* ---- seeded cross-check against mg_topic_match ---- */

static const char *const LV[] = { "a", "b", "c", "", "$s" };

static size_t rand_topic(char *out, int allow_wild)
{
	int n = 1 + rand() % 5;
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		const char *l;
		int r = rand() % 10;
		if (allow_wild && r < 2)
			l = "+";
		else if (allow_wild && i == n - 1 && r < 4)
			l = "#";
		else if (i == 0 && r == 9)
			l = "$s";
		else
			l = LV[rand() % 4];
		if (i)
			out[len++] = '/';
		len += (size_t)sprintf(out + len, "%s", l);
	}
	return len ? len : rand_topic(out, allow_wild); /* "" is neither a topic nor a filter */
}

typedef struct xsub {
	char f[80];     /* as added: "$share/gN/" + filter for a shared one */
	size_t flen;
	size_t inner;   /* offset of the filter proper in f */
	int who;
	uint8_t qos;
	uint32_t id;
	bool live;
} xsub;

/* Random subscriptions (about one in five shared, in one of three groups) against random
 * topics; the expected result is computed with mg_topic_match, subscription by subscription. */
static void cross_check(bool one_thread)
{
	enum { NS = 400, NW = 25, NT = 3000 };
	static xsub subs[NS];
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	mg_subtree_one_thread(t, one_thread);
	mg_matchset s = { 0 };
	srand(12345);
	int live = 0;
	long total = 0, overlapped = 0, shared_hits = 0;
	for (int i = 0; i < NS; i++) {
		xsub *x = &subs[i];
		x->inner = rand() % 5 == 0 ? (size_t)sprintf(x->f, "$share/g%d/", rand() % 3) : 0;
		x->flen = x->inner + rand_topic(x->f + x->inner, 1);
		x->who = rand() % NW;
		x->qos = (uint8_t)(rand() % 3);
		x->id = (rand() % 3) ? (uint32_t)(i + 1) : 0;
		x->live = true;
		/* a duplicate (who, group, filter) replaces the earlier one */
		int replaced = 0;
		for (int j = 0; j < i; j++)
			if (subs[j].live && subs[j].who == x->who && subs[j].flen == x->flen &&
			    memcmp(subs[j].f, x->f, x->flen) == 0) {
				subs[j].live = false;
				live--;
				replaced = 1;
			}
		CHECK_EQ_INT(mg_subtree_add(t, (const uint8_t *)x->f, x->flen, SUB(x->who), Q(x->qos), x->id), replaced);
		live++;
	}
	for (int phase = 0; phase < 2; phase++) {
		CHECK_EQ_INT(mg_subtree_count(t), live);
		for (int k = 0; k < NT && !t_failed; k++) {
			char tp[64];
			size_t tl = rand_topic(tp, 0);
			int n = mg_subtree_match(t, (const uint8_t *)tp, tl, NULL, NULL, NULL, &s);
			REQUIRE(n >= 0);
			int wq[NW], wn[NW];
			uint64_t wid[NW];
			bool member[NW];
			memset(wq, -1, sizeof wq);
			memset(wn, 0, sizeof wn);
			memset(wid, 0, sizeof wid);
			memset(member, 0, sizeof member);
			int want = 0, want_shared = 0;
			for (int i = 0; i < NS; i++) {
				xsub *x = &subs[i];
				if (!x->live || !mg_topic_match((const uint8_t *)x->f + x->inner, x->flen - x->inner,
				                                (const uint8_t *)tp, tl))
					continue;
				if (x->inner) {
					/* one pick per distinct (group, filter): count each key once */
					int first = 1;
					for (int j = 0; j < i && first; j++)
						first = !(subs[j].live && subs[j].flen == x->flen && !memcmp(subs[j].f, x->f, x->flen));
					want_shared += first;
					member[x->who] = true;
					continue;
				}
				if (wq[x->who] < 0)
					want++;
				else
					overlapped++;
				if (x->qos > wq[x->who])
					wq[x->who] = x->qos;
				if (x->id) {
					wn[x->who]++;
					wid[x->who] += (uint64_t)x->id * x->id; /* a sum of squares as a multiset check */
				}
			}
			total += n;
			shared_hits += want_shared;
			if (n != want + want_shared || (int)s.n_shared != want_shared) {
				t_fail(__FILE__, __LINE__, "topic %s: %d entries (%d shared), expected %d (%d shared)", tp, n,
				       (int)s.n_shared, want + want_shared, want_shared);
				break;
			}
			for (int j = 0; j < n - want_shared; j++) {
				int who = (int)((char *)s.m[j].subscriber - S);
				REQUIRE(who >= 0 && who < NW && wq[who] >= 0);
				CHECK_EQ_INT(s.m[j].qos, wq[who]);
				CHECK_EQ_INT(s.m[j].n_ids, wn[who]);
				uint64_t sum = 0;
				for (int q = 0; q < s.m[j].n_ids; q++)
					sum += (uint64_t)s.ids[s.m[j].ids_off + q] * s.ids[s.m[j].ids_off + q];
				CHECK_EQ_INT(sum, wid[who]);
				wq[who] = -1; /* seen: a second entry for it fails above */
			}
			size_t ids = 0;
			for (int j = n - want_shared; j < n; j++) {
				int who = (int)((char *)s.m[j].subscriber - S);
				REQUIRE(who >= 0 && who < NW && member[who]);
			}
			for (int j = 0; j < n; j++)
				ids += s.m[j].n_ids;
			CHECK_EQ_INT(s.n_ids, ids); /* the ids are packed: no holes */
		}
		/* remove about half, then check again */
		for (int i = 0; i < NS; i++) {
			if (!subs[i].live || rand() % 2)
				continue;
			CHECK_EQ_INT(mg_subtree_remove(t, (const uint8_t *)subs[i].f, subs[i].flen, SUB(subs[i].who)), 0);
			subs[i].live = false;
			live--;
		}
	}
	/* the random mix must have exercised matching, merging and shared groups */
	CHECK(total > NT);
	CHECK(overlapped > NT / 10);
	CHECK(shared_hits > NT / 10);
	mg_matchset_free(&s);
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

TEST(cross_check_random) { cross_check(false); }

/* The tree of a broker with one worker takes no locks (mg_subtree_one_thread): the same
 * answers, and the cache still follows every change (the generation moves without them). */
TEST(cross_check_random_one_thread) { cross_check(true); }

/* The topic cache (exact topic -> matched nodes, per matchset) must give what a walk gives
 * after every kind of change: a new node, a pruned node (ASan sees a stale pointer), changed
 * options and identifiers, No Local, shared groups' round-robin, another tree. */
static void topic_cache_check(bool one_thread)
{
	mg_subtree *t = mg_subtree_new();
	REQUIRE(t);
	mg_subtree_one_thread(t, one_thread);
	mg_matchset s = { 0 };
	CHECK_EQ_INT(add(t, "a/b", 1, 0, 0), 0);
	CHECK_EQ_INT(match(t, "a/b", &s), 1);
	size_t h0 = s.cache_hits;
	CHECK_EQ_INT(match(t, "a/b", &s), 1);
	CHECK_EQ_INT(s.cache_hits, h0 + 1); /* the second match of a topic is served by the cache */
	CHECK_EQ_INT(match(t, "a/c", &s), 0); /* no subscriber: cached as no nodes */
	CHECK_EQ_INT(match(t, "a/c", &s), 0);
	CHECK_EQ_INT(s.cache_hits, h0 + 2);

	CHECK_EQ_INT(add(t, "a/+", 2, 1, 7), 0); /* a new node matches both topics */
	CHECK_EQ_INT(match(t, "a/c", &s), 1);
	CHECK_EQ_INT(match(t, "a/b", &s), 2);
	CHECK_EQ_INT(match(t, "a/b", &s), 2);
	CHECK_EQ_INT(s.m[find(&s, 2)].n_ids, 1);
	CHECK_EQ_INT(s.ids[s.m[find(&s, 2)].ids_off], 7);

	CHECK_EQ_INT(add(t, "a/+", 2, 2, 9), 1); /* replaced: new QoS and identifier */
	CHECK_EQ_INT(match(t, "a/b", &s), 2);
	CHECK_EQ_INT(s.m[find(&s, 2)].qos, 2);
	CHECK_EQ_INT(s.ids[s.m[find(&s, 2)].ids_off], 9);

	CHECK_EQ_INT(rm(t, "a/b", 1), 0); /* node a/b pruned */
	CHECK_EQ_INT(match(t, "a/b", &s), 1);
	CHECK_EQ_INT(find(&s, 1), -1);
	CHECK_EQ_INT(rm(t, "a/+", 2), 0); /* everything pruned */
	CHECK_EQ_INT(match(t, "a/b", &s), 0);
	CHECK_EQ_INT(mg_subtree_nodes(t), 0);

	/* No Local: the same cached topic from two publishers */
	CHECK_EQ_INT(mg_subtree_add(t, (const uint8_t *)"n/l", 3, SUB(5), (mg_subopts){ .no_local = 1 }, 0), 0);
	for (int i = 0; i < 2; i++) {
		CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"n/l", 3, SUB(5), NULL, NULL, &s), 0);
		CHECK_EQ_INT(s.n_unsent, 1);
		CHECK_EQ_INT(mg_subtree_match(t, (const uint8_t *)"n/l", 3, SUB(6), NULL, NULL, &s), 1);
	}

	/* shared: cached matches still take turns */
	CHECK_EQ_INT(add(t, "$share/g/x/y", 10, 0, 0), 0);
	CHECK_EQ_INT(add(t, "$share/g/x/y", 11, 0, 0), 0);
	int got[2] = { 0, 0 };
	size_t h1 = s.cache_hits;
	for (int i = 0; i < 10; i++) {
		REQUIRE(match(t, "x/y", &s) == 1);
		int who = (int)((char *)s.m[0].subscriber - S);
		REQUIRE(who == 10 || who == 11);
		got[who - 10]++;
	}
	CHECK_EQ_INT(got[0], 5);
	CHECK_EQ_INT(got[1], 5);
	CHECK_EQ_INT(s.cache_hits, h1 + 9);

	/* the same matchset on another tree, and on a new tree where the old one was */
	mg_subtree *t2 = mg_subtree_new();
	REQUIRE(t2);
	mg_subtree_one_thread(t2, one_thread);
	CHECK_EQ_INT(match(t2, "x/y", &s), 0);
	CHECK_EQ_INT(match(t, "x/y", &s), 1);
	mg_subtree_free(t2);
	mg_subtree_free(t);
	t = mg_subtree_new();
	REQUIRE(t);
	mg_subtree_one_thread(t, one_thread);
	CHECK_EQ_INT(match(t, "x/y", &s), 0);
	CHECK_EQ_INT(match(t, "n/l", &s), 0);

	/* topics that differ only in their last bytes spread over the cache: the second round
	 * over 100 of them is served from it (a hash whose slot ignored the last bytes put them
	 * in 2 slots and missed every time); the count is fixed, the hash has no seed. A
	 * uniform hash leaves about 82 of 100 topics alone in one of the 512 slots (the mean
	 * over seeds); broker/hash.h's unseeded one leaves 76, topic_hash before it 80. */
	CHECK_EQ_INT(add(t, "bench/in/+", 4, 0, 0), 0);
	for (int round = 0; round < 2; round++) {
		size_t before = s.cache_hits;
		for (int i = 0; i < 100; i++) {
			char tp[32];
			snprintf(tp, sizeof tp, "bench/in/%d", i);
			REQUIRE(match(t, tp, &s) == 1);
		}
		if (round == 1)
			CHECK(s.cache_hits - before >= 60);
	}
	CHECK_EQ_INT(rm(t, "bench/in/+", 4), 0);

	/* topics longer than the cache keeps are walked each time, and still right */
	char longt[300];
	memset(longt, 'z', sizeof longt - 1);
	longt[sizeof longt - 1] = 0;
	CHECK_EQ_INT(add(t, "#", 3, 0, 0), 0);
	size_t h2 = s.cache_hits;
	CHECK_EQ_INT(match(t, longt, &s), 1);
	CHECK_EQ_INT(match(t, longt, &s), 1);
	CHECK_EQ_INT(s.cache_hits, h2);
	mg_matchset_free(&s);
	mg_subtree_free(t);
	CHECK_NO_LEAKS();
}

TEST(topic_cache_follows_changes) { topic_cache_check(false); }
TEST(topic_cache_follows_changes_one_thread) { topic_cache_check(true); }

/* ---- threads: matchers in parallel with a writer (run under SAN=tsan too) ---- */

static mg_subtree *stress_tree;
static atomic_int stress_done;

static const char *const CHURN[] = {
	"s/a/x", "s/+/x", "s/#", "s/a/+", "+/a/x", "#", "s/a/x/y", "$share/g/s/a/x", "$share/h/s/#", "q/r",
};
#define NCHURN (sizeof CHURN / sizeof CHURN[0])

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool odd_only(void *sub, void *ctx)
{
	(void)ctx;
	return ((char *)sub - S) % 2 == 1;
}

static void *stress_matcher(void *arg)
{
	mg_matchset s = { 0 };
	long *bad = arg;
	long rounds = 0;
	while (!atomic_load(&stress_done) || rounds < 10 || s.cache_hits == 0) {
		int n = mg_subtree_match(stress_tree, (const uint8_t *)"s/a/x", 5, SUB(1), odd_only, NULL, &s);
		rounds++;
		if (n < 0) {
			(*bad)++;
			continue;
		}
		/* the stable subscriptions are always there, each subscriber at most once */
		int stable = 0;
		for (size_t i = 0; i < s.n - s.n_shared; i++) {
			int who = (int)((char *)s.m[i].subscriber - S);
			if (who == 1000 || who == 1001)
				stable++;
			for (size_t j = 0; j < i; j++)
				if (s.m[j].subscriber == s.m[i].subscriber)
					(*bad)++;
		}
		if (stable != 2)
			(*bad)++;
		/* group g has the stable odd member 1003; group h may come and go */
		if (s.n_shared < 1 || s.n_shared > 2)
			(*bad)++;
		for (size_t i = s.n - s.n_shared; i < s.n; i++)
			if (!odd_only(s.m[i].subscriber, NULL))
				(*bad)++;
	}
	mg_matchset_free(&s);
	return NULL;
}

TEST(threads_match_while_writing)
{
	stress_tree = mg_subtree_new();
	REQUIRE(stress_tree);
	add(stress_tree, "s/+/x", 1000, 1, 0);
	add(stress_tree, "s/#", 1001, 0, 0);
	add(stress_tree, "$share/g/s/a/x", 1002, 0, 0);
	add(stress_tree, "$share/g/s/a/x", 1003, 0, 0);
	enum { NM = 3, NSUB = 64 };
	pthread_t th[NM];
	long bad[NM] = { 0 };
	for (int i = 0; i < NM; i++)
		REQUIRE(pthread_create(&th[i], NULL, stress_matcher, &bad[i]) == 0);
	static char on[NSUB][NCHURN];
	memset(on, 0, sizeof on);
	unsigned seed = 99;
	long ops = 0, wrong = 0;
	double end = now_s() + 1.5;
	while (now_s() < end) {
		for (int k = 0; k < 200; k++, ops++) {
			int who = rand_r(&seed) % NSUB, f = rand_r(&seed) % (int)NCHURN;
			const char *flt = CHURN[f];
			int rc = on[who][f] ? rm(stress_tree, flt, 2000 + who) : add(stress_tree, flt, 2000 + who, 1, (uint32_t)k + 1);
			wrong += rc != 0;
			on[who][f] ^= 1;
		}
	}
	atomic_store(&stress_done, 1);
	for (int i = 0; i < NM; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NM; i++)
		CHECK_EQ_INT(bad[i], 0);
	CHECK_EQ_INT(wrong, 0);
	CHECK(ops > 1000);
	for (int w = 0; w < NSUB; w++)
		for (size_t f = 0; f < NCHURN; f++)
			if (on[w][f])
				CHECK_EQ_INT(rm(stress_tree, CHURN[f], 2000 + w), 0);
	CHECK_EQ_INT(mg_subtree_count(stress_tree), 4);
	CHECK_EQ_INT(mg_subtree_nodes(stress_tree), 6); /* s, +, x, #, a, x */
	mg_subtree_free(stress_tree);
	CHECK_NO_LEAKS();
}
