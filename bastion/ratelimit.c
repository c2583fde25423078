/* ratelimit.c — token buckets per client address (ratelimit.h). */
#include <stdio.h>
#include <string.h>

#include "ratelimit.h"

int
ratelimit_take(struct ratelimit *rl, const char *addr, double burst,
    double per_second, int64_t now_ms)
{
	unsigned h = 5381;
	const char *p;
	struct ratelimit_bucket *b;
	int ok;

	for (p = addr; *p; p++)
		h = h * 33 + (unsigned char)*p;
	pthread_mutex_lock(&rl->mu);
	b = &rl->b[h % RATELIMIT_BUCKETS];
	if (strcmp(b->addr, addr) != 0) {
		snprintf(b->addr, sizeof b->addr, "%s", addr);
		b->tokens = burst;
		b->last_ms = now_ms;
	}
	if (now_ms > b->last_ms)
		b->tokens += (double)(now_ms - b->last_ms) * per_second / 1000;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last_ms = now_ms;
	ok = b->tokens >= 1;
	if (ok)
		b->tokens -= 1;
	pthread_mutex_unlock(&rl->mu);
	return ok;
}
