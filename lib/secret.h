/* secret.h — random tokens, SHA-256 digests and constant-time comparison. */
#ifndef BASTION_SECRET_H
#define BASTION_SECRET_H

#include <stddef.h>

#define SECRET_HEXLEN 65	/* 32 bytes as hex + NUL */

/* 32 random bytes as 64 lower-case hex characters. 0 or -1. */
int	secret_random_hex(char out[SECRET_HEXLEN]);
/* SHA-256 of s as hex: what is stored instead of a secret. */
void	secret_sha256_hex(const char *s, size_t len, char out[SECRET_HEXLEN]);
/* Constant-time equality of two NUL-terminated strings. */
int	secret_equal(const char *a, const char *b);

#endif
