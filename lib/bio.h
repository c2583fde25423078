/* bio.h — what an OpenSSL memory BIO holds, as a C string. */
#ifndef BASTION_BIO_H
#define BASTION_BIO_H

#include <stddef.h>

#include <openssl/bio.h>

/* A malloc'd NUL-terminated copy of the BIO's bytes (*len set when
 * len is not NULL), or NULL. */
char	*bio_string(BIO *, size_t *len);

#endif
