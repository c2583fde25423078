/* test_config.c — bastion/config.c: the option table, file:line errors,
 * derived values, config_get and config_set_in_file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define NAME "t.conf"

/* ---- helpers ------------------------------------------------------------ */

struct loaded {
	struct config	c;
	struct buf	errors;
	int		rc;
};

static struct loaded *
load(const char *text)
{
	struct loaded *l = calloc(1, sizeof *l);

	assert_non_null(l);
	buf_init(&l->errors, 1 << 16);
	l->rc = config_load_string(NAME, text, &l->c, &l->errors);
	return l;
}

static void
loaded_free(struct loaded *l)
{
	buf_free(&l->errors);
	free(l);
}

static const char *
errs(const struct loaded *l)
{
	return l->errors.data ? l->errors.data : "";
}

/* Text must load without a single error; returns the config. */
static struct loaded *
load_ok(const char *text)
{
	struct loaded *l = load(text);

	if (l->rc != 0 || l->errors.len != 0)
		fail_msg("expected no errors for:\n%s\ngot rc=%d:\n%s", text,
		    l->rc, errs(l));
	return l;
}

/* Every error line is "t.conf:N: message"; returns how many there are. */
static int
count_error_lines(const char *e)
{
	int n = 0;

	while (*e) {
		const char *nl = strchr(e, '\n'), *p;

		if (nl == NULL)
			fail_msg("error text does not end in a newline: %s", e);
		if (strncmp(e, NAME ":", strlen(NAME ":")) != 0)
			fail_msg("error line without the file name: %.*s",
			    (int)(nl - e), e);
		p = e + strlen(NAME ":");
		if (*p < '0' || *p > '9')
			fail_msg("error line without a line number: %.*s",
			    (int)(nl - e), e);
		while (*p >= '0' && *p <= '9')
			p++;
		if (p[0] != ':' || p[1] != ' ' || p + 2 >= nl)
			fail_msg("error line not \"file:line: message\": %.*s",
			    (int)(nl - e), e);
		n++;
		e = nl + 1;
	}
	return n;
}

/* The text must fail with exactly one error, on line `line`, whose
 * message contains `needle` (if not NULL). */
static void
load_bad_at(const char *text, int line, const char *needle)
{
	struct loaded *l = load(text);
	char prefix[64];

	if (l->rc != -1)
		fail_msg("expected an error for:\n%s", text);
	if (count_error_lines(errs(l)) != 1)
		fail_msg("expected one error for:\n%s\ngot:\n%s", text, errs(l));
	snprintf(prefix, sizeof prefix, NAME ":%d: ", line);
	if (strncmp(errs(l), prefix, strlen(prefix)) != 0)
		fail_msg("expected the error on line %d for:\n%s\ngot: %s",
		    line, text, errs(l));
	if (needle && strstr(errs(l), needle) == NULL)
		fail_msg("expected \"%s\" in the error for:\n%s\ngot: %s",
		    needle, text, errs(l));
	loaded_free(l);
}

/* "[section]\nkey = value\n" must be rejected on line 2. */
static void
bad_value(const char *section, const char *key, const char *value)
{
	char text[1024];

	snprintf(text, sizeof text, "[%s]\n%s = %s\n", section, key, value);
	load_bad_at(text, 2, key);
}

static void
good_value(const char *section, const char *key, const char *value)
{
	char text[1024];

	snprintf(text, sizeof text, "[%s]\n%s = %s\n", section, key, value);
	loaded_free(load_ok(text));
}

static char tmpdir[] = "/tmp/bastion-test-config.XXXXXX";

static int
setup_dir(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown_dir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

/* Returns a malloc'd copy of the whole file. */
static char *
read_file(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *s;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	rewind(fp);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
	s[n] = '\0';
	fclose(fp);
	return s;
}

static void
tmp_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

/* set key=value in a file holding `before`; expect rc and the file to
 * hold `after` (NULL: unchanged). */
static void
set_expect(const char *before, const char *key, const char *value, int rc,
    const char *after)
{
	char path[256], *got;
	struct buf e;
	int r;

	tmp_path(path, sizeof path, "set.conf");
	write_file(path, before);
	buf_init(&e, 1 << 16);
	r = config_set_in_file(path, key, value, &e);
	if (r != rc)
		fail_msg("config_set_in_file(%s, \"%s\") = %d, expected %d; "
		    "errors: %s", key, value, r, rc, e.data ? e.data : "");
	if (rc != 0 && e.len == 0)
		fail_msg("config_set_in_file(%s) failed without saying why", key);
	got = read_file(path);
	if (strcmp(got, after ? after : before) != 0)
		fail_msg("after set %s = \"%s\" the file is:\n[%s]\nexpected:\n[%s]",
		    key, value, got, after ? after : before);
	free(got);
	buf_free(&e);
}

/* Blank lines dropped, leading white space stripped, final newline
 * ensured: what a person would call "the same file" after adding a key. */
static char *
normalise(const char *text)
{
	char *out = malloc(strlen(text) + 2), *o = out;
	const char *p = text;

	assert_non_null(out);
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n;

		while (*p == ' ' || *p == '\t')
			p++;
		n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > 0) {
			memcpy(o, p, n);
			o += n;
			*o++ = '\n';
		}
		p += n + (nl ? 1 : 0);
	}
	*o = '\0';
	return out;
}

/* Like set_expect, for additions: compares normalised text, so where
 * blank lines go and how the new line is indented is free. */
static void
set_expect_added(const char *before, const char *key, const char *value,
    const char *after)
{
	char path[256], *got, *ng, *na;
	struct buf e;

	tmp_path(path, sizeof path, "set.conf");
	write_file(path, before);
	buf_init(&e, 1 << 16);
	if (config_set_in_file(path, key, value, &e) != 0)
		fail_msg("config_set_in_file(%s, \"%s\") failed: %s", key, value,
		    e.data ? e.data : "");
	got = read_file(path);
	ng = normalise(got);
	na = normalise(after);
	if (strcmp(ng, na) != 0)
		fail_msg("after set %s = \"%s\" the file is:\n[%s]\nexpected "
		    "(give or take blank lines and indentation):\n[%s]", key,
		    value, got, after);
	free(got);
	free(ng);
	free(na);
	buf_free(&e);
}

/* ---- defaults ----------------------------------------------------------- */

static void
check_defaults(const struct config *c)
{
	assert_string_equal(c->state_dir, "/var/lib/bastion");
	assert_int_equal(c->debug, 0);
	assert_string_equal(c->boot_listen.host, "10.77.0.1");
	assert_int_equal(c->boot_listen.port, 8080);
	assert_string_equal(c->interface, "bastion0");
	assert_int_equal(c->dhcp_mode, DHCP_FULL);
	assert_string_equal(c->dhcp_range, "10.77.0.100,10.77.0.200,12h");
	assert_string_equal(c->dnsmasq_path, "/usr/sbin/dnsmasq");
	assert_string_equal(c->ipxe_dir, "/usr/lib/ipxe");
	assert_int_equal(c->idle_action, IDLE_EXIT);
	assert_int_equal(c->ipv6_ra, 1);
	assert_string_equal(c->control_listen.host, "127.0.0.1");
	assert_int_equal(c->control_listen.port, 8443);
	assert_int_equal(c->nnames, 2);
	assert_string_equal(c->names[0], "localhost");
	assert_string_equal(c->names[1], "127.0.0.1");
	assert_string_equal(c->install_repo, "");
	assert_int_equal(c->install_max_boots, 3);
}

static void
test_defaults(void **state)
{
	struct config *c = malloc(sizeof *c);
	struct loaded *l;

	assert_non_null(c);
	config_defaults(c);
	check_defaults(c);
	free(c);

	/* An empty file (and one of comments only) is the defaults plus
	 * the derived values. */
	l = load_ok("");
	check_defaults(&l->c);
	assert_string_equal(l->c.boot_url, "http://10.77.0.1:8080");
	assert_string_equal(l->c.discovery_dir,
	    "/var/lib/bastion/images/discovery");
	assert_string_equal(l->c.path, NAME);
	loaded_free(l);
	l = load_ok("; comment\n# comment\n\n   \n\t; indented comment\n");
	check_defaults(&l->c);
	loaded_free(l);
}

static void
test_every_key(void **state)
{
	struct loaded *l = load_ok(
	    "[bastion]\n"
	    "state_dir = /srv/bastion\n"
	    "debug = yes\n"
	    "[boot]\n"
	    "listen = 192.168.50.1:8081\n"
	    "url = http://boot.example.org:8081\n"
	    "interface = enp3s0\n"
	    "dhcp_mode = proxy\n"
	    "dhcp_range = 192.168.50.10,192.168.50.20,30m\n"
	    "dnsmasq = /opt/dnsmasq/sbin/dnsmasq\n"
	    "ipxe_dir = /opt/ipxe\n"
	    "discovery_dir = /srv/images/disc\n"
	    "idle_action = poweroff\n"
	    "ipv6_ra = no\n"
	    "[control]\n"
	    "listen = [::1]:9443\n"
	    "names = bastion.example.org, 192.168.50.1,fd77::1\n"
	    "[install]\n"
	    "repo = https://mirror.example.org/fedora/40/Everything/x86_64/os\n"
	    "max_boots = 7\n");
	const struct config *c = &l->c;

	assert_string_equal(c->state_dir, "/srv/bastion");
	assert_int_equal(c->debug, 1);
	assert_string_equal(c->boot_listen.host, "192.168.50.1");
	assert_int_equal(c->boot_listen.port, 8081);
	assert_string_equal(c->boot_url, "http://boot.example.org:8081");
	assert_string_equal(c->interface, "enp3s0");
	assert_int_equal(c->dhcp_mode, DHCP_PROXY);
	assert_string_equal(c->dhcp_range, "192.168.50.10,192.168.50.20,30m");
	assert_string_equal(c->dnsmasq_path, "/opt/dnsmasq/sbin/dnsmasq");
	assert_string_equal(c->ipxe_dir, "/opt/ipxe");
	assert_string_equal(c->discovery_dir, "/srv/images/disc");
	assert_int_equal(c->idle_action, IDLE_POWEROFF);
	assert_int_equal(c->ipv6_ra, 0);
	assert_string_equal(c->control_listen.host, "::1");
	assert_int_equal(c->control_listen.port, 9443);
	assert_int_equal(c->nnames, 3);
	assert_string_equal(c->names[0], "bastion.example.org");
	assert_string_equal(c->names[1], "192.168.50.1");
	assert_string_equal(c->names[2], "fd77::1");
	assert_string_equal(c->install_repo,
	    "https://mirror.example.org/fedora/40/Everything/x86_64/os");
	assert_int_equal(c->install_max_boots, 7);
	loaded_free(l);

	l = load_ok("[boot]\ndhcp_mode = off\n");
	assert_int_equal(l->c.dhcp_mode, DHCP_OFF);
	loaded_free(l);
	l = load_ok("[boot]\ndhcp_mode = full\nidle_action = exit\n");
	assert_int_equal(l->c.dhcp_mode, DHCP_FULL);
	assert_int_equal(l->c.idle_action, IDLE_EXIT);
	loaded_free(l);
}

static void
test_bools(void **state)
{
	static const char *const yes[] = { "yes", "YES", "true", "on", "1" };
	static const char *const no[] = { "no", "No", "false", "off", "0" };
	char text[128];
	struct loaded *l;
	size_t i;

	for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		snprintf(text, sizeof text, "[bastion]\ndebug = %s\n", yes[i]);
		l = load_ok(text);
		assert_int_equal(l->c.debug, 1);
		loaded_free(l);
	}
	for (i = 0; i < sizeof no / sizeof no[0]; i++) {
		snprintf(text, sizeof text, "[boot]\nipv6_ra = %s\n", no[i]);
		l = load_ok(text);
		assert_int_equal(l->c.ipv6_ra, 0);
		loaded_free(l);
	}
	bad_value("bastion", "debug", "maybe");
	bad_value("bastion", "debug", "2");
	bad_value("boot", "ipv6_ra", "yess");
}

static void
test_ints(void **state)
{
	good_value("install", "max_boots", "1");
	good_value("install", "max_boots", "100");
	bad_value("install", "max_boots", "0");
	bad_value("install", "max_boots", "101");
	bad_value("install", "max_boots", "-3");
	bad_value("install", "max_boots", "3x");
	bad_value("install", "max_boots", "three");
	bad_value("install", "max_boots", "99999999999999999999999");
}

/* Operators write keys indented under their section: keys, not
 * continuation lines of the previous value. */
static void
test_indented_keys(void **state)
{
	struct loaded *l = load_ok(
	    "[boot]\n"
	    "           listen = 10.77.0.1:8080        ; HTTP boot listener\n"
	    "           interface = bastion0           ; where dnsmasq serves\n"
	    "\tdhcp_mode = proxy\n"
	    "  \t dhcp_range = 10.77.0.100,10.77.0.200,12h\n"
	    "[control]\n"
	    "           listen = 127.0.0.1:8443        ; HTTPS\n"
	    "           names = bastion.lan,10.77.0.1  ; SANs of its certificate\n"
	    "  [install]\n"
	    "    repo = http://mirror/fedora/40/Everything/x86_64/os\n");

	assert_string_equal(l->c.interface, "bastion0");
	assert_int_equal(l->c.dhcp_mode, DHCP_PROXY);
	assert_string_equal(l->c.boot_listen.host, "10.77.0.1");
	assert_string_equal(l->c.dhcp_range, "10.77.0.100,10.77.0.200,12h");
	assert_int_equal(l->c.nnames, 2);
	assert_string_equal(l->c.names[0], "bastion.lan");
	assert_string_equal(l->c.names[1], "10.77.0.1");
	assert_string_equal(l->c.install_repo,
	    "http://mirror/fedora/40/Everything/x86_64/os");
	loaded_free(l);

	/* An indented line is never glued onto the previous value. */
	l = load("[boot]\ninterface = eth0\n    eth1\n");
	assert_int_equal(l->rc, -1);
	assert_int_equal(count_error_lines(errs(l)), 1);
	assert_int_equal(strncmp(errs(l), NAME ":3: ", strlen(NAME ":3: ")), 0);
	loaded_free(l);
}

/* The documented example style: the first key sits on the [section] line. It must
 * either mean what it says or be an error, never be dropped silently. */
static void
test_design_example_verbatim(void **state)
{
	struct loaded *l = load(
	    "[bastion]  state_dir = /var/lib/bastion\n"
	    "[boot]     listen = 10.77.0.1:8080        ; HTTP boot listener\n"
	    "           interface = bastion0           ; where dnsmasq serves\n"
	    "           dhcp_mode = full               ; full | proxy | off\n"
	    "           dhcp_range = 10.77.0.100,10.77.0.200,12h\n"
	    "[control]  listen = 127.0.0.1:8443        ; HTTPS\n"
	    "           names = bastion.lan,10.77.0.1  ; SANs of its certificate\n"
	    "[install]  repo = http://mirror/fedora/40/Everything/x86_64/os\n");

	if (l->rc == 0) {
		assert_int_equal(l->c.nnames, 2);
		assert_string_equal(l->c.names[0], "bastion.lan");
		if (strcmp(l->c.install_repo,
		    "http://mirror/fedora/40/Everything/x86_64/os") != 0)
			fail_msg("\"[install]  repo = ...\" was silently "
			    "ignored (install.repo = \"%s\")", l->c.install_repo);
	} else {
		/* Then it must point at the lines with text after ']'. */
		assert_non_null(strstr(errs(l), NAME ":1: "));
		assert_non_null(strstr(errs(l), NAME ":8: "));
	}
	loaded_free(l);
}

/* ---- errors: all of them, each with its line ---------------------------- */

static void
test_all_errors_reported(void **state)
{
	struct loaded *l = load(
	    "# line 1\n"
	    "[bastion]\n"
	    "state_dir = relative/path\n"		/* 3 */
	    "debug = perhaps\n"				/* 4 */
	    "\n"
	    "[boot]\n"
	    "listen = bastion.lan:8080\n"		/* 7 */
	    "dhcp_mode = sometimes\n"			/* 8 */
	    "interface = eth0\n"
	    "dhcp_range = 10.0.0.9,10.0.0.1,12h\n"	/* 10 */
	    "colour = blue\n"				/* 11 */
	    "[control]\n"
	    "listen = 127.0.0.1:0\n"			/* 13 */
	    "names = ok.example, bad_name\n"		/* 14 */
	    "[install]\n"
	    "max_boots = 1000\n"			/* 16 */
	    "repo = ftp://mirror/os\n");		/* 17 */
	static const int lines[] = { 3, 4, 7, 8, 10, 11, 13, 14, 16, 17 };
	char prefix[32];
	size_t i;

	assert_int_equal(l->rc, -1);
	assert_int_equal(count_error_lines(errs(l)),
	    (int)(sizeof lines / sizeof lines[0]));
	for (i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		snprintf(prefix, sizeof prefix, "\n" NAME ":%d: ", lines[i]);
		if (strstr(errs(l), prefix) == NULL &&
		    strncmp(errs(l), prefix + 1, strlen(prefix + 1)) != 0)
			fail_msg("no error for line %d in:\n%s", lines[i],
			    errs(l));
	}
	/* Each message names its key. */
	assert_non_null(strstr(errs(l), NAME ":3: bastion.state_dir"));
	assert_non_null(strstr(errs(l), NAME ":8: boot.dhcp_mode"));
	assert_non_null(strstr(errs(l), NAME ":11: unknown key boot.colour"));
	assert_non_null(strstr(errs(l), NAME ":14: control.names"));
	loaded_free(l);
}

/* A syntax error does not hide the other errors, nor they it. */
static void
test_syntax_error_with_others(void **state)
{
	struct loaded *l;

	load_bad_at("[boot]\nlisten = 10.0.0.1:80\njust some words\n", 3, NULL);
	l = load("[boot\ninterface = eth1\n");
	assert_int_equal(l->rc, -1);
	if (strncmp(errs(l), NAME ":1: ", strlen(NAME ":1: ")) != 0)
		fail_msg("the unterminated [section on line 1 is not the first "
		    "error: %s", errs(l));
	loaded_free(l);

	l = load("[boot]\n"
	    "dhcp_mode = bogus\n"		/* 2 */
	    "no equals sign here\n"		/* 3 */
	    "idle_action = reboot\n"		/* 4 */
	    "another line without one\n");	/* 5 */
	assert_int_equal(l->rc, -1);
	if (count_error_lines(errs(l)) != 4)
		fail_msg("expected 4 errors (lines 2, 3, 4, 5), got:\n%s",
		    errs(l));
	assert_non_null(strstr(errs(l), NAME ":2: "));
	assert_non_null(strstr(errs(l), NAME ":3: "));
	assert_non_null(strstr(errs(l), NAME ":4: "));
	assert_non_null(strstr(errs(l), NAME ":5: "));
	loaded_free(l);
}

static void
test_unknown_key_and_section(void **state)
{
	load_bad_at("[boot]\nlisten = 10.77.0.1:8080\nlsiten = 1.2.3.4:5\n", 3,
	    "unknown key boot.lsiten");
	load_bad_at("[bastion]\ndebug = no\n[nosuch]\nfoo = bar\n", 4,
	    "nosuch");
	load_bad_at("state_dir = /var/lib/bastion\n", 1, "state_dir");
	/* A key of another section is unknown here. */
	load_bad_at("[control]\ninterface = eth0\n", 2, "control.interface");
	/* Sections and keys are case-sensitive. */
	load_bad_at("[Boot]\nlisten = 10.77.0.1:8080\n", 2, NULL);
}

static void
test_listen(void **state)
{
	struct loaded *l;

	bad_value("boot", "listen", "10.77.0.1");		/* no port */
	bad_value("boot", "listen", "10.77.0.1:");
	bad_value("boot", "listen", ":8080");
	bad_value("boot", "listen", "10.77.0.1:0");
	bad_value("boot", "listen", "10.77.0.1:70000");
	bad_value("boot", "listen", "10.77.0.1:65536");
	bad_value("boot", "listen", "10.77.0.1:-1");
	bad_value("boot", "listen", "10.77.0.1:80x");
	bad_value("boot", "listen", "10.77.0.1:99999999999999999999");
	bad_value("boot", "listen", "bastion.lan:8080");	/* host name */
	bad_value("boot", "listen", "localhost:8080");
	bad_value("boot", "listen", "10.77.0.256:8080");
	bad_value("boot", "listen", "10.77.0:8080");
	bad_value("control", "listen", "::1:8443");		/* unbracketed */
	bad_value("control", "listen", "[::1]");
	bad_value("control", "listen", "[::1]8443");
	bad_value("control", "listen", "[::1:8443");
	bad_value("control", "listen", "[10.0.0.1]:8443");
	bad_value("control", "listen", "[bastion.lan]:8443");
	bad_value("control", "listen", "[::1]:0");
	bad_value("control", "listen", "");

	good_value("control", "listen", "10.77.0.1:1");
	good_value("control", "listen", "10.77.0.1:65535");
	l = load_ok("[control]\nlisten = [::1]:8443\n");
	assert_string_equal(l->c.control_listen.host, "::1");
	assert_int_equal(l->c.control_listen.port, 8443);
	loaded_free(l);
	l = load_ok("[control]\nlisten = [fd77::1]:443\n");
	assert_string_equal(l->c.control_listen.host, "fd77::1");
	loaded_free(l);
	l = load_ok("[control]\nlisten = 0.0.0.0:8443\n");
	assert_string_equal(l->c.control_listen.host, "0.0.0.0");
	loaded_free(l);

	/* Full DHCP needs an IPv4 boot address; proxy does not. */
	l = load("[boot]\nlisten = [fd77::1]:8080\n");
	assert_int_equal(l->rc, -1);
	assert_non_null(strstr(errs(l), "dhcp_mode"));
	loaded_free(l);
	l = load_ok("[boot]\nlisten = [fd77::1]:8080\ndhcp_mode = proxy\n");
	assert_string_equal(l->c.boot_listen.host, "fd77::1");
	loaded_free(l);
}

static void
test_dhcp_mode(void **state)
{
	bad_value("boot", "dhcp_mode", "bogus");
	bad_value("boot", "dhcp_mode", "fullproxy");
	bad_value("boot", "dhcp_mode", "full proxy");
	bad_value("boot", "dhcp_mode", "");
	bad_value("boot", "idle_action", "reboot");
	assert_string_equal(config_dhcp_mode_name(DHCP_FULL), "full");
	assert_string_equal(config_dhcp_mode_name(DHCP_PROXY), "proxy");
	assert_string_equal(config_dhcp_mode_name(DHCP_OFF), "off");
}

static void
test_dhcp_range(void **state)
{
	good_value("boot", "dhcp_range", "10.77.0.100,10.77.0.200");
	good_value("boot", "dhcp_range", "10.77.0.100,10.77.0.100,1h");
	good_value("boot", "dhcp_range", "10.77.0.100,10.77.0.200,3600");
	good_value("boot", "dhcp_range", "10.77.0.100,10.77.0.200,45m");
	good_value("boot", "dhcp_range", "10.77.0.100,10.77.0.200,2d");
	good_value("boot", "dhcp_range", "10.77.0.100,10.77.0.200,1w");
	good_value("boot", "dhcp_range", "10.77.0.100,10.77.0.200,infinite");

	load_bad_at("[boot]\ndhcp_range = 10.77.0.200,10.77.0.100,12h\n", 2,
	    "after its end");
	load_bad_at("[boot]\ndhcp_range = 10.77.1.0,10.77.0.255\n", 2,
	    "after its end");
	bad_value("boot", "dhcp_range", "10.77.0.100,10.77.0.200,12x");
	bad_value("boot", "dhcp_range", "10.77.0.100,10.77.0.200,h");
	bad_value("boot", "dhcp_range", "10.77.0.100,10.77.0.200,12hh");
	bad_value("boot", "dhcp_range", "10.77.0.100,10.77.0.200,-5");
	bad_value("boot", "dhcp_range", "10.77.0.100,10.77.0.200,");
	bad_value("boot", "dhcp_range", "10.77.0.100,10.77.0.200,1h,x");
	bad_value("boot", "dhcp_range", "10.77.0.100,10.77.0.200,123456789");
	bad_value("boot", "dhcp_range", "10.77.0.100");
	bad_value("boot", "dhcp_range", "10.77.0.100,");
	bad_value("boot", "dhcp_range", "10.77.0.100-10.77.0.200");
	bad_value("boot", "dhcp_range", "fd77::100,fd77::200");
	bad_value("boot", "dhcp_range", "a,b,12h");
}

static void
test_names(void **state)
{
	char text[2048];
	struct loaded *l;
	int i;

	/* 16 is the limit, 17 is too many. */
	strcpy(text, "[control]\nnames = ");
	for (i = 0; i < CONFIG_MAX_NAMES; i++)
		snprintf(text + strlen(text), sizeof text - strlen(text),
		    "%sn%d.lan", i ? "," : "", i);
	strcat(text, "\n");
	l = load_ok(text);
	assert_int_equal(l->c.nnames, CONFIG_MAX_NAMES);
	assert_string_equal(l->c.names[15], "n15.lan");
	loaded_free(l);
	text[strlen(text) - 1] = '\0';
	strcat(text, ",n16.lan\n");
	load_bad_at(text, 2, "too many");

	bad_value("control", "names", "bad_name");
	bad_value("control", "names", "ok.lan,-leading.lan");
	bad_value("control", "names", "trailing-.lan");
	bad_value("control", "names", "a..b");
	bad_value("control", "names", ".lan");
	bad_value("control", "names", "has/slash");
	bad_value("control", "names", "quo\"te");
	bad_value("control", "names",
	    "a234567890123456789012345678901234567890123456789012345678901234.lan");
	bad_value("control", "names", ",");
	bad_value("control", "names", "");
	good_value("control", "names",
	    "a23456789012345678901234567890123456789012345678901234567890123.lan");
	good_value("control", "names", "fd77::1");
	good_value("control", "names", "single");
	/* Empty entries and spaces around commas are tolerated. */
	l = load_ok("[control]\nnames = a.lan , b.lan,,c.lan\n");
	assert_int_equal(l->c.nnames, 3);
	assert_string_equal(l->c.names[2], "c.lan");
	loaded_free(l);
}

static void
test_paths(void **state)
{
	bad_value("bastion", "state_dir", "var/lib/bastion");
	bad_value("bastion", "state_dir", "./state");
	bad_value("bastion", "state_dir", "~/state");
	bad_value("boot", "dnsmasq", "dnsmasq");
	bad_value("boot", "ipxe_dir", "lib/ipxe");
	bad_value("boot", "discovery_dir", "images");
	bad_value("boot", "interface", "a-very-long-interface-name");
	bad_value("boot", "interface", "eth/0");
	bad_value("boot", "interface", "eth0,eth1");
	good_value("boot", "interface", "br-0123456789ab");	/* 15 */
	bad_value("boot", "interface", "br-0123456789abc");	/* 16 */
	/* The admin socket path has to fit in sun_path. */
	{
		struct loaded *l = load("[bastion]\nstate_dir = /aaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaa\n");

		assert_int_equal(l->rc, -1);
		assert_int_equal(count_error_lines(errs(l)), 1);
		assert_non_null(strstr(errs(l), "state_dir"));
		loaded_free(l);
	}
}

/* An empty path would put the admin socket, the CA and the database at
 * the root of the file system ("" + "/admin.sock"). Only discovery_dir
 * may be empty: it then follows state_dir. */
static void
test_empty_paths(void **state)
{
	struct loaded *l;

	load_bad_at("[bastion]\nstate_dir =\n", 2, "state_dir");
	load_bad_at("[boot]\ndnsmasq =\n", 2, "dnsmasq");
	load_bad_at("[boot]\nipxe_dir =\n", 2, "ipxe_dir");
	l = load_ok("[boot]\ndiscovery_dir =\n");
	assert_string_equal(l->c.discovery_dir,
	    "/var/lib/bastion/images/discovery");
	loaded_free(l);
}

static void
test_urls(void **state)
{
	good_value("install", "repo", "http://mirror/fedora/40/Everything/x86_64/os");
	good_value("install", "repo", "https://mirror.example.org/os");
	good_value("boot", "url", "http://10.77.0.1:8080");
	bad_value("install", "repo", "ftp://mirror/os");
	bad_value("install", "repo", "mirror/os");
	bad_value("install", "repo", "http://");
	bad_value("install", "repo", "https://");
	/* The shortest real URLs: a one-letter host name. */
	good_value("install", "repo", "http://m");
	good_value("boot", "url", "https://b");
	bad_value("install", "repo", "http://mirror/with space");
	bad_value("install", "repo", "http://mirror/\"quoted\"");
	bad_value("install", "repo", "http://mirror/<x>");
	bad_value("boot", "url", "http://mirror/a'b");
	bad_value("boot", "url", "http://mirror/a\\b");
}

static void
test_long_line(void **state)
{
	char text[1024];
	struct loaded *l;

	/* A 600-character line: an error on its own line, and the lines
	 * after it are still read (and checked). */
	strcpy(text, "[install]\nrepo = http://");
	memset(text + strlen(text), 'a', 600);
	text[24 + 600] = '\0';
	strcat(text, "\n[boot]\ndhcp_mode = bogus\ninterface = eth7\n");
	l = load(text);
	assert_int_equal(l->rc, -1);
	assert_int_equal(count_error_lines(errs(l)), 2);
	assert_non_null(strstr(errs(l), NAME ":2: "));
	assert_non_null(strstr(errs(l), "too long"));
	assert_non_null(strstr(errs(l), NAME ":4: boot.dhcp_mode"));
	loaded_free(l);

	/* Far longer than any internal buffer. */
	{
		size_t n = 100000;
		char *big = malloc(n + 64);

		assert_non_null(big);
		strcpy(big, "[boot]\n; ");
		memset(big + 9, 'x', n);
		strcpy(big + 9 + n, "\ninterface = eth8\n");
		l = load(big);
		assert_int_equal(l->rc, -1);
		assert_int_equal(count_error_lines(errs(l)), 1);
		assert_non_null(strstr(errs(l), NAME ":2: "));
		loaded_free(l);
		free(big);
	}
}

/* What the error says is the limit is the limit. */
static void
test_long_line_limit_exact(void **state)
{
	char text[1024];
	struct loaded *l;
	int limit, len;
	size_t base;
	const char *p;

	strcpy(text, "[install]\nrepo = http://");
	base = strlen(text);
	memset(text + base, 'a', 500);
	text[base + 500] = '\0';
	strcat(text, "\n");
	l = load(text);
	assert_int_equal(l->rc, -1);
	p = strstr(errs(l), "at most ");
	assert_non_null(p);
	limit = atoi(p + strlen("at most "));
	assert_true(limit > 100);
	loaded_free(l);

	/* Line 2 of exactly `limit` characters (plus its newline). */
	len = limit - (int)strlen("repo = http://");
	memset(text + base, 'a', (size_t)len);
	text[base + (size_t)len] = '\0';
	strcat(text, "\n");
	l = load(text);
	if (l->rc != 0)
		fail_msg("a line of exactly %d characters was rejected: %s",
		    limit, errs(l));
	loaded_free(l);
	/* One more is too long. */
	text[strlen(text) - 1] = 'a';
	strcat(text, "\n");
	l = load(text);
	assert_int_equal(l->rc, -1);
	loaded_free(l);
}

/* ---- derived values ----------------------------------------------------- */

static void
test_boot_url_derived(void **state)
{
	struct loaded *l;

	l = load_ok("[boot]\nlisten = 192.168.7.1:81\n");
	assert_string_equal(l->c.boot_url, "http://192.168.7.1:81");
	loaded_free(l);
	l = load_ok("[boot]\nlisten = [fd77::1]:8080\ndhcp_mode = off\n");
	assert_string_equal(l->c.boot_url, "http://[fd77::1]:8080");
	loaded_free(l);
	/* An explicit url wins, whatever listen says. */
	l = load_ok("[boot]\nurl = http://boot.lan\nlisten = 192.168.7.1:81\n");
	assert_string_equal(l->c.boot_url, "http://boot.lan");
	loaded_free(l);
	/* discovery_dir follows state_dir unless set. */
	l = load_ok("[bastion]\nstate_dir = /srv/b\n");
	assert_string_equal(l->c.discovery_dir, "/srv/b/images/discovery");
	loaded_free(l);
}

static void
test_wildcard_listen_needs_url(void **state)
{
	struct loaded *l;

	l = load("[boot]\nlisten = 0.0.0.0:8080\n");
	assert_int_equal(l->rc, -1);
	assert_int_equal(count_error_lines(errs(l)), 1);
	assert_non_null(strstr(errs(l), "boot.url"));
	loaded_free(l);
	l = load("[boot]\nlisten = [::]:8080\ndhcp_mode = proxy\n");
	assert_int_equal(l->rc, -1);
	assert_non_null(strstr(errs(l), "boot.url"));
	loaded_free(l);
	l = load_ok("[boot]\nlisten = 0.0.0.0:8080\nurl = http://10.77.0.1:8080\n");
	assert_string_equal(l->c.boot_url, "http://10.77.0.1:8080");
	loaded_free(l);
}

/* ---- config_load from a file -------------------------------------------- */

static void
test_load_file(void **state)
{
	char path[256];
	struct config *c = calloc(1, sizeof *c);
	struct buf e;

	assert_non_null(c);
	tmp_path(path, sizeof path, "load.conf");
	write_file(path, "[boot]\n  interface = eth3\n");
	buf_init(&e, 4096);
	assert_int_equal(config_load(path, c, &e), 0);
	assert_int_equal(e.len, 0);
	assert_string_equal(c->interface, "eth3");
	assert_string_equal(c->path, path);	/* tmpdir has no symlinks */

	write_file(path, "[boot]\ninterface = eth3\ndhcp_mode = x\n");
	memset(c, 0x55, sizeof *c);
	assert_int_equal(config_load(path, c, &e), -1);
	assert_non_null(e.data);
	assert_true(strncmp(e.data, path, strlen(path)) == 0);
	assert_non_null(strstr(e.data, ":3: boot.dhcp_mode"));
	/* out is written only on success */
	assert_int_equal((unsigned char)c->interface[0], 0x55);
	buf_reset(&e);

	tmp_path(path, sizeof path, "does-not-exist.conf");
	assert_int_equal(config_load(path, c, &e), -1);
	assert_non_null(strstr(e.data, "does-not-exist.conf"));
	buf_free(&e);
	free(c);
}

static void
test_errors_capped(void **state)
{
	struct buf e;
	struct config *c = malloc(sizeof *c);
	char *text = malloc(200000);
	size_t n = 0;
	int i;

	assert_non_null(c);
	assert_non_null(text);
	n += (size_t)sprintf(text, "[boot]\n");
	for (i = 0; i < 10000; i++)
		n += (size_t)sprintf(text + n, "dhcp_mode = bad%d\n", i);
	buf_init(&e, 1000);
	assert_int_equal(config_load_string(NAME, text, c, &e), -1);
	assert_true(e.len <= 1000);
	buf_free(&e);
	free(text);
	free(c);
}

/* ---- config_get --------------------------------------------------------- */

static void
get_expect(const struct config *c, const char *key, const char *want)
{
	struct buf v;

	buf_init(&v, 4096);
	if (config_get(c, key, &v) != 0)
		fail_msg("config_get(%s) failed", key);
	if (strcmp(v.data ? v.data : "", want) != 0)
		fail_msg("config_get(%s) = \"%s\", expected \"%s\"", key,
		    v.data ? v.data : "", want);
	buf_free(&v);
}

static void
test_config_get(void **state)
{
	struct loaded *l = load_ok(
	    "[bastion]\nstate_dir = /srv/b\ndebug = on\n"
	    "[boot]\nlisten = 10.1.2.3:8080\ndhcp_mode = proxy\n"
	    "idle_action = poweroff\nipv6_ra = off\n"
	    "[control]\nlisten = [fd77::1]:8443\nnames = a.lan, 10.1.2.3\n"
	    "[install]\nmax_boots = 9\nrepo = http://m/os\n");
	const struct config *c = &l->c;
	struct buf v;
	size_t i;

	get_expect(c, "bastion.state_dir", "/srv/b");		/* path */
	get_expect(c, "bastion.debug", "yes");			/* bool */
	get_expect(c, "boot.ipv6_ra", "no");
	get_expect(c, "boot.listen", "10.1.2.3:8080");		/* listen v4 */
	get_expect(c, "control.listen", "[fd77::1]:8443");	/* listen v6 */
	get_expect(c, "boot.url", "http://10.1.2.3:8080");	/* url, derived */
	get_expect(c, "install.repo", "http://m/os");
	get_expect(c, "boot.interface", "bastion0");		/* iface */
	get_expect(c, "boot.dhcp_mode", "proxy");		/* enum */
	get_expect(c, "boot.idle_action", "poweroff");
	get_expect(c, "boot.dhcp_range", "10.77.0.100,10.77.0.200,12h");
	get_expect(c, "install.max_boots", "9");		/* int */
	get_expect(c, "control.names", "a.lan,10.1.2.3");	/* names */
	get_expect(c, "boot.discovery_dir", "/srv/b/images/discovery");
	get_expect(c, "boot.dnsmasq", "/usr/sbin/dnsmasq");
	get_expect(c, "boot.ipxe_dir", "/usr/lib/ipxe");

	buf_init(&v, 4096);
	assert_int_equal(config_get(c, "boot.nosuch", &v), -1);
	assert_int_equal(config_get(c, "nosuch.listen", &v), -1);
	assert_int_equal(config_get(c, "listen", &v), -1);
	assert_int_equal(config_get(c, "", &v), -1);
	assert_int_equal(config_get(c, "boot.", &v), -1);
	assert_int_equal(config_get(c, "a-very-long-section-name-that-"
	    "overflows.listen", &v), -1);
	assert_int_equal(v.len, 0);

	/* Every key in the table can be read, and what is read can be
	 * written back into a file and reads back the same. */
	for (i = 0; config_key_at(i) != NULL; i++) {
		char key[64];

		snprintf(key, sizeof key, "%s", config_key_at(i));
		buf_reset(&v);
		if (config_get(c, key, &v) != 0)
			fail_msg("config_get(%s) failed", key);
	}
	assert_true(i >= 16);
	assert_null(config_key_at(i));
	assert_null(config_key_at((size_t)-1));
	buf_free(&v);
	loaded_free(l);
}

static void
assert_config_equal(const struct config *a, const struct config *b)
{
	int i;

	assert_string_equal(a->state_dir, b->state_dir);
	assert_int_equal(a->debug, b->debug);
	assert_string_equal(a->boot_listen.host, b->boot_listen.host);
	assert_int_equal(a->boot_listen.port, b->boot_listen.port);
	assert_string_equal(a->boot_url, b->boot_url);
	assert_string_equal(a->interface, b->interface);
	assert_int_equal(a->dhcp_mode, b->dhcp_mode);
	assert_string_equal(a->dhcp_range, b->dhcp_range);
	assert_string_equal(a->dnsmasq_path, b->dnsmasq_path);
	assert_string_equal(a->ipxe_dir, b->ipxe_dir);
	assert_string_equal(a->discovery_dir, b->discovery_dir);
	assert_int_equal(a->idle_action, b->idle_action);
	assert_int_equal(a->ipv6_ra, b->ipv6_ra);
	assert_string_equal(a->control_listen.host, b->control_listen.host);
	assert_int_equal(a->control_listen.port, b->control_listen.port);
	assert_int_equal(a->nnames, b->nnames);
	for (i = 0; i < a->nnames; i++)
		assert_string_equal(a->names[i], b->names[i]);
	assert_string_equal(a->install_repo, b->install_repo);
	assert_int_equal(a->install_max_boots, b->install_max_boots);
}

/* config_get output is valid input: write every value back and reload. */
static void
test_config_get_roundtrip(void **state)
{
	struct loaded *l = load_ok("[control]\nlisten = [::1]:8443\n"
	    "[boot]\ndhcp_mode = off\nlisten = 10.9.9.9:80\n");
	struct buf text, v;
	struct loaded *l2;
	size_t i;

	buf_init(&text, 1 << 16);
	buf_init(&v, 4096);
	for (i = 0; config_key_at(i) != NULL; i++) {
		char key[64], *dot;

		snprintf(key, sizeof key, "%s", config_key_at(i));
		buf_reset(&v);
		assert_int_equal(config_get(&l->c, key, &v), 0);
		if (v.len == 0)
			continue;	/* empty = unset */
		dot = strchr(key, '.');
		*dot = '\0';
		assert_int_equal(buf_printf(&text, "[%s]\n%s = %s\n", key,
		    dot + 1, v.data), 0);
	}
	l2 = load_ok(text.data);
	assert_config_equal(&l->c, &l2->c);
	loaded_free(l2);
	buf_free(&v);
	buf_free(&text);
	loaded_free(l);
}

/* ---- config_set_in_file ------------------------------------------------- */

#define SAMPLE \
	"# Bastion configuration\n" \
	"; written by hand\n" \
	"[bastion]\n" \
	"state_dir = /var/lib/bastion\n" \
	"\n" \
	"[boot]\n" \
	"    listen = 10.77.0.1:8080   ; HTTP boot listener\n" \
	"    # the bridge\n" \
	"    interface = bastion0\n" \
	"    dhcp_mode = full\n" \
	"\n" \
	"[control]\n" \
	"listen = 127.0.0.1:8443\n"

static void
test_set_replaces_keeping_the_rest(void **state)
{
	set_expect(SAMPLE, "boot.interface", "br0", 0,
	    "# Bastion configuration\n"
	    "; written by hand\n"
	    "[bastion]\n"
	    "state_dir = /var/lib/bastion\n"
	    "\n"
	    "[boot]\n"
	    "    listen = 10.77.0.1:8080   ; HTTP boot listener\n"
	    "    # the bridge\n"
	    "    interface = br0\n"
	    "    dhcp_mode = full\n"
	    "\n"
	    "[control]\n"
	    "listen = 127.0.0.1:8443\n");
	/* Same key name in another section: only the right one changes. */
	set_expect(SAMPLE, "control.listen", "127.0.0.1:9443", 0,
	    "# Bastion configuration\n"
	    "; written by hand\n"
	    "[bastion]\n"
	    "state_dir = /var/lib/bastion\n"
	    "\n"
	    "[boot]\n"
	    "    listen = 10.77.0.1:8080   ; HTTP boot listener\n"
	    "    # the bridge\n"
	    "    interface = bastion0\n"
	    "    dhcp_mode = full\n"
	    "\n"
	    "[control]\n"
	    "listen = 127.0.0.1:9443\n");
	/* A look-alike key (or a commented one) is not the key. */
	set_expect("[boot]\n; interface = eth9\n#interface = eth8\n"
	    "interface = eth0\n", "boot.interface", "eth1", 0,
	    "[boot]\n; interface = eth9\n#interface = eth8\n"
	    "interface = eth1\n");
}

static void
test_set_adds_key_to_section(void **state)
{
	char path[256];
	struct config *c = malloc(sizeof *c);
	struct buf e;

	set_expect_added(SAMPLE, "bastion.debug", "yes",
	    "# Bastion configuration\n"
	    "; written by hand\n"
	    "[bastion]\n"
	    "state_dir = /var/lib/bastion\n"
	    "debug = yes\n"
	    "[boot]\n"
	    "    listen = 10.77.0.1:8080   ; HTTP boot listener\n"
	    "    # the bridge\n"
	    "    interface = bastion0\n"
	    "    dhcp_mode = full\n"
	    "\n"
	    "[control]\n"
	    "listen = 127.0.0.1:8443\n");
	/* The new key really lands in its section. */
	assert_non_null(c);
	tmp_path(path, sizeof path, "set.conf");
	buf_init(&e, 4096);
	assert_int_equal(config_load(path, c, &e), 0);
	assert_int_equal(c->debug, 1);
	buf_free(&e);
	free(c);

	/* Last section of the file. */
	set_expect_added(SAMPLE, "control.names", "bastion.lan,10.77.0.1",
	    SAMPLE "names = bastion.lan,10.77.0.1\n");
}

static void
test_set_adds_section(void **state)
{
	set_expect_added(SAMPLE, "install.repo", "http://mirror/os",
	    SAMPLE "[install]\nrepo = http://mirror/os\n");
	set_expect_added("", "install.max_boots", "5",
	    "[install]\nmax_boots = 5\n");
	/* A file without a final newline is not glued to the new text. */
	set_expect_added("[boot]\ninterface = eth0", "install.max_boots", "5",
	    "[boot]\ninterface = eth0\n[install]\nmax_boots = 5\n");
}

/* The last line has no newline and the key goes into its section. */
static void
test_set_no_final_newline(void **state)
{
	set_expect_added("[boot]\ninterface = eth0", "boot.dhcp_mode", "off",
	    "[boot]\ninterface = eth0\ndhcp_mode = off\n");
}

static void
test_set_rejects_invalid(void **state)
{
	set_expect(SAMPLE, "boot.listen", "bastion.lan:8080", -1, NULL);
	set_expect(SAMPLE, "boot.dhcp_mode", "sometimes", -1, NULL);
	set_expect(SAMPLE, "install.max_boots", "0", -1, NULL);
	set_expect(SAMPLE, "bastion.state_dir", "relative", -1, NULL);
	set_expect(SAMPLE, "control.names", "bad_name", -1, NULL);
	set_expect(SAMPLE, "boot.dhcp_range", "10.0.0.9,10.0.0.1", -1, NULL);
	/* Valid alone, invalid in the file: listen 0.0.0.0 without url. */
	set_expect(SAMPLE, "boot.listen", "0.0.0.0:8080", -1, NULL);
	/* Unknown keys. */
	set_expect(SAMPLE, "boot.colour", "blue", -1, NULL);
	set_expect(SAMPLE, "nosuch.listen", "10.0.0.1:80", -1, NULL);
	set_expect(SAMPLE, "listen", "10.0.0.1:80", -1, NULL);
	/* Values that would change the file's structure. */
	set_expect(SAMPLE, "install.repo", "http://m/os\n[bastion]", -1, NULL);
	set_expect(SAMPLE, "boot.interface", "eth0\ndebug = yes", -1, NULL);
	set_expect(SAMPLE, "install.repo", "http://m/os;x", -1, NULL);
	set_expect(SAMPLE, "install.repo", "http://m/os#x", -1, NULL);
	set_expect(SAMPLE, "bastion.state_dir", "/srv/a;b", -1, NULL);
	set_expect(SAMPLE, "bastion.state_dir", "/srv/a#b", -1, NULL);
	/* A file that is already broken is not made worse. */
	set_expect("[boot]\ndhcp_mode = bogus\n", "boot.interface", "eth1", -1,
	    NULL);
}

static void
test_set_missing_file(void **state)
{
	char path[256];
	struct buf e;

	tmp_path(path, sizeof path, "absent/bastion.conf");
	buf_init(&e, 4096);
	assert_int_equal(config_set_in_file(path, "boot.interface", "eth1",
	    &e), -1);
	assert_true(e.len > 0);
	buf_free(&e);
}

static void
test_set_keeps_mode(void **state)
{
	char path[256], tmpl[300];
	struct stat st;
	struct buf e;

	tmp_path(path, sizeof path, "mode.conf");
	write_file(path, SAMPLE);
	assert_int_equal(chmod(path, 0640), 0);
	buf_init(&e, 4096);
	assert_int_equal(config_set_in_file(path, "boot.interface", "br1", &e),
	    0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	buf_free(&e);
	/* No temp file left behind. */
	snprintf(tmpl, sizeof tmpl, "ls %s | grep -q tmp", tmpdir);
	assert_int_not_equal(system(tmpl), 0);
}

/* After a successful set, loading the file gives the value that was set,
 * even when the section holds the key twice (the last one wins). */
static void
test_set_duplicate_key(void **state)
{
	char path[256];
	struct config *c = malloc(sizeof *c);
	struct buf e;

	assert_non_null(c);
	tmp_path(path, sizeof path, "dup.conf");
	write_file(path, "[boot]\ninterface = eth0\ninterface = eth1\n");
	buf_init(&e, 4096);
	if (config_set_in_file(path, "boot.interface", "eth2", &e) == 0) {
		assert_int_equal(config_load(path, c, &e), 0);
		if (strcmp(c->interface, "eth2") != 0)
			fail_msg("set boot.interface = eth2 reported success but "
			    "the file still means %s", c->interface);
	}
	buf_free(&e);
	free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_bools),
		cmocka_unit_test(test_ints),
		cmocka_unit_test(test_indented_keys),
		cmocka_unit_test(test_design_example_verbatim),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_syntax_error_with_others),
		cmocka_unit_test(test_unknown_key_and_section),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_dhcp_mode),
		cmocka_unit_test(test_dhcp_range),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_empty_paths),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_long_line_limit_exact),
		cmocka_unit_test(test_boot_url_derived),
		cmocka_unit_test(test_wildcard_listen_needs_url),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_errors_capped),
		cmocka_unit_test(test_config_get),
		cmocka_unit_test(test_config_get_roundtrip),
		cmocka_unit_test(test_set_replaces_keeping_the_rest),
		cmocka_unit_test(test_set_adds_key_to_section),
		cmocka_unit_test(test_set_adds_section),
		cmocka_unit_test(test_set_no_final_newline),
		cmocka_unit_test(test_set_rejects_invalid),
		cmocka_unit_test(test_set_missing_file),
		cmocka_unit_test(test_set_keeps_mode),
		cmocka_unit_test(test_set_duplicate_key),
	};

	return cmocka_run_group_tests_name("config", tests, setup_dir,
	    teardown_dir);
}
