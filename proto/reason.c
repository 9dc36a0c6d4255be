/*
 * proto/reason.c - MQTT 5.0 reason codes (section 2.4, table 2-6): name and the packets each
 * may appear in. 0x00 has three names depending on the packet.
 */
#include "proto/codec.h"

#define P(t) (1u << (t))
#define ACKS (P(MG_PUBACK) | P(MG_PUBREC))

static const struct {
	uint8_t code;
	uint16_t packets;
	const char *name;
} reasons[] = {
	{0x00, P(MG_CONNACK) | ACKS | P(MG_PUBREL) | P(MG_PUBCOMP) | P(MG_UNSUBACK) | P(MG_AUTH),
	 "Success"},
	{0x01, P(MG_SUBACK), "Granted QoS 1"},
	{0x02, P(MG_SUBACK), "Granted QoS 2"},
	{0x04, P(MG_DISCONNECT), "Disconnect with Will Message"},
	{0x10, ACKS, "No matching subscribers"},
	{0x11, P(MG_UNSUBACK), "No subscription existed"},
	{0x18, P(MG_AUTH), "Continue authentication"},
	{0x19, P(MG_AUTH), "Re-authenticate"},
	{0x80, P(MG_CONNACK) | ACKS | P(MG_SUBACK) | P(MG_UNSUBACK) | P(MG_DISCONNECT),
	 "Unspecified error"},
	{0x81, P(MG_CONNACK) | P(MG_DISCONNECT), "Malformed Packet"},
	{0x82, P(MG_CONNACK) | P(MG_DISCONNECT), "Protocol Error"},
	{0x83, P(MG_CONNACK) | ACKS | P(MG_SUBACK) | P(MG_UNSUBACK) | P(MG_DISCONNECT),
	 "Implementation specific error"},
	{0x84, P(MG_CONNACK), "Unsupported Protocol Version"},
	{0x85, P(MG_CONNACK), "Client Identifier not valid"},
	{0x86, P(MG_CONNACK), "Bad User Name or Password"},
	{0x87, P(MG_CONNACK) | ACKS | P(MG_SUBACK) | P(MG_UNSUBACK) | P(MG_DISCONNECT),
	 "Not authorized"},
	{0x88, P(MG_CONNACK), "Server unavailable"},
	{0x89, P(MG_CONNACK) | P(MG_DISCONNECT), "Server busy"},
	{0x8A, P(MG_CONNACK), "Banned"},
	{0x8B, P(MG_DISCONNECT), "Server shutting down"},
	{0x8C, P(MG_CONNACK) | P(MG_DISCONNECT), "Bad authentication method"},
	{0x8D, P(MG_DISCONNECT), "Keep Alive timeout"},
	{0x8E, P(MG_DISCONNECT), "Session taken over"},
	{0x8F, P(MG_SUBACK) | P(MG_UNSUBACK) | P(MG_DISCONNECT), "Topic Filter invalid"},
	{0x90, P(MG_CONNACK) | ACKS | P(MG_DISCONNECT), "Topic Name invalid"},
	{0x91, ACKS | P(MG_SUBACK) | P(MG_UNSUBACK), "Packet Identifier in use"},
	{0x92, P(MG_PUBREL) | P(MG_PUBCOMP), "Packet Identifier not found"},
	{0x93, P(MG_DISCONNECT), "Receive Maximum exceeded"},
	{0x94, P(MG_DISCONNECT), "Topic Alias invalid"},
	{0x95, P(MG_CONNACK) | P(MG_DISCONNECT), "Packet too large"},
	{0x96, P(MG_DISCONNECT), "Message rate too high"},
	{0x97, P(MG_CONNACK) | ACKS | P(MG_SUBACK) | P(MG_DISCONNECT), "Quota exceeded"},
	{0x98, P(MG_DISCONNECT), "Administrative action"},
	{0x99, P(MG_CONNACK) | ACKS | P(MG_DISCONNECT), "Payload format invalid"},
	{0x9A, P(MG_CONNACK) | P(MG_DISCONNECT), "Retain not supported"},
	{0x9B, P(MG_CONNACK) | P(MG_DISCONNECT), "QoS not supported"},
	{0x9C, P(MG_CONNACK) | P(MG_DISCONNECT), "Use another server"},
	{0x9D, P(MG_CONNACK) | P(MG_DISCONNECT), "Server moved"},
	{0x9E, P(MG_SUBACK) | P(MG_DISCONNECT), "Shared Subscriptions not supported"},
	{0x9F, P(MG_CONNACK) | P(MG_DISCONNECT), "Connection rate exceeded"},
	{0xA0, P(MG_DISCONNECT), "Maximum connect time"},
	{0xA1, P(MG_SUBACK) | P(MG_DISCONNECT), "Subscription Identifiers not supported"},
	{0xA2, P(MG_SUBACK) | P(MG_DISCONNECT), "Wildcard Subscriptions not supported"},
};

static int find(uint8_t code)
{
	for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
		if (reasons[i].code == code)
			return (int)i;
	return -1;
}

const char *mg_reason_name(uint8_t code, int ptype)
{
	if (code == 0x00 && ptype == MG_DISCONNECT)
		return "Normal disconnection";
	if (code == 0x00 && ptype == MG_SUBACK)
		return "Granted QoS 0";
	int i = find(code);
	return i < 0 ? "Unknown reason code" : reasons[i].name;
}

bool mg_reason_allowed(uint8_t code, int ptype)
{
	if (ptype < 1 || ptype > 15)
		return false;
	if (code == 0x00 && (ptype == MG_DISCONNECT || ptype == MG_SUBACK))
		return true; /* Normal disconnection, Granted QoS 0 */
	int i = find(code);
	return i >= 0 && (reasons[i].packets & P(ptype));
}
