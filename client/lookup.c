/* client/lookup.c - a name lookup the loop thread can walk away from.
 *
 * getaddrinfo(3) blocks for as long as DNS takes (seconds when a server does not answer), and
 * cannot be interrupted. loop_forever / loop_start's reconnects run it in a helper thread and
 * wait in short slices, so a midge_disconnect or midge_loop_stop meanwhile ends the wait at
 * once. The lookup owns its memory and is shared by the two threads through a reference count:
 * whoever lets go last frees it, so an abandoned lookup finishes and cleans up on its own, never
 * touching the client (which may be gone by then). Cost: one short-lived thread per reconnect. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

struct mgc_lookup {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;             /* the caller and the worker */
	bool done;
	int rc, err;          /* mgc_resolve's result and errno */
	struct addrinfo *ai;  /* owned until taken */
	int port;
	char host[];
};

static void unref(mgc_lookup *l)
{
	pthread_mutex_lock(&l->mu);
	bool last = --l->refs == 0;
	pthread_mutex_unlock(&l->mu);
	if (!last)
		return;
	if (l->ai)
		freeaddrinfo(l->ai);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static void *worker(void *arg)
{
	mgc_lookup *l = arg;
	struct addrinfo *ai = NULL;
	int rc = mgc_resolve(l->host, l->port, &ai);
	int e = errno;
	pthread_mutex_lock(&l->mu);
	l->rc = rc;
	l->err = e;
	l->ai = ai;
	l->done = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	unref(l);
	return NULL;
}

mgc_lookup *mgc_lookup_start(const char *host, int port)
{
	size_t n = strlen(host);
	mgc_lookup *l = calloc(1, sizeof(*l) + n + 1);
	if (!l)
		return NULL;
	memcpy(l->host, host, n + 1);
	l->port = port;
	l->refs = 2;
	pthread_mutex_init(&l->mu, NULL);
	mg_plat_cond_init(&l->cv);
	pthread_attr_t at;
	pthread_t t;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &at, worker, l);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		pthread_cond_destroy(&l->cv);
		pthread_mutex_destroy(&l->mu);
		free(l);
		return NULL;
	}
	return l;
}

bool mgc_lookup_wait(mgc_lookup *l, int ms, struct addrinfo **ai, int *rc)
{
	int64_t until = mg_plat_now_ms() + ms;
	pthread_mutex_lock(&l->mu);
	while (!l->done)
		if (mg_plat_cond_wait_until(&l->cv, &l->mu, until) == ETIMEDOUT)
			break;
	bool done = l->done;
	int e = l->err;
	if (done) {
		*ai = l->ai;
		*rc = l->rc;
		l->ai = NULL;
	}
	pthread_mutex_unlock(&l->mu);
	if (done)
		errno = e;
	return done;
}

void mgc_lookup_drop(mgc_lookup *l)
{
	if (l)
		unref(l);
}
