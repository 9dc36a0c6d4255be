/*
 * letter_pub - the lecture's chat, sending side: asks for the broker's address, then sends
 * each line typed on the topic "letter" until the line "exit".
 *
 * The Python it translates (paho-mqtt):
 *
 *     broker = input("Broker address: ")
 *     client = mqtt.Client()
 *     client.connect(broker, 1883, 60)
 *     client.loop_start()
 *     while True:
 *         text = input()
 *         if text == "exit":
 *             break
 *         client.publish("letter", text)
 *     client.disconnect()
 *     client.loop_stop()
 *
 * Usage: letter_pub [-h host] [-p port]   (without -h it asks "Broker address: ")
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <midge/midge.h>

/* Reads one line from stdin without its newline; false at end of input. */
static bool input(char *buf, size_t size)
{
	if (!fgets(buf, (int)size, stdin))
		return false;
	buf[strcspn(buf, "\r\n")] = '\0';
	return true;
}

int main(int argc, char **argv)
{
	char broker[256] = "", text[4096];
	int port = 1883, opt;

	while ((opt = getopt(argc, argv, "h:p:")) != -1) {
		if (opt == 'h')
			snprintf(broker, sizeof(broker), "%s", optarg);
		else if (opt == 'p')
			port = atoi(optarg);
		else {
			fprintf(stderr, "usage: letter_pub [-h host] [-p port]\n");
			return 2;
		}
	}
	if (broker[0] == '\0') {
		printf("Broker address: ");
		fflush(stdout);
		if (!input(broker, sizeof(broker)))
			return 1;
	}

	midge_client *client = midge_client_new(NULL, true, NULL, MIDGE_PROTOCOL_V311,
	                                        MIDGE_TRANSPORT_TCP);
	int rc = midge_connect(client, broker, port, 60);
	if (rc != MIDGE_OK) {
		fprintf(stderr, "letter_pub: cannot connect to %s:%d: %s\n", broker, port,
		        midge_connack_string(rc));
		midge_client_free(client);
		return 1;
	}
	midge_loop_start(client);

	int mid = 0;
	while (input(text, sizeof(text))) {
		if (strcmp(text, "exit") == 0)
			break;
		mid = midge_publish(client, "letter", text, strlen(text), 0, false, NULL);
	}

	/* Let the last message leave before saying goodbye (paho: wait_for_publish). */
	if (mid > 0)
		midge_wait_for_publish(client, mid, 5000);
	midge_disconnect(client);
	midge_loop_stop(client);
	midge_client_free(client);
	return 0;
}
