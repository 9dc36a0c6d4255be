/*
 * test/client/c/mgtest.c - drives libmidge from the command line for the pytest tests in
 * test/client/: options, then a script of commands, one per argument group. Every callback
 * prints one line to stdout, so a test asserts on what the library reported.
 *
 *   mgtest [-p port] [-V 3|4|5] [-i id] [-n] [-k keepalive] [-d] [-x session_expiry] CMD...
 *     -n  clean_session / clean_start false      -d  print on_log lines ("log: ...")
 *   commands:
 *     connect | connect_async | reconnect | disconnect | start | stop
 *     will TOPIC PAYLOAD QOS RETAIN
 *     sub TOPIC QOS | subopt TOPIC OPTIONS | unsub TOPIC
 *     sub2 T1 OPTIONS1 T2 OPTIONS2 | unsub2 T1 T2   two filters in one (UN)SUBSCRIBE
 *     pub TOPIC PAYLOAD QOS RETAIN      prints "pub mid=N" (or "pub err=E")
 *     pubprops TOPIC PAYLOAD QOS        with user props a=1,b=2, content type, response topic,
 *                                       correlation data, message expiry 60
 *     pubbig TOPIC BYTES QOS            payload byte i = i*7 mod 251
 *     waitpub MS                        midge_wait_for_publish(last mid)
 *     ispub                             midge_is_published(last mid): prints "ispub 0|1"
 *     recv N MS                         run the loop (or wait, when loop_start runs) until N
 *                                       messages arrived or MS passed
 *     loop MS | sleep MS | abort        abort: shut the socket down without DISCONNECT
 *     forever                           midge_loop_forever
 *     pubalias TOPIC PAYLOAD ALIAS      QoS 1 with a 5.0 Topic Alias ("" topic: the alias only)
 *     extloop MS                        run the program's own poll loop (socket API) for MS
 *   -u USER -P PASSWORD   midge_username_pw_set      -T MS  midge_connect_timeout_set
 *   -h HOST   connect here (default 127.0.0.1)  -A N  Topic Alias Maximum N in CONNECT (5.0)
 *   -S TOPIC  subscribe (QoS 1) in on_connect    -C N  midge_disconnect from the Nth on_message
 *   -E        midge_disconnect from on_subscribe  -R N  Receive Maximum N in CONNECT (5.0)
 *   -L MS     on_log sleeps MS before printing a "sending" line (widens thread races)
 *   -W        every callback but on_log made in the main thread prints "callback NAME in main"
 *             (with `start` first, midge.h says none is)
 *   -M        manual acks: on_message prints "manual mid=N qos=Q" and keeps it for ackall
 *   -b ADDR   connect with midge_connect_bind from ADDR (no CONNECT properties)
 *   -X PORT   through the SOCKS5 proxy at 127.0.0.1:PORT   -Y USER:PASS  its credentials
 *   -w PATH   MIDGE_TRANSPORT_WEBSOCKETS, midge_ws_set_options(PATH, -H's lines or NULL)
 *   -H LINES  extra header lines of the WebSocket upgrade ("Name: v\n...")
 *   loopwrite                          one midge_loop_write: "loopwrite rc=R"
 *   ack MID QOS | ackall               midge_ack one / every kept message: "ack rc=R"
 *   log lines print as "log: [ms since start] line"
 */
#include <midge/midge.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>
#include <pthread.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int received;
static int last_mid;
static bool threaded;
static const char *resub;   /* -S: subscribe to this in on_connect (paho's habit) */
static int stop_after = -1; /* -C: disconnect from on_message after this many messages */
static long long t0;
static const char *host = "127.0.0.1";
static long alias_max = -1; /* -A: Topic Alias Maximum in CONNECT */
static long recv_max = -1;  /* -R: Receive Maximum in CONNECT */
static bool disc_on_sub;    /* -E: disconnect from on_subscribe (mosquitto_sub -E) */
static int log_delay_ms;    /* -L */
static bool manual;         /* -M */
static const char *bind_addr; /* -b */
static int proxy_port;        /* -X */
static char *proxy_cred;      /* -Y */
static int unacked[64][2], n_unacked;
static bool where;          /* -W */
static pthread_t main_thread; /* set before any thread starts, read-only after */

static void in_main(const char *name)
{
	if (where && pthread_equal(pthread_self(), main_thread))
		printf("callback %s in main\n", name);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_props(const midge_properties *p)
{
	if (!p || midge_properties_count(p) == 0)
		return;
	const char *s;
	uint32_t u;
	if ((s = midge_properties_get_string(p, MIDGE_PROP_CONTENT_TYPE)))
		printf(" ct=%s", s);
	if ((s = midge_properties_get_string(p, MIDGE_PROP_RESPONSE_TOPIC)))
		printf(" rt=%s", s);
	const void *d;
	size_t dl;
	if (midge_properties_get_binary(p, MIDGE_PROP_CORRELATION_DATA, &d, &dl) == MIDGE_OK)
		printf(" cd=%.*s", (int)dl, (const char *)d);
	if (midge_properties_get_int(p, MIDGE_PROP_MESSAGE_EXPIRY, &u) == MIDGE_OK)
		printf(" exp=%u", u);
	if (midge_properties_get_int(p, MIDGE_PROP_PAYLOAD_FORMAT, &u) == MIDGE_OK)
		printf(" pf=%u", u);
	if (midge_properties_get_string(p, MIDGE_PROP_ASSIGNED_CLIENT_ID))
		printf(" assigned");
	int n = midge_properties_user_count(p);
	for (int i = 0; i < n; i++) {
		const char *k, *v;
		midge_properties_user_at(p, i, &k, &v);
		printf(" user:%s=%s", k, v);
	}
}

static void on_connect(midge_client *c, void *ud, int flags, int rc, const midge_properties *p)
{
	in_main("on_connect");
	printf("on_connect flags=%d rc=%d", flags, rc);
	print_props(p);
	printf("\n");
	if (resub && rc == 0)
		printf("resub rc=%d\n", midge_subscribe(c, resub, 1));
}

static void on_connect_fail(midge_client *c, void *ud, int err)
{
	in_main("on_connect_fail");
	printf("on_connect_fail err=%d\n", err);
}

static void on_disconnect(midge_client *c, void *ud, int flags, int rc, const midge_properties *p)
{
	in_main("on_disconnect");
	printf("on_disconnect flags=%d rc=%d\n", flags, rc);
}

static void on_publish(midge_client *c, void *ud, int mid, int rc, const midge_properties *p)
{
	in_main("on_publish");
	printf("on_publish mid=%d rc=%d\n", mid, rc);
}

static void on_subscribe(midge_client *c, void *ud, int mid, int n, const int *g, const midge_properties *p)
{
	in_main("on_subscribe");
	printf("on_subscribe mid=%d n=%d", mid, n);
	for (int i = 0; i < n; i++)
		printf(" %d", g[i]);
	printf("\n");
	if (disc_on_sub)
		printf("disconnect-in-callback rc=%d\n", midge_disconnect(c));
}

static void on_unsubscribe(midge_client *c, void *ud, int mid, int n, const int *g, const midge_properties *p)
{
	in_main("on_unsubscribe");
	printf("on_unsubscribe mid=%d n=%d", mid, n);
	for (int i = 0; i < n; i++)
		printf(" %d", g[i]);
	printf("\n");
}

static void on_message(midge_client *c, void *ud, const midge_message *m)
{
	in_main("on_message");
	printf("msg topic=%s qos=%d retain=%d dup=%d len=%zu", m->topic, m->qos, m->retain, m->dup,
	       m->payloadlen);
	if (m->payloadlen <= 200) {
		/* the library promises a '\0' after the payload */
		if (((const char *)m->payload)[m->payloadlen] != '\0')
			printf(" NOT-TERMINATED");
		printf(" payload=%s", (const char *)m->payload);
	} else {
		const unsigned char *b = m->payload;
		size_t bad = 0;
		for (size_t i = 0; i < m->payloadlen; i++)
			bad += b[i] != (unsigned char)((i * 7) % 251);
		printf(" pattern_errors=%zu", bad);
	}
	print_props(m->properties);
	printf("\n");
	if (manual && m->qos) {
		printf("manual mid=%d qos=%d\n", m->mid, m->qos);
		pthread_mutex_lock(&mu);
		if (n_unacked < 64) {
			unacked[n_unacked][0] = m->mid;
			unacked[n_unacked++][1] = m->qos;
		}
		pthread_mutex_unlock(&mu);
	}
	pthread_mutex_lock(&mu);
	int r = ++received;
	pthread_mutex_unlock(&mu);
	if (r == stop_after)
		printf("disconnect-in-callback rc=%d\n", midge_disconnect(c));
}

static void on_log(midge_client *c, void *ud, int level, const char *line)
{
	if (log_delay_ms && strstr(line, " sending "))
		usleep((useconds_t)log_delay_ms * 1000);
	printf("log: [%lld] %s\n", now_ms() - t0, line);
}

static int get_received(void)
{
	pthread_mutex_lock(&mu);
	int r = received;
	pthread_mutex_unlock(&mu);
	return r;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	t0 = now_ms();
	int port = 1883, proto = 4, ka = 60, opt;
	const char *id = NULL;
	bool clean = true, debug = false;
	long expiry = -1;
	const char *user = NULL, *pass = NULL;
	int ctimeout = 0;
	const char *ws_path = NULL, *ws_headers = NULL;
	while ((opt = getopt(argc, argv, "+p:V:i:nk:dx:S:C:h:A:u:P:T:ER:L:WMb:X:Y:w:H:")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'V': proto = atoi(optarg); break;
		case 'i': id = optarg; break;
		case 'n': clean = false; break;
		case 'k': ka = atoi(optarg); break;
		case 'd': debug = true; break;
		case 'x': expiry = atol(optarg); break;
		case 'S': resub = optarg; break;
		case 'h': host = optarg; break;
		case 'A': alias_max = atol(optarg); break;
		case 'u': user = optarg; break;
		case 'P': pass = optarg; break;
		case 'T': ctimeout = atoi(optarg); break;
		case 'C': stop_after = atoi(optarg); break;
		case 'E': disc_on_sub = true; break;
		case 'R': recv_max = atol(optarg); break;
		case 'L': log_delay_ms = atoi(optarg); break;
		case 'M': manual = true; break;
		case 'b': bind_addr = optarg; break;
		case 'X': proxy_port = atoi(optarg); break;
		case 'Y': proxy_cred = optarg; break;
		case 'W': where = true; break;
		case 'w': ws_path = optarg; break;
		case 'H': ws_headers = optarg; break;
		default: return 2;
		}
	}
	main_thread = pthread_self();
	midge_client *c = midge_client_new(id, clean, NULL, proto,
	                                   ws_path ? MIDGE_TRANSPORT_WEBSOCKETS : MIDGE_TRANSPORT_TCP);
	if (!c) {
		printf("client_new failed\n");
		return 1;
	}
	if (ws_path)
		printf("ws_set_options rc=%d\n", midge_ws_set_options(c, ws_path, ws_headers));
	midge_on_connect_set(c, on_connect);
	midge_on_connect_fail_set(c, on_connect_fail);
	midge_on_disconnect_set(c, on_disconnect);
	midge_on_publish_set(c, on_publish);
	midge_on_subscribe_set(c, on_subscribe);
	midge_on_unsubscribe_set(c, on_unsubscribe);
	midge_on_message_set(c, on_message);
	if (debug)
		midge_on_log_set(c, on_log);
	midge_reconnect_delay_set(c, 1, 2);
	if (user || pass)
		printf("username_pw_set rc=%d\n", midge_username_pw_set(c, user, pass));
	if (ctimeout)
		midge_connect_timeout_set(c, ctimeout);
	if (manual)
		midge_manual_ack_set(c, true);
	if (proxy_port) {
		char *ppass = proxy_cred ? strchr(proxy_cred, ':') : NULL;
		if (ppass)
			*ppass++ = '\0';
		printf("proxy_set rc=%d\n", midge_proxy_set(c, MIDGE_PROXY_SOCKS5, "127.0.0.1",
		                                             proxy_port, proxy_cred, ppass));
	}

	for (int i = optind; i < argc; i++) {
		const char *cmd = argv[i];
#define ARG(k) (i + (k) < argc ? argv[i + (k)] : "")
		if (!strcmp(cmd, "connect") || !strcmp(cmd, "connect_async")) {
			midge_properties *p = NULL;
			if (expiry >= 0 || alias_max >= 0 || recv_max >= 0)
				p = midge_properties_new();
			if (recv_max >= 0)
				midge_properties_set_receive_maximum(p, (uint16_t)recv_max);
			if (expiry >= 0)
				midge_properties_set_session_expiry(p, (uint32_t)expiry);
			if (alias_max >= 0)
				midge_properties_set_topic_alias_maximum(p, (uint16_t)alias_max);
			int rc = bind_addr ? midge_connect_bind(c, host, port, ka, bind_addr) :
			         !strcmp(cmd, "connect") ? midge_connect_ex(c, host, port, ka, clean, p)
			                                 : midge_connect_async_ex(c, host, port, ka, clean, p);
			midge_properties_free(p);
			printf("%s rc=%d\n", cmd, rc);
		} else if (!strcmp(cmd, "reconnect")) {
			printf("reconnect rc=%d\n", midge_reconnect(c));
		} else if (!strcmp(cmd, "disconnect")) {
			printf("disconnect rc=%d\n", midge_disconnect(c));
		} else if (!strcmp(cmd, "start")) {
			threaded = true;
			printf("start rc=%d\n", midge_loop_start(c));
		} else if (!strcmp(cmd, "stop")) {
			printf("stop rc=%d\n", midge_loop_stop(c));
			threaded = false;
		} else if (!strcmp(cmd, "will")) {
			int rc = midge_will_set(c, ARG(1), ARG(2), strlen(ARG(2)), atoi(ARG(3)), atoi(ARG(4)), NULL);
			printf("will rc=%d\n", rc);
			i += 4;
		} else if (!strcmp(cmd, "sub")) {
			printf("sub rc=%d\n", midge_subscribe(c, ARG(1), atoi(ARG(2))));
			i += 2;
		} else if (!strcmp(cmd, "subopt")) {
			const char *t = ARG(1);
			int o = (int)strtol(ARG(2), NULL, 0);
			printf("subopt rc=%d\n", midge_subscribe_ex(c, &t, &o, 1, NULL));
			i += 2;
		} else if (!strcmp(cmd, "sub2")) {
			const char *t[2] = {ARG(1), ARG(3)};
			int o[2] = {(int)strtol(ARG(2), NULL, 0), (int)strtol(ARG(4), NULL, 0)};
			printf("sub2 rc=%d\n", midge_subscribe_ex(c, t, o, 2, NULL));
			i += 4;
		} else if (!strcmp(cmd, "unsub2")) {
			const char *t[2] = {ARG(1), ARG(2)};
			printf("unsub2 rc=%d\n", midge_unsubscribe_ex(c, t, 2, NULL));
			i += 2;
		} else if (!strcmp(cmd, "unsub")) {
			printf("unsub rc=%d\n", midge_unsubscribe(c, ARG(1)));
			i += 1;
		} else if (!strcmp(cmd, "pub") || !strcmp(cmd, "pubprops")) {
			bool props = !strcmp(cmd, "pubprops");
			midge_properties *p = NULL;
			if (props) {
				p = midge_properties_new();
				midge_properties_add_user(p, "a", "1");
				midge_properties_add_user(p, "b", "2");
				midge_properties_set_content_type(p, "text/plain");
				midge_properties_set_response_topic(p, "resp/t");
				midge_properties_set_correlation_data(p, "corr-01", 7);
				midge_properties_set_message_expiry(p, 60);
				midge_properties_set_payload_format(p, 1);
			}
			int rc = midge_publish(c, ARG(1), ARG(2), strlen(ARG(2)), atoi(ARG(3)),
			                       props ? false : atoi(ARG(4)), p);
			midge_properties_free(p);
			if (rc > 0) {
				last_mid = rc;
				printf("pub mid=%d\n", rc);
			} else {
				printf("pub err=%d\n", rc);
			}
			i += props ? 3 : 4;
		} else if (!strcmp(cmd, "pubalias")) {
			midge_properties *p = midge_properties_new();
			midge_properties_set_topic_alias(p, (uint16_t)atoi(ARG(3)));
			int rc = midge_publish(c, ARG(1), ARG(2), strlen(ARG(2)), 1, false, p);
			midge_properties_free(p);
			if (rc > 0)
				last_mid = rc;
			printf("pub %s=%d\n", rc > 0 ? "mid" : "err", rc);
			i += 3;
		} else if (!strcmp(cmd, "extloop")) {
			/* the program's own poll(2) loop: socket / want_write / loop_read / loop_write /
			 * loop_misc */
			long long end = now_ms() + atoi(ARG(1));
			while (now_ms() < end) {
				int fd = midge_socket(c);
				if (fd < 0)
					break;
				struct pollfd pf = { .fd = fd, .events = POLLIN };
				if (midge_want_write(c))
					pf.events |= POLLOUT;
				int n = poll(&pf, 1, 100);
				int rc = MIDGE_OK;
				if (n > 0 && (pf.revents & (POLLIN | POLLHUP | POLLERR)))
					rc = midge_loop_read(c);
				if (rc == MIDGE_OK && n > 0 && (pf.revents & POLLOUT))
					rc = midge_loop_write(c);
				if (rc == MIDGE_OK)
					rc = midge_loop_misc(c);
				if (rc != MIDGE_OK) {
					printf("extloop rc=%d\n", rc);
					break;
				}
			}
			i += 1;
		} else if (!strcmp(cmd, "pubbig")) {
			size_t n = (size_t)atol(ARG(2));
			unsigned char *b = malloc(n);
			for (size_t k = 0; k < n; k++)
				b[k] = (unsigned char)((k * 7) % 251);
			int rc = midge_publish(c, ARG(1), b, n, atoi(ARG(3)), false, NULL);
			free(b);
			if (rc > 0)
				last_mid = rc;
			printf("pub %s=%d\n", rc > 0 ? "mid" : "err", rc);
			i += 3;
		} else if (!strcmp(cmd, "loopwrite")) {
			printf("loopwrite rc=%d\n", midge_loop_write(c));
		} else if (!strcmp(cmd, "ack")) {
			printf("ack rc=%d\n", midge_ack(c, atoi(ARG(1)), atoi(ARG(2))));
			i += 2;
		} else if (!strcmp(cmd, "ackall")) {
			pthread_mutex_lock(&mu);
			for (int k = 0; k < n_unacked; k++)
				printf("ack rc=%d\n", midge_ack(c, unacked[k][0], unacked[k][1]));
			n_unacked = 0;
			pthread_mutex_unlock(&mu);
		} else if (!strcmp(cmd, "ispub")) {
			printf("ispub %d\n", midge_is_published(c, last_mid));
		} else if (!strcmp(cmd, "waitpub")) {
			printf("waitpub rc=%d\n", midge_wait_for_publish(c, last_mid, atoi(ARG(1))));
			i += 1;
		} else if (!strcmp(cmd, "recv")) {
			int want = atoi(ARG(1));
			long long end = now_ms() + atoi(ARG(2));
			while (get_received() < want && now_ms() < end) {
				if (threaded)
					usleep(10000);
				else if (midge_loop(c, 100) == MIDGE_ERR_NO_CONN)
					usleep(10000);
			}
			printf("recv %d\n", get_received());
			i += 2;
		} else if (!strcmp(cmd, "loop")) {
			long long end = now_ms() + atoi(ARG(1));
			while (now_ms() < end) {
				if (threaded)
					usleep(10000);
				else if (midge_loop(c, 100) == MIDGE_ERR_NO_CONN)
					usleep(10000);
			}
			i += 1;
		} else if (!strcmp(cmd, "sleep")) {
			usleep((useconds_t)atoi(ARG(1)) * 1000);
			i += 1;
		} else if (!strcmp(cmd, "forever")) {
			printf("forever rc=%d\n", midge_loop_forever(c));
		} else if (!strcmp(cmd, "abort")) {
			shutdown(midge_socket(c), SHUT_RDWR);
		} else {
			printf("unknown command %s\n", cmd);
			return 2;
		}
	}
	midge_client_free(c);
	printf("done\n");
	return 0;
}
