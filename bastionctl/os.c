/* os.c — bastionctl os list: what bastion can install, and how. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int
os_list(struct ctl *c, const struct ctl_command *cmd, int argc, char *argv[])
{
	int json = 0, rc = CTL_ERR;
	const struct ctl_opt opts[] = {
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_table *t = NULL;
	struct ctl_args a;
	const json_t *o;
	json_t *list;
	char size[32];
	size_t i;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (ctl_request(c, "GET", "/api/v1/os", NULL, &list, NULL, NULL) == -1)
		return CTL_ERR;
	if (!json_is_array(list)) {
		rc = ctl_error("unexpected answer from the server for the OS list");
		goto out;
	}
	if (json) {
		rc = ctl_print_json(list) == 0 ? CTL_OK : CTL_ERR;
		goto out;
	}
	if ((t = ctl_table_new(5, "NAME", "METHOD", "AVAILABLE", "SIZE",
	    "NOTE")) == NULL) {
		rc = ctl_error("out of memory");
		goto out;
	}
	json_array_foreach(list, i, o) {
		long long bytes = ctl_jint(o, "size", -1);
		const char *note = json_object_get(o, "problem") ?
		    ctl_jstr(o, "problem") : strcmp(ctl_jstr(o, "method"),
		    "kickstart") == 0 ? ctl_jstr(o, "repo") : ctl_jstr(o,
		    "description");

		if (bytes >= 0)
			snprintf(size, sizeof size, "%lld MiB", bytes >> 20);
		else
			snprintf(size, sizeof size, "-");
		if (ctl_table_row(t, ctl_jstr(o, "name"), ctl_jstr(o, "method"),
		    json_is_true(json_object_get(o, "available")) ?
		    (json_is_true(json_object_get(o, "default")) ? "yes (default)" :
		    "yes") : "no", size, note[0] ? note : "-") == -1) {
			rc = ctl_error("out of memory");
			goto out;
		}
	}
	ctl_table_print(t, stdout, 0);
	rc = CTL_OK;
out:
	ctl_table_free(t);
	json_decref(list);
	return rc;
}

const struct ctl_command ctl_os_commands[] = {
	{ "os", "list", "[--json]",
	    "every OS bastion can install and how (image or kickstart)",
	    os_list, 0, 0, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
