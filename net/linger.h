/*
 * net/linger.h - the lingering close, as HTTP servers do it. After a last message that says
 * why (a DISCONNECT with a reason code, a refusing CONNACK), the write side is shut down and
 * whatever the peer still sends is read and thrown away for a short, bounded time before the
 * socket is closed. Closing a socket that has unread input makes the kernel answer with a
 * reset, and a reset makes the peer's kernel drop what it received but had not yet handed to
 * the program: often the very reason we sent. The peer now reads the reason and then an
 * orderly end of stream.
 *
 * Costs: a lingering socket keeps its descriptor (not its connection's memory) until the
 * peer closes, `ms` pass, or `max_bytes` were read; at most `max` sockets linger per set, a
 * socket beyond that is closed at once, as before. One set per event loop, used by its
 * thread only.
 */
#ifndef MG_NET_LINGER_H
#define MG_NET_LINGER_H

#include <stddef.h>
#include <stdint.h>

#include "net/loop.h"
#include "net/transport.h"

typedef struct mg_linger mg_linger;

/* NULL on ENOMEM. */
mg_linger *mg_linger_new(mg_loop *l, int max, int64_t ms, size_t max_bytes);
/* Takes ownership of t's connection (everything already written; t is not watched on the
 * loop any more): shuts its write side and drains it, or closes it at once when the set is
 * full or the transport cannot shut down its write side. t->ops is NULL afterwards. */
void mg_linger_add(mg_linger *g, mg_transport *t);
int mg_linger_count(const mg_linger *g); /* sockets lingering now */
/* Closes every lingering socket and frees the set (NULL is fine). */
void mg_linger_free(mg_linger *g);

#endif
