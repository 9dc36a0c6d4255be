/*
 * tools/common/client.h - what midge_pub and midge_sub do alike with a parsed mg_cfg: make
 * the client (id, session, credentials, will, -d logging), turn -D into properties, connect
 * and report a failure with mosquitto's words and exit status.
 */
#ifndef MG_TOOLS_CLIENT_H
#define MG_TOOLS_CLIENT_H

#include <midge/midge.h>

#include "tools/common/cfg.h"

/* The -D properties for one packet (enum mg_prop_cmd), plus session expiry for CONNECT.
 * NULL when there are none or the protocol is not 5.0. The caller frees the result. */
midge_properties *mg_tool_props(const mg_cfg *cfg, int cmd);

/* A client set up from cfg (userdata handed to callbacks); NULL after printing an error. */
midge_client *mg_tool_client_new(const mg_cfg *cfg, void *userdata);

/* Connects and waits for the CONNACK. Returns the tool's exit status: 0 connected, the CONNACK
 * code when refused, for midge_pub 7 when the broker hung up before its CONNACK and 8 for a
 * refused TLS handshake, 1 on any other error (each after printing mosquitto's message).
 * Sets the client's on_connect_fail. */
int mg_tool_connect(const mg_cfg *cfg, midge_client *c);

/* Prints the usage error epilogue: "\nUse 'midge_pub --help' to see usage.\n". */
void mg_tool_usage_hint(const mg_cfg *cfg);

/* The TLS lines of midge_pub's and midge_sub's --help (the same flags, tools/common/cfg.c). */
#define TOOL_TLS_HELP \
	" --cafile : a file of trusted CA certificates: connect with TLS.\n" \
	" --capath : a directory of trusted CA certificates: connect with TLS.\n" \
	" --cert, --key : client certificate and key, if the broker requires one.\n" \
	" --ciphers : OpenSSL cipher list.\n" \
	" --insecure : do not check that the broker's certificate names the host.\n" \
	" --tls-version : lowest TLS version: tlsv1.3, tlsv1.2 (default) or tlsv1.1.\n" \
	" --tls-use-os-certs : trust the system's CA certificates.\n" \
	" --psk, --psk-identity : TLS with a pre-shared key (hex) and its identity.\n"

#endif
