/* dispatch.h — what a network-booting machine gets, decided from its
 * state alone, never from guesses. The iPXE scripts that say it are templates
 * (ipxe/NAME.ipxe.mustache, rendered by install_render_boot). */
#ifndef BASTION_DISPATCH_H
#define BASTION_DISPATCH_H

#include "buf.h"
#include "config.h"
#include "db.h"
#include "machine.h"

enum boot_action {
	BOOT_DISCOVERY,		/* RAM-only discovery kernel + initrd */
	BOOT_DISCOVERY_MISSING,	/* would be discovery, but no image installed */
	BOOT_IDLE,		/* discovered/failed: next boot device */
	BOOT_IDLE_POWEROFF,	/* same, when idle_action = poweroff */
	BOOT_INSTALLER,		/* queued/installing */
	BOOT_LOCAL,		/* installed/active: boot the local disk */
};

enum boot_action dispatch_decide(enum machine_state, enum idle_action,
	    int discovery_present);
const char *dispatch_action_name(enum boot_action);

/* Validate /dispatch query values into bi (written only on success).
 * mac is required; the rest may be NULL or empty. 0 or -1 with *why. */
int	dispatch_parse(const char *mac, const char *uuid, const char *serial,
	    const char *arch, const char *platform, const char *ip,
	    struct boot_info *bi, const char **why);

#endif
