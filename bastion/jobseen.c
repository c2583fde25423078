/* jobseen.c — agents known to have no job to fetch (jobseen.h). Marks
 * are one counter: an announcement takes the next number, and so does
 * switching the tracker (the floor below which no mark is good). Quiet
 * agents sit in a fixed 4-way table under striped locks: bounded memory
 * whatever the fleet. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_agent.h"
#include "jobseen.h"
#include "strhash.h"

#define STRIPES	64
#define WAYS	4

struct js_slot {
	uint64_t	mark;		/* 0: empty */
	int64_t		stored_ms;
	char		id[AGENT_ID_LEN];
};

struct jobseen {
	pthread_mutex_t	 mu[STRIPES];
	struct js_slot	*slot;
	unsigned	 nsets;
	_Atomic uint64_t *woke;
	unsigned	 nwoke;
	int64_t		 max_age_ms;
	_Atomic uint64_t seq;		/* the last number taken */
	_Atomic uint64_t floor;		/* marks below it are no good */
	atomic_int	 on;
	atomic_ullong	 quiet, asked;
};

struct jobseen *
jobseen_new(unsigned slots, unsigned woke, int64_t max_age_ms)
{
	struct jobseen *js;
	unsigned i;

	if (slots < WAYS || woke == 0 || (js = calloc(1, sizeof *js)) == NULL)
		return NULL;
	js->nsets = slots / WAYS;
	js->nwoke = woke;
	if ((js->slot = calloc((size_t)js->nsets * WAYS,
	    sizeof *js->slot)) == NULL ||
	    (js->woke = calloc(woke, sizeof *js->woke)) == NULL) {
		free(js->slot);
		free(js);
		return NULL;
	}
	for (i = 0; i < woke; i++)
		atomic_init(&js->woke[i], 0);
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_init(&js->mu[i], NULL);
	js->max_age_ms = max_age_ms;
	atomic_init(&js->seq, 1);	/* a mark is never 0 */
	atomic_init(&js->floor, 1);
	atomic_init(&js->on, 1);
	return js;
}

void
jobseen_free(struct jobseen *js)
{
	int i;

	if (js == NULL)
		return;
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&js->mu[i]);
	free(js->slot);
	free((void *)js->woke);
	free(js);
}

uint64_t
jobseen_mark(struct jobseen *js)
{
	return atomic_load(&js->seq);
}

int
jobseen_since(struct jobseen *js, const char *id, uint64_t mark)
{
	return mark != 0 && atomic_load(&js->on) &&
	    mark >= atomic_load(&js->floor) &&
	    atomic_load(&js->woke[str_fnv1a(id) % js->nwoke]) <= mark;
}

/* *w = n unless larger: a mark read between two numbers taken must not
 * see the first one stored last. */
static void
store_max(_Atomic uint64_t *w, uint64_t n)
{
	uint64_t old = atomic_load(w);

	while (old < n && !atomic_compare_exchange_weak(w, &old, n))
		;
}

void
jobseen_woke(struct jobseen *js, const char *id)
{
	uint64_t n = atomic_fetch_add(&js->seq, 1) + 1;

	store_max(id == NULL ? &js->floor : &js->woke[str_fnv1a(id) % js->nwoke],
	    n);
}

void
jobseen_enable(struct jobseen *js, int on)
{
	atomic_store(&js->on, on);
	store_max(&js->floor, atomic_fetch_add(&js->seq, 1) + 1);
}

void
jobseen_quiet_put(struct jobseen *js, const char *id, uint64_t mark,
    int64_t now_ms)
{
	unsigned set = str_fnv1a(id) % js->nsets, i, pick = 0;
	struct js_slot *s = &js->slot[(size_t)set * WAYS];

	if (strlen(id) >= sizeof s->id || !jobseen_since(js, id, mark))
		return;
	pthread_mutex_lock(&js->mu[set % STRIPES]);
	/* Its own slot, else an empty one, else the oldest. */
	for (i = 0; i < WAYS; i++) {
		if (s[i].mark != 0 && strcmp(s[i].id, id) == 0) {
			pick = i;
			break;
		}
		if (s[i].mark == 0 || (s[pick].mark != 0 &&
		    s[i].stored_ms < s[pick].stored_ms))
			pick = i;
	}
	s[pick].mark = mark;
	s[pick].stored_ms = now_ms;
	snprintf(s[pick].id, sizeof s[pick].id, "%s", id);
	pthread_mutex_unlock(&js->mu[set % STRIPES]);
}

uint64_t
jobseen_quiet(struct jobseen *js, const char *id, int64_t now_ms)
{
	unsigned set = str_fnv1a(id) % js->nsets, i;
	struct js_slot *s = &js->slot[(size_t)set * WAYS];
	uint64_t mark = 0;

	if (atomic_load(&js->on)) {
		pthread_mutex_lock(&js->mu[set % STRIPES]);
		for (i = 0; i < WAYS; i++)
			if (s[i].mark != 0 && strcmp(s[i].id, id) == 0) {
				if (now_ms >= s[i].stored_ms &&
				    now_ms - s[i].stored_ms < js->max_age_ms)
					mark = s[i].mark;
				break;
			}
		pthread_mutex_unlock(&js->mu[set % STRIPES]);
	}
	if (mark != 0 && !jobseen_since(js, id, mark))
		mark = 0;
	atomic_fetch_add(mark ? &js->quiet : &js->asked, 1);
	return mark;
}

void
jobseen_count_quiet(struct jobseen *js)
{
	atomic_fetch_add(&js->quiet, 1);
}

void
jobseen_stats(struct jobseen *js, struct jobseen_stats *out)
{
	out->quiet = atomic_load(&js->quiet);
	out->asked = atomic_load(&js->asked);
}
