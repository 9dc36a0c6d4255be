/*
 * broker/conn.h - one client socket (conn.c): reads, frames and dispatches packets (packet.h),
 * buffers output (whole packets, each optionally followed by a message payload written
 * from the message itself), closes. Owned by one worker at a time (a NEW connection may be
 * handed to the worker of its session once, see mg_conn_handoff).
 */
#ifndef MG_BROKER_CONN_H
#define MG_BROKER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/msg.h"
#include "net/framer.h"
#include "net/transport.h"
#include "proto/proto.h"

typedef struct mg_worker mg_worker;
typedef struct mg_session mg_session;
typedef struct mg_conn mg_conn;
typedef struct mg_subwork mg_subwork; /* a SUBSCRIBE/UNSUBSCRIBE in progress (subscribe.c) */
struct mg_alias_out;

enum { MG_CS_NEW = 0, MG_CS_ACTIVE, MG_CS_DEAD };

enum mg_close {
	MG_CLOSE_DISCONNECT,  /* clean DISCONNECT */
	MG_CLOSE_EOF,         /* peer closed */
	MG_CLOSE_SOCKET,      /* read/write error */
	MG_CLOSE_TIMEOUT,     /* keepalive */
	MG_CLOSE_PROTOCOL,    /* protocol error */
	MG_CLOSE_MALFORMED,   /* malformed packet */
	MG_CLOSE_TOO_LARGE,   /* over max_packet_size */
	MG_CLOSE_TAKEOVER,    /* another connection took the session */
	MG_CLOSE_SHUTDOWN,
	MG_CLOSE_NO_CONNECT,  /* no CONNECT in time */
	MG_CLOSE_REFUSED,     /* CONNACK refused it */
	MG_CLOSE_NOT_AUTH,
	MG_CLOSE_HTTP,        /* a plain HTTP request on a WebSockets listener was answered */
	MG_CLOSE_TLS,         /* TLS handshake failed (OpenSSL's errors logged) */
	MG_CLOSE_STORE,       /* what its acknowledgement promised could not be stored */
};

typedef struct mg_seg {
	uint32_t off, len; /* bytes in ob */
	mg_msg *m;         /* then this message's payload (a reference), or NULL */
} mg_seg;

struct mg_conn {
	/* Laid out for size: 10,000s of idle connections each hold one (see bench/README.md,
	 * "Memory per connection"). Buffers are allocated only while bytes are pending. */
	mg_transport tr;
	mg_worker *w;
	mg_session *s;
	const char *id;      /* the client id for logs: s->id, or NULL */
	const char *mp;      /* the listener's mount_point (borrowed from the config), or NULL */
	int64_t last_rx, created;
	/* input */
	mg_framer in;        /* lent the worker's buffer during a read; own memory only for a
	                      * partial packet (net/framer.h) */
	/* output: bytes in ob, described by segs (each optionally followed by a payload);
	 * both are freed whenever everything was written */
	uint8_t *ob;
	mg_seg *seg;
	uint32_t olen, ocap;
	uint32_t seg_head, nseg, segcap;
	uint32_t seg_done;   /* bytes of seg[seg_head] (header + payload) already written */
	size_t out_bytes;    /* bytes queued, not yet written */
	/* persistence (store.h): output from byte out_seq-position hold - 1 on waits for a
	 * commit, 0 none; hold_next the same for a later turn's acknowledgements */
	uint64_t out_seq;    /* bytes ever queued */
	uint64_t hold, hold_next;
	uint32_t hold_gen;
	mg_conn *dirty_next;
	mg_conn *next, *prev; /* the worker's list */
	mg_subwork *sw;      /* a SUBSCRIBE/UNSUBSCRIBE handled in chunks: no reading meanwhile */
	char *username;      /* the CONNECT's user name once admitted (malloc'd), or NULL. The
	                      * TLS layer may set it before CONNECT with user_from_cert (for
	                      * use_identity_as_username): no password check then. */
	uint64_t pw_tag;     /* the password entry it was checked against (auth.c), 0 none */
	/* MQTT 5 per connection */
	char **alias;        /* alias_max + 1 entries, malloc'd topics (NUL-terminated) */
	uint16_t *alias_len;
	struct mg_alias_out *aout; /* aliases we send (alias_out.c); NULL unless the client allows */
	struct mg_ackq *ackq; /* acknowledgements held for JetStream (cluster_ack.h), or NULL */
	uint32_t max_out;    /* client's maximum packet size, 0 = none */
	uint16_t recv_max;   /* client's receive maximum */
	uint8_t remote_max_qos; /* outbound only (a bridge): the remote's Maximum QoS, 2 unless a 5.0 CONNACK said less */
	uint16_t alias_max;  /* topic alias maximum we announced */
	uint16_t lidx;       /* cfg->listeners index */
	int8_t watch_mask;   /* MG_EV_* as last given to the loop, -1 unknown */
	uint8_t hops;        /* hand-offs so far (bounded) */
	uint16_t port;       /* the listener's */
	uint16_t mp_len;
	uint16_t keepalive;
	uint8_t state;
	uint8_t level;       /* 0 before CONNECT */
	uint8_t host_len;    /* peer[0..host_len) is "ADDR", for logs */
	uint8_t auth;        /* MG_AUTH_* (auth.h): MG_AUTH_WAIT reads nothing */
	bool dirty;
	/* rarely touched: bits, so that the struct stays in a smaller malloc size class */
	bool problem_info : 1;
	bool will_on_close : 1; /* DISCONNECT 0x04 or an unclean end */
	bool handed_off : 1;
	bool anonymous : 1;  /* connected without a user name */
	bool bridge : 1;     /* a 3.x bridge (CONNECT level | 0x80): its subscriptions are No Local */
	bool user_from_cert : 1; /* username came from the client's certificate (TLS) */
	bool tls_no_identity : 1; /* identity listener, but the client brought none: refuse */
	bool linger : 1;     /* its last packet says why it ends: lingering close (net/linger.h) */
	bool handshaking : 1; /* the transport's handshake (TLS, WebSocket upgrade) is not done */
	bool outbound : 1;   /* a bridge's connection to its remote (bridge.h): we are the client */
	bool cluster_wait : 1; /* its CONNECT waits for the cluster's client-id registry: reads
	                        * nothing, owned by the job when closed meanwhile (cluster.h) */
	bool cluster_ok : 1; /* the registry answered: the CONNECT goes on */
	bool early : 1;      /* in its worker's early-flush list this turn (mg_conn_flush_early) */
	bool read_paused;
	bool throttled;      /* reading waits: another worker's inbox is too long */
	char peer[52];       /* "ADDR:PORT": 45 characters of IPv6 + ":65535" + NUL at most */
};

mg_conn *mg_conn_new(mg_worker *w, int fd, const char *peer, uint16_t port);
void mg_conn_attach(mg_worker *w, mg_conn *c);   /* watch on w's loop, put on w's list */
void mg_conn_close(mg_conn *c, enum mg_close why);
void mg_conn_free(mg_conn *c);
void mg_conn_uncount(mg_conn *c); /* max_connections bookkeeping when a socket goes */
/* Give a NEW connection (with its unread bytes) to worker `to`, which re-handles its CONNECT. */
void mg_conn_handoff(mg_conn *c, int to);
int mg_conn_process(mg_conn *c);                /* handle every whole packet in c->in; 1: handed off */
void mg_conn_flush(mg_conn *c);
void mg_conn_mark_dirty(mg_conn *c);
/* Reserve n bytes of output; returns a pointer to write into; commit with mg_conn_commit. */
uint8_t *mg_conn_reserve(mg_conn *c, size_t n);
void mg_conn_commit(mg_conn *c, size_t n, mg_msg *payload_ref);
/* Encode pkt (the connection's level) into the output. Returns 0 or -ENOMEM / -E2BIG
 * (larger than the client's maximum packet size: not sent). */
int mg_conn_send(mg_conn *c, const mg_packet *pkt);
bool mg_conn_out_full(const mg_conn *c);
/* 5.0: DISCONNECT with reason, then close. Earlier levels: close. */
void mg_conn_disconnect(mg_conn *c, uint8_t reason, enum mg_close why);
/* The store could not commit what c's pending acknowledgements promise: c is closed with its
 * output dropped, so none of them leaves (store.h, write failures). */
void mg_conn_drop_unstored(mg_conn *c);
const char *mg_conn_name(const mg_conn *c); /* client id or "<unknown>" */
void mg_conn_pool_free(mg_worker *w);       /* the worker's spare output buffers, at exit */

void mg_conn_set_watch(mg_conn *c); /* tell the loop what c waits for now */
/* Write the output of the worker's connections that passed MG_OUT_EARLY during this turn,
 * now rather than in before_sleep (called between two connections' reads). */
void mg_conn_flush_early(mg_worker *w);
void mg_conn_early_reset(mg_worker *w); /* the turn ends (before_sleep, before frees) */
void mg_conn_handshake(mg_conn *c); /* drive the transport's handshake now (a bridge's TLS) */

#define MG_READ_CHUNK 65536
#define MG_OUT_LIMIT (512 * 1024)   /* pending output above which queued messages wait */
#define MG_OUT_EARLY (MG_OUT_LIMIT / 2) /* pending output written before the turn ends */
#define MG_CONNECT_TIMEOUT_MS 10000
/* Lingering close after a DISCONNECT with a reason or a refusing CONNACK: drain for at most
 * this long or this many bytes, at most MG_LINGER_MAX sockets per worker (beyond: closed at
 * once). Long enough for a client to read the reason, short enough to cost nothing. */
#define MG_LINGER_MS 2000
#define MG_LINGER_BYTES (1024 * 1024)
#define MG_LINGER_MAX 64

#endif
