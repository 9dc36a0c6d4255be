/*
 * broker/log.c - the broker's log lines: mosquitto's types, destinations and timestamp.
 *
 * Several event-loop threads log at once. A line is formatted outside the lock (on the
 * stack, or the heap when it is long), then written under one mutex with one write(2) per
 * destination, so lines never interleave and a SIGHUP reopen never races a write. stdout
 * and stderr are written with write(2), not stdio, so a pipe sees each line at once (a test
 * reading the broker's output waits for nothing).
 * mg_log_enabled is a relaxed atomic load: the hot path pays one load and a test when the
 * type is off.
 */
#include "broker/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define PRE_OPEN_TYPES (MG_LOG_ERR | MG_LOG_WARNING | MG_LOG_NOTICE | MG_LOG_INFO)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned types = PRE_OPEN_TYPES; /* atomic: read without the lock */
/* Everything below is read and written under `lock`. */
static unsigned dests = MG_LOGD_STDERR;
static bool stamp = true;
static char *stamp_format;
static char *file_path;
static int file_fd = -1;
static bool syslog_open;

bool mg_log_enabled(unsigned type)
{
	return (__atomic_load_n(&types, __ATOMIC_RELAXED) & type) != 0;
}

static int open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		char msg[512];
		int n = snprintf(msg, sizeof msg, "Error: Unable to open log file %s for writing: %s.\n",
				path, strerror(errno));
		if (n > 0)
			(void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
	}
	return fd;
}

static void reset_locked(void)
{
	if (file_fd >= 0)
		close(file_fd);
	file_fd = -1;
	if (syslog_open)
		closelog();
	syslog_open = false;
	free(file_path);
	file_path = NULL;
	free(stamp_format);
	stamp_format = NULL;
}

int mg_log_open(const mg_config *c)
{
	int rc = 0;
	char *fmt = c->log_timestamp_format ? strdup(c->log_timestamp_format) : NULL;
	char *path = (c->log_dests & MG_LOGD_FILE) && c->log_file ? strdup(c->log_file) : NULL;
	/* Open the new file before taking the lock: a slow disk must not stall other threads. */
	int fd = path ? open_file(path) : -1;
	if (path && fd < 0)
		rc = -1;

	pthread_mutex_lock(&lock);
	reset_locked();
	stamp_format = fmt;
	file_path = path;
	file_fd = fd;
	stamp = c->log_timestamp;
	dests = c->log_dests;
	if (dests & MG_LOGD_SYSLOG) {
		int facility = c->log_facility >= 0 && c->log_facility <= 7 ? LOG_LOCAL0 + (c->log_facility << 3) : LOG_DAEMON;
		openlog("midge", LOG_PID | LOG_NDELAY, facility);
		syslog_open = true;
	}
	__atomic_store_n(&types, c->log_types, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&lock);
	return rc;
}

void mg_log_close(void)
{
	pthread_mutex_lock(&lock);
	reset_locked();
	dests = MG_LOGD_STDERR;
	stamp = true;
	__atomic_store_n(&types, PRE_OPEN_TYPES, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&lock);
}

int mg_log_reopen(void)
{
	int rc = 0;
	pthread_mutex_lock(&lock);
	if (file_path) {
		/* logrotate moved the file away: write to a new one under the same name. */
		int fd = open_file(file_path);
		if (fd >= 0) {
			if (file_fd >= 0)
				close(file_fd);
			file_fd = fd;
		} else {
			rc = -1; /* keep writing to the old file rather than lose lines */
		}
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere to report a failing log: drop the line */
		}
		p += w;
		n -= (size_t)w;
	}
}

static int syslog_priority(unsigned type)
{
	switch (type) {
	case MG_LOG_ERR: return LOG_ERR;
	case MG_LOG_WARNING: return LOG_WARNING;
	case MG_LOG_NOTICE: return LOG_NOTICE;
	case MG_LOG_INFO: return LOG_INFO;
	default: return LOG_DEBUG;
	}
}

/* Writes "<stamp>: " into buf (size >= 64); returns its length. */
static size_t format_stamp(char *buf, size_t size, const char *fmt)
{
	time_t now = time(NULL);
	if (fmt) {
		struct tm tm;
		size_t n = 0;
		if (localtime_r(&now, &tm))
			n = strftime(buf, size - 2, fmt, &tm);
		if (n > 0) {
			buf[n++] = ':';
			buf[n++] = ' ';
			return n;
		}
		/* an empty or too long strftime result: fall back to seconds */
	}
	int n = snprintf(buf, size, "%lld: ", (long long)now);
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

void mg_log(unsigned type, const char *fmt, ...)
{
	if (!mg_log_enabled(type))
		return;
	char small[1024];
	char *msg = small;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof small) {
		msg = malloc((size_t)n + 1);
		if (!msg) {
			msg = small; /* out of memory: log the truncated line */
			n = (int)sizeof small - 1;
		} else {
			va_start(ap, fmt);
			vsnprintf(msg, (size_t)n + 1, fmt, ap);
			va_end(ap);
		}
	}

	pthread_mutex_lock(&lock);
	unsigned d = dests;
	if (d & (MG_LOGD_STDOUT | MG_LOGD_STDERR | MG_LOGD_FILE)) {
		char pre[128];
		size_t pl = stamp ? format_stamp(pre, sizeof pre, stamp_format) : 0;
		/* one buffer, one write: the line stays whole even on a shared pipe */
		size_t len = pl + (size_t)n + 1;
		char lstack[1280];
		char *line = len <= sizeof lstack ? lstack : malloc(len);
		if (line) {
			memcpy(line, pre, pl);
			memcpy(line + pl, msg, (size_t)n);
			line[len - 1] = '\n';
			if (d & MG_LOGD_STDOUT)
				write_all(1, line, len);
			if (d & MG_LOGD_STDERR)
				write_all(2, line, len);
			if ((d & MG_LOGD_FILE) && file_fd >= 0)
				write_all(file_fd, line, len);
			if (line != lstack)
				free(line);
		}
	}
	if ((d & MG_LOGD_SYSLOG) && syslog_open)
		syslog(syslog_priority(type), "%s", msg);
	pthread_mutex_unlock(&lock);
	if (msg != small)
		free(msg);
}
