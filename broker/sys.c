/*
 * broker/sys.c - $SYS/broker/... topics, as mosquitto names them, published (retained)
 * every sys_interval seconds by worker 0. Counters are summed over the workers' relaxed
 * atomics; load averages are mosquitto's exponentially decayed per-minute rates.
 */
#include "broker/broker.h"
#include "broker/cluster.h"
#include "broker/log.h"
#include "broker/route.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { L_MSG_RECV, L_MSG_SENT, L_PUB_RECV, L_PUB_SENT, L_PUB_DROP, L_BYTES_RECV, L_BYTES_SENT,
       L_SOCKETS, L_CONNECTS, L_N };
static const char *load_names[L_N] = { "messages/received", "messages/sent", "publish/received",
	"publish/sent", "publish/dropped", "bytes/received", "bytes/sent", "sockets", "connections" };

static struct {
	int64_t last_ms;
	uint64_t prev[L_N];
	double load[L_N][3];
	bool started;
} st; /* worker 0 only */

static void pub(mg_worker *w, const char *topic, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#include <stdarg.h>
static void pub(mg_worker *w, const char *topic, const char *fmt, ...)
{
	char v[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(v, sizeof v, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	mg_msg *m = mg_msg_new((const uint8_t *)topic, strlen(topic), (const uint8_t *)v, (size_t)n, NULL, 0,
	                       true, mg_loop_now_ms(w->loop));
	if (m) {
		mg_publish_msg(w, m, NULL);
		mg_msg_unref(m);
	}
}

static void pubs(mg_worker *w, const char *topic, const char *v)
{
	mg_msg *m = mg_msg_new((const uint8_t *)topic, strlen(topic), (const uint8_t *)v, strlen(v), NULL, 0, true,
	                       mg_loop_now_ms(w->loop));
	if (m) {
		mg_publish_msg(w, m, NULL);
		mg_msg_unref(m);
	}
}

static uint64_t sum1(mg_broker *b, size_t off)
{
	uint64_t t = 0;
	for (int i = 0; i < b->nworkers; i++)
		t += atomic_load_explicit((atomic_uint_fast64_t *)((char *)&b->w[i].st + off), memory_order_relaxed);
	return t;
}

static void sums(mg_broker *b, uint64_t v[L_N])
{
	memset(v, 0, sizeof(uint64_t) * L_N);
	for (int i = 0; i < b->nworkers; i++) {
		mg_stats *s = &b->w[i].st;
		v[L_MSG_RECV] += atomic_load_explicit(&s->msgs_recv, memory_order_relaxed);
		v[L_MSG_SENT] += atomic_load_explicit(&s->msgs_sent, memory_order_relaxed);
		v[L_PUB_RECV] += atomic_load_explicit(&s->pub_recv, memory_order_relaxed);
		v[L_PUB_SENT] += atomic_load_explicit(&s->pub_sent, memory_order_relaxed);
		v[L_PUB_DROP] += atomic_load_explicit(&s->pub_dropped, memory_order_relaxed);
		v[L_BYTES_RECV] += atomic_load_explicit(&s->bytes_recv, memory_order_relaxed);
		v[L_BYTES_SENT] += atomic_load_explicit(&s->bytes_sent, memory_order_relaxed);
		v[L_SOCKETS] += atomic_load_explicit(&s->conns_total, memory_order_relaxed);
		v[L_CONNECTS] += atomic_load_explicit(&s->connects, memory_order_relaxed);
	}
}

void mg_sys_init(mg_worker *w)
{
	memset(&st, 0, sizeof st);
	if (w->b->cfg->sys_interval <= 0)
		return;
	pub(w, "$SYS/broker/version", "midge version %s", MIDGE_VERSION);
	st.last_ms = mg_loop_now_ms(w->loop);
	st.started = true;
}

void mg_sys_tick(mg_worker *w)
{
	mg_broker *b = w->b;
	int interval = b->cfg->sys_interval;
	int64_t now = mg_loop_now_ms(w->loop);
	if (interval <= 0 || !st.started || now - st.last_ms < (int64_t)interval * 1000)
		return;
	double secs = (double)(now - st.last_ms) / 1000.0;
	st.last_ms = now;
	uint64_t v[L_N];
	sums(b, v);
	static const int mins[3] = { 1, 5, 15 };
	char topic[128];
	for (int i = 0; i < L_N; i++) {
		double rate = (double)(v[i] - st.prev[i]) * 60.0 / secs;
		for (int k = 0; k < 3; k++) {
			double e = exp(-secs / (60.0 * mins[k]));
			st.load[i][k] = rate + e * (st.load[i][k] - rate);
			snprintf(topic, sizeof topic, "$SYS/broker/load/%s/%dmin", load_names[i], mins[k]);
			pub(w, topic, "%.2f", st.load[i][k]);
		}
		st.prev[i] = v[i];
	}
	int connected = atomic_load(&b->n_clients);
	int sessions = atomic_load(&b->n_sessions);
	int disconnected = sessions - connected > 0 ? sessions - connected : 0;
	pub(w, "$SYS/broker/uptime", "%lld seconds", (long long)((now - b->start_ms) / 1000));
	pub(w, "$SYS/broker/clients/total", "%d", connected + disconnected);
	pub(w, "$SYS/broker/clients/connected", "%d", connected);
	pub(w, "$SYS/broker/clients/active", "%d", connected);
	pub(w, "$SYS/broker/clients/disconnected", "%d", disconnected);
	pub(w, "$SYS/broker/clients/inactive", "%d", disconnected);
	pub(w, "$SYS/broker/clients/maximum", "%d", atomic_load(&b->max_clients));
	pub(w, "$SYS/broker/messages/received", "%llu", (unsigned long long)v[L_MSG_RECV]);
	pub(w, "$SYS/broker/messages/sent", "%llu", (unsigned long long)v[L_MSG_SENT]);
	pub(w, "$SYS/broker/publish/messages/received", "%llu", (unsigned long long)v[L_PUB_RECV]);
	pub(w, "$SYS/broker/publish/messages/sent", "%llu", (unsigned long long)v[L_PUB_SENT]);
	pub(w, "$SYS/broker/publish/messages/dropped", "%llu", (unsigned long long)v[L_PUB_DROP]);
	pub(w, "$SYS/broker/clients/expired", "%llu", (unsigned long long)sum1(b, offsetof(mg_stats, expired)));
	pub(w, "$SYS/broker/publish/bytes/received", "%llu",
	    (unsigned long long)sum1(b, offsetof(mg_stats, pub_bytes_recv)));
	pub(w, "$SYS/broker/publish/bytes/sent", "%llu",
	    (unsigned long long)sum1(b, offsetof(mg_stats, pub_bytes_sent)));
	pub(w, "$SYS/broker/bytes/received", "%llu", (unsigned long long)v[L_BYTES_RECV]);
	pub(w, "$SYS/broker/bytes/sent", "%llu", (unsigned long long)v[L_BYTES_SENT]);
	pub(w, "$SYS/broker/subscriptions/count", "%zu", mg_subtree_count(b->tree));
	pub(w, "$SYS/broker/retained messages/count", "%zu", mg_retain_count(b->retain));
	if (b->cluster) { /* this node's part of the cluster (docs/cluster.md) */
		mg_cluster_stats cs;
		b->cluster_ops->stats(b->cluster, &cs);
		pub(w, "$SYS/broker/cluster/node", "%s", cs.name);
		pub(w, "$SYS/broker/cluster/connected", "%d", cs.connected);
		pub(w, "$SYS/broker/cluster/subscriptions", "%zu", cs.filters);
		pub(w, "$SYS/broker/cluster/messages/sent", "%llu", (unsigned long long)cs.sent);
		pub(w, "$SYS/broker/cluster/messages/received", "%llu", (unsigned long long)cs.received);
		pub(w, "$SYS/broker/cluster/messages/duplicates", "%llu", (unsigned long long)cs.duplicates);
		pub(w, "$SYS/broker/cluster/messages/dropped", "%llu", (unsigned long long)cs.dropped);
		pub(w, "$SYS/broker/cluster/messages/invalid", "%llu", (unsigned long long)cs.invalid);
		pub(w, "$SYS/broker/cluster/retained/put", "%llu", (unsigned long long)cs.retained_put);
		pub(w, "$SYS/broker/cluster/retained/applied", "%llu", (unsigned long long)cs.retained_applied);
		/* the cluster's totals: this node's numbers go to the others, theirs come back */
		mg_cluster_load mine = { .interval = interval, .connected = (uint64_t)connected,
		                         .sessions = (uint64_t)(connected + disconnected), .msgs_recv = v[L_MSG_RECV],
		                         .msgs_sent = v[L_MSG_SENT], .pub_recv = v[L_PUB_RECV], .pub_sent = v[L_PUB_SENT],
		                         .subs = mg_subtree_count(b->tree), .retained = mg_retain_count(b->retain) };
		mg_cluster_totals *t = malloc(sizeof *t);
		if (t) {
			b->cluster_ops->totals(b->cluster, &mine, true, t);
			pub(w, "$SYS/broker/cluster/nodes", "%d", t->nodes);
			pubs(w, "$SYS/broker/cluster/nodes/list", t->names);
			pub(w, "$SYS/broker/cluster/total/clients/connected", "%llu", (unsigned long long)t->sum.connected);
			pub(w, "$SYS/broker/cluster/total/clients/total", "%llu", (unsigned long long)t->sum.sessions);
			pub(w, "$SYS/broker/cluster/total/messages/received", "%llu", (unsigned long long)t->sum.msgs_recv);
			pub(w, "$SYS/broker/cluster/total/messages/sent", "%llu", (unsigned long long)t->sum.msgs_sent);
			pub(w, "$SYS/broker/cluster/total/publish/messages/received", "%llu",
			    (unsigned long long)t->sum.pub_recv);
			pub(w, "$SYS/broker/cluster/total/publish/messages/sent", "%llu", (unsigned long long)t->sum.pub_sent);
			pub(w, "$SYS/broker/cluster/total/subscriptions/count", "%llu", (unsigned long long)t->sum.subs);
			pub(w, "$SYS/broker/cluster/total/retained messages/count", "%llu",
			    (unsigned long long)t->sum.retained);
			free(t);
		}
	}
}
