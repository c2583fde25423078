/* test_jobseen.c — agents known to have no job (jobseen.c): quiet only
 * by a read that began after the last announcement for the agent, while
 * on and not switched since, and younger than the maximum age. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jobseen.h"

#define AGE	60000

static int
setup(void **state)
{
	*state = jobseen_new(64, 16, AGE);
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	jobseen_free(*state);
	return 0;
}

static void
test_quiet_until_announced(void **state)
{
	struct jobseen *js = *state;
	uint64_t m;

	assert_int_equal(jobseen_quiet(js, "a1", 1000), 0);
	m = jobseen_mark(js);
	assert_int_not_equal(m, 0);
	jobseen_quiet_put(js, "a1", m, 1000);
	assert_int_equal(jobseen_quiet(js, "a1", 1000), m);
	assert_true(jobseen_since(js, "a1", m));
	jobseen_woke(js, "a1");
	assert_int_equal(jobseen_quiet(js, "a1", 1000), 0);
	assert_false(jobseen_since(js, "a1", m));
	/* Asked again after the announcement: quiet again. */
	m = jobseen_mark(js);
	jobseen_quiet_put(js, "a1", m, 1001);
	assert_int_equal(jobseen_quiet(js, "a1", 1001), m);
	/* 0 is never a mark. */
	assert_false(jobseen_since(js, "a1", 0));
}

/* The read began before the announcement: its "nothing" may have missed
 * the job, so it is not kept. */
static void
test_announced_during_the_read(void **state)
{
	struct jobseen *js = *state;
	uint64_t m = jobseen_mark(js);

	jobseen_woke(js, "a1");
	jobseen_quiet_put(js, "a1", m, 1000);
	assert_int_equal(jobseen_quiet(js, "a1", 1000), 0);
	assert_false(jobseen_since(js, "a1", m));
}

static void
test_other_agents_stay_quiet(void **state)
{
	struct jobseen *js = *state;
	uint64_t m = jobseen_mark(js);
	char id[16];
	int i, still = 0;

	for (i = 0; i < 8; i++) {
		snprintf(id, sizeof id, "a%d", i);
		jobseen_quiet_put(js, id, m, 1000);
	}
	jobseen_woke(js, "a3");
	assert_int_equal(jobseen_quiet(js, "a3", 1000), 0);
	/* Those whose hash does not meet a3's (16 buckets) stay quiet. */
	for (i = 0; i < 8; i++) {
		snprintf(id, sizeof id, "a%d", i);
		still += jobseen_quiet(js, id, 1000) != 0;
	}
	assert_true(still >= 5);
}

static void
test_off_and_switch_end_marks(void **state)
{
	struct jobseen *js = *state;
	uint64_t m = jobseen_mark(js);

	jobseen_quiet_put(js, "a1", m, 1000);
	jobseen_enable(js, 0);
	assert_int_equal(jobseen_quiet(js, "a1", 1000), 0);
	assert_false(jobseen_since(js, "a1", m));
	/* Kept while off: no. */
	jobseen_quiet_put(js, "a1", jobseen_mark(js), 1000);
	jobseen_enable(js, 1);
	/* On again: what was known before is not. */
	assert_int_equal(jobseen_quiet(js, "a1", 1000), 0);
	m = jobseen_mark(js);
	jobseen_quiet_put(js, "a1", m, 1000);
	assert_int_equal(jobseen_quiet(js, "a1", 1000), m);
	/* Everyone announced (a lost listener's reconnection). */
	jobseen_woke(js, NULL);
	assert_int_equal(jobseen_quiet(js, "a1", 1000), 0);
	assert_false(jobseen_since(js, "a1", m));
}

static void
test_max_age(void **state)
{
	struct jobseen *js = *state;
	uint64_t m = jobseen_mark(js);

	jobseen_quiet_put(js, "a1", m, 1000);
	assert_int_equal(jobseen_quiet(js, "a1", 1000 + AGE - 1), m);
	assert_int_equal(jobseen_quiet(js, "a1", 1000 + AGE), 0);
	assert_int_equal(jobseen_quiet(js, "a1", 999), 0);
}

/* 64 slots in sets of 4: a full set evicts its oldest; what is evicted
 * is asked again, never taken for another agent. */
static void
test_eviction(void **state)
{
	struct jobseen *js = *state;
	uint64_t m = jobseen_mark(js);
	char id[16];
	int i, kept = 0;

	for (i = 0; i < 200; i++) {
		snprintf(id, sizeof id, "agent%d", i);
		jobseen_quiet_put(js, id, m, 1000 + i);
	}
	for (i = 0; i < 200; i++) {
		snprintf(id, sizeof id, "agent%d", i);
		kept += jobseen_quiet(js, id, 2000) != 0;
	}
	assert_true(kept > 0 && kept <= 64);
	assert_int_equal(jobseen_quiet(js, "agent-none", 2000), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_quiet_until_announced,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_announced_during_the_read,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_agents_stay_quiet,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_off_and_switch_end_marks,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_age, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eviction, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
