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
	uint64_t max = max_size ? max_size : MG_MAX_PACKET;
	int n = mg_varint_decode(buf + 1, len - 1, &rem, &nonmin);
	if (n <= 0) {
		/* Length still incomplete, but what has arrived is a lower bound: refuse early. A
		 * malformed length (a 4th byte that continues) gets the test its first 3 bytes got
		 * when they arrived alone, so the answer never depends on how reads cut the stream. */
		size_t k = len - 1 < 3 ? len - 1 : 3;
		uint64_t low = 0;
		for (size_t i = 1; i <= k; i++)
			low |= (uint64_t)(buf[i] & 0x7F) << (7 * (i - 1));
		if (2 + k + low > max) /* 1 type byte, k length bytes and at least one more */
			return MG_E_TOO_LARGE;
		return n; /* MG_NEED_MORE, or MG_E_VARINT */
	}
	/* Size first: a partial length refused as too large above must get the same answer when
	 * the whole length arrives in one read, so the reason code does not depend on how TCP
	 * cut the stream. */
	uint64_t size = 1u + (uint64_t)n + rem;
	if (size > max)
		return MG_E_TOO_LARGE; /* before the body arrives: the receiver never buffers it */
	/* CONNECT carries its own level: mg_decode re-checks its varint once the level is read. */
	if (nonmin && level == MG_V5 && (buf[0] >> 4) != MG_CONNECT)
		return MG_E_VARINT_NONMINIMAL;
	return (int)size;
}
