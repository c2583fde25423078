/* test_install_unzstd.c — the root image's write (agentd/install_unzstd.c):
 * what the zstd tool compressed comes out byte for byte, through O_DIRECT
 * (a file on /tmp's ext4) and without it (tmpfs has none), whole 1 MiB
 * chunks, an unaligned tail and concatenated frames alike; exactly the
 * bytes the plan says, nothing past them; corrupt, cut, short and long
 * images refused with a reason. */
#define _GNU_SOURCE
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

#define MIB	(1 << 20)

static char dir[64], shm[64];

static void
path(char *out, size_t len, const char *in, const char *name)
{
	snprintf(out, len, "%s/%s", in, name);
}

static void
write_file(const char *p, const unsigned char *data, size_t len)
{
	int fd;

	assert_true((fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static unsigned char *
read_file(const char *p, size_t *len)
{
	struct stat st;
	unsigned char *b;
	int fd;

	assert_true((fd = open(p, O_RDONLY)) >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_non_null(b = malloc((size_t)st.st_size + 1));
	assert_int_equal(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static int
run(const char *const argv[])
{
	pid_t pid;
	int st;

	if ((pid = fork()) == 0) {
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* len bytes like a filesystem image: noise, then runs of zeros. */
static unsigned char *
image_bytes(size_t len, unsigned seed)
{
	unsigned char *b = malloc(len);

	assert_non_null(b);
	srandom(seed);
	for (size_t i = 0; i < len; i++)
		b[i] = (i / 65536) % 3 == 2 ? 0 : (unsigned char)random();
	return b;
}

/* name.raw and name.zst (the zstd tool's) in dir; the raw bytes. */
static unsigned char *
compressed(const char *name, size_t len, unsigned seed)
{
	char raw[128], zst[128];
	unsigned char *b = image_bytes(len, seed);

	snprintf(raw, sizeof raw, "%s/%s.raw", dir, name);
	snprintf(zst, sizeof zst, "%s/%s.zst", dir, name);
	write_file(raw, b, len);
	assert_int_equal(run((const char *const[]){ "zstd", "-q", "-f", "-T0",
	    raw, "-o", zst, NULL }), 0);
	return b;
}

/* A volume of size bytes, every byte 0xaa. */
static void
volume(const char *p, size_t size)
{
	unsigned char *b = malloc(size);

	assert_non_null(b);
	memset(b, 0xaa, size);
	write_file(p, b, size);
	free(b);
}

static long long seen_last;
static int seen_calls;

static void
seen(void *ctx, long long done)
{
	assert_ptr_equal(ctx, &seen_calls);
	assert_true(done > seen_last);
	seen_last = done;
	seen_calls++;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/bst-unzstd-XXXXXX");
	snprintf(shm, sizeof shm, "/dev/shm/bst-unzstd-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_non_null(mkdtemp(shm));
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	run((const char *const[]){ "rm", "-rf", dir, shm, NULL });
	return 0;
}

/* len bytes through install_unzstd onto a volume in where, 1 MiB larger:
 * the bytes as they were, the rest of the volume untouched. */
static void
round_trip(const char *where, size_t len, unsigned seed)
{
	char zst[128], vol[128], why[INST_ERRLEN];
	unsigned char *want = compressed("img", len, seed), *got;
	size_t got_len;

	snprintf(zst, sizeof zst, "%s/img.zst", dir);
	path(vol, sizeof vol, where, "vol");
	volume(vol, len + MIB);
	seen_last = 0;
	seen_calls = 0;
	assert_int_equal(install_unzstd(zst, vol, (long long)len, seen,
	    &seen_calls, why, sizeof why), 0);
	assert_int_equal(seen_last, (long long)len);
	assert_int_equal(seen_calls, (int)((len + MIB - 1) / MIB));
	got = read_file(vol, &got_len);
	assert_int_equal(got_len, len + MIB);
	assert_memory_equal(got, want, len);
	for (size_t i = len; i < got_len; i++)
		if (got[i] != 0xaa)
			fail_msg("byte %zu past the image was written", i);
	free(got);
	free(want);
}

static void
test_direct_whole_chunks(void **state)
{
	(void)state;
	round_trip(dir, 3 * MIB, 1);
}

static void
test_direct_unaligned_tail(void **state)
{
	(void)state;
	round_trip(dir, 2 * MIB + 1000, 2);
}

static void
test_without_direct(void **state)
{
	(void)state;
	round_trip(shm, MIB + 4096, 3);
}

/* Two frames one after the other (zstd's own tool decompresses that as
 * one stream). */
static void
test_concatenated_frames(void **state)
{
	char a[128], b[128], ab[128], vol[128], why[INST_ERRLEN];
	unsigned char *x = compressed("a", MIB + 512, 4), *y, *got, *both;
	size_t alen, blen, got_len;

	(void)state;
	y = compressed("b", 3 * 4096, 5);
	snprintf(a, sizeof a, "%s/a.zst", dir);
	snprintf(b, sizeof b, "%s/b.zst", dir);
	snprintf(ab, sizeof ab, "%s/ab.zst", dir);
	got = read_file(a, &alen);
	both = read_file(b, &blen);
	assert_non_null(got = realloc(got, alen + blen));
	memcpy(got + alen, both, blen);
	write_file(ab, got, alen + blen);
	free(got);
	free(both);
	path(vol, sizeof vol, dir, "vol");
	volume(vol, 2 * MIB);
	assert_int_equal(install_unzstd(ab, vol, MIB + 512 + 3 * 4096, NULL,
	    NULL, why, sizeof why), 0);
	got = read_file(vol, &got_len);
	assert_memory_equal(got, x, MIB + 512);
	assert_memory_equal(got + MIB + 512, y, 3 * 4096);
	free(got);
	free(x);
	free(y);
}

static void
refused(const char *zst, long long want, const char *reason)
{
	char vol[128], why[INST_ERRLEN] = "";

	path(vol, sizeof vol, dir, "vol");
	volume(vol, 4 * MIB);
	assert_int_equal(install_unzstd(zst, vol, want, NULL, NULL, why,
	    sizeof why), -1);
	if (strstr(why, reason) == NULL)
		fail_msg("'%s' does not say '%s'", why, reason);
}

static void
test_refusals(void **state)
{
	char zst[128], bad[128];
	unsigned char *raw, *z;
	size_t zlen;

	(void)state;
	free(compressed("img", 2 * MIB, 6));
	snprintf(zst, sizeof zst, "%s/img.zst", dir);
	snprintf(bad, sizeof bad, "%s/bad.zst", dir);
	refused(zst, 2 * MIB - 4096, "holds more than the");
	refused(zst, 2 * MIB + 4096, "holds 2097152 bytes, the plan says");
	z = read_file(zst, &zlen);
	write_file(bad, z, zlen / 2);
	refused(bad, 2 * MIB, "ends inside its compressed data");
	z[zlen / 2] ^= 0xff;
	z[zlen / 2 + 1] ^= 0xff;
	write_file(bad, z, zlen);
	refused(bad, 2 * MIB, "zstd:");
	raw = image_bytes(4096, 7);	/* not zstd at all */
	write_file(bad, raw, 4096);
	refused(bad, 4096, "zstd:");
	write_file(bad, raw, 0);
	refused(bad, 4096, "empty");
	refused("/nonexistent/img.zst", 4096, "No such file");
	free(raw);
	free(z);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_direct_whole_chunks),
		cmocka_unit_test(test_direct_unaligned_tail),
		cmocka_unit_test(test_without_direct),
		cmocka_unit_test(test_concatenated_frames),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
