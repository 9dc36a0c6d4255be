/* proto/frame.c - the fixed header: packet type, flags and Remaining Length (2.1 / 2.2). */
#include "proto/codec.h"

int mg_frame(const uint8_t *buf, size_t len, uint8_t level, uint32_t max_size, uint8_t *type_flags)
{
	uint32_t rem;
	bool nonmin = false;
	if (len < 1)
		return MG_NEED_MORE;
	if (type_flags)
		*type_flags = buf[0];
	int n = mg_varint_decode(buf + 1, len - 1, &rem, &nonmin);
	if (n <= 0)
		return n; /* need more, or MG_E_VARINT */
	if (nonmin && level == MG_V5)
		return MG_E_VARINT_NONMINIMAL;
	uint64_t size = 1u + (uint64_t)n + rem;
	if (size > (max_size ? max_size : MG_MAX_PACKET))
		return MG_E_TOO_LARGE; /* before the body arrives: the receiver never buffers it */
	return (int)size;
}
