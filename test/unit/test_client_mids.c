/* test/unit/test_client_mids.c - message ids after the counter wraps: 1..INT_MAX, then from 1
 * again, skipping every id whose message or (UN)SUBSCRIBE is still pending, so on_publish(mid)
 * can only mean the message midge_publish returned mid for. The counter is set near INT_MAX
 * through the private header (2^31 publishes would take too long). No network. */
#include <limits.h>
#include <stdlib.h>

#include "client/client.h"
#include "t.h"

static int pub(midge_client *c)
{
	return midge_publish(c, "t", "x", 1, 1, false, NULL);
}

TEST(wrap_skips_pending_ids)
{
	midge_client *c = midge_client_new("u", true, NULL, MIDGE_PROTOCOL_V311, MIDGE_TRANSPORT_TCP);
	REQUIRE(c);
	/* not connected: every message waits in the queue, pending */
	CHECK_EQ_INT(pub(c), 1);
	CHECK_EQ_INT(pub(c), 2);
	CHECK_EQ_INT(pub(c), 3);
	c->last_mid = INT_MAX - 1;
	CHECK_EQ_INT(pub(c), INT_MAX);
	/* wrapped: 1, 2 and 3 are still pending */
	CHECK_EQ_INT(pub(c), 4);
	CHECK_EQ_INT(pub(c), 5);
	CHECK(!midge_is_published(c, 1) && !midge_is_published(c, INT_MAX));
	/* the message with mid 2 completes (here: is dropped from the queue); 2 is free again at
	 * the next wrap, 1 and 3 are not */
	mgc_lock(c);
	mgc_cmsg *m = c->m_head->next;
	CHECK_EQ_INT(m->mid, 2);
	mgc_msg_remove(c, m);
	mgc_msg_free(m);
	c->last_mid = INT_MAX;
	mgc_unlock(c);
	CHECK_EQ_INT(pub(c), 2);
	CHECK_EQ_INT(pub(c), 6);
	midge_client_free(c);
}
