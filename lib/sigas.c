/* sigas.c — see sigas.h. System calls only in the children: the callers
 * have threads. */
#define _GNU_SOURCE
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "sigas.h"

/* setresuid(2) itself: glibc's wrapper would try to change the uid of
 * threads a forked child does not have. */
static int
sigas_become(uid_t uid)
{
	return (int)syscall(SYS_setresuid, uid, uid, uid);
}

int
sigas_send(pid_t pid, int sig, uid_t uid)
{
	int status, e;
	pid_t child, r;

	if (pid <= 0) {
		errno = ESRCH;
		return -1;
	}
	if (kill(pid, sig) == 0)
		return 0;
	if (errno != EPERM || getuid() != 0 || uid == 0 ||
	    uid == (uid_t)-1)
		return -1;
	if ((child = fork()) == -1)
		return -1;
	if (child == 0) {
		if (sigas_become(uid) == -1)
			_exit(1);
		_exit(kill(pid, sig) == 0 ? 0 : errno == ESRCH ? 2 : 1);
	}
	while ((r = waitpid(child, &status, 0)) == -1 && errno == EINTR)
		;
	if (r == -1)
		return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	e = WIFEXITED(status) && WEXITSTATUS(status) == 2 ? ESRCH : EPERM;
	errno = e;
	return -1;
}

int
sigas_pidfd_self(int pidfd, int sig, uid_t uid)
{
	if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0)
		return 0;
	if (errno != EPERM || getuid() != 0 || uid == 0 ||
	    uid == (uid_t)-1 || sigas_become(uid) == -1)
		return -1;
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}
