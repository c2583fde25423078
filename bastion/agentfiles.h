/* agentfiles.h — the node agent the installers put on a machine: where
 * agentd (both builds) and its systemd unit are, and their SHA-256,
 * which the kickstart and the image plan carry so that the installer
 * can refuse what the (plain HTTP, hostile) provisioning network
 * changed on the way. */
#ifndef BASTION_AGENTFILES_H
#define BASTION_AGENTFILES_H

#include <stddef.h>

#include "config.h"

#define AGENTFILE_HEXLEN	65	/* SHA-256 as hex + NUL */
/* The largest file served or hashed: what `agentd install` accepts. */
#define AGENTFILE_MAX		(64LL << 20)

/* The file served as /boot/agent/{name} into path: "agentd" is
 * agentd-static beside bastion's own executable (kickstart installs:
 * any x86_64 distribution), "agentd-dynamic" the dynamically linked
 * agentd beside it (image installs: the build host's own Debian
 * release, whose libraries it was linked against, and which can load
 * libvirt and liblxc), "agentd.service" the unit in the share dir.
 * 0, or -1 when name is none of these or the path is too long. */
int	agentfile_path(const struct config *, const char *name, char *path,
	    size_t len);
/* 1 if name is one of the agent's executables. */
int	agentfile_is_binary(const char *name);
/* Its SHA-256 as lower-case hex. Cached by device, inode, size and
 * mtime (agentd-static is several MB and every kickstart names it), so
 * a replaced file is hashed again. 0, or -1 (logged) when it cannot be
 * read or is larger than AGENTFILE_MAX. Thread-safe. */
int	agentfile_sha256(const struct config *, const char *name,
	    char hex[AGENTFILE_HEXLEN]);

#endif
