/*
 * broker/queue.h - the queues of one session: deliveries waiting (mg_qring), QoS 1/2 in flight
 * (mg_fring), inbound QoS 2 waiting for PUBREL. Owned by the session's worker.
 */
#ifndef MG_BROKER_QUEUE_H
#define MG_BROKER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/msg.h"

typedef struct mg_qitem {
	mg_msg *m;       /* one reference owned by the item */
	uint8_t qos;     /* delivered QoS: min(published, granted) */
	bool retain : 1; /* retain flag to send */
	bool stored : 1; /* a row in the store's queue refers to it (store.h) */
	bool copy : 1;   /* the message's only recipient: a small payload may be copied (session.c) */
	uint16_t n_ids;  /* subscription identifiers */
	uint32_t id1;    /* the only one when n_ids == 1 */
	uint32_t *ids;   /* malloc'd when n_ids > 1 */
} mg_qitem;

void mg_qitem_clear(mg_qitem *q); /* drops the reference and the ids */
static inline const uint32_t *mg_qitem_ids(const mg_qitem *q)
{
	return q->n_ids > 1 ? q->ids : &q->id1;
}
/* Fills q's ids from a list (copies). Returns 0 or -ENOMEM. */
int mg_qitem_set_ids(mg_qitem *q, const uint32_t *ids, uint16_t n);

/* A ring of qitems (FIFO). */
/* The rings' counts are 32-bit: three rings sit in every session, idle or not, and 8 bytes
 * less for each keeps mg_session in a smaller malloc size class. More than 2^31 entries would
 * not fit in memory anyway; growing past that fails as ENOMEM. */
typedef struct mg_qring {
	mg_qitem *v;
	uint32_t head, n, cap;
} mg_qring;

int mg_qring_push(mg_qring *r, const mg_qitem *q); /* takes ownership; 0 or -ENOMEM */
mg_qitem *mg_qring_peek(mg_qring *r);
void mg_qring_pop(mg_qring *r, mg_qitem *out);     /* moves the head into out */
void mg_qring_free(mg_qring *r);                  /* clears every item */

/* Outbound QoS 1/2 in flight, in send order. */
enum { MG_FL_PUBACK = 1, MG_FL_PUBREC, MG_FL_PUBCOMP };
typedef struct mg_flight {
	mg_qitem it;     /* it.m NULL once PUBREC arrived */
	uint16_t mid;
	uint8_t state;
} mg_flight;

typedef struct mg_fring {
	mg_flight *v;
	uint32_t head, n, cap; /* as mg_qring */
	/* Every mid lies cyclically after the one before it, within half the id space: true for
	 * ids given out by the session's counter; a ring restored from the store may not be so
	 * until it has been empty once. Lets mg_fring_has skip the scan (in the padding). */
	bool ordered;
} mg_fring;

mg_flight *mg_fring_at(mg_fring *r, size_t i);
mg_flight *mg_fring_find(mg_fring *r, uint16_t mid, size_t *idx);
/* Whether mid is in flight. O(1) for a new id past the newest one in an ordered ring (the
 * common case: the session's next id), else a scan. */
bool mg_fring_has(mg_fring *r, uint16_t mid);
int mg_fring_push(mg_fring *r, const mg_flight *f);
void mg_fring_remove(mg_fring *r, size_t i); /* clears the item; keeps order */
void mg_fring_free(mg_fring *r);

/* Inbound QoS 2 waiting for PUBREL. */
typedef struct mg_inq2 {
	uint16_t mid;
	mg_msg *m;
} mg_inq2;

#endif
