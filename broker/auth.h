/*
 * broker/auth.h - who may connect (auth.c): allow_anonymous, password_file (per listener with
 * per_listener_settings), clientid_prefixes, use_username_as_clientid, and the re-check of
 * connected clients after a reload.
 *
 * Password checks run off the event loop. A `$7$` entry may ask for a million PBKDF2 rounds
 * (about a second of CPU); hashing on a worker would stall every other client of that
 * worker, which is how one login stalls all of mosquitto. So a CONNECT that needs a hash is
 * parked: the connection stops reading (its CONNECT stays unread in its framer), a job with
 * a copy of the entry and of the password goes to a small pool of auth threads (started on
 * the first such CONNECT, run at a lower CPU priority than the workers), and the verdict
 * comes back through the worker's inbox (MG_POST_AUTH_OK / _BAD). The worker then handles
 * the same CONNECT again, now with the verdict. The auth threads touch nothing but their
 * jobs; the password tables are read by workers only, and replaced only while every worker
 * is parked for a reload.
 *
 * A parked connection closed meanwhile (shutdown) is owned by its job until the verdict
 * comes back (mg_auth_verdict frees it), so nothing frees it under the auth thread's feet.
 */
#ifndef MG_BROKER_AUTH_H
#define MG_BROKER_AUTH_H

#include <stdbool.h>

#include "broker/conn.h"
#include "proto/proto.h"

typedef struct mg_broker mg_broker;
typedef struct mg_worker mg_worker;
typedef struct mg_auth mg_auth;

/* c->auth: where a connection's password check stands */
enum { MG_AUTH_NONE = 0, MG_AUTH_WAIT, MG_AUTH_OK, MG_AUTH_BAD };

/* Load every password file the config names (after dropping privileges, as mosquitto 2).
 * Returns 0 or a negative errno (logged in mosquitto's words). */
int mg_auth_init(mg_broker *b);
/* SIGHUP, every worker parked: re-read the password files. A file that cannot be read keeps
 * its old table (and says so). */
void mg_auth_reload(mg_broker *b);
/* After the workers stopped: stop the auth threads, give back what their jobs own. */
void mg_auth_stop(mg_broker *b);
void mg_auth_free(mg_broker *b);
/* After mg_auth_free: true when a password check was still hashing at stop (a thread left
 * running, see mg_auth_stop). The process must then end with _exit, without exit handlers:
 * libcrypto's would free what that thread is using. */
bool mg_auth_left_running(const mg_broker *b);

enum { MG_ADMIT = 0, MG_REFUSE_AUTH, MG_PARKED };
/* The CONNECT's authentication, in mosquitto's order: clientid_prefixes, then
 * use_username_as_clientid, then allow_anonymous / password_file. MG_REFUSE_AUTH: CONNACK
 * 5 (3.x) / 0x87 (5.0), as mosquitto answers each of them. MG_PARKED: a password is being
 * hashed; c reads nothing until the verdict. *id / *idlen may be replaced (the user name). */
int mg_auth_connect(mg_conn *c, const mg_connect *k, const char **id, size_t *idlen);
/* After a reload: may c (active) stay? */
bool mg_auth_still_ok(mg_conn *c);
/* The verdict of c's job, on c's worker (from its inbox). */
void mg_auth_verdict(mg_worker *w, mg_conn *c, bool ok);
/* A verdict that will never be handled (shutdown): frees c if it was closed meanwhile. */
void mg_auth_drop_verdict(mg_conn *c);

#endif
