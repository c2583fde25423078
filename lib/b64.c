/* b64.c — strict base64 (every character checked, padding only at the
 * end) on Nettle's coder, which the node agent links without OpenSSL. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/base64.h>

#include "b64.h"

char *
b64_encode(const void *p, size_t len)
{
	char *out;

	if (len > (SIZE_MAX / 4 - 2) * 3 || len > INT32_MAX / 2)
		return NULL;
	if ((out = malloc((len + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	base64_encode_raw(out, len, p);
	out[(len + 2) / 3 * 4] = '\0';
	return out;
}

unsigned char *
b64_decode(const char *s, size_t max, size_t *outlen)
{
	struct base64_decode_ctx ctx;
	size_t len = strlen(s), i, pad = 0, n;
	unsigned char *out;

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
	if ((out = malloc(BASE64_DECODE_LENGTH(len) + 1)) == NULL)
		return NULL;
	base64_decode_init(&ctx);
	if (base64_decode_update(&ctx, &n, out, len, s) != 1 ||
	    base64_decode_final(&ctx) != 1 || n > max) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}
