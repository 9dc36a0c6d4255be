/* client/client.c - the client object: create, free, settings, callbacks, the lock and log. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

int64_t mgc_cl_now_ms(void)
{
	return mg_plat_now_ms();
}

void mgc_lock(midge_client *c)
{
	pthread_mutex_lock(&c->mu);
}

/* The callbacks as they were when the events were queued. */
struct cbs {
	void *userdata;
	void (*on_connect)(midge_client *, void *, int, int, const midge_properties *);
	void (*on_connect_fail)(midge_client *, void *, int);
	void (*on_publish)(midge_client *, void *, int, int, const midge_properties *);
	void (*on_subscribe)(midge_client *, void *, int, int, const int *, const midge_properties *);
	void (*on_unsubscribe)(midge_client *, void *, int, int, const int *, const midge_properties *);
	void (*on_disconnect)(midge_client *, void *, int, int, const midge_properties *);
	void (*on_log)(midge_client *, void *, int, const char *);
	void (*sock[4])(midge_client *, void *, int); /* open, close, register, unregister write */
};

static void deliver(midge_client *c, mgc_event *e, const struct cbs *snap)
{
	void *ud = snap->userdata;
	switch (e->kind) {
	case MG_EV_LOG:
		if (snap->on_log)
			snap->on_log(c, ud, e->a, e->text);
		break;
	case MG_EV_CONNECT:
		if (snap->on_connect)
			snap->on_connect(c, ud, e->a, e->b, e->props);
		break;
	case MG_EV_CONNECT_FAIL:
		if (snap->on_connect_fail)
			snap->on_connect_fail(c, ud, e->a);
		break;
	case MG_EV_PUBLISH:
		if (snap->on_publish)
			snap->on_publish(c, ud, e->a, e->b, e->props);
		break;
	case MG_EV_SUBSCRIBE:
		if (snap->on_subscribe)
			snap->on_subscribe(c, ud, e->a, e->n, e->codes, e->props);
		break;
	case MG_EV_UNSUBSCRIBE:
		if (snap->on_unsubscribe)
			snap->on_unsubscribe(c, ud, e->a, e->n, e->codes, e->props);
		break;
	case MG_EV_DISCONNECT:
		if (snap->on_disconnect)
			snap->on_disconnect(c, ud, e->a, e->b, e->props);
		break;
	case MG_EV_SOCK_OPEN:
	case MG_EV_SOCK_CLOSE:
	case MG_EV_SOCK_WANT_WRITE:
	case MG_EV_SOCK_NO_WRITE:
		if (snap->sock[e->kind - MG_EV_SOCK_OPEN])
			snap->sock[e->kind - MG_EV_SOCK_OPEN](c, ud, e->a);
		break;
	}
}

/* Callbacks are queued under mu (they describe state) and made here, after mu is released, so
 * a callback can call back into the library without deadlock. The callback pointers are read
 * under mu, so setting one from another thread is not a race. The thread that unlocks is the
 * one that queued: the loop queues every callback but the on_log lines of another thread's
 * sends, and it never sleeps with events queued (nap), so midge.h's promise holds that
 * callbacks run in the loop's thread. */
/* Socket callbacks: compare the socket and its write interest with what the program was last
 * told, and queue the difference. Runs at every unlock when such a callback is set (a few
 * comparisons), so no state change can slip by. Under mu. */
static void sock_track(midge_client *c)
{
	bool live = c->state == MG_S_TCP || c->state == MG_S_CONNACK || c->state == MG_S_UP ||
	            c->state == MG_S_CLOSING;
	int fd = live ? c->tr.fd : -1;
	if (fd != c->sock_told && c->sock_told >= 0) {
		if (c->write_told)
			mgc_event_push(c, MG_EV_SOCK_NO_WRITE, c->sock_told, 0, NULL, 0, NULL);
		c->write_told = false;
		mgc_event_push(c, MG_EV_SOCK_CLOSE, c->sock_told, 0, NULL, 0, NULL);
		c->sock_told = -1;
	}
	if (fd >= 0 && c->sock_told < 0) {
		mgc_event_push(c, MG_EV_SOCK_OPEN, fd, 0, NULL, 0, NULL);
		c->sock_told = fd;
	}
	bool want = fd >= 0 && (c->state == MG_S_TCP || mgc_want_write(c));
	if (want != c->write_told) {
		mgc_event_push(c, want ? MG_EV_SOCK_WANT_WRITE : MG_EV_SOCK_NO_WRITE, fd >= 0 ? fd : c->sock_told,
		              0, NULL, 0, NULL);
		c->write_told = want;
	}
}

void mgc_unlock(midge_client *c)
{
	if (c->on_socket_open || c->on_socket_close || c->on_socket_register_write ||
	    c->on_socket_unregister_write)
		sock_track(c);
	mgc_event *e = c->ev_head;
	c->ev_head = c->ev_tail = NULL;
	if (c->notify) {
		c->notify = false;
		pthread_cond_broadcast(&c->cv);
	}
	if (!e) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	/* Another thread may run the loop: it writes nothing until these callbacks (this thread's
	 * "sending X" lines) are made, so none can come after the broker's answer to X. */
	bool fence = c->loop_owner_set && !pthread_equal(c->loop_owner, pthread_self());
	if (fence)
		c->log_fence++;
	struct cbs snap;
	snap.userdata = c->userdata;
	snap.on_log = c->on_log;
	snap.on_connect = c->on_connect;
	snap.on_connect_fail = c->on_connect_fail;
	snap.on_publish = c->on_publish;
	snap.on_subscribe = c->on_subscribe;
	snap.on_unsubscribe = c->on_unsubscribe;
	snap.on_disconnect = c->on_disconnect;
	snap.sock[0] = c->on_socket_open;
	snap.sock[1] = c->on_socket_close;
	snap.sock[2] = c->on_socket_register_write;
	snap.sock[3] = c->on_socket_unregister_write;
	struct mgc_ev_batch batch = {.next = c->ev_batches, .first = e->seq};
	c->ev_batches = &batch;
	pthread_mutex_unlock(&c->mu);
	while (e) {
		mgc_event *next = e->next;
		deliver(c, e, &snap);
		free(e->codes);
		midge_properties_free(e->props);
		free(e);
		e = next;
	}
	pthread_mutex_lock(&c->mu);
	for (struct mgc_ev_batch **b = &c->ev_batches; *b; b = &(*b)->next)
		if (*b == &batch) {
			*b = batch.next;
			break;
		}
	if (fence && --c->log_fence == 0 && c->olen > c->ooff)
		mgc_wake(c);
	pthread_cond_broadcast(&c->cv); /* a waiter may be waiting for these callbacks */
	pthread_mutex_unlock(&c->mu);
}

bool mgc_events_done(midge_client *c, uint64_t upto)
{
	if (c->ev_head && c->ev_head->seq <= upto)
		return false;
	for (struct mgc_ev_batch *b = c->ev_batches; b; b = b->next)
		if (b->first <= upto)
			return false;
	return true;
}

static void ev_append(midge_client *c, mgc_event *e)
{
	e->next = NULL;
	e->seq = ++c->ev_seq;
	if (c->ev_tail)
		c->ev_tail->next = e;
	else
		c->ev_head = e;
	c->ev_tail = e;
}

void mgc_event_push(midge_client *c, int kind, int a, int b, const int *codes, int n,
                   midge_properties *props)
{
	mgc_event *e = calloc(1, sizeof(*e));
	if (!e)
		goto fail;
	if (n > 0) {
		e->codes = malloc((size_t)n * sizeof(int));
		if (!e->codes)
			goto fail;
		memcpy(e->codes, codes, (size_t)n * sizeof(int));
	}
	e->kind = kind;
	e->a = a;
	e->b = b;
	e->n = n;
	e->props = props;
	ev_append(c, e);
	return;
fail:
	free(e);
	midge_properties_free(props);
}

void mgc_log(midge_client *c, int level, const char *fmt, ...)
{
	if (!c->on_log)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	mgc_event *e = calloc(1, sizeof(*e) + (size_t)n + 1);
	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(e->text, (size_t)n + 1, fmt, ap);
	va_end(ap);
	e->kind = MG_EV_LOG;
	e->a = level;
	ev_append(c, e);
}

const char *mgc_cid(const midge_client *c)
{
	return c->id && c->id[0] ? c->id : "(null)";
}

void mgc_wake(midge_client *c)
{
	mg_plat_wake(c->wake[1]);
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A random id for MQTT 3.1, which forbids an empty one (and allows 23 characters). */
static char *random_id(void)
{
	char *id = malloc(24);
	if (!id)
		return NULL;
	unsigned long long r;
	mg_plat_random(&r, sizeof(r));
	snprintf(id, 24, "midge-%016llx", r);
	return id;
}

midge_client *midge_client_new(const char *client_id, bool clean_session, void *userdata,
                               int protocol, int transport)
{
	if (protocol != MIDGE_PROTOCOL_V31 && protocol != MIDGE_PROTOCOL_V311 &&
	    protocol != MIDGE_PROTOCOL_V5)
		return NULL;
	if (transport != MIDGE_TRANSPORT_TCP && transport != MIDGE_TRANSPORT_WEBSOCKETS)
		return NULL;
	bool empty = !client_id || !client_id[0];
	if (!empty) {
		size_t n = strlen(client_id);
		if (n > 65535 || mg_utf8_check((const uint8_t *)client_id, n) != MG_OK)
			return NULL;
	}
	/* 3.1.1 [MQTT-3.1.3-7]: an empty id needs a clean session (paho raises the same). */
	if (empty && !clean_session && protocol == MIDGE_PROTOCOL_V311)
		return NULL;

	midge_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->wake[0] = c->wake[1] = -1;
	c->tr.fd = -1;
	c->sock_told = -1;
	mg_framer_init(&c->in, 1); /* +1: the '\0' on_publish lends after a payload */
	if (mg_plat_init() != 0 || mg_plat_wake_open(c->wake) != 0)
		goto fail;
	if (!empty)
		c->id = strdup(client_id);
	else if (protocol == MIDGE_PROTOCOL_V31)
		c->id = random_id();
	if ((!empty || protocol == MIDGE_PROTOCOL_V31) && !c->id)
		goto fail;
	pthread_mutex_init(&c->mu, NULL);
	mg_plat_cond_init(&c->cv);
	c->clean_session = clean_session;
	c->clean_start = clean_session;
	c->level = (uint8_t)protocol;
	c->transport = transport;
	c->userdata = userdata;
	c->reconnect_min = 1;
	c->reconnect_max = 120;
	c->max_inflight = 20;
	/* No bound by default, as paho: a burst published faster than the window drains waits in
	 * memory instead of failing. A program that wants back-pressure sets one. */
	c->max_queued = 0;
	c->connect_timeout_ms = 10000;
	c->state = MG_S_NEW;
	c->srv_receive_max = 65535;
	c->srv_max_qos = 2;
	c->srv_retain = true;
	return c;
fail:
	mg_plat_wake_close(c->wake);
	free(c->id);
	free(c);
	return NULL;
}

static void free_aliases(char **tab, int n)
{
	for (int i = 0; tab && i < n; i++)
		free(tab[i]);
	free(tab);
}

void midge_client_free(midge_client *c)
{
	if (!c)
		return;
	midge_loop_stop(c);
	mgc_lock(c);
	c->on_log = NULL; /* nobody to tell any more */
	for (mgc_event *e = c->ev_head, *n; e; e = n) {
		n = e->next;
		free(e->codes);
		midge_properties_free(e->props);
		free(e);
	}
	c->ev_head = c->ev_tail = NULL;
	if (c->tr.fd >= 0)
		mg_transport_close(&c->tr);
	if (c->ai)
		freeaddrinfo(c->ai);
	mgc_outq_clear(c);
	mgc_qin_clear(c);
	mgc_msgcb_clear(c);
	mgc_unlock(c);
	free_aliases(c->alias_in, c->alias_max_in + 1);
	free_aliases(c->alias_out, c->alias_out_n);
	free(c->alias_out_gen);
	free(c->obuf);
	mg_framer_free(&c->in);
	free(c->id);
	free(c->username);
	free(c->password);
	free(c->will_topic);
	free(c->will_payload);
	midge_properties_free(c->will_props);
	midge_properties_free(c->connect_props);
	free(c->host);
	free(c->bind_address);
	free(c->proxy_host);
	free(c->proxy_user);
	free(c->proxy_pass);
	mgc_tls_free(c);
	free(c->ws_path);
	free(c->ws_headers);
	if (c->bind_ai)
		freeaddrinfo(c->bind_ai);
	mg_plat_wake_close(c->wake);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void midge_user_data_set(midge_client *c, void *userdata)
{
	if (!c)
		return;
	mgc_lock(c);
	c->userdata = userdata;
	mgc_unlock(c);
}

void *midge_user_data(midge_client *c)
{
	return c ? c->userdata : NULL;
}

const char *midge_client_id(midge_client *c)
{
	return c ? c->id : NULL;
}

static bool valid_str(const char *s)
{
	size_t n = strlen(s);
	return n <= 65535 && mg_utf8_check((const uint8_t *)s, n) == MG_OK;
}

int midge_username_pw_set(midge_client *c, const char *username, const char *password)
{
	if (!c)
		return MIDGE_ERR_INVAL;
	/* Too long is a length error, not "Malformed UTF-8" (MQTT strings hold 65535 bytes). */
	if ((username && strlen(username) > 65535) || (password && strlen(password) > 65535))
		return MIDGE_ERR_INVAL;
	if (username && !valid_str(username))
		return MIDGE_ERR_UTF8;
	/* 3.1/3.1.1 cannot send a password without a user name [MQTT-3.1.2-22]. */
	if (!username && password && c->level != MIDGE_PROTOCOL_V5)
		return MIDGE_ERR_INVAL;
	char *u = xstrdup(username), *p = xstrdup(password);
	if ((username && !u) || (password && !p)) {
		free(u);
		free(p);
		return MIDGE_ERR_NOMEM;
	}
	mgc_lock(c);
	free(c->username);
	free(c->password);
	c->username = u;
	c->password = p;
	mgc_unlock(c);
	return MIDGE_OK;
}

int midge_will_set(midge_client *c, const char *topic, const void *payload, size_t len, int qos,
                   bool retain, const midge_properties *props)
{
	if (!c || !topic || (!payload && len) || qos < 0 || qos > 2 || len > 65535)
		return MIDGE_ERR_INVAL;
	int rc = midge_pub_topic_check(topic);
	if (rc)
		return rc;
	if (props && props->n && c->level != MIDGE_PROTOCOL_V5)
		return MIDGE_ERR_NOT_SUPPORTED;
	if ((rc = mgc_props_check_allowed(props, MG_PTYPE_WILL)))
		return rc;
	char *t = strdup(topic);
	uint8_t *p = len ? malloc(len) : NULL;
	midge_properties *pr = props ? midge_properties_dup(props) : NULL;
	if (!t || (len && !p) || (props && !pr)) {
		free(t);
		free(p);
		midge_properties_free(pr);
		return MIDGE_ERR_NOMEM;
	}
	if (len)
		memcpy(p, payload, len);
	mgc_lock(c);
	free(c->will_topic);
	free(c->will_payload);
	midge_properties_free(c->will_props);
	c->will = true;
	c->will_topic = t;
	c->will_payload = p;
	c->will_len = len;
	c->will_qos = (uint8_t)qos;
	c->will_retain = retain;
	c->will_props = pr;
	mgc_unlock(c);
	return MIDGE_OK;
}

int midge_will_clear(midge_client *c)
{
	if (!c)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	free(c->will_topic);
	free(c->will_payload);
	midge_properties_free(c->will_props);
	c->will_topic = NULL;
	c->will_payload = NULL;
	c->will_props = NULL;
	c->will_len = 0;
	c->will = false;
	mgc_unlock(c);
	return MIDGE_OK;
}

int midge_reconnect_delay_set(midge_client *c, int min_delay_s, int max_delay_s)
{
	if (!c || min_delay_s < 0 || max_delay_s < min_delay_s || max_delay_s > 86400)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	c->reconnect_min = min_delay_s;
	c->reconnect_max = max_delay_s;
	mgc_unlock(c);
	return MIDGE_OK;
}

int midge_max_inflight_messages_set(midge_client *c, int n)
{
	if (!c || n < 0 || n > 65535)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	c->max_inflight = n;
	mgc_pump(c);
	mgc_unlock(c);
	return MIDGE_OK;
}

int midge_max_queued_messages_set(midge_client *c, int n)
{
	if (!c || n < 0)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	c->max_queued = n;
	mgc_unlock(c);
	return MIDGE_OK;
}

int midge_connect_timeout_set(midge_client *c, int timeout_ms)
{
	if (!c || timeout_ms <= 0)
		return MIDGE_ERR_INVAL;
	mgc_lock(c);
	c->connect_timeout_ms = timeout_ms;
	mgc_unlock(c);
	return MIDGE_OK;
}

/* ---- callbacks ---- */

#define CB_SETTER(name, field, type)          \
	void name(midge_client *c, type cb)       \
	{                                         \
		if (!c)                               \
			return;                           \
		mgc_lock(c);                           \
		c->field = cb;                        \
		mgc_unlock(c);                         \
	}

typedef void (*cb_connect_t)(midge_client *, void *, int, int, const midge_properties *);
typedef void (*cb_connect_fail_t)(midge_client *, void *, int);
typedef void (*cb_message_t)(midge_client *, void *, const midge_message *);
typedef void (*cb_publish_t)(midge_client *, void *, int, int, const midge_properties *);
typedef void (*cb_subscribe_t)(midge_client *, void *, int, int, const int *, const midge_properties *);
typedef void (*cb_log_t)(midge_client *, void *, int, const char *);

CB_SETTER(midge_on_connect_set, on_connect, cb_connect_t)
CB_SETTER(midge_on_connect_fail_set, on_connect_fail, cb_connect_fail_t)
CB_SETTER(midge_on_message_set, on_message, cb_message_t)
CB_SETTER(midge_on_publish_set, on_publish, cb_publish_t)
CB_SETTER(midge_on_subscribe_set, on_subscribe, cb_subscribe_t)
CB_SETTER(midge_on_unsubscribe_set, on_unsubscribe, cb_subscribe_t)
CB_SETTER(midge_on_disconnect_set, on_disconnect, cb_connect_t)
CB_SETTER(midge_on_log_set, on_log, cb_log_t)

typedef void (*cb_socket_t)(midge_client *, void *, int);
CB_SETTER(midge_on_socket_open_set, on_socket_open, cb_socket_t)
CB_SETTER(midge_on_socket_close_set, on_socket_close, cb_socket_t)
CB_SETTER(midge_on_socket_register_write_set, on_socket_register_write, cb_socket_t)
CB_SETTER(midge_on_socket_unregister_write_set, on_socket_unregister_write, cb_socket_t)
