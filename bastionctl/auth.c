/* auth.c — bastionctl users add|list|passwd|disable|enable, apitokens
 * create|list|revoke and whoami. Secrets (passwords, tokens) go to stdout
 * once and nowhere else; passwords come from standard input, never from
 * the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctl.h"
#include "duration.h"

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
user_line(struct ctl_table *t, const json_t *u)
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
	    user_line);
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
apitoken_line(struct ctl_table *t, const json_t *k)
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
	    apitoken_line);
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
	{ "whoami", NULL, "[--json]", "who the server thinks you are",
	    whoami, 0, 0, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
