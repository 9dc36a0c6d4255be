/*
 * tools/common/client.c - client setup shared by midge_pub and midge_sub.
 */
#include "tools/common/client.h"
#include "tools/common/os.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mg_tool_usage_hint(const mg_cfg *cfg)
{
	fprintf(stderr, "\nUse '%s --help' to see usage.\n", mg_cfg_progname(cfg));
}

/* -d: libmidge writes libmosquitto's debug lines; the tools print them as mosquitto's do. */
static void on_log(midge_client *c, void *userdata, int level, const char *line)
{
	(void)c;
	(void)userdata;
	(void)level;
	printf("%s\n", line);
	fflush(stdout);
}

static int add_prop(midge_properties *p, const mg_cfg_prop *d)
{
	switch (d->type) {
	case MIDGE_PROP_TYPE_STRING_PAIR:
		return midge_properties_add_user(p, d->value, d->value2);
	case MIDGE_PROP_TYPE_STRING:
		return midge_properties_set_string(p, d->id, d->value);
	case MIDGE_PROP_TYPE_BINARY:
		return midge_properties_set_binary(p, d->id, d->value, strlen(d->value));
	default:
		return midge_properties_set_int(p, d->id, (uint32_t)strtoul(d->value, NULL, 10));
	}
}

midge_properties *mg_tool_props(const mg_cfg *cfg, int cmd)
{
	midge_properties *p;
	bool any = false;

	if (cfg->protocol != MIDGE_PROTOCOL_V5)
		return NULL;
	p = midge_properties_new();
	if (!p)
		return NULL;
	if (cmd == MIDGE_CMD_CONNECT && cfg->session_expiry > 0) {
		midge_properties_set_session_expiry(p, (uint32_t)cfg->session_expiry);
		any = true;
	}
	for (int i = 0; i < cfg->nprops; i++) {
		int rc;

		if (cfg->props[i].cmd != cmd)
			continue;
		rc = add_prop(p, &cfg->props[i]);
		if (rc != MIDGE_OK)
			mg_err_printf(cfg, "Warning: property %s not set: %s\n",
				      midge_property_name(cfg->props[i].id), midge_strerror(rc));
		any = true;
	}
	if (!any) {
		midge_properties_free(p);
		return NULL;
	}
	return p;
}

/* The TLS flags, in mosquitto_pub's order and words. 0, or 1 after printing an error. */
static int tls_setup(const mg_cfg *cfg, midge_client *c)
{
	int rc;

	if (cfg->cafile || cfg->capath ||
	    (cfg->tls_use_os_certs && !cfg->psk && cfg->certfile)) {
		rc = midge_tls_set(c, cfg->cafile, cfg->capath, cfg->certfile, cfg->keyfile, NULL);
		if (rc != MIDGE_OK) {
			if (rc == MIDGE_ERR_INVAL)
				mg_err_printf(cfg, "Error: Problem setting TLS options: File not found.\n");
			else
				mg_err_printf(cfg, "Error: Problem setting TLS options: %s.\n", midge_strerror(rc));
			return 1;
		}
	} else if (cfg->psk) {
		if (midge_tls_psk_set(c, cfg->psk, cfg->psk_identity, NULL) != MIDGE_OK) {
			mg_err_printf(cfg, "Error: Problem setting TLS-PSK options.\n");
			return 1;
		}
	}
	if (cfg->tls_use_os_certs)
		midge_tls_use_os_certs(c, true);
	if (cfg->insecure && midge_tls_insecure_set(c, true) != MIDGE_OK) {
		mg_err_printf(cfg, "Error: Problem setting TLS insecure option.\n");
		return 1;
	}
	/* mosquitto_pub passes !insecure as cert_reqs: with --insecure and one of these two the
	 * broker's certificate is not verified at all */
	if ((cfg->tls_version || cfg->ciphers) &&
	    midge_tls_opts_set(c, cfg->insecure ? MIDGE_TLS_CERT_NONE : MIDGE_TLS_CERT_REQUIRED,
			       cfg->tls_version, cfg->ciphers) != MIDGE_OK) {
		mg_err_printf(cfg, "Error: Problem setting TLS options, check the options are valid.\n");
		return 1;
	}
	return 0;
}

midge_client *mg_tool_client_new(const mg_cfg *cfg, void *userdata)
{
	midge_client *c;
	int rc;

	c = midge_client_new(cfg->id, cfg->clean_session, userdata, cfg->protocol,
			     cfg->ws ? MIDGE_TRANSPORT_WEBSOCKETS : MIDGE_TRANSPORT_TCP);
	if (!c) {
		mg_err_printf(cfg, "Error: Invalid id and/or clean_session.\n");
		return NULL;
	}
	if (cfg->debug)
		midge_on_log_set(c, on_log);
	if (cfg->ws && midge_ws_set_options(c, cfg->ws_path_copy, NULL) != MIDGE_OK) {
		mg_err_printf(cfg, "Error: Invalid WebSocket path '%s'.\n", cfg->ws_path_copy);
		goto fail;
	}
	/* -P without -u: MQTT 5 sends the password alone; 3.1/3.1.1 cannot, and mosquitto_pub
	 * refuses it with these words */
	if (cfg->username || cfg->password) {
		rc = midge_username_pw_set(c, cfg->username, cfg->password);
		if (rc != MIDGE_OK) {
			mg_err_printf(cfg, "Error: Problem setting username and/or password.\n");
			goto fail;
		}
	}
	if (cfg->will_topic) {
		midge_properties *wp = mg_tool_props(cfg, MIDGE_CMD_WILL);
		const char *pl = cfg->will_payload;

		rc = midge_will_set(c, cfg->will_topic, pl, pl ? strlen(pl) : 0, cfg->will_qos,
				    cfg->will_retain, wp);
		midge_properties_free(wp);
		if (rc != MIDGE_OK) {
			mg_err_printf(cfg, "Error: Problem setting will: %s.\n", midge_strerror(rc));
			goto fail;
		}
	}
	if (tls_setup(cfg, c))
		goto fail;
	return c;
fail:
	midge_client_free(c);
	return NULL;
}

/* Set by on_connect_fail: the connect got as far as a connection (a TLS failure then comes from
 * the handshake, not from reading the certificates). The tools run the loop in one thread. */
static bool connect_failed_late;

static void on_connect_fail(midge_client *c, void *userdata, int err)
{
	(void)c;
	(void)userdata;
	(void)err;
	connect_failed_late = true;
}

int mg_tool_connect(const mg_cfg *cfg, midge_client *c)
{
	midge_properties *props = mg_tool_props(cfg, MIDGE_CMD_CONNECT);
	int rc;

	errno = 0;
	connect_failed_late = false;
	midge_on_connect_fail_set(c, on_connect_fail);
	rc = midge_connect_ex(c, cfg->host, cfg->port, cfg->keepalive, cfg->clean_session, props);
	midge_properties_free(props);
	if (rc == MIDGE_OK)
		return 0;
	if (rc > 0) {
		if (cfg->protocol == MIDGE_PROTOCOL_V5 && rc == 0x84)
			mg_err_printf(cfg, "Connection error: %s. Try connecting to an MQTT v5 broker, "
					   "or use MQTT v3.x mode.\n", midge_reason_string(rc));
		else
			mg_err_printf(cfg, "Connection error: %s\n", midge_connack_string(rc));
		/* mosquitto_pub's loop then reports the end of the connection as well. */
		if (cfg->tool == MG_TOOL_PUB)
			mg_err_printf(cfg, "Error: %s\n", cfg->protocol == MIDGE_PROTOCOL_V5
				      ? "A network protocol error occurred when communicating with the broker."
				      : "The connection was refused.");
		return rc;
	}
	if (rc == MIDGE_ERR_ERRNO)
		mg_err_printf(cfg, "Error: %s\n", mg_tool_strerror(errno ? errno : ECONNREFUSED));
	else if (rc == MIDGE_ERR_TLS && connect_failed_late && cfg->tool == MG_TOOL_PUB) {
		/* mosquitto_pub's connect returns before the broker's answer, so a refused handshake
		 * is its loop's MOSQ_ERR_TLS (mosquitto_sub's usually comes from its connect) */
		mg_err_printf(cfg, "Error: %s\n", midge_strerror(rc));
		return 8;
	} else if (rc == MIDGE_ERR_TLS) /* mosquitto's words when its connect call fails */
		mg_err_printf(cfg, "Unable to connect (%s).\n", midge_strerror(rc));
	else
		mg_err_printf(cfg, "Error: %s\n", midge_strerror(rc));
	/* The broker hung up before its CONNACK (a plaintext client on a TLS port, say): for
	 * mosquitto_pub that is its loop's MOSQ_ERR_CONN_LOST, and its exit status. */
	if (rc == MIDGE_ERR_CONN_LOST && cfg->tool == MG_TOOL_PUB)
		return 7;
	return 1;
}
