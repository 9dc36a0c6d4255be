/*
 * client/check.c - the public checks and lookups (UTF-8, topic names and filters, property
 * names, types and packets). Every rule is proto/'s, including its one property table; this
 * file translates proto's answers into MIDGE_* codes and mosquitto_pub's property spellings,
 * and the library's own checks of what a caller passes in go through it too.
 */
#include <ctype.h>
#include <string.h>

#include "client/client.h"

/* The public command values are the packet types proto uses, so they pass straight through. */
#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(MIDGE_CMD_CONNECT, MG_CONNECT) && SAME(MIDGE_CMD_PUBLISH, MG_PUBLISH) &&
	               SAME(MIDGE_CMD_PUBACK, MG_PUBACK) && SAME(MIDGE_CMD_PUBREC, MG_PUBREC) &&
	               SAME(MIDGE_CMD_PUBREL, MG_PUBREL) && SAME(MIDGE_CMD_PUBCOMP, MG_PUBCOMP) &&
	               SAME(MIDGE_CMD_SUBSCRIBE, MG_SUBSCRIBE) &&
	               SAME(MIDGE_CMD_UNSUBSCRIBE, MG_UNSUBSCRIBE) &&
	               SAME(MIDGE_CMD_DISCONNECT, MG_DISCONNECT) && SAME(MIDGE_CMD_AUTH, MG_AUTH) &&
	               SAME(MIDGE_CMD_WILL, MG_PTYPE_WILL),
               "MIDGE_CMD_* are the MQTT packet types");

int midge_validate_utf8(const char *s, size_t len)
{
	if (!s && len)
		return MIDGE_ERR_INVAL;
	return mg_utf8_check((const uint8_t *)s, len) == MG_OK ? MIDGE_OK : MIDGE_ERR_UTF8;
}

static int topic_err(int rc)
{
	if (rc == MG_E_UTF8 || rc == MG_E_UTF8_NUL)
		return MIDGE_ERR_UTF8;
	return rc == MG_OK ? MIDGE_OK : MIDGE_ERR_TOPIC;
}

int midge_pub_topic_check(const char *topic)
{
	if (!topic)
		return MIDGE_ERR_INVAL;
	return topic_err(mg_topic_name_check((const uint8_t *)topic, strlen(topic)));
}

int midge_sub_topic_check(const char *filter)
{
	if (!filter)
		return MIDGE_ERR_INVAL;
	size_t n = strlen(filter);
	int rc = topic_err(mg_topic_filter_check((const uint8_t *)filter, n));
	if (rc == MIDGE_OK && mg_share_parse((const uint8_t *)filter, n, NULL, NULL) < 0)
		rc = MIDGE_ERR_TOPIC;
	return rc;
}

int midge_property_type(int id)
{
	switch (mg_prop_type(id)) {
	case MG_PT_BYTE: return MIDGE_PROP_TYPE_BYTE;
	case MG_PT_U16: return MIDGE_PROP_TYPE_INT16;
	case MG_PT_U32: return MIDGE_PROP_TYPE_INT32;
	case MG_PT_VARINT: return MIDGE_PROP_TYPE_VARINT;
	case MG_PT_BINARY: return MIDGE_PROP_TYPE_BINARY;
	case MG_PT_UTF8: return MIDGE_PROP_TYPE_STRING;
	case MG_PT_PAIR: return MIDGE_PROP_TYPE_STRING_PAIR;
	default: return MIDGE_ERR_NOT_FOUND;
	}
}

/* "message-expiry-interval" against proto's "Message Expiry Interval": a '-' stands for a
 * space, letters in either case. Deriving the spelling keeps one table (proto's); the cost is
 * a scan of at most 42 short names, once per -D argument. */
static bool dashed_name_is(const char *dashed, const char *spec)
{
	for (; *dashed && *spec; dashed++, spec++) {
		if (*spec == ' ' ? *dashed != '-'
		                 : tolower((unsigned char)*dashed) != tolower((unsigned char)*spec))
			return false;
	}
	return !*dashed && !*spec;
}

int midge_string_to_property_info(const char *name, int *id, int *type)
{
	if (!name)
		return MIDGE_ERR_INVAL;
	for (int i = 1; i < 64; i++) {
		if (mg_prop_type(i) == MG_PT_NONE || !dashed_name_is(name, mg_prop_name(i)))
			continue;
		if (id)
			*id = i;
		if (type)
			*type = midge_property_type(i);
		return MIDGE_OK;
	}
	return MIDGE_ERR_NOT_FOUND;
}

int midge_property_check_command(int command, int id)
{
	switch (command) {
	case MIDGE_CMD_CONNECT: case MIDGE_CMD_PUBLISH: case MIDGE_CMD_PUBACK:
	case MIDGE_CMD_PUBREC: case MIDGE_CMD_PUBREL: case MIDGE_CMD_PUBCOMP:
	case MIDGE_CMD_SUBSCRIBE: case MIDGE_CMD_UNSUBSCRIBE: case MIDGE_CMD_DISCONNECT:
	case MIDGE_CMD_AUTH: case MIDGE_CMD_WILL:
		break;
	default:
		return MIDGE_ERR_INVAL; /* CONNACK, SUBACK, ...: only a server sends them */
	}
	if (mg_prop_type(id) == MG_PT_NONE)
		return MIDGE_ERR_NOT_FOUND;
	/* proto's table says where a property may appear in either direction; a Subscription
	 * Identifier in PUBLISH goes from server to client only [MQTT-3.3.4-6]. */
	if (!mg_prop_allowed(id, command) ||
	    (command == MIDGE_CMD_PUBLISH && id == MIDGE_PROP_SUBSCRIPTION_ID))
		return MIDGE_ERR_PROPERTY;
	return MIDGE_OK;
}
