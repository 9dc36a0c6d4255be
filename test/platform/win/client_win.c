/*
 * client_win - libmidge on Windows, end to end: built by `make windows` for 64-bit Windows and
 * run under Wine by test/platform/test_windows.py against the Linux broker on loopback.
 *
 *   client_win HOST PORT ID [CAFILE]
 *
 * With CAFILE every connection is TLS (client/tls_schannel.c), the broker's certificate checked
 * against CAFILE and HOST.
 *
 * Steps, each printed as "ok <step>" when it passed (the test checks the lines), or "FAIL
 * <step>: why" and exit 1:
 *   connect     midge_connect (blocking), CONNACK accepted, on_connect called, its SUBSCRIBE
 *               answered (SUBACK granting QoS 2)
 *   wake        a loop turn sleeping in select() (up to 60 s: nothing is due sooner) is woken
 *               by a publish from another thread through the wake-up socket pair, and writes it
 *   loop_start  the loop runs in a thread (winpthreads)
 *   qos0/1/2    publish to our own subscription: wait_for_publish, on_publish with the mid,
 *               and on_message with the same topic and payload, byte for byte
 *   reconnect   a second client with our id takes the session over (the broker drops us);
 *               the loop thread sees the loss, reconnects by itself, subscribes again, and a
 *               QoS 1 message goes round once more
 *   loop_stop   disconnect, then loop_stop joins the thread; on_disconnect said 0 (ours)
 * Every wait is bounded (20 s) so a hang fails instead of blocking the test.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <midge/midge.h>

#define WAIT_S 20

static atomic_int connects, subacks, disconnects, last_disc_rc, published_mid;
static atomic_int got; /* messages received that matched `want` */
static atomic_int turn_done;
static char want_topic[64], want_payload[64];

static void on_connect(midge_client *c, void *ud, int flags, int rc, const midge_properties *p)
{
	if (rc == 0) {
		midge_subscribe(c, "win/t/#", 2);
		atomic_fetch_add(&connects, 1);
	}
}

static void on_subscribe(midge_client *c, void *ud, int mid, int n, const int *codes,
                         const midge_properties *p)
{
	if (n == 1 && codes[0] == 2)
		atomic_fetch_add(&subacks, 1);
}

static void on_publish(midge_client *c, void *ud, int mid, int rc, const midge_properties *p)
{
	if (rc == 0)
		atomic_store(&published_mid, mid);
}

static void on_message(midge_client *c, void *ud, const midge_message *m)
{
	if (strcmp(m->topic, want_topic) == 0 && m->payloadlen == strlen(want_payload) &&
	    memcmp(m->payload, want_payload, m->payloadlen) == 0)
		atomic_fetch_add(&got, 1);
	else
		printf("unexpected message on %s (%zu bytes)\n", m->topic, m->payloadlen);
}

static void on_disconnect(midge_client *c, void *ud, int flags, int rc, const midge_properties *p)
{
	atomic_store(&last_disc_rc, rc);
	atomic_fetch_add(&disconnects, 1);
}

/* Wait (bounded) until *v >= n. */
static int wait_for(atomic_int *v, int n)
{
	for (int i = 0; i < WAIT_S * 100; i++) {
		if (atomic_load(v) >= n)
			return 1;
		usleep(10 * 1000);
	}
	return 0;
}

static int fail(const char *step, const char *why, int rc)
{
	printf("FAIL %s: %s (%d: %s)\n", step, why, rc, rc < 0 ? midge_strerror(rc) : "");
	fflush(stdout);
	exit(1);
}

static void ok(const char *step)
{
	printf("ok %s\n", step);
	fflush(stdout);
}

static void *one_turn(void *arg)
{
	midge_loop(arg, 60000);
	atomic_store(&turn_done, 1);
	return NULL;
}

/* Publish at qos to our own subscription and see it come back, byte for byte. */
static void round_trip(midge_client *c, int qos, const char *step)
{
	snprintf(want_topic, sizeof(want_topic), "win/t/%s", step);
	snprintf(want_payload, sizeof(want_payload), "payload %s qos %d \xc3\xa9", step, qos);
	int before = atomic_load(&got);
	int mid = midge_publish(c, want_topic, want_payload, strlen(want_payload), qos, false, NULL);
	if (mid <= 0)
		fail(step, "publish", mid);
	int rc = midge_wait_for_publish(c, mid, WAIT_S * 1000);
	if (rc != MIDGE_OK)
		fail(step, "wait_for_publish", rc);
	if (atomic_load(&published_mid) != mid)
		fail(step, "on_publish did not report the mid", atomic_load(&published_mid));
	if (!wait_for(&got, before + 1))
		fail(step, "the message did not come back", 0);
	ok(step);
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: client_win HOST PORT ID [CAFILE]\n");
		return 2;
	}
	const char *host = argv[1], *id = argv[3], *cafile = argc == 5 ? argv[4] : NULL;
	int port = atoi(argv[2]);
	setvbuf(stdout, NULL, _IONBF, 0);

	midge_client *c = midge_client_new(id, true, NULL, MIDGE_PROTOCOL_V311, MIDGE_TRANSPORT_TCP);
	if (!c)
		fail("connect", "client_new", 0);
	midge_on_connect_set(c, on_connect);
	midge_on_subscribe_set(c, on_subscribe);
	midge_on_publish_set(c, on_publish);
	midge_on_message_set(c, on_message);
	midge_on_disconnect_set(c, on_disconnect);
	midge_reconnect_delay_set(c, 1, 1);
	int rc;
	if (cafile && (rc = midge_tls_set(c, cafile, NULL, NULL, NULL, NULL)) != MIDGE_OK)
		fail("connect", "midge_tls_set", rc);

	rc = midge_connect(c, host, port, 60);
	if (rc != MIDGE_OK)
		fail("connect", "midge_connect", rc);
	if (atomic_load(&connects) != 1)
		fail("connect", "on_connect not called once", atomic_load(&connects));
	for (int i = 0; i < WAIT_S * 10 && atomic_load(&subacks) < 1; i++)
		midge_loop(c, 100);
	if (atomic_load(&subacks) != 1)
		fail("connect", "no SUBACK granting QoS 2", 0);
	ok("connect");

	/* Nothing is due for 60 s (keepalive) and the broker has nothing to send: only the wake-up
	 * ends this turn early. The pause lets the thread get into select() first; a working wake
	 * passes whichever goes first. */
	snprintf(want_topic, sizeof(want_topic), "win/t/wake");
	snprintf(want_payload, sizeof(want_payload), "wake");
	pthread_t t;
	if (pthread_create(&t, NULL, one_turn, c) != 0)
		fail("wake", "pthread_create", 0);
	usleep(300 * 1000);
	int mid = midge_publish(c, want_topic, want_payload, strlen(want_payload), 0, false, NULL);
	if (mid <= 0)
		fail("wake", "publish", mid);
	if (!wait_for(&turn_done, 1))
		fail("wake", "the loop slept through a publish from another thread", 0);
	pthread_join(t, NULL);
	if (atomic_load(&published_mid) != mid)
		fail("wake", "the QoS 0 message was not written in that turn", atomic_load(&published_mid));
	ok("wake");

	if ((rc = midge_loop_start(c)) != MIDGE_OK)
		fail("loop_start", "midge_loop_start", rc);
	ok("loop_start");

	round_trip(c, 0, "qos0");
	round_trip(c, 1, "qos1");
	round_trip(c, 2, "qos2");

	/* The takeover: the broker closes our connection for the newcomer. */
	midge_client *b = midge_client_new(id, true, NULL, MIDGE_PROTOCOL_V311, MIDGE_TRANSPORT_TCP);
	if (!b || (cafile && (rc = midge_tls_set(b, cafile, NULL, NULL, NULL, NULL)) != MIDGE_OK) ||
	    (rc = midge_connect(b, host, port, 60)) != MIDGE_OK)
		fail("reconnect", "second client's connect", b ? rc : 0);
	if (!wait_for(&disconnects, 1))
		fail("reconnect", "the loss was not reported", 0);
	if (atomic_load(&last_disc_rc) >= 0)
		fail("reconnect", "on_disconnect did not report a lost connection", atomic_load(&last_disc_rc));
	midge_disconnect(b);
	midge_client_free(b);
	if (!wait_for(&connects, 2) || !wait_for(&subacks, 2))
		fail("reconnect", "the loop thread did not reconnect and subscribe", atomic_load(&connects));
	round_trip(c, 1, "reconnect");

	int d = atomic_load(&disconnects);
	if ((rc = midge_disconnect(c)) != MIDGE_OK)
		fail("loop_stop", "midge_disconnect", rc);
	if (!wait_for(&disconnects, d + 1) || atomic_load(&last_disc_rc) != 0)
		fail("loop_stop", "on_disconnect after our DISCONNECT", atomic_load(&last_disc_rc));
	if ((rc = midge_loop_stop(c)) != MIDGE_OK)
		fail("loop_stop", "midge_loop_stop", rc);
	if ((rc = midge_loop_stop(c)) != MIDGE_ERR_INVAL)
		fail("loop_stop", "a second loop_stop found a thread", rc);
	ok("loop_stop");
	midge_client_free(c);
	return 0;
}
