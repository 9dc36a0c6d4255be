/* broker/queue.c - FIFO rings for queued and in-flight deliveries. */
#include "broker/queue.h"
#include "broker/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void mg_qitem_clear(mg_qitem *q)
{
	if (q->stored && q->m)
		mg_store_msg_unref(q->m);
	mg_msg_unref(q->m);
	if (q->n_ids > 1)
		free(q->ids);
	memset(q, 0, sizeof *q);
}

int mg_qitem_set_ids(mg_qitem *q, const uint32_t *ids, uint16_t n)
{
	q->n_ids = n;
	if (n == 1)
		q->id1 = ids[0];
	if (n > 1) {
		q->ids = malloc(n * sizeof *ids);
		if (!q->ids) {
			q->n_ids = 0;
			return -ENOMEM;
		}
		memcpy(q->ids, ids, n * sizeof *ids);
	}
	return 0;
}

/* Grow a ring of elements of size sz, keeping order (head moves to 0). */
static int ring_grow(void **v, uint32_t *head, size_t n, uint32_t *cap, size_t sz)
{
	if (*cap > UINT32_MAX / 2)
		return -ENOMEM; /* the counts are 32-bit (queue.h) */
	uint32_t nc = *cap ? *cap * 2 : 16;
	char *nv = malloc(nc * sz);
	if (!nv)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		memcpy(nv + i * sz, (char *)*v + ((*head + i) % *cap) * sz, sz);
	free(*v);
	*v = nv;
	*head = 0;
	*cap = nc;
	return 0;
}

int mg_qring_push(mg_qring *r, const mg_qitem *q)
{
	if (r->n == r->cap && ring_grow((void **)&r->v, &r->head, r->n, &r->cap, sizeof *q) < 0)
		return -ENOMEM;
	r->v[(r->head + r->n++) % r->cap] = *q;
	return 0;
}

mg_qitem *mg_qring_peek(mg_qring *r)
{
	return r->n ? &r->v[r->head] : NULL;
}

void mg_qring_pop(mg_qring *r, mg_qitem *out)
{
	*out = r->v[r->head];
	r->head = (r->head + 1) % r->cap;
	r->n--;
}

void mg_qring_free(mg_qring *r)
{
	for (size_t i = 0; i < r->n; i++)
		mg_qitem_clear(&r->v[(r->head + i) % r->cap]);
	free(r->v);
	memset(r, 0, sizeof *r);
}

mg_flight *mg_fring_at(mg_fring *r, size_t i)
{
	return &r->v[(r->head + i) % r->cap];
}

mg_flight *mg_fring_find(mg_fring *r, uint16_t mid, size_t *idx)
{
	/* Acks come mostly in order: the oldest is checked first. */
	for (size_t i = 0; i < r->n; i++) {
		mg_flight *f = mg_fring_at(r, i);
		if (f->mid == mid) {
			*idx = i;
			return f;
		}
	}
	return NULL;
}

bool mg_fring_has(mg_fring *r, uint16_t mid)
{
	if (r->n == 0)
		return false;
	if (r->ordered) {
		/* offsets from the oldest id grow along the ring up to the newest one's */
		uint16_t oldest = r->v[r->head].mid, newest = mg_fring_at(r, r->n - 1)->mid;
		if ((uint16_t)(mid - oldest) > (uint16_t)(newest - oldest))
			return false;
	}
	size_t i;
	return mg_fring_find(r, mid, &i) != NULL;
}

int mg_fring_push(mg_fring *r, const mg_flight *f)
{
	if (r->n == r->cap && ring_grow((void **)&r->v, &r->head, r->n, &r->cap, sizeof *f) < 0)
		return -ENOMEM;
	if (r->n == 0) {
		r->ordered = true;
	} else if (r->ordered) {
		uint16_t oldest = r->v[r->head].mid, newest = mg_fring_at(r, r->n - 1)->mid;
		uint16_t step = (uint16_t)(f->mid - newest), span = (uint16_t)(f->mid - oldest);
		r->ordered = step != 0 && step < 0x8000 && span < 0x8000;
	}
	r->v[(r->head + r->n++) % r->cap] = *f;
	return 0;
}

void mg_fring_remove(mg_fring *r, size_t i)
{
	mg_qitem_clear(&mg_fring_at(r, i)->it);
	if (i == 0) {
		r->head = (r->head + 1) % r->cap;
		r->n--;
		return;
	}
	/* O(n) shift for an out-of-order ack; the window is small (max_inflight_messages). */
	for (size_t j = i; j + 1 < r->n; j++)
		*mg_fring_at(r, j) = *mg_fring_at(r, j + 1);
	r->n--;
}

void mg_fring_free(mg_fring *r)
{
	for (size_t i = 0; i < r->n; i++)
		mg_qitem_clear(&mg_fring_at(r, i)->it);
	free(r->v);
	memset(r, 0, sizeof *r);
}
