/*
 * controller - the lecture's start/stop program, controlling side: sends each "start" or
 * "stop" the user types on the topic "command" and prints the temperatures the sensor sends
 * on "room/temp" ("room/temp, 23"); "exit" ends it.
 *
 * The Python it translates (paho-mqtt):
 *
 *     def on_connect(client, userdata, flags, rc):
 *         client.subscribe("room/temp")
 *
 *     def on_message(client, userdata, msg):
 *         print(msg.topic + ", " + msg.payload.decode())
 *
 *     client = mqtt.Client()
 *     client.on_connect = on_connect
 *     client.on_message = on_message
 *     client.connect("localhost", 1883, 60)
 *     client.loop_start()
 *     while True:
 *         command = input()
 *         if command == "exit":
 *             break
 *         if command in ("start", "stop"):
 *             client.publish("command", command)
 *     client.disconnect()
 *     client.loop_stop()
 *
 * Usage: controller [-h host] [-p port]    (default localhost 1883)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <midge/midge.h>

static void on_connect(midge_client *client, void *userdata, int flags, int rc,
                       const midge_properties *props)
{
	midge_subscribe(client, "room/temp", 0);
}

static void on_message(midge_client *client, void *userdata, const midge_message *msg)
{
	printf("%s, %s\n", msg->topic, (const char *)msg->payload);
	fflush(stdout);
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
			fprintf(stderr, "usage: controller [-h host] [-p port]\n");
			return 2;
		}
	}

	midge_client *client = midge_client_new(NULL, true, NULL, MIDGE_PROTOCOL_V311,
	                                        MIDGE_TRANSPORT_TCP);
	midge_on_connect_set(client, on_connect);
	midge_on_message_set(client, on_message);

	int rc = midge_connect(client, host, port, 60);
	if (rc != MIDGE_OK) {
		fprintf(stderr, "controller: cannot connect to %s:%d: %s\n", host, port,
		        midge_connack_string(rc));
		midge_client_free(client);
		return 1;
	}
	midge_loop_start(client);

	char command[256];
	int mid = 0;
	while (fgets(command, sizeof(command), stdin)) {
		command[strcspn(command, "\r\n")] = '\0';
		if (strcmp(command, "exit") == 0)
			break;
		if (strcmp(command, "start") == 0 || strcmp(command, "stop") == 0)
			mid = midge_publish(client, "command", command, strlen(command), 0, false, NULL);
		else if (command[0])
			fprintf(stderr, "type start, stop or exit\n");
	}

	if (mid > 0)
		midge_wait_for_publish(client, mid, 5000);
	midge_disconnect(client);
	midge_loop_stop(client);
	midge_client_free(client);
	return 0;
}
