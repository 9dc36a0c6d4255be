/* tools/common/os_posix.c - tools/common/os.h on POSIX: poll(2) on fd 0 and the socket. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "tools/common/os.h"

const char *mg_tool_strerror(int err)
{
	return strerror(err);
}

ssize_t mg_tool_read_stdin(midge_client *c, void *buf, size_t cap, int ms)
{
	struct pollfd pfd[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
				{.fd = midge_socket(c), .events = POLLIN}};
	if (poll(pfd, pfd[1].fd >= 0 ? 2 : 1, ms) < 0)
		return errno == EINTR ? MG_TOOL_AGAIN : -1;
	if (!pfd[0].revents)
		return MG_TOOL_AGAIN;
	ssize_t r = read(STDIN_FILENO, buf, cap);
	if (r < 0)
		return errno == EINTR || errno == EAGAIN ? MG_TOOL_AGAIN : -1;
	return r;
}
