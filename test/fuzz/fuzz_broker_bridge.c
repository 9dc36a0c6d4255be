/*
 * test/fuzz/fuzz_broker_bridge.c - a bridge's `connection` block and the mapping of topics
 * across it. The input is config text, then a NUL, then topics one per line: the block must
 * parse or fail with a message, never crash or leak; every topic maps both ways within the
 * buffer, a topic no entry decides crosses unchanged, and a mapped topic ends with what was
 * left of the original after its prefix was cut.
 */
#include "broker/bridge_conf.h"
#include "config_fuzz.h"

static void map_one(const mg_bridge_conf *b, bool out, const uint8_t *t, size_t len)
{
	mg_bridge_map m;
	int e = mg_bridge_map_topic(b, out, t, len, &m);
	if (e < -1 || e >= b->n_topics)
		abort();
	if (e == -1 && (m.add_len || m.strip))
		abort();
	if (m.strip > len)
		abort();
	uint8_t buf[512];
	size_t n = mg_bridge_map_apply(&m, t, len, buf, sizeof buf);
	if (n > sizeof buf)
		abort();
	if (n && (n != m.add_len + len - m.strip || memcmp(buf + m.add_len, t + m.strip, len - m.strip)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t clen = nul ? (size_t)(nul - data) : size;
	static const char head[] = "connection f\naddress 127.0.0.1\n";
	char *text = malloc(sizeof head + clen);
	if (!text)
		return 0;
	memcpy(text, head, sizeof head - 1);
	memcpy(text + sizeof head - 1, data, clen);
	mg_config c;
	int rc = fuzz_parse_config(&c, text, sizeof head - 1 + clen);
	free(text);
	if (rc == 0) {
		if (c.n_bridges < 1 || !c.bridges[0].n_topics || !c.bridges[0].local_clientid)
			abort();
		const uint8_t *t = nul ? nul + 1 : data + size, *end = data + size;
		while (t < end) {
			const uint8_t *nl = memchr(t, '\n', (size_t)(end - t));
			size_t len = nl ? (size_t)(nl - t) : (size_t)(end - t);
			for (int i = 0; i < c.n_bridges; i++) {
				map_one(&c.bridges[i], true, t, len);
				map_one(&c.bridges[i], false, t, len);
			}
			t += len + 1;
		}
	}
	mg_config_free(&c);
	return 0;
}
