/*
 * tools/midge_bench/main.c - options, the connections of each scenario, and the phases of
 * a run (see bench.h). The main thread only watches the clock, samples CPU and memory at
 * the edges of the measured window, and waits for the drain; the workers do all I/O.
 */
#include "tools/midge_bench/bench.h"

#include <openssl/ssl.h>

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

mb_run *mb_g;

static const char *scenario_names[] = {"conn", "pairs", "fanin", "fanout", "shared", "hs"};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: midge_bench SCENARIO [options]\n"
	        "scenarios:\n"
	        "  conn     open --clients connections and hold them for --duration\n"
	        "  pairs    --clients publisher -> subscriber pairs, one topic each\n"
	        "  fanin    --clients publishers -> 1 subscriber on a wildcard\n"
	        "  fanout   1 publisher -> --clients subscribers\n"
	        "  shared   --clients publishers -> a $share/g/... group of --subscribers\n"
	        "  hs       TLS connections set up per second (handshake, CONNECT, CONNACK, close)\n"
	        "           by --clients loops at once; needs --cafile\n"
	        "options:\n"
	        "  -h, --host HOST         broker address (127.0.0.1)\n"
	        "  -p, --port PORT         broker port (1883)\n"
	        "  -q, --qos 0|1|2         QoS of publications and subscriptions (0)\n"
	        "  -s, --size BYTES        payload size, at least 16 (16)\n"
	        "  -d, --duration SECS     measured time (5)\n"
	        "  -w, --warmup SECS       unmeasured time before it (1)\n"
	        "      --drain SECS        longest wait for messages in flight at the end (3)\n"
	        "  -c, --clients N         see scenarios (1)\n"
	        "  -S, --subscribers M     shared: members of the group (2)\n"
	        "  -V, --protocol 4|5      MQTT 3.1.1 or 5.0 (4)\n"
	        "  -t, --threads N         generator threads (2)\n"
	        "      --window N          closed loop: messages in flight end to end per publisher (256)\n"
	        "      --inflight N        QoS 1/2: unacknowledged PUBLISHes per publisher (--window)\n"
	        "  -r, --rate MSGS         open loop: messages/s over all publishers, paced\n"
	        "      --src-ips N         spread connections over 127.0.0.1..127.0.0.N\n"
	        "      --broker-pid PID    report the broker's CPU time and memory\n"
	        "      --sub-port PORT     subscribers connect to this port (a second broker,\n"
	        "                          bridged to the first: bridge rows)\n"
	        "      --broker-pid2 PID   that broker: its CPU time is added to the first's\n"
	        "      --aux-pid PID       a server the brokers use (NATS): its CPU time is reported\n"
	        "                          apart (aux_cpu_s), not as others'; up to 8 times\n"
	        "      --connect-concurrency N  connections being set up at once (32)\n"
	        "      --keepalive SECS    MQTT keepalive (60)\n"
	        "      --no-clean          sessions that outlive the connection (3.1.1 clean session 0,\n"
	        "                          5.0 session expiry 3600 s): a broker with persistence stores them\n"
	        "      --prefix TOPIC      topic prefix (midge_bench/PID)\n"
	        "      --stall SECS        closed loop: write off a window stuck this long (2)\n"
	        "      --ready-file PATH   conn: create PATH once every connection is up\n"
	        "      --label TEXT        a name for this run in the output\n"
	        "      --cafile FILE       TLS: verify the broker against these CAs (name: --host)\n"
	        "      --cert FILE, --key FILE  TLS: a client certificate and its key\n"
	        "      --resume            hs: offer the previous connection's session (resumption)\n"
	        "      --no-verify         TLS: skip checking the broker's certificate, so the\n"
	        "                          generator spends less than the broker (benchmarks)\n"
	        "      --ws PATH           MQTT over WebSockets: upgrade at PATH (e.g. /mqtt)\n"
	        "  -j, --json              one JSON object instead of text\n"
	        "  -v, --verbose           each publisher's counts on stderr at the end\n");
}

static double num(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "midge_bench: --%s %s: expected a number from %g to %g\n", opt, s, lo, hi);
		exit(2);
	}
	return v;
}

static void parse(int argc, char **argv, mb_opts *o)
{
	static const struct option lo[] = {
		{"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"qos", 1, 0, 'q'}, {"size", 1, 0, 's'},
		{"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'w'}, {"drain", 1, 0, 'D'},
		{"clients", 1, 0, 'c'}, {"subscribers", 1, 0, 'S'}, {"protocol", 1, 0, 'V'},
		{"threads", 1, 0, 't'}, {"window", 1, 0, 'W'}, {"inflight", 1, 0, 'I'},
		{"rate", 1, 0, 'r'}, {"src-ips", 1, 0, 'i'}, {"broker-pid", 1, 0, 'P'},
		{"connect-concurrency", 1, 0, 'C'}, {"keepalive", 1, 0, 'k'}, {"prefix", 1, 0, 'x'},
		{"stall", 1, 0, 'T'}, {"ready-file", 1, 0, 'R'}, {"label", 1, 0, 'L'},
		{"cafile", 1, 0, 'A'}, {"cert", 1, 0, 'E'}, {"key", 1, 0, 'K'}, {"resume", 0, 0, 'U'},
		{"no-verify", 0, 0, 'N'}, {"no-clean", 0, 0, 'G'}, {"ws", 1, 0, 'B'},
		{"sub-port", 1, 0, 'Y'}, {"broker-pid2", 1, 0, 'Z'}, {"aux-pid", 1, 0, 'X'},
		{"json", 0, 0, 'j'}, {"verbose", 0, 0, 'v'}, {"help", 0, 0, 'H'}, {0, 0, 0, 0}};
	*o = (mb_opts){.host = "127.0.0.1", .port = 1883, .size = 16, .duration = 5, .warmup = 1,
	               .drain = 3, .clients = 1, .subscribers = 2, .protocol = 4, .threads = 2,
	               .window = 256, .inflight = 0, .connect_conc = 32, .keepalive = 60,
	               .stall = 2};
	int ch;
	while ((ch = getopt_long(argc, argv, "h:p:q:s:d:w:c:S:V:t:r:jv", lo, NULL)) != -1) {
		const char *n = NULL;
		for (const struct option *x = lo; x->name; x++)
			if (x->val == ch)
				n = x->name;
		switch (ch) {
		case 'h': o->host = optarg; break;
		case 'p': o->port = (int)num(n, optarg, 1, 65535); break;
		case 'q': o->qos = (int)num(n, optarg, 0, 2); break;
		case 's': o->size = (uint32_t)num(n, optarg, MB_STAMP, 256 * 1024 * 1024); break;
		case 'd': o->duration = num(n, optarg, 0.01, 86400); break;
		case 'w': o->warmup = num(n, optarg, 0, 3600); break;
		case 'D': o->drain = num(n, optarg, 0, 3600); break;
		case 'c': o->clients = (int)num(n, optarg, 1, 10000000); break;
		case 'S': o->subscribers = (int)num(n, optarg, 1, 10000000); break;
		case 'V': o->protocol = (int)num(n, optarg, 4, 5); break;
		case 't': o->threads = (int)num(n, optarg, 1, 256); break;
		case 'W': o->window = (int)num(n, optarg, 1, 1 << 24); break;
		case 'I': o->inflight = (int)num(n, optarg, 1, 65000); break;
		case 'r': o->rate = num(n, optarg, 0, 1e9); break;
		case 'i': o->src_ips = (int)num(n, optarg, 1, 254); break;
		case 'P': o->broker_pid = (int)num(n, optarg, 1, 1 << 30); break;
		case 'Y': o->sub_port = (int)num(n, optarg, 1, 65535); break;
		case 'Z': o->broker_pid2 = (int)num(n, optarg, 1, 1 << 30); break;
		case 'X':
			if (o->naux == 8) {
				fprintf(stderr, "midge_bench: --aux-pid at most 8 times\n");
				exit(2);
			}
			o->aux_pid[o->naux++] = (int)num(n, optarg, 1, 1 << 30);
			break;
		case 'C': o->connect_conc = (int)num(n, optarg, 1, 1 << 20); break;
		case 'k': o->keepalive = (int)num(n, optarg, 0, 65535); break;
		case 'x': o->prefix = optarg; break;
		case 'T': o->stall = num(n, optarg, 0.001, 3600); break;
		case 'R': o->ready_file = optarg; break;
		case 'L': o->label = optarg; break;
		case 'A': o->cafile = optarg; break;
		case 'B': o->ws_path = optarg; break;
		case 'E': o->certfile = optarg; break;
		case 'K': o->keyfile = optarg; break;
		case 'U': o->resume = true; break;
		case 'N': o->no_verify = true; break;
		case 'G': o->no_clean = true; break;
		case 'j': o->json = true; break;
		case 'v': o->verbose = true; break;
		case 'H': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		exit(2);
	}
	o->scenario = -1;
	for (int i = 0; i < 6; i++)
		if (!strcmp(argv[optind], scenario_names[i]))
			o->scenario = i;
	if (o->scenario < 0) {
		fprintf(stderr, "midge_bench: unknown scenario '%s' (conn, pairs, fanin, fanout, shared, hs)\n",
		        argv[optind]);
		exit(2);
	}
	if (o->ws_path && (o->cafile || o->scenario == SC_HS)) {
		fprintf(stderr, "midge_bench: --ws runs plain ws:// (no --cafile, no hs)\n");
		exit(2);
	}
	if (o->scenario == SC_HS && !o->cafile) {
		fprintf(stderr, "midge_bench: hs measures TLS connections: give --cafile\n");
		exit(2);
	}
	if ((o->certfile || o->keyfile) && !(o->certfile && o->keyfile && o->cafile)) {
		fprintf(stderr, "midge_bench: --cert and --key go together, with --cafile\n");
		exit(2);
	}
	if (!o->inflight)
		o->inflight = o->window < 65000 ? o->window : 65000;
}

/* CPU seconds of the broker, plus the second one's (--broker-pid2); -1 unknown. */
static double brokers_cpu(const mb_opts *o)
{
	double a = mb_proc_cpu(o->broker_pid);
	if (!o->broker_pid2 || a < 0)
		return a;
	double b = mb_proc_cpu(o->broker_pid2);
	return b < 0 ? -1 : a + b;
}

/* CPU seconds of the --aux-pid processes together; -1 none or unknown. */
static double aux_cpu(const mb_opts *o)
{
	double t = 0;
	for (int i = 0; i < o->naux; i++) {
		double c = mb_proc_cpu(o->aux_pid[i]);
		if (c < 0)
			return -1;
		t += c;
	}
	return o->naux ? t : -1;
}

static void resolve(mb_run *g)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	char port[16];
	snprintf(port, sizeof port, "%d", g->o.port);
	int e = getaddrinfo(g->o.host, port, &hints, &ai);
	if (e) {
		fprintf(stderr, "midge_bench: %s: %s\n", g->o.host, gai_strerror(e));
		exit(2);
	}
	memcpy(&g->addr, ai->ai_addr, ai->ai_addrlen);
	g->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	g->sub_addr = g->addr;
	g->sub_addrlen = g->addrlen;
	if (g->o.sub_port) { /* the same host, another port */
		if (g->sub_addr.ss_family == AF_INET)
			((struct sockaddr_in *)&g->sub_addr)->sin_port = htons((uint16_t)g->o.sub_port);
		else
			((struct sockaddr_in6 *)&g->sub_addr)->sin6_port = htons((uint16_t)g->o.sub_port);
	}
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p) {
		fprintf(stderr, "midge_bench: out of memory\n");
		exit(2);
	}
	return p;
}

/* Give connection c to worker t, with buffers sized for what it will carry. */
static void place(mb_run *g, mb_conn *c, int role, int t)
{
	c->fd = -1;
	c->idx = (int)(c - g->conns);
	c->role = role;
	c->w = &g->w[t % g->o.threads];
	c->recv_max = 65535;
	c->in_chunk = role == ROLE_SUB ? 256 * 1024 : role == ROLE_PUB ? 16 * 1024 : 256;
	size_t room;
	if (!mg_framer_room(&c->in, c->in_chunk, c->in_chunk, &room)) {
		fprintf(stderr, "midge_bench: out of memory\n");
		exit(2);
	}
	c->out_cap = role == ROLE_PUB ? 256 * 1024 : role == ROLE_SUB ? 16 * 1024 : 256;
	c->out = xcalloc(1, c->out_cap);
	c->w->nconns++;
}

static void make_pub(mb_run *g, int i, mb_conn *c, const char *topic, uint32_t fan)
{
	mb_pub *p = &g->pubs[i];
	p->id = (uint32_t)i;
	p->c = c;
	p->w = c->w;
	p->fan = fan;
	p->topic_len = (uint16_t)snprintf(p->topic, sizeof p->topic, "%s", topic);
	if (g->o.qos)
		p->idstate = xcalloc(65536, 1);
	if (g->o.scenario == SC_SHARED)
		p->sring = xcalloc(SRING_BITS / 64, sizeof(uint64_t));
	c->pub = p;
	c->w->npubs++;
}

static void make_sub(mb_run *g, int i, mb_conn *c, const char *filter, uint32_t first, uint32_t n)
{
	mb_sub *s = &g->subs[i];
	s->first_pub = first;
	s->npubs = n;
	snprintf(s->filter, sizeof s->filter, "%s", filter);
	if (g->o.scenario == SC_SHARED)
		s->last = xcalloc(g->npubs, sizeof(uint32_t));
	else
		s->tr = xcalloc(n, sizeof(mb_track));
	if (g->o.qos == 2)
		s->qos2 = xcalloc(65536 / 64, sizeof(uint64_t));
	c->sub = s;
}

static void build(mb_run *g)
{
	mb_opts *o = &g->o;
	int n = o->clients, m = o->subscribers;
	char t[160], pre[100];
	snprintf(pre, sizeof pre, "%s", o->prefix ? o->prefix : "");
	if (!o->prefix)
		snprintf(pre, sizeof pre, "midge_bench/%d", (int)getpid());
	switch (o->scenario) {
	case SC_CONN: g->nconns = n; break;
	case SC_PAIRS: g->nconns = 2 * n; g->npubs = n; g->nsubs = n; break;
	case SC_FANIN: g->nconns = n + 1; g->npubs = n; g->nsubs = 1; break;
	case SC_FANOUT: g->nconns = n + 1; g->npubs = 1; g->nsubs = n; break;
	case SC_SHARED: g->nconns = n + m; g->npubs = n; g->nsubs = m; break;
	}
	g->conns = xcalloc(g->nconns, sizeof(mb_conn));
	g->pubs = xcalloc(g->npubs, sizeof(mb_pub));
	g->subs = xcalloc(g->nsubs, sizeof(mb_sub));
	mb_conn *c = g->conns;
	switch (o->scenario) {
	case SC_CONN:
		for (int i = 0; i < n; i++)
			place(g, c++, ROLE_IDLE, i);
		break;
	case SC_PAIRS: /* a pair shares a thread: its window never needs a cross-thread wake */
		for (int i = 0; i < n; i++) {
			snprintf(t, sizeof t, "%s/p/%d", pre, i);
			place(g, c, ROLE_SUB, i);
			make_sub(g, i, c++, t, (uint32_t)i, 1);
			place(g, c, ROLE_PUB, i);
			make_pub(g, i, c++, t, 1);
		}
		break;
	case SC_FANIN:
		snprintf(t, sizeof t, "%s/in/+", pre);
		place(g, c, ROLE_SUB, 0);
		make_sub(g, 0, c++, t, 0, (uint32_t)n);
		for (int i = 0; i < n; i++) {
			snprintf(t, sizeof t, "%s/in/%d", pre, i);
			place(g, c, ROLE_PUB, i + 1);
			make_pub(g, i, c++, t, 1);
		}
		break;
	case SC_FANOUT:
		snprintf(t, sizeof t, "%s/out", pre);
		for (int i = 0; i < n; i++) {
			place(g, c, ROLE_SUB, i);
			make_sub(g, i, c++, t, 0, 1);
		}
		place(g, c, ROLE_PUB, n);
		make_pub(g, 0, c++, t, (uint32_t)n);
		break;
	case SC_SHARED:
		snprintf(t, sizeof t, "$share/g/%s/sh/+", pre);
		for (int i = 0; i < m; i++) {
			place(g, c, ROLE_SUB, i);
			make_sub(g, i, c++, t, 0, (uint32_t)n);
		}
		for (int i = 0; i < n; i++) {
			snprintf(t, sizeof t, "%s/sh/%d", pre, i);
			place(g, c, ROLE_PUB, i + m);
			make_pub(g, i, c++, t, 1);
		}
		break;
	}
	/* each worker's lists, subscribers first so subscriptions are in place early */
	for (int t2 = 0; t2 < o->threads; t2++) {
		mb_worker *w = &g->w[t2];
		w->conns = xcalloc(w->nconns, sizeof(mb_conn *));
		w->pubs = xcalloc(w->npubs, sizeof(mb_pub *));
		w->nconns = w->npubs = 0;
	}
	for (int i = 0; i < g->nconns; i++) {
		mb_conn *x = &g->conns[i];
		x->w->conns[x->w->nconns++] = x;
		if (x->pub)
			x->w->pubs[x->w->npubs++] = x->pub;
	}
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void kick_all(mb_run *g)
{
	for (int t = 0; t < g->o.threads; t++)
		mb_worker_kick(&g->w[t]);
}

/* Wait for every connection to be set up or to fail; false on timeout. */
static bool wait_setup(mb_run *g)
{
	uint64_t limit = mb_now() + (uint64_t)(10 + g->nconns / 200) * 1000000000ull;
	while (atomic_load(&g->ready) + atomic_load(&g->failed) < g->nconns) {
		if (mb_now() > limit)
			return false;
		sleep_until(mb_now() + 2000000);
	}
	return true;
}

static bool drained(const mb_run *g)
{
	for (int i = 0; i < g->npubs; i++) {
		const mb_pub *p = &g->pubs[i];
		/* a connection lost on the way keeps this false: the drain then times out */
		if (atomic_load(&p->unacked) ||
		    atomic_load(&p->delivered) < atomic_load(&p->sent) * p->fan)
			return false;
	}
	return true;
}

static void collect(mb_run *g, mb_result *res)
{
	mb_stats *s = &res->st;
	mb_hist_init(&s->lat);
	mb_hist_init(&s->lag);
	for (int t = 0; t < g->o.threads; t++) {
		mb_stats *x = &g->w[t].st;
		s->sent += x->sent;
		s->sent_win += x->sent_win;
		s->recv += x->recv;
		s->recv_win += x->recv_win;
		s->bytes_win += x->bytes_win;
		s->dup += x->dup;
		s->ooo += x->ooo;
		s->redeliveries += x->redeliveries;
		s->acks += x->acks;
		s->proto_err += x->proto_err;
		s->rejected += x->rejected;
		s->foreign += x->foreign;
		s->stalls += x->stalls;
		s->closed += x->closed;
		s->connect_fail += x->connect_fail;
		mb_hist_merge(&s->lat, &x->lat);
		mb_hist_merge(&s->lag, &x->lag);
	}
	for (int i = 0; i < g->nsubs; i++) {
		mb_sub *sb = &g->subs[i];
		for (uint32_t k = 0; sb->tr && k < sb->npubs; k++) {
			s->dup += sb->tr[k].dup;
			s->ooo += sb->tr[k].ooo;
		}
	}
	uint64_t unique = 0;
	for (int i = 0; i < g->npubs; i++) {
		mb_pub *p = &g->pubs[i];
		res->expected += atomic_load(&p->sent) * p->fan;
		unique += atomic_load(&p->delivered);
		res->inflight_end += atomic_load(&p->unacked);
	}
	res->lost = res->expected > unique ? res->expected - unique : 0;
	for (int i = 0; g->o.verbose && i < g->npubs; i++) {
		mb_pub *p = &g->pubs[i];
		fprintf(stderr, "publisher %d (%s): sent %llu, delivered %llu of %llu, unacked %u\n", i,
		        p->topic, (unsigned long long)atomic_load(&p->sent),
		        (unsigned long long)atomic_load(&p->delivered),
		        (unsigned long long)(atomic_load(&p->sent) * p->fan), atomic_load(&p->unacked));
	}
}

int main(int argc, char **argv)
{
	static mb_run run;
	mb_run *g = &run;
	mb_g = g;
	parse(argc, argv, &g->o);
	mb_opts *o = &g->o;
	resolve(g);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max; /* as many sockets as we are allowed */
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (o->cafile)
		g->tls = mb_tls_ctx(o);
	if (o->scenario == SC_HS) {
		int hrc = mb_hs_main(g);
		SSL_CTX_free(g->tls);
		return hrc;
	}
	g->w = xcalloc(o->threads, sizeof(mb_worker));
	for (int t = 0; t < o->threads; t++) {
		mb_worker *w = &g->w[t];
		w->id = t;
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		w->wake = xcalloc(o->threads, 1);
		mb_hist_init(&w->st.lat);
		mb_hist_init(&w->st.lag);
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
		if (w->ep < 0 || w->evfd < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->evfd, &ev) < 0) {
			perror("midge_bench: epoll");
			return 2;
		}
	}
	build(g);

	mb_result res;
	memset(&res, 0, sizeof res);
	res.aux_cpu = res.broker2_cpu = -1;
	res.broker_rss0 = mb_proc_status_kb(o->broker_pid, "VmRSS");
	g->setup_start = mb_now();
	atomic_store(&g->phase, PH_SETUP);
	for (int t = 0; t < o->threads; t++)
		pthread_create(&g->w[t].th, NULL, mb_worker_main, &g->w[t]);

	int rc = 0;
	bool ok = wait_setup(g);
	g->setup_done = mb_now();
	res.connected = atomic_load(&g->ready);
	res.failed = g->nconns - res.connected;
	res.connect_secs = (double)(g->setup_done - g->setup_start) / 1e9;
	if (o->scenario == SC_CONN) {
		res.broker_rss1 = mb_proc_status_kb(o->broker_pid, "VmRSS");
		if (o->ready_file) {
			FILE *f = fopen(o->ready_file, "w");
			if (f) {
				fprintf(f, "%d\n", res.connected);
				fclose(f);
			}
		}
		if (!o->json)
			fprintf(stderr, "midge_bench: %d connected, %d failed in %.2f s; holding %.1f s\n",
			        res.connected, res.failed, res.connect_secs, o->duration);
		sleep_until(mb_now() + (uint64_t)(o->duration * 1e9));
		res.broker_hwm = mb_proc_status_kb(o->broker_pid, "VmHWM");
		rc = res.connected == g->nconns ? 0 : 1;
	} else if (!ok || res.failed) {
		fprintf(stderr, "midge_bench: setup failed: %d of %d connections ready\n", res.connected,
		        g->nconns);
		atomic_store(&g->phase, PH_STOP);
		kick_all(g);
		for (int t = 0; t < o->threads; t++)
			pthread_join(g->w[t].th, NULL);
		return 1;
	} else {
		uint64_t now = mb_now();
		g->t_start = now + 1000000;
		g->t_warm = g->t_start + (uint64_t)(o->warmup * 1e9);
		g->t_end = g->t_warm + (uint64_t)(o->duration * 1e9);
		if (o->rate > 0) {
			double iv = 1e9 * g->npubs / o->rate;
			for (int i = 0; i < g->npubs; i++) {
				g->pubs[i].interval = (uint64_t)iv ? (uint64_t)iv : 1;
				g->pubs[i].next_due = g->t_start + (uint64_t)(iv * i / g->npubs);
			}
		}
		atomic_store(&g->phase, PH_RUN);
		kick_all(g);
		sleep_until(g->t_warm);
		double b0 = brokers_cpu(o), s0 = mb_self_cpu(), m0 = mb_machine_cpu(), a0 = aux_cpu(o);
		double c0 = o->broker_pid2 ? mb_proc_cpu(o->broker_pid2) : -1;
		sleep_until(g->t_end);
		double b1 = brokers_cpu(o), s1 = mb_self_cpu(), m1 = mb_machine_cpu(), a1 = aux_cpu(o);
		double c1 = o->broker_pid2 ? mb_proc_cpu(o->broker_pid2) : -1;
		res.aux_cpu = a0 >= 0 && a1 >= 0 ? a1 - a0 : -1;
		res.broker2_cpu = o->broker_pid2 && c0 >= 0 && c1 >= 0 ? c1 - c0 : -1;
		res.machine_cpu = m0 >= 0 && m1 >= 0 ? m1 - m0 : -1;
		res.broker_cpu = b0 >= 0 && b1 >= 0 ? b1 - b0 : -1;
		res.gen_cpu = s1 - s0;
		atomic_store(&g->phase, PH_DRAIN);
		uint64_t limit = mb_now() + (uint64_t)(o->drain * 1e9);
		while (!drained(g) && mb_now() < limit)
			sleep_until(mb_now() + 5000000);
		res.broker_rss1 = mb_proc_status_kb(o->broker_pid, "VmRSS");
		res.broker_hwm = mb_proc_status_kb(o->broker_pid, "VmHWM");
	}
	atomic_store(&g->phase, PH_STOP);
	kick_all(g);
	for (int t = 0; t < o->threads; t++)
		pthread_join(g->w[t].th, NULL);
	res.secs = o->scenario == SC_CONN ? o->duration : (double)(g->t_end - g->t_warm) / 1e9;
	collect(g, &res);
	mb_report(g, &res);
	if (o->scenario != SC_CONN && (res.st.closed || res.st.proto_err))
		rc = 1;
	if (o->scenario != SC_CONN && o->qos > 0 && (res.lost || res.st.dup))
		rc = 1;

	for (int i = 0; i < g->nconns; i++) {
		mg_framer_free(&g->conns[i].in);
		free(g->conns[i].out);
	}
	for (int i = 0; i < g->npubs; i++) {
		free(g->pubs[i].idstate);
		free((void *)g->pubs[i].sring);
	}
	for (int i = 0; i < g->nsubs; i++) {
		free(g->subs[i].tr);
		free(g->subs[i].last);
		free(g->subs[i].qos2);
	}
	for (int t = 0; t < o->threads; t++) {
		close(g->w[t].ep);
		close(g->w[t].evfd);
		free(g->w[t].conns);
		free(g->w[t].pubs);
		free(g->w[t].wake);
	}
	free(g->conns);
	free(g->pubs);
	free(g->subs);
	free(g->w);
	SSL_CTX_free(g->tls);
	return rc;
}
