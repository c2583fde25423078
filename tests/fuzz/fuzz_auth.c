/* fuzz_auth.c — bastion/auth.c's parsers on any bytes: the allowlist
 * (auth_cidrs_parse, _match, _format), durations (lib/duration.c)
 * and user names. Properties: whatever list is accepted formats to text
 * that parses back to the same list; every network contains its own
 * address; a duration is within its bounds or refused untouched. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "auth.h"
#include "duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cidr a[AUTH_MAX_CIDRS], b[AUTH_MAX_CIDRS];
	char *in, why[200], text[8192], addr[INET6_ADDRSTRLEN];
	int64_t secs = -42;
	int n = -1, m = -1, i;

	if ((in = malloc(size + 1)) == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';

	if (auth_cidrs_parse(in, a, AUTH_MAX_CIDRS, &n, why, sizeof why) == 0) {
		if (n < 0 || n > AUTH_MAX_CIDRS)
			abort();
		auth_cidrs_format(a, n, text, sizeof text);
		if (auth_cidrs_parse(text, b, AUTH_MAX_CIDRS, &m, why,
		    sizeof why) != 0 || m != n)
			abort();	/* the canonical form does not parse */
		for (i = 0; i < n; i++) {
			if (a[i].family != b[i].family || a[i].bits != b[i].bits ||
			    memcmp(a[i].addr, b[i].addr, 16) != 0)
				abort();	/* nor round-trip */
			inet_ntop(a[i].family, a[i].addr, addr, sizeof addr);
			if (!auth_cidrs_match(&a[i], 1, addr))
				abort();	/* a network without its address */
		}
	} else if (strlen(why) == 0)
		abort();		/* a refusal says why */
	(void)auth_cidrs_match(a, n > 0 ? n : 0, in);

	if (duration_parse(in, 366LL * 86400, &secs) == 0) {
		if (secs < 1 || secs > 366LL * 86400)
			abort();
	} else if (secs != -42)
		abort();		/* written on failure */
	(void)auth_name_valid(in);
	(void)auth_password_problem(in);
	free(in);
	return 0;
}
