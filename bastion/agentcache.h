/* agentcache.h — the agent certificate check's positive answers, kept
 * so that a heartbeat costs no database round trip (issue 17).
 *
 * An entry (agent id, certificate serial) → the certificate's expiry is
 * good while (1) the cache's generation is the one read BEFORE the
 * database answered, (2) it is younger than the maximum age, and (3) the
 * cache is on. The generation is bumped after every committed change that
 * can turn a yes into a no (a revocation, an enrollment that replaces an
 * agent, a renewal), here and, over LISTEN/NOTIFY, on the other bastions
 * of a shared database; the maximum age bounds a notification that was
 * missed, and the cache is off while nobody listens. Only "yes" is kept:
 * an unknown or revoked certificate is asked again each time. */
#ifndef BASTION_AGENTCACHE_H
#define BASTION_AGENTCACHE_H

#include <stdint.h>

/* Every change that matters is told (and a lost notice turns the cache
 * off), so the age bounds only a change made behind bastion's back (SQL
 * typed into the database): long enough that an agent polling and
 * heartbeating every 30 s is asked of the database once in ten minutes,
 * not at every request. */
#define AGENTCACHE_MAX_AGE_MS	(10 * 60 * 1000)
#define AGENTCACHE_SLOTS	65536	/* 4-way; a clash evicts the oldest */

struct agentcache;

struct agentcache *agentcache_new(unsigned slots, int64_t max_age_ms);
void	agentcache_free(struct agentcache *);

/* The generation to pass to agentcache_put, read before the database. */
unsigned long agentcache_gen(struct agentcache *);
/* 1 and *not_after_ms when (id, serial) was found good and still is. */
int	agentcache_get(struct agentcache *, const char *id,
	    const char *serial, int64_t now_ms, int64_t *not_after_ms);
/* (id, serial) found good by a read that began at generation gen. */
void	agentcache_put(struct agentcache *, const char *id,
	    const char *serial, int64_t not_after_ms, unsigned long gen,
	    int64_t now_ms);
/* Another maximum age, from now on (tests). */
void	agentcache_max_age(struct agentcache *, int64_t max_age_ms);
/* Everything kept so far is no longer good. */
void	agentcache_bump(struct agentcache *);
/* Off: nothing is found (nor kept) until on again, which bumps. */
void	agentcache_enable(struct agentcache *, int on);

/* The metrics. */
struct agentcache_stats {
	unsigned long long	hits, misses;
	unsigned long		gen;
};
void	agentcache_stats(struct agentcache *, struct agentcache_stats *);

#endif
