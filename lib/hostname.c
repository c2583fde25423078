/* hostname.c — RFC 1123 names. */
#include <string.h>

#include "hostname.h"

static int
label_char(char c, int lower_only)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	    (!lower_only && c >= 'A' && c <= 'Z');
}

/* The label at s of length n. */
static int
label_valid(const char *s, size_t n, int lower_only)
{
	size_t i;

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!label_char(s[i], lower_only))
			return 0;
	return 1;
}

int
hostname_label_valid(const char *s)
{
	size_t n = strnlen(s, 64);

	return n <= 63 && label_valid(s, n, 0);
}

int
hostname_valid(const char *s, int lower_only)
{
	size_t len = strnlen(s, 254), n;

	if (len == 0 || len > 253)
		return 0;
	for (;;) {
		n = strcspn(s, ".");
		if (!label_valid(s, n, lower_only))
			return 0;
		if (s[n] == '\0')
			return 1;
		s += n + 1;
	}
}
