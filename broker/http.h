/*
 * broker/http.h - what a WebSockets listener answers to plain HTTP (http.c): files under the
 * listener's http_dir. net/ws.c parses the request and writes the answer; the policy (which
 * file, which type) lives here, so net/ knows nothing of the broker.
 */
#ifndef MG_BROKER_HTTP_H
#define MG_BROKER_HTTP_H

#include <stddef.h>

#include "net/ws.h"

typedef struct mg_conn mg_conn;

/* Make c's transport a server WebSocket over its TCP socket (the listener's http_dir and the
 * broker's websockets_headers_size). 0 or -ENOMEM (the socket is then closed). */
int mg_http_ws_wrap(mg_conn *c);

/* A GET or HEAD for target on a listener serving dir (NULL: none): fills r with the file or a
 * refusal. Borrowed by net/ws.c as its mg_ws_http_fn with ud = the mg_conn. */
void mg_http_answer(void *ud, const mg_http_msg *req, mg_http_reply *r);

#endif
