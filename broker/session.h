/*
 * broker/session.h - one client session and its whole life (session.c): created or resumed by a
 * CONNECT, attached to a connection, detached when it ends (will, will delay), expired or
 * destroyed; in between it queues deliveries and pumps them into its connection's output.
 * A session never changes worker and only its worker touches it; everything else names it
 * by an mg_sref (registry.h).
 */
#ifndef MG_BROKER_SESSION_H
#define MG_BROKER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/fset.h"
#include "broker/msg.h"
#include "broker/queue.h"
#include "broker/registry.h"
#include "proto/proto.h"

typedef struct mg_worker mg_worker;
typedef struct mg_conn mg_conn;

struct mg_session {
	/* Ordered by size, no padding: every idle client holds one. */
	char *id;             /* NUL-terminated, stored right after the struct (one allocation) */
	char *username;       /* the user name the client connected with (malloc'd), NULL: none.
	                       * What acl_file's user sections and %u see. */
	mg_sref ref;
	mg_conn *conn;        /* NULL while offline */
	int64_t expire_at;    /* ms, while offline and expiry < UINT32_MAX; 0 otherwise */
	mg_qring queue;
	size_t qbytes;
	mg_qring retained;    /* owed after a SUBSCRIBE: sent before queue, no queue limits */
	mg_fring flight;
	size_t flight_bytes;
	mg_inq2 *inq2;
	uint32_t n_inq2, cap_inq2;
	int64_t sid;          /* its row in the store (store.h); 0: not stored */
	mg_fset subs;         /* the filters it holds in the tree, for removal */
	mg_msg *will;         /* will message, NULL if none */
	int64_t will_at;      /* ms: a delayed will is due */
	mg_session *next, *prev; /* the worker's list */
	uint32_t expiry;      /* seconds after disconnect; UINT32_MAX never */
	uint32_t will_delay;
	uint32_t will_expiry; /* message expiry of the will, from when it is published; 0 none */
	uint32_t id_len;      /* a client id is an MQTT string: at most 65,535 bytes */
	uint16_t next_mid;
	uint8_t level;
	uint8_t will_qos;
	bool will_retain;
	bool dropping;        /* in a drop episode (logged once) */
	bool will_stored;     /* the delayed will has its row in the store (store.h) */
	uint8_t lidx;         /* the listener it last connected on, whose acl_file applies with
	                       * per_listener_settings (mosquitto keeps it offline too); 255:
	                       * none known (restored) or beyond 254: denied, as mosquitto denies
	                       * a client without a listener. Fits the struct's padding. */
};

/* ---- life ---- */

/* The session of id if worker w owns it (NULL otherwise; *owner: the owning worker, or -1
 * when nobody has one). */
mg_session *mg_session_find(mg_worker *w, const char *id, size_t len, int *owner);
/* Create and register an offline session for id on worker w. Returns NULL if another worker
 * registered the id meanwhile (*owner set) or on ENOMEM (*owner -1). */
mg_session *mg_session_create(mg_worker *w, const char *id, size_t len, int *owner);
/* Remove subscriptions, registry entry and slot; free. The session must be offline. */
void mg_session_destroy(mg_worker *w, mg_session *s);
/* The session that a reference names, if it is still alive and owned by w. */
mg_session *mg_session_resolve(mg_worker *w, mg_sref ref);
/* A CONNECT's session has expired while offline (a due will is published first)? Then it is
 * destroyed and true returned. */
bool mg_session_expire_if_due(mg_worker *w, mg_session *s, int64_t now);
/* Another connection takes s over: its will is published, or dropped when the new one
 * resumes a 5.0 session within the will delay [MQTT-3.1.3-9]; s goes offline. Returns the
 * old connection, which the caller closes (the session never closes a connection). */
mg_conn *mg_session_take_over(mg_worker *w, mg_session *s, bool resume);
/* A clean start: the old session ends now (a delayed will with it) and is destroyed. */
void mg_session_end(mg_worker *w, mg_session *s);
/* Take ownership of the will message m (NULL: none) and its settings. */
void mg_session_set_will(mg_session *s, mg_msg *m, uint8_t qos, bool retain, uint32_t delay,
                         uint32_t expiry);
/* s goes online on c: counted as a connected client. */
void mg_session_attach(mg_worker *w, mg_session *s, mg_conn *c);
/* The end of a session's connection: wills, session expiry (may destroy s). */
void mg_session_detach(mg_worker *w, mg_session *s, bool send_will);
/* Publish the will now (if any) and forget it. */
void mg_will_publish(mg_worker *w, mg_session *s);
/* Once a loop turn's tick: due delayed wills, expired offline sessions. */
void mg_session_tick(mg_worker *w, int64_t now);

/* ---- messages ---- */

/* Queue a delivery (takes ownership of q). Applies limits and counts drops. */
void mg_session_deliver(mg_worker *w, mg_session *s, mg_qitem *q);
/* Owe a retained message to a new subscription (takes ownership of q): it waits for the
 * socket and the inflight window like a queued one, and is not cut by max_queued_messages
 * [MQTT-3.3.1-6]: up to the retained store's size plus max_queued_messages are owed at once
 * (one reference each), more are dropped and counted. */
void mg_session_owe_retained(mg_worker *w, mg_session *s, mg_qitem *q);
/* Move owed retained, then queued messages into the connection's output as window and
 * buffer allow. */
void mg_session_pump(mg_worker *w, mg_session *s);
static inline bool mg_session_pending(const mg_session *s)
{
	return s->queue.n || s->retained.n;
}
/* May s read (MG_ACL_READ) or write (MG_ACL_WRITE) topic t under the broker's acl_file
 * (acl.h)? Always true without one. A PUBLISH, a will, every delivery and every retained
 * message owed to a new subscription asks, as mosquitto does. */
bool mg_session_may(mg_worker *w, const mg_session *s, const uint8_t *t, size_t len, int access);
/* After a CONNECT resumed s: drop queued messages it may no longer read (the user name may
 * have changed), as mosquitto does when a client reconnects. */
void mg_session_recheck_queue(mg_worker *w, mg_session *s);
/* Resend inflight (DUP) after a reconnect. */
void mg_session_resend(mg_worker *w, mg_session *s);
void mg_session_clear_will(mg_session *s);
void mg_session_clear_msgs(mg_session *s); /* queue, inflight, inbound QoS 2 */
/* Log a PUBLISH as mosquitto's debug log does ("Received PUBLISH from ...", "Sending ..."). */
void mg_log_publish(const char *dir, const char *who, const mg_publish *p, uint32_t plen);

#endif
