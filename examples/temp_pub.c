/*
 * temp_pub - the lecture's temperature sender: reads integers typed by the user and sends
 * each on the topic "room/temp"; 0 ends the program.
 *
 * The Python it translates (paho-mqtt):
 *
 *     client = mqtt.Client()
 *     client.connect("localhost", 1883, 60)
 *     client.loop_start()
 *     while True:
 *         temp = int(input("Temperature: "))
 *         if temp == 0:
 *             break
 *         client.publish("room/temp", temp)
 *     client.disconnect()
 *     client.loop_stop()
 *
 * Usage: temp_pub [-h host] [-p port]      (default localhost 1883)
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <midge/midge.h>

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
			fprintf(stderr, "usage: temp_pub [-h host] [-p port]\n");
			return 2;
		}
	}

	midge_client *client = midge_client_new(NULL, true, NULL, MIDGE_PROTOCOL_V311,
	                                        MIDGE_TRANSPORT_TCP);
	int rc = midge_connect(client, host, port, 60);
	if (rc != MIDGE_OK) {
		fprintf(stderr, "temp_pub: cannot connect to %s:%d: %s\n", host, port,
		        midge_connack_string(rc));
		midge_client_free(client);
		return 1;
	}
	midge_loop_start(client);

	int temp, mid = 0;
	for (;;) {
		printf("Temperature: ");
		fflush(stdout);
		if (scanf("%d", &temp) != 1 || temp == 0)
			break;
		/* paho sends str(temp): the payload is the number as text. */
		char payload[16];
		int len = snprintf(payload, sizeof(payload), "%d", temp);
		mid = midge_publish(client, "room/temp", payload, (size_t)len, 0, false, NULL);
	}
	printf("\n");

	if (mid > 0)
		midge_wait_for_publish(client, mid, 5000);
	midge_disconnect(client);
	midge_loop_stop(client);
	midge_client_free(client);
	return 0;
}
