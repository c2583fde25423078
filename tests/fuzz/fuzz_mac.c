/* fuzz_mac.c — lib/mac.c: mac_parse and mac_normalize on any bytes.
 * Property: whatever is accepted is a unicast, non-zero address whose
 * normalised spelling parses back to the same six bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mac.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t m[6], back[6], canary[6];
	char s[MAC_STRLEN], norm[MAC_STRLEN];
	char *in;
	int rc;

	if ((in = malloc(size + 1)) == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';

	memset(m, 0xa5, sizeof m);
	memcpy(canary, m, sizeof m);
	rc = mac_parse(in, m);
	if (rc != 0) {
		if (rc != -1 || memcmp(m, canary, sizeof m) != 0)
			abort();	/* out written on failure */
		if (mac_normalize(in, norm) != -1)
			abort();	/* the two disagree */
		free(in);
		return 0;
	}
	if (m[0] & 1)
		abort();		/* group address accepted */
	if ((m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0)
		abort();		/* all-zero accepted */
	mac_format(m, s);
	if (strlen(s) != MAC_STRLEN - 1)
		abort();
	if (mac_parse(s, back) != 0 || memcmp(m, back, 6) != 0)
		abort();		/* canonical form does not round-trip */
	if (mac_normalize(in, norm) != 0 || strcmp(norm, s) != 0)
		abort();
	/* The canonical form is its own normal form. */
	if (mac_normalize(s, norm) != 0 || strcmp(norm, s) != 0)
		abort();
	free(in);
	return 0;
}
