/*
 * tools/common/os.h - what midge_pub and midge_sub need from the system that POSIX and
 * Windows do differently, one file each: tools/common/os_posix.c, tools/common/os_win.c (the
 * Makefile builds one; mk/windows.mk the other).
 */
#ifndef MG_TOOLS_OS_H
#define MG_TOOLS_OS_H

#include <midge/midge.h>

/* Wait up to ms for standard input to have something to read (or its end), while c's socket
 * (if connected) wakes the wait too so the caller can run the loop. 1: stdin is ready,
 * 0: not yet, -1: error (errno). */
int mg_tool_wait_stdin(midge_client *c, int ms);

#endif
