/* test_sigas.c — lib/sigas.c: root without CAP_KILL (as under
 * bastion.service) still signals a child that dropped to another user,
 * and only through that user. Needs root, as the suite runs. */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <linux/capability.h>

#include <errno.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sigas.h"

static struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
static struct __user_cap_data_struct saved[2];

/* CAP_KILL out of the effective set (back in teardown). */
static int
drop_cap_kill(void **state)
{
	struct __user_cap_data_struct d[2];

	(void)state;
	if (getuid() != 0)
		fail_msg("test_sigas needs root (the suite runs as root)");
	assert_int_equal(syscall(SYS_capget, &hdr, saved), 0);
	memcpy(d, saved, sizeof d);
	d[0].effective &= ~(1U << CAP_KILL);
	assert_int_equal(syscall(SYS_capset, &hdr, d), 0);
	return 0;
}

static int
restore_caps(void **state)
{
	(void)state;
	return syscall(SYS_capset, &hdr, saved) == 0 ? 0 : -1;
}

static uid_t
nobody(void)
{
	struct passwd *pw = getpwnam("nobody");

	assert_non_null(pw);
	return pw->pw_uid;
}

/* A child that becomes uid and waits for a signal; its pid once it is
 * uid (it says so on a pipe). */
static pid_t
child_as(uid_t uid)
{
	int p[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		close(p[0]);
		if (syscall(SYS_setresuid, uid, uid, uid) == -1)
			_exit(3);
		(void)!write(p[1], "x", 1);
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

static int
wait_signal(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) ? WTERMSIG(status) : -1;
}

static void
test_other_user_through_its_uid(void **state)
{
	pid_t pid = child_as(nobody());

	(void)state;
	/* What the process alone may not do... */
	assert_int_equal(kill(pid, SIGTERM), -1);
	assert_int_equal(errno, EPERM);
	/* ...goes through a child that becomes nobody. */
	assert_int_equal(sigas_send(pid, SIGTERM, nobody()), 0);
	assert_int_equal(wait_signal(pid), SIGTERM);
}

static void
test_wrong_uid_is_refused(void **state)
{
	uid_t other = nobody() - 1;
	pid_t pid = child_as(nobody());

	(void)state;
	assert_int_equal(sigas_send(pid, SIGTERM, other), -1);
	assert_int_equal(errno, EPERM);
	/* Neither root nor "no user" opens the way. */
	assert_int_equal(sigas_send(pid, SIGTERM, 0), -1);
	assert_int_equal(sigas_send(pid, SIGTERM, (uid_t)-1), -1);
	assert_int_equal(sigas_send(pid, SIGKILL, nobody()), 0);
	assert_int_equal(wait_signal(pid), SIGKILL);
}

static void
test_own_uid_needs_no_child(void **state)
{
	pid_t pid = child_as(0);

	(void)state;
	assert_int_equal(sigas_send(pid, SIGTERM, (uid_t)-1), 0);
	assert_int_equal(wait_signal(pid), SIGTERM);
}

static void
test_gone_process(void **state)
{
	pid_t pid = child_as(nobody());

	(void)state;
	assert_int_equal(sigas_send(pid, SIGKILL, nobody()), 0);
	assert_int_equal(wait_signal(pid), SIGKILL);
	assert_int_equal(sigas_send(pid, SIGTERM, nobody()), -1);
	assert_int_equal(errno, ESRCH);
	assert_int_equal(sigas_send(0, SIGTERM, nobody()), -1);
	assert_int_equal(errno, ESRCH);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_other_user_through_its_uid),
		cmocka_unit_test(test_wrong_uid_is_refused),
		cmocka_unit_test(test_own_uid_needs_no_child),
		cmocka_unit_test(test_gone_process),
	};

	return cmocka_run_group_tests_name("sigas", tests, drop_cap_kill,
	    restore_caps);
}
