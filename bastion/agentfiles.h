/* agentfiles.h — the node agent the kickstart's %post installs: where
 * agentd-static and its systemd unit are, and their SHA-256, which the
 * kickstart carries so that %post can refuse what the (plain HTTP,
 * hostile) provisioning network changed on the way. */
#ifndef BASTION_AGENTFILES_H
#define BASTION_AGENTFILES_H

#include <stddef.h>

#include "config.h"

#define AGENTFILE_HEXLEN	65	/* SHA-256 as hex + NUL */

/* The file served as /boot/agent/{name} ("agentd": agentd-static beside
 * bastion's own executable; "agentd.service": the unit in the share
 * dir) into path. 0, or -1 when name is neither or the path is too
 * long. */
int	agentfile_path(const struct config *, const char *name, char *path,
	    size_t len);
/* Its SHA-256 as lower-case hex. Cached by device, inode, size and
 * mtime (agentd-static is several MB and every kickstart names it), so
 * a replaced file is hashed again. 0, or -1 (logged) when it cannot be
 * read. Thread-safe. */
int	agentfile_sha256(const struct config *, const char *name,
	    char hex[AGENTFILE_HEXLEN]);

#endif
