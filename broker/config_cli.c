/*
 * broker/config_cli.c - the command line: mosquitto's options and its -h text's shape.
 */
#include "broker/config.h"

#include <stdio.h>
#include <string.h>

#ifndef MIDGE_VERSION
#define MIDGE_VERSION "unknown"
#endif

const char *mg_usage(void)
{
	return "midge version " MIDGE_VERSION "\n"
		"\n"
		"midge is an MQTT v5.0/v3.1.1/v3.1 broker.\n"
		"\n"
		"Usage: midge [-c config_file] [-d] [-h] [-p port] [-v] [--test-config]\n"
		"\n"
		" -c : specify the broker config file.\n"
		" -d : put the broker into the background after starting.\n"
		" -h : display this help.\n"
		" -p : start the broker listening on the specified port.\n"
		"      With -c, it changes the port of the first listener of the file;\n"
		"      without a listener, the broker still listens on this machine only.\n"
		" -v : verbose mode - enable all logging types. This overrides\n"
		"      any log_type options given in the config file.\n"
		" --test-config : read the config file, report any error, and exit.\n"
		"\n"
		"See midge(8) and midge.conf(5) for more information.\n";
}

static bool is(const char *a, const char *s, const char *l)
{
	return strcmp(a, s) == 0 || (l && strcmp(a, l) == 0);
}

int mg_cli_parse(int argc, char **argv, mg_cli *cli, char *err, size_t errlen)
{
	memset(cli, 0, sizeof *cli);
	cli->port = -1;
	if (err && errlen)
		err[0] = '\0';
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (is(a, "-c", "--config-file")) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "Error: -c argument given, but no config file specified.");
				return -1;
			}
			cli->config_file = argv[++i];
		} else if (is(a, "-p", "--port")) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "Error: -p argument given, but no port specified.");
				return -1;
			}
			const char *s = argv[++i];
			long v = 0;
			bool ok = *s != '\0' && strlen(s) <= 5;
			for (const char *q = s; ok && *q; q++) {
				if (*q < '0' || *q > '9')
					ok = false;
				else
					v = v * 10 + (*q - '0');
			}
			if (!ok || v > 65535) {
				snprintf(err, errlen, "Error: Invalid port specified (%s): expected 0 to 65535.", s);
				return -1;
			}
			cli->port = (int)v;
		} else if (is(a, "-v", "--verbose")) {
			cli->verbose = true;
		} else if (is(a, "-d", "--daemon")) {
			cli->daemon = true;
		} else if (is(a, "-h", "--help")) {
			cli->help = true;
		} else if (is(a, "--test-config", NULL)) {
			cli->test_config = true;
		} else {
			snprintf(err, errlen, "Error: Unknown option '%s'.", a);
			return -1;
		}
	}
	if (cli->test_config && !cli->config_file) {
		snprintf(err, errlen, "Error: --test-config needs a config file (-c FILE).");
		return -1;
	}
	return cli->help ? 1 : 0;
}
