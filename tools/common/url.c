/*
 * tools/common/url.c - -L mqtt[s]://[username[:password]@]host[:port]/topic (mqtts: TLS, port 8883
 * and the system's CAs, as mosquitto_pub), and -L ws[s]://[username[:password]@]host[:port][/path]:
 * MQTT over WebSockets (wss: over TLS, the system's CAs as for mqtts), the upgrade sent to
 * path ("/mqtt" when the URL has none); topics then come from -t. Ports 80 / 443 by default.
 *
 * The URL is copied once and split in place, so host, username, password and topic point
 * into cfg->url_copy (freed by mg_cfg_free). Like mosquitto, the topic is required and is
 * everything after the first '/' following the host, slashes included.
 */
#include "tools/common/cfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(const char *why)
{
	fprintf(stderr, "Error: Invalid URL for -L argument specified - %s.\n", why);
	return 1;
}

int mg_cfg_parse_url(mg_cfg *cfg, const char *url)
{
	char *s, *auth = NULL, *host, *port, *topic, *at;
	bool ws = false;

	if (!strncasecmp(url, "ws://", 5) || !strncasecmp(url, "wss://", 6)) {
		bool tls = url[2] == 's' || url[2] == 'S';
		url += tls ? 6 : 5;
		cfg->port = tls ? 443 : 80;
		cfg->tls_use_os_certs = tls;
		ws = true;
	} else if (!strncasecmp(url, "mqtt://", 7)) {
		url += 7;
		cfg->port = 1883;
	} else if (!strncasecmp(url, "mqtts://", 8)) {
		url += 8;
		cfg->port = 8883;
		cfg->tls_use_os_certs = true; /* as mosquitto: the system's CAs, and --cafile's if given */
	} else {
		fprintf(stderr, "Error: unsupported URL scheme.\n\n");
		return 1;
	}
	free(cfg->url_copy);
	cfg->url_copy = s = strdup(url);
	if (!s)
		return 1;

	topic = strchr(s, '/');
	if (ws) {
		/* the path keeps its '/': it moves one byte right, into the room of the scheme */
		free(cfg->ws_path_copy);
		cfg->ws_path_copy = strdup(topic ? topic : "/mqtt");
		if (!cfg->ws_path_copy)
			return 1;
		if (topic)
			*topic = '\0';
		if (strpbrk(cfg->ws_path_copy, " \t\r\n"))
			return fail("bad path");
		cfg->ws = true;
	} else if (!topic) {
		return fail("topic missing");
	} else {
		*topic++ = '\0';
		if (!*topic)
			return fail("topic missing");
	}

	at = strrchr(s, '@');
	if (at) {
		*at = '\0';
		auth = s;
		host = at + 1;
	} else {
		host = s;
	}
	if (auth) {
		char *colon = strchr(auth, ':');
		if (colon) {
			*colon = '\0';
			cfg->password = colon + 1;
		}
		cfg->username = auth;
	}
	/* [v6::addr]:port keeps its colons inside the brackets. */
	if (*host == '[') {
		char *close = strchr(host, ']');
		if (!close)
			return fail("unterminated IPv6 address");
		*close = '\0';
		port = close[1] == ':' ? close + 2 : NULL;
		host++;
	} else {
		port = strchr(host, ':');
		if (port)
			*port++ = '\0';
	}
	if (!*host)
		return fail("host missing");
	cfg->host = host;
	if (port) {
		char *end;
		long p = strtol(port, &end, 10);
		if (end == port || *end || p < 1 || p > 65535)
			return fail("bad port");
		cfg->port = (int)p;
	}
	if (ws)
		return 0;
	if (cfg->tool == MG_TOOL_PUB) {
		cfg->topic = topic;
		return 0;
	}
	{
		const char **a = realloc(cfg->topics, (size_t)(cfg->ntopics + 1) * sizeof(*a));
		if (!a)
			return 1;
		a[cfg->ntopics++] = topic;
		cfg->topics = a;
	}
	return 0;
}
