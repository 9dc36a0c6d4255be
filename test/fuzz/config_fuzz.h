/*
 * test/fuzz/config_fuzz.h - what the config fuzzers (fuzz_broker_config.c, fuzz_broker_bridge.c)
 * share: a silent log, and a parse whose every failure must say what went wrong.
 */
#ifndef MG_FUZZ_CONFIG_FUZZ_H
#define MG_FUZZ_CONFIG_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config.h"
#include "broker/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	/* Warnings ("'port' is deprecated") would flood the fuzzer's output. */
	mg_config quiet;
	mg_config_init(&quiet);
	quiet.log_dests = 0;
	mg_log_open(&quiet);
	mg_config_free(&quiet);
	return 0;
}

/* text as "fuzz.conf" into c, which the caller frees: 0 loaded, else refused, and then the
 * message must start with "Error: " and fit its buffer (abort otherwise). */
static int fuzz_parse_config(mg_config *c, const char *text, size_t len)
{
	char err[256];
	mg_config_init(c);
	int rc = mg_config_parse_buffer(c, "fuzz.conf", text, len, err, sizeof err);
	if (rc != 0 && (strncmp(err, "Error: ", 7) != 0 || strlen(err) >= sizeof err))
		abort(); /* every failure says what went wrong */
	return rc;
}

#endif
