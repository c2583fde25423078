/* routes_cluster.c — POST /api/v1/cluster/join (DESIGN §16, §17): a new
 * bastion of this database asks for the CA and job keys, as `bastionctl
 * cluster join` does. It sends a one-time X25519 public key; the signer,
 * which alone holds the keys, signs them for that key and seals them to
 * it (keybundle.h), and this process only carries the box it cannot
 * open. Admin only, audited, small, and a few times a minute per
 * address (JOIN_BURST, then one a minute). */
#define LOG_SUBSYS "cluster"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "ca.h"
#include "clock.h"
#include "hostname.h"
#include "http.h"
#include "log.h"
#include "ratelimit.h"
#include "seal.h"
#include "secret.h"

#define JOIN_MAX_BODY	1024
#define JOIN_NAME_MAX	253
/* Joining is rare: a burst of 5 per address, then one a minute. */
#define JOIN_BURST	5
#define JOIN_PER_S	(1.0 / 60)

static struct ratelimit limiter = RATELIMIT_INIT;

static void
post_join(struct request *r)
{
	unsigned char *pub = NULL;
	const char *b64, *name = NULL;
	char fp[CA_FINGERPRINT_LEN], digest[SECRET_HEXLEN], *box = NULL;
	const json_t *v;
	json_t *body;
	size_t len = 0;

	if ((body = http_body_json(r)) == NULL)
		return;
	v = json_object_get(body, "name");
	if (v != NULL && (!json_is_string(v) || json_string_length(v) >
	    JOIN_NAME_MAX || !hostname_valid(json_string_value(v), 0))) {
		http_reply_error(r, 400, "bad_name", "name must be the joining "
		    "bastion's host name");
		goto out;
	}
	name = v ? json_string_value(v) : NULL;
	AUDIT_SET(&r->audit, target, "%s", name ? name : r->client);
	if (!json_is_string(v = json_object_get(body, "public_key")) ||
	    json_string_length(v) > 64 ||
	    (b64 = json_string_value(v)) == NULL ||
	    (pub = b64_decode(b64, SEAL_KEY_LEN, &len)) == NULL ||
	    len != SEAL_KEY_LEN) {
		http_reply_error(r, 400, "bad_public_key", "public_key must be "
		    "a raw X25519 public key (%d bytes) in base64",
		    SEAL_KEY_LEN);
		goto out;
	}
	/* What reaches the signer counts; malformed requests cost nothing. */
	if (!ratelimit_take(&limiter, r->client, JOIN_BURST, JOIN_PER_S,
	    clock_wall_ms())) {
		http_add_header(r, "Retry-After", "60");
		http_reply_error(r, 429, "rate_limited", "too many cluster joins "
		    "from %s: one a minute after %d", r->client, JOIN_BURST);
		goto out;
	}
	if (!ca_can_sign(r->app->ca)) {
		http_reply_error(r, 503, "signer_unavailable", "the signer is "
		    "restarting: try again in a few seconds");
		goto out;
	}
	if (ca_join_seal(r->app->ca, pub, &box) == -1) {
		if (!ca_can_sign(r->app->ca))
			http_reply_error(r, 503, "signer_unavailable", "the "
			    "signer stopped answering: try again in a few "
			    "seconds");
		else	/* a key of small order: no shared secret */
			http_reply_error(r, 400, "bad_public_key", "the keys "
			    "cannot be sealed to this public key");
		goto out;
	}
	ca_fingerprint(r->app->ca, fp);
	/* Which one-time key they went to, as a digest for the record. */
	secret_sha256_hex((const char *)pub, SEAL_KEY_LEN, digest);
	AUDIT_SET(&r->audit, detail, "cluster join: keys sent to %s at %s "
	    "(CA %s, joiner key sha256 %.16s)", name ? name : "a bastion",
	    r->client, fp, digest);
	log_info("req %s: cluster join: keys sent to %s at %s, asked by %s",
	    r->id, name ? name : "a bastion", r->client, r->who.user[0] ?
	    r->who.user : "the admin socket");
	http_reply_json(r, 200, json_pack("{s:s, s:s, s:s}", "algorithm",
	    "X25519-HKDF-SHA256-AES-256-GCM", "ca_fingerprint", fp, "sealed",
	    box));
out:
	free(box);
	free(pub);
	json_decref(body);
}

const struct route routes_cluster[] = {
	{ L_CONTROL | L_ADMIN, "POST", "/api/v1/cluster/join", post_join,
	    JOIN_MAX_BODY, ROLE_ADMIN, SCOPE_ADMIN, RF_AUDIT, "cluster.join" },
	{ 0, NULL, NULL, NULL, 0, ROLE_NONE, SCOPE_READ, 0, NULL },
};
