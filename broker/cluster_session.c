/*
 * broker/cluster_session.c - sessions across cluster nodes (cluster_session.h,
 * docs/cluster.md "Sessions").
 *
 * The client-id registry is the JetStream key-value bucket MQTT_SESSIONS: key = the client
 * id (escaped as a retained topic's key), value = the owning node (its random id and its
 * name), a fencing epoch, whether a session is alive, and for a persistent session what a
 * node needs to recover it (level, expiry, subscriptions with their options). Every write
 * is a compare-and-set on the key's last revision, so two nodes that claim one id at once
 * end with one owner, and a node that lost an id (taken over while it was cut off) learns
 * it at its next write instead of overwriting the new owner.
 *
 * What runs where:
 *   - Workers never wait for NATS. A CONNECT is parked (conn->cluster_wait: it reads
 *     nothing, its worker serves everyone else) and a job goes to this file's registry
 *     thread, which does the round trips (each bounded by WAIT_MS) and posts the verdict
 *     back to the worker (MG_POST_CALL), which handles the same CONNECT again. A session's
 *     changes (attached, subscriptions, ended) are jobs too, written in the order they
 *     happened (one thread, one queue).
 *   - Takeover: the claiming node first makes itself the owner in the bucket (epoch + 1),
 *     then asks the old owner on midge.sess.take.<its name> (a NATS request). The old owner
 *     reads these requests on a thread of their own (mg_cl_sub: never behind the message
 *     traffic that libnats's delivery thread may be holding back) and posts to the session's
 *     worker, which closes the old
 *     connection (5.0: DISCONNECT 0x8E), packs the session (subscriptions, queued and
 *     unacknowledged QoS 1/2 messages), ends it here and answers. When nobody answers (the
 *     node is dead: NATS says "no responders" at once; or it does not answer within
 *     WAIT_MS), or it no longer has the session (restarted without its store), the claiming
 *     node recovers what JetStream holds (subscriptions, messages queued while away).
 *   - A node is its name (cluster_node_name, unique in the cluster): a node restarted with
 *     its store owns the sessions it restores, answers for them, and drops at start those
 *     that another node took meanwhile.
 *   - Heartbeat: a thread publishes midge.node.beat every BEAT_MS; presence messages
 *     (cluster.c) refresh a table of peers, and a peer silent for DEAD_MS is logged as gone.
 */
#include "broker/cluster_session.h"
#include "broker/cluster.h"
#include "broker/cluster_int.h"
#include "broker/cluster_subject.h"
#include "broker/conn.h"
#include "broker/log.h"
#include "broker/packet.h"
#include "broker/session.h"
#include "broker/subtree.h"
#include "broker/worker.h"
#include "net/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SESS_BUCKET "MQTT_SESSIONS"
/* QoS 1/2 messages queued for offline persistent sessions, one subject per session (its
 * registry key): what a node recovers when the session's node died. */
#define SQ_STREAM "MQTT_SESSQ"
#define SQ_SUBJ "midge.sq."
#define TAKE_SUBJ "midge.sess.take."
#define BEAT_SUBJ "midge.node.beat"
/* Every NATS round trip of the registry waits at most this long; a CONNECT makes at most
 * three per attempt (get, compare-and-set, the old owner's answer). */
#define WAIT_MS 2000
/* ... but the old owner's answer to a takeover is waited for as long as its heartbeat says
 * it is alive (its worker may have up to MG_INBOX_HIGH messages to route before the request,
 * and an answer that comes late is lost with the session it carries), up to this. */
#define TAKE_MAX_MS 30000
#define BEAT_MS 1000
#define DEAD_MS 4000
#define MAX_PEERS 256
#define KEY_MAX (MG_CSUBJ_MAX - 64)

enum { J_CLAIM, J_SAVE, J_GONE, J_FENCE };

typedef struct job {
	struct job *next;
	int kind;
	bool clean;
	mg_conn *conn;  /* J_CLAIM: parked; the job owns it if it is closed meanwhile */
	mg_worker *w;
	struct verdict *v; /* J_CLAIM: made with the job, so that a verdict always comes */
	uint8_t *state; /* J_SAVE: the session as a recovering node needs it */
	size_t state_len;
	uint32_t nsubs;
	bool purge;     /* J_SAVE, J_GONE: the session's messages in SQ_STREAM are done with */
	int64_t due;    /* J_FENCE: when to look again */
	size_t idlen;
	char id[];      /* NUL-terminated */
} job;

typedef struct peer {
	char name[129];
	int64_t last;
} peer;

struct mg_csess {
	mg_broker *b;
	natsConnection *nc;
	jsCtx *js;
	kvStore *kv;            /* NULL: no registry (no JetStream): ids are per node */
	bool sq;                /* SQ_STREAM is there */
	mg_clsub *take_sub;     /* its own thread: never behind the message traffic */
	uint64_t node_id;
	char name[128];
	char take[sizeof TAKE_SUBJ + KEY_MAX]; /* where this node is asked for its sessions */
	pthread_t th, beat_th;
	bool th_on, beat_on;
	pthread_mutex_t mu;     /* the job queue and stop; posting to workers from NATS */
	pthread_cond_t cv;      /* the registry thread's */
	pthread_cond_t bcv;     /* the heartbeat thread's */
	pthread_cond_t pcv;     /* a worker made a session the registry thread waits for */
	job *head, *tail;
	job *fence;             /* J_FENCE jobs waiting for their time (the heartbeat moves them) */
	bool stop;
	pthread_mutex_t pmu;    /* the peers */
	peer peers[MAX_PEERS];
	int npeers;
	atomic_bool warned;
	struct preplist *prepw;  /* per worker: the sessions prepare() made, until their verdict */
	atomic_uint_fast64_t takeovers_in, takeovers_out, recovered;
};

/* Set by a worker while it ends a session that moved to another node: its end is not the
 * id's end in the registry. */
static _Thread_local bool moving;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- bytes in and out ---- */

typedef struct wb {
	uint8_t *p;
	size_t n, cap;
	bool oom;
} wb;

static void put(wb *b, const void *d, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n > b->cap) {
		size_t nc = b->cap ? b->cap : 256;
		while (nc < b->n + n)
			nc *= 2;
		uint8_t *np = realloc(b->p, nc);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	if (n)
		memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void put_u(wb *b, uint64_t v, int n)
{
	uint8_t t[8];
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		t[i] = (uint8_t)v;
	put(b, t, (size_t)n);
}

static void patch_u32(wb *b, size_t at, uint32_t v)
{
	if (!b->oom)
		for (int i = 3; i >= 0; i--, v >>= 8)
			b->p[at + (size_t)i] = (uint8_t)v;
}

typedef struct rd {
	const uint8_t *p;
	size_t n, off;
	bool bad;
} rd;

static uint64_t get_u(rd *r, int n)
{
	if (r->bad || r->n - r->off < (size_t)n) {
		r->bad = true;
		return 0;
	}
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | r->p[r->off++];
	return v;
}

static const uint8_t *get_b(rd *r, size_t n)
{
	if (r->bad || r->n - r->off < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *q = r->p + r->off;
	r->off += n;
	return q;
}

/* ---- a session, packed (on its worker) ----
 *
 * state: u8 version 1, u8 level, u32 expiry, u32 n, n x (u16 length, filter, u8 options
 * byte as in SUBSCRIBE, u32 subscription id), u32 m, m x message: u8 delivered QoS, u8 flags
 * (1 retain flag to send, 2 retain as published, 4 expiry), u8 QoS as published, u16 topic
 * length, topic, u32 length, properties (forwardable, as kept), u32 length, payload, if
 * expiry u64 ms left, u16 k, k x u32 subscription ids. */

static bool put_item(wb *o, const mg_qitem *q, int64_t now)
{
	const mg_msg *m = q->m;
	if (m->has_expiry && m->expire_at <= now)
		return false;
	put_u(o, q->qos, 1);
	put_u(o, (q->retain ? 1u : 0u) | (m->retain ? 2u : 0u) | (m->has_expiry ? 4u : 0u), 1);
	put_u(o, m->qos, 1);
	put_u(o, m->topic_len, 2);
	put(o, m->topic, m->topic_len);
	put_u(o, m->props_len, 4);
	put(o, m->props, m->props_len);
	put_u(o, m->payload_len, 4);
	put(o, m->payload, m->payload_len);
	if (m->has_expiry)
		put_u(o, (uint64_t)(m->expire_at - now), 8);
	const uint32_t *ids = mg_qitem_ids(q);
	put_u(o, q->n_ids, 2);
	for (uint16_t i = 0; i < q->n_ids; i++)
		put_u(o, ids[i], 4);
	return true;
}

/* The subscriptions (and with msgs, the unacknowledged and queued messages, in the order
 * they would be sent) of s into o. Returns the counts through ns / nm. */
static void pack_state(mg_worker *w, mg_session *s, bool msgs, wb *o, uint32_t *ns, uint32_t *nm)
{
	put_u(o, 1, 1);
	put_u(o, s->level, 1);
	put_u(o, s->expiry, 4);
	size_t at = o->n;
	put_u(o, 0, 4);
	uint32_t n = 0;
	uint32_t end = s->subs.cap <= MG_FSET_SMALL ? s->subs.n : s->subs.cap;
	for (uint32_t i = 0; i < end; i++) {
		const mg_fent *e = &s->subs.v[i];
		mg_sub_entry se;
		if (!e->f || e->len > UINT16_MAX ||
		    mg_subtree_get(w->b->tree, (const uint8_t *)e->f, e->len, s->ref, &se) < 0)
			continue;
		put_u(o, e->len, 2);
		put(o, e->f, e->len);
		put_u(o, mg_subopts_byte(se.opts), 1);
		put_u(o, se.sub_id, 4);
		n++;
	}
	patch_u32(o, at, n);
	*ns = n;
	at = o->n;
	put_u(o, 0, 4);
	n = 0;
	if (msgs) {
		int64_t now = mg_loop_now_ms(w->loop);
		/* in flight first (sent, not acknowledged: the new node sends them again), then the
		 * queue; a QoS 2 message past PUBREC was delivered and is not moved */
		for (size_t i = 0; i < s->flight.n; i++) {
			const mg_flight *f = mg_fring_at(&s->flight, i);
			if (f->it.m && put_item(o, &f->it, now))
				n++;
		}
		for (uint32_t i = 0; i < s->queue.n; i++)
			if (put_item(o, &s->queue.v[(s->queue.head + i) % s->queue.cap], now))
				n++;
	}
	patch_u32(o, at, n);
	*nm = n;
}

/* A property block as a client's PUBLISH would carry it? (What comes from NATS is checked
 * as a client's packet would be: a foreign NATS client cannot make midge send bad bytes.) */
static bool props_valid(const uint8_t *props, uint32_t n)
{
	uint8_t hdr[1 + 4 + 3 + 4];
	size_t need = sizeof hdr + n;
	uint8_t *buf = malloc(need);
	if (!buf)
		return false;
	uint8_t vi[4];
	size_t vl = mg_varint_encode(vi, n);
	uint8_t *q = buf;
	*q++ = 0x30;
	q += mg_varint_encode(q, (uint32_t)(3 + vl + n));
	*q++ = 0;
	*q++ = 1;
	*q++ = 'x';
	memcpy(q, vi, vl);
	q += vl;
	memcpy(q, props, n);
	q += n;
	mg_packet pkt;
	bool ok = mg_decode(buf, (size_t)(q - buf), MG_V5, 0, &pkt) == q - buf;
	free(buf);
	return ok;
}

static bool filter_valid(const uint8_t *f, size_t len)
{
	if (len >= 7 && memcmp(f, "$share/", 7) == 0)
		return mg_share_parse(f, len, NULL, NULL) == 1;
	return mg_topic_filter_check(f, len) == MG_OK;
}

/* The subscriptions of s that are not among the n packed ones at rd r: gone (unsubscribed
 * on the old node after the registry's copy was written). */
static void drop_unlisted(mg_worker *w, mg_session *s, rd r, uint32_t n)
{
	uint32_t end = s->subs.cap <= MG_FSET_SMALL ? s->subs.n : s->subs.cap;
	for (uint32_t i = 0; i < end; i++) {
		const mg_fent *e = &s->subs.v[i];
		if (!e->f)
			continue;
		bool listed = false;
		rd q = r;
		for (uint32_t k = 0; k < n && !listed && !q.bad; k++) {
			size_t fl = (size_t)get_u(&q, 2);
			const uint8_t *f = get_b(&q, fl);
			(void)get_b(&q, 5); /* options, subscription id */
			listed = !q.bad && fl == e->len && memcmp(f, e->f, fl) == 0;
		}
		if (listed)
			continue;
		size_t fl = e->len;
		uint8_t *f = malloc(fl ? fl : 1);
		if (!f)
			return;
		memcpy(f, e->f, fl);
		if (mg_subtree_remove(w->b->tree, f, fl, s->ref) == 0)
			mg_cluster_interest(w->b, f, fl, -1);
		mg_fset_del(&s->subs, f, fl); /* may move the entries: look again from the start */
		free(f);
		end = s->subs.cap <= MG_FSET_SMALL ? s->subs.n : s->subs.cap;
		i = (uint32_t)-1;
	}
}

/* A session packed by another node (or read from JetStream) becomes an offline session of
 * worker w, for the CONNECT that follows. false: nothing to resume (a clean session, a
 * local one exists).
 *
 * U_MERGE: the session exists here already, made by prepare() (U_PREPARE) from the
 * registry's copy while
 * the old node was asked (so that the messages routed in the meantime were queued for it
 * here): its subscriptions become the packed ones, and the packed messages, which are
 * older, go before those queued meanwhile at QoS 0 and 1. A message may then come twice
 * (routed on the old node before it packed, here after prepare: at least once, as QoS 1
 * allows; nothing says which ones are the same message); one queued meanwhile at QoS 2 is
 * dropped (exactly once: it may be among the packed ones). */
enum { U_NEW, U_PREPARE, U_MERGE };

static mg_session *unpack_state(mg_worker *w, const char *id, size_t idlen, const uint8_t *st,
                                size_t len, int mode, uint32_t *ns, uint32_t *nm)
{
	bool merge = mode == U_MERGE;
	mg_broker *b = w->b;
	rd r = { st, len, 0, false };
	*ns = *nm = 0;
	if (get_u(&r, 1) != 1)
		return NULL;
	uint8_t level = (uint8_t)get_u(&r, 1);
	uint32_t expiry = (uint32_t)get_u(&r, 4);
	uint32_t nsub = (uint32_t)get_u(&r, 4);
	if (r.bad || expiry == 0)
		return NULL;
	int owner = -1;
	mg_session *s = mg_session_find(w, id, idlen, &owner);
	if (merge && !s) /* the prepared one is gone (expired meanwhile) */
		merge = false;
	if (merge ? s->conn != NULL : s || owner >= 0) /* this node has one: resumed as it is */
		return NULL;
	if (!s && !(s = mg_session_create(w, id, idlen, &owner)))
		return NULL;
	s->level = level;
	s->expiry = expiry;
	rd subs = r;
	for (uint32_t i = 0; i < nsub && !r.bad; i++) {
		size_t fl = (size_t)get_u(&r, 2);
		const uint8_t *f = get_b(&r, fl);
		uint8_t ob = (uint8_t)get_u(&r, 1);
		uint32_t sid = (uint32_t)get_u(&r, 4);
		if (r.bad || !filter_valid(f, fl) || (ob & 3) == 3)
			break;
		mg_subopts o = { .qos = ob & 3, .no_local = ob >> 2 & 1, .retain_as_published = ob >> 3 & 1,
		                 .retain_handling = ob >> 4 & 3 };
		int a = mg_subtree_add(b->tree, f, fl, s->ref, o, sid);
		if (a == 0 && mg_fset_add(&s->subs, f, fl) < 0) {
			mg_subtree_remove(b->tree, f, fl, s->ref);
			continue;
		}
		if (a == 0)
			mg_cluster_interest(b, f, fl, +1);
		if (a >= 0)
			(*ns)++;
	}
	if (merge && !r.bad)
		drop_unlisted(w, s, subs, nsub);
	mg_qring later = { 0 }; /* merge: what was queued here meanwhile, after the packed ones */
	if (merge) {
		later = s->queue;
		memset(&s->queue, 0, sizeof s->queue);
		s->qbytes = 0;
	}
	uint32_t nmsg = (uint32_t)get_u(&r, 4);
	int64_t now = mg_loop_now_ms(w->loop);
	for (uint32_t i = 0; i < nmsg && !r.bad; i++) {
		uint8_t qos = (uint8_t)get_u(&r, 1), fl = (uint8_t)get_u(&r, 1), mq = (uint8_t)get_u(&r, 1);
		size_t tl = (size_t)get_u(&r, 2);
		const uint8_t *t = get_b(&r, tl);
		uint32_t pl = (uint32_t)get_u(&r, 4);
		const uint8_t *props = get_b(&r, pl);
		uint32_t yl = (uint32_t)get_u(&r, 4);
		const uint8_t *pay = get_b(&r, yl);
		int64_t left = (fl & 4) ? (int64_t)get_u(&r, 8) : 0;
		uint16_t nids = (uint16_t)get_u(&r, 2);
		const uint8_t *idb = get_b(&r, (size_t)nids * 4);
		if (r.bad || qos > 2 || mq > 2 || mg_topic_name_check(t, tl) != MG_OK ||
		    (pl && !props_valid(props, pl)))
			break;
		mg_msg *m = mg_msg_new_raw(t, tl, pay, yl, props, pl, mq, fl & 2, fl & 4, now + left);
		if (!m)
			break;
		mg_qitem q = { .m = m, .qos = qos, .retain = fl & 1 };
		if (nids) {
			uint32_t *ids = malloc((size_t)nids * sizeof *ids);
			for (uint16_t k = 0; ids && k < nids; k++)
				ids[k] = (uint32_t)idb[4 * k] << 24 | (uint32_t)idb[4 * k + 1] << 16 |
				         (uint32_t)idb[4 * k + 2] << 8 | idb[4 * k + 3];
			if (ids)
				mg_qitem_set_ids(&q, ids, nids);
			free(ids);
		}
		moving = true; /* already in SQ_STREAM, or about to leave it */
		mg_session_deliver(w, s, &q);
		moving = false;
		(*nm)++;
	}
	moving = true;
	while (later.n) {
		mg_qitem q;
		mg_qring_pop(&later, &q);
		if (q.qos == 2) /* it may be among the packed ones: never twice (exactly once) */
			mg_qitem_clear(&q);
		else
			mg_session_deliver(w, s, &q);
	}
	moving = false;
	mg_qring_free(&later);
	return s;
}

/* ---- the registry's value ----
 *
 * u8 version 1, u64 epoch, u64 owner node id, u8 name length, name, u8 alive, then for a
 * persistent session its state (pack_state without messages), else nothing. */

typedef struct regval {
	uint64_t epoch, owner;
	char name[129];
	bool alive;
	const uint8_t *state;
	size_t state_len;
} regval;

static bool parse_regval(const uint8_t *v, size_t n, regval *o)
{
	rd r = { v, n, 0, false };
	memset(o, 0, sizeof *o);
	if (get_u(&r, 1) != 1)
		return false;
	o->epoch = get_u(&r, 8);
	o->owner = get_u(&r, 8);
	size_t nl = (size_t)get_u(&r, 1);
	const uint8_t *name = get_b(&r, nl);
	o->alive = get_u(&r, 1) != 0;
	if (r.bad || nl > 128)
		return false;
	memcpy(o->name, name, nl);
	o->name[nl] = 0;
	o->state = v + r.off;
	o->state_len = n - r.off;
	return true;
}

static void put_regval(wb *o, mg_csess *cs, uint64_t epoch, bool alive, const uint8_t *st, size_t sl)
{
	size_t nl = strlen(cs->name);
	put_u(o, 1, 1);
	put_u(o, epoch, 8);
	put_u(o, cs->node_id, 8);
	put_u(o, nl, 1);
	put(o, cs->name, nl);
	put_u(o, alive, 1);
	put(o, st, sl);
}

static int make_key(const char *id, size_t len, char *key, size_t cap)
{
	return mg_csubj_kv_key((const uint8_t *)id, len, key, cap);
}

static void warn_registry(mg_csess *cs, const char *id, natsStatus s)
{
	if (!atomic_exchange(&cs->warned, true)) {
		const char *d = nats_GetLastError(NULL);
		mg_log(MG_LOG_WARNING, "Warning: cluster node %s: the client-id registry %s did not answer "
		       "or refused the write for client %s (%s%s%s; JetStream full or down?): it is "
		       "served by this node alone (said once).", cs->name, SESS_BUCKET, id,
		       natsStatus_GetText(s), d && *d ? ": " : "", d ? d : "");
	}
}

/* ---- on the workers ---- */

/* s moved to another node: it ends here without a word to the registry. */
static void end_moved(mg_worker *w, mg_session *s, bool resume)
{
	if (resume)
		mg_session_clear_will(s); /* resumed elsewhere within its will delay [MQTT-3.1.3-9] */
	moving = true;
	mg_session_end(w, s);
	moving = false;
}

typedef struct verdict {
	mg_csess *cs;
	mg_conn *conn;
	uint8_t *import;  /* a session packed by the old owner or read from the bucket */
	size_t import_len;
	bool recovered;   /* from the bucket: its node did not answer */
	mg_session *prepared; /* prepare() made it here: the import merges into it */
	char from[129];
	size_t idlen;
	char id[];
} verdict;

/* The sessions prepare() made on a worker, until their verdict: what is queued for them
 * meanwhile does not go to SQ_STREAM (their node is asking for them, or reading it). The
 * worker's own: it alone reads and writes its list. */
typedef struct preplist {
	mg_session **v;
	int n, cap;
	char pad[48];
} preplist;

static int prep_add(mg_csess *cs, mg_worker *w, mg_session *s)
{
	preplist *l = &cs->prepw[w->idx];
	if (l->n == l->cap) {
		int nc = l->cap ? 2 * l->cap : 4;
		mg_session **nv = realloc(l->v, (size_t)nc * sizeof *nv);
		if (!nv)
			return -1;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = s;
	return 0;
}

static bool prep_has(mg_csess *cs, mg_worker *w, const mg_session *s)
{
	preplist *l = &cs->prepw[w->idx];
	for (int i = 0; i < l->n; i++)
		if (l->v[i] == s)
			return true;
	return false;
}

static void prep_forget(mg_csess *cs, mg_worker *w, const mg_session *s)
{
	preplist *l = &cs->prepw[w->idx];
	for (int i = 0; i < l->n; i++)
		if (l->v[i] == s) {
			l->v[i] = l->v[--l->n];
			return;
		}
}

static void on_verdict(mg_worker *w, void *arg)
{
	verdict *v = arg;
	mg_conn *c = v->conn;
	c->cluster_wait = false;
	uint32_t ns, nm;
	mg_session *s = NULL;
	/* the session is this node's now, even if its client went meanwhile (it comes back) */
	if (w && v->import && (s = unpack_state(w, v->id, v->idlen, v->import, v->import_len,
	                                        v->prepared ? U_MERGE : U_NEW, &ns, &nm))) {
		if (v->recovered)
			atomic_fetch_add(&v->cs->recovered, 1);
		mg_log(MG_LOG_NOTICE, "Client %s: session %s cluster node %s (%u subscriptions, %u "
		       "queued messages).", v->id, v->recovered ? "recovered from the registry, owned by"
		       : "taken over from", v->from, ns, nm);
	}
	if (w && v->prepared) {
		prep_forget(v->cs, w, v->prepared);
		int owner = -1;
		if (!s && mg_session_find(w, v->id, v->idlen, &owner) == v->prepared)
			end_moved(w, v->prepared, false); /* the old node ended it (clean start, no expiry) */
	}
	if (c->state == MG_CS_DEAD) { /* closed while it waited: ours to free */
		mg_conn_free(c);
	} else if (w) {
		c->cluster_ok = true;
		mg_conn_set_watch(c);
		mg_conn_process(c); /* the same CONNECT again, now with the registry's answer */
	} /* else: shutdown; still on its worker's list, freed with it */
	free(v->import);
	free(v);
}

static void post_ext(mg_worker *to, void (*fn)(mg_worker *, void *), void *arg)
{
	mg_post p = { .kind = MG_POST_CALL, .call = { fn, arg } };
	/* A verdict must arrive: the connection waits for it and may be owned by it. */
	while (mg_worker_post_ext(to, &p) < 0)
		usleep(1000);
}

typedef struct take {
	mg_csess *cs;
	char *reply;
	bool clean;
	int hops;
	char from[129];
	size_t idlen;
	char id[];
} take;

static void answer(mg_csess *cs, const char *reply, const void *d, size_t n)
{
	natsConnection_Publish(cs->nc, reply, d, (int)n);
}

/* On the session's worker: the old owner's part of a takeover. */
static void on_take(mg_worker *w, void *arg)
{
	take *t = arg;
	if (!w) /* shutdown: the asking node hears nothing and recovers from the bucket */
		goto out;
	int owner = -1;
	mg_session *s = mg_session_find(w, t->id, t->idlen, &owner);
	if (!s && owner >= 0 && owner != w->idx && t->hops++ < 4) {
		mg_post p = { .kind = MG_POST_CALL, .call = { on_take, t } };
		mg_worker_post(w, owner, &p);
		return;
	}
	if (!s) {
		answer(t->cs, t->reply, "\0", 1);
		goto out;
	}
	bool resume = !t->clean && s->expiry > 0;
	if (s->conn) {
		mg_log(MG_LOG_NOTICE, "Client %s already connected, taken over by cluster node %s: closing "
		       "old connection.", s->id, t->from);
		mg_takeover_close(w, s, resume);
	}
	wb o = { 0 };
	uint32_t ns = 0, nm = 0;
	put_u(&o, 1, 1);
	if (resume) {
		pack_state(w, s, true, &o, &ns, &nm);
		if (o.oom || (int64_t)o.n > natsConnection_GetMaxPayload(t->cs->nc)) {
			mg_log(MG_LOG_WARNING, "Warning: client %s: its %u queued messages do not fit one NATS "
			       "message; only its subscriptions move to cluster node %s.", s->id, nm, t->from);
			o.n = 1;
			o.oom = false;
			pack_state(w, s, false, &o, &ns, &nm);
		}
	}
	mg_log(MG_LOG_NOTICE, "Client %s: session %s to cluster node %s (%u subscriptions, %u queued "
	       "messages).", s->id, resume ? "moved" : "ended, clean start", t->from, ns, nm);
	end_moved(w, s, resume);
	atomic_fetch_add(&t->cs->takeovers_out, 1);
	if (o.oom)
		answer(t->cs, t->reply, "\1", 1);
	else
		answer(t->cs, t->reply, o.p, o.n);
	free(o.p);
out:
	free(t->reply);
	free(t);
}

typedef struct kick {
	char from[129];
	size_t idlen;
	char id[];
} kick;

/* On the session's worker: the registry says another node owns the id now (this node missed
 * the takeover, cut off from NATS meanwhile): the session goes, its client with it. */
static void on_kick(mg_worker *w, void *arg)
{
	kick *k = arg;
	int owner = -1;
	mg_session *s = w ? mg_session_find(w, k->id, k->idlen, &owner) : NULL;
	if (s) {
		mg_log(MG_LOG_NOTICE, "Client %s is owned by cluster node %s now (taken over while this "
		       "node was away or cut off): dropping its session here.", s->id, k->from);
		if (s->conn)
			mg_takeover_close(w, s, false);
		end_moved(w, s, false);
	}
	free(k);
}

/* ---- the registry's thread ---- */

/* j to the end of the registry thread's queue; cs->mu held */
static void enqueue(mg_csess *cs, job *j)
{
	j->next = NULL;
	if (cs->tail)
		cs->tail->next = j;
	else
		cs->head = j;
	cs->tail = j;
	pthread_cond_signal(&cs->cv);
}

static void push(mg_csess *cs, job *j)
{
	pthread_mutex_lock(&cs->mu);
	enqueue(cs, j);
	pthread_mutex_unlock(&cs->mu);
}

static job *new_job(int kind, const char *id, size_t len)
{
	job *j = calloc(1, sizeof *j + len + 1);
	if (j) {
		j->kind = kind;
		j->idlen = len;
		memcpy(j->id, id, len);
	}
	return j;
}

int mg_csess_claim(mg_csess *cs, mg_conn *c, const char *id, size_t len, bool clean)
{
	char key[KEY_MAX];
	if (!cs->kv || make_key(id, len, key, sizeof key) < 0)
		return 0; /* no registry, or an id too long for a key: this node's alone */
	job *j = new_job(J_CLAIM, id, len);
	verdict *v = j ? calloc(1, sizeof *v + len + 1) : NULL;
	if (!v) {
		free(j);
		return 0;
	}
	v->cs = cs;
	v->conn = c;
	v->idlen = len;
	memcpy(v->id, id, len);
	j->v = v;
	j->conn = c;
	j->w = c->w;
	j->clean = clean;
	c->cluster_wait = true;
	mg_conn_set_watch(c);
	push(cs, j);
	return 1;
}

void mg_csess_changed(mg_csess *cs, mg_worker *w, mg_session *s, bool gone)
{
	if (!cs->kv || moving)
		return;
	if (!gone && s->expiry == 0)
		return; /* a session that ends with its connection has nothing to recover */
	job *j = new_job(gone ? J_GONE : J_SAVE, s->id, s->id_len);
	if (!j)
		return;
	if (!gone) {
		wb o = { 0 };
		uint32_t ns, nm;
		pack_state(w, s, false, &o, &ns, &nm);
		if (o.oom) {
			free(o.p);
			free(j);
			return;
		}
		j->state = o.p;
		j->state_len = o.n;
		j->nsubs = ns;
	}
	/* attached with messages (queued while it was offline, maybe moved from another node) or
	 * ended: what SQ_STREAM holds for it is delivered from here, or never */
	j->purge = cs->sq && s->expiry > 0 && (gone || s->queue.n || s->flight.n);
	push(cs, j);
}

void mg_csess_queued(mg_csess *cs, mg_worker *w, mg_session *s, const mg_qitem *q)
{
	if (!cs->sq || moving || (cs->prepw[w->idx].n && prep_has(cs, w, s)))
		return; /* prepared: its node is asking for it, or reading what SQ_STREAM has */
	char subj[sizeof SQ_SUBJ + KEY_MAX];
	memcpy(subj, SQ_SUBJ, sizeof SQ_SUBJ - 1);
	if (make_key(s->id, s->id_len, subj + sizeof SQ_SUBJ - 1, KEY_MAX) < 0)
		return;
	/* A plain publish on the stream's subject, as a retained put: the worker never waits
	 * for JetStream. One session's messages leave from its one worker, in order. */
	wb o = { 0 };
	if (put_item(&o, q, mg_loop_now_ms(w->loop)) && !o.oom &&
	    (int64_t)o.n <= natsConnection_GetMaxPayload(cs->nc))
		natsConnection_Publish(cs->nc, subj, o.p, (int)o.n);
	free(o.p);
}

/* The subject of key's messages in SQ_STREAM into subj, and the sequence of the last one
 * there now; 0: none (or no answer). One round trip. */
static uint64_t sq_last(mg_csess *cs, const char *key, char subj[sizeof SQ_SUBJ + KEY_MAX])
{
	snprintf(subj, sizeof SQ_SUBJ + KEY_MAX, SQ_SUBJ "%s", key);
	natsMsg *last = NULL;
	if (!cs->sq || js_GetLastMsg(&last, cs->js, SQ_STREAM, subj, NULL, NULL) != NATS_OK)
		return 0;
	uint64_t seq = natsMsg_GetSequence(last);
	natsMsg_Destroy(last);
	return seq;
}

/* Drop what SQ_STREAM holds for key, up to the last message there now. */
static void purge_sq(mg_csess *cs, const char *key)
{
	char subj[sizeof SQ_SUBJ + KEY_MAX];
	uint64_t last = sq_last(cs, key, subj);
	if (!last)
		return; /* none (or no answer: they stay, and a recovery would deliver them again) */
	jsOptions o;
	jsOptions_Init(&o);
	o.Wait = WAIT_MS;
	o.Stream.Purge.Subject = subj;
	o.Stream.Purge.Sequence = last + 1;
	js_PurgeStream(cs->js, SQ_STREAM, &o, NULL);
}

/* One message of pack_state's layout from r to o, its expiry shortened by age ms. */
static bool copy_item(rd *r, wb *o, int64_t age)
{
	uint8_t head[3];
	for (int i = 0; i < 3; i++)
		head[i] = (uint8_t)get_u(r, 1);
	size_t tl = (size_t)get_u(r, 2);
	const uint8_t *t = get_b(r, tl);
	uint32_t pl = (uint32_t)get_u(r, 4);
	const uint8_t *props = get_b(r, pl);
	uint32_t yl = (uint32_t)get_u(r, 4);
	const uint8_t *pay = get_b(r, yl);
	int64_t left = (head[1] & 4) ? (int64_t)get_u(r, 8) - age : 0;
	uint16_t nids = (uint16_t)get_u(r, 2);
	const uint8_t *ids = get_b(r, (size_t)nids * 4);
	if (r->bad || ((head[1] & 4) && left <= 0))
		return false;
	put(o, head, 3);
	put_u(o, tl, 2);
	put(o, t, tl);
	put_u(o, pl, 4);
	put(o, props, pl);
	put_u(o, yl, 4);
	put(o, pay, yl);
	if (head[1] & 4)
		put_u(o, (uint64_t)left, 8);
	put_u(o, nids, 2);
	put(o, ids, (size_t)nids * 4);
	return true;
}

/* The messages SQ_STREAM holds for key, appended to o in pack_state's layout. Returns how
 * many. A round trip when there are none; one more, and the messages' transfer, else. */
static uint32_t read_sq(mg_csess *cs, const char *key, wb *o)
{
	char subj[sizeof SQ_SUBJ + KEY_MAX];
	uint64_t last_seq = sq_last(cs, key, subj);
	if (!last_seq)
		return 0;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = SQ_STREAM;
	so.Config.DeliverPolicy = js_DeliverAll;
	so.Config.AckPolicy = js_AckNone;
	natsSubscription *sub = NULL;
	if (js_SubscribeSync(&sub, cs->js, subj, NULL, &so, NULL) != NATS_OK)
		return 0;
	uint32_t n = 0;
	for (;;) {
		natsMsg *m = NULL;
		jsMsgMetaData *md = NULL;
		if (natsSubscription_NextMsg(&m, sub, WAIT_MS) != NATS_OK)
			break;
		bool end = true;
		if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			int64_t age = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - md->Timestamp / 1000000;
			rd r = { (const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, false };
			if (copy_item(&r, o, age < 0 ? 0 : age))
				n++;
			end = md->Sequence.Stream >= last_seq || md->NumPending == 0;
			jsMsgMetaData_Destroy(md);
		}
		natsMsg_Destroy(m);
		if (end)
			break;
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	return n;
}

/* ---- a takeover's window ----
 * Between the old owner packing the session and this node making it from the answer, a
 * message routed on either node would find the session on neither (each node routes every
 * QoS 1/2 message of MQTT_MSGS through its own tree). So before asking, the registry thread
 * has the session's worker make it here from the registry's copy (U_PREPARE: offline, its
 * subscriptions in the tree and on NATS), and waits until it did (bounded): what is routed
 * meanwhile queues for it here, and the old owner's messages merge in front (U_MERGE). */
typedef struct prep {
	mg_csess *cs;
	verdict *v;
	int refs;   /* under cs->mu: the registry thread's and the worker's */
	bool done;  /* under cs->mu */
	size_t len;
	uint8_t st[];
} prep;

static void prep_unref(prep *p) /* cs->mu held */
{
	if (--p->refs == 0)
		free(p);
}

static void on_prepare(mg_worker *w, void *arg)
{
	prep *p = arg;
	mg_csess *cs = p->cs;
	uint32_t ns, nm;
	mg_session *s = w ? unpack_state(w, p->v->id, p->v->idlen, p->st, p->len, U_PREPARE, &ns, &nm)
	                  : NULL;
	if (s && prep_add(cs, w, s) == 0)
		p->v->prepared = s; /* read by on_verdict, on this worker, after this */
	pthread_mutex_lock(&cs->mu);
	p->done = true;
	pthread_cond_broadcast(&cs->pcv);
	prep_unref(p);
	pthread_mutex_unlock(&cs->mu);
}

static void prepare(mg_csess *cs, job *j, const uint8_t *st, size_t len)
{
	prep *p = malloc(sizeof *p + len);
	if (!p)
		return;
	*p = (prep){ .cs = cs, .v = j->v, .refs = 2, .len = len };
	memcpy(p->st, st, len);
	post_ext(j->w, on_prepare, p);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&cs->mu);
	while (!p->done && !cs->stop && pthread_cond_timedwait(&cs->pcv, &cs->mu, &until) == 0)
		;
	prep_unref(p);
	pthread_mutex_unlock(&cs->mu);
}

/* Heard from node name within DEAD_MS (its heartbeat)? */
static bool peer_alive(mg_csess *cs, const char *name)
{
	bool alive = false;
	int64_t now = now_ms();
	pthread_mutex_lock(&cs->pmu);
	for (int i = 0; i < cs->npeers && !alive; i++)
		alive = strcmp(cs->peers[i].name, name) == 0 && now - cs->peers[i].last <= DEAD_MS;
	pthread_mutex_unlock(&cs->pmu);
	return alive;
}

/* A request to the old owner: its answer is waited for in slices of WAIT_MS, while its
 * heartbeat is heard, up to TAKE_MAX_MS. A dead node's request fails at once (no
 * responders: its subscription went with its connection) or after one slice (cut off). */
static natsStatus ask_owner(mg_csess *cs, const char *subj, const void *d, int n, const char *owner,
                            natsMsg **reply)
{
	natsInbox *inbox = NULL;
	natsSubscription *sub = NULL;
	natsStatus s = natsInbox_Create(&inbox);
	if (s == NATS_OK)
		s = natsConnection_SubscribeSync(&sub, cs->nc, inbox);
	if (s == NATS_OK)
		s = natsConnection_PublishRequest(cs->nc, subj, inbox, d, n);
	int64_t end = now_ms() + TAKE_MAX_MS;
	while (s == NATS_OK) {
		s = natsSubscription_NextMsg(reply, sub, WAIT_MS);
		if (s != NATS_TIMEOUT || now_ms() > end || !peer_alive(cs, owner))
			break;
		s = NATS_OK;
	}
	if (sub) {
		natsSubscription_Unsubscribe(sub);
		natsSubscription_Destroy(sub);
	}
	natsInbox_Destroy(inbox);
	return s;
}

static void do_claim(mg_csess *cs, job *j)
{
	verdict *v = j->v;
	char key[KEY_MAX];
	make_key(j->id, j->idlen, key, sizeof key);
	natsStatus s = NATS_OK;
	bool done = false;
	for (int tries = 0; tries < 4 && !done; tries++) {
		kvEntry *e = NULL;
		regval old;
		bool have = false;
		uint64_t rev = 0, nrev = 0;
		s = kvStore_Get(&e, cs->kv, key);
		if (s == NATS_OK) {
			have = parse_regval(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &old);
			rev = kvEntry_Revision(e);
		} else if (s != NATS_NOT_FOUND) {
			break;
		}
		bool other = have && old.alive && strcmp(old.name, cs->name) != 0;
		/* the new value: this node owns the id, one epoch on; what the bucket knew of the
		 * session stays until this node writes the session it made of it */
		wb nv = { 0 };
		put_regval(&nv, cs, have ? old.epoch + 1 : 1, true,
		           other && !j->clean ? old.state : NULL, other && !j->clean ? old.state_len : 0);
		if (nv.oom) {
			free(nv.p);
			kvEntry_Destroy(e);
			s = NATS_NO_MEMORY;
			break;
		}
		s = rev ? kvStore_Update(&nrev, cs->kv, key, nv.p, (int)nv.n, rev)
		        : kvStore_Create(&nrev, cs->kv, key, nv.p, (int)nv.n);
		free(nv.p);
		if (s != NATS_OK) { /* another node wrote it meanwhile: read it again */
			kvEntry_Destroy(e);
			continue;
		}
		done = true;
		if (j->clean && have && cs->sq) /* a clean start: nothing queued before counts */
			purge_sq(cs, key);
		if (other) {
			snprintf(v->from, sizeof v->from, "%s", old.name);
			if (!j->clean && old.state_len)
				prepare(cs, j, old.state, old.state_len);
			/* ask the old owner: clean, epoch, who asks, the id */
			wb rq = { 0 };
			size_t nl = strlen(cs->name);
			put_u(&rq, j->clean, 1);
			put_u(&rq, old.epoch + 1, 8);
			put_u(&rq, nl, 1);
			put(&rq, cs->name, nl);
			put(&rq, j->id, j->idlen);
			char subj[sizeof TAKE_SUBJ + KEY_MAX];
			memcpy(subj, TAKE_SUBJ, sizeof TAKE_SUBJ - 1);
			if (make_key(old.name, strlen(old.name), subj + sizeof TAKE_SUBJ - 1, KEY_MAX) < 0)
				rq.oom = true;
			natsMsg *reply = NULL;
			natsStatus rs = rq.oom ? NATS_NO_MEMORY
			                : ask_owner(cs, subj, rq.p, (int)rq.n, old.name, &reply);
			free(rq.p);
			const uint8_t *d = reply ? (const uint8_t *)natsMsg_GetData(reply) : NULL;
			int dl = reply ? natsMsg_GetDataLength(reply) : 0;
			if (rs == NATS_OK && dl > 1 && d[0] == 1) {
				atomic_fetch_add(&cs->takeovers_in, 1);
				if ((v->import = malloc((size_t)dl - 1))) {
					memcpy(v->import, d + 1, (size_t)dl - 1);
					v->import_len = (size_t)dl - 1;
				}
			} else if ((rs != NATS_OK || dl < 1 || d[0] != 1) && !j->clean && old.state_len) {
				/* nobody answers for the old owner (it is gone), or it does not have the
				 * session (restarted without its store): the session is what JetStream
				 * holds */
				mg_log(MG_LOG_NOTICE, "Cluster node %s %s client %s: recovering its session from the "
				       "registry.", old.name, rs == NATS_OK ? "no longer has" : "does not answer for",
				       j->id);
				wb im = { 0 };
				if (old.state_len >= 4) { /* its subscriptions, then what it had queued */
					put(&im, old.state, old.state_len - 4);
					size_t at = im.n;
					put_u(&im, 0, 4);
					patch_u32(&im, at, read_sq(cs, key, &im));
				}
				if (!im.oom && im.n) {
					v->import = im.p;
					v->import_len = im.n;
					v->recovered = true;
				} else {
					free(im.p);
				}
			}
			if (reply)
				natsMsg_Destroy(reply);
		}
		kvEntry_Destroy(e);
	}
	if (!done)
		warn_registry(cs, j->id, s);
	post_ext(j->w, on_verdict, v);
}

/* Write one value with a compare-and-set on the revision read; the id must still be ours. */
static void do_write(mg_csess *cs, job *j)
{
	char key[KEY_MAX];
	if (make_key(j->id, j->idlen, key, sizeof key) < 0)
		return;
	if (j->purge)
		purge_sq(cs, key);
	if (j->kind == J_GONE || j->kind == J_FENCE) {
		int owner = -1;
		mg_registry_find(cs->b, j->id, j->idlen, -1, &owner);
		if (j->kind == J_GONE && owner >= 0)
			return; /* a session of that id lives here again (a new CONNECT) */
		if (j->kind == J_FENCE && owner < 0)
			return; /* gone meanwhile (the new owner asked for it) */
	}
	for (int tries = 0; tries < 3; tries++) {
		kvEntry *e = NULL;
		regval old;
		natsStatus s = kvStore_Get(&e, cs->kv, key);
		uint64_t rev = 0, nrev;
		if (s == NATS_OK) {
			if (!parse_regval(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), &old))
				memset(&old, 0, sizeof old);
			rev = kvEntry_Revision(e);
		} else if (s == NATS_NOT_FOUND && j->kind == J_SAVE) {
			memset(&old, 0, sizeof old);
			snprintf(old.name, sizeof old.name, "%s", cs->name);
			old.alive = true;
		} else if (s == NATS_NOT_FOUND) {
			return;
		} else {
			mg_log(MG_LOG_DEBUG, "Cluster node %s: client %s: registry read failed: %s (%s).",
			       cs->name, j->id, natsStatus_GetText(s), nats_GetLastError(NULL));
			continue;
		}
		if (old.alive && strcmp(old.name, cs->name) != 0) {
			kvEntry_Destroy(e);
			if (j->kind == J_FENCE) { /* still here, and the new owner never asked for it */
				int owner = -1;
				mg_registry_find(cs->b, j->id, j->idlen, -1, &owner);
				kick *k = calloc(1, sizeof *k + j->idlen + 1);
				if (owner >= 0 && k) {
					snprintf(k->from, sizeof k->from, "%s", old.name);
					k->idlen = j->idlen;
					memcpy(k->id, j->id, j->idlen);
					post_ext(&cs->b->w[owner], on_kick, k);
				} else {
					free(k);
				}
			} else if (j->kind == J_SAVE) {
				/* Fenced: a newer owner has the id. Usually its request for the session is
				 * on its way (it writes the bucket first, then asks): look again once that
				 * request has had its time, and drop the session here only if it is still
				 * here then (this node missed the request: cut off from NATS). */
				job *f = new_job(J_FENCE, j->id, j->idlen);
				if (f) {
					f->due = now_ms() + 2 * WAIT_MS + 1000;
					pthread_mutex_lock(&cs->mu);
					f->next = cs->fence;
					cs->fence = f;
					pthread_mutex_unlock(&cs->mu);
				}
			}
			return;
		}
		if (j->kind == J_FENCE) {
			kvEntry_Destroy(e);
			return;
		}
		if (j->kind == J_GONE && !old.alive) {
			kvEntry_Destroy(e);
			return;
		}
		wb nv = { 0 };
		put_regval(&nv, cs, old.epoch ? old.epoch : 1, j->kind == J_SAVE, j->state, j->state_len);
		kvEntry_Destroy(e);
		if (nv.oom) {
			free(nv.p);
			return;
		}
		s = rev ? kvStore_Update(&nrev, cs->kv, key, nv.p, (int)nv.n, rev)
		        : kvStore_Create(&nrev, cs->kv, key, nv.p, (int)nv.n);
		free(nv.p);
		if (s != NATS_OK)
			mg_log(MG_LOG_DEBUG, "Cluster node %s: client %s: registry write %d failed: %s (%s).",
			       cs->name, j->id, j->kind, natsStatus_GetText(s), nats_GetLastError(NULL));
		if (s == NATS_OK) {
			if (j->kind == J_SAVE)
				mg_log(MG_LOG_DEBUG, "Cluster node %s: client %s saved in the registry (%u "
				       "subscriptions, revision %llu).", cs->name, j->id, j->nsubs,
				       (unsigned long long)nrev);
			else
				mg_log(MG_LOG_DEBUG, "Cluster node %s: client %s ended in the registry (revision "
				       "%llu).", cs->name, j->id, (unsigned long long)nrev);
			return;
		}
	}
}

static void *reg_main(void *arg)
{
	mg_csess *cs = arg;
	pthread_mutex_lock(&cs->mu);
	for (;;) {
		while (!cs->head && !cs->stop)
			pthread_cond_wait(&cs->cv, &cs->mu);
		if (cs->stop)
			break;
		job *j = cs->head;
		cs->head = j->next;
		if (!cs->head)
			cs->tail = NULL;
		pthread_mutex_unlock(&cs->mu);
		if (j->kind == J_CLAIM)
			do_claim(cs, j);
		else
			do_write(cs, j);
		free(j->state);
		free(j);
		pthread_mutex_lock(&cs->mu);
	}
	pthread_mutex_unlock(&cs->mu);
	return NULL;
}

/* ---- the old owner's side of a takeover (the take subscription's thread) ---- */

static void on_take_req(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	mg_csess *cs = closure;
	(void)nc;
	(void)sub;
	const char *reply = natsMsg_GetReply(msg);
	rd r = { (const uint8_t *)natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, false };
	bool clean = get_u(&r, 1) != 0;
	(void)get_u(&r, 8); /* the new epoch: for the log of a later version */
	size_t nl = (size_t)get_u(&r, 1);
	const uint8_t *name = get_b(&r, nl);
	size_t idlen = r.bad ? 0 : r.n - r.off;
	if (r.bad || !reply || !idlen || nl > 128) {
		natsMsg_Destroy(msg);
		return;
	}
	const char *id = (const char *)r.p + r.off;
	int owner = -1;
	mg_registry_find(cs->b, id, idlen, -1, &owner);
	take *t = owner >= 0 ? calloc(1, sizeof *t + idlen + 1) : NULL;
	if (t && !(t->reply = strdup(reply))) {
		free(t);
		t = NULL;
	}
	if (!t) {
		natsConnection_Publish(cs->nc, reply, "\0", 1); /* not here */
		natsMsg_Destroy(msg);
		return;
	}
	t->cs = cs;
	t->clean = clean;
	memcpy(t->from, name, nl);
	t->idlen = idlen;
	memcpy(t->id, id, idlen);
	mg_post p = { .kind = MG_POST_CALL, .call = { on_take, t } };
	pthread_mutex_lock(&cs->mu); /* after stop, no worker takes posts any more */
	int ok = !cs->stop && mg_worker_post_ext(&cs->b->w[owner], &p) == 0;
	pthread_mutex_unlock(&cs->mu);
	if (!ok) {
		free(t->reply);
		free(t);
	}
	natsMsg_Destroy(msg);
}

/* ---- heartbeat ---- */

bool mg_csess_seen(mg_csess *cs, const char *name, int n, bool alive)
{
	bool fresh = false;
	if (n <= 0 || n > 128)
		return false;
	pthread_mutex_lock(&cs->pmu);
	int i = 0;
	while (i < cs->npeers && !(strncmp(cs->peers[i].name, name, (size_t)n) == 0 && !cs->peers[i].name[n]))
		i++;
	if (!alive) {
		if (i < cs->npeers)
			cs->peers[i] = cs->peers[--cs->npeers];
	} else if (i < cs->npeers) {
		cs->peers[i].last = now_ms();
	} else if (cs->npeers < MAX_PEERS) {
		memcpy(cs->peers[i].name, name, (size_t)n);
		cs->peers[i].name[n] = 0;
		cs->peers[i].last = now_ms();
		cs->npeers++;
		fresh = true;
	}
	pthread_mutex_unlock(&cs->pmu);
	return fresh;
}

bool mg_csess_alive(mg_csess *cs, const char *name)
{
	pthread_mutex_lock(&cs->pmu);
	int i = 0;
	while (i < cs->npeers && strcmp(cs->peers[i].name, name) != 0)
		i++;
	bool alive = i < cs->npeers;
	pthread_mutex_unlock(&cs->pmu);
	return alive;
}

static void *beat_main(void *arg)
{
	mg_csess *cs = arg;
	pthread_mutex_lock(&cs->mu);
	while (!cs->stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += BEAT_MS / 1000;
		pthread_cond_timedwait(&cs->bcv, &cs->mu, &until);
		if (cs->stop)
			break;
		int64_t now = now_ms();
		for (job **pp = &cs->fence; *pp;) { /* fence checks whose time came: to the queue */
			job *f = *pp;
			if (f->due > now) {
				pp = &f->next;
				continue;
			}
			*pp = f->next;
			enqueue(cs, f);
		}
		pthread_mutex_unlock(&cs->mu);
		natsConnection_Publish(cs->nc, BEAT_SUBJ, cs->name, (int)strlen(cs->name));
		pthread_mutex_lock(&cs->pmu);
		for (int i = 0; i < cs->npeers;) {
			if (now - cs->peers[i].last > DEAD_MS) {
				mg_log(MG_LOG_NOTICE, "Cluster node %s left (no heartbeat for %d s).", cs->peers[i].name,
				       DEAD_MS / 1000);
				cs->peers[i] = cs->peers[--cs->npeers];
			} else {
				i++;
			}
		}
		pthread_mutex_unlock(&cs->pmu);
		pthread_mutex_lock(&cs->mu);
	}
	pthread_mutex_unlock(&cs->mu);
	return NULL;
}

/* ---- start and stop ---- */

static kvStore *bind_bucket(mg_csess *cs)
{
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = WAIT_MS;
	kvStore *kv = NULL;
	natsStatus s = natsConnection_JetStream(&cs->js, cs->nc, &jo);
	int64_t deadline = now_ms() + 10000;
	while (s == NATS_OK) {
		s = js_KeyValue(&kv, cs->js, SESS_BUCKET);
		if (s == NATS_NOT_FOUND) {
			kvConfig kc;
			kvConfig_Init(&kc);
			kc.Bucket = SESS_BUCKET;
			kc.History = 1;
			kc.Replicas = mg_cl_replicas(cs->nc);
			kc.StorageType = js_FileStorage;
			s = js_CreateKeyValue(&kv, cs->js, &kc);
		}
		if (s == NATS_OK || now_ms() > deadline)
			break;
		nats_Sleep(200); /* JetStream elects its leaders after the servers start */
		s = NATS_OK;
	}
	if (s != NATS_OK) {
		const char *d = nats_GetLastError(NULL);
		mg_log(MG_LOG_WARNING, "Warning: cluster node %s: no JetStream key-value bucket %s (%s%s%s): "
		       "client ids are per node, a session does not follow its client to another node.",
		       cs->name, SESS_BUCKET, natsStatus_GetText(s), d && *d ? ": " : "", d ? d : "");
		return NULL;
	}
	return kv;
}

static bool add_sq_stream(mg_csess *cs)
{
	jsStreamInfo *si = NULL;
	natsStatus s = js_GetStreamInfo(&si, cs->js, SQ_STREAM, NULL, NULL);
	if (s == NATS_NOT_FOUND) {
		jsStreamConfig sc;
		jsStreamConfig_Init(&sc);
		const char *subjects[] = { SQ_SUBJ ">" };
		sc.Name = SQ_STREAM;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Replicas = mg_cl_replicas(cs->nc);
		s = js_AddStream(&si, cs->js, &sc, NULL, NULL);
		if (s != NATS_OK) /* another node made it meanwhile? */
			s = js_GetStreamInfo(&si, cs->js, SQ_STREAM, NULL, NULL);
	}
	if (si)
		jsStreamInfo_Destroy(si);
	if (s != NATS_OK) {
		const char *d = nats_GetLastError(NULL);
		mg_log(MG_LOG_WARNING, "Warning: cluster node %s: no JetStream stream %s (%s%s%s): the messages "
		       "queued for a persistent session are lost with its node.", cs->name, SQ_STREAM,
		       natsStatus_GetText(s), d && *d ? ": " : "", d ? d : "");
		return false;
	}
	return true;
}

mg_csess *mg_csess_start(mg_broker *b, natsConnection *nc, const char *name, uint64_t node_id)
{
	mg_csess *cs = calloc(1, sizeof *cs);
	if (!cs)
		return NULL;
	cs->b = b;
	cs->nc = nc;
	cs->node_id = node_id;
	if (!(cs->prepw = calloc((size_t)b->nworkers, sizeof *cs->prepw))) {
		free(cs);
		return NULL;
	}
	snprintf(cs->name, sizeof cs->name, "%s", name);
	pthread_mutex_init(&cs->mu, NULL);
	pthread_mutex_init(&cs->pmu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&cs->cv, &ca);
	pthread_cond_init(&cs->bcv, &ca);
	pthread_cond_init(&cs->pcv, &ca);
	pthread_condattr_destroy(&ca);
	cs->kv = bind_bucket(cs);
	if (cs->kv)
		cs->sq = add_sq_stream(cs);
	memcpy(cs->take, TAKE_SUBJ, sizeof TAKE_SUBJ - 1);
	if (cs->kv && make_key(cs->name, strlen(cs->name), cs->take + sizeof TAKE_SUBJ - 1, KEY_MAX) < 0) {
		kvStore_Destroy(cs->kv); /* a name no subject can carry: no registry */
		cs->kv = NULL;
	}
	if (cs->kv)
		cs->take_sub = mg_cl_sub(nc, cs->take, on_take_req, cs);
	/* Sessions restored from this node's store: another node may have taken some over while
	 * this one was down. Asked before any worker runs; dropped here if so (on_kick). */
	for (int i = 0; cs->kv && i < b->nworkers; i++)
		for (mg_session *s = b->w[i].sessions; s; s = s->next) {
			job *f = new_job(J_FENCE, s->id, s->id_len);
			if (f)
				enqueue(cs, f); /* no thread yet: nobody to signal, nothing to lock */
		}
	if (cs->kv && pthread_create(&cs->th, NULL, reg_main, cs) == 0)
		cs->th_on = true;
	if (!cs->th_on && cs->kv) {
		kvStore_Destroy(cs->kv);
		cs->kv = NULL;
	}
	if (pthread_create(&cs->beat_th, NULL, beat_main, cs) == 0)
		cs->beat_on = true;
	if (cs->kv)
		mg_log(MG_LOG_NOTICE, "Cluster node %s: client ids in bucket %s.", cs->name, SESS_BUCKET);
	return cs;
}

void mg_csess_stop(mg_csess *cs)
{
	if (!cs)
		return;
	pthread_mutex_lock(&cs->mu);
	cs->stop = true;
	pthread_cond_broadcast(&cs->cv);
	pthread_cond_broadcast(&cs->bcv);
	pthread_cond_broadcast(&cs->pcv);
	pthread_mutex_unlock(&cs->mu);
	if (cs->th_on)
		pthread_join(cs->th, NULL);
	if (cs->beat_on)
		pthread_join(cs->beat_th, NULL);
	cs->th_on = cs->beat_on = false;
	/* jobs never run: their parked CONNECTs go back to their workers, which are stopped and
	 * free them (on_verdict with no worker) */
	for (job *j = cs->head, *nx; j; j = nx) {
		nx = j->next;
		if (j->kind == J_CLAIM)
			post_ext(j->w, on_verdict, j->v);
		free(j->state);
		free(j);
	}
	cs->head = cs->tail = NULL;
	for (job *j = cs->fence, *nx; j; j = nx) {
		nx = j->next;
		free(j);
	}
	cs->fence = NULL;
	/* a request not read yet goes unanswered: the asking node recovers from the bucket */
	mg_cl_sub_stop(cs->take_sub);
	cs->take_sub = NULL;
	if (cs->kv)
		kvStore_Destroy(cs->kv);
	cs->kv = NULL;
	if (cs->js)
		jsCtx_Destroy(cs->js);
	cs->js = NULL;
}

void mg_csess_free(mg_csess *cs)
{
	if (!cs)
		return;
	pthread_mutex_destroy(&cs->mu);
	pthread_mutex_destroy(&cs->pmu);
	pthread_cond_destroy(&cs->cv);
	pthread_cond_destroy(&cs->bcv);
	pthread_cond_destroy(&cs->pcv);
	for (int i = 0; i < cs->b->nworkers; i++)
		free(cs->prepw[i].v);
	free(cs->prepw);
	free(cs);
}
