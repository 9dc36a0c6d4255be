/* bench/micro_broker_subtree.c - ns per mg_subtree_match on a few tree shapes (numbers, not a test).
 *
 *   (a) one exact subscriber            (b) 10,000 distinct exact topics, one hit each
 *   (c) fan-out: 1,000 subscribers on one filter
 *   (d) a mix: 10,000 exact, 2,000 '+' filters, 100 '#' filters, 20 shared groups, overlapping
 *       subscribers (merging on)
 *   (e) (a) from 2 threads at once: per-thread CPU ns/match; equal to (a) when readers
 *       share no cache line (the tree's per-thread reader slots), ~2x when they do
 *   (f) the retained store: "#" over 100,000 topics, and "+" in the middle of a filter
 * Each case runs for about 0.5 s, so the whole run stays near 3 s.
 * Usage: micro_broker_subtree [abcdef]   (default: all)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/retain.h"
#include "broker/subtree.h"

static char S[20000]; /* subscribers are addresses in here */

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void add(mg_subtree *t, const char *f, int who, uint8_t qos, uint32_t id)
{
	if (mg_subtree_add(t, (const uint8_t *)f, strlen(f), &S[who], (mg_subopts){ .qos = qos }, id) < 0) {
		fprintf(stderr, "micro_broker_subtree: out of memory\n");
		exit(1);
	}
}

/* Match the topics round-robin; print the best of 5 rounds of secs/5 each (CPU time of
 * this thread, so a shared machine's other load disturbs it less). */
static void run(const char *name, mg_subtree *t, char **topics, int nt, double secs)
{
	mg_matchset s = { 0 };
	size_t *lens = malloc((size_t)nt * sizeof *lens);
	for (int i = 0; i < nt; i++)
		lens[i] = strlen(topics[i]);
	double best = 1e30;
	long entries = 0, n = 0;
	for (int round = 0; round < 5; round++) {
		long rn = 0;
		double t0 = cpu_now(), t1;
		do {
			for (int k = 0; k < 1000; k++, rn++, n++) {
				int i = (int)(n % nt);
				int r = mg_subtree_match(t, (const uint8_t *)topics[i], lens[i], NULL, NULL, NULL, &s);
				if (r < 0) {
					fprintf(stderr, "micro_broker_subtree: match failed\n");
					exit(1);
				}
				entries += r;
			}
			t1 = cpu_now();
		} while (t1 - t0 < secs / 5);
		double ns = (t1 - t0) * 1e9 / (double)rn;
		if (ns < best)
			best = ns;
	}
	printf("%-44s %9.1f ns/match %10.0f matches/s %8.1f recipients/match\n", name, best, 1e9 / best,
	       (double)entries / (double)n);
	mg_matchset_free(&s);
	free(lens);
}

enum { NB = 10000 };
static char *topics[NB]; /* "site/S/dev/D/temp" */

static void case_a(double secs)
{
	mg_subtree *t = mg_subtree_new();
	add(t, "home/kitchen/sensor/temp", 1, 1, 0);
	char *one[] = { "home/kitchen/sensor/temp" };
	run("(a) 1 exact subscriber, 4 levels", t, one, 1, secs);
	mg_subtree_free(t);
}

static void case_b(double secs)
{
	mg_subtree *t = mg_subtree_new();
	for (int i = 0; i < NB; i++)
		add(t, topics[i], i, 0, 0);
	run("(b) 10,000 exact topics, 5 levels, 1 hit", t, topics, NB, secs);
	mg_subtree_free(t);
}

static void case_c(double secs)
{
	mg_subtree *t = mg_subtree_new();
	for (int i = 0; i < 1000; i++)
		add(t, "fan/out/topic", i, (uint8_t)(i % 3), i % 2 ? (uint32_t)i : 0);
	char *fan[] = { "fan/out/topic" };
	run("(c) fan-out to 1,000 on one filter", t, fan, 1, secs);
	mg_subtree_free(t);
}

/* exact per device, '+' per site and metric, '#' per site, shared workers, and "#" */
static void case_d(double secs)
{
	char buf[128];
	mg_subtree *t = mg_subtree_new();
	for (int i = 0; i < NB; i++)
		add(t, topics[i], i, 0, 0);
	for (int i = 0; i < 2000; i++) {
		snprintf(buf, sizeof buf, "site/%d/dev/+/%s", i % 100, i % 3 ? "temp" : "hum");
		add(t, buf, 10000 + i, 1, (uint32_t)i + 1);
	}
	for (int i = 0; i < 100; i++) {
		snprintf(buf, sizeof buf, "site/%d/#", i);
		add(t, buf, i * 7, 2, 0); /* some of the exact subscribers again: merging */
	}
	for (int i = 0; i < 20; i++)
		for (int m = 0; m < 5; m++) {
			snprintf(buf, sizeof buf, "$share/w%d/site/+/dev/+/temp", i);
			add(t, buf, 15000 + i * 5 + m, 1, 0);
		}
	add(t, "#", 19999, 0, 0);
	run("(d) mix: exact + '+' + '#' + shared, merged", t, topics, NB, secs);
	mg_subtree_free(t);
}

static int count_cb(void *ctx, const uint8_t *topic, size_t tlen, void *v)
{
	(void)topic;
	(void)tlen;
	(void)v;
	(*(long *)ctx)++;
	return 0;
}

static void retain_run(const char *name, mg_retain *r, const char *filter, double secs)
{
	double best = 1e30;
	long found = 0;
	for (int round = 0; round < 3; round++) {
		long n = 0;
		double t0 = cpu_now(), t1;
		do {
			found = 0;
			mg_retain_match(r, (const uint8_t *)filter, strlen(filter), count_cb, &found);
			n++;
			t1 = cpu_now();
		} while (t1 - t0 < secs / 3);
		double ns = (t1 - t0) * 1e9 / (double)n;
		if (ns < best)
			best = ns;
	}
	printf("%-44s %9.0f ns/match %10.1f ns/topic %6ld topics\n", name, best, best / (double)(found ? found : 1), found);
}

static void case_f(double secs)
{
	char buf[64];
	mg_retain *r = mg_retain_new(NULL, NULL);
	for (int i = 0; i < 100000; i++) {
		snprintf(buf, sizeof buf, "site/%d/dev/%d/temp", i % 100, i);
		mg_retain_set(r, (const uint8_t *)buf, strlen(buf), &S[0]);
	}
	retain_run("(f) retained: \"#\" over 100,000 topics", r, "#", secs / 2);
	retain_run("(f) retained: \"site/7/dev/+/temp\"", r, "site/7/dev/+/temp", secs / 2);
	mg_retain_free(r);
}

typedef struct mt {
	mg_subtree *t;
	double secs, ns;
} mt;

static void *mt_thread(void *arg)
{
	mt *x = arg;
	mg_matchset s = { 0 };
	static const char topic[] = "home/kitchen/sensor/temp";
	long n = 0;
	double t0 = cpu_now(), t1;
	do {
		for (int k = 0; k < 1000; k++, n++)
			mg_subtree_match(x->t, (const uint8_t *)topic, sizeof topic - 1, NULL, NULL, NULL, &s);
		t1 = cpu_now();
	} while (t1 - t0 < x->secs);
	x->ns = (t1 - t0) * 1e9 / (double)n;
	mg_matchset_free(&s);
	return NULL;
}

static void case_e(double secs)
{
	mg_subtree *t = mg_subtree_new();
	add(t, "home/kitchen/sensor/temp", 1, 1, 0);
	mt x[2] = { { t, secs, 0 }, { t, secs, 0 } };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, mt_thread, &x[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	printf("%-44s %9.1f ns/match %9.1f ns/match (CPU time per thread)\n", "(e) (a) from 2 threads at once", x[0].ns,
	       x[1].ns);
	mg_subtree_free(t);
}

int main(int argc, char **argv)
{
	const char *which = argc > 1 ? argv[1] : "abcdef";
	const double secs = 0.5;
	char buf[64];
	for (int i = 0; i < NB; i++) {
		snprintf(buf, sizeof buf, "site/%d/dev/%d/temp", i % 100, i);
		topics[i] = strdup(buf);
	}
	if (strchr(which, 'a'))
		case_a(secs);
	if (strchr(which, 'b'))
		case_b(secs);
	if (strchr(which, 'c'))
		case_c(secs);
	if (strchr(which, 'd'))
		case_d(secs);
	if (strchr(which, 'e'))
		case_e(secs / 2);
	if (strchr(which, 'f'))
		case_f(secs);
	for (int i = 0; i < NB; i++)
		free(topics[i]);
	return 0;
}
