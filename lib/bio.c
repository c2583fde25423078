/* bio.c — PEM and DER written to memory BIOs come out as strings. */
#include <stdlib.h>
#include <string.h>

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
