/* lease.c — what dnsmasq's --dhcp-script hook reports, checked on both
 * sides: bastionctl lease-hook parses argv/env with lease_parse() and POSTs
 * lease_to_json(); the daemon takes it back with lease_from_json(). Every
 * field is validated the same way on both sides, so the daemon never trusts
 * what arrives on its admin socket more than what dnsmasq handed over. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hostname.h"
#include "lease.h"

/* 9999-12-31T23:59:59Z: anything later is garbage, not a lease. */
#define LEASE_EXPIRES_MAX	253402300799LL

static int
lease_action_ok(const char *a)
{
	return strcmp(a, "add") == 0 || strcmp(a, "old") == 0 ||
	    strcmp(a, "del") == 0;
}

/* Why an action that is not add/old/del was refused. dnsmasq also runs
 * the script for these; they are not leases. */
static const char *
lease_action_why(const char *a)
{
	if (strcmp(a, "tftp") == 0)
		return "tftp: a TFTP transfer event, not a lease";
	if (strcmp(a, "init") == 0)
		return "init: only used with --leasefile-ro, not a lease";
	if (strcmp(a, "arp-add") == 0 || strcmp(a, "arp-del") == 0 ||
	    strcmp(a, "arp") == 0 || strcmp(a, "arp-old") == 0)
		return "arp: a neighbour table event, not a lease";
	if (strcmp(a, "relay-snoop") == 0)
		return "relay-snoop: a DHCPv6 relay event, not a lease";
	return "unknown action (expected add, old or del)";
}

/* IPv4 or IPv6 text, written back in canonical form. */
static int
lease_ip_normalize(const char *in, char out[46])
{
	unsigned char a[16];

	if (strnlen(in, 46) >= 46)
		return -1;
	if (inet_pton(AF_INET, in, a) == 1)
		return inet_ntop(AF_INET, a, out, 46) ? 0 : -1;
	if (inet_pton(AF_INET6, in, a) == 1)
		return inet_ntop(AF_INET6, a, out, 46) ? 0 : -1;
	return -1;
}

/* Decimal digits only, 0 .. LEASE_EXPIRES_MAX. */
static int
lease_expires_parse(const char *s, int64_t *out)
{
	long long v;
	char *end;

	if (s[0] < '0' || s[0] > '9' || strlen(s) > 19)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end != '\0' || v < 0 || v > LEASE_EXPIRES_MAX)
		return -1;
	*out = v;
	return 0;
}

int
lease_parse(int argc, char *const argv[], const char *(*env)(const char *),
    struct lease *out, const char **why)
{
	struct lease l;
	const char *e;

	memset(&l, 0, sizeof l);
	if (argc < 1 || argv == NULL || argv[0] == NULL) {
		*why = "no action";
		return -1;
	}
	if (!lease_action_ok(argv[0])) {
		*why = lease_action_why(argv[0]);
		return -1;
	}
	if (argc < 3) {
		*why = "too few arguments (expected ACTION MAC IP [HOSTNAME])";
		return -1;
	}
	if (argc > 4) {
		*why = "too many arguments (expected ACTION MAC IP [HOSTNAME])";
		return -1;
	}
	strcpy(l.action, argv[0]);
	if (argv[1] == NULL || mac_normalize(argv[1], l.mac) == -1) {
		*why = "not an Ethernet MAC address";
		return -1;
	}
	if (argv[2] == NULL || lease_ip_normalize(argv[2], l.ip) == -1) {
		*why = "not an IP address";
		return -1;
	}
	if (argc == 4 && argv[3] != NULL && argv[3][0] != '\0') {
		if (!hostname_label_valid(argv[3])) {
			*why = "hostname is not an RFC 1123 label "
			    "(1-63 letters, digits, hyphens)";
			return -1;
		}
		strcpy(l.hostname, argv[3]);
	}
	if (env != NULL && (e = env("DNSMASQ_LEASE_EXPIRES")) != NULL &&
	    e[0] != '\0' && lease_expires_parse(e, &l.expires) == -1) {
		*why = "DNSMASQ_LEASE_EXPIRES is not a unix time";
		return -1;
	}
	*out = l;
	return 0;
}

json_t *
lease_to_json(const struct lease *l)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:I}",
	    "action", l->action,
	    "mac", l->mac,
	    "ip", l->ip,
	    "hostname", l->hostname[0] ? json_string(l->hostname) : json_null(),
	    "expires", (json_int_t)l->expires);
}

/* A JSON string without embedded NULs, or NULL. */
static const char *
lease_json_str(const json_t *v)
{
	const char *s;

	if (!json_is_string(v))
		return NULL;
	s = json_string_value(v);
	return json_string_length(v) == strlen(s) ? s : NULL;
}

int
lease_from_json(const json_t *j, struct lease *out, const char **why)
{
	struct lease l;
	const json_t *v;
	const char *s;
	json_int_t n;

	memset(&l, 0, sizeof l);
	if (!json_is_object(j)) {
		*why = "lease must be a JSON object";
		return -1;
	}
	s = lease_json_str(json_object_get(j, "action"));
	if (s == NULL || !lease_action_ok(s)) {
		*why = "action must be \"add\", \"old\" or \"del\"";
		return -1;
	}
	strcpy(l.action, s);
	s = lease_json_str(json_object_get(j, "mac"));
	if (s == NULL || mac_normalize(s, l.mac) == -1) {
		*why = "mac must be an Ethernet MAC address";
		return -1;
	}
	s = lease_json_str(json_object_get(j, "ip"));
	if (s == NULL || lease_ip_normalize(s, l.ip) == -1) {
		*why = "ip must be an IP address";
		return -1;
	}
	v = json_object_get(j, "hostname");
	if (v != NULL && !json_is_null(v)) {
		if ((s = lease_json_str(v)) == NULL) {
			*why = "hostname must be a string or null";
			return -1;
		}
		if (s[0] != '\0') {
			if (!hostname_label_valid(s)) {
				*why = "hostname is not an RFC 1123 label "
				    "(1-63 letters, digits, hyphens)";
				return -1;
			}
			strcpy(l.hostname, s);
		}
	}
	v = json_object_get(j, "expires");
	if (v != NULL) {
		if (!json_is_integer(v)) {
			*why = "expires must be an integer (unix time, 0 = "
			    "unknown)";
			return -1;
		}
		n = json_integer_value(v);
		if (n < 0 || n > LEASE_EXPIRES_MAX) {
			*why = "expires is out of range";
			return -1;
		}
		l.expires = (int64_t)n;
	}
	*out = l;
	return 0;
}
