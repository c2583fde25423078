/* duration.c — durations with a unit letter; see duration.h. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "duration.h"

int
duration_parse(const char *s, int64_t max_s, int64_t *out_s)
{
	char *end;
	long long n, mult = 1;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || n <= 0)
		return -1;
	switch (*end) {
	case '\0': case 's': break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	case 'w': mult = 7 * 86400; break;
	default: return -1;
	}
	if (*end && end[1] != '\0')
		return -1;
	if (n > max_s / mult)
		return -1;
	*out_s = n * mult;
	return 0;
}
