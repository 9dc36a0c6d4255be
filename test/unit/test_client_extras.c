/* test/unit/test_client_extras.c - midge_message_copy / _free and midge_properties_next,
 * without a network. */
#include <stdlib.h>

#include "midge/midge.h"
#include "t.h"

TEST(properties_next_walks_all_in_order)
{
	midge_properties *p = midge_properties_new();
	REQUIRE(p);
	midge_properties_set_message_expiry(p, 60);
	midge_properties_add_user(p, "k1", "v1");
	midge_properties_set_correlation_data(p, "\0\1", 2);
	midge_properties_add_user(p, "k1", "v2");
	int pos = 0, n = 0;
	midge_property pr;
	while (midge_properties_next(p, &pos, &pr)) {
		switch (n++) {
		case 0:
			CHECK_EQ_INT(pr.id, MIDGE_PROP_MESSAGE_EXPIRY);
			CHECK_EQ_INT(pr.value, 60);
			CHECK(pr.data == NULL && pr.pair_value == NULL);
			break;
		case 1:
		case 3:
			CHECK_EQ_INT(pr.id, MIDGE_PROP_USER_PROPERTY);
			CHECK_STR((const char *)pr.data, "k1");
			CHECK_EQ_INT(pr.len, 2);
			CHECK_STR(pr.pair_value, n == 2 ? "v1" : "v2");
			CHECK_EQ_INT(pr.pair_value_len, 2);
			break;
		case 2:
			CHECK_EQ_INT(pr.id, MIDGE_PROP_CORRELATION_DATA);
			CHECK_EQ_INT(pr.len, 2);
			CHECK_MEM(pr.data, "\0\1", 2);
			break;
		}
	}
	CHECK_EQ_INT(n, 4);
	CHECK(!midge_properties_next(p, &pos, &pr)); /* stays at the end */
	pos = 0;
	CHECK(!midge_properties_next(NULL, &pos, &pr));
	pos = -1;
	CHECK(!midge_properties_next(p, &pos, &pr));
	midge_properties_free(p);
}

TEST(message_copy_owns_everything)
{
	char topic[] = "room/temp";
	char payload[] = { 'a', 0, 'b' };
	midge_properties *p = midge_properties_new();
	REQUIRE(p);
	midge_properties_set_content_type(p, "x/y");
	midge_message src = { 7, topic, payload, 3, 1, true, false, p };
	midge_message *m = midge_message_copy(&src);
	REQUIRE(m);
	/* scribble over the originals: the copy must not notice */
	memset(topic, 'z', sizeof(topic) - 1);
	memset(payload, 'z', sizeof(payload));
	midge_properties_free(p);
	CHECK_STR(m->topic, "room/temp");
	CHECK_EQ_INT(m->payloadlen, 3);
	CHECK_MEM(m->payload, "a\0b", 4); /* with the '\0' after the payload */
	CHECK_EQ_INT(m->mid, 7);
	CHECK_EQ_INT(m->qos, 1);
	CHECK(m->retain && !m->dup);
	CHECK_STR(midge_properties_get_string(m->properties, MIDGE_PROP_CONTENT_TYPE), "x/y");
	midge_message_free(m);
	/* an empty payload, no properties */
	midge_message e = { 1, "t", NULL, 0, 0, false, false, NULL };
	m = midge_message_copy(&e);
	REQUIRE(m);
	CHECK_EQ_INT(((const char *)m->payload)[0], 0);
	CHECK(m->properties == NULL);
	midge_message_free(m);
	midge_message_free(NULL);
	CHECK(midge_message_copy(NULL) == NULL);
	midge_message bad = { 1, NULL, NULL, 0, 0, false, false, NULL };
	CHECK(midge_message_copy(&bad) == NULL);
}
