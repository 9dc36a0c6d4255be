/*
 * test/client/c/topiccb.c - per-topic message callbacks and message copies against a broker:
 *   topiccb [-V 4|5] -p PORT
 * Callbacks: A on "a/#", B on "$share/g/a/+/c" (matches as "a/+/c"); on_message for the rest. Each message is published to
 * ourselves and waited for before the next, so the order of the lines is fixed:
 *   "A a/x", "B a/b/c" ..., "M b" (on_message). Every received message is also copied
 * (midge_message_copy) and the copies printed after the connection is gone ("copy ...").
 */
#include <midge/midge.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int got;
static midge_message *copies[32];
static int ncopies;

static void keep(const midge_message *m)
{
	if (ncopies < 32)
		copies[ncopies++] = midge_message_copy(m);
}

static void cb_a(midge_client *c, void *ud, const midge_message *m)
{
	(void)c;
	(void)ud;
	printf("A %s q%d %s\n", m->topic, m->qos, (const char *)m->payload);
	keep(m);
	got++;
}

static void cb_b(midge_client *c, void *ud, const midge_message *m)
{
	(void)c;
	(void)ud;
	printf("B %s q%d %s\n", m->topic, m->qos, (const char *)m->payload);
	got++;
}

static void on_message(midge_client *c, void *ud, const midge_message *m)
{
	(void)c;
	(void)ud;
	printf("M %s q%d %s\n", m->topic, m->qos, (const char *)m->payload);
	keep(m);
	got++;
}

/* publish and run the loop until `expect` more callbacks have run (or 5 s) */
static void pub(midge_client *c, const char *topic, const char *payload, int qos, int expect,
                const midge_properties *props)
{
	int want = got + expect;
	int mid = midge_publish(c, topic, payload, strlen(payload), qos, false, props);
	if (mid <= 0)
		printf("publish %s: %s\n", topic, midge_strerror(mid));
	for (int i = 0; i < 50 && got < want; i++)
		midge_loop(c, 100);
	/* one more PINGREQ-free turn would not tell us more: a missing callback is "got" short */
	printf("-- %s %d\n", topic, got - want + expect);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int port = 1883, proto = 4;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "-p"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "-V"))
			proto = atoi(argv[i + 1]);
	}
	midge_client *c = midge_client_new(NULL, true, NULL, proto, MIDGE_TRANSPORT_TCP);
	if (!c)
		return 1;
	midge_on_message_set(c, on_message);
	printf("add rc=%d\n", midge_message_callback_add(c, "a/#", cb_a));
	printf("add rc=%d\n", midge_message_callback_add(c, "$share/g/a/+/c", cb_b)); /* matched as a/+/c */
	printf("add bad rc=%d\n", midge_message_callback_add(c, "a/#/c", cb_b));
	if (midge_connect(c, "127.0.0.1", port, 60) != MIDGE_OK)
		return 1;
	const char *topics[] = { "a/#", "b" };
	int opts[] = { 2, 1 };
	midge_subscribe_ex(c, topics, opts, 2, NULL);
	for (int i = 0; i < 20; i++) /* the SUBACK */
		midge_loop(c, 50);
	midge_properties *p = NULL;
	if (proto == 5) {
		p = midge_properties_new();
		midge_properties_add_user(p, "k", "v");
		midge_properties_set_content_type(p, "text/plain");
	}
	pub(c, "a/x", "one", 1, 1, p);        /* A */
	pub(c, "a/b/c", "two", 1, 2, NULL);   /* A and B */
	pub(c, "b", "three", 1, 1, NULL);     /* on_message */
	pub(c, "a/q/c", "four", 2, 2, NULL);  /* QoS 2, delivered at PUBREL: A and B */
	printf("remove rc=%d\n", midge_message_callback_remove(c, "a/#"));
	printf("remove again rc=%d\n", midge_message_callback_remove(c, "a/#"));
	pub(c, "a/b/c", "five", 1, 1, NULL);  /* B only */
	pub(c, "a/x", "six", 1, 1, NULL);     /* on_message now */
	midge_properties_free(p);
	midge_disconnect(c);
	midge_client_free(c);
	for (int i = 0; i < ncopies; i++) {
		midge_message *m = copies[i];
		printf("copy %s q%d len=%zu %s", m->topic, m->qos, m->payloadlen, (const char *)m->payload);
		int pos = 0;
		midge_property pr;
		while (midge_properties_next(m->properties, &pos, &pr)) {
			if (pr.id == MIDGE_PROP_USER_PROPERTY)
				printf(" user:%s=%s", (const char *)pr.data, pr.pair_value);
			else if (pr.id == MIDGE_PROP_CONTENT_TYPE)
				printf(" ct=%.*s", (int)pr.len, (const char *)pr.data);
		}
		printf("\n");
		midge_message_free(m);
	}
	midge_message_free(NULL);
	printf("done\n");
	return 0;
}
