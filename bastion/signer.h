/* signer.h — privilege separation for the CA (STYLE.md, relayd's ca.c):
 * the CA key and the job-signing key live in a small process of their
 * own, forked at start-up, reached over a socketpair with length-checked
 * messages. The process that parses the network holds neither key; a
 * compromise of it can ask for signatures while it lasts, but cannot take
 * the keys away. */
#ifndef BASTION_SIGNER_H
#define BASTION_SIGNER_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca.h"

#define SIGNER_MAX_MSG	(2 * 1024 * 1024)

struct signer;

/* Fork the signer with copies of the keys (the caller frees its own).
 * NULL on failure. Call before any thread starts. */
struct signer *signer_start(X509 *cacert, EVP_PKEY *cakey, EVP_PKEY *jobkey);
/* Close the socket (the signer exits on EOF) and reap it. */
void	signer_close(struct signer *);

/* A client certificate (PEM, malloc'd) for pub, CN = agent_id. */
int	signer_cert(struct signer *, EVP_PKEY *pub, const char *agent_id,
	    int days, char **pem);
/* The CRL (PEM, malloc'd). */
int	signer_crl(struct signer *, const struct ca_revoked *, size_t n,
	    int hours, char **pem);
/* Base64 Ed25519 signature of text (malloc'd). */
int	signer_job(struct signer *, const char *text, size_t len,
	    char **sig_b64);

/* What the signer (and an unseparated CA) runs, in ca_sign.c. */
int	ca_build_client_cert(X509 *cacert, EVP_PKEY *cakey, EVP_PKEY *pub,
	    const char *agent_id, int days, char **pem);
int	ca_build_crl(X509 *cacert, EVP_PKEY *cakey,
	    const struct ca_revoked *, size_t n, int hours, char **pem);

/* ca.c: move the keys into a signer; ca_signer() is NULL before. */
int	ca_privsep(struct ca *);
struct signer *ca_signer(struct ca *);

#endif
