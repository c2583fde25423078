/* fuzz_envelope.c — lib/envelope.c and lib/b64.c as agentd meets them.
 * The input is split at the first NUL into an envelope text and a
 * signature. Each is verified as it is (nothing may crash; a forged
 * signature is never accepted), then the text is signed with a fixed key
 * and verified again, so that the JSON reading behind the signature check
 * sees arbitrary content. Property: what verifies has the fields it
 * claims (agent, unexpired, known kind, object args). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "b64.h"
#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *key;
static struct envelope_key keys[1];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char seed[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct envelope e;
	struct nonce_cache c;
	enum envelope_err err;
	unsigned char *raw;
	char *text, *sig = NULL, *mysig = NULL;
	size_t tl, rawlen;

	if (key == NULL) {
		key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed,
		    sizeof seed);
		if (key == NULL || envelope_key_id(key, keys[0].id) == -1 ||
		    envelope_key_raw(key, keys[0].pub) == -1)
			abort();
	}
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	tl = strlen(text);
	if (tl < size)
		sig = text + tl + 1;
	nonce_cache_init(&c);
	nonce_cache_add(&c, "0123456789abcdef0123456789abcdef", 1LL << 40);
	err = envelope_verify(keys, 1, keys[0].id, text, sig ? sig : "",
	    "agent-1", 1000000000, &c, &e);
	if (err == ENV_OK)
		abort();	/* a forged signature was accepted */
	if ((raw = b64_decode(sig ? sig : text, 1 << 20, &rawlen)) != NULL)
		free(raw);
	if (envelope_sign(key, text, tl, &mysig) == 0) {
		err = envelope_verify(keys, 1, keys[0].id, text, mysig,
		    "agent-1", 1000000000, &c, &e);
		if (err == ENV_OK) {
			if (strcmp(e.agent_id, "agent-1") != 0 ||
			    e.not_after <= 1000000000 ||
			    !envelope_kind_known(e.kind) ||
			    !json_is_object(e.args) ||
			    nonce_cache_seen(&c, e.nonce))
				abort();
			envelope_clear(&e);
		}
		free(mysig);
	}
	nonce_cache_free(&c);
	free(text);
	return 0;
}
