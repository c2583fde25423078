/* tokens.c — bastionctl tokens create|list|revoke: join tokens for agentd
 * enrollment. A token is printed once and never again. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "ctl.h"
#include "duration.h"


static int
tokens_create(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *uses = NULL, *ttl = NULL, *mac = NULL, *comment = NULL;
	int json = 0, rc = CTL_ERR;
	const struct ctl_opt opts[] = {
		{ "uses", &uses, NULL },
		{ "ttl", &ttl, NULL },
		{ "mac", &mac, NULL },
		{ "comment", &comment, NULL },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	char m[MAC_STRLEN], t[64];
	struct ctl_args a;
	json_t *body, *out;
	long long n;
	int64_t secs;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	body = json_object();
	if (uses) {
		if (ctl_parse_count(uses, TOKEN_MAX_USES, &n) == -1 || n < 1) {
			json_decref(body);
			return ctl_usage_error(cmd, "--uses: 1 to %d",
			    TOKEN_MAX_USES);
		}
		json_object_set_new(body, "uses", json_integer(n));
	}
	if (ttl) {
		if (duration_parse(ttl, TOKEN_MAX_TTL, &secs) == -1 ||
		    secs < TOKEN_MIN_TTL) {
			json_decref(body);
			return ctl_usage_error(cmd, "--ttl: a duration from 1m to "
			    "30d (e.g. 1h, 90m, 2d)");
		}
		json_object_set_new(body, "ttl", json_integer(secs));
	}
	if (mac) {
		if (ctl_mac_arg(mac, m) == -1) {
			json_decref(body);
			return CTL_USAGE;
		}
		json_object_set_new(body, "mac", json_string(m));
	}
	if (comment)
		json_object_set_new(body, "comment", json_string(comment));
	if (ctl_request(c, "POST", "/api/v1/tokens", body, &out, NULL, NULL)
	    == 0) {
		if (!json_is_string(json_object_get(out, "token")))
			rc = ctl_bad_answer("the new token");
		else if (json)
			rc = ctl_print_json(out) == 0 ? CTL_OK : CTL_ERR;
		else {
			ctl_fmt_time(t, sizeof t, ctl_jstr(out, "expires_at"));
			ctl_line("%s", ctl_jstr(out, "token"));
			ctl_warn("join token %s: %lld use(s), expires %s%s%s"
			    " (shown only now)", ctl_jstr(out, "id"),
			    ctl_jint(out, "uses", 1), t, *ctl_jstr(out, "mac") ?
			    ", only for " : "", ctl_jstr(out, "mac"));
			rc = CTL_OK;
		}
		json_decref(out);
	}
	json_decref(body);
	return rc;
}

static int
token_line(struct ctl_table *t, const json_t *tk)
{
	char exp[64], uses[32];

	ctl_fmt_time(exp, sizeof exp, ctl_jstr(tk, "expires_at"));
	snprintf(uses, sizeof uses, "%lld/%lld", ctl_jint(tk, "used", 0),
	    ctl_jint(tk, "uses", 0));
	return ctl_table_row(t, ctl_jstr(tk, "id"), ctl_jstr(tk, "state"), uses,
	    ctl_jstr(tk, "mac"), exp, ctl_jstr(tk, "comment"));
}

static int
tokens_list(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json;
	struct ctl_args a;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	return ctl_list(c, "/api/v1/tokens", "the token list", json,
	    ctl_table_new(6, "ID", "STATE", "USES", "MAC", "EXPIRES", "COMMENT"),
	    token_line);
}

static int
tokens_revoke(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	struct ctl_args a;
	char *path;
	int rc;

	if (ctl_parse_args(cmd, argc, argv, NULL, &a) == -1)
		return a.rc;
	if ((path = ctl_path3("/api/v1/tokens/", a.pos[0], "")) == NULL)
		return ctl_error("out of memory");
	rc = ctl_request(c, "DELETE", path, NULL, NULL, NULL, NULL) == 0 ?
	    CTL_OK : CTL_ERR;
	if (rc == CTL_OK)
		printf("token %s revoked\n", a.pos[0]);
	free(path);
	return rc;
}

const struct ctl_command ctl_tokens_commands[] = {
	{ "tokens", "create", "[--uses N] [--ttl DURATION] [--mac MAC] "
	    "[--comment TEXT] [--json]", "make a join token for agentd "
	    "enrollment (printed once)", tokens_create, 0, 0, 0 },
	{ "tokens", "list", "[--json]", "list join tokens (never the secrets)",
	    tokens_list, 0, 0, 0 },
	{ "tokens", "revoke", "ID", "revoke a join token", tokens_revoke, 1, 1,
	    0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
