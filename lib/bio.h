/* bio.h — what an OpenSSL memory BIO holds, as a C string. */
#ifndef BASTION_BIO_H
#define BASTION_BIO_H

#include <stddef.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* A malloc'd NUL-terminated copy of the BIO's bytes (*len set when
 * len is not NULL), or NULL. */
char	*bio_string(BIO *, size_t *len);
/* A private key as PKCS#8 PEM, through OpenSSL's secure memory: the
 * caller wipes it (OPENSSL_cleanse) before freeing. */
char	*bio_key_pem(EVP_PKEY *, size_t *len);
char	*bio_cert_pem(X509 *, size_t *len);

#endif
