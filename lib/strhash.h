/* strhash.h — FNV-1a of a string, 32 bits: table slots keyed by agent
 * id, and the DHCP leader's lock number (which must stay the same across
 * bastions and releases). */
#ifndef STRHASH_H
#define STRHASH_H

#include <stdint.h>

static inline uint32_t
str_fnv1a(const char *s)
{
	uint32_t h = 2166136261U;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619U;
	return h;
}

#endif
