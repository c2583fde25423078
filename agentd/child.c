/* child.c — what every command agentd starts shares: it gets its three
 * standard descriptors and nothing else of agentd's (sockets, TLS
 * connections, pipes of other jobs), and the signal state a program
 * expects at start rather than agentd's. Called in the child after fork,
 * before the dup2s and exec. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "agent.h"

void
child_prepare(void)
{
	sigset_t none;
	int fd, fl;

	/* agentd blocks signals in its threads and ignores SIGPIPE; an
	 * exec keeps both, and a `zstd | tar` or `yes | head` would never
	 * end on a closed pipe. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* Close-on-exec rather than closed: a pipe that reports a failed
	 * exec to the parent keeps working until the exec. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	for (fd = 3; fd < 65536; fd++)	/* kernels before 5.11 */
		if ((fl = fcntl(fd, F_GETFD)) != -1)
			(void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}
