/* test/unit/test_client_topic.c - midge_topic_matches_sub: the cases of the spec's section
 * 4.7 (non-normative examples), '$' topics, shared filters, and refusals of invalid input. */
#include "midge/midge.h"
#include "t.h"

static int m(const char *sub, const char *topic)
{
	bool r = true;
	int rc = midge_topic_matches_sub(sub, topic, &r);
	if (rc != MIDGE_OK)
		return rc;
	return r ? 1 : 0;
}

TEST(spec_examples)
{
	/* 4.7.1.2: "sport/tennis/player1/#" */
	CHECK_EQ_INT(m("sport/tennis/player1/#", "sport/tennis/player1"), 1);
	CHECK_EQ_INT(m("sport/tennis/player1/#", "sport/tennis/player1/ranking"), 1);
	CHECK_EQ_INT(m("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"), 1);
	CHECK_EQ_INT(m("sport/#", "sport"), 1);
	CHECK_EQ_INT(m("#", "sport/tennis"), 1);
	CHECK_EQ_INT(m("#", "/"), 1);
	/* 4.7.1.3: "+" */
	CHECK_EQ_INT(m("sport/tennis/+", "sport/tennis/player1"), 1);
	CHECK_EQ_INT(m("sport/tennis/+", "sport/tennis/player1/ranking"), 0);
	CHECK_EQ_INT(m("sport/+", "sport"), 0);
	CHECK_EQ_INT(m("sport/+", "sport/"), 1);
	CHECK_EQ_INT(m("+/+", "/finance"), 1);
	CHECK_EQ_INT(m("/+", "/finance"), 1);
	CHECK_EQ_INT(m("+", "/finance"), 0);
	/* exact */
	CHECK_EQ_INT(m("a/b", "a/b"), 1);
	CHECK_EQ_INT(m("a/b", "a/B"), 0);
	CHECK_EQ_INT(m("a/b", "a/b/"), 0);
	CHECK_EQ_INT(m("a//b", "a//b"), 1);
	CHECK_EQ_INT(m("a/+/b", "a//b"), 1);
}

TEST(dollar_topics)
{
	/* 4.7.2: a filter starting with a wildcard does not match a '$' topic */
	CHECK_EQ_INT(m("#", "$SYS/broker/uptime"), 0);
	CHECK_EQ_INT(m("+/monitor/Clients", "$SYS/monitor/Clients"), 0);
	CHECK_EQ_INT(m("$SYS/#", "$SYS/broker/uptime"), 1);
	CHECK_EQ_INT(m("$SYS/monitor/+", "$SYS/monitor/Clients"), 1);
}

TEST(shared_filter_matches_its_inner_filter)
{
	CHECK_EQ_INT(m("$share/g/a/+", "a/b"), 1);
	CHECK_EQ_INT(m("$share/g/a/+", "b/b"), 0);
	CHECK_EQ_INT(m("$share/g/#", "x/y"), 1);
	CHECK_EQ_INT(m("$share//a", "a"), MIDGE_ERR_TOPIC);  /* empty group */
	CHECK_EQ_INT(m("$share/g", "a"), MIDGE_ERR_TOPIC);   /* no filter */
}

TEST(invalid_input)
{
	bool r = true;
	CHECK_EQ_INT(midge_topic_matches_sub(NULL, "a", &r), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_topic_matches_sub("a", NULL, &r), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(midge_topic_matches_sub("a", "a", NULL), MIDGE_ERR_INVAL);
	CHECK_EQ_INT(m("a/#/b", "a/x/b"), MIDGE_ERR_TOPIC);  /* '#' not last */
	CHECK_EQ_INT(m("a+", "a+"), MIDGE_ERR_TOPIC);        /* '+' not a whole level */
	CHECK_EQ_INT(m("", "a"), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(m("a/#", "a/+"), MIDGE_ERR_TOPIC);      /* wildcard in a topic name */
	CHECK_EQ_INT(m("#", "a/#"), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(m("#", ""), MIDGE_ERR_TOPIC);
	CHECK_EQ_INT(m("#", "a\xff"), MIDGE_ERR_TOPIC);      /* not UTF-8 */
	r = true;
	CHECK_EQ_INT(midge_topic_matches_sub("a/#/b", "a", &r), MIDGE_ERR_TOPIC);
	CHECK(r == false);
}
