/*
 * broker/resolve.h - a name lookup a worker's event loop does not wait for (resolve.c).
 *
 * getaddrinfo(3) blocks for as long as DNS takes (seconds, or tens of seconds when a server
 * does not answer) and cannot be interrupted. A bridge whose address is a host name resolves
 * it in a short-lived helper thread and its worker looks at the result on its tick, so every
 * other client of that worker is served meanwhile. The lookup is shared by the two threads
 * through a reference count: whoever lets go last frees it, so a lookup the bridge gave up on
 * finishes and cleans up on its own. Cost: one thread per lookup (a bridge connecting, not a
 * message). A literal address never needs one (mg_resolve_numeric).
 *
 * Test hook: MIDGE_TEST_RESOLVER=IPV4:PORT in the environment makes the helper ask that DNS
 * server instead of /etc/resolv.conf's (test/broker/test_bridge_resolve.py answers, or holds
 * back, the queries of a name of its own). Nothing else reads it.
 */
#ifndef MG_BROKER_RESOLVE_H
#define MG_BROKER_RESOLVE_H

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct mg_resolve mg_resolve;

/* host (and bind, NULL for none: bridge_bind_address) resolved for TCP without DNS, when both
 * are literal addresses. 0 with *ai (and *bind_ai) to freeaddrinfo; -1: a name, use
 * mg_resolve_start. */
int mg_resolve_numeric(const char *host, uint16_t port, const char *bind, struct addrinfo **ai,
                       struct addrinfo **bind_ai);

/* Start resolving host:port (and bind) in a helper thread. NULL: no memory or no thread. */
mg_resolve *mg_resolve_start(const char *host, uint16_t port, const char *bind);
/* Done? Then the results move to the caller (*ai, *bind_ai: freeaddrinfo; NULL on failure)
 * and *gai is getaddrinfo's result (0 or an EAI_* code). Never blocks. */
bool mg_resolve_done(mg_resolve *r, struct addrinfo **ai, struct addrinfo **bind_ai, int *gai);
/* The caller lets go (done or not); the helper frees what is left when it ends. NULL: nothing. */
void mg_resolve_drop(mg_resolve *r);

#endif
