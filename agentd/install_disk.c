/* install_disk.c — the install disk: a fresh layout, or on a reprovision
 * the volume group that is there with its preserved volumes kept; then
 * the filesystems the image goes into, mounted under INST_TARGET.
 *
 * The layout matches the kickstart's (kickstart/pre-storage.ks): GPT, a
 * BIOS boot partition and an ESP (both, so the disk boots either way),
 * /boot labelled bastion_boot, and one LVM physical volume holding a
 * logical volume per role volume. Every check that can refuse comes
 * before the first write. */
#define _GNU_SOURCE
#define LOG_SUBSYS "install"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "clock.h"
#include "installer.h"
#include "log.h"

#define T_BIOS	"21686148-6449-6E6F-744E-656564454649"
#define T_ESP	"C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
#define T_LINUX	"0FC63DAF-8483-4772-8E79-3D69D8477DE4"
#define T_LVM	"E6D6D379-F507-44C2-A23C-238F2A3DF928"
#define BOOT_LABEL	"bastion_boot"

#define MAX_MOUNTS	(INST_MAX_VOLUMES + 8)
static char mounts[MAX_MOUNTS][128];	/* what we mounted, in order */
static int nmounts;

static int
run(const char *const argv[], char *why, size_t whylen)
{
	return install_run(argv, NULL, -1, NULL, why, whylen);
}

/* Output of argv in out (capped at 256 KiB). */
static int
capture(const char *const argv[], struct buf *out, char *why, size_t whylen)
{
	buf_init(out, 256 * 1024);
	if (install_run(argv, NULL, -1, out, why, whylen) == -1) {
		buf_free(out);
		return -1;
	}
	if (out->data == NULL && buf_add(out, "", 0) == -1) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

int
install_mount_at(const char *src, const char *dir, const char *type,
    unsigned long flags, char *why, size_t whylen)
{
	if (nmounts == MAX_MOUNTS) {
		snprintf(why, whylen, "too many mounts");
		return -1;
	}
	char path[128], *s;

	/* mkdir -p: a mount point may be deep in a fresh filesystem. */
	snprintf(path, sizeof path, "%s", dir);
	for (s = path + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST) {
			snprintf(why, whylen, "mkdir %s: %s", path,
			    strerror(errno));
			return -1;
		}
		if ((*s = c) == '\0')
			break;
	}
	if (mount(src, dir, type, flags, NULL) == -1) {
		snprintf(why, whylen, "mount %s on %s: %s", src, dir,
		    strerror(errno));
		return -1;
	}
	snprintf(mounts[nmounts++], sizeof mounts[0], "%s", dir);
	return 0;
}

void
install_disk_release(const struct inst_plan *p, int deactivate)
{
	char why[INST_ERRLEN];

	sync();
	while (nmounts > 0) {
		nmounts--;
		if (umount2(mounts[nmounts], 0) == -1 &&
		    umount2(mounts[nmounts], MNT_DETACH) == -1)
			log_warn("umount %s", mounts[nmounts]);
	}
	/* A reboot follows a good install: nothing to deactivate for. */
	if (deactivate && run((const char *const[]){ "lvm", "vgchange", "-an",
	    p->vg, NULL }, why, sizeof why) == -1)
		log_warnx("%s", why);
}

static void
dm_node(const struct inst_plan *p, const struct inst_volume *v, char *out,
    size_t len)
{
	/* Names are [a-z0-9_]: no dash to double in /dev/mapper. */
	snprintf(out, len, "/dev/mapper/%s-%s", p->vg, v->name);
}

long long
install_block_attr(const char *name, const char *what)
{
	char path[256], text[32];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof path, "/sys/class/block/%s/%s", name, what);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	if (fgets(text, sizeof text, f) == NULL || sscanf(text, "%lld", &v)
	    != 1)
		v = -1;
	fclose(f);
	return v;
}

/* The disk's size in MiB from sysfs, or -1. */
static long long
disk_mib(const char *disk)
{
	long long sectors = install_block_attr(disk, "size");

	return sectors < 0 ? -1 : sectors / 2048;	/* 512-byte sectors */
}

/* Is node (/dev/vda3, /dev/nvme0n1p3) a partition of disk? */
static int
on_disk(const char *node, const char *disk)
{
	size_t n = strlen(disk);
	const char *rest;

	if (strncmp(node, "/dev/", 5) != 0 || strncmp(node + 5, disk, n) != 0)
		return 0;
	rest = node + 5 + n;
	if (*rest == 'p')
		rest++;
	return *rest && strspn(rest, "0123456789") == strlen(rest);
}

/* --- what is on the disk ------------------------------------------------- */

/* The physical volumes of the volume group: *found set when it exists,
 * *here when one of them is on the install disk (else elsewhere names
 * one that is not). */
static int
find_vg(const struct inst_plan *p, int *found, int *here, char *pv,
    size_t pvlen, char *elsewhere, size_t elen, char *why, size_t whylen)
{
	struct buf out;
	char *line, *save = NULL, *sep, *name;

	*found = *here = 0;
	elsewhere[0] = pv[0] = '\0';
	if (capture((const char *const[]){ "lvm", "pvs", "--noheadings",
	    "--separator", ":", "-o", "pv_name,vg_name", NULL }, &out, why,
	    whylen) == -1)
		return -1;
	for (line = strtok_r(out.data, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		name = line + strspn(line, " ");
		if ((sep = strchr(name, ':')) == NULL)
			continue;
		*sep = '\0';
		if (strcmp(sep + 1, p->vg) != 0)
			continue;
		*found = 1;
		if (on_disk(name, p->disk)) {
			*here = 1;
			snprintf(pv, pvlen, "%s", name);
		} else {
			snprintf(elsewhere, elen, "%s", name);
		}
	}
	buf_free(&out);
	return 0;
}

/* Does the (active) volume group hold logical volume name? */
static int
lv_exists(const char *lvs, const char *name)
{
	const char *s = lvs;
	size_t n = strlen(name);

	while ((s = strstr(s, name)) != NULL) {
		if ((s == lvs || strchr(" \n", s[-1])) && strchr(" \n", s[n]))
			return 1;
		s += n;
	}
	return 0;
}

static int
label_of(const char *node, char *out, size_t len)
{
	struct buf b;
	char why[INST_ERRLEN];

	out[0] = '\0';
	if (capture((const char *const[]){ "blkid", "-o", "value", "-s",
	    "LABEL", node, NULL }, &b, why, sizeof why) == -1)
		return -1;
	snprintf(out, len, "%.*s", (int)strcspn(b.data, "\n"), b.data);
	buf_free(&b);
	return 0;
}

/* The partitions a reused layout needs, by GPT type and /boot's label. */
static int
find_partitions(const struct inst_plan *p, struct inst_disk *d, char *why,
    size_t whylen)
{
	const json_t *parts, *e;
	char dev[64], label[64];
	struct buf out;
	json_t *j;
	size_t i;

	snprintf(dev, sizeof dev, "/dev/%s", p->disk);
	if (capture((const char *const[]){ "sfdisk", "--json", dev, NULL },
	    &out, why, whylen) == -1)
		return -1;
	j = json_loadb(out.data, out.len, 0, NULL);
	buf_free(&out);
	parts = json_object_get(json_object_get(j, "partitiontable"),
	    "partitions");
	json_array_foreach(parts, i, e) {
		const char *node = json_string_value(json_object_get(e, "node"));
		const char *type = json_string_value(json_object_get(e, "type"));

		if (node == NULL || type == NULL || !on_disk(node, p->disk) ||
		    strlen(node) >= sizeof d->bios)
			continue;
		if (strcasecmp(type, T_BIOS) == 0)
			snprintf(d->bios, sizeof d->bios, "%s", node);
		else if (strcasecmp(type, T_ESP) == 0)
			snprintf(d->esp, sizeof d->esp, "%s", node);
		else if (label_of(node, label, sizeof label) == 0 &&
		    strcmp(label, BOOT_LABEL) == 0)
			snprintf(d->boot, sizeof d->boot, "%s", node);
	}
	json_decref(j);
	if (d->boot[0] == '\0') {
		snprintf(why, whylen, "no /boot partition labelled %s on %s",
		    BOOT_LABEL, p->disk);
		return -1;
	}
	if (d->bios[0] == '\0' && d->esp[0] == '\0') {
		snprintf(why, whylen, "neither a BIOS boot partition nor an EFI "
		    "system partition on %s", p->disk);
		return -1;
	}
	return 0;
}

/* --- making it ----------------------------------------------------------- */

/* mkfs's argv for fstype on node into argv (12 entries); uuid (a FAT
 * volume ID for vfat) when not NULL. */
static void
mkfs_argv(const char *fstype, const char *node, const char *label,
    const char *uuid, const char *argv[12])
{
	int n = 0;

	if (strcmp(fstype, "xfs") == 0) {
		argv[n++] = "mkfs.xfs";
		argv[n++] = "-f";
		argv[n++] = "-q";
		argv[n++] = "-K";
	} else if (strcmp(fstype, "swap") == 0) {
		argv[n++] = "mkswap";
	} else if (strcmp(fstype, "vfat") == 0) {
		argv[n++] = "mkfs.fat";
		argv[n++] = "-F";
		argv[n++] = "32";
		argv[n++] = "-n";
		argv[n++] = label;
		if (uuid) {
			argv[n++] = "-i";
			argv[n++] = uuid;
		}
	} else {
		argv[n++] = "mke2fs";
		argv[n++] = "-q";
		argv[n++] = "-F";
		argv[n++] = "-t";
		argv[n++] = fstype;
		if (label) {
			argv[n++] = "-L";
			argv[n++] = label;
		}
		if (uuid) {
			argv[n++] = "-U";
			argv[n++] = uuid;
		}
	}
	argv[n++] = node;
	argv[n] = NULL;
}

/*
 * The filesystems this install makes, each on a thread of its own beside
 * the root image's write: mkfs mostly waits for the disk, the write for
 * zstd. All are waited for (mkfs_wait) before anything is mounted.
 */
struct mkfs_job {
	pthread_t	 t;
	const char	*argv[12];
	char		 why[INST_ERRLEN];
	int		 rc;
	int		 threaded;
};

static struct mkfs_job jobs[INST_MAX_VOLUMES + 2];
static int njobs;

static void *
mkfs_thread(void *arg)
{
	struct mkfs_job *j = arg;

	j->rc = install_run(j->argv, NULL, -1, NULL, j->why, sizeof j->why);
	return NULL;
}

static void
mkfs_start(const char *fstype, const char *node, const char *label,
    const char *uuid)
{
	struct mkfs_job *j = &jobs[njobs++];

	mkfs_argv(fstype, node, label, uuid, j->argv);
	j->why[0] = '\0';
	j->threaded = agent_thread(&j->t, mkfs_thread, j) == 0;
	if (!j->threaded)	/* no thread: made here and now */
		mkfs_thread(j);
}

/* Every mkfs_start ended: 0, or -1 with the first failure's why. */
static int
mkfs_wait(char *why, size_t whylen)
{
	int i, rc = 0;

	for (i = 0; i < njobs; i++) {
		if (jobs[i].threaded)
			pthread_join(jobs[i].t, NULL);
		if (jobs[i].rc != 0 && rc == 0) {
			snprintf(why, whylen, "%s", jobs[i].why);
			rc = -1;
		}
	}
	njobs = 0;
	return rc;
}

static int
wait_node(const char *node)
{
	struct stat st;
	long end = clock_mono_ms() + 10000;

	while (stat(node, &st) == -1)
		if (clock_mono_ms() > end || usleep(50000) == -1)
			return -1;
	return 0;
}

/*
 * The volumes that do not exist yet (fixed sizes first, the growing one
 * takes what is left), after the volume group on new_pv when it is set:
 * one lvm process for all of them, where each command as a process of its
 * own costs ~0.4 s under emulation. The lvm shell exits 0 whatever its
 * commands did, so the outcome is what is checked: every volume's node
 * there, at its size at least. The words are the plan's checked names
 * ([a-z0-9_]) and our own partition node.
 */
static int
create_volumes(struct inst_plan *p, const char *new_pv, char *why,
    size_t whylen)
{
	struct buf script, out;
	char path[128], said[INST_ERRLEN];
	int fd = -1, i, pass, bad = 0, rc = -1;

	buf_init(&script, 64 * 1024);
	if (new_pv)
		bad |= buf_printf(&script, "vgcreate -y %s %s\n", p->vg, new_pv);
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < p->nvol; i++) {
			const struct inst_volume *v = &p->vol[i];

			if (v->exists || v->grow != pass)
				continue;
			if (v->grow)
				bad |= buf_printf(&script, "lvcreate -y -W y -Z y "
				    "-n %s -l 100%%FREE %s\n", v->name, p->vg);
			else
				bad |= buf_printf(&script, "lvcreate -y -W y -Z y "
				    "-n %s -L %ldm %s\n", v->name, v->size_mb,
				    p->vg);
		}
	if (script.len == 0) {
		buf_free(&script);
		return 0;
	}
	snprintf(path, sizeof path, "%s/volumes.lvm", INST_WORK);
	if (bad || (fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1 || write(fd, script.data, script.len) !=
	    (ssize_t)script.len || lseek(fd, 0, SEEK_SET) != 0) {
		snprintf(why, whylen, "%s: %s", path, bad ? "too long" :
		    strerror(errno));
		goto out;
	}
	buf_init(&out, 256 * 1024);	/* what it made: not the errors */
	rc = install_run((const char *const[]){ "lvm", NULL }, NULL, fd, &out,
	    said, sizeof said);
	buf_free(&out);
	if (rc == -1) {
		snprintf(why, whylen, "%s", said);
		goto out;
	}
	for (i = 0; i < p->nvol; i++) {
		const struct inst_volume *v = &p->vol[i];
		unsigned long long bytes = 0;
		char node[128];
		int dev;

		if (v->exists)
			continue;
		dm_node(p, v, node, sizeof node);
		if ((dev = open(node, O_RDONLY | O_CLOEXEC)) >= 0) {
			if (ioctl(dev, BLKGETSIZE64, &bytes) == -1)
				bytes = 0;
			close(dev);
		}
		if (dev == -1 || (!v->grow && bytes < (unsigned long long)
		    v->size_mb << 20)) {
			snprintf(why, whylen, "logical volume %s was not made%s%s",
			    v->name, said[0] ? ": lvm: " : "", said);
			rc = -1;
			goto out;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	buf_free(&script);
	return rc;
}

static int
fresh_layout(struct inst_plan *p, struct inst_disk *d, char *why,
    size_t whylen)
{
	char dev[64], script[512], path[128], nodes[4][96];
	long long need = 4 + p->efi_mb + p->boot_mb, have = disk_mib(p->disk);
	int fd, i, rc;

	for (i = 0; i < p->nvol; i++)
		need += p->vol[i].size_mb + 4;	/* + LVM extent rounding */
	if (have < need) {
		snprintf(why, whylen, "disk %s has %lld MiB; role %s needs at "
		    "least %lld MiB", p->disk, have, p->role, need);
		return -1;
	}
	snprintf(dev, sizeof dev, "/dev/%s", p->disk);
	for (i = 0; i < 4; i++)
		if (install_part_node(p->disk, i + 1, nodes[i], sizeof nodes[i])
		    == -1) {
			snprintf(why, whylen, "disk name too long");
			return -1;
		}
	snprintf(script, sizeof script, "label: gpt\n"
	    "size=1MiB, type=%s, name=\"bastion-bios\"\n"
	    "size=%ldMiB, type=%s, name=\"bastion-esp\"\n"
	    "size=%ldMiB, type=%s, name=\"bastion-boot\"\n"
	    "type=%s, name=\"bastion-lvm\"\n", T_BIOS, p->efi_mb, T_ESP,
	    p->boot_mb, T_LINUX, T_LVM);
	snprintf(path, sizeof path, "%s/layout.sfdisk", INST_WORK);
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) ==
	    -1 || write(fd, script, strlen(script)) != (ssize_t)strlen(script) ||
	    lseek(fd, 0, SEEK_SET) != 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	install_progress(p, "partition", 22, 1, "fresh layout on %s", p->disk);
	/* Old signatures go first: a stale LVM or filesystem header at a
	 * new partition's start would be found again. */
	for (i = 0; i < 4; i++)
		if (access(nodes[i], F_OK) == 0)
			(void)run((const char *const[]){ "wipefs", "-a", "-q",
			    nodes[i], NULL }, why, whylen);
	rc = run((const char *const[]){ "wipefs", "-a", "-q", dev, NULL }, why,
	    whylen);
	if (rc == 0)
		rc = install_run((const char *const[]){ "sfdisk", "-q", "--wipe",
		    "always", "--wipe-partitions", "always", dev, NULL }, NULL, fd,
		    NULL, why, whylen);
	close(fd);
	if (rc == -1)
		return -1;
	for (i = 0; i < 4; i++)
		if (wait_node(nodes[i]) == -1) {
			snprintf(why, whylen, "%s did not appear", nodes[i]);
			return -1;
		}
	snprintf(d->bios, sizeof d->bios, "%s", nodes[0]);
	snprintf(d->esp, sizeof d->esp, "%s", nodes[1]);
	snprintf(d->boot, sizeof d->boot, "%s", nodes[2]);
	snprintf(d->pv, sizeof d->pv, "%s", nodes[3]);
	/* vgcreate makes the physical volume itself: no pvcreate. */
	return create_volumes(p, d->pv, why, whylen);
}

/* Reprovision: the checks, all before anything is written. */
static int
reuse_check(struct inst_plan *p, struct inst_disk *d, char *why,
    size_t whylen)
{
	struct buf lvs;
	int i;

	if (run((const char *const[]){ "lvm", "vgchange", "-ay", p->vg, NULL },
	    why, whylen) == -1)
		return -1;
	if (capture((const char *const[]){ "lvm", "lvs", "--noheadings", "-o",
	    "lv_name", p->vg, NULL }, &lvs, why, whylen) == -1)
		return -1;
	/* A preserved volume that is not there (the role gained it, or it
	 * was removed) is made afresh like any missing one, as the
	 * kickstart's %pre does: there is nothing of it to keep. */
	for (i = 0; i < p->nvol; i++) {
		p->vol[i].exists = lv_exists(lvs.data, p->vol[i].name);
		p->vol[i].keep = p->vol[i].preserve && p->vol[i].exists;
	}
	buf_free(&lvs);
	return find_partitions(p, d, why, whylen);
}

/* The UUIDs /boot and the ESP get: random, chosen here so that fstab and
 * GRUB need no blkid afterwards. */
static int
new_uuids(struct inst_disk *d, char *why, size_t whylen)
{
	unsigned char u[16];

	if (install_uuid4(u, d->boot_uuid, sizeof d->boot_uuid, why, whylen)
	    == -1)
		return -1;
	/* A FAT volume ID: 32 random bits. */
	if (install_random(u, 4, why, whylen) == -1)
		return -1;
	snprintf(d->esp_uuid, sizeof d->esp_uuid, "%02X%02X-%02X%02X", u[0],
	    u[1], u[2], u[3]);
	return 0;
}

/* mkfs what this install formats; mount what the image goes into. */
static int
format_and_mount(struct inst_plan *p, struct inst_disk *d, char *why,
    size_t whylen)
{
	char dir[256], other[INST_ERRLEN];
	int i, j, rc, order[INST_MAX_VOLUMES], n = 0;

	if (new_uuids(d, why, whylen) == -1)
		return -1;
	if (d->esp[0]) {
		char volid[9];

		/* mkfs.fat takes the ID as 8 hex digits, blkid shows 4-4. */
		snprintf(volid, sizeof volid, "%.4s%.4s", d->esp_uuid,
		    d->esp_uuid + 5);
		mkfs_start("vfat", d->esp, "BASTIONEFI", volid);
	}
	mkfs_start("ext4", d->boot, BOOT_LABEL, d->boot_uuid);
	for (i = 0; i < p->nvol; i++) {
		struct inst_volume *v = &p->vol[i];

		dm_node(p, v, v->dev, sizeof v->dev);
		if (wait_node(v->dev) == -1) {
			(void)mkfs_wait(why, whylen);
			snprintf(why, whylen, "%s did not appear", v->dev);
			return -1;
		}
		if (!v->keep && strcmp(v->mount, "swap") != 0)
			order[n++] = i;
		if (v->keep || (p->root_url[0] && strcmp(v->mount, "/") == 0))
			continue;	/* kept, or the root image's */
		mkfs_start(v->fstype, v->dev, NULL, NULL);
	}
	/* Parents before children: "/" < "/var" < "/var/lib/x". */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(p->vol[order[j - 1]].mount,
		    p->vol[order[j]].mount) > 0; j--) {
			int t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	if (n == 0 || strcmp(p->vol[order[0]].mount, "/") != 0) {
		(void)mkfs_wait(why, whylen);
		snprintf(why, whylen, "the root volume is not formatted");
		return -1;
	}
	install_progress(p, "partition", 25, 1, "volumes made on %s; making "
	    "their filesystems", p->disk);
	rc = p->root_url[0] ? install_image_root(p, p->vol[order[0]].dev,
	    why, whylen) : 0;
	if (mkfs_wait(rc == 0 ? why : other, rc == 0 ? whylen : sizeof other)
	    == -1)
		rc = -1;
	if (rc == -1)
		return -1;
	for (i = 0; i < n; i++) {
		const struct inst_volume *v = &p->vol[order[i]];

		snprintf(dir, sizeof dir, "%s%s", INST_TARGET, strcmp(v->mount,
		    "/") ? v->mount : "");
		if (i > 0 && strncmp(v->mount, "/boot", 5) == 0)
			continue;	/* /boot comes from its partition */
		if (install_mount_at(v->dev, dir, v->fstype, 0, why, whylen) ==
		    -1)
			return -1;
		if (i == 0) {	/* /boot and the ESP right under / */
			if ((p->root_url[0] && install_image_grow(p, why,
			    whylen) == -1) || install_mount_at(d->boot, INST_TARGET "/boot",
			    "ext4", 0, why, whylen) == -1 || (d->esp[0] &&
			    install_mount_at(d->esp, INST_TARGET "/boot/efi",
			    "vfat", 0, why, whylen) == -1))
				return -1;
		}
	}
	return 0;
}

static pthread_t modules_thread;
static int modules_started, modules_rc;
static char modules_why[INST_ERRLEN];

static void *
modules_load(void *arg)
{
	(void)arg;
	modules_rc = run((const char *const[]){ "modprobe", "-a", "dm_mod",
	    "xfs", "ext4", "vfat", "nls_cp437", "nls_ascii", NULL },
	    modules_why, sizeof modules_why);
	return NULL;
}

void
install_disk_modules_start(void)
{
	/* Without a thread, install_disk_prepare loads them itself. */
	modules_started = agent_thread(&modules_thread, modules_load, NULL) ==
	    0;
}

int
install_disk_prepare(struct inst_plan *p, struct inst_disk *d, char *why,
    size_t whylen)
{
	char elsewhere[96];
	int found, here;

	memset(d, 0, sizeof *d);
	for (int i = 0; i < p->nvol; i++)
		if (strncmp(p->vol[i].mount, "/boot", 5) == 0) {
			snprintf(why, whylen, "role volume %s: /boot is a "
			    "partition of its own", p->vol[i].mount);
			return -1;
		}
	if (modules_started)
		pthread_join(modules_thread, NULL);
	else
		modules_load(NULL);
	modules_started = 0;
	if (modules_rc == -1) {
		snprintf(why, whylen, "%s", modules_why);
		return -1;
	}
	if (find_vg(p, &found, &here, d->pv, sizeof d->pv, elsewhere,
	    sizeof elsewhere, why, whylen) == -1)
		return -1;
	if (p->reprovision && found && !here) {
		snprintf(why, whylen, "volume group %s is on %s, not on the "
		    "install disk %s: refusing a fresh layout, nothing was "
		    "written", p->vg, elsewhere, p->disk);
		return -1;
	}
	if (p->reprovision && here) {
		char reason[INST_ERRLEN];

		if (reuse_check(p, d, reason, sizeof reason) == -1) {
			snprintf(why, whylen, "volume group %s on %s cannot be "
			    "reused: %s; refusing a fresh layout, nothing was "
			    "written", p->vg, p->disk, reason);
			return -1;
		}
		install_progress(p, "partition", 22, 1, "reusing volume group "
		    "%s on %s: formatting all but the preserved volumes", p->vg,
		    p->disk);
		if (create_volumes(p, NULL, why, whylen) == -1)
			return -1;
	} else {
		/* Another disk's volume group of that name is not ours to
		 * touch, and a second one of the name could not be made. */
		if (found && !here) {
			snprintf(why, whylen, "a volume group %s already exists "
			    "on %s, not on the install disk %s: rename or remove "
			    "it first", p->vg, elsewhere, p->disk);
			return -1;
		}
		if (fresh_layout(p, d, why, whylen) == -1)
			return -1;
	}
	return format_and_mount(p, d, why, whylen);
}

int
install_disk_fstab(const struct inst_plan *p, const struct inst_disk *d,
    struct buf *b, char *why, size_t whylen)
{
	char dev[128];
	int i, bad = 0;

	bad |= buf_printf(b, "# made by bastion's installer for %s (%s)\n",
	    p->hostname, p->role);
	for (i = 0; i < p->nvol; i++) {
		const struct inst_volume *v = &p->vol[i];

		dm_node(p, v, dev, sizeof dev);
		if (strcmp(v->mount, "swap") == 0)
			bad |= buf_printf(b, "%s none swap sw 0 0\n", dev);
		else
			bad |= buf_printf(b, "%s %s %s defaults 0 %d\n", dev,
			    v->mount, v->fstype, strcmp(v->fstype, "xfs") == 0 ?
			    0 : strcmp(v->mount, "/") == 0 ? 1 : 2);
		if (strcmp(v->mount, "/") == 0) {
			bad |= buf_printf(b, "UUID=%s /boot ext4 defaults 0 2\n",
			    d->boot_uuid);
			if (d->esp[0])
				bad |= buf_printf(b, "UUID=%s /boot/efi vfat "
				    "umask=0077 0 1\n", d->esp_uuid);
		}
	}
	if (bad) {
		snprintf(why, whylen, "fstab too long");
		return -1;
	}
	return 0;
}

int
install_disk_grub_cfg(const struct inst_plan *p, const struct inst_disk *d,
    const char *kver, struct buf *b, char *why, size_t whylen)
{
	char root[128] = "";
	int i, bad = 0;

	for (i = 0; i < p->nvol; i++)
		if (strcmp(p->vol[i].mount, "/") == 0)
			dm_node(p, &p->vol[i], root, sizeof root);
	if (root[0] == '\0') {
		snprintf(why, whylen, "the role has no root volume");
		return -1;
	}
	/* What grub-mkconfig would make of the image's /etc/default/grub for
	 * this one kernel, without its minute of shell under emulation; the
	 * node's next kernel update runs update-grub, which replaces it. */
	bad |= buf_printf(b, "# made by bastion's installer for %s; "
	    "update-grub replaces it\n"
	    "set default=0\nset timeout=1\n"
	    "serial --unit=0 --speed=115200\n"
	    "terminal_input console serial\nterminal_output console serial\n"
	    "insmod part_gpt\ninsmod ext2\ninsmod all_video\n"
	    "search --no-floppy --fs-uuid --set=root %s\n"
	    "menuentry 'Debian GNU/Linux, with Linux %s' {\n"
	    "\tlinux /vmlinuz-%s root=%s ro console=tty0 "
	    "console=ttyS0,115200n8\n"
	    "\tinitrd /initrd.img-%s\n}\n", p->hostname, d->boot_uuid, kver, kver,
	    root, kver);
	if (bad) {
		snprintf(why, whylen, "grub.cfg too long");
		return -1;
	}
	return 0;
}
