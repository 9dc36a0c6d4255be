/*
 * client/client.h - private to libmidge: the client object and the functions the files of
 * client/ share. Public names (midge_*) live in include/midge/midge.h only.
 *
 * Locking, in one paragraph: `mu` guards everything below it in struct midge_client except
 * what the comment marks "loop-owned". Exactly one thread at a time runs the loop (loop_owner
 * set); it alone reads the socket and touches c->in, so callbacks can be handed views into it
 * while `mu` is released. Any thread may append packets to obuf under `mu` and poke `wake` so
 * a loop sleeping in poll(2) adds POLLOUT. Callbacks are always called with `mu` released.
 */
#ifndef MG_CLIENT_H
#define MG_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "midge/midge.h"
#include "net/framer.h"
#include "net/transport.h"
#include "proto/proto.h"

/* ---- properties (props.c) ---- */

typedef struct mgc_pent {
	uint8_t id;
	uint32_t u;     /* numeric value */
	char *a;        /* string / binary / user key: malloc'd, '\0'-terminated */
	uint32_t alen;
	char *b;        /* user value */
	uint32_t blen;
} mgc_pent;

struct midge_properties {
	mgc_pent *v;
	int n, cap;
};

/* A wire view of a midge_properties for mg_encode; owns the user-property buffer. */
typedef struct mgc_wprops {
	mg_props p;
	uint8_t *raw;      /* encoded user properties */
	uint32_t sub_ids[8];
} mgc_wprops;

/* Fill w from p (may be NULL) for packet type ptype (or MG_PTYPE_WILL). MIDGE_ERR_PROPERTY if a
 * property is not allowed there. The caller calls mgc_wprops_free. */
int mgc_wprops_make(mgc_wprops *w, const midge_properties *p, int ptype);
void mgc_wprops_free(mgc_wprops *w);
/* Build a midge_properties from a decoded property block. NULL if empty is false and no memory. */
midge_properties *mgc_props_from_wire(const mg_props *src);
/* MIDGE_ERR_PROPERTY unless midge_property_check_command allows every property of p in ptype:
 * the caller-facing rule (what a client may send), not proto's either-direction table. */
int mgc_props_check_allowed(const midge_properties *p, int ptype);

/* ---- events (client.c): callbacks queued under mu, made by mgc_unlock once mu is released ---- */

enum mgc_evkind { MG_EV_LOG, MG_EV_CONNECT, MG_EV_CONNECT_FAIL, MG_EV_PUBLISH, MG_EV_SUBSCRIBE,
                 MG_EV_UNSUBSCRIBE, MG_EV_DISCONNECT, MG_EV_SOCK_OPEN, MG_EV_SOCK_CLOSE,
                 MG_EV_SOCK_WANT_WRITE, MG_EV_SOCK_NO_WRITE };

typedef struct mgc_event {
	struct mgc_event *next;
	uint64_t seq;   /* numbered as queued: see mgc_events_done */
	int kind;       /* enum mgc_evkind */
	int a, b;       /* LOG: level; CONNECT/DISCONNECT: flags, reason; PUBLISH: mid, reason;
	                   (UN)SUBSCRIBE: mid; CONNECT_FAIL: error */
	int n;          /* (UN)SUBSCRIBE: number of codes */
	int *codes;     /* owned */
	midge_properties *props; /* owned */
	char text[];    /* LOG */
} mgc_event;

/* Events are made in batches (everything queued when a thread unlocks), outside mu: the
 * batch stays listed here until its callbacks have returned. */
struct mgc_ev_batch {
	struct mgc_ev_batch *next;
	uint64_t first;       /* the batch's lowest event number */
};

/* Under mu: every callback queued up to event number `upto` has returned (so a waiter that saw
 * its result in the state also sees what on_publish/on_connect did with it, as in paho). */
bool mgc_events_done(midge_client *c, uint64_t upto);

/* Queue a callback (takes ownership of props; copies codes). Out of memory drops it. */
void mgc_event_push(midge_client *c, int kind, int a, int b, const int *codes, int n,
                   midge_properties *props);
/* Queue a line for on_log. */
void mgc_log(midge_client *c, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- outbound messages (outq.c) ---- */

enum mgc_mstate { MG_M_QUEUED = 0, MG_M_WAIT_PUBACK, MG_M_WAIT_PUBREC, MG_M_WAIT_PUBCOMP };

typedef struct mgc_cmsg {
	struct mgc_cmsg *next, *prev;
	int mid;         /* the handle midge_publish returned (1..INT_MAX) */
	uint16_t pid;    /* MQTT packet id: taken when a QoS 1/2 message goes in flight, 0 before */
	uint8_t qos;
	uint8_t state;   /* enum mgc_mstate */
	bool retain;
	bool dup;        /* set once it has been sent: a resend carries DUP */
	bool alias_only; /* the user gave an empty topic with a topic alias */
	uint16_t alias;
	char *topic;     /* the full topic */
	uint8_t *payload;
	size_t len;
	midge_properties *props;
} mgc_cmsg;

/* An inbound QoS 2 message between its PUBLISH and its PUBREL: on_message gets it at PUBREL,
 * as paho and libmosquitto deliver it (inq.c). */
typedef struct mgc_qin {
	struct mgc_qin *next;
	uint16_t mid;
	bool retain, dup;
	char *topic;
	uint8_t *payload; /* len bytes and a '\0', as on_message promises */
	size_t len;
	midge_properties *props;
} mgc_qin;

typedef struct mgc_q0 { /* a QoS 0 message written into obuf, done once obuf has gone out */
	struct mgc_q0 *next;
	uint64_t end; /* stream position of its last byte */
	int mid;
} mgc_q0;

/* An (UN)SUBSCRIBE waiting for its SUBACK / UNSUBACK. */
typedef struct mgc_psub {
	struct mgc_psub *next;
	uint16_t pid;
	int mid;
} mgc_psub;

/* A message dropped without being sent (too large for the broker), remembered so
 * midge_wait_for_publish / midge_is_published can say so. */
typedef struct mgc_failed {
	int mid;
	int err;
} mgc_failed;
#define MG_FAILED_MAX 1024

/* ---- message callbacks (msgcb.c) ---- */

typedef void (*mgc_msg_cb)(midge_client *, void *, const midge_message *);

/* A per-topic callback (midge_message_callback_add), in the order added. */
typedef struct mgc_msgcb {
	struct mgc_msgcb *next;
	char *sub;            /* as given (what _remove compares) */
	const char *match;    /* the filter matched against topics: sub without "$share/g/" */
	size_t match_len;
	mgc_msg_cb cb;
} mgc_msgcb;

/* The callbacks one message goes to, taken under mu and called without it. */
typedef struct mgc_dispatch {
	void *ud;
	int n;
	mgc_msg_cb *cbs;   /* buf, or malloc'd when more match */
	mgc_msg_cb buf[8];
} mgc_dispatch;

/* Under mu: the per-topic callbacks whose filter matches topic, or on_message when none does
 * (paho's rule). */
void mgc_dispatch_take(midge_client *c, const char *topic, mgc_dispatch *d);
/* Without mu: call them, and let go of d. */
void mgc_dispatch_run(midge_client *c, mgc_dispatch *d, const midge_message *msg);
void mgc_msgcb_clear(midge_client *c);

/* ---- the client ---- */

enum mgc_cstate {
	MG_S_NEW = 0,      /* connect never called */
	MG_S_IDLE,         /* not connected */
	MG_S_TCP,          /* TCP connect in progress */
	MG_S_CONNACK,      /* CONNECT sent, waiting for CONNACK */
	MG_S_UP,           /* connected */
	MG_S_CLOSING,      /* DISCONNECT queued, close once obuf is out */
};

struct midge_client {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* broadcast on every state change and publish completion */
	int wake[2];       /* self-pipe: [1] written to wake a poll on [0] */

	/* configuration */
	char *id;          /* NULL: none given (the broker assigns one) */
	bool clean_session;
	uint8_t level;     /* 3, 4, 5 */
	int transport;
	void *userdata;
	char *username, *password;
	bool will;
	char *will_topic;
	uint8_t *will_payload;
	size_t will_len;
	uint8_t will_qos;
	bool will_retain;
	midge_properties *will_props;
	int reconnect_min, reconnect_max;
	int max_inflight, max_queued;
	int connect_timeout_ms;
	bool manual_ack;   /* midge_manual_ack_set: PUBACK / PUBCOMP wait for midge_ack */
	char *bind_address; /* midge_connect_bind: the local address to bind, or NULL */
	struct addrinfo *bind_ai; /* ... resolved when connect_bind was called */
	char *proxy_host;   /* midge_proxy_set: SOCKS5 proxy, or NULL */
	int proxy_port;
	char *proxy_user, *proxy_pass;
	struct mgc_tls *tls; /* midge_tls_* settings (tls_opts.c), NULL until one is called */
	char *ws_path, *ws_headers; /* midge_ws_set_options (ws.c): NULL = "/mqtt", none */

	/* the last connect's parameters */
	char *host;
	int port;
	int keepalive;
	bool clean_start;
	midge_properties *connect_props;

	/* callbacks */
	void (*on_connect)(midge_client *, void *, int, int, const midge_properties *);
	void (*on_connect_fail)(midge_client *, void *, int);
	void (*on_message)(midge_client *, void *, const midge_message *);
	void (*on_publish)(midge_client *, void *, int, int, const midge_properties *);
	void (*on_subscribe)(midge_client *, void *, int, int, const int *, const midge_properties *);
	void (*on_unsubscribe)(midge_client *, void *, int, int, const int *, const midge_properties *);
	void (*on_disconnect)(midge_client *, void *, int, int, const midge_properties *);
	void (*on_log)(midge_client *, void *, int, const char *);
	mgc_msgcb *msgcbs;     /* per-topic message callbacks */
	/* socket callbacks for external event loops (midge_on_socket_*_set) */
	void (*on_socket_open)(midge_client *, void *, int);
	void (*on_socket_close)(midge_client *, void *, int);
	void (*on_socket_register_write)(midge_client *, void *, int);
	void (*on_socket_unregister_write)(midge_client *, void *, int);
	int sock_told;        /* the fd on_socket_open told of (-1: none) */
	bool write_told;      /* on_socket_register_write told, no unregister since */
	mgc_event *ev_head, *ev_tail;
	uint64_t ev_seq;      /* the last event number given */
	struct mgc_ev_batch *ev_batches; /* taken off the queue, callbacks still being made */
	bool notify;          /* broadcast cv at the next mgc_unlock */
	/* Threads other than the loop owner making callbacks (their "sending X" lines) right now:
	 * while > 0 the loop writes nothing, so a line is out before the bytes it describes, and
	 * so before anything the broker answers to them. */
	int log_fence;

	/* connection */
	int state;            /* enum mgc_cstate */
	uint32_t conn_gen;    /* counts connections, so topic aliases die with theirs */
	mg_transport tr;      /* tr.fd < 0 when closed */
	struct addrinfo *ai, *ai_next; /* the addresses still to try (TCP) */
	int connack_rc;       /* result of the last connect: 0, CONNACK code, or MIDGE_ERR_* */
	int conn_errno;       /* errno behind a MIDGE_ERR_ERRNO connect result */
	bool connect_done;    /* the last connect attempt has a result */
	bool user_disconnect; /* midge_disconnect called: stop reconnecting */
	bool auto_reconnect;  /* loop_forever reconnects after a loss */
	bool connected_once;  /* a CONNACK accepted us since the last explicit connect */
	bool reconnecting;    /* this attempt is loop_forever's, not the user's */
	int disc_reason;      /* reason code of our DISCONNECT */
	int64_t connect_start_ms, last_out_ms, last_in_ms, ping_sent_ms;
	int64_t closing_ms;   /* when our DISCONNECT was queued */
	bool ping_out;
	uint16_t ka;          /* effective keepalive (server keep alive in 5.0) */

	uint8_t *obuf;        /* encoded packets waiting for the socket */
	size_t olen, ooff, ocap;
	uint64_t out_queued, out_written; /* stream positions, for QoS 0 completion */
	mgc_q0 *q0_head, *q0_tail;

	/* SOCKS5 handshake (socks.c), between the TCP connect to the proxy and the CONNECT: while
	 * socks_phase != 0 only sout goes out and what comes in is the proxy's answer */
	uint8_t socks_phase;  /* 0 done / none, 1 method reply, 2 auth reply, 3 connect reply */
	uint8_t sout[600], sin[300];
	size_t soutlen, soutoff, sinlen;

	bool tls_hs;          /* TLS handshake in progress (tls.c): CONNECT waits in obuf */
	/* The transport's want_write as the loop owner last saw it. Other threads ask (socket
	 * callbacks, midge_want_write) under mu, while the owner reads the transport without it. */
	bool tr_ww;
	bool ws_hs;           /* WebSocket handshake in progress (ws.c), after any TLS one */

	mg_framer in;         /* loop-owned: what the broker sent (net/framer.h) */

	/* 5.0 limits from CONNACK */
	uint16_t srv_receive_max;
	uint32_t srv_max_packet; /* 0 = none */
	uint16_t srv_alias_max;
	uint8_t srv_max_qos;
	bool srv_retain;
	/* ours, from the CONNECT properties */
	uint32_t max_packet_in;  /* 0 = MG_MAX_PACKET */
	uint16_t recv_max;       /* our Receive Maximum (5.0): QoS 2 messages held at once */
	uint16_t alias_max_in;
	char **alias_in;         /* loop-owned: inbound topic aliases, alias_max_in + 1 entries */
	char **alias_out;        /* outbound: topic per alias as the user bound it */
	uint32_t *alias_out_gen; /* conn_gen in which the broker learned it (0: never) */
	uint16_t alias_out_n;    /* entries in alias_out */

	/* messages */
	mgc_cmsg *m_head, *m_tail; /* in flight first, then queued, in publish order */
	mgc_cmsg *m_queued;        /* the first queued one (NULL: none), so the pump after each
	                             ack does not walk the messages in flight */
	int n_inflight, n_queued;
	/* Message ids (mids) are handles, not packet ids: midge_publish / _subscribe hand out the
	 * next of 1..INT_MAX, so a queue of any length needs no packet id, and a mid comes back
	 * only after 2^31-1 others and never while it is still pending (mid_wrapped: look). */
	int last_mid;
	bool mid_wrapped;
	uint16_t last_pid;
	uint8_t pid_used[8192];   /* bitmap: packet ids of messages in flight and (UN)SUBSCRIBEs */
	struct mgc_psub *psub;     /* (UN)SUBSCRIBEs waiting for their ack: packet id -> mid */
	struct mgc_failed *failed; /* recent messages dropped unsent (n_failed), for wait/is_published */
	int n_failed;
	uint8_t qos2_in[8192];    /* bitmap: inbound QoS 2 ids received, PUBREL pending */
	mgc_qin *qin_head;         /* their messages, waiting for PUBREL (n_qin of them) */
	int n_qin;

	/* the loop */
	bool loop_owner_set;
	pthread_t loop_owner;
	bool thread_running, thread_stop;
	pthread_t thread;
};

/* ---- shared helpers ---- */

int64_t mgc_cl_now_ms(void);
void mgc_lock(midge_client *c);
void mgc_unlock(midge_client *c); /* also makes the queued callbacks, and broadcasts cv */
void mgc_wake(midge_client *c);
const char *mgc_cid(const midge_client *c); /* id for log lines: "(null)" like libmosquitto */

/* obuf (outq.c) */
int mgc_obuf_reserve(midge_client *c, size_t n);
int mgc_send_packet(midge_client *c, const mg_packet *pkt); /* encode into obuf; MIDGE_ERR_* */
int mgc_send_simple(midge_client *c, int type, uint16_t id, uint8_t reason);

/* outq.c */
int mgc_mid_new(midge_client *c);           /* under mu: the next message id (handle) */
int mgc_pid_alloc(midge_client *c);         /* under mu; MIDGE_ERR_QUEUE_FULL if all 65535 used */
void mgc_pid_release(midge_client *c, uint16_t pid);
int mgc_mid_failed(midge_client *c, int mid); /* the error a dropped message ended with, or 0 */
int mgc_psub_add(midge_client *c, uint16_t pid, int mid);
int mgc_psub_take(midge_client *c, uint16_t pid); /* its mid (and frees pid), or 0 if unknown */
void mgc_psub_clear(midge_client *c);      /* the connection ended: no ack will come */
void mgc_pump(midge_client *c);             /* send queued messages the window allows */
void mgc_resend_inflight(midge_client *c, bool as_dup);
mgc_cmsg *mgc_msg_find(midge_client *c, uint16_t pid); /* in flight, by packet id */
void mgc_msg_remove(midge_client *c, mgc_cmsg *m);
void mgc_msg_free(mgc_cmsg *m);
void mgc_q0_done(midge_client *c);        /* on_publish for QoS 0 messages written out */
void mgc_outq_clear(midge_client *c);
bool mgc_mid_pending(midge_client *c, int mid);
bool mgc_in_loop_thread(midge_client *c);   /* does the calling thread own the loop? */

/* inq.c (loop owner, under mu) */
/* Hold a QoS 2 message until its PUBREL: copies topic and payload, takes ownership of props. */
int mgc_qin_store(midge_client *c, uint16_t mid, const char *topic, const mg_publish *pub,
                 midge_properties *props);
mgc_qin *mgc_qin_take(midge_client *c, uint16_t mid); /* NULL if not held; the caller frees */
void mgc_qin_free(mgc_qin *q);
void mgc_qin_clear(midge_client *c);        /* the session is gone: forget ids and messages */

/* conn.c */
struct addrinfo;
int mgc_resolve(const char *host, int port, struct addrinfo **out); /* without mu (blocks) */

/* lookup.c: mgc_resolve in a helper thread, for the loop's reconnects. */
typedef struct mgc_lookup mgc_lookup;
mgc_lookup *mgc_lookup_start(const char *host, int port); /* NULL: no thread (resolve inline) */
/* Wait up to ms; true once done, with *ai (the caller's now, may be NULL), *rc as mgc_resolve's
 * and errno set. */
bool mgc_lookup_wait(mgc_lookup *l, int ms, struct addrinfo **ai, int *rc);
void mgc_lookup_drop(mgc_lookup *l); /* let go (also of an unfinished lookup); once per start */
int mgc_start_connect(midge_client *c, struct addrinfo *ai); /* under mu: socket, CONNECT into obuf */
int mgc_begin_disconnect(midge_client *c, int reason, const midge_properties *props); /* under mu */
int mgc_tcp_progress(midge_client *c);      /* under mu: after POLLOUT in MG_S_TCP */
/* Close the connection: reason is a MIDGE_ERR_* for a loss, or a reason code >= 0 when the
 * peer or we sent DISCONNECT. Under mu; queues on_disconnect (or on_connect_fail before
 * CONNACK). Takes ownership of props. Loop owner only. */
void mgc_conn_close(midge_client *c, int flags, int reason, midge_properties *props);

/* socks.c */
void mgc_socks_begin(midge_client *c);      /* under mu: TCP to the proxy is up, greet it */
int mgc_socks_read(midge_client *c);        /* loop owner, without mu: the proxy's answers */
int mgc_socks_write(midge_client *c);       /* loop owner, under mu */
/* Under mu: is there output for the socket now (SOCKS bytes, or packets unless fenced)? */
bool mgc_want_write(midge_client *c);

/* tls_opts.c (the settings), and tls.c or tls_schannel.c (the backend) */
typedef struct mgc_tls mgc_tls;
bool mgc_tls_on(const midge_client *c);    /* under mu: does the next connect use TLS? */
void mgc_tls_free(midge_client *c);
/* Without mu, before a connect: have the backend make what it needs from the settings (the
 * SSL_CTX; tls_opts.h's mgc_tls_be_make) if not made yet; it reads files and may call the
 * key's password callback. MIDGE_OK or MIDGE_ERR_TLS (logged). */
int mgc_tls_prepare(midge_client *c);
/* Under mu, loop owner, the TCP (and SOCKS5) connect done: put TLS on the socket and start the
 * handshake. mgc_tls_step drives it (from reads and writes) while c->tls_hs. Both return
 * MIDGE_OK (done or under way), or an error after closing the connection (MIDGE_ERR_TLS). */
int mgc_tls_begin(midge_client *c);
int mgc_tls_step(midge_client *c);
void mgc_tls_log_errors(midge_client *c);  /* under mu: OpenSSL's error queue into on_log */

/* ws.c: MIDGE_TRANSPORT_WEBSOCKETS. mgc_ws_begin (under mu, loop owner, once TCP, the proxy
 * and TLS are up) puts the WebSocket row on the connection and starts its handshake, which
 * mgc_ws_step drives while c->ws_hs; both return MIDGE_OK or an error after closing. */
bool mgc_ws_on(const midge_client *c);
int mgc_ws_begin(midge_client *c);
int mgc_ws_step(midge_client *c);

/* io.c (loop owner only) */
int mgc_do_read(midge_client *c);           /* without mu held; MIDGE_OK or the error */
int mgc_do_write(midge_client *c);          /* under mu */

/* loop.c */
int mgc_loop_once(midge_client *c, int timeout_ms);
int mgc_misc(midge_client *c);              /* under mu: keepalive, timeouts, closing */



#endif
