/*
 * broker/config.c - the configuration's life: defaults, derived settings (local only
 * mode), the command line's effect, SIGHUP reload, and freeing. Reading the file is
 * config_parse.c, the keywords are config_keywords.c, argv is config_cli.c.
 */
#include "broker/config.h"

#include <stdlib.h>
#include <string.h>

#include "broker/config_int.h"
#include "broker/log.h"

#define MG_DEFAULT_PORT 1883

void mg_listener_conf_init(mg_listener_conf *l)
{
	memset(l, 0, sizeof *l);
	l->protocol = MG_PROTO_MQTT;
	l->max_connections = -1;
	l->allow_anonymous = -1;
}

void mg_listener_conf_free(mg_listener_conf *l)
{
	free(l->bind_address);
	free(l->mount_point);
	free(l->http_dir);
	char **tls[] = { &l->cafile, &l->capath, &l->certfile, &l->keyfile, &l->crlfile,
	                 &l->dhparamfile, &l->ciphers, &l->ciphers_tls13, &l->tls_version, &l->psk_hint,
	                 &l->psk_file };
	for (size_t i = 0; i < sizeof tls / sizeof tls[0]; i++)
		free(*tls[i]);
	free(l->password_file);
	free(l->acl_file);
	mg_listener_conf_init(l);
}

void mg_config_init(mg_config *c)
{
	memset(c, 0, sizeof *c);
	c->allow_anonymous = false;
	c->max_connections = -1;
	c->max_keepalive = 65535;
	c->max_packet_size = 0;
	c->message_size_limit = 0;
	c->max_inflight_messages = 20;
	c->max_queued_messages = 1000;
	c->max_incoming_qos2 = 1000;
	c->retain_available = true;
	c->allow_zero_length_clientid = true;
	c->auto_id_prefix = strdup("auto-"); /* NULL on ENOMEM: users treat NULL as "auto-" */
	c->persistent_client_expiration = -1;
	c->sys_interval = 10;
	c->log_types = MG_LOG_ERR | MG_LOG_WARNING | MG_LOG_NOTICE | MG_LOG_INFO;
	c->log_dests = MG_LOGD_STDERR;
	c->log_timestamp = true;
	c->connection_messages = true;
	c->threads = 0;
	c->persistence = false;
	c->log_facility = -1;
	c->local_port = MG_DEFAULT_PORT;
	c->cli_port_ = -1;
}

void mg_config_free(mg_config *c)
{
	for (int i = 0; i < c->n_listeners; i++)
		mg_listener_conf_free(&c->listeners[i]);
	free(c->listeners);
	free(c->auto_id_prefix);
	free(c->log_file);
	free(c->log_timestamp_format);
	free(c->pid_file);
	free(c->user);
	free(c->persistence_location);
	free(c->persistence_file);
	free(c->password_file);
	free(c->acl_file);
	free(c->psk_file);
	free(c->clientid_prefixes);
	char **cl[] = { &c->cluster_nats_url, &c->cluster_node_name, &c->cluster_nats_user,
	                &c->cluster_nats_password, &c->cluster_nats_token, &c->cluster_nats_creds,
	                &c->cluster_nats_cafile, &c->cluster_nats_certfile, &c->cluster_nats_keyfile };
	for (size_t i = 0; i < sizeof cl / sizeof cl[0]; i++)
		free(*cl[i]);
	mg_bridge_conf_free_all(c);
	free(c->config_path);
	free(c->config_abspath_);
	for (int i = 0; i < c->n_files_; i++)
		free(c->files_[i]);
	free(c->files_);
	memset(c, 0, sizeof *c);
}

const char *mg_config_keep_name(mg_config *c, const char *name)
{
	/* Listeners point at these for messages long after parsing; a handful per config. */
	for (int i = 0; i < c->n_files_; i++)
		if (strcmp(c->files_[i], name) == 0)
			return c->files_[i];
	char **n = realloc(c->files_, (size_t)(c->n_files_ + 1) * sizeof *n);
	if (!n)
		return NULL;
	c->files_ = n;
	if (!(n[c->n_files_] = strdup(name)))
		return NULL;
	return n[c->n_files_++];
}

int mg_config_add_listener(mg_config *c, const mg_listener_conf *l)
{
	mg_listener_conf *n = realloc(c->listeners, (size_t)(c->n_listeners + 1) * sizeof *n);
	if (!n)
		return -1;
	c->listeners = n;
	n[c->n_listeners] = *l;
	return c->n_listeners++;
}

void mg_config_finish(mg_config *c)
{
	if (c->n_listeners == 0) {
		mg_listener_conf l;
		mg_listener_conf_init(&l);
		l.port = c->local_port;
		l.bind_address = strdup("localhost");
		l.file = "(local only mode)";
		if (!l.bind_address || mg_config_add_listener(c, &l) < 0) {
			/* Out of memory this early: the core finds no listener and says so. */
			mg_listener_conf_free(&l);
			return;
		}
		c->local_only = true;
	}
	if (!c->allow_anonymous_set)
		c->allow_anonymous = c->local_only;
	/* mosquitto 2: a listener that does not say is closed to anonymous clients, unless the
	   broker runs in local only mode. */
	for (int i = 0; i < c->n_listeners; i++)
		if (c->listeners[i].allow_anonymous < 0)
			c->listeners[i].allow_anonymous = c->local_only;
}

bool mg_config_local_only(const mg_config *c)
{
	return c->local_only || c->n_listeners == 0;
}

void mg_config_log_local_only(const mg_config *c)
{
	if (!mg_config_local_only(c))
		return;
	mg_log(MG_LOG_NOTICE, "%s", MG_MSG_LOCAL_ONLY);
	mg_log(MG_LOG_NOTICE, "%s", MG_MSG_LOCAL_ONLY_HINT);
}

void mg_config_apply_cli(mg_config *c, const mg_cli *cli)
{
	if (cli->port >= 0 && cli->port <= 65535) {
		c->cli_port_ = cli->port;
		if (c->n_listeners > 0 && !c->local_only)
			c->listeners[0].port = (uint16_t)cli->port;
		else
			c->local_port = (uint16_t)cli->port;
		if (c->local_only && c->n_listeners > 0)
			c->listeners[0].port = (uint16_t)cli->port;
	}
	if (cli->verbose) {
		/* mosquitto's -v: every log type, destinations untouched. */
		c->verbose = true;
		c->log_types = MG_LOG_ALL;
	}
	mg_config_finish(c);
}

/* Move a string from the freshly read config to the live one. */
static void take_str(char **live, char **fresh)
{
	free(*live);
	*live = *fresh;
	*fresh = NULL;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool listeners_differ(const mg_config *a, const mg_config *b)
{
	if (a->n_listeners != b->n_listeners)
		return true;
	for (int i = 0; i < a->n_listeners; i++) {
		const mg_listener_conf *x = &a->listeners[i], *y = &b->listeners[i];
		if (x->port != y->port || x->protocol != y->protocol ||
				!same_str(x->bind_address, y->bind_address) ||
				x->max_connections != y->max_connections || !same_str(x->mount_point, y->mount_point) ||
				!same_str(x->http_dir, y->http_dir))
			return true;
		/* TLS files are re-read on SIGHUP from the paths the broker started with */
		if (!same_str(x->cafile, y->cafile) || !same_str(x->capath, y->capath) ||
				!same_str(x->certfile, y->certfile) || !same_str(x->keyfile, y->keyfile) ||
				!same_str(x->crlfile, y->crlfile) || !same_str(x->dhparamfile, y->dhparamfile) ||
				!same_str(x->ciphers, y->ciphers) || !same_str(x->ciphers_tls13, y->ciphers_tls13) ||
				!same_str(x->tls_version, y->tls_version) || !same_str(x->psk_hint, y->psk_hint) ||
				!same_str(x->psk_file, y->psk_file) ||
				x->require_certificate != y->require_certificate ||
				x->use_identity_as_username != y->use_identity_as_username ||
				x->use_subject_as_username != y->use_subject_as_username)
			return true;
	}
	return false;
}

int mg_config_reload(mg_config *live, char *err, size_t errlen)
{
	if (!live->config_path)
		return 0; /* started without -c: nothing to re-read (mosquitto does the same) */
	const char *path = live->config_abspath_ ? live->config_abspath_ : live->config_path;
	mg_config n;
	mg_config_init(&n);
	if (mg_config_load(&n, path, err, errlen) < 0) {
		mg_config_free(&n);
		return -1;
	}
	/* Say which settings the file changed that a reload cannot apply. A live config in
	   local only mode had no listener in its file. */
	if (live->cli_port_ >= 0 && n.n_listeners > 0)
		n.listeners[0].port = (uint16_t)live->cli_port_; /* as the broker started */
	char later[160] = "";
	if (live->local_only ? n.n_listeners != 0 : listeners_differ(live, &n))
		strcat(later, ", listeners");
	if (n.threads != live->threads)
		strcat(later, ", threads");
	if (!same_str(n.user, live->user))
		strcat(later, ", user");
	if (!same_str(n.psk_file, live->psk_file))
		strcat(later, ", psk_file");
	if (!same_str(n.pid_file, live->pid_file))
		strcat(later, ", pid_file");
	if (n.max_connections != live->max_connections)
		strcat(later, ", max_connections");
	if (n.listen_backlog != live->listen_backlog)
		strcat(later, ", listen_backlog");
	if (n.per_listener_settings != live->per_listener_settings)
		strcat(later, ", per_listener_settings");
	if (n.n_bridges || live->n_bridges) /* as in mosquitto, bridges are not reloaded */
		strcat(later, ", bridges");
	if (!same_str(n.cluster_nats_url, live->cluster_nats_url) ||
	    !same_str(n.cluster_node_name, live->cluster_node_name) ||
	    n.cluster_js_replicas != live->cluster_js_replicas)
		strcat(later, ", cluster");
	bool same_listeners = !(live->local_only ? n.n_listeners != 0 : listeners_differ(live, &n));
	for (int i = 0; same_listeners && i < n.n_listeners; i++)
		if (n.listeners[i].use_username_as_clientid != live->listeners[i].use_username_as_clientid) {
			strcat(later, ", use_username_as_clientid");
			break;
		}
	if (later[0])
		mg_log(MG_LOG_WARNING, "Warning: %s: changes to %s take effect only after a restart.",
				live->config_path, later + 2);

	live->allow_anonymous_set = n.allow_anonymous_set;
	live->allow_anonymous = n.allow_anonymous_set ? n.allow_anonymous : live->local_only;
	live->max_keepalive = n.max_keepalive;
	live->max_packet_size = n.max_packet_size;
	live->message_size_limit = n.message_size_limit;
	live->max_inflight_messages = n.max_inflight_messages;
	live->max_inflight_bytes = n.max_inflight_bytes;
	live->max_queued_messages = n.max_queued_messages;
	live->max_queued_bytes = n.max_queued_bytes;
	live->max_incoming_qos2 = n.max_incoming_qos2;
	live->queue_qos0_messages = n.queue_qos0_messages;
	live->retain_available = n.retain_available;
	live->outgoing_topic_aliases = n.outgoing_topic_aliases;
	live->allow_zero_length_clientid = n.allow_zero_length_clientid;
	/* Security settings apply to connected clients too (the broker re-checks them). A
	   listener's own ones are taken when the listeners are the same as at startup. */
	take_str(&live->password_file, &n.password_file);
	take_str(&live->acl_file, &n.acl_file);
	take_str(&live->clientid_prefixes, &n.clientid_prefixes);
	for (int i = 0; same_listeners && i < n.n_listeners; i++) {
		mg_listener_conf *l = &live->listeners[i], *nl = &n.listeners[i];
		l->allow_anonymous = nl->allow_anonymous >= 0 ? nl->allow_anonymous : live->local_only;
		take_str(&l->password_file, &nl->password_file);
		take_str(&l->acl_file, &nl->acl_file);
	}
	take_str(&live->auto_id_prefix, &n.auto_id_prefix);
	live->persistent_client_expiration = n.persistent_client_expiration;
	live->sys_interval = n.sys_interval;
	live->log_types = live->verbose ? (unsigned)MG_LOG_ALL : n.log_types;
	live->log_dests = n.log_dests;
	take_str(&live->log_file, &n.log_file);
	live->log_timestamp = n.log_timestamp;
	take_str(&live->log_timestamp_format, &n.log_timestamp_format);
	live->log_facility = n.log_facility;
	live->connection_messages = n.connection_messages;
	live->set_tcp_nodelay = n.set_tcp_nodelay;
	mg_config_free(&n);
	return 0;
}
