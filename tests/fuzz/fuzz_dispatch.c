/* fuzz_dispatch.c — bastion/dispatch.c: the /dispatch query as iPXE (or
 * anyone) sends it. The input is split on '\n' into mac, uuid, serial,
 * arch, platform and ip (missing fields are NULL); dispatch_parse must
 * hold, and what it accepts must render, for every action, a script that
 * starts with "#!ipxe" and carries nothing but the canonical MAC. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "dispatch.h"
#include "install.h"
#include "mac.h"
#include "templates.h"

#ifndef FUZZ_SRCDIR
#define FUZZ_SRCDIR "."
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config *cfg;
static struct templates *tmpl;
static struct install inst;

/* Render the built-in template for action a; abort on a render error. */
static void
render_action(const struct machine *m, enum boot_action a)
{
	char *text = NULL, err[512];
	size_t len;

	if (install_render_boot(tmpl, cfg, m, &inst, NULL, a, "k", 1, &text,
	    &len, err, sizeof err) != 0)
		abort();
	if (len < 7 || strncmp(text, "#!ipxe\n", 7) != 0)
		abort();
	if (strchr(text, '\r') != NULL)
		abort();
	free(text);
}

static const enum boot_action actions[] = {
	BOOT_DISCOVERY, BOOT_DISCOVERY_MISSING, BOOT_IDLE, BOOT_IDLE_POWEROFF,
	BOOT_INSTALLER, BOOT_LOCAL,
};

static void
check_field(const char *f, size_t len)
{
	if (memchr(f, '\0', len) == NULL)
		abort();		/* unterminated */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *fields[6] = { NULL }, *p;
	struct boot_info bi;
	struct machine m;
	const char *why = NULL;
	char canon[MAC_STRLEN];
	enum boot_action act;
	size_t a;
	int s, n = 0;

	if (cfg == NULL) {
		struct buf e;

		buf_init(&e, 4096);
		if ((cfg = malloc(sizeof *cfg)) == NULL ||
		    config_load_string("fuzz.conf", "", cfg, &e) != 0)
			abort();
		buf_free(&e);
		snprintf(cfg->install_repo, sizeof cfg->install_repo, "%s",
		    "http://mirror/os");
		snprintf(inst.role, sizeof inst.role, "%s", "worker");
		snprintf(inst.ssh_keys, sizeof inst.ssh_keys, "%s", "[]");
		if (templates_open("/nonexistent", FUZZ_SRCDIR, &tmpl) != 0)
			abort();
	}
	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (p = copy; n < 6; n++) {
		fields[n] = p;
		if ((p = strchr(p, '\n')) == NULL) {
			n++;
			break;
		}
		*p++ = '\0';
	}

	memset(&bi, 0, sizeof bi);
	if (dispatch_parse(fields[0], fields[1], fields[2], fields[3],
	    fields[4], fields[5], &bi, &why) != 0) {
		if (why == NULL || why[0] == '\0')
			abort();
		free(copy);
		return 0;
	}
	check_field(bi.mac, sizeof bi.mac);
	check_field(bi.uuid, sizeof bi.uuid);
	check_field(bi.serial, sizeof bi.serial);
	check_field(bi.arch, sizeof bi.arch);
	check_field(bi.platform, sizeof bi.platform);
	check_field(bi.ip, sizeof bi.ip);
	if (mac_normalize(bi.mac, canon) != 0 || strcmp(canon, bi.mac) != 0)
		abort();		/* stored MAC is not canonical */
	for (p = bi.uuid; *p; p++)
		if (isupper((unsigned char)*p))
			abort();

	memset(&m, 0, sizeof m);
	memcpy(m.mac, bi.mac, sizeof m.mac);
	snprintf(m.uuid, sizeof m.uuid, "%s", bi.uuid);
	snprintf(m.serial, sizeof m.serial, "%s", bi.serial);
	snprintf(m.arch, sizeof m.arch, "%s", bi.arch);
	snprintf(m.platform, sizeof m.platform, "%s", bi.platform);
	snprintf(m.ip, sizeof m.ip, "%s", bi.ip);
	for (s = 0; s < MS_NSTATES; s++) {
		m.state = (enum machine_state)s;
		for (a = 0; a < sizeof actions / sizeof actions[0]; a++)
			render_action(&m, actions[a]);
		act = dispatch_decide(m.state, cfg->idle_action, s & 1);
		render_action(&m, act);
	}
	free(copy);
	return 0;
}
