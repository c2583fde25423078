/* inventory_blkid.c — what is on a disk: partition table, partitions and
 * their filesystems (libblkid), and for LVM physical volumes the volume
 * group they belong to (read from the PV's own metadata area, which
 * libblkid does not parse). Everything is opened O_RDONLY: discovery
 * never writes to a disk. */
#define LOG_SUBSYS "inventory"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <blkid.h>

#include "inventory.h"
#include "log.h"

/* --- LVM2 on-disk format (lib/format_text/layout.h in lvm2) ------------- */

#define LVM_SECTOR		512
#define LVM_LABEL_SCAN		4	/* the label is in one of sectors 0..3 */
#define LVM_MDA_HEADER_SIZE	512
#define LVM_MAX_AREAS		16
#define LVM_RAW_LOCN_IGNORED	0x1

static const char lvm_fmtt_magic[16] = " LVM2 x[5A%r0N*>";

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int
pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = pread(fd, (char *)buf + got, len - got, off + (off_t)got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* "name {" at the start of the metadata text -> name. */
static int
vgname_from_text(const char *t, size_t n, char *out, size_t len)
{
	size_t i = 0;

	while (i < n && (t[i] == ' ' || t[i] == '\n'))
		i++;
	t += i;
	n -= i;
	for (i = 0; i < n && i < 128; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' &&
		    t[i] <= 'Z') || (t[i] >= '0' && t[i] <= '9') ||
		    t[i] == '+' || t[i] == '_' || t[i] == '.' || t[i] == '-'))
			break;
	if (i == 0 || i + 2 > n || t[i] != ' ' || t[i + 1] != '{' ||
	    i >= len)
		return -1;
	memcpy(out, t, i);
	out[i] = '\0';
	return 0;
}

/* The VG name from the metadata area at absolute offset mda. */
static int
mda_vgname(int fd, off_t base, uint64_t mda, uint64_t mdasize, char *out,
    size_t len)
{
	unsigned char h[LVM_MDA_HEADER_SIZE];
	char text[256];
	uint64_t start, size, off, tsize, first;

	if (mdasize < 2 * LVM_MDA_HEADER_SIZE || mdasize > (uint64_t)1 << 40 ||
	    mda > (uint64_t)1 << 50 ||
	    pread_full(fd, h, sizeof h, base + (off_t)mda) == -1 ||
	    memcmp(h + 4, lvm_fmtt_magic, sizeof lvm_fmtt_magic) != 0)
		return -1;
	start = le64(h + 24);
	size = le64(h + 32);
	off = le64(h + 40);		/* raw_locn[0] */
	tsize = le64(h + 48);
	if (start != mda || size != mdasize || off == 0 || tsize == 0 ||
	    (le32(h + 60) & LVM_RAW_LOCN_IGNORED) ||
	    off < LVM_MDA_HEADER_SIZE || off >= size)
		return -1;	/* orphan PV, ignored or damaged area */
	if (tsize > sizeof text)
		tsize = sizeof text;
	/* The area is a ring after its header: the text may wrap. */
	first = size - off < tsize ? size - off : tsize;
	if (pread_full(fd, text, (size_t)first, base + (off_t)(start + off))
	    == -1)
		return -1;
	if (first < tsize && pread_full(fd, text + first, (size_t)(tsize -
	    first), base + (off_t)(start + LVM_MDA_HEADER_SIZE)) == -1)
		return -1;
	return vgname_from_text(text, (size_t)tsize, out, len);
}

int
inventory_lvm_vgname(int fd, off_t base, char *out, size_t len)
{
	unsigned char s[LVM_SECTOR * LVM_LABEL_SCAN];
	const unsigned char *lab = NULL, *p, *end;
	uint64_t off, size;
	uint32_t pvh;
	int i, list;

	if (pread_full(fd, s, sizeof s, base) == -1)
		return -1;
	for (i = 0; i < LVM_LABEL_SCAN; i++)
		if (memcmp(s + i * LVM_SECTOR, "LABELONE", 8) == 0 &&
		    memcmp(s + i * LVM_SECTOR + 24, "LVM2 001", 8) == 0) {
			lab = s + i * LVM_SECTOR;
			break;
		}
	if (lab == NULL)
		return -1;
	pvh = le32(lab + 20);
	if (pvh < 32 || pvh > LVM_SECTOR - 40)
		return -1;
	/* pv_header: uuid[32], device size, then two lists of
	 * {offset, size} ended by a zero entry: data areas, metadata areas. */
	p = lab + pvh + 32 + 8;
	end = lab + LVM_SECTOR;
	for (list = 0; list < 2; list++) {
		for (i = 0; i < LVM_MAX_AREAS && p + 16 <= end; i++, p += 16) {
			off = le64(p);
			size = le64(p + 8);
			if (off == 0 && size == 0)
				break;
			if (list == 1 && mda_vgname(fd, base, off, size, out,
			    len) == 0)
				return 0;
		}
		if (p + 16 > end || i == LVM_MAX_AREAS)
			return -1;
		p += 16;	/* the terminating entry */
	}
	return -1;
}

/* --- libblkid -------------------------------------------------------- */

static void
set_value(blkid_probe pr, const char *name, json_t *o, const char *key)
{
	const char *v;

	if (blkid_probe_lookup_value(pr, name, &v, NULL) == 0)
		json_object_set_new(o, key, inventory_jstr(v));
}

/* Superblock probe of [off, off+size) of fd: fstype, uuid, label, lvm{}. */
static void
probe_superblock(int fd, off_t off, off_t size, json_t *o)
{
	char vg[INV_STRMAX];
	const char *type;
	blkid_probe pr;
	json_t *lvm;
	int rc;

	if ((pr = blkid_new_probe()) == NULL)
		return;
	if (blkid_probe_set_device(pr, fd, off, size) != 0)
		goto out;
	blkid_probe_enable_partitions(pr, 0);
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_LABEL |
	    BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE |
	    BLKID_SUBLKS_VERSION);
	rc = blkid_do_safeprobe(pr);
	if (rc == -2) {
		json_object_set_new(o, "fstype", json_string("ambivalent"));
		goto out;
	}
	if (rc != 0 || blkid_probe_lookup_value(pr, "TYPE", &type, NULL) != 0)
		goto out;
	json_object_set_new(o, "fstype", inventory_jstr(type));
	set_value(pr, "VERSION", o, "fsversion");
	set_value(pr, "USAGE", o, "usage");
	set_value(pr, "UUID", o, "uuid");
	set_value(pr, "LABEL", o, "label");
	if (strcmp(type, "LVM2_member") == 0) {
		lvm = json_object();
		set_value(pr, "UUID", lvm, "pv_uuid");
		if (inventory_lvm_vgname(fd, off, vg, sizeof vg) == 0)
			json_object_set_new(lvm, "vg", inventory_jstr(vg));
		json_object_set_new(o, "lvm", lvm);
	}
out:
	blkid_free_probe(pr);
}

static json_t *
partition_read(int fd, const char *disk, blkid_partition par)
{
	char name[128], type[32];
	long long start, size;
	const char *s;
	json_t *p;
	int no;

	no = blkid_partition_get_partno(par);
	start = (long long)blkid_partition_get_start(par) * 512;
	size = (long long)blkid_partition_get_size(par) * 512;
	if (no < 0 || start < 0 || size < 0)
		return NULL;
	/* vda -> vda1, nvme0n1 -> nvme0n1p1 (as the kernel names them). */
	snprintf(name, sizeof name, "%s%s%d", disk,
	    disk[0] && disk[strlen(disk) - 1] >= '0' &&
	    disk[strlen(disk) - 1] <= '9' ? "p" : "", no);
	p = json_pack("{s:s, s:i, s:I, s:I}", "name", name, "number", no,
	    "start_bytes", (json_int_t)start, "size_bytes", (json_int_t)size);
	if (p == NULL)
		return NULL;
	if ((s = blkid_partition_get_type_string(par)) != NULL)
		json_object_set_new(p, "parttype", inventory_jstr(s));
	else {
		snprintf(type, sizeof type, "0x%02x",
		    blkid_partition_get_type(par));
		json_object_set_new(p, "parttype", json_string(type));
	}
	if ((s = blkid_partition_get_uuid(par)) != NULL)
		json_object_set_new(p, "partuuid", inventory_jstr(s));
	if ((s = blkid_partition_get_name(par)) != NULL)
		json_object_set_new(p, "partlabel", inventory_jstr(s));
	if (blkid_partition_is_extended(par))
		json_object_set_new(p, "extended", json_true());
	else
		probe_superblock(fd, (off_t)start, (off_t)size, p);
	return p;
}

static void
probe_partitions(int fd, const char *name, json_t *disk)
{
	blkid_partlist ls;
	blkid_parttable tab;
	blkid_probe pr;
	json_t *parts, *p;
	const char *s;
	int i, n;

	if ((pr = blkid_new_probe()) == NULL)
		return;
	if (blkid_probe_set_device(pr, fd, 0, 0) != 0)
		goto out;
	blkid_probe_enable_superblocks(pr, 0);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
	if ((ls = blkid_probe_get_partitions(pr)) == NULL ||
	    (tab = blkid_partlist_get_table(ls)) == NULL)
		goto out;
	if ((s = blkid_parttable_get_type(tab)) != NULL)
		json_object_set_new(disk, "pttype", inventory_jstr(s));
	if ((s = blkid_parttable_get_id(tab)) != NULL && s[0])
		json_object_set_new(disk, "ptuuid", inventory_jstr(s));
	parts = json_array();
	n = blkid_partlist_numof_partitions(ls);
	for (i = 0; i < n && i < INV_MAX_PARTS; i++)
		if ((p = partition_read(fd, name,
		    blkid_partlist_get_partition(ls, i))) != NULL)
			json_array_append_new(parts, p);
	json_object_set_new(disk, "partitions", parts);
out:
	blkid_free_probe(pr);
}

static long
ms_between(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000 +
	    (b->tv_nsec - a->tv_nsec) / 1000000;
}

int
inventory_probe(const char *path, const char *name, json_t *disk)
{
	struct timespec t0, t1, t2;
	int fd;

	/* O_RDONLY only: nothing here may ever write to a disk. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		log_warn("%s", path);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	probe_partitions(fd, name, disk);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	probe_superblock(fd, 0, 0, disk);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	close(fd);
	log_debug("%s: partitions probed in %ld ms, signatures in %ld ms",
	    path, ms_between(&t0, &t1), ms_between(&t1, &t2));
	return 0;
}
