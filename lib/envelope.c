/* envelope.c — signed job envelopes: verify, and the nonce memory that
 * refuses replays (building and signing, bastion's side, on OpenSSL:
 * envelope_sign.c). Verification is on Nettle, so that the node agent,
 * which links this file, carries no OpenSSL for it. */
#define LOG_SUBSYS "envelope"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/eddsa.h>
#include <nettle/sha2.h>

#include "b64.h"
#include "envelope.h"
#include "hex.h"
#include "file.h"
#include "log.h"

const char *const envelope_kinds[] = { "exec", "reboot", "reprovision",
    "inventory", "container", "guest", NULL };

const char *
envelope_err_str(enum envelope_err e)
{
	switch (e) {
	case ENV_OK:
		return "ok";
	case ENV_MALFORMED:
		return "malformed envelope";
	case ENV_UNKNOWN_KEY:
		return "signed with a key this agent did not pin at enrollment";
	case ENV_BAD_SIGNATURE:
		return "bad signature";
	case ENV_OTHER_AGENT:
		return "addressed to another agent";
	case ENV_EXPIRED:
		return "expired";
	case ENV_TOO_LONG:
		return "valid for longer than allowed";
	case ENV_REPLAYED:
		return "replayed (nonce already seen)";
	case ENV_UNKNOWN_KIND:
		return "unknown job kind";
	}
	return "unknown error";
}

int
envelope_kind_known(const char *kind)
{
	int i;

	for (i = 0; envelope_kinds[i]; i++)
		if (strcmp(kind, envelope_kinds[i]) == 0)
			return 1;
	return 0;
}

/* SHA-256 over the raw public key: the same id whichever library
 * holds the key (bastion's OpenSSL, the agent's raw bytes). */
int
envelope_key_id_raw(const unsigned char pub[ENVELOPE_PUBLEN],
    char out[ENVELOPE_KEYID_LEN])
{
	struct sha256_ctx c;
	unsigned char md[SHA256_DIGEST_SIZE];

	sha256_init(&c);
	sha256_update(&c, ENVELOPE_PUBLEN, pub);
	sha256_digest(&c, sizeof md, md);
	memcpy(out, "ed25519:", 8);
	hex_encode(md, 16, out + 8);
	return 0;
}

static int
signature_ok(const unsigned char *pub, const char *text, const char *sig_b64)
{
	unsigned char *sig;
	size_t siglen;
	int ok = 0;

	if ((sig = b64_decode(sig_b64, 64, &siglen)) == NULL)
		return 0;
	if (siglen == ED25519_SIGNATURE_SIZE)
		ok = ed25519_sha512_verify(pub, strlen(text),
		    (const uint8_t *)text, sig) == 1;
	free(sig);
	return ok;
}

static int
valid_nonce(const char *s)
{
	size_t n = strlen(s);

	return n == ENVELOPE_NONCE_LEN - 1 &&
	    strspn(s, "0123456789abcdef") == n;
}

enum envelope_err
envelope_verify(const struct envelope_key *keys, size_t nkeys,
    const char *key_id, const char *text, const char *sig_b64,
    const char *agent_id, int64_t now, const struct nonce_cache *cache,
    struct envelope *out)
{
	const char *aid, *kind, *nonce;
	const json_t *args, *jid, *na, *v;
	struct envelope e;
	const unsigned char *key = NULL;
	json_t *o;
	size_t i;
	enum envelope_err err;

	if (key_id == NULL || text == NULL || sig_b64 == NULL ||
	    strlen(text) > ENVELOPE_MAX_TEXT)
		return ENV_MALFORMED;
	for (i = 0; i < nkeys && key == NULL; i++)
		if (strcmp(keys[i].id, key_id) == 0)
			key = keys[i].pub;
	if (key == NULL)
		return ENV_UNKNOWN_KEY;
	if (!signature_ok(key, text, sig_b64))
		return ENV_BAD_SIGNATURE;
	/* Signed by bastion: now the content may be read. */
	if ((o = json_loads(text, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return ENV_MALFORMED;
	aid = json_string_value(json_object_get(o, "agent_id"));
	kind = json_string_value(json_object_get(o, "kind"));
	nonce = json_string_value(json_object_get(o, "nonce"));
	args = json_object_get(o, "args");
	jid = json_object_get(o, "job_id");
	na = json_object_get(o, "not_after");
	v = json_object_get(o, "v");
	err = ENV_MALFORMED;
	if (aid == NULL || kind == NULL || nonce == NULL || !json_is_object(args) ||
	    !json_is_integer(jid) || !json_is_integer(na) ||
	    json_integer_value(v) != 1 || !valid_nonce(nonce) ||
	    strlen(aid) >= sizeof e.agent_id || strlen(kind) >= sizeof e.kind)
		goto out;
	err = ENV_OTHER_AGENT;
	if (strcmp(aid, agent_id) != 0)
		goto out;
	err = ENV_EXPIRED;
	if (json_integer_value(na) <= now)
		goto out;
	err = ENV_TOO_LONG;
	if (json_integer_value(na) > now + ENVELOPE_MAX_TTL)
		goto out;
	err = ENV_UNKNOWN_KIND;
	if (!envelope_kind_known(kind))
		goto out;
	err = ENV_REPLAYED;
	if (cache && nonce_cache_seen(cache, nonce))
		goto out;
	memset(&e, 0, sizeof e);
	e.job_id = json_integer_value(jid);
	snprintf(e.agent_id, sizeof e.agent_id, "%s", aid);
	snprintf(e.kind, sizeof e.kind, "%s", kind);
	snprintf(e.nonce, sizeof e.nonce, "%s", nonce);
	e.not_after = json_integer_value(na);
	e.args = json_incref((json_t *)args);
	*out = e;
	err = ENV_OK;
out:
	json_decref(o);
	return err;
}

void
envelope_clear(struct envelope *e)
{
	json_decref(e->args);
	e->args = NULL;
}

/* --- nonce memory ----------------------------------------------------- */

#define NONCE_CACHE_MAX	(1 << 20)

void
nonce_cache_init(struct nonce_cache *c)
{
	memset(c, 0, sizeof *c);
}

void
nonce_cache_free(struct nonce_cache *c)
{
	free(c->v);
	memset(c, 0, sizeof *c);
}

int
nonce_cache_seen(const struct nonce_cache *c, const char *nonce)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->v[i].nonce, nonce) == 0)
			return 1;
	return 0;
}

int
nonce_cache_add(struct nonce_cache *c, const char *nonce, int64_t not_after)
{
	struct nonce_entry *v;
	size_t cap;

	if (!valid_nonce(nonce))
		return -1;
	if (nonce_cache_seen(c, nonce))
		return 0;
	if (c->n == c->cap) {
		if (c->cap >= NONCE_CACHE_MAX)
			return -1;
		cap = c->cap ? c->cap * 2 : 64;
		if ((v = reallocarray(c->v, cap, sizeof *v)) == NULL)
			return -1;
		c->v = v;
		c->cap = cap;
	}
	snprintf(c->v[c->n].nonce, sizeof c->v[c->n].nonce, "%s", nonce);
	c->v[c->n++].not_after = not_after;
	return 0;
}

void
nonce_cache_prune(struct nonce_cache *c, int64_t now)
{
	size_t i, o = 0;

	for (i = 0; i < c->n; i++)
		if (c->v[i].not_after >= now)
			c->v[o++] = c->v[i];
	c->n = o;
}

int
nonce_cache_load(struct nonce_cache *c, const char *path)
{
	char line[128], nonce[ENVELOPE_NONCE_LEN];
	long long na;
	FILE *fp;

	if ((fp = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 0 : -1;
	while (fgets(line, sizeof line, fp))
		if (sscanf(line, "%32s %lld", nonce, &na) == 2)
			nonce_cache_add(c, nonce, na);
	fclose(fp);
	return 0;
}

int
nonce_cache_save(const struct nonce_cache *c, const char *path)
{
	size_t i, len = 0, cap = c->n * 64 + 1;
	char *s;
	int rc, w;

	if ((s = malloc(cap)) == NULL)
		return -1;
	s[0] = '\0';
	for (i = 0; i < c->n; i++) {
		w = snprintf(s + len, cap - len, "%s %" PRId64 "\n",
		    c->v[i].nonce, c->v[i].not_after);
		if (w < 0 || (size_t)w >= cap - len)
			break;
		len += (size_t)w;
	}
	rc = file_write_atomic(path, s, len, 0600);
	free(s);
	return rc;
}
