/* audit.c — bastionctl audit list|verify: the hash-chained audit log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"


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


const struct ctl_command ctl_audit_commands[] = {
	{ "audit", "list", "[--since WHEN] [--actor NAME] [--action ACTION] "
	    "[--limit N] [--json]", "the audit log, oldest first", audit_list,
	    0, 0, 0 },
	{ "audit", "verify", "[--json]", "recompute the audit hash chain; exit "
	    "1 and name the first bad row if it is broken", audit_verify,
	    0, 0, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
