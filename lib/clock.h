/* clock.h — the two clocks bastion, bastionctl and agentd read: the wall
 * clock for times that are stored or shown, the monotonic one for
 * durations, deadlines and backoff (a wall clock set back or forward
 * must not stretch or cut them). Milliseconds. */
#ifndef BASTION_CLOCK_H
#define BASTION_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t	clock_wall_ms(void);	/* since the epoch */
int64_t	clock_mono_ms(void);	/* since an arbitrary point */
/* The wall clock ms from now, as pthread_cond_timedwait wants it. */
struct timespec clock_wall_after(int64_t ms);

#endif
