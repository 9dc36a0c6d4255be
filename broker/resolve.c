/* broker/resolve.c - a name lookup in a helper thread (resolve.h). */
#include "broker/resolve.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mg_resolve {
	pthread_mutex_t mu;
	int refs;                      /* the bridge and the helper */
	bool done;
	int gai;
	struct addrinfo *ai, *bind_ai; /* owned until taken */
	struct sockaddr_in ns;         /* MIDGE_TEST_RESOLVER, else sin_port 0 */
	char port[8];
	char *bind;                    /* NULL, or inside host's allocation */
	char host[];
};

static const struct addrinfo hints_tcp = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };

static void unref(mg_resolve *r)
{
	pthread_mutex_lock(&r->mu);
	bool last = --r->refs == 0;
	pthread_mutex_unlock(&r->mu);
	if (!last)
		return;
	if (r->ai)
		freeaddrinfo(r->ai);
	if (r->bind_ai)
		freeaddrinfo(r->bind_ai);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static void *helper(void *arg)
{
	mg_resolve *r = arg;
	if (r->ns.sin_port) {
		/* the test's DNS server: _res is this thread's own, so nothing else is redirected */
		res_init();
		_res.nsaddr_list[0] = r->ns;
		_res.nscount = 1;
	}
	struct addrinfo *ai = NULL, *bai = NULL;
	int gai = getaddrinfo(r->host, r->port, &hints_tcp, &ai);
	if (!gai && r->bind && (gai = getaddrinfo(r->bind, NULL, &hints_tcp, &bai)) != 0) {
		freeaddrinfo(ai);
		ai = NULL;
	}
	pthread_mutex_lock(&r->mu);
	r->gai = gai;
	r->ai = ai;
	r->bind_ai = bai;
	r->done = true;
	pthread_mutex_unlock(&r->mu);
	unref(r);
	return NULL;
}

int mg_resolve_numeric(const char *host, uint16_t port, const char *bind, struct addrinfo **ai,
                       struct addrinfo **bind_ai)
{
	struct addrinfo h = hints_tcp;
	char ps[8];
	h.ai_flags = AI_NUMERICHOST;
	snprintf(ps, sizeof ps, "%u", port);
	*ai = *bind_ai = NULL;
	if (getaddrinfo(host, ps, &h, ai) != 0)
		return -1;
	if (bind && getaddrinfo(bind, NULL, &h, bind_ai) != 0) {
		freeaddrinfo(*ai);
		*ai = NULL;
		return -1;
	}
	return 0;
}

/* MIDGE_TEST_RESOLVER=IPV4:PORT (resolve.h); anything else leaves the system's servers. */
static void test_resolver(struct sockaddr_in *ns)
{
	const char *e = getenv("MIDGE_TEST_RESOLVER");
	const char *colon = e ? strrchr(e, ':') : NULL;
	char ip[INET_ADDRSTRLEN];
	if (!colon || (size_t)(colon - e) >= sizeof ip)
		return;
	memcpy(ip, e, (size_t)(colon - e));
	ip[colon - e] = '\0';
	int port = atoi(colon + 1);
	if (port <= 0 || port > 65535 || inet_pton(AF_INET, ip, &ns->sin_addr) != 1)
		return;
	ns->sin_family = AF_INET;
	ns->sin_port = htons((uint16_t)port);
}

mg_resolve *mg_resolve_start(const char *host, uint16_t port, const char *bind)
{
	size_t hn = strlen(host), bn = bind ? strlen(bind) : 0;
	mg_resolve *r = calloc(1, sizeof *r + hn + 1 + (bind ? bn + 1 : 0));
	if (!r)
		return NULL;
	memcpy(r->host, host, hn + 1);
	if (bind) {
		r->bind = r->host + hn + 1;
		memcpy(r->bind, bind, bn + 1);
	}
	snprintf(r->port, sizeof r->port, "%u", port);
	test_resolver(&r->ns);
	r->refs = 2;
	pthread_mutex_init(&r->mu, NULL);
	pthread_attr_t at;
	pthread_t t;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &at, helper, r);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		pthread_mutex_destroy(&r->mu);
		free(r);
		return NULL;
	}
	return r;
}

bool mg_resolve_done(mg_resolve *r, struct addrinfo **ai, struct addrinfo **bind_ai, int *gai)
{
	pthread_mutex_lock(&r->mu);
	bool done = r->done;
	if (done) {
		*ai = r->ai;
		*bind_ai = r->bind_ai;
		*gai = r->gai;
		r->ai = r->bind_ai = NULL;
	}
	pthread_mutex_unlock(&r->mu);
	return done;
}

void mg_resolve_drop(mg_resolve *r)
{
	if (r)
		unref(r);
}
