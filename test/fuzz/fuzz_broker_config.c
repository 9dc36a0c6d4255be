/*
 * test/fuzz/fuzz_broker_config.c - the config parser on arbitrary bytes: it must never crash,
 * leak or read out of bounds, and on success the result must be usable (finish it, check
 * the invariants the broker relies on).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config.h"
#include "broker/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Warnings ("'port' is deprecated") would flood the fuzzer's output. */
	mg_config quiet;
	mg_config_init(&quiet);
	quiet.log_dests = 0;
	mg_log_open(&quiet);
	mg_config_free(&quiet);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mg_config c;
	char err[256];
	mg_config_init(&c);
	int rc = mg_config_parse_buffer(&c, "fuzz.conf", (const char *)data, size, err, sizeof err);
	if (rc == 0) {
		mg_cli cli = {.port = -1, .verbose = (size & 1) != 0};
		mg_config_apply_cli(&c, &cli);
		if (c.n_listeners < 1 || !c.listeners)
			abort();
		for (int i = 0; i < c.n_listeners; i++)
			if (!c.listeners[i].file || c.listeners[i].protocol != MG_PROTO_MQTT)
				abort();
		if (c.persistence || c.password_file || c.max_inflight_messages == 0)
			abort(); /* refused features never come back as a loaded config */
	} else if (strncmp(err, "Error: ", 7) != 0 || strlen(err) >= sizeof err) {
		abort(); /* every failure says what went wrong */
	}
	mg_config_free(&c);
	return 0;
}
