/* lease.h — what dnsmasq's --dhcp-script tells us about a lease.
 * dnsmasq runs the hook as: hook add|old|del MAC IP [HOSTNAME], with
 * DNSMASQ_LEASE_EXPIRES, DNSMASQ_INTERFACE, ... in the environment. */
#ifndef BASTION_LEASE_H
#define BASTION_LEASE_H

#include <stdint.h>

#include <jansson.h>

#include "mac.h"

struct lease {
	char	action[4];		/* add, old, del */
	char	mac[MAC_STRLEN];	/* normalised */
	char	ip[46];
	char	hostname[64];		/* "" when none; RFC 1123 label chars */
	int64_t	expires;		/* unix time, 0 = unknown/infinite */
};

/* argv as dnsmasq passes it (argv[0] = action) and a getenv-like lookup.
 * Validates everything; writes out only on success. 0 or -1 with *why. */
int	lease_parse(int argc, char *const argv[],
	    const char *(*env)(const char *name), struct lease *out,
	    const char **why);
json_t	*lease_to_json(const struct lease *);
/* The reverse, for the daemon side: validates the same way. */
int	lease_from_json(const json_t *, struct lease *out, const char **why);

#endif
