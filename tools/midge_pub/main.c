/*
 * midge_pub - publish one message (or a file, stdin, each line of stdin) and exit:
 * mosquitto_pub's flags, debug output and exit status, on libmidge.
 *
 * One thread: midge_wait_for_publish runs the loop while it waits, and -l polls stdin and the
 * socket together, so the -d lines come out in the order things happen (a loop thread would
 * print its lines whenever it gets to them) and PINGREQs go out while stdin is quiet.
 * Like mosquitto_pub, -l sends every line it has before it turns to the socket again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <midge/midge.h>

#include "tools/common/cfg.h"
#include "tools/common/os.h"
#include "tools/common/client.h"

typedef struct payload {
	char *data; /* owned */
	size_t len;
} payload;

static void usage(void)
{
	int major, minor, revision;

	midge_lib_version(&major, &minor, &revision); /* the library's: the tool is its client */
	printf("midge_pub is a simple MQTT client that publishes a message on a single topic and "
	       "exits.\n"
	       "midge_pub version %d.%d.%d, mosquitto_pub's flags.\n\n"
	       "Usage: midge_pub {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL}\n"
	       "                 {-f file | -l | -n | -m message | -s}\n"
	       "                 [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time] "
	       "[-x session-expiry]\n"
	       "                 [-i id] [-I id_prefix]\n"
	       "                 [-d] [--quiet]\n"
	       "                 [-V protocol_version]\n"
	       "                 [--will-topic [--will-payload payload] [--will-qos qos] "
	       "[--will-retain]]\n"
	       "                 [-D command identifier value]\n"
	       "                 [{--cafile file | --capath dir} [--cert file] [--key file]\n"
	       "                  [--ciphers ciphers] [--insecure] [--tls-version version]\n"
	       "                  [--tls-use-os-certs]]\n"
	       "                 [--psk hex-key --psk-identity identity [--ciphers ciphers]]\n"
	       "       midge_pub --help\n\n"
	       " -c : disable clean session / enable a persistent session (needs -i).\n"
	       " -d : print debug messages.\n"
	       " -D : an MQTT 5 property: -D command identifier value, e.g. -D publish user-property k v.\n"
	       " -f : send the contents of a file as the message.\n"
	       " -h : MQTT host to connect to. Defaults to localhost.\n"
	       " -i : client id. Defaults to an id the broker assigns.\n"
	       " -I : client id prefix; the process id is appended.\n"
	       " -k : keepalive in seconds. Defaults to 60.\n"
	       " -L : mqtt[s]://[username[:password]@]host[:port]/topic\n"
	       "      or ws[s]://[username[:password]@]host[:port][/path] (MQTT over WebSockets; -t topic)\n"
	       " -l : read messages from stdin, sending a separate message for each line.\n"
	       " -m : message payload to send.\n"
	       " -n : send a null (zero length) message.\n"
	       " -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.\n"
	       " -P : password.\n"
	       " -q : QoS of the messages. Defaults to 0.\n"
	       " -r : the message should be retained.\n"
	       " -s : read the message from stdin, sending the entire input as one message.\n"
	       " -t : topic to publish to.\n"
	       " -u : username.\n"
	       " -V : MQTT protocol version: mqttv5 (5), mqttv311 (311) or mqttv31 (31). Defaults to "
	       "mqttv311.\n"
	       " -x : session expiry interval (MQTT 5), -1 for never.\n"
	       " --help : display this message.\n"
	       " --quiet : don't print error messages.\n"
	       " --repeat : with -f, -m, -n or -s, publish the message N times.\n"
	       " --repeat-delay : with --repeat, wait this many seconds between publishes.\n"
	       " --will-payload, --will-qos, --will-retain, --will-topic : the client's will.\n"
	       TOOL_TLS_HELP "\n"
	       "See midge_pub(1).\n",
	       major, minor, revision);
}

/* Reads all of f (a file or stdin) into p; binary safe. */
static int slurp(FILE *f, payload *p)
{
	size_t cap = 0;

	p->data = NULL;
	p->len = 0;
	for (;;) {
		size_t n;
		if (p->len == cap) {
			char *d;
			cap = cap ? cap * 2 : 65536;
			d = realloc(p->data, cap);
			if (!d)
				return -1;
			p->data = d;
		}
		n = fread(p->data + p->len, 1, cap - p->len, f);
		p->len += n;
		if (n == 0)
			return ferror(f) ? -1 : 0;
	}
}

static int load(const mg_cfg *cfg, payload *p)
{
	FILE *f;
	int rc;

	memset(p, 0, sizeof(*p));
	switch (cfg->pub_mode) {
	case MG_PUB_MESSAGE:
		p->data = strdup(cfg->message);
		p->len = strlen(cfg->message);
		return p->data ? 0 : -1;
	case MG_PUB_FILE:
		f = fopen(cfg->file, "rb");
		if (!f) {
			mg_err_printf(cfg, "Error: Unable to open file \"%s\".\n", cfg->file);
			mg_err_printf(cfg, "Error loading input file \"%s\".\n", cfg->file);
			return -1;
		}
		rc = slurp(f, p);
		fclose(f);
		if (rc)
			mg_err_printf(cfg, "Error loading input file \"%s\".\n", cfg->file);
		return rc;
	case MG_PUB_STDIN:
		rc = slurp(stdin, p);
		if (rc == 0 && p->len == 0) {
			mg_err_printf(cfg, "Error: Zero length input.\n");
			rc = -1;
		}
		if (rc)
			mg_err_printf(cfg, "Error loading input from stdin.\n");
		return rc;
	default:
		return 0; /* -n; -l reads as it goes */
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --repeat-delay: keep the connection served while waiting (and do not spin if it is gone:
 * the next publish reports that). */
static void loop_for(midge_client *c, double seconds)
{
	double end = now_s() + seconds;

	for (double left = seconds; left > 0; left = end - now_s()) {
		int ms = left > 1 ? 1000 : (int)(left * 1000) + 1;
		if (midge_loop(c, ms) != MIDGE_OK) {
			struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
}

static void on_publish(midge_client *c, void *ud, int mid, int rc, const midge_properties *p)
{
	const mg_cfg *cfg = ud;

	(void)c;
	(void)p;
	if (rc >= 0x80)
		mg_err_printf(cfg, "Warning: Publish %d failed: %s.\n", mid, midge_reason_string(rc));
}

/* Publishes one message; returns its mid or -1 after printing why. */
static int send1(const mg_cfg *cfg, midge_client *c, const void *data, size_t len,
                 const midge_properties *props)
{
	int mid = midge_publish(c, cfg->topic, data, len, cfg->qos, cfg->retain, props);

	if (mid < 0) {
		mg_err_printf(cfg, "Error: Publish returned %d: %s\n", mid, midge_strerror(mid));
		return -1;
	}
	return mid;
}

/* Lines of stdin read straight from fd 0 (mg_tool_read_stdin), so nothing waits in stdio's
 * buffer where a wait on the descriptor would not see it. */
typedef struct lines {
	char *buf; /* owned */
	size_t len, cap;
	bool eof;
} lines;

/* The next complete line (without '\n'), or at end of input the unterminated rest; its
 * length in *n. NULL when none is ready yet (or none is left, once l->eof). The line stays
 * valid until the next call. */
static char *next_line(lines *l, size_t *n, size_t *consumed)
{
	char *nl = l->len ? memchr(l->buf, '\n', l->len) : NULL;

	if (nl) {
		*n = (size_t)(nl - l->buf);
		*consumed = *n + 1;
		return l->buf;
	}
	if (l->eof && l->len) {
		*n = *consumed = l->len;
		return l->buf;
	}
	return NULL;
}

/* Wait up to ms for more of stdin (the socket wakes the wait too, so the caller runs the loop). */
static int read_more(lines *l, midge_client *c, int ms)
{
	ssize_t r;

	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		char *b = realloc(l->buf, cap);
		if (!b)
			return -1;
		l->buf = b;
		l->cap = cap;
	}
	r = mg_tool_read_stdin(c, l->buf + l->len, l->cap - l->len, ms);
	if (r == MG_TOOL_AGAIN)
		return 0;
	if (r < 0)
		return -1;
	if (r == 0)
		l->eof = true;
	l->len += (size_t)r;
	return 0;
}

/* -l: each line of stdin without its '\n' (a '\r' stays, as with mosquitto_pub). While stdin
 * is quiet the loop runs, so the broker hears PINGREQs. */
static int publish_lines(const mg_cfg *cfg, midge_client *c, const midge_properties *props)
{
	lines l = {0};
	int last = 0;

	for (;;) {
		size_t n, used;
		char *line = next_line(&l, &n, &used);

		if (line) {
			last = send1(cfg, c, line, n, props);
			memmove(l.buf, l.buf + used, l.len - used);
			l.len -= used;
			if (last < 0)
				break;
			continue;
		}
		if (l.eof)
			break;
		if (read_more(&l, c, 1000)) {
			last = -1;
			break;
		}
		midge_loop(c, 0);
	}
	free(l.buf);
	return last;
}

static int publish_all(const mg_cfg *cfg, midge_client *c, const payload *p)
{
	midge_properties *props = mg_tool_props(cfg, MIDGE_CMD_PUBLISH);
	int last = 0;

	if (cfg->pub_mode == MG_PUB_LINES) {
		last = publish_lines(cfg, c, props);
	} else {
		for (long i = 0; i < cfg->repeat; i++) {
			if (i > 0 && cfg->repeat_delay > 0)
				loop_for(c, cfg->repeat_delay);
			last = send1(cfg, c, p->data, p->len, props);
			if (last < 0)
				break;
		}
	}
	midge_properties_free(props);
	if (last > 0)
		last = midge_wait_for_publish(c, last, -1);
	return last < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	mg_cfg cfg;
	midge_client *c = NULL;
	payload p = {0};
	int rc;

	rc = mg_cfg_parse(&cfg, MG_TOOL_PUB, argc, argv);
	if (rc == 2) {
		usage();
		rc = 1;
		goto out;
	}
	if (rc) {
		mg_tool_usage_hint(&cfg);
		goto out;
	}
	if (!cfg.topic || cfg.pub_mode == MG_PUB_NONE) {
		fprintf(stderr, "Error: Both topic and message must be supplied.\n");
		usage();
		rc = 1;
		goto out;
	}
	if (load(&cfg, &p)) {
		rc = 1;
		goto out;
	}
	c = mg_tool_client_new(&cfg, &cfg);
	if (!c) {
		rc = 1;
		goto out;
	}
	midge_on_publish_set(c, on_publish);
	rc = mg_tool_connect(&cfg, c);
	if (rc)
		goto out;
	rc = publish_all(&cfg, c, &p);
	midge_disconnect(c);
out:
	midge_client_free(c);
	free(p.data);
	mg_cfg_free(&cfg);
	return rc;
}
