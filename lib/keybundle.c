/* keybundle.c — the CA and job keys for a joining bastion (keybundle.h).
 * Every copy of a key is wiped before it is freed; what the joiner keeps
 * is re-encoded from what it checked, so the files it writes hold
 * nothing else. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "bio.h"
#include "keybundle.h"
#include "seal.h"

#define NFIELDS		4	/* ca.pem, ca.key, jobs.key, signature */
#define LABEL_LEN	(sizeof KEYBUNDLE_LABEL - 1)

int
keybundle_fingerprint(X509 *x, char out[KEYBUNDLE_FP_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32)
		return -1;
	memcpy(out, "sha256:", 7);
	for (i = 0; i < n; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static void
put_field(unsigned char **p, const void *data, size_t len)
{
	(*p)[0] = (unsigned char)(len >> 24);
	(*p)[1] = (unsigned char)(len >> 16);
	(*p)[2] = (unsigned char)(len >> 8);
	(*p)[3] = (unsigned char)len;
	memcpy(*p + 4, data, len);
	*p += 4 + len;
}

/* The signed message: the label, the joiner's key, the three fields. */
static int
sig_input(EVP_MD_CTX *md, const unsigned char joiner[SEAL_KEY_LEN],
    const unsigned char *fields, size_t len, int sign)
{
	if (sign)
		return EVP_DigestSignUpdate(md, KEYBUNDLE_LABEL, LABEL_LEN) == 1 &&
		    EVP_DigestSignUpdate(md, joiner, SEAL_KEY_LEN) == 1 &&
		    EVP_DigestSignUpdate(md, fields, len) == 1 ? 0 : -1;
	return EVP_DigestVerifyUpdate(md, KEYBUNDLE_LABEL, LABEL_LEN) == 1 &&
	    EVP_DigestVerifyUpdate(md, joiner, SEAL_KEY_LEN) == 1 &&
	    EVP_DigestVerifyUpdate(md, fields, len) == 1 ? 0 : -1;
}

int
keybundle_seal(X509 *cacert, EVP_PKEY *cakey, EVP_PKEY *jobkey,
    const unsigned char joiner[SEAL_KEY_LEN], unsigned char **box,
    size_t *boxlen)
{
	char *ca = NULL, *key = NULL, *jobs = NULL;
	size_t calen = 0, keylen = 0, jobslen = 0, siglen = 0, total = 0;
	unsigned char *m = NULL, *p, *sig;
	EVP_MD_CTX *md = NULL;
	int rc = -1;

	if ((ca = bio_cert_pem(cacert, &calen)) == NULL ||
	    (key = bio_key_pem(cakey, &keylen)) == NULL ||
	    (jobs = bio_key_pem(jobkey, &jobslen)) == NULL)
		goto out;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, cakey) != 1 ||
	    EVP_DigestSignFinal(md, NULL, &siglen) != 1 ||
	    siglen > KEYBUNDLE_FIELD_MAX)
		goto out;
	total = 4 * NFIELDS + calen + keylen + jobslen + siglen;
	if ((m = malloc(total)) == NULL)
		goto out;
	p = m;
	put_field(&p, ca, calen);
	put_field(&p, key, keylen);
	put_field(&p, jobs, jobslen);
	sig = p + 4;
	if (sig_input(md, joiner, m, (size_t)(p - m), 1) == -1 ||
	    EVP_DigestSignFinal(md, sig, &siglen) != 1)
		goto out;
	/* An ECDSA signature's DER is often shorter than its maximum. */
	p[0] = (unsigned char)(siglen >> 24);
	p[1] = (unsigned char)(siglen >> 16);
	p[2] = (unsigned char)(siglen >> 8);
	p[3] = (unsigned char)siglen;
	rc = seal_to(joiner, m, (size_t)(sig + siglen - m), box, boxlen);
out:
	EVP_MD_CTX_free(md);
	seal_wipe(m, total);
	seal_wipe(ca, calen);
	seal_wipe(key, keylen);
	seal_wipe(jobs, jobslen);
	ERR_clear_error();
	return rc;
}

/* The next field of [*p, end): a pointer into it and its length. */
static int
get_field(const unsigned char **p, const unsigned char *end,
    const unsigned char **f, size_t *flen)
{
	size_t n;

	if (end - *p < 4)
		return -1;
	n = (size_t)(*p)[0] << 24 | (size_t)(*p)[1] << 16 |
	    (size_t)(*p)[2] << 8 | (size_t)(*p)[3];
	if (n == 0 || n > KEYBUNDLE_FIELD_MAX || n > (size_t)(end - *p) - 4)
		return -1;
	*f = *p + 4;
	*flen = n;
	*p += 4 + n;
	return 0;
}

/* An encrypted key is refused, never asked a passphrase for. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

static EVP_PKEY *
read_key(const unsigned char *p, size_t len)
{
	BIO *b = BIO_new_mem_buf(p, (int)len);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase,
	    NULL) : NULL;

	BIO_free(b);
	return k;
}

int
keybundle_open(EVP_PKEY *priv, const unsigned char *box, size_t len,
    const char *pin, struct keybundle *out, char *why, size_t whylen)
{
	const unsigned char *f[NFIELDS], *p, *end;
	unsigned char *m = NULL, joiner[SEAL_KEY_LEN];
	size_t flen[NFIELDS], mlen = 0, jlen = sizeof joiner;
	struct keybundle kb;
	EVP_PKEY *cakey = NULL, *jobkey = NULL;
	EVP_MD_CTX *md = NULL;
	X509 *x = NULL;
	BIO *b = NULL;
	int i, rc = -1;

	memset(&kb, 0, sizeof kb);
	if (seal_open(priv, box, len, &m, &mlen) == -1) {
		snprintf(why, whylen, "the sealed keys do not open with this "
		    "request's key (changed on the way?)");
		return -1;
	}
	p = m;
	end = m + mlen;
	for (i = 0; i < NFIELDS; i++)
		if (get_field(&p, end, &f[i], &flen[i]) == -1)
			break;
	if (i < NFIELDS || p != end) {
		snprintf(why, whylen, "the sealed keys are malformed");
		goto out;
	}
	if ((b = BIO_new_mem_buf(f[0], (int)flen[0])) == NULL ||
	    (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL ||
	    keybundle_fingerprint(x, kb.fingerprint) == -1) {
		snprintf(why, whylen, "the CA certificate received is "
		    "unreadable");
		goto out;
	}
	if (strlen(pin) != strlen(kb.fingerprint) ||
	    CRYPTO_memcmp(pin, kb.fingerprint, strlen(pin)) != 0) {
		snprintf(why, whylen, "the CA received is %s, not the pinned "
		    "%s", kb.fingerprint, pin);
		goto out;
	}
	if (EVP_PKEY_get_raw_public_key(priv, joiner, &jlen) != 1 ||
	    (md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
	    X509_get0_pubkey(x)) != 1 ||
	    sig_input(md, joiner, m, (size_t)(f[3] - 4 - m), 0) == -1 ||
	    EVP_DigestVerifyFinal(md, f[3], flen[3]) != 1) {
		snprintf(why, whylen, "the keys received are not signed by the "
		    "CA %s", kb.fingerprint);
		goto out;
	}
	if ((cakey = read_key(f[1], flen[1])) == NULL ||
	    X509_check_private_key(x, cakey) != 1) {
		snprintf(why, whylen, "the CA key received is not the key of "
		    "the CA certificate");
		goto out;
	}
	if ((jobkey = read_key(f[2], flen[2])) == NULL ||
	    EVP_PKEY_get_id(jobkey) != EVP_PKEY_ED25519) {
		snprintf(why, whylen, "the job key received is not an Ed25519 "
		    "private key");
		goto out;
	}
	if ((kb.ca_pem = bio_cert_pem(x, &kb.ca_pem_len)) == NULL ||
	    (kb.ca_key = bio_key_pem(cakey, &kb.ca_key_len)) == NULL ||
	    (kb.jobs_key = bio_key_pem(jobkey, &kb.jobs_key_len)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	*out = kb;
	memset(&kb, 0, sizeof kb);
	rc = 0;
out:
	keybundle_free(&kb);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(jobkey);
	X509_free(x);
	BIO_free(b);
	seal_wipe(m, mlen);
	ERR_clear_error();
	return rc;
}

void
keybundle_free(struct keybundle *kb)
{
	free(kb->ca_pem);
	seal_wipe(kb->ca_key, kb->ca_key_len);
	seal_wipe(kb->jobs_key, kb->jobs_key_len);
	kb->ca_pem = kb->ca_key = kb->jobs_key = NULL;
}
