/*
 * test/unit/test_broker_config.c - the config file's language (lines, comments, CRLF), the
 * lecture's file, include_dir, local only mode, the command line, SIGHUP reload.
 * Keyword by keyword checks are in test_broker_config_keywords.c.
 */
#include "t.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/config.h"
#include "broker/log.h"

#include "config_text.h"

static char tmpdir[64];

static void make_tmpdir(void)
{
	strcpy(tmpdir, "/tmp/midge-test-conf-XXXXXX");
	if (!mkdtemp(tmpdir))
		t_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
}

/* Writes tmpdir/name; returns its path (static buffer, one at a time). */
static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	if (!f) {
		t_fail(__FILE__, __LINE__, "cannot write %s", path);
		return path;
	}
	fputs(text, f);
	fclose(f);
	return path;
}

static void rm_tmpdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		t_fail(__FILE__, __LINE__, "%s failed", cmd);
}

/* The lecture's mos.conf, byte for byte. */
static const char lecture[] =
	"listener 1883 # allow connections from other computers\n"
	"allow_anonymous true # let anyone connect\n";

TEST(lecture_file_verbatim)
{
	mg_config c;
	char err[ERRLEN] = "";
	REQUIRE(parse(&c, lecture, err) == 0);
	REQUIRE(c.n_listeners == 1);
	CHECK_EQ_INT(c.listeners[0].port, 1883);
	CHECK(c.listeners[0].bind_address == NULL);
	CHECK_EQ_INT(c.listeners[0].protocol, MG_PROTO_MQTT);
	CHECK(c.allow_anonymous);
	mg_cli cli = {.port = -1};
	mg_config_apply_cli(&c, &cli);
	CHECK(!mg_config_local_only(&c));
	CHECK(c.allow_anonymous);
	CHECK_EQ_INT(c.n_listeners, 1);
	mg_config_free(&c);
}

TEST(lecture_file_from_disk_crlf_and_repo_copy)
{
	make_tmpdir();
	mg_config c;
	char err[ERRLEN] = "";
	/* The same file as saved by a Windows editor. */
	const char *path = write_file("mos.conf", "listener 1883 # allow connections from other computers\r\n"
			"allow_anonymous true # let anyone connect\r\n");
	mg_config_init(&c);
	REQUIRE(mg_config_load(&c, path, err, sizeof err) == 0);
	CHECK_STR(c.config_path, path);
	REQUIRE(c.n_listeners == 1);
	CHECK_EQ_INT(c.listeners[0].port, 1883);
	CHECK(c.allow_anonymous);
	mg_config_free(&c);
	rm_tmpdir();

	/* midge.conf at the top of the tree is the lecture's file (make run uses it): its MQTT
	 * listener on 1883 first, then the web page's WebSockets listener on 8080. */
	mg_config_init(&c);
	if (access("midge.conf", R_OK) == 0) {
		CHECK(mg_config_load(&c, "midge.conf", err, sizeof err) == 0);
		REQUIRE(c.n_listeners == 2);
		CHECK_EQ_INT(c.listeners[0].port, 1883);
		CHECK_EQ_INT(c.listeners[0].protocol, MG_PROTO_MQTT);
		CHECK_EQ_INT(c.listeners[1].port, 8080);
		CHECK_EQ_INT(c.listeners[1].protocol, MG_PROTO_WEBSOCKETS);
		CHECK(c.allow_anonymous);
	}
	mg_config_free(&c);
}

TEST(comments_blank_lines_tabs_bom)
{
	mg_config c;
	char err[ERRLEN] = "";
	REQUIRE(parse(&c, "\xEF\xBB\xBF# a comment\n\n   \n\t# indented comment\n"
			"\tlistener\t1884\t# tabbed\n#listener 1\nmax_keepalive 30#not-a-comment\n", err) != 0);
	/* '#' inside a word is part of the word: "30#not-a-comment" is not a number */
	CHECK_STR(err, "Error: t.conf:7: invalid value '30#not-a-comment' for 'max_keepalive' (expected a whole number).");
	mg_config_free(&c);
	REQUIRE(parse(&c, "\xEF\xBB\xBF# a comment\n\n   \n\t# indented comment\n"
			"\tlistener\t1884\t# tabbed\n#listener 1\nmax_keepalive 30 #comment\n", err) == 0);
	REQUIRE(c.n_listeners == 1);
	CHECK_EQ_INT(c.listeners[0].port, 1884);
	CHECK_EQ_INT(c.max_keepalive, 30);
	mg_config_free(&c);
	/* no newline at the end of the last line */
	REQUIRE(parse(&c, "listener 1\nmax_keepalive 40", err) == 0);
	CHECK_EQ_INT(c.max_keepalive, 40);
	mg_config_free(&c);
	REQUIRE(parse(&c, "", err) == 0);
	CHECK_EQ_INT(c.n_listeners, 0);
	mg_config_free(&c);
}

TEST(unknown_keyword_names_file_and_line)
{
	mg_config c;
	char err[ERRLEN] = "";
	CHECK(parse(&c, "# mos.conf\nallow_anonymous true\nlistner 1883\n", err) == -1);
	CHECK_STR(err, "Error: t.conf:3: unknown keyword 'listner'. Did you mean 'listener'?");
	mg_config_free(&c);
	CHECK(parse(&c, "frobnicate yes\n", err) == -1);
	CHECK_STR(err, "Error: t.conf:1: unknown keyword 'frobnicate'.");
	mg_config_free(&c);
	CHECK(parse(&c, "listener 1883\r\nallow_anonymus true\r\n", err) == -1);
	CHECK_STR(err, "Error: t.conf:2: unknown keyword 'allow_anonymus'. Did you mean 'allow_anonymous'?");
	mg_config_free(&c);
	/* a NUL byte: not a text file */
	static const char nul[] = "listener 1883\nallow\0_anonymous true\n";
	mg_config_init(&c);
	CHECK(mg_config_parse_buffer(&c, "t.conf", nul, sizeof nul - 1, err, sizeof err) == -1);
	CHECK_STR(err, "Error: t.conf:2: the line holds a NUL byte (is this a text file?).");
	mg_config_free(&c);
	/* a small error buffer is cut, never overrun */
	char small[16];
	mg_config_init(&c);
	CHECK(mg_config_parse_buffer(&c, "t.conf", "frobnicate\n", 11, small, sizeof small) == -1);
	CHECK(strlen(small) < sizeof small);
	mg_config_free(&c);
}

TEST(missing_file)
{
	mg_config c;
	char err[ERRLEN] = "";
	mg_config_init(&c);
	CHECK(mg_config_load(&c, "/nonexistent/midge.conf", err, sizeof err) == -1);
	CHECK_STR(err, "Error: Unable to open config file /nonexistent/midge.conf: No such file or directory.");
	mg_config_free(&c);
	mg_config_init(&c);
	CHECK(mg_config_load(&c, "/", err, sizeof err) == -1);
	CHECK_STR(err, "Error: Unable to open config file /: Is a directory.");
	mg_config_free(&c);
}

TEST(defaults)
{
	mg_config c;
	mg_config_init(&c);
	CHECK_EQ_INT(c.n_listeners, 0);
	CHECK(!c.allow_anonymous);
	CHECK_EQ_INT(c.max_connections, -1);
	CHECK_EQ_INT(c.max_keepalive, 65535);
	CHECK_EQ_INT(c.max_packet_size, 0);
	CHECK_EQ_INT(c.message_size_limit, 0);
	CHECK_EQ_INT(c.max_inflight_messages, 20);
	CHECK_EQ_INT(c.max_inflight_bytes, 0);
	CHECK_EQ_INT(c.max_queued_messages, 1000);
	CHECK_EQ_INT(c.max_queued_bytes, 0);
	CHECK(!c.queue_qos0_messages);
	CHECK(c.retain_available);
	CHECK(c.allow_zero_length_clientid);
	CHECK_STR(c.auto_id_prefix, "auto-");
	CHECK_EQ_INT(c.persistent_client_expiration, -1);
	CHECK_EQ_INT(c.sys_interval, 10);
	CHECK(c.log_timestamp);
	CHECK(c.log_timestamp_format == NULL);
	CHECK(c.connection_messages);
	CHECK(!c.set_tcp_nodelay);
	CHECK_EQ_INT(c.threads, 0);
	CHECK(!c.persistence);
	CHECK(c.pid_file == NULL && c.user == NULL && c.config_path == NULL);
	mg_config_free(&c);
}

TEST(local_only_mode)
{
	mg_config c;
	mg_cli cli;
	char err[ERRLEN] = "";
	/* no config file at all */
	char *argv0[] = {"midge", NULL};
	REQUIRE(mg_cli_parse(1, argv0, &cli, err, sizeof err) == 0);
	mg_config_init(&c);
	mg_config_apply_cli(&c, &cli);
	CHECK(mg_config_local_only(&c));
	REQUIRE(c.n_listeners == 1);
	CHECK_EQ_INT(c.listeners[0].port, 1883);
	CHECK_STR(c.listeners[0].bind_address, "localhost");
	CHECK(c.allow_anonymous);
	mg_config_finish(&c); /* idempotent */
	CHECK_EQ_INT(c.n_listeners, 1);
	CHECK(c.allow_anonymous);
	mg_config_free(&c);

	/* a file without listener, -p: still local only, on that port (mosquitto 2.0 does so) */
	char *argv1[] = {"midge", "-p", "1999", NULL};
	REQUIRE(mg_cli_parse(3, argv1, &cli, err, sizeof err) == 0);
	REQUIRE(parse(&c, "max_keepalive 60\n", err) == 0);
	mg_config_apply_cli(&c, &cli);
	CHECK(mg_config_local_only(&c));
	REQUIRE(c.n_listeners == 1);
	CHECK_EQ_INT(c.listeners[0].port, 1999);
	CHECK_STR(c.listeners[0].bind_address, "localhost");
	CHECK(c.allow_anonymous);
	mg_config_free(&c);

	/* an explicit allow_anonymous false is kept */
	REQUIRE(parse(&c, "allow_anonymous false\n", err) == 0);
	mg_config_finish(&c);
	CHECK(mg_config_local_only(&c));
	CHECK(!c.allow_anonymous);
	mg_config_free(&c);

	/* a listener without allow_anonymous: mosquitto 2's default, false */
	REQUIRE(parse(&c, "listener 1883\n", err) == 0);
	mg_config_finish(&c);
	CHECK(!mg_config_local_only(&c));
	CHECK(!c.allow_anonymous);
	mg_config_free(&c);

	CHECK(strstr(MG_MSG_LOCAL_ONLY, "local only mode") != NULL);
	CHECK(strstr(MG_MSG_LOCAL_ONLY_HINT, "listener 1883") != NULL);
	CHECK(strstr(MG_MSG_LOCAL_ONLY_HINT, "allow_anonymous true") != NULL);
}

TEST(cli_parse)
{
	mg_cli cli;
	char err[ERRLEN];
	char *a1[] = {"midge", "-c", "mos.conf", "-v", "-p", "1884", "-d", NULL};
	CHECK_EQ_INT(mg_cli_parse(7, a1, &cli, err, sizeof err), 0);
	CHECK_STR(cli.config_file, "mos.conf");
	CHECK(cli.verbose && cli.daemon && !cli.help && !cli.test_config);
	CHECK_EQ_INT(cli.port, 1884);
	char *a2[] = {"midge", "--config-file", "x.conf", "--verbose", "--port", "0", "--daemon", "--test-config", NULL};
	CHECK_EQ_INT(mg_cli_parse(8, a2, &cli, err, sizeof err), 0);
	CHECK_STR(cli.config_file, "x.conf");
	CHECK(cli.verbose && cli.daemon && cli.test_config);
	CHECK_EQ_INT(cli.port, 0);
	char *a3[] = {"midge", "-h", NULL};
	CHECK_EQ_INT(mg_cli_parse(2, a3, &cli, err, sizeof err), 1);
	char *a4[] = {"midge", "--help", NULL};
	CHECK_EQ_INT(mg_cli_parse(2, a4, &cli, err, sizeof err), 1);
	char *a5[] = {"midge", NULL};
	CHECK_EQ_INT(mg_cli_parse(1, a5, &cli, err, sizeof err), 0);
	CHECK(cli.config_file == NULL && cli.port == -1 && !cli.verbose);

	static const struct { int argc; char *argv[4]; const char *err; } bad[] = {
		{2, {"midge", "-p"}, "Error: -p argument given, but no port specified."},
		{3, {"midge", "-p", "65536"}, "Error: Invalid port specified (65536): expected 0 to 65535."},
		{3, {"midge", "-p", "12x"}, "Error: Invalid port specified (12x): expected 0 to 65535."},
		{3, {"midge", "-p", ""}, "Error: Invalid port specified (): expected 0 to 65535."},
		{3, {"midge", "-p", "-1"}, "Error: Invalid port specified (-1): expected 0 to 65535."},
		{2, {"midge", "-c"}, "Error: -c argument given, but no config file specified."},
		{2, {"midge", "-x"}, "Error: Unknown option '-x'."},
		{2, {"midge", "mos.conf"}, "Error: Unknown option 'mos.conf'."},
		{2, {"midge", "--test-config"}, "Error: --test-config needs a config file (-c FILE)."},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *argv[4];
		memcpy(argv, bad[i].argv, sizeof argv);
		CHECK_EQ_INT(mg_cli_parse(bad[i].argc, argv, &cli, err, sizeof err), -1);
		CHECK_STR(err, bad[i].err);
	}
	const char *u = mg_usage();
	CHECK(strncmp(u, "midge version ", 14) == 0);
	CHECK(strstr(u, "Usage: midge [-c config_file] [-d] [-h] [-p port] [-v]") != NULL);
	CHECK(strstr(u, " -v : verbose mode") != NULL);
}

TEST(cli_p_and_v_on_top_of_file)
{
	mg_config c;
	mg_cli cli;
	char err[ERRLEN] = "";
	char *argv[] = {"midge", "-c", "x", "-p", "2883", "-v", NULL};
	REQUIRE(mg_cli_parse(6, argv, &cli, err, sizeof err) == 0);
	REQUIRE(parse(&c, "listener 1883\nlistener 1884 127.0.0.1\nlog_type error\nlog_dest stdout\n", err) == 0);
	mg_config_apply_cli(&c, &cli);
	REQUIRE(c.n_listeners == 2);
	CHECK_EQ_INT(c.listeners[0].port, 2883); /* the first listener's port replaced */
	CHECK_EQ_INT(c.listeners[1].port, 1884);
	CHECK(!mg_config_local_only(&c));
	CHECK_EQ_INT(c.log_types, MG_LOG_ALL);       /* -v: every type */
	CHECK_EQ_INT(c.log_dests, MG_LOGD_STDOUT);   /* destinations as the file says */
	CHECK(c.verbose);
	mg_config_free(&c);

	/* -v alone keeps mosquitto's default destination, stderr */
	char *argv2[] = {"midge", "-v", NULL};
	REQUIRE(mg_cli_parse(2, argv2, &cli, err, sizeof err) == 0);
	REQUIRE(parse(&c, "listener 1883\n", err) == 0);
	mg_config_apply_cli(&c, &cli);
	CHECK_EQ_INT(c.log_types, MG_LOG_ALL);
	CHECK_EQ_INT(c.log_dests, MG_LOGD_STDERR);
	CHECK_EQ_INT(c.listeners[0].port, 1883);
	mg_config_free(&c);

	/* -p with the old-style default listener changes that one */
	char *argv3[] = {"midge", "-p", "0", NULL};
	REQUIRE(mg_cli_parse(3, argv3, &cli, err, sizeof err) == 0);
	REQUIRE(parse(&c, "listener 1885\nport 1884\n", err) == 0);
	mg_config_apply_cli(&c, &cli);
	REQUIRE(c.n_listeners == 2);
	CHECK_EQ_INT(c.listeners[0].port, 0);
	CHECK_EQ_INT(c.listeners[1].port, 1885);
	mg_config_free(&c);
}

TEST(include_dir_order_and_errors)
{
	make_tmpdir();
	char dir[128];
	snprintf(dir, sizeof dir, "%s/conf.d", tmpdir);
	REQUIRE(mkdir(dir, 0755) == 0);
	/* mosquitto.conf(5)'s example: 00, 01, A, a, B, b */
	static const char *names[] = {"b.conf", "A.conf", "01.conf", "a.conf", "B.conf", "00.conf"};
	static const int ports[] = {1006, 1003, 1002, 1004, 1005, 1001};
	for (int i = 0; i < 6; i++) {
		char name[64], text[64];
		snprintf(name, sizeof name, "conf.d/%s", names[i]);
		snprintf(text, sizeof text, "listener %d\n", ports[i]);
		write_file(name, text);
	}
	write_file("conf.d/notes.txt", "this is not a config file\n");
	write_file("conf.d/x.conf.bak", "nor this\n");
	char sub[160];
	snprintf(sub, sizeof sub, "%s/sub.conf", dir); /* a directory named like a config file */
	REQUIRE(mkdir(sub, 0755) == 0);
	char main_text[256];
	snprintf(main_text, sizeof main_text, "listener 1000\ninclude_dir %s # trailing comment\nmax_keepalive 99\n", dir);
	char path[256]; /* write_file's buffer is reused: keep a copy */
	snprintf(path, sizeof path, "%s", write_file("main.conf", main_text));
	mg_config c;
	char err[ERRLEN] = "";
	mg_config_init(&c);
	REQUIRE(mg_config_load(&c, path, err, sizeof err) == 0);
	REQUIRE(c.n_listeners == 7);
	for (int i = 0; i < 7; i++)
		CHECK_EQ_INT(c.listeners[i].port, 1000 + i);
	CHECK_EQ_INT(c.max_keepalive, 99);
	/* a listener remembers the file it came from */
	char want[640];
	snprintf(want, sizeof want, "%s/00.conf", dir);
	CHECK_STR(c.listeners[1].file, want);
	CHECK_EQ_INT(c.listeners[1].line, 1);
	mg_config_free(&c);

	/* an error in an included file names that file and line */
	write_file("conf.d/C.conf", "\n\nmax_keepalive lots\n");
	mg_config_init(&c);
	CHECK(mg_config_load(&c, path, err, sizeof err) == -1);
	snprintf(want, sizeof want, "Error: %s/C.conf:3: invalid value 'lots' for 'max_keepalive' (expected a whole number).", dir);
	CHECK_STR(err, want);
	mg_config_free(&c);

	/* include_dir only from the main file */
	write_file("conf.d/C.conf", "include_dir /tmp\n");
	mg_config_init(&c);
	CHECK(mg_config_load(&c, path, err, sizeof err) == -1);
	snprintf(want, sizeof want, "Error: %s/C.conf:1: 'include_dir' is only allowed in the main configuration file.", dir);
	CHECK_STR(err, want);
	mg_config_free(&c);

	/* the directory must not hold the main file */
	snprintf(main_text, sizeof main_text, "include_dir %s\n", tmpdir);
	write_file("main.conf", main_text);
	mg_config_init(&c);
	CHECK(mg_config_load(&c, path, err, sizeof err) == -1);
	snprintf(want, sizeof want, "Error: %s:1: include_dir '%s' holds the main configuration file itself.", path, tmpdir);
	CHECK_STR(err, want);
	mg_config_free(&c);

	/* a directory that is not there */
	write_file("main.conf", "include_dir /nonexistent/conf.d\n");
	mg_config_init(&c);
	CHECK(mg_config_load(&c, path, err, sizeof err) == -1);
	snprintf(want, sizeof want, "Error: %s:1: cannot open include_dir '/nonexistent/conf.d': No such file or directory.", path);
	CHECK_STR(err, want);
	mg_config_free(&c);
	rm_tmpdir();
}

TEST(reload_updates_reloadable_fields_only)
{
	make_tmpdir();
	const char *p = write_file("r.conf", "listener 1883\nmax_inflight_messages 5\nlog_type error\n");
	char path[256];
	snprintf(path, sizeof path, "%s", p);
	mg_config c;
	mg_cli cli = {.port = -1};
	char err[ERRLEN] = "";
	mg_config_init(&c);
	REQUIRE(mg_config_load(&c, path, err, sizeof err) == 0);
	mg_config_apply_cli(&c, &cli);
	CHECK(!c.allow_anonymous);
	CHECK_EQ_INT(c.max_inflight_messages, 5);

	write_file("r.conf", "listener 1883\nlistener 1999\nallow_anonymous true\nmax_inflight_messages 7\n"
			"max_queued_messages 9\nauto_id_prefix new-\nlog_type all\nlog_dest stdout\n"
			"sys_interval 3\nthreads 3\nuser someone\npersistent_client_expiration 1h\n");
	capture_log();
	REQUIRE(mg_config_reload(&c, err, sizeof err) == 0);
	const char *logbuf = captured();
	char wantlog[400];
	snprintf(wantlog, sizeof wantlog, "Warning: %s: changes to listeners, threads, user take effect "
			"only after a restart.\n", path);
	CHECK_STR(logbuf, wantlog);
	CHECK(c.allow_anonymous);
	CHECK_EQ_INT(c.max_inflight_messages, 7);
	CHECK_EQ_INT(c.max_queued_messages, 9);
	CHECK_STR(c.auto_id_prefix, "new-");
	CHECK_EQ_INT(c.log_types, MG_LOG_ALL);
	CHECK_EQ_INT(c.log_dests, MG_LOGD_STDOUT);
	CHECK_EQ_INT(c.sys_interval, 3);
	CHECK_EQ_INT(c.persistent_client_expiration, 3600);
	/* not reloaded: listeners, threads, user */
	CHECK_EQ_INT(c.n_listeners, 1);
	CHECK_EQ_INT(c.threads, 0);
	CHECK(c.user == NULL);
	CHECK_STR(c.config_path, path);

	/* a broken file: error, and nothing changes */
	write_file("r.conf", "listener 1883\nmax_inflight_messages 8\nmax_queued_messages x\n");
	CHECK(mg_config_reload(&c, err, sizeof err) == -1);
	CHECK(strstr(err, "r.conf:3: invalid value 'x' for 'max_queued_messages'") != NULL);
	CHECK_EQ_INT(c.max_inflight_messages, 7);

	/* allow_anonymous dropped from the file: back to the default (false, listeners exist) */
	write_file("r.conf", "listener 1883\n");
	REQUIRE(mg_config_reload(&c, err, sizeof err) == 0);
	CHECK(!c.allow_anonymous);
	CHECK_EQ_INT(c.max_inflight_messages, 20);
	mg_config_free(&c);

	/* -v survives a reload: log_types stay "all"; -p's port is still the first listener's */
	char *argv[] = {"midge", "-v", "-p", "2000", NULL};
	REQUIRE(mg_cli_parse(4, argv, &cli, err, sizeof err) == 0);
	write_file("r.conf", "listener 1883\nlog_type error\n");
	mg_config_init(&c);
	REQUIRE(mg_config_load(&c, path, err, sizeof err) == 0);
	mg_config_apply_cli(&c, &cli);
	REQUIRE(c.n_listeners == 1);
	CHECK_EQ_INT(c.listeners[0].port, 2000);
	capture_log();
	REQUIRE(mg_config_reload(&c, err, sizeof err) == 0);
	CHECK_STR(captured(), ""); /* no "listeners changed" warning */
	CHECK_EQ_INT(c.log_types, MG_LOG_ALL);
	CHECK_EQ_INT(c.listeners[0].port, 2000);
	mg_config_free(&c);

	/* without a config file, reload has nothing to do */
	mg_config_init(&c);
	mg_config_apply_cli(&c, &cli);
	CHECK_EQ_INT(mg_config_reload(&c, err, sizeof err), 0);
	mg_config_free(&c);
	rm_tmpdir();
}
