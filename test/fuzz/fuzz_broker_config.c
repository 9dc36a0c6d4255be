/*
 * test/fuzz/fuzz_broker_config.c - the config parser on arbitrary bytes: it must never crash,
 * leak or read out of bounds, and on success the result must be usable (finish it, check
 * the invariants the broker relies on).
 */
#include "config_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mg_config c;
	if (fuzz_parse_config(&c, (const char *)data, size) == 0) {
		mg_cli cli = {.port = -1, .verbose = (size & 1) != 0};
		mg_config_apply_cli(&c, &cli);
		if (c.n_listeners < 1 || !c.listeners)
			abort();
		/* every listener says where it came from and speaks a protocol the broker has
		 * (include_dir reads the *.conf of the directory the fuzzer runs in: from the tree's
		 * root that is midge.conf, with its WebSockets listener) */
		for (int i = 0; i < c.n_listeners; i++)
			if (!c.listeners[i].file || (c.listeners[i].protocol != MG_PROTO_MQTT &&
			                             c.listeners[i].protocol != MG_PROTO_WEBSOCKETS))
				abort();
		if (c.max_inflight_messages == 0)
			abort(); /* 0 means no limit and is kept as 65535 */
	}
	mg_config_free(&c);
	return 0;
}
