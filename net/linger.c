/* net/linger.c - the lingering close (see linger.h): a fixed table of sockets, each drained
 * by a read callback and ended by a one-shot timer. */
#include "net/linger.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct entry {
	mg_transport tr;   /* tr.ops NULL: the slot is free */
	mg_linger *g;
	long timer;
	size_t read;
} entry;

struct mg_linger {
	mg_loop *l;
	int max, n;
	int64_t ms;
	size_t max_bytes;
	entry *e;          /* max entries, allocated once: callbacks hold pointers into it */
};

mg_linger *mg_linger_new(mg_loop *l, int max, int64_t ms, size_t max_bytes)
{
	mg_linger *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	g->e = calloc((size_t)(max > 0 ? max : 1), sizeof *g->e);
	if (!g->e) {
		free(g);
		return NULL;
	}
	g->l = l;
	g->max = max;
	g->ms = ms;
	g->max_bytes = max_bytes;
	return g;
}

static void end(entry *e)
{
	mg_linger *g = e->g;
	mg_loop_unwatch(g->l, e->tr.fd);
	if (e->timer > 0)
		mg_loop_timer_cancel(g->l, e->timer);
	mg_transport_close(&e->tr);
	e->tr.ops = NULL;
	g->n--;
}

static void on_deadline(mg_loop *l, void *ud)
{
	entry *e = ud;
	(void)l;
	e->timer = 0; /* one-shot: the loop already dropped it */
	end(e);
}

static void on_read(mg_loop *l, int fd, void *ud, int mask)
{
	entry *e = ud;
	uint8_t buf[16384]; /* fixed size: what is read is thrown away */
	(void)l;
	(void)fd;
	(void)mask;
	for (;;) {
		ssize_t n = mg_transport_read(&e->tr, buf, sizeof buf);
		if (n == -EAGAIN)
			return;
		if (n <= 0) { /* the peer closed (what we wanted) or an error: done */
			end(e);
			return;
		}
		e->read += (size_t)n;
		if (e->read >= e->g->max_bytes) {
			end(e);
			return;
		}
	}
}

void mg_linger_add(mg_linger *g, mg_transport *t)
{
	entry *e = NULL;
	for (int i = 0; g && g->n < g->max && i < g->max; i++)
		if (!g->e[i].tr.ops) {
			e = &g->e[i];
			break;
		}
	if (!e || mg_transport_shutdown_write(t) < 0) {
		mg_transport_close(t);
		t->ops = NULL;
		return;
	}
	*e = (entry){ .tr = *t, .g = g };
	t->ops = NULL;
	t->fd = -1;
	g->n++;
	e->timer = mg_loop_timer(g->l, g->ms, 0, on_deadline, e);
	if (e->timer < 0 || mg_loop_watch(g->l, e->tr.fd, MG_EV_READ, on_read, e, false) < 0) {
		if (e->timer < 0)
			e->timer = 0;
		end(e);
	}
}

int mg_linger_count(const mg_linger *g)
{
	return g ? g->n : 0;
}

void mg_linger_free(mg_linger *g)
{
	if (!g)
		return;
	for (int i = 0; i < g->max; i++)
		if (g->e[i].tr.ops)
			end(&g->e[i]);
	free(g->e);
	free(g);
}
