/* client/props.c - midge_properties: a small array of (id, value) the user builds or reads, and
 * its conversion to and from proto/'s mg_props. A list of a few entries: linear scans are fine. */
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

midge_properties *midge_properties_new(void)
{
	return calloc(1, sizeof(midge_properties));
}

static void ent_free(mgc_pent *e)
{
	free(e->a);
	free(e->b);
}

void midge_properties_clear(midge_properties *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++)
		ent_free(&p->v[i]);
	p->n = 0;
}

void midge_properties_free(midge_properties *p)
{
	if (!p)
		return;
	midge_properties_clear(p);
	free(p->v);
	free(p);
}

static char *memdup0(const void *s, size_t n)
{
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	if (n)
		memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* Append an entry; takes ownership of a and b (freed on failure). */
static int push(midge_properties *p, uint8_t id, uint32_t u, char *a, uint32_t alen, char *b,
                uint32_t blen)
{
	if (p->n == p->cap) {
		int cap = p->cap ? p->cap * 2 : 4;
		mgc_pent *v = realloc(p->v, (size_t)cap * sizeof(*v));
		if (!v) {
			free(a);
			free(b);
			return MIDGE_ERR_NOMEM;
		}
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = (mgc_pent){ .id = id, .u = u, .a = a, .alen = alen, .b = b, .blen = blen };
	return MIDGE_OK;
}

static mgc_pent *find(const midge_properties *p, int id)
{
	if (!p)
		return NULL;
	for (int i = 0; i < p->n; i++)
		if (p->v[i].id == id)
			return &p->v[i];
	return NULL;
}

int midge_properties_remove(midge_properties *p, int id)
{
	if (!p)
		return MIDGE_ERR_INVAL;
	int j = 0, removed = 0;
	for (int i = 0; i < p->n; i++) {
		if (p->v[i].id == id) {
			ent_free(&p->v[i]);
			removed++;
		} else {
			p->v[j++] = p->v[i];
		}
	}
	p->n = j;
	return removed ? MIDGE_OK : MIDGE_ERR_NOT_FOUND;
}

/* Byte properties that may only be 0 or 1. */
static bool is_boolean(int id)
{
	switch (id) {
	case MIDGE_PROP_PAYLOAD_FORMAT:
	case MIDGE_PROP_REQUEST_PROBLEM_INFO:
	case MIDGE_PROP_REQUEST_RESPONSE_INFO:
	case MIDGE_PROP_RETAIN_AVAILABLE:
	case MIDGE_PROP_WILDCARD_SUB_AVAILABLE:
	case MIDGE_PROP_SUB_ID_AVAILABLE:
	case MIDGE_PROP_SHARED_SUB_AVAILABLE:
		return true;
	default:
		return false;
	}
}

int midge_properties_set_int(midge_properties *p, int id, uint32_t value)
{
	if (!p)
		return MIDGE_ERR_INVAL;
	switch (mg_prop_type(id)) {
	case MG_PT_BYTE:
		if (value > 255 || (is_boolean(id) && value > 1) ||
		    (id == MIDGE_PROP_MAXIMUM_QOS && value > 1))
			return MIDGE_ERR_INVAL;
		break;
	case MG_PT_U16:
		if (value > 65535 || (value == 0 && (id == MIDGE_PROP_RECEIVE_MAXIMUM ||
		                                     id == MIDGE_PROP_TOPIC_ALIAS)))
			return MIDGE_ERR_INVAL;
		break;
	case MG_PT_U32:
		if (value == 0 && id == MIDGE_PROP_MAXIMUM_PACKET_SIZE)
			return MIDGE_ERR_INVAL;
		break;
	case MG_PT_VARINT:
		if (value == 0 || value > MG_MAX_REMAINING)
			return MIDGE_ERR_INVAL;
		break;
	default:
		return MIDGE_ERR_INVAL;
	}
	mgc_pent *e = find(p, id);
	if (e) {
		e->u = value;
		return MIDGE_OK;
	}
	return push(p, (uint8_t)id, value, NULL, 0, NULL, 0);
}

static int set_bytes(midge_properties *p, int id, const void *data, size_t len, bool utf8)
{
	if (!p || (!data && len) || len > 65535)
		return MIDGE_ERR_INVAL;
	if (utf8 && mg_utf8_check(data, len) != MG_OK)
		return MIDGE_ERR_UTF8;
	char *a = memdup0(data, len);
	if (!a)
		return MIDGE_ERR_NOMEM;
	mgc_pent *e = find(p, id);
	if (e) {
		free(e->a);
		e->a = a;
		e->alen = (uint32_t)len;
		return MIDGE_OK;
	}
	return push(p, (uint8_t)id, 0, a, (uint32_t)len, NULL, 0);
}

int midge_properties_set_string(midge_properties *p, int id, const char *s)
{
	if (!s || mg_prop_type(id) != MG_PT_UTF8)
		return MIDGE_ERR_INVAL;
	return set_bytes(p, id, s, strlen(s), true);
}

int midge_properties_set_binary(midge_properties *p, int id, const void *data, size_t len)
{
	int t = mg_prop_type(id);
	if (t != MG_PT_BINARY && t != MG_PT_UTF8)
		return MIDGE_ERR_INVAL;
	return set_bytes(p, id, data, len, t == MG_PT_UTF8);
}

int midge_properties_add_user(midge_properties *p, const char *key, const char *value)
{
	if (!p || !key || !value)
		return MIDGE_ERR_INVAL;
	size_t kl = strlen(key), vl = strlen(value);
	if (kl > 65535 || vl > 65535)
		return MIDGE_ERR_INVAL;
	if (mg_utf8_check((const uint8_t *)key, kl) != MG_OK ||
	    mg_utf8_check((const uint8_t *)value, vl) != MG_OK)
		return MIDGE_ERR_UTF8;
	char *a = memdup0(key, kl), *b = memdup0(value, vl);
	if (!a || !b) {
		free(a);
		free(b);
		return MIDGE_ERR_NOMEM;
	}
	return push(p, MIDGE_PROP_USER_PROPERTY, 0, a, (uint32_t)kl, b, (uint32_t)vl);
}

int midge_properties_set_payload_format(midge_properties *p, int utf8)
{
	return utf8 < 0 ? MIDGE_ERR_INVAL : midge_properties_set_int(p, MIDGE_PROP_PAYLOAD_FORMAT, (uint32_t)utf8);
}
int midge_properties_set_message_expiry(midge_properties *p, uint32_t s)
{
	return midge_properties_set_int(p, MIDGE_PROP_MESSAGE_EXPIRY, s);
}
int midge_properties_set_content_type(midge_properties *p, const char *s)
{
	return midge_properties_set_string(p, MIDGE_PROP_CONTENT_TYPE, s);
}
int midge_properties_set_response_topic(midge_properties *p, const char *topic)
{
	if (!topic)
		return MIDGE_ERR_INVAL;
	int rc = midge_pub_topic_check(topic);
	if (rc)
		return rc;
	return midge_properties_set_string(p, MIDGE_PROP_RESPONSE_TOPIC, topic);
}
int midge_properties_set_correlation_data(midge_properties *p, const void *data, size_t len)
{
	return midge_properties_set_binary(p, MIDGE_PROP_CORRELATION_DATA, data, len);
}
int midge_properties_set_subscription_id(midge_properties *p, uint32_t id)
{
	return midge_properties_set_int(p, MIDGE_PROP_SUBSCRIPTION_ID, id);
}
int midge_properties_set_session_expiry(midge_properties *p, uint32_t s)
{
	return midge_properties_set_int(p, MIDGE_PROP_SESSION_EXPIRY, s);
}
int midge_properties_set_will_delay(midge_properties *p, uint32_t s)
{
	return midge_properties_set_int(p, MIDGE_PROP_WILL_DELAY, s);
}
int midge_properties_set_receive_maximum(midge_properties *p, uint16_t n)
{
	return midge_properties_set_int(p, MIDGE_PROP_RECEIVE_MAXIMUM, n);
}
int midge_properties_set_maximum_packet_size(midge_properties *p, uint32_t n)
{
	return midge_properties_set_int(p, MIDGE_PROP_MAXIMUM_PACKET_SIZE, n);
}
int midge_properties_set_topic_alias_maximum(midge_properties *p, uint16_t n)
{
	return midge_properties_set_int(p, MIDGE_PROP_TOPIC_ALIAS_MAXIMUM, n);
}
int midge_properties_set_topic_alias(midge_properties *p, uint16_t alias)
{
	return midge_properties_set_int(p, MIDGE_PROP_TOPIC_ALIAS, alias);
}
int midge_properties_set_reason_string(midge_properties *p, const char *s)
{
	return midge_properties_set_string(p, MIDGE_PROP_REASON_STRING, s);
}

midge_properties *midge_properties_dup(const midge_properties *p)
{
	if (!p)
		return NULL;
	midge_properties *d = midge_properties_new();
	if (!d)
		return NULL;
	for (int i = 0; i < p->n; i++) {
		const mgc_pent *e = &p->v[i];
		char *a = NULL, *b = NULL;
		if (e->a && !(a = memdup0(e->a, e->alen)))
			goto fail;
		if (e->b && !(b = memdup0(e->b, e->blen))) {
			free(a);
			goto fail;
		}
		if (push(d, e->id, e->u, a, e->alen, b, e->blen) != MIDGE_OK)
			goto fail;
	}
	return d;
fail:
	midge_properties_free(d);
	return NULL;
}

/* ---- getters ---- */

bool midge_properties_has(const midge_properties *p, int id)
{
	return find(p, id) != NULL;
}

int midge_properties_count(const midge_properties *p)
{
	return p ? p->n : 0;
}

int midge_properties_get_int(const midge_properties *p, int id, uint32_t *out)
{
	int t = mg_prop_type(id);
	if (t != MG_PT_BYTE && t != MG_PT_U16 && t != MG_PT_U32 && t != MG_PT_VARINT)
		return MIDGE_ERR_NOT_FOUND;
	const mgc_pent *e = find(p, id);
	if (!e)
		return MIDGE_ERR_NOT_FOUND;
	if (out)
		*out = e->u;
	return MIDGE_OK;
}

const char *midge_properties_get_string(const midge_properties *p, int id)
{
	if (mg_prop_type(id) != MG_PT_UTF8)
		return NULL;
	const mgc_pent *e = find(p, id);
	return e ? e->a : NULL;
}

int midge_properties_get_binary(const midge_properties *p, int id, const void **data, size_t *len)
{
	int t = mg_prop_type(id);
	const mgc_pent *e = (t == MG_PT_UTF8 || t == MG_PT_BINARY) ? find(p, id) : NULL;
	if (!e)
		return MIDGE_ERR_NOT_FOUND;
	if (data)
		*data = e->a;
	if (len)
		*len = e->alen;
	return MIDGE_OK;
}

int midge_properties_user_count(const midge_properties *p)
{
	int n = 0;
	for (int i = 0; p && i < p->n; i++)
		n += p->v[i].id == MIDGE_PROP_USER_PROPERTY;
	return n;
}

int midge_properties_user_at(const midge_properties *p, int idx, const char **key, const char **value)
{
	for (int i = 0, k = 0; p && i < p->n; i++) {
		if (p->v[i].id != MIDGE_PROP_USER_PROPERTY)
			continue;
		if (k++ == idx) {
			if (key)
				*key = p->v[i].a;
			if (value)
				*value = p->v[i].b;
			return MIDGE_OK;
		}
	}
	return MIDGE_ERR_NOT_FOUND;
}

const char *midge_properties_get_user(const midge_properties *p, const char *key)
{
	for (int i = 0; p && key && i < p->n; i++)
		if (p->v[i].id == MIDGE_PROP_USER_PROPERTY && strcmp(p->v[i].a, key) == 0)
			return p->v[i].b;
	return NULL;
}

int midge_properties_get_subscription_ids(const midge_properties *p, uint32_t *out, int max)
{
	int n = 0;
	for (int i = 0; p && i < p->n; i++) {
		if (p->v[i].id != MIDGE_PROP_SUBSCRIPTION_ID)
			continue;
		if (out && n < max)
			out[n] = p->v[i].u;
		n++;
	}
	return n;
}

const char *midge_property_name(int id)
{
	return mg_prop_type(id) == MG_PT_NONE ? "Unknown" : mg_prop_name(id);
}

/* ---- to and from the wire ---- */

int mgc_props_check_allowed(const midge_properties *p, int ptype)
{
	for (int i = 0; p && i < p->n; i++)
		if (midge_property_check_command(ptype, p->v[i].id) != MIDGE_OK)
			return MIDGE_ERR_PROPERTY;
	return MIDGE_OK;
}

static mg_bytes view(const char *s, uint32_t n)
{
	return (mg_bytes){ (const uint8_t *)s, n };
}

int mgc_wprops_make(mgc_wprops *w, const midge_properties *p, int ptype)
{
	memset(w, 0, sizeof(*w));
	int rc = mgc_props_check_allowed(p, ptype);
	if (rc)
		return rc;
	size_t rawlen = 0;
	for (int i = 0; p && i < p->n; i++)
		if (p->v[i].id == MIDGE_PROP_USER_PROPERTY)
			rawlen += mg_prop_put_user(NULL, 0, view(p->v[i].a, p->v[i].alen),
			                           view(p->v[i].b, p->v[i].blen));
	if (rawlen) {
		w->raw = malloc(rawlen);
		if (!w->raw)
			return MIDGE_ERR_NOMEM;
	}
	size_t off = 0;
	mg_props *o = &w->p;
	for (int i = 0; p && i < p->n; i++) {
		const mgc_pent *e = &p->v[i];
		if (e->id == MIDGE_PROP_USER_PROPERTY) {
			off += mg_prop_put_user(w->raw + off, rawlen - off, view(e->a, e->alen), view(e->b, e->blen));
			continue;
		}
		if (e->id == MIDGE_PROP_SUBSCRIPTION_ID) {
			if (o->n_sub_id < 8)
				w->sub_ids[o->n_sub_id++] = e->u;
			o->sub_ids = w->sub_ids;
			continue;
		}
		o->present |= MG_PROP_BIT(e->id);
		mg_bytes b = view(e->a, e->alen);
		switch (e->id) {
		case MG_PROP_PAYLOAD_FORMAT: o->payload_format = (uint8_t)e->u; break;
		case MG_PROP_MESSAGE_EXPIRY: o->message_expiry = e->u; break;
		case MG_PROP_CONTENT_TYPE: o->content_type = b; break;
		case MG_PROP_RESPONSE_TOPIC: o->response_topic = b; break;
		case MG_PROP_CORRELATION_DATA: o->correlation_data = b; break;
		case MG_PROP_SESSION_EXPIRY: o->session_expiry = e->u; break;
		case MG_PROP_ASSIGNED_CLIENT_ID: o->assigned_client_id = b; break;
		case MG_PROP_SERVER_KEEP_ALIVE: o->server_keep_alive = (uint16_t)e->u; break;
		case MG_PROP_AUTH_METHOD: o->auth_method = b; break;
		case MG_PROP_AUTH_DATA: o->auth_data = b; break;
		case MG_PROP_REQUEST_PROBLEM_INFO: o->request_problem_info = (uint8_t)e->u; break;
		case MG_PROP_WILL_DELAY: o->will_delay = e->u; break;
		case MG_PROP_REQUEST_RESPONSE_INFO: o->request_response_info = (uint8_t)e->u; break;
		case MG_PROP_RESPONSE_INFO: o->response_info = b; break;
		case MG_PROP_SERVER_REFERENCE: o->server_reference = b; break;
		case MG_PROP_REASON_STRING: o->reason_string = b; break;
		case MG_PROP_RECEIVE_MAXIMUM: o->receive_maximum = (uint16_t)e->u; break;
		case MG_PROP_TOPIC_ALIAS_MAXIMUM: o->topic_alias_maximum = (uint16_t)e->u; break;
		case MG_PROP_TOPIC_ALIAS: o->topic_alias = (uint16_t)e->u; break;
		case MG_PROP_MAXIMUM_QOS: o->maximum_qos = (uint8_t)e->u; break;
		case MG_PROP_RETAIN_AVAILABLE: o->retain_available = (uint8_t)e->u; break;
		case MG_PROP_MAXIMUM_PACKET_SIZE: o->maximum_packet_size = e->u; break;
		case MG_PROP_WILDCARD_SUB_AVAILABLE: o->wildcard_sub_available = (uint8_t)e->u; break;
		case MG_PROP_SUB_ID_AVAILABLE: o->sub_id_available = (uint8_t)e->u; break;
		case MG_PROP_SHARED_SUB_AVAILABLE: o->shared_sub_available = (uint8_t)e->u; break;
		default: o->present &= ~MG_PROP_BIT(e->id); break;
		}
	}
	o->raw = (mg_bytes){ w->raw, (uint32_t)rawlen };
	return MIDGE_OK;
}

void mgc_wprops_free(mgc_wprops *w)
{
	free(w->raw);
	w->raw = NULL;
}

midge_properties *mgc_props_from_wire(const mg_props *src)
{
	midge_properties *p = midge_properties_new();
	if (!p)
		return NULL;
	uint32_t off = 0;
	mg_prop pr;
	while (mg_prop_next(src->raw, &off, &pr)) {
		char *a = NULL, *b = NULL;
		int t = mg_prop_type(pr.id);
		if (t == MG_PT_UTF8 || t == MG_PT_BINARY || t == MG_PT_PAIR) {
			if (!(a = memdup0(pr.a.p, pr.a.len)))
				goto fail;
		}
		if (t == MG_PT_PAIR && !(b = memdup0(pr.b.p, pr.b.len))) {
			free(a);
			goto fail;
		}
		if (push(p, pr.id, pr.u, a, pr.a.len, b, pr.b.len) != MIDGE_OK)
			goto fail;
	}
	return p;
fail:
	midge_properties_free(p);
	return NULL;
}

bool midge_properties_next(const midge_properties *p, int *pos, midge_property *out)
{
	if (!p || !pos || !out || *pos < 0 || *pos >= p->n)
		return false;
	const mgc_pent *e = &p->v[(*pos)++];
	memset(out, 0, sizeof(*out));
	out->id = e->id;
	out->value = e->u;
	if (e->a) {
		out->data = e->a;
		out->len = e->alen;
	}
	if (e->b) {
		out->pair_value = e->b;
		out->pair_value_len = e->blen;
	}
	return true;
}
