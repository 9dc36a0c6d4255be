/*
 * test/client/c/threaded.c - the lecture's sensor shape: loop_start runs the callbacks in the
 * loop thread while the main thread publishes (and a second thread publishes too), all through
 * the thread-safe calls. It subscribes to its own topic and checks every message comes back.
 *
 *   threaded PORT PROTOCOL COUNT      prints "sent N", "received N", "published N", "ok"
 * Exit status 0 only if all COUNT*2 messages were acknowledged and received.
 */
#include <midge/midge.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int received, published, subscribed, connected;

static void on_connect(midge_client *c, void *ud, int flags, int rc, const midge_properties *p)
{
	if (rc == 0) {
		/* subscribe from the loop thread, inside a callback */
		int mid = midge_subscribe(c, "thr/test", 1);
		if (mid <= 0)
			printf("subscribe failed %d\n", mid);
		pthread_mutex_lock(&mu);
		connected = 1;
		pthread_mutex_unlock(&mu);
	}
}

static void on_subscribe(midge_client *c, void *ud, int mid, int n, const int *g, const midge_properties *p)
{
	pthread_mutex_lock(&mu);
	subscribed = 1;
	pthread_mutex_unlock(&mu);
}

static void on_message(midge_client *c, void *ud, const midge_message *m)
{
	pthread_mutex_lock(&mu);
	received++;
	pthread_mutex_unlock(&mu);
	/* a callback may publish: answer every 10th message on another topic */
	if (m->payloadlen && ((const char *)m->payload)[0] == '0')
		midge_publish(c, "thr/echo", m->payload, m->payloadlen, 0, false, NULL);
}

static void on_publish(midge_client *c, void *ud, int mid, int rc, const midge_properties *p)
{
	pthread_mutex_lock(&mu);
	published++;
	pthread_mutex_unlock(&mu);
}

static int get(int *v)
{
	pthread_mutex_lock(&mu);
	int r = *v;
	pthread_mutex_unlock(&mu);
	return r;
}

static midge_client *client;
static int count;

static void *second_publisher(void *arg)
{
	for (int i = 0; i < count; i++) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "1-%d", i);
		if (midge_publish(client, "thr/test", buf, (size_t)n, 1, false, NULL) <= 0)
			printf("publish failed (thread)\n");
	}
	return NULL;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 4)
		return 2;
	int port = atoi(argv[1]), proto = atoi(argv[2]);
	count = atoi(argv[3]);
	client = midge_client_new("threaded-test", true, NULL, proto, MIDGE_TRANSPORT_TCP);
	midge_on_connect_set(client, on_connect);
	midge_on_subscribe_set(client, on_subscribe);
	midge_on_message_set(client, on_message);
	midge_on_publish_set(client, on_publish);
	midge_max_queued_messages_set(client, 0);
	if (midge_loop_start(client) != MIDGE_OK)
		return 1;
	int rc = midge_connect(client, "127.0.0.1", port, 30);
	printf("connect rc=%d\n", rc);
	for (int i = 0; i < 500 && !get(&subscribed); i++)
		usleep(10000);
	if (!get(&connected) || !get(&subscribed)) {
		printf("not subscribed\n");
		return 1;
	}
	pthread_t t;
	pthread_create(&t, NULL, second_publisher, NULL);
	int last = 0;
	for (int i = 0; i < count; i++) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "0-%d", i);
		last = midge_publish(client, "thr/test", buf, (size_t)n, 1, false, NULL);
		if (last <= 0)
			printf("publish failed %d\n", last);
	}
	pthread_join(t, NULL);
	printf("sent %d\n", 2 * count);
	printf("wait rc=%d\n", midge_wait_for_publish(client, last, 10000));
	for (int i = 0; i < 1000 && (get(&received) < 2 * count || get(&published) < 2 * count + count); i++)
		usleep(10000);
	printf("received %d\n", get(&received));
	printf("published %d\n", get(&published));
	printf("disconnect rc=%d\n", midge_disconnect(client));
	for (int i = 0; i < 200 && midge_is_connected(client); i++)
		usleep(10000);
	printf("stop rc=%d\n", midge_loop_stop(client));
	midge_client_free(client);
	/* published counts the echoes (QoS 0) too */
	bool ok = get(&received) == 2 * count && get(&published) == 3 * count;
	printf(ok ? "ok\n" : "FAILED\n");
	return ok ? 0 : 1;
}
