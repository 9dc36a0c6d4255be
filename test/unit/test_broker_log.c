/*
 * test/unit/test_broker_log.c - log lines: prefix, types, destinations, reopen, whole lines from
 * many threads at once.
 */
#include "t.h"

#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "broker/config.h"
#include "broker/log.h"

static char path[64];

static void tmpfile_path(void)
{
	strcpy(path, "/tmp/midge-test-log-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		t_fail(__FILE__, __LINE__, "mkstemp failed");
	else
		close(fd);
}

/* Read a whole file into a static buffer. */
static const char *slurp(const char *p)
{
	static char buf[1 << 20];
	FILE *f = fopen(p, "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
	return buf;
}

/* Open the log on a file with the given settings. */
static int open_file_log(unsigned types, bool stamp, const char *fmt)
{
	mg_config c;
	mg_config_init(&c);
	c.log_types = types;
	c.log_dests = MG_LOGD_FILE;
	c.log_file = strdup(path);
	c.log_timestamp = stamp;
	c.log_timestamp_format = fmt ? strdup(fmt) : NULL;
	int rc = mg_log_open(&c);
	mg_config_free(&c); /* the log keeps its own copies */
	return rc;
}

static bool matches(const char *text, const char *re)
{
	regex_t r;
	if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE) != 0)
		return false;
	bool ok = regexec(&r, text, 0, NULL, 0) == 0;
	regfree(&r);
	return ok;
}

TEST(unix_seconds_prefix_like_mosquitto)
{
	tmpfile_path();
	REQUIRE(open_file_log(MG_LOG_ALL, true, NULL) == 0);
	time_t before = time(NULL);
	mg_log(MG_LOG_NOTICE, "mosquitto version %s starting", "2.0.11");
	time_t after = time(NULL);
	mg_log_close();
	const char *s = slurp(path);
	CHECK(matches(s, "^[0-9]{10}: mosquitto version 2\\.0\\.11 starting\n$"));
	long long t = atoll(s);
	CHECK(t >= before && t <= after);
	unlink(path);
}

TEST(strftime_prefix_and_no_prefix)
{
	tmpfile_path();
	REQUIRE(open_file_log(MG_LOG_ALL, true, "%Y-%m-%dT%H:%M:%S") == 0);
	mg_log(MG_LOG_INFO, "hello");
	mg_log_close();
	CHECK(matches(slurp(path), "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}: hello\n$"));
	unlink(path);

	tmpfile_path();
	REQUIRE(open_file_log(MG_LOG_ALL, false, NULL) == 0);
	mg_log(MG_LOG_INFO, "plain %d", 42);
	mg_log_close();
	CHECK_STR(slurp(path), "plain 42\n");
	unlink(path);

	/* a format that strftime makes empty falls back to seconds rather than ": msg" */
	tmpfile_path();
	REQUIRE(open_file_log(MG_LOG_ALL, true, "%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p%p") == 0);
	mg_log(MG_LOG_INFO, "x");
	mg_log_close();
	CHECK(matches(slurp(path), "^[0-9]{10}: x\n$"));
	unlink(path);
}

TEST(types_filter)
{
	tmpfile_path();
	REQUIRE(open_file_log(MG_LOG_ERR | MG_LOG_SUBSCRIBE, false, NULL) == 0);
	CHECK(mg_log_enabled(MG_LOG_ERR));
	CHECK(mg_log_enabled(MG_LOG_SUBSCRIBE));
	CHECK(!mg_log_enabled(MG_LOG_DEBUG));
	CHECK(!mg_log_enabled(MG_LOG_INFO));
	mg_log(MG_LOG_DEBUG, "debug line");
	mg_log(MG_LOG_ERR, "error line");
	mg_log(MG_LOG_INFO, "info line");
	mg_log(MG_LOG_SUBSCRIBE, "sub line");
	mg_log_close();
	CHECK_STR(slurp(path), "error line\nsub line\n");
	unlink(path);
	/* after close: back to the startup set */
	CHECK(mg_log_enabled(MG_LOG_ERR) && mg_log_enabled(MG_LOG_INFO) && !mg_log_enabled(MG_LOG_DEBUG));
}

/* Point fd at a fresh temp file; returns the saved original. */
static int redirect(int fd)
{
	tmpfile_path();
	int saved = dup(fd);
	int f = open(path, O_WRONLY | O_TRUNC);
	dup2(f, fd);
	close(f);
	return saved;
}

static void restore(int fd, int saved)
{
	dup2(saved, fd);
	close(saved);
}

TEST(before_open_errors_go_to_stderr)
{
	int saved = redirect(2);
	mg_log(MG_LOG_ERR, "Error: t.conf:3: unknown keyword 'listner'.");
	mg_log(MG_LOG_DEBUG, "not shown before open");
	restore(2, saved);
	CHECK(matches(slurp(path), "^[0-9]+: Error: t\\.conf:3: unknown keyword 'listner'\\.\n$"));
	unlink(path);
}

TEST(stdout_and_stderr_destinations)
{
	int so = redirect(1);
	char out_path[64];
	strcpy(out_path, path);
	int se = redirect(2);
	mg_config c;
	mg_config_init(&c);
	c.log_dests = MG_LOGD_STDOUT;
	c.log_timestamp = false;
	REQUIRE(mg_log_open(&c) == 0);
	mg_log(MG_LOG_NOTICE, "to stdout");
	c.log_dests = MG_LOGD_STDERR | MG_LOGD_STDOUT;
	REQUIRE(mg_log_open(&c) == 0); /* opening again applies new settings (SIGHUP) */
	mg_log(MG_LOG_NOTICE, "to both");
	c.log_dests = 0; /* log_dest none */
	REQUIRE(mg_log_open(&c) == 0);
	mg_log(MG_LOG_ERR, "to nowhere");
	mg_log_close();
	mg_config_free(&c);
	restore(2, se);
	restore(1, so);
	CHECK_STR(slurp(out_path), "to stdout\nto both\n");
	CHECK_STR(slurp(path), "to both\n");
	unlink(path);
	unlink(out_path);
}

TEST(file_that_cannot_be_opened)
{
	int se = redirect(2);
	mg_config c;
	mg_config_init(&c);
	c.log_dests = MG_LOGD_FILE | MG_LOGD_STDERR;
	c.log_file = strdup("/nonexistent/dir/midge.log");
	c.log_timestamp = false;
	CHECK_EQ_INT(mg_log_open(&c), -1);
	mg_log(MG_LOG_NOTICE, "still on stderr");
	mg_log_close();
	mg_config_free(&c);
	restore(2, se);
	CHECK_STR(slurp(path), "Error: Unable to open log file /nonexistent/dir/midge.log for writing: "
			"No such file or directory.\nstill on stderr\n");
	unlink(path);
}

TEST(reopen_after_rotation)
{
	tmpfile_path();
	REQUIRE(open_file_log(MG_LOG_ALL, false, NULL) == 0);
	mg_log(MG_LOG_INFO, "before");
	char rotated[80];
	snprintf(rotated, sizeof rotated, "%s.1", path);
	REQUIRE(rename(path, rotated) == 0);
	mg_log(MG_LOG_INFO, "still old"); /* until SIGHUP the old file gets the lines */
	CHECK_EQ_INT(mg_log_reopen(), 0);
	mg_log(MG_LOG_INFO, "after");
	mg_log_close();
	CHECK_STR(slurp(rotated), "before\nstill old\n");
	CHECK_STR(slurp(path), "after\n");
	unlink(path);
	unlink(rotated);
	CHECK_EQ_INT(mg_log_reopen(), 0); /* no file configured: nothing to do */
}

TEST(long_line_is_whole)
{
	tmpfile_path();
	REQUIRE(open_file_log(MG_LOG_ALL, true, NULL) == 0);
	static char big[5000];
	memset(big, 'x', sizeof big - 1);
	mg_log(MG_LOG_INFO, "%s|end", big);
	mg_log_close();
	const char *s = slurp(path);
	const char *colon = strstr(s, ": ");
	REQUIRE(colon != NULL);
	CHECK_EQ_INT(strlen(colon + 2), sizeof big - 1 + 5);
	CHECK(strncmp(colon + 2 + sizeof big - 1, "|end\n", 5) == 0);
	unlink(path);
}

#define THREADS 4
#define LINES 2000

static void *writer(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (int i = 0; i < LINES; i++)
		mg_log(MG_LOG_INFO, "thread %d line %04d %s", id, i,
				"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
	return NULL;
}

TEST(threads_never_interleave)
{
	tmpfile_path();
	REQUIRE(open_file_log(MG_LOG_ALL, true, NULL) == 0);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		REQUIRE(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i) == 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	mg_log_close();
	const char *s = slurp(path);
	int count[THREADS] = {0}, lines = 0, bad = 0;
	regex_t r;
	REQUIRE(regcomp(&r, "^[0-9]+: thread ([0-9]) line ([0-9]{4}) abcdefghijklmnopqrstuvwxyz"
			"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz$", REG_EXTENDED) == 0);
	for (const char *p = s; *p;) {
		const char *nl = strchr(p, '\n');
		REQUIRE(nl != NULL);
		char line[256];
		size_t n = (size_t)(nl - p);
		if (n >= sizeof line) {
			bad++;
		} else {
			memcpy(line, p, n);
			line[n] = '\0';
			regmatch_t m[3];
			if (regexec(&r, line, 3, m, 0) == 0) {
				int id = line[m[1].rm_so] - '0';
				/* each thread's lines arrive in its own order */
				if (id < THREADS && atoi(line + m[2].rm_so) == count[id])
					count[id]++;
				else
					bad++;
			} else {
				bad++;
			}
		}
		lines++;
		p = nl + 1;
	}
	regfree(&r);
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(lines, THREADS * LINES);
	for (int i = 0; i < THREADS; i++)
		CHECK_EQ_INT(count[i], LINES);
	unlink(path);
}

TEST(local_only_lines)
{
	tmpfile_path();
	REQUIRE(open_file_log(MG_LOG_ALL, false, NULL) == 0);
	mg_config c;
	mg_config_init(&c);
	mg_config_log_local_only(&c); /* no listener: local only */
	mg_config_free(&c);
	mg_config_init(&c);
	char err[128];
	REQUIRE(mg_config_parse_buffer(&c, "t.conf", "listener 1883\n", 14, err, sizeof err) == 0);
	mg_config_finish(&c);
	mg_config_log_local_only(&c); /* a listener: nothing */
	mg_config_free(&c);
	mg_log_close();
	CHECK_STR(slurp(path), "Starting in local only mode. Connections will only be possible from clients "
			"running on this machine.\nCreate a configuration file which defines a listener, e.g. "
			"`listener 1883` and `allow_anonymous true`, to allow remote access.\n");
	unlink(path);
}

TEST(syslog_destination_alongside_file)
{
	/* No syslog daemon is needed: syslog(3) drops lines it cannot deliver. What is checked
	   is that syslog does not disturb the other destinations or the prefix. */
	tmpfile_path();
	mg_config c;
	mg_config_init(&c);
	c.log_dests = MG_LOGD_SYSLOG | MG_LOGD_FILE;
	c.log_file = strdup(path);
	c.log_facility = 3;
	c.log_timestamp = false;
	REQUIRE(mg_log_open(&c) == 0);
	mg_log(MG_LOG_WARNING, "to syslog and file");
	c.log_facility = -1;
	REQUIRE(mg_log_open(&c) == 0); /* reopen with the default facility */
	mg_log(MG_LOG_ERR, "again");
	mg_log_close();
	mg_config_free(&c);
	CHECK_STR(slurp(path), "to syslog and file\nagain\n");
	unlink(path);
}
