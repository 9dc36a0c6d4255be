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
		for (int i = 0; i < c.n_listeners; i++)
			if (!c.listeners[i].file || c.listeners[i].protocol != MG_PROTO_MQTT)
				abort();
		if (c.persistence || c.password_file || c.max_inflight_messages == 0)
			abort(); /* refused features never come back as a loaded config */
	}
	mg_config_free(&c);
	return 0;
}
