/*
 * broker/bridge.h - bridges at run time (bridge.c): each `connection` block of the config
 * (bridge_conf.h) is an outgoing MQTT connection on one worker's event loop, like any
 * connection (an mg_conn with `outbound` set: conn.c reads, frames and writes it), plus a
 * local session that holds the `out` subscriptions and queues for the remote while it is
 * down. No thread per bridge.
 *
 * What goes where:
 *   - local -> remote: the session is subscribed locally to each out/both entry's local_topic
 *     (No Local, Retain As Published, as mosquitto does); session.c writes its deliveries as
 *     PUBLISH into the connection, the topic mapped by mg_bridge_out_topic. QoS 1/2 go
 *     through the session's inflight window, are resent after a reconnect, and wait in its
 *     queue (max_queued_messages / _bytes) while the remote is down.
 *   - remote -> local: CONNACK, SUBACK, UNSUBACK, PINGRESP are the bridge's own; a PUBLISH is
 *     mapped (mg_bridge_map_topic, in) and handled as a client's PUBLISH (handle.c) with the
 *     session as publisher, so No Local keeps it from going back out.
 * Loops: 3.1/3.1.1 CONNECT with the try_private bit (level | 0x80), which mosquitto and midge
 * answer with No Local on the bridge's subscriptions; 5.0 subscribes with No Local itself.
 *
 * Threads: a bridge, its session and its connection belong to worker (index % nworkers);
 * only that worker touches them (worker.h's rules). The config is read-only.
 */
#ifndef MG_BROKER_BRIDGE_H
#define MG_BROKER_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

typedef struct mg_broker mg_broker;
typedef struct mg_worker mg_worker;
typedef struct mg_conn mg_conn;
typedef struct mg_bridge mg_bridge;

/* After the workers are made and the store restored, before their threads start: one
 * mg_bridge per `connection` on the worker that holds its restored session (else bridge i on
 * worker i % nworkers), with the timer that starts and minds it; TLS contexts read (errors
 * logged, -EINVAL). 0 without bridges. */
int mg_bridges_init(mg_broker *b);
/* After every worker is freed. */
void mg_bridges_free(mg_broker *b);

/* ---- what conn.c and session.c call for an outbound connection ---- */

/* A whole packet from the remote. 0, or -1 when c was closed. */
int mg_bridge_packet(mg_conn *c, const mg_packet *p);
/* c is closing (mg_conn_close): the bridge goes down and plans its restart. */
void mg_bridge_closed(mg_conn *c);
/* The topic and retain flag the remote gets for local topic t: t mapped into buf (cap bytes)
 * or a malloc'd *heap the caller frees; .p NULL when it cannot be sent (no memory, or the
 * mapping leaves nothing). Also counts as traffic for idle_timeout. */
mg_bytes mg_bridge_out_topic(mg_conn *c, mg_bytes t, bool *retain, uint8_t *buf, size_t cap,
                             uint8_t **heap);

#endif
