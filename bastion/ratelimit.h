/* ratelimit.h — token buckets per client address: enrollment attempts
 * (routes_agent.c) and the boot listener's requests (http.c). */
#ifndef BASTION_RATELIMIT_H
#define BASTION_RATELIMIT_H

#include <pthread.h>
#include <stdint.h>

#define RATELIMIT_BUCKETS	1024

/* A fixed table of buckets indexed by a hash of the address; an address
 * that lands on another's bucket takes it over with a full burst (the
 * table stays small whatever the number of addresses). */
struct ratelimit {
	pthread_mutex_t	mu;
	struct ratelimit_bucket {
		char	addr[64];
		double	tokens;
		int64_t	last_ms;
	}		b[RATELIMIT_BUCKETS];
};
#define RATELIMIT_INIT	{ .mu = PTHREAD_MUTEX_INITIALIZER }

/* 1 if addr may go on now, spending one token of its bucket (burst
 * tokens at most, refilled at per_second), else 0. */
int	ratelimit_take(struct ratelimit *, const char *addr, double burst,
	    double per_second, int64_t now_ms);

#endif
