/* proto/varint.c - Variable Byte Integers (MQTT 5.0 1.5.5, 3.1.1 2.2.3 "Remaining Length"). */
#include "proto/codec.h"

int mg_varint_decode(const uint8_t *buf, size_t len, uint32_t *value, bool *nonminimal)
{
	uint32_t v = 0;
	for (size_t i = 0; i < 4; i++) {
		if (i >= len)
			return 0;
		v |= (uint32_t)(buf[i] & 0x7F) << (7 * i);
		if (!(buf[i] & 0x80)) {
			*value = v;
			/* A last byte of 0 after a continuation adds nothing: a shorter form exists. */
			if (nonminimal)
				*nonminimal = i > 0 && buf[i] == 0;
			return (int)i + 1;
		}
	}
	return MG_E_VARINT; /* a fifth byte would be needed */
}

size_t mg_varint_size(uint32_t value)
{
	if (value < 128u)
		return 1;
	if (value < 16384u)
		return 2;
	if (value < 2097152u)
		return 3;
	if (value <= MG_MAX_REMAINING)
		return 4;
	return 0;
}

size_t mg_varint_encode(uint8_t *buf, uint32_t value)
{
	size_t n = 0;
	do {
		uint8_t b = value & 0x7F;
		value >>= 7;
		buf[n++] = value ? (uint8_t)(b | 0x80) : b;
	} while (value && n < 4);
	return n;
}

/* Inside a 5.0 body (property lengths, identifiers, subscription identifiers): the packet's
 * length is known, so running out means the field overruns it. */
int mg_rd_varint_slow(mg_rd *r, uint32_t *v)
{
	bool nonmin = false;
	int n = mg_varint_decode(r->p, mg_rd_left(r), v, &nonmin);
	if (n == 0)
		return MG_E_SHORT;
	if (n < 0)
		return n;
	if (nonmin)
		return MG_E_VARINT_NONMINIMAL;
	r->p += n;
	return MG_OK;
}
