/* fuzz_keybundle.c — lib/keybundle.c and lib/seal.c as `bastionctl
 * cluster join` meets them: what a bastion answers is opened with the
 * joiner's one-time key, parsed, checked against the pinned CA and its
 * signature. The first byte of the input chooses what the rest is:
 *   0: a sealed box, opened as it is;
 *   1: a plaintext, sealed to the joiner here, then opened;
 *   2: the three fields (ca.pem, ca.key, jobs.key, as encoded), signed
 *      here with the fixed CA's key for the joiner, as a signer would,
 *      then sealed and opened: the PEM parsing behind the signature
 *      check sees arbitrary content.
 * Nothing may crash or leak; what is accepted carries the pinned
 * fingerprint. The keys below are this target's own, made for it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "keybundle.h"
#include "seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBsTCCAVegAwIBAgIUUPL2O/49N49OlkovCErGrzpcbP8wCgYIKoZIzj0EAwIw\n"
    "LjEQMA4GA1UECgwHQmFzdGlvbjEaMBgGA1UEAwwRQmFzdGlvbiBDQSAoZnV6eikw\n"
    "HhcNMjYxMjA1MDc1OTU5WhcNMzYxMjAyMDc1OTU5WjAuMRAwDgYDVQQKDAdCYXN0\n"
    "aW9uMRowGAYDVQQDDBFCYXN0aW9uIENBIChmdXp6KTBZMBMGByqGSM49AgEGCCqG\n"
    "SM49AwEHA0IABHE5eQxPtt/Fd6UarAak049qiruX8CQHl5HBfXDt8NvJqYzZrzSU\n"
    "88j1DPIm29EiyhSDuABRq7oD4KgcUV6Q1+OjUzBRMB0GA1UdDgQWBBRhLBxsPBpL\n"
    "qovgfEUTz9ptx8sGMTAfBgNVHSMEGDAWgBRhLBxsPBpLqovgfEUTz9ptx8sGMTAP\n"
    "BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIAUOKXJJ58Kg+iNu3bfV\n"
    "hvMlrgzSIzPmRgak9fJ38s5fAiEAiCjSf0Hf6mdc5tlO5+Pz4D/yd0GpKRY0fI/d\n"
    "yGJMr3w=\n"
    "-----END CERTIFICATE-----\n";
static const char ca_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOJLnIJqFAW0neZsD\n"
    "WPTOy1GEIwGMG8qk5p0VqGb0w1+hRANCAARxOXkMT7bfxXelGqwGpNOPaoq7l/Ak\n"
    "B5eRwX1w7fDbyamM2a80lPPI9QzyJtvRIsoUg7gAUau6A+CoHFFekNfj\n"
    "-----END PRIVATE KEY-----\n";

static EVP_PKEY *joiner, *ca_key;
static unsigned char joiner_pub[SEAL_KEY_LEN];
static char pin[KEYBUNDLE_FP_LEN];

static void
setup(void)
{
	static const unsigned char seed[32] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };
	size_t len = sizeof joiner_pub;
	BIO *b;
	X509 *x;

	joiner = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, seed,
	    sizeof seed);
	if (joiner == NULL || EVP_PKEY_get_raw_public_key(joiner, joiner_pub,
	    &len) != 1)
		abort();
	b = BIO_new_mem_buf(ca_pem, -1);
	if (b == NULL || (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL ||
	    keybundle_fingerprint(x, pin) == -1)
		abort();
	BIO_free(b);
	X509_free(x);
	b = BIO_new_mem_buf(ca_key_pem, -1);
	if (b == NULL || (ca_key = PEM_read_bio_PrivateKey(b, NULL, NULL,
	    NULL)) == NULL)
		abort();
	BIO_free(b);
}

/* fields, then a fourth: the CA's signature over the label, the joiner's
 * key and fields. malloc'd, *len bytes; NULL if it cannot sign. */
static unsigned char *
signed_bundle(const uint8_t *fields, size_t flen, size_t *len)
{
	unsigned char *out, *sig;
	size_t slen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
	    ca_key) != 1 || EVP_DigestSignFinal(md, NULL, &slen) != 1 ||
	    (out = malloc(flen + 4 + slen)) == NULL) {
		EVP_MD_CTX_free(md);
		return NULL;
	}
	memcpy(out, fields, flen);
	sig = out + flen + 4;
	if (EVP_DigestSignUpdate(md, KEYBUNDLE_LABEL,
	    sizeof KEYBUNDLE_LABEL - 1) != 1 ||
	    EVP_DigestSignUpdate(md, joiner_pub, sizeof joiner_pub) != 1 ||
	    EVP_DigestSignUpdate(md, fields, flen) != 1 ||
	    EVP_DigestSignFinal(md, sig, &slen) != 1) {
		EVP_MD_CTX_free(md);
		free(out);
		return NULL;
	}
	EVP_MD_CTX_free(md);
	out[flen] = (unsigned char)(slen >> 24);
	out[flen + 1] = (unsigned char)(slen >> 16);
	out[flen + 2] = (unsigned char)(slen >> 8);
	out[flen + 3] = (unsigned char)slen;
	*len = flen + 4 + slen;
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *plain = NULL, *box = NULL;
	size_t plen = 0, blen = 0;
	struct keybundle kb;
	char why[256];

	if (joiner == NULL)
		setup();
	why[0] = '\0';
	if (size < 1 || size > 256 * 1024)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (keybundle_open(joiner, data + 1, size - 1, pin, &kb, why,
		    sizeof why) == 0)
			abort();	/* nobody sealed it: it cannot verify */
		return 0;
	case 1:
		if (seal_to(joiner_pub, data + 1, size - 1, &box, &blen) == -1)
			abort();
		break;
	default:
		if ((plain = signed_bundle(data + 1, size - 1, &plen)) == NULL ||
		    seal_to(joiner_pub, plain, plen, &box, &blen) == -1)
			abort();
		break;
	}
	if (keybundle_open(joiner, box, blen, pin, &kb, why, sizeof why) == 0) {
		if (strcmp(kb.fingerprint, pin) != 0 ||
		    strlen(kb.ca_pem) != kb.ca_pem_len ||
		    strlen(kb.ca_key) != kb.ca_key_len ||
		    strlen(kb.jobs_key) != kb.jobs_key_len)
			abort();
		keybundle_free(&kb);
	} else if (why[0] == '\0')
		abort();	/* a refusal always says why */
	free(plain);
	free(box);
	return 0;
}
