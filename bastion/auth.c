/* auth.c — roles and scopes, Argon2id passwords, CIDR allowlists, the
 * settings cache, login throttling, and turning a bearer token or a
 * session cookie into a principal. */
#define LOG_SUBSYS "auth"
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth.h"
#include "clock.h"
#include "db.h"
#include "db_auth.h"
#include "log.h"
#include "secret.h"

#define THROTTLE_SLOTS	1024
#define THROTTLE_KEY	96

struct throttle {
	char	 key[THROTTLE_KEY];	/* "addr:1.2.3.4", "user:alice" */
	int	 failures;
	int64_t	 window_start_ms;
	int64_t	 locked_until_ms;
};

struct auth {
	pthread_mutex_t	 mu;
	struct settings	 settings;
	char		 dummy_hash[256];	/* verified for unknown users */
	struct throttle	 thr[THROTTLE_SLOTS];
};

static const char *const role_names[] = { "unset", "none", "viewer",
    "operator", "admin" };
static const char *const scope_names[] = { "read", "provision", "exec",
    "admin" };

const char *
auth_role_name(enum auth_role r)
{
	return (unsigned)r < 5 ? role_names[r] : "?";
}

int
auth_role_from_name(const char *s)
{
	int i;

	for (i = ROLE_VIEWER; i <= ROLE_ADMIN; i++)
		if (s && strcmp(s, role_names[i]) == 0)
			return i;
	return -1;
}

const char *
auth_scope_name(enum auth_scope s)
{
	return (unsigned)s < 4 ? scope_names[s] : "?";
}

int
auth_scope_from_name(const char *s)
{
	int i;

	for (i = SCOPE_READ; i <= SCOPE_ADMIN; i++)
		if (s && strcmp(s, scope_names[i]) == 0)
			return i;
	return -1;
}

enum auth_role
auth_scope_min_role(enum auth_scope s)
{
	switch (s) {
	case SCOPE_READ:
		return ROLE_VIEWER;
	case SCOPE_PROVISION:
	case SCOPE_EXEC:
		return ROLE_OPERATOR;
	case SCOPE_ADMIN:
		break;
	}
	return ROLE_ADMIN;
}

int
auth_scope_covers(enum auth_scope have, enum auth_scope need)
{
	return need == SCOPE_READ || have == need || have == SCOPE_ADMIN;
}

int
auth_name_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= AUTH_NAME_LEN || !isalnum((unsigned char)s[0]))
		return 0;
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i])
		    && !strchr("._-", s[i]))
			return 0;
	return 1;
}

/* --- passwords ------------------------------------------------------------ */

void
auth_cost_from_config(const struct config *c, struct argon2_cost *out)
{
	out->t = (unsigned)c->auth_argon2_time;
	out->m_kib = (unsigned)c->auth_argon2_memory;
	out->p = (unsigned)c->auth_argon2_threads;
	/* Argon2 needs at least 8 KiB per lane. */
	if (out->m_kib < 8 * out->p)
		out->m_kib = 8 * out->p;
}

int
auth_password_hash(const struct argon2_cost *c, const char *pw, char *out,
    size_t outlen)
{
	unsigned char salt[16];
	int rc;

	if (RAND_bytes(salt, sizeof salt) != 1)
		return -1;
	rc = argon2id_hash_encoded(c->t, c->m_kib, c->p, pw, strlen(pw), salt,
	    sizeof salt, 32, out, outlen);
	if (rc != ARGON2_OK) {
		log_warnx("argon2id: %s", argon2_error_message(rc));
		return -1;
	}
	return 0;
}

int
auth_password_verify(const char *encoded, const char *pw)
{
	if (strncmp(encoded, "$argon2id$", 10) != 0)
		return 0;
	return argon2id_verify(encoded, pw, strlen(pw)) == ARGON2_OK;
}

int
auth_password_generate(char out[25])
{
	/* No 0/O, 1/l/I, 5/S, 8/B, Z/2: easy to read out and type. */
	static const char alphabet[] = "abcdefghijkmnopqrstuvwxyz"
	    "ACDEFGHJKLMNPQRTUVWXY34679";
	const unsigned n = sizeof alphabet - 1;
	unsigned char b;
	int i = 0;

	while (i < 24) {
		if (RAND_bytes(&b, 1) != 1)
			return -1;
		if (b >= 256 - 256 % n)	/* no modulo bias */
			continue;
		out[i++] = alphabet[b % n];
	}
	out[24] = '\0';
	return 0;
}

const char *
auth_password_problem(const char *pw)
{
	size_t i, n = strlen(pw);

	if (n < AUTH_PASSWORD_MIN)
		return "a password needs at least 8 characters";
	if (n > AUTH_PASSWORD_MAX)
		return "a password has at most 1024 bytes";
	for (i = 0; i < n; i++)
		if ((unsigned char)pw[i] < 0x20 || pw[i] == 0x7f)
			return "a password must not contain control characters";
	return NULL;
}

/* --- CIDR allowlist --------------------------------------------------------- */

static int
cidr_parse_one(const char *s, struct cidr *c)
{
	char addr[64], *slash, *end;
	long bits;
	int max;

	if (strlen(s) >= sizeof addr)
		return -1;
	snprintf(addr, sizeof addr, "%s", s);
	if ((slash = strchr(addr, '/')) != NULL)
		*slash++ = '\0';
	memset(c, 0, sizeof *c);
	if (inet_pton(AF_INET, addr, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else
		return -1;
	if (slash) {
		if (!isdigit((unsigned char)*slash))
			return -1;
		errno = 0;
		bits = strtol(slash, &end, 10);
		if (*end || errno || bits < 0 || bits > max)
			return -1;
		c->bits = (int)bits;
	} else
		c->bits = max;
	return 0;
}

int
auth_cidrs_parse(const char *text, struct cidr *out, int max, int *n,
    char *why, size_t whylen)
{
	char copy[4096], *tok, *save = NULL;
	int count = 0;

	if (strlen(text) >= sizeof copy) {
		snprintf(why, whylen, "the list is too long");
		return -1;
	}
	snprintf(copy, sizeof copy, "%s", text);
	for (tok = strtok_r(copy, ", \t", &save); tok;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (count == max) {
			snprintf(why, whylen, "at most %d entries", max);
			return -1;
		}
		if (cidr_parse_one(tok, &out[count]) == -1) {
			snprintf(why, whylen, "'%.64s' is not an IPv4 or IPv6 "
			    "address or CIDR (e.g. 10.0.0.0/8, fd00::/8)", tok);
			return -1;
		}
		count++;
	}
	*n = count;
	return 0;
}

static int
prefix_match(const unsigned char *a, const unsigned char *b, int bits)
{
	int whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

int
auth_cidrs_match(const struct cidr *list, int n, const char *addr)
{
	unsigned char a4[4], a6[16];
	int have4 = 0, have6 = 0, i;

	if (inet_pton(AF_INET, addr, a4) == 1)
		have4 = 1;
	else if (inet_pton(AF_INET6, addr, a6) == 1) {
		have6 = 1;
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a6)) {
			memcpy(a4, a6 + 12, 4);
			have4 = 1;
		}
	}
	for (i = 0; i < n; i++) {
		if (list[i].family == AF_INET && have4 &&
		    prefix_match(list[i].addr, a4, list[i].bits))
			return 1;
		if (list[i].family == AF_INET6 && have6 &&
		    prefix_match(list[i].addr, a6, list[i].bits))
			return 1;
	}
	return 0;
}

void
auth_cidrs_format(const struct cidr *list, int n, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	size_t off = 0;
	int i, w;

	if (len == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		inet_ntop(list[i].family, list[i].addr, a, sizeof a);
		w = snprintf(out + off, len - off, "%s%s/%d", i ? "," : "", a,
		    list[i].bits);
		if (w < 0 || (size_t)w >= len - off)
			break;
		off += (size_t)w;
	}
}

/* --- settings ----------------------------------------------------------- */

static int
parse_switch(const char *v, int *out)
{
	if (!strcasecmp(v, "on") || !strcasecmp(v, "yes") ||
	    !strcasecmp(v, "true") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcasecmp(v, "off") || !strcasecmp(v, "no") ||
	    !strcasecmp(v, "false") || !strcmp(v, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

static void
settings_load(struct bastion *app, struct settings *s)
{
	char v[4096], why[160];

	memset(s, 0, sizeof *s);
	if (db_setting_get(app->db, "read_only", v, sizeof v) == DB_OK)
		parse_switch(v, &s->read_only);
	if (db_setting_get(app->db, "production", v, sizeof v) == DB_OK)
		parse_switch(v, &s->production);
	if (db_setting_get(app->db, "allowlist", v, sizeof v) == DB_OK &&
	    auth_cidrs_parse(v, s->allow, AUTH_MAX_CIDRS, &s->nallow, why,
	    sizeof why) == -1) {
		/* Fail closed: a broken list lets nobody in remotely. */
		log_warnx("settings: allowlist '%s': %s; the control listener "
		    "refuses every address until it is set again", v, why);
		s->nallow = 1;
		s->allow[0].family = AF_UNSPEC;
	}
}

void
auth_settings_get(struct bastion *app, struct settings *out)
{
	pthread_mutex_lock(&app->auth->mu);
	*out = app->auth->settings;
	pthread_mutex_unlock(&app->auth->mu);
}

int
auth_settings_set(struct bastion *app, const char *key, const char *value,
    char *why, size_t whylen)
{
	struct cidr list[AUTH_MAX_CIDRS];
	char canon[4096];
	int on = 0, n = 0;

	if (strcmp(key, "read_only") == 0 || strcmp(key, "production") == 0) {
		if (parse_switch(value, &on) == -1) {
			snprintf(why, whylen, "%s is on or off", key);
			return -1;
		}
		snprintf(canon, sizeof canon, "%s", on ? "on" : "off");
	} else if (strcmp(key, "allowlist") == 0) {
		if (strcmp(value, "any") != 0 && auth_cidrs_parse(value, list,
		    AUTH_MAX_CIDRS, &n, why, whylen) == -1)
			return -1;
		auth_cidrs_format(list, n, canon, sizeof canon);
	} else {
		snprintf(why, whylen, "unknown setting '%.40s' (read_only, "
		    "production, allowlist)", key);
		return -1;
	}
	if (db_setting_set(app->db, key, canon) != DB_OK) {
		snprintf(why, whylen, "database error");
		return -2;
	}
	pthread_mutex_lock(&app->auth->mu);
	if (strcmp(key, "read_only") == 0)
		app->auth->settings.read_only = on;
	else if (strcmp(key, "production") == 0)
		app->auth->settings.production = on;
	else {
		memcpy(app->auth->settings.allow, list, sizeof list[0] *
		    (size_t)n);
		app->auth->settings.nallow = n;
	}
	pthread_mutex_unlock(&app->auth->mu);
	log_info("setting %s = %s", key, canon[0] ? canon : "(any address)");
	return 0;
}

json_t *
auth_settings_json(struct bastion *app)
{
	struct settings s;
	char a[INET6_ADDRSTRLEN + 8];
	json_t *allow = json_array();
	int i;

	auth_settings_get(app, &s);
	for (i = 0; i < s.nallow; i++) {
		if (s.allow[i].family == AF_UNSPEC)
			continue;
		auth_cidrs_format(&s.allow[i], 1, a, sizeof a);
		json_array_append_new(allow, json_string(a));
	}
	return json_pack("{s:b, s:b, s:o}", "read_only", s.read_only,
	    "production", s.production, "allowlist", allow);
}

/* --- throttling -------------------------------------------------------------- */

static struct throttle *
throttle_slot(struct auth *a, const char *key, int create, int64_t now)
{
	struct throttle *t, *victim = NULL;
	int i;

	for (i = 0; i < THROTTLE_SLOTS; i++) {
		t = &a->thr[i];
		if (t->key[0] && strcmp(t->key, key) == 0)
			return t;
	}
	if (!create)
		return NULL;
	/* An empty slot, else the one least likely to matter: not locked,
	 * oldest window. */
	for (i = 0; i < THROTTLE_SLOTS; i++) {
		t = &a->thr[i];
		if (t->key[0] == '\0') {
			victim = t;
			break;
		}
		if (victim == NULL || (t->locked_until_ms <= now &&
		    (victim->locked_until_ms > now ||
		    t->window_start_ms < victim->window_start_ms)))
			victim = t;
	}
	memset(victim, 0, sizeof *victim);
	snprintf(victim->key, sizeof victim->key, "%s", key);
	return victim;
}

int
auth_throttle_check(struct bastion *app, const char *key, int64_t now_ms)
{
	struct throttle *t;
	int wait = 0;

	pthread_mutex_lock(&app->auth->mu);
	if ((t = throttle_slot(app->auth, key, 0, now_ms)) != NULL &&
	    t->locked_until_ms > now_ms)
		wait = (int)((t->locked_until_ms - now_ms + 999) / 1000);
	pthread_mutex_unlock(&app->auth->mu);
	return wait;
}

int
auth_throttle_fail(struct bastion *app, const char *key, int64_t now_ms)
{
	const struct config *c = bastion_config_acquire(app);
	int64_t window = (int64_t)c->auth_login_window * 1000,
	    lockout = (int64_t)c->auth_lockout * 1000;
	int max = c->auth_login_max_failures, locked = 0;
	struct throttle *t;

	bastion_config_release(app);
	pthread_mutex_lock(&app->auth->mu);
	t = throttle_slot(app->auth, key, 1, now_ms);
	if (now_ms - t->window_start_ms > window) {
		t->window_start_ms = now_ms;
		t->failures = 0;
	}
	if (++t->failures >= max && t->locked_until_ms <= now_ms) {
		t->locked_until_ms = now_ms + lockout;
		t->failures = 0;
		t->window_start_ms = now_ms;
		locked = 1;
	}
	pthread_mutex_unlock(&app->auth->mu);
	/* A lockout outlives a restart; the counters leading up to one do
	 * not (a restart is the operator's act, not the guesser's). If the
	 * write fails the lockout still holds until then. */
	if (locked && db_lockout_set(app->db, key, now_ms + lockout, now_ms)
	    != DB_OK)
		log_warnx("lockout of %s: not stored, a restart forgets it", key);
	return locked;
}

struct restore {
	struct auth	*a;
	int64_t		 now_ms;
	int64_t		 max_ms;	/* the configured lockout */
};

/* A stored lockout, back in memory; never longer from now than the
 * configured lockout (a clock set back, a shorter lockout since). */
static void
throttle_restore(void *cls, const char *key, int64_t until_ms)
{
	struct restore *rs = cls;
	struct throttle *t = throttle_slot(rs->a, key, 1, rs->now_ms);

	if (until_ms - rs->now_ms > rs->max_ms)
		until_ms = rs->now_ms + rs->max_ms;
	t->locked_until_ms = until_ms;
	t->window_start_ms = rs->now_ms;
	log_info("%s stays locked out for %" PRId64 " s", key,
	    (until_ms - rs->now_ms + 999) / 1000);
}

void
auth_throttle_ok(struct bastion *app, const char *key)
{
	struct throttle *t;

	pthread_mutex_lock(&app->auth->mu);
	if ((t = throttle_slot(app->auth, key, 0, 0)) != NULL)
		memset(t, 0, sizeof *t);
	pthread_mutex_unlock(&app->auth->mu);
}

/* --- tokens and sessions -------------------------------------------------- */

static int
is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return 0;
	return s[64] == '\0';
}

void
auth_csrf_for(const char *sid, char out[65])
{
	char buf[128];

	snprintf(buf, sizeof buf, "bastion-csrf-v1:%s", sid);
	secret_sha256_hex(buf, strlen(buf), out);
	OPENSSL_cleanse(buf, sizeof buf);
}

int
auth_token(struct bastion *app, const char *token, const char *addr,
    struct principal *p, const char **why)
{
	char hash[SECRET_HEXLEN];
	struct db_apitoken t;
	int64_t now = clock_wall_ms();
	int role, scope;

	if (strncmp(token, AUTH_TOKEN_PREFIX, 4) != 0 || !is_hex64(token + 4)) {
		*why = "malformed token";
		return -1;
	}
	secret_sha256_hex(token, strlen(token), hash);
	if (db_apitoken_get(app->db, hash, &t) != DB_OK) {
		*why = "unknown token";
		return -1;
	}
	if (t.revoked_ms) {
		*why = "revoked token";
		return -1;
	}
	if (t.expires_ms <= now) {
		*why = "expired token";
		return -1;
	}
	if (t.disabled) {
		*why = "the token's user is disabled";
		return -1;
	}
	if ((role = auth_role_from_name(t.role)) < 0 ||
	    (scope = auth_scope_from_name(t.scope)) < 0) {
		*why = "bad role or scope in the database";
		return -1;
	}
	if (now - t.last_used_ms > 5000)
		db_apitoken_used(app->db, t.id, now, addr);
	memset(p, 0, sizeof *p);
	p->kind = AUTH_TOKEN;
	snprintf(p->user, sizeof p->user, "%s", t.user);
	p->user_id = t.user_id;
	p->role = (enum auth_role)role;
	p->scope = (enum auth_scope)scope;
	p->token_id = t.id;
	p->must_change = 0;	/* a token was minted knowingly */
	return 0;
}

int
auth_session(struct bastion *app, const char *sid, struct principal *p,
    const char **why)
{
	const struct config *c;
	char hash[SECRET_HEXLEN];
	struct db_session s;
	int64_t now = clock_wall_ms(), idle_ms, touch_ms;
	int role;

	if (!is_hex64(sid)) {
		*why = "malformed session cookie";
		return -1;
	}
	secret_sha256_hex(sid, strlen(sid), hash);
	if (db_session_get(app->db, hash, &s) != DB_OK) {
		*why = "unknown or ended session";
		return -1;
	}
	c = bastion_config_acquire(app);
	idle_ms = (int64_t)c->auth_session_idle * 1000;
	bastion_config_release(app);
	if (s.expires_ms <= now || now - s.last_seen_ms > idle_ms) {
		*why = s.expires_ms <= now ? "session expired" :
		    "session idle for too long";
		db_session_delete(app->db, s.id, 0);
		return -1;
	}
	if (s.disabled || (role = auth_role_from_name(s.role)) < 0) {
		*why = "the session's user is disabled";
		return -1;
	}
	touch_ms = idle_ms / 4 < 5000 ? idle_ms / 4 : 5000;
	if (now - s.last_seen_ms >= touch_ms)
		db_session_touch(app->db, s.id, now);
	memset(p, 0, sizeof *p);
	p->kind = AUTH_SESSION;
	snprintf(p->user, sizeof p->user, "%s", s.user);
	p->user_id = s.user_id;
	p->role = (enum auth_role)role;
	p->scope = SCOPE_ADMIN;		/* sessions are limited by role only */
	p->session_id = s.id;
	p->must_change = s.must_change;
	auth_csrf_for(sid, p->csrf);
	return 0;
}

const char *
auth_dummy_hash(struct bastion *app)
{
	return app->auth->dummy_hash;
}

/* --- start-up --------------------------------------------------------------- */

/* No user at all: make "admin" with a one-time password, say it once. */
static int
first_admin(struct bastion *app)
{
	struct argon2_cost cost;
	struct audit_entry e;
	char pw[25], hash[256];
	int64_t n;
	int rc;

	if (db_user_count(app->db, &n) != DB_OK)
		return -1;
	if (n > 0)
		return 0;
	auth_cost_from_config(app->cfg, &cost);
	if (auth_password_generate(pw) == -1 ||
	    auth_password_hash(&cost, pw, hash, sizeof hash) == -1)
		return -1;
	memset(&e, 0, sizeof e);
	e.wanted = 1;
	AUDIT_SET(&e, actor_type, "system");
	AUDIT_SET(&e, actor, "bastion");
	AUDIT_SET(&e, source, "local");
	AUDIT_SET(&e, request_id, "startup");
	AUDIT_SET(&e, action, "user.bootstrap");
	AUDIT_SET(&e, target, "admin");
	AUDIT_SET(&e, detail, "first start: admin created with a one-time "
	    "password");
	db_audit_pending(&e);
	rc = db_user_add(app->db, "admin", "admin", hash, 1);
	db_audit_pending(NULL);
	if (rc != DB_OK) {
		OPENSSL_cleanse(pw, sizeof pw);
		return -1;
	}
	log_info("first start: created user 'admin' with the one-time password "
	    "%s -- log in and change it; it is not shown again "
	    "(bastionctl users passwd admin resets it)", pw);
	OPENSSL_cleanse(pw, sizeof pw);
	return 0;
}

int
auth_open(struct bastion *app)
{
	struct auth *a;

	if ((a = calloc(1, sizeof *a)) == NULL)
		return -1;
	pthread_mutex_init(&a->mu, NULL);
	app->auth = a;
	settings_load(app, &a->settings);
	/* Called before any listener runs: no lock needed yet. */
	{
		struct restore rs = { a, clock_wall_ms(),
		    (int64_t)app->cfg->auth_lockout * 1000 };

		if (db_lockouts_load(app->db, rs.now_ms, THROTTLE_SLOTS,
		    throttle_restore, &rs) != DB_OK)
			log_warnx("cannot load the login lockouts");
	}
	{
		struct argon2_cost cost;

		auth_cost_from_config(app->cfg, &cost);
		if (auth_password_hash(&cost, "no such user", a->dummy_hash,
		    sizeof a->dummy_hash) == -1) {
			auth_close(app);
			return -1;
		}
	}
	if (first_admin(app) == -1) {
		log_warnx("cannot create the first admin");
		auth_close(app);
		return -1;
	}
	if (a->settings.read_only)
		log_info("read-only mode is on");
	if (a->settings.production)
		log_info("production mode is on");
	return 0;
}

void
auth_close(struct bastion *app)
{
	if (app->auth == NULL)
		return;
	pthread_mutex_destroy(&app->auth->mu);
	free(app->auth);
	app->auth = NULL;
}
