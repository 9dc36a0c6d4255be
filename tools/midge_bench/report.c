/*
 * tools/midge_bench/report.c - the result of a run, as text for people or as one JSON
 * object (--json) for bench/compare. Rates are over the measured window only; loss and
 * duplicate counts are over the whole run (warm-up and drain included).
 */
#include "tools/midge_bench/bench.h"

#include <stdio.h>

static const char *scen[] = {"conn", "pairs", "fanin", "fanout", "shared", "hs"};

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

/* A JSON string body: quotes, backslashes and control characters escaped. */
static void json_str(const char *s)
{
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
}

static void json(const mb_run *g, const mb_result *r)
{
	const mb_opts *o = &g->o;
	const mb_stats *s = &r->st;
	const mb_hist *h = &s->lat;
	double secs = r->secs > 0 ? r->secs : 1;
	printf("{\"scenario\":\"%s\",\"label\":\"", scen[o->scenario]);
	json_str(o->label);
	printf("\",\"clients\":%d,\"subscribers\":%d,"
	       "\"qos\":%d,\"size\":%u,\"protocol\":%d,\"threads\":%d,\"mode\":\"%s\","
	       "\"window\":%d,\"rate\":%.0f,\"duration\":%.3f,",
	       o->clients, o->subscribers, o->qos, o->size,
	       o->protocol, o->threads, o->rate > 0 ? "open" : "closed", o->window, o->rate, secs);
	printf("\"connected\":%d,\"failed\":%d,\"connect_secs\":%.4f,\"connect_rate\":%.1f,",
	       r->connected, r->failed, r->connect_secs,
	       r->connect_secs > 0 ? r->connected / r->connect_secs : 0);
	printf("\"sent\":%llu,\"sent_per_s\":%.1f,\"delivered\":%llu,\"delivered_per_s\":%.1f,"
	       "\"delivered_bytes_per_s\":%.1f,",
	       (unsigned long long)s->sent, s->sent_win / secs, (unsigned long long)s->recv,
	       s->recv_win / secs, s->bytes_win / secs);
	printf("\"expected\":%llu,\"lost\":%llu,\"duplicated\":%llu,\"out_of_order\":%llu,"
	       "\"redeliveries\":%llu,\"unacked_at_end\":%llu,\"acks\":%llu,\"protocol_errors\":%llu,"
	       "\"rejected\":%llu,\"foreign\":%llu,\"window_stalls\":%llu,\"closed\":%llu,",
	       (unsigned long long)r->expected, (unsigned long long)r->lost,
	       (unsigned long long)s->dup, (unsigned long long)s->ooo,
	       (unsigned long long)s->redeliveries, (unsigned long long)r->inflight_end,
	       (unsigned long long)s->acks, (unsigned long long)s->proto_err,
	       (unsigned long long)s->rejected, (unsigned long long)s->foreign,
	       (unsigned long long)s->stalls, (unsigned long long)s->closed);
	printf("\"latency_samples\":%llu,\"latency_us\":{\"min\":%.1f,\"mean\":%.1f,\"p50\":%.1f,"
	       "\"p90\":%.1f,\"p99\":%.1f,\"p99_9\":%.1f,\"max\":%.1f},",
	       (unsigned long long)h->n, h->n ? us(h->min) : 0, h->n ? us(h->sum / h->n) : 0,
	       us(mb_hist_pct(h, 50)), us(mb_hist_pct(h, 90)), us(mb_hist_pct(h, 99)),
	       us(mb_hist_pct(h, 99.9)), us(h->max));
	const mb_hist *lg = &s->lag;
	printf("\"send_lag_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},", us(mb_hist_pct(lg, 50)),
	       us(mb_hist_pct(lg, 99)), us(lg->max));
	double per_m = r->broker_cpu >= 0 && s->recv_win ? r->broker_cpu / (s->recv_win / 1e6) : -1;
	double aux = r->aux_cpu >= 0 ? r->aux_cpu : 0;
	double other = r->machine_cpu >= 0 && r->broker_cpu >= 0
	                       ? r->machine_cpu - r->gen_cpu - r->broker_cpu - aux : -1;
	printf("\"machine_cpu_s\":%.3f,\"other_cpu_s\":%.3f,", r->machine_cpu,
	       other < 0 && r->machine_cpu >= 0 && r->broker_cpu >= 0 ? 0.0 : other);
	if (r->broker2_cpu >= 0)
		printf("\"broker2_cpu_s\":%.3f,\"broker2_cpu_s_per_million\":%.4f,", r->broker2_cpu,
		       s->recv_win ? r->broker2_cpu / (s->recv_win / 1e6) : -1.0);
	if (r->aux_cpu >= 0)
		printf("\"aux_cpu_s\":%.3f,\"aux_cpu_s_per_million\":%.4f,", r->aux_cpu,
		       s->recv_win ? r->aux_cpu / (s->recv_win / 1e6) : -1.0);
	printf("\"generator_cpu_s\":%.3f,\"broker_pid\":%d,\"broker_cpu_s\":%.3f,"
	       "\"broker_cpu_s_per_million\":%.4f,\"broker_rss_kb_before\":%ld,"
	       "\"broker_rss_kb\":%ld,\"broker_hwm_kb\":%ld,\"broker_rss_per_conn_bytes\":%.1f}\n",
	       r->gen_cpu, o->broker_pid, r->broker_cpu, per_m, r->broker_rss0, r->broker_rss1,
	       r->broker_hwm,
	       o->scenario == SC_CONN && r->broker_rss0 >= 0 && r->broker_rss1 >= 0 && r->connected
	               ? (double)(r->broker_rss1 - r->broker_rss0) * 1024.0 / r->connected
	               : -1.0);
}

static void text(const mb_run *g, const mb_result *r)
{
	const mb_opts *o = &g->o;
	const mb_stats *s = &r->st;
	const mb_hist *h = &s->lat;
	double secs = r->secs > 0 ? r->secs : 1;
	printf("midge_bench %s%s%s: %d clients", scen[o->scenario], o->label ? " " : "",
	       o->label ? o->label : "", o->clients);
	if (o->scenario == SC_CONN) {
		printf(", MQTT %s, %d threads\n", o->protocol == 5 ? "5.0" : "3.1.1", o->threads);
		printf("  connections %d up, %d failed, %.3f s (%.0f/s)\n", r->connected, r->failed,
		       r->connect_secs, r->connect_secs > 0 ? r->connected / r->connect_secs : 0);
		if (r->broker_rss0 >= 0 && r->connected)
			printf("  broker RSS %ld kB -> %ld kB: %.0f bytes per connection; peak %ld kB\n",
			       r->broker_rss0, r->broker_rss1,
			       (double)(r->broker_rss1 - r->broker_rss0) * 1024.0 / r->connected, r->broker_hwm);
		return;
	}
	if (o->scenario == SC_SHARED)
		printf(", %d group members", o->subscribers);
	printf(", QoS %d, %u B, MQTT %s, %d threads, ", o->qos, o->size,
	       o->protocol == 5 ? "5.0" : "3.1.1", o->threads);
	if (o->rate > 0)
		printf("open loop at %.0f msgs/s\n", o->rate);
	else
		printf("closed loop, window %d\n", o->window);
	printf("  sent       %12.0f msgs/s   (%llu in all)\n", s->sent_win / secs,
	       (unsigned long long)s->sent);
	printf("  delivered  %12.0f msgs/s   %.1f MB/s   (%llu in all)\n", s->recv_win / secs,
	       s->bytes_win / secs / 1e6, (unsigned long long)s->recv);
	printf("  latency    p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f us  (%llu samples)\n",
	       us(mb_hist_pct(h, 50)), us(mb_hist_pct(h, 90)), us(mb_hist_pct(h, 99)),
	       us(mb_hist_pct(h, 99.9)), us(h->max), (unsigned long long)h->n);
	if (s->lag.n)
		printf("  send lag   p50 %.1f  p99 %.1f  max %.1f us  (generator: write time - due time)\n",
		       us(mb_hist_pct(&s->lag, 50)), us(mb_hist_pct(&s->lag, 99)), us(s->lag.max));
	printf("  lost %llu  duplicated %llu  out of order %llu  (expected %llu deliveries)\n",
	       (unsigned long long)r->lost, (unsigned long long)s->dup, (unsigned long long)s->ooo,
	       (unsigned long long)r->expected);
	if (s->redeliveries || r->inflight_end || s->proto_err || s->rejected || s->foreign ||
	    s->stalls || s->closed)
		printf("  redelivered %llu  unacked at end %llu  protocol errors %llu  rejected %llu  "
		       "foreign %llu  window stalls %llu  closed %llu\n",
		       (unsigned long long)s->redeliveries, (unsigned long long)r->inflight_end,
		       (unsigned long long)s->proto_err, (unsigned long long)s->rejected,
		       (unsigned long long)s->foreign, (unsigned long long)s->stalls,
		       (unsigned long long)s->closed);
	printf("  generator CPU %.2f s (%.0f%% of one core)", r->gen_cpu, 100 * r->gen_cpu / secs);
	if (r->broker_cpu >= 0) {
		printf("; broker CPU %.2f s (%.0f%%)", r->broker_cpu, 100 * r->broker_cpu / secs);
		if (s->recv_win)
			printf(", %.3f s per million delivered", r->broker_cpu / (s->recv_win / 1e6));
	}
	if (r->aux_cpu >= 0) {
		printf("; --aux-pid CPU %.2f s (%.0f%%)", r->aux_cpu, 100 * r->aux_cpu / secs);
		if (s->recv_win)
			printf(", %.3f s per million delivered", r->aux_cpu / (s->recv_win / 1e6));
	}
	printf("\n");
	if (r->machine_cpu >= 0 && r->broker_cpu >= 0) {
		double other = r->machine_cpu - r->gen_cpu - r->broker_cpu - (r->aux_cpu >= 0 ? r->aux_cpu : 0);
		printf("  other processes on this machine: %.2f CPU s (%.0f%% of one core)%s\n",
		       other > 0 ? other : 0, other > 0 ? 100 * other / secs : 0,
		       other > 0.1 * secs ? ": numbers are noisy" : "");
	}
	if (r->broker_hwm >= 0)
		printf("  broker RSS %ld kB, peak %ld kB\n", r->broker_rss1, r->broker_hwm);
}

void mb_report(const mb_run *g, const mb_result *r)
{
	if (g->o.json)
		json(g, r);
	else
		text(g, r);
	fflush(stdout);
}
