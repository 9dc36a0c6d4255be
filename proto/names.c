/*
 * proto/names.c - names for packet types and errors, and the MQTT 5 reason code that each
 * decoding error asks the receiver to send (in DISCONNECT, or CONNACK during CONNECT).
 * Statement ids are 3.1.1's where it has the rule, 5.0's for 5.0-only rules.
 */
#include "proto/codec.h"

const char *mg_ptype_name(int type)
{
	static const char *const names[] = {
		NULL, "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
		"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
		"DISCONNECT", "AUTH",
	};
	if (type < 1 || type > 15)
		return "UNKNOWN";
	return names[type];
}

static const struct {
	const char *str;
	uint8_t reason;
} errs[] = {
	[0] = {"success", MG_RC_SUCCESS},
	[-MG_E_VARINT] = {"variable byte integer longer than 4 bytes", MG_RC_MALFORMED},
	[-MG_E_VARINT_NONMINIMAL] = {"variable byte integer not in its shortest form [MQTT-1.5.5-1]",
	                             MG_RC_MALFORMED},
	[-MG_E_TOO_LARGE] = {"packet larger than the maximum packet size", MG_RC_PACKET_TOO_LARGE},
	[-MG_E_TYPE] = {"reserved packet type 0, or AUTH before MQTT 5.0", MG_RC_MALFORMED},
	[-MG_E_FLAGS] = {"reserved flag bits not as the specification fixes them [MQTT-2.2.2-1]",
	                 MG_RC_MALFORMED},
	[-MG_E_SHORT] = {"a field overruns the remaining length", MG_RC_MALFORMED},
	[-MG_E_TRAILING] = {"bytes left over after the last field of the packet", MG_RC_MALFORMED},
	[-MG_E_UTF8] = {"ill-formed UTF-8 string (overlong, surrogate or above U+10FFFF) "
	                "[MQTT-1.5.3-1]", MG_RC_MALFORMED},
	[-MG_E_UTF8_NUL] = {"U+0000 in a UTF-8 string [MQTT-1.5.3-2]", MG_RC_MALFORMED},
	[-MG_E_QOS] = {"QoS 3 [MQTT-3.3.1-4]", MG_RC_MALFORMED},
	[-MG_E_DUP_QOS0] = {"DUP flag set on a QoS 0 PUBLISH [MQTT-3.3.1-2]", MG_RC_MALFORMED},
	[-MG_E_PACKET_ID] = {"packet identifier 0 where a non-zero one is required [MQTT-2.3.1-1]",
	                     MG_RC_PROTOCOL_ERROR},
	[-MG_E_TOPIC_WILDCARD] = {"wildcard '+' or '#' in a topic name [MQTT-3.3.2-2]",
	                          MG_RC_TOPIC_NAME_INVALID},
	[-MG_E_TOPIC_EMPTY] = {"empty topic name (and no topic alias) or empty topic filter "
	                       "[MQTT-4.7.3-1]", MG_RC_PROTOCOL_ERROR},
	[-MG_E_FILTER] = {"topic filter with '#' not the whole last level or '+' not a whole level "
	                  "[MQTT-4.7.1-2] [MQTT-4.7.1-3]", MG_RC_TOPIC_FILTER_INVALID},
	[-MG_E_NO_TOPICS] = {"SUBSCRIBE or UNSUBSCRIBE without a topic filter [MQTT-3.8.3-3] "
	                     "[MQTT-3.10.3-2]", MG_RC_PROTOCOL_ERROR},
	/* 5.0 calls reserved bits malformed, but retain handling 3 and No Local on a shared
	 * subscription Protocol Errors: two errors, two reason codes. */
	[-MG_E_SUB_OPTIONS] = {"reserved subscription option bits set [MQTT-3.8.3-5] "
	                       "[MQTT-3-8.3-4]", MG_RC_MALFORMED},
	[-MG_E_SUB_OPTIONS_PROTOCOL] = {"retain handling 3, or No Local on a shared subscription "
	                                "[MQTT-3.8.3-4]", MG_RC_PROTOCOL_ERROR},
	[-MG_E_PROP_DUP] = {"property included more than once where only one is allowed",
	                    MG_RC_PROTOCOL_ERROR},
	[-MG_E_PROP_NOT_ALLOWED] = {"property not valid in this packet type", MG_RC_MALFORMED},
	[-MG_E_PROP_UNKNOWN] = {"unknown property identifier", MG_RC_MALFORMED},
	[-MG_E_PROP_VALUE] = {"property value out of range (a 0 where 0 is forbidden, a flag not "
	                      "0/1, authentication data without method)", MG_RC_PROTOCOL_ERROR},
	[-MG_E_TOPIC_ALIAS_ZERO] = {"topic alias 0 [MQTT-3.3.2-8]", MG_RC_TOPIC_ALIAS_INVALID},
	[-MG_E_PASSWORD_NO_USER] = {"password flag without user name flag [MQTT-3.1.2-22]",
	                            MG_RC_PROTOCOL_ERROR},
	[-MG_E_WILL_FLAGS] = {"will QoS or will retain without will flag, or will QoS 3 "
	                      "[MQTT-3.1.2-11] [MQTT-3.1.2-14]", MG_RC_MALFORMED},
	[-MG_E_CONNECT_RESERVED] = {"CONNECT reserved flag set [MQTT-3.1.2-3]", MG_RC_MALFORMED},
	[-MG_E_PROTOCOL_NAME] = {"protocol name is neither \"MQTT\" nor \"MQIsdp\" [MQTT-3.1.2-1]",
	                         MG_RC_UNSUPPORTED_PROTOCOL_VERSION},
	[-MG_E_PROTOCOL_LEVEL] = {"protocol level unsupported or not matching the protocol name "
	                          "[MQTT-3.1.2-2]", MG_RC_UNSUPPORTED_PROTOCOL_VERSION},
	[-MG_E_REASON_CODE] = {"reason code not valid in this packet type", MG_RC_PROTOCOL_ERROR},
	[-MG_E_SUBACK_CODE] = {"SUBACK return code other than 0, 1, 2 or 0x80", MG_RC_PROTOCOL_ERROR},
	[-MG_E_FILTER_SHARE] = {"malformed shared subscription $share/{ShareName}/{filter} "
	                        "[MQTT-4.8.2-1] [MQTT-4.8.2-2]", MG_RC_TOPIC_FILTER_INVALID},
	[-MG_E_CLIENT_ID] = {"client identifier refused: empty in MQTT 3.1, or empty with clean "
	                     "session 0 in 3.1.1 [MQTT-3.1.3-8]", MG_RC_CLIENT_ID_NOT_VALID},
	[-MG_E_ARG] = {"the encoder cannot encode this packet", MG_RC_UNSPECIFIED},
};

const char *mg_err_str(int err)
{
	if (err > 0 || err < MG_E_MIN)
		return "unknown error";
	return errs[-err].str;
}

uint8_t mg_err_reason(int err)
{
	if (err > 0 || err < MG_E_MIN)
		return MG_RC_UNSPECIFIED;
	return errs[-err].reason;
}
