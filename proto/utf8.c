/*
 * proto/utf8.c - UTF-8 Encoded Strings must be well-formed (Unicode 3.9, table 3-7): no
 * overlongs, no surrogates U+D800..U+DFFF, nothing above U+10FFFF [MQTT-1.5.4-1], and no U+0000
 * [MQTT-1.5.4-2]. Other control characters and non-characters are allowed (a receiver MAY
 * refuse them; we do not).
 */
#include "proto/codec.h"

int mg_utf8_check(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = s[i];
		if (c < 0x80) { /* ASCII: the common case for topics and client ids */
			if (c == 0)
				return MG_E_UTF8_NUL;
			i++;
			continue;
		}
		size_t need;
		uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
		if (c >= 0xC2 && c <= 0xDF) {
			need = 1;
		} else if (c >= 0xE0 && c <= 0xEF) {
			need = 2;
			if (c == 0xE0)
				lo = 0xA0; /* overlong below U+0800 */
			else if (c == 0xED)
				hi = 0x9F; /* surrogates */
		} else if (c >= 0xF0 && c <= 0xF4) {
			need = 3;
			if (c == 0xF0)
				lo = 0x90; /* overlong below U+10000 */
			else if (c == 0xF4)
				hi = 0x8F; /* above U+10FFFF */
		} else {
			return MG_E_UTF8; /* continuation byte, C0/C1 overlong, F5..FF */
		}
		if (len - i <= need)
			return MG_E_UTF8; /* truncated sequence */
		if (s[i + 1] < lo || s[i + 1] > hi)
			return MG_E_UTF8;
		for (size_t k = 2; k <= need; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return MG_E_UTF8;
		i += need + 1;
	}
	return MG_OK;
}
