/* tools/midge_db/mosqdb.c - the strict mosquitto.db reader (see mosqdb.h). */
#include "tools/midge_db/mosqdb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t MAGIC[15] = {0x00, 0xB5, 0x00, 'm', 'o', 's', 'q', 'u', 'i', 't', 't', 'o', ' ', 'd', 'b'};

/* Sizes of the fixed parts as mosquitto's x86-64 / aarch64 compilers lay the structs out. */
#define CFG_SIZE 16        /* u64 last_db_id, u8 shutdown, u8 dbid_size, 6 padding */
#define MSG_SIZE 32        /* u64, i64, u32, 5 x u16, 2 x u8 */
#define CMSG_SIZE 16       /* u64, 2 x u16, 4 x u8 */
#define RETAIN_SIZE 8      /* u64 */
#define SUB_SIZE 12        /* u32, 2 x u16, 2 x u8, 2 padding */
#define CLIENT_V5_SIZE 16  /* i64, u32, 2 x u16 */
#define CLIENT_V6_SIZE 24  /* the same, then 2 x u16, 4 padding */

/* A bounded reader over one chunk body; off is the body's offset in the file, for errors. */
typedef struct rd {
	const uint8_t *p, *end;
	const uint8_t *base;   /* start of the file */
} rd;

typedef struct ctx {
	char *err;
	size_t errlen;
	const char *what;      /* the chunk being read */
	size_t chunk_off;
	mg_bytes prev_user;    /* the username field of the last client chunk, as written */
} ctx;

static int fail(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ctx *c, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (c->what)
		snprintf(c->err, c->errlen, "offset %zu: %s chunk: %s", c->chunk_off, c->what, msg);
	else
		snprintf(c->err, c->errlen, "%s", msg);
	return -1;
}

static size_t left(const rd *r) { return (size_t)(r->end - r->p); }

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* n bytes of the body as a view; the caller has checked nothing. */
static int take(ctx *c, rd *r, size_t n, mg_bytes *out, const char *field)
{
	if (left(r) < n)
		return fail(c, "%s (%zu bytes) runs past the end of the chunk (%zu bytes left)", field, n,
		            left(r));
	out->p = r->p;
	out->len = (uint32_t)n;
	r->p += n;
	return 0;
}

/* A string mosquitto wrote from a C string: UTF-8 without U+0000. */
static int take_str(ctx *c, rd *r, size_t n, mg_bytes *out, const char *field)
{
	if (take(c, r, n, out, field))
		return -1;
	if (mg_utf8_check(out->p, out->len) != MG_OK)
		return fail(c, "%s is not UTF-8 without U+0000", field);
	return 0;
}

/* What remains of the body is an MQTT 5 property block with its varint length, or nothing.
 * Every property is decoded and must be one a PUBLISH may carry. */
static int take_props(ctx *c, rd *r, mg_bytes *out)
{
	out->p = NULL;
	out->len = 0;
	if (!left(r))
		return 0;
	uint32_t len;
	bool nonmin;
	int n = mg_varint_decode(r->p, left(r), &len, &nonmin);
	if (n <= 0)
		return fail(c, "the property length is not a variable byte integer");
	if ((size_t)n + len != left(r))
		return fail(c, "the property length (%u) does not fill the rest of the chunk (%zu bytes)",
		            len, left(r) - (size_t)n);
	mg_bytes raw = {r->p + n, len};
	uint32_t off = 0, prev = 0;
	mg_prop pr;
	while (mg_prop_next(raw, &off, &pr)) {
		if (!mg_prop_allowed(pr.id, MG_PUBLISH))
			return fail(c, "property 0x%02x is not one a PUBLISH carries", pr.id);
		prev = off;
	}
	if (prev != len)
		return fail(c, "property at byte %u of the block is malformed", prev);
	*out = raw;
	r->p = r->end;
	return 0;
}

/* Append one element to a growing array (doubling). */
static void *grow(void *arr, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return arr;
	size_t nc = *cap ? *cap * 2 : 16;
	void *p = realloc(arr, nc * size);
	if (p)
		*cap = nc;
	return p;
}

typedef struct caps {
	size_t msgs, clients, cmsgs, subs, retains;
} caps;

#define PUSH(c, db, caps, field, nfield)                                                        \
	do {                                                                                        \
		void *np_ = grow((db)->field, (db)->nfield, &(caps)->field, sizeof *(db)->field);       \
		if (!np_)                                                                               \
			return fail(c, "out of memory");                                                    \
		(db)->field = np_;                                                                      \
	} while (0)

static int read_cfg(ctx *c, rd *r, mqdb *db)
{
	if (left(r) != CFG_SIZE)
		return fail(c, "length %zu, expected %d", left(r), CFG_SIZE);
	if (r->p[9] != 8)
		return fail(c, "store ids of %u bytes (this reader knows 8)", r->p[9]);
	if (r->p[8] > 1)
		return fail(c, "shutdown flag %u is not 0 or 1", r->p[8]);
	db->last_db_id = le64(r->p);
	db->shutdown = r->p[8];
	db->have_cfg = true;
	r->p = r->end;
	return 0;
}

static int read_msg(ctx *c, rd *r, mqdb *db, caps *cp)
{
	if (left(r) < MSG_SIZE)
		return fail(c, "length %zu is less than its fixed part (%d)", left(r), MSG_SIZE);
	const uint8_t *f = r->p;
	mqdb_msg m = {0};
	m.offset = (uint32_t)c->chunk_off;
	m.store_id = le64(f);
	m.expiry_time = (int64_t)le64(f + 8);
	uint32_t plen = be32(f + 16);
	m.source_mid = be16(f + 20);
	uint16_t idlen = be16(f + 22), ulen = be16(f + 24), tlen = be16(f + 26);
	m.source_port = be16(f + 28);
	m.qos = f[30];
	m.retain = f[31];
	r->p += MSG_SIZE;
	if (m.qos > 2)
		return fail(c, "message %llu: QoS %u", (unsigned long long)m.store_id, m.qos);
	if (m.retain > 1)
		return fail(c, "message %llu: retain flag %u", (unsigned long long)m.store_id, m.retain);
	if (m.expiry_time < 0)
		return fail(c, "message %llu: negative expiry time", (unsigned long long)m.store_id);
	if (plen > MG_MAX_REMAINING)
		return fail(c, "message %llu: payload of %u bytes is over MQTT's limit",
		            (unsigned long long)m.store_id, plen);
	if (tlen == 0)
		return fail(c, "message %llu: empty topic", (unsigned long long)m.store_id);
	if (take_str(c, r, idlen, &m.source_id, "source client id") ||
	    take_str(c, r, ulen, &m.source_username, "source username") ||
	    take_str(c, r, tlen, &m.topic, "topic") || take(c, r, plen, &m.payload, "payload") ||
	    take_props(c, r, &m.props))
		return -1;
	PUSH(c, db, cp, msgs, n_msgs);
	db->msgs[db->n_msgs++] = m;
	return 0;
}

static int read_cmsg(ctx *c, rd *r, mqdb *db, caps *cp)
{
	if (left(r) < CMSG_SIZE)
		return fail(c, "length %zu is less than its fixed part (%d)", left(r), CMSG_SIZE);
	const uint8_t *f = r->p;
	mqdb_cmsg m = {0};
	m.store_id = le64(f);
	m.mid = be16(f + 8);
	uint16_t idlen = be16(f + 10);
	m.qos = f[12];
	m.state = f[13];
	m.retain = f[14] >> 4;
	m.dup = f[14] & 0x0F;
	m.direction = f[15];
	r->p += CMSG_SIZE;
	if (m.qos > 2 || m.retain > 1 || m.dup > 1 || m.direction > 1)
		return fail(c, "QoS %u, retain %u, dup %u or direction %u out of range", m.qos, m.retain,
		            m.dup, m.direction);
	if (m.state < MQDB_MS_PUBLISH_QOS0 || m.state > MQDB_MS_QUEUED)
		return fail(c, "message state %u is none of mosquitto's", m.state);
	if (idlen == 0)
		return fail(c, "empty client id");
	if (take_str(c, r, idlen, &m.client_id, "client id") || take_props(c, r, &m.props))
		return -1;
	PUSH(c, db, cp, cmsgs, n_cmsgs);
	db->cmsgs[db->n_cmsgs++] = m;
	return 0;
}

static int read_retain(ctx *c, rd *r, mqdb *db, caps *cp)
{
	if (left(r) != RETAIN_SIZE)
		return fail(c, "length %zu, expected %d", left(r), RETAIN_SIZE);
	PUSH(c, db, cp, retains, n_retains);
	db->retains[db->n_retains++] = le64(r->p);
	r->p = r->end;
	return 0;
}

static int read_sub(ctx *c, rd *r, mqdb *db, caps *cp)
{
	if (left(r) < SUB_SIZE)
		return fail(c, "length %zu is less than its fixed part (%d)", left(r), SUB_SIZE);
	const uint8_t *f = r->p;
	mqdb_sub s = {0};
	s.identifier = be32(f);
	uint16_t idlen = be16(f + 4), flen = be16(f + 6);
	s.qos = f[8];
	s.options = f[9];
	r->p += SUB_SIZE;
	if (s.qos > 2)
		return fail(c, "QoS %u", s.qos);
	if (s.options & ~0x3Cu)
		return fail(c, "options byte 0x%02x has bits MQTT does not define", s.options);
	if (s.identifier > 268435455u)
		return fail(c, "subscription identifier %u is over MQTT's limit", s.identifier);
	if (idlen == 0 || flen == 0)
		return fail(c, "empty client id or filter");
	if (take_str(c, r, idlen, &s.client_id, "client id") ||
	    take_str(c, r, flen, &s.filter, "filter"))
		return -1;
	if (left(r))
		return fail(c, "%zu bytes after the filter", left(r));
	PUSH(c, db, cp, subs, n_subs);
	db->subs[db->n_subs++] = s;
	return 0;
}

static int read_client(ctx *c, rd *r, mqdb *db, caps *cp)
{
	size_t fixed = db->version == 6 ? CLIENT_V6_SIZE : CLIENT_V5_SIZE;
	if (left(r) < fixed)
		return fail(c, "length %zu is less than its fixed part (%zu)", left(r), fixed);
	const uint8_t *f = r->p;
	mqdb_client cl = {0};
	cl.session_expiry_time = (int64_t)le64(f);
	cl.session_expiry_interval = be32(f + 8);
	cl.last_mid = be16(f + 12);
	uint16_t idlen = be16(f + 14), ulen = 0;
	if (db->version == 6) {
		cl.listener_port = be16(f + 16);
		ulen = be16(f + 18);
	}
	r->p += fixed;
	if (cl.session_expiry_time < 0)
		return fail(c, "negative session expiry time");
	if (idlen == 0)
		return fail(c, "empty client id");
	if (take_str(c, r, idlen, &cl.id, "client id") || take(c, r, ulen, &cl.username, "username"))
		return -1;
	if (left(r))
		return fail(c, "%zu bytes after the strings", left(r));
	/* mosquitto < 2.0.16's leftover (mosqdb.h): this length is the last chunk's byte-swapped
	 * and the bytes start as the last chunk's do. A real name cannot be told from one that
	 * happens to look so (a client right after a leftover with the same name): it loses its
	 * name too, which is the safe side (acl_file judges it without one until it reconnects). */
	mg_bytes prev = c->prev_user;
	c->prev_user = cl.username;
	uint16_t swapped = (uint16_t)(prev.len << 8 | prev.len >> 8);
	if (ulen && prev.len && ulen != prev.len && ulen == swapped &&
	    memcmp(cl.username.p, prev.p, ulen < prev.len ? ulen : prev.len) == 0) {
		cl.username = (mg_bytes){ 0 };
		cl.username_stale = true;
		db->n_stale_usernames++;
	} else if (mg_utf8_check(cl.username.p, cl.username.len) != MG_OK) {
		return fail(c, "username is not UTF-8 without U+0000");
	}
	PUSH(c, db, cp, clients, n_clients);
	db->clients[db->n_clients++] = cl;
	return 0;
}

static int cmp_msg(const void *a, const void *b)
{
	uint64_t x = ((const mqdb_msg *)a)->store_id, y = ((const mqdb_msg *)b)->store_id;
	return x < y ? -1 : x > y;
}

int mqdb_parse(const uint8_t *buf, size_t len, mqdb *db, char *err, size_t errlen)
{
	memset(db, 0, sizeof *db);
	ctx c = {err, errlen, NULL, 0, {0}};
	caps cp = {0};
	if (len < sizeof MAGIC + 8 || memcmp(buf, MAGIC, sizeof MAGIC) != 0) {
		fail(&c, "not a mosquitto persistence file (no \"mosquitto db\" header)");
		goto bad;
	}
	db->version = be32(buf + 19);
	if (db->version < 5 || db->version > 6) {
		if (db->version >= 2 && db->version <= 4)
			fail(&c, "format version %u, written by mosquitto 1.5 or older; start mosquitto "
			         "2.0 on it once (it reads it and writes version 6), then import that",
			     db->version);
		else
			fail(&c, "format version %u, which this reader does not know (it reads 5 and 6)",
			     db->version);
		goto bad;
	}
	size_t off = sizeof MAGIC + 8;
	while (off < len) {
		c.what = NULL;
		c.chunk_off = off;
		if (len - off < 8) {
			fail(&c, "offset %zu: %zu bytes at the end, a truncated chunk header", off, len - off);
			goto bad;
		}
		uint32_t type = be32(buf + off), clen = be32(buf + off + 4);
		if (clen > len - off - 8) {
			fail(&c, "offset %zu: chunk %u of %u bytes runs past the end of the file (%zu "
			         "bytes left): truncated", off, type, clen, len - off - 8);
			goto bad;
		}
		rd r = {buf + off + 8, buf + off + 8 + clen, buf};
		int e = 0;
		switch (type) {
		case MQDB_CHUNK_CFG:
			c.what = "config";
			e = read_cfg(&c, &r, db);
			break;
		case MQDB_CHUNK_MSG:
			c.what = "message";
			e = read_msg(&c, &r, db, &cp);
			break;
		case MQDB_CHUNK_CLIENT_MSG:
			c.what = "client message";
			e = read_cmsg(&c, &r, db, &cp);
			break;
		case MQDB_CHUNK_RETAIN:
			c.what = "retain";
			e = read_retain(&c, &r, db, &cp);
			break;
		case MQDB_CHUNK_SUB:
			c.what = "subscription";
			e = read_sub(&c, &r, db, &cp);
			break;
		case MQDB_CHUNK_CLIENT:
			c.what = "client";
			e = read_client(&c, &r, db, &cp);
			break;
		default:
			db->n_unknown++; /* mosquitto skips these too: a newer writer's additions */
			break;
		}
		if (e)
			goto bad;
		off += 8 + (size_t)clen;
	}
	c.what = NULL;
	if (!db->have_cfg) {
		fail(&c, "no config chunk");
		goto bad;
	}
	if (db->n_msgs)
		qsort(db->msgs, db->n_msgs, sizeof *db->msgs, cmp_msg);
	for (size_t i = 1; i < db->n_msgs; i++)
		if (db->msgs[i].store_id == db->msgs[i - 1].store_id) {
			fail(&c, "two messages with store id %llu (offsets %u and %u)",
			     (unsigned long long)db->msgs[i].store_id, db->msgs[i - 1].offset,
			     db->msgs[i].offset);
			goto bad;
		}
	return 0;
bad:
	mqdb_free(db);
	return -1;
}

void mqdb_free(mqdb *db)
{
	free(db->msgs);
	free(db->clients);
	free(db->cmsgs);
	free(db->subs);
	free(db->retains);
	memset(db, 0, sizeof *db);
}

const mqdb_msg *mqdb_find_msg(const mqdb *db, uint64_t store_id)
{
	size_t lo = 0, hi = db->n_msgs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (db->msgs[mid].store_id < store_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < db->n_msgs && db->msgs[lo].store_id == store_id ? &db->msgs[lo] : NULL;
}

const char *mqdb_state_name(uint8_t state)
{
	static const char *const names[] = {
		[MQDB_MS_PUBLISH_QOS0] = "publish_qos0",     [MQDB_MS_PUBLISH_QOS1] = "publish_qos1",
		[MQDB_MS_WAIT_FOR_PUBACK] = "wait_for_puback", [MQDB_MS_PUBLISH_QOS2] = "publish_qos2",
		[MQDB_MS_WAIT_FOR_PUBREC] = "wait_for_pubrec", [MQDB_MS_RESEND_PUBREL] = "resend_pubrel",
		[MQDB_MS_WAIT_FOR_PUBREL] = "wait_for_pubrel", [MQDB_MS_RESEND_PUBCOMP] = "resend_pubcomp",
		[MQDB_MS_WAIT_FOR_PUBCOMP] = "wait_for_pubcomp", [MQDB_MS_SEND_PUBREC] = "send_pubrec",
		[MQDB_MS_QUEUED] = "queued",
	};
	return state < sizeof names / sizeof *names && names[state] ? names[state] : "?";
}
