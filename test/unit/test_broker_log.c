/*
 * test/unit/test_broker_log.c - log lines: prefix, types, destinations, reopen, whole lines from
 * many threads at once.
 */
#include "t.h"

#include <fcntl.h>
#include <stdio.h>
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

/* `log_dest none`: no type is enabled, so callers neither format nor queue lines that would
 * go nowhere (queuing them walked the log queue into the broker's memory); a reopen with a
 * destination (SIGHUP) turns the configured types back on. */
TEST(no_destination_enables_nothing)
{
	mg_config c;
	mg_config_init(&c);
	c.log_types = MG_LOG_ERR | MG_LOG_WARNING | MG_LOG_NOTICE | MG_LOG_INFO | MG_LOG_DEBUG;
	c.log_dests = 0;
	REQUIRE(mg_log_open(&c) == 0);
	CHECK(!mg_log_enabled(MG_LOG_ERR));
	CHECK(!mg_log_enabled(MG_LOG_INFO));
	CHECK(!mg_log_enabled(MG_LOG_DEBUG));
	int se = redirect(2);
	c.log_dests = MG_LOGD_STDERR;
	c.log_timestamp = false;
	REQUIRE(mg_log_open(&c) == 0);
	CHECK(mg_log_enabled(MG_LOG_ERR));
	CHECK(mg_log_enabled(MG_LOG_DEBUG));
	mg_log(MG_LOG_DEBUG, "back on");
	mg_log_close();
	mg_config_free(&c);
	restore(2, se);
	CHECK_STR(slurp(path), "back on\n");
	unlink(path);
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

TEST(long_line_capped_at_999_bytes_like_mosquitto)
{
	tmpfile_path();
	REQUIRE(open_file_log(MG_LOG_ALL, true, NULL) == 0);
	static char big[70000]; /* a 64 KiB topic in a -v line */
	memset(big, 'x', sizeof big - 1);
	mg_log(MG_LOG_INFO, "%s|end", big);
	mg_log(MG_LOG_INFO, "next");
	mg_log_close();
	const char *s = slurp(path);
	const char *nl = strchr(s, '\n');
	REQUIRE(nl != NULL);
	CHECK_EQ_INT(nl - s, 999);
	CHECK(matches(s, "^[0-9]{10}: x+\n[0-9]{10}: next\n$"));
	unlink(path);
}

TEST(cap_never_cuts_a_character)
{
	tmpfile_path();
	REQUIRE(open_file_log(MG_LOG_ALL, false, NULL) == 0);
	static char big[3001];
	for (int i = 0; i < 3000; i += 3)
		memcpy(big + i, "\xe2\x82\xac", 3); /* U+20AC, 3 bytes: 999 is a whole number of them */
	mg_log(MG_LOG_INFO, "a%s", big);       /* 1 + 332 * 3 = 997 bytes fit, the 333rd does not */
	mg_log_close();
	const char *s = slurp(path);
	CHECK_EQ_INT(strlen(s), 998);
	CHECK(s[0] == 'a' && s[996] == '\xac' && s[997] == '\n');
	unlink(path);
}

TEST(clip)
{
	CHECK_EQ_INT(mg_log_clip("abc", 3, 5), 3);
	CHECK_EQ_INT(mg_log_clip("abcdef", 6, 3), 3);
	CHECK_EQ_INT(mg_log_clip("ab\xc3\xa9z", 5, 3), 2); /* would end inside e-acute */
	CHECK_EQ_INT(mg_log_clip("ab\xc3\xa9z", 5, 4), 4);
	CHECK_EQ_INT(mg_log_clip("\xf0\x9f\x98\x80", 4, 3), 0);
}

/* stderr becomes a pipe; returns the read end, *saved the old stderr. */
static int stderr_pipe(int *saved)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	*saved = dup(2);
	dup2(p[1], 2);
	close(p[1]);
	return p[0];
}

static int open_stderr_log(void)
{
	mg_config c;
	mg_config_init(&c);
	c.log_types = MG_LOG_ALL;
	c.log_dests = MG_LOGD_STDERR;
	c.log_timestamp = false;
	int rc = mg_log_open(&c);
	mg_config_free(&c);
	return rc;
}

typedef struct {
	int fd;
	char *buf;
	size_t len, cap;
} sink;

static void *drain(void *arg)
{
	sink *k = arg;
	for (;;) {
		if (k->cap - k->len < 65536) {
			k->cap = k->cap ? k->cap * 2 : 1 << 20;
			k->buf = realloc(k->buf, k->cap);
		}
		ssize_t n = read(k->fd, k->buf + k->len, k->cap - k->len - 1);
		if (n <= 0)
			break;
		k->len += (size_t)n;
	}
	k->buf[k->len] = '\0';
	return NULL;
}

#define STUCK_LINES 4000 /* 4000 lines of ~310 bytes: twice the queue and the pipe together */

static const char pad[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/* The issue-8 freeze: stderr is a pipe nobody reads. Logging must return (before, the
   4,000 lines blocked after the pipe's 64 KiB and the test hit its time limit); what did
   not fit is counted, and once the pipe is read the count arrives after the lines that
   made it, with nothing out of order. */
TEST(stuck_stderr_never_blocks_and_drops_are_counted)
{
	int saved;
	int rfd = stderr_pipe(&saved);
	REQUIRE(rfd >= 0);
	REQUIRE(open_stderr_log() == 0);
	for (int i = 0; i < STUCK_LINES; i++)
		mg_log(MG_LOG_DEBUG, "line %05d %s", i, pad);
	/* now read: output resumes */
	sink k = { .fd = rfd };
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, drain, &k) == 0);
	mg_log_close();
	dup2(saved, 2); /* closes the last write end: the reader sees EOF */
	close(saved);
	pthread_join(th, NULL);
	close(rfd);

	int got = 0, next = 0, reports = 0, bad = 0;
	unsigned long long lost = 0;
	for (char *p = k.buf; *p;) {
		char *nl = strchr(p, '\n');
		REQUIRE(nl != NULL);
		*nl = '\0';
		int id;
		unsigned long long n;
		if (strlen(p) > 999)
			bad++;
		else if (sscanf(p, "line %05d ", &id) == 1 && strlen(p) == 11 + sizeof pad - 1 && id >= next) {
			got++;
			next = id + 1;
		} else if (sscanf(p, "Warning: %llu log lines were dropped", &n) == 1) {
			reports++;
			lost += n;
		} else {
			bad++;
		}
		p = nl + 1;
	}
	free(k.buf);
	CHECK_EQ_INT(bad, 0);
	CHECK(got > 0);
	CHECK(reports >= 1); /* one per episode of loss */
	CHECK_EQ_INT(got + (long long)lost, STUCK_LINES);
}

/* SIGTERM with stderr stuck: closing the log gives up waiting (bounded) instead of keeping
   the process alive, and lines after it still do not block. */
TEST(close_returns_when_stderr_stays_stuck)
{
	int saved;
	int rfd = stderr_pipe(&saved);
	REQUIRE(rfd >= 0);
	REQUIRE(open_stderr_log() == 0);
	for (int i = 0; i < STUCK_LINES; i++)
		mg_log(MG_LOG_DEBUG, "line %05d %s", i, pad);
	mg_log_close();
	for (int i = 0; i < STUCK_LINES; i++)
		mg_log(MG_LOG_ERR, "after close %05d %s", i, pad);
	/* Reaching here is most of the test: before, the first loop never ended. What the pipe
	   took are whole lines from the start, in order. */
	(void)saved; /* never restored: the process ends with the log thread blocked in write */
	static char buf[4096];
	REQUIRE(read(rfd, buf, sizeof buf - 1) > 0);
	CHECK(strncmp(buf, "line 00000 x", 12) == 0);
	CHECK(strncmp(buf + 11 + sizeof pad, "line 00001 x", 12) == 0);
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

/* Lines from several threads arrive whole and each thread's in its own order. The queue is
 * bounded (512 KiB), so a burst larger than the log thread can drain may drop lines: those are
 * counted in "Warning: N log lines were dropped" lines, and kept + dropped must be all of them. */
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
	int next[THREADS] = {0}, kept = 0, bad = 0;
	long long dropped = 0;
	regex_t r, w;
	REQUIRE(regcomp(&r, "^[0-9]+: thread ([0-9]) line ([0-9]{4}) abcdefghijklmnopqrstuvwxyz"
			"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz$", REG_EXTENDED) == 0);
	REQUIRE(regcomp(&w, "^[0-9]+: Warning: ([0-9]+) log lines were dropped", REG_EXTENDED) == 0);
	for (const char *p = s; *p;) {
		const char *nl = strchr(p, '\n');
		REQUIRE(nl != NULL);
		char line[256];
		size_t n = (size_t)(nl - p);
		regmatch_t m[3];
		if (n >= sizeof line) {
			bad++;
		} else {
			memcpy(line, p, n);
			line[n] = '\0';
			if (regexec(&r, line, 3, m, 0) == 0) {
				int id = line[m[1].rm_so] - '0';
				int no = atoi(line + m[2].rm_so);
				/* a thread's lines never go backwards or repeat; gaps are drops */
				if (id < THREADS && no >= next[id])
					next[id] = no + 1, kept++;
				else
					bad++;
			} else if (regexec(&w, line, 2, m, 0) == 0) {
				dropped += atoll(line + m[1].rm_so);
			} else {
				bad++;
			}
		}
		p = nl + 1;
	}
	regfree(&r);
	regfree(&w);
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(kept + dropped, THREADS * LINES);
	CHECK(kept > 0);
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
