/* test_container.c — lib/container.c: the refs bastion, bastionctl and
 * agentd accept, the actions of a container job, and which env values
 * are masked as secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "container.h"

static void
test_refs_accepted(void **state)
{
	char max[CONTAINER_REF_MAX + 1];

	assert_true(container_ref_valid("web1"));
	assert_true(container_ref_valid("0123abcdef"));
	assert_true(container_ref_valid("my_app.web-1"));
	assert_true(container_ref_valid("A"));
	memset(max, 'a', CONTAINER_REF_MAX);
	max[CONTAINER_REF_MAX] = '\0';
	assert_true(container_ref_valid(max));	/* 128 characters */
}

static void
test_refs_refused(void **state)
{
	char over[CONTAINER_REF_MAX + 2];
	static const char *const bad[] = { "", "../x", "..", ".x", "-x", "_x",
	    "a;b", "a b", "a/b", "a\nb", "a$b", "a%2Fb", "ä", NULL };
	int i;

	for (i = 0; bad[i]; i++)
		if (container_ref_valid(bad[i]))
			fail_msg("accepted \"%s\"", bad[i]);
	assert_false(container_ref_valid(NULL));
	memset(over, 'a', CONTAINER_REF_MAX + 1);
	over[CONTAINER_REF_MAX + 1] = '\0';
	assert_false(container_ref_valid(over));	/* 129 characters */
}

static void
test_actions(void **state)
{
	static const char *const all[] = { "start", "stop", "restart", "pause",
	    "unpause", "kill", "remove", "logs", "inspect", "exec", NULL };
	int i;

	for (i = 0; all[i]; i++)
		assert_true(container_action_known(all[i]));
	assert_false(container_action_known("rm"));
	assert_false(container_action_known("attach"));
	assert_false(container_action_known(""));
	assert_false(container_action_known(NULL));
}

static void
test_env_masked(void **state)
{
	json_t *env = json_pack("[s, s, s, s, s, s, s, s, s, i]",
	    "DB_PASSWORD=hunter2", "api_token=abc", "AWS_SECRET_ACCESS_KEY=x",
	    "PLAIN=visible", "PATH=/bin", "NOEQUALS", "PWD=/root",
	    "SSL_CERT=pem", "EMPTY_PASS=", 42);

	assert_int_equal(container_env_mask(env), 5);
	assert_string_equal(json_string_value(json_array_get(env, 0)),
	    "DB_PASSWORD=" CONTAINER_MASK);
	assert_string_equal(json_string_value(json_array_get(env, 1)),
	    "api_token=" CONTAINER_MASK);
	assert_string_equal(json_string_value(json_array_get(env, 2)),
	    "AWS_SECRET_ACCESS_KEY=" CONTAINER_MASK);
	assert_string_equal(json_string_value(json_array_get(env, 3)),
	    "PLAIN=visible");
	assert_string_equal(json_string_value(json_array_get(env, 4)),
	    "PATH=/bin");
	assert_string_equal(json_string_value(json_array_get(env, 5)),
	    "NOEQUALS");
	assert_string_equal(json_string_value(json_array_get(env, 6)),
	    "PWD=/root");
	assert_string_equal(json_string_value(json_array_get(env, 7)),
	    "SSL_CERT=" CONTAINER_MASK);
	assert_string_equal(json_string_value(json_array_get(env, 8)),
	    "EMPTY_PASS=" CONTAINER_MASK);
	/* Not a string: nothing of it is kept. */
	assert_string_equal(json_string_value(json_array_get(env, 9)), "");
	/* Masking twice changes nothing more. */
	assert_int_equal(container_env_mask(env), 0);
	json_decref(env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refs_accepted),
		cmocka_unit_test(test_refs_refused),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_env_masked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
