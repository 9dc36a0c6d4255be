/*
 * broker/hash.h - the broker's one hash of a byte string (topic levels, whole topics, filters,
 * client ids), and the seed that keeps clients from choosing strings that collide.
 *
 * Multiply-xorshift over 8-byte words, the last 1..8 bytes as one word without a loop or a
 * variable-length memcpy (a library call), then murmur3's 64-bit finalizer: tables take the
 * slot from the low bits, and a product's low bits depend only on its operands' low bits, so
 * without the finalizer's shifts the last bytes (where "site/1" and "site/2" differ) never
 * reached them. Costs two multiplications per string plus one per 8 bytes.
 */
#ifndef MG_BROKER_HASH_H
#define MG_BROKER_HASH_H

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

/* A random seed for one table (from getrandom, the clock if that fails), so that crafted
 * names cannot make a table's entries collide. */
static inline uint64_t mg_hash_seed(void)
{
	uint64_t s = 0;
	if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&s;
	}
	return s;
}

/* Up to 8 bytes as one word, without a variable-length memcpy: two overlapping 4-byte loads
 * for 4..8 bytes, three byte loads for 1..3. Injective for a given length, which the callers
 * mix in. */
static inline uint64_t mg_hash_word(const uint8_t *p, size_t len)
{
	if (len >= 4) {
		uint32_t a, b;
		memcpy(&a, p, 4);
		memcpy(&b, p + len - 4, 4);
		return ((uint64_t)a << 32) | b;
	}
	if (len)
		return ((uint64_t)p[0] << 16) | ((uint64_t)p[len >> 1] << 8) | p[len - 1];
	return 0;
}

static inline uint32_t mg_hash_bytes(uint64_t seed, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = seed ^ 0x9E3779B97F4A7C15ull ^ len;
	for (; len > 8; p += 8, len -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xFF51AFD7ED558CCDull;
		h ^= h >> 32;
	}
	h ^= mg_hash_word(p, len);
	h ^= h >> 33;
	h *= 0xFF51AFD7ED558CCDull;
	h ^= h >> 33;
	h *= 0xC4CEB9FE1A85EC53ull;
	h ^= h >> 33;
	return (uint32_t)h;
}

#endif
