/* envelope_sign.c — bastion's side of the signed job envelopes: the
 * text with a fresh nonce, its Ed25519 signature, and the id of an
 * OpenSSL key (the format and verification: envelope.c). */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "b64.h"
#include "envelope.h"
#include "hex.h"

int
envelope_key_raw(EVP_PKEY *k, unsigned char pub[ENVELOPE_PUBLEN])
{
	size_t len = ENVELOPE_PUBLEN;

	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(k, pub, &len) != 1 ||
	    len != ENVELOPE_PUBLEN)
		return -1;
	return 0;
}

int
envelope_key_id(EVP_PKEY *k, char out[ENVELOPE_KEYID_LEN])
{
	unsigned char pub[ENVELOPE_PUBLEN];

	if (envelope_key_raw(k, pub) == -1)
		return -1;
	return envelope_key_id_raw(pub, out);
}

int
envelope_build(struct envelope *e, char **text)
{
	unsigned char r[16];
	json_t *o;
	char *s;

	if (e->nonce[0] == '\0') {
		if (RAND_bytes(r, sizeof r) != 1)
			return -1;
		hex_encode(r, sizeof r, e->nonce);
	}
	o = json_pack("{s:s, s:O, s:I, s:s, s:s, s:I, s:i}",
	    "agent_id", e->agent_id, "args", e->args ? e->args : json_null(),
	    "job_id", (json_int_t)e->job_id, "kind", e->kind,
	    "nonce", e->nonce, "not_after", (json_int_t)e->not_after, "v", 1);
	if (o == NULL)
		return -1;
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(o);
	if (s == NULL)
		return -1;
	*text = s;
	return 0;
}

int
envelope_sign(EVP_PKEY *key, const char *text, size_t len, char **sig_b64)
{
	unsigned char sig[64];
	size_t siglen = sizeof sig;
	EVP_MD_CTX *ctx;
	char *s;
	int ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)text,
	    len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok || (s = b64_encode(sig, siglen)) == NULL)
		return -1;
	*sig_b64 = s;
	return 0;
}
