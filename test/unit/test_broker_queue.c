/* test/unit/test_broker_queue.c - the broker's message object and delivery rings. */
#include "t.h"

#include "broker/queue.h"

static mg_msg *mk(const char *topic, const char *payload)
{
	return mg_msg_new((const uint8_t *)topic, strlen(topic), (const uint8_t *)payload, strlen(payload), NULL,
	                  1, false, 0);
}

TEST(msg_refcount_and_layout)
{
	mg_msg *m = mk("a/b", "hello");
	REQUIRE(m);
	CHECK_EQ_INT(m->topic_len, 3);
	CHECK_MEM(m->topic, "a/b", 3);
	CHECK_EQ_INT(m->payload_len, 5);
	CHECK_MEM(m->payload, "hello", 5);
	CHECK_EQ_INT(m->props_len, 0);
	mg_msg_ref(m);
	CHECK_EQ_INT(atomic_load(&m->refs), 2);
	mg_msg_unref(m);
	mg_msg_unref(m); /* ASan: freed exactly once */
}

TEST(msg_drops_per_recipient_properties)
{
	/* user property k=v, topic alias 5, message expiry 10, content type "t" */
	static const uint8_t raw[] = { 0x26, 0, 1, 'k', 0, 1, 'v', 0x23, 0, 5, 0x02, 0, 0, 0, 10, 0x03, 0, 1, 't' };
	mg_props p = { 0 };
	p.raw = (mg_bytes){ raw, sizeof raw };
	p.present = MG_PROP_BIT(MG_PROP_USER) | MG_PROP_BIT(MG_PROP_TOPIC_ALIAS) |
	            MG_PROP_BIT(MG_PROP_MESSAGE_EXPIRY) | MG_PROP_BIT(MG_PROP_CONTENT_TYPE);
	p.message_expiry = 10;
	mg_msg *m = mg_msg_new((const uint8_t *)"t", 1, (const uint8_t *)"x", 1, &p, 0, false, 1000);
	REQUIRE(m);
	static const uint8_t want[] = { 0x26, 0, 1, 'k', 0, 1, 'v', 0x03, 0, 1, 't' };
	CHECK_EQ_INT(m->props_len, sizeof want);
	CHECK_MEM(m->props, want, sizeof want);
	CHECK(m->has_expiry);
	CHECK(!mg_msg_expired(m, 10999));
	CHECK(mg_msg_expired(m, 11000));
	CHECK_EQ_INT(mg_msg_remaining(m, 1000), 10);
	CHECK_EQ_INT(mg_msg_remaining(m, 10900), 1);
	mg_msg_unref(m);
}

TEST(qring_fifo_across_growth)
{
	mg_qring r = { 0 };
	mg_msg *m = mk("t", "p");
	for (int i = 0; i < 100; i++) {
		mg_qitem q = { .m = mg_msg_ref(m), .qos = (uint8_t)(i % 3), .id1 = (uint32_t)i, .n_ids = 1 };
		CHECK_EQ_INT(mg_qring_push(&r, &q), 0);
		if (i % 3 == 2) { /* interleave pops so head wraps */
			mg_qitem out;
			mg_qring_pop(&r, &out);
			mg_qitem_clear(&out);
		}
	}
	CHECK_EQ_INT(r.n, 67);
	uint32_t expect = 33;
	mg_qitem out;
	while (mg_qring_peek(&r)) {
		mg_qring_pop(&r, &out);
		CHECK_EQ_INT(out.id1, expect);
		expect++;
		mg_qitem_clear(&out);
	}
	CHECK_EQ_INT(expect, 100);
	CHECK_EQ_INT(atomic_load(&m->refs), 1);
	mg_qring_free(&r);
	mg_msg_unref(m);
}

TEST(fring_find_and_remove_keeps_order)
{
	mg_fring r = { 0 };
	mg_msg *m = mk("t", "p");
	for (uint16_t mid = 1; mid <= 40; mid++) {
		mg_flight f = { .it = { .m = mg_msg_ref(m), .qos = 1 }, .mid = mid, .state = MG_FL_PUBACK };
		CHECK_EQ_INT(mg_fring_push(&r, &f), 0);
	}
	size_t i;
	CHECK(mg_fring_find(&r, 1, &i) && i == 0);
	mg_fring_remove(&r, i);
	CHECK(mg_fring_find(&r, 20, &i) && i == 18);
	mg_fring_remove(&r, i); /* out of order ack */
	CHECK(!mg_fring_find(&r, 20, &i));
	CHECK_EQ_INT(r.n, 38);
	uint16_t prev = 0;
	for (size_t k = 0; k < r.n; k++) {
		CHECK(mg_fring_at(&r, k)->mid > prev);
		prev = mg_fring_at(&r, k)->mid;
	}
	CHECK_EQ_INT(atomic_load(&m->refs), 39);
	mg_fring_free(&r);
	CHECK_EQ_INT(atomic_load(&m->refs), 1);
	mg_msg_unref(m);
}

/* mg_fring_has must agree with a scan: ids given out in order across the wrap past 65535
 * (0 is skipped, as the session's counter does), acks out of order, and a ring restored in an
 * order the counter would not give (then it scans until it has been empty). */
static bool has_by_scan(mg_fring *r, uint16_t mid)
{
	for (size_t k = 0; k < r->n; k++)
		if (mg_fring_at(r, k)->mid == mid)
			return true;
	return false;
}

TEST(fring_has_agrees_with_a_scan)
{
	mg_fring r = { 0 };
	uint16_t next = 65000;
	/* 800 rounds: the ids wrap past 65535 (to 1, never 0) after 536. Every other round, the
	   ids from 400 below the next one (past the oldest) to 20 above it are probed, each
	   against a scan: kept small, as this also runs under ThreadSanitizer on a busy machine
	   within t.c's time limit. */
	for (int round = 0; round < 800; round++) {
		mg_flight f = { .mid = next, .state = MG_FL_PUBACK };
		REQUIRE(mg_fring_push(&r, &f) == 0);
		next = (uint16_t)(next + 1) ? (uint16_t)(next + 1) : 1;
		if (r.n > 300) /* ack the oldest, and now and then one from the middle */
			mg_fring_remove(&r, round % 7 ? 0 : r.n / 2);
		if (round % 2)
			continue;
		for (uint16_t probe = (uint16_t)(next - 400); probe != (uint16_t)(next + 20); probe++)
			if (mg_fring_has(&r, probe) != has_by_scan(&r, probe)) {
				CHECK(!"mg_fring_has disagrees with a scan");
				round = 800;
				break;
			}
	}
	CHECK(r.ordered);
	mg_fring_free(&r);
	/* restored from the store out of counter order: 10, 5, 300 */
	uint16_t restored[] = { 10, 5, 300 };
	for (size_t k = 0; k < 3; k++) {
		mg_flight f = { .mid = restored[k], .state = MG_FL_PUBACK };
		REQUIRE(mg_fring_push(&r, &f) == 0);
	}
	CHECK(!r.ordered);
	CHECK(mg_fring_has(&r, 5));
	CHECK(mg_fring_has(&r, 300));
	CHECK(!mg_fring_has(&r, 301));
	mg_fring_free(&r);
}

TEST(qitem_many_ids)
{
	mg_qitem q = { .m = mk("t", "p") };
	uint32_t ids[3] = { 7, 9, 11 };
	CHECK_EQ_INT(mg_qitem_set_ids(&q, ids, 3), 0);
	CHECK_MEM(mg_qitem_ids(&q), ids, sizeof ids);
	mg_qitem_clear(&q); /* frees ids and the message */
	CHECK(q.m == NULL);
}
