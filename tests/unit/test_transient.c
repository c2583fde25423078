/* test_transient.c — agentd/transient.c: systemd-run's argv for a job
 * (each '$' doubled, options before "--", the command's arguments after
 * it untouched otherwise), when transient units are used, and the
 * capture of a command's output outside systemd. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"

static void
test_escape(void **state)
{
	static const char *const cases[][2] = {
		{ "", "" },
		{ "plain", "plain" },
		{ "$HOME", "$$HOME" },
		{ "${PATH}", "$${PATH}" },
		{ "$$", "$$$$" },
		{ "a$", "a$$" },
		{ "%n %i", "%n %i" },	/* specifiers: none over D-Bus */
	};
	size_t i;
	char *s;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		s = transient_escape(cases[i][0]);
		assert_non_null(s);
		assert_string_equal(s, cases[i][1]);
		free(s);
	}
}

static size_t
index_of(char **v, const char *s)
{
	size_t i;

	for (i = 0; v[i]; i++)
		if (strcmp(v[i], s) == 0)
			return i;
	return (size_t)-1;
}

static void
test_argv(void **state)
{
	char *argv[] = { "sh", "-c", "echo $HOME", "--unit=x", NULL };
	char *envp[] = { "A=1", "B=$x y", NULL };
	struct transient_opts o;
	char **v;
	size_t dd;

	memset(&o, 0, sizeof o);
	o.unit = "agentd-job-7.service";
	o.description = "agentd: exec job 7";
	o.cwd = "/tmp";
	o.envp = envp;
	o.property = "PartOf=agentd.service";
	o.max_s = 15;
	o.hush = 1;
	v = transient_argv(argv, &o);
	assert_non_null(v);
	assert_string_equal(v[0], "/usr/bin/systemd-run");
	assert_int_not_equal(index_of(v, "--pipe"), (size_t)-1);
	assert_int_not_equal(index_of(v, "--wait"), (size_t)-1);
	assert_int_not_equal(index_of(v, "--service-type=exec"), (size_t)-1);
	dd = index_of(v, "--");
	assert_int_not_equal(dd, (size_t)-1);
	assert_true(index_of(v, "--unit=agentd-job-7.service") < dd);
	assert_true(index_of(v, "--working-directory=/tmp") < dd);
	assert_true(index_of(v, "--property=PartOf=agentd.service") < dd);
	assert_true(index_of(v, "--property=RuntimeMaxSec=15") < dd);
	assert_true(index_of(v, "--property=LogLevelMax=notice") < dd);
	/* The environment is not expanded by systemd: as it is. */
	assert_true(index_of(v, "--setenv=B=$x y") < dd);
	assert_string_equal(v[dd + 1], "sh");
	assert_string_equal(v[dd + 2], "-c");
	assert_string_equal(v[dd + 3], "echo $$HOME");
	/* An argument that looks like an option stays an argument. */
	assert_string_equal(v[dd + 4], "--unit=x");
	assert_null(v[dd + 5]);
	transient_free(v);

	memset(&o, 0, sizeof o);
	v = transient_argv(argv, &o);
	assert_non_null(v);
	assert_int_equal(index_of(v, "--working-directory=/tmp"), (size_t)-1);
	assert_string_equal(v[index_of(v, "--") + 1], "sh");
	transient_free(v);
}

static void
test_detect(void **state)
{
	assert_int_equal(transient_detect(TRANSIENT_YES), 1);
	assert_int_equal(transient_detect(TRANSIENT_NO), 0);
	/* auto: systemd must be this process's parent and have named it. */
	unsetenv("INVOCATION_ID");
	assert_int_equal(transient_detect(TRANSIENT_AUTO), 0);
	setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef", 1);
	if (getppid() != 1)
		assert_int_equal(transient_detect(TRANSIENT_AUTO), 0);
	unsetenv("INVOCATION_ID");
}

/* Not under systemd (transient_init not called): argv runs as a child,
 * looked up in PATH. */
static void
test_capture_direct(void **state)
{
	char *argv[] = { "sh", "-c", "echo out $0; echo err >&2; exit 3", "$x",
	    NULL };
	char *sleeper[] = { "sleep", "30", NULL };
	char *cat[] = { "sh", "-c", "yes | head -c 100000", NULL };
	struct transient_opts o;
	char *out;
	int status;

	memset(&o, 0, sizeof o);
	o.quiet = 1;
	assert_false(transient_on());
	assert_int_equal(transient_capture(argv, &o, 1024, 10000, &out,
	    &status), 0);
	assert_int_equal(status, 3);
	assert_string_equal(out, "out $x\n");
	free(out);
	/* Killed at its timeout: no status. */
	assert_int_equal(transient_capture(sleeper, &o, 1024, 200, NULL,
	    &status), 0);
	assert_int_equal(status, -1);
	/* Capped. */
	assert_int_equal(transient_capture(cat, &o, 1000, 10000, &out,
	    &status), 0);
	assert_int_equal(strlen(out), 1000);
	free(out);
}

/* A command starts with agentd's ignored SIGPIPE and blocked signals
 * undone (a pipeline in it must end on a closed pipe). */
static void
test_capture_signal_state(void **state)
{
	char *argv[] = { "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status",
	    NULL };
	struct transient_opts o;
	unsigned long long blk = 1, ign = 1;
	sigset_t term, old;
	char *out;
	int status;

	memset(&o, 0, sizeof o);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &old);
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(transient_capture(argv, &o, 1024, 10000, &out,
	    &status), 0);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	assert_int_equal(status, 0);
	assert_int_equal(sscanf(out, "SigBlk: %llx SigIgn: %llx", &blk, &ign),
	    2);
	free(out);
	assert_true(blk == 0);
	assert_true((ign & (1ULL << (SIGPIPE - 1))) == 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_capture_direct),
		cmocka_unit_test(test_capture_signal_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
