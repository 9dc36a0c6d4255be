/*
 * broker/log.h - the broker's log: mosquitto's log types and destinations.
 *
 * Lines look like mosquitto's: "1732570000: New connection from ..." (unix seconds, or
 * strftime(log_timestamp_format)), at most 999 bytes before the '\n' as in mosquitto. After
 * mg_log_open a log thread writes them, so mg_log never blocks on a slow destination: when
 * its queue is full a line is dropped, and the number dropped is logged once output moves.
 * Lines are written whole, so event-loop threads never interleave. Before mg_log_open (and
 * after mg_log_close) lines of type error, warning, notice and information go to stderr.
 */
#ifndef MG_BROKER_LOG_H
#define MG_BROKER_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/config.h"

enum { MG_LOG_ERR = 1, MG_LOG_WARNING = 2, MG_LOG_NOTICE = 4, MG_LOG_INFO = 8, MG_LOG_DEBUG = 16,
       MG_LOG_SUBSCRIBE = 32, MG_LOG_UNSUBSCRIBE = 64, MG_LOG_WEBSOCKETS = 128, MG_LOG_ALL = 0xFFFF };
/* MG_LOGD_TOPIC is never set: the config refuses `log_dest topic` as not yet implemented
   (config_keywords.c), so nothing is published on $SYS/broker/log/#. */
enum { MG_LOGD_STDOUT = 1, MG_LOGD_STDERR = 2, MG_LOGD_FILE = 4, MG_LOGD_SYSLOG = 8,
       MG_LOGD_TOPIC = 16 };

/* Opens file/syslog per config; copies what it needs from c (c may be freed after).
   Calling it again applies new settings (SIGHUP reload). Returns 0, or -1 when the log file
   cannot be opened (a message has been written to stderr; other destinations still work). */
int mg_log_open(const mg_config *c);
void mg_log_close(void);
int mg_log_reopen(void);               /* SIGHUP: reopen the log file (logrotate); 0 or -1 */
bool mg_log_enabled(unsigned type);    /* cheap check, for the hot path, before formatting */
void mg_log(unsigned type, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* How many of the n bytes of s to show in a log line when at most max fit: max or fewer,
   never ending inside a UTF-8 character. Reads s[max] when n > max. */
size_t mg_log_clip(const char *s, size_t n, size_t max);
/* Topics and filters may be 65,535 bytes; a log line shows this many bytes of one at most
   (PUBLISH lines, dropped and denied PUBLISHes, SUBSCRIBE and UNSUBSCRIBE filters), so what
   follows it ("(QoS 1)", the payload size) stays inside the 999-byte line. Will topics are
   only cut by the line cap. */
#define MG_LOG_TOPIC_MAX 256
/* The three printf arguments of "%.*s%s" for a topic or filter b (anything with .p and .len):
 * its first MG_LOG_TOPIC_MAX bytes, cut between characters, then "..." if it was cut. */
#define MG_LOG_CLIPPED(b)                                                                    \
	(int)mg_log_clip((const char *)(b).p, (b).len, MG_LOG_TOPIC_MAX), (const char *)(b).p, \
	mg_log_clip((const char *)(b).p, (b).len, MG_LOG_TOPIC_MAX) < (b).len ? "..." : ""

#endif
