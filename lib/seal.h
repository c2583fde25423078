/* seal.h — sealed boxes: a message encrypted to an X25519 public key
 * alone (an ephemeral X25519 key of the sender, ECDH, HKDF-SHA256 and
 * AES-256-GCM, all OpenSSL EVP). Only the holder of the private key
 * opens it, and a box changed in any byte does not open. The KDF's info
 * and the cipher's associated data both carry a label and the two public
 * keys, so a box is bound to the one recipient it was made for.
 *
 * A box is the sender's ephemeral public key (SEAL_KEY_LEN bytes), the
 * ciphertext (as long as the message) and the GCM tag (SEAL_TAG_LEN).
 * It carries secrets from the CA's signer to `bastionctl cluster join`
 * (keybundle.h) through an HTTP worker that must not read them. */
#ifndef BASTION_SEAL_H
#define BASTION_SEAL_H

#include <stddef.h>

#include <openssl/evp.h>

#define SEAL_KEY_LEN	32		/* a raw X25519 public key */
#define SEAL_TAG_LEN	16
#define SEAL_OVERHEAD	(SEAL_KEY_LEN + SEAL_TAG_LEN)
#define SEAL_MAX	(1024 * 1024)	/* the largest message */

/* A new X25519 key pair: the private key into *priv (EVP_PKEY_free it),
 * its raw public key into pub. 0 or -1. */
int	seal_keypair(EVP_PKEY **priv, unsigned char pub[SEAL_KEY_LEN]);
/* Seal len bytes of msg (at most SEAL_MAX) to the raw X25519 public key
 * pub: a malloc'd box of len + SEAL_OVERHEAD bytes into *box. -1 also
 * when pub is a point of small order (no shared secret). */
int	seal_to(const unsigned char pub[SEAL_KEY_LEN], const void *msg,
	    size_t len, unsigned char **box, size_t *boxlen);
/* Open a box with the private key it was sealed to: the message into
 * *msg (malloc'd, NUL-terminated for convenience; the caller wipes it
 * with seal_wipe) and *msglen. -1 when it is not a box sealed to this
 * key, was changed, or is cut short. */
int	seal_open(EVP_PKEY *priv, const unsigned char *box, size_t len,
	    unsigned char **msg, size_t *msglen);
/* OPENSSL_cleanse and free (p may be NULL). */
void	seal_wipe(void *p, size_t len);

#endif
