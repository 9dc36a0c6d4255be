/*
 * test/unit/config_text.h - midge.conf text parsed from a string, for the config unit tests
 * (test_broker_config*.c, test_broker_bridge_topic.c): parse it, expect it to load or to stop
 * with one exact error, and read back the warnings it logged. Include after t.h. The text is
 * reported as file CONFIG_TEXT_FILE ("t.conf" unless the test defines another before this).
 */
#ifndef MG_TEST_CONFIG_TEXT_H
#define MG_TEST_CONFIG_TEXT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/config.h"
#include "broker/log.h"

#ifndef CONFIG_TEXT_FILE
#define CONFIG_TEXT_FILE "t.conf"
#endif
#define ERRLEN 512

/* Parse text; the caller frees c. */
static inline int parse(mg_config *c, const char *text, char *err)
{
	mg_config_init(c);
	return mg_config_parse_buffer(c, CONFIG_TEXT_FILE, text, strlen(text), err, ERRLEN);
}

/* Parse text alone and expect exactly this error message. */
static inline void expect_err(const char *file, int line, const char *text, const char *want)
{
	mg_config c;
	char err[ERRLEN] = "";
	int rc = parse(&c, text, err);
	if (rc != -1)
		t_fail(file, line, "[%s] parsed (rc %d), expected error \"%s\"", text, rc, want);
	else if (strcmp(err, want) != 0)
		t_fail(file, line, "[%s] error \"%s\", expected \"%s\"", text, err, want);
	mg_config_free(&c);
}
#define EXPECT_ERR(text, want) expect_err(__FILE__, __LINE__, text, want)

static inline void expect_ok(const char *file, int line, const char *text)
{
	mg_config c;
	char err[ERRLEN] = "";
	if (parse(&c, text, err) != 0)
		t_fail(file, line, "[%s] failed: %s", text, err);
	mg_config_free(&c);
}
#define EXPECT_OK(text) expect_ok(__FILE__, __LINE__, text)

/* Warnings go through the log: capture_log sends it to a temp file, captured() closes the log
 * and gives what it wrote (and removes the file). */
static char warn_path[64];
static inline void capture_log(void)
{
	strcpy(warn_path, "/tmp/midge-test-log-XXXXXX");
	int fd = mkstemp(warn_path);
	REQUIRE(fd >= 0);
	close(fd);
	mg_config lc;
	mg_config_init(&lc);
	lc.log_dests = MG_LOGD_FILE;
	lc.log_file = strdup(warn_path);
	lc.log_timestamp = false;
	REQUIRE(mg_log_open(&lc) == 0);
	mg_config_free(&lc);
}

static inline char *captured(void)
{
	static char buf[8192];
	/* lines go through the log thread: closing the log writes out what was queued */
	mg_log_close();
	FILE *f = fopen(warn_path, "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
	unlink(warn_path);
	return buf;
}

#endif
