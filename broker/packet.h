/*
 * broker/packet.h - handling the packets of a connection: CONNECT (connect.c), SUBSCRIBE and
 * UNSUBSCRIBE (subscribe.c), everything else (handle.c). conn.c frames the bytes and calls
 * mg_handle_packet / mg_handle_connect; a handler works on the session (session.h), which
 * routes (route.h).
 */
#ifndef MG_BROKER_PACKET_H
#define MG_BROKER_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/conn.h"
#include "proto/proto.h"

int mg_handle_packet(mg_conn *c, const mg_packet *p);   /* 0 or closes c and returns -1 */
int mg_handle_connect(mg_conn *c, const mg_packet *p);  /* 0, -1 closed, 1 handed off, 2 parked (auth.h) */
/* A newer connection (here or on another node) takes s over: its old connection is closed as
 * the spec says (5.0: DISCONNECT 0x8E) and s goes offline (mg_session_take_over). */
void mg_takeover_close(mg_worker *w, mg_session *s, bool resume);
int mg_handle_subscribe(mg_conn *c, const mg_packet *p);
int mg_handle_unsubscribe(mg_conn *c, const mg_packet *p);
void mg_subwork_drop(mg_conn *c); /* a closing connection's packet in progress, if any */
/* Log a protocol error with the client id, send DISCONNECT rc (5.0), close. Returns -1. */
int mg_proto_err(mg_conn *c, uint8_t rc, const char *why);
/* mount_point: prefix t with the connection's listener mount point into stack (cap bytes) or,
 * when longer, a malloc'd buffer returned in *heap (the caller frees it). Shared filters
 * keep "$share/group/" in front. Returns t itself without a mount point; .p NULL on ENOMEM. */
mg_bytes mg_mount(const mg_conn *c, mg_bytes t, bool filter, uint8_t *stack, size_t cap, uint8_t **heap);

#endif
