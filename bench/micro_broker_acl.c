/* bench/micro_broker_acl.c - ns per mg_acl_check with bench/compare's 1,000-rule acl_file
 * (numbers, not a test).
 *
 * The file: 600 general topic rules on other topics, then `topic readwrite bench/acl/p/+`,
 * 30 user sections of 10 rules, 99 patterns `dev/%c/K/#` (bench/compare acl_file_1k).
 *   (a) anonymous client, allowed by the last general rule (bench/compare's pairs10-q0-acl1k)
 *   (b) user u7 writing its own topic
 *   (c) a pattern: client "dev1" on dev/dev1/42/x (%c substituted in place)
 *   (d) denied: a topic no rule matches (every tree walked, patterns included)
 *   (e) (a) decided by walking the general rules as a list with mg_topic_match, the way
 *       mosquitto decides every delivery, for scale
 * CPU time of this thread, best of 5 rounds of about 0.1 s each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/acl.h"
#include "proto/proto.h"

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *file_1k(char ***general, int *ngeneral)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	static char *gen[601];
	static char genbuf[601][48];
	int ng = 0;
#define ADD(...) do { \
		if (cap - len < 128 && !(buf = realloc(buf, cap *= 2))) exit(1); \
		len += (size_t)snprintf(buf + len, cap - len, __VA_ARGS__); \
	} while (0)
	for (int i = 0; i < 600; i++) {
		const char *f = i % 3 == 0 ? "site/%d/+/temp" : i % 3 == 1 ? "site/%d/status" : "site/%d/cmd/#";
		snprintf(genbuf[ng], sizeof genbuf[ng], f, i);
		gen[ng] = genbuf[ng];
		ng++;
		ADD("topic %s %s\n", i % 3 == 0 ? "readwrite" : i % 3 == 1 ? "read" : "write", gen[ng - 1]);
	}
	snprintf(genbuf[ng], sizeof genbuf[ng], "bench/acl/p/+");
	gen[ng] = genbuf[ng];
	ng++;
	ADD("topic readwrite bench/acl/p/+\n");
	for (int u = 0; u < 30; u++) {
		ADD("user u%d\n", u);
		for (int k = 0; k < 10; k++)
			ADD("topic readwrite u%d/%d/#\n", u, k);
	}
	for (int k = 0; k < 99; k++)
		ADD("pattern readwrite dev/%%c/%d/#\n", k);
	*general = gen;
	*ngeneral = ng;
	return buf;
}

static void run(const char *name, const mg_acl *a, const char *id, const char *user,
                const char *topic, int access, int want)
{
	size_t tl = strlen(topic);
	double best = 1e30;
	for (int round = 0; round < 5; round++) {
		long n = 0;
		double t0 = cpu_now(), t1;
		do {
			for (int k = 0; k < 1000; k++, n++)
				if ((mg_acl_check(a, id, user, (const uint8_t *)topic, tl, access) == MG_ACL_ALLOW) != want) {
					fprintf(stderr, "micro_broker_acl: wrong decision for %s\n", topic);
					exit(1);
				}
			t1 = cpu_now();
		} while (t1 - t0 < 0.1);
		double ns = (t1 - t0) * 1e9 / (double)n;
		if (ns < best)
			best = ns;
	}
	printf("%-62s %8.1f ns/check\n", name, best);
}

static void run_list(char **gen, int ng, const char *topic)
{
	size_t tl = strlen(topic);
	double best = 1e30;
	for (int round = 0; round < 5; round++) {
		long n = 0;
		double t0 = cpu_now(), t1;
		do {
			for (int k = 0; k < 100; k++, n++) {
				int hit = -1;
				for (int i = 0; i < ng && hit < 0; i++)
					if (mg_topic_match((const uint8_t *)gen[i], strlen(gen[i]), (const uint8_t *)topic, tl))
						hit = i;
				if (hit != ng - 1)
					exit(1);
			}
			t1 = cpu_now();
		} while (t1 - t0 < 0.1);
		double ns = (t1 - t0) * 1e9 / (double)n;
		if (ns < best)
			best = ns;
	}
	printf("%-62s %8.1f ns/check\n", "(e) the same as a list walk (mosquitto's way), for scale", best);
}

int main(int argc, char **argv)
{
	const char *which = argc > 1 ? argv[1] : "abcde";
	char **gen;
	int ng;
	char *text = file_1k(&gen, &ng);
	char err[512];
	double t0 = cpu_now();
	mg_acl *a = mg_acl_parse("acl1k", text, strlen(text), err, sizeof err, NULL);
	if (!a) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("1,000-rule acl_file compiled in %.2f ms (%zu rules)\n", (cpu_now() - t0) * 1e3,
	       mg_acl_rule_count(a));
	if (strchr(which, 'a'))
		run("(a) anonymous, allowed by the last general rule", a, "bench-pub-3", NULL,
		    "bench/acl/p/3", MG_ACL_WRITE, 1);
	if (strchr(which, 'b'))
		run("(b) user u7 on its own topic", a, "c7", "u7", "u7/3/x/y", MG_ACL_WRITE, 1);
	if (strchr(which, 'c'))
		run("(c) pattern dev/%c/42/#, client dev1", a, "dev1", NULL, "dev/dev1/42/x", MG_ACL_READ, 1);
	if (strchr(which, 'd'))
		run("(d) denied: no rule matches", a, "x", "u7", "nowhere/at/all", MG_ACL_READ, 0);
	if (strchr(which, 'e'))
		run_list(gen, ng, "bench/acl/p/3");
	mg_acl_free(a);
	free(text);
	return 0;
}
