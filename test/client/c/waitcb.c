/*
 * test/client/c/waitcb.c - midge_wait_for_publish returns after on_publish has returned, as
 * paho's wait_for_publish does, also when the loop runs in the loop_start thread.
 *
 *   waitcb PORT PROTOCOL      prints "ok qosN" per QoS level, "FAIL ..." and exit 1 otherwise
 *
 * on_publish sleeps before it records the mid: without the ordering, the main thread's wait
 * returns while the callback sleeps and sees the previous mid (the flake CI met under Wine).
 */
#include <midge/midge.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_int reported_mid, connected;

static void on_connect(midge_client *c, void *ud, int flags, int rc, const midge_properties *p)
{
	if (rc == 0)
		atomic_store(&connected, 1);
}

static void on_publish(midge_client *c, void *ud, int mid, int rc, const midge_properties *p)
{
	usleep(200 * 1000);
	atomic_store(&reported_mid, mid);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: waitcb PORT PROTOCOL\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	midge_client *c = midge_client_new("waitcb", true, NULL, atoi(argv[2]), MIDGE_TRANSPORT_TCP);
	midge_on_connect_set(c, on_connect);
	midge_on_publish_set(c, on_publish);
	int rc = midge_connect(c, "127.0.0.1", atoi(argv[1]), 60);
	if (rc != MIDGE_OK || !atomic_load(&connected)) {
		printf("FAIL connect rc=%d\n", rc);
		return 1;
	}
	if ((rc = midge_loop_start(c)) != MIDGE_OK) {
		printf("FAIL loop_start rc=%d\n", rc);
		return 1;
	}
	for (int qos = 0; qos <= 2; qos++) {
		int mid = midge_publish(c, "waitcb/t", "x", 1, qos, false, NULL);
		if (mid <= 0 || (rc = midge_wait_for_publish(c, mid, 20000)) != MIDGE_OK) {
			printf("FAIL qos%d publish mid=%d rc=%d\n", qos, mid, rc);
			return 1;
		}
		if (atomic_load(&reported_mid) != mid) {
			printf("FAIL qos%d: wait_for_publish returned before on_publish(%d) (saw %d)\n", qos,
			       mid, atomic_load(&reported_mid));
			return 1;
		}
		printf("ok qos%d\n", qos);
	}
	midge_disconnect(c);
	midge_loop_stop(c);
	midge_client_free(c);
	return 0;
}
