/* test_dnsmasq.c — the rendered dnsmasq.conf per DHCP mode (checked by the
 * real `dnsmasq --test`), the lease hook, per-MAC reservations and the
 * supervisor (start, restart after kill -9 with backoff, reload, stop),
 * the last driven with a stand-in dnsmasq so no network is needed. */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bastion.h"
#include "config.h"
#include "dnsmasq.h"

#define REAL_DNSMASQ	"/usr/sbin/dnsmasq"

/* ---- helpers ---------------------------------------------------------- */

static void xsnprintf(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* snprintf that fails the test instead of truncating. */
static void
xsnprintf(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < len);
}

static void
make_tmpdir(char *out, size_t len)
{
	xsnprintf(out, len, "/tmp/bastion-test-dnsmasq.XXXXXX");
	assert_non_null(mkdtemp(out));
	/* dnsmasq runs as nobody and must be able to search it. */
	assert_int_equal(chmod(out, 0755), 0);
}

static void
rm_rf(const char *path)
{
	char sub[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (lstat(path, &st) == -1)
		return;
	if (S_ISDIR(st.st_mode) && (d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			xsnprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
			rm_rf(sub);
		}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* Whole small file as a malloc'd string, or NULL. */
static char *
read_text(const char *path)
{
	char *s;
	FILE *fp;
	long n;

	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
	s[n] = '\0';
	fclose(fp);
	return s;
}

/* A config as bastion would load it: defaults, the file, derived values. */
static void
load_cfg(struct config *c, const char *state_dir, const char *extra)
{
	char text[4096];
	struct buf err;

	xsnprintf(text, sizeof text,
	    "[bastion]\nstate_dir = %s\n"
	    "[boot]\nlisten = 10.77.0.1:8080\ninterface = bastion0\n%s",
	    state_dir, extra);
	buf_init(&err, 8192);
	if (config_load_string("test.conf", text, c, &err) != 0)
		fail_msg("config: %s", err.data ? err.data : "?");
	buf_free(&err);
}

static char *
render(const struct config *c)
{
	struct dnsmasq_paths p;
	struct buf b;

	dnsmasq_paths(c, &p);
	buf_init(&b, 1 << 20);
	assert_int_equal(dnsmasq_render(c, &p, &b), 0);
	return buf_take(&b);
}

/* Is line one of conf's lines (exactly)? */
static int
has_line(const char *conf, const char *line)
{
	size_t n = strlen(line);
	const char *p = conf;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == conf || p[-1] == '\n') &&
		    (p[n] == '\n' || p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

/* Does any non-comment line start with prefix? */
static int
has_prefix(const char *conf, const char *prefix)
{
	const char *p = conf;

	for (; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			return 1;
	return 0;
}

#define assert_line(conf, l) do {					\
	if (!has_line((conf), (l)))					\
		fail_msg("missing line \"%s\" in:\n%s", (l), (conf));	\
} while (0)
#define assert_no_prefix(conf, l) do {					\
	if (has_prefix((conf), (l)))					\
		fail_msg("unexpected \"%s...\" in:\n%s", (l), (conf));	\
} while (0)

/* A TFTP boot file goes only to clients that are not iPXE: every
 * dhcp-boot / pxe-service naming a file (not a URL) excludes tag ipxe,
 * and every line naming the HTTP script or binary is for iPXE or HTTP
 * boot clients only. */
static void
assert_tftp_only_for_non_ipxe(const char *conf)
{
	const char *p, *nl;
	char line[512];
	size_t n;

	for (p = conf; *p; p = *nl ? nl + 1 : nl) {
		nl = p + strcspn(p, "\n");
		n = (size_t)(nl - p) < sizeof line ? (size_t)(nl - p) :
		    sizeof line - 1;
		memcpy(line, p, n);
		line[n] = '\0';
		if (strncmp(line, "dhcp-boot=", 10) != 0 &&
		    strncmp(line, "pxe-service=", 12) != 0)
			continue;
		if (strstr(line, "http://") != NULL) {
			if (strstr(line, "tag:ipxe") == NULL &&
			    strstr(line, "tag:httpboot") == NULL)
				fail_msg("URL for everybody: %s", line);
		} else if (strstr(line, "tag:!ipxe") == NULL) {
			fail_msg("TFTP file offered to iPXE too: %s", line);
		}
	}
}

/* The real dnsmasq checks the syntax of conf (it binds nothing). */
static void
assert_dnsmasq_accepts(const char *dir, const char *conf)
{
	char path[PATH_MAX], out[PATH_MAX], arg[PATH_MAX + 16];
	char *text;
	pid_t pid;
	int status, fd;

	if (access(REAL_DNSMASQ, X_OK) == -1)
		skip();
	xsnprintf(path, sizeof path, "%s/check.conf", dir);
	xsnprintf(out, sizeof out, "%s/check.out", dir);
	xsnprintf(arg, sizeof arg, "--conf-file=%s", path);
	write_file(path, conf, 0644);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd == -1)
			_exit(99);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(REAL_DNSMASQ, REAL_DNSMASQ, "--test", arg, (char *)NULL);
		_exit(98);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	text = read_text(out);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("dnsmasq --test rejects the config: %s\n%s",
		    text ? text : "", conf);
	assert_non_null(strstr(text, "syntax check OK"));
	free(text);
}

/* ---- rendering -------------------------------------------------------- */

static void
test_render_full(void **state)
{
	char dir[PATH_MAX], l[PATH_MAX + 64];
	struct config c;
	char *conf;

	(void)state;
	make_tmpdir(dir, sizeof dir);
	load_cfg(&c, dir, "dhcp_mode = full\n"
	    "dhcp_range = 10.77.0.100,10.77.0.200,12h\n");
	conf = render(&c);

	assert_line(conf, "port=0");
	assert_line(conf, "interface=bastion0");
	assert_line(conf, "bind-interfaces");
	assert_line(conf, "user=nobody");
	assert_line(conf, "dhcp-range=10.77.0.100,10.77.0.200,12h");
	assert_line(conf, "dhcp-authoritative");
	assert_line(conf, "no-ping");
	/* full: leases in the database, given back by the hook's init,
	 * which runs as the worker's user (its admin socket). */
	assert_line(conf, "leasefile-ro");
	assert_line(conf, "dhcp-scriptuser=bastion");
	xsnprintf(l, sizeof l, "dhcp-leasefile=%s/dnsmasq/leases", dir);
	assert_null(strstr(conf, l));
	xsnprintf(l, sizeof l, "dhcp-hostsdir=%s/dnsmasq/hosts.d", dir);
	assert_line(conf, l);
	xsnprintf(l, sizeof l, "dhcp-script=%s/dnsmasq/lease-hook", dir);
	assert_line(conf, l);
	xsnprintf(l, sizeof l, "pid-file=%s/dnsmasq/dnsmasq.pid", dir);
	assert_line(conf, l);
	assert_line(conf, "enable-tftp");
	xsnprintf(l, sizeof l, "tftp-root=%s/tftp", dir);
	assert_line(conf, l);
	assert_line(conf, "dhcp-match=set:ipxe,175");
	assert_line(conf, "dhcp-userclass=set:ipxe,iPXE");
	assert_line(conf, "dhcp-match=set:bios,option:client-arch,0");
	assert_line(conf, "dhcp-match=set:efi64,option:client-arch,7");
	assert_line(conf, "dhcp-match=set:efi64,option:client-arch,9");
	assert_line(conf, "dhcp-boot=tag:bios,tag:!ipxe,undionly.kpxe");
	assert_line(conf, "dhcp-boot=tag:efi64,tag:!ipxe,ipxe.efi");
	assert_line(conf, "dhcp-boot=tag:ipxe,http://10.77.0.1:8080/boot.ipxe");
	assert_line(conf, "dhcp-option=tag:ipxe,encap:175,176,1");
	/* UEFI HTTP boot: option 60 echoed, the binary as a URL. */
	assert_line(conf, "dhcp-vendorclass=set:httpclient,HTTPClient");
	assert_line(conf, "dhcp-match=set:efi64http,option:client-arch,16");
	assert_line(conf, "dhcp-option-force=tag:httpboot,60,HTTPClient");
	assert_line(conf,
	    "dhcp-boot=tag:httpboot,http://10.77.0.1:8080/boot/ipxe.efi");
	/* IPv6 RA is on by default. */
	assert_line(conf, "enable-ra");
	assert_line(conf, "dhcp-range=::,constructor:bastion0,ra-only");
	assert_no_prefix(conf, "pxe-service=");
	assert_no_prefix(conf, "log-dhcp");
	assert_null(strstr(conf, ",proxy"));
	assert_tftp_only_for_non_ipxe(conf);
	assert_dnsmasq_accepts(dir, conf);
	free(conf);
	rm_rf(dir);
}

static void
test_render_full_options(void **state)
{
	char dir[PATH_MAX];
	struct config c;
	char *conf;

	(void)state;
	make_tmpdir(dir, sizeof dir);
	load_cfg(&c, dir, "ipv6_ra = no\n"
	    "dhcp_range = 192.168.50.10,192.168.50.20,infinite\n"
	    "url = http://boot.lab:8080/\n"
	    "[bastion]\ndebug = yes\n");
	conf = render(&c);
	assert_line(conf, "dhcp-range=192.168.50.10,192.168.50.20,infinite");
	/* The trailing slash of boot.url is not doubled. */
	assert_line(conf, "dhcp-boot=tag:ipxe,http://boot.lab:8080/boot.ipxe");
	assert_line(conf, "log-dhcp");
	assert_no_prefix(conf, "enable-ra");
	assert_null(strstr(conf, "constructor:"));
	assert_dnsmasq_accepts(dir, conf);
	free(conf);
	rm_rf(dir);
}

static void
test_render_proxy(void **state)
{
	char dir[PATH_MAX];
	struct config c;
	char *conf;

	(void)state;
	make_tmpdir(dir, sizeof dir);
	load_cfg(&c, dir, "dhcp_mode = proxy\n");
	conf = render(&c);
	/* Without an interface address: the network of the range. */
	assert_line(conf, "dhcp-range=10.77.0.100,proxy");
	assert_line(conf, "pxe-service=tag:!ipxe,x86PC,"
	    "\"Network boot (bastion)\",undionly.kpxe");
	assert_line(conf, "pxe-service=tag:!ipxe,BC_EFI,"
	    "\"Network boot (bastion)\",ipxe.efi");
	assert_line(conf, "pxe-service=tag:!ipxe,x86-64_EFI,"
	    "\"Network boot (bastion)\",ipxe.efi");
	assert_line(conf, "dhcp-boot=tag:ipxe,http://10.77.0.1:8080/boot.ipxe");
	assert_line(conf,
	    "dhcp-boot=tag:httpboot,http://10.77.0.1:8080/boot/ipxe.efi");
	assert_line(conf, "dhcp-pxe-vendor=PXEClient,HTTPClient");
	assert_line(conf, "dhcp-match=set:ipxe,175");
	assert_line(conf, "dhcp-userclass=set:ipxe,iPXE");
	assert_line(conf, "enable-tftp");
	assert_line(conf, "port=0");
	/* Not a DHCP server here: no range of its own, no authority, no
	 * "don't wait for ProxyDHCP" (we are the ProxyDHCP), no RA. */
	assert_no_prefix(conf, "dhcp-authoritative");
	assert_no_prefix(conf, "no-ping");
	assert_no_prefix(conf, "enable-ra");
	assert_null(strstr(conf, "encap:175"));
	assert_null(strstr(conf, "10.77.0.100,10.77.0.200"));
	assert_tftp_only_for_non_ipxe(conf);
	assert_dnsmasq_accepts(dir, conf);
	free(conf);
	rm_rf(dir);
}

static void
test_render_off(void **state)
{
	char dir[PATH_MAX], l[PATH_MAX + 64];
	struct config c;
	char *conf;

	(void)state;
	make_tmpdir(dir, sizeof dir);
	load_cfg(&c, dir, "dhcp_mode = off\n");
	conf = render(&c);
	assert_line(conf, "port=0");
	assert_line(conf, "interface=bastion0");
	assert_line(conf, "enable-tftp");
	xsnprintf(l, sizeof l, "tftp-root=%s/tftp", dir);
	assert_line(conf, l);
	assert_line(conf, "dhcp-match=set:ipxe,175");
	assert_line(conf, "dhcp-userclass=set:ipxe,iPXE");
	/* No DHCP at all. */
	assert_no_prefix(conf, "dhcp-range");
	assert_no_prefix(conf, "dhcp-boot");
	assert_no_prefix(conf, "pxe-service");
	assert_no_prefix(conf, "dhcp-authoritative");
	assert_no_prefix(conf, "dhcp-script");
	assert_no_prefix(conf, "enable-ra");
	assert_tftp_only_for_non_ipxe(conf);
	assert_dnsmasq_accepts(dir, conf);
	free(conf);
	rm_rf(dir);
}

static void
test_render_rejects(void **state)
{
	struct dnsmasq_paths p;
	struct config c;
	struct buf b;
	char dir[PATH_MAX];

	(void)state;
	make_tmpdir(dir, sizeof dir);
	buf_init(&b, 1 << 20);

	/* A comma would split dhcp-boot's file from its server name. */
	load_cfg(&c, dir, "");
	strcpy(c.boot_url, "http://10.77.0.1:8080/a,b");
	dnsmasq_paths(&c, &p);
	assert_int_equal(dnsmasq_render(&c, &p, &b), -1);
	/* The boot file must fit the 128-byte BOOTP field. */
	load_cfg(&c, dir, "");
	xsnprintf(c.boot_url, sizeof c.boot_url, "http://10.77.0.1:8080/%0115d",
	    0);
	assert_int_equal(dnsmasq_render(&c, &p, &b), -1);
	/* An interface name that would end the line or add an option. */
	load_cfg(&c, dir, "");
	strcpy(c.interface, "br0#x");
	assert_int_equal(dnsmasq_render(&c, &p, &b), -1);
	/* A state dir dnsmasq could not parse as a path. */
	load_cfg(&c, dir, "");
	strcpy(c.state_dir, "/var/lib/my bastion");
	dnsmasq_paths(&c, &p);
	assert_int_equal(dnsmasq_render(&c, &p, &b), -1);
	strcpy(c.state_dir, "/var/lib/bastion,x");
	dnsmasq_paths(&c, &p);
	assert_int_equal(dnsmasq_render(&c, &p, &b), -1);
	/* Text that only reaches comments cannot start a line either. */
	load_cfg(&c, dir, "");
	strcpy(c.path, "/etc/bastion.conf\nuser=root");
	strcpy(c.ipxe_dir, "/usr/lib/ipxe\rdhcp-script=/tmp/evil");
	dnsmasq_paths(&c, &p);
	buf_reset(&b);
	assert_int_equal(dnsmasq_render(&c, &p, &b), 0);
	assert_false(has_prefix(b.data, "user=root"));
	assert_line(b.data, "user=nobody");
	assert_null(strstr(b.data, "\r"));
	assert_false(has_prefix(b.data, "dhcp-script=/tmp/evil"));
	/* A failure found halfway (the range comes after the header) leaves
	 * nothing half-written in the caller's buffer. */
	load_cfg(&c, dir, "");
	strcpy(c.dhcp_range, "10.0.0.1 10.0.0.9");
	dnsmasq_paths(&c, &p);
	buf_reset(&b);
	assert_int_equal(buf_adds(&b, "kept"), 0);
	assert_int_equal(dnsmasq_render(&c, &p, &b), -1);
	assert_string_equal(b.data, "kept");
	/* Nor does one that runs out of room. */
	load_cfg(&c, dir, "");
	dnsmasq_paths(&c, &p);
	buf_free(&b);
	buf_init(&b, 600);
	assert_int_equal(buf_adds(&b, "kept"), 0);
	assert_int_equal(dnsmasq_render(&c, &p, &b), -1);
	assert_string_equal(b.data, "kept");
	buf_free(&b);
	/* And a good one still renders. */
	buf_init(&b, 1 << 20);
	load_cfg(&c, dir, "");
	dnsmasq_paths(&c, &p);
	assert_int_equal(dnsmasq_render(&c, &p, &b), 0);
	buf_free(&b);
	rm_rf(dir);
}

/* ---- the lease hook --------------------------------------------------- */

static void
test_hook_render(void **state)
{
	struct dnsmasq_paths p;
	struct config c;
	struct buf b;

	(void)state;
	load_cfg(&c, "/var/lib/bastion", "");
	dnsmasq_paths(&c, &p);
	buf_init(&b, 1 << 16);
	assert_int_equal(dnsmasq_render_hook(&p, "/usr/local/bin/bastionctl",
	    "/var/lib/bastion/admin.sock", &b), 0);
	assert_int_equal(strncmp(b.data, "#!/bin/sh\n", 10), 0);
	assert_line(b.data, "exec '/usr/local/bin/bastionctl' --socket "
	    "'/var/lib/bastion/admin.sock' lease-hook \"$@\"");
	buf_reset(&b);
	assert_int_equal(dnsmasq_render_hook(&p, "/opt/it's/bastionctl",
	    "/var/lib/bastion/admin.sock", &b), -1);
	assert_int_equal(dnsmasq_render_hook(&p, "/usr/bin/bastionctl",
	    "/var/lib/b'; rm -rf /; '/admin.sock", &b), -1);
	assert_int_equal(dnsmasq_render_hook(&p, "/usr/bin/bastion\nctl",
	    "/var/lib/bastion/admin.sock", &b), -1);
	assert_int_equal(dnsmasq_render_hook(&p, "bastionctl",
	    "/var/lib/bastion/admin.sock", &b), -1);
	assert_int_equal(dnsmasq_render_hook(&p, "/usr/bin/bastionctl", NULL,
	    &b), -1);
	buf_free(&b);
}

/* Run the rendered hook as dnsmasq would, with a stand-in bastionctl that
 * records its argv: lease events reach it, tftp and others end in exit 0
 * without it. */
static void
test_hook_runs(void **state)
{
	char dir[PATH_MAX], hook[PATH_MAX], ctl[PATH_MAX], log[PATH_MAX];
	char script[PATH_MAX * 2], cmd[PATH_MAX * 3];
	struct dnsmasq_paths p;
	struct config c;
	struct buf b;
	char *text;

	(void)state;
	make_tmpdir(dir, sizeof dir);
	xsnprintf(hook, sizeof hook, "%s/hook", dir);
	xsnprintf(ctl, sizeof ctl, "%s/fake ctl", dir);	/* a blank in it */
	xsnprintf(log, sizeof log, "%s/ctl.log", dir);
	xsnprintf(script, sizeof script,
	    "#!/bin/sh\nfor a in \"$@\"; do printf '[%%s]' \"$a\"; done "
	    ">> '%s'\necho >> '%s'\n", log, log);
	write_file(ctl, script, 0755);
	load_cfg(&c, dir, "");
	dnsmasq_paths(&c, &p);
	buf_init(&b, 1 << 16);
	assert_int_equal(dnsmasq_render_hook(&p, ctl, "/run/b/admin.sock",
	    &b), 0);
	write_file(hook, b.data, 0755);
	buf_free(&b);

	xsnprintf(cmd, sizeof cmd, "'%s' tftp 74213 10.77.0.150 "
	    "/srv/tftp/undionly.kpxe", hook);
	assert_int_equal(system(cmd), 0);
	assert_null(read_text(log));	/* never called */
	/* init goes on: the leases come from bastion (leasefile-ro). */
	xsnprintf(cmd, sizeof cmd, "'%s' init", hook);
	assert_int_equal(system(cmd), 0);
	xsnprintf(cmd, sizeof cmd, "'%s' add 52:54:00:ab:cd:ef 10.77.0.150 "
	    "'node 1;$(x)'", hook);
	assert_int_equal(system(cmd), 0);
	text = read_text(log);
	assert_non_null(text);
	assert_string_equal(text, "[--socket][/run/b/admin.sock][lease-hook]"
	    "[init]\n[--socket][/run/b/admin.sock][lease-hook]"
	    "[add][52:54:00:ab:cd:ef][10.77.0.150][node 1;$(x)]\n");
	free(text);
	/* bastionctl gone: init still ends in 0 (a failed lease-init script
	 * would stop dnsmasq), and nothing more is recorded. */
	assert_int_equal(unlink(ctl), 0);
	xsnprintf(cmd, sizeof cmd, "'%s' init", hook);
	assert_int_equal(system(cmd), 0);
	xsnprintf(cmd, sizeof cmd, "'%s' del 52:54:00:ab:cd:ef 10.77.0.150",
	    hook);
	assert_int_equal(system(cmd), 0);
	text = read_text(log);
	assert_non_null(text);
	assert_null(strstr(text, "[del]"));
	free(text);
	rm_rf(dir);
}

/* ---- reservations ------------------------------------------------------- */

struct app_fixture {
	struct bastion	 app;
	struct config	*cfg;
	char		 dir[PATH_MAX];
};

static struct app_fixture *
app_new(const char *extra)
{
	struct app_fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	make_tmpdir(f->dir, sizeof f->dir);
	f->cfg = malloc(sizeof *f->cfg);
	assert_non_null(f->cfg);
	load_cfg(f->cfg, f->dir, extra);
	pthread_rwlock_init(&f->app.cfg_lock, NULL);
	f->app.cfg = f->cfg;
	return f;
}

static void
app_free(struct app_fixture *f)
{
	dnsmasq_stop(&f->app);
	assert_null(f->app.dnsmasq);
	pthread_rwlock_destroy(&f->app.cfg_lock);
	rm_rf(f->dir);
	free(f->app.cfg);
	free(f);
}

static int
count_entries(const char *dir)
{
	struct dirent *de;
	DIR *d;
	int n = 0;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void
test_reserve(void **state)
{
	struct app_fixture *f = app_new("");
	char hosts[PATH_MAX], path[PATH_MAX], *text;
	struct stat st;

	(void)state;
	xsnprintf(hosts, sizeof hosts, "%s/dnsmasq/hosts.d", f->dir);
	assert_int_equal(dnsmasq_reserve(&f->app, "52-54-00-AB-CD-EF",
	    "10.77.0.150", "node1"), 0);
	xsnprintf(path, sizeof path, "%s/52-54-00-ab-cd-ef", hosts);
	text = read_text(path);
	assert_non_null(text);
	assert_string_equal(text, "52:54:00:ab:cd:ef,10.77.0.150,node1\n");
	free(text);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(stat(hosts, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);

	/* Same MAC in another spelling, new address, no hostname. */
	assert_int_equal(dnsmasq_reserve(&f->app, "525400abcdef",
	    "10.77.0.151", NULL), 0);
	text = read_text(path);
	assert_string_equal(text, "52:54:00:ab:cd:ef,10.77.0.151\n");
	free(text);
	assert_int_equal(dnsmasq_reserve(&f->app, "5254.00ab.cdef",
	    "10.77.0.151", ""), 0);
	assert_int_equal(count_entries(hosts), 1);

	/* A second MAC; then the first one's address for it is refused. */
	assert_int_equal(dnsmasq_reserve(&f->app, "52:54:00:00:00:02",
	    "10.77.0.152", "node2"), 0);
	assert_int_equal(dnsmasq_reserve(&f->app, "52:54:00:00:00:03",
	    "10.77.0.151", "node3"), -1);
	assert_int_equal(count_entries(hosts), 2);
	app_free(f);
}

static void
test_reserve_rejects(void **state)
{
	static const char *const bad_macs[] = {
		"../../etc/passwd", "52:54:00:ab:cd", "zz:54:00:ab:cd:ef",
		"01:00:5e:00:00:01", "00:00:00:00:00:00", "",
		"52:54:00:ab:cd:ef/x", "52:54:00:ab:cd:ef\n10.0.0.9",
	};
	static const char *const bad_ips[] = {
		"10.77.0.256", "10.77.0.1/24", "::1", "fd77::10", "",
		"10.77.0.1,10.77.0.2", "0.0.0.0", "255.255.255.255",
		"127.0.0.1", "224.0.0.1", "010.77.0.1", "10.77.0.1\n",
	};
	static const char *const bad_names[] = {
		"-node", "node-", "no_de", "node.lan", "no de", "node,x",
		("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),	/* 64 */
		"node\n", "n\xc3\xa9",
	};
	struct app_fixture *f = app_new("");
	char hosts[PATH_MAX];
	size_t i;

	(void)state;
	xsnprintf(hosts, sizeof hosts, "%s/dnsmasq/hosts.d", f->dir);
	for (i = 0; i < sizeof bad_macs / sizeof bad_macs[0]; i++)
		if (dnsmasq_reserve(&f->app, bad_macs[i], "10.77.0.150",
		    NULL) != -1)
			fail_msg("accepted MAC \"%s\"", bad_macs[i]);
	assert_int_equal(dnsmasq_reserve(&f->app, NULL, "10.77.0.150", NULL),
	    -1);
	for (i = 0; i < sizeof bad_ips / sizeof bad_ips[0]; i++)
		if (dnsmasq_reserve(&f->app, "52:54:00:ab:cd:ef", bad_ips[i],
		    NULL) != -1)
			fail_msg("accepted IP \"%s\"", bad_ips[i]);
	assert_int_equal(dnsmasq_reserve(&f->app, "52:54:00:ab:cd:ef", NULL,
	    NULL), -1);
	for (i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
		if (dnsmasq_reserve(&f->app, "52:54:00:ab:cd:ef",
		    "10.77.0.150", bad_names[i]) != -1)
			fail_msg("accepted hostname \"%s\"", bad_names[i]);
	/* Nothing was written, not even a temp file. */
	assert_true(count_entries(hosts) <= 0);
	app_free(f);
}

/* ---- supervision -------------------------------------------------------- */

/*
 * A stand-in for dnsmasq: `--test` accepts any config except one rendered
 * for dhcp_mode = off (to exercise a rejected reload); otherwise it says
 * hello on stderr and waits to be killed, like a foreground dnsmasq. It
 * also ends when the test process is gone, so a failed test leaves
 * nothing running.
 */
static void
write_fake_dnsmasq(const char *path)
{
	write_file(path,
	    "#!/bin/sh\n"
	    "if [ \"$1\" = --test ]; then\n"
	    "  conf=${2#--conf-file=}\n"
	    "  if grep -q 'dhcp_mode = off' \"$conf\"; then\n"
	    "    echo \"dnsmasq: bad option at line 1 of $conf\" >&2; exit 1\n"
	    "  fi\n"
	    "  echo 'dnsmasq: syntax check OK.' >&2; exit 0\n"
	    "fi\n"
	    "echo \"dnsmasq[$$]: started, version fake\" >&2\n"
	    "parent=$PPID\n"
	    "while kill -0 \"$parent\" 2>/dev/null; do sleep 0.1; done\n",
	    0755);
}

/* Stops the supervisor even when a test failed half-way. */
static int
supervised_teardown(void **state)
{
	struct app_fixture *f = *state;

	if (f != NULL) {
		dnsmasq_stop(&f->app);
		pthread_rwlock_destroy(&f->app.cfg_lock);
		rm_rf(f->dir);
		free(f->app.cfg);
		free(f);
		*state = NULL;
	}
	return 0;
}

static json_int_t
status_int(struct bastion *app, const char *key)
{
	json_t *j = dnsmasq_status(app);
	json_int_t v;

	assert_non_null(j);
	v = json_integer_value(json_object_get(j, key));
	json_decref(j);
	return v;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Tick like the main loop (every 20 ms) until a new pid runs; returns
 * how long it took in ms, or -1 after limit_ms. */
static int64_t
wait_restart(struct bastion *app, json_int_t oldpid, int64_t limit_ms)
{
	int64_t t0 = mono_ms();
	json_int_t pid;

	while (mono_ms() - t0 < limit_ms) {
		dnsmasq_tick(app);
		pid = status_int(app, "pid");
		if (pid > 0 && pid != oldpid)
			return mono_ms() - t0;
		usleep(20 * 1000);
	}
	return -1;
}

static struct app_fixture *
supervised_new(const char *extra)
{
	char fake[PATH_MAX], ipxe[PATH_MAX], file[PATH_MAX * 2], line[8192];
	struct app_fixture *f;

	xsnprintf(line, sizeof line, "%s", extra);
	f = app_new(line);
	xsnprintf(fake, sizeof fake, "%s/fake-dnsmasq", f->dir);
	write_fake_dnsmasq(fake);
	xsnprintf(ipxe, sizeof ipxe, "%s/ipxe", f->dir);
	assert_int_equal(mkdir(ipxe, 0755), 0);
	xsnprintf(file, sizeof file, "%s/undionly.kpxe", ipxe);
	write_file(file, "BIOS iPXE\n", 0600);
	xsnprintf(file, sizeof file, "%s/ipxe.efi", ipxe);
	write_file(file, "UEFI iPXE\n", 0600);
	/* snponly.efi missing: logged, not fatal. */
	xsnprintf(f->cfg->dnsmasq_path, sizeof f->cfg->dnsmasq_path, "%s",
	    fake);
	xsnprintf(f->cfg->ipxe_dir, sizeof f->cfg->ipxe_dir, "%s", ipxe);
	return f;
}

static void
test_supervise(void **state)
{
	struct app_fixture *f = supervised_new("");
	char path[PATH_MAX], *before, *after, *text;
	json_int_t pid1, pid2, pid3;
	int64_t took;
	struct stat st;
	json_t *j;

	*state = f;
	assert_int_equal(dnsmasq_start(&f->app), 0);
	assert_non_null(f->app.dnsmasq);

	/* What start put on disk. */
	xsnprintf(path, sizeof path, "%s/dnsmasq/lease-hook", f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	xsnprintf(path, sizeof path, "%s/tftp/undionly.kpxe", f->dir);
	text = read_text(path);
	assert_non_null(text);
	assert_string_equal(text, "BIOS iPXE\n");
	free(text);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);	/* nobody reads it */
	xsnprintf(path, sizeof path, "%s/tftp/ipxe.efi", f->dir);
	assert_int_equal(access(path, R_OK), 0);
	xsnprintf(path, sizeof path, "%s/dnsmasq/dnsmasq.conf", f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	before = read_text(path);
	assert_non_null(strstr(before, "dhcp_mode = full"));

	j = dnsmasq_status(&f->app);
	assert_true(json_is_true(json_object_get(j, "running")));
	assert_string_equal(json_string_value(json_object_get(j, "mode")),
	    "full");
	assert_true(json_is_null(json_object_get(j, "last_error")));
	assert_int_equal(json_integer_value(json_object_get(j, "restarts")), 0);
	assert_true(json_is_integer(json_object_get(j, "uptime_s")));
	pid1 = json_integer_value(json_object_get(j, "pid"));
	json_decref(j);
	assert_true(pid1 > 0);
	assert_int_equal(kill((pid_t)pid1, 0), 0);

	/* kill -9: back within 2 s (first backoff is 200 ms). */
	assert_int_equal(kill((pid_t)pid1, SIGKILL), 0);
	took = wait_restart(&f->app, pid1, 2000);
	assert_true(took >= 150 && took < 2000);
	pid2 = status_int(&f->app, "pid");
	assert_int_equal(status_int(&f->app, "restarts"), 1);
	j = dnsmasq_status(&f->app);
	assert_non_null(strstr(json_string_value(json_object_get(j,
	    "last_error")), "signal 9"));
	json_decref(j);

	/* A second quick death waits twice as long. */
	assert_int_equal(kill((pid_t)pid2, SIGKILL), 0);
	took = wait_restart(&f->app, pid2, 3000);
	assert_true(took >= 350 && took < 1500);
	pid2 = status_int(&f->app, "pid");
	assert_int_equal(status_int(&f->app, "restarts"), 2);

	/* Reload with nothing changed: nothing happens. */
	assert_int_equal(dnsmasq_reload(&f->app), 0);
	assert_int_equal(status_int(&f->app, "pid"), pid2);

	/* A config dnsmasq rejects: the old one stays, so does the child. */
	pthread_rwlock_wrlock(&f->app.cfg_lock);
	f->cfg->dhcp_mode = DHCP_OFF;
	pthread_rwlock_unlock(&f->app.cfg_lock);
	assert_int_equal(dnsmasq_reload(&f->app), -1);
	assert_int_equal(status_int(&f->app, "pid"), pid2);
	after = read_text(path);
	assert_string_equal(after, before);
	free(after);
	j = dnsmasq_status(&f->app);
	assert_string_equal(json_string_value(json_object_get(j, "mode")),
	    "full");
	assert_non_null(strstr(json_string_value(json_object_get(j,
	    "last_error")), "previous config"));
	json_decref(j);

	/* A good change: written, and dnsmasq restarted to read it (SIGHUP
	 * would not); a reload restart is not counted as a crash. */
	pthread_rwlock_wrlock(&f->app.cfg_lock);
	f->cfg->dhcp_mode = DHCP_PROXY;
	pthread_rwlock_unlock(&f->app.cfg_lock);
	assert_int_equal(dnsmasq_reload(&f->app), 0);
	pid3 = status_int(&f->app, "pid");
	assert_true(pid3 > 0 && pid3 != pid2);
	assert_int_equal(kill((pid_t)pid2, 0), -1);	/* reaped */
	after = read_text(path);
	assert_non_null(strstr(after, "dhcp_mode = proxy"));
	assert_true(has_prefix(after, "pxe-service="));
	free(after);
	assert_int_equal(status_int(&f->app, "restarts"), 2);
	j = dnsmasq_status(&f->app);
	assert_string_equal(json_string_value(json_object_get(j, "mode")),
	    "proxy");
	assert_true(json_is_null(json_object_get(j, "last_error")));
	json_decref(j);

	/* Stop: the child is gone and reaped; status still answers. */
	dnsmasq_stop(&f->app);
	assert_null(f->app.dnsmasq);
	assert_int_equal(kill((pid_t)pid3, 0), -1);
	assert_int_equal(errno, ESRCH);
	j = dnsmasq_status(&f->app);
	assert_true(json_is_false(json_object_get(j, "running")));
	assert_true(json_is_null(json_object_get(j, "pid")));
	json_decref(j);
	dnsmasq_tick(&f->app);		/* harmless when stopped */
	free(before);
}

/* A config the checker rejects is an error at start: nothing runs. */
static void
test_start_bad_config(void **state)
{
	struct app_fixture *f = supervised_new("dhcp_mode = off\n");
	json_t *j;

	(void)state;
	assert_int_equal(dnsmasq_start(&f->app), -1);
	assert_null(f->app.dnsmasq);
	j = dnsmasq_status(&f->app);
	assert_true(json_is_false(json_object_get(j, "running")));
	assert_string_equal(json_string_value(json_object_get(j, "mode")),
	    "off");
	json_decref(j);
	app_free(f);
}

/* dnsmasq runs as nobody: a state dir others cannot search is refused
 * with a clear error instead of a dnsmasq that dies at every start. */
static void
test_start_unreachable_state_dir(void **state)
{
	struct app_fixture *f = supervised_new("");

	*state = f;
	assert_int_equal(chmod(f->dir, 0750), 0);
	assert_int_equal(dnsmasq_start(&f->app), -1);
	assert_null(f->app.dnsmasq);
	assert_int_equal(chmod(f->dir, 0711), 0);	/* search only: fine */
	assert_int_equal(dnsmasq_start(&f->app), 0);
	assert_true(status_int(&f->app, "pid") > 0);
}

/* A dnsmasq binary that is not there: start fails, nothing is left. */
static void
test_start_missing_binary(void **state)
{
	struct app_fixture *f = app_new("");

	(void)state;
	xsnprintf(f->cfg->dnsmasq_path, sizeof f->cfg->dnsmasq_path,
	    "%s/no-such-dnsmasq", f->dir);
	assert_int_equal(dnsmasq_start(&f->app), -1);
	assert_null(f->app.dnsmasq);
	app_free(f);
}

static void
test_status_not_started(void **state)
{
	struct app_fixture *f = app_new("dhcp_mode = proxy\n");
	json_t *j;

	(void)state;
	j = dnsmasq_status(&f->app);
	assert_non_null(j);
	assert_true(json_is_false(json_object_get(j, "running")));
	assert_true(json_is_null(json_object_get(j, "pid")));
	assert_int_equal(json_integer_value(json_object_get(j, "restarts")), 0);
	assert_string_equal(json_string_value(json_object_get(j, "mode")),
	    "proxy");
	assert_true(json_is_string(json_object_get(j, "last_error")));
	assert_int_equal(json_integer_value(json_object_get(j, "uptime_s")), 0);
	json_decref(j);
	app_free(f);
}

/* Several bastions on one database: standing by, the config is written
 * and checked but nothing runs, and ticks start nothing; leading runs
 * dnsmasq, supervised as always; no longer leading stops it, and nothing
 * restarts it; a reload while standing by rewrites the config only. */
static void
test_standby_and_lead(void **state)
{
	struct app_fixture *f = supervised_new("");
	char path[PATH_MAX], *text;
	json_int_t pid;
	json_t *j;
	int i;

	*state = f;
	assert_int_equal(dnsmasq_lead(&f->app, 1), -1);	/* not started */
	assert_int_equal(dnsmasq_standby(&f->app), 0);
	xsnprintf(path, sizeof path, "%s/dnsmasq/dnsmasq.conf", f->dir);
	assert_int_equal(access(path, R_OK), 0);
	j = dnsmasq_status(&f->app);
	assert_true(json_is_false(json_object_get(j, "running")));
	assert_true(json_is_true(json_object_get(j, "standby")));
	assert_true(json_is_null(json_object_get(j, "last_error")));
	json_decref(j);
	/* Longer than the first restart's backoff (200 ms). */
	for (i = 0; i < 15; i++) {
		dnsmasq_tick(&f->app);
		usleep(20 * 1000);
	}
	assert_int_equal(status_int(&f->app, "pid"), 0);

	/* Leading: it runs, and comes back when it dies. */
	assert_int_equal(dnsmasq_lead(&f->app, 1), 0);
	pid = status_int(&f->app, "pid");
	assert_true(pid > 0);
	assert_int_equal(dnsmasq_lead(&f->app, 1), 0);	/* already */
	assert_int_equal(status_int(&f->app, "pid"), pid);
	j = dnsmasq_status(&f->app);
	assert_true(json_is_true(json_object_get(j, "running")));
	assert_true(json_is_false(json_object_get(j, "standby")));
	json_decref(j);
	assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
	assert_true(wait_restart(&f->app, pid, 2000) >= 0);
	pid = status_int(&f->app, "pid");

	/* No longer: stopped and reaped at once, and not restarted. */
	assert_int_equal(dnsmasq_lead(&f->app, 0), 0);
	assert_int_equal(kill((pid_t)pid, 0), -1);
	j = dnsmasq_status(&f->app);
	assert_true(json_is_false(json_object_get(j, "running")));
	assert_true(json_is_true(json_object_get(j, "standby")));
	json_decref(j);
	for (i = 0; i < 15; i++) {
		dnsmasq_tick(&f->app);
		usleep(20 * 1000);
	}
	assert_int_equal(status_int(&f->app, "pid"), 0);

	/* A changed config while standing by: written, nothing runs; the
	 * next lead runs it. */
	pthread_rwlock_wrlock(&f->app.cfg_lock);
	f->cfg->dhcp_mode = DHCP_PROXY;
	pthread_rwlock_unlock(&f->app.cfg_lock);
	assert_int_equal(dnsmasq_reload(&f->app), 0);
	text = read_text(path);
	assert_non_null(strstr(text, "dhcp_mode = proxy"));
	free(text);
	assert_int_equal(status_int(&f->app, "pid"), 0);
	assert_int_equal(dnsmasq_lead(&f->app, 1), 0);
	assert_true(status_int(&f->app, "pid") > 0);
	j = dnsmasq_status(&f->app);
	assert_string_equal(json_string_value(json_object_get(j, "mode")),
	    "proxy");
	json_decref(j);
}

/*
 * dnsmasq drops to nobody, beyond a parent-death signal: when the process
 * that supervises it is killed with SIGKILL, the watcher ends it. Here a
 * forked child supervises a stand-in that ignores its parent's end; this
 * process adopts the orphans (a subreaper) to see how the stand-in ended.
 */
static void
test_killed_supervisor_takes_dnsmasq_along(void **state)
{
	struct app_fixture *f = supervised_new("");
	char fake[PATH_MAX];
	json_int_t pid = 0;
	int p[2], status = 0, i;
	pid_t sup, r = 0;

	(void)state;
	xsnprintf(fake, sizeof fake, "%s/fake-dnsmasq", f->dir);
	/* Gone by itself in 30 s should the test fail. */
	write_file(fake, "#!/bin/sh\n[ \"$1\" = --test ] && exit 0\n"
	    "exec sleep 30\n", 0755);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	assert_int_equal(pipe(p), 0);
	if ((sup = fork()) == 0) {
		/* No cmocka here: the supervisor, until it is killed. */
		close(p[0]);
		if (dnsmasq_start(&f->app) == 0)
			pid = status_int(&f->app, "pid");
		if (write(p[1], &pid, sizeof pid) != sizeof pid)
			_exit(1);
		for (;;)
			pause();
	}
	assert_true(sup > 0);
	close(p[1]);
	assert_int_equal(read(p[0], &pid, sizeof pid), sizeof pid);
	close(p[0]);
	assert_true(pid > 0);
	assert_int_equal(kill(sup, SIGKILL), 0);
	assert_int_equal(waitpid(sup, NULL, 0), sup);
	/* The stand-in, ours now, ends by the watcher's SIGTERM. */
	for (i = 0; i < 250 && r != (pid_t)pid; i++) {
		r = waitpid((pid_t)pid, &status, WNOHANG);
		usleep(20 * 1000);
	}
	assert_int_equal(r, (pid_t)pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTERM);
	/* And the watcher after it. */
	for (i = 0; i < 250 && (r = waitpid(-1, NULL, WNOHANG)) != -1; i++)
		if (r == 0)
			usleep(20 * 1000);
	assert_int_equal(r, -1);
	assert_int_equal(errno, ECHILD);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
	app_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_full),
		cmocka_unit_test(test_render_full_options),
		cmocka_unit_test(test_render_proxy),
		cmocka_unit_test(test_render_off),
		cmocka_unit_test(test_render_rejects),
		cmocka_unit_test(test_hook_render),
		cmocka_unit_test(test_hook_runs),
		cmocka_unit_test(test_reserve),
		cmocka_unit_test(test_reserve_rejects),
		cmocka_unit_test_teardown(test_supervise, supervised_teardown),
		cmocka_unit_test(test_start_bad_config),
		cmocka_unit_test_teardown(test_start_unreachable_state_dir,
		    supervised_teardown),
		cmocka_unit_test(test_start_missing_binary),
		cmocka_unit_test(test_status_not_started),
		cmocka_unit_test_teardown(test_standby_and_lead,
		    supervised_teardown),
		cmocka_unit_test(test_killed_supervisor_takes_dnsmasq_along),
	};

	/* The stand-in dnsmasq is a child; make sure SIGCHLD is not
	 * ignored, or waitpid would never see it die. */
	signal(SIGCHLD, SIG_DFL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
