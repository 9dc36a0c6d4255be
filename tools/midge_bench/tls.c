/*
 * tools/midge_bench/tls.c - TLS for midge_bench (net/tls.c, client mode): the client context
 * every connection shares, and the hs scenario, which measures how many TLS connections a
 * broker sets up per second: TLS handshake, CONNECT, CONNACK, DISCONNECT, close, again, by
 * --clients loops at once. With --resume each loop offers the session its previous
 * connection got (a TLS 1.3 ticket or a 1.2 session id), so the broker can skip the
 * certificate and key exchange work; the output says how many were really resumed.
 */
#include "tools/midge_bench/bench.h"
#include "net/tls.h"
#include "proto/proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* The name to send as SNI: --host, unless it is an address (SNI carries names only). */
const char *mb_tls_sni(const mb_opts *o)
{
	unsigned char a[16];
	if (inet_pton(AF_INET, o->host, a) == 1 || inet_pton(AF_INET6, o->host, a) == 1)
		return NULL;
	return o->host;
}

/* --no-verify's chain "check": accept without building or checking anything. */
static int accept_chain(X509_STORE_CTX *x, void *arg)
{
	(void)x, (void)arg;
	return 1;
}

SSL_CTX *mb_tls_ctx(const mb_opts *o)
{
	SSL_CTX *ctx = mg_tls_ctx_new(MG_TLS_CLIENT);
	if (!ctx || SSL_CTX_load_verify_file(ctx, o->cafile) != 1 ||
	    (o->certfile && SSL_CTX_use_certificate_chain_file(ctx, o->certfile) != 1) ||
	    (o->keyfile && SSL_CTX_use_PrivateKey_file(ctx, o->keyfile, SSL_FILETYPE_PEM) != 1)) {
		char buf[256];
		ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
		fprintf(stderr, "midge_bench: TLS: %s\n", buf);
		exit(2);
	}
	/* --no-verify: the generator skips the chain check (an ECDSA verify per full handshake,
	 * three times the broker's sign), so that a handshake benchmark measures the broker
	 * rather than the generator. SSL_VERIFY_NONE alone is not enough: OpenSSL still builds
	 * and checks the chain (X509_verify_cert) and only ignores the result; the callback
	 * replaces that check, and costs both brokers' rows the same. */
	SSL_CTX_set_verify(ctx, o->no_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	if (o->no_verify)
		SSL_CTX_set_cert_verify_callback(ctx, accept_chain, NULL);
	/* the client keeps its own sessions for --resume (SSL_get1_session), not a cache */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

typedef struct hs_loop {
	pthread_t th;
	mb_run *g;
	int idx;
	uint64_t done_win, resumed_win, failed;
	char err[160];
} hs_loop;

static int write_all(mg_transport *t, const uint8_t *p, size_t n)
{
	while (n) {
		struct iovec iov = { (void *)p, n };
		ssize_t w = mg_transport_writev(t, &iov, 1);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One connection, blocking: 0, or -1 with why in l->err. *sess: offered, then replaced by
 * the session this connection got. */
static int one(hs_loop *l, SSL_SESSION **sess, bool *resumed)
{
	mb_run *g = l->g;
	int fd = socket(g->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&g->addr, g->addrlen) < 0) {
		snprintf(l->err, sizeof l->err, "connect: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int on = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
	mg_transport t;
	if (mg_tls_init(&t, fd, g->tls, MG_TLS_CLIENT, mb_tls_sni(&g->o)) < 0) {
		snprintf(l->err, sizeof l->err, "out of memory");
		return -1;
	}
	SSL *ssl = mg_tls_ssl(&t);
	if (*sess)
		SSL_set_session(ssl, *sess);
	int rc = -1;
	char line[128];
	if (mg_transport_handshake(&t) != 0) { /* a blocking socket: done or failed */
		snprintf(l->err, sizeof l->err, "handshake: %s",
		         mg_tls_error(&t, 0, line, sizeof line) ? line : "failed");
		goto out;
	}
	char id[48];
	int n = snprintf(id, sizeof id, "mbhs-%d-%d", (int)getpid(), l->idx);
	mg_packet p;
	memset(&p, 0, sizeof p);
	p.type = MG_CONNECT;
	p.u.connect.level = MG_V311;
	p.u.connect.protocol_name = (mg_bytes){ (const uint8_t *)"MQTT", 4 };
	p.u.connect.clean = true;
	p.u.connect.keepalive = 60;
	p.u.connect.client_id = (mg_bytes){ (const uint8_t *)id, (uint32_t)n };
	uint8_t buf[128];
	size_t len = mg_encode(buf, sizeof buf, MG_V311, &p);
	uint8_t ack[4];
	if (!len || len > sizeof buf || write_all(&t, buf, len) < 0 ||
	    mg_transport_read(&t, ack, sizeof ack) != (ssize_t)sizeof ack || ack[0] != 0x20 || ack[3] != 0) {
		snprintf(l->err, sizeof l->err, "no CONNACK 0");
		goto out;
	}
	static const uint8_t disc[2] = { 0xe0, 0 };
	write_all(&t, disc, sizeof disc);
	*resumed = SSL_session_reused(ssl);
	/* the session with the tickets that came before CONNACK */
	SSL_SESSION *s = SSL_get1_session(ssl);
	if (s) {
		SSL_SESSION_free(*sess);
		*sess = s;
	}
	rc = 0;
out:
	mg_transport_close(&t);
	return rc;
}

static void *hs_main(void *arg)
{
	hs_loop *l = arg;
	mb_run *g = l->g;
	SSL_SESSION *sess = NULL;
	while (atomic_load(&g->phase) != PH_STOP) {
		bool resumed = false;
		SSL_SESSION **offer = &sess;
		SSL_SESSION *none = NULL;
		if (!g->o.resume)
			offer = &none;
		if (one(l, offer, &resumed) < 0) {
			l->failed++;
			if (l->failed > 100)
				break;
			continue;
		}
		SSL_SESSION_free(none);
		uint64_t now = mb_now();
		if (now >= g->t_warm && now < g->t_end) {
			l->done_win++;
			l->resumed_win += resumed;
		}
	}
	SSL_SESSION_free(sess);
	mg_tls_thread_cleanup();
	return NULL;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { (time_t)(t / 1000000000ull), (long)(t % 1000000000ull) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

int mb_hs_main(mb_run *g)
{
	const mb_opts *o = &g->o;
	int n = o->clients;
	hs_loop *ls = calloc((size_t)n, sizeof *ls);
	if (!ls)
		return 2;
	uint64_t now = mb_now();
	g->t_start = now;
	g->t_warm = now + (uint64_t)(o->warmup * 1e9);
	g->t_end = g->t_warm + (uint64_t)(o->duration * 1e9);
	atomic_store(&g->phase, PH_RUN);
	for (int i = 0; i < n; i++) {
		ls[i].g = g;
		ls[i].idx = i;
		pthread_create(&ls[i].th, NULL, hs_main, &ls[i]);
	}
	sleep_until(g->t_warm);
	double b0 = mb_proc_cpu(o->broker_pid), s0 = mb_self_cpu(), m0 = mb_machine_cpu();
	sleep_until(g->t_end);
	double b1 = mb_proc_cpu(o->broker_pid), s1 = mb_self_cpu(), m1 = mb_machine_cpu();
	atomic_store(&g->phase, PH_STOP);
	uint64_t done = 0, resumed = 0, failed = 0;
	const char *err = NULL;
	for (int i = 0; i < n; i++) {
		pthread_join(ls[i].th, NULL);
		done += ls[i].done_win;
		resumed += ls[i].resumed_win;
		failed += ls[i].failed;
		if (ls[i].failed && !err)
			err = ls[i].err;
	}
	double secs = o->duration;
	double bcpu = b0 >= 0 && b1 >= 0 ? b1 - b0 : -1;
	long hwm = mb_proc_status_kb(o->broker_pid, "VmHWM");
	if (o->json)
		printf("{\"scenario\":\"hs\",\"clients\":%d,\"resume\":%s,\"duration\":%.3f,"
		       "\"handshakes\":%llu,\"handshakes_per_s\":%.1f,\"resumed\":%llu,\"failed\":%llu,"
		       "\"broker_cpu_s\":%.3f,\"broker_cpu_us_per_handshake\":%.1f,\"generator_cpu_s\":%.3f,"
		       "\"other_cpu_s\":%.3f,\"broker_hwm_kb\":%ld,\"lost\":0}\n",
		       n, o->resume ? "true" : "false", secs, (unsigned long long)done, done / secs,
		       (unsigned long long)resumed, (unsigned long long)failed, bcpu,
		       bcpu >= 0 && done ? bcpu * 1e6 / (double)done : -1, s1 - s0,
		       m0 >= 0 && m1 >= 0 && bcpu >= 0 ? (m1 - m0) - bcpu - (s1 - s0) : -1, hwm);
	else
		printf("hs: %d loops, %s: %.0f connections/s (%llu in %.1f s, %llu resumed, %llu failed), "
		       "broker CPU %.1f us each\n", n, o->resume ? "resuming" : "full handshakes",
		       done / secs, (unsigned long long)done, secs, (unsigned long long)resumed,
		       (unsigned long long)failed, bcpu >= 0 && done ? bcpu * 1e6 / (double)done : -1);
	if (err)
		fprintf(stderr, "midge_bench: hs: %llu failed, e.g. %s\n", (unsigned long long)failed, err);
	free(ls);
	return done ? 0 : 1;
}
