/*
 * broker/metrics.c - /metrics in Prometheus' text exposition format 0.0.4, and /healthz, on a
 * WebSockets listener with http_metrics true (docs/metrics.md).
 *
 * The hot path pays nothing it did not pay before but a plain add per counter: every worker
 * owns its own counters (mg_wmet in worker.h, written with a relaxed load and store, which is
 * an ordinary add on x86, never a locked instruction) and the scrape, on whichever worker the
 * HTTP request landed, sums the workers' values with relaxed loads. A scrape may so see one
 * worker a few messages later than another; every counter still only ever rises.
 * Queued and in-flight gauges are recounted by each worker from its own sessions once a second
 * (mg_metrics_tick), so they are up to a second old; keeping them exact would mean a write on
 * every queue push and pop.
 *
 * A scrape costs the worker that answers it a few hundred microseconds: the text (a few kB),
 * /proc/self/stat and /proc/self/statm, and one readdir of /proc/self/fd (proportional to the
 * open connections, about 1 ms per 10,000).
 */
#include "broker/metrics.h"
#include "broker/broker.h"
#include "broker/cluster.h"
#include "broker/conn.h"
#include "broker/session.h"
#include "broker/worker.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct buf {
	char *p;
	size_t n, cap;
	bool oom;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
	for (int tries = 0; tries < 2 && !b->oom; tries++) {
		va_list ap;
		va_start(ap, fmt);
		int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if (k < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)k < b->cap - b->n) {
			b->n += (size_t)k;
			return;
		}
		size_t cap = (b->cap + (size_t)k) * 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

static void head(buf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t rd(const atomic_uint_fast64_t *v)
{
	return atomic_load_explicit((atomic_uint_fast64_t *)v, memory_order_relaxed);
}

static int64_t rds(const atomic_int_fast64_t *v)
{
	return atomic_load_explicit((atomic_int_fast64_t *)v, memory_order_relaxed);
}

/* The sum over the workers of the counter at offset off of mg_worker (a uint64 atomic). */
static uint64_t sum(const mg_broker *b, size_t off)
{
	uint64_t t = 0;
	for (int i = 0; i < b->nworkers; i++)
		t += rd((const atomic_uint_fast64_t *)((const char *)&b->w[i] + off));
	return t;
}

static int64_t sums(const mg_broker *b, size_t off)
{
	int64_t t = 0;
	for (int i = 0; i < b->nworkers; i++)
		t += rds((const atomic_int_fast64_t *)((const char *)&b->w[i] + off));
	return t;
}

#define W(field) offsetof(mg_worker, field)

static void counter(buf *o, const mg_broker *b, const char *name, const char *help, size_t off)
{
	head(o, name, "counter", help);
	put(o, "%s %llu\n", name, (unsigned long long)sum(b, off));
}

static void gauge(buf *o, const char *name, const char *help, long long v)
{
	head(o, name, "gauge", help);
	put(o, "%s %lld\n", name, v);
}

/* utime + stime (clock ticks) from /proc/self/stat, and the resident pages from statm. */
static void process_metrics(buf *o, const mg_broker *b)
{
	FILE *f = fopen("/proc/self/stat", "re");
	char line[1024];
	if (f) {
		size_t n = fread(line, 1, sizeof line - 1, f);
		fclose(f);
		line[n] = 0;
		/* the command name (field 2) may hold spaces and ')': fields restart after the last ')' */
		char *p = strrchr(line, ')');
		unsigned long long ut = 0, stt = 0;
		if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) == 2) {
			long hz = sysconf(_SC_CLK_TCK);
			head(o, "process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.");
			put(o, "process_cpu_seconds_total %.2f\n", (double)(ut + stt) / (double)(hz > 0 ? hz : 100));
		}
	}
	f = fopen("/proc/self/statm", "re");
	if (f) {
		unsigned long long size = 0, res = 0;
		if (fscanf(f, "%llu %llu", &size, &res) == 2) {
			long pg = sysconf(_SC_PAGESIZE);
			gauge(o, "process_resident_memory_bytes", "Resident memory size, in bytes.",
			      (long long)(res * (unsigned long long)pg));
			gauge(o, "process_virtual_memory_bytes", "Virtual memory size, in bytes.",
			      (long long)(size * (unsigned long long)pg));
		}
		fclose(f);
	}
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		long long n = 0;
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				n++;
		closedir(d);
		gauge(o, "process_open_fds", "Open file descriptors (this scrape's own included).", n - 1);
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		gauge(o, "process_max_fds", "The open file descriptor limit.",
		      rl.rlim_cur == RLIM_INFINITY ? -1 : (long long)rl.rlim_cur);
	head(o, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.");
	put(o, "process_start_time_seconds %lld\n", (long long)b->start_time);
}

static const char *drop_cause[MG_DROP_N] = { "queue_full", "expired", "denied", "too_large",
	"offline_qos0", "no_memory" };

static char *render(const mg_broker *b, size_t *len)
{
	buf o = { 0 };
	const mg_config *cfg = b->cfg;
	head(&o, "midge_build_info", "gauge", "The midge version running; always 1.");
	put(&o, "midge_build_info{version=\"%s\"} 1\n", MIDGE_VERSION);
	head(&o, "midge_uptime_seconds", "gauge", "Seconds since the broker started.");
	put(&o, "midge_uptime_seconds %lld\n", (long long)((mg_now_ms() - b->start_ms) / 1000));

	head(&o, "midge_listener_connections", "gauge",
	     "Open sockets per listener (CONNECTed or not yet), by its index in the configuration.");
	for (int i = 0; i < cfg->n_listeners; i++) {
		const mg_listener_conf *lc = &cfg->listeners[i];
		put(&o, "midge_listener_connections{listener=\"%d\",port=\"%u\",protocol=\"%s\"} %d\n", i,
		    (unsigned)lc->port, lc->protocol == MG_PROTO_WEBSOCKETS ? "websockets" : "mqtt",
		    atomic_load_explicit(&b->lcount[i], memory_order_relaxed));
	}
	head(&o, "midge_clients_connected", "gauge", "CONNECTed clients by MQTT protocol version.");
	static const char *lv[6] = { NULL, NULL, NULL, "3.1", "3.1.1", "5.0" };
	for (int l = 3; l < 6; l++)
		put(&o, "midge_clients_connected{protocol_version=\"%s\"} %lld\n", lv[l],
		    (long long)sums(b, W(met.clients[l])));
	gauge(&o, "midge_clients_maximum", "The most clients connected at once since the start.",
	      atomic_load(&b->max_clients));
	gauge(&o, "midge_sessions", "Sessions, connected or kept for a disconnected client.",
	      atomic_load(&b->n_sessions));
	counter(&o, b, "midge_sockets_accepted_total", "TCP connections accepted.", W(st.conns_total));
	counter(&o, b, "midge_connects_total", "CONNECTs accepted (a session attached).", W(st.connects));
	counter(&o, b, "midge_disconnects_total", "Clients gone: DISCONNECT, closed socket, timeout or take-over.",
	        W(met.disconnects));
	counter(&o, b, "midge_sessions_expired_total", "Sessions ended by their expiry interval.", W(st.expired));

	head(&o, "midge_messages_received_total", "counter", "PUBLISH packets received, by QoS.");
	for (int q = 0; q < 3; q++)
		put(&o, "midge_messages_received_total{qos=\"%d\"} %llu\n", q,
		    (unsigned long long)sum(b, W(met.pub_in[q])));
	head(&o, "midge_messages_received_bytes_total", "counter", "Payload bytes of the PUBLISH packets received, by QoS.");
	for (int q = 0; q < 3; q++)
		put(&o, "midge_messages_received_bytes_total{qos=\"%d\"} %llu\n", q,
		    (unsigned long long)sum(b, W(met.pub_in_bytes[q])));
	head(&o, "midge_messages_sent_total", "counter", "PUBLISH packets sent (resends included), by the QoS delivered.");
	for (int q = 0; q < 3; q++)
		put(&o, "midge_messages_sent_total{qos=\"%d\"} %llu\n", q,
		    (unsigned long long)sum(b, W(met.pub_out[q])));
	head(&o, "midge_messages_sent_bytes_total", "counter", "Payload bytes of the PUBLISH packets sent, by the QoS delivered.");
	for (int q = 0; q < 3; q++)
		put(&o, "midge_messages_sent_bytes_total{qos=\"%d\"} %llu\n", q,
		    (unsigned long long)sum(b, W(met.pub_out_bytes[q])));
	counter(&o, b, "midge_messages_denied_total", "PUBLISH packets refused (acl_file, $SYS, $share): acknowledged, not routed.",
	        W(met.pub_denied));
	head(&o, "midge_deliveries_dropped_total", "counter", "Deliveries to a session that were dropped, by cause.");
	for (int k = 0; k < MG_DROP_N; k++)
		put(&o, "midge_deliveries_dropped_total{cause=\"%s\"} %llu\n", drop_cause[k],
		    (unsigned long long)sum(b, W(met.dropped[k])));
	counter(&o, b, "midge_packets_received_total", "MQTT packets received, all types.", W(st.msgs_recv));
	counter(&o, b, "midge_packets_sent_total", "MQTT packets sent, all types.", W(st.msgs_sent));
	counter(&o, b, "midge_network_received_bytes_total", "Bytes read from client sockets.", W(st.bytes_recv));
	counter(&o, b, "midge_network_sent_bytes_total", "Bytes written to client sockets.", W(st.bytes_sent));

	gauge(&o, "midge_subscriptions", "Subscriptions in the subscription tree.", (long long)mg_subtree_count(b->tree));
	gauge(&o, "midge_retained_messages", "Retained messages.", (long long)mg_retain_count(b->retain));
	gauge(&o, "midge_queued_messages", "Messages waiting in session queues (recounted every second).",
	      (long long)sums(b, W(met.queued)));
	gauge(&o, "midge_queued_bytes", "Payload bytes waiting in session queues (recounted every second).",
	      (long long)sums(b, W(met.queued_bytes)));
	gauge(&o, "midge_inflight_messages", "QoS 1 and 2 messages sent and not yet acknowledged (recounted every second).",
	      (long long)sums(b, W(met.inflight)));
	gauge(&o, "midge_inflight_bytes", "Payload bytes of the in-flight messages (recounted every second).",
	      (long long)sums(b, W(met.inflight_bytes)));

	if (b->cluster) { /* totals over the live cluster nodes (docs/cluster.md), as $SYS has them */
		mg_cluster_load mine = { .interval = b->cfg->sys_interval, .connected = (uint64_t)atomic_load(&b->n_clients),
		                         .sessions = (uint64_t)atomic_load(&b->n_sessions),
		                         .subs = mg_subtree_count(b->tree), .retained = mg_retain_count(b->retain) };
		mg_cluster_totals *t = malloc(sizeof *t);
		if (t) {
			b->cluster_ops->totals(b->cluster, &mine, false, t);
			gauge(&o, "midge_cluster_nodes", "Live cluster nodes, this one included.", t->nodes);
			gauge(&o, "midge_cluster_clients_connected", "CONNECTed clients on all live cluster nodes.",
			      (long long)t->sum.connected);
			gauge(&o, "midge_cluster_sessions", "Sessions on all live cluster nodes.", (long long)t->sum.sessions);
			gauge(&o, "midge_cluster_subscriptions", "Subscriptions on all live cluster nodes.",
			      (long long)t->sum.subs);
			free(t);
		}
	}

	head(&o, "midge_worker_busy_seconds_total", "counter",
	     "Time each worker thread spent handling events rather than waiting for them.");
	int nw = b->nworkers;
	uint64_t busy, turns;
	for (int i = 0; i < nw; i++) {
		mg_loop_busy(b->w[i].loop, &busy, &turns);
		put(&o, "midge_worker_busy_seconds_total{worker=\"%d\"} %.6f\n", i, (double)busy / 1e9);
	}
	head(&o, "midge_worker_loops_total", "counter", "Event loop turns each worker thread ran.");
	for (int i = 0; i < nw; i++) {
		mg_loop_busy(b->w[i].loop, &busy, &turns);
		put(&o, "midge_worker_loops_total{worker=\"%d\"} %llu\n", i, (unsigned long long)turns);
	}
	head(&o, "midge_worker_connections", "gauge", "Connections each worker thread runs.");
	for (int i = 0; i < nw; i++)
		put(&o, "midge_worker_connections{worker=\"%d\"} %lld\n", i,
		    (long long)rds(&b->w[i].met.conns));
	process_metrics(&o, b);
	if (o.oom) {
		free(o.p);
		return NULL;
	}
	*len = o.n;
	return o.p;
}

static bool is(const mg_http_msg *req, const char *path)
{
	size_t n = strlen(path), t = req->target_len;
	const char *q = memchr(req->target, '?', t); /* a query string is ignored */
	if (q)
		t = (size_t)(q - req->target);
	return t == n && memcmp(req->target, path, n) == 0;
}

bool mg_metrics_answer(mg_conn *c, const mg_http_msg *req, mg_http_reply *r)
{
	bool metrics = is(req, "/metrics");
	if (!metrics && !is(req, "/healthz"))
		return false;
	r->extra = "Cache-Control: no-store\r\n";
	if (!metrics) {
		/* Answering at all means this worker runs its loop and the listener accepts. */
		r->body = strdup("ok\n");
		r->status = r->body ? 200 : 503;
		r->body_len = r->body ? 3 : 0;
		r->ctype = "text/plain; charset=utf-8";
		return true;
	}
	size_t len = 0;
	r->body = render(c->w->b, &len);
	r->status = r->body ? 200 : 503;
	r->body_len = r->body ? len : 0;
	r->ctype = "text/plain; version=0.0.4; charset=utf-8";
	return true;
}

void mg_metrics_tick(mg_worker *w)
{
	int64_t q = 0, qb = 0, f = 0, fb = 0;
	for (const mg_session *s = w->sessions; s; s = s->next) {
		q += s->queue.n;
		qb += (int64_t)s->qbytes;
		f += s->flight.n;
		fb += (int64_t)s->flight_bytes;
	}
	atomic_store_explicit(&w->met.queued, q, memory_order_relaxed);
	atomic_store_explicit(&w->met.queued_bytes, qb, memory_order_relaxed);
	atomic_store_explicit(&w->met.inflight, f, memory_order_relaxed);
	atomic_store_explicit(&w->met.inflight_bytes, fb, memory_order_relaxed);
	atomic_store_explicit(&w->met.conns, w->n_conns, memory_order_relaxed);
}
