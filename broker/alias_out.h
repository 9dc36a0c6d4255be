/*
 * broker/alias_out.h - the topic aliases the broker sends one connection (alias_out.c). Opaque.
 */
#ifndef MG_BROKER_ALIAS_OUT_H
#define MG_BROKER_ALIAS_OUT_H

#include <stdint.h>

#include "proto/proto.h"

/* The broker -> client alias table of one connection, created only when the client's CONNECT
 * allows aliases (Topic Alias Maximum > 0). At most MG_ALIAS_OUT_MAX aliases are used. */
typedef struct mg_alias_out mg_alias_out;
#define MG_ALIAS_OUT_MAX 64
mg_alias_out *mg_alias_out_new(uint16_t client_max); /* NULL when client_max == 0 or ENOMEM */
void mg_alias_out_free(mg_alias_out *a);             /* NULL is fine */
/* The alias for a topic (as the client sees it). 1: already bound, send an empty topic and
 * *alias; 0: not yet bound, send the topic and *alias, then mg_alias_out_bind once the
 * PUBLISH is committed; -1: send the topic without an alias (a NULL, or the table is full). */
int mg_alias_out_get(mg_alias_out *a, mg_bytes topic, uint16_t *alias);
void mg_alias_out_bind(mg_alias_out *a, mg_bytes topic, uint16_t alias);

#endif
