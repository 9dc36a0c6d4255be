/* test/unit/test_broker_alias_out.c - the broker -> client topic alias table (alias_out.c). */
#include "t.h"

#include "broker/alias_out.h"

static mg_bytes B(const char *s)
{
	return (mg_bytes){ (const uint8_t *)s, (uint32_t)strlen(s) };
}

/* What write_publish does: get, then bind a new alias once the PUBLISH is sent. */
static int use(mg_alias_out *a, const char *topic, uint16_t *alias)
{
	int r = mg_alias_out_get(a, B(topic), alias);
	if (r == 0)
		mg_alias_out_bind(a, B(topic), *alias);
	return r;
}

TEST(alias_out_none_when_client_allows_none)
{
	CHECK(mg_alias_out_new(0) == NULL);
	uint16_t al = 7;
	CHECK_EQ_INT(mg_alias_out_get(NULL, B("a"), &al), -1);
	CHECK_EQ_INT(al, 0);
	mg_alias_out_free(NULL);
}

TEST(alias_out_first_use_order_then_full)
{
	mg_alias_out *a = mg_alias_out_new(2);
	REQUIRE(a);
	uint16_t al;
	CHECK_EQ_INT(use(a, "a/1", &al), 0);
	CHECK_EQ_INT(al, 1);
	CHECK_EQ_INT(use(a, "a/1", &al), 1);
	CHECK_EQ_INT(al, 1);
	CHECK_EQ_INT(use(a, "a/2", &al), 0);
	CHECK_EQ_INT(al, 2);
	CHECK_EQ_INT(use(a, "a/3", &al), -1); /* full: no alias, never above the maximum */
	CHECK_EQ_INT(al, 0);
	CHECK_EQ_INT(use(a, "a/2", &al), 1);
	CHECK_EQ_INT(al, 2);
	/* content, not pointer: another copy of the same topic finds the alias */
	char copy[] = "a/1";
	CHECK_EQ_INT(mg_alias_out_get(a, B(copy), &al), 1);
	CHECK_EQ_INT(al, 1);
	CHECK_EQ_INT(mg_alias_out_get(a, B("a/10"), &al), -1);
	mg_alias_out_free(a);
}

TEST(alias_out_unbound_until_sent)
{
	mg_alias_out *a = mg_alias_out_new(5);
	REQUIRE(a);
	uint16_t al;
	CHECK_EQ_INT(mg_alias_out_get(a, B("x"), &al), 0); /* not sent: not bound */
	CHECK_EQ_INT(al, 1);
	CHECK_EQ_INT(mg_alias_out_get(a, B("y"), &al), 0);
	CHECK_EQ_INT(al, 1);                               /* the same number is offered again */
	mg_alias_out_bind(a, B("y"), al);
	CHECK_EQ_INT(mg_alias_out_get(a, B("x"), &al), 0);
	CHECK_EQ_INT(al, 2);
	CHECK_EQ_INT(mg_alias_out_get(a, B("y"), &al), 1);
	CHECK_EQ_INT(al, 1);
	mg_alias_out_free(a);
}

TEST(alias_out_capped_at_64)
{
	mg_alias_out *a = mg_alias_out_new(65535);
	REQUIRE(a);
	char t[16];
	uint16_t al;
	for (int i = 0; i < 100; i++) {
		snprintf(t, sizeof t, "t/%d", i);
		int r = use(a, t, &al);
		if (i < MG_ALIAS_OUT_MAX) {
			CHECK_EQ_INT(r, 0);
			CHECK_EQ_INT(al, i + 1);
		} else {
			CHECK_EQ_INT(r, -1);
		}
	}
	for (int i = 0; i < MG_ALIAS_OUT_MAX; i++) { /* all still found in a full table */
		snprintf(t, sizeof t, "t/%d", i);
		CHECK_EQ_INT(mg_alias_out_get(a, B(t), &al), 1);
		CHECK_EQ_INT(al, i + 1);
	}
	mg_alias_out_free(a);
}
