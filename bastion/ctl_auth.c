/* ctl_auth.c — bastionctl users add|list|passwd|disable|enable,
 * apitokens create|list|revoke, settings get|set, audit list|verify and
 * whoami. Secrets (passwords, tokens) go to stdout once and nowhere
 * else; passwords come from standard input, never from the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctl.h"

#define PASSWORD_INPUT_MAX	4096

/*
 * Up to two lines from standard input: line[0] and, when want == 2,
 * line[1]. Trailing CR/LF removed. The caller wipes and frees *b.
 */
static int
read_password_lines(int want, struct buf *b, const char *line[2])
{
	char *nl;
	size_t n;
	int i;

	if (ctl_read_file("-", PASSWORD_INPUT_MAX, b) == -1)
		return -1;
	line[0] = b->data ? b->data : "";
	line[1] = NULL;
	if ((nl = strchr(b->data, '\n')) != NULL) {
		*nl = '\0';
		line[1] = nl + 1;
		if ((nl = strchr(line[1], '\n')) != NULL)
			*nl = '\0';
	}
	for (i = 0; i < 2; i++) {
		if (line[i] == NULL)
			continue;
		n = strlen(line[i]);
		if (n && line[i][n - 1] == '\r')
			((char *)line[i])[n - 1] = '\0';
	}
	if (*line[0] == '\0' || (want == 2 && (line[1] == NULL ||
	    *line[1] == '\0'))) {
		ctl_error(want == 2 ? "expected the old password on the first "
		    "line of standard input and the new one on the second" :
		    "expected the password on the first line of standard input");
		return -1;
	}
	return 0;
}

static void
wipe(struct buf *b)
{
	if (b->data)
		OPENSSL_cleanse(b->data, b->len);
	buf_free(b);
}

/* --- users -------------------------------------------------------------- */

static int
users_add(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *role = NULL, *pw[2];
	int stdin_pw = 0, json = 0, rc = CTL_ERR;
	const struct ctl_opt opts[] = {
		{ "role", &role, NULL },
		{ "password-stdin", NULL, &stdin_pw },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_args a;
	struct buf in = { 0 };
	json_t *body, *res;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (role == NULL)
		return ctl_usage_error(cmd, "--role viewer|operator|admin is "
		    "required");
	if ((body = json_pack("{s:s, s:s}", "name", a.pos[0], "role",
	    role)) == NULL)
		return ctl_error("names and roles are UTF-8 text");
	if (stdin_pw) {
		if (read_password_lines(1, &in, pw) == -1)
			goto out;
		json_object_set_new(body, "password", json_string(pw[0]));
	}
	if (ctl_request(c, "POST", "/api/v1/users", body, &res, NULL, NULL)
	    == -1)
		goto out;
	if (json)
		rc = ctl_print_json(res) == 0 ? CTL_OK : CTL_ERR;
	else {
		char name[64], r2[32], p[64];

		printf("created user %s (%s)\n", ctl_clean(ctl_jstr(res, "name"),
		    name, sizeof name, 1), ctl_clean(ctl_jstr(res, "role"), r2,
		    sizeof r2, 1));
		if (*ctl_jstr(res, "password"))
			printf("one-time password: %s\n(shown once; it must be "
			    "changed at the first login)\n", ctl_clean(ctl_jstr(res,
			    "password"), p, sizeof p, 1));
		rc = CTL_OK;
	}
	json_decref(res);
out:
	/* The body holds the password: wipe what we can. */
	json_decref(body);
	wipe(&in);
	return rc;
}

static int
user_row(struct ctl_table *t, const json_t *u)
{
	char login[32], toks[16], sess[16];

	ctl_fmt_time(login, sizeof login, json_string_value(json_object_get(u,
	    "last_login_at")));
	snprintf(toks, sizeof toks, "%lld", ctl_jint(u, "api_tokens", 0));
	snprintf(sess, sizeof sess, "%lld", ctl_jint(u, "sessions", 0));
	return ctl_table_row(t, ctl_jstr(u, "name"), ctl_jstr(u, "role"),
	    json_is_true(json_object_get(u, "disabled")) ? "disabled" :
	    json_is_true(json_object_get(u, "must_change_password")) ?
	    "one-time password" : "active", login, toks, sess);
}

static int
users_list(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json;
	struct ctl_args a;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	return ctl_list(c, "/api/v1/users", "users", json, ctl_table_new(6,
	    "NAME", "ROLE", "STATUS", "LAST LOGIN", "TOKENS", "SESSIONS"),
	    user_row);
}

static int
users_passwd(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int stdin_pw = 0, old_pw = 0, json = 0, rc = CTL_ERR;
	const struct ctl_opt opts[] = {
		{ "password-stdin", NULL, &stdin_pw },
		{ "old-password-stdin", NULL, &old_pw },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_args a;
	struct buf in = { 0 };
	const char *pw[2];
	char *path = NULL, p[64];
	json_t *body, *res;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if ((body = json_object()) == NULL)
		return ctl_error("out of memory");
	if (old_pw) {
		if (read_password_lines(2, &in, pw) == -1)
			goto out;
		json_object_set_new(body, "old_password", json_string(pw[0]));
		json_object_set_new(body, "password", json_string(pw[1]));
	} else if (stdin_pw) {
		if (read_password_lines(1, &in, pw) == -1)
			goto out;
		json_object_set_new(body, "password", json_string(pw[0]));
	}
	if ((path = ctl_path3("/api/v1/users/", a.pos[0], "/password")) == NULL) {
		rc = ctl_error("out of memory");
		goto out;
	}
	if (ctl_request(c, "PUT", path, body, &res, NULL, NULL) == -1)
		goto out;
	if (json)
		rc = ctl_print_json(res) == 0 ? CTL_OK : CTL_ERR;
	else {
		if (*ctl_jstr(res, "password"))
			printf("one-time password: %s\n(shown once; it must be "
			    "changed at the next login)\n", ctl_clean(ctl_jstr(res,
			    "password"), p, sizeof p, 1));
		else
			printf("password changed\n");
		rc = CTL_OK;
	}
	json_decref(res);
out:
	free(path);
	json_decref(body);
	wipe(&in);
	return rc;
}

static int
users_set_disabled(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[], int disabled)
{
	struct ctl_args a;
	char *path, name[64];
	json_t *body;
	int rc;

	if (ctl_parse_args(cmd, argc, argv, NULL, &a) == -1)
		return a.rc;
	if ((path = ctl_path3("/api/v1/users/", a.pos[0], "")) == NULL ||
	    (body = json_pack("{s:b}", "disabled", disabled)) == NULL) {
		free(path);
		return ctl_error("out of memory");
	}
	rc = ctl_request(c, "PATCH", path, body, NULL, NULL, NULL) == 0 ?
	    CTL_OK : CTL_ERR;
	if (rc == CTL_OK)
		printf("%s %s\n", ctl_clean(a.pos[0], name, sizeof name, 1),
		    disabled ? "disabled (sessions ended, tokens refused)" :
		    "enabled");
	json_decref(body);
	free(path);
	return rc;
}

static int
users_disable(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	return users_set_disabled(c, cmd, argc, argv, 1);
}

static int
users_enable(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	return users_set_disabled(c, cmd, argc, argv, 0);
}

/* --- apitokens -------------------------------------------------------------- */

static int
apitokens_create(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *user = NULL, *scope = NULL, *expires = NULL, *desc = NULL;
	int json = 0, rc = CTL_ERR;
	const struct ctl_opt opts[] = {
		{ "user", &user, NULL },
		{ "scope", &scope, NULL },
		{ "expires", &expires, NULL },
		{ "description", &desc, NULL },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	char tok[128], who[64], sc[32], exp[32];
	struct ctl_args a;
	json_t *body, *res;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (scope == NULL)
		return ctl_usage_error(cmd, "--scope read|provision|exec|admin "
		    "is required");
	if (expires == NULL)
		return ctl_usage_error(cmd, "--expires is required (every token "
		    "expires), e.g. --expires 90d");
	if ((body = json_pack("{s:s, s:s}", "scope", scope, "expires",
	    expires)) == NULL)
		return ctl_error("out of memory");
	if (user)
		json_object_set_new(body, "user", json_string(user));
	if (desc)
		json_object_set_new(body, "description", json_string(desc));
	if (ctl_request(c, "POST", "/api/v1/apitokens", body, &res, NULL,
	    NULL) == -1)
		goto out;
	if (!json_is_string(json_object_get(res, "token")))
		rc = ctl_bad_answer("apitokens create");
	else if (json)
		rc = ctl_print_json(res) == 0 ? CTL_OK : CTL_ERR;
	else {
		/* The token alone on stdout, for TOKEN=$(bastionctl ...). */
		ctl_clean(ctl_jstr(res, "token"), tok, sizeof tok, 0);
		printf("%s\n", tok);
		ctl_fmt_time(exp, sizeof exp, ctl_jstr(res, "expires_at"));
		fflush(stdout);
		fprintf(stderr, "token %lld for %s, scope %s, expires %s "
		    "(shown once: store it now)\n", ctl_jint(res, "id", 0),
		    ctl_clean(ctl_jstr(res, "user"), who, sizeof who, 1),
		    ctl_clean(ctl_jstr(res, "scope"), sc, sizeof sc, 1), exp);
		OPENSSL_cleanse(tok, sizeof tok);
		rc = CTL_OK;
	}
	json_decref(res);
out:
	json_decref(body);
	return rc;
}

static int
apitoken_row(struct ctl_table *t, const json_t *k)
{
	char id[24], exp[32], used[32];

	snprintf(id, sizeof id, "%lld", ctl_jint(k, "id", 0));
	ctl_fmt_time(exp, sizeof exp, json_string_value(json_object_get(k,
	    "expires_at")));
	ctl_fmt_time(used, sizeof used, json_string_value(json_object_get(k,
	    "last_used_at")));
	return ctl_table_row(t, id, ctl_jstr(k, "user"), ctl_jstr(k, "scope"),
	    ctl_jstr(k, "status"), exp, used, ctl_jstr(k, "description"));
}

static int
apitokens_list(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *user = NULL;
	int json = 0, rc;
	const struct ctl_opt opts[] = {
		{ "user", &user, NULL },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_args a;
	char *path;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	path = user ? ctl_path3("/api/v1/apitokens?user=", user, "") :
	    strdup("/api/v1/apitokens");
	if (path == NULL)
		return ctl_error("out of memory");
	rc = ctl_list(c, path, "apitokens", json, ctl_table_new(7, "ID", "USER",
	    "SCOPE", "STATUS", "EXPIRES", "LAST USED", "DESCRIPTION"),
	    apitoken_row);
	free(path);
	return rc;
}

static int
apitokens_revoke(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	struct ctl_args a;
	long long id;
	char path[64];

	if (ctl_parse_args(cmd, argc, argv, NULL, &a) == -1)
		return a.rc;
	if (ctl_parse_count(a.pos[0], 1LL << 53, &id) == -1 || id < 1)
		return ctl_usage_error(cmd, "ID is the number apitokens list "
		    "shows");
	snprintf(path, sizeof path, "/api/v1/apitokens/%lld", id);
	if (ctl_request(c, "DELETE", path, NULL, NULL, NULL, NULL) == -1)
		return CTL_ERR;
	printf("token %lld revoked\n", id);
	return CTL_OK;
}

/* --- settings ------------------------------------------------------------- */

static const char *
allowlist_text(const json_t *s, char *out, size_t len)
{
	const json_t *v;
	size_t i, off = 0;
	int n;

	out[0] = '\0';
	json_array_foreach(json_object_get(s, "allowlist"), i, v) {
		n = snprintf(out + off, len - off, "%s%s", i ? "," : "",
		    json_string_value(v) ? json_string_value(v) : "?");
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	return off ? out : "any";
}

static int
settings_get(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json, rc = CTL_OK;
	struct ctl_table *t;
	struct ctl_args a;
	char buf[4096], clean[4096], key[64];
	const char *ro, *prod, *allow;
	json_t *s;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	if (ctl_request(c, "GET", "/api/v1/settings", NULL, &s, NULL, NULL) == -1)
		return CTL_ERR;
	if (!json_is_object(s)) {
		json_decref(s);
		return ctl_bad_answer("settings");
	}
	ro = json_is_true(json_object_get(s, "read_only")) ? "on" : "off";
	prod = json_is_true(json_object_get(s, "production")) ? "on" : "off";
	allow = allowlist_text(s, buf, sizeof buf);
	if (a.npos == 1) {
		if (strcmp(a.pos[0], "read_only") == 0)
			printf("%s\n", ro);
		else if (strcmp(a.pos[0], "production") == 0)
			printf("%s\n", prod);
		else if (strcmp(a.pos[0], "allowlist") == 0)
			printf("%s\n", ctl_clean(allow, clean, sizeof clean, 1));
		else
			rc = ctl_error("unknown setting '%s' (read_only, "
			    "production, allowlist)", ctl_clean(a.pos[0], key,
			    sizeof key, 1));
	} else if (json)
		rc = ctl_print_json(s) == 0 ? CTL_OK : CTL_ERR;
	else if ((t = ctl_table_new(2, "SETTING", "VALUE")) == NULL)
		rc = ctl_error("out of memory");
	else {
		if (ctl_table_row(t, "read_only", ro) == -1 ||
		    ctl_table_row(t, "production", prod) == -1 ||
		    ctl_table_row(t, "allowlist", allow) == -1)
			rc = ctl_error("out of memory");
		else
			ctl_table_print(t, stdout, 0);
		ctl_table_free(t);
	}
	json_decref(s);
	return rc;
}

static int
settings_set(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int force = 0, rc;
	const struct ctl_opt opts[] = {
		{ "force", NULL, &force },
		{ NULL, NULL, NULL },
	};
	struct ctl_args a;
	char *path, k[64], v[4096];
	json_t *body;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if ((path = ctl_path3("/api/v1/settings/", a.pos[0], "")) == NULL ||
	    (body = json_pack("{s:s, s:b}", "value", a.pos[1], "force",
	    force)) == NULL) {
		free(path);
		return ctl_error("out of memory or a value that is not UTF-8");
	}
	rc = ctl_request(c, "PUT", path, body, NULL, NULL, NULL) == 0 ? CTL_OK :
	    CTL_ERR;
	if (rc == CTL_OK)
		printf("%s = %s\n", ctl_clean(a.pos[0], k, sizeof k, 1),
		    ctl_clean(a.pos[1], v, sizeof v, 1));
	json_decref(body);
	free(path);
	return rc;
}

/* --- audit ------------------------------------------------------------------ */

static int
audit_row(struct ctl_table *t, const json_t *e)
{
	char id[24], when[32], who[128], what[600];

	snprintf(id, sizeof id, "%lld", ctl_jint(e, "id", 0));
	ctl_fmt_time(when, sizeof when, ctl_jstr(e, "time"));
	snprintf(who, sizeof who, "%s:%s", ctl_jstr(e, "actor_type"),
	    ctl_jstr(e, "actor"));
	snprintf(what, sizeof what, "%s%s%s%s%s", ctl_jstr(e, "target"),
	    *ctl_jstr(e, "detail") ? " " : "", ctl_jstr(e, "detail"),
	    *ctl_jstr(e, "error") ? " -- " : "", ctl_jstr(e, "error"));
	return ctl_table_row(t, id, when, who, ctl_jstr(e, "source"),
	    ctl_jstr(e, "action"), ctl_jstr(e, "result"), what);
}

static int
audit_list(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *since = NULL, *actor = NULL, *action = NULL, *limit = NULL;
	int json = 0, rc;
	const struct ctl_opt opts[] = {
		{ "since", &since, NULL },
		{ "actor", &actor, NULL },
		{ "action", &action, NULL },
		{ "limit", &limit, NULL },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	const char *keys[] = { "since", "actor", "action", "limit" };
	const char *vals[4];
	struct ctl_args a;
	struct buf path;
	long long n;
	int k, sep = '?';

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (limit && (ctl_parse_count(limit, 10000, &n) == -1 || n < 1))
		return ctl_usage_error(cmd, "--limit is 1..10000");
	vals[0] = since;
	vals[1] = actor;
	vals[2] = action;
	vals[3] = limit;
	buf_init(&path, 8192);
	if (buf_adds(&path, "/api/v1/audit") == -1)
		goto err_mem;
	for (k = 0; k < 4; k++) {
		char *esc;

		if (vals[k] == NULL)
			continue;
		if ((esc = ctl_escape(vals[k])) == NULL ||
		    buf_printf(&path, "%c%s=%s", sep, keys[k], esc) == -1) {
			free(esc);
			goto err_mem;
		}
		free(esc);
		sep = '&';
	}
	rc = ctl_list(c, path.data, "audit", json, ctl_table_new(7, "ID",
	    "TIME", "ACTOR", "SOURCE", "ACTION", "RESULT", "TARGET / DETAIL"),
	    audit_row);
	buf_free(&path);
	return rc;
err_mem:
	buf_free(&path);
	return ctl_error("out of memory");
}

static int
audit_verify(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json, rc;
	struct ctl_args a;
	char reason[512];
	json_t *v;
	int good;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	if (ctl_request(c, "GET", "/api/v1/audit/verify", NULL, &v, NULL,
	    NULL) == -1)
		return CTL_ERR;
	if (!json_is_boolean(json_object_get(v, "ok"))) {
		json_decref(v);
		return ctl_bad_answer("audit verify");
	}
	good = json_is_true(json_object_get(v, "ok"));
	if (json)
		rc = ctl_print_json(v) == 0 ? CTL_OK : CTL_ERR;
	else if (good) {
		printf("audit log intact: %lld rows%s\n", ctl_jint(v, "rows", 0),
		    json_is_true(json_object_get(v, "anchored")) ? "" :
		    " (no STATE_DIR/audit.head anchor yet)");
		rc = CTL_OK;
	} else {
		printf("audit log BROKEN at row %lld: %s\n",
		    ctl_jint(v, "first_bad_id", 0), ctl_clean(ctl_jstr(v,
		    "reason"), reason, sizeof reason, 1));
		rc = CTL_OK;
	}
	json_decref(v);
	return rc == CTL_OK && !good ? CTL_ERR : rc;
}

/* --- whoami --------------------------------------------------------------- */

static void
session_print(const json_t *s)
{
	char u[64], r[32], via[32], sc[32];

	printf("%s (%s) via %s", ctl_clean(ctl_jstr(s, "user"), u, sizeof u, 1),
	    ctl_clean(ctl_jstr(s, "role"), r, sizeof r, 1),
	    ctl_clean(ctl_jstr(s, "via"), via, sizeof via, 1));
	if (*ctl_jstr(s, "scope"))
		printf(", token %lld with scope %s", ctl_jint(s, "token_id", 0),
		    ctl_clean(ctl_jstr(s, "scope"), sc, sizeof sc, 1));
	printf("\n");
}

static int
whoami(struct ctl *c, const struct ctl_command *cmd, int argc, char *argv[])
{
	int json;
	struct ctl_args a;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	return ctl_show(c, "/api/v1/session", "whoami", json, session_print);
}

const struct ctl_command ctl_auth_commands[] = {
	{ "users", "add", "NAME --role viewer|operator|admin [--password-stdin] "
	    "[--json]", "create a user (a one-time password is printed unless "
	    "one is read from stdin)", users_add, 1, 1, 0 },
	{ "users", "list", "[--json]", "users, roles and last logins",
	    users_list, 0, 0, 0 },
	{ "users", "passwd", "NAME [--password-stdin | --old-password-stdin] "
	    "[--json]", "set or reset a password (one's own needs the old one)",
	    users_passwd, 1, 1, 0 },
	{ "users", "disable", "NAME", "end a user's sessions and refuse their "
	    "logins and tokens", users_disable, 1, 1, 0 },
	{ "users", "enable", "NAME", "let a disabled user in again",
	    users_enable, 1, 1, 0 },
	{ "apitokens", "create", "[--user NAME] --scope read|provision|exec|admin "
	    "--expires DURATION [--description TEXT] [--json]",
	    "mint an API token (printed once)", apitokens_create, 0, 0, 0 },
	{ "apitokens", "list", "[--user NAME] [--json]",
	    "API tokens (never their secrets), with last use", apitokens_list,
	    0, 0, 0 },
	{ "apitokens", "revoke", "ID", "revoke an API token at once",
	    apitokens_revoke, 1, 1, 0 },
	{ "settings", "get", "[read_only|production|allowlist] [--json]",
	    "the global switches", settings_get, 0, 1, 0 },
	{ "settings", "set", "read_only|production on|off | allowlist "
	    "CIDR,...|any [--force]", "change a global switch", settings_set,
	    2, 2, 0 },
	{ "audit", "list", "[--since WHEN] [--actor NAME] [--action ACTION] "
	    "[--limit N] [--json]", "the audit log, oldest first", audit_list,
	    0, 0, 0 },
	{ "audit", "verify", "[--json]", "recompute the audit hash chain; exit "
	    "1 and name the first bad row if it is broken", audit_verify,
	    0, 0, 0 },
	{ "whoami", NULL, "[--json]", "who the server thinks you are",
	    whoami, 0, 0, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
