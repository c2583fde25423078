/* inventory_mem.c — memory: usable size from /proc/meminfo, installed
 * DIMMs from the SMBIOS type 17 (memory device) and 16 (memory array)
 * structures the kernel exports in /sys/firmware/dmi/entries. */
#define _GNU_SOURCE	/* strverscmp */
#define LOG_SUBSYS "inventory"
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inventory.h"
#include "log.h"

#define DMI_RAWMAX	4096	/* one structure with its strings */

static uint16_t
le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static const char *
memory_type_name(uint8_t t)
{
	static const char *const names[] = {
		[0x01] = "Other", [0x02] = "Unknown", [0x03] = "DRAM",
		[0x04] = "EDRAM", [0x05] = "VRAM", [0x06] = "SRAM",
		[0x07] = "RAM", [0x08] = "ROM", [0x09] = "Flash",
		[0x0a] = "EEPROM", [0x0b] = "FEPROM", [0x0c] = "EPROM",
		[0x0d] = "CDRAM", [0x0e] = "3DRAM", [0x0f] = "SDRAM",
		[0x10] = "SGRAM", [0x11] = "RDRAM", [0x12] = "DDR",
		[0x13] = "DDR2", [0x14] = "DDR2 FB-DIMM", [0x18] = "DDR3",
		[0x19] = "FBD2", [0x1a] = "DDR4", [0x1b] = "LPDDR",
		[0x1c] = "LPDDR2", [0x1d] = "LPDDR3", [0x1e] = "LPDDR4",
		[0x1f] = "Logical non-volatile device", [0x20] = "HBM",
		[0x21] = "HBM2", [0x22] = "DDR5", [0x23] = "LPDDR5",
		[0x24] = "HBM3",
	};

	if (t < sizeof names / sizeof names[0] && names[t] != NULL)
		return names[t];
	return "Unknown";
}

static const char *
ecc_name(uint8_t t)
{
	switch (t) {
	case 0x03:
		return "none";
	case 0x04:
		return "parity";
	case 0x05:
		return "single-bit";
	case 0x06:
		return "multi-bit";
	case 0x07:
		return "crc";
	default:
		return NULL;
	}
}

/* Reads root/sys/firmware/dmi/entries/NAME/raw. Length or -1. */
static ssize_t
read_raw(const char *root, const char *name, uint8_t *buf, size_t len)
{
	char rel[512], path[4096];
	ssize_t n, got = 0;
	int fd;

	snprintf(rel, sizeof rel, "sys/firmware/dmi/entries/%s/raw", name);
	if (inventory_path(path, sizeof path, root, rel) == -1 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	while ((size_t)got < len && (n = read(fd, buf + got, len - got)) > 0)
		got += n;
	close(fd);
	return got;
}

/* One type 17 structure -> a DIMM object, or NULL for an empty slot. */
static json_t *
dimm_parse(const uint8_t *r, size_t n, long long *bytes)
{
	char locator[INV_STRMAX], bank[INV_STRMAX], vendor[INV_STRMAX];
	char serial[INV_STRMAX], part[INV_STRMAX];
	long long size;
	uint16_t sz;
	json_t *d;

	if (n < 0x15 || r[1] < 0x15 || r[1] > n)
		return NULL;
	sz = le16(r + 0x0c);
	if (sz == 0 || sz == 0xffff)
		return NULL;	/* not installed, or unknown */
	if (sz == 0x7fff) {
		if (r[1] < 0x20)
			return NULL;
		size = (long long)(le32(r + 0x1c) & 0x7fffffff) << 20;
	} else if (sz & 0x8000) {
		size = (long long)(sz & 0x7fff) << 10;	/* KiB */
	} else {
		size = (long long)sz << 20;		/* MiB */
	}
	if (inventory_dmi_string(r, n, r[0x10], locator, sizeof locator) ||
	    inventory_dmi_string(r, n, r[0x11], bank, sizeof bank))
		return NULL;
	d = json_pack("{s:s, s:s, s:I, s:s}", "locator", locator,
	    "bank", bank, "size_bytes", (json_int_t)size,
	    "type", memory_type_name(r[0x12]));
	if (d == NULL)
		return NULL;
	if (r[1] >= 0x17 && le16(r + 0x15) != 0 && le16(r + 0x15) != 0xffff)
		json_object_set_new(d, "speed_mts", json_integer(le16(r + 0x15)));
	if (r[1] >= 0x1b &&
	    inventory_dmi_string(r, n, r[0x17], vendor, sizeof vendor) == 0 &&
	    inventory_dmi_string(r, n, r[0x18], serial, sizeof serial) == 0 &&
	    inventory_dmi_string(r, n, r[0x1a], part, sizeof part) == 0) {
		json_object_set_new(d, "manufacturer", json_string(vendor));
		json_object_set_new(d, "serial", json_string(serial));
		json_object_set_new(d, "part_number", json_string(part));
	}
	*bytes = size;
	return d;
}

static int
name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strverscmp((*a)->d_name, (*b)->d_name);
}

static int
is_type(const struct dirent *de, const char *prefix)
{
	return strncmp(de->d_name, prefix, strlen(prefix)) == 0;
}

static int
is_type17(const struct dirent *de)
{
	return is_type(de, "17-");
}

static int
is_type16(const struct dirent *de)
{
	return is_type(de, "16-");
}

/* DIMMs into mem: dimms[], slots, ecc. Sum of installed sizes in *sum. */
static void
dmi_memory(const char *root, json_t *mem, long long *sum)
{
	char path[4096];
	struct dirent **ents = NULL;
	uint8_t raw[DMI_RAWMAX];
	long long bytes;
	json_t *dimms, *d;
	const char *ecc;
	ssize_t n;
	int i, cnt;

	*sum = 0;
	if (inventory_path(path, sizeof path, root,
	    "sys/firmware/dmi/entries") == -1)
		return;
	if ((cnt = scandir(path, &ents, is_type17, name_cmp)) <= 0) {
		free(ents);
		return;
	}
	dimms = json_array();
	for (i = 0; i < cnt; i++) {
		n = read_raw(root, ents[i]->d_name, raw, sizeof raw);
		if (n > 0 && i < INV_MAX_DIMMS &&
		    (d = dimm_parse(raw, (size_t)n, &bytes)) != NULL) {
			json_array_append_new(dimms, d);
			*sum += bytes;
		}
		free(ents[i]);
	}
	free(ents);
	json_object_set_new(mem, "slots", json_integer(cnt));
	json_object_set_new(mem, "dimms", dimms);

	ents = NULL;
	if ((cnt = scandir(path, &ents, is_type16, name_cmp)) > 0) {
		n = read_raw(root, ents[0]->d_name, raw, sizeof raw);
		if (n > 0x06 && raw[1] > 0x06 && (ecc = ecc_name(raw[0x06])))
			json_object_set_new(mem, "ecc", json_string(ecc));
	}
	for (i = 0; i < cnt; i++)
		free(ents[i]);
	free(ents);
}

static int
meminfo_total(const char *root, long long *out)
{
	char path[4096], line[256];
	long long kb;
	int rc = -1;
	FILE *f;

	if (inventory_path(path, sizeof path, root, "proc/meminfo") == -1 ||
	    (f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "MemTotal: %lld kB", &kb) == 1 && kb > 0) {
			*out = kb * 1024;
			rc = 0;
			break;
		}
	fclose(f);
	return rc;
}

int
inventory_memory(const char *root, json_t **out)
{
	long long usable, dimms;
	json_t *mem;

	if (meminfo_total(root, &usable) == -1) {
		log_warnx("no MemTotal in %s/proc/meminfo",
		    strcmp(root, "/") ? root : "");
		return -1;
	}
	/* total first: jansson keeps the order keys were first set in. */
	if ((mem = json_pack("{s:I, s:s, s:I}", "total_bytes", (json_int_t)0,
	    "source", "", "usable_bytes", (json_int_t)usable)) == NULL)
		return -1;
	dmi_memory(root, mem, &dimms);
	/* Installed memory is what an operator means by "RAM"; the kernel's
	 * MemTotal is that minus firmware and kernel reservations. Firmware
	 * that reports less than the kernel sees is not believed. */
	if (dimms >= usable) {
		json_object_set_new(mem, "total_bytes", json_integer(dimms));
		json_object_set_new(mem, "source", json_string("dmi"));
	} else {
		json_object_set_new(mem, "total_bytes", json_integer(usable));
		json_object_set_new(mem, "source", json_string("meminfo"));
	}
	*out = mem;
	return 0;
}
