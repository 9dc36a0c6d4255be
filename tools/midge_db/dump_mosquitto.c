/* tools/midge_db/dump_mosquitto.c - `midge_db dump mosquitto.db`: every record, readable. */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "tools/midge_db/midge_db.h"

#define SHOW 64 /* bytes of a payload shown */

static void print_time(FILE *out, int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) && strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm))
		fputs(buf, out);
	else
		fprintf(out, "%" PRId64, t);
}

static void print_props(FILE *out, mg_bytes raw)
{
	uint32_t off = 0;
	mg_prop pr;
	while (mg_prop_next(raw, &off, &pr)) {
		fprintf(out, ", %s", mg_prop_name(pr.id));
		switch (mg_prop_type(pr.id)) {
		case MG_PT_UTF8:
		case MG_PT_BINARY:
			fputc(' ', out);
			mdb_print_bytes(out, pr.a.p, pr.a.len, SHOW);
			break;
		case MG_PT_PAIR:
			fputc(' ', out);
			mdb_print_bytes(out, pr.a.p, pr.a.len, SHOW);
			fputc('=', out);
			mdb_print_bytes(out, pr.b.p, pr.b.len, SHOW);
			break;
		default:
			fprintf(out, " %u", pr.u);
		}
	}
}

int mdb_dump_mosquitto(const char *path, const uint8_t *buf, size_t len, FILE *out)
{
	mqdb db;
	char err[300];
	if (mqdb_parse(buf, len, &db, err, sizeof err) != 0) {
		fprintf(stderr, "midge_db: %s: %s\n", path, err);
		return 1;
	}
	fprintf(out, "%s: mosquitto persistence file, format version %u, last store id %" PRIu64
	        ", %s\n", path, db.version, db.last_db_id,
	        db.shutdown ? "written at shutdown" : "an autosave (not at shutdown)");
	fprintf(out, "%zu messages, %zu clients, %zu client messages, %zu subscriptions, %zu retained",
	        db.n_msgs, db.n_clients, db.n_cmsgs, db.n_subs, db.n_retains);
	if (db.n_unknown)
		fprintf(out, ", %zu chunks of unknown types (skipped)", db.n_unknown);
	fputc('\n', out);
	for (size_t i = 0; i < db.n_msgs; i++) {
		const mqdb_msg *m = &db.msgs[i];
		fprintf(out, "message %" PRIu64 ": ", m->store_id);
		mdb_print_bytes(out, m->topic.p, m->topic.len, 1024);
		fprintf(out, " qos %u retain %u, %u bytes ", m->qos, m->retain, m->payload.len);
		mdb_print_bytes(out, m->payload.p, m->payload.len, SHOW);
		if (m->source_id.len) {
			fputs(", from ", out);
			mdb_print_bytes(out, m->source_id.p, m->source_id.len, 1024);
		}
		if (m->expiry_time) {
			fputs(", expires ", out);
			print_time(out, m->expiry_time);
		}
		print_props(out, m->props);
		fputc('\n', out);
	}
	for (size_t i = 0; i < db.n_clients; i++) {
		const mqdb_client *c = &db.clients[i];
		fputs("client ", out);
		mdb_print_bytes(out, c->id.p, c->id.len, 1024);
		if (c->session_expiry_interval == UINT32_MAX)
			fputs(": session expiry never", out);
		else
			fprintf(out, ": session expiry %u s", c->session_expiry_interval);
		if (c->session_expiry_time) {
			fputs(", expires ", out);
			print_time(out, c->session_expiry_time);
		}
		fprintf(out, ", last mid %u", c->last_mid);
		if (c->username.len) {
			fputs(", username ", out);
			mdb_print_bytes(out, c->username.p, c->username.len, 1024);
		}
		if (c->username_stale)
			fputs(", username field left over from the client before (mosquitto < 2.0.16): "
			      "none", out);
		fputc('\n', out);
	}
	for (size_t i = 0; i < db.n_cmsgs; i++) {
		const mqdb_cmsg *c = &db.cmsgs[i];
		fputs("client message ", out);
		mdb_print_bytes(out, c->client_id.p, c->client_id.len, 1024);
		fprintf(out, " %s: message %" PRIu64 " qos %u m%u %s%s%s", c->direction ? "out" : "in",
		        c->store_id, c->qos, c->mid, mqdb_state_name(c->state), c->retain ? " retain" : "",
		        c->dup ? " dup" : "");
		if (!mqdb_find_msg(&db, c->store_id))
			fputs(" (no such message: expired)", out);
		print_props(out, c->props);
		fputc('\n', out);
	}
	for (size_t i = 0; i < db.n_subs; i++) {
		const mqdb_sub *s = &db.subs[i];
		fputs("subscription ", out);
		mdb_print_bytes(out, s->client_id.p, s->client_id.len, 1024);
		fputc(' ', out);
		mdb_print_bytes(out, s->filter.p, s->filter.len, 1024);
		fprintf(out, " qos %u%s%s", s->qos, s->options & 0x04 ? " no-local" : "",
		        s->options & 0x08 ? " retain-as-published" : "");
		if (s->identifier)
			fprintf(out, " id %u", s->identifier);
		fputc('\n', out);
	}
	for (size_t i = 0; i < db.n_retains; i++) {
		const mqdb_msg *m = mqdb_find_msg(&db, db.retains[i]);
		fprintf(out, "retained message %" PRIu64, db.retains[i]);
		if (m) {
			fputs(": ", out);
			mdb_print_bytes(out, m->topic.p, m->topic.len, 1024);
		} else {
			fputs(" (no such message: expired)", out);
		}
		fputc('\n', out);
	}
	mqdb_free(&db);
	return 0;
}
