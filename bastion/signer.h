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
#include "seal.h"

#define SIGNER_MAX_MSG	(2 * 1024 * 1024)

struct signer;

/* Fork the signer with copies of the keys (the caller frees its own).
 * NULL on failure. Call before any thread starts. cadir (may be NULL: no
 * restarts) is where a restarted signer reads the keys (ca_signer_keys). */
struct signer *signer_start(X509 *cacert, EVP_PKEY *cakey, EVP_PKEY *jobkey,
	    const char *cadir);
/* Close the socket (the signer exits on EOF) and reap it. */
void	signer_close(struct signer *);
/* From the main loop, often and after SIGCHLD: reap a dead signer and
 * start a new one when due (backoff 0.1 s doubling to 10 s, reset after
 * a minute up). Never blocks on a request in progress. */
void	signer_tick(struct signer *);
/* Privilege separation (privsep.h). Parent: the signer's socket is
 * handed to give() and closed here, and so is every later signer's.
 * give()'s result for this one. */
int	signer_give_away(struct signer *, int (*give)(int fd, unsigned gen,
	    void *arg), void *arg);
/* Parent: the worker says signer gen stopped answering: kill it (if it
 * is still the current one) so that signer_tick starts another. */
void	signer_kill(struct signer *, unsigned gen);
/* Worker: a signer reached over fd (from the parent) that it only asks:
 * it neither reaps nor restarts, and reports one that stops answering
 * to on_down. NULL when out of memory. */
struct signer *signer_remote(int fd, unsigned gen, void (*on_down)(unsigned
	    gen, void *arg), void *arg);
/* Worker: the socket of a new signer (gen) replaces the old one. */
void	signer_replace(struct signer *, int fd, unsigned gen);
/* 0 while it is down: signing requests fail at once (answer 503). */
int	signer_up(struct signer *);
/* main() of "bastion --signer CADIR" (what signer_tick starts): the
 * socket is descriptor 3. Does not return unless it cannot start. */
int	signer_exec_main(const char *cadir);

/* A client certificate (PEM, malloc'd) for pub, CN = agent_id. */
int	signer_cert(struct signer *, EVP_PKEY *pub, const char *agent_id,
	    int days, char **pem);
/* The CRL (PEM, malloc'd). */
int	signer_crl(struct signer *, const struct ca_revoked *, size_t n,
	    int hours, char **pem);
/* Base64 Ed25519 signature of text (malloc'd). */
int	signer_job(struct signer *, const char *text, size_t len,
	    char **sig_b64);
/* cluster join: the CA certificate, CA key and job key signed for and
 * sealed to the joiner's raw X25519 public key (keybundle_seal), as
 * base64 (malloc'd). The keys never leave the signer in clear. */
int	signer_join(struct signer *, const unsigned char joiner[SEAL_KEY_LEN],
	    char **box_b64);

/* What the signer (and an unseparated CA) runs, in ca_sign.c. */
int	ca_build_client_cert(X509 *cacert, EVP_PKEY *cakey, EVP_PKEY *pub,
	    const char *agent_id, int days, char **pem);
int	ca_build_crl(X509 *cacert, EVP_PKEY *cakey,
	    const struct ca_revoked *, size_t n, int hours, char **pem);

/* ca.c: move the keys into a signer; ca_signer() is NULL before. */
int	ca_privsep(struct ca *);
struct signer *ca_signer(struct ca *);
/* The CA certificate, CA key and job key from an existing CA directory
 * (never creates one). */
int	ca_signer_keys(const char *cadir, X509 **cacert, EVP_PKEY **cakey,
	    EVP_PKEY **jobkey);

#endif
