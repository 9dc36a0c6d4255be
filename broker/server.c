/*
 * broker/server.c - the broker as a whole: listeners, workers, signals, shutdown.
 */
#include "broker/broker.h"
#include "broker/bridge.h"
#include "broker/auth.h"
#include "broker/cluster.h"
#include "broker/log.h"
#include "broker/route.h"
#include "broker/tls.h"
#include "broker/store.h"
#include "broker/store_salvage.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

/* The accept queue: a fleet of clients reconnecting at once after a restart overflows a short
 * one (the kernel then drops their SYNs and they retry seconds later). The system's maximum
 * unless the file says otherwise; the kernel caps any larger value at that maximum. */
static int backlog_of(const mg_config *cfg)
{
	if (cfg->listen_backlog > 0)
		return cfg->listen_backlog;
	int v = 0;
	FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v > 0 ? v : SOMAXCONN;
}

static int open_listeners(mg_broker *b)
{
	const mg_config *cfg = b->cfg;
	int backlog = backlog_of(cfg);
	int cap = 0;
	for (int i = 0; i < cfg->n_listeners; i++)
		cap += 8;
	b->ls = calloc((size_t)(cap ? cap : 1), sizeof *b->ls);
	b->ls_lidx = calloc((size_t)(cap ? cap : 1), sizeof *b->ls_lidx);
	b->lcount = calloc((size_t)(cfg->n_listeners ? cfg->n_listeners : 1), sizeof *b->lcount);
	if (!b->ls || !b->ls_lidx || !b->lcount)
		return -ENOMEM;
	for (int i = 0; i < cfg->n_listeners; i++) {
		const mg_listener_conf *lc = &cfg->listeners[i];
		if (lc->http_dir && lc->protocol != MG_PROTO_WEBSOCKETS)
			mg_log(MG_LOG_WARNING, "Warning: %s:%d: http_dir is served only by a listener with "
			       "'protocol websockets'; this one speaks plain MQTT.", lc->file, lc->line);
		int fam = 0, n;
		if (lc->bind_address && strcmp(lc->bind_address, "localhost") == 0) {
			/* loopback on both families, whatever /etc/hosts says about "localhost" */
			n = mg_listen_tcp("127.0.0.1", lc->port, backlog, b->ls + b->nls, cap - b->nls, &fam);
			if (n > 0) {
				uint16_t port = b->ls[b->nls].port;
				int n6 = mg_listen_tcp("::1", port, backlog, b->ls + b->nls + n, cap - b->nls - n, &fam);
				if (n6 > 0)
					n += n6; /* no IPv6 on this host: IPv4 alone */
			}
		} else {
			n = mg_listen_tcp(lc->bind_address, lc->port, backlog, b->ls + b->nls, cap - b->nls, &fam);
		}
		if (n < 0) {
			mg_log(MG_LOG_NOTICE, "Opening %s listen socket on port %u.", fam == AF_INET6 ? "ipv6" : "ipv4",
			       lc->port);
			mg_log(MG_LOG_ERR, "Error: %s", strerror(-n));
			if (n == -EADDRINUSE)
				mg_log(MG_LOG_ERR, "Error: port %u is already in use by another program (another broker?).",
				       lc->port);
			return n;
		}
		for (int k = 0; k < n; k++)
			b->ls_lidx[b->nls + k] = i;
		for (int k = 0; k < n; k++)
			if (lc->protocol == MG_PROTO_MQTT)
				mg_log(MG_LOG_NOTICE, "Opening %s listen socket on port %u.",
				       b->ls[b->nls + k].family == AF_INET6 ? "ipv6" : "ipv4", b->ls[b->nls + k].port);
		if (lc->protocol == MG_PROTO_WEBSOCKETS) /* mosquitto's line, one per listener */
			mg_log(MG_LOG_NOTICE, "Opening websockets listen socket on port %u.", b->ls[b->nls].port);
		b->nls += n;
	}
	return 0;
}

/* `user`: when started as root, become that user once the listen sockets are bound (a port
 * below 1024 needs root) and before any worker thread starts, so no client is ever served
 * as root. Like mosquitto, nothing happens when not root or when `user` is unset. */
static int drop_privileges(const char *user)
{
	if (geteuid() != 0 || !user || !*user)
		return 0;
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		mg_log(MG_LOG_ERR, "Error: Invalid user '%s'.", user);
		return -EPERM;
	}
	if (initgroups(user, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		mg_log(MG_LOG_ERR, "Error setting user to '%s': %s.", user, strerror(errno));
		return -EPERM;
	}
	return 0;
}

/* The store is damaged: moved aside, rebuilt from what can be read, and said loudly, so the
 * broker starts (a broker that will not come back after a power cut is worse). */
static int salvage_store(mg_broker *b, const char *path, char *err, size_t errlen)
{
	mg_salvage sv;
	char why[1024];
	snprintf(why, sizeof why, "%s", err);
	if (mg_store_salvage(path, &sv, err, errlen) < 0)
		return MG_STORE_E_IO;
	mg_log(MG_LOG_ERR, "Error: persistence: %s.", why);
	mg_log(MG_LOG_ERR, "Error: persistence: the damaged file was moved to %s (midge never "
	       "overwrites it) and a new %s was made from what could be read: %zu retained messages, "
	       "%zu sessions, %zu subscriptions, %zu queued or in-flight messages, %zu incoming QoS 2%s.",
	       sv.aside, path, sv.retained, sv.sessions, sv.subs, sv.queue, sv.inq2,
	       sv.partial ? "; some rows were on damaged pages and are lost" : "");
	mg_log(MG_LOG_ERR, "Error: persistence: to look for more, open %s with sqlite3 (.recover) or "
	       "`midge_db dump`; once done with it, delete it.", sv.aside);
	return mg_store_open(path, b->cfg->persistence_fsync, &b->store, err, errlen);
}

/* persistence true: open the file and restore everything before any worker runs. */
static int open_store(mg_broker *b)
{
	char err[1024];
	char *path = mg_store_path(b->cfg);
	if (!path)
		return -ENOMEM;
	mg_log(MG_LOG_NOTICE, "Loading persistence from %s.", path);
	int r = mg_store_open(path, b->cfg->persistence_fsync, &b->store, err, sizeof err);
	if (r == MG_STORE_E_CORRUPT)
		r = salvage_store(b, path, err, sizeof err);
	if (r == MG_STORE_OK && (r = mg_store_recover(b, err, sizeof err)) != MG_STORE_OK) {
		mg_store_close(b->store);
		b->store = NULL;
	}
	free(path);
	if (r != MG_STORE_OK) {
		mg_log(MG_LOG_ERR, "Error: persistence: %s.", err);
		return -EIO;
	}
	return 0;
}

static void acl_warn(const char *msg)
{
	mg_log(MG_LOG_WARNING, "%s", msg);
}

/* Compile path into *slot (NULL when path is). On a broken file: -EINVAL at startup; on
 * reload (every worker parked) the rules become deny-all until a good file is read, and the
 * log says so. mosquitto fails closed too: after a failed reload it keeps only the rules
 * above the bad line, and none if the file is gone. */
static int load_one_acl(const char *path, mg_acl **slot, bool reload)
{
	mg_acl *old = *slot, *a = NULL;
	if (path) {
		char err[512];
		a = mg_acl_load(path, err, sizeof err, acl_warn);
		if (!a) {
			mg_log(MG_LOG_ERR, "%s", err);
			if (!reload)
				return -EINVAL;
			mg_log(MG_LOG_ERR, "Error: acl_file \"%s\" could not be reloaded: all access is "
			       "denied until it can be.", path);
			a = mg_acl_deny_all();
		}
	}
	*slot = a;
	mg_acl_free(old);
	return 0;
}

/* cfg->acl_file into b->acl; with per_listener_settings, each listener's into b->lacl. */
static int load_acl(mg_broker *b, bool reload)
{
	const mg_config *cfg = b->cfg;
	int r = load_one_acl(cfg->per_listener_settings ? NULL : cfg->acl_file, &b->acl, reload);
	if (r < 0 || !cfg->per_listener_settings)
		return r;
	if (!b->lacl && !(b->lacl = calloc((size_t)(cfg->n_listeners ? cfg->n_listeners : 1), sizeof *b->lacl)))
		return -ENOMEM;
	for (int i = 0; i < cfg->n_listeners; i++)
		if ((r = load_one_acl(cfg->listeners[i].acl_file, &b->lacl[i], reload)) < 0)
			return r;
	return 0;
}

int mg_broker_init(mg_broker *b, mg_config *cfg)
{
	b->cfg = cfg;
	b->start_ms = mg_now_ms();
	b->start_time = time(NULL);
	mg_registry_init(b);
	b->tree = mg_subtree_new();
	b->retain = mg_broker_retain_new();
	if (!b->tree || !b->retain || !b->reg.v)
		return -ENOMEM;
	int r = load_acl(b, false);
	if (r < 0)
		return r;
	/* Certificates and keys are read before dropping privileges (a key is often readable by
	 * root only), and before the listeners open: a client that can connect finds the
	 * certificates the broker started with. */
	b->tls = calloc((size_t)(cfg->n_listeners ? cfg->n_listeners : 1), sizeof *b->tls);
	if (!b->tls)
		return -ENOMEM;
	for (int i = 0; i < cfg->n_listeners; i++)
		if (mg_tls_listener(&cfg->listeners[i]) &&
		    !(b->tls[i] = mg_tls_listener_ctx(&cfg->listeners[i], mg_config_psk_file(cfg, i))))
			return -EINVAL;
	r = open_listeners(b);
	if (r < 0)
		return r;
	if ((r = drop_privileges(cfg->user)) < 0)
		return r;
	if ((r = mg_auth_init(b)) < 0) /* as the user that will re-read them on SIGHUP */
		return r;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	b->nworkers = cfg->threads > 0 ? cfg->threads : (ncpu > 0 ? (int)ncpu : 1);
	/* One worker is the only thread that touches the tree after start-up (the main thread
	 * before the workers start, after they stop, and while they wait at b->pause): no locks */
	mg_subtree_one_thread(b->tree, b->nworkers == 1);
	b->w = calloc((size_t)b->nworkers, sizeof *b->w);
	if (!b->w)
		return -ENOMEM;
	pthread_barrier_init(&b->pause, NULL, (unsigned)b->nworkers + 1);
	for (int i = 0; i < b->nworkers; i++)
		if ((r = mg_worker_init(b, &b->w[i], i)) < 0)
			return r;
	if (cfg->persistence && (r = open_store(b)) < 0)
		return r;
	return mg_bridges_init(b); /* after the store: a bridge goes where its session was restored */
}

int mg_broker_start(mg_broker *b, mg_config *cfg)
{
	int r = mg_broker_init(b, cfg);
	if (r < 0)
		return r;
	/* After the store restored its sessions (their filters are NATS interest too), before
	 * any worker runs: a node that cannot reach NATS does not start alone (docs/cluster.md). */
	if (cfg->cluster_nats_url) {
		if (!b->cluster_ops) {
			mg_log(MG_LOG_ERR, "Error: cluster_nats_url: this midge was built without libnats.");
			return -ENOTSUP;
		}
		if (b->cluster_ops->start(b, &b->cluster) < 0)
			return -ECONNREFUSED;
	}
	mg_log(MG_LOG_NOTICE, "midge version %s running", MIDGE_VERSION);
	/* Workers never take signals: the main thread waits for them with sigwait. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < b->nworkers; i++)
		if ((r = mg_worker_start(&b->w[i])) < 0) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			return r;
		} else {
			b->nstarted = i + 1;
		}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

static void post_all(mg_broker *b, int kind)
{
	for (int i = 0; i < b->nworkers; i++) {
		mg_post p = { .kind = kind };
		mg_worker *w = &b->w[i];
		pthread_mutex_lock(&w->inbox_mu);
		bool was_empty = w->inbox.n == 0;
		mg_postv *v = &w->inbox;
		if (v->n == v->cap) {
			size_t nc = v->cap ? v->cap * 2 : 64;
			mg_post *nv = realloc(v->v, nc * sizeof *nv);
			if (nv) {
				v->v = nv;
				v->cap = nc;
			}
		}
		if (v->n < v->cap)
			v->v[v->n++] = p;
		atomic_store_explicit(&w->inbox_n, v->n, memory_order_relaxed);
		pthread_mutex_unlock(&w->inbox_mu);
		if (was_empty)
			mg_loop_wake(w->loop);
	}
}

/* SIGHUP, workers parked: every TLS listener reads its certificates, key, CA, CRL and PSK
 * keys again into a new context, which new connections get; connected clients keep theirs.
 * A file that no longer loads keeps the listener's previous context, and says so. */
static void reload_tls(mg_broker *b)
{
	const mg_config *cfg = b->cfg;
	for (int i = 0; i < cfg->n_listeners; i++) {
		if (!b->tls || !b->tls[i])
			continue;
		const mg_listener_conf *lc = &cfg->listeners[i];
		SSL_CTX *n = mg_tls_listener_ctx(lc, mg_config_psk_file(cfg, i));
		if (!n) {
			mg_log(MG_LOG_ERR, "Error: %s:%d: listener %u keeps the certificates and keys it had "
			       "before this reload.", lc->file, lc->line, lc->port);
			continue;
		}
		SSL_CTX_free(b->tls[i]);
		b->tls[i] = n;
	}
}

/* SIGHUP: park every worker, reload, let them go. */
static void reload(mg_broker *b)
{
	mg_log_reopen();
	post_all(b, MG_POST_PAUSE);
	pthread_barrier_wait(&b->pause);
	char err[512];
	if (mg_config_reload(b->cfg, err, sizeof err) < 0) {
		mg_log(MG_LOG_ERR, "%s", err);
	} else {
		mg_log_open(b->cfg);
		mg_auth_reload(b);
		mg_log(MG_LOG_NOTICE, "Reloaded configuration from %s.",
		       b->cfg->config_path ? b->cfg->config_path : "(none)");
	}
	load_acl(b, true); /* re-read even when the config was not: mosquitto re-reads it too */
	reload_tls(b);
	pthread_barrier_wait(&b->pause);
}

void mg_broker_run_signals(mg_broker *b)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(b);
			continue;
		}
		break;
	}
}

void mg_broker_stop(mg_broker *b)
{
	if (b->nstarted > 0 && b->nstarted == b->nworkers) {
		post_all(b, MG_POST_SHUTDOWN); /* wills first: see shutdown_wills() */
		pthread_barrier_wait(&b->pause);
	}
	for (int i = 0; i < b->nstarted; i++)
		mg_loop_stop(b->w[i].loop);
	for (int i = 0; i < b->nstarted; i++)
		pthread_join(b->w[i].th, NULL);
	mg_auth_stop(b); /* before the workers' connections go: jobs name them */
	if (b->cluster) { /* the wills went out; nothing posts to the inboxes after this */
		b->cluster_ops->stop(b->cluster);
		b->cluster = NULL;
	}
	/* All threads are gone: free in any order. Conns first (they hold message refs). */
	if (b->w) {
		int nw = b->nworkers;
		for (int i = 0; i < nw; i++)
			mg_worker_free(&b->w[i]);
		pthread_barrier_destroy(&b->pause);
		for (int i = 0; i < nw; i++)
			mg_loop_free(b->w[i].loop);
	}
	mg_bridges_free(b);
	free(b->w);
	for (int i = 0; i < b->nls; i++)
		close(b->ls[i].fd);
	free(b->ls);
	free(b->ls_lidx);
	for (int i = 0; b->tls && i < b->cfg->n_listeners; i++)
		SSL_CTX_free(b->tls[i]);
	free(b->tls);
	free(b->lcount);
	mg_store_closing_cleanly(b->store);
	mg_store_close(b->store); /* every worker committed its last batch when it stopped */
	b->store = NULL;
	mg_retain_free(b->retain);
	mg_subtree_free(b->tree);
	mg_acl_free(b->acl);
	b->acl = NULL;
	for (int i = 0; b->lacl && i < b->cfg->n_listeners; i++)
		mg_acl_free(b->lacl[i]);
	free(b->lacl);
	b->lacl = NULL;
	mg_registry_free(b);
	mg_auth_free(b);
}
