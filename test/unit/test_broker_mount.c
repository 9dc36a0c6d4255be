/* test/unit/test_broker_mount.c - a listener's mount_point on topics and filters. */
#include "t.h"

#include "broker/packet.h"

#include <stdlib.h>

static mg_bytes B(const char *s)
{
	return (mg_bytes){ (const uint8_t *)s, (uint32_t)strlen(s) };
}

static int eq(mg_bytes b, const char *s)
{
	return b.p && b.len == strlen(s) && memcmp(b.p, s, b.len) == 0;
}

TEST(no_mount_point_is_identity)
{
	mg_conn c = { 0 };
	uint8_t buf[64], *heap;
	mg_bytes t = B("a/b");
	mg_bytes r = mg_mount(&c, t, false, buf, sizeof buf, &heap);
	CHECK(r.p == t.p && r.len == t.len);
	CHECK(heap == NULL);
}

TEST(topic_and_filter_are_prefixed)
{
	mg_conn c = { .mp = "tenant/", .mp_len = 7 };
	uint8_t buf[64], *heap;
	CHECK(eq(mg_mount(&c, B("a/b"), false, buf, sizeof buf, &heap), "tenant/a/b"));
	CHECK(heap == NULL);
	CHECK(eq(mg_mount(&c, B("#"), true, buf, sizeof buf, &heap), "tenant/#"));
}

TEST(shared_filter_keeps_share_prefix_first)
{
	mg_conn c = { .mp = "t/", .mp_len = 2 };
	uint8_t buf[64], *heap;
	CHECK(eq(mg_mount(&c, B("$share/g/a/+"), true, buf, sizeof buf, &heap), "$share/g/t/a/+"));
	/* a topic name is never a share */
	CHECK(eq(mg_mount(&c, B("$share/g/a"), false, buf, sizeof buf, &heap), "t/$share/g/a"));
}

TEST(long_topic_goes_to_heap)
{
	mg_conn c = { .mp = "mp/", .mp_len = 3 };
	uint8_t buf[4], *heap;
	mg_bytes r = mg_mount(&c, B("abcdefgh"), false, buf, sizeof buf, &heap);
	CHECK(heap != NULL && r.p == heap);
	CHECK(eq(r, "mp/abcdefgh"));
	free(heap);
}
