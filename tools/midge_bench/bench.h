/*
 * tools/midge_bench/bench.h - midge_bench's shared types.
 *
 * Shape of a run: main.c parses options and builds the connections of one scenario, gives
 * each worker thread (worker.c, one epoll loop each) a slice of them, and steps everyone
 * through the phases SETUP (connect, subscribe) -> RUN (publish; the first --warmup seconds
 * are not measured) -> DRAIN (no new messages; wait for what is in flight) -> STOP.
 * conn.c speaks MQTT through proto/proto.h; track.c counts lost, duplicated and
 * out-of-order messages; hist.c keeps latencies; report.c prints.
 *
 * Every payload starts with 16 bytes: publisher id (u32 LE), sequence number (u32 LE) and
 * the CLOCK_MONOTONIC time in ns at which the message was due to be sent (u64 LE; in
 * open-loop mode the intended time, so queueing in the generator is not hidden).
 */
#ifndef MB_BENCH_H
#define MB_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/socket.h>

#include "net/framer.h"
#include "net/transport.h"

#define MB_STAMP 16 /* payload header: id, seq, time */

enum mb_scenario { SC_CONN, SC_PAIRS, SC_FANIN, SC_FANOUT, SC_SHARED, SC_HS };
enum mb_role { ROLE_IDLE, ROLE_PUB, ROLE_SUB };
enum mb_phase { PH_SETUP, PH_RUN, PH_DRAIN, PH_STOP };
enum mb_cstate { CS_NEW, CS_CONNECTING, CS_TLS, CS_WAIT_CONNACK, CS_WAIT_SUBACK, CS_READY, CS_CLOSED };

typedef struct mb_opts {
	const char *host;
	int port;
	int scenario;
	int qos;
	uint32_t size;
	double duration, warmup, drain;
	int clients;     /* connections (conn), pairs (pairs), publishers (fanin, shared) */
	int subscribers; /* fanout: subscribers; shared: group members */
	int protocol;    /* 4 or 5 */
	int threads;
	bool json;
	int window;      /* closed loop: messages in flight end to end per publisher */
	int inflight;    /* QoS 1/2: unacknowledged PUBLISHes per publisher */
	double rate;     /* open loop: messages/s over all publishers; 0 = closed loop */
	int src_ips;
	int broker_pid;
	int sub_port;    /* subscribers on another broker's port (a bridge between them), 0 = port */
	int broker_pid2; /* that broker: its CPU is added to broker_pid's */
	int aux_pid[8];  /* other servers the brokers need (a NATS cluster): CPU apart */
	int naux;
	int connect_conc; /* connections being set up at once */
	int keepalive;
	const char *prefix;
	const char *ready_file;
	const char *label;
	double stall;    /* closed loop: forgive a window stuck this long (QoS 0 drops) */
	bool verbose;    /* per-publisher counts on stderr at the end */
	/* TLS (net/tls.c): on when cafile is given; certfile/keyfile: a client certificate */
	const char *cafile, *certfile, *keyfile;
	bool resume;     /* hs: resume the previous session (tickets / session ids) */
	bool no_verify;  /* TLS: do not check the broker's certificate (benchmarks only) */
	bool no_clean;   /* persistent sessions (--no-clean) */
	const char *ws_path; /* --ws PATH: MQTT over WebSockets (net/ws.c), upgrading at PATH */
} mb_opts;

/* ---- hist.c: HDR-style log buckets, 64 sub-buckets per power of two (~1.6%) ---- */

#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP 44 /* values up to 2^44 ns (~4.9 h) */
#define HIST_BUCKETS ((HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB + HIST_SUB)

typedef struct mb_hist {
	uint64_t n, max, min, sum;
	uint64_t b[HIST_BUCKETS];
} mb_hist;

void mb_hist_init(mb_hist *h);
void mb_hist_add(mb_hist *h, uint64_t v);
void mb_hist_merge(mb_hist *into, const mb_hist *h);
uint64_t mb_hist_pct(const mb_hist *h, double pct); /* pct in 0..100; 0 if empty */

/* ---- track.c: which sequence numbers of one publisher a subscriber has seen ---- */

#define TRACK_W 4096 /* reorder distance remembered; beyond it a gap is final */

typedef struct mb_track {
	uint32_t next;    /* lowest sequence number not yet seen */
	uint32_t top;     /* highest seen + 1 */
	uint64_t unique, dup, ooo;
	uint64_t bits[TRACK_W / 64]; /* seen flags for next..next+TRACK_W-1, ring by seq */
} mb_track;

/* Returns 1 if seq is new, 0 if a duplicate. */
int mb_track_see(mb_track *t, uint32_t seq);

/* Shared subscriptions: one message goes to one member of the group, so duplicates are
 * found across members in one ring per publisher, set atomically by the receivers and
 * cleared by the publisher before it reuses a slot. */
#define SRING_BITS (1u << 20)
int mb_sring_see(_Atomic uint64_t *ring, uint32_t seq); /* 1 new, 0 duplicate */
void mb_sring_clear(_Atomic uint64_t *ring, uint32_t seq);

/* ---- per-thread counters, merged at the end ---- */

typedef struct mb_stats {
	uint64_t sent, sent_win;         /* PUBLISHes written; those due in the window */
	uint64_t recv, recv_win;         /* new messages delivered; received in the window */
	uint64_t bytes_win;              /* payload bytes delivered in the window */
	uint64_t dup, ooo;
	uint64_t redeliveries;           /* QoS 2 PUBLISH again for an id awaiting PUBREL */
	uint64_t acks;                   /* PUBACK / PUBCOMP received */
	uint64_t proto_err;              /* unexpected packets, bad ids, decode errors */
	uint64_t rejected;               /* 5.0: PUBACK/PUBREC reason >= 0x80 */
	uint64_t foreign;                /* payloads not from this run */
	uint64_t stalls;                 /* closed-loop windows forgiven */
	uint64_t closed;                 /* connections the broker closed under us */
	uint64_t connect_fail;
	mb_hist lat;
	mb_hist lag;                     /* open loop: write time minus due time, in the generator */
} mb_stats;

/* ---- connections ---- */

struct mb_worker;
struct mb_conn;

typedef struct mb_pub {
	uint32_t id;
	char topic[96];
	uint16_t topic_len;
	uint32_t fan;                 /* deliveries expected per message */
	uint32_t seq;                 /* next sequence number */
	_Atomic uint64_t sent;        /* written by the owner, read by main for the drain */
	_Atomic uint64_t delivered;   /* new deliveries of this publisher's messages */
	_Atomic int waiting;          /* blocked on the window: receivers wake its worker */
	uint64_t forgiven;            /* deliveries written off by stall handling */
	uint64_t blocked_since;
	uint64_t next_due, interval;  /* open loop pacing, ns */
	uint8_t *idstate;             /* QoS 1/2: 0 free, 1 PUBLISH sent, 2 PUBREL sent */
	_Atomic uint32_t unacked;
	uint16_t next_id;
	_Atomic uint64_t *sring;      /* shared scenario */
	struct mb_worker *w;
	struct mb_conn *c;
} mb_pub;

typedef struct mb_sub {
	uint32_t first_pub, npubs;    /* publishers whose messages it expects */
	mb_track *tr;                 /* one per expected publisher; NULL when shared */
	uint32_t *last;               /* shared: last seq per publisher, for order */
	uint64_t *qos2;               /* QoS 2 ids awaiting PUBREL, 65536 bits */
	char filter[128];
} mb_sub;

typedef struct mb_conn {
	int fd;                       /* tr.fd while open */
	mg_transport tr;              /* TCP, or TLS with --cafile */
	int idx;                      /* global index */
	int role;                     /* enum mb_role */
	int state;                    /* enum mb_cstate */
	bool epollout;
	struct mb_worker *w;
	mg_framer in;                 /* what the broker sent (net/framer.h) */
	size_t in_chunk;              /* its read size: large for subscribers */
	uint8_t *out;
	size_t out_off, out_len, out_cap;
	uint64_t filler;              /* payload bytes to send from the zero page ... */
	size_t fill_pos;              /* ... after out[fill_pos - 1]; packets appended meanwhile
	                               * (acknowledgements, PUBREL) go after the filler */
	uint64_t last_tx;
	uint16_t recv_max;            /* 5.0 CONNACK Receive Maximum */
	mb_pub *pub;
	mb_sub *sub;
} mb_conn;

typedef struct mb_worker {
	int id;
	pthread_t th;
	int ep, evfd;
	mb_conn **conns;
	int nconns;
	int next_start, pending;      /* setup: next conn to open, opens in progress */
	mb_pub **pubs;
	int npubs;
	uint8_t *wake;                /* per worker: receivers' wake-ups to send this turn */
	mb_stats st;
} mb_worker;

typedef struct mb_run {
	mb_opts o;
	struct sockaddr_storage addr, sub_addr; /* sub_addr: --sub-port, else addr */
	socklen_t addrlen, sub_addrlen;
	mb_worker *w;
	mb_conn *conns;
	int nconns;
	mb_pub *pubs;
	int npubs;
	mb_sub *subs;
	int nsubs;
	_Atomic int phase;
	_Atomic int ready, failed;    /* connections through setup / failed */
	uint64_t t_start, t_warm, t_end; /* set before phase RUN */
	uint64_t setup_start, setup_done;
	struct ssl_ctx_st *tls;       /* --cafile: the client context every connection uses */
} mb_run;

extern mb_run *mb_g;

/* ---- conn.c ---- */
uint64_t mb_now(void);
int mb_conn_start(mb_conn *c);                 /* non-blocking connect; <0 failed */
void mb_conn_on_event(mb_conn *c, uint32_t ev);
int mb_conn_flush(mb_conn *c);                 /* <0: connection lost */
int mb_conn_publish(mb_conn *c, uint64_t stamp); /* appends one PUBLISH; <0 cannot encode */
void mb_conn_ping(mb_conn *c);
void mb_conn_disconnect(mb_conn *c);
size_t mb_conn_pending(const mb_conn *c);
void mb_conn_fail(mb_conn *c, const char *why);

/* ---- tls.c ---- */
struct ssl_ctx_st *mb_tls_ctx(const mb_opts *o); /* exits with a message on failure */
const char *mb_tls_sni(const mb_opts *o);        /* --host, or NULL for an address */
int mb_hs_main(mb_run *g);                       /* the hs scenario: handshakes per second */

/* ---- worker.c ---- */
void *mb_worker_main(void *arg);
void mb_worker_kick(mb_worker *w);
void mb_pub_wake_check(mb_pub *p, mb_worker *self);

/* ---- procstat.c ---- */
double mb_proc_cpu(int pid);               /* utime + stime in seconds, <0 if unknown */
long mb_proc_status_kb(int pid, const char *field); /* "VmRSS", "VmHWM"; <0 if unknown */
double mb_self_cpu(void);                  /* getrusage: user + system seconds */
double mb_machine_cpu(void);               /* user+system+steal seconds, all cores (/proc/stat) */

/* ---- report.c ---- */
typedef struct mb_result {
	mb_stats st;
	uint64_t expected, lost, inflight_end;
	double secs;
	double gen_cpu, broker_cpu; /* seconds in the measured window; broker <0 unknown */
	double machine_cpu;         /* all processes on all cores, same window; <0 unknown */
	double aux_cpu;             /* the --aux-pid processes, same window; <0 none or unknown */
	double broker2_cpu;         /* the --broker-pid2 broker's part of broker_cpu; <0 none */
	long broker_rss0, broker_rss1, broker_hwm; /* kB */
	int connected, failed;
	double connect_secs;
} mb_result;

void mb_report(const mb_run *r, const mb_result *res);

#endif
