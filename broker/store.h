/*
 * broker/store.h - durable state in SQLite (store.c): what the broker tells the store when
 * durable state changes, and opening / recovering / committing it.
 *
 * Writer design (docs/persistence.md "Writer design"): every worker has its own SQLite
 * connection to the one file (WAL mode) and its own batch of operations. A hook only appends
 * an operation to the calling worker's batch (no I/O, no lock); the batch is executed and
 * committed in one transaction when the loop turn ends (mg_store_commit, called before any
 * output of the turn is written), so a PUBACK or PUBREC written during the turn leaves the
 * broker only after what its message created is committed. The SQLite write lock is held
 * only while one batch executes.
 *
 * Costs: with persistence off no session has a store id and every hook returns on its first
 * test (a field already in cache); the hooks of sessions that do not outlive their
 * connection (clean sessions) do the same. Messages are written only for QoS 1/2 deliveries
 * to stored sessions, QoS 0 ones queued for an offline stored session (queue_qos0_messages),
 * incoming QoS 2 of stored sessions, retained messages and delayed wills.
 *
 * Hooks run on the worker that owns the session (the batch is the calling thread's,
 * mg_store_tls); on any other thread (start-up before the workers run, the final teardown)
 * they do nothing, so freeing the broker's memory at exit never deletes stored state.
 */
#ifndef MG_BROKER_STORE_H
#define MG_BROKER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"
#include "broker/queue.h"
#include "broker/session.h"
#include "proto/proto.h"

struct mg_session;
struct mg_msg;
struct mg_broker;
struct mg_worker;
struct mg_flight;

typedef struct mg_store mg_store;   /* the broker's, b->store; NULL when persistence is off */
typedef struct mg_sbatch mg_sbatch; /* one worker's connection and operations of this turn */

/* The calling worker's batch, NULL on any thread that is not a worker of a persistent broker. */
extern __thread mg_sbatch *mg_store_tls __attribute__((tls_model("initial-exec")));

/* ---- open, recover, commit, close ---- */

/* Why the store could not be opened (mg_store_open). h6's failure modes extend these. */
enum mg_store_err {
	MG_STORE_OK = 0,
	MG_STORE_E_OPEN = -1,    /* cannot create or open the file (path, permissions) */
	MG_STORE_E_CORRUPT = -2, /* not a database, or damaged */
	MG_STORE_E_NEWER = -3,   /* written by a newer midge (user_version > ours) */
	MG_STORE_E_IO = -4,      /* a read or write failed (disk full, I/O error) */
	MG_STORE_E_NOMEM = -5,
	MG_STORE_E_FOREIGN = -6, /* not midge's file: another SQLite database, or mosquitto's */
};

/* The file's path from the config (persistence_location + persistence_file); the caller frees. */
char *mg_store_path(const struct mg_config *cfg);
/* Open (create) the file at path, set WAL and synchronous, create or check the schema.
 * Returns the store in *out and MG_STORE_OK, or an error kind with a message in err. */
int mg_store_open(const char *path, bool fsync, mg_store **out, char *err, size_t errlen);
/* Load everything into the broker, whose workers exist but do not run yet: retained
 * messages, sessions (round robin over the workers) with their subscriptions, queues,
 * messages in flight, incoming QoS 2 and delayed wills; then delete leftovers. Opens one
 * connection per worker. Returns MG_STORE_OK or an error kind (err says what). */
int mg_store_recover(struct mg_broker *b, char *err, size_t errlen);
/* A worker thread starts (sets mg_store_tls) and stops (commits, clears it). */
void mg_store_worker_start(struct mg_worker *w);
void mg_store_worker_stop(struct mg_worker *w);
/* Execute and commit the calling worker's batch (no-op when empty). Before any output. */
void mg_store_commit_now(mg_sbatch *sb);
static inline void mg_store_commit(void)
{
	if (mg_store_tls)
		mg_store_commit_now(mg_store_tls);
}
void mg_store_close(mg_store *st); /* after every worker stopped */

/* ---- the end of a loop turn (docs/persistence.md, "Rows a turn cancels") ----
 * Output that promises nothing durable goes before the commit: QoS 0/1 PUBLISH packets to
 * subscribers, whose acknowledgement (in this turn or the next) cancels the queue row and
 * body not yet written. A PUBACK/PUBREC/PUBCOMP waits behind a hold on its connection
 * (mg_store_promise) until what it promises is committed; any other packet (CONNACK, SUBACK,
 * PINGRESP, PUBREL, a QoS 2 PUBLISH, ...) needs everything recorded so far committed
 * (mg_store_need_full). mg_store_turn_end, before the turn's output is written: with full
 * (posts to other workers) or a packet that needs it, commits everything and lifts every
 * hold; else commits the previous turn's ops and lifts the holds of that turn, carrying
 * this turn's; the carried ops wait a few ms for the acknowledgements that cancel them, as
 * long as the loop turns. While mg_store_carrying, the loop must not sleep longer. */
void mg_store_turn_end(mg_sbatch *sb, bool full, int64_t now_ms);
/* -1 nothing carried (the loop may sleep), else how long it may wait at most (ms) */
int mg_store_carrying(const mg_sbatch *sb);
void mg_store_need_full_(mg_sbatch *sb);
static inline void mg_store_need_full(void)
{
	if (mg_store_tls)
		mg_store_need_full_(mg_store_tls);
}
/* Before a connection writes: commits everything if some packet needs it. */
void mg_store_before_write_(mg_sbatch *sb);
static inline void mg_store_before_write(void)
{
	if (mg_store_tls)
		mg_store_before_write_(mg_store_tls);
}
/* c is freed: it holds nothing any more. */
void mg_store_conn_gone(struct mg_conn *c);
/* The broker is shutting down in order (every worker committed its last batch): close then
 * writes FILE-clean, so the next start can skip PRAGMA quick_check (store.c). */
void mg_store_closing_cleanly(mg_store *st);

/* ---- write failures (docs/persistence.md "Failure modes") ----
 * A commit that fails (disk full, I/O error) is rolled back: the file stays as the last good
 * commit left it. The publishers whose PUBACK, PUBREC or PUBCOMP the failed batch promised
 * lose their connection before it is written (they resend, as after any lost connection),
 * and until a commit succeeds again the store is "failing": QoS 1/2 PUBLISH is refused (5.0:
 * 0x97 Quota exceeded; 3.x: the connection is closed, 3.x having no way to say no). While
 * failing, a small write is tried at most once a second to see whether space came back. */
struct mg_conn;
/* c was handed an acknowledgement that promises what the calling worker's batch holds. */
void mg_store_promise_(mg_sbatch *sb, struct mg_conn *c);
static inline void mg_store_promise(struct mg_conn *c)
{
	if (mg_store_tls)
		mg_store_promise_(mg_store_tls, c);
}
bool mg_store_failing_(mg_sbatch *sb);
static inline bool mg_store_failing(void)
{
	return mg_store_tls && mg_store_failing_(mg_store_tls);
}
/* A refusal because of it: logged at most once a minute. */
void mg_store_refused(const char *client_id);

/* ---- hooks (see the top for when they cost nothing) ---- */

/* CONNECT configured s (level, expiry): a session that outlives its connection gets a store
 * id and a row; one that no longer does loses them. */
void mg_store_session_saved(struct mg_session *s);
/* s ends (destroyed): its rows go. */
void mg_store_session_removed_(struct mg_session *s);
/* s went offline (expire_at set) or its expiry changed. */
void mg_store_session_offline_(struct mg_session *s);
/* The delayed will of s was set (will_at): written with its body. Cleared (published or
 * dropped; m the will, before its reference is dropped). */
void mg_store_will_(struct mg_session *s);
void mg_store_will_clear_(struct mg_session *s, struct mg_msg *m);
/* SIGTERM: the sessions of w still online go offline now (their expiry starts). */
void mg_store_shutdown(struct mg_worker *w);
void mg_store_sub_added_(struct mg_session *s, const uint8_t *filter, size_t len, mg_subopts o,
                         uint32_t sub_id);
void mg_store_sub_removed_(struct mg_session *s, const uint8_t *filter, size_t len);
/* Routing: q is about to be delivered to the stored session sid (any worker): its row is
 * written and q marked stored. Also a QoS 0 q queued for an offline stored session (by its
 * own worker, mg_session_deliver). */
void mg_store_queued(int64_t sid, mg_qitem *q);
/* A stored delivery of s: sent as mid (state 1), PUBREC received (state 2), finished or
 * dropped (row deleted). */
void mg_store_sent_(struct mg_session *s, const mg_qitem *q, uint16_t mid);
void mg_store_pubrec_(struct mg_session *s, const mg_qitem *q, uint16_t mid);
void mg_store_done_(struct mg_session *s, const mg_qitem *q);
/* Incoming QoS 2 of s held until PUBREL (takes no reference), and released. */
void mg_store_inq2_put_(struct mg_session *s, uint16_t mid, struct mg_msg *m);
void mg_store_inq2_del_(struct mg_session *s, uint16_t mid, struct mg_msg *m);
/* m NULL: the retained message of topic was deleted. */
void mg_store_retained_(const uint8_t *topic, size_t len, struct mg_msg *m);
/* Routing holds m's body as a row would, from its first row to its last (route.c); released
 * with mg_store_msg_unref. */
void mg_store_pin(struct mg_msg *m);
/* A stored row that referred to m is gone (q's item cleared, inq2 released): the body is
 * deleted when nothing refers to it any more. */
void mg_store_msg_unref(struct mg_msg *m);

static inline void mg_store_session_removed(struct mg_session *s)
{
	if (s->sid && mg_store_tls)
		mg_store_session_removed_(s);
}
static inline void mg_store_session_offline(struct mg_session *s)
{
	if (s->sid && mg_store_tls)
		mg_store_session_offline_(s);
}
static inline void mg_store_will(struct mg_session *s)
{
	if (s->sid && mg_store_tls)
		mg_store_will_(s);
}
static inline void mg_store_will_clear(struct mg_session *s, struct mg_msg *m)
{
	if (s->will_stored && mg_store_tls)
		mg_store_will_clear_(s, m);
}
static inline void mg_store_sub_added(struct mg_session *s, const uint8_t *filter, size_t len,
                                      mg_subopts o, uint32_t sub_id)
{
	if (s->sid && mg_store_tls)
		mg_store_sub_added_(s, filter, len, o, sub_id);
}
static inline void mg_store_sub_removed(struct mg_session *s, const uint8_t *filter, size_t len)
{
	if (s->sid && mg_store_tls)
		mg_store_sub_removed_(s, filter, len);
}
static inline void mg_store_sent(struct mg_session *s, const mg_qitem *q, uint16_t mid)
{
	if (q->stored && mg_store_tls)
		mg_store_sent_(s, q, mid);
}
static inline void mg_store_pubrec(struct mg_session *s, const mg_qitem *q, uint16_t mid)
{
	if (q->stored && mg_store_tls)
		mg_store_pubrec_(s, q, mid);
}
static inline void mg_store_done(struct mg_session *s, const mg_qitem *q)
{
	if (q->stored && mg_store_tls)
		mg_store_done_(s, q);
}
/* A resent QoS 2 PUBLISH that s already holds: true when its row went with a batch that
 * could not be stored (its body has no store id any more), so it must be written again before
 * the PUBREC is. */
static inline bool mg_store_inq2_lost(const struct mg_session *s, const struct mg_msg *m)
{
	return s->sid && mg_store_tls && !atomic_load_explicit(&m->store_id, memory_order_relaxed);
}
static inline void mg_store_inq2_put(struct mg_session *s, uint16_t mid, struct mg_msg *m)
{
	if (s->sid && mg_store_tls)
		mg_store_inq2_put_(s, mid, m);
}
static inline void mg_store_inq2_del(struct mg_session *s, uint16_t mid, struct mg_msg *m)
{
	if (s->sid && mg_store_tls)
		mg_store_inq2_del_(s, mid, m);
}
static inline void mg_store_retained(const uint8_t *topic, size_t len, struct mg_msg *m)
{
	if (mg_store_tls)
		mg_store_retained_(topic, len, m);
}

#endif
