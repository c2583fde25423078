/* hex.h — bytes as lowercase hexadecimal text. */
#ifndef HEX_H
#define HEX_H

#include <stddef.h>

/* out: 2 * n + 1 bytes, NUL-terminated. */
void	hex_encode(const unsigned char *in, size_t n, char *out);

#endif
