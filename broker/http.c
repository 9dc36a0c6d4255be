/*
 * broker/http.c - plain HTTP on a WebSockets listener: static files from http_dir, the way
 * mosquitto.conf's http_dir serves a web client from the broker's own port.
 *
 * A file is read whole into memory and sent with the answer, then the connection closes (no
 * keep-alive: a page loads a handful of files, and a broker's worker should not hold HTTP
 * connections). The read blocks the worker for the time of one small local file, as in
 * mosquitto; files over MAX_FILE are refused rather than buffered.
 *
 * Nothing outside http_dir is ever opened: the path is percent-decoded and then refused when
 * any segment is "." or ".." or it holds a NUL or a backslash, and what is finally opened must
 * resolve (realpath, so following symbolic links) to a name under the directory's own real
 * path.
 */
#include "broker/http.h"
#include "broker/broker.h"
#include "broker/conn.h"
#include "broker/log.h"
#include "broker/metrics.h"
#include "broker/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE (64 * 1024 * 1024)

/* Read the file at path (already checked to lie under dir) into r. */
static void serve_file(const char *dir, const char *path, mg_http_reply *r)
{
	char rdir[PATH_MAX], rfile[PATH_MAX];
	if (!realpath(dir, rdir)) {
		r->status = 404;
		return;
	}
	if (!realpath(path, rfile)) {
		r->status = errno == EACCES ? 403 : 404;
		return;
	}
	size_t dl = strlen(rdir);
	if (strncmp(rfile, rdir, dl) != 0 || (rfile[dl] != '/' && !(dl == 1 && rdir[0] == '/'))) {
		r->status = 404; /* a link out of the directory: as if it were not there */
		return;
	}
	int fd = open(rfile, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		r->status = errno == EACCES ? 403 : 404;
		if (fd >= 0)
			close(fd);
		return;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > MAX_FILE) {
		r->status = S_ISREG(st.st_mode) ? 403 : 404;
		close(fd);
		return;
	}
	size_t len = (size_t)st.st_size, got = 0;
	char *body = malloc(len ? len : 1);
	if (!body) {
		r->status = 503;
		close(fd);
		return;
	}
	while (got < len) {
		ssize_t n = read(fd, body + got, len - got);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (got != len) { /* it shrank, or a read error: say so rather than send half */
		free(body);
		r->status = 500;
		return;
	}
	r->status = 200;
	r->body = body;
	r->body_len = len;
	r->ctype = mg_http_ctype(rfile);
	r->extra = "X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\n";
}

void mg_http_answer(void *ud, const mg_http_msg *req, mg_http_reply *r)
{
	mg_conn *c = ud;
	const mg_listener_conf *lc = &c->w->b->cfg->listeners[c->lidx];
	char path[PATH_MAX];
	r->status = 404;
	if (lc->http_metrics && mg_metrics_answer(c, req, r))
		; /* /metrics or /healthz (metrics.c) */
	else if (lc->http_dir) {
		if (mg_http_path(lc->http_dir, req->target, req->target_len, path, sizeof path) < 0)
			r->status = 400;
		else
			serve_file(lc->http_dir, path, r);
	}
	mg_log(MG_LOG_WEBSOCKETS, "HTTP %.*s %.*s from %.*s: %d", (int)req->method_len, req->method,
	       (int)(req->target_len > 256 ? 256 : req->target_len), req->target, c->host_len, c->peer,
	       r->status);
}

int mg_http_ws_wrap(mg_conn *c)
{
	const mg_config *cfg = c->w->b->cfg;
	mg_ws_server_opts o = {
		.headers_max = cfg->websockets_headers_size > 0 ? (size_t)cfg->websockets_headers_size : 0,
		.http = mg_http_answer,
		.http_ud = c,
	};
	mg_transport tcp = c->tr;
	int r = mg_ws_server_init(&c->tr, &tcp, &o);
	if (r < 0) {
		c->tr.ops = NULL;
		c->tr.fd = -1;
	}
	c->handshaking = true;
	return r;
}
