/* dispatch.c — boot decisions and iPXE scripts. */
#define LOG_SUBSYS "dispatch"
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

#include "dispatch.h"
#include "mac.h"

enum boot_action
dispatch_decide(enum machine_state s, enum idle_action idle,
    int discovery_present)
{
	switch (s) {
	case MS_DISCOVERING:
		return discovery_present ? BOOT_DISCOVERY : BOOT_DISCOVERY_MISSING;
	case MS_DISCOVERED:
	case MS_FAILED:
		return idle == IDLE_POWEROFF ? BOOT_IDLE_POWEROFF : BOOT_IDLE;
	case MS_QUEUED:
	case MS_INSTALLING:
		return BOOT_INSTALLER;
	case MS_INSTALLED:
	case MS_ACTIVE:
		return BOOT_LOCAL;
	case MS_NSTATES:
		break;
	}
	/* Unknown state: never install, never loop. */
	return BOOT_IDLE;
}

const char *
dispatch_action_name(enum boot_action a)
{
	static const char *const names[] = { "discovery", "discovery-missing",
	    "exit", "poweroff", "installer", "local" };

	return (unsigned)a < sizeof names / sizeof names[0] ? names[a] : "?";
}

/* Characters allowed in a value: a set, and a length. */
static int
valid_chars(const char *s, size_t max, const char *extra)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		if (i >= max)
			return 0;
		if (!isalnum((unsigned char)s[i]) && !strchr(extra, s[i]))
			return 0;
	}
	return 1;
}

static void
copy_opt(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

int
dispatch_parse(const char *mac, const char *uuid, const char *serial,
    const char *arch, const char *platform, const char *ip,
    struct boot_info *bi, const char **why)
{
	struct boot_info b;
	unsigned char tmp[16];

	memset(&b, 0, sizeof b);
	if (mac == NULL || *mac == '\0') {
		*why = "mac is required";
		return -1;
	}
	if (mac_normalize(mac, b.mac) == -1) {
		*why = "mac is not a valid unicast MAC address";
		return -1;
	}
	if (uuid && (!valid_chars(uuid, 36, "-") ||
	    strspn(uuid, "0123456789abcdefABCDEF-") != strlen(uuid))) {
		*why = "uuid must be at most 36 hex digits and dashes";
		return -1;
	}
	/* Firmware serials are free text: printable, no quotes or slashes. */
	if (serial && !valid_chars(serial, 64, " -_.:+#()[],")) {
		*why = "serial has characters outside [A-Za-z0-9 -_.:+#()[],] "
		    "or is over 64";
		return -1;
	}
	if (arch && !valid_chars(arch, 15, "_-")) {
		*why = "arch must be 1-15 of [A-Za-z0-9_-]";
		return -1;
	}
	if (platform && !valid_chars(platform, 15, "_-")) {
		*why = "platform must be 1-15 of [A-Za-z0-9_-]";
		return -1;
	}
	if (ip && *ip && inet_pton(AF_INET, ip, tmp) != 1 &&
	    inet_pton(AF_INET6, ip, tmp) != 1) {
		*why = "ip is not an IP address";
		return -1;
	}
	copy_opt(b.uuid, sizeof b.uuid, uuid);
	for (char *p = b.uuid; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	copy_opt(b.serial, sizeof b.serial, serial);
	copy_opt(b.arch, sizeof b.arch, arch);
	copy_opt(b.platform, sizeof b.platform, platform);
	copy_opt(b.ip, sizeof b.ip, ip);
	*bi = b;
	return 0;
}
