/*
 * broker/store.c - durable state in one SQLite file (store.h, docs/persistence.md).
 *
 * Each worker appends operations to its own batch while its loop turn runs (no I/O) and
 * executes them in one transaction, with prepared statements, when the turn ends: the cost
 * is one BEGIN/COMMIT (one WAL append, plus an fsync with persistence_fsync) per turn, not
 * per message. Workers have their own connections; SQLite lets one write at a time, so a
 * worker waits for the write lock at most for the length of another's batch.
 */
#include "broker/store.h"
#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/log.h"
#include "broker/msg.h"
#include "broker/session.h"
#include "broker/store_schema.h"
#include "broker/subtree.h"
#include "broker/worker.h"
#include "net/loop.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

__thread mg_sbatch *mg_store_tls __attribute__((tls_model("initial-exec")));

enum op_kind {
	OP_MSG_PUT = 1, OP_MSG_DEL, OP_Q_PUT, OP_Q_STATE, OP_Q_DEL, OP_INQ2_PUT, OP_INQ2_DEL,
	OP_SESS_PUT, OP_SESS_DEL, OP_SESS_EXP, OP_WILL, OP_SUB_PUT, OP_SUB_DEL, OP_RET_PUT, OP_RET_DEL,
};

/* One operation of a batch. Owns one reference of m and the blob. */
typedef struct sop {
	uint8_t kind, qos, flag, state;
	uint16_t mid;
	uint32_t len;     /* blob bytes */
	int64_t sid, msg; /* session, message store ids */
	int64_t t1, t2;   /* times or numbers, per kind */
	mg_msg *m;
	uint8_t *blob;
} sop;

enum {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_MSG_PUT, ST_MSG_DEL, ST_Q_PUT, ST_Q_STATE, ST_Q_DEL,
	ST_INQ2_PUT, ST_INQ2_DEL, ST_SESS_PUT, ST_SESS_DEL1, ST_SESS_DEL2, ST_SESS_DEL3, ST_SESS_DEL4,
	ST_SESS_EXP, ST_WILL, ST_SUB_PUT, ST_SUB_DEL, ST_RET_PUT, ST_RET_DEL, ST_MSG_PUTN, ST_Q_PUTN, ST_N
};

static const char *const sql[ST_N] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_MSG_PUT] = "INSERT OR REPLACE INTO msgs(id, topic, payload, props, qos, retain, expire_at) "
	               "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_MSG_DEL] = "DELETE FROM msgs WHERE id BETWEEN ?1 AND ?2",
	[ST_Q_PUT] = "INSERT OR REPLACE INTO queue(sid, msg, qos, retain, sub_ids, mid, state) "
	             "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_Q_STATE] = "UPDATE queue SET mid = ?3, state = ?4 WHERE sid = ?1 AND msg = ?2",
	[ST_Q_DEL] = "DELETE FROM queue WHERE sid = ?1 AND msg BETWEEN ?2 AND ?3",
	[ST_INQ2_PUT] = "INSERT OR REPLACE INTO inq2(sid, mid, msg) VALUES(?1, ?2, ?3)",
	[ST_INQ2_DEL] = "DELETE FROM inq2 WHERE sid = ?1 AND mid = ?2",
	[ST_SESS_PUT] = "INSERT OR REPLACE INTO sessions(sid, client_id, level, expiry, expire_at, username) "
	                "VALUES(?1, ?2, ?3, ?4, NULL, ?5)",
	[ST_SESS_DEL1] = "DELETE FROM sessions WHERE sid = ?1",
	[ST_SESS_DEL2] = "DELETE FROM subs WHERE sid = ?1",
	[ST_SESS_DEL3] = "DELETE FROM queue WHERE sid = ?1",
	[ST_SESS_DEL4] = "DELETE FROM inq2 WHERE sid = ?1",
	[ST_SESS_EXP] = "UPDATE sessions SET expiry = ?2, expire_at = ?3 WHERE sid = ?1",
	[ST_WILL] = "UPDATE sessions SET will_msg = ?2, will_at = ?3, will_expiry = ?4 WHERE sid = ?1",
	[ST_SUB_PUT] = "INSERT OR REPLACE INTO subs(sid, filter, opts, sub_id) VALUES(?1, ?2, ?3, ?4)",
	[ST_SUB_DEL] = "DELETE FROM subs WHERE sid = ?1 AND filter = ?2",
	[ST_RET_PUT] = "INSERT OR REPLACE INTO retained(topic, payload, props, qos, expire_at) "
	               "VALUES(?1, ?2, ?3, ?4, ?5)",
	[ST_RET_DEL] = "DELETE FROM retained WHERE topic = ?1",
	/* ST_MSG_PUTN, ST_Q_PUTN: ST_MSG_PUT and ST_Q_PUT for PUT_ROWS rows (puts_sql) */
};

/* How long a turn's queue rows and bodies wait, at most, for the subscribers'
 * acknowledgements that make writing them unnecessary; the publishers' PUBACKs wait as long.
 * One loop turn is too short on a busy machine: the subscriber has not answered yet. */
enum { CARRY_MS = 10 };

/* Rows of one multi-row INSERT (7 parameters each): the statement's own cost (reset, begin,
 * halt) is paid once for this many messages instead of once each. */
enum { PUT_ROWS = 32, PUT_COLS = 7 };

struct mg_sbatch {
	mg_store *st;
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_N];
	sop *v;
	size_t n, cap;
	bool oom;          /* an operation could not be recorded: logged with the next commit */
	struct mg_conn **promised; /* connections acknowledged against this batch (mg_store_promise) */
	size_t npromised, cappromised;
	/* Deletions of queue and msgs rows waiting to be executed as ranges (exec_deletes). */
	struct qkey { int64_t sid, msg; } *qdel;
	int64_t *mdel;
	size_t nqdel, nmdel, capqdel, capmdel;
	/* Inserts of msgs and queue rows waiting for a multi-row statement (PUT_ROWS). */
	const struct sop *mput[PUT_ROWS], *qput[PUT_ROWS];
	int nmput, nqput;
	const mg_msg *last_put; /* the message whose body this batch wrote last (body_ref) */
	/* Carried ops (docs/persistence.md, "Rows a turn cancels"): v[0..carry) are from the
	 * turn before, committed when this turn ends unless cancelled; v[carry..n) are this
	 * turn's. gen counts turn ends; need_full: output of this turn waits for all of them. */
	size_t carry;
	int64_t carry_since; /* mono ms: when v[0..carry) stopped being this turn's */
	uint32_t gen;
	bool need_full;
	bool wrote; /* the last exec_upto ran a transaction */
	/* v's msgs and queue inserts not yet executed, by (sid, msg) (msgs: sid 0), so that an
	 * acknowledgement cancels them and a state change folds into them */
	struct pkey { int64_t sid, msg; uint32_t idx; } *ht;
	size_t htcap, htn;
};

struct mg_store {
	char *path;
	bool fsync;
	/* Checkpoints (copying the WAL into the file, with an fsync) run in a thread of their
	 * own, so that no worker's commit ever pays for one: a worker's commit appends to the WAL
	 * and its wal_hook says how long the WAL is; past CKPT_PAGES the thread is woken. */
	pthread_t ckpt;
	bool ckpt_running;
	pthread_mutex_t ckpt_mu;
	pthread_cond_t ckpt_cv;
	bool ckpt_stop;
	atomic_int wal_pages;
	sqlite3 *db;       /* opening and start-up; closed last */
	mg_sbatch *wb;     /* one per worker */
	int nwb;
	atomic_llong next_msg, next_sid;
	int64_t wall_off;  /* Unix ms = mg_now_ms() + wall_off */
	bool clean_exit;            /* mg_store_closing_cleanly: close writes the marker */
	atomic_bool failing;        /* the last commit failed (store.h, write failures) */
	/* mono ms of the failure or of the last write probe since: one probe a second for the
	 * whole store, whichever worker makes it (a worker of its own would probe at once after
	 * another worker's failure, and let a message through that the failing one refuses) */
	_Atomic int64_t probe_at;
	atomic_llong failed_logged; /* mono ms of the last failure / refusal lines: once a minute */
	atomic_llong refused_logged, recovered_logged;
};

/* ---- times ---- */

static int64_t wall_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int64_t to_wall(const mg_store *st, int64_t mono) { return mono + st->wall_off; }
static int64_t to_mono(const mg_store *st, int64_t wall) { return wall - st->wall_off; }

/* ---- recording operations (hooks) ---- */

static sop *push(mg_sbatch *sb, uint8_t kind)
{
	if (sb->n == sb->cap) {
		size_t nc = sb->cap ? sb->cap * 2 : 256;
		sop *nv = realloc(sb->v, nc * sizeof *nv);
		if (!nv) {
			sb->oom = true;
			return NULL;
		}
		sb->v = nv;
		sb->cap = nc;
	}
	sop *o = &sb->v[sb->n++];
	memset(o, 0, sizeof *o);
	o->kind = kind;
	return o;
}

/* ---- pending inserts by key (open addressing; rebuilt when the batch's ops move) ---- */

#define HT_DEAD UINT32_MAX /* a cancelled entry: lookups go on past it */

static size_t ht_slot(const mg_sbatch *sb, int64_t sid, int64_t msg)
{
	uint64_t h = (uint64_t)msg * 0x9E3779B97F4A7C15ull ^ (uint64_t)sid * 0xC2B2AE3D27D4EB4Full;
	return (size_t)(h ^ (h >> 29)) & (sb->htcap - 1);
}

static struct pkey *ht_find(mg_sbatch *sb, int64_t sid, int64_t msg)
{
	if (!sb->htn)
		return NULL;
	for (size_t i = ht_slot(sb, sid, msg);; i = (i + 1) & (sb->htcap - 1)) {
		struct pkey *k = &sb->ht[i];
		if (!k->msg)
			return NULL;
		if (k->msg == msg && k->sid == sid)
			return k->idx == HT_DEAD ? NULL : k;
	}
}

static void ht_rebuild(mg_sbatch *sb);

static void ht_put(mg_sbatch *sb, int64_t sid, int64_t msg, size_t idx)
{
	if ((sb->htn + 1) * 2 > sb->htcap) { /* htn counts cancelled entries too */
		ht_rebuild(sb);
		if ((sb->htn + 1) * 2 > sb->htcap)
			return; /* no memory: the insert just cannot be cancelled */
	}
	for (size_t i = ht_slot(sb, sid, msg);; i = (i + 1) & (sb->htcap - 1)) {
		struct pkey *k = &sb->ht[i];
		if (!k->msg || (k->msg == msg && k->sid == sid)) {
			if (!k->msg)
				sb->htn++;
			*k = (struct pkey){ sid, msg, (uint32_t)idx };
			return;
		}
	}
}

/* Index again the live inserts of v (after v moved, or when full), at most a quarter full. */
static void ht_rebuild(mg_sbatch *sb)
{
	size_t live = 1, cap = 64;
	for (size_t i = 0; i < sb->n; i++)
		live += sb->v[i].kind == OP_Q_PUT || sb->v[i].kind == OP_MSG_PUT;
	while (cap < live * 4)
		cap *= 2;
	if (cap != sb->htcap) {
		struct pkey *nt = malloc(cap * sizeof *nt);
		if (!nt)
			return;
		free(sb->ht);
		sb->ht = nt;
		sb->htcap = cap;
	}
	memset(sb->ht, 0, sb->htcap * sizeof *sb->ht);
	sb->htn = 0;
	for (size_t i = 0; i < sb->n; i++) {
		const sop *o = &sb->v[i];
		if (o->kind == OP_Q_PUT || o->kind == OP_MSG_PUT)
			ht_put(sb, o->kind == OP_Q_PUT ? o->sid : 0, o->msg, i);
	}
}

/* The op of k does nothing any more: its row is not written. */
static void cancel(mg_sbatch *sb, struct pkey *k)
{
	sop *o = &sb->v[k->idx];
	if (o->kind == OP_MSG_PUT && o->m)
		atomic_fetch_sub(&o->m->store_pending, 1);
	if (o->m)
		mg_msg_unref(o->m);
	free(o->blob);
	o->m = NULL;
	o->blob = NULL;
	o->kind = 0;
	k->idx = HT_DEAD;
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

/*
 * Bodies shared across workers. m->store_refs counts the rows (queue, inq2, a delayed will) of
 * every worker that refer to m's body; m->store_id names the body and is kept when the body
 * row is deleted, so each row keeps its key. The body row goes when the count reaches zero
 * (mg_store_msg_unref), but the count may rise again afterwards: another worker queues a
 * QoS 0 copy for an offline session (queue_qos0_messages) from its inbox, or delivers a
 * retained message it took from the shared retained tree. Two rules keep every row's body:
 *  - the worker whose new row takes the count from zero writes the body again (same id, in
 *    its own batch, INSERT OR REPLACE), as does a worker that sees another worker's write of
 *    the body not yet committed (store_pending): its row could commit first;
 *  - a deletion re-reads the count inside its transaction and deletes nothing when a row
 *    refers to the body again. A count that rose after that read belongs to a worker whose
 *    write of the body can commit only after this transaction (SQLite has one writer at a
 *    time), so the body is written again after it is deleted.
 * So no worker copies a message to give it a body of its own, and a body is deleted only
 * when no row of any worker refers to it.
 */

/* A new row of this worker refers to m's body: counts it and returns the store id, writing
 * the body in this batch unless it is stored or being stored by this batch already. alloc
 * false (mg_store_pin): a message without a body gets none. */
static int64_t body_ref(mg_sbatch *sb, mg_msg *m, bool will, bool alloc)
{
	unsigned prev = atomic_fetch_add(&m->store_refs, 1);
	int64_t id = atomic_load(&m->store_id);
	bool put, fresh = false;
	if (!id && !alloc)
		return 0;
	if (!id) {
		/* the first body: two workers may race here (QoS 0 copies from their inboxes);
		 * the loser takes the winner's id and writes the body too, since its row may
		 * commit before the winner's body does */
		long long none = 0, nid = atomic_fetch_add(&sb->st->next_msg, 1);
		fresh = atomic_compare_exchange_strong(&m->store_id, &none, nid);
		id = fresh ? nid : none;
		put = true;
	} else {
		put = prev == 0 || atomic_load(&m->store_pending) != 0;
	}
	if (!put || sb->last_put == m)
		return id; /* stored, or written earlier in this batch */
	sop *o = push(sb, OP_MSG_PUT);
	if (o) {
		o->msg = id;
		o->m = mg_msg_ref(m);
		o->flag = will; /* a will's expiry starts when it is published: none yet */
		o->state = !fresh; /* a row of this id may be on disk: cancelling must delete it */
		atomic_fetch_add(&m->store_pending, 1); /* until this batch is released */
		sb->last_put = m;
		ht_put(sb, 0, id, sb->n - 1);
	}
	return id;
}

void mg_store_pin(mg_msg *m)
{
	mg_sbatch *sb = mg_store_tls;
	if (sb)
		body_ref(sb, m, false, false);
	else
		atomic_fetch_add(&m->store_refs, 1);
}

void mg_store_msg_unref(mg_msg *m)
{
	/* read while this reference holds it: the id of the row being dropped */
	int64_t id = atomic_load(&m->store_id);
	if (atomic_fetch_sub(&m->store_refs, 1) != 1)
		return;
	mg_sbatch *sb = mg_store_tls;
	if (!id || !sb)
		return;
	if (sb->last_put == m)
		sb->last_put = NULL; /* a later row of this batch writes the body again */
	struct pkey *k = ht_find(sb, 0, id);
	if (k) { /* written by this batch, not executed yet: not written at all */
		bool ondisk = sb->v[k->idx].state;
		cancel(sb, k);
		if (!ondisk)
			return;
	}
	sop *o = push(sb, OP_MSG_DEL);
	if (o) {
		o->msg = id;
		o->m = mg_msg_ref(m); /* its count is read again when the deletion executes */
	}
}

void mg_store_session_saved(mg_session *s)
{
	mg_sbatch *sb = mg_store_tls;
	if (!sb)
		return;
	mg_broker *b = NULL;
	if (s->expiry == 0) { /* does not outlive its connection (any more) */
		if (s->sid)
			mg_store_session_removed_(s);
		return;
	}
	b = s->conn ? s->conn->w->b : NULL;
	if (!s->sid) {
		s->sid = atomic_fetch_add(&sb->st->next_sid, 1);
		if (b)
			mg_sref_set_sid(b, s->ref, s->sid);
	}
	sop *o = push(sb, OP_SESS_PUT);
	if (!o)
		return;
	/* blob: the client id, then the user name (t2 bytes; -1: none), so acl_file sees the same
	 * user for deliveries into a session restored at start-up as before the restart */
	size_t ulen = s->username ? strlen(s->username) : 0;
	o->sid = s->sid;
	o->blob = malloc(s->id_len + ulen + 1);
	o->len = (uint32_t)s->id_len;
	o->qos = s->level;
	o->t1 = s->expiry;
	o->t2 = s->username ? (int64_t)ulen : -1;
	if (!o->blob) {
		sb->n--, sb->oom = true;
		return;
	}
	memcpy(o->blob, s->id, s->id_len);
	if (ulen)
		memcpy(o->blob + s->id_len, s->username, ulen);
}

void mg_store_session_removed_(mg_session *s)
{
	sop *o = push(mg_store_tls, OP_SESS_DEL);
	if (o)
		o->sid = s->sid;
	if (s->conn)
		mg_sref_set_sid(s->conn->w->b, s->ref, 0);
	s->sid = 0; /* its rows are gone: later deliveries are not written */
}

void mg_store_session_offline_(mg_session *s)
{
	sop *o = push(mg_store_tls, OP_SESS_EXP);
	if (!o)
		return;
	o->sid = s->sid;
	o->t1 = s->expiry;
	o->t2 = s->expire_at ? to_wall(mg_store_tls->st, s->expire_at) : 0;
}

void mg_store_will_(mg_session *s)
{
	mg_sbatch *sb = mg_store_tls;
	if (s->will && s->will_at && !s->will_stored) {
		int64_t id = body_ref(sb, s->will, true, true);
		s->will_stored = true;
		sop *o = push(sb, OP_WILL);
		if (!o)
			return;
		o->sid = s->sid;
		o->msg = id;
		o->t1 = to_wall(sb->st, s->will_at);
		o->t2 = s->will_expiry;
	}
}

void mg_store_will_clear_(mg_session *s, mg_msg *m)
{
	s->will_stored = false;
	sop *o = push(mg_store_tls, OP_WILL);
	if (o)
		o->sid = s->sid;
	mg_store_msg_unref(m);
}

void mg_store_shutdown(mg_worker *w)
{
	mg_sbatch *sb = mg_store_tls;
	if (!sb)
		return;
	int64_t now = mg_loop_now_ms(w->loop);
	for (mg_session *s = w->sessions; s; s = s->next) {
		if (!s->sid || !s->conn)
			continue;
		sop *o = push(sb, OP_SESS_EXP);
		if (!o)
			return;
		o->sid = s->sid;
		o->t1 = s->expiry;
		o->t2 = s->expiry == UINT32_MAX ? 0 : to_wall(sb->st, now + (int64_t)s->expiry * 1000);
	}
}

void mg_store_sub_added_(mg_session *s, const uint8_t *filter, size_t len, mg_subopts o_,
                         uint32_t sub_id)
{
	sop *o = push(mg_store_tls, OP_SUB_PUT);
	if (!o)
		return;
	o->sid = s->sid;
	o->blob = dup_bytes(filter, len);
	o->len = (uint32_t)len;
	o->qos = mg_subopts_byte(o_);
	o->t1 = sub_id;
	if (!o->blob)
		mg_store_tls->n--, mg_store_tls->oom = true;
}

void mg_store_sub_removed_(mg_session *s, const uint8_t *filter, size_t len)
{
	sop *o = push(mg_store_tls, OP_SUB_DEL);
	if (!o)
		return;
	o->sid = s->sid;
	o->blob = dup_bytes(filter, len);
	o->len = (uint32_t)len;
	if (!o->blob)
		mg_store_tls->n--, mg_store_tls->oom = true;
}

void mg_store_queued(int64_t sid, mg_qitem *q)
{
	mg_sbatch *sb = mg_store_tls;
	if (!sb)
		return;
	int64_t id = body_ref(sb, q->m, false, true);
	sop *o = push(sb, OP_Q_PUT);
	if (!o) {
		mg_store_msg_unref(q->m); /* the batch fails anyway (out of memory) */
		return;
	}
	q->stored = true;
	o->sid = sid;
	o->msg = id;
	o->qos = q->qos;
	o->flag = q->retain;
	ht_put(sb, sid, id, sb->n - 1);
	if (q->n_ids) {
		const uint32_t *ids = mg_qitem_ids(q);
		o->blob = malloc(4u * q->n_ids);
		if (o->blob) {
			for (uint16_t i = 0; i < q->n_ids; i++) {
				o->blob[4 * i] = (uint8_t)(ids[i] >> 24);
				o->blob[4 * i + 1] = (uint8_t)(ids[i] >> 16);
				o->blob[4 * i + 2] = (uint8_t)(ids[i] >> 8);
				o->blob[4 * i + 3] = (uint8_t)ids[i];
			}
			o->len = 4u * q->n_ids;
		}
	}
}

static void q_state(mg_session *s, const mg_qitem *q, uint16_t mid, uint8_t state)
{
	mg_sbatch *sb = mg_store_tls;
	int64_t id = atomic_load_explicit(&q->m->store_id, memory_order_relaxed);
	if (!s->sid || !id)
		return;
	/* Delivered before its row was written (an online subscriber of this worker): the
	 * queue row not yet written takes the packet id and state itself. */
	struct pkey *k = ht_find(sb, s->sid, id);
	if (k) {
		sb->v[k->idx].mid = mid;
		sb->v[k->idx].state = state;
		return;
	}
	/* a stored row's packet id: the PUBLISH goes only after it is committed, so a restart
	 * resends it with DUP and the same id */
	sb->need_full = true;
	sop *o = push(sb, OP_Q_STATE);
	if (!o)
		return;
	o->sid = s->sid;
	o->msg = id;
	o->mid = mid;
	o->state = state;
}

void mg_store_sent_(mg_session *s, const mg_qitem *q, uint16_t mid)
{
	q_state(s, q, mid, 1);
}

void mg_store_pubrec_(mg_session *s, const mg_qitem *q, uint16_t mid)
{
	q_state(s, q, mid, 2);
}

void mg_store_done_(mg_session *s, const mg_qitem *q)
{
	mg_sbatch *sb = mg_store_tls;
	int64_t id = q->m ? atomic_load_explicit(&q->m->store_id, memory_order_relaxed) : 0;
	if (!s->sid || !id)
		return;
	/* Finished before its row was written (acknowledged within the turn that queued it or
	 * the next, see "Rows a turn cancels"): the row is never written; nor is the body if
	 * this was its last row (mg_store_msg_unref). */
	struct pkey *k = ht_find(sb, s->sid, id);
	if (k) {
		cancel(sb, k);
		return;
	}
	sop *o = push(sb, OP_Q_DEL);
	if (o) {
		o->sid = s->sid;
		o->msg = id;
	}
}

void mg_store_inq2_put_(mg_session *s, uint16_t mid, mg_msg *m)
{
	mg_sbatch *sb = mg_store_tls;
	int64_t id = body_ref(sb, m, false, true);
	sop *o = push(sb, OP_INQ2_PUT);
	if (!o)
		return;
	o->sid = s->sid;
	o->mid = mid;
	o->msg = id;
}

void mg_store_inq2_del_(mg_session *s, uint16_t mid, mg_msg *m)
{
	sop *o = push(mg_store_tls, OP_INQ2_DEL);
	if (o) {
		o->sid = s->sid;
		o->mid = mid;
	}
	mg_store_msg_unref(m);
}

void mg_store_retained_(const uint8_t *topic, size_t len, mg_msg *m)
{
	if (len >= 4 && memcmp(topic, "$SYS", 4) == 0)
		return; /* the broker's own, rebuilt at start-up (mosquitto does not keep them either) */
	sop *o = push(mg_store_tls, m ? OP_RET_PUT : OP_RET_DEL);
	if (!o)
		return;
	if (m) {
		o->m = mg_msg_ref(m);
		return;
	}
	o->blob = dup_bytes(topic, len);
	o->len = (uint32_t)len;
	if (!o->blob)
		mg_store_tls->n--, mg_store_tls->oom = true;
}

/* ---- executing a batch ---- */

static void bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	if (p)
		sqlite3_bind_blob(st, i, n ? p : "", (int)n, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_time(sqlite3_stmt *st, int i, int64_t t)
{
	if (t)
		sqlite3_bind_int64(st, i, t);
	else
		sqlite3_bind_null(st, i);
}

static int step(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int grow(void **v, size_t *cap, size_t sz)
{
	size_t nc = *cap ? *cap * 2 : 256;
	void *nv = realloc(*v, nc * sz);
	if (!nv)
		return -1;
	*v = nv;
	*cap = nc;
	return 0;
}

/* The deletions of queue and msgs rows a batch collected, executed as ranges of consecutive
 * ids: a subscriber's PUBACKs of one turn mostly name messages routed together, whose store
 * ids follow each other, so one statement deletes a run of rows where one each would cost
 * the statement's overhead every time (a quarter of the SQL of a persistent QoS 1 message).
 * A range is a run of ids that follow each other by one in the order they were recorded (no
 * sort: acks come in order, and sorting cost more than it merged), so it holds only ids that
 * are being deleted and deletes exactly the rows the single deletions would have. Called before any other operation on
 * the same table, so the batch's order per table holds (a row deleted and written again in
 * one batch stays written). */
static int exec_deletes(mg_sbatch *sb, bool queue, bool msgs)
{
	int rc = SQLITE_OK;
	if (queue && sb->nqdel) {
		sqlite3_stmt *st = sb->stmt[ST_Q_DEL];
		for (size_t i = 0, j; rc == SQLITE_OK && i < sb->nqdel; i = j) {
			for (j = i + 1; j < sb->nqdel && sb->qdel[j].sid == sb->qdel[i].sid &&
			                sb->qdel[j].msg - sb->qdel[j - 1].msg == 1; j++)
				;
			sqlite3_bind_int64(st, 1, sb->qdel[i].sid);
			sqlite3_bind_int64(st, 2, sb->qdel[i].msg);
			sqlite3_bind_int64(st, 3, sb->qdel[j - 1].msg);
			rc = step(st);
		}
		sb->nqdel = 0;
	}
	if (msgs && sb->nmdel) {
		sqlite3_stmt *st = sb->stmt[ST_MSG_DEL];
		for (size_t i = 0, j; rc == SQLITE_OK && i < sb->nmdel; i = j) {
			for (j = i + 1; j < sb->nmdel && sb->mdel[j] - sb->mdel[j - 1] == 1; j++)
				;
			sqlite3_bind_int64(st, 1, sb->mdel[i]);
			sqlite3_bind_int64(st, 2, sb->mdel[j - 1]);
			rc = step(st);
		}
		sb->nmdel = 0;
	}
	return rc;
}

static void bind_msg_put(mg_sbatch *sb, sqlite3_stmt *st, int b, const sop *o)
{
	const mg_msg *m = o->m;
	sqlite3_bind_int64(st, b + 1, o->msg);
	bind_blob(st, b + 2, m->topic, m->topic_len);
	bind_blob(st, b + 3, m->payload, m->payload_len);
	bind_blob(st, b + 4, m->props_len ? m->props : NULL, m->props_len);
	sqlite3_bind_int(st, b + 5, m->qos);
	sqlite3_bind_int(st, b + 6, m->retain);
	bind_time(st, b + 7, m->has_expiry && !o->flag ? to_wall(sb->st, m->expire_at) : 0);
}

static void bind_q_put(sqlite3_stmt *st, int b, const sop *o)
{
	sqlite3_bind_int64(st, b + 1, o->sid);
	sqlite3_bind_int64(st, b + 2, o->msg);
	sqlite3_bind_int(st, b + 3, o->qos);
	sqlite3_bind_int(st, b + 4, o->flag);
	bind_blob(st, b + 5, o->len ? o->blob : NULL, o->len);
	sqlite3_bind_int(st, b + 6, o->mid);
	sqlite3_bind_int(st, b + 7, o->state);
}

/* The pending inserts of one table: PUT_ROWS at once, fewer one by one, in their order. */
static int exec_puts(mg_sbatch *sb, bool queue)
{
	const sop **v = queue ? sb->qput : sb->mput;
	int *n = queue ? &sb->nqput : &sb->nmput, rc = SQLITE_OK;
	if (*n == PUT_ROWS) {
		sqlite3_stmt *st = sb->stmt[queue ? ST_Q_PUTN : ST_MSG_PUTN];
		for (int i = 0; i < PUT_ROWS; i++)
			queue ? bind_q_put(st, i * PUT_COLS, v[i]) : bind_msg_put(sb, st, i * PUT_COLS, v[i]);
		rc = step(st);
	} else {
		sqlite3_stmt *st = sb->stmt[queue ? ST_Q_PUT : ST_MSG_PUT];
		for (int i = 0; rc == SQLITE_OK && i < *n; i++) {
			queue ? bind_q_put(st, 0, v[i]) : bind_msg_put(sb, st, 0, v[i]);
			rc = step(st);
		}
	}
	*n = 0;
	return rc;
}

/* Everything pending for the queue and/or msgs table, in the batch's order: inserts first
 * (a deletion pending beside an insert came after it: an insert executes the deletions
 * pending before it is held), then the deletions. */
static int exec_pending(mg_sbatch *sb, bool queue, bool msgs)
{
	int rc = SQLITE_OK;
	if (queue && sb->nqput)
		rc = exec_puts(sb, true);
	if (msgs && sb->nmput && rc == SQLITE_OK)
		rc = exec_puts(sb, false);
	if (rc == SQLITE_OK)
		rc = exec_deletes(sb, queue, msgs);
	return rc;
}

static int exec_op(mg_sbatch *sb, const sop *o)
{
	sqlite3_stmt *st;
	int rc;
	switch (o->kind) {
	case OP_MSG_PUT:
		if (sb->nmdel && (rc = exec_pending(sb, false, true)) != SQLITE_OK)
			return rc;
		sb->mput[sb->nmput++] = o;
		return sb->nmput == PUT_ROWS ? exec_puts(sb, false) : SQLITE_OK;
	case OP_MSG_DEL:
		if (atomic_load(&o->m->store_refs))
			return SQLITE_OK; /* referred to again: see "Bodies shared across workers" */
		if (sb->nmdel == sb->capmdel && grow((void **)&sb->mdel, &sb->capmdel, sizeof *sb->mdel) < 0) {
			st = sb->stmt[ST_MSG_DEL]; /* no memory for the set: one row at a time */
			sqlite3_bind_int64(st, 1, o->msg);
			sqlite3_bind_int64(st, 2, o->msg);
			return step(st);
		}
		sb->mdel[sb->nmdel++] = o->msg;
		return SQLITE_OK;
	case OP_Q_PUT:
		if (sb->nqdel && (rc = exec_pending(sb, true, false)) != SQLITE_OK)
			return rc;
		sb->qput[sb->nqput++] = o;
		return sb->nqput == PUT_ROWS ? exec_puts(sb, true) : SQLITE_OK;
	case OP_Q_STATE:
		if ((sb->nqput || sb->nqdel) && (rc = exec_pending(sb, true, false)) != SQLITE_OK)
			return rc;
		st = sb->stmt[ST_Q_STATE];
		sqlite3_bind_int64(st, 1, o->sid);
		sqlite3_bind_int64(st, 2, o->msg);
		sqlite3_bind_int(st, 3, o->mid);
		sqlite3_bind_int(st, 4, o->state);
		return step(st);
	case OP_Q_DEL:
		if (sb->nqdel == sb->capqdel && grow((void **)&sb->qdel, &sb->capqdel, sizeof *sb->qdel) < 0) {
			st = sb->stmt[ST_Q_DEL];
			sqlite3_bind_int64(st, 1, o->sid);
			sqlite3_bind_int64(st, 2, o->msg);
			sqlite3_bind_int64(st, 3, o->msg);
			return step(st);
		}
		sb->qdel[sb->nqdel++] = (struct qkey){ o->sid, o->msg };
		return SQLITE_OK;
	case OP_INQ2_PUT:
		st = sb->stmt[ST_INQ2_PUT];
		sqlite3_bind_int64(st, 1, o->sid);
		sqlite3_bind_int(st, 2, o->mid);
		sqlite3_bind_int64(st, 3, o->msg);
		return step(st);
	case OP_INQ2_DEL:
		st = sb->stmt[ST_INQ2_DEL];
		sqlite3_bind_int64(st, 1, o->sid);
		sqlite3_bind_int(st, 2, o->mid);
		return step(st);
	case OP_SESS_PUT:
		st = sb->stmt[ST_SESS_PUT];
		sqlite3_bind_int64(st, 1, o->sid);
		bind_blob(st, 2, o->blob, o->len);
		sqlite3_bind_int(st, 3, o->qos);
		sqlite3_bind_int64(st, 4, o->t1);
		if (o->t2 < 0)
			sqlite3_bind_null(st, 5);
		else
			sqlite3_bind_blob(st, 5, o->blob + o->len, (int)o->t2, SQLITE_STATIC);
		return step(st);
	case OP_SESS_DEL:
		if ((sb->nqput || sb->nqdel) && (rc = exec_pending(sb, true, false)) != SQLITE_OK)
			return rc;
		for (int k = ST_SESS_DEL1; k <= ST_SESS_DEL4; k++) {
			sqlite3_bind_int64(sb->stmt[k], 1, o->sid);
			if ((rc = step(sb->stmt[k])) != SQLITE_OK)
				return rc;
		}
		return SQLITE_OK;
	case OP_SESS_EXP:
		st = sb->stmt[ST_SESS_EXP];
		sqlite3_bind_int64(st, 1, o->sid);
		sqlite3_bind_int64(st, 2, o->t1);
		bind_time(st, 3, o->t2);
		return step(st);
	case OP_WILL:
		st = sb->stmt[ST_WILL];
		sqlite3_bind_int64(st, 1, o->sid);
		bind_time(st, 2, o->msg);
		bind_time(st, 3, o->t1);
		bind_time(st, 4, o->t2);
		return step(st);
	case OP_SUB_PUT:
		st = sb->stmt[ST_SUB_PUT];
		sqlite3_bind_int64(st, 1, o->sid);
		bind_blob(st, 2, o->blob, o->len);
		sqlite3_bind_int(st, 3, o->qos);
		sqlite3_bind_int64(st, 4, o->t1);
		return step(st);
	case OP_SUB_DEL:
		st = sb->stmt[ST_SUB_DEL];
		sqlite3_bind_int64(st, 1, o->sid);
		bind_blob(st, 2, o->blob, o->len);
		return step(st);
	case OP_RET_PUT: {
		const mg_msg *m = o->m;
		st = sb->stmt[ST_RET_PUT];
		bind_blob(st, 1, m->topic, m->topic_len);
		bind_blob(st, 2, m->payload, m->payload_len);
		bind_blob(st, 3, m->props_len ? m->props : NULL, m->props_len);
		sqlite3_bind_int(st, 4, m->qos);
		bind_time(st, 5, m->has_expiry ? to_wall(sb->st, m->expire_at) : 0);
		return step(st);
	}
	case OP_RET_DEL:
		st = sb->stmt[ST_RET_DEL];
		bind_blob(st, 1, o->blob, o->len);
		return step(st);
	}
	return SQLITE_OK;
}

/* The ops v[0..upto) are done with (executed, or lost with a failed batch); the rest move to
 * the front. */
static void release_ops_upto(mg_sbatch *sb, size_t upto)
{
	for (size_t i = 0; i < upto; i++) {
		if (sb->v[i].kind == OP_MSG_PUT && sb->v[i].m)
			atomic_fetch_sub(&sb->v[i].m->store_pending, 1);
		mg_msg_unref(sb->v[i].m);
		free(sb->v[i].blob);
	}
	if (upto < sb->n)
		memmove(sb->v, sb->v + upto, (sb->n - upto) * sizeof *sb->v);
	sb->n -= upto;
	sb->carry = sb->carry > upto ? sb->carry - upto : 0;
	sb->last_put = NULL;
	if (sb->htn)
		ht_rebuild(sb);
}

static void release_ops(mg_sbatch *sb)
{
	release_ops_upto(sb, sb->n);
}

static bool once_a_minute(atomic_llong *last)
{
	long long now = mg_now_ms(), prev = atomic_load(last);
	return (prev == 0 || now - prev >= 60000) && atomic_compare_exchange_strong(last, &prev, now);
}

/* A commit succeeded: if the store was failing, it is not any more. */
static void recovered(mg_store *st)
{
	/* the lines stay at most once a minute even when a nearly full disk makes this flap */
	if (atomic_load_explicit(&st->failing, memory_order_relaxed) && atomic_exchange(&st->failing, false) &&
	    once_a_minute(&st->recovered_logged))
		mg_log(MG_LOG_NOTICE, "Persistence: %s can be written again: QoS 1 and 2 messages are "
		       "accepted.", st->path);
}

/* The batch these connections were acknowledged against is not stored: their acknowledgements
 * must not leave. They are closed with their output dropped; each client resends what it has
 * no acknowledgement for when it reconnects. */
static void break_promises(mg_sbatch *sb)
{
	size_t n = sb->npromised;
	sb->npromised = 0; /* closing may record more operations: they go to the next batch */
	for (size_t i = 0; i < n; i++) {
		mg_conn *c = sb->promised[i];
		c->hold = c->hold_next = 0;
		mg_conn_drop_unstored(c);
	}
}

/* Holds of gen older than the batch's (all of them: every op is committed) are lifted: the
 * output behind them may go. */
static void release_holds(mg_sbatch *sb, bool all)
{
	size_t k = 0;
	for (size_t i = 0; i < sb->npromised; i++) {
		mg_conn *c = sb->promised[i];
		if (all || c->hold_gen != sb->gen) {
			c->hold = all ? 0 : c->hold_next;
			c->hold_next = 0;
			c->hold_gen = sb->gen;
			mg_conn_mark_dirty(c);
		}
		if (c->hold)
			sb->promised[k++] = c;
	}
	sb->npromised = k;
}

void mg_store_conn_gone(mg_conn *c)
{
	mg_sbatch *sb = mg_store_tls;
	c->hold = c->hold_next = 0;
	if (!sb)
		return;
	for (size_t i = 0; i < sb->npromised; i++)
		if (sb->promised[i] == c) {
			sb->promised[i] = sb->promised[--sb->npromised];
			return;
		}
}

void mg_store_need_full_(mg_sbatch *sb)
{
	sb->need_full = true;
}

void mg_store_promise_(mg_sbatch *sb, struct mg_conn *c)
{
	/* c's output from here on waits for the ops recorded so far (and those of this turn) */
	if (!sb->n)
		return; /* nothing recorded: nothing to wait for */
	if (c->hold) {
		if (c->hold_gen != sb->gen && !c->hold_next)
			c->hold_next = c->out_seq + 1; /* behind the older hold: lifted a turn later */
		return;
	}
	c->hold = c->out_seq + 1;
	c->hold_gen = sb->gen;
	if (sb->npromised == sb->cappromised) {
		size_t nc = sb->cappromised ? sb->cappromised * 2 : 16;
		struct mg_conn **v = realloc(sb->promised, nc * sizeof *v);
		if (!v) {
			sb->oom = true; /* the batch will count as failed: nothing is promised wrongly */
			return;
		}
		sb->promised = v;
		sb->cappromised = nc;
	}
	sb->promised[sb->npromised++] = c;
}

bool mg_store_failing_(mg_sbatch *sb)
{
	mg_store *st = sb->st;
	if (!atomic_load_explicit(&st->failing, memory_order_relaxed))
		return false;
	int64_t now = mg_now_ms();
	int64_t last = atomic_load_explicit(&st->probe_at, memory_order_relaxed);
	if (now - last < 1000 ||
	    !atomic_compare_exchange_strong_explicit(&st->probe_at, &last, now, memory_order_relaxed,
	                                             memory_order_relaxed))
		return true; /* not due, or another worker probes now */
	/* a write of the header page: as much as the smallest batch needs */
	char q[96];
	snprintf(q, sizeof q, "BEGIN IMMEDIATE; PRAGMA user_version = %d; COMMIT", MG_STORE_SCHEMA_VERSION);
	if (sqlite3_exec(sb->db, q, NULL, NULL, NULL) != SQLITE_OK) {
		if (!sqlite3_get_autocommit(sb->db))
			sqlite3_exec(sb->db, "ROLLBACK", NULL, NULL, NULL);
		return true;
	}
	recovered(st);
	return false;
}

void mg_store_refused(const char *client_id)
{
	mg_store *st = mg_store_tls ? mg_store_tls->st : NULL;
	if (st && once_a_minute(&st->refused_logged))
		mg_log(MG_LOG_WARNING, "Warning: persistence: refused a QoS 1/2 message from %s: %s cannot "
		       "be written. This line repeats at most once a minute.", client_id, st->path);
}

/* Executes v[0..upto) in one transaction (none when all of them were cancelled). */
static int exec_upto(mg_sbatch *sb, size_t upto)
{
	size_t i = 0;
	while (i < upto && !sb->v[i].kind)
		i++;
	sb->wrote = i < upto;
	if (i == upto)
		return SQLITE_OK;
	int rc = step(sb->stmt[ST_BEGIN]);
	if (rc == SQLITE_OK) {
		for (; i < upto; i++)
			if ((rc = exec_op(sb, &sb->v[i])) != SQLITE_OK)
				break;
		if (rc == SQLITE_OK)
			rc = exec_pending(sb, true, true);
		sb->nqdel = sb->nmdel = 0; /* after a failure too */
		sb->nqput = sb->nmput = 0;
		if (rc == SQLITE_OK)
			rc = step(sb->stmt[ST_COMMIT]);
		if (rc != SQLITE_OK && !sqlite3_get_autocommit(sb->db))
			step(sb->stmt[ST_ROLLBACK]);
	}
	return rc;
}

/* A batch could not be stored: everything in it is dropped, carried ops too, and every
 * connection acknowledged against it is closed before its acknowledgement leaves. */
static void batch_failed(mg_sbatch *sb, int rc)
{
	mg_store *st = sb->st;
	if (once_a_minute(&st->failed_logged))
		mg_log(MG_LOG_ERR, "Error: persistence: %s writing %s (%zu changes not stored): QoS 1 "
		       "and 2 messages are refused until it can be written again (MQTT 5 clients get "
		       "0x97 Quota exceeded, 3.x clients are disconnected). Free space on its disk. "
		       "This line repeats at most once a minute.",
		       rc != SQLITE_OK ? sqlite3_errstr(rc) : "out of memory", st->path, sb->n);
	atomic_store_explicit(&st->probe_at, mg_now_ms(), memory_order_relaxed); /* probe in 1 s */
	atomic_store(&st->failing, true);
	sb->oom = false;
	sb->need_full = false;
	/* the bodies this batch wrote are not on disk: a later reference writes them again
	 * (routing and incoming QoS 2 record a body on the worker that accepted it, this one) */
	for (size_t k = 0; k < sb->n; k++)
		if (sb->v[k].kind == OP_MSG_PUT && sb->v[k].m)
			atomic_store_explicit(&sb->v[k].m->store_id, 0, memory_order_relaxed);
	release_ops(sb);
	sb->gen++;
	break_promises(sb);
}

void mg_store_commit_now(mg_sbatch *sb)
{
	int rc = sb->oom ? SQLITE_NOMEM : exec_upto(sb, sb->n);
	if (rc != SQLITE_OK) {
		batch_failed(sb, rc);
		return;
	}
	bool wrote = sb->wrote;
	release_ops(sb);
	sb->need_full = false;
	release_holds(sb, true);
	sb->gen++;
	if (wrote)
		recovered(sb->st);
}

/* One of v[from..to) is the queue row of a message sent and not yet acknowledged. */
static bool awaits_ack(const mg_sbatch *sb, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (sb->v[i].kind == OP_Q_PUT && sb->v[i].state == 1)
			return true;
	return false;
}

void mg_store_turn_end(mg_sbatch *sb, bool full, int64_t now)
{
	if (full || sb->need_full || sb->oom) {
		mg_store_commit_now(sb);
		sb->carry_since = now;
		return;
	}
	/* The ops carried from earlier turns, less what was cancelled since, wait for
	 * acknowledgements up to CARRY_MS, while there is one to wait for (a queue row of a
	 * message sent and not yet acknowledged); then they are committed and this turn's are
	 * carried. */
	if (awaits_ack(sb, 0, sb->carry) && now - sb->carry_since < CARRY_MS)
		return;
	if (!awaits_ack(sb, sb->carry, sb->n)) {
		/* nothing of this turn can be cancelled: no reason to hold anything longer */
		mg_store_commit_now(sb);
		sb->carry_since = now;
		return;
	}
	sb->carry_since = now;
	int rc = exec_upto(sb, sb->carry);
	if (rc != SQLITE_OK) {
		batch_failed(sb, rc);
		return;
	}
	bool wrote = sb->wrote;
	release_ops_upto(sb, sb->carry);
	release_holds(sb, false);
	sb->carry = sb->n;
	sb->gen++;
	if (wrote)
		recovered(sb->st);
}

int mg_store_carrying(const mg_sbatch *sb)
{
	return sb->n || sb->npromised ? (sb->carry ? 1 : 0) : -1;
}

void mg_store_before_write_(mg_sbatch *sb)
{
	if (sb->need_full || sb->oom)
		mg_store_commit_now(sb);
}

/* ---- opening ---- */

char *mg_store_path(const mg_config *cfg)
{
	const char *dir = cfg->persistence_location ? cfg->persistence_location : "";
	const char *file = cfg->persistence_file ? cfg->persistence_file : "midge.db";
	size_t dl = strlen(dir);
	char *p = malloc(dl + strlen(file) + 2);
	if (p)
		sprintf(p, "%s%s%s", dir, dl && dir[dl - 1] != '/' ? "/" : "", file);
	return p;
}

static int exec(sqlite3 *db, const char *q)
{
	return sqlite3_exec(db, q, NULL, NULL, NULL);
}

static int kind_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return MG_STORE_E_CORRUPT;
	case SQLITE_NOMEM:
		return MG_STORE_E_NOMEM;
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_READONLY:
		return MG_STORE_E_OPEN;
	default:
		return MG_STORE_E_IO;
	}
}

static int open_conn(const char *path, bool fsync, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(db, 60000);
		sqlite3_extended_result_codes(db, 1);
		rc = exec(db, fsync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
	}
	if (rc != SQLITE_OK) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return SQLITE_OK;
}

static void config_sqlite(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int pragma_int(sqlite3 *db, const char *q, int *v)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, q, -1, &s, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		*v = sqlite3_column_int(s, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	return rc;
}

/* mosquitto's persistence file starts with these 15 bytes (its src/persist_read.c). */
static bool is_mosquitto_db(const char *path)
{
	static const uint8_t magic[15] = {0x00, 0xB5, 0x00, 'm', 'o', 's', 'q', 'u', 'i', 't', 't', 'o', ' ', 'd', 'b'};
	uint8_t b[15];
	FILE *f = fopen(path, "rb");
	bool yes = f && fread(b, 1, sizeof b, f) == sizeof b && memcmp(b, magic, sizeof b) == 0;
	if (f)
		fclose(f);
	return yes;
}

/* ---- the clean-shutdown marker ----
 * PRAGMA quick_check reads every page (about 0.45 s per million rows on the 2-core test
 * machine). After a clean shutdown the whole store is in the file (the last connection's
 * close checkpoints the WAL and deletes it), and midge writes FILE-clean with the file's size
 * and a 64-bit checksum of its bytes. At the next start a file whose size and checksum match
 * is the one midge closed, page for page: the check is skipped, and reading the file for the
 * checksum costs a sequential read at memory speed (the pages recovery reads next anyway).
 * After a crash (no marker, or a -wal file beside it) or any change to the file since (a bad
 * disk, a copy cut short, garbage written into it) the check runs as before. The marker is
 * removed before the store is written again, so it never speaks for a later state. */

static char *marker_path(const char *path)
{
	size_t n = strlen(path);
	char *m = malloc(n + sizeof "-clean");
	if (m)
		memcpy(m, path, n), memcpy(m + n, "-clean", sizeof "-clean");
	return m;
}

/* Four independent lanes of multiply-rotate over 64-bit words (about 5 GB/s): a checksum
 * against accidental damage, not against an adversary (who could write a valid file). */
static int file_sum(const char *path, uint64_t *sum, int64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	enum { BUF = 1 << 20 };
	uint64_t *buf = malloc(BUF), h[4] = { 1, 2, 3, 4 };
	int64_t total = 0;
	ssize_t r = -1;
	while (buf && (r = read(fd, buf, BUF)) > 0) {
		size_t words = (size_t)r / 8, k = 0;
		if (r % 8) /* the file is pages; a tail is zero-padded */
			memset((char *)buf + r, 0, 8 - (size_t)(r % 8)), words++;
		for (; k + 4 <= words; k += 4)
			for (int l = 0; l < 4; l++) {
				uint64_t x = (h[l] ^ buf[k + l]) * 0x9E3779B97F4A7C15ull;
				h[l] = x << 29 | x >> 35;
			}
		for (; k < words; k++) {
			uint64_t x = (h[0] ^ buf[k]) * 0x9E3779B97F4A7C15ull;
			h[0] = x << 29 | x >> 35;
		}
		total += r;
	}
	free(buf);
	close(fd);
	if (r != 0)
		return -1;
	*sum = (h[0] * 31 + h[1]) * 31 + (h[2] * 31 + h[3]) + (uint64_t)total;
	*size = total;
	return 0;
}

/* Whether the marker says path is exactly as a clean shutdown left it; removes the marker. */
static bool clean_since_close(const char *path)
{
	char *mp = marker_path(path), wal[4096];
	if (!mp)
		return false;
	bool ok = false;
	FILE *f = fopen(mp, "r");
	unsigned long long want_sum;
	long long want_size;
	struct stat sb;
	snprintf(wal, sizeof wal, "%s-wal", path);
	if (f && fscanf(f, "midge clean shutdown %lld %llx", &want_size, &want_sum) == 2 &&
	    !(stat(wal, &sb) == 0 && sb.st_size > 0)) {
		uint64_t sum;
		int64_t size;
		if (file_sum(path, &sum, &size) == 0 && size == want_size && sum == want_sum)
			ok = true;
	}
	if (f)
		fclose(f);
	unlink(mp);
	free(mp);
	return ok;
}

static void write_marker(const char *path)
{
	char *mp = marker_path(path), wal[4096];
	uint64_t sum;
	int64_t size;
	snprintf(wal, sizeof wal, "%s-wal", path);
	if (mp && access(wal, F_OK) != 0 && file_sum(path, &sum, &size) == 0) {
		FILE *f = fopen(mp, "w");
		if (f) {
			fprintf(f, "midge clean shutdown %lld %llx\n", (long long)size, (unsigned long long)sum);
			if (fclose(f) != 0)
				unlink(mp); /* a torn marker would only fail to match; none is tidier */
		}
	}
	free(mp);
}

void mg_store_closing_cleanly(mg_store *st)
{
	if (st)
		st->clean_exit = true;
}

int mg_store_open(const char *path, bool fsync, mg_store **out, char *err, size_t errlen)
{
	*out = NULL;
	/* Before SQLite's first use: no memory statistics, whose global mutex every allocation
	 * of every connection would take (5% of the broker's time in pairs10-q1-persist). */
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, config_sqlite);
	mg_store *st = calloc(1, sizeof *st);
	if (!st || !(st->path = strdup(path))) {
		free(st);
		snprintf(err, errlen, "out of memory");
		return MG_STORE_E_NOMEM;
	}
	st->fsync = fsync;
	st->wall_off = wall_ms() - mg_now_ms();
	pthread_mutex_init(&st->ckpt_mu, NULL);
	pthread_cond_init(&st->ckpt_cv, NULL);
	if (is_mosquitto_db(path)) {
		snprintf(err, errlen, "%s is mosquitto's persistence file, not midge's: import it with "
		         "`midge_db import %s NEW_FILE` and point persistence_file at NEW_FILE (midge leaves "
		         "it as it is)", path, path);
		mg_store_close(st);
		return MG_STORE_E_FOREIGN;
	}
	int rc = open_conn(path, fsync, &st->db);
	const char *what = "opening";
	int ver = -1, app = 0, tables = 0;
	if (rc == SQLITE_OK) {
		what = "reading";
		rc = pragma_int(st->db, "PRAGMA user_version", &ver);
		if (rc == SQLITE_OK)
			rc = pragma_int(st->db, "PRAGMA application_id", &app);
		if (rc == SQLITE_OK)
			rc = pragma_int(st->db, "SELECT count(*) FROM sqlite_master", &tables);
	}
	if (rc == SQLITE_OK && app != MG_STORE_APPLICATION_ID && (app != 0 || tables != 0)) {
		snprintf(err, errlen, "%s is an SQLite database but not midge's (application_id %#x): midge "
		         "leaves it as it is; point persistence_file at another file", path, (unsigned)app);
		mg_store_close(st);
		return MG_STORE_E_FOREIGN;
	}
	/* A newer midge's file is refused, not opened read-only and not moved aside: this midge
	 * cannot keep its promises without writing, and writing could break what the newer schema
	 * means; moving it aside would throw away the state of a user who only downgraded. */
	if (rc == SQLITE_OK && ver > MG_STORE_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s was written by a newer midge (schema version %d, this midge knows "
		         "up to %d): run that midge, or move the file away to start with an empty store "
		         "(midge leaves it as it is)", path, ver, MG_STORE_SCHEMA_VERSION);
		mg_store_close(st);
		return MG_STORE_E_NEWER;
	}
	/* Every page is read before anything is loaded, so damage is found while nothing is in
	 * memory yet (docs/persistence.md "Failure modes"). The cost: ~0.45 s per million rows
	 * on the 2-core test machine, on top of reading them for recovery. */
	bool clean = rc == SQLITE_OK && ver >= 1 && clean_since_close(path);
	if (clean)
		mg_log(MG_LOG_NOTICE, "Persistence: %s is as midge closed it (size and checksum match): "
		       "integrity check skipped.", path);
	else if (rc == SQLITE_OK && ver >= 1)
		mg_log(MG_LOG_NOTICE, "Persistence: checking %s page by page (it was not closed cleanly, "
		       "or it changed since).", path);
	if (rc == SQLITE_OK && ver >= 1 && !clean) {
		sqlite3_stmt *q = NULL;
		rc = sqlite3_prepare_v2(st->db, "PRAGMA quick_check(1)", -1, &q, NULL);
		if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
			const char *r = (const char *)sqlite3_column_text(q, 0);
			rc = r && strcmp(r, "ok") == 0 ? SQLITE_OK : SQLITE_CORRUPT;
			if (rc != SQLITE_OK)
				snprintf(err, errlen, "%s is damaged: %s", path, r ? r : "?");
		}
		sqlite3_finalize(q);
		if (rc != SQLITE_OK) {
			if (rc != SQLITE_CORRUPT)
				snprintf(err, errlen, "checking %s: %s", path, sqlite3_errmsg(st->db));
			mg_store_close(st);
			return kind_of(rc);
		}
	}
	if (rc == SQLITE_OK)
		rc = exec(st->db, "PRAGMA journal_mode = WAL");
	if (rc == SQLITE_OK && ver < MG_STORE_SCHEMA_VERSION) {
		char set[128];
		snprintf(set, sizeof set, "PRAGMA user_version = %d; PRAGMA application_id = %d",
		         MG_STORE_SCHEMA_VERSION, MG_STORE_APPLICATION_ID);
		what = "creating the tables of";
		rc = exec(st->db, "BEGIN IMMEDIATE");
		if (rc == SQLITE_OK)
			rc = exec(st->db, MG_STORE_SCHEMA_SQL);
		/* version 1 -> 2: sessions.username. In the same transaction as the version bump, so a
		 * crash leaves either the old file or the migrated one. */
		if (rc == SQLITE_OK && ver == 1)
			rc = exec(st->db, MG_STORE_MIGRATE_1_2_SQL);
		if (rc == SQLITE_OK)
			rc = exec(st->db, set);
		if (rc == SQLITE_OK)
			rc = exec(st->db, "COMMIT");
		else
			exec(st->db, "ROLLBACK");
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s %s: %s", what, path, st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		mg_store_close(st);
		return kind_of(rc);
	}
	*out = st;
	return MG_STORE_OK;
}

enum { CKPT_PAGES = 1000 }; /* SQLite's own wal_autocheckpoint default: about 4 MiB */

static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
	mg_store *st = ud;
	(void)db;
	(void)name;
	atomic_store_explicit(&st->wal_pages, pages, memory_order_relaxed);
	if (pages >= CKPT_PAGES) {
		pthread_mutex_lock(&st->ckpt_mu);
		pthread_cond_signal(&st->ckpt_cv);
		pthread_mutex_unlock(&st->ckpt_mu);
	}
	return SQLITE_OK;
}

/* PASSIVE: never waits for a writer and never makes one wait; what it cannot copy now it
 * copies next time. The start-up connection (st->db) is this thread's from now on. */
static void *ckpt_main(void *arg)
{
	mg_store *st = arg;
	pthread_mutex_lock(&st->ckpt_mu);
	while (!st->ckpt_stop) {
		if (atomic_load_explicit(&st->wal_pages, memory_order_relaxed) < CKPT_PAGES) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&st->ckpt_cv, &st->ckpt_mu, &ts);
			continue;
		}
		atomic_store_explicit(&st->wal_pages, 0, memory_order_relaxed);
		pthread_mutex_unlock(&st->ckpt_mu);
		sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&st->ckpt_mu);
	}
	pthread_mutex_unlock(&st->ckpt_mu);
	return NULL;
}

void mg_store_close(mg_store *st)
{
	if (!st)
		return;
	if (st->ckpt_running) {
		pthread_mutex_lock(&st->ckpt_mu);
		st->ckpt_stop = true;
		pthread_cond_signal(&st->ckpt_cv);
		pthread_mutex_unlock(&st->ckpt_mu);
		pthread_join(st->ckpt, NULL);
	}
	for (int i = 0; i < st->nwb; i++) {
		mg_sbatch *sb = &st->wb[i];
		release_ops(sb);
		free(sb->v);
		free(sb->qdel);
		free(sb->ht);
		free(sb->mdel);
		free(sb->promised);
		for (int k = 0; k < ST_N; k++)
			sqlite3_finalize(sb->stmt[k]);
		sqlite3_close(sb->db);
	}
	free(st->wb);
	/* the last connection: checkpoints the WAL into the file and deletes it */
	if (sqlite3_close(st->db) == SQLITE_OK && st->clean_exit && !atomic_load(&st->failing))
		write_marker(st->path);
	pthread_mutex_destroy(&st->ckpt_mu);
	pthread_cond_destroy(&st->ckpt_cv);
	free(st->path);
	free(st);
}

void mg_store_worker_start(mg_worker *w)
{
	mg_store *st = w->b->store;
	mg_store_tls = st && w->idx < st->nwb ? &st->wb[w->idx] : NULL;
}

void mg_store_worker_stop(mg_worker *w)
{
	(void)w;
	mg_store_commit();
	mg_store_tls = NULL;
}

/* ---- start-up ---- */

typedef struct idmap {
	int64_t *id;
	void **p;
	size_t n, cap;
} idmap;

/* Rows come in id order: appending keeps the map sorted. */
static int idmap_add(idmap *mp, int64_t id, void *p)
{
	if (mp->n == mp->cap) {
		size_t nc = mp->cap ? mp->cap * 2 : 1024;
		int64_t *ni = realloc(mp->id, nc * sizeof *ni);
		if (!ni)
			return -ENOMEM;
		mp->id = ni;
		void **np = realloc(mp->p, nc * sizeof *np);
		if (!np)
			return -ENOMEM;
		mp->p = np;
		mp->cap = nc;
	}
	mp->id[mp->n] = id;
	mp->p[mp->n++] = p;
	return 0;
}

static void *idmap_get(const idmap *mp, int64_t id)
{
	size_t lo = 0, hi = mp->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (mp->id[mid] < id)
			lo = mid + 1;
		else if (mp->id[mid] > id)
			hi = mid;
		else
			return mp->p[mid];
	}
	return NULL;
}

static mg_msg *row_msg(mg_store *st, sqlite3_stmt *q, int c, uint8_t qos, bool retain, int64_t now_wall)
{
	/* columns c..c+3: topic, payload, props, expire_at */
	const void *t = sqlite3_column_blob(q, c);
	int tl = sqlite3_column_bytes(q, c);
	const void *p = sqlite3_column_blob(q, c + 1);
	int pl = sqlite3_column_bytes(q, c + 1);
	const void *pr = sqlite3_column_blob(q, c + 2);
	int prl = sqlite3_column_bytes(q, c + 2);
	bool has_exp = sqlite3_column_type(q, c + 3) != SQLITE_NULL;
	int64_t exp = has_exp ? sqlite3_column_int64(q, c + 3) : 0;
	if (tl <= 0 || tl > 65535 || (has_exp && exp <= now_wall))
		return NULL;
	return mg_msg_new_raw(t, (size_t)tl, p, (size_t)pl, pr, (size_t)prl, qos, retain, has_exp,
	                      has_exp ? to_mono(st, exp) : 0);
}

typedef struct rec_counts {
	size_t retained, sessions, subs, queued, inflight, inq2, wills, dropped;
} rec_counts;

static int load_retained(mg_broker *b, mg_store *st, int64_t now_wall, rec_counts *n)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(st->db, "SELECT qos, topic, payload, props, expire_at FROM retained", -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		mg_msg *m = row_msg(st, q, 1, (uint8_t)sqlite3_column_int(q, 0), true, now_wall);
		if (!m) {
			n->dropped++;
			continue;
		}
		if (m->payload_len && mg_retain_set(b->retain, m->topic, m->topic_len, m) == 0)
			n->retained++;
		mg_msg_unref(m);
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int load_msgs(mg_store *st, int64_t now_wall, idmap *msgs)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(st->db, "SELECT id, qos, retain, topic, payload, props, expire_at FROM msgs "
	                            "ORDER BY id", -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		/* an expired body is left out: the rows that refer to it are dropped */
		mg_msg *m = row_msg(st, q, 3, (uint8_t)sqlite3_column_int(q, 1), sqlite3_column_int(q, 2), now_wall);
		if (!m)
			continue;
		atomic_store(&m->store_id, sqlite3_column_int64(q, 0));
		if (idmap_add(msgs, sqlite3_column_int64(q, 0), m) < 0) {
			mg_msg_unref(m);
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int load_sessions(mg_broker *b, mg_store *st, int64_t now_wall, idmap *msgs, idmap *sess,
                         rec_counts *n)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(st->db, "SELECT sid, client_id, level, expiry, expire_at, will_msg, will_at, "
	                            "will_expiry, username FROM sessions ORDER BY sid", -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	int64_t now = mg_now_ms();
	size_t k = 0;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t sid = sqlite3_column_int64(q, 0);
		const char *id = sqlite3_column_blob(q, 1);
		int idlen = sqlite3_column_bytes(q, 1);
		int64_t expiry = sqlite3_column_int64(q, 3);
		if (idlen > 65535 || expiry <= 0 || expiry > UINT32_MAX)
			continue;
		mg_worker *w = &b->w[k++ % (size_t)b->nworkers];
		int owner;
		mg_session *s = mg_session_create(w, id ? id : "", (size_t)idlen, &owner);
		if (!s)
			continue; /* a duplicate id cannot be: client_id is UNIQUE */
		s->sid = sid;
		mg_sref_set_sid(b, s->ref, sid);
		s->level = (uint8_t)sqlite3_column_int(q, 2);
		s->expiry = (uint32_t)expiry;
		if (sqlite3_column_type(q, 8) != SQLITE_NULL) {
			const char *u = sqlite3_column_blob(q, 8);
			s->username = strndup(u ? u : "", (size_t)sqlite3_column_bytes(q, 8));
			if (!s->username) {
				rc = SQLITE_NOMEM;
				break;
			}
		}
		if (s->expiry != UINT32_MAX) {
			/* NULL: it was online when the broker died; its expiry runs from now */
			int64_t at = sqlite3_column_type(q, 4) == SQLITE_NULL ? now_wall + expiry * 1000
			                                                      : sqlite3_column_int64(q, 4);
			s->expire_at = to_mono(st, at);
			if (s->expire_at <= 0)
				s->expire_at = 1; /* long past: expires at the first tick */
		}
		mg_msg *will = sqlite3_column_type(q, 5) == SQLITE_NULL ? NULL
		             : idmap_get(msgs, sqlite3_column_int64(q, 5));
		if (will) {
			uint32_t wexp = (uint32_t)sqlite3_column_int64(q, 7);
			mg_session_set_will(s, mg_msg_ref(will), will->qos, will->retain, 1, wexp);
			will->has_expiry = wexp != 0;
			will->expire_at = wexp ? INT64_MAX : 0;
			int64_t at = to_mono(st, sqlite3_column_int64(q, 6));
			s->will_at = at > 0 ? at : 1;
			s->will_stored = true;
			atomic_fetch_add(&will->store_refs, 1);
			n->wills++;
		}
		(void)now;
		if (idmap_add(sess, sid, s) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		n->sessions++;
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int load_subs(mg_broker *b, mg_store *st, idmap *sess, rec_counts *n)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(st->db, "SELECT sid, filter, opts, sub_id FROM subs", -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		mg_session *s = idmap_get(sess, sqlite3_column_int64(q, 0));
		const uint8_t *f = sqlite3_column_blob(q, 1);
		int fl = sqlite3_column_bytes(q, 1);
		if (!s || !f || fl <= 0 || fl > 65535)
			continue;
		int ob = sqlite3_column_int(q, 2);
		mg_subopts o = { .qos = (uint8_t)(ob & 3), .no_local = (ob >> 2) & 1,
		                 .retain_as_published = (ob >> 3) & 1, .retain_handling = (uint8_t)((ob >> 4) & 3) };
		if (o.qos > 2)
			continue;
		int r = mg_subtree_add(b->tree, f, (size_t)fl, s->ref, o, (uint32_t)sqlite3_column_int64(q, 3));
		if (r < 0)
			continue;
		if (r == 0 && mg_fset_add(&s->subs, f, (size_t)fl) < 0) {
			mg_subtree_remove(b->tree, f, (size_t)fl, s->ref);
			continue;
		}
		n->subs++;
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int load_queue(mg_store *st, idmap *msgs, idmap *sess, rec_counts *n)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(st->db, "SELECT sid, msg, qos, retain, sub_ids, mid, state FROM queue "
	                            "ORDER BY sid, msg", -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		mg_session *s = idmap_get(sess, sqlite3_column_int64(q, 0));
		mg_msg *m = idmap_get(msgs, sqlite3_column_int64(q, 1));
		int qos = sqlite3_column_int(q, 2), state = sqlite3_column_int(q, 6);
		int mid = sqlite3_column_int(q, 5);
		/* QoS 0 rows: queue_qos0_messages, queued for an offline session, never in flight */
		if (!s || !m || qos < 0 || qos > 2 || state < 0 || state > 2 || (qos == 0 && state != 0) ||
		    (state && (mid < 1 || mid > 65535)))
			continue; /* deleted below as a leftover */
		mg_qitem it = { .m = mg_msg_ref(m), .qos = (uint8_t)qos, .retain = sqlite3_column_int(q, 3) != 0,
		                .stored = true };
		const uint8_t *ids = sqlite3_column_blob(q, 4);
		int idl = sqlite3_column_bytes(q, 4);
		if (ids && idl >= 4) {
			uint16_t k = (uint16_t)(idl / 4 > 65535 ? 65535 : idl / 4);
			uint32_t *v = malloc(k * sizeof *v);
			if (v) {
				for (uint16_t i = 0; i < k; i++)
					v[i] = (uint32_t)ids[4 * i] << 24 | (uint32_t)ids[4 * i + 1] << 16 |
					       (uint32_t)ids[4 * i + 2] << 8 | ids[4 * i + 3];
				mg_qitem_set_ids(&it, v, k);
				free(v);
			}
		}
		atomic_fetch_add(&m->store_refs, 1);
		int r;
		if (state == 0) {
			r = mg_qring_push(&s->queue, &it);
			if (r == 0) {
				s->qbytes += m->payload_len;
				n->queued++;
			}
		} else {
			mg_flight f = { .it = it, .mid = (uint16_t)mid,
			                .state = state == 2 ? MG_FL_PUBCOMP : qos == 1 ? MG_FL_PUBACK : MG_FL_PUBREC };
			r = mg_fring_push(&s->flight, &f);
			if (r == 0) {
				if (state == 1)
					s->flight_bytes += m->payload_len;
				if ((uint16_t)(mid + 1) != 0 && s->next_mid <= mid)
					s->next_mid = (uint16_t)(mid + 1);
				n->inflight++;
			}
		}
		if (r < 0) {
			mg_qitem_clear(&it); /* its store reference goes with it */
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int load_inq2(mg_store *st, idmap *msgs, idmap *sess, rec_counts *n)
{
	sqlite3_stmt *q;
	int rc = sqlite3_prepare_v2(st->db, "SELECT sid, mid, msg FROM inq2", -1, &q, NULL);
	if (rc != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		mg_session *s = idmap_get(sess, sqlite3_column_int64(q, 0));
		mg_msg *m = idmap_get(msgs, sqlite3_column_int64(q, 2));
		int mid = sqlite3_column_int(q, 1);
		if (!s || !m || mid < 1 || mid > 65535)
			continue;
		if (s->n_inq2 == s->cap_inq2) {
			uint32_t nc = s->cap_inq2 ? s->cap_inq2 * 2 : 8;
			mg_inq2 *v = realloc(s->inq2, nc * sizeof *v);
			if (!v) {
				rc = SQLITE_NOMEM;
				break;
			}
			s->inq2 = v;
			s->cap_inq2 = nc;
		}
		s->inq2[s->n_inq2++] = (mg_inq2){ .mid = (uint16_t)mid, .m = mg_msg_ref(m) };
		atomic_fetch_add(&m->store_refs, 1);
		n->inq2++;
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Rows nobody refers to any more (a crash between the commits of two workers, an expired
 * body) go; so do the bodies that nothing in memory refers to. */
static int sweep(mg_store *st, int64_t now_wall)
{
	static const char *const q[] = {
		"DELETE FROM sessions WHERE expiry <= 0",
		"DELETE FROM subs WHERE sid NOT IN (SELECT sid FROM sessions)",
		"DELETE FROM queue WHERE sid NOT IN (SELECT sid FROM sessions) OR msg NOT IN (SELECT id FROM msgs)",
		"DELETE FROM inq2 WHERE sid NOT IN (SELECT sid FROM sessions) OR msg NOT IN (SELECT id FROM msgs)",
		"UPDATE sessions SET will_msg = NULL, will_at = NULL WHERE will_msg NOT IN (SELECT id FROM msgs)",
	};
	int rc = exec(st->db, "BEGIN IMMEDIATE");
	char buf[160];
	snprintf(buf, sizeof buf, "DELETE FROM msgs WHERE expire_at <= %lld", (long long)now_wall);
	if (rc == SQLITE_OK)
		rc = exec(st->db, buf);
	snprintf(buf, sizeof buf, "DELETE FROM retained WHERE expire_at <= %lld", (long long)now_wall);
	if (rc == SQLITE_OK)
		rc = exec(st->db, buf);
	for (size_t i = 0; rc == SQLITE_OK && i < sizeof q / sizeof *q; i++)
		rc = exec(st->db, q[i]);
	if (rc != SQLITE_OK) {
		exec(st->db, "ROLLBACK");
		return rc;
	}
	return SQLITE_OK;
}

static int sweep_bodies(mg_store *st, const idmap *msgs)
{
	sqlite3_stmt *d;
	int rc = sqlite3_prepare_v2(st->db, "DELETE FROM msgs WHERE id = ?1", -1, &d, NULL);
	for (size_t i = 0; rc == SQLITE_OK && i < msgs->n; i++) {
		mg_msg *m = msgs->p[i];
		if (atomic_load(&m->store_refs) == 0) {
			sqlite3_bind_int64(d, 1, msgs->id[i]);
			rc = step(d);
		}
	}
	sqlite3_finalize(d);
	if (rc == SQLITE_OK)
		rc = exec(st->db, "COMMIT");
	else
		exec(st->db, "ROLLBACK");
	return rc;
}

static int64_t max_of(sqlite3 *db, const char *q)
{
	sqlite3_stmt *s;
	int64_t v = 0;
	if (sqlite3_prepare_v2(db, q, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* "INSERT ... VALUES(?1, ..., ?7)" as "INSERT ... VALUES(?, ...), ... PUT_ROWS times"
 * (anonymous parameters number themselves: row r's column c is r * PUT_COLS + c + 1). */
static char *puts_sql(const char *one)
{
	const char *v = strstr(one, "VALUES(");
	size_t head = (size_t)(v - one) + 6, row = 2 * PUT_COLS + 2;
	char *q = malloc(head + PUT_ROWS * (row + 1) + 1), *p = q;
	if (!q)
		return NULL;
	memcpy(p, one, head);
	p += head;
	for (int r = 0; r < PUT_ROWS; r++) {
		*p++ = r ? ',' : ' ';
		*p++ = '(';
		for (int c = 0; c < PUT_COLS; c++) {
			*p++ = '?';
			*p++ = c + 1 < PUT_COLS ? ',' : ')';
		}
	}
	*p = 0;
	return q;
}

static int open_workers(mg_broker *b, mg_store *st)
{
	st->wb = calloc((size_t)b->nworkers, sizeof *st->wb);
	if (!st->wb)
		return SQLITE_NOMEM;
	st->nwb = b->nworkers;
	for (int i = 0; i < b->nworkers; i++) {
		mg_sbatch *sb = &st->wb[i];
		sb->st = st;
		int rc = open_conn(st->path, st->fsync, &sb->db);
		for (int k = 0; rc == SQLITE_OK && k < ST_N; k++) {
			char *q = k == ST_MSG_PUTN || k == ST_Q_PUTN ? puts_sql(sql[k == ST_Q_PUTN ? ST_Q_PUT : ST_MSG_PUT]) : NULL;
			if ((k == ST_MSG_PUTN || k == ST_Q_PUTN) && !q)
				return SQLITE_NOMEM;
			rc = sqlite3_prepare_v3(sb->db, q ? q : sql[k], -1, SQLITE_PREPARE_PERSISTENT, &sb->stmt[k], NULL);
			free(q);
		}
		if (rc != SQLITE_OK)
			return rc;
		sqlite3_wal_hook(sb->db, wal_hook, st); /* also turns SQLite's own checkpoints off */
	}
	if (pthread_create(&st->ckpt, NULL, ckpt_main, st) != 0)
		return SQLITE_NOMEM;
	st->ckpt_running = true;
	return SQLITE_OK;
}

int mg_store_recover(mg_broker *b, char *err, size_t errlen)
{
	mg_store *st = b->store;
	int64_t t0 = mg_now_ms(), now_wall = wall_ms();
	idmap msgs = { 0 }, sess = { 0 };
	rec_counts n = { 0 };
	const char *what = "cleaning";
	int rc = sweep(st, now_wall);
	if (rc == SQLITE_OK && (what = "loading retained messages from", 1))
		rc = load_retained(b, st, now_wall, &n);
	if (rc == SQLITE_OK && (what = "loading messages from", 1))
		rc = load_msgs(st, now_wall, &msgs);
	if (rc == SQLITE_OK && (what = "loading sessions from", 1))
		rc = load_sessions(b, st, now_wall, &msgs, &sess, &n);
	if (rc == SQLITE_OK && (what = "loading subscriptions from", 1))
		rc = load_subs(b, st, &sess, &n);
	if (rc == SQLITE_OK && (what = "loading queued messages from", 1))
		rc = load_queue(st, &msgs, &sess, &n);
	if (rc == SQLITE_OK && (what = "loading incoming QoS 2 messages from", 1))
		rc = load_inq2(st, &msgs, &sess, &n);
	if (rc == SQLITE_OK && (what = "cleaning", 1))
		rc = sweep_bodies(st, &msgs);
	for (size_t i = 0; i < msgs.n; i++)
		mg_msg_unref(msgs.p[i]);
	free(msgs.id);
	free(msgs.p);
	free(sess.id);
	free(sess.p);
	if (rc == SQLITE_OK) {
		atomic_store(&st->next_sid, max_of(st->db, "SELECT max(sid) FROM sessions") + 1);
		int64_t a = max_of(st->db, "SELECT max(id) FROM msgs"), q = max_of(st->db, "SELECT max(msg) FROM queue");
		int64_t c = max_of(st->db, "SELECT max(msg) FROM inq2");
		atomic_store(&st->next_msg, (a > q ? (a > c ? a : c) : (q > c ? q : c)) + 1);
		what = "opening worker connections to";
		rc = open_workers(b, st);
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s %s: %s", what, st->path, sqlite3_errmsg(st->db));
		if (!sqlite3_get_autocommit(st->db))
			exec(st->db, "ROLLBACK");
		return kind_of(rc);
	}
	mg_log(MG_LOG_NOTICE, "Restored from %s in %lld ms: %zu retained messages, %zu sessions, %zu "
	       "subscriptions, %zu queued and %zu in-flight messages, %zu incoming QoS 2, %zu delayed wills.",
	       st->path, (long long)(mg_now_ms() - t0), n.retained, n.sessions, n.subs, n.queued, n.inflight,
	       n.inq2, n.wills);
	return MG_STORE_OK;
}
