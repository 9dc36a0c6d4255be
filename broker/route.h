/*
 * broker/route.h - where a message goes: the retained store, then every matching subscription
 * (route.c). A delivery to another worker's session is posted to that worker (worker.h).
 */
#ifndef MG_BROKER_ROUTE_H
#define MG_BROKER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/msg.h"
#include "broker/registry.h"
#include "broker/retain.h"

typedef struct mg_worker mg_worker;

/* Route a message to every matching subscriber (publisher may be NULL for wills/$SYS).
 * Returns how many subscriptions matched, counting those that were skipped (No Local, a
 * shared group with nobody eligible): 0 is "No matching subscribers" (0x10). */
int mg_route(mg_worker *w, mg_msg *m, mg_sref publisher);
/* A message from another node (cluster.h): plain, to the plain subscribers only (the
 * shared groups get it through their own NATS subscriptions). */
int mg_route_remote(mg_worker *w, mg_msg *m, bool plain);
/* A message from another node for the one shared group share ("$share/group/filter"):
 * to one member of it. false: no member here (or m does not match the filter). */
bool mg_route_group(mg_worker *w, mg_msg *m, const uint8_t *share, size_t len);
/* Publish a message as the broker would on receipt: retain store + routing. */
int mg_publish_msg(mg_worker *w, mg_msg *m, mg_sref publisher);
/* The same, taking the caller's reference to m (the last recipient gets it instead of a
 * new one: no atomic add now, no atomic subtract when the caller is done). */
int mg_publish_msg_take(mg_worker *w, mg_msg *m, mg_sref publisher);
/* May a client publish (a PUBLISH or a will) to topic t (after its mount point)? Not to
 * $SYS/..., except a bridge's $SYS/broker/connection/NAME/state, nor to "$share/...".
 * The broker's own messages ($SYS, route.c callers) are not asked. */
bool mg_client_may_publish(const uint8_t *t, size_t len);
mg_retain *mg_broker_retain_new(void); /* values are mg_msg, refcounted */

#endif
