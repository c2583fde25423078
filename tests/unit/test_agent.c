/* test_agent.c — the agent trust chain: CSR checks and signing
 * (bastion/ca_sign.c), signed job envelopes and the nonce memory
 * (lib/envelope.c), join tokens in the database (bastion/db_agent.c),
 * agentd's reconnect backoff (agentd/backoff.c), and agentd's own
 * cryptography on mbedTLS (agentd/crypto.c) checked against OpenSSL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent.h"
#include "agentcache.h"
#include "ca.h"
#include "clock.h"
#include "db.h"
#include "db_agent.h"
#include "envelope.h"
#include "secret.h"
#include "signer.h"

/* --- helpers ------------------------------------------------------------ */

static char *
csr_pem(EVP_PKEY *k, const char *cn)
{
	X509_REQ *req = X509_REQ_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *s;
	long n;

	assert_non_null(req);
	X509_REQ_set_version(req, 0);
	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
	    MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_REQ_set_pubkey(req, k);
	assert_true(X509_REQ_sign(req, k, EVP_PKEY_get_id(k) ==
	    EVP_PKEY_ED25519 ? NULL : EVP_sha256()) > 0);
	PEM_write_bio_X509_REQ(bio, req);
	n = BIO_get_mem_data(bio, &data);
	s = malloc((size_t)n + 1);
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	BIO_free(bio);
	X509_REQ_free(req);
	return s;
}

/* --- CSR checks ------------------------------------------------------------ */

static void
test_csr_p256_accepted(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256"), *pub = NULL;
	char *pem = csr_pem(k, "node");
	char why[256];

	assert_int_equal(ca_check_csr(pem, strlen(pem), &pub, why, sizeof why),
	    0);
	assert_int_equal(EVP_PKEY_eq(pub, k), 1);
	EVP_PKEY_free(pub);
	free(pem);
	EVP_PKEY_free(k);
}

static void
test_csr_wrong_key_types(void **state)
{
	EVP_PKEY *keys[3], *pub = NULL;
	char why[256], *pem;
	int i;

	keys[0] = EVP_RSA_gen(2048);
	keys[1] = EVP_EC_gen("P-384");
	keys[2] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	for (i = 0; i < 3; i++) {
		assert_non_null(keys[i]);
		pem = csr_pem(keys[i], "node");
		assert_int_equal(ca_check_csr(pem, strlen(pem), &pub, why,
		    sizeof why), -1);
		assert_non_null(strstr(why, "P-256"));
		free(pem);
		EVP_PKEY_free(keys[i]);
	}
}

static void
test_csr_bad_signature_and_garbage(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	EVP_PKEY *pub = NULL;
	X509_REQ *req = X509_REQ_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char why[256], *data, *pem;
	long n;

	/* Signed by another key than the one it carries. */
	X509_REQ_set_version(req, 0);
	X509_REQ_set_pubkey(req, k);
	X509_REQ_sign(req, other, EVP_sha256());
	PEM_write_bio_X509_REQ(bio, req);
	n = BIO_get_mem_data(bio, &data);
	pem = strndup(data, (size_t)n);
	assert_int_equal(ca_check_csr(pem, strlen(pem), &pub, why, sizeof why),
	    -1);
	assert_non_null(strstr(why, "signature"));
	free(pem);
	assert_int_equal(ca_check_csr("hello", 5, &pub, why, sizeof why), -1);
	assert_int_equal(ca_check_csr("", 0, &pub, why, sizeof why), -1);
	assert_int_equal(ca_check_csr("a\0b", 3, &pub, why, sizeof why), -1);
	BIO_free(bio);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
}

/* --- envelopes ---------------------------------------------------------- */

struct envfx {
	EVP_PKEY		*key, *other;
	struct envelope_key	 keys[2];
	char			*text, *sig;
	struct nonce_cache	 cache;
	int64_t			 now;
};

static int
env_setup(void **state)
{
	struct envfx *f = calloc(1, sizeof *f);
	struct envelope e;

	f->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	f->other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (f->key == NULL || f->other == NULL ||
	    envelope_key_id(f->key, f->keys[0].id) == -1 ||
	    envelope_key_id(f->other, f->keys[1].id) == -1)
		return -1;
	if (envelope_key_raw(f->key, f->keys[0].pub) == -1 ||
	    envelope_key_raw(f->other, f->keys[1].pub) == -1)
		return -1;
	f->now = time(NULL);
	memset(&e, 0, sizeof e);
	e.job_id = 42;
	snprintf(e.agent_id, sizeof e.agent_id, "agent-1");
	snprintf(e.kind, sizeof e.kind, "exec");
	e.args = json_pack("{s:[s, s]}", "argv", "echo", "hi");
	e.not_after = f->now + 600;
	if (envelope_build(&e, &f->text) == -1 ||
	    envelope_sign(f->key, f->text, strlen(f->text), &f->sig) == -1)
		return -1;
	json_decref(e.args);
	nonce_cache_init(&f->cache);
	*state = f;
	return 0;
}

static int
env_teardown(void **state)
{
	struct envfx *f = *state;

	EVP_PKEY_free(f->key);
	EVP_PKEY_free(f->other);
	free(f->text);
	free(f->sig);
	nonce_cache_free(&f->cache);
	free(f);
	return 0;
}

static enum envelope_err
verify(struct envfx *f, const char *text, const char *sig, const char *kid,
    const char *agent, int64_t now, struct envelope *out)
{
	return envelope_verify(f->keys, 1, kid, text, sig, agent, now,
	    &f->cache, out);
}

static void
test_envelope_ok(void **state)
{
	struct envfx *f = *state;
	struct envelope e;

	assert_int_equal(verify(f, f->text, f->sig, f->keys[0].id, "agent-1",
	    f->now, &e), ENV_OK);
	assert_int_equal(e.job_id, 42);
	assert_string_equal(e.kind, "exec");
	assert_string_equal(json_string_value(json_array_get(json_object_get(
	    e.args, "argv"), 1)), "hi");
	assert_int_equal(strlen(e.nonce), 32);
	envelope_clear(&e);
}

static void
test_envelope_tampered(void **state)
{
	struct envfx *f = *state;
	struct envelope e;
	char *t = strdup(f->text), *s = strdup(f->sig), *p;
	size_t i;

	/* Every single changed byte of the text is caught. */
	for (i = 0; t[i]; i++) {
		t[i] ^= 0x01;
		assert_int_not_equal(verify(f, t, f->sig, f->keys[0].id,
		    "agent-1", f->now, &e), ENV_OK);
		t[i] ^= 0x01;
	}
	p = strstr(t, "\"hi\"");
	assert_non_null(p);
	p[1] = 'H';
	assert_int_equal(verify(f, t, f->sig, f->keys[0].id, "agent-1", f->now,
	    &e), ENV_BAD_SIGNATURE);
	s[3] = s[3] == 'A' ? 'B' : 'A';
	assert_int_equal(verify(f, f->text, s, f->keys[0].id, "agent-1", f->now,
	    &e), ENV_BAD_SIGNATURE);
	assert_int_equal(verify(f, f->text, "not base64!", f->keys[0].id,
	    "agent-1", f->now, &e), ENV_BAD_SIGNATURE);
	free(t);
	free(s);
}

static void
test_envelope_wrong_key(void **state)
{
	struct envfx *f = *state;
	struct envelope e;
	char *sig;

	/* Signed by a key the agent never pinned. */
	assert_int_equal(verify(f, f->text, f->sig, f->keys[1].id, "agent-1",
	    f->now, &e), ENV_UNKNOWN_KEY);
	/* Another key's signature under the pinned key's id. */
	assert_int_equal(envelope_sign(f->other, f->text, strlen(f->text), &sig),
	    0);
	assert_int_equal(verify(f, f->text, sig, f->keys[0].id, "agent-1",
	    f->now, &e), ENV_BAD_SIGNATURE);
	free(sig);
}

static void
test_envelope_expired_other_agent_replay(void **state)
{
	struct envfx *f = *state;
	struct envelope e;

	assert_int_equal(verify(f, f->text, f->sig, f->keys[0].id, "agent-1",
	    f->now + 600, &e), ENV_EXPIRED);
	assert_int_equal(verify(f, f->text, f->sig, f->keys[0].id, "agent-2",
	    f->now, &e), ENV_OTHER_AGENT);
	assert_int_equal(verify(f, f->text, f->sig, f->keys[0].id, "agent-1",
	    f->now, &e), ENV_OK);
	assert_int_equal(nonce_cache_add(&f->cache, e.nonce, e.not_after), 0);
	envelope_clear(&e);
	assert_int_equal(verify(f, f->text, f->sig, f->keys[0].id, "agent-1",
	    f->now, &e), ENV_REPLAYED);
	/* The nonce is forgotten only once the job could not run anyway. */
	nonce_cache_prune(&f->cache, f->now + 599);
	assert_int_equal(verify(f, f->text, f->sig, f->keys[0].id, "agent-1",
	    f->now, &e), ENV_REPLAYED);
	nonce_cache_prune(&f->cache, f->now + 601);
	assert_int_equal(f->cache.n, 0);
}

static void
test_envelope_kind_and_ttl(void **state)
{
	struct envfx *f = *state;
	struct envelope e, out;
	char *text, *sig;

	memset(&e, 0, sizeof e);
	e.job_id = 1;
	snprintf(e.agent_id, sizeof e.agent_id, "agent-1");
	snprintf(e.kind, sizeof e.kind, "format-disks");
	e.args = json_object();
	e.not_after = f->now + 60;
	assert_int_equal(envelope_build(&e, &text), 0);
	assert_int_equal(envelope_sign(f->key, text, strlen(text), &sig), 0);
	assert_int_equal(verify(f, text, sig, f->keys[0].id, "agent-1", f->now,
	    &out), ENV_UNKNOWN_KIND);
	free(text);
	free(sig);
	snprintf(e.kind, sizeof e.kind, "reboot");
	e.nonce[0] = '\0';
	e.not_after = f->now + ENVELOPE_MAX_TTL + 10;
	assert_int_equal(envelope_build(&e, &text), 0);
	assert_int_equal(envelope_sign(f->key, text, strlen(text), &sig), 0);
	assert_int_equal(verify(f, text, sig, f->keys[0].id, "agent-1", f->now,
	    &out), ENV_TOO_LONG);
	free(text);
	free(sig);
	json_decref(e.args);
}

static void
test_nonce_cache_file(void **state)
{
	struct nonce_cache c, d;
	char dir[] = "/tmp/bastion-test-nonce.XXXXXX", path[128];

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/nonces", dir);
	nonce_cache_init(&c);
	nonce_cache_init(&d);
	assert_int_equal(nonce_cache_load(&d, path), 0);	/* missing: empty */
	assert_int_equal(d.n, 0);
	assert_int_equal(nonce_cache_add(&c, "0123456789abcdef0123456789abcdef",
	    100), 0);
	assert_int_equal(nonce_cache_add(&c, "fedcba9876543210fedcba9876543210",
	    200), 0);
	assert_int_equal(nonce_cache_add(&c, "not-a-nonce", 200), -1);
	assert_int_equal(nonce_cache_save(&c, path), 0);
	assert_int_equal(nonce_cache_load(&d, path), 0);
	assert_int_equal(d.n, 2);
	assert_true(nonce_cache_seen(&d, "fedcba9876543210fedcba9876543210"));
	nonce_cache_free(&c);
	nonce_cache_free(&d);
	unlink(path);
	rmdir(dir);
}

/* --- join tokens in the database ------------------------------------------ */

#include "dbfx.h"

#define CACHE_AGE_MS	2000	/* test_cert_cache's bound (agentcache.h) */

static void
enrollment(struct enrollment *e, const char *token_id, const char *agent,
    const char *serial)
{
	memset(e, 0, sizeof *e);
	snprintf(e->agent_id, sizeof e->agent_id, "%s", agent);
	snprintf(e->token_id, sizeof e->token_id, "%s", token_id);
	snprintf(e->hostname, sizeof e->hostname, "node");
	snprintf(e->cert.serial, sizeof e->cert.serial, "%s", serial);
	e->cert.not_after_ms = clock_wall_ms() + 86400000;
}

/* Token t1 and agents a1 (certificate 0a) and a2 (0b), enrolled. */
static void
two_agents(struct db *db)
{
	struct enrollment e;
	int act;

	assert_int_equal(db_token_create(db, "t1", "h1", "", 5,
	    clock_wall_ms() + 60000, 0, ""), DB_OK);
	enrollment(&e, "t1", "a1", "0a");
	assert_int_equal(db_agent_enroll(db, &e, &act), DB_OK);
	enrollment(&e, "t1", "a2", "0b");
	assert_int_equal(db_agent_enroll(db, &e, &act), DB_OK);
}

static void
test_token_hash_uses_ttl(void **state)
{
	struct dbfx *f = *state;
	struct join_token t;
	struct enrollment e;
	char secret[SECRET_HEXLEN], hash[SECRET_HEXLEN], *text;
	json_t *list;
	int act;

	assert_int_equal(secret_random_hex(secret), 0);
	secret_sha256_hex(secret, strlen(secret), hash);
	assert_int_equal(db_token_create(f->db, "t1", hash, "", 2,
	    clock_wall_ms() + 60000, 0, "two uses"), DB_OK);
	/* Only the hash is stored and only the hash finds it. */
	assert_int_equal(db_token_by_hash(f->db, secret, &t), DB_NOTFOUND);
	assert_int_equal(db_token_by_hash(f->db, hash, &t), DB_OK);
	assert_string_equal(t.id, "t1");
	assert_int_equal(t.uses, 2);
	assert_int_equal(db_token_list(f->db, &list), DB_OK);
	text = json_dumps(list, 0);
	assert_null(strstr(text, hash));
	free(text);
	json_decref(list);
	enrollment(&e, "t1", "a1", "01");
	assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_OK);
	enrollment(&e, "t1", "a2", "02");
	assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_OK);
	enrollment(&e, "t1", "a3", "03");
	assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_CONFLICT);
	assert_int_equal(db_agent_get(f->db, "a3", &(struct agent){ 0 }),
	    DB_NOTFOUND);
	/* Expired. */
	assert_int_equal(db_token_create(f->db, "t2", "h2", "", 1,
	    clock_wall_ms() - 1, 0, ""), DB_OK);
	enrollment(&e, "t2", "a4", "04");
	assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_CONFLICT);
	/* Revoked. */
	assert_int_equal(db_token_create(f->db, "t3", "h3", "", 1,
	    clock_wall_ms() + 60000, 0, ""), DB_OK);
	assert_int_equal(db_token_revoke(f->db, "t3"), DB_OK);
	assert_int_equal(db_token_revoke(f->db, "t3"), DB_NOTFOUND);
	enrollment(&e, "t3", "a5", "05");
	assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_CONFLICT);
}

static void
test_install_token_create(void **state)
{
	struct dbfx *f = *state;
	struct join_token t;

	assert_int_equal(db_token_install_create(f->db, 7, "52:54:00:00:00:01",
	    "aaaa", clock_wall_ms() + 1000), DB_OK);
	assert_int_equal(db_token_by_hash(f->db, "aaaa", &t), DB_OK);
	assert_string_equal(t.mac, "52:54:00:00:00:01");
	assert_int_equal(t.uses, 1);
	assert_int_equal(t.install_id, 7);
	/* The machine's next install: the earlier install's token dies. */
	assert_int_equal(db_token_install_create(f->db, 8, "52:54:00:00:00:01",
	    "bbbb", clock_wall_ms() + 2000), DB_OK);
	assert_int_equal(db_token_by_hash(f->db, "aaaa", &t), DB_OK);
	assert_true(t.revoked_ms != 0);
	assert_int_equal(db_token_by_hash(f->db, "bbbb", &t), DB_OK);
	assert_int_equal(t.revoked_ms, 0);
	assert_int_equal(t.install_id, 8);
}

static void
test_revocation(void **state)
{
	struct dbfx *f = *state;
	struct enrollment e;
	struct ca_revoked *list;
	size_t n;
	int act;

	assert_int_equal(db_token_create(f->db, "t1", "h1", "", 5,
	    clock_wall_ms() + 60000, 0, ""), DB_OK);
	enrollment(&e, "t1", "a1", "0a");
	assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_OK);
	assert_int_equal(db_agent_cert_check(f->db, "a1", "0a"), DB_OK);
	assert_int_equal(db_agent_cert_check(f->db, "a1", "0b"), DB_NOTFOUND);
	assert_int_equal(db_agent_cert_check(f->db, "a2", "0a"), DB_NOTFOUND);
	assert_int_equal(db_agent_revoke(f->db, "a1", "test"), DB_OK);
	assert_int_equal(db_agent_cert_check(f->db, "a1", "0a"), DB_CONFLICT);
	assert_int_equal(db_revoked_certs(f->db, &list, &n), DB_OK);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].serial, "0a");
	free(list);
}

/* Heartbeats are written behind: checked at once, written within a
 * moment by the flusher (seen here from another connection), one row per
 * agent with the newest heartbeat, at once before this handle's next use
 * of the writer, and at close. */
static int
hb_landed(struct dbfx *f, const char *sql)
{
	int i;

	for (i = 0; i < 500; i++) {
		if (raw_int(f, sql) == 1)
			return 1;
		usleep(10000);
	}
	return 0;
}

static void
test_heartbeat_behind(void **state)
{
	struct dbfx *f = *state;
	struct agent a;
	int64_t na = 0;

	two_agents(f->db);
	assert_int_equal(db_agent_heartbeat(f->db, "a1", "0a", "10.0.0.1",
	    "{\"n\":1}", &na), DB_OK);
	assert_true(na > clock_wall_ms());
	assert_int_equal(db_agent_heartbeat(f->db, "a1", "0a", "10.0.0.2",
	    "{\"n\":2}", &na), DB_OK);
	assert_int_equal(db_agent_heartbeat(f->db, "a2", "0b", "10.0.0.3",
	    "{\"n\":7}", &na), DB_OK);
	/* Refused at once, as before. */
	assert_int_equal(db_agent_heartbeat(f->db, "a1", "0b", "10.0.0.1",
	    "{}", &na), DB_NOTFOUND);
	assert_int_equal(db_agent_heartbeat(f->db, "a9", "0a", "10.0.0.1",
	    "{}", &na), DB_NOTFOUND);
	/* The flusher writes them, the newest of a1's. */
	assert_true(hb_landed(f, "SELECT count(*) FROM agents WHERE id = 'a1'"
	    " AND last_seen_ms > 0 AND last_addr = '10.0.0.2' AND"
	    " heartbeat = '{\"n\":2}'"));
	assert_true(hb_landed(f, "SELECT count(*) FROM agents WHERE id = 'a2'"
	    " AND last_seen_ms > 0 AND heartbeat = '{\"n\":7}'"));
	/* This handle reads its own heartbeats. */
	assert_int_equal(db_agent_heartbeat(f->db, "a1", "0a", "10.0.0.2",
	    "{\"n\":3}", &na), DB_OK);
	assert_int_equal(db_agent_get(f->db, "a1", &a), DB_OK);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM agents WHERE"
	    " id = 'a1' AND heartbeat = '{\"n\":3}'"), 1);
	/* Acknowledged, then a clean stop: written. */
	assert_int_equal(db_agent_heartbeat(f->db, "a1", "0a", "10.0.0.2",
	    "{\"n\":4}", &na), DB_OK);
	db_close(f->db);
	f->db = NULL;
	assert_int_equal(raw_int(f, "SELECT count(*) FROM agents WHERE"
	    " id = 'a1' AND heartbeat = '{\"n\":4}'"), 1);
	assert_int_equal(dbfx_open(f, &f->db), 0);
	/* A revoked agent is refused, and a heartbeat that waited while it
	 * was revoked is not written. */
	assert_int_equal(db_agent_revoke(f->db, "a2", "test"), DB_OK);
	assert_int_equal(db_agent_heartbeat(f->db, "a2", "0b", "10.0.0.3",
	    "{\"n\":8}", &na), DB_CONFLICT);
}

/* The certificate check's yes is cached (agentcache.c): a second
 * heartbeat asks no database; a revocation or a renewal through this
 * handle ends it at once; a change this handle did not make (another
 * bastion's, unheard) is seen within the cache's maximum age. */
static void
test_cert_cache(void **state)
{
	struct dbfx *f = *state;
	struct db_hb_stats s0, s1;
	struct ca_issued c = { .serial = "0c" };
	struct agent a;
	int64_t na = 0, t0;
	int rc;

	/* A short bound, for the change made behind its back below. */
	db_agent_cache_max_age(f->db, CACHE_AGE_MS);
	two_agents(f->db);
	if (!db_shared(f->db)) {	/* PostgreSQL: off without a listener */
		assert_int_equal(db_agent_heartbeat(f->db, "a1", "0a",
		    "10.0.0.1", "{}", &na), DB_OK);
		db_heartbeat_stats(f->db, &s0);
		assert_int_equal(db_agent_heartbeat(f->db, "a1", "0a",
		    "10.0.0.1", "{}", &na), DB_OK);
		assert_int_equal(db_agent_cert_check(f->db, "a1", "0a"),
		    DB_OK);
		db_heartbeat_stats(f->db, &s1);
		assert_int_equal(s1.cert_cache_hits, s0.cert_cache_hits + 2);
		assert_int_equal(s1.cert_cache_misses, s0.cert_cache_misses);
	}
	/* A renewal: the agent's expiry, not the one cached. */
	c.not_before_ms = clock_wall_ms();
	c.not_after_ms = c.not_before_ms + 1000;
	assert_int_equal(db_agent_cert_add(f->db, "a1", &c), DB_OK);
	assert_int_equal(db_agent_heartbeat(f->db, "a1", "0a", "10.0.0.1",
	    "{}", &na), DB_OK);
	assert_int_equal(na, c.not_after_ms);
	/* Revoked here: refused at once, both ways. */
	assert_int_equal(db_agent_heartbeat(f->db, "a2", "0b", "10.0.0.1",
	    "{}", &na), DB_OK);
	assert_int_equal(db_agent_revoke(f->db, "a2", "test"), DB_OK);
	assert_int_equal(db_agent_heartbeat(f->db, "a2", "0b", "10.0.0.1",
	    "{}", &na), DB_CONFLICT);
	assert_int_equal(db_agent_cert_check(f->db, "a2", "0b"), DB_CONFLICT);
	/* Revoked behind its back: a heartbeat answered from the cache
	 * meanwhile is not written (the write checks again); refused within
	 * the maximum age. */
	assert_int_equal(db_agent_heartbeat(f->db, "a1", "0a", "10.0.0.1",
	    "{}", &na), DB_OK);
	raw_exec(f, "UPDATE agents SET revoked_ms = 1 WHERE id = 'a1'");
	t0 = clock_mono_ms();
	rc = db_agent_heartbeat(f->db, "a1", "0a", "10.0.0.1", "{\"n\":99}",
	    &na);
	if (rc == DB_OK) {	/* SQLite: the cache is on */
		assert_int_equal(db_agent_get(f->db, "a1", &a), DB_OK);
		assert_int_equal(raw_int(f, "SELECT count(*) FROM agents WHERE"
		    " heartbeat = '{\"n\":99}'"), 0);
	}
	while ((rc = db_agent_heartbeat(f->db, "a1", "0a", "10.0.0.1", "{}",
	    &na)) == DB_OK && clock_mono_ms() - t0 < 3 * CACHE_AGE_MS)
		usleep(10000);
	assert_int_equal(rc, DB_CONFLICT);
	assert_true(clock_mono_ms() - t0 <= CACHE_AGE_MS + 500);
}

static void
no_wake(const char *agent_id, void *arg)
{
}

/* Two bastions on one PostgreSQL: what one revokes, the other refuses as
 * soon as it hears it (NOTIFY "a"), well within the maximum age; a
 * heartbeat it took from its cache before is not written. */
static void
test_cert_cache_two_bastions(void **state)
{
	struct dbfx *f = *state;
	struct enrollment e;
	struct db_hb_stats s0, s1;
	struct db *b;
	struct agent a;
	int64_t na = 0, t0;
	int act, i, rc;

	assert_true(db_shared(f->db));
	assert_int_equal(dbfx_open(f, &b), 0);
	assert_int_equal(db_listen_start(f->db, no_wake, NULL, NULL), 0);
	assert_int_equal(db_listen_start(b, no_wake, NULL, NULL), 0);
	assert_int_equal(db_token_create(f->db, "t1", "h1", "", 5,
	    clock_wall_ms() + 60000, 0, ""), DB_OK);
	for (i = 0; i < 3; i++) {
		char id[8], serial[8];

		snprintf(id, sizeof id, "a%d", i);
		snprintf(serial, sizeof serial, "0%d", i);
		enrollment(&e, "t1", id, serial);
		assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_OK);
	}
	/* b caches once it listens. */
	t0 = clock_mono_ms();
	do {
		assert_true(clock_mono_ms() - t0 < 10000);
		db_heartbeat_stats(b, &s0);
		assert_int_equal(db_agent_heartbeat(b, "a0", "00", "10.0.0.1",
		    "{}", &na), DB_OK);
		assert_int_equal(db_agent_heartbeat(b, "a0", "00", "10.0.0.1",
		    "{}", &na), DB_OK);
		db_heartbeat_stats(b, &s1);
	} while (s1.cert_cache_hits == s0.cert_cache_hits);
	/* A batch of three, a1 revoked behind b's back after its check: a0
	 * and a2 written, not a1. */
	assert_int_equal(db_agent_heartbeat(b, "a1", "01", "10.0.0.1", "{}",
	    &na), DB_OK);
	db_agent_get(b, "a1", &a);		/* written: none pending */
	assert_int_equal(db_agent_heartbeat(b, "a1", "01", "10.0.0.1",
	    "{}", &na), DB_OK);
	raw_exec(f, "UPDATE agents SET revoked_ms = 1 WHERE id = 'a1'");
	assert_int_equal(db_agent_heartbeat(b, "a0", "00", "10.0.0.1",
	    "{\"n\":1}", &na), DB_OK);
	rc = db_agent_heartbeat(b, "a1", "01", "10.0.0.1", "{\"n\":1}", &na);
	assert_int_equal(db_agent_heartbeat(b, "a2", "02", "10.0.0.1",
	    "{\"n\":1}", &na), DB_OK);
	assert_int_equal(db_agent_get(b, "a1", &a), DB_OK);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM agents WHERE"
	    " heartbeat = '{\"n\":1}'"), 2);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM agents WHERE"
	    " id = 'a1' AND heartbeat = '{\"n\":1}'"), 0);
	(void)rc;	/* OK from the cache, or refused if it had aged */
	/* Revoked on the other bastion: refused within a second. */
	assert_int_equal(db_agent_heartbeat(b, "a2", "02", "10.0.0.1", "{}",
	    &na), DB_OK);
	assert_int_equal(db_agent_revoke(f->db, "a2", "test"), DB_OK);
	t0 = clock_mono_ms();
	while ((rc = db_agent_heartbeat(b, "a2", "02", "10.0.0.1", "{}",
	    &na)) == DB_OK && clock_mono_ms() - t0 < 5000)
		usleep(1000);
	assert_int_equal(rc, DB_CONFLICT);
	assert_true(clock_mono_ms() - t0 < 1000);
	db_listen_stop(b);
	db_listen_stop(f->db);
	db_close(b);
}

/* A job for agent_id, signed or not (the database does not look). */
static int64_t
queue_job(struct db *db, const char *agent_id)
{
	int64_t id;

	assert_int_equal(db_job_create(db, agent_id, "exec", "{}",
	    clock_wall_ms() + 60000, "test", &id), DB_OK);
	assert_int_equal(db_job_seal(db, id, "{}", "sig", "k1"), DB_OK);
	return id;
}

/* The long poll's job check (db_jobs_waiting): an agent found with
 * nothing queued and nothing sent but not started is quiet — answered
 * without the database — until a job is sealed for it; one sent and not
 * started is never quiet (it comes due again by the clock). PostgreSQL
 * without a listener: never quiet, always asked. */
static void
test_jobs_quiet(void **state)
{
	struct dbfx *f = *state;
	struct db_hb_stats s0, s1;
	uint64_t q = 0, q2 = 0;
	json_t *jobs;
	int64_t id;
	int shared = db_shared(f->db);

	two_agents(f->db);
	assert_int_equal(db_jobs_waiting(f->db, "a1", 0, &q), 0);
	assert_true(shared ? q == 0 : q != 0);
	db_heartbeat_stats(f->db, &s0);
	assert_int_equal(db_jobs_waiting(f->db, "a1", 0, &q2), 0);
	db_heartbeat_stats(f->db, &s1);
	if (shared) {
		assert_int_equal(q2, 0);
		assert_int_equal(s1.polls_asked, s0.polls_asked + 1);
	} else {
		assert_int_equal(q2, q);
		assert_int_equal(s1.polls_quiet, s0.polls_quiet + 1);
		assert_int_equal(s1.polls_asked, s0.polls_asked);
		assert_true(db_jobs_quiet(f->db, "a1", q));
	}
	/* A job sealed: no longer quiet, and found. */
	id = queue_job(f->db, "a1");
	assert_false(db_jobs_quiet(f->db, "a1", q));
	assert_int_equal(db_jobs_waiting(f->db, "a1", 0, &q), 1);
	assert_false(db_jobs_waiting(f->db, "a2", 0, &q2));
	/* Sent, not started: not quiet; started: quiet again. */
	assert_int_equal(db_jobs_take(f->db, "a1", 16, 0, &jobs), DB_OK);
	assert_int_equal(json_array_size(jobs), 1);
	json_decref(jobs);
	assert_int_equal(db_jobs_waiting(f->db, "a1", 0, &q), 0);
	assert_int_equal(q, 0);
	/* fresh: the agent restarted, what was sent (before this
	 * millisecond) goes again. */
	usleep(2000);
	assert_int_equal(db_jobs_waiting(f->db, "a1", 1, &q), 1);
	assert_int_equal(db_job_started(f->db, "a1", id), DB_OK);
	assert_int_equal(db_jobs_waiting(f->db, "a1", 1, &q), 0);
	assert_true(shared ? q == 0 : q != 0);
}

/* Two bastions on one PostgreSQL: B knows its agent quiet while it
 * listens; a job sealed on A is heard by B within a second (the NOTIFY
 * goes with the seal's commit). B's listening connection killed: what
 * B knew is dropped, and a job sealed meanwhile is found by asking. */
static void
test_jobs_quiet_two_bastions(void **state)
{
	struct dbfx *f = *state;
	uint64_t q = 0;
	json_t *jobs;
	struct db *b;
	int64_t t0, id;

	assert_int_equal(dbfx_open(f, &b), 0);
	assert_int_equal(db_listen_start(b, no_wake, NULL, NULL), 0);
	two_agents(f->db);
	t0 = clock_mono_ms();
	do {	/* quiet once B listens */
		assert_true(clock_mono_ms() - t0 < 10000);
		assert_int_equal(db_jobs_waiting(b, "a1", 0, &q), 0);
		usleep(10000);
	} while (q == 0);
	assert_true(db_jobs_quiet(b, "a1", q));
	id = queue_job(f->db, "a1");
	t0 = clock_mono_ms();
	while (db_jobs_quiet(b, "a1", q))
		assert_true(clock_mono_ms() - t0 < 1000);
	assert_int_equal(db_jobs_waiting(b, "a1", 0, &q), 1);
	assert_int_equal(db_jobs_take(b, "a1", 16, 0, &jobs), DB_OK);
	assert_int_equal(json_array_size(jobs), 1);
	json_decref(jobs);
	assert_int_equal(db_job_started(b, "a1", id), DB_OK);
	t0 = clock_mono_ms();
	do {
		assert_true(clock_mono_ms() - t0 < 10000);
		assert_int_equal(db_jobs_waiting(b, "a1", 0, &q), 0);
	} while (q == 0);
	/* B's listener lost (its session ended by the server), a job
	 * sealed at once: its NOTIFY goes to a dead session. */
	assert_int_equal(raw_int(f, "SELECT count(pg_terminate_backend(pid))"
	    " FROM pg_stat_activity WHERE datname = current_database() AND"
	    " query LIKE '%LISTEN bastion%' AND pid <> pg_backend_pid()"), 1);
	queue_job(f->db, "a1");
	t0 = clock_mono_ms();
	while (db_jobs_quiet(b, "a1", q))
		assert_true(clock_mono_ms() - t0 < 5000);
	assert_int_equal(db_jobs_waiting(b, "a1", 0, &q), 1);
	db_listen_stop(b);
	/* Nobody listening: asked every time. */
	assert_int_equal(db_jobs_waiting(b, "a2", 0, &q), 0);
	assert_int_equal(q, 0);
	db_close(b);
}

/* A token not bound to a MAC cannot take the MAC of a live agent or of
 * an installed machine; only the MAC's install token replaces its agent. */
static void
test_enroll_mac_taken(void **state)
{
	struct dbfx *f = *state;
	struct enrollment e;
	struct join_token t;
	struct boot_info bi;
	struct machine m;
	int act, created;

	assert_int_equal(db_token_create(f->db, "op", "hop", "", 5,
	    clock_wall_ms() + 60000, 0, ""), DB_OK);
	enrollment(&e, "op", "a1", "11");
	snprintf(e.mac, sizeof e.mac, "52:54:00:00:00:01");
	assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_OK);
	/* A live agent has the MAC: refused, the token not spent. */
	enrollment(&e, "op", "a2", "12");
	snprintf(e.mac, sizeof e.mac, "52:54:00:00:00:01");
	assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_DENIED);
	assert_int_equal(db_agent_get(f->db, "a2", &(struct agent){ 0 }),
	    DB_NOTFOUND);
	assert_int_equal(db_token_by_hash(f->db, "hop", &t), DB_OK);
	assert_int_equal(t.used, 1);
	/* An operator token bound to that MAC may not replace it either. */
	assert_int_equal(db_token_create(f->db, "bound", "hbound",
	    "52:54:00:00:00:01", 1, clock_wall_ms() + 60000, 0, ""), DB_OK);
	enrollment(&e, "bound", "a3", "13");
	snprintf(e.mac, sizeof e.mac, "52:54:00:00:00:01");
	assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_DENIED);
	/* The MAC's install token does. */
	assert_int_equal(db_token_install_create(f->db, 9, "52:54:00:00:00:01",
	    "hinst", clock_wall_ms() + 60000), DB_OK);
	assert_int_equal(db_token_by_hash(f->db, "hinst", &t), DB_OK);
	enrollment(&e, t.id, "a4", "14");
	snprintf(e.mac, sizeof e.mac, "52:54:00:00:00:01");
	assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_OK);
	assert_int_equal(db_agent_get(f->db, "a1", &(struct agent){ 0 }), DB_OK);
	assert_int_equal(db_agent_cert_check(f->db, "a1", "11"), DB_CONFLICT);
	/* An installed machine whose agent was revoked: not with an unbound
	 * token, but with one bound to its MAC. */
	memset(&bi, 0, sizeof bi);
	snprintf(bi.mac, sizeof bi.mac, "52:54:00:00:00:02");
	assert_int_equal(db_machine_boot(f->db, &bi, &m, &created), DB_OK);
	assert_int_equal(db_machine_transition(f->db, bi.mac, 0, MS_INSTALLED,
	    "test", "x"), DB_OK);
	enrollment(&e, "op", "a5", "15");
	snprintf(e.mac, sizeof e.mac, "%s", bi.mac);
	assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_DENIED);
	assert_int_equal(db_token_create(f->db, "bound2", "hbound2", bi.mac, 1,
	    clock_wall_ms() + 60000, 0, ""), DB_OK);
	enrollment(&e, "bound2", "a6", "16");
	snprintf(e.mac, sizeof e.mac, "%s", bi.mac);
	assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_OK);
	assert_int_equal(act, 1);
	/* A MAC bastion knows nothing of: an unbound token may. */
	enrollment(&e, "op", "a7", "17");
	snprintf(e.mac, sizeof e.mac, "52:54:00:00:00:03");
	assert_int_equal(db_agent_enroll(f->db, &e, &act), DB_OK);
}

/* --- backoff ------------------------------------------------------------ */

static void
test_backoff_schedule(void **state)
{
	uint32_t rnds[] = { 0, 1, 499, 500, 12345, 29999, 30000, 123456789,
	    UINT32_MAX };
	int attempt;
	size_t i;
	long d;

	/* Always within 1 s .. 60 s: half the step plus a random part of
	 * the other half. */
	for (attempt = 1; attempt <= 40; attempt++) {
		long step = 1000L << (attempt - 1 > 6 ? 6 : attempt - 1);
		long lo;

		if (step > 60000)
			step = 60000;
		lo = step / 2 < 1000 ? 1000 : step / 2;
		for (i = 0; i < sizeof rnds / sizeof rnds[0]; i++) {
			d = agent_backoff_ms(attempt, rnds[i]);
			assert_true(d >= lo && d <= step);
		}
	}
	assert_int_equal(agent_backoff_ms(1, 0), 1000);
	assert_int_equal(agent_backoff_ms(1, 500), 1000);
	assert_int_equal(agent_backoff_ms(3, 0), 2000);
	assert_int_equal(agent_backoff_ms(3, 2000), 4000);
	assert_int_equal(agent_backoff_ms(100, 0), 30000);
	assert_int_equal(agent_backoff_ms(100, 30000), 60000);
	/* Jitter: different random values spread the agents out. */
	assert_int_not_equal(agent_backoff_ms(8, 1), agent_backoff_ms(8, 20001));
}

static void
test_accept_policy(void **state)
{
	unsigned bits;

	assert_int_equal(agent_accept_parse("exec, reboot", &bits), 0);
	assert_int_equal(bits, ACCEPT_EXEC | ACCEPT_REBOOT);
	assert_int_equal(agent_accept_parse("none", &bits), 0);
	assert_int_equal(bits, 0);
	assert_int_equal(agent_accept_parse("exec,format", &bits), -1);
}

/* --- agentd/crypto.c against OpenSSL ----------------------------------- */

static char *
pem_of(int (*write)(BIO *, void *), void *obj)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *s;
	long n;

	assert_int_equal(write(bio, obj), 1);
	n = BIO_get_mem_data(bio, &data);
	s = strndup(data, (size_t)n);
	BIO_free(bio);
	return s;
}

static int
write_x509(BIO *b, void *x)
{
	return PEM_write_bio_X509(b, x);
}

static int
write_pubkey(BIO *b, void *k)
{
	return PEM_write_bio_PUBKEY(b, k);
}

static X509 *
self_signed(EVP_PKEY *k, const char *cn)
{
	X509 *x = X509_new();

	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	return x;
}

/* The key and CSR an enrollment sends: a P-256 CSR bastion's check
 * takes, for the key written beside it. */
static void
test_agent_key_csr(void **state)
{
	EVP_PKEY *pub = NULL, *key;
	char *kpem, *csr, why[256];
	BIO *bio;

	assert_int_equal(agent_key_csr("node-1.example, \\x", &kpem, &csr), 0);
	assert_non_null(strstr(kpem, "-----BEGIN EC PRIVATE KEY-----"));
	assert_int_equal(ca_check_csr(csr, strlen(csr), &pub, why, sizeof why),
	    0);
	bio = BIO_new_mem_buf(kpem, -1);
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(key);
	assert_int_equal(EVP_PKEY_eq(pub, key), 1);
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	free(kpem);
	free(csr);
}

/* The CA pin: the first certificate alone, byte for byte as OpenSSL
 * writes it, and its SHA-256 as OpenSSL computes it. */
static void
test_agent_ca_pin(void **state)
{
	EVP_PKEY *k1 = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256");
	X509 *x1 = self_signed(k1, "ca"), *x2 = self_signed(k2, "other");
	char *p1 = pem_of(write_x509, x1), *p2 = pem_of(write_x509, x2);
	char *both, *first, fp[80], want[80];
	unsigned char md[32];
	unsigned int n = 0, i;

	assert_non_null(both = malloc(strlen(p1) + strlen(p2) + 1));
	strcpy(both, p1);
	strcat(both, p2);
	assert_int_equal(agent_first_cert_pem(both, &first), 0);
	assert_string_equal(first, p1);
	assert_int_equal(agent_fingerprint(both, fp), 0);
	assert_int_equal(X509_digest(x1, EVP_sha256(), md, &n), 1);
	strcpy(want, "sha256:");
	for (i = 0; i < n; i++)
		snprintf(want + 7 + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(fp, want);
	assert_int_equal(agent_fingerprint("no certificate", fp), -1);
	assert_int_equal(agent_first_cert_pem("-----BEGIN CERTIFICATE-----\n"
	    "AAAA\n-----END CERTIFICATE-----\n", &first), -1);
	assert_true(agent_equal(fp, want, strlen(want)));
	want[30] ^= 1;
	assert_false(agent_equal(fp, want, strlen(want)));
	free(first);
	free(both);
	free(p1);
	free(p2);
	X509_free(x1);
	X509_free(x2);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

/* A pinned job key: an Ed25519 public key's PEM to its raw bytes and
 * id, as bastion's OpenSSL side makes them; nothing else is taken. */
static void
test_agent_job_key(void **state)
{
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	char *pem = pem_of(write_pubkey, ed), *ecpem = pem_of(write_pubkey, ec);
	unsigned char raw[ENVELOPE_PUBLEN], want[ENVELOPE_PUBLEN];
	char id[ENVELOPE_KEYID_LEN], wantid[ENVELOPE_KEYID_LEN];

	assert_int_equal(agent_ed25519_pem(pem, raw), 0);
	assert_int_equal(envelope_key_raw(ed, want), 0);
	assert_memory_equal(raw, want, sizeof raw);
	assert_int_equal(envelope_key_id_raw(raw, id), 0);
	assert_int_equal(envelope_key_id(ed, wantid), 0);
	assert_string_equal(id, wantid);
	assert_int_equal(agent_ed25519_pem(ecpem, raw), -1);
	assert_int_equal(agent_ed25519_pem("garbage", raw), -1);
	free(pem);
	free(ecpem);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(ec);
}

/* --- the CA behind its signer process --------------------------------- */

static void
test_signer_process(void **state)
{
	char dir[] = "/tmp/bastion-test-ca.XXXXXX", names[2][CONFIG_NAME_LEN];
	char why[256], *crl, *sig, kid[CA_KEYID_LEN], *pem, cmd[PATH_MAX + 64];
	struct envelope_key keys[1];
	struct ca_revoked rev[1];
	struct ca_issued issued;
	struct envelope e, out;
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_STORE_CTX *ctx;
	X509_STORE *store;
	struct ca *ca;
	X509 *x;
	BIO *bio;
	char *csr = csr_pem(k, "ignored");

	assert_non_null(mkdtemp(dir));
	snprintf(names[0], sizeof names[0], "localhost");
	snprintf(names[1], sizeof names[1], "127.0.0.1");
	assert_int_equal(ca_open(dir, names, 2, &ca), 0);
	assert_int_equal(ca_privsep(ca), 0);
	/* This process holds no private CA or job key any more. */
	assert_null(ca_private_key(ca));
	assert_non_null(ca_signer(ca));
	assert_int_equal(ca_sign_csr(ca, csr, strlen(csr), "a0123456789abcdef0123",
	    30, &issued, why, sizeof why), 0);
	bio = BIO_new_mem_buf(issued.pem, -1);
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(x);
	store = X509_STORE_new();
	X509_STORE_add_cert(store, ca_certificate(ca));
	ctx = X509_STORE_CTX_new();
	X509_STORE_CTX_init(ctx, store, x, NULL);
	assert_int_equal(X509_verify_cert(ctx), 1);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(x);
	assert_true(issued.not_after_ms - issued.not_before_ms >=
	    30LL * 86400000);
	/* The signer does not take agent ids it would not issue. */
	free(issued.pem);
	assert_int_equal(ca_sign_csr(ca, csr, strlen(csr), "../../etc", 30,
	    &issued, why, sizeof why), -1);
	snprintf(rev[0].serial, sizeof rev[0].serial, "%s", issued.serial);
	rev[0].revoked_ms = 1000;
	assert_int_equal(ca_crl_pem(ca, rev, 1, 24, &crl), 0);
	assert_non_null(strstr(crl, "BEGIN X509 CRL"));
	free(crl);
	/* Jobs signed by the signer verify with the published key. */
	memset(&e, 0, sizeof e);
	e.job_id = 1;
	snprintf(e.agent_id, sizeof e.agent_id, "a1");
	snprintf(e.kind, sizeof e.kind, "reboot");
	e.args = json_object();
	e.not_after = time(NULL) + 60;
	assert_int_equal(envelope_build(&e, &pem), 0);
	assert_int_equal(ca_job_sign(ca, pem, strlen(pem), &sig, kid), 0);
	assert_int_equal(envelope_key_raw(ca_jobs_key(ca), keys[0].pub), 0);
	snprintf(keys[0].id, sizeof keys[0].id, "%s", kid);
	assert_int_equal(envelope_verify(keys, 1, kid, pem, sig, "a1",
	    time(NULL), NULL, &out), ENV_OK);
	envelope_clear(&out);
	json_decref(e.args);
	free(pem);
	free(sig);
	ca_close(ca);
	free(csr);
	EVP_PKEY_free(k);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csr_p256_accepted),
		cmocka_unit_test(test_csr_wrong_key_types),
		cmocka_unit_test(test_csr_bad_signature_and_garbage),
		cmocka_unit_test_setup_teardown(test_envelope_ok, env_setup,
		    env_teardown),
		cmocka_unit_test_setup_teardown(test_envelope_tampered,
		    env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_envelope_wrong_key,
		    env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(
		    test_envelope_expired_other_agent_replay, env_setup,
		    env_teardown),
		cmocka_unit_test_setup_teardown(test_envelope_kind_and_ttl,
		    env_setup, env_teardown),
		cmocka_unit_test(test_nonce_cache_file),
		DBFX_TEST(test_token_hash_uses_ttl),
		DBFX_TEST(test_install_token_create),
		DBFX_TEST(test_enroll_mac_taken),
		DBFX_TEST(test_revocation),
		DBFX_TEST(test_heartbeat_behind),
		DBFX_TEST(test_cert_cache),
		DBFX_TEST(test_jobs_quiet),
		cmocka_unit_test(test_backoff_schedule),
		cmocka_unit_test(test_accept_policy),
		cmocka_unit_test(test_agent_key_csr),
		cmocka_unit_test(test_agent_ca_pin),
		cmocka_unit_test(test_agent_job_key),
		cmocka_unit_test(test_signer_process),
	};

	/* Only a database that two bastions can share runs these. */
	const struct CMUnitTest shared[] = {
		DBFX_TEST(test_cert_cache_two_bastions),
		DBFX_TEST(test_jobs_quiet_two_bastions),
	};
	const char *url = getenv("BASTION_TEST_DB_URL");
	int rc;

	rc = cmocka_run_group_tests_name("agent", tests, NULL, NULL);
	if (url != NULL && *url != '\0')
		rc += cmocka_run_group_tests_name("agent (shared database)",
		    shared, NULL, NULL);
	return rc;
}
