/* nofile.c — the open-file limit (nofile.h). */
#include <errno.h>
#include <sys/resource.h>

#include "nofile.h"

int
nofile_raise(rlim_t *now)
{
	struct rlimit rl;
	int rc = 0, saved;

	*now = RLIM_INFINITY;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -1;
	*now = rl.rlim_cur;
	if (rl.rlim_cur == rl.rlim_max)
		return 0;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		saved = errno;
		rc = -1;
	} else
		rc = 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		*now = rl.rlim_cur;
	if (rc == -1)
		errno = saved;
	return rc;
}
