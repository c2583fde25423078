/* mac.c — MAC address parsing and formatting. */
#include <stdio.h>
#include <string.h>

#include "mac.h"

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Groups of 1-2 hex digits separated by sep: "a:bb:c..." */
static int
parse_groups(const char *s, char sep, uint8_t *out, int ngroups)
{
	int g, v, d;

	for (g = 0; g < ngroups; g++) {
		if ((v = hexval(*s)) == -1)
			return -1;
		s++;
		if ((d = hexval(*s)) != -1) {
			v = v * 16 + d;
			s++;
		}
		out[g] = (uint8_t)v;
		if (g < ngroups - 1) {
			if (*s != sep)
				return -1;
			s++;
		}
	}
	return *s == '\0' ? 0 : -1;
}

/* Exactly n hex digits (n even) into n/2 bytes. */
static int
parse_hex(const char *s, size_t n, uint8_t *out)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i += 2) {
		if ((hi = hexval(s[i])) == -1 || (lo = hexval(s[i + 1])) == -1)
			return -1;
		out[i / 2] = (uint8_t)(hi * 16 + lo);
	}
	return 0;
}

int
mac_parse(const char *in, uint8_t out[6])
{
	uint8_t m[7];
	size_t len;
	int i, zero = 1;

	if (in == NULL)
		return -1;
	len = strnlen(in, 32);
	if (len == 12 && strpbrk(in, ":-.") == NULL) {
		if (parse_hex(in, 12, m) == -1)
			return -1;
	} else if (len == 14 && in[4] == '.' && in[9] == '.') {
		if (parse_hex(in, 4, m) == -1 || parse_hex(in + 5, 4, m + 2) == -1 ||
		    parse_hex(in + 10, 4, m + 4) == -1)
			return -1;
	} else if (len == 20 && in[0] == '0' && in[1] == '1' &&
	    (in[2] == '-' || in[2] == ':')) {
		/* PXELINUX "01-" prefix: ARP hardware type 1, Ethernet. */
		if (parse_groups(in + 3, in[2], m, 6) == -1)
			return -1;
	} else if (len >= 11 && len <= 17) {
		char sep = strchr(in, ':') ? ':' : '-';

		if (parse_groups(in, sep, m, 6) == -1)
			return -1;
	} else {
		return -1;
	}
	for (i = 0; i < 6; i++)
		if (m[i])
			zero = 0;
	if (zero || (m[0] & 1))
		return -1;
	memcpy(out, m, 6);
	return 0;
}

void
mac_format(const uint8_t mac[6], char out[MAC_STRLEN])
{
	snprintf(out, MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x",
	    mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

int
mac_normalize(const char *in, char out[MAC_STRLEN])
{
	uint8_t m[6];

	if (mac_parse(in, m) == -1)
		return -1;
	mac_format(m, out);
	return 0;
}
