/* inventory_disk.c — disks from /sys/block (size, identity, rotational,
 * removable, bus), what is on them via inventory_blkid.c, and the LVM
 * volume groups those disks carry. */
#define _GNU_SOURCE	/* strverscmp */
#define LOG_SUBSYS "inventory"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inventory.h"
#include "log.h"

/* Kernel names that are never disks: RAM disks, loop devices, compressed
 * swap, device-mapper and md (built on disks), network block devices,
 * floppies. Optical drives are told apart by their SCSI type. */
static const char *const not_disks[] = {
	"ram", "loop", "zram", "dm-", "md", "nbd", "fd", "sr", NULL
};

static int
is_disk_name(const char *name)
{
	int i;

	if (name[0] == '.')
		return 0;
	for (i = 0; not_disks[i]; i++)
		if (strncmp(name, not_disks[i], strlen(not_disks[i])) == 0)
			return 0;
	/* eMMC boot and RPMB areas are parts of mmcblkN, not disks. */
	if (strncmp(name, "mmcblk", 6) == 0 &&
	    (strstr(name, "boot") || strstr(name, "rpmb")))
		return 0;
	return 1;
}

static int
name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strverscmp((*a)->d_name, (*b)->d_name);
}

static int
want_entry(const struct dirent *de)
{
	return is_disk_name(de->d_name);
}

/* The SCSI VPD page 0x80 (unit serial number) of a SCSI/SATA disk. */
static int
vpd_serial(const char *root, const char *name, char *out, size_t len)
{
	char rel[PATH_MAX], path[PATH_MAX];
	unsigned char b[260];
	size_t n, plen;
	ssize_t got;
	int fd;

	snprintf(rel, sizeof rel, "sys/block/%s/device/vpd_pg80", name);
	if (inventory_path(path, sizeof path, root, rel) == -1 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	got = read(fd, b, sizeof b);
	close(fd);
	if (got < 4 || b[1] != 0x80)
		return -1;
	plen = (size_t)(b[2] << 8 | b[3]);
	n = (size_t)got - 4;
	if (plen < n)
		n = plen;
	if (n >= len)
		n = len - 1;
	memcpy(out, b + 4, n);
	out[n] = '\0';
	inventory_clean(out);
	return out[0] ? 0 : -1;
}

/* Which bus the disk hangs off, from where its device link resolves. */
static const char *
disk_bus(const char *root, const char *name)
{
	char rel[PATH_MAX], path[PATH_MAX], real[PATH_MAX];

	snprintf(rel, sizeof rel, "sys/block/%s", name);
	if (inventory_path(path, sizeof path, root, rel) == -1 ||
	    realpath(path, real) == NULL)
		return "unknown";
	if (strncmp(name, "nvme", 4) == 0 || strstr(real, "/nvme"))
		return "nvme";
	if (strstr(real, "/usb"))
		return "usb";
	if (strstr(real, "/virtio"))
		return strstr(real, "/host") ? "virtio-scsi" : "virtio";
	if (strstr(real, "/ata"))
		return "ata";
	if (strstr(real, "/mmc"))
		return "mmc";
	if (strstr(real, "/host"))
		return "scsi";
	return "unknown";
}

/* First readable of several sysfs attributes (relative to the disk). */
static void
set_first(json_t *o, const char *key, const char *root, const char *name,
    const char *const *rels)
{
	char rel[PATH_MAX], v[INV_STRMAX];

	for (; *rels; rels++) {
		snprintf(rel, sizeof rel, "sys/block/%s/%s", name, *rels);
		if (inventory_read_str(root, rel, v, sizeof v) == 0 && v[0]) {
			json_object_set_new(o, key, json_string(v));
			return;
		}
	}
	json_object_set_new(o, key, json_string(""));
}

static json_t *
disk_read(const char *root, const char *name, int probe)
{
	static const char *const model[] = { "device/model", "device/name",
	    NULL };
	static const char *const vendor[] = { "device/vendor", NULL };
	static const char *const wwn[] = { "wwid", "device/wwid", NULL };
	static const char *const serial[] = { "serial", "device/serial",
	    NULL };
	char rel[PATH_MAX], path[PATH_MAX], v[INV_STRMAX];
	long long sectors, rot = 1, rm = 0, ro = 0, lbs, pbs, type, hidden;
	json_t *d;

	snprintf(rel, sizeof rel, "sys/block/%s/device/type", name);
	if (inventory_read_ll(root, rel, &type) == 0 && (type == 5 ||
	    type == 4)) {
		log_debug("%s: optical drive, not a disk", name);
		return NULL;	/* SCSI ROM / WORM */
	}
	/* NVMe multipath: the per-controller paths (nvme0c0n1) are hidden,
	 * the namespace (nvme0n1) is the disk. */
	snprintf(rel, sizeof rel, "sys/block/%s/hidden", name);
	if (inventory_read_ll(root, rel, &hidden) == 0 && hidden == 1)
		return NULL;
	snprintf(rel, sizeof rel, "sys/block/%s/size", name);
	if (inventory_read_ll(root, rel, &sectors) == -1 || sectors < 0) {
		log_debug("%s: no size", name);
		return NULL;
	}
	d = json_pack("{s:s, s:I}", "name", name,
	    "size_bytes", (json_int_t)(sectors * 512));
	if (d == NULL)
		return NULL;
	set_first(d, "model", root, name, model);
	/* A virtio device's "vendor" is the virtio vendor id, not a name. */
	if (strcmp(disk_bus(root, name), "virtio") != 0)
		set_first(d, "vendor", root, name, vendor);
	if (vpd_serial(root, name, v, sizeof v) == 0)
		json_object_set_new(d, "serial", json_string(v));
	else
		set_first(d, "serial", root, name, serial);
	set_first(d, "wwn", root, name, wwn);
	snprintf(rel, sizeof rel, "sys/block/%s/queue/rotational", name);
	inventory_read_ll(root, rel, &rot);
	snprintf(rel, sizeof rel, "sys/block/%s/removable", name);
	inventory_read_ll(root, rel, &rm);
	snprintf(rel, sizeof rel, "sys/block/%s/ro", name);
	inventory_read_ll(root, rel, &ro);
	json_object_set_new(d, "rotational", json_boolean(rot != 0));
	json_object_set_new(d, "removable", json_boolean(rm != 0));
	json_object_set_new(d, "read_only", json_boolean(ro != 0));
	json_object_set_new(d, "bus", json_string(disk_bus(root, name)));
	snprintf(rel, sizeof rel, "sys/block/%s/queue/logical_block_size", name);
	if (inventory_read_ll(root, rel, &lbs) == 0)
		json_object_set_new(d, "logical_block_size", json_integer(lbs));
	snprintf(rel, sizeof rel, "sys/block/%s/queue/physical_block_size",
	    name);
	if (inventory_read_ll(root, rel, &pbs) == 0)
		json_object_set_new(d, "physical_block_size", json_integer(pbs));

	snprintf(rel, sizeof rel, "dev/%s", name);
	if (probe && sectors > 0 &&
	    inventory_path(path, sizeof path, root, rel) == 0 &&
	    access(path, F_OK) == 0)
		inventory_probe(path, name, d);
	return d;
}

int
inventory_disks(const char *root, int probe, json_t **out)
{
	char path[PATH_MAX];
	struct dirent **ents = NULL;
	json_t *a, *d;
	int i, n;

	if (inventory_path(path, sizeof path, root, "sys/block") == -1)
		return -1;
	if ((n = scandir(path, &ents, want_entry, name_cmp)) == -1) {
		log_warn("%s", path);
		return -1;
	}
	a = json_array();
	for (i = 0; i < n; i++) {
		if (a && json_array_size(a) < INV_MAX_DISKS &&
		    (d = disk_read(root, ents[i]->d_name, probe)) != NULL)
			json_array_append_new(a, d);
		free(ents[i]);
	}
	free(ents);
	if (a == NULL)
		return -1;
	*out = a;
	return 0;
}

/* Appends "where" to the pvs of VG name in vgs (created if new). */
static void
vg_add(json_t *vgs, const char *name, const char *where)
{
	json_t *vg = NULL;
	size_t i;

	json_array_foreach(vgs, i, vg)
		if (strcmp(json_string_value(json_object_get(vg, "name")),
		    name) == 0)
			break;
	if (i == json_array_size(vgs)) {
		vg = json_pack("{s:s, s:[]}", "name", name, "pvs");
		if (vg == NULL || json_array_append_new(vgs, vg) == -1)
			return;
	}
	json_array_append_new(json_object_get(vg, "pvs"), json_string(where));
}

static void
vg_collect(json_t *vgs, const json_t *o)
{
	const char *vg = json_string_value(json_object_get(
	    json_object_get(o, "lvm"), "vg"));

	if (vg != NULL)
		vg_add(vgs, vg, json_string_value(json_object_get(o, "name")));
}

static int
vg_cmp(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a,
	    "name")), json_string_value(json_object_get(*(json_t *const *)b,
	    "name")));
}

int
inventory_volume_groups(const json_t *disks, json_t **out)
{
	json_t *vgs, *sorted, *d, *p, *parts;
	json_t **v;
	size_t i, j, n;

	if ((vgs = json_array()) == NULL)
		return -1;
	json_array_foreach(disks, i, d) {
		vg_collect(vgs, d);
		parts = json_object_get(d, "partitions");
		json_array_foreach(parts, j, p)
			vg_collect(vgs, p);
	}
	/* Sorted by name, so that the same machine gives the same report. */
	n = json_array_size(vgs);
	if (n < 2) {
		*out = vgs;
		return 0;
	}
	if ((v = calloc(n, sizeof *v)) == NULL || (sorted = json_array())
	    == NULL) {
		free(v);
		json_decref(vgs);
		return -1;
	}
	for (i = 0; i < n; i++)
		v[i] = json_array_get(vgs, i);
	qsort(v, n, sizeof *v, vg_cmp);
	for (i = 0; i < n; i++)
		json_array_append(sorted, v[i]);
	free(v);
	json_decref(vgs);
	*out = sorted;
	return 0;
}
