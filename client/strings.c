/* client/strings.c - names for errors and reason codes, and the version. */
#include "client/client.h"

int midge_lib_version(int *major, int *minor, int *revision)
{
	if (major)
		*major = MIDGE_VERSION_MAJOR;
	if (minor)
		*minor = MIDGE_VERSION_MINOR;
	if (revision)
		*revision = MIDGE_VERSION_REVISION;
	return MIDGE_VERSION_MAJOR * 1000000 + MIDGE_VERSION_MINOR * 1000 + MIDGE_VERSION_REVISION;
}

const char *midge_strerror(int err)
{
	switch (err) {
	case MIDGE_OK: return "No error.";
	case MIDGE_ERR_INVAL: return "Invalid function arguments provided.";
	case MIDGE_ERR_NOMEM: return "Out of memory.";
	case MIDGE_ERR_NO_CONN: return "The client is not currently connected.";
	case MIDGE_ERR_CONN_REFUSED: return "The connection was refused.";
	case MIDGE_ERR_CONN_LOST: return "The connection was lost.";
	case MIDGE_ERR_PROTOCOL: return "A network protocol error occurred when communicating with the broker.";
	case MIDGE_ERR_PAYLOAD_SIZE: return "Payload too large.";
	case MIDGE_ERR_QUEUE_FULL: return "Message queue full.";
	case MIDGE_ERR_TIMEOUT: return "Timed out.";
	case MIDGE_ERR_ERRNO: return "System error (see errno).";
	case MIDGE_ERR_NOT_FOUND: return "Not found.";
	case MIDGE_ERR_TLS: return "A TLS error occurred.";
	case MIDGE_ERR_NOT_SUPPORTED: return "This feature is not supported.";
	case MIDGE_ERR_TOPIC: return "Invalid topic name or topic filter.";
	case MIDGE_ERR_UTF8: return "Malformed UTF-8.";
	case MIDGE_ERR_LOOKUP: return "Lookup error: the host name could not be resolved.";
	case MIDGE_ERR_KEEPALIVE: return "No response from the broker within the keepalive.";
	case MIDGE_ERR_PROPERTY: return "A property is not allowed in this packet or protocol version.";
	case MIDGE_ERR_BUSY: return "Busy: already connected or connecting, or a loop thread runs.";
	case MIDGE_ERR_OVERSIZE_PACKET: return "Packet larger than the broker's maximum packet size.";
	case MIDGE_ERR_PROXY: return "The SOCKS5 proxy refused the connection or failed.";
	default: return "Unknown error.";
	}
}

const char *midge_connack_string(int rc)
{
	if (rc < 0)
		return midge_strerror(rc);
	switch (rc) {
	case 0: return "Connection Accepted.";
	case 1: return "Connection Refused: unacceptable protocol version.";
	case 2: return "Connection Refused: identifier rejected.";
	case 3: return "Connection Refused: broker unavailable.";
	case 4: return "Connection Refused: bad user name or password.";
	case 5: return "Connection Refused: not authorised.";
	}
	if (rc <= 255 && mg_reason_allowed((uint8_t)rc, MG_CONNACK))
		return mg_reason_name((uint8_t)rc, MG_CONNACK);
	return "Connection Refused: unknown reason.";
}

const char *midge_reason_string(int rc)
{
	if (rc < 0)
		return midge_strerror(rc);
	if (rc > 255)
		return "Unknown reason";
	/* 0x00 reads best as "Success"; the packet-specific names come from proto/. */
	if (rc == 0)
		return "Success";
	static const int types[] = { MG_PUBACK, MG_SUBACK, MG_DISCONNECT, MG_CONNACK, MG_PUBREC,
	                             MG_UNSUBACK, MG_PUBCOMP, MG_AUTH };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (mg_reason_allowed((uint8_t)rc, types[i]))
			return mg_reason_name((uint8_t)rc, types[i]);
	return "Unknown reason";
}
