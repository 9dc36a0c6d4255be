/*
 * tools/common/format.h - how midge_sub prints a message: plain, -v, or -F format, byte for
 * byte as mosquitto_sub 2.0 prints it.
 */
#ifndef MG_TOOLS_FORMAT_H
#define MG_TOOLS_FORMAT_H

#include <stdbool.h>
#include <stdio.h>

#include <midge/midge.h>

/* Checks a -F format; prints mosquitto's complaint and returns 1 if it is malformed. */
int mg_format_check(const char *fmt);

/* Prints msg to out: with format if not NULL, else "topic payload" when verbose, else the
 * payload; then a newline if eol. Flushes out. */
void mg_print_message(FILE *out, const midge_message *msg, const char *format, bool verbose,
                      bool eol);

#endif
