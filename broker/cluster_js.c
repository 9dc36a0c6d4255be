/*
 * broker/cluster_js.c - QoS 1 and 2 across nodes through JetStream (docs/cluster.md "QoS 1
 * and 2 across nodes"): acknowledged means stored by the NATS cluster.
 *
 * Sending (a worker): a QoS 1/2 message another node may want is published to the stream
 * MQTT_MSGS asynchronously (js_PublishAsync: into libnats's buffer, no waiting), a QoS 2
 * one with a message id made of (node, worker, sequence), so a retry is stored once
 * (JetStream's duplicate window). The publisher's PUBACK (PUBCOMP) waits for JetStream's PubAck:
 * on_pub_ack, on a libnats thread, posts the answer to the publishing worker
 * (MG_POST_CLUSTER_ACK, cluster_ack.c sends the acknowledgement). A publish that JetStream
 * does not answer in time (a NATS server died with it, the stream is electing a leader) is
 * sent again, with the same id, for up to ~30 s; then the publisher is told it failed.
 *
 * Receiving (libnats's delivery thread, then a worker): each node has one durable push
 * consumer on the whole stream, acknowledged explicitly. A message is decoded and posted
 * to a worker like a core NATS one (cluster.c) with the natsMsg beside it; the worker
 * routes it to its sessions (queued for offline persistent ones, stored with persistence
 * on), and acknowledges it to JetStream at the end of that loop turn, after the store
 * committed and the deliveries went to the other workers' inboxes (mg_cljs_turn_end).
 * Until then JetStream keeps it and redelivers it after AckWait, also to this node after
 * a restart: a midge node killed with SIGKILL loses nothing that JetStream acknowledged.
 *
 * Threads: mg_cljs_publish runs on a worker and touches its own slot q->w[idx]; routed and
 * turn_end likewise; on_js_msg runs on libnats's delivery thread (q->rx is its own);
 * on_pub_ack on a libnats thread. Counters are atomics.
 */
#include "broker/cluster_int.h"
#include "broker/log.h"
#include "broker/msg.h"
#include "net/loop.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM "MQTT_MSGS"
#define PREFIX "midge.msg."           /* + the mapped subject (cluster_subject.h) */
#define DELIVER "midge.deliver."      /* + the durable's name: this node's push subject */
#define TRY_HDR "Midge-First-Try" /* ms, this node's clock */
enum {
	PUB_WAIT_MS = 2000,    /* one try: JetStream answers in a millisecond when it is healthy */
	RETRY_MS = 250,        /* the pause before a try again */
	RETRY_FOR_MS = 30000,  /* a stream leader election after a NATS server died is seconds */
	ACK_WAIT_S = 10,       /* unacknowledged this long: JetStream redelivers */
};
#define NS_PER_S 1000000000LL

typedef struct jsw { /* a worker's own */
	char subj[sizeof PREFIX + MG_CSUBJ_MAX];
	char id[64];
	natsMsg **acks; /* routed this loop turn, acknowledged at its end */
	size_t n, cap;
	char pad[64];
} jsw;

struct mg_cljs {
	mg_cluster *c;
	mg_broker *b;
	jsCtx *js;
	natsSubscription *sub;
	jsw *w;
	int nw;
	uint64_t node_id;
	dec rx; /* the delivery thread's */
	char durable[80];
	atomic_uint_fast64_t sent, received, failed, retried;
	atomic_bool warned_pub, closing;
	/* publishes to try again (retry_main) */
	pthread_t rth;
	bool rstarted, rstop;
	pthread_mutex_t rmu;
	pthread_cond_t rcond;
	natsMsg **rq;
	size_t rn, rcap;
};

/* ---- sending ---- */

bool mg_cljs_publish(mg_cljs *q, mg_worker *w, const char *subj, const uint8_t *buf, int len, uint64_t seq)
{
	jsw *x = &q->w[w->idx];
	size_t sl = strlen(subj);
	memcpy(x->subj, PREFIX, sizeof PREFIX - 1);
	memcpy(x->subj + sizeof PREFIX - 1, subj, sl + 1);
	jsPubOptions po;
	jsPubOptions_Init(&po);
	/* A message id for QoS 2 only: a try again after a lost answer is stored once. JetStream's
	 * duplicate table (a header parsed, an entry kept for the window, on every replica) costs
	 * a third of the NATS servers' CPU per message (docs/cluster.md "Operations and
	 * numbers"); a QoS 1 message stored twice after a NATS failure is delivered twice, which
	 * at least once allows. */
	if ((buf[1] & 3) == 2) {
		snprintf(x->id, sizeof x->id, "%016llx-%d-%llu", (unsigned long long)q->node_id, w->idx,
		         (unsigned long long)seq);
		po.MsgId = x->id;
	}
	po.MaxWait = PUB_WAIT_MS;
	natsStatus st = js_PublishAsync(q->js, x->subj, buf, len, &po);
	if (st == NATS_OK) {
		atomic_fetch_add_explicit(&q->sent, 1, memory_order_relaxed);
		return true;
	}
	/* Not even in libnats's buffer (the connection is closed): the publisher hears that it
	 * failed, through the same door as a refusal, after its local subscribers got it. */
	atomic_fetch_add_explicit(&q->failed, 1, memory_order_relaxed);
	if (!atomic_exchange_explicit(&q->warned_pub, true, memory_order_relaxed))
		mg_log(MG_LOG_WARNING, "Warning: cluster: cannot publish to JetStream: %s (this is said "
		       "once).", natsStatus_GetText(st));
	mg_post p = { .kind = MG_POST_CLUSTER_ACK, .seq = seq | MG_CLUSTER_ACK_FAILED };
	mg_worker_post(w, w->idx, &p);
	return true;
}

/* A publish JetStream did not take goes back to libnats's buffer from the retry thread a
 * moment later, with the same message id. */
static void retry_later(mg_cljs *q, natsMsg *msg)
{
	pthread_mutex_lock(&q->rmu);
	if (q->rn == q->rcap) {
		size_t nc = q->rcap ? q->rcap * 2 : 64;
		natsMsg **nv = realloc(q->rq, nc * sizeof *nv);
		if (nv) {
			q->rq = nv;
			q->rcap = nc;
		}
	}
	if (q->rn < q->rcap) {
		q->rq[q->rn++] = msg;
		msg = NULL;
	}
	pthread_mutex_unlock(&q->rmu);
	natsMsg_Destroy(msg); /* out of memory: the publisher is never answered, it resends */
}

static void *retry_main(void *arg)
{
	mg_cljs *q = arg;
	pthread_mutex_lock(&q->rmu);
	while (!q->rstop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += RETRY_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&q->rcond, &q->rmu, &until);
		if (!q->rn || q->rstop)
			continue;
		natsMsg **batch = q->rq; /* in the order they failed */
		size_t n = q->rn;
		q->rq = NULL;
		q->rn = q->rcap = 0;
		pthread_mutex_unlock(&q->rmu);
		for (size_t i = 0; i < n; i++) {
			jsPubOptions po;
			jsPubOptions_Init(&po);
			po.MaxWait = PUB_WAIT_MS;
			if (js_PublishMsgAsync(q->js, &batch[i], &po) == NATS_OK)
				atomic_fetch_add_explicit(&q->retried, 1, memory_order_relaxed);
			natsMsg_Destroy(batch[i]); /* NULL when libnats has it again */
		}
		free(batch);
		pthread_mutex_lock(&q->rmu);
	}
	pthread_mutex_unlock(&q->rmu);
	return NULL;
}

/* JetStream's answer to one publish (a libnats thread). */
static void on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	mg_cljs *q = closure;
	(void)js;
	env e;
	if (!mg_cl_parse_env((const uint8_t *)natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), &e) ||
	    (int)e.worker >= q->nw) {
		natsMsg_Destroy(msg);
		return;
	}
	bool ok = pa != NULL;
	if (!ok && pae) {
		/* No answer in time, no stream leader right now (a NATS server died, JetStream is
		 * electing one), or a refusal: sent again with the same message id (stored at most
		 * once) for a while, then the publisher is told. */
		const char *t = NULL;
		int64_t now = mg_now_ms(), first = now;
		if (natsMsgHeader_Get(msg, TRY_HDR, &t) == NATS_OK && t)
			first = strtoll(t, NULL, 10);
		else {
			char nt[24];
			snprintf(nt, sizeof nt, "%lld", (long long)now);
			natsMsgHeader_Set(msg, TRY_HDR, nt);
		}
		if (first == now) /* once per message, not per try */
			mg_log(MG_LOG_INFO, "Cluster: JetStream did not take a message yet (trying again "
			       "for %d s): %s%s%s.", RETRY_FOR_MS / 1000, natsStatus_GetText(pae->Err),
			       pae->ErrText ? ": " : "", pae->ErrText ? pae->ErrText : "");
		if (now - first < RETRY_FOR_MS && !atomic_load(&q->closing)) {
			retry_later(q, msg);
			return;
		}
	}
	if (!ok)
		atomic_fetch_add_explicit(&q->failed, 1, memory_order_relaxed);
	mg_post p = { .kind = MG_POST_CLUSTER_ACK, .seq = e.seq | (ok ? 0 : MG_CLUSTER_ACK_FAILED) };
	mg_cl_post(q->c, (int)e.worker, &p); /* closing: nobody waits any more */
	natsMsg_Destroy(msg);
}

/* ---- receiving ---- */

static void on_js_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	mg_cljs *q = closure;
	(void)nc;
	(void)sub;
	const char *subj = natsMsg_GetSubject(msg);
	env e;
	bool bad = true;
	int tl = -1;
	if (strncmp(subj, PREFIX, sizeof PREFIX - 1) == 0)
		tl = mg_csubj_to_topic(subj + sizeof PREFIX - 1, strlen(subj) - (sizeof PREFIX - 1),
		                       q->rx.topic, sizeof q->rx.topic);
	if (tl <= 0 || !mg_cl_parse_env((const uint8_t *)natsMsg_GetData(msg),
	                                (size_t)natsMsg_GetDataLength(msg), &e))
		goto done;
	bad = false;
	if (e.node == q->node_id) /* our own: served locally when it was published */
		goto done;
	mg_msg *m = mg_cl_build_msg(&q->rx, q->rx.topic, (size_t)tl, &e, 0, &bad);
	if (!m) {
		if (bad)
			goto done;
		natsMsg_Destroy(msg); /* out of memory: JetStream redelivers it */
		return;
	}
	atomic_fetch_add_explicit(&q->received, 1, memory_order_relaxed);
	/* the worker cluster.c would pick: one origin publisher's messages in order */
	int to = (int)((e.node ^ e.worker * 0x9E3779B97F4A7C15ull) % (uint64_t)q->nw);
	mg_post p = { .kind = MG_POST_REMOTE, .it = { .m = m }, .ext = msg };
	if (!mg_cl_post(q->c, to, &p)) {
		mg_msg_unref(m);
		natsMsg_Destroy(msg); /* closing: unacknowledged, JetStream keeps it for our return */
	}
	return;
done:
	if (bad)
		mg_cl_warn_bad(q->c, subj);
	natsMsg_Ack(msg, NULL); /* nothing to do with it here: JetStream may forget it for us */
	natsMsg_Destroy(msg);
}

void mg_cljs_routed(mg_cljs *q, mg_worker *w, void *ext)
{
	jsw *x = &q->w[w->idx];
	if (x->n == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 256;
		natsMsg **nv = realloc(x->acks, nc * sizeof *nv);
		if (!nv) { /* acknowledged now, before the commit: what phase 1 promised */
			natsMsg_Ack(ext, NULL);
			natsMsg_Destroy(ext);
			return;
		}
		x->acks = nv;
		x->cap = nc;
	}
	x->acks[x->n++] = ext;
}

void mg_cljs_turn_end(mg_cljs *q, mg_worker *w)
{
	jsw *x = &q->w[w->idx];
	for (size_t i = 0; i < x->n; i++) {
		natsMsg_Ack(x->acks[i], NULL); /* a publish to its reply subject: buffered, no wait */
		natsMsg_Destroy(x->acks[i]);
	}
	x->n = 0;
}

/* ---- start, stop ---- */

static natsStatus bind_stream(mg_cljs *q, int replicas)
{
	jsErrCode jerr = 0;
	jsStreamInfo *si = NULL;
	natsStatus s = js_GetStreamInfo(&si, q->js, STREAM, NULL, &jerr);
	if (s == NATS_OK && si && si->Config && si->Config->Replicas != replicas)
		mg_log(MG_LOG_NOTICE, "Cluster: the JetStream stream %s exists with %d replica%s, not %d: "
		       "it is kept as it is (cluster_js_replicas applies when a node creates it).", STREAM,
		       (int)si->Config->Replicas, si->Config->Replicas == 1 ? "" : "s", replicas);
	if (s == NATS_NOT_FOUND) {
		jsStreamConfig sc;
		jsStreamConfig_Init(&sc);
		const char *subjects[] = { PREFIX ">" };
		sc.Name = STREAM;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		/* kept until every node's consumer acknowledged it, a day at most */
		sc.Retention = js_InterestPolicy;
		sc.Storage = js_FileStorage;
		sc.Replicas = replicas;
		sc.MaxAge = 24 * 3600 * NS_PER_S;
		sc.Duplicates = 120 * NS_PER_S;
		s = js_AddStream(&si, q->js, &sc, NULL, &jerr);
	}
	if (si)
		jsStreamInfo_Destroy(si);
	return s;
}

static natsStatus bind_consumer(mg_cljs *q)
{
	char deliver[sizeof DELIVER + sizeof q->durable];
	snprintf(deliver, sizeof deliver, DELIVER "%s", q->durable);
	jsConsumerConfig cc;
	jsConsumerConfig_Init(&cc);
	cc.Durable = q->durable;
	cc.DeliverSubject = deliver;
	cc.DeliverPolicy = js_DeliverNew; /* a new node has no sessions that missed anything */
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = ACK_WAIT_S * NS_PER_S;
	cc.MaxAckPending = 65536;
	cc.FilterSubject = PREFIX ">";
	/* a node gone for a day (its name not seen again) stops holding messages */
	cc.InactiveThreshold = 24 * 3600 * NS_PER_S;
	jsErrCode jerr = 0;
	jsConsumerInfo *ci = NULL;
	natsStatus s = js_GetConsumerInfo(&ci, q->js, STREAM, q->durable, NULL, &jerr);
	if (s == NATS_NOT_FOUND)
		s = js_AddConsumer(&ci, q->js, STREAM, &cc, NULL, &jerr);
	if (ci)
		jsConsumerInfo_Destroy(ci);
	if (s != NATS_OK)
		return s;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = STREAM;
	so.Consumer = q->durable; /* bound, not owned: closing never deletes it */
	so.ManualAck = true;
	return js_Subscribe(&q->sub, q->js, PREFIX ">", on_js_msg, q, NULL, &so, &jerr);
}

mg_cljs *mg_cljs_start(mg_cluster *c, natsConnection *nc, mg_broker *b)
{
	mg_cljs *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	q->c = c;
	q->b = b;
	q->nw = b->nworkers;
	q->node_id = mg_cl_node_id(c);
	q->w = calloc((size_t)b->nworkers, sizeof *q->w);
	pthread_mutex_init(&q->rmu, NULL);
	pthread_cond_init(&q->rcond, NULL);
	/* The durable consumer is named after the node (its name must be unique and stay the
	 * same across restarts, docs/cluster.md): characters a consumer name cannot hold -> _ */
	const char *name = mg_cl_name(c);
	size_t n = snprintf(q->durable, sizeof q->durable, "node_%s", name);
	for (size_t i = 5; i < n && i < sizeof q->durable; i++) {
		char ch = q->durable[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '_'))
			q->durable[i] = '_';
	}
	char **servers = NULL;
	int ns = 0;
	natsConnection_GetServers(nc, &servers, &ns);
	for (int i = 0; i < ns; i++)
		free(servers[i]);
	free(servers);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.AckHandler = on_pub_ack;
	jo.PublishAsync.AckHandlerClosure = q;
	/* never stall a worker: the clients' receive maximum bounds what waits */
	jo.PublishAsync.MaxPending = 1 << 24;
	natsStatus s = q->w ? natsConnection_JetStream(&q->js, nc, &jo) : NATS_NO_MEMORY;
	/* JetStream elects its leaders a moment after the servers start: retry for 10 s */
	int64_t deadline = mg_now_ms() + 10000;
	while (s == NATS_OK) {
		s = bind_stream(q, b->cfg->cluster_js_replicas ? b->cfg->cluster_js_replicas : ns >= 3 ? 3 : 1);
		if (s == NATS_OK)
			s = bind_consumer(q);
		if (s == NATS_OK || mg_now_ms() > deadline)
			break;
		nats_Sleep(200);
		s = NATS_OK;
	}
	if (s != NATS_OK) {
		const char *detail = nats_GetLastError(NULL);
		mg_log(MG_LOG_WARNING, "Warning: cluster node %s: no JetStream stream %s (%s%s%s): QoS 1 "
		       "and 2 messages cross nodes over core NATS, at most once per node.", name, STREAM,
		       natsStatus_GetText(s), detail && *detail ? ": " : "", detail ? detail : "");
		mg_cljs_free(q);
		return NULL;
	}
	if (pthread_create(&q->rth, NULL, retry_main, q) == 0)
		q->rstarted = true;
	mg_log(MG_LOG_NOTICE, "Cluster node %s: QoS 1 and 2 messages through JetStream stream %s "
	       "(consumer %s).", name, STREAM, q->durable);
	return q;
}

void mg_cljs_stop(mg_cljs *q)
{
	/* the wills the workers published last: stored before the node goes, if it can be */
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 2000;
	js_PublishAsyncComplete(q->js, &po);
	atomic_store(&q->closing, true);
	pthread_mutex_lock(&q->rmu);
	q->rstop = true;
	pthread_cond_signal(&q->rcond);
	pthread_mutex_unlock(&q->rmu);
	if (q->rstarted)
		pthread_join(q->rth, NULL);
	q->rstarted = false;
	/* Routed by a worker that stopped before its turn ended: committed (the store's last
	 * batch), so acknowledged. Still in an inbox: not routed, JetStream keeps it. */
	for (int i = 0; i < q->nw; i++) {
		mg_cljs_turn_end(q, &q->b->w[i]);
		mg_worker *w = &q->b->w[i];
		for (size_t k = 0; k < w->inbox.n; k++)
			if (w->inbox.v[k].kind == MG_POST_REMOTE && w->inbox.v[k].ext) {
				natsMsg_Destroy(w->inbox.v[k].ext);
				w->inbox.v[k].ext = NULL;
			}
	}
}

void mg_cljs_unsubscribe(mg_cljs *q)
{
	/* Bound to a consumer it did not create, libnats leaves the durable in place. Without
	 * this, a message arriving after the barrier stayed queued at close, where libnats 3.4
	 * does not free it (LeakSanitizer saw a node's own message come back as it stopped). */
	if (q->sub)
		natsSubscription_Unsubscribe(q->sub);
}

void mg_cljs_close(mg_cljs *q)
{
	if (q->sub)
		natsSubscription_Destroy(q->sub); /* not Unsubscribe: the durable stays */
	q->sub = NULL;
	if (q->js)
		jsCtx_Destroy(q->js);
	q->js = NULL;
}

void mg_cljs_free(mg_cljs *q)
{
	mg_cljs_close(q);
	if (q->rstarted) { /* a start that failed half way */
		pthread_mutex_lock(&q->rmu);
		q->rstop = true;
		pthread_cond_signal(&q->rcond);
		pthread_mutex_unlock(&q->rmu);
		pthread_join(q->rth, NULL);
	}
	for (size_t i = 0; i < q->rn; i++)
		natsMsg_Destroy(q->rq[i]);
	free(q->rq);
	pthread_mutex_destroy(&q->rmu);
	pthread_cond_destroy(&q->rcond);
	if (q->w)
		for (int i = 0; i < q->nw; i++)
			free(q->w[i].acks);
	free(q->w);
	free(q->rx.vbuf);
	free(q);
}

void mg_cljs_stats(mg_cljs *q, uint64_t *sent, uint64_t *received, uint64_t *failed)
{
	*sent = atomic_load(&q->sent);
	*received = atomic_load(&q->received);
	*failed = atomic_load(&q->failed);
}
