/* child.c — what every command agentd starts shares: it gets its three
 * standard descriptors and nothing else of agentd's (sockets, TLS
 * connections, pipes of other jobs). Called in the child after fork,
 * before the dup2s and exec. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#include "agent.h"

void
child_fds_cloexec(void)
{
	int fd, fl;

	/* Close-on-exec rather than closed: a pipe that reports a failed
	 * exec to the parent keeps working until the exec. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	for (fd = 3; fd < 65536; fd++)	/* kernels before 5.11 */
		if ((fl = fcntl(fd, F_GETFD)) != -1)
			(void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}
