/*
 * tools/common/os.h - what midge_pub and midge_sub need from the system that POSIX and
 * Windows do differently, one file each: tools/common/os_posix.c, tools/common/os_win.c (the
 * Makefile builds one, mk/windows.mk the other).
 */
#ifndef MG_TOOLS_OS_H
#define MG_TOOLS_OS_H

#include <stddef.h>
#include <sys/types.h>

#include <midge/midge.h>

#define MG_TOOL_AGAIN (-2)

/* Read what standard input has (at most cap bytes), waiting up to ms for it; data from the
 * broker on c's socket (if connected) ends the wait early, so the caller can run the loop.
 * Returns the bytes read (> 0), 0 at the end of input, MG_TOOL_AGAIN when nothing came, -1 on
 * an error (errno). */
ssize_t mg_tool_read_stdin(midge_client *c, void *buf, size_t cap, int ms);

/* strerror, with words on Windows for the socket errors libmidge reports (ECONNREFUSED, ...),
 * which Windows' C library does not know. */
const char *mg_tool_strerror(int err);

#endif
