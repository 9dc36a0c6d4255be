/*
 * broker/metrics.h - Prometheus metrics and a health check on a WebSockets listener with
 * http_metrics true (metrics.c; docs/metrics.md lists every metric).
 */
#ifndef MG_BROKER_METRICS_H
#define MG_BROKER_METRICS_H

#include <stdbool.h>

#include "net/ws.h"

typedef struct mg_conn mg_conn;
typedef struct mg_worker mg_worker;

/* GET or HEAD /metrics (text format 0.0.4) or /healthz ("ok"): fills r and returns true.
 * Any other target: false, r untouched. Runs on c's worker; reads the others' counters. */
bool mg_metrics_answer(mg_conn *c, const mg_http_msg *req, mg_http_reply *r);

/* Every tick (1 s), on w's own thread: recount w's queued and in-flight gauges. */
void mg_metrics_tick(mg_worker *w);

#endif
