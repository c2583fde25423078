/* agentcache.c — the agent certificate check's positive answers
 * (agentcache.h). A fixed 4-way table under striped locks: bounded
 * memory whatever the fleet, a bastion's agents kept with few clashes
 * (direct-mapped, a quarter of 20,000 agents in 65,536 slots evicted one
 * another), and request threads rarely meet on a lock. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcache.h"
#include "ca.h"
#include "db_agent.h"
#include "strhash.h"

#define STRIPES	64
#define WAYS	4

struct ac_slot {
	unsigned long	gen;
	int64_t		stored_ms;
	int64_t		not_after_ms;
	char		id[AGENT_ID_LEN];
	char		serial[CA_SERIAL_LEN];
};

struct agentcache {
	pthread_mutex_t	 mu[STRIPES];
	struct ac_slot	*slot;
	unsigned	 nsets;		/* of WAYS slots */
	_Atomic int64_t	 max_age_ms;
	/* Never 0 once bumped: a zeroed slot is never good (gen starts at
	 * 1). */
	atomic_ulong	 gen;
	atomic_int	 on;
	atomic_ullong	 hits, misses;
};

struct agentcache *
agentcache_new(unsigned slots, int64_t max_age_ms)
{
	struct agentcache *c;
	int i;

	if (slots < WAYS || (c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	c->nsets = slots / WAYS;
	if ((c->slot = calloc((size_t)c->nsets * WAYS,
	    sizeof *c->slot)) == NULL) {
		free(c);
		return NULL;
	}
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_init(&c->mu[i], NULL);
	atomic_init(&c->max_age_ms, max_age_ms);
	atomic_init(&c->gen, 1);
	atomic_init(&c->on, 1);
	return c;
}

void
agentcache_free(struct agentcache *c)
{
	int i;

	if (c == NULL)
		return;
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&c->mu[i]);
	free(c->slot);
	free(c);
}

unsigned long
agentcache_gen(struct agentcache *c)
{
	return atomic_load(&c->gen);
}

/* Slots by the agent id alone: its renewed certificate takes its slot. */
int
agentcache_get(struct agentcache *c, const char *id, const char *serial,
    int64_t now_ms, int64_t *not_after_ms)
{
	unsigned set = str_fnv1a(id) % c->nsets, i;
	struct ac_slot *s = &c->slot[(size_t)set * WAYS];
	unsigned long gen = atomic_load(&c->gen);
	int64_t age = atomic_load(&c->max_age_ms);
	int hit = 0;

	if (atomic_load(&c->on)) {
		pthread_mutex_lock(&c->mu[set % STRIPES]);
		for (i = 0; i < WAYS && !hit; i++)
			if (s[i].gen == gen && now_ms - s[i].stored_ms < age &&
			    now_ms >= s[i].stored_ms &&
			    strcmp(s[i].id, id) == 0 &&
			    strcmp(s[i].serial, serial) == 0) {
				*not_after_ms = s[i].not_after_ms;
				hit = 1;
			}
		pthread_mutex_unlock(&c->mu[set % STRIPES]);
	}
	atomic_fetch_add(hit ? &c->hits : &c->misses, 1);
	return hit;
}

void
agentcache_put(struct agentcache *c, const char *id, const char *serial,
    int64_t not_after_ms, unsigned long gen, int64_t now_ms)
{
	unsigned set = str_fnv1a(id) % c->nsets, i, pick = 0;
	struct ac_slot *s = &c->slot[(size_t)set * WAYS];

	/* Read at an older generation, or while off: not kept. */
	if (!atomic_load(&c->on) || gen != atomic_load(&c->gen) ||
	    strlen(id) >= sizeof s->id || strlen(serial) >= sizeof s->serial)
		return;
	pthread_mutex_lock(&c->mu[set % STRIPES]);
	/* The agent's own slot (a renewal replaces its serial), else one
	 * of an older generation, else the oldest. */
	for (i = 0; i < WAYS; i++) {
		if (strcmp(s[i].id, id) == 0) {
			pick = i;
			break;
		}
		if (s[pick].gen == gen && (s[i].gen != gen ||
		    s[i].stored_ms < s[pick].stored_ms))
			pick = i;
	}
	s[pick].gen = gen;
	s[pick].stored_ms = now_ms;
	s[pick].not_after_ms = not_after_ms;
	snprintf(s[pick].id, sizeof s[pick].id, "%s", id);
	snprintf(s[pick].serial, sizeof s[pick].serial, "%s", serial);
	pthread_mutex_unlock(&c->mu[set % STRIPES]);
}

void
agentcache_max_age(struct agentcache *c, int64_t max_age_ms)
{
	atomic_store(&c->max_age_ms, max_age_ms);
}

void
agentcache_bump(struct agentcache *c)
{
	atomic_fetch_add(&c->gen, 1);
}

void
agentcache_enable(struct agentcache *c, int on)
{
	/* Bumped either way: what was read while off is never good. */
	atomic_store(&c->on, on);
	atomic_fetch_add(&c->gen, 1);
}

void
agentcache_stats(struct agentcache *c, struct agentcache_stats *out)
{
	out->hits = atomic_load(&c->hits);
	out->misses = atomic_load(&c->misses);
	out->gen = atomic_load(&c->gen);
}
