/* test/unit/test_broker_acl.c - broker/acl.h on its own: the corners of substitution and the
 * tree that the broker tests reach only through clients (ids with '/', "%%c", deep filters,
 * merged sections), the error texts, and the static deny-all. Every decision here was
 * checked against mosquitto 2.0.11's security_default.c by reading it (and the pytest table
 * runs the common ones against Debian's mosquitto). */
#include "t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/acl.h"

static mg_acl *parse(const char *text, char *err)
{
	return mg_acl_parse("t.acl", text, strlen(text), err, 512, NULL);
}

static int may(const mg_acl *a, const char *id, const char *user, const char *topic, int access)
{
	return mg_acl_check(a, id, user, (const uint8_t *)topic, strlen(topic), access) == MG_ACL_ALLOW;
}

TEST(client_id_with_slashes_spans_levels_as_substituted_text)
{
	char err[512];
	mg_acl *a = parse("pattern readwrite d/%c/x\n", err);
	REQUIRE(a);
	/* mosquitto builds "d/a/b/x" and matches it: the id may span levels */
	CHECK(may(a, "a/b", NULL, "d/a/b/x", MG_ACL_WRITE));
	CHECK(!may(a, "a/b", NULL, "d/a/x", MG_ACL_WRITE));
	CHECK(!may(a, "a", NULL, "d/a/b/x", MG_ACL_WRITE));
	/* substitution is one pass: "%u" inside the id is text */
	mg_acl_free(a);
	a = parse("pattern read %c/%u\n", err);
	REQUIRE(a);
	CHECK(may(a, "%u", "bob", "%u/bob", MG_ACL_READ));
	CHECK(!may(a, "%u", "bob", "bob/bob", MG_ACL_READ));
	CHECK(!may(a, "%u", NULL, "%u/%u", MG_ACL_READ)); /* %u and no user name: not for it */
	mg_acl_free(a);
}

TEST(percent_scanning_as_mosquitto)
{
	char err[512];
	/* "%%c": the first '%' is text, then %c; "50%" and "%x" are text */
	mg_acl *a = parse("pattern read p/%%c\npattern read q/50%/%x/%c\n", err);
	REQUIRE(a);
	CHECK(may(a, "id", NULL, "p/%id", MG_ACL_READ));
	CHECK(!may(a, "id", NULL, "p/id", MG_ACL_READ));
	CHECK(may(a, "id", NULL, "q/50%/%x/id", MG_ACL_READ));
	/* a pattern level mixing text and several names */
	mg_acl_free(a);
	a = parse("pattern write u-%u-c-%c/+\n", err);
	REQUIRE(a);
	CHECK(may(a, "c1", "u1", "u-u1-c-c1/z", MG_ACL_WRITE));
	CHECK(!may(a, "c1", "u1", "u-u1-c-c1", MG_ACL_WRITE));
	CHECK(!may(a, "c1", "u1", "u-u1-c-c1/z", MG_ACL_READ));
	mg_acl_free(a);
}

TEST(unsafe_names_only_when_patterns_exist_and_after_own_rules)
{
	char err[512];
	mg_acl *a = parse("topic read open\nuser a#b\ntopic read mine\n", err);
	REQUIRE(a);
	CHECK(may(a, "x+", NULL, "open", MG_ACL_READ));  /* no patterns: no name check */
	CHECK(may(a, "c", "a#b", "mine", MG_ACL_READ));
	mg_acl_free(a);
	a = parse("topic read open\nuser a#b\ntopic read mine\npattern read %c/#\n", err);
	REQUIRE(a);
	CHECK(may(a, "x+", NULL, "open", MG_ACL_READ));  /* own rules first */
	CHECK(may(a, "c", "a#b", "mine", MG_ACL_READ));
	CHECK_EQ_INT(mg_acl_check(a, "x+", NULL, (const uint8_t *)"x+/y", 4, MG_ACL_READ), MG_ACL_DENY_UNSAFE_ID);
	CHECK_EQ_INT(mg_acl_check(a, "c", "a#b", (const uint8_t *)"c/y", 3, MG_ACL_READ), MG_ACL_DENY_UNSAFE_USER);
	CHECK(may(a, "c", "ok", "c/y", MG_ACL_READ));
	mg_acl_free(a);
}

TEST(sections_of_one_user_add_up_and_deny_wins)
{
	char err[512];
	mg_acl *a = parse("user u\ntopic read a/#\nuser v\ntopic read b\nuser u\ntopic deny a/x\n"
	                  "topic write a/+/#\n", err);
	REQUIRE(a);
	CHECK_EQ_INT(mg_acl_rule_count(a), 4);
	CHECK(may(a, "c", "u", "a/y", MG_ACL_READ));
	CHECK(!may(a, "c", "u", "a/x", MG_ACL_READ));
	CHECK(!may(a, "c", "u", "a/x", MG_ACL_WRITE));
	CHECK(may(a, "c", "u", "a/y/z", MG_ACL_WRITE));
	CHECK(!may(a, "c", "u", "b", MG_ACL_READ));
	CHECK(!may(a, "c", NULL, "a/y", MG_ACL_READ));
	mg_acl_free(a);
}

TEST(dollar_topics_and_hash_parent)
{
	char err[512];
	mg_acl *a = parse("topic read #\ntopic read +/x\ntopic read $SYS/#\ntopic read h/#\n", err);
	REQUIRE(a);
	CHECK(may(a, "c", NULL, "any/thing", MG_ACL_READ));
	CHECK(!may(a, "c", NULL, "$app/x", MG_ACL_READ));
	CHECK(may(a, "c", NULL, "$SYS/broker/uptime", MG_ACL_READ));
	CHECK(may(a, "c", NULL, "$SYS", MG_ACL_READ));  /* "a/#" matches "a" */
	CHECK(may(a, "c", NULL, "h", MG_ACL_READ));
	mg_acl_free(a);
}

TEST(deep_filters_and_empty_levels)
{
	char err[512];
	char text[1024] = "topic read ";
	for (int i = 0; i < 200; i++)
		strcat(text, "+/");
	strcat(text, "end\ntopic write a//b\n");
	mg_acl *a = parse(text, err);
	REQUIRE(a);
	char topic[512] = "";
	for (int i = 0; i < 200; i++)
		strcat(topic, "x/");
	strcat(topic, "end");
	CHECK(may(a, "c", NULL, topic, MG_ACL_READ));
	CHECK(may(a, "c", NULL, "a//b", MG_ACL_WRITE));
	CHECK(!may(a, "c", NULL, "a/b", MG_ACL_WRITE));
	mg_acl_free(a);
	/* 201 '/' is over mosquitto's limit */
	char over[1024] = "topic read ";
	for (int i = 0; i < 201; i++)
		strcat(over, "a/");
	strcat(over, "b\n");
	CHECK(parse(over, err) == NULL);
	CHECK(strncmp(err, "Error: t.acl:1: invalid ACL topic", 33) == 0);
}

TEST(errors_name_the_line)
{
	char err[512];
	CHECK(parse("topic a\n\nuser\n", err) == NULL);
	CHECK_STR(err, "Error: t.acl:3: missing username after 'user'.");
	mg_acl *a = parse("topic wr\n", err); /* one word: the topic "wr", readwrite */
	REQUIRE(a);
	CHECK(may(a, "c", NULL, "wr", MG_ACL_WRITE));
	mg_acl_free(a);
	CHECK(parse("topic wr a b\n", err) == NULL);
	CHECK(strstr(err, "t.acl:1: invalid topic access type 'wr'") != NULL);
	CHECK(parse("bogus\n", err) == NULL);
	CHECK(strstr(err, "t.acl:1: invalid line starting 'bogus'") != NULL);
}

TEST(empty_and_deny_all)
{
	char err[512];
	mg_acl *a = parse("# only a comment\n\n   \n", err);
	REQUIRE(a);
	CHECK_EQ_INT(mg_acl_rule_count(a), 0);
	CHECK(!may(a, "c", NULL, "t", MG_ACL_READ));
	CHECK(!may(a, "c", "u", "t", MG_ACL_WRITE));
	mg_acl_free(a);
	mg_acl *d = mg_acl_deny_all();
	CHECK(d == mg_acl_deny_all());
	CHECK(!may(d, "c", NULL, "t", MG_ACL_READ));
	mg_acl_free(d); /* static: ignored */
	CHECK(!may(d, "c", NULL, "t", MG_ACL_READ));
	CHECK_NO_LEAKS();
}
