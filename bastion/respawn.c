/* respawn.c — restart schedule and spawning for supervised children. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "respawn.h"

void
respawn_init(struct respawn *rs, int min_ms, int max_ms, int stable_ms)
{
	memset(rs, 0, sizeof *rs);
	rs->min_ms = rs->backoff_ms = min_ms;
	rs->max_ms = max_ms;
	rs->stable_ms = stable_ms;
}

void
respawn_started(struct respawn *rs, int64_t now)
{
	rs->started_ms = now;
	rs->next_ms = 0;
}

int
respawn_schedule(struct respawn *rs, int64_t now)
{
	int delay;

	if (rs->started_ms != 0 && now - rs->started_ms >= rs->stable_ms)
		rs->backoff_ms = rs->min_ms;
	rs->started_ms = 0;	/* that uptime is used up */
	delay = rs->backoff_ms;
	rs->next_ms = now + delay;
	rs->backoff_ms = rs->backoff_ms > rs->max_ms / 2 ? rs->max_ms :
	    rs->backoff_ms * 2;
	return delay;
}

int
respawn_due(const struct respawn *rs, int64_t now)
{
	return rs->next_ms != 0 && now >= rs->next_ms;
}

void
respawn_describe_exit(int status, char *out, size_t len)
{
	if (WIFEXITED(status))
		snprintf(out, len, "exited with status %d",
		    WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, len, "killed by signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		snprintf(out, len, "stopped (status %#x)", status);
}

void
respawn_spawnattr(posix_spawnattr_t *attr)
{
	sigset_t none, all;

	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawnattr_init(attr);
	posix_spawnattr_setsigmask(attr, &none);
	posix_spawnattr_setsigdefault(attr, &all);
	posix_spawnattr_setflags(attr,
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}
