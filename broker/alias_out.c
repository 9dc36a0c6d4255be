/*
 * broker/alias_out.c - outbound topic aliases (broker -> client, MQTT 5.0 3.3.2.3.4).
 *
 * A 5.0 client that sends Topic Alias Maximum N > 0 in its CONNECT lets the broker replace a
 * topic it has already sent on this network connection by a number 1..N [MQTT-3.1.2-26].
 * The mapping belongs to the connection, not the session: a new connection starts empty, so
 * whatever is resent after a reconnect carries its full topic again.
 *
 * Policy: aliases go to topics in order of first use until min(N, MG_ALIAS_OUT_MAX) are
 * taken; later new topics are sent in full, without an alias, and a mapping is never
 * changed. This is simple and predictable (a topic's alias never moves, so nothing has to
 * be evicted or re-announced, and no state can disagree with the client's after a failed
 * send); each PUBLISH costs one hash lookup. A client that receives thousands of distinct
 * topics gets aliases for its first ones only; an LRU could do better there at the price of
 * rewriting mappings on the wire.
 *
 * Only clients that ask get aliases. Some announce a maximum without resolving aliases
 * (paho-mqtt 1.6.1 hands on_message an empty topic; libmosquitto 2.0.11 drops the
 * connection): with those, leave the Topic Alias Maximum at 0 (their default).
 *
 * Cost: 8 bytes per connection (the pointer in mg_conn, NULL when N = 0). With N > 0, one
 * allocation of 260 bytes + 16 bytes per alias (at most 1.3 KiB, for 64 aliases),
 * plus one malloc'd copy of each aliased topic. The lookup is a tiny open-addressing hash on
 * the topic's content (different messages hold different copies of the same topic); entries
 * are never removed, so probing needs no tombstones.
 */
#include "broker/alias_out.h"
#include "broker/hash.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 128 /* power of two >= 2 * MG_ALIAS_OUT_MAX: the table is at most half full */

typedef struct alias_ent {
	uint8_t *topic; /* malloc'd copy */
	uint32_t hash;
	uint16_t len;
} alias_ent;

struct mg_alias_out {
	uint16_t max;       /* aliases we may use: min(client's maximum, MG_ALIAS_OUT_MAX) */
	uint16_t n;         /* aliases bound so far: 1..n */
	uint16_t slot[SLOTS]; /* alias number, 0 empty */
	alias_ent e[];      /* e[alias - 1] */
};

_Static_assert(SLOTS >= 2 * MG_ALIAS_OUT_MAX && (SLOTS & (SLOTS - 1)) == 0, "alias hash size");

mg_alias_out *mg_alias_out_new(uint16_t client_max)
{
	if (client_max == 0)
		return NULL; /* [MQTT-3.1.2-27]: no alias may be sent */
	uint16_t max = client_max < MG_ALIAS_OUT_MAX ? client_max : MG_ALIAS_OUT_MAX;
	mg_alias_out *a = calloc(1, sizeof *a + max * sizeof a->e[0]);
	if (a)
		a->max = max;
	return a; /* NULL on ENOMEM: topics are then simply sent in full */
}

void mg_alias_out_free(mg_alias_out *a)
{
	if (!a)
		return;
	for (uint16_t i = 0; i < a->n; i++)
		free(a->e[i].topic);
	free(a);
}

static uint32_t hash(mg_bytes t)
{
	return mg_hash_bytes(0, t.p, t.len); /* unseeded: a table of at most MG_ALIAS_OUT_MAX */
}

int mg_alias_out_get(mg_alias_out *a, mg_bytes topic, uint16_t *alias)
{
	*alias = 0;
	if (!a || topic.len == 0 || topic.len > UINT16_MAX)
		return -1;
	uint32_t h = hash(topic);
	for (uint32_t i = h & (SLOTS - 1);; i = (i + 1) & (SLOTS - 1)) {
		uint16_t k = a->slot[i];
		if (k == 0)
			break;
		const alias_ent *e = &a->e[k - 1];
		if (e->hash == h && e->len == topic.len && memcmp(e->topic, topic.p, topic.len) == 0) {
			*alias = k;
			return 1;
		}
	}
	if (a->n >= a->max)
		return -1; /* full: the topic goes in full, without an alias */
	*alias = (uint16_t)(a->n + 1);
	return 0;
}

void mg_alias_out_bind(mg_alias_out *a, mg_bytes topic, uint16_t alias)
{
	/* Called once the PUBLISH that announced the alias is committed to the output. If the
	 * copy cannot be made the alias is not recorded: the next new topic is announced with the
	 * same number and its topic, which the client takes as a new mapping for that number
	 * (3.3.2.3.4), so the two sides never disagree. */
	if (!a || alias != a->n + 1 || alias > a->max)
		return;
	uint8_t *copy = malloc(topic.len);
	if (!copy)
		return;
	memcpy(copy, topic.p, topic.len);
	uint32_t h = hash(topic);
	a->e[alias - 1] = (alias_ent){ copy, h, (uint16_t)topic.len };
	uint32_t i = h & (SLOTS - 1);
	while (a->slot[i])
		i = (i + 1) & (SLOTS - 1);
	a->slot[i] = alias;
	a->n = alias;
}
