/* settings.c — bastionctl settings get|set: the global switches
 * (read-only mode, production mode, the control listener's allowlist). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"


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


const struct ctl_command ctl_settings_commands[] = {
	{ "settings", "get", "[read_only|production|allowlist] [--json]",
	    "the global switches", settings_get, 0, 1, 0 },
	{ "settings", "set", "read_only|production on|off | allowlist "
	    "CIDR,...|any [--force]", "change a global switch", settings_set,
	    2, 2, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
