/* routes_auth.c — logins and sessions, users, API tokens, the global
 * settings, the audit log and the route table itself. Who may call what
 * is in the table at the bottom; handlers only add the checks that
 * depend on the target (one's own password, sessions and tokens). */
#define LOG_SUBSYS "auth"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "bounds.h"
#include "clock.h"
#include "config.h"
#include "db.h"
#include "db_auth.h"
#include "duration.h"
#include "http.h"
#include "log.h"
#include "secret.h"

#define L_API (L_CONTROL | L_ADMIN)

static void
reply_db(struct request *r, int rc, const char *what)
{
	if (rc == DB_NOTFOUND)
		http_reply_error(r, 404, "not_found", "no %s", what);
	else
		http_reply_error(r, 500, "internal", "database error");
}

/* A string member of the body, or NULL (no reply). */
static const char *
body_str(const json_t *body, const char *key)
{
	const json_t *v = json_object_get(body, key);

	if (!json_is_string(v) ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	return json_string_value(v);
}

static void
set_cookie(struct request *r, const char *sid, int max_age)
{
	char v[256];

	snprintf(v, sizeof v, "%s=%s; HttpOnly; Secure; SameSite=Strict; Path=/;"
	    " Max-Age=%d", AUTH_SESSION_COOKIE, sid, max_age);
	http_add_header(r, "Set-Cookie", v);
	OPENSSL_cleanse(v, sizeof v);
}

static const char *
via_name(enum auth_kind k)
{
	switch (k) {
	case AUTH_ADMIN_SOCKET:
		return "admin-socket";
	case AUTH_SESSION:
		return "session";
	case AUTH_TOKEN:
		return "token";
	default:
		return "none";
	}
}

/* --- sessions -------------------------------------------------------------- */

static void
locked_out(struct request *r, int wait)
{
	char s[32];

	snprintf(s, sizeof s, "%d", wait);
	http_add_header(r, "Retry-After", s);
	AUDIT_SET(&r->audit, detail, "locked out for another %d s", wait);
	http_reply_error(r, 429, "locked_out", "too many failed logins: try "
	    "again in %d seconds", wait);
}

/* A lockout that starts now is an audit row of its own. */
static void
lockout_row(struct request *r, const char *kind, const char *what)
{
	struct audit_entry e = r->audit;

	e.written = 0;
	AUDIT_SET(&e, action, "auth.lockout");
	AUDIT_SET(&e, result, "denied");
	AUDIT_SET(&e, target, "%s", what);
	AUDIT_SET(&e, detail, "too many failed logins for %s %s", kind, what);
	AUDIT_SET(&e, error, "locked_out");
	log_warnx("req %s: login lockout for %s %s", r->id, kind, what);
	db_audit_append(r->app->db, &e);
}

/* A failed login: count it against the address and the name. */
static void
login_failed(struct request *r, const char *akey, const char *ukey,
    const char *name, const char *why)
{
	int64_t now = clock_wall_ms();

	AUDIT_SET(&r->audit, detail, "%s", why);
	log_info("req %s: failed login for '%s' from %s: %s", r->id, name,
	    r->client, why);
	if (auth_throttle_fail(r->app, akey, now))
		lockout_row(r, "address", r->client);
	if (auth_throttle_fail(r->app, ukey, now))
		lockout_row(r, "user", name);
	http_reply_error(r, 401, "bad_credentials", "wrong user name or "
	    "password");
}

/* origin is https://HOST[:PORT] of the control listener: one of its
 * [control] names or its listen address, with its port (443 may be left
 * out). */
static int
origin_is_ours(const struct config *c, const char *origin)
{
	char want[CONFIG_NAME_LEN + 32];
	const char *host;
	int i, port = c->control_listen.port;

	for (i = -1; i < c->nnames; i++) {
		host = i < 0 ? c->control_listen.host : c->names[i];
		if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
			continue;
		snprintf(want, sizeof want, strchr(host, ':') ?
		    "https://[%s]:%d" : "https://%s:%d", host, port);
		if (strcasecmp(origin, want) == 0)
			return 1;
		if (port != 443)
			continue;
		snprintf(want, sizeof want, strchr(host, ':') ?
		    "https://[%s]" : "https://%s", host);
		if (strcasecmp(origin, want) == 0)
			return 1;
	}
	return 0;
}

/* Login CSRF: a page elsewhere must not log the browser in to an
 * account of its choosing. Browsers send Origin on every POST; scripts
 * (bastionctl, curl) send none and are not a browser to protect. */
static int
origin_check(struct request *r)
{
	const char *origin = http_header(r, "Origin");
	int ok;

	if (origin == NULL)
		return 0;
	ok = origin_is_ours(bastion_config_acquire(r->app), origin);
	bastion_config_release(r->app);
	if (ok)
		return 0;
	AUDIT_SET(&r->audit, detail, "foreign Origin %.100s", origin);
	http_reply_error(r, 403, "foreign_origin", "Origin %.100s is not this "
	    "control listener (its [control] names and listen address, https "
	    "and its port)", origin);
	return -1;
}

static void
post_session(struct request *r)
{
	const struct config *c;
	const char *name, *pw;
	char akey[96], ukey[96], sid[SECRET_HEXLEN], hash[SECRET_HEXLEN];
	char csrf[65];
	struct db_user u;
	json_t *body;
	int64_t now = clock_wall_ms(), sess_id;
	int lifetime, idle, wait, rc, found;

	if ((body = http_body_json(r)) == NULL)
		return;
	if (origin_check(r) == -1)
		goto out;
	name = body_str(body, "username");
	pw = body_str(body, "password");
	if (name == NULL || pw == NULL || *name == '\0') {
		http_reply_error(r, 400, "bad_request", "the body must be "
		    "{\"username\": ..., \"password\": ...}");
		goto out;
	}
	AUDIT_SET(&r->audit, actor_type, "user");
	AUDIT_SET(&r->audit, actor, "%.32s", name);
	AUDIT_SET(&r->audit, target, "%.32s", name);
	snprintf(akey, sizeof akey, "addr:%s", r->client);
	snprintf(ukey, sizeof ukey, "user:%.64s", name);
	if ((wait = auth_throttle_check(r->app, akey, now)) > 0 ||
	    (wait = auth_throttle_check(r->app, ukey, now)) > 0) {
		locked_out(r, wait);
		goto out;
	}
	rc = db_user_get(r->app->db, name, &u);
	if (rc == DB_ERR) {
		http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	found = rc == DB_OK;
	/* The same work whether or not the user exists. */
	if (!auth_password_verify(found ? u.password_hash :
	    auth_dummy_hash(r->app), pw) || !found) {
		login_failed(r, akey, ukey, name, found ? "wrong password" :
		    "no such user");
		goto out;
	}
	if (u.disabled) {
		login_failed(r, akey, ukey, name, "user is disabled");
		goto out;
	}
	auth_throttle_ok(r->app, akey);
	auth_throttle_ok(r->app, ukey);
	c = bastion_config_acquire(r->app);
	lifetime = c->auth_session_lifetime;
	idle = c->auth_session_idle;
	bastion_config_release(r->app);
	if (secret_random_hex(sid) == -1) {
		http_reply_error(r, 500, "internal", "no randomness");
		goto out;
	}
	secret_sha256_hex(sid, strlen(sid), hash);
	if (u.must_change)
		AUDIT_SET(&r->audit, detail, "one-time password: must change it");
	if (db_session_add(r->app->db, hash, u.id, r->client,
	    http_header(r, "User-Agent") ? http_header(r, "User-Agent") : "",
	    now + (int64_t)lifetime * 1000, &sess_id) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		goto out_sid;
	}
	auth_csrf_for(sid, csrf);
	set_cookie(r, sid, lifetime);
	log_info("req %s: %s logged in from %s", r->id, u.name, r->client);
	http_reply_json(r, 200, json_pack("{s:s, s:s, s:b, s:s, s:I, s:o, s:i}",
	    "user", u.name, "role", u.role, "must_change_password",
	    u.must_change, "csrf_token", csrf, "session_id", (json_int_t)sess_id,
	    "expires_at", db_auth_time(now + (int64_t)lifetime * 1000),
	    "idle_timeout_s", idle));
out_sid:
	OPENSSL_cleanse(sid, sizeof sid);
out:
	json_decref(body);
}

static void
get_session(struct request *r)
{
	json_t *o;

	o = json_pack("{s:s, s:s, s:s, s:b}", "user", r->who.user, "role",
	    auth_role_name(r->who.role), "via", via_name(r->who.kind),
	    "must_change_password", r->who.must_change);
	if (r->who.kind == AUTH_TOKEN) {
		json_object_set_new(o, "scope",
		    json_string(auth_scope_name(r->who.scope)));
		json_object_set_new(o, "token_id", json_integer(r->who.token_id));
	}
	if (r->who.kind == AUTH_SESSION) {
		json_object_set_new(o, "csrf_token", json_string(r->who.csrf));
		json_object_set_new(o, "session_id",
		    json_integer(r->who.session_id));
	}
	http_reply_json(r, 200, o);
}

static void
delete_session(struct request *r)
{
	int rc;

	if (r->who.kind != AUTH_SESSION) {
		http_reply_error(r, 400, "not_a_session", "only a cookie "
		    "session can log out; revoke a token with DELETE "
		    "/api/v1/apitokens/{id}");
		return;
	}
	AUDIT_SET(&r->audit, target, "session %" PRId64, r->who.session_id);
	rc = db_session_delete(r->app->db, r->who.session_id, r->who.user_id);
	if (rc != DB_OK && rc != DB_NOTFOUND) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	set_cookie(r, "", 0);
	log_info("req %s: %s logged out", r->id, r->who.user);
	http_reply_json(r, 200, json_pack("{s:b}", "logged_out", 1));
}

static void
get_sessions(struct request *r)
{
	json_t *list;

	if (r->who.user_id == 0) {
		http_reply_error(r, 400, "no_user", "the admin socket is not a "
		    "user and has no sessions");
		return;
	}
	if (db_sessions_json(r->app->db, r->who.user_id, r->who.session_id,
	    &list) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	http_reply_json(r, 200, list);
}

static int
id_param(struct request *r, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(r->params[0], &end, 10);
	if (r->params[0][0] < '0' || r->params[0][0] > '9' || *end || errno ||
	    v < 1) {
		http_reply_error(r, 400, "bad_id", "'%.32s' is not an id",
		    r->params[0]);
		return -1;
	}
	*out = v;
	return 0;
}

static void
delete_sessions_id(struct request *r)
{
	int64_t id;
	int rc;

	if (id_param(r, &id) == -1)
		return;
	if (r->who.user_id == 0) {
		http_reply_error(r, 400, "no_user", "the admin socket is not a "
		    "user and has no sessions (disable the user instead)");
		return;
	}
	AUDIT_SET(&r->audit, target, "session %" PRId64 " of %s", id,
	    r->who.user);
	/* Only one's own: another user's session is "not found". */
	if ((rc = db_session_delete(r->app->db, id, r->who.user_id)) != DB_OK) {
		reply_db(r, rc, "such session of yours");
		return;
	}
	if (id == r->who.session_id)
		set_cookie(r, "", 0);
	http_reply_json(r, 200, json_pack("{s:I}", "ended", (json_int_t)id));
}

/* --- users ------------------------------------------------------------------ */

static void
get_users(struct request *r)
{
	json_t *list;

	if (db_users_json(r->app->db, &list) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	http_reply_json(r, 200, list);
}

static int
hash_password(struct request *r, const char *pw, char *out, size_t len)
{
	struct argon2_cost cost;

	auth_cost_from_config(bastion_config_acquire(r->app), &cost);
	bastion_config_release(r->app);
	if (auth_password_hash(&cost, pw, out, len) == -1) {
		http_reply_error(r, 500, "internal", "cannot hash the password");
		return -1;
	}
	return 0;
}

static void
post_users(struct request *r)
{
	const char *name, *role, *pw;
	char gen[25] = "", hash[256];
	json_t *body, *res;
	const char *problem;
	int rc;

	if ((body = http_body_json(r)) == NULL)
		return;
	name = body_str(body, "name");
	role = body_str(body, "role");
	pw = body_str(body, "password");
	if (name == NULL || !auth_name_valid(name)) {
		http_reply_error(r, 422, "invalid", "name must be 1-32 of "
		    "[a-z0-9._-], starting with a letter or digit");
		goto out;
	}
	AUDIT_SET(&r->audit, target, "%s", name);
	if (role == NULL || auth_role_from_name(role) < 0) {
		http_reply_error(r, 422, "invalid", "role must be viewer, "
		    "operator or admin");
		goto out;
	}
	AUDIT_SET(&r->audit, detail, "role %s%s", role, pw ? "" :
	    ", one-time password");
	if (json_object_get(body, "password") && pw == NULL) {
		http_reply_error(r, 422, "invalid", "password must be a string");
		goto out;
	}
	if (pw && (problem = auth_password_problem(pw)) != NULL) {
		http_reply_error(r, 422, "weak_password", "%s", problem);
		goto out;
	}
	if (pw == NULL && auth_password_generate(gen) == -1) {
		http_reply_error(r, 500, "internal", "no randomness");
		goto out;
	}
	if (hash_password(r, pw ? pw : gen, hash, sizeof hash) == -1)
		goto out;
	rc = db_user_add(r->app->db, name, role, hash, pw == NULL);
	if (rc == DB_CONFLICT) {
		http_reply_error(r, 409, "exists", "user %s already exists", name);
		goto out;
	}
	if (rc != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	log_info("req %s: user %s (%s) created by %s", r->id, name, role,
	    r->audit.actor);
	res = json_pack("{s:s, s:s, s:b}", "name", name, "role", role,
	    "must_change_password", pw == NULL);
	if (pw == NULL)
		json_object_set_new(res, "password", json_string(gen));
	http_reply_json(r, 201, res);
out:
	OPENSSL_cleanse(gen, sizeof gen);
	json_decref(body);
}

static void
patch_user(struct request *r)
{
	const char *name = r->params[0], *role = NULL;
	const json_t *d;
	json_t *body;
	int disabled = -1, rc;

	if ((body = http_body_json(r)) == NULL)
		return;
	if (json_object_get(body, "role") &&
	    ((role = body_str(body, "role")) == NULL ||
	    auth_role_from_name(role) < 0)) {
		http_reply_error(r, 422, "invalid", "role must be viewer, "
		    "operator or admin");
		goto out;
	}
	if ((d = json_object_get(body, "disabled")) != NULL) {
		if (!json_is_boolean(d)) {
			http_reply_error(r, 422, "invalid", "disabled must be "
			    "true or false");
			goto out;
		}
		disabled = json_is_true(d);
	}
	if (role == NULL && disabled < 0) {
		http_reply_error(r, 422, "invalid", "nothing to change: give "
		    "role and/or disabled");
		goto out;
	}
	AUDIT_SET(&r->audit, detail, "%s%s%s%s", role ? "role " : "",
	    role ? role : "", role && disabled >= 0 ? ", " : "",
	    disabled < 0 ? "" : disabled ? "disabled" : "enabled");
	rc = db_user_update(r->app->db, name, role, disabled);
	if (rc == DB_CONFLICT) {
		http_reply_error(r, 409, "last_admin", "%s is the last enabled "
		    "admin", name);
		goto out;
	}
	if (rc != DB_OK) {
		reply_db(r, rc, "such user");
		goto out;
	}
	log_info("req %s: user %s changed by %s: %s", r->id, name,
	    r->audit.actor, r->audit.detail);
	http_reply_json(r, 200, json_pack("{s:s}", "name", name));
out:
	json_decref(body);
}

/* One's own password with the old one; anyone's as an admin. */
static void
put_user_password(struct request *r)
{
	const char *name = r->params[0], *pw, *old, *problem;
	char gen[25] = "", hash[256], ukey[96];
	struct db_user u;
	json_t *body, *res;
	int self, rc;

	if ((body = http_body_json(r)) == NULL)
		return;
	pw = body_str(body, "password");
	old = body_str(body, "old_password");
	self = r->who.user_id != 0 && strcmp(r->who.user, name) == 0;
	if (!self && r->who.role < ROLE_ADMIN) {
		http_reply_error(r, 403, "not_yours", "only an admin may change "
		    "another user's password");
		goto out;
	}
	if ((rc = db_user_get(r->app->db, name, &u)) != DB_OK) {
		reply_db(r, rc, "such user");
		goto out;
	}
	if (self) {
		if (pw == NULL || old == NULL) {
			http_reply_error(r, 422, "invalid", "give old_password "
			    "and password");
			goto out;
		}
		snprintf(ukey, sizeof ukey, "user:%.64s", name);
		if (!auth_password_verify(u.password_hash, old)) {
			auth_throttle_fail(r->app, ukey, clock_wall_ms());
			http_reply_error(r, 403, "wrong_password", "the old "
			    "password is wrong");
			goto out;
		}
	}
	if (pw && (problem = auth_password_problem(pw)) != NULL) {
		http_reply_error(r, 422, "weak_password", "%s", problem);
		goto out;
	}
	if (self && old && strcmp(old, pw) == 0) {
		http_reply_error(r, 422, "weak_password", "the new password must "
		    "differ from the old one");
		goto out;
	}
	if (pw == NULL && auth_password_generate(gen) == -1) {
		http_reply_error(r, 500, "internal", "no randomness");
		goto out;
	}
	if (hash_password(r, pw ? pw : gen, hash, sizeof hash) == -1)
		goto out;
	AUDIT_SET(&r->audit, detail, "%s", self ? "own password changed" :
	    pw ? "set by an admin" : "reset to a one-time password");
	if ((rc = db_user_set_password(r->app->db, name, hash, pw == NULL,
	    self ? r->who.session_id : 0)) != DB_OK) {
		reply_db(r, rc, "such user");
		goto out;
	}
	log_info("req %s: password of %s %s by %s", r->id, name,
	    pw ? "changed" : "reset", r->audit.actor);
	res = json_pack("{s:s, s:b}", "name", name, "must_change_password",
	    pw == NULL);
	if (pw == NULL)
		json_object_set_new(res, "password", json_string(gen));
	http_reply_json(r, 200, res);
out:
	OPENSSL_cleanse(gen, sizeof gen);
	json_decref(body);
}

/* --- API tokens ----------------------------------------------------------- */

static void
get_apitokens(struct request *r)
{
	const char *user = http_query(r, "user");
	struct db_user u;
	int64_t uid = r->who.role >= ROLE_ADMIN ? 0 : r->who.user_id;
	json_t *list;
	int rc;

	if (r->who.role < ROLE_ADMIN && r->who.user_id == 0) {
		http_reply_json(r, 200, json_array());
		return;
	}
	if (user && *user) {
		if (r->who.role < ROLE_ADMIN && strcmp(user, r->who.user) != 0) {
			http_reply_error(r, 403, "not_yours", "only an admin may "
			    "list another user's tokens");
			return;
		}
		if ((rc = db_user_get(r->app->db, user, &u)) != DB_OK) {
			reply_db(r, rc, "such user");
			return;
		}
		uid = u.id;
	}
	if (db_apitokens_json(r->app->db, uid, &list) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	http_reply_json(r, 200, list);
}

static void
post_apitokens(struct request *r)
{
	const char *user, *scope, *expires, *desc;
	char tok[AUTH_TOKEN_LEN + 1], hex[SECRET_HEXLEN], hash[SECRET_HEXLEN];
	struct db_user u;
	const json_t *ein;
	int64_t secs = 0, id, exp_ms;
	json_t *body;
	int rc, sc, role;

	if ((body = http_body_json(r)) == NULL)
		return;
	user = body_str(body, "user");
	scope = body_str(body, "scope");
	expires = body_str(body, "expires");
	desc = body_str(body, "description");
	ein = json_object_get(body, "expires_in");
	if (user == NULL)
		user = r->who.user_id ? r->who.user : NULL;
	if (user == NULL) {
		http_reply_error(r, 422, "invalid", "user is required (the admin "
		    "socket is not a user)");
		goto out;
	}
	AUDIT_SET(&r->audit, target, "%s", user);
	if (strcmp(user, r->who.user) != 0 && r->who.role < ROLE_ADMIN) {
		http_reply_error(r, 403, "not_yours", "only an admin may create "
		    "tokens for another user");
		goto out;
	}
	if (scope == NULL || (sc = auth_scope_from_name(scope)) < 0) {
		http_reply_error(r, 422, "invalid", "scope must be read, "
		    "provision, exec or admin");
		goto out;
	}
	if (json_is_integer(ein) && json_integer_value(ein) > 0 &&
	    json_integer_value(ein) <= APITOKEN_MAX_EXPIRY)
		secs = json_integer_value(ein);
	else if (expires == NULL || duration_parse(expires,
	    APITOKEN_MAX_EXPIRY, &secs) == -1) {
		http_reply_error(r, 422, "invalid", "every token expires: give "
		    "expires as a duration such as 90d, 12h or 30m (at most "
		    "366d)");
		goto out;
	}
	if (desc && strlen(desc) > 200) {
		http_reply_error(r, 422, "invalid", "description: at most 200 "
		    "bytes");
		goto out;
	}
	if ((rc = db_user_get(r->app->db, user, &u)) != DB_OK) {
		reply_db(r, rc, "such user");
		goto out;
	}
	if (u.disabled) {
		http_reply_error(r, 409, "disabled", "%s is disabled", user);
		goto out;
	}
	role = auth_role_from_name(u.role);
	if (role < (int)auth_scope_min_role((enum auth_scope)sc)) {
		http_reply_error(r, 422, "scope_above_role", "a %s token needs "
		    "the %s role; %s is %s", scope,
		    auth_role_name(auth_scope_min_role((enum auth_scope)sc)), user,
		    u.role);
		goto out;
	}
	if (secret_random_hex(hex) == -1) {
		http_reply_error(r, 500, "internal", "no randomness");
		goto out;
	}
	snprintf(tok, sizeof tok, AUTH_TOKEN_PREFIX "%s", hex);
	secret_sha256_hex(tok, strlen(tok), hash);
	exp_ms = clock_wall_ms() + secs * 1000;
	AUDIT_SET(&r->audit, detail, "scope %s, expires in %" PRId64 " s%s%s",
	    scope, secs, desc && *desc ? ": " : "", desc ? desc : "");
	if (db_apitoken_add(r->app->db, hash, u.id, scope, desc ? desc : "",
	    exp_ms, r->audit.actor, &id) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		goto out_tok;
	}
	log_info("req %s: API token %" PRId64 " (%s) for %s created by %s", r->id,
	    id, scope, user, r->audit.actor);
	http_reply_json(r, 201, json_pack("{s:I, s:s, s:s, s:s, s:o}", "id",
	    (json_int_t)id, "token", tok, "user", user, "scope", scope,
	    "expires_at", db_auth_time(exp_ms)));
out_tok:
	OPENSSL_cleanse(tok, sizeof tok);
	OPENSSL_cleanse(hex, sizeof hex);
out:
	json_decref(body);
}

static void
delete_apitoken(struct request *r)
{
	int64_t id;
	int rc;

	if (id_param(r, &id) == -1)
		return;
	AUDIT_SET(&r->audit, target, "token %" PRId64, id);
	rc = db_apitoken_revoke(r->app->db, id, r->who.role >= ROLE_ADMIN ? 0 :
	    r->who.user_id);
	if (rc != DB_OK) {
		reply_db(r, rc, "such active token of yours");
		return;
	}
	log_info("req %s: API token %" PRId64 " revoked by %s", r->id, id,
	    r->audit.actor);
	http_reply_json(r, 200, json_pack("{s:I}", "revoked", (json_int_t)id));
}

/* --- settings ----------------------------------------------------------- */

static void
get_settings(struct request *r)
{
	http_reply_json(r, 200, auth_settings_json(r->app));
}

static void
put_setting(struct request *r)
{
	const char *key = r->params[0], *value;
	struct cidr list[AUTH_MAX_CIDRS];
	struct settings st;
	char why[256];
	json_t *body, *v;
	int n = 0, rc;

	/* Read-only mode refuses everything but turning it off. */
	auth_settings_get(r->app, &st);
	if (st.read_only && strcmp(key, "read_only") != 0) {
		http_reply_error(r, 423, "read_only", "bastion is in read-only "
		    "mode: turn it off first (bastionctl settings set read_only "
		    "off)");
		return;
	}
	if ((body = http_body_json(r)) == NULL)
		return;
	v = json_object_get(body, "value");
	if (json_is_boolean(v))
		value = json_is_true(v) ? "on" : "off";
	else if ((value = body_str(body, "value")) == NULL) {
		http_reply_error(r, 400, "bad_request", "the body must be "
		    "{\"value\": \"...\"}");
		goto out;
	}
	AUDIT_SET(&r->audit, detail, "%s = %s", key, value);
	/* Do not let a remote admin lock themselves out by accident. */
	if (strcmp(key, "allowlist") == 0 && r->listener == L_CONTROL &&
	    strcmp(value, "any") != 0 && !json_is_true(json_object_get(body,
	    "force")) && auth_cidrs_parse(value, list, AUTH_MAX_CIDRS, &n, why,
	    sizeof why) == 0 && n > 0 &&
	    !auth_cidrs_match(list, n, r->client)) {
		http_reply_error(r, 409, "would_lock_out", "your address %s is "
		    "not in that list; send \"force\": true to set it anyway",
		    r->client);
		goto out;
	}
	if ((rc = auth_settings_set(r->app, key, value, why, sizeof why)) != 0) {
		if (rc == -2)
			http_reply_error(r, 500, "internal", "%s", why);
		else
			http_reply_error(r, strncmp(why, "unknown setting", 15) ?
			    422 : 404, "bad_setting", "%s", why);
		goto out;
	}
	log_info("req %s: setting %s = %s by %s", r->id, key, value,
	    r->audit.actor);
	http_reply_json(r, 200, auth_settings_json(r->app));
out:
	json_decref(body);
}

/* --- audit ------------------------------------------------------------------ */

/* "2024-05-01", "2024-05-01T12:00:00Z" or a duration ago ("1h", "7d"). */
static int
parse_since(const char *s, int64_t *out_ms)
{
	struct tm tm;
	int64_t secs;
	time_t t;
	int n = 0;

	if (duration_parse(s, 100LL * 365 * 86400, &secs) == 0 &&
	    strpbrk(s, "smhdw")) {
		*out_ms = clock_wall_ms() - secs * 1000;
		return 0;
	}
	memset(&tm, 0, sizeof tm);
	if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	    &n) != 3)
		return -1;
	if (s[n] == 'T' || s[n] == ' ') {
		int m = 0;

		if (sscanf(s + n + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min,
		    &tm.tm_sec, &m) != 3)
			return -1;
		n += 1 + m;
		if (s[n] == '.')
			for (n++; s[n] >= '0' && s[n] <= '9'; n++)
				;
		if (s[n] == 'Z')
			n++;
	}
	if (s[n] != '\0')
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	*out_ms = (int64_t)t * 1000;
	return 0;
}

static void
get_audit(struct request *r)
{
	struct audit_query q;
	const char *since = http_query(r, "since"), *v;
	char *end;
	json_t *list;
	long long n;

	memset(&q, 0, sizeof q);
	q.limit = 100;
	if (since && *since && parse_since(since, &q.since_ms) == -1) {
		http_reply_error(r, 400, "bad_request", "since must be a date "
		    "(2024-05-01, 2024-05-01T12:00:00Z) or a duration ago (15m, "
		    "2h, 7d)");
		return;
	}
	if ((v = http_query(r, "limit")) && *v) {
		errno = 0;
		n = strtoll(v, &end, 10);
		if (*end || errno || n < 1 || n > 10000) {
			http_reply_error(r, 400, "bad_request", "limit must be "
			    "1..10000");
			return;
		}
		q.limit = (int)n;
	}
	if ((v = http_query(r, "after")) && *v) {
		errno = 0;
		n = strtoll(v, &end, 10);
		if (*end || errno || n < 0) {
			http_reply_error(r, 400, "bad_request", "after must be a "
			    "row id");
			return;
		}
		q.after_id = n;
	}
	if ((v = http_query(r, "actor")) && *v)
		q.actor = v;
	if ((v = http_query(r, "action")) && *v)
		q.action = v;
	if (db_audit_list(r->app->db, &q, &list) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	http_reply_json(r, 200, list);
}

static void
get_audit_verify(struct request *r)
{
	json_t *v;

	if (db_audit_verify(r->app->db, &v) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	if (!json_is_true(json_object_get(v, "ok")))
		log_warnx("req %s: audit chain broken: %s", r->id,
		    json_string_value(json_object_get(v, "reason")));
	http_reply_json(r, 200, v);
}

static void
get_routes(struct request *r)
{
	http_reply_json(r, 200, http_routes_json());
}

/* Who may do what: see struct route in http.h and docs/api.md. */
const struct route routes_auth[] = {
	{ L_CONTROL, "POST", "/api/v1/session", post_session, 8192,
	    ROLE_NONE, SCOPE_READ, RF_MUTATES | RF_RO_EXEMPT, "session.login" },
	{ L_API, "GET", "/api/v1/session", get_session, 0,
	    ROLE_VIEWER, SCOPE_READ, RF_PW_CHANGE, NULL },
	{ L_CONTROL, "DELETE", "/api/v1/session", delete_session, 0,
	    ROLE_VIEWER, SCOPE_ADMIN, RF_MUTATES | RF_RO_EXEMPT | RF_PW_CHANGE,
	    "session.logout" },
	{ L_API, "GET", "/api/v1/sessions", get_sessions, 0,
	    ROLE_VIEWER, SCOPE_READ, RF_PW_CHANGE, NULL },
	{ L_API, "DELETE", "/api/v1/sessions/{id}", delete_sessions_id, 0,
	    ROLE_VIEWER, SCOPE_ADMIN, RF_MUTATES | RF_RO_EXEMPT | RF_PW_CHANGE,
	    "session.end" },
	{ L_API, "GET", "/api/v1/users", get_users, 0,
	    ROLE_ADMIN, SCOPE_READ, 0, NULL },
	{ L_API, "POST", "/api/v1/users", post_users, 0,
	    ROLE_ADMIN, SCOPE_ADMIN, RF_MUTATES, "user.create" },
	{ L_API, "PATCH", "/api/v1/users/{name}", patch_user, 0,
	    ROLE_ADMIN, SCOPE_ADMIN, RF_MUTATES, "user.update" },
	{ L_API, "PUT", "/api/v1/users/{name}/password", put_user_password, 0,
	    ROLE_VIEWER, SCOPE_ADMIN, RF_MUTATES | RF_PW_CHANGE,
	    "user.password" },
	{ L_API, "GET", "/api/v1/apitokens", get_apitokens, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "POST", "/api/v1/apitokens", post_apitokens, 0,
	    ROLE_VIEWER, SCOPE_ADMIN, RF_MUTATES, "apitoken.create" },
	{ L_API, "DELETE", "/api/v1/apitokens/{id}", delete_apitoken, 0,
	    ROLE_VIEWER, SCOPE_ADMIN, RF_MUTATES | RF_RO_EXEMPT,
	    "apitoken.revoke" },
	{ L_API, "GET", "/api/v1/settings", get_settings, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "PUT", "/api/v1/settings/{key}", put_setting, 0,
	    ROLE_ADMIN, SCOPE_ADMIN, RF_MUTATES | RF_RO_HANDLER,
	    "settings.set" },
	{ L_API, "GET", "/api/v1/audit", get_audit, 0,
	    ROLE_ADMIN, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/audit/verify", get_audit_verify, 0,
	    ROLE_ADMIN, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/routes", get_routes, 0,
	    ROLE_ADMIN, SCOPE_READ, 0, NULL },
	{ 0, NULL, NULL, NULL, 0, ROLE_NONE, SCOPE_READ, 0, NULL },
};
