/* ca.h — bastion's own certificate authority (EC P-256, 10 years) and the
 * control listener's server certificate issued by it. */
#ifndef BASTION_CA_H
#define BASTION_CA_H

#include "config.h"

struct ca;

#define CA_FINGERPRINT_LEN 72	/* "sha256:" + 64 hex + NUL */

/* Load STATE_DIR/ca/, creating the CA on first start, and (re)issue the
 * server certificate when it is missing, due to expire within 30 days, or
 * its SANs differ from names. */
int	ca_open(const char *state_dir, const char names[][CONFIG_NAME_LEN],
	    int nnames, struct ca **out);
void	ca_close(struct ca *);
/* Copies of the server chain (leaf + CA) and key as PEM, NUL-terminated;
 * free both with ca_pem_free (which wipes the key). */
int	ca_server_pem(struct ca *, char **cert, char **key);
void	ca_pem_free(char *cert, char *key);
/* "sha256:<hex>" of the CA certificate's DER. */
void	ca_fingerprint(struct ca *, char out[CA_FINGERPRINT_LEN]);
/* The CA certificate as PEM (borrowed). */
const char *ca_cert_pem(struct ca *);
/* Seconds until the server certificate expires. */
long	ca_server_expires_in(struct ca *);

/* Privilege separation: what the HTTP worker may hold — the CA and server
 * certificates, the server key, the job public key — and never the CA
 * key. The parent exports it into out (appended); the worker builds its
 * CA from it (no signer yet: ca_set_signer). 0 or -1. */
struct buf;
struct signer;
int	ca_public_export(struct ca *, struct buf *out);
int	ca_public_import(const char *state_dir, const char *p, size_t len,
	    struct ca **out);
/* The signer this CA asks (the previous one is closed). */
void	ca_set_signer(struct ca *, struct signer *);

/* --- ca_sign.c: agent certificates, revocation list, job signing ------ */
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define CA_SERIAL_LEN	41	/* hex of at most 20 bytes + NUL */
#define CA_AGENT_DAYS	30
#define CA_KEYID_LEN	48	/* "ed25519:" + 32 hex + NUL */

/* Borrowed from the CA (ca.c). */
EVP_PKEY *ca_private_key(struct ca *);
X509	*ca_certificate(struct ca *);
EVP_PKEY *ca_jobs_key(struct ca *);

/* Load dir/jobs.key (Ed25519, 0600), creating it on first start. */
int	ca_jobs_key_load(const char *dir, EVP_PKEY **out);
/* Adds extension nid, value in openssl.cnf syntax, to x as issued by
 * issuer (x itself for the CA). 0 or -1. */
int	ca_add_ext(X509 *issuer, X509 *x, int nid, const char *value);

/* Parse a PEM CSR and check it: its self-signature verifies and its key
 * is EC P-256. On success *pub holds the public key (EVP_PKEY_free it).
 * -1 with a reason in why otherwise. */
int	ca_check_csr(const char *pem, size_t len, EVP_PKEY **pub, char *why,
	    size_t whylen);

struct ca_issued {
	char	*pem;			/* malloc'd leaf certificate */
	char	 serial[CA_SERIAL_LEN];	/* lower-case hex */
	int64_t	 not_before_ms;
	int64_t	 not_after_ms;
};

/* Check the CSR (ca_check_csr) and sign a client certificate for it
 * whose subject bastion sets itself: CN = agent_id, O = Bastion agents;
 * clientAuth only, valid `days`. The CSR's own subject and extensions
 * are ignored. -1 with why. */
/* 1 when this CA can sign now: no signer process, or one that is up
 * (0 while a dead signer is being restarted: answer 503). */
int	ca_can_sign(struct ca *);
int	ca_sign_csr(struct ca *, const char *pem, size_t len,
	    const char *agent_id, int days, struct ca_issued *out, char *why,
	    size_t whylen);

/* A client certificate (DER) presented on the control listener: parse,
 * verify it against the CA (chain, validity, clientAuth purpose) and
 * extract the agent id (CN) and serial. Revocation is the caller's
 * (the database). -1 with why. */
int	ca_verify_client(struct ca *, const unsigned char *der, size_t len,
	    char *agent_id, size_t idlen, char serial[CA_SERIAL_LEN],
	    char *why, size_t whylen);

struct ca_revoked {
	char	 serial[CA_SERIAL_LEN];
	int64_t	 revoked_ms;
};

/* A CRL (PEM, malloc'd) listing the revoked serials, next update in
 * `hours`. */
int	ca_crl_pem(struct ca *, const struct ca_revoked *, size_t n, int hours,
	    char **out);

/* Sign text with the job key: base64 of the Ed25519 signature (malloc'd).
 * key_id gets the key's id. */
int	ca_job_sign(struct ca *, const char *text, size_t len, char **sig_b64,
	    char key_id[CA_KEYID_LEN]);
/* The job-verification public key as PEM (malloc'd) and its id. */
int	ca_job_pubkey(struct ca *, char **pem, char key_id[CA_KEYID_LEN]);

/* cluster join (DESIGN §16): the CA certificate, CA key and job key,
 * signed for and sealed to the joiner's raw X25519 public key (32 bytes,
 * keybundle.h) by the signer, as base64 (malloc'd). 0 or -1. */
int	ca_join_seal(struct ca *, const unsigned char joiner[32],
	    char **box_b64);

#endif
