/*
 * broker/log.c - the broker's log lines: mosquitto's types, destinations and timestamp.
 *
 * A slow destination must never stop the broker: with -v and stderr on a pipe that nobody
 * reads (or a terminal paused with Ctrl-S) a worker that wrote its own lines would block, and
 * every other worker behind it on the log lock. So a worker only formats: the line (stamp and
 * message, at most 999 bytes as in mosquitto, cut at a UTF-8 boundary) is copied into a
 * bounded queue (512 KiB) under a mutex held for a memcpy, and one log thread writes the
 * queue out, batching many lines into one write(2) per destination. When the queue is full
 * the line is dropped and counted; the count is logged as a line of its own in the place the
 * first lost line would have been, once output moves again. Cost: a copy per line, and
 * lines that reach a destination late (at most a queue's worth) or not at all.
 *
 * Before mg_log_open (and after mg_log_close) there is no log thread and lines are written
 * at once from the caller, as the config parser needs before anything else runs.
 * mg_log_open, mg_log_reopen and mg_log_close first wait for the queue to drain, bounded
 * (1 s without progress, 5 s in all), so a reopened or closed file gets exactly the lines
 * logged before, and SIGTERM still ends when stderr is stuck: the log thread is then left
 * blocked in write(2) and dies with the process.
 * mg_log_enabled is a relaxed atomic load: the hot path pays one load and a test when the
 * type is off.
 */
#include "broker/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define PRE_OPEN_TYPES (MG_LOG_ERR | MG_LOG_WARNING | MG_LOG_NOTICE | MG_LOG_INFO)

#define LINE_MAX_BYTES 999            /* mosquitto's cap: a line and its '\n' fit in 1,000 */
#define QUEUE_BYTES (512u << 10)      /* what may wait for a slow destination */
#define BATCH_BYTES (64u << 10)       /* what the log thread takes out at once */
#define FLUSH_IDLE_MS 1000            /* give up waiting for a drain without progress ... */
#define FLUSH_TOTAL_MS 5000           /* ... or after this long in all */
#define FD_DESTS (MG_LOGD_STDOUT | MG_LOGD_STDERR | MG_LOGD_FILE)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned types = PRE_OPEN_TYPES; /* atomic: read without the lock */
/* Everything below is read and written under `lock`. */
static unsigned dests = MG_LOGD_STDERR;
static bool stamp = true;
static char *stamp_format;
static char *file_path;
static int file_fd = -1;
static bool syslog_open;

/* The queue: records of a header and the line (stamp and message, no '\n') in a byte ring.
   head and tail count bytes put and taken since the queue was last empty (then both go back
   to 0), so head - tail is what waits. */
typedef struct {
	uint16_t len;     /* bytes of the line */
	uint16_t msg_off; /* where the message starts after the stamp (syslog takes only that) */
	uint16_t type;
	uint16_t dests;   /* the destinations when it was logged: a reload does not reroute it */
} rec_hdr;

static unsigned char ring[QUEUE_BYTES];
static uint64_t head, tail;
static uint64_t n_put, n_done;   /* records queued / written: what a flush waits for */
static unsigned long long dropped; /* lines lost since the last report */
static bool running, stopping;   /* the log thread exists / was asked to end */
static pthread_t thread;
static pthread_cond_t more_cv;   /* the queue became non-empty, or stopping */
static pthread_cond_t done_cv;   /* n_done moved (CLOCK_MONOTONIC) */
static int busy_fd = -1;         /* the file fd the log thread is writing to now */
static bool busy_fd_retired;     /* close busy_fd once that write returns */

bool mg_log_enabled(unsigned type)
{
	return (__atomic_load_n(&types, __ATOMIC_RELAXED) & type) != 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* The log thread may be inside write(2) on the file: closing it now could hand its number
   to the next open() and send the rest of that write into another file. */
static void close_file_locked(int fd)
{
	if (fd < 0)
		return;
	if (fd == busy_fd)
		busy_fd_retired = true;
	else
		close(fd);
}

static void reset_locked(void)
{
	close_file_locked(file_fd);
	file_fd = -1;
	if (syslog_open)
		closelog();
	syslog_open = false;
	free(file_path);
	file_path = NULL;
	free(stamp_format);
	stamp_format = NULL;
}

/* Waits until what was queued before the call is written, bounded: false when output is
   stuck (the lines stay queued, or are lost with the process). */
static bool flush_locked(void)
{
	if (!running)
		return true;
	uint64_t target = n_put, seen = n_done;
	int64_t start = now_ms(), moved = start;
	while (n_done < target) {
		int64_t now = now_ms();
		if (n_done != seen) {
			seen = n_done;
			moved = now;
		}
		if (now - moved >= FLUSH_IDLE_MS || now - start >= FLUSH_TOTAL_MS)
			return false;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&done_cv, &lock, &ts);
	}
	return true;
}

static void *log_main(void *arg);

/* Starts the log thread with every signal blocked: SIGTERM and SIGHUP belong to the main
   thread's sigwait. Without a thread, lines are written by their callers. */
static void start_locked(void)
{
	if (running)
		return;
	static bool cv_ready;
	if (!cv_ready) {
		pthread_condattr_t a;
		pthread_condattr_init(&a);
		pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
		pthread_cond_init(&done_cv, &a);
		pthread_condattr_destroy(&a);
		pthread_cond_init(&more_cv, NULL);
		cv_ready = true;
	}
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	running = pthread_create(&thread, NULL, log_main, NULL) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	stopping = false;
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
	flush_locked(); /* lines logged before go where they were meant to */
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
	/* No destination (`log_dest none`): no type is enabled, so a line is neither formatted
	 * nor queued. Queuing it only to write it nowhere cost CPU per line and walked the
	 * 512 KiB queue into memory, which showed as broker RSS per connection. */
	__atomic_store_n(&types, dests ? c->log_types : 0u, __ATOMIC_RELAXED);
	start_locked();
	pthread_mutex_unlock(&lock);
	return rc;
}

void mg_log_close(void)
{
	pthread_mutex_lock(&lock);
	bool drained = flush_locked();
	reset_locked();
	dests = MG_LOGD_STDERR;
	stamp = true;
	__atomic_store_n(&types, PRE_OPEN_TYPES, __ATOMIC_RELAXED);
	if (running && drained) {
		stopping = true;
		pthread_cond_signal(&more_cv);
		pthread_mutex_unlock(&lock);
		pthread_join(thread, NULL);
		pthread_mutex_lock(&lock);
		running = false;
	}
	/* else the thread is blocked writing to a destination nobody reads: it keeps the
	   queue (later lines go there too) and ends with the process. */
	pthread_mutex_unlock(&lock);
}

int mg_log_reopen(void)
{
	int rc = 0;
	pthread_mutex_lock(&lock);
	if (file_path) {
		flush_locked(); /* the old file gets what was logged before the rotation */
		/* logrotate moved the file away: write to a new one under the same name. */
		int fd = open_file(file_path);
		if (fd >= 0) {
			close_file_locked(file_fd);
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

/* The longest prefix of s[0..n) of at most max bytes that does not end inside a UTF-8
   sequence (a topic cut in the middle of a character would make the line invalid UTF-8). */
size_t mg_log_clip(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	size_t k = max;
	while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
		k--; /* s[k] continues a character: cut before the character's first byte */
	return k;
}

/* line = stamp + msg, at most LINE_MAX_BYTES; *off = where msg starts. */
static size_t compose_locked(char *line, const char *msg, size_t ml, uint16_t *off)
{
	size_t pl = stamp ? format_stamp(line, 128, stamp_format) : 0;
	ml = mg_log_clip(msg, ml, LINE_MAX_BYTES - pl);
	memcpy(line + pl, msg, ml);
	*off = (uint16_t)pl;
	return pl + ml;
}

static void ring_copy_in(uint64_t at, const void *p, size_t n)
{
	size_t o = (size_t)(at % QUEUE_BYTES), first = QUEUE_BYTES - o < n ? QUEUE_BYTES - o : n;
	memcpy(ring + o, p, first);
	memcpy(ring, (const unsigned char *)p + first, n - first);
}

static void ring_copy_out(uint64_t at, void *p, size_t n)
{
	size_t o = (size_t)(at % QUEUE_BYTES), first = QUEUE_BYTES - o < n ? QUEUE_BYTES - o : n;
	memcpy(p, ring + o, first);
	memcpy((unsigned char *)p + first, ring, n - first);
}

static void put_locked(unsigned type, unsigned d, const char *line, size_t len, uint16_t off)
{
	rec_hdr h = { (uint16_t)len, off, (uint16_t)type, (uint16_t)d };
	if (head == tail)
		pthread_cond_signal(&more_cv); /* the log thread sleeps only on an empty queue */
	ring_copy_in(head, &h, sizeof h);
	ring_copy_in(head + sizeof h, line, len);
	head += sizeof h + len;
	n_put++;
}

static size_t report_locked(char *line, uint16_t *off)
{
	char msg[160];
	int n = snprintf(msg, sizeof msg, "Warning: %llu log lines were dropped: the log "
			"destination did not keep up.", dropped);
	return compose_locked(line, msg, n > 0 ? (size_t)n : 0, off);
}

/* Queues a line, or counts it as dropped when the queue is full. After a loss the count goes
   first, where the lines went missing; until it fits, everything after it is dropped too so
   the report is never out of place. */
static void queue_locked(unsigned type, const char *line, size_t len, uint16_t off)
{
	size_t free_bytes = QUEUE_BYTES - (size_t)(head - tail), need = sizeof(rec_hdr) + len;
	if (dropped) {
		char rline[LINE_MAX_BYTES];
		uint16_t roff;
		size_t rlen = report_locked(rline, &roff);
		if (free_bytes < need + sizeof(rec_hdr) + rlen) {
			dropped++;
			return;
		}
		put_locked(MG_LOG_WARNING, dests, rline, rlen, roff);
		dropped = 0;
	} else if (free_bytes < need) {
		dropped = 1;
		return;
	}
	put_locked(type, dests, line, len, off);
}

/* Writes a batch of records: consecutive lines with the same destinations go out in one
   write(2) per destination. Runs without the lock; out is the log thread's own. */
static void emit(const unsigned char *raw, size_t n, int ffd, bool slog)
{
	static char out[BATCH_BYTES]; /* a record's '\n' is smaller than its header: it fits */
	size_t o = 0;
	unsigned cur = 0;
	for (size_t i = 0; i <= n;) {
		rec_hdr h = { 0 };
		if (i < n)
			memcpy(&h, raw + i, sizeof h);
		if (i == n || (h.dests & FD_DESTS) != cur) {
			if (o && (cur & MG_LOGD_STDOUT))
				write_all(1, out, o);
			if (o && (cur & MG_LOGD_STDERR))
				write_all(2, out, o);
			if (o && (cur & MG_LOGD_FILE) && ffd >= 0)
				write_all(ffd, out, o);
			o = 0;
			cur = h.dests & FD_DESTS;
			if (i == n)
				break;
		}
		const char *line = (const char *)raw + i + sizeof h;
		memcpy(out + o, line, h.len);
		o += h.len;
		out[o++] = '\n';
		if (slog && (h.dests & MG_LOGD_SYSLOG))
			syslog(syslog_priority(h.type), "%.*s", (int)(h.len - h.msg_off), line + h.msg_off);
		i += sizeof h + h.len;
	}
}

static void *log_main(void *arg)
{
	static unsigned char raw[BATCH_BYTES];
	(void)arg;
	pthread_mutex_lock(&lock);
	for (;;) {
		if (head == tail && dropped) { /* output caught up: say what was lost */
			char rline[LINE_MAX_BYTES];
			uint16_t roff;
			size_t rlen = report_locked(rline, &roff);
			put_locked(MG_LOG_WARNING, dests, rline, rlen, roff);
			dropped = 0;
		}
		if (head == tail) {
			/* Empty: start again at the front of the ring, so that the pages in use are
			 * only as many as the longest backlog ever needed, not all of QUEUE_BYTES
			 * (a ring that only advances touches every page of it sooner or later). */
			head = tail = 0;
			if (stopping)
				break;
			pthread_cond_wait(&more_cv, &lock);
			continue;
		}
		size_t n = 0;
		uint64_t k = 0;
		while (tail != head) {
			rec_hdr h;
			ring_copy_out(tail, &h, sizeof h);
			size_t sz = sizeof h + h.len;
			if (n + sz > sizeof raw)
				break;
			ring_copy_out(tail, raw + n, sz);
			tail += sz;
			n += sz;
			k++;
		}
		busy_fd = file_fd;
		bool slog = syslog_open;
		pthread_mutex_unlock(&lock);
		emit(raw, n, busy_fd, slog);
		pthread_mutex_lock(&lock);
		if (busy_fd_retired)
			close(busy_fd);
		busy_fd_retired = false;
		busy_fd = -1;
		n_done += k;
		pthread_cond_broadcast(&done_cv);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

void mg_log(unsigned type, const char *fmt, ...)
{
	if (!mg_log_enabled(type))
		return;
	char msg[LINE_MAX_BYTES + 2]; /* one byte more than a line: mg_log_clip looks at it */
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t ml = mg_log_clip(msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1, LINE_MAX_BYTES);

	char line[LINE_MAX_BYTES + 1];
	uint16_t off;
	pthread_mutex_lock(&lock);
	size_t len = compose_locked(line, msg, ml, &off);
	if (running) {
		queue_locked(type, line, len, off);
	} else {
		/* no log thread (before open, after close): one write per line, from here */
		line[len] = '\n';
		if (dests & MG_LOGD_STDOUT)
			write_all(1, line, len + 1);
		if (dests & MG_LOGD_STDERR)
			write_all(2, line, len + 1);
		if ((dests & MG_LOGD_FILE) && file_fd >= 0)
			write_all(file_fd, line, len + 1);
		if ((dests & MG_LOGD_SYSLOG) && syslog_open)
			syslog(syslog_priority(type), "%.*s", (int)(len - off), line + off);
	}
	pthread_mutex_unlock(&lock);
}
