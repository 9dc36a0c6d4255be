/*
 * broker/cluster_ack.c - acknowledgements held until JetStream stored the message
 * (cluster_ack.h). Two tables, both the worker's own:
 *   - per connection (c->ackq): its acknowledgements in PUBLISH order, each either ready or
 *     waiting for the answer to one JetStream publish;
 *   - per worker (w->ackwait): publish sequence -> the connection waiting for it, in
 *     sequence order (a worker's sequences only grow), so an answer finds its connection by
 *     binary search, and answers coming in order keep the table short.
 */
#include "broker/cluster_ack.h"
#include "broker/log.h"
#include "broker/packet.h"
#include "broker/worker.h"

#include <stdlib.h>
#include <string.h>

typedef struct mg_ackent {
	uint64_t seq; /* the publish it waits for, 0 ready */
	uint16_t mid;
	uint8_t type, rc;
} mg_ackent;

typedef struct waiter {
	uint64_t seq;
	mg_conn *c; /* NULL: answered, or the connection went */
} waiter;

struct mg_ackwait {
	waiter *v;
	uint32_t head, n, cap;
};

static bool grow(void **v, uint32_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return true;
	uint32_t nc = *cap ? *cap * 2 : 16;
	void *nv = realloc(*v, nc * size);
	if (!nv)
		return false;
	*v = nv;
	*cap = nc;
	return true;
}

static void send_now(mg_conn *c, uint8_t type, uint16_t mid, uint8_t rc)
{
	if (c->state != MG_CS_ACTIVE)
		return;
	mg_packet p = { .type = type, .packet_id = mid, .reason_code = rc };
	mg_log(MG_LOG_DEBUG, "Sending %s to %s (m%u, rc%d)", mg_ptype_name(type), c->id, mid, rc);
	mg_conn_send(c, &p);
}

static bool push(mg_conn *c, uint64_t seq, uint8_t type, uint16_t mid, uint8_t rc)
{
	struct mg_ackq *q = c->ackq;
	if (!q && !(q = c->ackq = calloc(1, sizeof *q)))
		return false;
	if (q->head && q->n == q->cap) { /* slide down what is left before growing */
		memmove(q->v, q->v + q->head, (q->n - q->head) * sizeof *q->v);
		q->n -= q->head;
		q->head = 0;
	}
	if (!grow((void **)&q->v, &q->cap, q->n + 1, sizeof *q->v))
		return false;
	q->v[q->n++] = (mg_ackent){ .seq = seq, .mid = mid, .type = type, .rc = rc };
	return true;
}

bool mg_ack_queue_(mg_conn *c, uint8_t type, uint16_t mid, uint8_t rc)
{
	return push(c, 0, type, mid, rc); /* out of memory: sent now, out of order */
}

void mg_ack_defer(mg_conn *c, uint64_t seq, uint8_t type, uint16_t mid, uint8_t rc)
{
	mg_worker *w = c->w;
	struct mg_ackwait *aw = w->ackwait;
	if (!aw && !(aw = w->ackwait = calloc(1, sizeof *aw)))
		goto now;
	if (aw->head && aw->n == aw->cap) {
		memmove(aw->v, aw->v + aw->head, (aw->n - aw->head) * sizeof *aw->v);
		aw->n -= aw->head;
		aw->head = 0;
	}
	if (!grow((void **)&aw->v, &aw->cap, aw->n + 1, sizeof *aw->v))
		goto now;
	if (!push(c, seq, type, mid, rc))
		goto now;
	aw->v[aw->n++] = (waiter){ .seq = seq, .c = c };
	return;
now: /* out of memory: acknowledged without waiting, as without JetStream */
	send_now(c, type, mid, rc);
}

/* The ready acknowledgements at c's head go out. */
static void drain(mg_conn *c)
{
	struct mg_ackq *q = c->ackq;
	while (q->head < q->n && q->v[q->head].seq == 0) {
		mg_ackent *e = &q->v[q->head++];
		send_now(c, e->type, e->mid, e->rc);
	}
	if (q->head == q->n)
		q->head = q->n = 0;
}

void mg_ack_done(mg_worker *w, uint64_t seq)
{
	struct mg_ackwait *aw = w->ackwait;
	bool failed = seq & MG_CLUSTER_ACK_FAILED;
	seq &= ~MG_CLUSTER_ACK_FAILED;
	if (!aw)
		return;
	uint32_t lo = aw->head, hi = aw->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (aw->v[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	mg_conn *c = lo < aw->n && aw->v[lo].seq == seq ? aw->v[lo].c : NULL;
	if (lo < aw->n && aw->v[lo].seq == seq)
		aw->v[lo].c = NULL;
	while (aw->head < aw->n && !aw->v[aw->head].c)
		aw->head++;
	if (aw->head == aw->n)
		aw->head = aw->n = 0;
	if (!c) /* a will's, or its connection went: the client resends after reconnecting */
		return;
	struct mg_ackq *q = c->ackq;
	for (uint32_t i = q->head; i < q->n; i++) {
		mg_ackent *e = &q->v[i];
		if (e->seq != seq)
			continue;
		e->seq = 0;
		if (failed) {
			/* Not stored by JetStream: no promise can be made. 5.0 says so in the PUBACK
			 * (the client may publish again); otherwise the connection closes unacknowledged
			 * and the client sends it again after reconnecting, as when the store fails. */
			mg_log(MG_LOG_WARNING, "Warning: cluster: JetStream did not store a message from %s "
			       "(m%u): %s.", c->id ? c->id : "?", e->mid, e->type == MG_PUBACK && c->level == MG_V5 ?
			       "refused in its PUBACK" : "closing the connection unacknowledged");
			if (e->type == MG_PUBACK && c->level == MG_V5) {
				e->rc = MG_RC_UNSPECIFIED;
			} else {
				mg_conn_close(c, MG_CLOSE_STORE);
				return;
			}
		}
		break;
	}
	drain(c);
}

void mg_ack_conn_free(mg_conn *c)
{
	struct mg_ackq *q = c->ackq;
	struct mg_ackwait *aw = c->w ? c->w->ackwait : NULL;
	if (aw)
		for (uint32_t i = aw->head; i < aw->n; i++)
			if (aw->v[i].c == c)
				aw->v[i].c = NULL;
	free(q->v);
	free(q);
	c->ackq = NULL;
}

void mg_ack_worker_free(mg_worker *w)
{
	if (w->ackwait)
		free(w->ackwait->v);
	free(w->ackwait);
	w->ackwait = NULL;
}
