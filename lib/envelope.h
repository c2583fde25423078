/* envelope.h — signed job envelopes (Ed25519): bastion signs, agentd
 * verifies.
 *
 * The envelope is the exact text of a compact JSON object
 *   {"agent_id":…, "args":{…}, "job_id":N, "kind":…, "nonce":…,
 *    "not_after":UNIX_SECONDS, "v":1}
 * and the signature is Ed25519 over those bytes, base64. The agent
 * verifies the bytes it received before it parses them, so no
 * canonicalisation is involved: a changed byte is a bad signature. */
#ifndef BASTION_ENVELOPE_H
#define BASTION_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#define ENVELOPE_KEYID_LEN	48	/* "ed25519:" + 32 hex + NUL */
#define ENVELOPE_PUBLEN		32	/* a raw Ed25519 public key */
#define ENVELOPE_NONCE_LEN	33	/* 16 random bytes as hex + NUL */
#define ENVELOPE_AGENT_LEN	64
#define ENVELOPE_MAX_TEXT	(256 * 1024)
#define ENVELOPE_MAX_TTL	(31L * 86400)	/* bounds the nonce memory */

/* Job kinds that exist at all; a node's policy accepts a subset. */
extern const char *const envelope_kinds[];

struct envelope {
	int64_t	 job_id;
	char	 agent_id[ENVELOPE_AGENT_LEN];
	char	 kind[16];
	json_t	*args;		/* object; owned */
	int64_t	 not_after;	/* unix seconds */
	char	 nonce[ENVELOPE_NONCE_LEN];
};

enum envelope_err {
	ENV_OK = 0,
	ENV_MALFORMED,		/* not an envelope we can read */
	ENV_UNKNOWN_KEY,	/* key id not pinned at enrollment */
	ENV_BAD_SIGNATURE,
	ENV_OTHER_AGENT,
	ENV_EXPIRED,
	ENV_TOO_LONG,		/* not_after beyond ENVELOPE_MAX_TTL */
	ENV_REPLAYED,
	ENV_UNKNOWN_KIND,
};

const char *envelope_err_str(enum envelope_err);
int	envelope_kind_known(const char *);

/* The key id of an Ed25519 public key: "ed25519:" + hex of the first 16
 * bytes of SHA-256 of its raw form. 0 or -1. */
int	envelope_key_id_raw(const unsigned char pub[ENVELOPE_PUBLEN],
	    char out[ENVELOPE_KEYID_LEN]);

/* envelope_sign.c (OpenSSL; bastion): the same for an EVP_PKEY, and the
 * raw public key of one. 0 or -1. */
int	envelope_key_id(EVP_PKEY *, char out[ENVELOPE_KEYID_LEN]);
int	envelope_key_raw(EVP_PKEY *, unsigned char pub[ENVELOPE_PUBLEN]);

/* Build the envelope text (malloc'd) for e. A fresh nonce is drawn when
 * e->nonce is empty (and written back). 0 or -1. */
int	envelope_build(struct envelope *e, char **text);
/* Base64 Ed25519 signature of text (malloc'd). 0 or -1. */
int	envelope_sign(EVP_PKEY *key, const char *text, size_t len,
	    char **sig_b64);

/* Nonces of accepted jobs, remembered until their not_after. */
struct nonce_cache {
	struct nonce_entry {
		char	nonce[ENVELOPE_NONCE_LEN];
		int64_t	not_after;
	}	*v;
	size_t	 n, cap;
};

void	nonce_cache_init(struct nonce_cache *);
void	nonce_cache_free(struct nonce_cache *);
int	nonce_cache_seen(const struct nonce_cache *, const char *nonce);
int	nonce_cache_add(struct nonce_cache *, const char *nonce,
	    int64_t not_after);
/* Forget nonces whose jobs expired before now. */
void	nonce_cache_prune(struct nonce_cache *, int64_t now);
/* One "nonce not_after" per line; a missing file is an empty cache. */
int	nonce_cache_load(struct nonce_cache *, const char *path);
int	nonce_cache_save(const struct nonce_cache *, const char *path);

struct envelope_key {
	char		 id[ENVELOPE_KEYID_LEN];
	unsigned char	 pub[ENVELOPE_PUBLEN];
};

/*
 * Verify and parse a job: the signature over text with the pinned key
 * named key_id, then (only then) its fields: addressed to agent_id, not
 * expired at now, not_after at most ENVELOPE_MAX_TTL ahead, a known
 * kind, a nonce not in cache (cache may be NULL). Nothing is added to the
 * cache: the caller does that once it accepts the job. On ENV_OK *out is
 * filled (envelope_clear it); otherwise *out is untouched.
 */
enum envelope_err envelope_verify(const struct envelope_key *keys,
	    size_t nkeys, const char *key_id, const char *text,
	    const char *sig_b64, const char *agent_id, int64_t now,
	    const struct nonce_cache *cache, struct envelope *out);
void	envelope_clear(struct envelope *);

#endif
