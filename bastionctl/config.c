/* config.c — bastionctl config get|set|list|path: bastion.conf as the
 * daemon sees it (GET /api/v1/config), changed through the admin socket
 * (PUT /api/v1/config/{key}), which validates and rewrites the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* GET /api/v1/config: {"path": "...", "values": {"section.key": "v"}}. */
static int
config_fetch(struct ctl *c, json_t **out)
{
	json_t *j;

	if (ctl_request(c, "GET", "/api/v1/config", NULL, &j, NULL, NULL) == -1)
		return -1;
	if (!json_is_object(j) || !json_is_object(json_object_get(j,
	    "values"))) {
		json_decref(j);
		ctl_error("unexpected answer from the server for the "
		    "configuration");
		return -1;
	}
	*out = j;
	return 0;
}

static int
config_getcmd(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	char clean[4096], ckey[128];
	struct ctl_args a;
	const json_t *v;
	json_t *j;
	int rc;

	if (ctl_parse_args(cmd, argc, argv, NULL, &a) == -1)
		return a.rc;
	if (config_fetch(c, &j) == -1)
		return CTL_ERR;
	v = json_object_get(json_object_get(j, "values"), a.pos[0]);
	if (json_is_string(v)) {
		printf("%s\n", ctl_clean(json_string_value(v), clean,
		    sizeof clean, 0));
		rc = CTL_OK;
	} else
		rc = ctl_error("unknown key '%s' (see: bastionctl config list)",
		    ctl_clean(a.pos[0], ckey, sizeof ckey, 0));
	json_decref(j);
	return rc;
}

static int
config_setcmd(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	char ckey[128], cval[4096], *esc, *path;
	struct ctl_args a;
	json_t *body, *res;
	enum ctl_fail fail;
	long status = 0;
	size_t len;
	int rc = CTL_ERR;

	if (ctl_parse_args(cmd, argc, argv, NULL, &a) == -1)
		return a.rc;
	if ((esc = ctl_escape(a.pos[0])) == NULL)
		return ctl_error("out of memory");
	len = strlen(esc) + sizeof "/api/v1/config/";
	if ((path = malloc(len)) == NULL) {
		free(esc);
		return ctl_error("out of memory");
	}
	snprintf(path, len, "/api/v1/config/%s", esc);
	free(esc);
	if ((body = json_pack("{s:s}", "value", a.pos[1])) == NULL) {
		rc = ctl_error("the value must be UTF-8 text");
		goto out;
	}
	if (ctl_request(c, "PUT", path, body, &res, &fail, &status) == -1) {
		/* The control listener does not offer this route at all. */
		if (c->server && fail == CTL_FAIL_SERVER &&
		    (status == 403 || status == 404 || status == 405))
			ctl_warn("config set works only over the admin socket "
			    "(as root on the appliance)");
	} else {
		printf("%s = %s\n", ctl_clean(a.pos[0], ckey, sizeof ckey, 0),
		    ctl_clean(a.pos[1], cval, sizeof cval, 0));
		if (json_is_true(json_object_get(res, "restart_required")))
			printf("restart bastion for this to take effect\n");
		json_decref(res);
		rc = CTL_OK;
	}
	json_decref(body);
out:
	free(path);
	return rc;
}

static int
config_listcmd(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json = 0, rc = CTL_OK;
	const struct ctl_opt opts[] = {
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_table *t;
	struct ctl_args a;
	const char *key;
	json_t *j, *v;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (config_fetch(c, &j) == -1)
		return CTL_ERR;
	if (json) {
		rc = ctl_print_json(j) == 0 ? CTL_OK : CTL_ERR;
		json_decref(j);
		return rc;
	}
	if ((t = ctl_table_new(2, "KEY", "VALUE")) == NULL) {
		json_decref(j);
		return ctl_error("out of memory");
	}
	json_object_foreach(json_object_get(j, "values"), key, v)
		if (ctl_table_row(t, key, json_string_value(v)) == -1) {
			rc = ctl_error("out of memory");
			break;
		}
	if (rc == CTL_OK)
		ctl_table_print(t, stdout, 0);
	ctl_table_free(t);
	json_decref(j);
	return rc;
}

static int
config_pathcmd(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	char clean[4096];
	struct ctl_args a;
	json_t *j;

	if (ctl_parse_args(cmd, argc, argv, NULL, &a) == -1)
		return a.rc;
	if (config_fetch(c, &j) == -1)
		return CTL_ERR;
	printf("%s\n", ctl_clean(ctl_jstr(j, "path"), clean, sizeof clean, 1));
	json_decref(j);
	return CTL_OK;
}

const struct ctl_command ctl_config_commands[] = {
	{ "config", "get", "KEY", "print one setting of bastion.conf",
	    config_getcmd, 1, 1, 0 },
	{ "config", "set", "KEY VALUE",
	    "validate and write one setting (admin socket only)",
	    config_setcmd, 2, 2, 0 },
	{ "config", "list", "[--json]", "every setting in force",
	    config_listcmd, 0, 0, 0 },
	{ "config", "path", "", "the configuration file bastion runs with",
	    config_pathcmd, 0, 0, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
