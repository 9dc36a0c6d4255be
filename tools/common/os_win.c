/* tools/common/os_win.c - tools/common/os.h on Windows, where select() takes sockets only and
 * nothing reliably says whether standard input (a console, a pipe, a file) has bytes waiting
 * (PeekNamedPipe fails on some pipes, Wine's among them; a console handle is signalled by any
 * event). So a thread reads stdin with blocking reads into a buffer, and the caller waits in
 * 20 ms slices on the socket, looking at the buffer between them. The thread is left blocked
 * in read() when the program ends; process exit takes it. Text mode: a typed "line\r\n"
 * arrives as "line\n", as mosquitto_pub's fgets reads it on Windows. */
#include <errno.h>
#include <io.h>
#include <stdlib.h>
#include <string.h>
#include <winsock2.h> /* before windows.h, which it asks for */
#include <windows.h>

#include "tools/common/os.h"

static CRITICAL_SECTION mu;
static char ibuf[65536];
static size_t ilen;     /* bytes in ibuf */
static int ieof, ierr;  /* the reader saw the end / an error (errno) */
static int started;

static DWORD WINAPI reader(LPVOID arg)
{
	char b[4096];
	for (;;) {
		int n = _read(0, b, sizeof(b));
		int e = errno;
		for (;;) { /* wait for room; the caller drains ibuf */
			EnterCriticalSection(&mu);
			if (n <= 0 || sizeof(ibuf) - ilen >= (size_t)n)
				break;
			LeaveCriticalSection(&mu);
			Sleep(10);
		}
		if (n > 0) {
			memcpy(ibuf + ilen, b, (size_t)n);
			ilen += (size_t)n;
		} else {
			ieof = n == 0;
			ierr = n < 0 ? e : 0;
		}
		LeaveCriticalSection(&mu);
		if (n <= 0)
			return 0;
	}
}

/* Take what the reader has: bytes, 0 at the end, -1 error, MG_TOOL_AGAIN nothing yet. */
static ssize_t take(void *buf, size_t cap)
{
	ssize_t r = MG_TOOL_AGAIN;
	EnterCriticalSection(&mu);
	if (ilen) {
		size_t n = ilen < cap ? ilen : cap;
		memcpy(buf, ibuf, n);
		memmove(ibuf, ibuf + n, ilen - n);
		ilen -= n;
		r = (ssize_t)n;
	} else if (ieof) {
		r = 0;
	} else if (ierr) {
		errno = ierr;
		r = -1;
	}
	LeaveCriticalSection(&mu);
	return r;
}

const char *mg_tool_strerror(int err)
{
	switch (err) {
	case ECONNREFUSED: return "Connection refused";
	case ECONNRESET: return "Connection reset by peer";
	case ETIMEDOUT: return "Connection timed out";
	case ENETUNREACH: return "Network is unreachable";
	case EHOSTUNREACH: return "No route to host";
	case EADDRNOTAVAIL: return "Cannot assign requested address";
	default: return strerror(err);
	}
}

ssize_t mg_tool_read_stdin(midge_client *c, void *buf, size_t cap, int ms)
{
	if (!started) {
		InitializeCriticalSection(&mu);
		HANDLE t = CreateThread(NULL, 0, reader, NULL, 0, NULL);
		if (!t) {
			errno = ENOMEM;
			return -1;
		}
		CloseHandle(t);
		started = 1;
	}
	ULONGLONG end = GetTickCount64() + (ULONGLONG)ms;
	for (;;) {
		ssize_t r = take(buf, cap);
		if (r != MG_TOOL_AGAIN)
			return r;
		ULONGLONG now = GetTickCount64();
		if (now >= end)
			return MG_TOOL_AGAIN;
		int slice = end - now < 20 ? (int)(end - now) : 20;
		int s = midge_socket(c);
		if (s < 0) {
			Sleep((DWORD)slice);
			continue;
		}
		fd_set rs;
		FD_ZERO(&rs);
		FD_SET((SOCKET)s, &rs);
		struct timeval tv = { 0, slice * 1000 };
		if (select(0, &rs, NULL, NULL, &tv) > 0)
			return MG_TOOL_AGAIN; /* the broker sent something: let the caller run the loop */
	}
}
