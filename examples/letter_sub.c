/*
 * letter_sub - the lecture's chat, receiving side: prints "letter, <text>" for every message
 * on the topic "letter".
 *
 * The Python it translates (paho-mqtt):
 *
 *     def on_connect(client, userdata, flags, rc):
 *         client.subscribe("letter")
 *
 *     def on_message(client, userdata, msg):
 *         print(msg.topic + ", " + msg.payload.decode())
 *
 *     client = mqtt.Client()
 *     client.on_connect = on_connect
 *     client.on_message = on_message
 *     client.connect("localhost", 1883, 60)
 *     client.loop_forever()
 *
 * Usage: letter_sub [-h host] [-p port]      (default localhost 1883)
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <midge/midge.h>

/* Subscribing in on_connect means a reconnect subscribes again. */
static void on_connect(midge_client *client, void *userdata, int flags, int rc,
                       const midge_properties *props)
{
	midge_subscribe(client, "letter", 0);
}

static void on_message(midge_client *client, void *userdata, const midge_message *msg)
{
	/* payload is followed by a '\0', so a text message prints as a C string. */
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
			fprintf(stderr, "usage: letter_sub [-h host] [-p port]\n");
			return 2;
		}
	}

	midge_client *client = midge_client_new(NULL, true, NULL, MIDGE_PROTOCOL_V311,
	                                        MIDGE_TRANSPORT_TCP);
	midge_on_connect_set(client, on_connect);
	midge_on_message_set(client, on_message);

	int rc = midge_connect(client, host, port, 60);
	if (rc != MIDGE_OK) {
		fprintf(stderr, "letter_sub: cannot connect to %s:%d: %s\n", host, port,
		        midge_connack_string(rc));
		midge_client_free(client);
		return 1;
	}
	midge_loop_forever(client);
	midge_client_free(client);
	return 0;
}
