/*
 * broker/bridge_topic.c - a bridge's `topic` entries and the mapping of topics across it
 * (bridge_conf.h says the rules). Pure: the config reader and the bridge connection call it.
 */
#include "broker/bridge_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

void mg_bridge_conf_init(mg_bridge_conf *b)
{
	memset(b, 0, sizeof *b);
	b->protocol = MG_V311;
	b->local_clean = -1;
	b->try_private = true;
	b->notifications = true;
	b->attempt_unsubscribe = true;
	b->outgoing_retain = true;
	b->keepalive = 60;
	b->backoff_base = 5;
	b->backoff_cap = 30;
	b->threshold = 10;
	b->idle_timeout = 60;
}

static void topic_free(mg_bridge_topic *t)
{
	free(t->pattern);
	free(t->local_prefix);
	free(t->remote_prefix);
	free(t->local_topic);
	free(t->remote_topic);
}

void mg_bridge_conf_free(mg_bridge_conf *b)
{
	for (int i = 0; i < b->n_addrs; i++)
		free(b->addrs[i].host);
	free(b->addrs);
	for (int i = 0; i < b->n_topics; i++)
		topic_free(&b->topics[i]);
	free(b->topics);
	char **s[] = { &b->name, &b->remote_clientid, &b->local_clientid, &b->remote_username,
		&b->remote_password, &b->local_username, &b->local_password, &b->notification_topic,
		&b->cafile, &b->capath, &b->certfile, &b->keyfile, &b->tls_version, &b->identity, &b->psk,
		&b->bind_address, &b->alpn };
	for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
		free(*s[i]);
	memset(b, 0, sizeof *b);
}

static char *cat(const char *a, const char *b)
{
	size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
	char *s = malloc(la + lb + 1);
	if (!s)
		return NULL;
	memcpy(s, a ? a : "", la);
	memcpy(s + la, b ? b : "", lb);
	s[la + lb] = '\0';
	return s;
}

static bool name_ok(const char *t)
{
	return mg_topic_name_check((const uint8_t *)t, strlen(t)) == MG_OK;
}

static bool filter_ok(const char *f)
{
	return mg_topic_filter_check((const uint8_t *)f, strlen(f)) == MG_OK;
}

int mg_bridge_topic_add(mg_bridge_conf *b, const char *pattern, int dir, int qos,
                        const char *lp, const char *rp, char *err, size_t errlen)
{
	if (pattern && strcmp(pattern, "\"\"") == 0)
		pattern = NULL;
	if (lp && (!*lp || strcmp(lp, "\"\"") == 0))
		lp = NULL;
	if (rp && (!*rp || strcmp(rp, "\"\"") == 0))
		rp = NULL;
	if (dir != MG_BRIDGE_OUT && dir != MG_BRIDGE_IN && dir != MG_BRIDGE_BOTH) {
		snprintf(err, errlen, "invalid bridge topic direction");
		return -1;
	}
	if (qos < 0 || qos > 2) {
		snprintf(err, errlen, "invalid bridge QoS level %d (0, 1 or 2)", qos);
		return -1;
	}
	/* a prefix is put in front of a topic name: it may hold no wildcard */
	if (lp && !name_ok(lp)) {
		snprintf(err, errlen, "invalid bridge topic local prefix '%s'", lp);
		return -1;
	}
	if (rp && !name_ok(rp)) {
		snprintf(err, errlen, "invalid bridge topic remote prefix '%s'", rp);
		return -1;
	}
	if (!pattern && (!lp || !rp)) {
		snprintf(err, errlen, "invalid bridge remapping: the pattern \"\" needs both a local "
		         "and a remote prefix");
		return -1;
	}
	mg_bridge_topic t = { .dir = (uint8_t)dir, .qos = (uint8_t)qos };
	if ((pattern && !(t.pattern = strdup(pattern))) || (lp && !(t.local_prefix = strdup(lp))) ||
	    (rp && !(t.remote_prefix = strdup(rp))) || !(t.local_topic = cat(lp, pattern)) ||
	    !(t.remote_topic = cat(rp, pattern))) {
		topic_free(&t);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* mosquitto checks prefix + pattern; a pattern alone it leaves to the SUBSCRIBE, which
	 * fails later and quietly: checked here, where the file and line can be named */
	const char *bad = !filter_ok(t.local_topic) ? t.local_topic
	                : !filter_ok(t.remote_topic) ? t.remote_topic : NULL;
	if (bad) {
		if (lp || rp)
			snprintf(err, errlen, "invalid bridge topic prefix and pattern combination '%s'", bad);
		else
			snprintf(err, errlen, "invalid bridge topic pattern '%s'", bad);
		topic_free(&t);
		return -1;
	}
	mg_bridge_topic *v = realloc(b->topics, (size_t)(b->n_topics + 1) * sizeof *v);
	if (!v) {
		topic_free(&t);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	b->topics = v;
	v[b->n_topics++] = t;
	return 0;
}

int mg_bridge_map_topic(const mg_bridge_conf *b, bool out, const uint8_t *t, size_t len,
                        mg_bridge_map *m)
{
	*m = (mg_bridge_map){ NULL, 0, 0 };
	int want = out ? MG_BRIDGE_OUT : MG_BRIDGE_IN;
	for (int i = 0; i < b->n_topics; i++) {
		const mg_bridge_topic *e = &b->topics[i];
		if (!(e->dir & want) || (!e->local_prefix && !e->remote_prefix))
			continue;
		const char *filter = out ? e->local_topic : e->remote_topic;
		if (!mg_topic_match((const uint8_t *)filter, strlen(filter), t, len))
			continue;
		const char *cut = out ? e->local_prefix : e->remote_prefix;
		const char *add = out ? e->remote_prefix : e->local_prefix;
		size_t cl = cut ? strlen(cut) : 0;
		if (cut && cl <= len && memcmp(t, cut, cl) == 0)
			m->strip = cl;
		if (add) {
			m->add = add;
			m->add_len = strlen(add);
		}
		return i;
	}
	return -1;
}

size_t mg_bridge_map_apply(const mg_bridge_map *m, const uint8_t *t, size_t len, uint8_t *buf,
                           size_t cap)
{
	size_t n = m->add_len + (len - m->strip);
	if (n > cap || n == 0)
		return 0;
	if (m->add_len)
		memcpy(buf, m->add, m->add_len);
	memcpy(buf + m->add_len, t + m->strip, len - m->strip);
	return n;
}
