/* routes_agent.c — node agents (trust and protocol: docs/api.md): join tokens, enrollment,
 * the mTLS agent protocol with its long poll, agents and signed jobs for
 * operators, the CRL and the agentd download for installers.
 *
 * Agent requests are authenticated here, on every request: the client
 * certificate the TLS layer saw is verified with OpenSSL against the CA
 * (ca_verify_client) and its serial and agent looked up in the database,
 * so a revocation takes effect on the very next request. */
#define LOG_SUBSYS "agent"
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "agentfiles.h"
#include "b64.h"
#include "bounds.h"
#include "alerts.h"
#include "ca.h"
#include "clock.h"
#include "db.h"
#include "db_agent.h"
#include "envelope.h"
#include "http.h"
#include "install.h"
#include "log.h"
#include "mac.h"
#include "path.h"
#include "ratelimit.h"
#include "routes.h"
#include "secret.h"

#define L_API (L_CONTROL | L_ADMIN)

#define STALE_HEARTBEATS	3	/* missed this many: "stale" */
#define POLL_MAX_WAIT		30	/* seconds a long poll may hold */
#define ENROLL_MAX_BODY		(1024 * 1024)
#define AGENT_MAX_BODY		(2 * 1024 * 1024)
/* Enrollment attempts per address: a bucket of ENROLL_BURST refilled at
 * one per ENROLL_REFILL_MS. */
#define ENROLL_BURST		10
#define ENROLL_REFILL_MS	6000

/* [agent] heartbeat_interval in force (seconds), told to agents. */
static int
heartbeat_interval(struct request *r)
{
	int v = bastion_config_acquire(r->app)->agent_heartbeat_interval;

	bastion_config_release(r->app);
	return v;
}

/* Signing failed: the signer is down (it is being restarted: 503) or
 * it refused. */
static void
reply_sign_failed(struct request *r, const char *what)
{
	if (!ca_can_sign(r->app->ca))
		http_reply_error(r, 503, "signer_unavailable", "cannot sign %s "
		    "now: the signer process is restarting; try again shortly",
		    what);
	else
		http_reply_error(r, 500, "internal", "cannot sign %s", what);
}

/* Who asked, for the jobs table and the log: the user or token the
 * audit row names, else the client address. */
static const char *
actor(const struct request *r)
{
	return r->audit.actor[0] ? r->audit.actor : r->client;
}

static void
reply_db(struct request *r, int rc, const char *what)
{
	if (rc == DB_NOTFOUND)
		http_reply_error(r, 404, "not_found", "no such %s", what);
	else if (rc == DB_CONFLICT)
		http_reply_error(r, 409, "conflict", "%s changed; try again", what);
	else
		http_reply_error(r, 500, "internal", "database error");
}

/* An optional integer member within [min, max]; def when absent. */
static int
opt_int(struct request *r, const json_t *body, const char *key, long long def,
    long long min, long long max, long long *out)
{
	const json_t *v = json_object_get(body, key);

	if (v == NULL || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		http_reply_error(r, 422, "invalid", "%s must be an integer from "
		    "%lld to %lld", key, min, max);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

/* Printable ASCII, no control characters, at most max bytes. */
static int
clean_string(const char *s, size_t max)
{
	size_t i, n = strlen(s);

	if (n > max)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return 0;
	return 1;
}

/* --- join tokens ------------------------------------------------------ */

static void
post_token(struct request *r)
{
	json_t *body;
	const char *macs, *comment;
	char secret[SECRET_HEXLEN], hash[SECRET_HEXLEN], id[TOKEN_ID_LEN];
	char mac[MAC_STRLEN] = "";
	long long uses, ttl;
	int64_t expires;
	void *it;

	if ((body = http_body_json(r)) == NULL)
		return;
	for (it = json_object_iter(body); it; it = json_object_iter_next(body,
	    it)) {
		const char *k = json_object_iter_key(it);

		if (strcmp(k, "uses") && strcmp(k, "ttl") && strcmp(k, "mac") &&
		    strcmp(k, "comment")) {
			http_reply_error(r, 422, "invalid", "unknown field '%.40s'",
			    k);
			goto out;
		}
	}
	if (opt_int(r, body, "uses", 1, 1, TOKEN_MAX_USES, &uses) == -1 ||
	    opt_int(r, body, "ttl", TOKEN_DEFAULT_TTL, TOKEN_MIN_TTL, TOKEN_MAX_TTL,
	    &ttl) == -1)
		goto out;
	macs = json_string_value(json_object_get(body, "mac"));
	if (json_object_get(body, "mac") && !json_is_null(json_object_get(body,
	    "mac")) && (macs == NULL || mac_normalize(macs, mac) == -1)) {
		http_reply_error(r, 400, "bad_mac", "mac is not a MAC address");
		goto out;
	}
	comment = json_string_value(json_object_get(body, "comment"));
	if (comment && !clean_string(comment, 128)) {
		http_reply_error(r, 422, "invalid", "comment: at most 128 "
		    "printable characters");
		goto out;
	}
	if (secret_random_hex(secret) == -1) {
		http_reply_error(r, 500, "internal", "no randomness");
		goto out;
	}
	secret_sha256_hex(secret, strlen(secret), hash);
	snprintf(id, sizeof id, "%.16s", hash);
	expires = clock_wall_ms() + ttl * 1000;
	if (db_token_create(r->app->db, id, hash, mac, (int)uses, expires, 0,
	    comment ? comment : "") != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	log_info("req %s: join token %s created by %s (uses %lld, ttl %llds%s%s)",
	    r->id, id, actor(r), uses, ttl, mac[0] ? ", mac " : "", mac);
	/* The only time the secret is shown. */
	http_reply_json(r, 201, json_pack("{s:s, s:s, s:s, s:I, s:o}", "token",
	    secret, "id", id, "mac", mac, "uses", (json_int_t)uses,
	    "expires_at", db_time_json(expires)));
out:
	OPENSSL_cleanse(secret, sizeof secret);
	json_decref(body);
}

static void
get_tokens(struct request *r)
{
	json_t *list;

	if (db_token_list(r->app->db, &list) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	http_reply_json(r, 200, list);
}

static void
delete_token(struct request *r)
{
	int rc = db_token_revoke(r->app->db, r->params[0]);

	if (rc != DB_OK) {
		if (rc == DB_NOTFOUND)
			http_reply_error(r, 404, "not_found", "no active token "
			    "%.20s", r->params[0]);
		else
			reply_db(r, rc, "token");
		return;
	}
	log_info("req %s: join token %s revoked by %s", r->id, r->params[0],
	    actor(r));
	http_reply_json(r, 200, json_pack("{s:s, s:s}", "id", r->params[0],
	    "state", "revoked"));
}

/* --- enrollment --------------------------------------------------------- */

static struct ratelimit limiter = RATELIMIT_INIT;

/* 1 if addr may try to enroll now (and spends one attempt). */
static int
enroll_allowed(const char *addr)
{
	return ratelimit_take(&limiter, addr, ENROLL_BURST,
	    1000.0 / ENROLL_REFILL_MS, clock_wall_ms());
}

/* Reply with an enrollment failure and record it. */
static void
enroll_fail(struct request *r, int status, const char *code,
    const char *token_id, const char *mac, const char *hostname,
    const char *msg)
{
	if (db_enroll_attempt(r->app->db, r->client, token_id, mac, hostname, "",
	    code, msg) != DB_OK)
		log_warnx("req %s: cannot record the enrollment attempt", r->id);
	log_warnx("req %s: enrollment from %s refused: %s (%s)", r->id,
	    r->client, code, msg);
	http_reply_error(r, status, code, "%s", msg);
}

/* The job-verification keys an agent pins. */
static json_t *
job_keys_json(struct ca *ca)
{
	char *pem, id[CA_KEYID_LEN];
	json_t *arr;

	if (ca_job_pubkey(ca, &pem, id) == -1)
		return NULL;
	arr = json_pack("[{s:s, s:s, s:s}]", "id", id, "alg", "ed25519",
	    "public_key", pem);
	free(pem);
	return arr;
}

static json_t *
cert_answer(struct request *r, const char *agent_id,
    const struct ca_issued *c)
{
	const char *ca_pem = ca_cert_pem(r->app->ca);
	char fp[CA_FINGERPRINT_LEN];
	json_t *keys, *o;
	size_t n = strlen(c->pem), m = strlen(ca_pem);
	char *chain;

	if ((keys = job_keys_json(r->app->ca)) == NULL ||
	    (chain = malloc(n + m + 1)) == NULL) {
		json_decref(keys);
		return NULL;
	}
	memcpy(chain, c->pem, n);
	memcpy(chain + n, ca_pem, m + 1);
	ca_fingerprint(r->app->ca, fp);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:i}",
	    "agent_id", agent_id, "certificate", c->pem, "ca", ca_pem,
	    "chain", chain, "ca_fingerprint", fp,
	    "not_before", db_time_json(c->not_before_ms),
	    "not_after", db_time_json(c->not_after_ms),
	    "job_keys", keys, "heartbeat_interval", heartbeat_interval(r));
	free(chain);
	return o;
}

static void
post_enroll(struct request *r)
{
	const char *token, *csr, *hostname, *macs;
	const json_t *inv;
	struct enrollment *e = NULL;
	struct join_token t;
	json_t *body = NULL, *answer;
	char hash[SECRET_HEXLEN], host[254] = "", mac[MAC_STRLEN] = "";
	char why[256], msg[400], *invtext = NULL;
	size_t i;
	int64_t now = clock_wall_ms();
	int rc, activated;

	if (!enroll_allowed(r->client)) {
		enroll_fail(r, 429, "rate_limited", "", "", "", "too many "
		    "enrollment attempts from this address; wait a minute");
		return;
	}
	if ((body = http_body_json(r)) == NULL) {
		db_enroll_attempt(r->app->db, r->client, "", "", "", "",
		    "bad_request", "no JSON body");
		return;
	}
	token = json_string_value(json_object_get(body, "token"));
	csr = json_string_value(json_object_get(body, "csr"));
	hostname = json_string_value(json_object_get(body, "hostname"));
	macs = json_string_value(json_object_get(body, "mac"));
	inv = json_object_get(body, "inventory");
	if (hostname && strlen(hostname) < sizeof host) {
		for (i = 0; hostname[i]; i++)
			host[i] = (char)tolower((unsigned char)hostname[i]);
		host[i] = '\0';
	}
	if (macs && mac_normalize(macs, mac) == -1)
		mac[0] = '\0';
	if (token == NULL || csr == NULL || hostname == NULL || macs == NULL) {
		enroll_fail(r, 400, "bad_request", "", mac, host, "token, csr, "
		    "hostname and mac are required strings");
		goto out;
	}
	if (mac[0] == '\0') {
		enroll_fail(r, 400, "bad_mac", "", "", host, "mac is not a MAC "
		    "address");
		goto out;
	}
	if (!install_valid_hostname(host)) {
		enroll_fail(r, 422, "bad_hostname", "", mac, "", "hostname is "
		    "not a valid RFC 1123 host name");
		goto out;
	}
	if (inv && !json_is_null(inv) && !json_is_object(inv)) {
		enroll_fail(r, 422, "invalid", "", mac, host, "inventory must "
		    "be an object");
		goto out;
	}
	if (strlen(token) != SECRET_HEXLEN - 1 ||
	    strspn(token, "0123456789abcdef") != SECRET_HEXLEN - 1) {
		enroll_fail(r, 401, "invalid_token", "", mac, host, "the join "
		    "token is not valid");
		goto out;
	}
	secret_sha256_hex(token, strlen(token), hash);
	if ((rc = db_token_by_hash(r->app->db, hash, &t)) != DB_OK) {
		if (rc == DB_NOTFOUND)
			enroll_fail(r, 401, "invalid_token", "", mac, host,
			    "the join token is not valid");
		else
			http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	if (t.revoked_ms) {
		enroll_fail(r, 401, "token_revoked", t.id, mac, host, "the join "
		    "token was revoked");
		goto out;
	}
	if (t.used >= t.uses) {
		enroll_fail(r, 401, "token_used", t.id, mac, host, "the join "
		    "token was already used");
		goto out;
	}
	if (t.expires_ms <= now) {
		enroll_fail(r, 401, "token_expired", t.id, mac, host, "the join "
		    "token expired");
		goto out;
	}
	if (t.mac[0] && strcmp(t.mac, mac) != 0) {
		snprintf(msg, sizeof msg, "the join token is bound to another "
		    "machine (not %s)", mac);
		enroll_fail(r, 403, "mac_mismatch", t.id, mac, host, msg);
		goto out;
	}
	if ((e = calloc(1, sizeof *e)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	/* The agent id is bastion's: "a" and 20 random hex digits. */
	if (secret_random_hex(hash) == -1) {
		http_reply_error(r, 500, "internal", "no randomness");
		goto out;
	}
	snprintf(e->agent_id, sizeof e->agent_id, "a%.20s", hash);
	snprintf(e->token_id, sizeof e->token_id, "%s", t.id);
	snprintf(e->mac, sizeof e->mac, "%s", mac);
	snprintf(e->hostname, sizeof e->hostname, "%s", host);
	snprintf(e->addr, sizeof e->addr, "%s", r->client);
	if (ca_sign_csr(r->app->ca, csr, strlen(csr), e->agent_id,
	    CA_AGENT_DAYS, &e->cert, why, sizeof why) == -1) {
		/* The token is not used up: the agent retries a 503. */
		if (!ca_can_sign(r->app->ca))
			enroll_fail(r, 503, "signer_unavailable", t.id, mac, host,
			    "cannot sign the certificate now: the signer "
			    "process is restarting; try again shortly");
		else
			enroll_fail(r, 400, "bad_csr", t.id, mac, host, why);
		goto out;
	}
	if (inv && json_is_object(inv))
		invtext = json_dumps(inv, JSON_COMPACT | JSON_SORT_KEYS);
	e->inventory = invtext;
	rc = db_agent_enroll(r->app->db, e, &activated);
	if (rc == DB_DENIED) {
		/* Another machine's identity: only the install that replaces a
		 * node replaces its agent (db_agent_enroll). */
		snprintf(msg, sizeof msg, "%s has an enrolled agent or is an "
		    "installed machine: only its install's token may enroll it "
		    "(or revoke its agent and use a token bound to %s)", mac, mac);
		enroll_fail(r, 403, "mac_taken", t.id, mac, host, msg);
		goto out;
	}
	if (rc == DB_CONFLICT) {
		enroll_fail(r, 401, "token_used", t.id, mac, host, "the join "
		    "token was used up or expired meanwhile");
		goto out;
	}
	if (rc != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	snprintf(msg, sizeof msg, "certificate %s until %lld", e->cert.serial,
	    (long long)(e->cert.not_after_ms / 1000));
	db_enroll_attempt(r->app->db, r->client, t.id, mac, host, e->agent_id,
	    "enrolled", msg);
	log_info("req %s: agent %s enrolled: %s (%s) from %s with token %s%s",
	    r->id, e->agent_id, host, mac, r->client, t.id,
	    activated ? "; machine is now active" : "");
	if ((answer = cert_answer(r, e->agent_id, &e->cert)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	http_reply_json(r, 201, answer);
out:
	if (e)
		free(e->cert.pem);
	free(e);
	free(invtext);
	json_decref(body);
}

/* --- the agent protocol ----------------------------------------------- */

struct peer {
	char	agent_id[AGENT_ID_LEN];
	char	serial[CA_SERIAL_LEN];
};

/* The client certificate, verified against the CA (not yet against the
 * database); replies 401 and returns -1 if there is none or it is bad. */
static int
agent_cert(struct request *r, struct peer *p)
{
	const unsigned char *der;
	char why[256];
	size_t len;

	if (http_peer_cert_der(r, &der, &len) == -1) {
		http_reply_error(r, 401, "no_certificate", "agent calls need the "
		    "client certificate from enrollment");
		return -1;
	}
	if (ca_verify_client(r->app->ca, der, len, p->agent_id,
	    sizeof p->agent_id, p->serial, why, sizeof why) == -1) {
		log_warnx("req %s: agent certificate from %s refused: %s", r->id,
		    r->client, why);
		http_reply_error(r, 401, "bad_certificate", "%s", why);
		return -1;
	}
	return 0;
}

/* Why an agent's certificate is not accepted (after a failed check):
 * replies 403/500. */
static void
agent_refused(struct request *r, const struct peer *p, int rc)
{
	if (rc == DB_CONFLICT) {
		log_warnx("req %s: revoked agent %s (certificate %s) from %s",
		    r->id, p->agent_id, p->serial, r->client);
		http_reply_error(r, 403, "revoked", "agent %s or its certificate "
		    "is revoked", p->agent_id);
	} else if (rc == DB_NOTFOUND) {
		http_reply_error(r, 403, "unknown_agent", "certificate %s is not "
		    "an enrolled agent's", p->serial);
	} else {
		http_reply_error(r, 500, "internal", "database error");
	}
}

/* Authenticate an agent request; replies 401/403 and returns -1 if it is
 * not an enrolled, unrevoked agent with a valid certificate. */
static int
agent_auth(struct request *r, struct peer *p)
{
	int rc;

	if (agent_cert(r, p) == -1)
		return -1;
	rc = db_agent_cert_check(r->app->db, p->agent_id, p->serial);
	if (rc != DB_OK) {
		agent_refused(r, p, rc);
		return -1;
	}
	return 0;
}

int
routes_agent_auth(struct request *r, char agent_id[AGENT_ID_LEN])
{
	struct peer p;

	if (agent_auth(r, &p) == -1)
		return -1;
	memcpy(agent_id, p.agent_id, AGENT_ID_LEN);
	return 0;
}

int
routes_heartbeat_interval(struct request *r)
{
	return heartbeat_interval(r);
}

static json_t *
agent_body(struct request *r, struct peer *p)
{
	if (agent_auth(r, p) == -1)
		return NULL;
	return http_body_json(r);
}

/* The hot path: one certificate check (cached), the body checked and
 * kept as it came, the answer written as text. Per heartbeat, perf
 * found json_dumps of the body again (5% of bastion's CPU) and of the
 * answer's tree (2%): neither adds anything. */
static void
post_heartbeat(struct request *r)
{
	struct peer p;
	json_t *body;
	char now[DB_TIME_LEN], answer[128];
	int64_t not_after = 0, ms;
	int rc, renew, n;

	if (agent_cert(r, &p) == -1 || (body = http_body_json(r)) == NULL)
		return;
	/* A JSON object, UTF-8, no NUL, no key twice (http_body_json):
	 * stored as sent. */
	json_decref(body);
	rc = db_agent_heartbeat(r->app->db, p.agent_id, p.serial, r->client,
	    r->body.data, &not_after);
	/* Not a current certificate: the check says why (revoked,
	 * unknown). Its OK would be a race with a change meanwhile; the
	 * heartbeat was not taken all the same. */
	if (rc == DB_NOTFOUND && (rc = db_agent_cert_check(r->app->db,
	    p.agent_id, p.serial)) == DB_OK)
		rc = DB_ERR;
	if (rc != DB_OK) {
		agent_refused(r, &p, rc);
		return;
	}
	/* Renewal is the agent's to start at 2/3 of the lifetime; say so
	 * too, in case its clock disagrees. */
	ms = clock_wall_ms();
	renew = not_after - ms < (int64_t)CA_AGENT_DAYS * 86400000 / 3;
	alerts_poke();		/* attention: recomputed within a second */
	db_time_str(ms, now);
	n = snprintf(answer, sizeof answer, "{\"interval\":%d,\"renew\":%s,"
	    "\"server_time\":\"%s\"}", heartbeat_interval(r), renew ? "true" :
	    "false", now);
	if (n < 0 || (size_t)n >= sizeof answer) {
		http_reply_error(r, 500, "internal", "cannot encode the answer");
		return;
	}
	http_reply_text(r, 200, "application/json", answer, (size_t)n);
}

static void
put_inventory(struct request *r)
{
	struct peer p;
	json_t *body;
	char *text;

	if ((body = agent_body(r, &p)) == NULL)
		return;
	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL || db_agent_inventory(r->app->db, p.agent_id, text) !=
	    DB_OK)
		http_reply_error(r, 500, "internal", "cannot store the inventory");
	else {
		alerts_poke();
		http_reply_json(r, 200, json_pack("{s:s}", "agent_id",
		    p.agent_id));
	}
	free(text);
	json_decref(body);
}

static void
post_renew(struct request *r)
{
	struct ca_issued c;
	struct peer p;
	const char *csr;
	json_t *body, *answer;
	char why[256];

	if ((body = agent_body(r, &p)) == NULL)
		return;
	memset(&c, 0, sizeof c);
	if ((csr = json_string_value(json_object_get(body, "csr"))) == NULL) {
		http_reply_error(r, 400, "bad_request", "csr is required");
		goto out;
	}
	if (ca_sign_csr(r->app->ca, csr, strlen(csr), p.agent_id, CA_AGENT_DAYS,
	    &c, why, sizeof why) == -1) {
		if (!ca_can_sign(r->app->ca))
			reply_sign_failed(r, "the certificate");
		else
			http_reply_error(r, 400, "bad_csr", "%s", why);
		goto out;
	}
	if (db_agent_cert_add(r->app->db, p.agent_id, &c) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	log_info("req %s: agent %s renewed its certificate: %s", r->id,
	    p.agent_id, c.serial);
	if ((answer = cert_answer(r, p.agent_id, &c)) == NULL)
		http_reply_error(r, 500, "internal", "out of memory");
	else
		http_reply_json(r, 200, answer);
out:
	free(c.pem);
	json_decref(body);
}

/*
 * The long poll. Waiting requests are suspended (no thread each) and kept
 * in lists by deadline; a new job for the agent or the deadline resumes
 * them. The lists' lock is held while a request is resumed, and a
 * request leaves its list (on_free) before it is freed, so nothing
 * resumes a dead one.
 */
struct waiter {
	struct http_waiting *h;		/* resumes the request */
	char		 agent_id[AGENT_ID_LEN];
	int64_t		 deadline_ms;	/* clock_mono_ms */
	int		 wait;		/* seconds: its list, hub.by_wait[wait] */
	uint64_t	 quiet;		/* db_jobs_waiting's mark, or 0 */
	int		 fresh;
	int		 listed;
	struct waiter	*prev, *next;
};

/*
 * One list per length of wait, each in the order of its deadlines by
 * construction (appended, monotonic clock): a poll joins in O(1) and the
 * timer looks at POLL_MAX_WAIT + 1 heads. Agents' waits differ (25 s,
 * then what is left to the next heartbeat), so one sorted list meant a
 * walk at nearly every poll, under the lock every poll takes.
 */
struct waiters {
	struct waiter	*head, *tail;
};

static struct {
	pthread_mutex_t	 mu;
	struct waiters	 by_wait[POLL_MAX_WAIT + 1];
	pthread_once_t	 once;
	size_t		 n;		/* listed */
	size_t		 alive;		/* suspended or resumed, not yet freed */
	int		 stopping;
} hub = { .mu = PTHREAD_MUTEX_INITIALIZER, .once = PTHREAD_ONCE_INIT };

/* Caller holds hub.mu. */
static void
waiter_unlink(struct waiter *w)
{
	struct waiters *l = &hub.by_wait[w->wait];

	if (!w->listed)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
	w->prev = w->next = NULL;
	w->listed = 0;
	hub.n--;
}

/* w joins the end of its wait's list (caller holds hub.mu). */
static void
waiter_link(struct waiter *w)
{
	struct waiters *l = &hub.by_wait[w->wait];

	w->next = NULL;
	w->prev = l->tail;
	if (l->tail)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
	w->listed = 1;
	hub.n++;
}

/* Four times a second, the polls whose wait is over: from the heads of
 * the lists, not a walk over every waiting one (19,700 a bastion, four
 * times a second, under the lock every poll takes). */
static void *
hub_timer(void *arg)
{
	struct timespec ts = { 0, 250 * 1000000 };
	struct waiter *w;
	int64_t now;
	int i;

	for (;;) {
		nanosleep(&ts, NULL);
		now = clock_mono_ms();
		pthread_mutex_lock(&hub.mu);
		for (i = 0; i <= POLL_MAX_WAIT; i++)
			while ((w = hub.by_wait[i].head) != NULL &&
			    w->deadline_ms <= now) {
				waiter_unlink(w);
				http_resume(w->h);
			}
		pthread_mutex_unlock(&hub.mu);
	}
	return NULL;
}

static void
hub_start(void)
{
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&t, &attr, hub_timer, NULL) != 0)
		log_warnx("cannot start the long-poll timer");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
}

/* Wake every long poll of agent_id (NULL: all). */
static void
hub_notify(const char *agent_id)
{
	struct waiter *w, *next;
	int i;

	pthread_mutex_lock(&hub.mu);
	for (i = 0; i <= POLL_MAX_WAIT; i++)
		for (w = hub.by_wait[i].head; w; w = next) {
			next = w->next;
			if (agent_id == NULL || strcmp(w->agent_id, agent_id) ==
			    0) {
				waiter_unlink(w);
				http_resume(w->h);
			}
		}
	pthread_mutex_unlock(&hub.mu);
}

/* A job for agent_id, or its revocation: its long polls answer, here at
 * once and on the other bastions of the database. */
static void
wake_agent(struct db *db, const char *agent_id)
{
	hub_notify(agent_id);
	db_wake_agent(db, agent_id);
}

int
routes_agent_polling(const char *agent_id)
{
	struct waiter *w;
	int i, found = 0;

	pthread_mutex_lock(&hub.mu);
	for (i = 0; i <= POLL_MAX_WAIT && !found; i++)
		for (w = hub.by_wait[i].head; w && !found; w = w->next)
			found = strcmp(w->agent_id, agent_id) == 0;
	pthread_mutex_unlock(&hub.mu);
	return found;
}

void
routes_agent_wake(const char *agent_id, void *unused)
{
	(void)unused;
	hub_notify(agent_id);
}

static void
waiter_free(struct request *r)
{
	struct waiter *w = r->poll;

	if (w == NULL)
		return;
	pthread_mutex_lock(&hub.mu);
	waiter_unlink(w);
	hub.alive--;
	pthread_mutex_unlock(&hub.mu);
	free(w);
	r->poll = NULL;
}

void
routes_agent_stop(void)
{
	struct timespec ts = { 0, 10 * 1000000 };
	size_t alive;
	int i;

	pthread_mutex_lock(&hub.mu);
	hub.stopping = 1;
	pthread_mutex_unlock(&hub.mu);
	hub_notify(NULL);
	/* The listeners' threads answer them (204) and free them. */
	for (i = 0; i < 500; i++) {
		pthread_mutex_lock(&hub.mu);
		alive = hub.alive;
		pthread_mutex_unlock(&hub.mu);
		if (alive == 0)
			break;
		nanosleep(&ts, NULL);
	}
}

static void
reply_jobs(struct request *r, const char *agent_id, int fresh)
{
	json_t *jobs;

	if (db_jobs_take(r->app->db, agent_id, 16, fresh, &jobs) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	if (json_array_size(jobs) == 0) {
		json_decref(jobs);
		http_reply_text(r, 204, "application/json", "", 0);
		return;
	}
	log_info("req %s: %zu job(s) sent to agent %s", r->id,
	    json_array_size(jobs), agent_id);
	http_reply_json(r, 200, json_pack("{s:o}", "jobs", jobs));
}

static void
get_jobs(struct request *r)
{
	struct waiter *w = r->poll;
	struct peer p;
	const char *ws, *fs;
	uint64_t quiet = 0;
	long wait = 0;
	int fresh;
	char *end;

	if (w != NULL) {
		/* Resumed: a job arrived or the wait is over. Nothing
		 * announced for the agent meanwhile (the usual end of a
		 * wait): no job, nothing to ask. */
		pthread_mutex_lock(&hub.mu);
		waiter_unlink(w);
		pthread_mutex_unlock(&hub.mu);
		if (db_jobs_quiet(r->app->db, w->agent_id, w->quiet) ||
		    !db_jobs_waiting(r->app->db, w->agent_id, w->fresh,
		    &w->quiet))
			http_reply_text(r, 204, "application/json", "", 0);
		else
			reply_jobs(r, w->agent_id, w->fresh);
		return;
	}
	if (agent_auth(r, &p) == -1)
		return;
	fresh = (fs = http_query(r, "fresh")) != NULL && strcmp(fs, "1") == 0;
	if ((ws = http_query(r, "wait")) != NULL) {
		errno = 0;
		wait = strtol(ws, &end, 10);
		if (*ws == '\0' || *end != '\0' || errno || wait < 0)
			wait = -1;
		if (wait < 0) {
			http_reply_error(r, 400, "bad_request", "wait must be 0-%d "
			    "seconds", POLL_MAX_WAIT);
			return;
		}
		if (wait > POLL_MAX_WAIT)
			wait = POLL_MAX_WAIT;
	}
	if (wait == 0 || db_jobs_waiting(r->app->db, p.agent_id, fresh,
	    &quiet)) {
		reply_jobs(r, p.agent_id, fresh);
		return;
	}
	if ((w = calloc(1, sizeof *w)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	pthread_once(&hub.once, hub_start);
	snprintf(w->agent_id, sizeof w->agent_id, "%s", p.agent_id);
	w->wait = (int)wait;
	w->deadline_ms = clock_mono_ms() + wait * 1000;
	w->fresh = fresh;
	w->quiet = quiet;
	pthread_mutex_lock(&hub.mu);
	if (hub.stopping) {
		pthread_mutex_unlock(&hub.mu);
		free(w);
		reply_jobs(r, p.agent_id, fresh);
		return;
	}
	r->poll = w;
	r->on_free = waiter_free;
	waiter_link(w);
	hub.alive++;
	/* Suspended under the lock: a job that arrives now resumes a
	 * request that is already suspended. */
	w->h = http_suspend(r);
	pthread_mutex_unlock(&hub.mu);
	/* A job queued between the check and the listing: announced since
	 * the mark, or, not knowing, found in the database. */
	if (quiet != 0 ? !db_jobs_quiet(r->app->db, p.agent_id, quiet) :
	    db_jobs_waiting(r->app->db, p.agent_id, 0, &quiet))
		hub_notify(p.agent_id);
}

static int
job_id_param(struct request *r, int64_t *id)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(r->params[0], &end, 10);
	if (*r->params[0] == '\0' || *end != '\0' || errno || v <= 0) {
		http_reply_error(r, 400, "bad_request", "'%.20s' is not a job id",
		    r->params[0]);
		return -1;
	}
	*id = v;
	return 0;
}

/* Store a "chunks" array: [{seq, stream, data (base64)}]. */
static int
store_chunks(struct request *r, const char *agent_id, int64_t id,
    const json_t *chunks)
{
	const json_t *c;
	const char *stream, *data;
	unsigned char *raw;
	size_t i, len;
	int rc;

	if (chunks == NULL || json_is_null(chunks))
		return 0;
	if (!json_is_array(chunks)) {
		http_reply_error(r, 422, "invalid", "chunks must be an array");
		return -1;
	}
	json_array_foreach(chunks, i, c) {
		stream = json_string_value(json_object_get(c, "stream"));
		data = json_string_value(json_object_get(c, "data"));
		if (!json_is_integer(json_object_get(c, "seq")) ||
		    json_integer_value(json_object_get(c, "seq")) < 0 ||
		    stream == NULL || data == NULL || (strcmp(stream, "stdout") &&
		    strcmp(stream, "stderr"))) {
			http_reply_error(r, 422, "invalid", "chunks[%zu]: want "
			    "{seq, stream: stdout|stderr, data: base64}", i);
			return -1;
		}
		if ((raw = b64_decode(data, AGENT_MAX_BODY, &len)) == NULL) {
			http_reply_error(r, 422, "invalid", "chunks[%zu].data is "
			    "not base64", i);
			return -1;
		}
		rc = db_job_output(r->app->db, agent_id, id,
		    json_integer_value(json_object_get(c, "seq")), stream, raw,
		    len);
		free(raw);
		if (rc != DB_OK) {
			reply_db(r, rc, "job");
			return -1;
		}
	}
	return 0;
}

static void
post_job_output(struct request *r)
{
	struct peer p;
	json_t *body;
	int64_t id;
	int rc;

	if (job_id_param(r, &id) == -1 || (body = agent_body(r, &p)) == NULL)
		return;
	if ((rc = db_job_started(r->app->db, p.agent_id, id)) != DB_OK)
		reply_db(r, rc, "job");
	else if (store_chunks(r, p.agent_id, id, json_object_get(body,
	    "chunks")) == 0)
		http_reply_json(r, 200, json_pack("{s:I}", "id", (json_int_t)id));
	json_decref(body);
}

static void
post_job_result(struct request *r)
{
	static const char *const statuses[] = { "done", "failed", "refused",
	    NULL };
	struct job_result res;
	const json_t *v;
	struct peer p;
	json_t *body;
	const char *st;
	int64_t id;
	int i, rc;

	if (job_id_param(r, &id) == -1 || (body = agent_body(r, &p)) == NULL)
		return;
	memset(&res, 0, sizeof res);
	st = json_string_value(json_object_get(body, "status"));
	for (i = 0; st && statuses[i]; i++)
		if (strcmp(st, statuses[i]) == 0)
			break;
	if (st == NULL || statuses[i] == NULL) {
		http_reply_error(r, 422, "invalid", "status must be done, failed "
		    "or refused");
		goto out;
	}
	res.status = statuses[i];
	if ((v = json_object_get(body, "exit_code")) && json_is_integer(v)) {
		res.has_exit = 1;
		res.exit_code = (int)json_integer_value(v);
	}
	if ((v = json_object_get(body, "signal")) && json_is_integer(v)) {
		res.has_signal = 1;
		res.signal = (int)json_integer_value(v);
	}
	res.timed_out = json_is_true(json_object_get(body, "timed_out"));
	v = json_object_get(body, "duration_ms");
	res.duration_ms = json_is_integer(v) ? json_integer_value(v) : -1;
	res.error = json_string_value(json_object_get(body, "error"));
	if (res.error && !clean_string(res.error, 1024))
		res.error = "(unprintable error message)";
	if (store_chunks(r, p.agent_id, id, json_object_get(body, "chunks"))
	    == -1)
		goto out;
	if ((rc = db_job_result(r->app->db, p.agent_id, id, &res)) != DB_OK) {
		reply_db(r, rc, "job");
		goto out;
	}
	log_info("req %s: job %lld on agent %s: %s%s%s", r->id, (long long)id,
	    p.agent_id, res.status, res.error ? ": " : "",
	    res.error ? res.error : "");
	/* A job that was to open a stream and failed: its operator would
	 * wait on the stream until idle. */
	if (strcmp(res.status, "done") != 0)
		routes_stream_job_failed(r->app->db, p.agent_id, id, res.error);
	http_reply_json(r, 200, json_pack("{s:I, s:s}", "id", (json_int_t)id,
	    "status", res.status));
out:
	json_decref(body);
}

/* --- agents and jobs for operators --------------------------------------- */

/* Agents heard of before this are "stale": they missed STALE_HEARTBEATS
 * heartbeats at the interval in force. */
static int64_t
stale_before(struct request *r)
{
	return clock_wall_ms() - (int64_t)STALE_HEARTBEATS * 1000 *
	    heartbeat_interval(r);
}

static void
get_agents(struct request *r)
{
	json_t *list;

	if (db_agent_list(r->app->db, stale_before(r), &list) != DB_OK)
		http_reply_error(r, 500, "internal", "database error");
	else
		http_reply_json(r, 200, list);
}

/* {id} may be an agent id, a host name or a MAC. */
static int
agent_param(struct request *r, char id[AGENT_ID_LEN])
{
	int rc = db_agent_resolve(r->app->db, r->params[0], id);

	if (rc == DB_OK)
		return 0;
	if (rc == DB_NOTFOUND)
		http_reply_error(r, 404, "not_found", "no agent %.64s",
		    r->params[0]);
	else if (rc == DB_CONFLICT)
		http_reply_error(r, 409, "ambiguous", "several agents are called "
		    "%.64s; use the agent id", r->params[0]);
	else
		http_reply_error(r, 500, "internal", "database error");
	return -1;
}

static void
get_agent(struct request *r)
{
	char id[AGENT_ID_LEN];
	json_t *a;
	int rc;

	if (agent_param(r, id) == -1)
		return;
	if ((rc = db_agent_json(r->app->db, id, stale_before(r), &a)) != DB_OK)
		reply_db(r, rc, "agent");
	else
		http_reply_json(r, 200, a);
}

static void
post_agent_revoke(struct request *r)
{
	char id[AGENT_ID_LEN], reason[160];
	json_t *a;
	int rc;

	if (agent_param(r, id) == -1)
		return;
	snprintf(reason, sizeof reason, "revoked by %s", actor(r));
	if ((rc = db_agent_revoke(r->app->db, id, reason)) != DB_OK ||
	    (rc = db_agent_json(r->app->db, id, stale_before(r), &a)) !=
	    DB_OK) {
		reply_db(r, rc, "agent");
		return;
	}
	log_info("req %s: agent %s %s", r->id, id, reason);
	/* A waiting long poll answers now, here or on another bastion; the
	 * next request is refused. */
	wake_agent(r->app->db, id);
	http_reply_json(r, 200, a);
}

static int
valid_env_name(const char *s)
{
	size_t i;

	if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (i = 1; s[i]; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return 0;
	return i <= 128;
}

/* Check exec's args: {argv: [..], env: {..}, cwd, timeout, grace,
 * shell}; fills in the defaults. 0 or -1 with why. */
static int
exec_args_check(json_t *args, char *why, size_t whylen)
{
	const json_t *argv, *env, *cwd, *v;
	const char *k;
	long long t;
	size_t i;
	void *it;

	for (it = json_object_iter(args); it; it = json_object_iter_next(args,
	    it)) {
		k = json_object_iter_key(it);
		if (strcmp(k, "argv") && strcmp(k, "env") && strcmp(k, "cwd") &&
		    strcmp(k, "timeout") && strcmp(k, "grace") &&
		    strcmp(k, "shell")) {
			snprintf(why, whylen, "args: unknown field '%.40s'", k);
			return -1;
		}
	}
	argv = json_object_get(args, "argv");
	if (!json_is_array(argv) || json_array_size(argv) == 0 ||
	    json_array_size(argv) > JOB_MAX_ARGV) {
		snprintf(why, whylen, "args.argv must be 1-%d strings",
		    JOB_MAX_ARGV);
		return -1;
	}
	json_array_foreach(argv, i, v)
		if (!json_is_string(v) || json_string_length(v) > JOB_MAX_ARG ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(why, whylen, "args.argv[%zu] must be a string of "
			    "at most %d bytes without NUL", i, JOB_MAX_ARG);
			return -1;
		}
	if (json_is_true(json_object_get(args, "shell")) &&
	    json_array_size(argv) != 1) {
		snprintf(why, whylen, "with shell, argv is one string: the "
		    "command line");
		return -1;
	}
	if ((v = json_object_get(args, "shell")) && !json_is_boolean(v)) {
		snprintf(why, whylen, "args.shell must be true or false");
		return -1;
	}
	if ((env = json_object_get(args, "env")) != NULL) {
		if (!json_is_object(env) || json_object_size(env) > JOB_MAX_ENV) {
			snprintf(why, whylen, "args.env must be an object of at "
			    "most %d strings", JOB_MAX_ENV);
			return -1;
		}
		json_object_foreach((json_t *)env, k, v)
			if (!valid_env_name(k) || !json_is_string(v) ||
			    json_string_length(v) > JOB_MAX_ARG ||
			    strlen(json_string_value(v)) != json_string_length(v)) {
				snprintf(why, whylen, "args.env.%.40s: names are "
				    "[A-Za-z_][A-Za-z0-9_]*, values strings", k);
				return -1;
			}
	}
	if ((cwd = json_object_get(args, "cwd")) != NULL &&
	    (!json_is_string(cwd) || json_string_value(cwd)[0] != '/' ||
	    json_string_length(cwd) >= PATH_MAX)) {
		snprintf(why, whylen, "args.cwd must be an absolute path");
		return -1;
	}
	v = json_object_get(args, "timeout");
	t = v ? json_integer_value(v) : 600;
	if ((v && !json_is_integer(v)) || t < 1 || t > JOB_MAX_TIMEOUT) {
		snprintf(why, whylen, "args.timeout: 1 to %ld seconds",
		    JOB_MAX_TIMEOUT);
		return -1;
	}
	json_object_set_new(args, "timeout", json_integer(t));
	v = json_object_get(args, "grace");
	t = v ? json_integer_value(v) : 5;
	if ((v && !json_is_integer(v)) || t < 0 || t > 600) {
		snprintf(why, whylen, "args.grace: 0 to 600 seconds");
		return -1;
	}
	json_object_set_new(args, "grace", json_integer(t));
	return 0;
}

int
routes_job_submit(struct request *r, const char *agent_id, const char *kind,
    json_t *args, long long ttl, json_t **job)
{
	struct envelope e;
	char key_id[CA_KEYID_LEN], *argtext = NULL, *text = NULL, *sig = NULL;
	int64_t jid, not_after;
	int rc = -1;

	memset(&e, 0, sizeof e);
	not_after = clock_wall_ms() / 1000 + ttl;
	if ((argtext = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS)) == NULL ||
	    db_job_create(r->app->db, agent_id, kind, argtext, not_after * 1000,
	    actor(r), &jid) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	/* Sign what the agent will run: the envelope carries everything. */
	e.job_id = jid;
	snprintf(e.agent_id, sizeof e.agent_id, "%s", agent_id);
	snprintf(e.kind, sizeof e.kind, "%s", kind);
	e.args = args;
	e.not_after = not_after;
	/* The failed job's commit carries the audit row: say how it ended. */
	if (envelope_build(&e, &text) == 0 && strlen(text) >
	    ENVELOPE_MAX_TEXT) {
		AUDIT_SET(&r->audit, result, "error");
		AUDIT_SET(&r->audit, error, "too large to sign");
		db_job_fail(r->app->db, jid, "too large to sign");
		http_reply_error(r, 422, "invalid", "the job is larger than %d "
		    "bytes signed", ENVELOPE_MAX_TEXT);
		goto out;
	}
	if (text == NULL ||
	    ca_job_sign(r->app->ca, text, strlen(text), &sig, key_id) == -1) {
		AUDIT_SET(&r->audit, result, "error");
		AUDIT_SET(&r->audit, error, "cannot sign the job");
		db_job_fail(r->app->db, jid, "cannot sign the job");
		reply_sign_failed(r, "the job");
		goto out;
	}
	if (db_job_seal(r->app->db, jid, text, sig, key_id) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	/* Queued: its long polls here answer; the other bastions heard of
	 * it with the seal's commit (db_job_seal). */
	hub_notify(agent_id);
	if (db_job_json(r->app->db, jid, job) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	log_info("req %s: job %lld (%s) for agent %s queued by %s", r->id,
	    (long long)jid, kind, agent_id, actor(r));
	rc = 0;
out:
	free(text);
	free(sig);
	free(argtext);
	return rc;
}

int
routes_agent_of(struct request *r, const char *target, char id[AGENT_ID_LEN])
{
	struct agent a;
	int rc;

	rc = db_agent_resolve(r->app->db, target, id);
	if (rc == DB_OK)
		rc = db_agent_get(r->app->db, id, &a);
	if (rc != DB_OK) {
		if (rc == DB_NOTFOUND)
			http_reply_error(r, 404, "not_found", "no agent %.64s "
			    "(an agent id, host name or MAC)", target);
		else if (rc == DB_CONFLICT)
			http_reply_error(r, 409, "ambiguous", "several agents are "
			    "called %.64s; use the agent id", target);
		else
			http_reply_error(r, 500, "internal", "database error");
		return -1;
	}
	if (a.revoked_ms) {
		http_reply_error(r, 409, "revoked", "agent %s is revoked", id);
		return -1;
	}
	return 0;
}

static void
post_job(struct request *r)
{
	const char *target, *kind;
	json_t *body, *args = NULL, *job;
	char id[AGENT_ID_LEN], why[256];
	long long ttl;

	if ((body = http_body_json(r)) == NULL)
		return;
	target = json_string_value(json_object_get(body, "target"));
	kind = json_string_value(json_object_get(body, "kind"));
	if (target == NULL || kind == NULL) {
		http_reply_error(r, 400, "bad_request", "target and kind are "
		    "required strings");
		goto out;
	}
	/* The target is in the body: production mode's confirmation must
	 * name it (X-Confirm), as for the routes with it in the path. */
	if (http_require_confirm(r, target) == -1)
		goto out;
	if (strcmp(kind, "container") == 0) {
		http_reply_error(r, 422, "invalid", "container jobs are made by "
		    "POST /api/v1/agents/{id}/containers/{ref}/{action}");
		goto out;
	}
	if (strcmp(kind, "guest") == 0) {
		http_reply_error(r, 422, "invalid", "guest jobs are made by "
		    "POST /api/v1/agents/{id}/guests/{guest}/{action}");
		goto out;
	}
	if (!envelope_kind_known(kind)) {
		http_reply_error(r, 422, "invalid", "kind must be exec, reboot, "
		    "reprovision or inventory");
		goto out;
	}
	if (opt_int(r, body, "ttl", ROUTES_JOB_TTL, JOB_MIN_TTL, ENVELOPE_MAX_TTL,
	    &ttl) == -1)
		goto out;
	args = json_object_get(body, "args");
	args = args == NULL || json_is_null(args) ? json_object() :
	    json_deep_copy(args);
	if (!json_is_object(args)) {
		http_reply_error(r, 422, "invalid", "args must be an object");
		goto out;
	}
	if (strcmp(kind, "exec") == 0) {
		if (exec_args_check(args, why, sizeof why) == -1) {
			http_reply_error(r, 422, "invalid", "%s", why);
			goto out;
		}
	} else if (json_object_size(args) != 0) {
		http_reply_error(r, 422, "invalid", "%s takes no args", kind);
		goto out;
	}
	if (routes_agent_of(r, target, id) == 0 &&
	    routes_job_submit(r, id, kind, args, ttl, &job) == 0)
		http_reply_json(r, 201, job);
out:
	json_decref(args);
	json_decref(body);
}

/* exec jobs' env values are often secrets (tokens, passwords): only
 * those who may run jobs read them — operators and admins, and of API
 * tokens those with scope exec or admin. Others see the names, with each
 * value replaced by JOB_ENV_MASK. */
#define JOB_ENV_MASK	"********"

static json_t *
job_for(const struct request *r, json_t *job)
{
	json_t *env = json_object_get(json_object_get(job, "args"), "env"), *v;
	const char *k;
	void *tmp;

	if (r->who.role >= ROLE_OPERATOR && (r->who.kind != AUTH_TOKEN ||
	    auth_scope_covers(r->who.scope, SCOPE_EXEC)))
		return job;
	json_object_foreach_safe(env, tmp, k, v)
		json_object_set_new(env, k, json_string(JOB_ENV_MASK));
	return job;
}

static void
get_job_list(struct request *r)
{
	const char *agent = http_query(r, "agent"), *ls = http_query(r, "limit");
	char id[AGENT_ID_LEN];
	long limit = ls ? strtol(ls, NULL, 10) : 100;
	json_t *list;
	size_t i;
	int rc;

	if (limit < 1 || limit > 10000)
		limit = 100;
	if (agent && *agent) {
		if ((rc = db_agent_resolve(r->app->db, agent, id)) != DB_OK) {
			reply_db(r, rc, "agent");
			return;
		}
		agent = id;
	}
	if (db_job_list(r->app->db, agent && *agent ? agent : NULL, (int)limit,
	    &list) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	for (i = 0; i < json_array_size(list); i++)
		job_for(r, json_array_get(list, i));
	http_reply_json(r, 200, list);
}

static void
get_job(struct request *r)
{
	json_t *job;
	int64_t id;
	int rc;

	if (job_id_param(r, &id) == -1)
		return;
	if ((rc = db_job_json(r->app->db, id, &job)) != DB_OK)
		reply_db(r, rc, "job");
	else
		http_reply_json(r, 200, job_for(r, job));
}

static void
get_job_output(struct request *r)
{
	const char *as = http_query(r, "after"), *ls = http_query(r, "limit");
	long long after = as ? strtoll(as, NULL, 10) : -1;
	long limit = ls ? strtol(ls, NULL, 10) : 1000;
	json_t *job, *chunks;
	int64_t id;
	int rc;

	if (job_id_param(r, &id) == -1)
		return;
	if (limit < 1 || limit > 10000)
		limit = 1000;
	if ((rc = db_job_json(r->app->db, id, &job)) != DB_OK) {
		reply_db(r, rc, "job");
		return;
	}
	if (db_job_output_json(r->app->db, id, after, (int)limit, &chunks) !=
	    DB_OK) {
		json_decref(job);
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	http_reply_json(r, 200, json_pack("{s:O, s:O, s:o, s:o}", "id",
	    json_object_get(job, "id"), "status", json_object_get(job, "status"),
	    "job", job_for(r, job), "chunks", chunks));
}

/* --- boot listener: CRL and the agent for installers ------------------- */

static void
get_crl(struct request *r)
{
	struct ca_revoked *list;
	size_t n;
	char *pem;

	if (db_revoked_certs(r->app->db, &list, &n) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	if (ca_crl_pem(r->app->ca, list, n, 24, &pem) == -1)
		reply_sign_failed(r, "the CRL");
	else
		http_reply_text(r, 200, "application/pkix-crl", pem, strlen(pem));
	free(list);
	free(pem);
}

/* The node agent for installers: agentd-static (kickstart installs) and
 * the dynamically linked agentd (image installs) beside bastion, and
 * their systemd unit (agentfiles.c says where; the kickstart and the
 * image plan carry their SHA-256). */
static void
get_agent_file(struct request *r)
{
	const struct config *c;
	char path[PATH_MAX];
	struct stat st;
	int rc, bin = agentfile_is_binary(r->params[0]);

	c = bastion_config_acquire(r->app);
	rc = agentfile_path(c, r->params[0], path, sizeof path);
	bastion_config_release(r->app);
	if (rc == -1) {
		http_reply_error(r, 404, "not_found", "no such agent file");
		return;
	}
	if (bin && (stat(path, &st) == -1 || !S_ISREG(st.st_mode) ||
	    access(path, R_OK) == -1)) {
		log_warn("req %s: the node agent for installs, %s", r->id, path);
		http_reply_error(r, 503, "agent_missing", "the node agent "
		    "(%s) is not installed beside bastion",
		    strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
		return;
	}
	if (bin && st.st_size > AGENTFILE_MAX) {
		log_warnx("req %s: %s is larger than %lld bytes", r->id, path,
		    AGENTFILE_MAX);
		http_reply_error(r, 503, "agent_too_large", "the node agent "
		    "beside bastion is larger than an installer accepts");
		return;
	}
	http_reply_file(r, path, bin ? "application/octet-stream" :
	    "text/plain; charset=utf-8");
}

/* Who may do what: see struct route in http.h and docs/api.md. Agent
 * calls are open at the HTTP layer: the join token or the client
 * certificate is their credential, checked by the handlers. */
const struct route routes_agent[] = {
	{ L_API, "POST", "/api/v1/tokens", post_token, 0,
	    ROLE_OPERATOR, SCOPE_PROVISION, RF_MUTATES, "jointoken.create" },
	{ L_API, "GET", "/api/v1/tokens", get_tokens, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "DELETE", "/api/v1/tokens/{id}", delete_token, 0,
	    ROLE_OPERATOR, SCOPE_PROVISION, RF_MUTATES, "jointoken.revoke" },
	{ L_CONTROL, "POST", "/api/v1/enroll", post_enroll, ENROLL_MAX_BODY,
	    ROLE_NONE, SCOPE_READ, RF_AGENT | RF_AUDIT, "agent.enroll" },
	{ L_CONTROL, "POST", "/agent/v1/heartbeat", post_heartbeat, 65536,
	    ROLE_NONE, SCOPE_READ, RF_AGENT, NULL },
	{ L_CONTROL, "PUT", "/agent/v1/inventory", put_inventory,
	    ENROLL_MAX_BODY, ROLE_NONE, SCOPE_READ, RF_AGENT, NULL },
	{ L_CONTROL, "GET", "/agent/v1/jobs", get_jobs, 0,
	    ROLE_NONE, SCOPE_READ, RF_AGENT, NULL },
	{ L_CONTROL, "POST", "/agent/v1/jobs/{id}/output", post_job_output,
	    AGENT_MAX_BODY, ROLE_NONE, SCOPE_READ, RF_AGENT, NULL },
	{ L_CONTROL, "POST", "/agent/v1/jobs/{id}/result", post_job_result,
	    AGENT_MAX_BODY, ROLE_NONE, SCOPE_READ, RF_AGENT | RF_AUDIT,
	    "job.result" },
	{ L_CONTROL, "POST", "/agent/v1/renew", post_renew, 0,
	    ROLE_NONE, SCOPE_READ, RF_AGENT | RF_AUDIT, "agent.renew" },
	{ L_API, "GET", "/api/v1/agents", get_agents, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/agents/{id}", get_agent, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "POST", "/api/v1/agents/{id}/revoke", post_agent_revoke, 0,
	    ROLE_OPERATOR, SCOPE_PROVISION, RF_MUTATES | RF_DESTRUCTIVE,
	    "agent.revoke" },
	{ L_API, "POST", "/api/v1/jobs", post_job, 0,
	    ROLE_OPERATOR, SCOPE_EXEC, RF_MUTATES | RF_DESTRUCTIVE, "job.create" },
	{ L_API, "GET", "/api/v1/jobs", get_job_list, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/jobs/{id}", get_job, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/jobs/{id}/output", get_job_output, 0,
	    ROLE_OPERATOR, SCOPE_READ, 0, NULL },
	{ L_BOOT | L_CONTROL | L_ADMIN, "GET", "/ca.crl", get_crl, 0,
	    ROLE_NONE, SCOPE_READ, 0, NULL },
	{ L_BOOT, "GET", "/boot/agent/{name}", get_agent_file, 0,
	    ROLE_NONE, SCOPE_READ, 0, NULL },
	{ 0, NULL, NULL, NULL, 0, ROLE_UNSET, SCOPE_READ, 0, NULL },
};
