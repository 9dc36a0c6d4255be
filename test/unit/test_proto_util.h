/*
 * test/unit/test_proto_util.h - helpers shared by the proto/ unit tests.
 *
 * Packets are written as hex strings straight from the specifications' byte layouts
 * ("10 0F 00 04 4D 51 54 54 ..."), never produced by our encoder. hex() returns an
 * exactly-sized heap copy, so AddressSanitizer reports any read past the last byte.
 */
#ifndef TEST_PROTO_UTIL_H
#define TEST_PROTO_UTIL_H

#include <stdlib.h>
#include <ctype.h>

#include "proto/proto.h"
#include "t.h"

/* Exactly-sized heap copy of the bytes in a hex string (spaces ignored). Caller frees. */
static inline uint8_t *hex(const char *s, size_t *n)
{
	size_t cap = strlen(s) / 2 + 1, k = 0;
	uint8_t *tmp = malloc(cap);
	int hi = -1;
	for (; *s; s++) {
		if (isspace((unsigned char)*s))
			continue;
		int v = isdigit((unsigned char)*s) ? *s - '0' : (tolower((unsigned char)*s) - 'a' + 10);
		if (hi < 0) {
			hi = v;
		} else {
			tmp[k++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	uint8_t *out = malloc(k ? k : 1);
	memcpy(out, tmp, k);
	free(tmp);
	*n = k;
	return out;
}

/* Every strict prefix of a valid packet must say "need more" (0): fed one byte at a time
 * from exactly-sized heap copies, so an over-read is an ASan error. Returns the number of
 * prefixes that did not return 0. */
static inline int prefixes_need_more(const uint8_t *b, size_t n, uint8_t level)
{
	int bad = 0;
	for (size_t k = 0; k < n; k++) {
		uint8_t *p = malloc(k ? k : 1);
		memcpy(p, b, k);
		mg_packet pkt;
		int r = mg_decode(k ? p : NULL, k, level, 0, &pkt);
		if (r != 0) {
			printf("  prefix of %zu/%zu bytes gave %d (%s)\n", k, n, r, r < 0 ? mg_err_str(r) : "packet");
			bad++;
		}
		uint8_t tf;
		int f = mg_frame(k ? p : NULL, k, level, 0, &tf);
		if (f < 0 || (f > 0 && (size_t)f != n)) {
			printf("  mg_frame on a prefix of %zu/%zu bytes gave %d\n", k, n, f);
			bad++;
		}
		free(p);
	}
	return bad;
}

/* Decode a whole valid packet and check every prefix. Fails the test if the decode does not
 * return n. The packet's views point into b. */
#define DECODE_OK(b, n, level, pkt)                                                     \
	do {                                                                                \
		CHECK_EQ_INT(prefixes_need_more((b), (n), (level)), 0);                         \
		int _r = mg_decode((b), (n), (level), 0, (pkt));                                \
		if (_r < 0)                                                                     \
			printf("  decode error %d: %s\n", _r, mg_err_str(_r));                      \
		REQUIRE(_r == (int)(n));                                                        \
		CHECK_EQ_INT((pkt)->size, (n));                                                 \
	} while (0)

static inline bool bytes_is(mg_bytes b, const char *s)
{
	size_t n = strlen(s);
	return b.len == n && (n == 0 || memcmp(b.p, s, n) == 0);
}

static inline mg_bytes B(const char *s)
{
	mg_bytes b = {(const uint8_t *)s, (uint32_t)strlen(s)};
	return b;
}

#define CHECK_BYTES(b, s) do { if (!bytes_is((b), (s))) \
	t_fail(__FILE__, __LINE__, "%s == \"%.*s\", expected \"%s\"", #b, (int)(b).len, (const char *)(b).p, (s)); } while (0)

#endif
