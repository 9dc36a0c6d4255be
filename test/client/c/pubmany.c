/*
 * test/client/c/pubmany.c - many messages through one client, to check message ids:
 *   pubmany [-V 3|4|5] [-p port] [-I max_inflight] N QOS
 * publishes N messages before connecting (they wait in the queue, with no packet id), starts
 * connecting (connect_async), subscribes, publishes N more, then runs the loop until every on_publish has come (or 60 s
 * pass). It records every mid midge_publish returned and every on_publish, and prints:
 *   published P distinct D errors E
 *   on_publish n=N unknown=U twice=T failed=R
 *   sub mid=M distinct=0|1 on_subscribe=K
 * unknown: an on_publish for a mid that no pending publish had (a reused or stale mid);
 * twice: a mid reported more than once.
 */
#include <midge/midge.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int *mids, nmids;        /* returned by midge_publish, in order */
static unsigned char *state;    /* per index into mids: 0 pending, 1 reported */
static int reported, unknown, twice, nonzero, subacks, sub_mid;

static int find(int mid)
{
	/* mids increase while no wrap happens, so a binary search finds the index */
	int lo = 0, hi = nmids - 1;
	while (lo <= hi) {
		int m = (lo + hi) / 2;
		if (mids[m] == mid)
			return m;
		if (mids[m] < mid)
			lo = m + 1;
		else
			hi = m - 1;
	}
	return -1;
}

static void on_publish(midge_client *c, void *ud, int mid, int rc, const midge_properties *p)
{
	int i = find(mid);
	if (i < 0) {
		unknown++;
		return;
	}
	if (state[i])
		twice++;
	state[i] = 1;
	reported++;
	if (rc >= 0x80) /* 0x10 "No matching subscribers" is a success */
		nonzero++;
}

static void on_subscribe(midge_client *c, void *ud, int mid, int n, const int *g, const midge_properties *p)
{
	if (mid == sub_mid)
		subacks++;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int errors;

static void publish_batch(midge_client *c, int n, int qos)
{
	char payload[16];
	for (int i = 0; i < n; i++) {
		int len = snprintf(payload, sizeof(payload), "%d", i);
		int mid = midge_publish(c, "pubmany/t", payload, (size_t)len, qos, false, NULL);
		if (mid <= 0) {
			if (errors++ < 3)
				printf("publish %d: %s\n", i, midge_strerror(mid));
			continue;
		}
		mids[nmids++] = mid;
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int port = 1883, proto = 4, inflight = 20, i = 1;
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (!strcmp(argv[i], "-p"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "-V"))
			proto = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "-I"))
			inflight = atoi(argv[i + 1]);
	}
	if (argc - i != 2)
		return 2;
	int n = atoi(argv[i]), qos = atoi(argv[i + 1]);
	mids = calloc((size_t)2 * n, sizeof(int));
	state = calloc((size_t)2 * n, 1);
	midge_client *c = midge_client_new("pubmany", true, NULL, proto, MIDGE_TRANSPORT_TCP);
	if (!c || !mids || !state)
		return 1;
	midge_on_publish_set(c, on_publish);
	midge_on_subscribe_set(c, on_subscribe);
	midge_max_queued_messages_set(c, 0); /* documented: no limit */
	midge_max_inflight_messages_set(c, inflight);

	publish_batch(c, n, qos); /* not connected yet: all of them wait in the queue */
	int rc = midge_connect_async(c, "127.0.0.1", port, 60);
	if (rc != MIDGE_OK) {
		printf("connect rc=%d\n", rc);
		return 1;
	}
	/* A SUBSCRIBE's mid comes from the same sequence: never one a message holds. (Sent before
	 * the CONNACK lets the queue take every packet id.) */
	sub_mid = midge_subscribe(c, "pubmany/none", 0);
	publish_batch(c, n, qos); /* more behind the first batch */
	long long end = now_ms() + 60000;
	while ((reported < nmids || !subacks) && now_ms() < end)
		if (midge_loop(c, 100) == MIDGE_ERR_NO_CONN)
			break;
	int distinct = 0;
	for (int k = 0; k < nmids; k++)
		distinct += k == 0 || mids[k] > mids[k - 1];
	printf("published %d distinct %d errors %d\n", nmids, distinct, errors);
	printf("on_publish n=%d unknown=%d twice=%d failed=%d\n", reported, unknown, twice,
	       nonzero);
	printf("sub mid=%d distinct=%d on_subscribe=%d\n", sub_mid, find(sub_mid) < 0 && sub_mid > 0,
	       subacks);
	midge_disconnect(c);
	midge_client_free(c);
	free(mids);
	free(state);
	return 0;
}
