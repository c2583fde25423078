/* respawn.h — what supervising a child process takes, shared by the
 * dnsmasq supervisor (dnsmasq.c) and the signer (signer.c): the restart
 * backoff (on lib/clock.h's monotonic clock), an exit status in words,
 * and spawn attributes that undo the daemon's signal mask. */
#ifndef BASTION_RESPAWN_H
#define BASTION_RESPAWN_H

#include <spawn.h>
#include <stddef.h>
#include <stdint.h>

struct respawn {
	int	min_ms, max_ms;	/* backoff bounds */
	int	stable_ms;	/* up this long: the backoff resets */
	int	backoff_ms;	/* the next delay */
	int64_t	started_ms;	/* when the child started; 0: not running */
	int64_t	next_ms;	/* a start is due then; 0: none */
};

void	respawn_init(struct respawn *, int min_ms, int max_ms, int stable_ms);
/* The child runs from now on: no start due any more. */
void	respawn_started(struct respawn *, int64_t now);
/* It died or could not start: the next start is due after the backoff
 * (back to min_ms if it had been up stable_ms), which then doubles up to
 * max_ms. Returns the delay. */
int	respawn_schedule(struct respawn *, int64_t now);
/* A start is due now. */
int	respawn_due(const struct respawn *, int64_t now);
/* "exited with status 1", "killed by signal 9 (Killed)". */
void	respawn_describe_exit(int status, char *out, size_t len);
/* posix_spawn attributes for a child of the daemon: an empty signal mask
 * (the daemon blocks SIGTERM, SIGHUP... for its signalfd) and default
 * dispositions. posix_spawnattr_destroy() it after use. */
void	respawn_spawnattr(posix_spawnattr_t *);

#endif
