/*
 * test/client/c/tlstest.c - libmidge over TLS, for test/client/test_client_tls.py: set TLS up
 * from the options, connect, and (when connected) send a message to ourselves through the
 * broker and check that it came back whole. Every step prints one line.
 *
 *   tlstest -p PORT [-h HOST] [-d] [-u USER] [-P PASS] [-T CONNECT_TIMEOUT_MS] [-s BYTES]
 *           [--cafile F] [--capath D] [--cert F --key F] [--keypass PASS] [--insecure]
 *           [--os-certs] [--tls-version V] [--ciphers C] [--no-verify]
 *           [--psk HEX --psk-identity ID] [--async N] [--connect-only] [--thread]
 *           [--proxy PORT]  (through the SOCKS5 proxy at 127.0.0.1:PORT)
 *   --keypass   midge_tls_set gets a password callback that answers PASS (and prints
 *               "pw_callback rwflag=R userdata=ok" when called)
 *   --no-verify midge_tls_opts_set(MIDGE_TLS_CERT_NONE)
 *   --thread    midge_loop_start first: the loop (and the handshake) run in its thread while
 *               this one connects, publishes and waits
 *   --async N   connect_async, then up to N turns of midge_loop(c, 100), printing "turn K
 *               connected=B" after each, until on_connect or on_connect_fail
 *   prints: "<call> rc=R" for every midge_tls_* / connect call, "connect rc=R", "on_connect
 *   rc=R", "on_connect_fail rc=R", "roundtrip ok" (or "roundtrip bad ..."), "disconnect rc=R";
 *   -d: on_log lines as "log: LINE". Exit status 0 once the program ran to its end.
 */
#include <midge/midge.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *keypass;
static int pw_calls;
static char *expect;
static size_t expect_len;
static atomic_int got, bad; /* on_message may run in the loop_start thread */
static int connect_result = 1000;

static int pw_cb(char *buf, int size, int rwflag, void *userdata)
{
	pw_calls++;
	printf("pw_callback rwflag=%d userdata=%s\n", rwflag,
	       userdata == (void *)&keypass ? "ok" : "wrong");
	int n = (int)strlen(keypass);
	if (n > size)
		n = size;
	memcpy(buf, keypass, (size_t)n);
	return n;
}

static void on_log(midge_client *c, void *ud, int level, const char *line)
{
	(void)c, (void)ud, (void)level;
	printf("log: %s\n", line);
}

static void on_connect(midge_client *c, void *ud, int flags, int rc, const midge_properties *p)
{
	(void)c, (void)ud, (void)flags, (void)p;
	printf("on_connect rc=%d\n", rc);
	connect_result = rc;
}

static void on_connect_fail(midge_client *c, void *ud, int rc)
{
	(void)c, (void)ud;
	printf("on_connect_fail rc=%d\n", rc);
	connect_result = rc;
}

static void on_message(midge_client *c, void *ud, const midge_message *m)
{
	(void)c, (void)ud;
	if (m->payloadlen == expect_len && !memcmp(m->payload, expect, expect_len))
		got++;
	else
		bad++;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *user = NULL, *pass = NULL;
	const char *cafile = NULL, *capath = NULL, *cert = NULL, *key = NULL;
	const char *version = NULL, *ciphers = NULL, *psk = NULL, *psk_id = NULL;
	bool insecure = false, os_certs = false, no_verify = false, debug = false, only = false;
	bool thread = false;
	int port = 0, ctimeout = 0, async_turns = 0, proxy = 0;
	size_t size = 100;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		bool used = true;
		if (!strcmp(a, "-p")) port = atoi(v);
		else if (!strcmp(a, "-h")) host = v;
		else if (!strcmp(a, "-u")) user = v;
		else if (!strcmp(a, "-P")) pass = v;
		else if (!strcmp(a, "-T")) ctimeout = atoi(v);
		else if (!strcmp(a, "-s")) size = (size_t)atol(v);
		else if (!strcmp(a, "--cafile")) cafile = v;
		else if (!strcmp(a, "--capath")) capath = v;
		else if (!strcmp(a, "--cert")) cert = v;
		else if (!strcmp(a, "--key")) key = v;
		else if (!strcmp(a, "--keypass")) keypass = v;
		else if (!strcmp(a, "--tls-version")) version = v;
		else if (!strcmp(a, "--ciphers")) ciphers = v;
		else if (!strcmp(a, "--psk")) psk = v;
		else if (!strcmp(a, "--psk-identity")) psk_id = v;
		else if (!strcmp(a, "--async")) async_turns = atoi(v);
		else if (!strcmp(a, "--proxy")) proxy = atoi(v);
		else {
			used = false;
			if (!strcmp(a, "--insecure")) insecure = true;
			else if (!strcmp(a, "--os-certs")) os_certs = true;
			else if (!strcmp(a, "--no-verify")) no_verify = true;
			else if (!strcmp(a, "-d")) debug = true;
			else if (!strcmp(a, "--connect-only")) only = true;
			else if (!strcmp(a, "--thread")) thread = true;
			else {
				fprintf(stderr, "unknown option %s\n", a);
				return 2;
			}
		}
		if (used)
			i++;
	}

	midge_client *c = midge_client_new("tlstest", true, (void *)&keypass, MIDGE_PROTOCOL_V311,
	                                   MIDGE_TRANSPORT_TCP);
	if (!c)
		return 2;
	if (debug)
		midge_on_log_set(c, on_log);
	midge_on_connect_set(c, on_connect);
	midge_on_connect_fail_set(c, on_connect_fail);
	midge_on_message_set(c, on_message);
	if (ctimeout)
		midge_connect_timeout_set(c, ctimeout);
	if (proxy)
		printf("proxy_set rc=%d\n", midge_proxy_set(c, MIDGE_PROXY_SOCKS5, "127.0.0.1", proxy,
		                                             NULL, NULL));
	if (user)
		printf("username_pw_set rc=%d\n", midge_username_pw_set(c, user, pass));
	if (cafile || capath || cert)
		printf("tls_set rc=%d\n", midge_tls_set(c, cafile, capath, cert, key,
		                                        keypass ? pw_cb : NULL));
	if (os_certs)
		printf("tls_use_os_certs rc=%d\n", midge_tls_use_os_certs(c, true));
	if (psk)
		printf("tls_psk_set rc=%d\n", midge_tls_psk_set(c, psk, psk_id, NULL));
	if (insecure)
		printf("tls_insecure_set rc=%d\n", midge_tls_insecure_set(c, true));
	if (version || ciphers || no_verify)
		printf("tls_opts_set rc=%d\n", midge_tls_opts_set(c, no_verify ? MIDGE_TLS_CERT_NONE :
		                                                  MIDGE_TLS_CERT_REQUIRED, version, ciphers));
	fflush(stdout);

	int rc;
	if (thread)
		printf("loop_start rc=%d\n", midge_loop_start(c));
	if (async_turns) {
		rc = midge_connect_async(c, host, port, 30);
		printf("connect_async rc=%d\n", rc);
		for (int k = 1; rc == MIDGE_OK && k <= async_turns && connect_result == 1000; k++) {
			midge_loop(c, 100);
			printf("turn %d connected=%d\n", k, midge_is_connected(c));
		}
		rc = connect_result == 1000 ? MIDGE_ERR_TIMEOUT : connect_result;
	} else {
		rc = midge_connect(c, host, port, 30);
		printf("connect rc=%d\n", rc);
	}
	if (rc == MIDGE_OK && only) {
		printf("disconnect rc=%d\n", midge_disconnect(c));
	} else if (rc == MIDGE_OK) {
		expect_len = size;
		expect = malloc(size);
		for (size_t i = 0; i < size; i++)
			expect[i] = (char)('a' + i % 26);
		midge_subscribe(c, "tlstest/echo", 1);
		int mid = midge_publish(c, "tlstest/echo", expect, size, 1, false, NULL);
		int w = midge_wait_for_publish(c, mid, 10000);
		for (int k = 0; k < 100 && !got && !bad; k++) {
			if (thread)
				nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
			else
				midge_loop(c, 100);
		}
		if (w == MIDGE_OK && got == 1 && !bad)
			printf("roundtrip ok\n");
		else
			printf("roundtrip bad wait=%d got=%d bad=%d\n", w, (int)got, (int)bad);
		printf("disconnect rc=%d\n", midge_disconnect(c));
		free(expect);
	}
	if (thread)
		printf("loop_stop rc=%d\n", midge_loop_stop(c));
	if (keypass)
		printf("pw_calls=%d\n", pw_calls);
	midge_client_free(c);
	return 0;
}
