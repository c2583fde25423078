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

#include "agent.h"
#include "clock.h"
#include "http1.h"
#include "installer.h"
#include "log.h"

#define T INST_TARGET

/* A child reading our bytes on its stdin (sha256sum, tar). */
struct feed {
	pid_t	pid;
	int	in;		/* we write here */
	int	out;		/* its stdout, or -1 */
};

static int
feed_start(struct feed *f, const char *const argv[], int want_out,
    char *why, size_t whylen)
{
	int ip[2], op[2] = { -1, -1 };

	if (pipe2(ip, O_CLOEXEC) == -1 || (want_out && pipe2(op, O_CLOEXEC) ==
	    -1)) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((f->pid = fork()) == -1) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		return -1;
	}
	if (f->pid == 0) {
		child_prepare();
		if (dup2(ip[0], 0) == -1 || (want_out && dup2(op[1], 1) == -1))
			_exit(127);
		setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(ip[0]);
	f->in = ip[1];
	f->out = op[0];
	if (want_out)
		close(op[1]);
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

/* Closes its stdin, reads up to len-1 bytes of its stdout, waits. The
 * exit status (-1 if it did not exit). */
static int
feed_end(struct feed *f, char *out, size_t len)
{
	ssize_t n = 0, r;
	int status;

	if (f->in >= 0)
		close(f->in);
	f->in = -1;
	if (f->out >= 0) {
		while ((size_t)n + 1 < len && (r = read(f->out, out + n,
		    len - 1 - (size_t)n)) > 0)
			n += r;
		close(f->out);
		f->out = -1;
	}
	if (out)
		out[n > 0 ? n : 0] = '\0';
	while (waitpid(f->pid, &status, 0) == -1 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* --- fetching ------------------------------------------------------------ */

struct download {
	struct inst_plan *p;
	int	 fd;
	struct feed hash;
	long long got;
};

static int
download_sink(void *ctx, const char *data, size_t n)
{
	struct download *d = ctx;

	/* No more than the plan's size: a longer answer is not the image. */
	if ((long long)n > d->p->image_size - d->got ||
	    write_all(d->fd, data, n) == -1 || write_all(d->hash.in, data, n)
	    == -1)
		return -1;
	d->got += (long long)n;
	install_progress(d->p, "pre", 2 + (int)(18 * d->got / d->p->image_size),
	    0, "downloading %s: %lld of %lld MiB", d->p->os, d->got >> 20,
	    d->p->image_size >> 20);
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

int
install_image_fetch(struct inst_plan *p, char *path, size_t pathlen,
    char *why, size_t whylen)
{
	struct download d;
	char sum[128];
	long long avail = mem_available_mib();
	long status;
	int rc = -1;

	/* Kept in RAM until checked: never half an image on the disk. */
	if (avail >= 0 && avail < (p->image_size >> 20) + 256) {
		snprintf(why, whylen, "%lld MiB of RAM available; the %s image "
		    "needs %lld MiB and 256 more", avail, p->os,
		    p->image_size >> 20);
		return -1;
	}
	snprintf(path, pathlen, "%s/image", INST_WORK);
	memset(&d, 0, sizeof d);
	d.p = p;
	if ((d.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600))
	    == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (feed_start(&d.hash, (const char *const[]){ "sha256sum", NULL }, 1,
	    why, whylen) == -1) {
		close(d.fd);
		return -1;
	}
	status = get_to(p->image_url, p->image_size, download_sink, &d, why,
	    whylen);
	if (feed_end(&d.hash, sum, sizeof sum) != 0 && status == 200) {
		snprintf(why, whylen, "sha256sum failed");
		status = 0;
	}
	if (close(d.fd) == -1 && status == 200) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		status = 0;
	}
	if (status != 200) {
		if (status != 0)
			snprintf(why, whylen, "image %s: HTTP %ld", p->image_url,
			    status);
	} else if (d.got != p->image_size) {
		snprintf(why, whylen, "the image has %lld bytes, the plan says "
		    "%lld: refusing to write it", d.got, p->image_size);
	} else if (check_sum(sum, p->image_sha256, "the image", why, whylen) ==
	    0) {
		install_progress(p, "pre", 20, 1, "image %s checked (%lld MiB, "
		    "sha256 %.12s…)", p->os, d.got >> 20, p->image_sha256);
		rc = 0;
	}
	if (rc == -1)
		unlink(path);
	return rc;
}

/* --- writing ------------------------------------------------------------- */

int
install_image_write(struct inst_plan *p, const char *path, char *why,
    size_t whylen)
{
	static char chunk[1 << 20];
	struct feed tar;
	long long done = 0;
	ssize_t n;
	int fd, st;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (feed_start(&tar, (const char *const[]){ "tar", "--zstd", "-x", "-f",
	    "-", "-p", "--numeric-owner", "--xattrs", "--xattrs-include=*",
	    "-C", T, NULL }, 0, why, whylen) == -1) {
		close(fd);
		return -1;
	}
	/* tar may die mid-stream: its exit status says why, not EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	while ((n = read(fd, chunk, sizeof chunk)) > 0) {
		if (write_all(tar.in, chunk, (size_t)n) == -1)
			break;
		done += n;
		install_progress(p, "packages", 26 + (int)(59 * done /
		    p->image_size), 0, "writing %s: %lld of %lld MiB", p->os,
		    done >> 20, p->image_size >> 20);
	}
	close(fd);
	st = feed_end(&tar, NULL, 0);
	if (st != 0 || done != p->image_size) {
		snprintf(why, whylen, "unpacking the image failed (tar exit %d "
		    "after %lld of %lld bytes)", st, done, p->image_size);
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
};

static int
fd_sink(void *ctx, const char *p, size_t n)
{
	struct fetched *f = ctx;

	if ((long long)n > f->left)
		return -1;
	f->left -= (long long)n;
	return write_all(f->fd, p, n);
}

/* url -> rel (below T) if its SHA-256 is want. */
static int
fetch_checked(const char *url, const char *want, const char *rel,
    mode_t mode, char *why, size_t whylen)
{
	char path[512], tmp[520], sum[128];
	struct fetched f;
	struct buf out;
	long status;

	snprintf(path, sizeof path, "%s%s", T, rel);
	snprintf(tmp, sizeof tmp, "%s.new", path);
	f.left = 64LL << 20;
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
	buf_init(&out, 4096);
	if (install_run((const char *const[]){ "sha256sum", tmp, NULL }, NULL,
	    -1, &out, why, whylen) == -1)
		goto fail;
	snprintf(sum, sizeof sum, "%s", out.data ? out.data : "");
	buf_free(&out);
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
	/* Each node its own SSH host keys (the image has none). */
	if (in_target((const char *const[]){ "ssh-keygen", "-A", NULL }, why,
	    whylen) == -1 || in_target((const char *const[]){ "systemctl",
	    "enable", "--quiet", "systemd-networkd.service", "agentd.service",
	    NULL }, why, whylen) == -1)
		return -1;
	install_progress(p, "post", 90, 1, "installing GRUB on %s", p->disk);
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
