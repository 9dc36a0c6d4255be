/*
 * broker/cluster.c - several midge nodes as one broker over NATS, with libnats (cluster.h,
 * docs/cluster.md). Linked into the midge binary only.
 *
 * What runs where:
 *   - start/stop: the main thread, while no worker runs.
 *   - interest (SUBSCRIBE, UNSUBSCRIBE, session end): any worker, under c->mu, which guards
 *     the table of distinct filters and their NATS subscriptions and nothing else.
 *   - send: a worker, in its own slot of c->wp (its buffer and sequence); libnats's
 *     connection lock inside natsConnection_Publish, never a broker lock.
 *   - on_msg: libnats's one delivery thread (global delivery, pool of 1), for every
 *     message subscription; the dedup table and the decode buffers are its alone. It posts
 *     to a worker's inbox under c->post_mu, which stop() takes to end the posting for good.
 *   - on_presence (and cluster_session.c's takeover requests): a thread of their own each
 *     (mg_cl_sub), never behind the message traffic.
 *   - totals: worker 0 (sys.c) and any worker serving /metrics read the other nodes'
 *     numbers under c->smu; the presence thread writes them there (on_presence).
 */
#include "broker/cluster.h"
#include "broker/cluster_session.h"
#include "broker/cluster_int.h"
#include "broker/cluster_subject.h"
#include "broker/log.h"
#include "broker/route.h"
#include "broker/worker.h"
#include "net/loop.h"

#include <nats/nats.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* The envelope (docs/cluster.md "What travels in a NATS message"). */
enum { ENV_VERSION = 1, ENV_FIXED = 20, F_RETAIN = 4, F_EXPIRY = 8 };

/* Retained messages (docs/cluster.md): one JetStream key-value bucket; a put is a plain NATS
 * publish on its stream's subject, so a worker never waits for JetStream. */
#define RETAIN_BUCKET "MQTT_RETAIN"
#define KV_PREFIX "$KV." RETAIN_BUCKET "."

typedef struct ient { /* one distinct filter this node holds, and its NATS subscriptions */
	mg_btent h;   /* key: f, len bytes (an MQTT string) */
	int count;
	natsSubscription *sub[2];
	uint8_t f[];
} ient;

typedef struct sent { /* one shared group "$share/g/f" this node has members of */
	mg_btent h;   /* key: g->f */
	int count;
	natsSubscription *sub[2]; /* queue subscriptions on nq, each holding a reference to g */
	mg_cgroup *g;
} sent;

typedef struct origin { /* the last sequence accepted from one worker of one node */
	uint64_t node, seq;
	uint32_t worker;
	bool used;
} origin;

typedef struct wpub { /* a worker's own: it alone writes these */
	uint64_t seq;
	uint8_t *buf;
	size_t cap;
	char subj[MG_CSUBJ_MAX + 1];
	char key[sizeof KV_PREFIX + MG_CSUBJ_MAX];
	char pad[64];
} wpub;

struct mg_cluster {
	mg_broker *b;
	natsOptions *opts;
	natsConnection *nc;
	/* the shared groups' queue subscriptions: a connection of their own, which sees nc's
	 * messages (no-echo is per connection), so NATS may pick this node's own member */
	natsOptions *qopts;
	natsConnection *nq;
	uint64_t node_id;
	char name[128];
	atomic_llong max_payload;
	wpub *wp;
	pthread_mutex_t mu; /* the interest table */
	mg_btab tab;        /* filter -> ient, under mu */
	mg_btab stab;       /* "$share/g/f" -> sent, under mu */
	pthread_mutex_t post_mu;
	atomic_bool closing; /* set under post_mu; read without it only to stop waiting */
	/* the delivery thread's */
	origin *orig;
	size_t orig_cap, orig_n;
	dec rx;
	/* retained messages in the bucket; kv NULL: each node keeps its own (no JetStream) */
	jsCtx *js;
	kvStore *kv;
	kvWatcher *watcher;
	pthread_t watch_th;
	bool watching;
	pthread_mutex_t wmu;
	pthread_cond_t wcond;
	bool initial_done;  /* under wmu: the watcher applied the bucket as it was at start */
	dec wx;             /* the watcher thread's */
	mg_clsub *presence; /* hello, here, bye, beat: apart from the message traffic */
	natsSubscription *barrier; /* closed last at stop: see drain_delivery */
	bool barrier_done;         /* under wmu */
	mg_csess *cs;       /* sessions: the client-id registry, takeover, heartbeat */
	mg_cljs *q;         /* QoS 1/2 through JetStream (cluster_js.c); NULL: over core NATS */
	pthread_mutex_t smu; /* the other nodes' numbers, for the totals (then cs's pmu, alone) */
	struct nstat *peer_st;
	int npeer_st;
	/* counters, any thread */
	atomic_uint_fast64_t sent, received, dups, dropped_long, dropped_big, bad, nats_err, kv_puts, kv_applied;
	atomic_bool warned_long, warned_big, warned_bad, warned_err;
};

/* ---- interest: one NATS subscription per distinct filter ---- */

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);
static void barrier_start(mg_cluster *c);

static void nats_subscribe(mg_cluster *c, ient *e)
{
	char subj[2 * MG_CSUBJ_MAX + 2];
	int n = mg_csubj_from_filter(e->f, e->h.len, subj, sizeof subj);
	/* -E2BIG: it could match only topics too long to be sent (cluster_subject.h) */
	const char *s = subj;
	for (int i = 0; i < n; i++, s += strlen(s) + 1) {
		natsStatus st = natsConnection_Subscribe(&e->sub[i], c->nc, s, on_msg, c);
		if (st != NATS_OK) {
			e->sub[i] = NULL;
			mg_log(MG_LOG_WARNING, "Warning: cluster: cannot subscribe to %s on NATS (%s): messages "
			       "on '%.*s' from other nodes will not arrive here.", s, natsStatus_GetText(st),
			       (int)e->h.len, (const char *)e->f);
		}
	}
}

static void nats_unsubscribe(ient *e)
{
	for (int i = 0; i < 2; i++)
		if (e->sub[i]) {
			natsSubscription_Unsubscribe(e->sub[i]);
			natsSubscription_Destroy(e->sub[i]);
			e->sub[i] = NULL;
		}
}

/* ---- shared groups: one NATS queue subscription per (group, filter) ----
 * On nq, with a queue group named after (group, filter): the group's escaped like a level,
 * '.', then the filter's first subject (the escape leaves no '.' in a level, so the name is
 * unambiguous). NATS queue groups are per name across subjects: `$share/g/a/+` and
 * `$share/g/a/b` are two groups and must not share a name. */

static void on_share_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);

static void share_done(void *closure) /* the subscription closed: no message comes after */
{
	mg_cgroup_unref(closure);
}

static void share_subscribe(mg_cluster *c, sent *e)
{
	mg_bytes group, f;
	mg_share_parse(e->g->f, e->g->len, &group, &f);
	char subj[2 * MG_CSUBJ_MAX + 2], queue[MG_CSUBJ_MAX + 1];
	int n = mg_csubj_from_filter(f.p, f.len, subj, sizeof subj);
	int ql = mg_csubj_from_topic(group.p, group.len, queue, sizeof queue);
	const char *tok = ql > 0 ? strchr(queue, '.') + 1 : NULL; /* after "mqtt." or "mqtt$." */
	size_t tl = tok ? strlen(tok) : 0;
	const char *s = subj;
	for (int i = 0; i < n; i++, s += strlen(s) + 1) {
		/* the NATS protocol line holds subject and queue: 4096 bytes by default */
		char qn[4000];
		natsStatus st = NATS_INVALID_ARG;
		if (tok && tl + 1 + strlen(subj) + strlen(s) < sizeof qn - 100) {
			memmove(qn, tok, tl);
			qn[tl] = '.';
			strcpy(qn + tl + 1, subj);
			atomic_fetch_add_explicit(&e->g->refs, 1, memory_order_relaxed);
			st = natsConnection_QueueSubscribe(&e->sub[i], c->nq, s, qn, on_share_msg, e->g);
			if (st == NATS_OK && natsSubscription_SetOnCompleteCB(e->sub[i], share_done, e->g) != NATS_OK) {
				natsSubscription_Unsubscribe(e->sub[i]); /* its reference stays: leaked, not freed under it */
				natsSubscription_Destroy(e->sub[i]);
				st = NATS_ERR;
			} else if (st != NATS_OK) {
				atomic_fetch_sub_explicit(&e->g->refs, 1, memory_order_relaxed);
			}
		}
		if (st != NATS_OK) {
			e->sub[i] = NULL;
			mg_log(MG_LOG_WARNING, "Warning: cluster: cannot subscribe the shared group '%.*s' on NATS "
			       "(%s): its members on this node will get no messages.", (int)(e->g->len > 200 ? 200 : e->g->len),
			       (const char *)e->g->f, natsStatus_GetText(st));
		}
	}
}

static void share_unsubscribe(sent *e)
{
	for (int i = 0; i < 2; i++)
		if (e->sub[i]) {
			natsSubscription_Unsubscribe(e->sub[i]);
			natsSubscription_Destroy(e->sub[i]);
			e->sub[i] = NULL;
		}
}

static void free_sent(mg_btent *h)
{
	sent *e = (sent *)h;
	for (int i = 0; i < 2; i++)
		if (e->sub[i])
			natsSubscription_Destroy(e->sub[i]);
	mg_cgroup_unref(e->g);
	free(e);
}

static void share_interest(mg_cluster *c, const uint8_t *f, size_t len, int delta)
{
	pthread_mutex_lock(&c->mu);
	if (mg_btab_room(&c->stab) < 0)
		goto out;
	mg_btent **pp = mg_btab_slot(&c->stab, f, len);
	sent *e = (sent *)*pp;
	if (delta > 0) {
		if (e) {
			e->count++;
		} else if ((e = calloc(1, sizeof *e)) && (e->g = malloc(sizeof *e->g + len))) {
			atomic_init(&e->g->refs, 1);
			e->g->cl = c;
			e->g->len = (uint32_t)len;
			memcpy(e->g->f, f, len);
			e->count = 1;
			e->h.key = e->g->f;
			e->h.len = (uint32_t)len;
			mg_btab_link(&c->stab, pp, &e->h);
			share_subscribe(c, e);
		} else {
			free(e);
			mg_log(MG_LOG_ERR, "Error: cluster: out of memory: the shared group '%.*s' gets no "
			       "messages here.", (int)len, (const char *)f);
		}
	} else if (e && --e->count == 0) {
		share_unsubscribe(e);
		free_sent(mg_btab_unlink(&c->stab, pp));
	}
out:
	pthread_mutex_unlock(&c->mu);
}

static void interest(mg_cluster *c, const uint8_t *f, size_t len, int delta)
{
	if (len > 7 && f[0] == '$' && mg_share_parse(f, len, NULL, NULL) == 1) {
		share_interest(c, f, len, delta);
		return;
	}
	pthread_mutex_lock(&c->mu);
	if (mg_btab_room(&c->tab) < 0)
		goto out;
	mg_btent **pp = mg_btab_slot(&c->tab, f, len);
	ient *e = (ient *)*pp;
	if (delta > 0) {
		if (e) {
			e->count++;
		} else if ((e = calloc(1, sizeof *e + len))) {
			e->count = 1;
			memcpy(e->f, f, len);
			e->h.key = e->f;
			e->h.len = (uint32_t)len;
			mg_btab_link(&c->tab, pp, &e->h);
			nats_subscribe(c, e);
		} else {
			mg_log(MG_LOG_ERR, "Error: cluster: out of memory: messages on '%.*s' from other nodes "
			       "will not arrive here.", (int)len, (const char *)f);
		}
	} else if (e && --e->count == 0) {
		nats_unsubscribe(e);
		free(mg_btab_unlink(&c->tab, pp));
	}
out:
	pthread_mutex_unlock(&c->mu);
}

static int count_existing(void *ctx, const uint8_t *filter, size_t flen, const mg_sub_entry *e)
{
	(void)e;
	interest(ctx, filter, flen, +1);
	return 0;
}

/* ---- sending ---- */

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Once per kind of trouble: the counters say how often. */
static void warn_once(atomic_bool *flag, const char *fmt, const mg_msg *m, const char *why)
{
	if (!atomic_exchange_explicit(flag, true, memory_order_relaxed))
		mg_log(MG_LOG_WARNING, fmt, (int)(m->topic_len > 200 ? 200 : m->topic_len),
		       (const char *)m->topic, why);
}

/* The envelope into p->buf (grown to npre + need), after npre bytes of prefix. seq 0: none
 * (a KV value). Returns p->buf or NULL. */
static uint8_t *encode(mg_cluster *c, wpub *p, mg_worker *w, const mg_msg *m, int64_t left,
                       size_t need, uint64_t seq, const uint8_t *pre, size_t npre)
{
	if (npre + need > p->cap) {
		size_t nc = p->cap ? p->cap : 4096;
		while (nc < npre + need)
			nc *= 2;
		uint8_t *nb = realloc(p->buf, nc);
		if (!nb)
			return NULL;
		p->buf = nb;
		p->cap = nc;
	}
	uint8_t *q = p->buf;
	if (npre)
		memcpy(q, pre, npre);
	q += npre;
	q[0] = ENV_VERSION;
	q[1] = (uint8_t)(m->qos | (m->retain ? F_RETAIN : 0) | (m->has_expiry ? F_EXPIRY : 0));
	put_be(q + 2, c->node_id, 8);
	put_be(q + 10, (uint64_t)w->idx, 2);
	put_be(q + 12, seq, 8);
	q += ENV_FIXED;
	if (m->has_expiry) {
		put_be(q, (uint64_t)left, 8);
		q += 8;
	}
	put_be(q, m->props_len, 4);
	q += 4;
	memcpy(q, m->props, m->props_len);
	memcpy(q + m->props_len, m->payload, m->payload_len);
	return p->buf;
}

static size_t env_size(const mg_msg *m)
{
	return ENV_FIXED + (m->has_expiry ? 8 : 0) + 4 + (size_t)m->props_len + m->payload_len;
}

static bool is_sys(const mg_msg *m)
{
	return m->topic_len >= 4 && memcmp(m->topic, "$SYS", 4) == 0 && (m->topic_len == 4 || m->topic[4] == '/');
}

static bool send_msg(mg_cluster *c, mg_worker *w, const mg_msg *m)
{
	if (is_sys(m)) /* $SYS is each node's own; a bridge's state topic there too */
		return false;
	wpub *p = &c->wp[w->idx];
	int sl = mg_csubj_from_topic(m->topic, m->topic_len, p->subj, sizeof p->subj);
	if (sl < 0) {
		atomic_fetch_add_explicit(&c->dropped_long, 1, memory_order_relaxed);
		warn_once(&c->warned_long, "Warning: cluster: a message on '%.*s' was served on this node "
		          "only: %s (this is said once; see docs/cluster.md).", m, "its topic is too long for a NATS subject");
		return false;
	}
	int64_t left = 0;
	if (m->has_expiry && (left = m->expire_at - mg_loop_now_ms(w->loop)) <= 0)
		return false;
	size_t need = env_size(m);
	if ((int64_t)need > atomic_load_explicit(&c->max_payload, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&c->dropped_big, 1, memory_order_relaxed);
		warn_once(&c->warned_big, "Warning: cluster: a message on '%.*s' was served on this node "
		          "only: %s (this is said once; see docs/cluster.md).", m,
		          "it is larger than the NATS server's max_payload");
		return false;
	}
	if (!encode(c, p, w, m, left, need, ++p->seq, NULL, 0))
		return false;
	if (m->qos && c->q) { /* acknowledged once JetStream stored it (cluster_ack.h) */
		if (!mg_cljs_publish(c->q, w, p->subj, p->buf, (int)need, p->seq))
			return false;
		w->cluster_seq = p->seq;
		/* The shared groups get a copy over core NATS through their queue subscriptions
		 * (plain subscriptions drop it, on_msg): one member per group in the cluster, at
		 * most once (docs/cluster.md "Shared subscriptions": a JetStream consumer per group
		 * lost messages with nats-server 2.9). */
		w->cluster_shared = natsConnection_Publish(c->nc, p->subj, p->buf, (int)need) == NATS_OK;
		return true;
	}
	/* Into libnats's buffer; its flusher thread writes whatever a loop turn gathered. The
	 * shared groups' queue subscriptions (this node's too, on nq) get it there. */
	natsStatus st = natsConnection_Publish(c->nc, p->subj, p->buf, (int)need);
	w->cluster_shared = st == NATS_OK;
	if (st != NATS_OK) {
		atomic_fetch_add_explicit(&c->nats_err, 1, memory_order_relaxed);
		warn_once(&c->warned_err, "Warning: cluster: a message on '%.*s' could not go to NATS: %s "
		          "(this is said once).", m, natsStatus_GetText(st));
		return false;
	}
	atomic_fetch_add_explicit(&c->sent, 1, memory_order_relaxed);
	return true;
}

/* A retained PUBLISH (an empty payload clears): its topic and envelope become the value of
 * the topic's key. A plain publish on the bucket's stream subject: JetStream stores it, every
 * node's watcher applies it, this node's too (the stream's order is the one truth, so every
 * node ends with the same value when two nodes set one topic at once). */
static void retain_put(mg_cluster *c, mg_worker *w, const mg_msg *m)
{
	if (!c->kv || is_sys(m))
		return;
	wpub *p = &c->wp[w->idx];
	int kl = mg_csubj_kv_key(m->topic, m->topic_len, p->key + sizeof KV_PREFIX - 1,
	                         sizeof p->key - (sizeof KV_PREFIX - 1));
	int64_t left = 0;
	if (kl < 0 || (m->has_expiry && (left = m->expire_at - mg_loop_now_ms(w->loop)) <= 0))
		return;
	memcpy(p->key, KV_PREFIX, sizeof KV_PREFIX - 1);
	uint8_t pre[2] = { (uint8_t)(m->topic_len >> 8), (uint8_t)m->topic_len };
	size_t need = env_size(m);
	if ((int64_t)(2 + m->topic_len + need) > atomic_load_explicit(&c->max_payload, memory_order_relaxed))
		return;
	/* topic length, then topic, then the envelope: encode writes the prefix, then the topic
	 * goes in before the envelope moves up */
	if (!encode(c, p, w, m, left, m->topic_len + need, 0, pre, 2))
		return;
	memmove(p->buf + 2 + m->topic_len, p->buf + 2, need);
	memcpy(p->buf + 2, m->topic, m->topic_len);
	if (natsConnection_Publish(c->nc, p->key, p->buf, (int)(2 + m->topic_len + need)) == NATS_OK)
		atomic_fetch_add_explicit(&c->kv_puts, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&c->nats_err, 1, memory_order_relaxed);
}

/* ---- receiving (libnats's delivery thread) ---- */

/* true if (node, worker, seq) is new: the first copy of a message that several overlapping
 * subscriptions of this node delivered, in the order one origin published them. */
static bool first_copy(mg_cluster *c, uint64_t node, uint32_t worker, uint64_t seq)
{
	if (c->orig_n >= c->orig_cap / 2) {
		size_t nc = c->orig_cap ? c->orig_cap * 2 : 64;
		origin *nt = calloc(nc, sizeof *nt);
		if (!nt)
			return true; /* a duplicate is better than a loss */
		for (size_t i = 0; i < c->orig_cap; i++)
			if (c->orig[i].used) {
				size_t h = (size_t)((c->orig[i].node ^ c->orig[i].worker * 0x9E3779B97F4A7C15ull) & (nc - 1));
				while (nt[h].used)
					h = (h + 1) & (nc - 1);
				nt[h] = c->orig[i];
			}
		free(c->orig);
		c->orig = nt;
		c->orig_cap = nc;
	}
	size_t h = (size_t)((node ^ worker * 0x9E3779B97F4A7C15ull) & (c->orig_cap - 1));
	while (c->orig[h].used && !(c->orig[h].node == node && c->orig[h].worker == worker))
		h = (h + 1) & (c->orig_cap - 1);
	origin *o = &c->orig[h];
	if (!o->used) {
		*o = (origin){ .node = node, .worker = worker, .seq = seq, .used = true };
		c->orig_n++;
		return true;
	}
	if (seq <= o->seq)
		return false;
	o->seq = seq;
	return true;
}

/* The property block came from the network: decode it as the body of a 5.0 PUBLISH would be,
 * so only what a client could have sent reaches our clients. */
static bool props_ok(dec *x, const uint8_t *props, uint32_t n, mg_packet *pkt)
{
	size_t need = 1 + 4 + 3 + 4 + (size_t)n;
	if (need > x->vcap) {
		uint8_t *nb = realloc(x->vbuf, need);
		if (!nb)
			return false;
		x->vbuf = nb;
		x->vcap = need;
	}
	uint8_t body_hdr[4 + 3];
	size_t pl = mg_varint_encode(body_hdr + 3, n);
	body_hdr[0] = 0;
	body_hdr[1] = 1;
	body_hdr[2] = 'x';
	uint32_t rl = (uint32_t)(3 + pl + n);
	uint8_t *q = x->vbuf;
	*q++ = 0x30; /* PUBLISH, QoS 0 */
	q += mg_varint_encode(q, rl);
	memcpy(q, body_hdr, 3 + pl);
	q += 3 + pl;
	memcpy(q, props, n);
	q += n;
	return mg_decode(x->vbuf, (size_t)(q - x->vbuf), MG_V5, 0, pkt) == q - x->vbuf;
}

bool mg_cl_parse_env(const uint8_t *d, size_t dl, env *e)
{
	if (dl < ENV_FIXED + 4 || d[0] != ENV_VERSION || (d[1] & 3) == 3 || (d[1] & ~15))
		return false;
	e->flags = d[1];
	e->node = get_be(d + 2, 8);
	e->worker = (uint32_t)get_be(d + 10, 2);
	e->seq = get_be(d + 12, 8);
	size_t off = ENV_FIXED;
	e->left = 0;
	if (e->flags & F_EXPIRY) {
		if (dl < off + 8 + 4)
			return false;
		e->left = (int64_t)get_be(d + off, 8);
		off += 8;
	}
	e->plen = (size_t)get_be(d + off, 4);
	off += 4;
	if (e->plen > dl - off)
		return false;
	e->props = d + off;
	e->payload = d + off + e->plen;
	e->paylen = dl - off - e->plen;
	return true;
}

/* The message a client's PUBLISH on topic with these contents would have made; NULL if the
 * properties do not decode as a 5.0 PUBLISH's (or out of memory: *bad stays false). */
mg_msg *mg_cl_build_msg(dec *x, const uint8_t *topic, size_t tl, const env *e, int64_t age,
                         bool *bad)
{
	mg_packet pkt;
	*bad = mg_topic_name_check(topic, tl) != MG_OK ||
	       (e->plen && !props_ok(x, e->props, (uint32_t)e->plen, &pkt));
	if (*bad)
		return NULL;
	int64_t now = mg_now_ms();
	/* mg_msg_new keeps the forwardable properties as a client's PUBLISH would give them */
	mg_msg *m = mg_msg_new(topic, tl, e->payload, e->paylen, e->plen ? &pkt.props : NULL,
	                       e->flags & 3, e->flags & F_RETAIN, now);
	if (m && (e->flags & F_EXPIRY)) { /* nobody else holds it yet */
		m->has_expiry = true;
		m->expire_at = now + e->left - age;
	}
	return m;
}

void mg_cl_warn_bad(mg_cluster *c, const char *where)
{
	atomic_fetch_add_explicit(&c->bad, 1, memory_order_relaxed);
	if (!atomic_exchange_explicit(&c->warned_bad, true, memory_order_relaxed))
		mg_log(MG_LOG_WARNING, "Warning: cluster: dropped a NATS message on %.200s that is not a "
		       "midge node's (this is said once).", where);
}

bool mg_cl_post(mg_cluster *c, int to, const mg_post *p)
{
	mg_broker *b = c->b;
	/* Backpressure: while that worker is behind (as a publishing worker would stop reading,
	 * worker.h), this thread waits instead of growing its inbox; libnats then queues what
	 * arrives, up to its pending limits per subscription, past which it drops and says so
	 * (on_error: slow consumer; JetStream redelivers what it did not see acknowledged).
	 * Memory stays bounded; a worker never waits. */
	while (atomic_load_explicit(&b->w[to].inbox_n, memory_order_relaxed) > MG_INBOX_HIGH &&
	       !atomic_load_explicit(&c->closing, memory_order_relaxed))
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	pthread_mutex_lock(&c->post_mu);
	bool ok = !c->closing && mg_worker_post_ext(&b->w[to], p) == 0;
	pthread_mutex_unlock(&c->post_mu);
	return ok;
}

int mg_cl_replicas(natsConnection *nc)
{
	char **servers = NULL;
	int n = 0;
	natsConnection_GetServers(nc, &servers, &n);
	for (int i = 0; i < n; i++)
		free(servers[i]);
	free(servers);
	return n >= 3 ? 3 : 1;
}

uint64_t mg_cl_node_id(const mg_cluster *c)
{
	return c->node_id;
}

const char *mg_cl_name(const mg_cluster *c)
{
	return c->name;
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	mg_cluster *c = closure;
	(void)nc;
	(void)sub;
	const char *subj = natsMsg_GetSubject(msg);
	env e;
	bool bad = true;
	if (!mg_cl_parse_env((const uint8_t *)natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), &e))
		goto out;
	bad = false;
	if (e.node == c->node_id) /* NATS's no-echo already keeps our own away */
		goto out;
	/* a QoS 1/2 message sent for the shared groups (send_msg): the plain subscribers get
	 * it through JetStream */
	if ((e.flags & 3) && c->q)
		goto out;
	int tl = mg_csubj_to_topic(subj, strlen(subj), c->rx.topic, sizeof c->rx.topic);
	if (tl <= 0) {
		bad = true;
		goto out;
	}
	if (!first_copy(c, e.node, e.worker, e.seq)) {
		atomic_fetch_add_explicit(&c->dups, 1, memory_order_relaxed);
		goto out;
	}
	mg_msg *m = mg_cl_build_msg(&c->rx, c->rx.topic, (size_t)tl, &e, 0, &bad);
	if (!m)
		goto out;
	atomic_fetch_add_explicit(&c->received, 1, memory_order_relaxed);
	/* One worker per origin worker: its messages are routed in the order they were sent. */
	int to = (int)((e.node ^ e.worker * 0x9E3779B97F4A7C15ull) % (uint64_t)c->b->nworkers);
	mg_post p = { .kind = MG_POST_REMOTE, .it = { .m = m } };
	if (!mg_cl_post(c, to, &p))
		mg_msg_unref(m);
out:
	if (bad)
		mg_cl_warn_bad(c, subj);
	natsMsg_Destroy(msg);
}

/* A message for one shared group of this node (a queue subscription on nq): NATS picked
 * this node for it, the origin's own messages included; every copy is wanted (each group
 * has its own subscription), so no duplicate check. It goes to the worker that plain
 * messages of its origin go to, with the group, to one member. */
static void on_share_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	mg_cgroup *g = closure;
	mg_cluster *c = g->cl;
	(void)nc;
	(void)sub;
	const char *subj = natsMsg_GetSubject(msg);
	env e;
	bool bad = true;
	int tl = -1;
	if (mg_cl_parse_env((const uint8_t *)natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), &e))
		tl = mg_csubj_to_topic(subj, strlen(subj), c->rx.topic, sizeof c->rx.topic);
	if (tl <= 0)
		goto out;
	mg_msg *m = mg_cl_build_msg(&c->rx, c->rx.topic, (size_t)tl, &e, 0, &bad);
	if (!m)
		goto out;
	atomic_fetch_add_explicit(&c->received, 1, memory_order_relaxed);
	int to = (int)((e.node ^ e.worker * 0x9E3779B97F4A7C15ull) % (uint64_t)c->b->nworkers);
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	mg_post p = { .kind = MG_POST_REMOTE, .ref = (mg_sref)(void *)g, .it = { .m = m } };
	if (!mg_cl_post(c, to, &p)) {
		mg_msg_unref(m);
		mg_cgroup_unref(g);
	}
out:
	if (bad)
		mg_cl_warn_bad(c, subj);
	natsMsg_Destroy(msg);
}

/* ---- the retained bucket's watcher (its own thread) ---- */

/* One value of the bucket into the local retained store: [u16 topic length][topic][envelope]. */
static void apply_entry(mg_cluster *c, kvEntry *ke)
{
	kvOperation op = kvEntry_Operation(ke);
	if (op == kvOp_Delete || op == kvOp_Purge)
		return; /* midge never deletes keys: an empty payload is the clearing value */
	const uint8_t *v = kvEntry_Value(ke);
	size_t vl = (size_t)kvEntry_ValueLen(ke);
	env e;
	size_t tl = vl >= 2 ? (size_t)(v[0] << 8 | v[1]) : 0;
	bool bad = true;
	if (tl == 0 || vl < 2 + tl || !mg_cl_parse_env(v + 2 + tl, vl - 2 - tl, &e)) {
		mg_cl_warn_bad(c, kvEntry_Key(ke));
		return;
	}
	/* the time it spent in the bucket counts against its expiry (the servers' clock) */
	int64_t created_ms = kvEntry_Created(ke) / 1000000;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t age = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - created_ms;
	e.flags |= F_RETAIN;
	mg_msg *m = mg_cl_build_msg(&c->wx, v + 2, tl, &e, age < 0 ? 0 : age, &bad);
	if (bad) {
		mg_cl_warn_bad(c, kvEntry_Key(ke));
		return;
	}
	if (!m)
		return;
	if (mg_msg_expired(m, mg_now_ms()) || m->payload_len == 0)
		mg_retain_set(c->b->retain, m->topic, m->topic_len, NULL);
	else
		mg_retain_set(c->b->retain, m->topic, m->topic_len, m);
	mg_msg_unref(m);
	atomic_fetch_add_explicit(&c->kv_applied, 1, memory_order_relaxed);
}

static void *watch_main(void *arg)
{
	mg_cluster *c = arg;
	for (;;) {
		kvEntry *ke = NULL;
		natsStatus s = kvWatcher_Next(&ke, c->watcher, 1000);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK) {
			if (s != NATS_ILLEGAL_STATE) /* not kvWatcher_Stop */
				mg_log(MG_LOG_WARNING, "Warning: cluster node %s: the retained bucket's watcher "
				       "stopped: %s.", c->name, natsStatus_GetText(s));
			break;
		}
		if (!ke) {
			pthread_mutex_lock(&c->wmu);
			c->initial_done = true;
			pthread_cond_signal(&c->wcond);
			pthread_mutex_unlock(&c->wmu);
			continue;
		}
		apply_entry(c, ke);
		kvEntry_Destroy(ke);
	}
	return NULL;
}

/* Bind the bucket (or create it: replicas 3 when NATS runs 3 servers or more, else 1),
 * start the watcher and wait until it applied what the bucket holds, so a client that
 * subscribes on this node gets every node's retained messages from the start. JetStream
 * off, or not ready in 10 s: retained messages stay per node, and it is said. */
static void retained_start(mg_cluster *c)
{
	if (!c->b->cfg->retain_available)
		return;
	natsStatus s = natsConnection_JetStream(&c->js, c->nc, NULL);
	int64_t deadline = mg_now_ms() + 10000;
	while (s == NATS_OK) {
		s = js_KeyValue(&c->kv, c->js, RETAIN_BUCKET);
		if (s == NATS_NOT_FOUND) {
			kvConfig kc;
			kvConfig_Init(&kc);
			kc.Bucket = RETAIN_BUCKET;
			kc.History = 1;
			kc.Replicas = mg_cl_replicas(c->nc);
			kc.StorageType = js_FileStorage;
			s = js_CreateKeyValue(&c->kv, c->js, &kc);
		}
		if (s == NATS_OK || mg_now_ms() > deadline)
			break;
		nats_Sleep(200); /* JetStream elects its leaders after the servers start */
		s = NATS_OK;
	}
	kvWatchOptions wo;
	kvWatchOptions_Init(&wo);
	if (s == NATS_OK)
		s = kvStore_WatchAll(&c->watcher, c->kv, &wo);
	if (s == NATS_OK && pthread_create(&c->watch_th, NULL, watch_main, c) == 0)
		c->watching = true;
	if (!c->watching) {
		const char *detail = nats_GetLastError(NULL);
		mg_log(MG_LOG_WARNING, "Warning: cluster node %s: no JetStream key-value bucket %s (%s%s%s): "
		       "retained messages stay on the node that took them.", c->name, RETAIN_BUCKET,
		       natsStatus_GetText(s), detail && *detail ? ": " : "", detail ? detail : "");
		if (c->watcher)
			kvWatcher_Destroy(c->watcher);
		c->watcher = NULL;
		if (c->kv)
			kvStore_Destroy(c->kv);
		c->kv = NULL;
		return;
	}
	pthread_mutex_lock(&c->wmu);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	while (!c->initial_done && pthread_cond_timedwait(&c->wcond, &c->wmu, &until) == 0)
		;
	bool done = c->initial_done;
	pthread_mutex_unlock(&c->wmu);
	mg_log(done ? MG_LOG_NOTICE : MG_LOG_WARNING, "%sCluster node %s: retained messages in bucket %s: "
	       "%llu loaded%s.", done ? "" : "Warning: ", c->name, RETAIN_BUCKET,
	       (unsigned long long)atomic_load(&c->kv_applied), done ? "" : " so far (still loading)");
}

static void retained_stop(mg_cluster *c)
{
	if (c->watching) {
		kvWatcher_Stop(c->watcher);
		pthread_join(c->watch_th, NULL);
		c->watching = false;
	}
	if (c->watcher)
		kvWatcher_Destroy(c->watcher);
	c->watcher = NULL;
	if (c->kv)
		kvStore_Destroy(c->kv);
	c->kv = NULL;
	if (c->js)
		jsCtx_Destroy(c->js);
	c->js = NULL;
}

/* ---- presence: which nodes are in the cluster, for the log ---- */

/* Subjects outside the mqtt namespaces. A node says hello when it joins and bye when it
 * leaves; the nodes already there answer a hello with here, so the newcomer names them too.
 * A node that dies without a bye is noticed by the heartbeat (cluster_session.c). */
#define PRESENCE "midge.node."

/* ---- control subscriptions: a thread each (cluster_int.h) ---- */

struct mg_clsub {
	natsConnection *nc;
	natsSubscription *sub;
	natsMsgHandler cb;
	void *closure;
	pthread_t th;
	int64_t until;    /* set before stop */
	atomic_bool stop;
};

static void *clsub_main(void *arg)
{
	mg_clsub *s = arg;
	for (;;) {
		natsMsg *m = NULL;
		/* libnats's reader queues the messages (its pending limits, as for the others); the
		 * timeout bounds how long a stop waits when the drain does not complete */
		natsStatus st = natsSubscription_NextMsg(&m, s->sub, 250);
		if (st == NATS_OK)
			s->cb(s->nc, s->sub, m, s->closure);
		else if (st != NATS_TIMEOUT && st != NATS_SLOW_CONSUMER)
			break; /* drained (or unsubscribed), connection closed */
		else if (atomic_load(&s->stop) && mg_now_ms() > s->until)
			break;
	}
	return NULL;
}

mg_clsub *mg_cl_sub(natsConnection *nc, const char *subj, natsMsgHandler cb, void *closure)
{
	mg_clsub *s = calloc(1, sizeof *s);
	natsStatus st = s ? natsConnection_SubscribeSync(&s->sub, nc, subj) : NATS_NO_MEMORY;
	if (st == NATS_OK) {
		s->nc = nc;
		s->cb = cb;
		s->closure = closure;
		if (pthread_create(&s->th, NULL, clsub_main, s) == 0)
			return s;
		st = NATS_SYS_ERROR;
		natsSubscription_Unsubscribe(s->sub);
		natsSubscription_Destroy(s->sub);
	}
	mg_log(MG_LOG_WARNING, "Warning: cluster: cannot subscribe to %s on NATS (%s).", subj,
	       natsStatus_GetText(st));
	free(s);
	return NULL;
}

void mg_cl_sub_stop(mg_clsub *s)
{
	if (!s)
		return;
	/* Drained, not just unsubscribed: the messages NATS sent before it took the interest
	 * away are read and handled (one arriving just after an unsubscribe was left to libnats,
	 * which did not free it: LeakSanitizer) */
	s->until = mg_now_ms() + 3000;
	atomic_store(&s->stop, true);
	if (natsSubscription_DrainTimeout(s->sub, 2000) != NATS_OK)
		natsSubscription_Unsubscribe(s->sub);
	pthread_join(s->th, NULL);
	natsSubscription_Destroy(s->sub);
	free(s);
}

static void presence_say(mg_cluster *c, const char *what)
{
	char subj[32];
	snprintf(subj, sizeof subj, PRESENCE "%s", what);
	natsConnection_Publish(c->nc, subj, c->name, (int)strlen(c->name));
}

/* ---- cluster totals: each node's numbers, shared every sys_interval on midge.node.stats ----
 * The payload is text: "name 1 interval connected sessions msgs_recv msgs_sent pub_recv
 * pub_sent subs retained" (1: the layout's version). A node counts in the totals while it is
 * alive by the heartbeat's account (cluster_session.c: no bye, not silent for 4 s); without
 * the registry (no JetStream, so no heartbeat) while its numbers are not older than three of
 * its intervals. */
#define STATS_SUBJ PRESENCE "stats"
enum { MAX_STAT_PEERS = 256 };

typedef struct nstat {
	char name[129];
	int64_t heard; /* mg_now_ms */
	mg_cluster_load v;
} nstat;

/* n: the name's length, or -1 when the payload is not a node's numbers */
static int stats_parse(const char *d, int len, mg_cluster_load *v)
{
	char t[512];
	if (len <= 0 || len >= (int)sizeof t)
		return -1;
	memcpy(t, d, (size_t)len);
	t[len] = 0;
	char *sp = strchr(t, ' ');
	if (!sp)
		return -1;
	int n = (int)(sp - t);
	unsigned long long f[10];
	char *p = sp, *end;
	for (int i = 0; i < 10; i++) {
		if (*p != ' ' || p[1] < '0' || p[1] > '9')
			return -1;
		errno = 0;
		f[i] = strtoull(p + 1, &end, 10);
		if (errno)
			return -1;
		p = end;
	}
	if (*p || f[0] != 1 || f[1] > 86400)
		return -1;
	*v = (mg_cluster_load){ .interval = (int)f[1], .connected = f[2], .sessions = f[3], .msgs_recv = f[4],
	                        .msgs_sent = f[5], .pub_recv = f[6], .pub_sent = f[7], .subs = f[8], .retained = f[9] };
	return n;
}

/* The delivery thread: node name's numbers came (v), or it said bye (v NULL). */
static void stats_note(mg_cluster *c, const char *name, int n, const mg_cluster_load *v)
{
	pthread_mutex_lock(&c->smu);
	int i = 0;
	while (i < c->npeer_st && !(strncmp(c->peer_st[i].name, name, (size_t)n) == 0 && !c->peer_st[i].name[n]))
		i++;
	if (!v) {
		if (i < c->npeer_st)
			c->peer_st[i] = c->peer_st[--c->npeer_st];
	} else if (i < c->npeer_st ||
	           (i < MAX_STAT_PEERS && (c->peer_st || (c->peer_st = calloc(MAX_STAT_PEERS, sizeof *c->peer_st))))) {
		if (i == c->npeer_st) {
			memcpy(c->peer_st[i].name, name, (size_t)n);
			c->peer_st[i].name[n] = 0;
			c->npeer_st++;
		}
		c->peer_st[i].heard = mg_now_ms();
		c->peer_st[i].v = *v;
	}
	pthread_mutex_unlock(&c->smu);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void totals(mg_cluster *c, const mg_cluster_load *mine, bool share, mg_cluster_totals *o)
{
	if (share) {
		char t[512];
		int len = snprintf(t, sizeof t, "%s 1 %d %llu %llu %llu %llu %llu %llu %llu %llu", c->name, mine->interval,
		                   (unsigned long long)mine->connected, (unsigned long long)mine->sessions,
		                   (unsigned long long)mine->msgs_recv, (unsigned long long)mine->msgs_sent,
		                   (unsigned long long)mine->pub_recv, (unsigned long long)mine->pub_sent,
		                   (unsigned long long)mine->subs, (unsigned long long)mine->retained);
		if (len > 0 && len < (int)sizeof t)
			natsConnection_Publish(c->nc, STATS_SUBJ, t, len);
	}
	bool shared_retained = c->kv != NULL; /* every node holds the bucket's messages */
	const char *names[MAX_STAT_PEERS + 1];
	int k = 0;
	names[k++] = c->name;
	o->sum = *mine;
	int64_t now = mg_now_ms();
	pthread_mutex_lock(&c->smu);
	for (int i = 0; i < c->npeer_st; i++) {
		const nstat *p = &c->peer_st[i];
		if (c->cs ? !mg_csess_alive(c->cs, p->name)
		          : now - p->heard > 3000 * (int64_t)(p->v.interval > 0 ? p->v.interval : 1))
			continue;
		names[k++] = p->name;
		o->sum.connected += p->v.connected;
		o->sum.sessions += p->v.sessions;
		o->sum.msgs_recv += p->v.msgs_recv;
		o->sum.msgs_sent += p->v.msgs_sent;
		o->sum.pub_recv += p->v.pub_recv;
		o->sum.pub_sent += p->v.pub_sent;
		o->sum.subs += p->v.subs;
		if (!shared_retained)
			o->sum.retained += p->v.retained;
		else if (p->v.retained > o->sum.retained)
			o->sum.retained = p->v.retained;
	}
	qsort(names, (size_t)k, sizeof names[0], name_cmp);
	o->nodes = k;
	size_t at = 0;
	o->names[0] = 0;
	for (int i = 0; i < k && at < sizeof o->names - 1; i++) {
		int w = snprintf(o->names + at, sizeof o->names - at, "%s%s", i ? "," : "", names[i]);
		at = w < 0 ? at : at + (size_t)w;
	}
	pthread_mutex_unlock(&c->smu);
}

static void on_presence(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	mg_cluster *c = closure;
	(void)nc;
	(void)sub;
	const char *what = natsMsg_GetSubject(msg) + sizeof PRESENCE - 1;
	int n = natsMsg_GetDataLength(msg);
	const char *name = natsMsg_GetData(msg);
	bool stats = strcmp(what, "stats") == 0;
	mg_cluster_load v;
	if (stats)
		n = stats_parse(name, n, &v); /* the name is the payload's first word */
	bool printable = n > 0 && n <= 128;
	for (int i = 0; printable && i < n; i++)
		printable = name[i] > 0x20 && name[i] < 0x7f;
	if (!printable) {
		natsMsg_Destroy(msg);
		return;
	}
	if (strcmp(what, "hello") == 0) {
		mg_log(MG_LOG_NOTICE, "Cluster node %.*s joined.", n, name);
		presence_say(c, "here");
	} else if (strcmp(what, "here") == 0) {
		mg_log(MG_LOG_NOTICE, "Cluster node %.*s is in the cluster.", n, name);
	} else if (strcmp(what, "bye") == 0) {
		mg_log(MG_LOG_NOTICE, "Cluster node %.*s left.", n, name);
		stats_note(c, name, n, NULL);
	} else if (stats && (n != (int)strlen(c->name) || memcmp(name, c->name, (size_t)n) != 0)) {
		stats_note(c, name, n, &v);
	}
	/* hello, here, beat: alive; bye: gone (cluster_session.c logs a node whose beat stops).
	 * A node first heard through its heartbeat joined too: its hello went out before this
	 * node's subscription had spread through NATS. */
	if (c->cs && (n != (int)strlen(c->name) || memcmp(name, c->name, (size_t)n) != 0) &&
	    mg_csess_seen(c->cs, name, n, strcmp(what, "bye") != 0) && (strcmp(what, "beat") == 0 || stats))
		mg_log(MG_LOG_NOTICE, "Cluster node %.*s joined.", n, name);
	natsMsg_Destroy(msg);
}

/* ---- connection ---- */

static void on_disconnected(natsConnection *nc, void *closure)
{
	mg_cluster *c = closure;
	(void)nc;
	pthread_mutex_lock(&c->post_mu);
	bool closing = c->closing; /* natsConnection_Close says so too */
	pthread_mutex_unlock(&c->post_mu);
	if (!closing)
		mg_log(MG_LOG_WARNING, "Cluster node %s lost its NATS server; reconnecting (messages to "
		       "and from other nodes are buffered or lost meanwhile).", c->name);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	mg_cluster *c = closure;
	char url[256] = "";
	natsConnection_GetConnectedUrl(nc, url, sizeof url);
	atomic_store(&c->max_payload, natsConnection_GetMaxPayload(nc));
	mg_log(MG_LOG_NOTICE, "Cluster node %s reconnected to NATS at %s.", c->name, url);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	mg_cluster *c = closure;
	(void)nc;
	(void)sub;
	mg_log(MG_LOG_WARNING, "Warning: cluster node %s: NATS: %s%s.", c->name, natsStatus_GetText(err),
	       err == NATS_SLOW_CONSUMER ? " (messages from other nodes were dropped: this node's workers "
	       "do not keep up)" : "");
}

static void free_ient(mg_btent *h)
{
	ient *e = (ient *)h;
	if (e->sub[0])
		natsSubscription_Destroy(e->sub[0]);
	if (e->sub[1])
		natsSubscription_Destroy(e->sub[1]);
	free(e);
}

static void cluster_free(mg_cluster *c)
{
	mg_btab_free(&c->tab, free_ient);
	mg_btab_free(&c->stab, free_sent);
	if (c->nc)
		natsConnection_Destroy(c->nc);
	if (c->opts)
		natsOptions_Destroy(c->opts);
	if (c->nq)
		natsConnection_Destroy(c->nq);
	if (c->qopts)
		natsOptions_Destroy(c->qopts);
	if (c->wp)
		for (int i = 0; i < c->b->nworkers; i++)
			free(c->wp[i].buf);
	free(c->wp);
	if (c->q)
		mg_cljs_free(c->q);
	free(c->orig);
	free(c->rx.vbuf);
	free(c->wx.vbuf);
	mg_csess_free(c->cs);
	pthread_mutex_destroy(&c->wmu);
	pthread_cond_destroy(&c->wcond);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->post_mu);
	pthread_mutex_destroy(&c->smu);
	free(c->peer_st);
	free(c);
}

/* Every option as libnats takes it; the first failure is the one reported. shared: the
 * shared groups' connection nq (its name ends in "/shared"; echo, as it publishes nothing;
 * nc alone logs disconnects). */
static natsStatus set_options(mg_cluster *c, natsOptions *o, const mg_config *cfg, char **urls,
                              int n, bool shared)
{
	char name[sizeof c->name + 16];
	snprintf(name, sizeof name, "%s%s", c->name, shared ? "/shared" : "");
	natsStatus s = natsOptions_SetServers(o, (const char **)urls, n);
	if (s == NATS_OK) s = natsOptions_SetName(o, name);
	if (s == NATS_OK) s = natsOptions_SetNoEcho(o, !shared);
	/* one delivery thread for every subscription: the socket's order, so copies of a message
	 * from overlapping subscriptions come after its first (first_copy) */
	if (s == NATS_OK) s = natsOptions_UseGlobalMessageDelivery(o, true);
	if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, 250);
	if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(o, 8 << 20);
	if (s == NATS_OK) s = natsOptions_SetIOBufSize(o, 1 << 20);
	/* libnats writes a full buffer on the publishing thread, a worker: a server that stops
	 * reading (stopped, wedged) would hold that worker's clients until libnats's ping timer
	 * gave up, minutes later. With a deadline the write fails, libnats reconnects in its own
	 * thread and buffers meanwhile (ReconnectBufSize; past it a publish fails at once). */
	if (s == NATS_OK) s = natsOptions_SetWriteDeadline(o, 2000);
	if (s == NATS_OK && !shared) s = natsOptions_SetDisconnectedCB(o, on_disconnected, c);
	if (s == NATS_OK && !shared) s = natsOptions_SetReconnectedCB(o, on_reconnected, c);
	if (s == NATS_OK) s = natsOptions_SetErrorHandler(o, on_error, c);
	if (s == NATS_OK && (cfg->cluster_nats_user || cfg->cluster_nats_password))
		s = natsOptions_SetUserInfo(o, cfg->cluster_nats_user, cfg->cluster_nats_password);
	if (s == NATS_OK && cfg->cluster_nats_token)
		s = natsOptions_SetToken(o, cfg->cluster_nats_token);
	if (s == NATS_OK && cfg->cluster_nats_creds)
		s = natsOptions_SetUserCredentialsFromFiles(o, cfg->cluster_nats_creds, NULL);
	if (s == NATS_OK && (cfg->cluster_nats_cafile || cfg->cluster_nats_certfile))
		s = natsOptions_SetSecure(o, true);
	if (s == NATS_OK && cfg->cluster_nats_cafile)
		s = natsOptions_LoadCATrustedCertificates(o, cfg->cluster_nats_cafile);
	if (s == NATS_OK && (cfg->cluster_nats_certfile || cfg->cluster_nats_keyfile))
		s = natsOptions_LoadCertificatesChain(o, cfg->cluster_nats_certfile, cfg->cluster_nats_keyfile);
	return s;
}

static int cluster_start(mg_broker *b, mg_cluster **out)
{
	const mg_config *cfg = b->cfg;
	mg_cluster *c = calloc(1, sizeof *c);
	if (!c)
		return -1;
	c->b = b;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->post_mu, NULL);
	pthread_mutex_init(&c->smu, NULL);
	pthread_mutex_init(&c->wmu, NULL);
	pthread_cond_init(&c->wcond, NULL);
	if (getrandom(&c->node_id, sizeof c->node_id, 0) != sizeof c->node_id)
		c->node_id = (uint64_t)mg_now_ms() * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
	if (cfg->cluster_node_name) {
		snprintf(c->name, sizeof c->name, "%s", cfg->cluster_node_name);
	} else {
		char host[64] = "midge";
		gethostname(host, sizeof host - 1);
		snprintf(c->name, sizeof c->name, "%s-%d", host, (int)getpid());
	}
	c->wp = calloc((size_t)b->nworkers, sizeof *c->wp);
	/* "a,b,c" into the array libnats takes */
	char *list = strdup(cfg->cluster_nats_url);
	char *urls[64];
	int n = 0;
	for (char *sv = NULL, *u = list ? strtok_r(list, ",", &sv) : NULL; u && n < 64; u = strtok_r(NULL, ",", &sv))
		urls[n++] = u;
	natsStatus s = !c->wp || !list ? NATS_NO_MEMORY : nats_SetMessageDeliveryPoolSize(1);
	if (s == NATS_OK)
		s = natsOptions_Create(&c->opts);
	if (s == NATS_OK)
		s = set_options(c, c->opts, cfg, urls, n, false);
	if (s == NATS_OK)
		s = natsConnection_Connect(&c->nc, c->opts);
	if (s == NATS_OK)
		s = natsOptions_Create(&c->qopts);
	if (s == NATS_OK)
		s = set_options(c, c->qopts, cfg, urls, n, true);
	if (s == NATS_OK)
		s = natsConnection_Connect(&c->nq, c->qopts);
	free(list);
	if (s != NATS_OK) {
		const char *detail = nats_GetLastError(NULL);
		mg_log(MG_LOG_ERR, "Error: cluster: cannot connect to NATS at %s: %s%s%s. A node that cannot "
		       "reach the others does not start alone.", cfg->cluster_nats_url, natsStatus_GetText(s),
		       detail && *detail ? ": " : "", detail ? detail : "");
		cluster_free(c);
		nats_CloseAndWait(2000);
		return -1;
	}
	atomic_store(&c->max_payload, natsConnection_GetMaxPayload(c->nc));
	char url[256] = "";
	natsConnection_GetConnectedUrl(c->nc, url, sizeof url);
	retained_start(c);
	c->cs = mg_csess_start(b, c->nc, c->name, c->node_id);
	c->q = mg_cljs_start(c, c->nc, b);
	if ((c->presence = mg_cl_sub(c->nc, PRESENCE "*", on_presence, c)))
		presence_say(c, "hello");
	barrier_start(c);
	/* restored sessions' filters: before any worker runs, so nothing changes the tree now */
	mg_subtree_foreach(b->tree, count_existing, c);
	mg_log(MG_LOG_NOTICE, "Cluster node %s (id %016llx) connected to NATS at %s; %zu filters "
	       "subscribed.", c->name, (unsigned long long)c->node_id, url, c->tab.n);
	*out = c;
	return 0;
}

/* ---- the delivery thread's last message before the library closes ----
 * libnats (3.4.1, and upstream still) frees a message through its garbage-collector thread,
 * and nats_CloseAndWait lets that thread end as soon as its list is empty, while the delivery
 * thread may still be destroying the control messages that closing our subscriptions queued
 * for it: a message handed to the collector after it ended is never freed. LeakSanitizer then
 * failed a cluster test's broker stop now and then on a busy machine (3 runs of test/cluster
 * in 6: natsMsg_create <- natsLib_msgDeliveryPostControlMsg <- natsSub_close). The delivery
 * pool has one thread (nats_SetMessageDeliveryPoolSize(1)), which takes its queue in order: so
 * at stop every subscription on it is closed first and this one last, and the library is
 * closed only once the barrier's completion callback has run (the delivery thread calls it
 * after destroying the barrier's control message, so every earlier one is collected by then).
 * A subscription added to the pool later must be unsubscribed before drain_delivery too. */
static void barrier_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	natsMsg_Destroy(msg); /* nobody publishes on the barrier's subject */
}

static void barrier_done(void *closure)
{
	mg_cluster *c = closure;
	pthread_mutex_lock(&c->wmu);
	c->barrier_done = true;
	pthread_cond_broadcast(&c->wcond);
	pthread_mutex_unlock(&c->wmu);
}

static void barrier_start(mg_cluster *c)
{
	char subj[64];
	snprintf(subj, sizeof subj, "_MIDGE.barrier.%016llx", (unsigned long long)c->node_id);
	if (natsConnection_Subscribe(&c->barrier, c->nc, subj, barrier_msg, c) != NATS_OK)
		c->barrier = NULL;
	else if (natsSubscription_SetOnCompleteCB(c->barrier, barrier_done, c) != NATS_OK) {
		natsSubscription_Unsubscribe(c->barrier);
		natsSubscription_Destroy(c->barrier);
		c->barrier = NULL;
	}
}

/* Closes the subscriptions on the delivery thread, the barrier last, and waits (bounded: 5 s)
 * until the delivery thread has got through them. The workers are stopped: no filter changes. */
static void drain_delivery(mg_cluster *c)
{
	size_t i;
	for (mg_btent *h = mg_btab_first(&c->tab, &i); h; h = mg_btab_next(&c->tab, &i, h)) {
		ient *e = (ient *)h;
		for (int k = 0; k < 2; k++)
			if (e->sub[k])
				natsSubscription_Unsubscribe(e->sub[k]);
	}
	for (mg_btent *h = mg_btab_first(&c->stab, &i); h; h = mg_btab_next(&c->stab, &i, h)) {
		sent *e = (sent *)h;
		for (int k = 0; k < 2; k++)
			if (e->sub[k])
				natsSubscription_Unsubscribe(e->sub[k]);
	}
	if (c->q)
		mg_cljs_unsubscribe(c->q);
	if (!c->barrier || natsSubscription_Unsubscribe(c->barrier) != NATS_OK)
		return;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&c->wmu);
	while (!c->barrier_done && pthread_cond_timedwait(&c->wcond, &c->wmu, &until) == 0)
		;
	pthread_mutex_unlock(&c->wmu);
}

static void cluster_stop(mg_cluster *c)
{
	/* The workers are stopped and their wills went into libnats's buffer: let it go out. */
	mg_csess_stop(c->cs); /* no job runs after it; parked CONNECTs were handed back */
	presence_say(c, "bye");
	natsConnection_FlushTimeout(c->nc, 2000);
	mg_cl_sub_stop(c->presence); /* no more hellos and heartbeats to this node */
	c->presence = NULL;
	pthread_mutex_lock(&c->post_mu);
	c->closing = true;
	pthread_mutex_unlock(&c->post_mu);
	retained_stop(c);
	drain_delivery(c);
	if (c->q)
		mg_cljs_stop(c->q);
	natsConnection_Close(c->nq);
	natsConnection_Close(c->nc);
	mg_log(MG_LOG_NOTICE, "Cluster node %s left NATS: %llu messages sent, %llu received, %llu "
	       "duplicate copies dropped; %llu retained messages put, %llu applied.", c->name,
	       (unsigned long long)atomic_load(&c->sent), (unsigned long long)atomic_load(&c->received),
	       (unsigned long long)atomic_load(&c->dups), (unsigned long long)atomic_load(&c->kv_puts),
	       (unsigned long long)atomic_load(&c->kv_applied));
	size_t i;
	for (mg_btent *h = mg_btab_first(&c->tab, &i); h; h = mg_btab_next(&c->tab, &i, h)) {
		ient *e = (ient *)h;
		for (int k = 0; k < 2; k++)
			if (e->sub[k]) {
				natsSubscription_Destroy(e->sub[k]);
				e->sub[k] = NULL;
			}
	}
	for (mg_btent *h = mg_btab_first(&c->stab, &i); h; h = mg_btab_next(&c->stab, &i, h)) {
		sent *e = (sent *)h;
		for (int k = 0; k < 2; k++)
			if (e->sub[k]) {
				natsSubscription_Destroy(e->sub[k]);
				e->sub[k] = NULL;
			}
	}
	if (c->barrier)
		natsSubscription_Destroy(c->barrier);
	c->barrier = NULL;
	if (c->q)
		mg_cljs_close(c->q);
	natsConnection_Destroy(c->nc);
	c->nc = NULL;
	natsOptions_Destroy(c->opts);
	c->opts = NULL;
	natsConnection_Destroy(c->nq);
	c->nq = NULL;
	natsOptions_Destroy(c->qopts);
	c->qopts = NULL;
	/* Every libnats thread ends here, the delivery thread too: after it no callback can run
	 * and c may go. If they do not end in time, c stays allocated rather than be freed under
	 * a callback. */
	if (nats_CloseAndWait(5000) == NATS_OK)
		cluster_free(c);
}

static void routed(mg_cluster *c, mg_worker *w, void *ext)
{
	if (c->q)
		mg_cljs_routed(c->q, w, ext);
}

static void turn_end(mg_cluster *c, mg_worker *w)
{
	if (c->q)
		mg_cljs_turn_end(c->q, w);
}

static void stats(mg_cluster *c, mg_cluster_stats *o)
{
	o->name = c->name;
	o->connected = natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED;
	pthread_mutex_lock(&c->mu);
	o->filters = c->tab.n + c->stab.n;
	pthread_mutex_unlock(&c->mu);
	o->sent = atomic_load(&c->sent);
	o->received = atomic_load(&c->received);
	o->duplicates = atomic_load(&c->dups);
	o->dropped = atomic_load(&c->dropped_long) + atomic_load(&c->dropped_big) + atomic_load(&c->nats_err);
	if (c->q) { /* QoS 1/2 through JetStream count with the rest */
		uint64_t js_sent, js_received, js_failed;
		mg_cljs_stats(c->q, &js_sent, &js_received, &js_failed);
		o->sent += js_sent;
		o->received += js_received;
		o->dropped += js_failed;
	}
	o->invalid = atomic_load(&c->bad);
	o->retained_put = atomic_load(&c->kv_puts);
	o->retained_applied = atomic_load(&c->kv_applied);
}

static int claim(mg_cluster *c, mg_conn *conn, const char *id, size_t len, bool clean)
{
	return c->cs ? mg_csess_claim(c->cs, conn, id, len, clean) : 0;
}

static void session(mg_cluster *c, mg_worker *w, mg_session *s, bool gone)
{
	if (c->cs)
		mg_csess_changed(c->cs, w, s, gone);
}

static void queued(mg_cluster *c, mg_worker *w, mg_session *s, const mg_qitem *q)
{
	if (c->cs)
		mg_csess_queued(c->cs, w, s, q);
}

const mg_cluster_ops mg_cluster_nats_ops = {
	.start = cluster_start,
	.stop = cluster_stop,
	.interest = interest,
	.send = send_msg,
	.retain = retain_put,
	.routed = routed,
	.turn_end = turn_end,
	.stats = stats,
	.totals = totals,
	.claim = claim,
	.session = session,
	.queued = queued,
};
