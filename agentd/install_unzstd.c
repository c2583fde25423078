/* install_unzstd.c — the root filesystem image onto its volume: zstd
 * decompressed here (libzstd) into aligned 1 MiB buffers written with
 * O_DIRECT. `zstd -d > DEV` went through the page cache: every byte
 * copied into it, then written back by the kernel, each page tracked on
 * the way. Through a pipe into an O_DIRECT writer a 738 MiB image already
 * took ~1 s less in the installer VM; here there is no pipe and no second
 * process either. Every block is written, zeros included: a reused
 * volume's old bytes must not show through. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "installer.h"

#define CHUNK	(1 << 20)
#define ALIGN	4096	/* any logical block size, and the page */

/* n bytes of buf at off: by O_DIRECT when it can, else buffered (a tail
 * that is not whole blocks; a file system without O_DIRECT). */
static int
put(int direct, int plain, const char *buf, size_t n, off_t off)
{
	int fd = direct >= 0 && n % ALIGN == 0 ? direct : plain;
	ssize_t w;

	while (n > 0) {
		if ((w = pwrite(fd, buf, n, off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		off += w;
		n -= (size_t)w;
	}
	return 0;
}

int
install_unzstd(const char *src, const char *dev, long long want,
    void (*progress)(void *, long long), void *ctx, char *why,
    size_t whylen)
{
	ZSTD_DCtx *z = NULL;
	ZSTD_inBuffer in = { NULL, 0, 0 };
	ZSTD_outBuffer out = { NULL, CHUNK, 0 };
	struct stat st;
	void *map = MAP_FAILED, *buf = NULL;
	long long done = 0;
	int sfd, direct = -1, plain = -1, rc = -1;
	size_t r = 1;

	if ((sfd = open(src, O_RDONLY | O_CLOEXEC)) == -1 || fstat(sfd, &st)
	    == -1) {
		snprintf(why, whylen, "%s: %s", src, strerror(errno));
		goto out;
	}
	if (st.st_size == 0) {
		snprintf(why, whylen, "%s: empty", src);
		goto out;
	}
	if ((map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, sfd,
	    0)) == MAP_FAILED) {
		snprintf(why, whylen, "%s: %s", src, strerror(errno));
		goto out;
	}
	if ((plain = open(dev, O_WRONLY | O_CLOEXEC)) == -1) {
		snprintf(why, whylen, "%s: %s", dev, strerror(errno));
		goto out;
	}
	direct = open(dev, O_WRONLY | O_DIRECT | O_CLOEXEC);	/* -1: plain */
	if (posix_memalign(&buf, ALIGN, CHUNK) != 0 || (z = ZSTD_createDCtx())
	    == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	in.src = map;
	in.size = (size_t)st.st_size;
	out.dst = buf;
	/* r == 0: a frame ended and all of it is out; more input may hold
	 * another frame. */
	while (in.pos < in.size || out.pos > 0 || r != 0) {
		if (in.pos < in.size || r != 0) {
			r = ZSTD_decompressStream(z, &out, &in);
			if (ZSTD_isError(r)) {
				snprintf(why, whylen, "the root image: zstd: %s",
				    ZSTD_getErrorName(r));
				goto out;
			}
			if (r != 0 && in.pos == in.size && out.pos < out.size) {
				snprintf(why, whylen, "the root image ends "
				    "inside its compressed data");
				goto out;
			}
			if (out.pos < out.size && (in.pos < in.size || r != 0))
				continue;	/* room left: decompress more */
		}
		if (done + (long long)out.pos > want) {
			snprintf(why, whylen, "the root image holds more than "
			    "the %lld bytes the plan says", want);
			goto out;
		}
		if (put(direct, plain, buf, out.pos, (off_t)done) == -1) {
			snprintf(why, whylen, "%s: %s", dev, strerror(errno));
			goto out;
		}
		done += (long long)out.pos;
		out.pos = 0;
		if (progress)
			progress(ctx, done);
	}
	if (done != want) {
		snprintf(why, whylen, "the root image holds %lld bytes, the "
		    "plan says %lld", done, want);
		goto out;
	}
	if ((direct >= 0 && fsync(direct) == -1) || fsync(plain) == -1) {
		snprintf(why, whylen, "%s: %s", dev, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	ZSTD_freeDCtx(z);
	free(buf);
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	if (sfd >= 0)
		close(sfd);
	if (direct >= 0)
		close(direct);
	if (plain >= 0)
		close(plain);
	return rc;
}
