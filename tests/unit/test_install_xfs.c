/* test_install_xfs.c — the installer's new UUID for the root filesystem
 * (agentd/install_xfs.c) on real XFS filesystems that mkfs.xfs makes in
 * temporary files, judged by xfsprogs itself: xfs_db reads the new UUID,
 * xfs_repair -n (every superblock, every CRC, the log) finds nothing to
 * repair. What is not a clean v5 XFS is refused, the file unchanged. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "installer.h"

#define FS_SIZE		(320LL << 20)	/* mkfs.xfs's smallest is 300 MiB */
#define HEAD_BYTES	(1 << 20)	/* compared before and after a refusal */

/* The file a test made, removed after it whatever happened. */
static char tmp_path[256];

static char *const tool_env[] = {
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL
};

/* Runs argv; its standard output into out (NUL-terminated) when not
 * NULL. The exit status, -1 when it did not exit. */
static int
run(char *const argv[], char *out, size_t outlen)
{
	posix_spawn_file_actions_t fa;
	char scratch[256];
	int fds[2], st, null;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	assert_true((null = open("/dev/null", O_WRONLY | O_CLOEXEC)) >= 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_adddup2(&fa, null, 2);
	assert_int_equal(posix_spawnp(&pid, argv[0], &fa, NULL, argv, tool_env),
	    0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	close(null);
	while ((n = read(fds[0], out ? out + got : scratch,
	    out ? outlen - 1 - got : sizeof scratch)) > 0)
		if (out)
			got += (size_t)n;
	close(fds[0]);
	if (out)
		out[got] = '\0';
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A temporary file of FS_SIZE (sparse), with an XFS made by mkfs.xfs and
 * the extra options when mkfs_opt is not NULL. */
static void
make_file(char *path, size_t len, const char *mkfs_opt)
{
	int fd;

	snprintf(path, len, "%s/test_install_xfs.XXXXXX", getenv("TMPDIR") ?
	    getenv("TMPDIR") : "/tmp");
	assert_true((fd = mkstemp(path)) >= 0);
	snprintf(tmp_path, sizeof tmp_path, "%s", path);
	assert_int_equal(ftruncate(fd, FS_SIZE), 0);
	close(fd);
	if (mkfs_opt == NULL)
		return;
	if (mkfs_opt[0] == '\0')
		assert_int_equal(run((char *const[]){ "mkfs.xfs", "-q", "-f",
		    path, NULL }, NULL, 0), 0);
	else
		assert_int_equal(run((char *const[]){ "mkfs.xfs", "-q", "-f",
		    (char *)mkfs_opt, path, NULL }, NULL, 0), 0);
}

/* What xfs_db prints for "sb 0" then "p FIELD": the value. */
static void
db_field(const char *path, const char *field, char *out, size_t len)
{
	char buf[512], cmd[64], *v;

	snprintf(cmd, sizeof cmd, "p %s", field);
	assert_int_equal(run((char *const[]){ "xfs_db", "-r", "-c", "sb 0",
	    "-c", cmd, (char *)path, NULL }, buf, sizeof buf), 0);
	assert_non_null(v = strstr(buf, " = "));
	v += 3;
	v[strcspn(v, "\n")] = '\0';
	assert_true(strlen(v) < len);
	memcpy(out, v, strlen(v) + 1);
}

/* xfs_db's "uuid" (which checks every AG's copy against the first). */
static void
db_uuid(const char *path, char *out, size_t len)
{
	char buf[512];

	assert_int_equal(run((char *const[]){ "xfs_db", "-r", "-c", "uuid",
	    (char *)path, NULL }, buf, sizeof buf), 0);
	assert_null(strstr(buf, "differs"));
	assert_int_equal(strncmp(buf, "UUID = ", 7), 0);
	buf[strcspn(buf, "\n")] = '\0';
	assert_true(strlen(buf + 7) < len);
	memcpy(out, buf + 7, strlen(buf + 7) + 1);
}

static int
repair_clean(const char *path)
{
	return run((char *const[]){ "xfs_repair", "-n", (char *)path, NULL },
	    NULL, 0);
}

/* Mount checks the log's head record against the superblock's UUID;
 * xfs_repair -n does not, xfs_logprint does. */
static void
assert_log_clean(const char *path)
{
	char buf[4096];

	assert_int_equal(run((char *const[]){ "xfs_logprint", "-t",
	    (char *)path, NULL }, buf, sizeof buf), 0);
	assert_null(strstr(buf, "mismatched uuid"));
	assert_non_null(strstr(buf, "state: <CLEAN>"));
}

static void
read_head(const char *path, unsigned char *buf)
{
	int fd;

	assert_true((fd = open(path, O_RDONLY)) >= 0);
	assert_int_equal(pread(fd, buf, HEAD_BYTES, 0), HEAD_BYTES);
	close(fd);
}

/* A new UUID on path (into u), as xfs_db reads it; repair and the log
 * clean. */
static void
assert_new_uuid(const char *path, char *u, size_t ulen)
{
	char seen[64], why[INST_ERRLEN];

	assert_int_equal(install_xfs_uuid(path, u, ulen, why, sizeof why), 0);
	db_uuid(path, seen, sizeof seen);
	assert_string_equal(seen, u);
	assert_int_equal(repair_clean(path), 0);
	assert_log_clean(path);
}

static void
test_new_uuid_twice(void **state)
{
	char path[256], old[64], u1[40], u2[40], seen[64];

	(void)state;
	make_file(path, sizeof path, "");
	db_uuid(path, old, sizeof old);

	assert_new_uuid(path, u1, sizeof u1);
	assert_int_equal(strlen(u1), 36);
	assert_int_equal(u1[14], '4');			/* version 4 */
	assert_non_null(strchr("89ab", u1[19]));	/* RFC 4122 */
	assert_string_not_equal(u1, old);
	/* The metadata keeps the UUID it was stamped with. */
	db_field(path, "meta_uuid", seen, sizeof seen);
	assert_string_equal(seen, old);

	/* Again: META_UUID is set now, the metadata's UUID stays. */
	assert_new_uuid(path, u2, sizeof u2);
	assert_string_not_equal(u2, u1);
	db_field(path, "meta_uuid", seen, sizeof seen);
	assert_string_equal(seen, old);
}

/* The image builder's geometry: two AGs (image/os-fs.sh). */
static void
test_two_ags(void **state)
{
	char path[256], u[40];

	(void)state;
	make_file(path, sizeof path, "-dagcount=2");
	assert_new_uuid(path, u, sizeof u);
}

/* After xfs_db's own "uuid generate": a log it wrote afresh at cycle 2
 * (the head found by the cycle's change, not at the first zero). */
static void
test_after_xfs_db(void **state)
{
	char path[256], u[40];

	(void)state;
	make_file(path, sizeof path, "");
	assert_int_equal(run((char *const[]){ "xfs_db", "-x", "-c",
	    "uuid generate", path, NULL }, NULL, 0), 0);
	assert_new_uuid(path, u, sizeof u);
}

static void
refused(const char *path, const char *want)
{
	unsigned char *before, *after;
	char u[40] = "", why[INST_ERRLEN] = "";

	assert_non_null(before = malloc(HEAD_BYTES));
	assert_non_null(after = malloc(HEAD_BYTES));
	read_head(path, before);
	assert_int_equal(install_xfs_uuid(path, u, sizeof u, why, sizeof why),
	    -1);
	assert_non_null(strstr(why, want));
	assert_string_equal(u, "");
	read_head(path, after);
	assert_memory_equal(before, after, HEAD_BYTES);
	free(after);
	free(before);
}

static void
test_refuses_zeros(void **state)
{
	char path[256];

	(void)state;
	make_file(path, sizeof path, NULL);
	refused(path, "not an XFS filesystem");
}

static void
test_refuses_other_data(void **state)
{
	static const char ext4ish[] = "this is no filesystem at all\n";
	char path[256];
	int fd;

	(void)state;
	make_file(path, sizeof path, NULL);
	assert_true((fd = open(path, O_WRONLY)) >= 0);
	assert_int_equal(pwrite(fd, ext4ish, sizeof ext4ish, 0),
	    (ssize_t)sizeof ext4ish);
	close(fd);
	refused(path, "not an XFS filesystem");
}

static void
test_refuses_v4(void **state)
{
	char path[256], old[64], seen[64];

	(void)state;
	make_file(path, sizeof path, "-mcrc=0");
	db_uuid(path, old, sizeof old);
	refused(path, "XFS version 4, not 5");
	db_uuid(path, seen, sizeof seen);
	assert_string_equal(seen, old);
}

/* The byte offset of the log's first record header (mkfs's unmount
 * record) in path. */
static off_t
log_offset(const char *path)
{
	char start[32], cmd[64], buf[256], *p;

	db_field(path, "logstart", start, sizeof start);
	snprintf(cmd, sizeof cmd, "convert fsb %s byte", start);
	assert_int_equal(run((char *const[]){ "xfs_db", "-r", "-c", cmd,
	    (char *)path, NULL }, buf, sizeof buf), 0);
	assert_non_null(p = strchr(buf, '('));
	return (off_t)strtoll(p + 1, NULL, 10);
}

/* A log whose last record is no unmount record: what a crash leaves
 * (the flag cleared in mkfs's record, whose CRC is 0: not checked). */
static void
test_refuses_dirty_log(void **state)
{
	unsigned char rec[1024];
	char path[256], old[64], seen[64];
	off_t off;
	int fd;

	(void)state;
	make_file(path, sizeof path, "");
	db_uuid(path, old, sizeof old);
	off = log_offset(path);
	assert_true((fd = open(path, O_RDWR)) >= 0);
	assert_int_equal(pread(fd, rec, sizeof rec, off), sizeof rec);
	assert_int_equal(rec[0], 0xfe);		/* XLOG_HEADER_MAGIC_NUM */
	assert_int_equal(rec[512 + 9], 0x20);	/* XLOG_UNMOUNT_TRANS */
	rec[512 + 9] = 0;
	assert_int_equal(pwrite(fd, rec, sizeof rec, off), sizeof rec);
	close(fd);
	refused(path, "the log is dirty");
	db_uuid(path, seen, sizeof seen);
	assert_string_equal(seen, old);

	/* A CRC that does not match the record: torn, refused. */
	assert_true((fd = open(path, O_RDWR)) >= 0);
	rec[512 + 9] = 0x20;
	rec[32] = 1;
	assert_int_equal(pwrite(fd, rec, sizeof rec, off), sizeof rec);
	close(fd);
	refused(path, "fails its CRC");
}

static void
test_refuses_missing(void **state)
{
	char u[40], why[INST_ERRLEN];

	(void)state;
	assert_int_equal(install_xfs_uuid("/nonexistent/root", u, sizeof u,
	    why, sizeof why), -1);
	assert_non_null(strstr(why, "/nonexistent/root: "));
}

static int
remove_tmp(void **state)
{
	(void)state;
	if (tmp_path[0] != '\0')
		unlink(tmp_path);
	tmp_path[0] = '\0';
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_new_uuid_twice, remove_tmp),
		cmocka_unit_test_teardown(test_two_ags, remove_tmp),
		cmocka_unit_test_teardown(test_after_xfs_db, remove_tmp),
		cmocka_unit_test_teardown(test_refuses_zeros, remove_tmp),
		cmocka_unit_test_teardown(test_refuses_other_data, remove_tmp),
		cmocka_unit_test_teardown(test_refuses_v4, remove_tmp),
		cmocka_unit_test_teardown(test_refuses_dirty_log, remove_tmp),
		cmocka_unit_test_teardown(test_refuses_missing, remove_tmp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
