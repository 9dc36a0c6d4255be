/*
 * sensor - the lecture's start/stop program, sensor side: listens on the topic "command";
 * after "start" it publishes a random temperature 0..39 on "room/temp" every 2 seconds, after
 * "stop" it pauses. The loop runs in its own thread (loop_start) and calls on_message there,
 * while the main thread publishes: midge_publish may be called from any thread.
 *
 * The Python it translates (paho-mqtt):
 *
 *     running = False
 *
 *     def on_connect(client, userdata, flags, rc):
 *         client.subscribe("command")
 *
 *     def on_message(client, userdata, msg):
 *         global running
 *         command = msg.payload.decode()
 *         if command == "start":
 *             running = True
 *         elif command == "stop":
 *             running = False
 *
 *     client = mqtt.Client()
 *     client.on_connect = on_connect
 *     client.on_message = on_message
 *     client.connect("localhost", 1883, 60)
 *     client.loop_start()
 *     while True:
 *         if running:
 *             client.publish("room/temp", random.randint(0, 39))
 *         time.sleep(2)
 *
 * Usage: sensor [-h host] [-p port]        (default localhost 1883; Ctrl-C ends it)
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <midge/midge.h>

/* Written by the loop thread (on_message), read by the main thread: an atomic. */
static atomic_bool running;
static volatile sig_atomic_t quit;

static void on_connect(midge_client *client, void *userdata, int flags, int rc,
                       const midge_properties *props)
{
	midge_subscribe(client, "command", 0);
}

static void on_message(midge_client *client, void *userdata, const midge_message *msg)
{
	const char *command = msg->payload;

	if (strcmp(command, "start") == 0)
		atomic_store(&running, true);
	else if (strcmp(command, "stop") == 0)
		atomic_store(&running, false);
	else
		return;
	printf("command: %s\n", command);
	fflush(stdout);
}

static void on_signal(int sig)
{
	quit = 1;
}

/* time.sleep(seconds), cut short by Ctrl-C. */
static void sleep_s(int seconds)
{
	for (int i = 0; i < seconds * 10 && !quit; i++)
		usleep(100 * 1000);
}

int main(int argc, char **argv)
{
	const char *host = "localhost";
	int port = 1883, opt;

	while ((opt = getopt(argc, argv, "h:p:")) != -1) {
		if (opt == 'h')
			host = optarg;
		else if (opt == 'p')
			port = atoi(optarg);
		else {
			fprintf(stderr, "usage: sensor [-h host] [-p port]\n");
			return 2;
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());

	midge_client *client = midge_client_new(NULL, true, NULL, MIDGE_PROTOCOL_V311,
	                                        MIDGE_TRANSPORT_TCP);
	midge_on_connect_set(client, on_connect);
	midge_on_message_set(client, on_message);

	int rc = midge_connect(client, host, port, 60);
	if (rc != MIDGE_OK) {
		fprintf(stderr, "sensor: cannot connect to %s:%d: %s\n", host, port,
		        midge_connack_string(rc));
		midge_client_free(client);
		return 1;
	}
	midge_loop_start(client);

	while (!quit) {
		if (atomic_load(&running)) {
			char payload[16];
			int len = snprintf(payload, sizeof(payload), "%d", rand() % 40);
			midge_publish(client, "room/temp", payload, (size_t)len, 0, false, NULL);
			printf("room/temp %s\n", payload);
			fflush(stdout);
		}
		sleep_s(2);
	}

	midge_disconnect(client);
	midge_loop_stop(client);
	midge_client_free(client);
	return 0;
}
