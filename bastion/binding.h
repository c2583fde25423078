/* binding.h — which address may act for a machine on the boot listener.
 *
 * The boot listener is open and plain HTTP: a MAC in a URL or in a report
 * proves nothing. What bastion can see is the address a MAC used, and a
 * machine's discovery report, kickstart, join token and install progress
 * are bound to it:
 *   - dhcp_mode = full: the address bastion's own DHCP server leased to
 *     the MAC (dnsmasq's lease hook fills the leases table). The lease is
 *     authoritative and is followed when it moves.
 *   - proxy and off, and full before any lease of the MAC is known: the
 *     address of the first request that was accepted (trust on first
 *     use) — the dispatch that sent a discovering machine the discovery
 *     image, the first installer boot of an install.
 * docs/operator-guide.md says what each mode guarantees. */
#ifndef BASTION_BINDING_H
#define BASTION_BINDING_H

#include <stddef.h>

#include "config.h"
#include "db.h"

enum binding {
	BINDING_REFUSED,	/* another address: refuse */
	BINDING_OK,		/* the address it is bound to */
	BINDING_FIRST,		/* bound nowhere yet: this address binds */
	BINDING_LEASE,		/* the MAC's lease is here: (re)bind here */
};

/* May client act for mac, bound to `bound` ("" = nowhere yet)? On
 * BINDING_REFUSED why says what it is bound to. Never fails: a lease
 * that cannot be read counts as none. */
enum binding binding_check(struct db *, enum dhcp_mode, const char *mac,
	    const char *bound, const char *client, char *why, size_t whylen);
/* Whether two numeric addresses are the same (IPv4-mapped IPv6 equals
 * its IPv4 address); 0 when either does not parse. */
int	binding_addr_equal(const char *, const char *);

struct request;
/* A request for mac from an address it is not bound to: what it asked
 * for (`what`) and why it is refused go to the log and to the request's
 * audit row (result denied, actor the address). The caller answers. */
void	binding_refuse(struct request *, const char *mac, const char *what,
	    const char *why);

#endif
