/*
 * broker/auth.c - who may connect: the password tables, the auth thread pool, the CONNECT
 * decision and the re-check after a reload. See auth.h for the threading.
 */
#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/log.h"
#include "broker/passwd.h"
#include "broker/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define AUTH_THREADS_MAX 4
/* Shutdown waits this long for hashes in progress, then leaves them to the exiting
 * process: an entry may ask for billions of rounds, and SIGTERM must still be prompt. */
#define AUTH_STOP_WAIT_MS 2000
/* The auth threads yield the CPU to the event loops: a login may wait, a PINGRESP not. */
#define AUTH_NICE 10

typedef struct job {
	struct job *next;
	mg_worker *w;
	mg_conn *c;
	mg_pwent e;          /* a copy (e.user NULL): the tables may be replaced meanwhile */
	uint8_t *pw;
	size_t pwlen;
} job;

struct mg_auth {
	mg_pwfile global;    /* cfg->password_file */
	mg_pwfile *per;      /* per listener (per_listener_settings), cfg->n_listeners of them */
	int nper;
	/* the pool: everything below under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job *head, *tail;
	job *cur[AUTH_THREADS_MAX]; /* what each thread is hashing, or NULL */
	pthread_t th[AUTH_THREADS_MAX];
	int nth, nstarted;
	bool stop;
	bool stragglers;     /* a thread outlived mg_auth_stop: a (and its mutex) must stay */
};

static void pw_msg(void *ud, int level, const char *msg)
{
	(void)ud;
	mg_log(level ? MG_LOG_ERR : MG_LOG_NOTICE, "%s", msg);
}

/* mosquitto's two lines when a password file cannot be read. */
static int load(const char *path, mg_pwfile *out)
{
	int r = mg_pwfile_load(path, out, pw_msg, NULL);
	if (r < 0) {
		mg_log(MG_LOG_ERR, "Error: Unable to open pwfile \"%s\".", path);
		mg_log(MG_LOG_ERR, "Error opening password file \"%s\".", path);
	}
	return r;
}

int mg_auth_init(mg_broker *b)
{
	const mg_config *cfg = b->cfg;
	mg_auth *a = calloc(1, sizeof *a);
	if (!a)
		return -ENOMEM;
	b->auth = a;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	a->nper = cfg->n_listeners;
	a->per = calloc((size_t)(a->nper ? a->nper : 1), sizeof *a->per);
	if (!a->per)
		return -ENOMEM;
	int r;
	if (!cfg->per_listener_settings && cfg->password_file && (r = load(cfg->password_file, &a->global)) < 0)
		return r;
	for (int i = 0; cfg->per_listener_settings && i < a->nper; i++)
		if (cfg->listeners[i].password_file && (r = load(cfg->listeners[i].password_file, &a->per[i])) < 0)
			return r;
	return 0;
}

static void reload_one(const char *path, mg_pwfile *t)
{
	if (!path) {
		mg_pwfile_free(t);
		return;
	}
	mg_pwfile n;
	if (load(path, &n) < 0) {
		mg_log(MG_LOG_ERR, "Error: %s: the users it had before the reload stay in force.", path);
		return;
	}
	mg_pwfile_free(t);
	*t = n;
}

void mg_auth_reload(mg_broker *b)
{
	const mg_config *cfg = b->cfg;
	mg_auth *a = b->auth;
	reload_one(cfg->per_listener_settings ? NULL : cfg->password_file, &a->global);
	for (int i = 0; i < a->nper && i < cfg->n_listeners; i++)
		reload_one(cfg->per_listener_settings ? cfg->listeners[i].password_file : NULL, &a->per[i]);
}

/* The table for clients of listener lidx, or NULL when no password file applies there. */
static const mg_pwfile *table_of(const mg_broker *b, int lidx)
{
	const mg_config *cfg = b->cfg;
	if (!mg_config_password_file(cfg, lidx))
		return NULL;
	return cfg->per_listener_settings ? &b->auth->per[lidx] : &b->auth->global;
}

/* Which entry a connection was checked against: a reload keeps the client only while its
 * user's entry is the same (never 0, which means "not checked against a file"). */
static uint64_t tag_of(const mg_pwent *e)
{
	uint64_t t;
	memcpy(&t, e->hash, sizeof t);
	return t | 1;
}

/* ---- the pool ---- */

static void free_job(job *j)
{
	OPENSSL_cleanse(j->pw, j->pwlen);
	free(j->pw);
	free(j);
}

static void *auth_thread(void *arg)
{
	mg_auth *a = arg;
	/* Linux: nice is per thread; failing to lower our priority costs only latency. */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), AUTH_NICE) < 0)
		(void)0;
	pthread_mutex_lock(&a->mu);
	int me = a->nstarted++;
	for (;;) {
		while (!a->head && !a->stop)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->stop)
			break;
		job *j = a->head;
		a->head = j->next;
		if (!a->head)
			a->tail = NULL;
		a->cur[me] = j;
		pthread_mutex_unlock(&a->mu);
		bool ok = mg_pw_check(&j->e, j->pw, j->pwlen);
		pthread_mutex_lock(&a->mu);
		a->cur[me] = NULL;
		if (!a->stop) { /* after stop, mg_auth_stop has handed the connection back */
			mg_post p = { .kind = ok ? MG_POST_AUTH_OK : MG_POST_AUTH_BAD, .conn = j->c };
			/* The verdict must arrive: the connection waits for it and is owned by it.
			 * Lock order: a->mu, then the inbox's (nothing takes them the other way). */
			while (mg_worker_post_ext(j->w, &p) < 0)
				usleep(1000);
		}
		free_job(j);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

static int submit(mg_conn *c, const mg_pwent *e, const mg_bytes *pw)
{
	mg_auth *a = c->w->b->auth;
	job *j = calloc(1, sizeof *j);
	if (!j)
		return -ENOMEM;
	j->w = c->w;
	j->c = c;
	j->e = *e;
	j->e.user = NULL;
	j->pwlen = pw->len;
	if (!(j->pw = malloc(pw->len ? pw->len : 1))) {
		free(j);
		return -ENOMEM;
	}
	memcpy(j->pw, pw->p, pw->len);
	pthread_mutex_lock(&a->mu);
	if (a->nth == 0) {
		/* First password check: start the threads now, so a broker without a password
		 * file runs none. Workers block every signal, and so do threads they start. */
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		int n = ncpu < 1 ? 1 : ncpu > AUTH_THREADS_MAX ? AUTH_THREADS_MAX : (int)ncpu;
		for (int i = 0; i < n; i++)
			if (pthread_create(&a->th[a->nth], NULL, auth_thread, a) == 0)
				a->nth++;
	}
	if (a->nth == 0 || a->stop) {
		pthread_mutex_unlock(&a->mu);
		free_job(j);
		return -EAGAIN;
	}
	if (a->tail)
		a->tail->next = j;
	else
		a->head = j;
	a->tail = j;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return 0;
}

void mg_auth_stop(mg_broker *b)
{
	mg_auth *a = b->auth;
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += AUTH_STOP_WAIT_MS / 1000;
	for (int i = 0; i < a->nth; i++)
		if (pthread_timedjoin_np(a->th[i], NULL, &dl) != 0) {
			pthread_detach(a->th[i]); /* still hashing: the process exits under it */
			a->stragglers = true;
		}
	a->nth = 0;
	pthread_mutex_lock(&a->mu);
	for (job *j = a->head, *n; j; j = n) {
		n = j->next;
		mg_auth_drop_verdict(j->c);
		free_job(j);
	}
	a->head = a->tail = NULL;
	for (int i = 0; i < AUTH_THREADS_MAX; i++)
		if (a->cur[i] && a->cur[i]->c) { /* its thread frees the job if it ever finishes */
			mg_auth_drop_verdict(a->cur[i]->c);
			a->cur[i]->c = NULL;
		}
	pthread_mutex_unlock(&a->mu);
}

void mg_auth_free(mg_broker *b)
{
	mg_auth *a = b->auth;
	if (!a)
		return;
	mg_auth_stop(b);
	mg_pwfile_free(&a->global);
	for (int i = 0; a->per && i < a->nper; i++)
		mg_pwfile_free(&a->per[i]);
	free(a->per);
	if (a->stragglers)
		return; /* a thread still holds a->mu: a stays until the process ends */
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a);
	b->auth = NULL;
}

bool mg_auth_left_running(const mg_broker *b)
{
	return b->auth && b->auth->stragglers; /* mg_auth_free keeps a then */
}

/* ---- decisions ---- */

static int admit_user(mg_conn *c, const mg_connect *k)
{
	free(c->username);
	c->username = NULL;
	if (k->has_username && !(c->username = strndup((const char *)k->username.p, k->username.len)))
		return MG_REFUSE_AUTH;
	return MG_ADMIT;
}

int mg_auth_connect(mg_conn *c, const mg_connect *k, const char **id, size_t *idlen)
{
	mg_broker *b = c->w->b;
	const mg_config *cfg = b->cfg;
	int lidx = c->lidx;
	if (cfg->clientid_prefixes) {
		size_t pl = strlen(cfg->clientid_prefixes);
		if (*idlen < pl || memcmp(*id, cfg->clientid_prefixes, pl) != 0)
			return MG_REFUSE_AUTH;
	}
	if (lidx < cfg->n_listeners && cfg->listeners[lidx].use_username_as_clientid) {
		if (c->user_from_cert) { /* the certificate's name (use_identity_as_username) */
			*id = c->username;
			*idlen = strlen(c->username);
		} else if (!k->has_username) {
			return MG_REFUSE_AUTH;
		} else {
			*id = (const char *)k->username.p;
			*idlen = k->username.len;
		}
	}
	if (c->user_from_cert)
		return MG_ADMIT; /* the TLS layer set c->username from the certificate */
	bool anon_ok = mg_config_anonymous_ok(cfg, lidx);
	const mg_pwfile *t = table_of(b, lidx);
	if (!t) /* no password file: allow_anonymous decides for everyone (mosquitto 2) */
		return anon_ok ? admit_user(c, k) : MG_REFUSE_AUTH;
	if (!k->has_username)
		return anon_ok ? admit_user(c, k) : MG_REFUSE_AUTH;
	const mg_pwent *e = mg_pwfile_find(t, k->username.p, k->username.len);
	if (!e || !k->has_password) {
		c->auth = MG_AUTH_NONE;
		return MG_REFUSE_AUTH;
	}
	uint64_t tag = tag_of(e);
	if ((c->auth == MG_AUTH_OK || c->auth == MG_AUTH_BAD) && c->pw_tag == tag) {
		/* OK stays: a hand-off to the session's worker handles this CONNECT again */
		if (c->auth == MG_AUTH_OK)
			return admit_user(c, k);
		c->auth = MG_AUTH_NONE;
		return MG_REFUSE_AUTH;
	}
	/* Not checked yet, or checked against an entry a reload replaced since. */
	c->pw_tag = tag;
	if (submit(c, e, &k->password) < 0) {
		c->auth = MG_AUTH_NONE;
		return MG_REFUSE_AUTH;
	}
	c->auth = MG_AUTH_WAIT;
	mg_conn_set_watch(c);
	return MG_PARKED;
}

bool mg_auth_still_ok(mg_conn *c)
{
	mg_broker *b = c->w->b;
	const mg_config *cfg = b->cfg;
	if (c->user_from_cert)
		return true;
	const mg_pwfile *t = table_of(b, c->lidx);
	if (!t || !c->username)
		return mg_config_anonymous_ok(cfg, c->lidx);
	/* No password is kept after CONNECT: a user whose entry changed (new password, new
	 * salt) or who was never checked against a file must log in again. */
	const mg_pwent *e = mg_pwfile_find(t, c->username, strlen(c->username));
	return e && c->pw_tag == tag_of(e);
}

void mg_auth_verdict(mg_worker *w, mg_conn *c, bool ok)
{
	(void)w;
	if (c->state == MG_CS_DEAD) { /* closed while it waited: ours to free */
		mg_conn_free(c);
		return;
	}
	c->auth = ok ? MG_AUTH_OK : MG_AUTH_BAD;
	mg_conn_set_watch(c);
	mg_conn_process(c); /* the same CONNECT again, now with its verdict */
}

void mg_auth_drop_verdict(mg_conn *c)
{
	if (c->state == MG_CS_DEAD)
		mg_conn_free(c);
	else
		c->auth = MG_AUTH_NONE; /* still on its worker's list, freed with it */
}
