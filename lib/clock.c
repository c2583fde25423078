/* clock.c — see clock.h. */
#include <time.h>

#include "clock.h"

static int64_t
ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_wall_ms(void)
{
	return ms(CLOCK_REALTIME);
}

struct timespec
clock_wall_after(int64_t after)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(after / 1000);
	ts.tv_nsec += (long)(after % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

int64_t
clock_mono_ms(void)
{
	return ms(CLOCK_MONOTONIC);
}
