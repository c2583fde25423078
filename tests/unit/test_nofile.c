/* test_nofile.c — lib/nofile.c: the soft open-file limit goes up to the
 * hard one, and what it reports is the limit in force. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "nofile.h"

static void
test_raised_to_the_hard_limit(void **state)
{
	struct rlimit rl, low;
	rlim_t now;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max > 64) {		/* lower the soft limit first */
		low = rl;
		low.rlim_cur = 64;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	}
	assert_int_equal(nofile_raise(&now), rl.rlim_max > 64 ||
	    rl.rlim_cur < rl.rlim_max ? 1 : 0);
	assert_true(now == rl.rlim_max);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_true(rl.rlim_cur == rl.rlim_max);
	/* At the hard limit already: nothing to do, the same answer. */
	assert_int_equal(nofile_raise(&now), 0);
	assert_true(now == rl.rlim_max);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raised_to_the_hard_limit),
	};

	return cmocka_run_group_tests_name("nofile", tests, NULL, NULL);
}
