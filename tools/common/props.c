/*
 * tools/common/props.c - -D command identifier value: MQTT 5 properties named the way
 * mosquitto_pub/sub name them, checked against the packet they go into. The names, types and
 * packets are libmidge's public lookups (midge_string_to_property_info,
 * midge_property_check_command), so the tools hold no property table of their own.
 */
#include "tools/common/cfg.h"

#include <midge/midge.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* mosquitto's command words; the properties themselves are libmidge's (one table, proto's). */
static const struct {
	const char *word;
	int cmd;
} cmds[] = {
	{"connect", MIDGE_CMD_CONNECT},         {"publish", MIDGE_CMD_PUBLISH},
	{"subscribe", MIDGE_CMD_SUBSCRIBE},     {"unsubscribe", MIDGE_CMD_UNSUBSCRIBE},
	{"disconnect", MIDGE_CMD_DISCONNECT},   {"will", MIDGE_CMD_WILL},
};

/* Numbers must fit their type; mosquitto says "Invalid property value" for all of these. */
static bool number_fits(const char *v, int type)
{
	char *end;
	unsigned long long max = type == MIDGE_PROP_TYPE_BYTE     ? 0xFF
	                         : type == MIDGE_PROP_TYPE_INT16  ? 0xFFFF
	                         : type == MIDGE_PROP_TYPE_VARINT ? 268435455
	                                                          : 0xFFFFFFFFull;

	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || n > max)
		return false;
	return !(type == MIDGE_PROP_TYPE_VARINT && n == 0);
}

int mg_cfg_parse_prop(mg_cfg *cfg, int argc, char **argv, int i)
{
	int cmd = -1, id, type, need;
	mg_cfg_prop *p;

	if (i + 3 >= argc) {
		fprintf(stderr, "Error: %s argument given but not enough arguments specified.\n\n",
			argv[i]);
		return -1;
	}
	for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++)
		if (!strcasecmp(argv[i + 1], cmds[c].word))
			cmd = cmds[c].cmd;
	if (cmd < 0) {
		fprintf(stderr, "Error: Invalid command given in --property argument.\n\n");
		return -1;
	}
	if (midge_string_to_property_info(argv[i + 2], &id, &type) != MIDGE_OK) {
		fprintf(stderr, "Error: Invalid property name given in --property argument.\n\n");
		return -1;
	}
	if (midge_property_check_command(cmd, id) != MIDGE_OK) { /* names as typed, as mosquitto */
		fprintf(stderr, "Error: %s property not allowed for %s in --property argument.\n\n",
			argv[i + 2], argv[i + 1]);
		return -1;
	}
	need = type == MIDGE_PROP_TYPE_STRING_PAIR ? 5 : 4;
	if (i + need > argc) {
		fprintf(stderr, "Error: %s argument given but not enough arguments specified.\n\n",
			argv[i]);
		return -1;
	}
	if (type != MIDGE_PROP_TYPE_STRING && type != MIDGE_PROP_TYPE_BINARY &&
	    type != MIDGE_PROP_TYPE_STRING_PAIR && !number_fits(argv[i + 3], type)) {
		fprintf(stderr, "Error: Invalid property value given for %s.\n\n", argv[i + 2]);
		return -1;
	}
	p = realloc(cfg->props, (size_t)(cfg->nprops + 1) * sizeof(*p));
	if (!p)
		return -1;
	cfg->props = p;
	p = &p[cfg->nprops++];
	p->cmd = cmd;
	p->id = id;
	p->type = type;
	p->value = argv[i + 3];
	p->value2 = type == MIDGE_PROP_TYPE_STRING_PAIR ? argv[i + 4] : NULL;
	return need;
}
