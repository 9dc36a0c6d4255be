/*
 * image_sub - the lecture's image receiver: writes each message on the topic "jpeg" to
 * data/image1.jpg, data/image2.jpg, ... (counting from 1; data/ is created in the current
 * directory, existing files are overwritten).
 *
 * The Python it translates (paho-mqtt):
 *
 *     count = 0
 *
 *     def on_connect(client, userdata, flags, rc):
 *         client.subscribe("jpeg")
 *
 *     def on_message(client, userdata, msg):
 *         global count
 *         count += 1
 *         with open("data/image%d.jpg" % count, "wb") as f:
 *             f.write(msg.payload)
 *
 *     os.makedirs("data", exist_ok=True)
 *     client = mqtt.Client()
 *     client.on_connect = on_connect
 *     client.on_message = on_message
 *     client.connect("localhost", 1883, 60)
 *     client.loop_forever()
 *
 * Usage: image_sub [-h host] [-p port]     (default localhost 1883)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <midge/midge.h>

/* Windows' mkdir takes no mode (the one line here that differs on Windows). */
#ifdef _WIN32
#include <direct.h>
#define mkdir(path, mode) _mkdir(path)
#endif

static int count;

static void on_connect(midge_client *client, void *userdata, int flags, int rc,
                       const midge_properties *props)
{
	midge_subscribe(client, "jpeg", 0);
}

static void on_message(midge_client *client, void *userdata, const midge_message *msg)
{
	char path[64];

	count++;
	snprintf(path, sizeof(path), "data/image%d.jpg", count);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(msg->payload, 1, msg->payloadlen, f) != msg->payloadlen) {
		fprintf(stderr, "image_sub: cannot write %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return;
	}
	fclose(f);
	printf("saved %s (%zu bytes)\n", path, msg->payloadlen);
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
			fprintf(stderr, "usage: image_sub [-h host] [-p port]\n");
			return 2;
		}
	}
	if (mkdir("data", 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "image_sub: cannot create data/: %s\n", strerror(errno));
		return 1;
	}

	midge_client *client = midge_client_new(NULL, true, NULL, MIDGE_PROTOCOL_V311,
	                                        MIDGE_TRANSPORT_TCP);
	midge_on_connect_set(client, on_connect);
	midge_on_message_set(client, on_message);

	int rc = midge_connect(client, host, port, 60);
	if (rc != MIDGE_OK) {
		fprintf(stderr, "image_sub: cannot connect to %s:%d: %s\n", host, port,
		        midge_connack_string(rc));
		midge_client_free(client);
		return 1;
	}
	midge_loop_forever(client);
	midge_client_free(client);
	return 0;
}
