/* bio.c — PEM and DER written to memory BIOs come out as strings. */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "bio.h"

char *
bio_string(BIO *bio, size_t *len)
{
	char *data, *s;
	long n = BIO_get_mem_data(bio, &data);

	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	if (len)
		*len = (size_t)n;
	return s;
}

char *
bio_key_pem(EVP_PKEY *k, size_t *len)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *s = NULL;

	if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
		s = bio_string(b, len);
	BIO_free(b);
	return s;
}

char *
bio_cert_pem(X509 *x, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (b && PEM_write_bio_X509(b, x))
		s = bio_string(b, len);
	BIO_free(b);
	return s;
}
