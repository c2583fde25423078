/* seal.c — sealed boxes (seal.h): X25519 ECDH with an ephemeral sender
 * key, HKDF-SHA256 over the shared secret into an AES-256-GCM key and
 * nonce. Each box has a key of its own (a fresh ephemeral key), so the
 * derived nonce is never used twice with one key. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "seal.h"

#define SEAL_LABEL	"bastion seal v1"
#define LABEL_LEN	(sizeof SEAL_LABEL - 1)
#define AES_KEY_LEN	32
#define IV_LEN		12
/* The KDF's info and the cipher's associated data: the label, the
 * sender's ephemeral public key, the recipient's public key. */
#define CONTEXT_LEN	(LABEL_LEN + 2 * SEAL_KEY_LEN)

_Static_assert(SEAL_MAX <= INT_MAX - SEAL_OVERHEAD,
    "a message's length must fit the cipher's int");

void
seal_wipe(void *p, size_t len)
{
	if (p) {
		OPENSSL_cleanse(p, len);
		free(p);
	}
}

int
seal_keypair(EVP_PKEY **priv, unsigned char pub[SEAL_KEY_LEN])
{
	EVP_PKEY *k;
	size_t len = SEAL_KEY_LEN;

	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519")) == NULL)
		goto err;
	if (EVP_PKEY_get_raw_public_key(k, pub, &len) != 1 ||
	    len != SEAL_KEY_LEN) {
		EVP_PKEY_free(k);
		goto err;
	}
	*priv = k;
	return 0;
err:
	ERR_clear_error();
	return -1;
}

static void
context(const unsigned char epk[SEAL_KEY_LEN],
    const unsigned char rpk[SEAL_KEY_LEN], unsigned char out[CONTEXT_LEN])
{
	memcpy(out, SEAL_LABEL, LABEL_LEN);
	memcpy(out + LABEL_LEN, epk, SEAL_KEY_LEN);
	memcpy(out + LABEL_LEN + SEAL_KEY_LEN, rpk, SEAL_KEY_LEN);
}

/* ECDH of mine with the raw public key peer, then HKDF-SHA256 (info:
 * ctx) into the cipher's key and nonce. An all-zero shared secret (peer
 * of small order) is refused. */
static int
derive(EVP_PKEY *mine, const unsigned char peer[SEAL_KEY_LEN],
    const unsigned char ctx[CONTEXT_LEN], unsigned char key[AES_KEY_LEN],
    unsigned char iv[IV_LEN])
{
	static const unsigned char zero[SEAL_KEY_LEN];
	unsigned char shared[SEAL_KEY_LEN], okm[AES_KEY_LEN + IV_LEN];
	size_t slen = sizeof shared;
	EVP_PKEY *p = NULL;
	EVP_PKEY_CTX *dc = NULL;
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kc = NULL;
	OSSL_PARAM params[4];
	int rc = -1;

	if ((p = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer,
	    SEAL_KEY_LEN)) == NULL ||
	    (dc = EVP_PKEY_CTX_new(mine, NULL)) == NULL ||
	    EVP_PKEY_derive_init(dc) != 1 ||
	    EVP_PKEY_derive_set_peer(dc, p) != 1 ||
	    EVP_PKEY_derive(dc, shared, &slen) != 1 || slen != sizeof shared ||
	    CRYPTO_memcmp(shared, zero, sizeof shared) == 0)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
	    shared, sizeof shared);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
	    (void *)ctx, CONTEXT_LEN);
	params[3] = OSSL_PARAM_construct_end();
	if ((kdf = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL ||
	    (kc = EVP_KDF_CTX_new(kdf)) == NULL ||
	    EVP_KDF_derive(kc, okm, sizeof okm, params) != 1)
		goto out;
	memcpy(key, okm, AES_KEY_LEN);
	memcpy(iv, okm + AES_KEY_LEN, IV_LEN);
	rc = 0;
out:
	OPENSSL_cleanse(shared, sizeof shared);
	OPENSSL_cleanse(okm, sizeof okm);
	EVP_KDF_CTX_free(kc);
	EVP_KDF_free(kdf);
	EVP_PKEY_CTX_free(dc);
	EVP_PKEY_free(p);
	ERR_clear_error();
	return rc;
}

int
seal_to(const unsigned char pub[SEAL_KEY_LEN], const void *msg, size_t len,
    unsigned char **box, size_t *boxlen)
{
	unsigned char key[AES_KEY_LEN], iv[IV_LEN], ctx[CONTEXT_LEN];
	unsigned char epk[SEAL_KEY_LEN], *out = NULL;
	EVP_PKEY *eph = NULL;
	EVP_CIPHER_CTX *c = NULL;
	int n, rc = -1;

	if (len > SEAL_MAX)
		return -1;
	if (seal_keypair(&eph, epk) == -1)
		return -1;
	context(epk, pub, ctx);
	if (derive(eph, pub, ctx, key, iv) == -1)
		goto err_derive;
	if ((out = malloc(len + SEAL_OVERHEAD)) == NULL)
		goto err_alloc;
	memcpy(out, epk, SEAL_KEY_LEN);
	if ((c = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex2(c, EVP_aes_256_gcm(), key, iv, NULL) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &n, ctx, sizeof ctx) != 1 ||
	    EVP_EncryptUpdate(c, out + SEAL_KEY_LEN, &n, msg, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(c, out + SEAL_KEY_LEN + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, SEAL_TAG_LEN,
	    out + SEAL_KEY_LEN + len) != 1)
		goto err_cipher;
	*box = out;
	*boxlen = len + SEAL_OVERHEAD;
	out = NULL;
	rc = 0;
err_cipher:
	EVP_CIPHER_CTX_free(c);
	free(out);
err_alloc:
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(iv, sizeof iv);
err_derive:
	EVP_PKEY_free(eph);
	ERR_clear_error();
	return rc;
}

int
seal_open(EVP_PKEY *priv, const unsigned char *box, size_t len,
    unsigned char **msg, size_t *msglen)
{
	unsigned char key[AES_KEY_LEN], iv[IV_LEN], ctx[CONTEXT_LEN];
	unsigned char rpk[SEAL_KEY_LEN], tag[SEAL_TAG_LEN], *out = NULL;
	size_t rlen = sizeof rpk, mlen;
	EVP_CIPHER_CTX *c = NULL;
	int n, rc = -1;

	if (len < SEAL_OVERHEAD || len - SEAL_OVERHEAD > SEAL_MAX ||
	    EVP_PKEY_get_id(priv) != EVP_PKEY_X25519 ||
	    EVP_PKEY_get_raw_public_key(priv, rpk, &rlen) != 1 ||
	    rlen != sizeof rpk) {
		ERR_clear_error();
		return -1;
	}
	mlen = len - SEAL_OVERHEAD;
	context(box, rpk, ctx);
	if (derive(priv, box, ctx, key, iv) == -1)
		return -1;
	if ((out = malloc(mlen + 1)) == NULL)
		goto err_alloc;
	memcpy(tag, box + SEAL_KEY_LEN + mlen, SEAL_TAG_LEN);
	if ((c = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_DecryptInit_ex2(c, EVP_aes_256_gcm(), key, iv, NULL) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &n, ctx, sizeof ctx) != 1 ||
	    EVP_DecryptUpdate(c, out, &n, box + SEAL_KEY_LEN, (int)mlen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, SEAL_TAG_LEN,
	    tag) != 1 ||
	    EVP_DecryptFinal_ex(c, out + n, &n) != 1)
		goto err_cipher;
	out[mlen] = '\0';
	*msg = out;
	*msglen = mlen;
	out = NULL;
	rc = 0;
err_cipher:
	EVP_CIPHER_CTX_free(c);
	seal_wipe(out, mlen + 1);
err_alloc:
	OPENSSL_cleanse(key, sizeof key);
	OPENSSL_cleanse(iv, sizeof iv);
	ERR_clear_error();
	return rc;
}
