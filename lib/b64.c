/* b64.c — base64 with EVP_EncodeBlock/EVP_DecodeBlock and the padding
 * arithmetic they leave to the caller. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "b64.h"

char *
b64_encode(const void *p, size_t len)
{
	char *out;

	if (len > (SIZE_MAX / 4 - 2) * 3 || len > INT32_MAX / 2)
		return NULL;
	if ((out = malloc((len + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return out;
}

unsigned char *
b64_decode(const char *s, size_t max, size_t *outlen)
{
	size_t len = strlen(s), i, pad = 0;
	unsigned char *out;
	int n;

	if (len % 4 != 0 || len / 4 * 3 > max + 2 || len > INT32_MAX / 2)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '=') {
			if (i < len - 2)
				return NULL;
			pad++;
			continue;
		}
		if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return NULL;
	}
	if ((out = malloc(len / 4 * 3 + 1)) == NULL)
		return NULL;
	if ((n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len)) < 0) {
		free(out);
		return NULL;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	n -= (int)pad;
	if ((size_t)n > max) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	*outlen = (size_t)n;
	return out;
}
