/* test_dispatch.c — bastion/dispatch.c: the state → boot table and the
 * /dispatch query validation; and the built-in iPXE templates (ipxe/)
 * rendered for each answer through templates.c and install.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "db.h"
#include "dispatch.h"
#include "install.h"
#include "templates.h"

/* ---- dispatch_decide: the whole table, by hand ----------------------- */

struct decide_row {
	enum machine_state	state;
	enum idle_action	idle;
	int			discovery;
	enum boot_action	want;
};

static const struct decide_row table[] = {
	/* discovering: discovery image, or the "missing" notice */
	{ MS_DISCOVERING, IDLE_EXIT,     1, BOOT_DISCOVERY },
	{ MS_DISCOVERING, IDLE_EXIT,     0, BOOT_DISCOVERY_MISSING },
	{ MS_DISCOVERING, IDLE_POWEROFF, 1, BOOT_DISCOVERY },
	{ MS_DISCOVERING, IDLE_POWEROFF, 0, BOOT_DISCOVERY_MISSING },
	/* discovered: idle */
	{ MS_DISCOVERED,  IDLE_EXIT,     1, BOOT_IDLE },
	{ MS_DISCOVERED,  IDLE_EXIT,     0, BOOT_IDLE },
	{ MS_DISCOVERED,  IDLE_POWEROFF, 1, BOOT_IDLE_POWEROFF },
	{ MS_DISCOVERED,  IDLE_POWEROFF, 0, BOOT_IDLE_POWEROFF },
	/* queued, installing: installer */
	{ MS_QUEUED,      IDLE_EXIT,     1, BOOT_INSTALLER },
	{ MS_QUEUED,      IDLE_EXIT,     0, BOOT_INSTALLER },
	{ MS_QUEUED,      IDLE_POWEROFF, 1, BOOT_INSTALLER },
	{ MS_QUEUED,      IDLE_POWEROFF, 0, BOOT_INSTALLER },
	{ MS_INSTALLING,  IDLE_EXIT,     1, BOOT_INSTALLER },
	{ MS_INSTALLING,  IDLE_EXIT,     0, BOOT_INSTALLER },
	{ MS_INSTALLING,  IDLE_POWEROFF, 1, BOOT_INSTALLER },
	{ MS_INSTALLING,  IDLE_POWEROFF, 0, BOOT_INSTALLER },
	/* installed, active: local disk, never a reinstall loop */
	{ MS_INSTALLED,   IDLE_EXIT,     1, BOOT_LOCAL },
	{ MS_INSTALLED,   IDLE_EXIT,     0, BOOT_LOCAL },
	{ MS_INSTALLED,   IDLE_POWEROFF, 1, BOOT_LOCAL },
	{ MS_INSTALLED,   IDLE_POWEROFF, 0, BOOT_LOCAL },
	{ MS_ACTIVE,      IDLE_EXIT,     1, BOOT_LOCAL },
	{ MS_ACTIVE,      IDLE_EXIT,     0, BOOT_LOCAL },
	{ MS_ACTIVE,      IDLE_POWEROFF, 1, BOOT_LOCAL },
	{ MS_ACTIVE,      IDLE_POWEROFF, 0, BOOT_LOCAL },
	/* failed: idle, like discovered */
	{ MS_FAILED,      IDLE_EXIT,     1, BOOT_IDLE },
	{ MS_FAILED,      IDLE_EXIT,     0, BOOT_IDLE },
	{ MS_FAILED,      IDLE_POWEROFF, 1, BOOT_IDLE_POWEROFF },
	{ MS_FAILED,      IDLE_POWEROFF, 0, BOOT_IDLE_POWEROFF },
};

static void
test_decide_table(void **state)
{
	size_t i;
	int seen[MS_NSTATES] = { 0 };

	for (i = 0; i < sizeof table / sizeof table[0]; i++) {
		const struct decide_row *r = &table[i];
		enum boot_action got = dispatch_decide(r->state, r->idle,
		    r->discovery);

		if (got != r->want)
			fail_msg("%s / idle %d / discovery %d: got %s, want %s",
			    machine_state_name(r->state), r->idle, r->discovery,
			    dispatch_action_name(got),
			    dispatch_action_name(r->want));
		seen[r->state]++;
	}
	/* The table covers every state × idle × discovery. */
	for (i = 0; i < MS_NSTATES; i++)
		assert_int_equal(seen[i], 4);
}

static void
test_decide_unknown_state(void **state)
{
	/* Out-of-range states never install and never loop. */
	assert_int_equal(dispatch_decide(MS_NSTATES, IDLE_EXIT, 1), BOOT_IDLE);
	assert_int_equal(dispatch_decide((enum machine_state)99, IDLE_EXIT, 1),
	    BOOT_IDLE);
	/* Any non-zero discovery flag counts as present. */
	assert_int_equal(dispatch_decide(MS_DISCOVERING, IDLE_EXIT, 2),
	    BOOT_DISCOVERY);
}

static void
test_action_names(void **state)
{
	assert_string_equal(dispatch_action_name(BOOT_DISCOVERY), "discovery");
	assert_string_equal(dispatch_action_name(BOOT_DISCOVERY_MISSING),
	    "discovery-missing");
	assert_string_equal(dispatch_action_name(BOOT_IDLE), "exit");
	assert_string_equal(dispatch_action_name(BOOT_IDLE_POWEROFF), "poweroff");
	assert_string_equal(dispatch_action_name(BOOT_INSTALLER), "installer");
	assert_string_equal(dispatch_action_name(BOOT_LOCAL), "local");
	assert_string_equal(dispatch_action_name((enum boot_action)42), "?");
	assert_string_equal(dispatch_action_name((enum boot_action)-1), "?");
}

/* ---- dispatch_parse ---------------------------------------------------- */

static void
parse_ok(const char *mac, const char *uuid, const char *serial,
    const char *arch, const char *platform, const char *ip,
    struct boot_info *bi)
{
	const char *why = NULL;

	if (dispatch_parse(mac, uuid, serial, arch, platform, ip, bi,
	    &why) != 0)
		fail_msg("rejected mac=%s uuid=%s serial=%s arch=%s platform=%s "
		    "ip=%s: %s", mac, uuid, serial, arch, platform, ip, why);
}

static void
parse_bad(const char *mac, const char *uuid, const char *serial,
    const char *arch, const char *platform, const char *ip)
{
	struct boot_info bi, before;
	const char *why = NULL;

	memset(&bi, 0x77, sizeof bi);
	before = bi;
	if (dispatch_parse(mac, uuid, serial, arch, platform, ip, &bi,
	    &why) != -1)
		fail_msg("accepted mac=%s uuid=%s serial=%s arch=%s platform=%s "
		    "ip=%s", mac ? mac : "(null)", uuid ? uuid : "(null)",
		    serial ? serial : "(null)", arch ? arch : "(null)",
		    platform ? platform : "(null)", ip ? ip : "(null)");
	assert_non_null(why);
	assert_true(strlen(why) > 0);
	assert_memory_equal(&bi, &before, sizeof bi);	/* untouched */
}

#define MAC	"52:54:00:12:34:56"
#define UUID	"9b2f3c1e-6f0d-4a6c-9e1a-2b3c4d5e6f70"

static void
test_parse_realistic(void **state)
{
	struct boot_info bi;

	/* QEMU SeaBIOS through undionly.kpxe */
	parse_ok(MAC, UUID, "", "i386", "pcbios", "10.77.0.123", &bi);
	assert_string_equal(bi.mac, MAC);
	assert_string_equal(bi.uuid, UUID);
	assert_string_equal(bi.serial, "");
	assert_string_equal(bi.arch, "i386");
	assert_string_equal(bi.platform, "pcbios");
	assert_string_equal(bi.ip, "10.77.0.123");

	/* OVMF through ipxe.efi, upper-case MAC and UUID */
	parse_ok("52-54-00-AB-CD-EF", "9B2F3C1E-6F0D-4A6C-9E1A-2B3C4D5E6F70",
	    "", "x86_64", "efi", "10.77.0.124", &bi);
	assert_string_equal(bi.mac, "52:54:00:ab:cd:ef");
	assert_string_equal(bi.uuid, UUID);
	assert_string_equal(bi.arch, "x86_64");
	assert_string_equal(bi.platform, "efi");

	/* Vendor serials (decoded from ${serial:uristring}) */
	parse_ok(MAC, UUID, "VMware-56 4d 1a 2b 3c 4d 5e 6f-70 81 92 a3 b4 c5 d6 e7",
	    "x86_64", "efi", "", &bi);
	assert_string_equal(bi.serial,
	    "VMware-56 4d 1a 2b 3c 4d 5e 6f-70 81 92 a3 b4 c5 d6 e7");
	parse_ok(MAC, "", "To Be Filled By O.E.M.", "x86_64", "pcbios", "",
	    &bi);
	parse_ok(MAC, "", "CZ1234567X", "arm64", "efi", "", &bi);
	parse_ok(MAC, "", "SN:ABC_123+4#(5)[6],7", "i386", "pcbios", "", &bi);

	/* Everything but the MAC may be missing or empty. */
	parse_ok(MAC, NULL, NULL, NULL, NULL, NULL, &bi);
	assert_string_equal(bi.mac, MAC);
	assert_string_equal(bi.uuid, "");
	assert_string_equal(bi.serial, "");
	assert_string_equal(bi.arch, "");
	assert_string_equal(bi.platform, "");
	assert_string_equal(bi.ip, "");
	parse_ok(MAC, "", "", "", "", "", &bi);

	/* IPv6 addresses from ${netX/ip6} style values */
	parse_ok(MAC, "", "", "x86_64", "efi", "fd77::1234", &bi);
	assert_string_equal(bi.ip, "fd77::1234");
	/* every MAC spelling */
	parse_ok("525400123456", "", "", "", "", "", &bi);
	assert_string_equal(bi.mac, MAC);
	parse_ok("5254.0012.3456", "", "", "", "", "", &bi);
	assert_string_equal(bi.mac, MAC);
	parse_ok("01-52-54-00-12-34-56", "", "", "", "", "", &bi);
	assert_string_equal(bi.mac, MAC);
	/* limits: 36 uuid, 64 serial, 15 arch/platform */
	parse_ok(MAC, "0123456789abcdef0123456789abcdef0123", "", "", "", "",
	    &bi);
	parse_ok(MAC, "", "0123456789012345678901234567890123456789012345678901234567890123",
	    "", "", "", &bi);
	assert_int_equal(strlen(bi.serial), 64);
	parse_ok(MAC, "", "", "abcdefghijklmno", "abcdefghijklmno", "", &bi);
}

static void
test_parse_bad_mac(void **state)
{
	parse_bad(NULL, UUID, "", "x86_64", "efi", "");
	parse_bad("", UUID, "", "x86_64", "efi", "");
	parse_bad("${net0/mac}", UUID, "", "x86_64", "efi", "");
	parse_bad("01:00:5e:00:00:01", UUID, "", "x86_64", "efi", "");
	parse_bad("00:00:00:00:00:00", UUID, "", "x86_64", "efi", "");
	parse_bad("52:54:00:12:34", UUID, "", "x86_64", "efi", "");
	parse_bad("52:54:00:12:34:56:78", UUID, "", "x86_64", "efi", "");
	parse_bad("52:54:00:12:34:5g", UUID, "", "x86_64", "efi", "");
	parse_bad(" 52:54:00:12:34:56", UUID, "", "x86_64", "efi", "");
	parse_bad("../../etc/passwd", UUID, "", "x86_64", "efi", "");
}

static void
test_parse_bad_uuid(void **state)
{
	parse_bad(MAC, "9b2f3c1e-6f0d-4a6c-9e1a-2b3c4d5e6f70-", "", "", "", "");
	parse_bad(MAC, "{9b2f3c1e-6f0d-4a6c-9e1a-2b3c4d5e6f70}", "", "", "", "");
	parse_bad(MAC, "9b2f3c1e 6f0d", "", "", "", "");
	parse_bad(MAC, "../../x", "", "", "", "");
	parse_bad(MAC, "9b2f3c1e%006f0d", "", "", "", "");
	parse_bad(MAC, "9b2f3c1e\n", "", "", "", "");
	parse_bad(MAC, "9b2f3c1e'", "", "", "", "");
}

/* The error says "hex digits": letters past f are not a UUID. */
static void
test_parse_uuid_hex_only(void **state)
{
	parse_bad(MAC, "not-a-uuid-at-all", "", "", "", "");
	parse_bad(MAC, "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", "", "", "", "");
}

static void
test_parse_bad_serial(void **state)
{
	parse_bad(MAC, "", "S/N 123", "", "", "");
	parse_bad(MAC, "", "abc\"def", "", "", "");
	parse_bad(MAC, "", "abc'def", "", "", "");
	parse_bad(MAC, "", "abc\ndef", "", "", "");
	parse_bad(MAC, "", "abc\rdef", "", "", "");
	parse_bad(MAC, "", "abc\tdef", "", "", "");
	parse_bad(MAC, "", "abc;def", "", "", "");
	parse_bad(MAC, "", "abc&def", "", "", "");
	parse_bad(MAC, "", "abc$def", "", "", "");
	parse_bad(MAC, "", "abc\\def", "", "", "");
	parse_bad(MAC, "", "abc<def>", "", "", "");
	parse_bad(MAC, "", "caf\xc3\xa9", "", "", "");
	parse_bad(MAC, "", "01234567890123456789012345678901234567890123456789012345678901234",
	    "", "", "");	/* 65 */
}

static void
test_parse_bad_arch_platform(void **state)
{
	parse_bad(MAC, "", "", "x86 64", "efi", "");
	parse_bad(MAC, "", "", "x86.64", "efi", "");
	parse_bad(MAC, "", "", "abcdefghijklmnop", "efi", "");	/* 16 */
	parse_bad(MAC, "", "", "x86_64/../", "efi", "");
	parse_bad(MAC, "", "", "x86_64", "efi;", "");
	parse_bad(MAC, "", "", "x86_64", "e fi", "");
	parse_bad(MAC, "", "", "x86_64", "abcdefghijklmnop", "");
	parse_bad(MAC, "", "", "x86_64", "${platform}", "");
}

static void
test_parse_bad_ip(void **state)
{
	parse_bad(MAC, "", "", "", "", "10.77.0.300");
	parse_bad(MAC, "", "", "", "", "10.77.0");
	parse_bad(MAC, "", "", "", "", "bastion.lan");
	parse_bad(MAC, "", "", "", "", "10.77.0.1/24");
	parse_bad(MAC, "", "", "", "", " 10.77.0.1");
	parse_bad(MAC, "", "", "", "", "10.77.0.1 ");
	parse_bad(MAC, "", "", "", "", "fd77::1::2");
	parse_bad(MAC, "", "", "", "", "${netX/ip}");
}

/* ---- scripts ---------------------------------------------------------- */

struct fixture {
	struct config		 c;
	struct machine		 m;
	struct install		 in;
	struct templates	*t;
	struct buf		 out;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct buf e;

	if (f == NULL)
		return -1;
	buf_init(&e, 4096);
	if (config_load_string("test.conf", "", &f->c, &e) != 0)
		return -1;
	buf_free(&e);
	snprintf(f->m.mac, sizeof f->m.mac, "%s", "52:54:00:12:34:56");
	f->m.state = MS_DISCOVERING;
	snprintf(f->c.install_repo, sizeof f->c.install_repo, "%s",
	    "http://mirror/os");
	snprintf(f->in.hostname, sizeof f->in.hostname, "%s", "n1.lab");
	snprintf(f->in.role, sizeof f->in.role, "%s", "worker");
	snprintf(f->in.disk, sizeof f->in.disk, "%s", "vda");
	snprintf(f->in.ssh_keys, sizeof f->in.ssh_keys, "%s", "[]");
	/* No override dir: the built-in templates of this tree. */
	if (templates_open("/nonexistent", TEST_SRCDIR, &f->t) != 0)
		return -1;
	buf_init(&f->out, 1 << 16);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	buf_free(&f->out);
	templates_close(f->t);
	free(f);
	return 0;
}

/* Render the template for action a into f->out; -1 on a render error. */
static int
script(struct fixture *f, enum boot_action a)
{
	char *text = NULL, err[512];
	size_t len;
	int rc;

	buf_reset(&f->out);
	rc = install_render_boot(f->t, &f->c, &f->m, &f->in, NULL, a,
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	    1, &text, &len, err, sizeof err);
	if (rc == 0)
		assert_int_equal(buf_add(&f->out, text, len), 0);
	free(text);
	return rc;
}

/* The chain script every iPXE client gets first. */
static int
chain_script(struct fixture *f)
{
	json_t *ctx = json_pack("{s:{s:s}}", "bastion", "boot_url",
	    f->c.boot_url);
	char *text = NULL, err[512];
	size_t len;
	int rc;

	buf_reset(&f->out);
	rc = templates_render(f->t, "boot.ipxe", ctx, &text, &len, err,
	    sizeof err);
	if (rc == 0)
		assert_int_equal(buf_add(&f->out, text, len), 0);
	json_decref(ctx);
	free(text);
	return rc;
}

/* Does the script have a line whose first word is cmd? */
static int
has_command(const char *script, const char *cmd)
{
	const char *p = script;
	size_t n = strlen(cmd);

	while (p && *p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, cmd, n) == 0 && (p[n] == ' ' || p[n] == '\n' ||
		    p[n] == '\0'))
			return 1;
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	return 0;
}

/* Does cmd appear as a command anywhere, also after && or || ? */
static int
uses_command(const char *script, const char *cmd)
{
	char pat[64];

	if (has_command(script, cmd))
		return 1;
	snprintf(pat, sizeof pat, "&& %s", cmd);
	if (strstr(script, pat))
		return 1;
	snprintf(pat, sizeof pat, "|| %s", cmd);
	return strstr(script, pat) != NULL;
}

static const char *
render(struct fixture *f, enum machine_state s, enum boot_action a)
{
	f->m.state = s;
	assert_int_equal(script(f, a), 0);
	assert_non_null(f->out.data);
	if (strncmp(f->out.data, "#!ipxe\n", 7) != 0)
		fail_msg("%s script does not start with #!ipxe:\n%s",
		    dispatch_action_name(a), f->out.data);
	/* iPXE scripts: every line ends in a newline, no CR. */
	assert_int_equal(f->out.data[f->out.len - 1], '\n');
	assert_null(strchr(f->out.data, '\r'));
	return f->out.data;
}

static void
test_every_script_starts_with_ipxe(void **state)
{
	struct fixture *f = *state;
	size_t i;

	assert_int_equal(chain_script(f), 0);
	assert_int_equal(strncmp(f->out.data, "#!ipxe\n", 7), 0);
	for (i = 0; i < sizeof table / sizeof table[0]; i++)
		render(f, table[i].state, table[i].want);
}

static void
test_chain_script(void **state)
{
	struct fixture *f = *state;
	const char *s;

	assert_int_equal(chain_script(f), 0);
	s = f->out.data;
	assert_non_null(strstr(s, "chain "));
	assert_non_null(strstr(s, "http://10.77.0.1:8080/dispatch?mac=${netX/mac}"));
	assert_non_null(strstr(s, "uuid=${uuid}"));
	assert_non_null(strstr(s, "arch=${buildarch}"));
	assert_non_null(strstr(s, "platform=${platform}"));
	/* Free text must be escaped for the query string. */
	assert_non_null(strstr(s, "${serial:uristring}"));
	assert_null(strstr(s, "${serial}"));
	/* A dead server must not hang or loop the machine: it falls back. */
	assert_non_null(strstr(s, "|| goto"));
	assert_true(has_command(s, "exit"));

	/* The URL follows boot_url, IPv6 included. */
	snprintf(f->c.boot_url, sizeof f->c.boot_url, "http://[fd77::1]:8080");
	assert_int_equal(chain_script(f), 0);
	assert_non_null(strstr(f->out.data,
	    "http://[fd77::1]:8080/dispatch?mac=${netX/mac}"));
}

static void
test_discovery_script(void **state)
{
	struct fixture *f = *state;
	const char *s = render(f, MS_DISCOVERING, BOOT_DISCOVERY);

	assert_true(has_command(s, "kernel"));
	assert_non_null(strstr(s,
	    "kernel http://10.77.0.1:8080/boot/discovery/vmlinuz"));
	assert_true(has_command(s, "initrd"));
	assert_non_null(strstr(s,
	    "initrd http://10.77.0.1:8080/boot/discovery/initrd.img"));
	assert_true(has_command(s, "boot"));
	/* The discovery image learns where to report and who it is. */
	assert_non_null(strstr(s, "bastion.url=http://10.77.0.1:8080"));
	assert_non_null(strstr(s, "52:54:00:12:34:56"));
	/* It never goes near an installer. */
	assert_null(strstr(s, "inst.ks"));
	assert_null(strstr(s, "/ks/"));
}

/* Lines of the "missing" script: nothing boots or chains unless a person
 * pressed a key first, and no prompt gives up by itself. */
static void
test_discovery_missing_script(void **state)
{
	struct fixture *f = *state;
	const char *s = render(f, MS_DISCOVERING, BOOT_DISCOVERY_MISSING);
	char *copy = strdup(s), *line, *save = NULL;
	int prompted = 0;

	assert_non_null(copy);
	assert_non_null(strstr(s, "52:54:00:12:34:56"));
	assert_non_null(strstr(s, f->c.discovery_dir));
	assert_false(uses_command(s, "kernel"));
	assert_false(uses_command(s, "initrd"));
	assert_false(uses_command(s, "boot"));
	assert_false(uses_command(s, "sanboot"));
	assert_false(uses_command(s, "imgexec"));
	assert_null(strstr(s, "--timeout"));
	assert_null(strstr(s, "sleep"));
	for (line = strtok_r(copy, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		while (*line == ' ')
			line++;
		if (strncmp(line, "prompt ", 7) == 0) {
			/* On any other key it must wait again, not go on. */
			if (strstr(line, "|| goto") == NULL &&
			    strstr(line, "&& chain") == NULL)
				fail_msg("prompt that falls through: %s", line);
			prompted = 1;
		}
		if (strstr(line, "chain") && strncmp(line, "echo", 4) != 0 &&
		    strncmp(line, "prompt", 6) != 0 && !prompted)
			fail_msg("chains before any key press: %s", line);
		if (strstr(line, "exit") && strncmp(line, "echo", 4) != 0)
			fail_msg("exits (and lets the firmware go on) without "
			    "a key press: %s", line);
	}
	assert_true(prompted);
	free(copy);
}

static void
test_local_script(void **state)
{
	struct fixture *f = *state;
	const char *s;
	enum machine_state st[] = { MS_INSTALLED, MS_ACTIVE };
	size_t i;

	for (i = 0; i < 2; i++) {
		s = render(f, st[i], BOOT_LOCAL);
		assert_non_null(strstr(s, "52:54:00:12:34:56"));
		/* BIOS: the first disk; UEFI: back to the firmware. */
		assert_true(uses_command(s, "sanboot") || uses_command(s, "exit"));
		assert_false(uses_command(s, "kernel"));
		assert_false(uses_command(s, "chain"));
		assert_null(strstr(s, "inst.ks"));
	}
}

static void
test_idle_script(void **state)
{
	struct fixture *f = *state;
	const char *s;
	enum machine_state st[] = { MS_DISCOVERED, MS_FAILED };
	size_t i;

	for (i = 0; i < 2; i++) {
		s = render(f, st[i], BOOT_IDLE);
		assert_true(has_command(s, "exit"));
		assert_non_null(strstr(s, "52:54:00:12:34:56"));
		assert_non_null(strstr(s, machine_state_name(st[i])));
		assert_false(uses_command(s, "kernel"));
		assert_false(uses_command(s, "chain"));
		assert_false(uses_command(s, "boot"));
		assert_false(uses_command(s, "sanboot"));

		s = render(f, st[i], BOOT_IDLE_POWEROFF);
		assert_true(uses_command(s, "poweroff"));
		/* iPXE without poweroff support still leaves. */
		assert_true(uses_command(s, "exit"));
		assert_false(uses_command(s, "kernel"));
		assert_false(uses_command(s, "chain"));
	}
}

static void
test_installer_script(void **state)
{
	struct fixture *f = *state;
	const char *s = render(f, MS_QUEUED, BOOT_INSTALLER);

	assert_non_null(strstr(s, "52:54:00:12:34:56"));
	/* Never the discovery image for a queued machine. */
	assert_null(strstr(s, "/boot/discovery/"));
	assert_non_null(strstr(s, "kernel http://mirror/os/images/pxeboot/vmlinuz"));
	assert_non_null(strstr(s, "inst.ks=http://10.77.0.1:8080/ks/"
	    "52:54:00:12:34:56?k=0123456789abcdef"));
	/* URLs are never HTML-escaped into the script. */
	assert_null(strstr(s, "&amp;"));
}

/* A template that does not exist is an error, not an empty answer. */
static void
test_missing_template_is_an_error(void **state)
{
	struct fixture *f = *state;
	char *text = NULL, err[512];
	size_t len;

	assert_int_equal(templates_render(f->t, "nope.ipxe", NULL, &text, &len,
	    err, sizeof err), -1);
	assert_non_null(strstr(err, "no such template"));
	assert_int_equal(templates_render(f->t, "../etc.ipxe", NULL, &text, &len,
	    err, sizeof err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide_table),
		cmocka_unit_test(test_decide_unknown_state),
		cmocka_unit_test(test_action_names),
		cmocka_unit_test(test_parse_realistic),
		cmocka_unit_test(test_parse_bad_mac),
		cmocka_unit_test(test_parse_bad_uuid),
		cmocka_unit_test(test_parse_uuid_hex_only),
		cmocka_unit_test(test_parse_bad_serial),
		cmocka_unit_test(test_parse_bad_arch_platform),
		cmocka_unit_test(test_parse_bad_ip),
		cmocka_unit_test_setup_teardown(test_every_script_starts_with_ipxe,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_script, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discovery_script, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_discovery_missing_script,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_script, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_script, setup, teardown),
		cmocka_unit_test_setup_teardown(test_installer_script, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_template_is_an_error, setup,
		    teardown),
	};

	return cmocka_run_group_tests_name("dispatch", tests, NULL, NULL);
}
