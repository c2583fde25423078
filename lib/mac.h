/* mac.h — Ethernet MAC addresses: parse every common spelling, print one. */
#ifndef BASTION_MAC_H
#define BASTION_MAC_H

#include <stdint.h>

#define MAC_STRLEN 18	/* "aa:bb:cc:dd:ee:ff" + NUL */

/*
 * Accepts aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff,
 * aabbccddeeff, one-digit groups (a:b:c:d:e:f) and the PXELINUX form with
 * the ARP type prefix (01-aa-bb-cc-dd-ee-ff). Rejects mixed separators,
 * anything else, the all-zero address and group (multicast) addresses.
 * Writes out only on success. Returns 0 or -1.
 */
int	mac_parse(const char *in, uint8_t out[6]);
/* Lower-case, colon-separated. */
void	mac_format(const uint8_t mac[6], char out[MAC_STRLEN]);
/* mac_parse + mac_format in one step. */
int	mac_normalize(const char *in, char out[MAC_STRLEN]);

#endif
