/* install_grub.c — GRUB's BIOS boot code onto the install disk: what
 * grub-bios-setup --no-rs-codes does for a GPT disk with a BIOS boot
 * partition, in-process. That program spends ~1.6 s of an emulated CPU
 * probing every device for what bastion's own layout already says.
 *
 * The work (GRUB's util/setup.c, embedding path): core.img goes into the
 * BIOS boot partition; the blocklist at the end of core.img's first
 * sector says where the rest of it is; boot.img goes into the MBR with
 * the disk's BPB area and partition table kept, the sector core.img
 * starts at, and "use the drive the BIOS booted from". A unit test
 * compares every byte with the real grub-bios-setup's. */
#define _GNU_SOURCE
#define LOG_SUBSYS "install"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "installer.h"

/* GRUB's include/grub/i386/pc/boot.h and offsets.h (2.06). */
#define SECTOR		512
#define BPB_START	0x3
#define BPB_END		0x5a
#define KERNEL_SECTOR	0x5c
#define BOOT_DRIVE	0x64
#define DRIVE_CHECK	0x66
#define NT_MAGIC	0x1b8
#define PART_END	0x1fe
#define LIST_SIZE	12	/* u64 start, u16 len, u16 segment */
#define KERNEL_SEG	0x800
#define CORE_MAX	(0xffff * SECTOR)

static void
put_le(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* path's contents into a fresh buffer of at least min bytes (zeroed past
 * the file), its size in *len; NULL with why. */
static unsigned char *
read_whole(const char *path, size_t max, size_t *len, char *why,
    size_t whylen)
{
	unsigned char *b = NULL;
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 || fstat(fd, &st) ==
	    -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (st.st_size < SECTOR || (size_t)st.st_size > max) {
		snprintf(why, whylen, "%s: %lld bytes, not a GRUB image", path,
		    (long long)st.st_size);
		goto fail;
	}
	/* Rounded up to whole sectors, the tail zero (as setup.c does). */
	if ((b = calloc(1, ((size_t)st.st_size + SECTOR - 1) / SECTOR *
	    SECTOR)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	while (got < (size_t)st.st_size && (n = read(fd, b + got,
	    (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	if (got != (size_t)st.st_size) {
		snprintf(why, whylen, "%s: short read", path);
		goto fail;
	}
	close(fd);
	*len = got;
	return b;
fail:
	if (fd >= 0)
		close(fd);
	free(b);
	return NULL;
}

int
install_grub_bios_embed(const char *disk, long long part_start,
    long long part_sectors, const char *boot_img, const char *core_img,
    char *why, size_t whylen)
{
	unsigned char mbr[SECTOR], *boot = NULL, *core = NULL, *list;
	size_t boot_len, core_len, nsec;
	int fd = -1, rc = -1;

	if ((boot = read_whole(boot_img, SECTOR, &boot_len, why, whylen)) ==
	    NULL || (core = read_whole(core_img, CORE_MAX, &core_len, why,
	    whylen)) == NULL)
		goto out;
	nsec = (core_len + SECTOR - 1) / SECTOR;
	if (boot_len != SECTOR || nsec < 2) {
		snprintf(why, whylen, "%s or %s is not a GRUB BIOS image",
		    boot_img, core_img);
		goto out;
	}
	if (part_start < 1 || (long long)nsec > part_sectors) {
		snprintf(why, whylen, "core.img (%zu sectors) does not fit the "
		    "BIOS boot partition (%lld sectors at %lld)", nsec,
		    part_sectors, part_start);
		goto out;
	}
	if ((fd = open(disk, O_RDWR | O_CLOEXEC)) == -1 ||
	    pread(fd, mbr, sizeof mbr, 0) != (ssize_t)sizeof mbr) {
		snprintf(why, whylen, "%s: %s", disk, fd == -1 ?
		    strerror(errno) : "cannot read its first sector");
		goto out;
	}

	/* core.img's first sector loads the rest: one run of sectors, right
	 * after it, to segment 0x820, then a terminator below it. */
	list = core + SECTOR - LIST_SIZE;
	put_le(list, (uint64_t)part_start + 1, 8);
	put_le(list + 8, nsec - 1, 2);
	put_le(list + 10, KERNEL_SEG + (SECTOR >> 4), 2);
	memset(list - LIST_SIZE, 0, LIST_SIZE);

	/* boot.img: the disk's own BPB area and partition table (the GPT's
	 * protective MBR), a hard disk's drive check off (BIOSes that pass
	 * a wrong drive), the drive the BIOS says, core.img's sector. */
	memcpy(boot + BPB_START, mbr + BPB_START, BPB_END - BPB_START);
	boot[DRIVE_CHECK] = boot[DRIVE_CHECK + 1] = 0x90;
	memcpy(boot + NT_MAGIC, mbr + NT_MAGIC, PART_END - NT_MAGIC);
	boot[BOOT_DRIVE] = 0xff;
	put_le(boot + KERNEL_SECTOR, (uint64_t)part_start, 8);

	/* core.img first: a boot sector pointing at nothing is worse than
	 * an old one. */
	if (pwrite(fd, core, nsec * SECTOR, (off_t)part_start * SECTOR) !=
	    (ssize_t)(nsec * SECTOR) || fsync(fd) == -1 ||
	    pwrite(fd, boot, SECTOR, 0) != SECTOR || fsync(fd) == -1) {
		snprintf(why, whylen, "%s: writing GRUB: %s", disk,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(boot);
	free(core);
	return rc;
}
