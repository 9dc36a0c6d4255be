/*
 * test/client/c/slowdns.c - mgtest (same commands and output) with a slow name service: every
 * getaddrinfo(3) after the first sleeps $SLOWDNS_MS milliseconds first, as a DNS server that
 * does not answer would make it. The first lookup (the program's connect) is quick, so the loop's
 * reconnects are the slow ones. The executable's getaddrinfo takes precedence over libc's (and
 * the sanitizer's), and hands the real lookup on to the next one in line. A slow lookup says
 * "slowdns: answered" on stdout when it returns, so a test can order it against the
 * program's other lines without a clock.
 */
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <unistd.h>

#include "mgtest.c"

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
	static int calls;
	gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	const char *ms = getenv("SLOWDNS_MS");
	int slow = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST) > 1 && ms;
	if (slow)
		usleep((useconds_t)atoi(ms) * 1000);
	int r = real ? real(node, service, hints, res) : EAI_FAIL;
	if (slow)
		printf("slowdns: answered\n"); /* stdout is line-buffered (mgtest's main) */
	return r;
}
