/* binding.c — which address may act for a machine (binding.h). */
#define LOG_SUBSYS "boot"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "binding.h"
#include "http.h"
#include "log.h"

/* addr as 16 bytes, IPv4 as IPv4-mapped IPv6. -1 if it is not one. */
static int
addr_parse(const char *s, struct in6_addr *out)
{
	struct in_addr v4;

	if (inet_pton(AF_INET6, s, out) == 1)
		return 0;
	if (inet_pton(AF_INET, s, &v4) != 1)
		return -1;
	memset(out, 0, sizeof *out);
	out->s6_addr[10] = out->s6_addr[11] = 0xff;
	memcpy(&out->s6_addr[12], &v4, 4);
	return 0;
}

int
binding_addr_equal(const char *a, const char *b)
{
	struct in6_addr x, y;

	return addr_parse(a, &x) == 0 && addr_parse(b, &y) == 0 &&
	    memcmp(&x, &y, sizeof x) == 0;
}

enum binding
binding_check(struct db *db, enum dhcp_mode mode, const char *mac,
    const char *bound, const char *client, char *why, size_t whylen)
{
	char lease[64];

	if (mode == DHCP_FULL && db_lease_addr(db, mac, lease) == DB_OK) {
		if (binding_addr_equal(lease, client))
			return bound[0] && binding_addr_equal(bound, client) ?
			    BINDING_OK : BINDING_LEASE;
		snprintf(why, whylen, "%s has a DHCP lease for %s", mac, lease);
		return BINDING_REFUSED;
	}
	if (bound[0] == '\0')
		return BINDING_FIRST;
	if (binding_addr_equal(bound, client))
		return BINDING_OK;
	snprintf(why, whylen, "%s is bound to %s", mac, bound);
	return BINDING_REFUSED;
}

void
binding_refuse(struct request *r, const char *mac, const char *what,
    const char *why)
{
	log_warnx("req %s: %s for %s from %s refused: %s", r->id, what, mac,
	    r->client, why);
	r->audit.wanted = 1;
	AUDIT_SET(&r->audit, target, "%s", mac);
	/* Not the machine: whoever is at that address. */
	AUDIT_SET(&r->audit, actor, "%s", r->client);
	AUDIT_SET(&r->audit, result, "denied");
	AUDIT_SET(&r->audit, error, "%s from %s refused: %s", what, r->client,
	    why);
}
