/* agentcache.c — the agent certificate check's positive answers
 * (agentcache.h). A fixed direct-mapped table under striped locks:
 * bounded memory whatever the fleet, and request threads rarely meet on
 * a lock. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcache.h"
#include "ca.h"
#include "db_agent.h"

#define STRIPES	64

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
	unsigned	 nslots;
	int64_t		 max_age_ms;
	/* Never 0 once bumped: a zeroed slot is never good (gen starts at
	 * 1). */
	atomic_ulong	 gen;
	atomic_int	 on;
	atomic_ullong	 hits, misses;
};

static unsigned
ac_hash(const char *id, const char *serial)
{
	unsigned h = 2166136261U;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619U;
	h = (h ^ '/') * 16777619U;
	for (; *serial; serial++)
		h = (h ^ (unsigned char)*serial) * 16777619U;
	return h;
}

struct agentcache *
agentcache_new(unsigned slots, int64_t max_age_ms)
{
	struct agentcache *c;
	int i;

	if (slots == 0 || (c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	if ((c->slot = calloc(slots, sizeof *c->slot)) == NULL) {
		free(c);
		return NULL;
	}
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_init(&c->mu[i], NULL);
	c->nslots = slots;
	c->max_age_ms = max_age_ms;
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

int
agentcache_get(struct agentcache *c, const char *id, const char *serial,
    int64_t now_ms, int64_t *not_after_ms)
{
	unsigned h = ac_hash(id, serial), i = h % c->nslots;
	struct ac_slot *s = &c->slot[i];
	unsigned long gen = atomic_load(&c->gen);
	int hit = 0;

	if (atomic_load(&c->on)) {
		pthread_mutex_lock(&c->mu[i % STRIPES]);
		if (s->gen == gen && now_ms - s->stored_ms < c->max_age_ms &&
		    now_ms >= s->stored_ms && strcmp(s->id, id) == 0 &&
		    strcmp(s->serial, serial) == 0) {
			*not_after_ms = s->not_after_ms;
			hit = 1;
		}
		pthread_mutex_unlock(&c->mu[i % STRIPES]);
	}
	atomic_fetch_add(hit ? &c->hits : &c->misses, 1);
	return hit;
}

void
agentcache_put(struct agentcache *c, const char *id, const char *serial,
    int64_t not_after_ms, unsigned long gen, int64_t now_ms)
{
	unsigned i = ac_hash(id, serial) % c->nslots;
	struct ac_slot *s = &c->slot[i];

	/* Read at an older generation, or while off: not kept. */
	if (!atomic_load(&c->on) || gen != atomic_load(&c->gen) ||
	    strlen(id) >= sizeof s->id || strlen(serial) >= sizeof s->serial)
		return;
	pthread_mutex_lock(&c->mu[i % STRIPES]);
	s->gen = gen;
	s->stored_ms = now_ms;
	s->not_after_ms = not_after_ms;
	snprintf(s->id, sizeof s->id, "%s", id);
	snprintf(s->serial, sizeof s->serial, "%s", serial);
	pthread_mutex_unlock(&c->mu[i % STRIPES]);
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
