/* tools/common/os_posix.c - tools/common/os.h on POSIX: poll(2) on fd 0 and the socket. */
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "tools/common/os.h"

int mg_tool_wait_stdin(midge_client *c, int ms)
{
	struct pollfd pfd[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
				{.fd = midge_socket(c), .events = POLLIN}};
	if (poll(pfd, pfd[1].fd >= 0 ? 2 : 1, ms) < 0)
		return errno == EINTR ? 0 : -1;
	return pfd[0].revents != 0;
}
