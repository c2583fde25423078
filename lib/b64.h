/* b64.h — standard base64 (RFC 4648, with padding) over Nettle. */
#ifndef BASTION_B64_H
#define BASTION_B64_H

#include <stddef.h>

/* A malloc'd NUL-terminated encoding of len bytes, or NULL. */
char	*b64_encode(const void *, size_t len);
/* Decode s (no white space) into a malloc'd buffer of *outlen bytes
 * (NUL-terminated for convenience); NULL if s is not base64 or
 * decodes to more than max bytes. */
unsigned char *b64_decode(const char *s, size_t max, size_t *outlen);

#endif
