/* keybundle.h — the CA and job keys as `bastionctl cluster join` receives
 * them from a bastion of the cluster (DESIGN §16, §17): made by the CA's
 * signer, which alone holds the keys, sealed (seal.h) to the joiner's
 * one-time X25519 key, so that the HTTP worker that carries the box
 * never reads them.
 *
 * Inside the box, four fields, each a 32-bit big-endian length and its
 * bytes: ca.pem, ca.key, jobs.key (PEM, as in STATE_DIR/ca/) and an
 * ECDSA-SHA256 signature made with the CA key over KEYBUNDLE_LABEL, the
 * joiner's public key and the three fields as encoded. The signature
 * says the holder of the CA key made this bundle for this joiner: a
 * worker that knows the joiner's public key can seal a box of its own,
 * but cannot sign one (it cannot swap the job key unnoticed). */
#ifndef BASTION_KEYBUNDLE_H
#define BASTION_KEYBUNDLE_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "seal.h"

#define KEYBUNDLE_LABEL		"bastion cluster join v1"
#define KEYBUNDLE_FIELD_MAX	(64 * 1024)
#define KEYBUNDLE_FP_LEN	72	/* "sha256:" + 64 hex + NUL */

/* What the joiner keeps: the three files' contents, NUL-terminated and
 * malloc'd (keybundle_free wipes the keys), and the CA's fingerprint. */
struct keybundle {
	char	*ca_pem;
	size_t	 ca_pem_len;
	char	*ca_key;
	size_t	 ca_key_len;
	char	*jobs_key;
	size_t	 jobs_key_len;
	char	 fingerprint[KEYBUNDLE_FP_LEN];
};

/* The signer: the bundle of the CA certificate, CA key and job key,
 * signed for and sealed to the joiner's raw X25519 public key: *box
 * (malloc'd, *boxlen bytes). 0 or -1. */
int	keybundle_seal(X509 *cacert, EVP_PKEY *cakey, EVP_PKEY *jobkey,
	    const unsigned char joiner[SEAL_KEY_LEN], unsigned char **box,
	    size_t *boxlen);
/* The joiner: open box with its private key and accept the bundle only
 * if its CA's fingerprint is pin ("sha256:" + 64 lower-case hex), the
 * signature verifies with that CA's key, ca.key is that CA's key and
 * jobs.key an Ed25519 key. 0 with *out filled, or -1 with why. */
int	keybundle_open(EVP_PKEY *priv, const unsigned char *box, size_t len,
	    const char *pin, struct keybundle *out, char *why, size_t whylen);
void	keybundle_free(struct keybundle *);

/* "sha256:<hex>" of a certificate's DER. 0 or -1. */
int	keybundle_fingerprint(X509 *, char out[KEYBUNDLE_FP_LEN]);

#endif
