/*
 * midge_sub - subscribe to topics and print the messages: mosquitto_sub's flags, output and
 * exit status, on libmidge.
 *
 * One thread: the loop runs here in slices of at most 100 ms, so -W and SIGINT/SIGTERM are
 * noticed promptly and every callback runs in this thread (no locks needed for the state).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <midge/midge.h>

#include "tools/common/cfg.h"
#include "tools/common/client.h"
#include "tools/common/format.h"

#define EXIT_TIMED_OUT 27 /* mosquitto_sub's status when -W runs out */

typedef struct sub {
	mg_cfg cfg;
	midge_client *c;
	bool processing; /* false once -C / --retained-only has what it wants */
	bool disconnecting;
	long count;
	int last_mid; /* the last --remove-retained publish; disconnect after it completes */
} sub;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void finish(sub *s)
{
	if (!s->disconnecting) {
		s->disconnecting = true;
		midge_disconnect(s->c);
	}
}

static void on_connect(midge_client *c, void *ud, int flags, int rc, const midge_properties *p)
{
	sub *s = ud;
	midge_properties *props;
	int *opts;

	(void)flags;
	(void)p;
	if (rc != 0)
		return; /* mg_tool_connect / the reconnect path reports it */
	if (s->cfg.ntopics > 0) {
		opts = calloc((size_t)s->cfg.ntopics, sizeof(*opts));
		if (!opts) {
			finish(s);
			return;
		}
		for (int i = 0; i < s->cfg.ntopics; i++)
			opts[i] = s->cfg.qos;
		props = mg_tool_props(&s->cfg, MIDGE_CMD_SUBSCRIBE);
		rc = midge_subscribe_ex(c, s->cfg.topics, opts, s->cfg.ntopics, props);
		midge_properties_free(props);
		free(opts);
		if (rc < 0) {
			mg_err_printf(&s->cfg, "Error: %s\n", midge_strerror(rc));
			finish(s);
			return;
		}
	}
	props = mg_tool_props(&s->cfg, MIDGE_CMD_UNSUBSCRIBE);
	for (int i = 0; i < s->cfg.nunsub_topics; i++)
		midge_unsubscribe_ex(c, &s->cfg.unsub_topics[i], 1, props);
	midge_properties_free(props);
}

static void on_subscribe(midge_client *c, void *ud, int mid, int count, const int *granted,
                         const midge_properties *p)
{
	sub *s = ud;

	(void)c;
	(void)p;
	if (s->cfg.debug && !s->cfg.quiet) {
		printf("Subscribed (mid: %d): %d", mid, count > 0 ? granted[0] : 0);
		for (int i = 1; i < count; i++)
			printf(", %d", granted[i]);
		printf("\n");
		fflush(stdout);
	}
	if (s->cfg.exit_after_sub)
		finish(s);
}

static void on_unsubscribe(midge_client *c, void *ud, int mid, int count, const int *codes,
                           const midge_properties *p)
{
	sub *s = ud;

	(void)c;
	(void)mid;
	(void)count;
	(void)codes;
	(void)p;
	/* -E with only -U: nothing to wait for but the UNSUBACK. */
	if (s->cfg.exit_after_sub && s->cfg.ntopics == 0)
		finish(s);
}

static bool filtered_out(const sub *s, const char *topic)
{
	for (int i = 0; i < s->cfg.nfilter_outs; i++) {
		bool match;
		if (midge_topic_matches_sub(s->cfg.filter_outs[i], topic, &match) == MIDGE_OK &&
		    match)
			return true;
	}
	return false;
}

static void on_message(midge_client *c, void *ud, const midge_message *m)
{
	sub *s = ud;

	if (!s->processing)
		return;
	if (s->cfg.retained_only && !m->retain) {
		s->processing = false;
		if (s->last_mid == 0)
			finish(s);
		return;
	}
	if (m->retain && s->cfg.no_retain)
		return;
	if (filtered_out(s, m->topic))
		return;
	if (s->cfg.remove_retained && m->retain) {
		int mid = midge_publish(c, m->topic, NULL, 0, 1, true, NULL);
		if (mid > 0)
			s->last_mid = mid;
	}
	mg_print_message(stdout, m, s->cfg.format, s->cfg.verbose, s->cfg.eol);
	if (s->cfg.msg_count > 0 && ++s->count == s->cfg.msg_count) {
		s->processing = false;
		if (s->last_mid == 0)
			finish(s);
	}
}

static void on_publish(midge_client *c, void *ud, int mid, int rc, const midge_properties *p)
{
	sub *s = ud;

	(void)c;
	(void)rc;
	(void)p;
	if (!s->processing && (mid == s->last_mid || s->last_mid == 0))
		finish(s);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	int major, minor, revision;

	midge_lib_version(&major, &minor, &revision); /* the library's: the tool is its client */
	printf("midge_sub is a simple MQTT client that subscribes to topics and prints the messages "
	       "it receives.\n"
	       "midge_sub version %d.%d.%d, mosquitto_sub's flags.\n\n"
	       "Usage: midge_sub {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL "
	       "[-t topic]}\n"
	       "                 [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]\n"
	       "                 [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained] "
	       "[-T filter_out] [-U topic ...]\n"
	       "                 [-F format] [-W timeout_secs]\n"
	       "                 [-i id] [-I id_prefix]\n"
	       "                 [-d] [-N] [--quiet] [-v]\n"
	       "                 [-V protocol_version]\n"
	       "                 [--will-topic [--will-payload payload] [--will-qos qos] "
	       "[--will-retain]]\n"
	       "                 [-D command identifier value]\n"
	       "                 [{--cafile file | --capath dir} [--cert file] [--key file]\n"
	       "                  [--ciphers ciphers] [--insecure] [--tls-version version]\n"
	       "                  [--tls-use-os-certs]]\n"
	       "                 [--psk hex-key --psk-identity identity [--ciphers ciphers]]\n"
	       "       midge_sub --help\n\n"
	       " -c : disable clean session / enable a persistent session (needs -i).\n"
	       " -C : disconnect and exit after receiving 'msg_count' messages.\n"
	       " -d : print debug messages.\n"
	       " -D : an MQTT 5 property: -D command identifier value, e.g. -D subscribe "
	       "subscription-identifier 7.\n"
	       " -E : exit once all subscriptions have been acknowledged by the broker.\n"
	       " -F : output format (%%t topic, %%p payload, %%x hex, %%q qos, %%r retain, %%l length,\n"
	       "      %%m mid, %%I ISO time, %%U Unix time, %%j JSON, @X strftime, \\n \\t ...).\n"
	       " -h : MQTT host to connect to. Defaults to localhost.\n"
	       " -i : client id. Defaults to an id the broker assigns.\n"
	       " -I : client id prefix; the process id is appended.\n"
	       " -k : keepalive in seconds. Defaults to 60.\n"
	       " -L : mqtt[s]://[username[:password]@]host[:port]/topic\n"
	       "      or ws[s]://[username[:password]@]host[:port][/path] (MQTT over WebSockets; -t topic)\n"
	       " -N : do not add an end of line character when printing the payload.\n"
	       " -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.\n"
	       " -P : password.\n"
	       " -q : QoS of the subscriptions. Defaults to 0.\n"
	       " -R : do not print stale messages (those with retain set).\n"
	       " -t : topic filter to subscribe to. May be repeated.\n"
	       " -T : topic filter to leave out of the output. May be repeated.\n"
	       " -u : username.\n"
	       " -U : unsubscribe from a topic filter. May be repeated.\n"
	       " -v : print the topic before each payload.\n"
	       " -V : MQTT protocol version: mqttv5 (5), mqttv311 (311) or mqttv31 (31). Defaults to "
	       "mqttv311.\n"
	       " -W : exit (status 27) after this many seconds.\n"
	       " -x : session expiry interval (MQTT 5), -1 for never.\n"
	       " --help : display this message.\n"
	       " --quiet : don't print error messages.\n"
	       " --retained-only : only print retained messages; exit at the first non-retained one.\n"
	       " --remove-retained : clear each retained message received (use -T to spare some).\n"
	       " --will-payload, --will-qos, --will-retain, --will-topic : the client's will.\n"
	       TOOL_TLS_HELP "\n"
	       "See midge_sub(1).\n",
	       major, minor, revision);
}

/* Runs the loop until we disconnect, a signal or -W. Like mosquitto_sub's loop_forever it
 * reconnects (every second) when the connection is lost. Returns the exit status. */
static int run(sub *s)
{
	double deadline = s->cfg.timeout ? now_s() + (double)s->cfg.timeout : 0;

	for (;;) {
		int slice = 100, rc;

		if (stop_signal) {
			finish(s);
			return 0;
		}
		if (deadline && now_s() >= deadline) {
			finish(s);
			mg_err_printf(&s->cfg, "Timed out\n");
			return EXIT_TIMED_OUT;
		}
		rc = midge_loop(s->c, slice);
		if (s->disconnecting)
			return 0;
		if (rc == MIDGE_OK)
			continue;
		/* Lost: try again once a second, quietly, like libmosquitto's loop_forever (-d
		 * shows the reconnection). */
		for (int i = 0; i < 10 && !stop_signal; i++)
			usleep(100 * 1000);
		if (!stop_signal && !(deadline && now_s() >= deadline))
			midge_reconnect(s->c);
	}
}

int main(int argc, char **argv)
{
	static sub s;
	int rc;

	rc = mg_cfg_parse(&s.cfg, MG_TOOL_SUB, argc, argv);
	if (rc == 2) {
		usage();
		goto out;
	}
	if (rc) {
		mg_tool_usage_hint(&s.cfg);
		goto out;
	}
	if (s.cfg.no_retain && s.cfg.retained_only) {
		fprintf(stderr, "\nError: Combining '-R' and '--retained-only' makes no sense.\n");
		rc = 1;
		goto out;
	}
	if (s.cfg.format && mg_format_check(s.cfg.format)) {
		mg_tool_usage_hint(&s.cfg);
		rc = 1;
		goto out;
	}
	s.processing = true;
	s.c = mg_tool_client_new(&s.cfg, &s);
	if (!s.c) {
		rc = 1;
		goto out;
	}
	midge_on_connect_set(s.c, on_connect);
	midge_on_subscribe_set(s.c, on_subscribe);
	midge_on_unsubscribe_set(s.c, on_unsubscribe);
	midge_on_message_set(s.c, on_message);
	midge_on_publish_set(s.c, on_publish);

	/* signal(), not sigaction: ISO C, so Windows has it too (Ctrl-C is SIGINT there). */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	rc = mg_tool_connect(&s.cfg, s.c);
	if (rc == 0)
		rc = run(&s);
	else if (rc > 0)
		midge_disconnect(s.c);
out:
	midge_client_free(s.c);
	mg_cfg_free(&s.cfg);
	return rc == 2 ? 1 : rc;
}
