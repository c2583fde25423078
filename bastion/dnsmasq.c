/* dnsmasq.c — dnsmasq as a supervised child.
 *
 * Everything dnsmasq reads lives under the state dir: STATE/dnsmasq/
 * (dnsmasq.conf, the lease hook, the lease file, hosts.d/ with one file per
 * reserved MAC) and STATE/tftp/ (copies of the iPXE binaries). Files are
 * written to a dot-temp file in the same directory and renamed into place,
 * so dnsmasq (and its inotify watch on hosts.d, which skips dotfiles) never
 * sees half a file. dnsmasq drops to nobody after start-up, so these
 * directories are 0755, the files 0644 (the hook 0755) and the state dir
 * itself must be searchable by others (0711 is enough).
 *
 * A config is checked with `dnsmasq --test` before it is used. The child
 * runs in the foreground with its log on a pipe that dnsmasq_tick() relays
 * to our log. SIGHUP does not make dnsmasq re-read its main config file,
 * so a changed config means a restart; hosts.d needs neither (new files
 * are picked up by inotify; a changed file gets a SIGHUP).
 *
 * Several bastions on one database run dnsmasq one at a time (the leader
 * of the interface, DESIGN §16): the others keep a checked config and
 * stand by (dnsmasq_standby, dnsmasq_lead).
 *
 * dnsmasq drops to nobody, and that uid change clears a parent-death
 * signal: a dnsmasq left behind by a bastion killed with SIGKILL would go
 * on serving DHCP, with nobody behind its lease hook, beside the new
 * leader's. Each run therefore has a watcher (dq_watch) that ends it when
 * this process is gone.
 *
 * This process has no CAP_KILL under bastion.service: a dnsmasq that
 * already dropped to nobody is signalled as nobody (sigas.h).
 *
 * Threads: dnsmasq_start/standby/lead/tick/reload/stop belong to the main
 * loop; dnsmasq_status and dnsmasq_reserve may be called from any thread.
 * dq_lock guards app->dnsmasq (the pointer and everything it points to).
 */
#define _GNU_SOURCE
#define LOG_SUBSYS "dnsmasq"
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bastion.h"
#include "clock.h"
#include "dnsmasq.h"
#include "file.h"
#include "hostname.h"
#include "log.h"
#include "mac.h"
#include "path.h"
#include "respawn.h"
#include "sigas.h"

/* Who dnsmasq becomes after binding its ports (user=, group=). */
#define DQ_USER			"nobody"
#define DQ_GROUP		"nogroup"
#define DQ_BACKOFF_MIN_MS	200
#define DQ_BACKOFF_MAX_MS	30000
#define DQ_STABLE_MS		60000	/* up this long: backoff resets */
#define DQ_STOP_WAIT_MS		2000	/* SIGTERM, then SIGKILL */
#define DQ_TEST_TIMEOUT_MS	10000	/* dnsmasq --test */
#define DQ_CONF_MAX		(64 * 1024)
#define DQ_TEST_OUT_MAX		4096
#define DQ_LINE_MAX		1024
#define DQ_FILE_MAX		(16 * 1024 * 1024)	/* iPXE binaries */
#define DQ_HOSTS_LINE_MAX	256
#define DQ_LASTMSG_MS		2000	/* a warning this near an exit */
#define DQ_MAX_PROXY_NETS	4
#define DQ_DHCP_FILE_MAX	127	/* BOOTP file field, NUL excluded */

/* Copied from cfg->ipxe_dir into STATE/tftp. */
static const char *const dq_ipxe_files[] = {
	"undionly.kpxe", "ipxe.efi", "snponly.efi"
};
#define DQ_NIPXE (sizeof dq_ipxe_files / sizeof dq_ipxe_files[0])

/* The environment dnsmasq (and so the lease hook) runs with. */
static char *const dq_envp[] = {
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL
};

struct dnsmasq {
	struct dnsmasq_paths	 paths;
	char			 dnsmasq_path[PATH_MAX];
	enum dhcp_mode		 mode;
	char			*conf;		/* dnsmasq.conf as written */
	pid_t			 pid;		/* -1: not running */
	int			 outfd;		/* its stdout+stderr, or -1 */
	int			 standby;	/* another bastion leads: not
						 * run, not restarted */
	pid_t			 watcher;	/* dq_watch's, or -1 */
	int			 watchfd;	/* its pipe's write end or -1 */
	char			 line[DQ_LINE_MAX];
	size_t			 linelen;
	struct respawn		 rs;		/* started_ms: its uptime */
	int			 respawn;	/* next start: a restart */
	unsigned long		 restarts;
	char			 lastmsg[256];	/* its last warning */
	int64_t			 lastmsg_ms;	/* and when */
	char			 last_error[512];
	uid_t			 uid;		/* nobody's: dnsmasq's after
						 * start-up, (uid_t)-1 if none */
};

/* The uid dnsmasq runs as after start-up (user=, DQ_USER), or (uid_t)-1. */
static uid_t
dq_user_uid(void)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwnam_r(DQ_USER, &pw, buf, sizeof buf, &res) != 0 ||
	    res == NULL)
		return (uid_t)-1;
	return pw.pw_uid;
}

static pthread_mutex_t dq_lock = PTHREAD_MUTEX_INITIALIZER;

static void dq_seterr(struct dnsmasq *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* Remember (and log) what went wrong last; caller holds dq_lock. */
static void
dq_seterr(struct dnsmasq *d, const char *fmt, ...)
{
	va_list ap;

	char *p;

	va_start(ap, fmt);
	vsnprintf(d->last_error, sizeof d->last_error, fmt, ap);
	va_end(ap);
	/* It ends up in JSON: printable ASCII only. */
	for (p = d->last_error; *p; p++)
		if ((unsigned char)*p < ' ' || (unsigned char)*p >= 0x7f)
			*p = '?';
	log_warnx("%s", d->last_error);
}

/* A private copy of the config in force, taken under the read lock. */
static struct config *
dq_config_copy(struct bastion *app)
{
	struct config *c;

	if ((c = malloc(sizeof *c)) == NULL)
		return NULL;
	pthread_rwlock_rdlock(&app->cfg_lock);
	memcpy(c, app->cfg, sizeof *c);
	pthread_rwlock_unlock(&app->cfg_lock);
	return c;
}

/* ---- paths and validation ------------------------------------------ */

void
dnsmasq_paths(const struct config *c, struct dnsmasq_paths *out)
{
	char dir[PATH_MAX];
	struct dnsmasq_paths p;

	memset(&p, 0, sizeof p);
	if (path_join(dir, sizeof dir, c->state_dir, "dnsmasq") == -1) {
		*out = p;	/* all empty: dnsmasq_render refuses */
		return;
	}
	if (path_join(p.conf, sizeof p.conf, dir, "dnsmasq.conf") == -1)
		p.conf[0] = '\0';
	if (path_join(p.hostsdir, sizeof p.hostsdir, dir, "hosts.d") == -1)
		p.hostsdir[0] = '\0';
	if (path_join(p.leasefile, sizeof p.leasefile, dir, "leases") == -1)
		p.leasefile[0] = '\0';
	if (path_join(p.hook, sizeof p.hook, dir, "lease-hook") == -1)
		p.hook[0] = '\0';
	if (path_join(p.pidfile, sizeof p.pidfile, dir, "dnsmasq.pid") == -1)
		p.pidfile[0] = '\0';
	if (path_join(p.tftp_root, sizeof p.tftp_root, c->state_dir,
	    "tftp") == -1)
		p.tftp_root[0] = '\0';
	*out = p;
}

/*
 * A value we put into dnsmasq.conf: printable ASCII without blanks and
 * without the characters dnsmasq's parser gives a meaning to inside a
 * value (',' separates fields, '#' starts a comment, quotes and
 * backslashes are escapes).
 */
static int
dq_value_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (*p == '\0')
		return 0;
	for (; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr(",#\"'\\", *p))
			return 0;
	return 1;
}

static int
dq_path_ok(const char *s)
{
	return s[0] == '/' && dq_value_ok(s);
}

static int
dq_iface_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= IF_NAMESIZE)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || strchr("_.-", s[i])))
			return 0;
	return 1;
}

/* A user name as useradd makes them: nothing dnsmasq.conf could read
 * as more than one word. */
static int
dq_user_ok(const char *s)
{
	size_t i;

	if (s[0] == '\0' || s[0] == '-' || strlen(s) > 32)
		return 0;
	for (i = 0; s[i]; i++)
		if (!islower((unsigned char)s[i]) &&
		    !isdigit((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

/* START,END[,LEASE] as config.c validated it; only its characters here. */
static int
dq_range_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		    *s == '.' || *s == ','))
			return 0;
	return 1;
}

/* base + "/" + rest, with base's trailing slashes dropped. The result is
 * a DHCP boot file name, so it must fit the BOOTP file field. */
static int
dq_url(const char *base, const char *rest, char *out, size_t len)
{
	size_t n = strlen(base);
	int w;

	while (n > 0 && base[n - 1] == '/')
		n--;
	w = snprintf(out, len, "%.*s/%s", (int)n, base, rest);
	if (w < 0 || (size_t)w >= len || w > DQ_DHCP_FILE_MAX)
		return -1;
	return 0;
}

/* ---- rendering ---------------------------------------------------------- */

/* s for a "# ..." line: control characters would end the comment. */
static void
dq_comment(const char *s, char *out, size_t len)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		out[i] = (unsigned char)s[i] < ' ' ||
		    (unsigned char)s[i] == 0x7f ? '?' : s[i];
	out[i] = '\0';
}

/*
 * dnsmasq.conf for c. In proxy mode dhcp-range names the network to serve:
 * the networks in nets (the interface's IPv4 networks, found by the
 * caller) or, when there are none, the first address of c->dhcp_range
 * (dnsmasq takes the netmask from the interface).
 */
static int
dq_render(const struct config *c, const struct dnsmasq_paths *p,
    char nets[][INET_ADDRSTRLEN], size_t nnets, struct buf *out)
{
	char ipxe_url[CONFIG_URL_LEN], http_url[CONFIG_URL_LEN];
	char first[INET_ADDRSTRLEN], from[PATH_MAX], ipxe_dir[PATH_MAX];
	struct in_addr a;
	size_t i, n, start = out->len;
	int rc = 0;

	if (!dq_path_ok(p->conf) || !dq_path_ok(p->hostsdir) ||
	    !dq_path_ok(p->leasefile) || !dq_path_ok(p->hook) ||
	    !dq_path_ok(p->tftp_root) || !dq_path_ok(p->pidfile)) {
		log_warnx("state dir %s: dnsmasq needs an absolute path "
		    "without blanks, quotes, ',' or '#'", c->state_dir);
		return -1;
	}
	if (!dq_iface_ok(c->interface)) {
		log_warnx("boot.interface \"%s\": not usable in dnsmasq.conf",
		    c->interface);
		return -1;
	}
	if (strncmp(c->boot_url, "http://", 7) != 0 &&
	    strncmp(c->boot_url, "https://", 8) != 0) {
		log_warnx("boot.url \"%s\" is not an http(s) URL", c->boot_url);
		return -1;
	}
	if (!dq_value_ok(c->boot_url) ||
	    dq_url(c->boot_url, "boot.ipxe", ipxe_url, sizeof ipxe_url) == -1 ||
	    dq_url(c->boot_url, "boot/ipxe.efi", http_url,
	    sizeof http_url) == -1) {
		log_warnx("boot.url \"%s\": must be at most %d characters "
		    "with /boot/ipxe.efi appended and without ',', '#' or "
		    "quotes", c->boot_url, DQ_DHCP_FILE_MAX);
		return -1;
	}

	dq_comment(c->path[0] ? c->path : "built-in defaults", from,
	    sizeof from);
	dq_comment(c->ipxe_dir, ipxe_dir, sizeof ipxe_dir);
	rc |= buf_printf(out,
	    "# dnsmasq.conf, rendered by bastion from %s (dhcp_mode = %s).\n"
	    "# Do not edit: it is rewritten at every start and reload.\n"
	    "\n"
	    "# No DNS: dnsmasq only does DHCP and TFTP here.\n"
	    "port=0\n"
	    "interface=%s\n"
	    "bind-interfaces\n"
	    "user=" DQ_USER "\n"
	    "group=" DQ_GROUP "\n"
	    "pid-file=%s\n",
	    from, config_dhcp_mode_name(c->dhcp_mode), c->interface, p->pidfile);
	/* full: the leases live in bastion's database (the hook records
	 * each; its init gives them back when dnsmasq starts), so a restart,
	 * a new state directory or another bastion keeps every address. */
	if (c->dhcp_mode == DHCP_FULL)
		rc |= buf_adds(out, "leasefile-ro\n");
	else
		rc |= buf_printf(out, "dhcp-leasefile=%s\n", p->leasefile);
	if (c->debug)
		rc |= buf_adds(out, "log-dhcp\n");
	rc |= buf_printf(out,
	    "\n"
	    "# TFTP serves only the iPXE binaries (copies from %s).\n"
	    "enable-tftp\n"
	    "tftp-root=%s\n"
	    "\n"
	    "# Who is asking. iPXE sends option 175 and user class \"iPXE\":\n"
	    "# it gets the HTTP script, never a TFTP file again (no loop).\n"
	    "dhcp-match=set:ipxe,175\n"
	    "dhcp-userclass=set:ipxe,iPXE\n"
	    "dhcp-match=set:bios,option:client-arch,0\n"
	    "dhcp-match=set:efi64,option:client-arch,7\n"
	    "dhcp-match=set:efi64,option:client-arch,9\n"
	    "# UEFI HTTP boot (x64): vendor class HTTPClient, client-arch 16.\n"
	    "dhcp-vendorclass=set:httpclient,HTTPClient\n"
	    "dhcp-match=set:efi64http,option:client-arch,16\n"
	    "tag-if=set:httpboot,tag:httpclient,tag:efi64http,tag:!ipxe\n",
	    ipxe_dir, p->tftp_root);

	switch (c->dhcp_mode) {
	case DHCP_FULL:
		if (!dq_user_ok(c->user)) {
			log_warnx("bastion.user \"%s\" is not a user name",
			    c->user);
			goto fail;
		}
		if (!dq_range_ok(c->dhcp_range)) {
			log_warnx("boot.dhcp_range \"%s\" is not usable",
			    c->dhcp_range);
			goto fail;
		}
		rc |= buf_printf(out,
		    "\n"
		    "# full: bastion owns this range on %s.\n"
		    "dhcp-range=%s\n"
		    "dhcp-authoritative\n"
		    "no-ping\n"
		    "# Per-MAC reservations, picked up without a restart.\n"
		    "dhcp-hostsdir=%s\n"
		    "dhcp-script=%s\n"
		    "# As the worker's user: the admin socket is its (0600).\n"
		    "dhcp-scriptuser=%s\n"
		    "# Tell iPXE not to wait for a ProxyDHCP answer.\n"
		    "dhcp-option=tag:ipxe,encap:175,176,1\n"
		    "dhcp-boot=tag:bios,tag:!ipxe,undionly.kpxe\n"
		    "dhcp-boot=tag:efi64,tag:!ipxe,ipxe.efi\n"
		    "dhcp-boot=tag:ipxe,%s\n"
		    "dhcp-option-force=tag:httpboot,60,HTTPClient\n"
		    "dhcp-boot=tag:httpboot,%s\n",
		    c->interface, c->dhcp_range, p->hostsdir, p->hook,
		    c->user, ipxe_url, http_url);
		if (c->ipv6_ra)
			rc |= buf_printf(out,
			    "\n"
			    "# Router advertisements, so iPXE does not wait "
			    "~13 s for IPv6.\n"
			    "enable-ra\n"
			    "dhcp-range=::,constructor:%s,ra-only\n",
			    c->interface);
		break;
	case DHCP_PROXY:
		rc |= buf_printf(out,
		    "\n"
		    "# proxy: the site's DHCP server hands out addresses; we "
		    "only answer\n"
		    "# PXE clients (ProxyDHCP, ports 67 and 4011).\n");
		n = strcspn(c->dhcp_range, ",");
		if (nnets == 0 && n < sizeof first) {
			memcpy(first, c->dhcp_range, n);
			first[n] = '\0';
		}
		if (nnets == 0 && (n >= sizeof first ||
		    inet_pton(AF_INET, first, &a) != 1)) {
			log_warnx("boot.dhcp_range \"%s\" is not usable",
			    c->dhcp_range);
			goto fail;
		}
		if (nnets == 0)
			rc |= buf_printf(out, "dhcp-range=%s,proxy\n", first);
		for (i = 0; i < nnets; i++) {
			if (inet_pton(AF_INET, nets[i], &a) != 1)
				goto fail;
			rc |= buf_printf(out, "dhcp-range=%s,proxy\n", nets[i]);
		}
		/* A basename with a suffix is used as is (dnsmasq >= 2.76);
		 * STATE/tftp also has undionly.kpxe.0 for older ones. */
		rc |= buf_printf(out,
		    "dhcp-pxe-vendor=PXEClient,HTTPClient\n"
		    "pxe-service=tag:!ipxe,x86PC,\"Network boot (bastion)\","
		    "undionly.kpxe\n"
		    "pxe-service=tag:!ipxe,BC_EFI,\"Network boot (bastion)\","
		    "ipxe.efi\n"
		    "pxe-service=tag:!ipxe,x86-64_EFI,\"Network boot "
		    "(bastion)\",ipxe.efi\n"
		    "# iPXE and HTTP boot clients match no menu item and take "
		    "the file:\n"
		    "dhcp-boot=tag:ipxe,%s\n"
		    "dhcp-boot=tag:httpboot,%s\n",
		    ipxe_url, http_url);
		break;
	case DHCP_OFF:
		rc |= buf_printf(out,
		    "\n"
		    "# off: no DHCP here. The site's DHCP server sends "
		    "next-server = this host\n"
		    "# and filename undionly.kpxe (client-arch 0) or ipxe.efi "
		    "(7, 9), and to\n"
		    "# iPXE (user class \"iPXE\") the filename %s\n",
		    ipxe_url);
		break;
	}
	if (rc == 0)
		return 0;
	log_warnx("dnsmasq.conf is too large");
fail:
	/* out as it was: nothing half-written. */
	out->len = start;
	if (out->data)
		out->data[start] = '\0';
	return -1;
}

int
dnsmasq_render(const struct config *c, const struct dnsmasq_paths *p,
    struct buf *out)
{
	return dq_render(c, p, NULL, 0, out);
}

/* A path inside a single-quoted sh word: no quote, no newline, absolute. */
static int
dq_sh_path_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (*p != '/')
		return 0;
	for (; *p; p++)
		if (*p < ' ' || *p == 0x7f || *p == '\'')
			return 0;
	return 1;
}

int
dnsmasq_render_hook(const struct dnsmasq_paths *p, const char *bastionctl,
    const char *admin_sock, struct buf *out)
{
	if (bastionctl == NULL || admin_sock == NULL ||
	    !dq_sh_path_ok(bastionctl) || !dq_sh_path_ok(admin_sock)) {
		log_warnx("lease hook: bastionctl and the admin socket need "
		    "absolute paths without quotes or control characters");
		return -1;
	}
	if (buf_printf(out,
	    "#!/bin/sh\n"
	    "# dnsmasq --dhcp-script hook, rendered by bastion; do not edit.\n"
	    "# dnsmasq also calls it for tftp, arp-* and future actions:\n"
	    "# only lease events and init (the leases, from bastion's\n"
	    "# database: leasefile-ro) go on to bastion.\n"
	    "case \"$1\" in\n"
	    "add|old|del|init) ;;\n"
	    "*) exit 0 ;;\n"
	    "esac\n"
	    "# Without bastionctl (not installed yet), dnsmasq must still\n"
	    "# serve: a failed init would stop it.\n"
	    "[ -x '%s' ] || exit 0\n"
	    "exec '%s' --socket '%s' lease-hook \"$@\"\n",
	    bastionctl, bastionctl, admin_sock) == -1)
		return -1;
	return 0;
}

/* ---- files -------------------------------------------------------------- */

static int
dq_mkdir(const char *path, mode_t mode)
{
	struct stat st;

	if (mkdir(path, mode) == -1 && errno != EEXIST) {
		log_warn("mkdir %s", path);
		return -1;
	}
	if (lstat(path, &st) == -1 || !S_ISDIR(st.st_mode)) {
		log_warnx("%s is not a directory", path);
		return -1;
	}
	if ((st.st_mode & 07777) != mode && chmod(path, mode) == -1) {
		log_warn("chmod %s", path);
		return -1;
	}
	return 0;
}

/* Whole file into b (capped); 0, or -1 with errno (ENOENT: missing). */
static int
dq_read_file(const char *path, size_t max, struct buf *b)
{
	char chunk[8192];
	ssize_t r;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	for (;;) {
		if ((r = read(fd, chunk, sizeof chunk)) == -1) {
			if (errno == EINTR)
				continue;
			goto err_read;
		}
		if (r == 0)
			break;
		if (b->len + (size_t)r > max ||
		    buf_add(b, chunk, (size_t)r) == -1) {
			errno = EFBIG;
			goto err_read;
		}
	}
	close(fd);
	return 0;
err_read:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* Write path unless it already holds exactly data. 1 if written. */
static int
dq_update_file(const char *path, const char *data, size_t len, mode_t mode)
{
	struct buf old;
	struct stat st;
	int same;

	buf_init(&old, len + 1);
	same = dq_read_file(path, len, &old) == 0 && old.len == len &&
	    (len == 0 || memcmp(old.data, data, len) == 0) &&
	    stat(path, &st) == 0 && (st.st_mode & 07777) == mode;
	buf_free(&old);
	if (same)
		return 0;
	if (file_write_atomic(path, data, len, mode) == -1)
		return -1;
	return 1;
}

/* iPXE binaries into the TFTP root; a missing one is logged, not fatal
 * (the doctor check names it), and undionly.kpxe.0 is there for
 * dnsmasq < 2.76, which appends the PXE layer to pxe-service names. */
static void
dq_copy_ipxe(const struct config *c, const struct dnsmasq_paths *p)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct buf b;
	size_t i;

	for (i = 0; i < DQ_NIPXE; i++) {
		if (path_join(src, sizeof src, c->ipxe_dir,
		    dq_ipxe_files[i]) == -1 ||
		    path_join(dst, sizeof dst, p->tftp_root,
		    dq_ipxe_files[i]) == -1) {
			log_warnx("%s: path too long", dq_ipxe_files[i]);
			continue;
		}
		buf_init(&b, DQ_FILE_MAX);
		if (dq_read_file(src, DQ_FILE_MAX, &b) == -1) {
			log_warn("%s (install the ipxe package?); clients that "
			    "need it cannot boot", src);
		} else {
			if (dq_update_file(dst, b.data ? b.data : "", b.len,
			    0644) == 1)
				log_debug("copied %s to %s", src, dst);
			if (strcmp(dq_ipxe_files[i], "undionly.kpxe") == 0 &&
			    path_join(dst, sizeof dst, p->tftp_root,
			    "undionly.kpxe.0") == 0)
				dq_update_file(dst, b.data ? b.data : "", b.len,
				    0644);
		}
		buf_free(&b);
	}
}

/* dnsmasq runs as nobody: every directory above dir must let others
 * search it. Returns the first one that does not, or NULL. One that does
 * not exist yet does not count: bastion creates it 0771 or 0755. */
static const char *
dq_unreachable(const char *dir, char *buf, size_t len)
{
	struct stat st;
	char *p;

	if (snprintf(buf, len, "%s", dir) >= (int)len)
		return buf;
	for (p = buf + strlen(buf); p > buf; ) {
		if (stat(buf, &st) == -1 ? errno != ENOENT :
		    !(st.st_mode & S_IXOTH))
			return buf;
		while (p > buf && *p != '/')
			p--;
		*p = '\0';
	}
	return NULL;
}

int
dnsmasq_check_state_dir(const struct config *c, char *why, size_t whylen)
{
	char tftp[PATH_MAX], tmp[PATH_MAX];
	const char *bad;

	if (path_join(tftp, sizeof tftp, c->state_dir, "tftp") == -1) {
		snprintf(why, whylen, "state dir %.160s: path too long",
		    c->state_dir);
		return -1;
	}
	if ((bad = dq_unreachable(tftp, tmp, sizeof tmp)) == NULL)
		return 0;
	snprintf(why, whylen, "state dir %.160s: %.160s is not searchable by "
	    "others (mode o+x), so dnsmasq, which runs as nobody, cannot "
	    "reach %.160s; chmod o+x %.160s, or choose a state_dir whose "
	    "parent directories all have o+x (not one under a private "
	    "directory such as mktemp -d makes, mode 0700)", c->state_dir,
	    bad, tftp, bad);
	return -1;
}

/* Where the hook finds bastionctl: beside this binary (the build tree),
 * else in ../bin (make install puts bastion in sbin, bastionctl in bin). */
static void
dq_find_bastionctl(char *out, size_t len)
{
	static const char *const rel[] = { "bastionctl", "../bin/bastionctl" };
	char self[PATH_MAX], cand[PATH_MAX], real[PATH_MAX], *slash;
	ssize_t n;
	size_t i;

	snprintf(out, len, "/usr/local/bin/bastionctl");
	if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) <= 0)
		goto missing;
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) == NULL)
		goto missing;
	*slash = '\0';
	for (i = 0; i < sizeof rel / sizeof rel[0]; i++) {
		if (path_join(cand, sizeof cand, self, rel[i]) == -1 ||
		    realpath(cand, real) == NULL || access(real, X_OK) == -1)
			continue;
		snprintf(out, len, "%s", real);
		return;
	}
	if (path_join(cand, sizeof cand, self, rel[0]) == 0)
		snprintf(out, len, "%s", cand);
missing:
	log_warnx("lease hook: %s is not executable yet; leases are not "
	    "reported until it is", out);
}

/* ---- running dnsmasq ------------------------------------------------- */

/* argv with stdin from /dev/null and stdout+stderr into a new pipe whose
 * read end (close-on-exec) goes to *outfd. Every other descriptor of
 * the daemon (listeners, the database) is closed in the child. */
static int
dq_spawn(char *const argv[], pid_t *pidp, int *outfd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int pfd[2], rc;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) == -1) {
		log_warn("pipe");
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	respawn_spawnattr(&attr);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	rc = posix_spawn(&pid, argv[0], &fa, &attr, argv, dq_envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(pfd[1]);
	if (rc != 0) {
		errno = rc;
		log_warn("cannot run %s", argv[0]);
		close(pfd[0]);
		return -1;
	}
	*pidp = pid;
	*outfd = pfd[0];
	return 0;
}

/* `dnsmasq --test --conf-file=conf`: 0 if dnsmasq accepts it. What it
 * said goes to msg (one line, for last_error). */
static int
dq_test_conf(const char *dnsmasq, const char *conf, char *msg, size_t msglen)
{
	char arg[PATH_MAX + 16], chunk[512], *argv[4], *nl;
	struct buf out;
	struct pollfd pfd;
	int64_t deadline;
	ssize_t r;
	pid_t pid;
	int fd, status, rc = -1;

	msg[0] = '\0';
	if (snprintf(arg, sizeof arg, "--conf-file=%s", conf) >=
	    (int)sizeof arg) {
		snprintf(msg, msglen, "config path too long");
		return -1;
	}
	argv[0] = (char *)dnsmasq;
	argv[1] = "--test";
	argv[2] = arg;
	argv[3] = NULL;
	if (dq_spawn(argv, &pid, &fd) == -1) {
		snprintf(msg, msglen, "cannot run %s: %s", dnsmasq,
		    strerror(errno));
		return -1;
	}
	buf_init(&out, DQ_TEST_OUT_MAX);
	deadline = clock_mono_ms() + DQ_TEST_TIMEOUT_MS;
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		int64_t left = deadline - clock_mono_ms();

		if (left <= 0) {
			kill(pid, SIGKILL);
			snprintf(msg, msglen, "dnsmasq --test timed out");
			break;
		}
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR)
			break;
		if ((r = read(fd, chunk, sizeof chunk)) == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break;
		}
		if (r == 0)
			break;
		buf_add_cut(&out, chunk, (size_t)r);
	}
	close(fd);
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR) {
			status = -1;
			break;
		}
	}
	if (out.data) {
		/* "dnsmasq: bad option at line 3 of FILE" → first line. */
		char *s = out.data;

		while (*s == '\n')
			s++;
		if ((nl = strchr(s, '\n')) != NULL)
			*nl = '\0';
		if (msg[0] == '\0')
			snprintf(msg, msglen, "%s", s);
	}
	if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rc = 0;
	else if (msg[0] == '\0')
		snprintf(msg, msglen, "dnsmasq --test failed");
	buf_free(&out);
	return rc;
}

/* One line dnsmasq printed, into our log. "dnsmasq-dhcp[42]: text"
 * becomes "dhcp: text"; control characters are masked. */
static void
dq_relay_line(struct dnsmasq *d, char *line)
{
	char facet[16] = "", *s = line, *p;
	size_t n;
	int warn;

	for (p = line; *p; p++)
		if ((unsigned char)*p < ' ' || (unsigned char)*p >= 0x7f)
			*p = '?';
	if (strncmp(s, "dnsmasq", 7) == 0) {
		p = s + 7;
		if (*p == '-') {
			n = strspn(p + 1,
			    "abcdefghijklmnopqrstuvwxyz0123456789");
			if (n < sizeof facet) {
				memcpy(facet, p + 1, n);
				facet[n] = '\0';
			}
			p += 1 + n;
		}
		if (*p == '[') {
			n = strspn(p + 1, "0123456789");
			if (p[1 + n] == ']')
				p += n + 2;
		}
		if (p[0] == ':' && p[1] == ' ')
			s = p + 2;
		else
			facet[0] = '\0';
	}
	if (*s == '\0')
		return;
	warn = strstr(s, "FAILED") || strstr(s, "failed") ||
	    strstr(s, "error") || strstr(s, "cannot") ||
	    strstr(s, "inaccessible") || strstr(s, "bad ") ||
	    strstr(s, "unknown interface");
	if (warn) {
		snprintf(d->lastmsg, sizeof d->lastmsg, "%s", s);
		d->lastmsg_ms = clock_mono_ms();
		if (facet[0])
			log_warnx("%s: %s", facet, s);
		else
			log_warnx("%s", s);
	} else if (facet[0]) {
		log_info("%s: %s", facet, s);
	} else {
		log_info("%s", s);
	}
}

/* Everything the child has written so far (it never blocks). */
static void
dq_read_output(struct dnsmasq *d)
{
	char chunk[4096];
	ssize_t r, i;

	while (d->outfd != -1) {
		r = read(d->outfd, chunk, sizeof chunk);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0 || errno != EAGAIN) {
				/* EOF: every writer is gone. */
				close(d->outfd);
				d->outfd = -1;
			}
			break;
		}
		for (i = 0; i < r; i++) {
			if (chunk[i] == '\n' ||
			    d->linelen == sizeof d->line - 1) {
				d->line[d->linelen] = '\0';
				dq_relay_line(d, d->line);
				d->linelen = 0;
				if (chunk[i] == '\n')
					continue;
			}
			d->line[d->linelen++] = chunk[i];
		}
	}
}

static void
dq_close_output(struct dnsmasq *d)
{
	dq_read_output(d);
	if (d->linelen > 0) {
		d->line[d->linelen] = '\0';
		dq_relay_line(d, d->line);
		d->linelen = 0;
	}
	if (d->outfd != -1) {
		close(d->outfd);
		d->outfd = -1;
	}
}

/* The watcher's life (see dq_watch): system calls only, as after any
 * fork of a daemon that may have threads. */
static void __attribute__((noreturn))
dq_watcher(int pidfd, int parent, uid_t uid)
{
	struct pollfd p[2] = { { parent, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
	unsigned lo = (unsigned)(pidfd < parent ? pidfd : parent);
	unsigned hi = (unsigned)(pidfd < parent ? parent : pidfd);

	/* Nothing else of the daemon's: its sockets end with it. */
	if (lo > 3)
		close_range(3, lo - 1, 0);
	if (hi > lo + 1)
		close_range(lo + 1, hi - 1, 0);
	close_range(hi + 1, ~0U, 0);
	prctl(PR_SET_NAME, "bastion-dqwatch");
	for (;;) {
		if (poll(p, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (p[1].revents)
			_exit(0);	/* dnsmasq ended */
		if (p[0].revents)
			break;		/* the pipe's end: bastion is gone */
	}
	sigas_pidfd_self(pidfd, SIGTERM, uid);
	if (poll(&p[1], 1, DQ_STOP_WAIT_MS) == 0)
		sigas_pidfd_self(pidfd, SIGKILL, uid);
	_exit(0);
}

/*
 * A watcher for the dnsmasq just started: a child that stays as we are
 * (root, nobody once it has to signal a dnsmasq that dropped to it),
 * holding a pidfd of dnsmasq (no pid reuse can mislead it) and
 * the read end of a pipe whose only write end is ours. If the pipe ends
 * first, this process died without stopping dnsmasq: the watcher ends it
 * (SIGTERM, SIGKILL after DQ_STOP_WAIT_MS). If dnsmasq ends first, so
 * does the watcher. dq_unwatch reaps it. Caller holds dq_lock.
 */
static void
dq_watch(struct dnsmasq *d)
{
	int pfd[2], pidfd;
	pid_t pid;

	if ((pidfd = pidfd_open(d->pid, 0)) == -1) {
		log_warn("pidfd_open: dnsmasq (pid %ld) would outlive a killed "
		    "bastion", (long)d->pid);
		return;
	}
	if (pipe2(pfd, O_CLOEXEC) == -1) {
		log_warn("pipe");
		goto err_pipe;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork");
		goto err_fork;
	}
	if (pid == 0) {
		close(pfd[1]);
		dq_watcher(pidfd, pfd[0], d->uid);
	}
	close(pfd[0]);
	close(pidfd);
	d->watcher = pid;
	d->watchfd = pfd[1];
	return;

err_fork:
	close(pfd[0]);
	close(pfd[1]);
err_pipe:
	close(pidfd);
}

/* dnsmasq was reaped: its watcher goes too (our child: its pid is ours
 * to signal until we reap it). Caller holds dq_lock. */
static void
dq_unwatch(struct dnsmasq *d)
{
	if (d->watcher > 0) {
		kill(d->watcher, SIGKILL);
		while (waitpid(d->watcher, NULL, 0) == -1 && errno == EINTR)
			;
	}
	if (d->watchfd != -1)
		close(d->watchfd);
	d->watcher = -1;
	d->watchfd = -1;
}

/* Start the child now; caller holds dq_lock. */
static int
dq_launch(struct dnsmasq *d)
{
	char arg[PATH_MAX + 16], *argv[5];

	if (snprintf(arg, sizeof arg, "--conf-file=%s", d->paths.conf) >=
	    (int)sizeof arg) {
		dq_seterr(d, "%s: path too long", d->paths.conf);
		return -1;
	}
	argv[0] = d->dnsmasq_path;
	argv[1] = "--keep-in-foreground";
	argv[2] = "--log-facility=-";
	argv[3] = arg;
	argv[4] = NULL;
	d->lastmsg[0] = '\0';
	d->linelen = 0;
	if (dq_spawn(argv, &d->pid, &d->outfd) == -1) {
		d->pid = -1;
		dq_seterr(d, "cannot run %s: %s", d->dnsmasq_path,
		    strerror(errno));
		return -1;
	}
	if (fcntl(d->outfd, F_SETFL, fcntl(d->outfd, F_GETFL) | O_NONBLOCK)
	    == -1)
		log_warn("fcntl");
	dq_watch(d);
	respawn_started(&d->rs, clock_mono_ms());
	log_info("started %s (pid %ld, dhcp_mode %s)", d->dnsmasq_path,
	    (long)d->pid, config_dhcp_mode_name(d->mode));
	return 0;
}

/* Schedule the next start after a death or a failed start. */
static void
dq_schedule(struct dnsmasq *d, int64_t now)
{
	d->respawn = 1;
	log_info("restarting in %d ms", respawn_schedule(&d->rs, now));
}

/* SIGTERM, up to DQ_STOP_WAIT_MS, then SIGKILL; only our child's pid. */
static void
dq_terminate(struct dnsmasq *d)
{
	char why[96];
	int64_t deadline;
	int status;
	pid_t r;

	if (d->pid <= 0)
		return;
	sigas_send(d->pid, SIGTERM, d->uid);
	deadline = clock_mono_ms() + DQ_STOP_WAIT_MS;
	for (;;) {
		r = waitpid(d->pid, &status, WNOHANG);
		if (r == d->pid || (r == -1 && errno == ECHILD))
			break;
		if (clock_mono_ms() >= deadline) {
			log_warnx("pid %ld ignored SIGTERM for %d ms; "
			    "killing it", (long)d->pid, DQ_STOP_WAIT_MS);
			if (sigas_send(d->pid, SIGKILL, d->uid) == -1) {
				/* Refused: waiting would hang the stop
				 * forever. */
				log_warn("cannot kill dnsmasq pid %ld",
				    (long)d->pid);
				r = -1;
				break;
			}
			while ((r = waitpid(d->pid, &status, 0)) == -1 &&
			    errno == EINTR)
				;
			break;
		}
		dq_read_output(d);
		usleep(20 * 1000);
	}
	if (r == d->pid) {
		respawn_describe_exit(status, why, sizeof why);
		log_info("pid %ld stopped (%s)", (long)d->pid, why);
	}
	d->pid = -1;
	dq_unwatch(d);
	dq_close_output(d);
}

/* Is pid (not our child) still running? A zombie is not. */
static int
dq_pid_alive(pid_t pid)
{
	char path[64], stat[256], *p;
	ssize_t n;
	int fd;

	if (kill(pid, 0) == -1 && errno != EPERM)
		return 0;
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, stat, sizeof stat - 1);
	close(fd);
	if (n <= 0)
		return 0;
	stat[n] = '\0';
	/* "pid (comm) S ...": the state follows the last ')'. */
	if ((p = strrchr(stat, ')')) == NULL || p[1] != ' ')
		return 1;
	return p[2] != 'Z' && p[2] != 'X';
}

/* A dnsmasq left behind by a bastion that died without stopping it still
 * holds the DHCP and TFTP ports. It is ours only if its command line names
 * our config file; anything else is left alone. */
static void
dq_kill_stale(const struct dnsmasq *d)
{
	char buf[64], path[64], arg[PATH_MAX + 16];
	struct buf cmd;
	const char *p, *end;
	long v;
	pid_t pid;
	int i, ours = 0;

	buf_init(&cmd, 64 * 1024);
	if (dq_read_file(d->paths.pidfile, 32, &cmd) == -1 || cmd.len == 0)
		goto out;
	snprintf(buf, sizeof buf, "%.*s", (int)cmd.len, cmd.data);
	v = strtol(buf, NULL, 10);
	if (v <= 1 || v > INT_MAX || (pid_t)v == getpid())
		goto out;
	pid = (pid_t)v;
	snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
	snprintf(arg, sizeof arg, "--conf-file=%s", d->paths.conf);
	buf_reset(&cmd);
	if (dq_read_file(path, 64 * 1024 - 1, &cmd) == -1 || cmd.len == 0)
		goto out;
	for (p = cmd.data, end = cmd.data + cmd.len; p < end;
	    p += strlen(p) + 1)
		if (strcmp(p, arg) == 0)
			ours = 1;
	if (!ours)
		goto out;
	log_warnx("pid %ld is a dnsmasq left over from an earlier bastion; "
	    "stopping it", (long)pid);
	sigas_send(pid, SIGTERM, d->uid);
	for (i = 0; i < DQ_STOP_WAIT_MS / 20 && dq_pid_alive(pid); i++)
		usleep(20 * 1000);
	if (dq_pid_alive(pid))
		sigas_send(pid, SIGKILL, d->uid);
out:
	buf_free(&cmd);
}

/* ---- preparing a config --------------------------------------------- */

/* The interface's IPv4 networks (proxy mode's dhcp-range). */
static size_t
dq_iface_nets(const char *ifname, char nets[][INET_ADDRSTRLEN], size_t max)
{
	const struct sockaddr_in *sa, *sm;
	struct ifaddrs *ifa, *i;
	struct in_addr net;
	size_t n = 0, k;

	if (getifaddrs(&ifa) == -1)
		return 0;
	for (i = ifa; i != NULL && n < max; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_netmask == NULL ||
		    i->ifa_addr->sa_family != AF_INET ||
		    strcmp(i->ifa_name, ifname) != 0)
			continue;
		sa = (const struct sockaddr_in *)(void *)i->ifa_addr;
		sm = (const struct sockaddr_in *)(void *)i->ifa_netmask;
		net.s_addr = sa->sin_addr.s_addr & sm->sin_addr.s_addr;
		inet_ntop(AF_INET, &net, nets[n], INET_ADDRSTRLEN);
		for (k = 0; k < n; k++)
			if (strcmp(nets[k], nets[n]) == 0)
				break;
		if (k == n)
			n++;
	}
	freeifaddrs(ifa);
	return n;
}

int
dnsmasq_iface_ipv6(const char *ifname, char *addr, size_t len)
{
	const struct sockaddr_in6 *sa;
	struct ifaddrs *ifa, *i;
	int found = 0;

	if (getifaddrs(&ifa) == -1)
		return 0;
	for (i = ifa; i != NULL && !found; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET6 ||
		    strcmp(i->ifa_name, ifname) != 0)
			continue;
		sa = (const struct sockaddr_in6 *)(void *)i->ifa_addr;
		if (IN6_IS_ADDR_LINKLOCAL(&sa->sin6_addr))
			continue;
		found = inet_ntop(AF_INET6, &sa->sin6_addr, addr,
		    (socklen_t)len) != NULL;
	}
	freeifaddrs(ifa);
	return found;
}

/*
 * Everything a config needs on disk except dnsmasq.conf itself: the
 * directories, the TFTP files and the lease hook. Then render the config
 * into conf. why gets a one-line reason on failure.
 */
static int
dq_prepare(const struct config *c, const struct dnsmasq_paths *p,
    struct buf *conf, char *why, size_t whylen)
{
	char dir[PATH_MAX], ctl[PATH_MAX], sock[PATH_MAX];
	char nets[DQ_MAX_PROXY_NETS][INET_ADDRSTRLEN];
	struct buf hook;
	size_t nnets = 0;

	if (p->conf[0] == '\0' || p->tftp_root[0] == '\0' ||
	    p->hostsdir[0] == '\0' || p->hook[0] == '\0' ||
	    p->leasefile[0] == '\0' || p->pidfile[0] == '\0' ||
	    path_join(dir, sizeof dir, c->state_dir, "dnsmasq") == -1) {
		snprintf(why, whylen, "state dir %.160s: path too long",
		    c->state_dir);
		return -1;
	}
	if (dq_mkdir(dir, 0755) == -1 || dq_mkdir(p->hostsdir, 0755) == -1 ||
	    dq_mkdir(p->tftp_root, 0755) == -1) {
		snprintf(why, whylen, "cannot create %.160s, %.160s or %.160s",
		    dir, p->hostsdir, p->tftp_root);
		return -1;
	}
	if (dnsmasq_check_state_dir(c, why, whylen) == -1)
		return -1;
	dq_copy_ipxe(c, p);

	dq_find_bastionctl(ctl, sizeof ctl);
	if (path_join(sock, sizeof sock, c->state_dir, "admin.sock") == -1) {
		snprintf(why, whylen, "admin socket path too long");
		return -1;
	}
	buf_init(&hook, 8192);
	if (dnsmasq_render_hook(p, ctl, sock, &hook) == -1 ||
	    dq_update_file(p->hook, hook.data, hook.len, 0755) == -1) {
		buf_free(&hook);
		snprintf(why, whylen, "cannot write the lease hook %.160s",
		    p->hook);
		return -1;
	}
	buf_free(&hook);

	if (c->dhcp_mode == DHCP_PROXY) {
		nnets = dq_iface_nets(c->interface, nets, DQ_MAX_PROXY_NETS);
		if (nnets == 0)
			log_warnx("proxy: %s has no IPv4 address yet; serving "
			    "the network of boot.dhcp_range", c->interface);
	}
	buf_reset(conf);
	if (dq_render(c, p, nets, nnets, conf) == -1) {
		snprintf(why, whylen, "cannot render dnsmasq.conf (see the "
		    "log)");
		return -1;
	}
	return 0;
}

/* conf → a dot-temp file beside p->conf, --test, rename into place. */
static int
dq_install_conf(const char *dnsmasq, const struct dnsmasq_paths *p,
    const struct buf *conf, char *why, size_t whylen)
{
	char tmp[PATH_MAX], msg[256];
	int n;

	n = snprintf(tmp, sizeof tmp, "%s.new", p->conf);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		snprintf(why, whylen, "%.160s: path too long", p->conf);
		return -1;
	}
	if (file_write_atomic(tmp, conf->data, conf->len, 0644) == -1) {
		snprintf(why, whylen, "cannot write %.160s", tmp);
		return -1;
	}
	if (dq_test_conf(dnsmasq, tmp, msg, sizeof msg) == -1) {
		snprintf(why, whylen, "dnsmasq rejects the rendered config: "
		    "%.160s", msg);
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, p->conf) == -1) {
		snprintf(why, whylen, "rename %.160s: %.160s", p->conf,
		    strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* ---- the API ------------------------------------------------------------ */

/* dnsmasq_start, or with standby dnsmasq_standby. */
static int
dq_start(struct bastion *app, int standby)
{
	struct dnsmasq *d;
	struct config *c;
	struct buf conf;
	char why[512];

	/* Already supervised (running, or a restart is scheduled). */
	pthread_mutex_lock(&dq_lock);
	d = app->dnsmasq;
	pthread_mutex_unlock(&dq_lock);
	if (d != NULL)
		return 0;

	if ((c = dq_config_copy(app)) == NULL) {
		log_warnx("out of memory");
		return -1;
	}
	if ((d = calloc(1, sizeof *d)) == NULL) {
		log_warnx("out of memory");
		goto err_alloc;
	}
	d->pid = -1;
	d->outfd = -1;
	d->watcher = -1;
	d->watchfd = -1;
	d->uid = dq_user_uid();
	d->standby = standby;
	respawn_init(&d->rs, DQ_BACKOFF_MIN_MS, DQ_BACKOFF_MAX_MS, DQ_STABLE_MS);
	d->mode = c->dhcp_mode;
	dnsmasq_paths(c, &d->paths);
	if (snprintf(d->dnsmasq_path, sizeof d->dnsmasq_path, "%s",
	    c->dnsmasq_path) >= (int)sizeof d->dnsmasq_path ||
	    d->dnsmasq_path[0] != '/') {
		log_warnx("boot.dnsmasq \"%s\" must be an absolute path",
		    c->dnsmasq_path);
		goto err_conf;
	}
	buf_init(&conf, DQ_CONF_MAX);
	if (dq_prepare(c, &d->paths, &conf, why, sizeof why) == -1 ||
	    dq_install_conf(d->dnsmasq_path, &d->paths, &conf, why,
	    sizeof why) == -1) {
		log_warnx("%s", why);
		goto err_render;
	}
	d->conf = buf_take(&conf);
	dq_kill_stale(d);

	pthread_mutex_lock(&dq_lock);
	if (standby)
		log_info("standing by: dnsmasq runs on the bastion that leads "
		    "DHCP on %s", c->interface);
	else if (dq_launch(d) == -1) {
		pthread_mutex_unlock(&dq_lock);
		goto err_launch;
	}
	app->dnsmasq = d;
	pthread_mutex_unlock(&dq_lock);
	config_free(c);
	return 0;

err_launch:
	free(d->conf);
err_render:
	buf_free(&conf);
err_conf:
	free(d);
err_alloc:
	config_free(c);
	return -1;
}

int
dnsmasq_start(struct bastion *app)
{
	return dq_start(app, 0);
}

int
dnsmasq_standby(struct bastion *app)
{
	return dq_start(app, 1);
}

int
dnsmasq_lead(struct bastion *app, int lead)
{
	struct dnsmasq *d;

	pthread_mutex_lock(&dq_lock);
	if ((d = app->dnsmasq) == NULL) {
		pthread_mutex_unlock(&dq_lock);
		return -1;
	}
	if (lead && d->standby) {
		log_info("this bastion leads DHCP: starting dnsmasq");
		d->standby = 0;
		d->respawn = 0;
		d->rs.backoff_ms = DQ_BACKOFF_MIN_MS;
		if (dq_launch(d) == -1)
			dq_schedule(d, clock_mono_ms());
	} else if (!lead && !d->standby) {
		log_info("this bastion no longer leads DHCP: stopping dnsmasq");
		d->standby = 1;
		d->respawn = 0;
		dq_terminate(d);
	}
	pthread_mutex_unlock(&dq_lock);
	return 0;
}

void
dnsmasq_tick(struct bastion *app)
{
	struct dnsmasq *d;
	char why[96];
	int64_t now;
	int status;
	pid_t r;

	pthread_mutex_lock(&dq_lock);
	if ((d = app->dnsmasq) == NULL || d->standby)
		goto out;
	now = clock_mono_ms();
	if (d->pid > 0) {
		dq_read_output(d);
		r = waitpid(d->pid, &status, WNOHANG);
		if (r == 0 || (r == -1 && errno != ECHILD))
			goto out;
		if (r == -1)	/* someone else reaped it */
			snprintf(why, sizeof why, "is gone (reaped elsewhere)");
		else
			respawn_describe_exit(status, why, sizeof why);
		dq_unwatch(d);
		dq_close_output(d);
		if (d->lastmsg[0] && now - d->lastmsg_ms <= DQ_LASTMSG_MS)
			dq_seterr(d, "dnsmasq (pid %ld) %s after %lld s: %s",
			    (long)d->pid, why,
			    (long long)((now - d->rs.started_ms) / 1000),
			    d->lastmsg);
		else
			dq_seterr(d, "dnsmasq (pid %ld) %s after %lld s",
			    (long)d->pid, why,
			    (long long)((now - d->rs.started_ms) / 1000));
		d->pid = -1;
		dq_schedule(d, now);
		goto out;
	}
	if (!respawn_due(&d->rs, now))
		goto out;
	if (dq_launch(d) == -1) {
		dq_schedule(d, now);
		goto out;
	}
	if (d->respawn) {
		d->restarts++;
		d->respawn = 0;
	}
out:
	pthread_mutex_unlock(&dq_lock);
}

int
dnsmasq_reload(struct bastion *app)
{
	struct dnsmasq_paths paths;
	struct dnsmasq *d;
	struct config *c;
	struct buf conf;
	char why[512], dpath[PATH_MAX];
	int rc = -1, same;

	pthread_mutex_lock(&dq_lock);
	d = app->dnsmasq;
	pthread_mutex_unlock(&dq_lock);
	if (d == NULL)
		return dnsmasq_start(app);
	if ((c = dq_config_copy(app)) == NULL) {
		log_warnx("out of memory");
		return -1;
	}
	dnsmasq_paths(c, &paths);
	buf_init(&conf, DQ_CONF_MAX);
	if (snprintf(dpath, sizeof dpath, "%s", c->dnsmasq_path) >=
	    (int)sizeof dpath || dpath[0] != '/') {
		snprintf(why, sizeof why, "boot.dnsmasq \"%.160s\" must be an "
		    "absolute path", c->dnsmasq_path);
		goto err_prepare;
	}
	if (dq_prepare(c, &paths, &conf, why, sizeof why) == -1)
		goto err_prepare;

	/* The main loop is the only writer of d->conf and d->paths. */
	same = d->conf != NULL && strcmp(d->conf, conf.data) == 0 &&
	    strcmp(d->paths.conf, paths.conf) == 0 &&
	    strcmp(d->dnsmasq_path, dpath) == 0;
	if (same) {
		log_debug("reload: dnsmasq.conf unchanged");
		rc = 0;
		goto done;
	}
	if (dq_install_conf(dpath, &paths, &conf, why, sizeof why) == -1)
		goto err_prepare;

	/* SIGHUP does not re-read dnsmasq.conf: a changed config is a
	 * restart (not counted as one: nothing died). */
	pthread_mutex_lock(&dq_lock);
	free(d->conf);
	d->conf = buf_take(&conf);
	d->paths = paths;
	d->mode = c->dhcp_mode;
	memcpy(d->dnsmasq_path, dpath, sizeof d->dnsmasq_path);
	d->last_error[0] = '\0';
	d->respawn = 0;
	d->rs.backoff_ms = DQ_BACKOFF_MIN_MS;	/* new config, fresh start */
	if (d->standby)
		log_info("dnsmasq.conf changed");
	else {
		log_info("dnsmasq.conf changed; restarting dnsmasq");
		dq_terminate(d);
		if (dq_launch(d) == -1)
			dq_schedule(d, clock_mono_ms());
	}
	pthread_mutex_unlock(&dq_lock);
	rc = 0;
	goto done;

err_prepare:
	pthread_mutex_lock(&dq_lock);
	dq_seterr(d, "reload: %s; dnsmasq keeps its previous config", why);
	pthread_mutex_unlock(&dq_lock);
done:
	buf_free(&conf);
	config_free(c);
	return rc;
}

/* The reservation already in hosts.d for ip under another name, if any. */
static int
dq_ip_taken(const char *hostsdir, const char *self, const char *ip,
    char *owner, size_t ownerlen)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct buf b;
	DIR *dir;
	char *f1, *f2;
	int taken = 0;

	if ((dir = opendir(hostsdir)) == NULL)
		return 0;
	while (!taken && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, self) == 0 ||
		    path_join(path, sizeof path, hostsdir, de->d_name) == -1)
			continue;
		buf_init(&b, DQ_HOSTS_LINE_MAX);
		if (dq_read_file(path, DQ_HOSTS_LINE_MAX - 1, &b) == 0 &&
		    b.data != NULL && (f1 = strchr(b.data, ',')) != NULL) {
			f1++;
			f2 = f1 + strcspn(f1, ",\n");
			if ((size_t)(f2 - f1) == strlen(ip) &&
			    memcmp(f1, ip, (size_t)(f2 - f1)) == 0) {
				snprintf(owner, ownerlen, "%s", de->d_name);
				taken = 1;
			}
		}
		buf_free(&b);
	}
	closedir(dir);
	return taken;
}

int
dnsmasq_reserve(struct bastion *app, const char *mac, const char *ip,
    const char *hostname)
{
	struct dnsmasq_paths paths;
	struct config *c;
	struct in_addr a;
	char nmac[MAC_STRLEN], name[MAC_STRLEN], nip[INET_ADDRSTRLEN];
	char path[PATH_MAX], dir[PATH_MAX], line[DQ_HOSTS_LINE_MAX];
	char owner[NAME_MAX + 1];
	struct stat st;
	uint32_t h;
	size_t i;
	int existed, rc = -1, n;

	if (mac == NULL || mac_normalize(mac, nmac) == -1) {
		log_warnx("reserve: \"%.40s\" is not a MAC address",
		    mac ? mac : "");
		return -1;
	}
	if (ip == NULL || inet_pton(AF_INET, ip, &a) != 1) {
		log_warnx("reserve %s: \"%.40s\" is not an IPv4 address", nmac,
		    ip ? ip : "");
		return -1;
	}
	h = ntohl(a.s_addr);
	if (h == 0 || h == 0xffffffffU || (h >> 24) == 127 ||
	    (h >> 28) == 0xe || (h >> 28) == 0xf) {
		log_warnx("reserve %s: %s cannot be a host's address", nmac,
		    ip);
		return -1;
	}
	inet_ntop(AF_INET, &a, nip, sizeof nip);
	if (hostname != NULL && hostname[0] != '\0' && !hostname_label_valid(hostname)) {
		log_warnx("reserve %s: hostname \"%.64s\" is not an RFC 1123 "
		    "label", nmac, hostname);
		return -1;
	}
	/* The file name comes from the normalised MAC only. */
	for (i = 0; i < sizeof nmac; i++)
		name[i] = nmac[i] == ':' ? '-' : nmac[i];
	if (hostname != NULL && hostname[0] != '\0')
		n = snprintf(line, sizeof line, "%s,%s,%s\n", nmac, nip,
		    hostname);
	else
		n = snprintf(line, sizeof line, "%s,%s\n", nmac, nip);
	if (n < 0 || (size_t)n >= sizeof line)
		return -1;

	if ((c = dq_config_copy(app)) == NULL) {
		log_warnx("out of memory");
		return -1;
	}
	dnsmasq_paths(c, &paths);
	if (paths.hostsdir[0] == '\0' ||
	    path_join(dir, sizeof dir, c->state_dir, "dnsmasq") == -1 ||
	    path_join(path, sizeof path, paths.hostsdir, name) == -1) {
		log_warnx("reserve: state dir path too long");
		goto out;
	}
	if (dq_mkdir(dir, 0755) == -1 || dq_mkdir(paths.hostsdir, 0755) == -1)
		goto out;
	if (dq_ip_taken(paths.hostsdir, name, nip, owner, sizeof owner)) {
		log_warnx("reserve %s: %s is already reserved (%s/%s)", nmac,
		    nip, paths.hostsdir, owner);
		goto out;
	}
	existed = lstat(path, &st) == 0;
	switch (dq_update_file(path, line, (size_t)n, 0644)) {
	case -1:
		goto out;
	case 0:
		rc = 0;		/* already so */
		goto out;
	}
	log_info("reserved %s for %s%s%s", nip, nmac,
	    hostname && hostname[0] ? " as " : "",
	    hostname && hostname[0] ? hostname : "");
	/* inotify adds new files, but a record that changed stays as it
	 * was until dnsmasq gets a SIGHUP. */
	if (existed) {
		pthread_mutex_lock(&dq_lock);
		if (app->dnsmasq != NULL && app->dnsmasq->pid > 0)
			sigas_send(app->dnsmasq->pid, SIGHUP,
			    app->dnsmasq->uid);
		pthread_mutex_unlock(&dq_lock);
	}
	rc = 0;
out:
	config_free(c);
	return rc;
}

void
dnsmasq_stop(struct bastion *app)
{
	struct dnsmasq *d;

	pthread_mutex_lock(&dq_lock);
	if ((d = app->dnsmasq) != NULL) {
		dq_terminate(d);
		app->dnsmasq = NULL;
		free(d->conf);
		free(d);
	}
	pthread_mutex_unlock(&dq_lock);
}

json_t *
dnsmasq_status(struct bastion *app)
{
	struct dnsmasq *d;
	enum dhcp_mode mode;
	json_t *j;
	int64_t now = clock_mono_ms();

	pthread_mutex_lock(&dq_lock);
	if ((d = app->dnsmasq) == NULL) {
		pthread_mutex_unlock(&dq_lock);
		pthread_rwlock_rdlock(&app->cfg_lock);
		mode = app->cfg->dhcp_mode;
		pthread_rwlock_unlock(&app->cfg_lock);
		return json_pack("{s:b, s:n, s:I, s:s, s:s, s:I, s:b}",
		    "running", 0, "pid", "restarts", (json_int_t)0,
		    "mode", config_dhcp_mode_name(mode),
		    "last_error", "not started", "uptime_s", (json_int_t)0,
		    "standby", 0);
	}
	j = json_pack("{s:b, s:o, s:I, s:s, s:o, s:I, s:b}",
	    "running", d->pid > 0,
	    "pid", d->pid > 0 ? json_integer(d->pid) : json_null(),
	    "restarts", (json_int_t)d->restarts,
	    "mode", config_dhcp_mode_name(d->mode),
	    "last_error", d->last_error[0] ? json_string(d->last_error) :
	    json_null(),
	    "uptime_s", (json_int_t)(d->pid > 0 ?
	    (now - d->rs.started_ms) / 1000 : 0),
	    "standby", d->standby);
	pthread_mutex_unlock(&dq_lock);
	return j;
}
