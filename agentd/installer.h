/* installer.h — `agentd install`: bastion's installer for image OSes
 * (DESIGN §11), run from the RAM image the discovery kernel boots with
 * the installer's tools added. It fetches its plan from the boot
 * listener, lays out the disk (install_disk.c), writes the image and
 * makes it bootable (install_image.c), reporting progress all along.
 *
 * Everything the plan says is checked here again before it reaches a
 * command line or a path: the plan comes over plain HTTP. Commands run
 * as argv (never through a shell). */
#ifndef AGENTD_INSTALLER_H
#define AGENTD_INSTALLER_H

#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "mac.h"

#define INST_MAX_VOLUMES	16
#define INST_MAX_KEYS		32
#define INST_URLMAX		512
#define INST_ERRLEN		512
#define INST_TARGET		"/target"	/* where the new system is built */
#define INST_WORK		"/run/bastion-install"
/* What install_image_fetch leaves in INST_WORK: the archive, or the root
 * filesystem image and the rest (/boot and /var). */
#define INST_ARCHIVE		INST_WORK "/image"
#define INST_ROOT_IMAGE		INST_WORK "/root.img"
#define INST_REST		INST_WORK "/rest.tar.zst"

struct inst_volume {
	char	name[40];	/* LV name: [a-z0-9_] */
	char	mount[64];	/* "/", "/var/lib/x" or "swap" */
	char	fstype[8];	/* xfs ext4 ext3 ext2 swap */
	long	size_mb;
	int	grow;
	int	preserve;
	int	keep;		/* this install keeps its bytes (reprovision) */
	int	exists;		/* the LV is there already (reprovision) */
	char	dev[96];	/* /dev/mapper/VG-NAME once it exists */
};

struct inst_plan {
	char	mac[MAC_STRLEN];
	char	hostname[254];
	char	os[32];
	char	role[32];
	char	disk[32];		/* sda, vda, nvme0n1 */
	char	vg[32];
	int	reprovision;
	long	efi_mb, boot_mb;
	struct inst_volume vol[INST_MAX_VOLUMES];
	int	nvol;
	char	image_url[INST_URLMAX];
	char	image_sha256[65];
	long long image_size;
	/* The root as a filesystem image (plan image.root, optional): root_url
	 * "" when the archive above is unpacked instead. */
	char	root_url[INST_URLMAX], root_sha256[65];
	long long root_size;		/* compressed */
	long long root_bytes;		/* the filesystem */
	char	rest_url[INST_URLMAX], rest_sha256[65];	/* /boot and /var */
	long long rest_size;
	char	progress_url[INST_URLMAX];
	char	agentd_url[INST_URLMAX], agentd_sha256[65];
	char	unit_url[INST_URLMAX], unit_sha256[65];
	char	server[300];
	char	ca_fingerprint[100];
	char	token[80];
	char	version[32];		/* of the bastion that made the plan */
	const char *keys[INST_MAX_KEYS]; /* point into keys_json */
	int	nkeys;
	json_t	*keys_json;
};

/* The disk's partitions, found or made by install_disk.c. */
struct inst_disk {
	char	bios[96];	/* BIOS boot partition node, "" if none */
	char	esp[96];	/* EFI system partition */
	char	boot[96];	/* /boot (ext4, label bastion_boot) */
	char	pv[96];		/* the LVM physical volume */
	/* The UUIDs this install gives /boot and the ESP (their mkfs), for
	 * fstab and GRUB without asking blkid. */
	char	boot_uuid[40];
	char	esp_uuid[16];	/* a FAT volume ID: XXXX-XXXX */
};

/* install.c */
/* The plan's JSON -> p. 0, or -1 with why. */
int	install_plan_parse(const json_t *, struct inst_plan *, char *why,
	    size_t whylen);
void	install_plan_free(struct inst_plan *);
/* Sends a progress report (rate-limited unless stage changes or force).
 * Failures are logged: the install goes on. */
void	install_progress(struct inst_plan *, const char *stage, int percent,
	    int force, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));
/*
 * Runs argv (PATH lookup) with root as its root directory when not NULL,
 * stdin from in_fd (-1: /dev/null). Standard output goes into out when
 * not NULL (capped), else with standard error into the error text: the
 * last line of it lands in err when the command fails. 0 when it exits
 * 0 (err then holds that last line, "" if none: what a command that
 * always exits 0 said), else -1 with err "NAME: exit N: LAST LINE".
 */
int	install_run(const char *const argv[], const char *root, int in_fd,
	    struct buf *out, char *err, size_t errlen);
/* GET url (plain http://): the body into body (capped by its max), or
 * through sink as it comes when sink is set. The HTTP status, or 0 with
 * err. */
long	install_get(const char *url, struct buf *body, int (*sink)(void *,
	    const char *, size_t), void *ctx, long timeout_ms, char *err,
	    size_t errlen);
/* n random bytes into p (up to 256). 0, or -1 with why. */
int	install_random(unsigned char *p, size_t n, char *why, size_t whylen);
/* A random (version 4) UUID: its bytes into u, its text into text (37
 * bytes at least). 0, or -1 with why. */
int	install_uuid4(unsigned char u[16], char *text, size_t len, char *why,
	    size_t whylen);
/* "/dev/" + disk + partition n (vda3, nvme0n1p3). 0 or -1. */
int	install_part_node(const char *disk, int n, char *out, size_t len);

/* install_disk.c */
/*
 * Lays out p->disk: a fresh GPT (BIOS boot, ESP, /boot, LVM with one LV
 * per volume), or on a reprovision the volume group already there, its
 * preserved volumes kept and the rest formatted. Refuses (nothing
 * written) a reprovision whose volume group cannot be reused. Then mounts
 * what the image goes into under INST_TARGET. 0, or -1 with why.
 */
int	install_disk_prepare(struct inst_plan *, struct inst_disk *,
	    char *why, size_t whylen);
/* The kernel modules the layout needs, loaded on a thread of their own
 * while the image downloads (install_disk_prepare waits for them). */
void	install_disk_modules_start(void);
/* A number from sysfs: /sys/class/block/NAME/WHAT, or -1. */
long long install_block_attr(const char *name, const char *what);
/* fstab lines for the layout into b. 0 or -1. */
int	install_disk_fstab(const struct inst_plan *, const struct inst_disk *,
	    struct buf *b, char *why, size_t whylen);
/* /boot/grub/grub.cfg booting kernel kver from the /boot partition with
 * the layout's root volume into b. 0 or -1. */
int	install_disk_grub_cfg(const struct inst_plan *,
	    const struct inst_disk *, const char *kver, struct buf *b,
	    char *why, size_t whylen);
/* install_unzstd.c */
/*
 * The zstd file src decompressed onto dev (O_DIRECT where it can), every
 * block written; exactly want bytes or it fails. progress(ctx, bytes
 * written so far) after each MiB when not NULL. 0, or -1 with why.
 */
int	install_unzstd(const char *src, const char *dev, long long want,
	    void (*progress)(void *, long long), void *ctx, char *why,
	    size_t whylen);

/* install_grub.c */
/*
 * grub-bios-setup --no-rs-codes for a GPT disk, in-process: core_img
 * into the BIOS boot partition (part_sectors 512-byte sectors at
 * part_start) of disk with its blocklist, boot_img into the MBR keeping
 * the disk's BPB area and partition table. 0, or -1 with why.
 */
int	install_grub_bios_embed(const char *disk, long long part_start,
	    long long part_sectors, const char *boot_img, const char *core_img,
	    char *why, size_t whylen);

/* mount(2) src on dir (made if missing), remembered for release. */
int	install_mount_at(const char *src, const char *dir, const char *type,
	    unsigned long flags, char *why, size_t whylen);
/* Unmounts INST_TARGET and everything below it (the data on the disk
 * then), and with deactivate set deactivates the VG. */
void	install_disk_release(const struct inst_plan *, int deactivate);

/* install_image.c */
/* Downloads the image (the archive, or the root image and the rest) into
 * INST_WORK while hashing it; refuses it (deleted) when a size or SHA-256
 * differs from the plan. 0 or -1. */
int	install_image_fetch(struct inst_plan *, char *why, size_t whylen);
/* The root filesystem image onto dev (the root volume, not mounted): one
 * stream, then a UUID of its own. 0 or -1. */
int	install_image_root(struct inst_plan *, const char *dev, char *why,
	    size_t whylen);
/* The root image mounted on INST_TARGET grown to fill its volume. */
int	install_image_grow(struct inst_plan *, char *why, size_t whylen);
/* Unpacks the archive (or the rest) into INST_TARGET, reporting progress
 * by bytes. */
int	install_image_write(struct inst_plan *, char *why, size_t whylen);
/* Host name, network, SSH keys, fstab, agentd, GRUB for BIOS and UEFI. */
int	install_image_configure(struct inst_plan *, const struct inst_disk *,
	    char *why, size_t whylen);

/* install_xfs.c */
/*
 * Gives the v5 XFS filesystem on dev (not mounted, its log clean) a new
 * random UUID in place, as `xfs_db -x -c "uuid generate"` does: every
 * superblock, META_UUID keeping the metadata's, the log's head record.
 * 0 with the UUID's text in uuid (37 bytes), or -1 with why (nothing
 * written when the filesystem is refused).
 */
int	install_xfs_uuid(const char *dev, char *uuid, size_t uuidlen,
	    char *why, size_t whylen);

/* main.c: the whole install; the exit status of `agentd install`. */
int	install_main(const char *plan_url, int dry_run);

#endif
