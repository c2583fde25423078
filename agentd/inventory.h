/* inventory.h — agentd discovery: hardware collectors (inventory*.c), the
 * kernel command line (cmdline.c) and the report upload (report.c).
 *
 * Every collector reads files below a root prefix ("/" on a node, a
 * fixture tree in tests) and never writes anything. Block devices are only
 * ever opened O_RDONLY. Collectors return 0 or -1 and write their
 * out-parameter only on success; the JSON they return is owned by the
 * caller (json_decref). */
#ifndef AGENTD_INVENTORY_H
#define AGENTD_INVENTORY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "mac.h"

/* bastion rejects strings longer than 256 bytes or with control chars. */
#define INV_STRMAX	256
#define INV_MAX_CPUS	8192
#define INV_MAX_DISKS	256
#define INV_MAX_PARTS	128	/* per disk */
#define INV_MAX_NICS	128
#define INV_MAX_DIMMS	1024

/* --- inventory.c: helpers and the whole report --------------------------- */

struct inventory_opts {
	const char	*root;		/* "/" or a fixture tree */
	const char	*boot_mac;	/* normalised, or NULL: guess */
	int		 probe;		/* run libblkid on block devices */
};

/* out = root + rel ("/" root gives rel unchanged). 0 or -1 (too long). */
int	inventory_path(char *out, size_t len, const char *root,
	    const char *rel);
/*
 * Reads root/rel (one sysfs/proc value): trailing whitespace removed,
 * bytes outside printable ASCII replaced by '?', cut to fit. 0, or -1 if
 * the file cannot be read (missing, EINVAL from a down link ...).
 */
int	inventory_read_str(const char *root, const char *rel, char *out,
	    size_t len);
/* root/rel as a decimal (or 0x hex) integer. 0 or -1. */
int	inventory_read_ll(const char *root, const char *rel, long long *out);
/* Same cleaning as inventory_read_str for a string already in memory. */
void	inventory_clean(char *s);
/* A JSON string of s after inventory_clean on a copy (never NULL s). */
json_t	*inventory_jstr(const char *s);
/* Sets o[key] = string read from root/rel, if readable. */
void	inventory_set_file(json_t *o, const char *key, const char *root,
	    const char *rel);
/* "bios" or "uefi" (root/sys/firmware/efi exists). */
const char *inventory_firmware(const char *root);
/* The whole discovery report. */
int	inventory_collect(const struct inventory_opts *, json_t **out);

/* --- inventory_cpu.c ----------------------------------------------------- */
/* {model, vendor, sockets, cores, threads, mhz, flags[], ...} */
int	inventory_cpu(const char *root, json_t **out);

/* --- inventory_mem.c ----------------------------------------------------- */
/* {total_bytes, usable_bytes, source, dimms[], slots, ecc} */
int	inventory_memory(const char *root, json_t **out);

/* --- inventory_dmi.c ----------------------------------------------------- */
/* {vendor, product, version, serial, uuid, sku, family, board{}, chassis{},
 * bios{}} from root/sys/class/dmi/id; an empty object when absent. */
int	inventory_dmi(const char *root, json_t **out);
/*
 * String number idx of a raw SMBIOS structure (header + formatted area of
 * raw[1] bytes + string set). Writes a cleaned copy to out; idx 0 or a
 * missing string gives "". 0 or -1 (malformed structure).
 */
int	inventory_dmi_string(const uint8_t *raw, size_t rawlen, uint8_t idx,
	    char *out, size_t outlen);

/* --- inventory_disk.c ---------------------------------------------------- */
/* [{name, size_bytes, model, serial, wwn, rotational, removable, bus, ...,
 * pttype, partitions[], fstype, lvm{}}] from root/sys/block; ram, loop,
 * zram, dm, md, optical and floppy devices are not disks. When probe is
 * set, root/dev/NAME is examined with libblkid (read only). */
int	inventory_disks(const char *root, int probe, json_t **out);
/* [{name, pvs[]}] from the lvm{} members of disks and partitions. */
int	inventory_volume_groups(const json_t *disks, json_t **out);

/* --- inventory_blkid.c --------------------------------------------------- */
/*
 * Probes the device or image file at path (opened O_RDONLY) and adds what
 * is on it to disk: pttype, ptuuid, partitions[] (each with fstype, uuid,
 * label, lvm{}), and fstype/uuid/label/lvm{} for a whole-device
 * signature. name is the disk's kernel name, used to name partitions.
 * 0, or -1 if the device cannot be opened or probed (disk untouched).
 */
int	inventory_probe(const char *path, const char *name, json_t *disk);
/*
 * The volume group name recorded in the LVM2 physical volume that starts
 * at byte base of fd. 0 (out written), or -1: not a PV, an orphan PV, no
 * metadata area, or malformed metadata.
 */
int	inventory_lvm_vgname(int fd, off_t base, char *out, size_t len);

/* --- inventory_nic.c ----------------------------------------------------- */
/* [{name, mac, driver, speed_mbps, carrier, boot, mtu, ...}] from
 * root/sys/class/net, physical Ethernet interfaces only. */
int	inventory_nics(const char *root, const char *boot_mac, json_t **out);

/* --- cmdline.c: the kernel command line ---------------------------------- */

enum after_action { AFTER_NONE, AFTER_EXIT, AFTER_POWEROFF, AFTER_REBOOT,
    AFTER_WAIT };

#define CMDLINE_URLMAX	512

struct cmdline {
	char		 url[CMDLINE_URLMAX];	/* bastion.url, "" if absent */
	char		 plan[CMDLINE_URLMAX];	/* bastion.plan (installer) */
	char		 mac[MAC_STRLEN];	/* bastion.mac, else BOOTIF */
	enum after_action after;		/* bastion.after */
};

/* Parses the text of /proc/cmdline. Invalid values are ignored (logged);
 * the last occurrence of a parameter wins. Always 0. */
int	cmdline_parse(const char *text, struct cmdline *out);
/* Reads and parses root/proc/cmdline. 0 or -1 (unreadable). */
int	cmdline_read(const char *root, struct cmdline *out);
/* "poweroff" ... -> the action; -1 for anything else. */
int	cmdline_after_parse(const char *s, enum after_action *out);
const char *cmdline_after_name(enum after_action);

/* --- report.c: POST with retries ----------------------------------------- */

enum report_transport {
	REPORT_CURL,	/* libcurl: http and https */
	REPORT_PLAIN,	/* built-in HTTP/1.1 client: http only */
};

struct report_opts {
	enum report_transport transport;	/* default: libcurl if built in */
	long	connect_timeout_ms;	/* per attempt */
	long	timeout_ms;		/* per attempt, whole request */
	int	max_attempts;
	long	backoff_initial_ms;
	long	backoff_max_ms;
	long	deadline_ms;		/* all attempts and waits together */
	const char *cacert;		/* libcurl, https: or NULL */
};

void	report_opts_default(struct report_opts *);
/*
 * Delay before retry number attempt (1 = after the first failure):
 * exponential from backoff_initial_ms, capped at backoff_max_ms, with
 * "equal jitter": a uniformly random half of it is added to the other
 * half. rnd is a random 32-bit value.
 */
long	report_backoff_ms(const struct report_opts *, int attempt,
	    uint32_t rnd);
/*
 * The URL a report goes to: url itself, or url + "/api/v1/discover" when
 * url has no path (or only "/"). 0 or -1 (not http(s), too long).
 */
int	report_url(const char *url, char *out, size_t len);
/*
 * POSTs body (JSON) to url. Retries connection errors, timeouts, 408, 429
 * and 5xx with backoff; any other 4xx is final. 0 on a 2xx, else -1.
 * *status gets the last HTTP status (0: none); *reply (may be NULL) the
 * last response body, owned by the caller.
 */
int	report_post(const char *url, const char *body,
	    const struct report_opts *, long *status, char **reply);

#endif
