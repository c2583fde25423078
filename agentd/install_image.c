/* install_image.c — the OS image: downloaded and checked before a byte
 * of it reaches the disk, unpacked into INST_TARGET, then made into this
 * node (host name, network, SSH keys, fstab, agentd) and bootable with
 * GRUB for BIOS and UEFI. */
#define _GNU_SOURCE
#define LOG_SUBSYS "install"
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "agent.h"
#include "clock.h"
#include "hex.h"
#include "http1.h"
#include "installer.h"
#include "log.h"

#define T INST_TARGET

/* A child reading our bytes on its stdin (tar). */
struct feed {
	pid_t	pid;
	int	in;		/* we write here */
};

static int
feed_start(struct feed *f, const char *const argv[], char *why,
    size_t whylen)
{
	int ip[2];

	if (pipe2(ip, O_CLOEXEC) == -1) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((f->pid = fork()) == -1) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		return -1;
	}
	if (f->pid == 0) {
		child_prepare();
		if (dup2(ip[0], 0) == -1)
			_exit(127);
		setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(ip[0]);
	f->in = ip[1];
	return 0;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Closes its stdin and waits. The exit status (-1 if it did not exit). */
static int
feed_end(struct feed *f)
{
	int status;

	if (f->in >= 0)
		close(f->in);
	f->in = -1;
	while (waitpid(f->pid, &status, 0) == -1 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* --- fetching ------------------------------------------------------------ */

struct download {
	struct inst_plan *p;
	int	 fd;
	struct sha256_ctx sha;	/* in-process: no second copy through a pipe */
	long long got, size;	/* of this file */
	long long before, total;	/* of all the files, for progress */
	int64_t	 hash_us;	/* bastion.debug: what hashing cost */
};

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
download_sink(void *ctx, const char *data, size_t n)
{
	struct download *d = ctx;
	int64_t t0;

	/* No more than the plan's size: a longer answer is not the image. */
	if ((long long)n > d->size - d->got || write_all(d->fd, data, n) == -1)
		return -1;
	t0 = log_is_debug() ? mono_us() : 0;
	sha256_update(&d->sha, n, (const uint8_t *)data);
	if (t0)
		d->hash_us += mono_us() - t0;
	d->got += (long long)n;
	install_progress(d->p, "pre", 2 + (int)(18 * (d->before + d->got) /
	    d->total), 0, "downloading %s: %lld of %lld MiB", d->p->os,
	    (d->before + d->got) >> 20, d->total >> 20);
	return 0;
}

/* RAM for the image: MemAvailable from /proc/meminfo in MiB, or -1. */
static long long
mem_available_mib(void)
{
	char line[128];
	long long kb = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb / 1024;
}

/* GET url through sink, which caps what it takes; the deadline allows
 * 1 MiB/s for max bytes. The HTTP status, 0 with why. */
static long
get_to(const char *url, long long max, int (*sink)(void *, const char *,
    size_t), void *ctx, char *why, size_t whylen)
{
	struct buf body;
	long status;

	buf_init(&body, 64 * 1024);	/* an error's body, if any */
	status = install_get(url, &body, sink, ctx, 120000 + (long)(max / 1024),
	    why, whylen);
	buf_free(&body);
	return status;
}

/* The hex SHA-256 of what ctx saw into out (65 bytes at least). */
static void
sha256_hex(struct sha256_ctx *ctx, char *out)
{
	uint8_t md[SHA256_DIGEST_SIZE];

	sha256_digest(ctx, sizeof md, md);
	hex_encode(md, sizeof md, out);
}

static int
check_sum(const char *got, const char *want, const char *what, char *why,
    size_t whylen)
{
	if (strlen(got) < 64 || strncmp(got, want, 64) != 0) {
		snprintf(why, whylen, "%s does not match its SHA-256 in the plan "
		    "(got %.64s): refusing to write it", what, got);
		return -1;
	}
	return 0;
}

/* url (size bytes, SHA-256 want) into path, hashed as it comes; deleted
 * unless it is all that. */
static int
fetch_one(struct download *d, const char *url, long long size,
    const char *want, const char *path, const char *what, char *why,
    size_t whylen)
{
	char sum[128];
	int64_t started = clock_mono_ms();
	long status;
	int rc = -1;

	d->got = 0;
	d->size = size;
	d->hash_us = 0;
	if ((d->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600))
	    == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	sha256_init(&d->sha);
	status = get_to(url, size, download_sink, d, why, whylen);
	sha256_hex(&d->sha, sum);
	if (close(d->fd) == -1 && status == 200) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		status = 0;
	}
	if (status != 200) {
		if (status != 0)
			snprintf(why, whylen, "%s %s: HTTP %ld", what, url,
			    status);
	} else if (d->got != size) {
		snprintf(why, whylen, "%s has %lld bytes, the plan says %lld: "
		    "refusing to write it", what, d->got, size);
	} else if (check_sum(sum, want, what, why, whylen) == 0)
		rc = 0;
	if (rc == -1)
		unlink(path);
	log_debug("%s: %lld MiB in %lld ms, %lld ms of it SHA-256", what,
	    d->got >> 20, (long long)(clock_mono_ms() - started),
	    (long long)(d->hash_us / 1000));
	d->before += d->got;
	return rc;
}

int
install_image_fetch(struct inst_plan *p, char *why, size_t whylen)
{
	struct download d;
	long long avail = mem_available_mib(), total;

	total = p->root_url[0] ? p->root_size + p->rest_size : p->image_size;
	/* Kept in RAM until checked: never half an image on the disk. */
	if (avail >= 0 && avail < (total >> 20) + 256) {
		snprintf(why, whylen, "%lld MiB of RAM available; the %s image "
		    "needs %lld MiB and 256 more", avail, p->os, total >> 20);
		return -1;
	}
	memset(&d, 0, sizeof d);
	d.p = p;
	d.total = total;
	if (p->root_url[0] == '\0') {
		if (fetch_one(&d, p->image_url, p->image_size, p->image_sha256,
		    INST_ARCHIVE, "the image", why, whylen) == -1)
			return -1;
	} else if (fetch_one(&d, p->root_url, p->root_size, p->root_sha256,
	    INST_ROOT_IMAGE, "the root filesystem image", why, whylen) == -1 ||
	    fetch_one(&d, p->rest_url, p->rest_size, p->rest_sha256, INST_REST,
	    "the image's /boot and /var", why, whylen) == -1) {
		unlink(INST_ROOT_IMAGE);
		return -1;
	}
	install_progress(p, "pre", 20, 1, "image %s checked (%lld MiB, "
	    "sha256 %.12s…)", p->os, total >> 20, p->root_url[0] ?
	    p->root_sha256 : p->image_sha256);
	return 0;
}

/* --- writing ------------------------------------------------------------- */

static void
root_progress(void *ctx, long long done)
{
	struct inst_plan *p = ctx;

	install_progress(p, "packages", 26 + (int)(49 * done / p->root_bytes),
	    0, "writing %s's root filesystem: %lld of %lld MiB", p->os,
	    done >> 20, p->root_bytes >> 20);
}

int
install_image_root(struct inst_plan *p, const char *dev, char *why,
    size_t whylen)
{
	char uuid[40], err[INST_ERRLEN];
	off_t have = -1;
	int fd, rc = -1;

	if ((fd = open(dev, O_RDONLY | O_CLOEXEC)) == -1 ||
	    (have = lseek(fd, 0, SEEK_END)) == -1) {
		snprintf(why, whylen, "%s: %s", dev, strerror(errno));
		goto out;
	}
	if ((long long)have < p->root_bytes) {
		snprintf(why, whylen, "the root volume has %lld MiB, the image's "
		    "filesystem %lld", (long long)have >> 20, p->root_bytes >> 20);
		goto out;
	}
	install_progress(p, "packages", 26, 1, "writing %s's root filesystem "
	    "(%lld MiB) to %s", p->os, p->root_bytes >> 20, dev);
	if (install_unzstd(INST_ROOT_IMAGE, dev, p->root_bytes, root_progress,
	    p, why, whylen) == -1)
		goto out;
	/* The image's UUID is every machine's: each gets its own. */
	if (install_xfs_uuid(dev, uuid, sizeof uuid, err, sizeof err) == -1) {
		snprintf(why, whylen, "the root filesystem's UUID: %s", err);
		goto out;
	}
	rc = 0;
	install_progress(p, "packages", 75, 1, "%s's root filesystem "
	    "written, UUID %s", p->os, uuid);
out:
	if (fd >= 0)
		close(fd);
	unlink(INST_ROOT_IMAGE);	/* its RAM back */
	return rc;
}

int
install_image_grow(struct inst_plan *p, char *why, size_t whylen)
{
	if (install_run((const char *const[]){ "xfs_growfs", "-d", T, NULL },
	    NULL, -1, NULL, why, whylen) == -1)
		return -1;
	return 0;
}

int
install_image_write(struct inst_plan *p, char *why, size_t whylen)
{
	static char chunk[1 << 20];
	const char *path = p->root_url[0] ? INST_REST : INST_ARCHIVE;
	long long done = 0, size = p->root_url[0] ? p->rest_size :
	    p->image_size;
	int from = p->root_url[0] ? 75 : 26;
	struct feed tar;
	ssize_t n;
	int fd, st;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (feed_start(&tar, (const char *const[]){ "tar", "--zstd", "-x", "-f",
	    "-", "-p", "--numeric-owner", "--xattrs", "--xattrs-include=*",
	    "-C", T, NULL }, why, whylen) == -1) {
		close(fd);
		return -1;
	}
	/* tar may die mid-stream: its exit status says why, not EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	while ((n = read(fd, chunk, sizeof chunk)) > 0) {
		if (write_all(tar.in, chunk, (size_t)n) == -1)
			break;
		done += n;
		install_progress(p, "packages", from + (int)((85 - from) * done /
		    size), 0, "writing %s%s: %lld of %lld MiB", p->os,
		    p->root_url[0] ? "'s /boot and /var" : "", done >> 20,
		    size >> 20);
	}
	close(fd);
	st = feed_end(&tar);
	unlink(path);
	if (st != 0 || done != size) {
		snprintf(why, whylen, "unpacking the image failed (tar exit %d "
		    "after %lld of %lld bytes)", st, done, size);
		return -1;
	}
	install_progress(p, "packages", 85, 1, "%s written", p->os);
	return 0;
}

/* --- making it this node ------------------------------------------------- */

/* path (below T) := data, by a temporary file and rename. */
static int
put_file(const char *rel, const char *data, size_t len, mode_t mode,
    char *why, size_t whylen)
{
	char path[512], tmp[520];
	int fd;

	snprintf(path, sizeof path, "%s%s", T, rel);
	snprintf(tmp, sizeof tmp, "%s.new", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, mode)) == -1 || write_all(fd, data, len) == -1 ||
	    fchmod(fd, mode) == -1 || fsync(fd) == -1 || close(fd) == -1 ||
	    rename(tmp, path) == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
put_text(const char *rel, mode_t mode, char *why, size_t whylen,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
put_text(const char *rel, mode_t mode, char *why, size_t whylen,
    const char *fmt, ...)
{
	struct buf b;
	va_list ap;
	int rc;

	buf_init(&b, 64 * 1024);
	va_start(ap, fmt);
	rc = buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (rc == -1) {
		snprintf(why, whylen, "%s: too long", rel);
		buf_free(&b);
		return -1;
	}
	rc = put_file(rel, b.data ? b.data : "", b.len, mode, why, whylen);
	buf_free(&b);
	return rc;
}

static int
mkdirs(const char *rel, mode_t mode, char *why, size_t whylen)
{
	char path[512], *s;

	snprintf(path, sizeof path, "%s%s", T, rel);
	for (s = path + strlen(T) + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST)
			goto fail;
		*s = '/';
	}
	if (mkdir(path, mode) == -1 && errno != EEXIST)
		goto fail;
	if (chmod(path, mode) == -1)
		goto fail;
	return 0;
fail:
	snprintf(why, whylen, "mkdir %s: %s", path, strerror(errno));
	return -1;
}

struct fetched {
	int		fd;
	long long	left;	/* bytes it may still take */
	struct sha256_ctx sha;
};

static int
fd_sink(void *ctx, const char *p, size_t n)
{
	struct fetched *f = ctx;

	if ((long long)n > f->left)
		return -1;
	f->left -= (long long)n;
	sha256_update(&f->sha, n, (const uint8_t *)p);
	return write_all(f->fd, p, n);
}

/* url -> rel (below T) if its SHA-256 is want. */
static int
fetch_checked(const char *url, const char *want, const char *rel,
    mode_t mode, char *why, size_t whylen)
{
	char path[512], tmp[520], sum[128];
	struct fetched f;
	long status;

	snprintf(path, sizeof path, "%s%s", T, rel);
	snprintf(tmp, sizeof tmp, "%s.new", path);
	f.left = 64LL << 20;
	sha256_init(&f.sha);
	if ((f.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, mode)) == -1) {
		snprintf(why, whylen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	status = get_to(url, f.left, fd_sink, &f, why, whylen);
	if (close(f.fd) == -1 || status != 200) {
		if (status != 0)
			snprintf(why, whylen, "%s: HTTP %ld", url, status);
		goto fail;
	}
	sha256_hex(&f.sha, sum);
	if (check_sum(sum, want, rel, why, whylen) == -1)
		goto fail;
	if (chmod(tmp, mode) == -1 || rename(tmp, path) == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	unlink(tmp);
	return -1;
}

static int
in_target(const char *const argv[], char *why, size_t whylen)
{
	return install_run(argv, T, -1, NULL, why, whylen);
}

static int
write_identity(struct inst_plan *p, const struct inst_disk *d, char *why,
    size_t whylen)
{
	char shortname[64];
	struct buf b;
	int i, rc;

	snprintf(shortname, sizeof shortname, "%.*s",
	    (int)strcspn(p->hostname, "."), p->hostname);
	if (put_text("/etc/hostname", 0644, why, whylen, "%s\n", shortname) ||
	    put_text("/etc/hosts", 0644, why, whylen, "127.0.0.1\tlocalhost\n"
	    "127.0.1.1\t%s%s%s\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	    p->hostname, strcmp(shortname, p->hostname) ? " " : "",
	    strcmp(shortname, p->hostname) ? shortname : ""))
		return -1;
	buf_init(&b, 64 * 1024);
	rc = install_disk_fstab(p, d, &b, why, whylen);
	if (rc == 0)
		rc = put_file("/etc/fstab", b.data, b.len, 0644, why, whylen);
	buf_free(&b);
	if (rc == -1)
		return -1;
	/* The preserved volumes were not mounted: their mount points. */
	for (i = 0; i < p->nvol; i++)
		if (p->vol[i].keep && strcmp(p->vol[i].mount, "swap") != 0 &&
		    mkdirs(p->vol[i].mount, 0755, why, whylen) == -1)
			return -1;
	/* DHCP on the NIC this machine booted from, identified by its MAC
	 * as its firmware and iPXE are: one lease, one address, which is
	 * the one bastion binds its installs to (networkd's default, a
	 * DUID, would be a second client with a second address). */
	if (mkdirs("/etc/systemd/network", 0755, why, whylen) ||
	    put_text("/etc/systemd/network/10-bastion-boot.network", 0644, why,
	    whylen, "# made by bastion's installer: DHCP on the boot NIC\n"
	    "[Match]\nMACAddress=%s\n\n[Network]\nDHCP=ipv4\n\n"
	    "[DHCPv4]\nClientIdentifier=mac\n", p->mac))
		return -1;
	if (mkdirs("/root/.ssh", 0700, why, whylen) == -1)
		return -1;
	buf_init(&b, 300 * 1024);
	rc = 0;
	for (i = 0; i < p->nkeys; i++)
		rc |= buf_printf(&b, "%s\n", p->keys[i]);
	if (rc == 0)
		rc = put_file("/root/.ssh/authorized_keys", b.data ? b.data : "",
		    b.len, 0600, why, whylen);
	buf_free(&b);
	if (rc == -1)
		return -1;
	return put_text("/etc/bastion-release", 0644, why, whylen,
	    "provisioned by bastion %s as %s (%s)\n", p->version, p->role, p->os);
}

static int
write_agent(struct inst_plan *p, char *why, size_t whylen)
{
	if (mkdirs("/usr/local/sbin", 0755, why, whylen) ||
	    mkdirs("/etc/agentd", 0700, why, whylen) ||
	    mkdirs("/var/lib/agentd", 0700, why, whylen) ||
	    fetch_checked(p->agentd_url, p->agentd_sha256,
	    "/usr/local/sbin/agentd", 0755, why, whylen) ||
	    fetch_checked(p->unit_url, p->unit_sha256,
	    "/etc/systemd/system/agentd.service", 0644, why, whylen))
		return -1;
	/* The plan names the dynamically linked agentd (the image is the
	 * build host's Debian release): it drives guests once the operator
	 * installs libvirt or LXC, so it takes guest jobs too. */
	return put_text("/etc/agentd/agentd.conf", 0600, why, whylen,
	    "[agent]\nserver = %s\nca_fingerprint = %s\ntoken = %s\nmac = %s\n"
	    "state_dir = /var/lib/agentd\n"
	    "accept = exec,reboot,reprovision,inventory,containers,guests\n",
	    p->server, p->ca_fingerprint, p->token, p->mac);
}

/* The image's kernel: the newest /boot/vmlinuz-V with its initrd. */
static int
find_kernel(char *kver, size_t len, char *why, size_t whylen)
{
	char initrd[PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *dir;

	kver[0] = '\0';
	if ((dir = opendir(T "/boot")) == NULL) {
		snprintf(why, whylen, "/boot: %s", strerror(errno));
		return -1;
	}
	while ((e = readdir(dir)) != NULL) {
		const char *v = e->d_name + strlen("vmlinuz-");

		if (strncmp(e->d_name, "vmlinuz-", 8) != 0 || *v == '\0' ||
		    strlen(v) >= len || strspn(v, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+_-") != strlen(v))
			continue;
		snprintf(initrd, sizeof initrd, T "/boot/initrd.img-%s", v);
		if (stat(initrd, &st) == 0 && S_ISREG(st.st_mode) &&
		    (kver[0] == '\0' || strverscmp(v, kver) > 0))
			snprintf(kver, len, "%s", v);
	}
	closedir(dir);
	if (kver[0] == '\0') {
		snprintf(why, whylen, "the image has no kernel with an initrd "
		    "in /boot");
		return -1;
	}
	return 0;
}

static int
write_grub_cfg(struct inst_plan *p, const struct inst_disk *d, char *why,
    size_t whylen)
{
	char kver[128];
	struct buf b;
	int rc;

	if (find_kernel(kver, sizeof kver, why, whylen) == -1)
		return -1;
	buf_init(&b, 16 * 1024);
	rc = install_disk_grub_cfg(p, d, kver, &b, why, whylen);
	if (rc == 0)
		rc = put_file("/boot/grub/grub.cfg", b.data, b.len, 0644, why,
		    whylen);
	buf_free(&b);
	return rc;
}

/* core.img and boot.img onto the disk, as grub-bios-setup would (in
 * process: install_grub.c); grub-bios-setup itself where the disk has
 * other than 512-byte sectors. */
static int
grub_bios_setup(struct inst_plan *p, const struct inst_disk *d,
    const char *dev, char *why, size_t whylen)
{
	const char *part = strrchr(d->bios, '/') ? strrchr(d->bios, '/') + 1 :
	    d->bios;
	long long start = install_block_attr(part, "start"),
	    size = install_block_attr(part, "size");

	if (install_block_attr(p->disk, "queue/logical_block_size") != 512)
		return in_target((const char *const[]){
		    "/usr/lib/grub/i386-pc/grub-bios-setup", "-d",
		    "/boot/grub/i386-pc", dev, NULL }, why, whylen);
	if (start < 0 || size < 0) {
		snprintf(why, whylen, "%s: no start or size in sysfs", part);
		return -1;
	}
	return install_grub_bios_embed(dev, start, size,
	    T "/boot/grub/i386-pc/boot.img", T "/boot/grub/i386-pc/core.img",
	    why, whylen);
}

/*
 * GRUB when the image brought its modules in /boot/grub/PLATFORM
 * (image/os-fs.sh): what grub-install would do after copying them and
 * probing the disk: two grub-mkimage instead of two grub-installs. Each
 * core finds /boot by this machine's UUID, as grub-install's does; BIOS:
 * boot.img in the MBR and core.img in the BIOS boot partition (as
 * grub-bios-setup does: install_grub.c); UEFI: the removable path, found
 * by any firmware without an NVRAM entry.
 */
static int
grub_prestaged(struct inst_plan *p, const struct inst_disk *d,
    const char *dev, char *why, size_t whylen)
{
	if (put_text("/boot/grub/load.cfg", 0644, why, whylen,
	    "search.fs_uuid %s root\nset prefix=($root)'/grub'\n",
	    d->boot_uuid) == -1)
		return -1;
	if (d->bios[0] && (in_target((const char *const[]){ "grub-mkimage",
	    "-O", "i386-pc", "-d", "/usr/lib/grub/i386-pc", "-c",
	    "/boot/grub/load.cfg", "-p", "/grub", "-o",
	    "/boot/grub/i386-pc/core.img", "biosdisk", "part_gpt", "ext2",
	    "search_fs_uuid", NULL }, why, whylen) == -1 ||
	    grub_bios_setup(p, d, dev, why, whylen) == -1))
		return -1;
	/* vfat has no modes to set: plain mkdir. */
	if (d->esp[0] && ((mkdir(T "/boot/efi/EFI", 0755) == -1 && errno !=
	    EEXIST) || (mkdir(T "/boot/efi/EFI/BOOT", 0755) == -1 && errno !=
	    EEXIST))) {
		snprintf(why, whylen, "mkdir %s/boot/efi/EFI/BOOT: %s", T,
		    strerror(errno));
		return -1;
	}
	if (d->esp[0] && (in_target((const char *const[]){ "grub-mkimage", "-O",
	    "x86_64-efi", "-d", "/usr/lib/grub/x86_64-efi", "-c",
	    "/boot/grub/load.cfg", "-p", "/grub", "-o",
	    "/boot/efi/EFI/BOOT/BOOTX64.EFI", "part_gpt", "ext2",
	    "search_fs_uuid", NULL }, why, whylen) == -1))
		return -1;
	return 0;
}

/* systemd-networkd and agentd started at boot. The root image has
 * networkd enabled already (image/os-fs.sh): agentd's one link (its unit
 * is WantedBy=multi-user.target) is made here, without a systemctl. */
static int
enable_units(struct inst_plan *p, char *why, size_t whylen)
{
	const char *link = T "/etc/systemd/system/multi-user.target.wants/"
	    "agentd.service";

	if (p->root_url[0] == '\0')
		return in_target((const char *const[]){ "systemctl", "enable",
		    "--quiet", "systemd-networkd.service", "agentd.service",
		    NULL }, why, whylen);
	if (mkdirs("/etc/systemd/system/multi-user.target.wants", 0755, why,
	    whylen) == -1)
		return -1;
	if (symlink("/etc/systemd/system/agentd.service", link) == -1 &&
	    errno != EEXIST) {
		snprintf(why, whylen, "%s: %s", link, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Each node its own SSH host keys (the image has none), made at its first
 * boot before sshd starts, as Fedora's sshd-keygen does: RSA's primes are
 * seconds to minutes of CPU under emulation, which the install then does
 * not wait for. A unit of its own at idle priority, so that the agent's
 * enrollment at the same boot does not wait for them either; ssh-keygen -A
 * makes only the keys that are missing (a no-op at later boots).
 */
static int
host_keys_at_boot(char *why, size_t whylen)
{
	if (put_text("/etc/systemd/system/bastion-host-keys.service", 0644, why,
	    whylen, "# made by bastion's installer\n[Unit]\nDescription=SSH "
	    "host keys of this node\nBefore=ssh.service\n\n[Service]\n"
	    "Type=oneshot\nExecStart=/usr/bin/ssh-keygen -A\n"
	    "CPUSchedulingPolicy=idle\nNice=19\nIOSchedulingClass=idle\n") ==
	    -1 || mkdirs("/etc/systemd/system/ssh.service.d", 0755, why,
	    whylen) == -1)
		return -1;
	return put_text("/etc/systemd/system/ssh.service.d/"
	    "bastion-host-keys.conf", 0644, why, whylen, "# made by bastion's "
	    "installer: sshd after this node's own host keys\n[Unit]\n"
	    "Wants=bastion-host-keys.service\n"
	    "After=bastion-host-keys.service\n");
}

static int
make_bootable(struct inst_plan *p, const struct inst_disk *d, char *why,
    size_t whylen)
{
	char dev[64];

	snprintf(dev, sizeof dev, "/dev/%s", p->disk);
	if (install_mount_at("/dev", T "/dev", NULL, MS_BIND, why, whylen) ||
	    install_mount_at("proc", T "/proc", "proc", 0, why, whylen) ||
	    install_mount_at("sysfs", T "/sys", "sysfs", 0, why, whylen) ||
	    install_mount_at("tmpfs", T "/run", "tmpfs", 0, why, whylen))
		return -1;
	if (host_keys_at_boot(why, whylen) == -1 || enable_units(p, why,
	    whylen) == -1)
		return -1;
	install_progress(p, "post", 90, 1, "installing GRUB on %s", p->disk);
	if (access(T "/boot/grub/i386-pc/boot.img", F_OK) == 0 &&
	    access(T "/boot/grub/x86_64-efi/normal.mod", F_OK) == 0) {
		if (grub_prestaged(p, d, dev, why, whylen) == -1)
			return -1;
		return write_grub_cfg(p, d, why, whylen);
	}
	if (d->bios[0] && in_target((const char *const[]){ "grub-install",
	    "--target=i386-pc", dev, NULL }, why, whylen) == -1)
		return -1;
	/* The removable path (EFI/BOOT/BOOTX64.EFI): found by any firmware
	 * without a boot entry in its NVRAM. */
	if (d->esp[0] && in_target((const char *const[]){ "grub-install",
	    "--target=x86_64-efi", "--efi-directory=/boot/efi", "--removable",
	    "--no-nvram", "--no-uefi-secure-boot", NULL }, why, whylen) == -1)
		return -1;
	return write_grub_cfg(p, d, why, whylen);
}

int
install_image_configure(struct inst_plan *p, const struct inst_disk *d,
    char *why, size_t whylen)
{
	install_progress(p, "post", 86, 1, "configuring %s", p->hostname);
	if (write_identity(p, d, why, whylen) == -1 ||
	    write_agent(p, why, whylen) == -1 ||
	    make_bootable(p, d, why, whylen) == -1)
		return -1;
	install_progress(p, "post", 98, 1, "%s is bootable (BIOS%s)",
	    p->disk, d->esp[0] ? " and UEFI" : "");
	return 0;
}
