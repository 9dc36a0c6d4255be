/*
 * tools/common/props.c - -D command identifier value: MQTT 5 properties named the way
 * mosquitto_pub/sub name them, checked against the packet they go into.
 */
#include "tools/common/cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define B(cmd) (1u << (cmd))

static const struct {
	const char *name;
	int id;
	int type;
	unsigned cmds; /* the packets a client may put it in */
} props[] = {
	{"payload-format-indicator", 0x01, MG_TPT_BYTE, B(MG_CMD_PUBLISH) | B(MG_CMD_WILL)},
	{"message-expiry-interval", 0x02, MG_TPT_INT32, B(MG_CMD_PUBLISH) | B(MG_CMD_WILL)},
	{"content-type", 0x03, MG_TPT_STRING, B(MG_CMD_PUBLISH) | B(MG_CMD_WILL)},
	{"response-topic", 0x08, MG_TPT_STRING, B(MG_CMD_PUBLISH) | B(MG_CMD_WILL)},
	{"correlation-data", 0x09, MG_TPT_BINARY, B(MG_CMD_PUBLISH) | B(MG_CMD_WILL)},
	{"subscription-identifier", 0x0B, MG_TPT_VARINT, B(MG_CMD_SUBSCRIBE)},
	{"session-expiry-interval", 0x11, MG_TPT_INT32, B(MG_CMD_CONNECT) | B(MG_CMD_DISCONNECT)},
	{"assigned-client-identifier", 0x12, MG_TPT_STRING, 0},
	{"server-keep-alive", 0x13, MG_TPT_INT16, 0},
	{"authentication-method", 0x15, MG_TPT_STRING, B(MG_CMD_CONNECT)},
	{"authentication-data", 0x16, MG_TPT_BINARY, B(MG_CMD_CONNECT)},
	{"request-problem-information", 0x17, MG_TPT_BYTE, B(MG_CMD_CONNECT)},
	{"will-delay-interval", 0x18, MG_TPT_INT32, B(MG_CMD_WILL)},
	{"request-response-information", 0x19, MG_TPT_BYTE, B(MG_CMD_CONNECT)},
	{"response-information", 0x1A, MG_TPT_STRING, 0},
	{"server-reference", 0x1C, MG_TPT_STRING, B(MG_CMD_DISCONNECT)},
	{"reason-string", 0x1F, MG_TPT_STRING, B(MG_CMD_DISCONNECT)},
	{"receive-maximum", 0x21, MG_TPT_INT16, B(MG_CMD_CONNECT)},
	{"topic-alias-maximum", 0x22, MG_TPT_INT16, B(MG_CMD_CONNECT)},
	{"topic-alias", 0x23, MG_TPT_INT16, B(MG_CMD_PUBLISH)},
	{"maximum-qos", 0x24, MG_TPT_BYTE, 0},
	{"retain-available", 0x25, MG_TPT_BYTE, 0},
	{"user-property", 0x26, MG_TPT_PAIR,
	 B(MG_CMD_CONNECT) | B(MG_CMD_PUBLISH) | B(MG_CMD_SUBSCRIBE) | B(MG_CMD_UNSUBSCRIBE) |
		 B(MG_CMD_DISCONNECT) | B(MG_CMD_WILL)},
	{"maximum-packet-size", 0x27, MG_TPT_INT32, B(MG_CMD_CONNECT)},
	{"wildcard-subscription-available", 0x28, MG_TPT_BYTE, 0},
	{"subscription-identifier-available", 0x29, MG_TPT_BYTE, 0},
	{"shared-subscription-available", 0x2A, MG_TPT_BYTE, 0},
};

static const char *const cmd_names[MG_CMD_COUNT] = {
	"connect", "publish", "subscribe", "unsubscribe", "disconnect", "will",
};

int mg_tool_prop_lookup(const char *name, int *type)
{
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
		if (!strcmp(props[i].name, name)) {
			if (type)
				*type = props[i].type;
			return (int)i;
		}
	return -1;
}

/* Numbers must fit their type; mosquitto says "Invalid property value" for all of these. */
static bool number_fits(const char *v, int type)
{
	char *end;
	unsigned long long max = type == MG_TPT_BYTE ? 0xFF
			       : type == MG_TPT_INT16 ? 0xFFFF
			       : type == MG_TPT_VARINT ? 268435455
						       : 0xFFFFFFFFull;

	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || n > max)
		return false;
	return !(type == MG_TPT_VARINT && n == 0);
}

int mg_cfg_parse_prop(mg_cfg *cfg, int argc, char **argv, int i)
{
	int cmd = -1, idx, type, need;
	mg_cfg_prop *p;

	if (i + 3 >= argc) {
		fprintf(stderr, "Error: %s argument given but not enough arguments specified.\n\n",
			argv[i]);
		return -1;
	}
	for (int c = 0; c < MG_CMD_COUNT; c++)
		if (!strcasecmp(argv[i + 1], cmd_names[c]))
			cmd = c;
	if (cmd < 0) {
		fprintf(stderr, "Error: Invalid command given in --property argument.\n\n");
		return -1;
	}
	idx = mg_tool_prop_lookup(argv[i + 2], &type);
	if (idx < 0) {
		fprintf(stderr, "Error: Invalid property name given in --property argument.\n\n");
		return -1;
	}
	if (!(props[idx].cmds & B(cmd))) {
		fprintf(stderr, "Error: %s property not allowed for %s in --property argument.\n\n",
			props[idx].name, cmd_names[cmd]);
		return -1;
	}
	need = type == MG_TPT_PAIR ? 5 : 4;
	if (i + need > argc) {
		fprintf(stderr, "Error: %s argument given but not enough arguments specified.\n\n",
			argv[i]);
		return -1;
	}
	if (type != MG_TPT_STRING && type != MG_TPT_BINARY && type != MG_TPT_PAIR &&
	    !number_fits(argv[i + 3], type)) {
		fprintf(stderr, "Error: Invalid property value given for %s.\n\n", props[idx].name);
		return -1;
	}
	p = realloc(cfg->props, (size_t)(cfg->nprops + 1) * sizeof(*p));
	if (!p)
		return -1;
	cfg->props = p;
	p = &p[cfg->nprops++];
	p->cmd = cmd;
	p->id = props[idx].id;
	p->type = type;
	p->value = argv[i + 3];
	p->value2 = type == MG_TPT_PAIR ? argv[i + 4] : NULL;
	return need;
}
