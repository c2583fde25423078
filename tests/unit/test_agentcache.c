/* test_agentcache.c — the agent certificate cache (agentcache.c): a yes
 * is kept only for its generation, its maximum age and while the cache
 * is on; what was read before a bump is never kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agentcache.h"

#define AGE	2000

static int
setup(void **state)
{
	*state = agentcache_new(64, AGE);
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	agentcache_free(*state);
	return 0;
}

static void
test_hit_until_max_age(void **state)
{
	struct agentcache *c = *state;
	int64_t na = 0;

	assert_int_equal(agentcache_get(c, "a1", "s1", 1000, &na), 0);
	agentcache_put(c, "a1", "s1", 777, agentcache_gen(c), 1000);
	assert_int_equal(agentcache_get(c, "a1", "s1", 1000 + AGE - 1, &na), 1);
	assert_int_equal(na, 777);
	assert_int_equal(agentcache_get(c, "a1", "s1", 1000 + AGE, &na), 0);
	/* A clock that went back is no reason to trust it. */
	assert_int_equal(agentcache_get(c, "a1", "s1", 999, &na), 0);
}

static void
test_key_is_id_and_serial(void **state)
{
	struct agentcache *c = *state;
	int64_t na;

	agentcache_put(c, "a1", "s1", 1, agentcache_gen(c), 0);
	assert_int_equal(agentcache_get(c, "a1", "s2", 1, &na), 0);
	assert_int_equal(agentcache_get(c, "a2", "s1", 1, &na), 0);
	assert_int_equal(agentcache_get(c, "a1s", "1", 1, &na), 0);
	assert_int_equal(agentcache_get(c, "a1", "s1", 1, &na), 1);
}

static void
test_bump_drops_everything(void **state)
{
	struct agentcache *c = *state;
	int64_t na;

	agentcache_put(c, "a1", "s1", 1, agentcache_gen(c), 0);
	agentcache_put(c, "a2", "s2", 1, agentcache_gen(c), 0);
	agentcache_bump(c);
	assert_int_equal(agentcache_get(c, "a1", "s1", 1, &na), 0);
	assert_int_equal(agentcache_get(c, "a2", "s2", 1, &na), 0);
	agentcache_put(c, "a1", "s1", 1, agentcache_gen(c), 0);
	assert_int_equal(agentcache_get(c, "a1", "s1", 1, &na), 1);
}

/* A read that began before a revocation's bump may have seen the row
 * before the revocation: its answer is not kept. */
static void
test_put_of_an_older_generation_is_not_kept(void **state)
{
	struct agentcache *c = *state;
	unsigned long gen = agentcache_gen(c);
	int64_t na;

	agentcache_bump(c);
	agentcache_put(c, "a1", "s1", 1, gen, 0);
	assert_int_equal(agentcache_get(c, "a1", "s1", 1, &na), 0);
}

static void
test_off_keeps_nothing(void **state)
{
	struct agentcache *c = *state;
	unsigned long gen;
	int64_t na;

	agentcache_put(c, "a1", "s1", 1, agentcache_gen(c), 0);
	agentcache_enable(c, 0);
	assert_int_equal(agentcache_get(c, "a1", "s1", 1, &na), 0);
	gen = agentcache_gen(c);
	agentcache_put(c, "a2", "s2", 1, gen, 0);
	/* Read while off: not good once on either. */
	agentcache_enable(c, 1);
	agentcache_put(c, "a3", "s3", 1, gen, 0);
	assert_int_equal(agentcache_get(c, "a1", "s1", 1, &na), 0);
	assert_int_equal(agentcache_get(c, "a2", "s2", 1, &na), 0);
	assert_int_equal(agentcache_get(c, "a3", "s3", 1, &na), 0);
	agentcache_put(c, "a1", "s1", 1, agentcache_gen(c), 0);
	assert_int_equal(agentcache_get(c, "a1", "s1", 1, &na), 1);
}

/* More identities than slots: a clash evicts, never mixes two up. */
static void
test_clashes_evict(void **state)
{
	struct agentcache *c = *state;
	struct agentcache_stats st;
	char id[16], serial[16];
	int64_t na;
	int i, hits = 0;

	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof id, "a%d", i);
		snprintf(serial, sizeof serial, "%x", i);
		agentcache_put(c, id, serial, i, agentcache_gen(c), 0);
	}
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof id, "a%d", i);
		snprintf(serial, sizeof serial, "%x", i);
		if (agentcache_get(c, id, serial, 1, &na)) {
			assert_int_equal(na, i);
			hits++;
		}
	}
	assert_true(hits > 0 && hits <= 64);
	agentcache_stats(c, &st);
	assert_int_equal(st.hits, hits);
	assert_int_equal(st.misses, 1000 - hits);
}

static void
test_too_long_is_not_kept(void **state)
{
	struct agentcache *c = *state;
	char id[100];
	int64_t na;

	memset(id, 'a', sizeof id - 1);
	id[sizeof id - 1] = '\0';
	agentcache_put(c, id, "s1", 1, agentcache_gen(c), 0);
	assert_int_equal(agentcache_get(c, id, "s1", 1, &na), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hit_until_max_age, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_key_is_id_and_serial,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bump_drops_everything,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_put_of_an_older_generation_is_not_kept, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_off_keeps_nothing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_clashes_evict, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_too_long_is_not_kept,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
