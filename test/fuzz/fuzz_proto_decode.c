/*
 * test/fuzz/fuzz_proto_decode.c - mg_decode at every level on arbitrary bytes.
 * When a packet decodes: a one-byte-shorter prefix must say "need more"; the packet encoded
 * again (properties rebuilt from the decoded fields) must decode to the same fields and be
 * no larger than the input. The input is copied to an exactly-sized buffer so ASan sees any
 * read past its end.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

#define MUST(c) do { if (!(c)) __builtin_trap(); } while (0)

static bool same(mg_bytes a, mg_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Encoder input from decoded properties: fields by `present`, subscription ids and user
 * properties re-collected from raw (raw itself would repeat the fields). */
static void rebuild(const mg_props *in, mg_props *out, uint8_t *ubuf, size_t ucap, uint32_t *ids, int maxids)
{
	*out = *in;
	out->present &= ~(MG_PROP_BIT(MG_PROP_USER) | MG_PROP_BIT(MG_PROP_SUBSCRIPTION_ID));
	out->n_sub_id = 0;
	out->sub_ids = ids;
	size_t un = 0;
	uint32_t off = 0;
	mg_prop pr;
	while (mg_prop_next(in->raw, &off, &pr)) {
		if (pr.id == MG_PROP_SUBSCRIPTION_ID && out->n_sub_id < maxids)
			ids[out->n_sub_id++] = pr.u;
		if (pr.id == MG_PROP_USER)
			un += mg_prop_put_user(ubuf + un, ucap - un, pr.a, pr.b);
	}
	MUST(off == in->raw.len); /* a validated block iterates to its end */
	MUST(un <= ucap);
	out->raw.p = ubuf;
	out->raw.len = (uint32_t)un;
}

static void same_props(const mg_props *a, const mg_props *b)
{
	MUST(a->present == b->present);
	MUST(a->n_user == b->n_user && a->n_sub_id == b->n_sub_id && a->subscription_id == b->subscription_id);
	MUST(a->payload_format == b->payload_format && a->message_expiry == b->message_expiry);
	MUST(a->session_expiry == b->session_expiry && a->receive_maximum == b->receive_maximum);
	MUST(a->maximum_packet_size == b->maximum_packet_size && a->topic_alias == b->topic_alias);
	MUST(a->maximum_qos == b->maximum_qos && a->request_problem_info == b->request_problem_info);
	MUST(same(a->content_type, b->content_type) && same(a->correlation_data, b->correlation_data));
	MUST(same(a->auth_method, b->auth_method) && same(a->reason_string, b->reason_string));
	MUST(same(a->response_topic, b->response_topic) && same(a->auth_data, b->auth_data));
}

/* Stripping properties keeps a valid block that lacks exactly the dropped ones. */
static void check_strip(mg_bytes raw, uint64_t drop)
{
	uint8_t *sb = malloc(raw.len ? raw.len : 1);
	size_t k = mg_props_strip(sb, raw.len, raw, drop);
	MUST(k <= raw.len);
	mg_bytes s = {sb, (uint32_t)k};
	uint32_t off = 0;
	mg_prop pr;
	while (mg_prop_next(s, &off, &pr))
		MUST(!(drop & MG_PROP_BIT(pr.id)));
	MUST(off == k);
	free(sb);
}

static void check_reencode(const mg_packet *p, uint8_t level, int size)
{
	static uint8_t ubuf[1 << 16], out[1 << 17];
	static uint8_t wbuf[1 << 16];
	static uint32_t ids[4096], wids[4096];
	mg_packet e = *p, d;
	uint8_t lvl = p->type == MG_CONNECT ? p->u.connect.level : level;
	if (lvl == MG_V5) {
		check_strip(p->props.raw, MG_PROP_BIT(MG_PROP_TOPIC_ALIAS) | MG_PROP_BIT(MG_PROP_SUBSCRIPTION_ID) |
		                          MG_PROP_BIT(MG_PROP_USER) | ((uint64_t)size << 32));
		rebuild(&p->props, &e.props, ubuf, sizeof ubuf, ids, 4096);
		if (p->type == MG_CONNECT)
			rebuild(&p->u.connect.will_props, &e.u.connect.will_props, wbuf, sizeof wbuf, wids, 4096);
	}
	if (p->props.n_sub_id > 4096 || (size_t)size > sizeof out)
		return;
	size_t n = mg_encode(out, sizeof out, lvl, &e);
	MUST(n > 0 && n <= (size_t)size);
	uint8_t *exact = malloc(n);
	memcpy(exact, out, n);
	int r = mg_decode(exact, n, lvl, 0, &d);
	MUST(r == (int)n);
	MUST(d.type == p->type && d.packet_id == p->packet_id && d.reason_code == p->reason_code);
	MUST(d.session_present == p->session_present);
	if (lvl == MG_V5)
		same_props(&d.props, &p->props);
	switch (p->type) {
	case MG_CONNECT: {
		const mg_connect *a = &p->u.connect, *b = &d.u.connect;
		MUST(a->level == b->level && a->clean == b->clean && a->keepalive == b->keepalive);
		MUST(a->will == b->will && a->will_qos == b->will_qos && a->will_retain == b->will_retain);
		MUST(same(a->client_id, b->client_id) && same(a->will_topic, b->will_topic));
		MUST(same(a->will_payload, b->will_payload) && same(a->username, b->username));
		MUST(same(a->password, b->password) && a->has_password == b->has_password);
		if (lvl == MG_V5)
			same_props(&a->will_props, &b->will_props);
		break;
	}
	case MG_PUBLISH:
		MUST(d.flags == p->flags);
		MUST(same(d.u.publish.topic, p->u.publish.topic) && same(d.u.publish.payload, p->u.publish.payload));
		MUST(d.u.publish.packet_id == p->u.publish.packet_id);
		break;
	case MG_SUBSCRIBE:
	case MG_UNSUBSCRIBE:
		MUST(same(d.u.sub.raw, p->u.sub.raw) && d.u.sub.count == p->u.sub.count);
		break;
	case MG_SUBACK:
	case MG_UNSUBACK:
		MUST(same(d.u.codes, p->u.codes));
		break;
	}
	free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t levels[] = {0, 3, 4, 5};
	uint8_t *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	for (size_t i = 0; i < sizeof levels; i++) {
		mg_packet p;
		int r = mg_decode(buf, size, levels[i], 0, &p);
		MUST(r <= (int)size && r >= MG_E_MIN);
		uint8_t tf;
		int f = mg_frame(buf, size, levels[i], 0, &tf);
		if (r > 0) {
			MUST(f == r && p.size == (uint32_t)r);
			mg_packet q;
			uint8_t *pre = malloc((size_t)r - 1 ? (size_t)r - 1 : 1);
			memcpy(pre, buf, (size_t)r - 1);
			MUST(mg_decode(pre, (size_t)r - 1, levels[i], 0, &q) == 0);
			free(pre);
			MUST(mg_decode(buf, size, levels[i], (uint32_t)r - 1, &q) == MG_E_TOO_LARGE);
			check_reencode(&p, levels[i] ? levels[i] : MG_V311, r);
		}
		MUST(mg_err_str(r)[0] != 0);
	}
	free(buf);
	return 0;
}
