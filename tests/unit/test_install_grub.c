/* test_install_grub.c — the installer's in-process grub-bios-setup
 * (agentd/install_grub.c) against the real one: the same GPT disk image,
 * set up once by each, must come out identical byte for byte (MBR boot
 * code, BPB and partition table kept, blocklist, core.img in the BIOS
 * boot partition). Needs root, a loop device and grub-pc-bin (make deps):
 * grub-bios-setup only takes a directory on a mounted block device. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "installer.h"

#define GRUB_DIR	"/usr/lib/grub/i386-pc"
#define DISK_MIB	16

static char dir[64];

/* argv run to the end, stdin from in (or /dev/null): its exit status. */
static int
run_in(const char *in, const char *const argv[])
{
	pid_t pid;
	int st;

	if ((pid = fork()) == 0) {
		int fd = open(in ? in : "/dev/null", O_RDONLY);

		if (fd == -1 || dup2(fd, 0) == -1)
			_exit(126);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
run(const char *const argv[])
{
	return run_in(NULL, argv);
}

static void
path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

static void
write_file(const char *name, const void *data, size_t len)
{
	char p[128];
	int fd;

	path(p, sizeof p, name);
	assert_true((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* The whole file (malloc'd). */
static unsigned char *
read_file(const char *name, size_t *len)
{
	unsigned char *out = malloc((DISK_MIB << 20) + 1);
	char p[128];
	ssize_t n;
	int fd;

	assert_non_null(out);
	path(p, sizeof p, name);
	assert_true((fd = open(p, O_RDONLY)) >= 0);
	assert_true((n = read(fd, out, (DISK_MIB << 20) + 1)) > 0);
	close(fd);
	*len = (size_t)n;
	return out;
}

/* A fresh GPT disk as the installer lays it out, with bytes in the MBR's
 * BPB area and disk signature that GRUB must keep. */
static void
make_disk(const char *name)
{
	static const char layout[] = "label: gpt\n"
	    "size=1MiB, type=21686148-6449-6E6F-744E-656564454649\n"
	    "size=1MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n"
	    "size=4MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"
	    "type=E6D6D379-F507-44C2-A23C-238F2A3DF928\n";
	char p[128], s[128];
	unsigned char mark[0x57];
	int fd;

	path(p, sizeof p, name);
	path(s, sizeof s, "layout.sfdisk");
	write_file("layout.sfdisk", layout, sizeof layout - 1);
	assert_true((fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600)) >= 0);
	assert_int_equal(ftruncate(fd, DISK_MIB << 20), 0);
	close(fd);
	assert_int_equal(run_in(s, (const char *const[]){ "sfdisk", "-q", p,
	    NULL }), 0);
	for (size_t i = 0; i < sizeof mark; i++)
		mark[i] = (unsigned char)(0x41 + i);
	assert_true((fd = open(p, O_RDWR)) >= 0);
	assert_int_equal(pwrite(fd, mark, sizeof mark, 3), (ssize_t)sizeof mark);
	assert_int_equal(pwrite(fd, "\x12\x34\x56\x78", 4, 0x1b8), 4);
	close(fd);
}

static int
setup(void **state)
{
	char core[128];

	(void)state;
	snprintf(dir, sizeof dir, "/tmp/bst-grub-XXXXXX");
	assert_non_null(mkdtemp(dir));
	path(core, sizeof core, "core.img");
	/* A core like the installer's: GPT, ext2, prefix /grub. */
	assert_int_equal(run((const char *const[]){ "grub-mkimage", "-O",
	    "i386-pc", "-d", GRUB_DIR, "-p", "/grub", "-o", core, "biosdisk",
	    "part_gpt", "ext2", NULL }), 0);
	make_disk("ours.img");
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	run((const char *const[]){ "rm", "-rf", dir, NULL });
	return 0;
}

/* The real grub-bios-setup onto name, its files in a directory on a
 * loop-mounted ext4 (it insists on finding their device), in a mount
 * namespace of its own. */
static int
grub_bios_setup(const char *name)
{
	static const char script[] =
	    "set -e\n"
	    "mkdir -p \"$1/mnt\"\n"
	    "truncate -s 4M \"$1/files.img\"\n"
	    "mke2fs -q -F -t ext4 \"$1/files.img\"\n"
	    "mount -o loop \"$1/files.img\" \"$1/mnt\"\n"
	    "mkdir -p \"$1/mnt/grub/i386-pc\"\n"
	    "cp \"$1/core.img\" " GRUB_DIR "/boot.img \"$1/mnt/grub/i386-pc/\"\n"
	    "loop=$(losetup -f --show \"$1/$2\")\n"
	    "rc=0\n"
	    GRUB_DIR "/grub-bios-setup --no-rs-codes -d \"$1/mnt/grub/i386-pc\""
	    " \"$loop\" || rc=$?\n"
	    "losetup -d \"$loop\"\n"
	    "umount \"$1/mnt\"\n"
	    "exit $rc\n";

	return run((const char *const[]){ "unshare", "--mount", "--propagation",
	    "private", "sh", "-c", script, "sh", dir, name, NULL });
}

static void
test_same_bytes_as_grub_bios_setup(void **state)
{
	char ours[128], core[128], why[INST_ERRLEN];
	unsigned char *a, *b, *before;
	size_t alen, blen, blen0;

	(void)state;
	path(ours, sizeof ours, "ours.img");
	path(core, sizeof core, "core.img");
	before = read_file("ours.img", &blen0);
	write_file("theirs.img", before, blen0);

	assert_int_equal(grub_bios_setup("theirs.img"), 0);
	assert_int_equal(install_grub_bios_embed(ours, 2048, 2048,
	    GRUB_DIR "/boot.img", core, why, sizeof why), 0);

	a = read_file("ours.img", &alen);
	b = read_file("theirs.img", &blen);
	assert_int_equal(alen, blen);
	/* It did write: the MBR's code and core.img are there. */
	assert_memory_not_equal(a, before, 440);
	assert_int_equal(a[0x5c], 0x00);
	assert_int_equal(a[0x5d], 0x08);	/* kernel sector 2048 */
	assert_int_equal(a[0x1fe], 0x55);
	assert_int_equal(a[0x1ff], 0xaa);
	assert_memory_equal(a + 3, "ABCDEFGH", 8);	/* BPB area kept */
	assert_memory_equal(a + 0x1b8, "\x12\x34\x56\x78", 4);
	for (size_t off = 0; off < alen; off += 512)
		if (memcmp(a + off, b + off, 512) != 0)
			fail_msg("sector %zu differs from grub-bios-setup's",
			    off / 512);
	free(a);
	free(b);
	free(before);
}

static void
test_refusals_leave_the_disk(void **state)
{
	char ours[128], core[128], small[128], why[INST_ERRLEN];
	unsigned char *now, *before;
	size_t len, len0;

	(void)state;
	make_disk("ours.img");
	path(ours, sizeof ours, "ours.img");
	path(core, sizeof core, "core.img");
	path(small, sizeof small, "small.img");
	before = read_file("ours.img", &len0);

	/* core.img larger than the partition. */
	assert_int_equal(install_grub_bios_embed(ours, 2048, 8, GRUB_DIR
	    "/boot.img", core, why, sizeof why), -1);
	assert_non_null(strstr(why, "does not fit"));
	/* A boot image that is not one sector; one that is missing. */
	write_file("small.img", "short", 5);
	assert_int_equal(install_grub_bios_embed(ours, 2048, 2048, small, core,
	    why, sizeof why), -1);
	assert_non_null(strstr(why, "not a GRUB image"));
	assert_int_equal(install_grub_bios_embed(ours, 2048, 2048,
	    "/nonexistent/boot.img", core, why, sizeof why), -1);
	assert_non_null(strstr(why, "No such file"));

	now = read_file("ours.img", &len);
	assert_int_equal(len, len0);
	assert_memory_equal(now, before, len);
	free(now);
	free(before);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_bytes_as_grub_bios_setup),
		cmocka_unit_test(test_refusals_leave_the_disk),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
