/* secret.c — random tokens and hashing with OpenSSL. */
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "secret.h"
#include "hex.h"

int
secret_random_hex(char out[SECRET_HEXLEN])
{
	unsigned char r[32];

	if (RAND_bytes(r, sizeof r) != 1)
		return -1;
	hex_encode(r, sizeof r, out);
	OPENSSL_cleanse(r, sizeof r);
	return 0;
}

/* SHA-256 fetched from the provider once: given EVP_sha256(), OpenSSL 3
 * fetches it again on every digest (a name lookup, a property query, the
 * method store under its lock), and agentd's reporters hash every
 * container's list line every 2 s. Kept for the process's life. */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void
secret_sha256_hex(const char *s, size_t len, char out[SECRET_HEXLEN])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	pthread_once(&sha256_once, sha256_fetch);
	EVP_Digest(s, len, md, &mdlen, sha256 ? sha256 : EVP_sha256(), NULL);
	hex_encode(md, 32, out);
}

int
secret_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la != lb)
		return 0;
	return CRYPTO_memcmp(a, b, la) == 0;
}
