/* test/unit/test_client_inq.c - the store of inbound QoS 2 messages between PUBLISH and PUBREL
 * (client/inq.c): what goes in comes out once, intact, and clearing forgets ids and messages. */
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "t.h"

static mg_publish pub_of(const char *payload, bool retain, bool dup)
{
	mg_publish p;
	memset(&p, 0, sizeof(p));
	p.qos = 2;
	p.retain = retain;
	p.dup = dup;
	p.payload = (mg_bytes){ (const uint8_t *)payload, (uint32_t)strlen(payload) };
	return p;
}

TEST(store_take_once)
{
	midge_client *c = midge_client_new("inq", true, NULL, MIDGE_PROTOCOL_V5, MIDGE_TRANSPORT_TCP);
	REQUIRE(c);
	mg_publish a = pub_of("alpha", true, false), b = pub_of("", false, true);
	midge_properties *pr = midge_properties_new();
	REQUIRE(pr);
	CHECK_EQ_INT(midge_properties_set_content_type(pr, "text/plain"), MIDGE_OK);
	CHECK_EQ_INT(mgc_qin_store(c, 7, "t/a", &a, pr), MIDGE_OK); /* takes pr */
	CHECK_EQ_INT(mgc_qin_store(c, 9, "t/b", &b, NULL), MIDGE_OK);
	CHECK_EQ_INT(c->n_qin, 2);
	CHECK(mgc_qin_take(c, 8) == NULL);

	mgc_qin *q = mgc_qin_take(c, 7);
	REQUIRE(q);
	CHECK_EQ_INT(q->mid, 7);
	CHECK(strcmp(q->topic, "t/a") == 0);
	CHECK_EQ_INT((int)q->len, 5);
	CHECK(memcmp(q->payload, "alpha", 6) == 0); /* with its '\0' */
	CHECK(q->retain && !q->dup);
	CHECK(strcmp(midge_properties_get_string(q->props, MIDGE_PROP_CONTENT_TYPE), "text/plain") == 0);
	mgc_qin_free(q);
	CHECK(mgc_qin_take(c, 7) == NULL); /* once */
	CHECK_EQ_INT(c->n_qin, 1);

	q = mgc_qin_take(c, 9);
	REQUIRE(q);
	CHECK_EQ_INT((int)q->len, 0);
	CHECK(q->payload[0] == '\0' && q->dup && !q->retain && q->props == NULL);
	mgc_qin_free(q);
	CHECK_EQ_INT(c->n_qin, 0);
	midge_client_free(c);
}

TEST(clear_forgets_ids_and_messages)
{
	midge_client *c = midge_client_new("inq", true, NULL, MIDGE_PROTOCOL_V311, MIDGE_TRANSPORT_TCP);
	REQUIRE(c);
	mg_publish a = pub_of("x", false, false);
	for (uint16_t id = 1; id <= 100; id++) {
		CHECK_EQ_INT(mgc_qin_store(c, id, "t", &a, NULL), MIDGE_OK);
		c->qos2_in[id >> 3] |= (uint8_t)(1u << (id & 7));
	}
	CHECK_EQ_INT(c->n_qin, 100);
	mgc_qin_clear(c);
	CHECK_EQ_INT(c->n_qin, 0);
	CHECK(c->qin_head == NULL);
	CHECK(!(c->qos2_in[50 >> 3] & (1u << (50 & 7))));
	CHECK(mgc_qin_take(c, 50) == NULL);
	/* held messages left at free are freed with the client (LSan checks) */
	CHECK_EQ_INT(mgc_qin_store(c, 3, "t", &a, NULL), MIDGE_OK);
	midge_client_free(c);
}
