/*
 * bench/micro_proto_codec.c - nanoseconds per operation on the hot path of proto/: PUBLISH decode,
 * PUBLISH header encode (per recipient), topic matching. About 2 seconds in all.
 * Numbers, not a test: run build/bench/micro_proto_codec.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proto/proto.h"

static volatile uint64_t sink; /* keeps the work from being optimised away */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run fn in growing batches until `secs` have passed; report ns per call. */
#define BENCH(name, secs, body)                                                       \
	do {                                                                              \
		uint64_t _n = 0, _batch = 1024;                                               \
		double _t0 = now(), _t;                                                       \
		do {                                                                          \
			for (uint64_t _i = 0; _i < _batch; _i++) {                                \
				body;                                                                 \
			}                                                                         \
			_n += _batch;                                                             \
			_t = now() - _t0;                                                         \
		} while (_t < (secs));                                                        \
		printf("%-44s %8.1f ns/op  (%llu ops)\n", name, _t * 1e9 / (double)_n,       \
		       (unsigned long long)_n);                                               \
	} while (0)

int main(void)
{
	/* PUBLISH QoS 1, topic "sensors/room1/temperature", 64-byte payload */
	uint8_t v4[128], v5[160];
	mg_packet p = {.type = MG_PUBLISH};
	static const uint8_t payload[64] = {0};
	p.u.publish = (mg_publish){.qos = 1, .packet_id = 42,
	                           .topic = {(const uint8_t *)"sensors/room1/temperature", 25},
	                           .payload = {payload, sizeof payload}};
	size_t n4 = mg_encode(v4, sizeof v4, MG_V311, &p);
	p.props.present = MG_PROP_BIT(MG_PROP_MESSAGE_EXPIRY) | MG_PROP_BIT(MG_PROP_CONTENT_TYPE);
	p.props.message_expiry = 60;
	p.props.content_type = (mg_bytes){(const uint8_t *)"application/json", 16};
	size_t n5 = mg_encode(v5, sizeof v5, MG_V5, &p);
	mg_packet out;

	printf("proto/ micro benchmark (%zu-byte 3.1.1 PUBLISH, %zu-byte 5.0 PUBLISH)\n", n4, n5);
	BENCH("decode PUBLISH 3.1.1 QoS 1", 0.3, sink += (uint64_t)mg_decode(v4, n4, MG_V311, 0, &out));
	BENCH("decode PUBLISH 5.0 QoS 1 + 2 properties", 0.3, sink += (uint64_t)mg_decode(v5, n5, MG_V5, 0, &out));

	uint8_t hdr[64];
	mg_publish pub = p.u.publish;
	mg_props alias = {.present = MG_PROP_BIT(MG_PROP_TOPIC_ALIAS), .topic_alias = 3};
	BENCH("encode PUBLISH header 3.1.1", 0.3,
	      { pub.packet_id = (uint16_t)(_i | 1); sink += mg_encode_publish_header(hdr, sizeof hdr, MG_V311, &pub, NULL, 64); });
	BENCH("encode PUBLISH header 5.0 + topic alias", 0.3,
	      { pub.packet_id = (uint16_t)(_i | 1); sink += mg_encode_publish_header(hdr, sizeof hdr, MG_V5, &pub, &alias, 64); });

	static const char *const filters[] = {"sensors/+/temperature", "sensors/#", "#", "sensors/room1/humidity",
	                                      "+/+/+", "sensors/room1/temperature", "$SYS/#", "a/b/c/d/e/f/#"};
	static const char *const names[] = {"sensors/room1/temperature", "sensors/room2/humidity",
	                                    "$SYS/broker/uptime", "a/b/c/d/e/f/g/h"};
	size_t fl[8], nl[4];
	for (int i = 0; i < 8; i++)
		fl[i] = strlen(filters[i]);
	for (int i = 0; i < 4; i++)
		nl[i] = strlen(names[i]);
	int matches = 0;
	for (int i = 0; i < 8; i++)
		for (int j = 0; j < 4; j++)
			matches += mg_topic_match((const uint8_t *)filters[i], fl[i], (const uint8_t *)names[j], nl[j]);
	printf("topic match table: %d of 32 pairs match\n", matches);
	BENCH("topic match (8 filters x 4 names, per pair)", 0.5, {
		unsigned k = (unsigned)_i & 31;
		sink += mg_topic_match((const uint8_t *)filters[k >> 2], fl[k >> 2],
		                       (const uint8_t *)names[k & 3], nl[k & 3]);
	});
	BENCH("topic filter check \"sensors/+/temperature\"", 0.2,
	      sink += (uint64_t)mg_topic_filter_check((const uint8_t *)filters[0], fl[0]));
	return 0;
}
