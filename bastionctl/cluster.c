/* cluster.c — bastionctl cluster status: the bastions that share this
 * bastion's database (DESIGN §16), up or not, which leads DHCP on its
 * interface, and when each was last seen. */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int
cluster_status(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json = 0, rc = CTL_ERR, leader, up;
	const struct ctl_opt opts[] = {
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_table *t = NULL;
	struct ctl_args a;
	const json_t *b, *list;
	json_t *reply;
	char dhcp[64];
	size_t i;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (ctl_request(c, "GET", "/api/v1/cluster", NULL, &reply, NULL,
	    NULL) == -1)
		return CTL_ERR;
	if (!json_is_array(list = json_object_get(reply, "bastions"))) {
		rc = ctl_error("unexpected answer from the server for the "
		    "cluster");
		goto out;
	}
	if (json) {
		rc = ctl_print_json(reply) == 0 ? CTL_OK : CTL_ERR;
		goto out;
	}
	ctl_line("ca: %s", ctl_jstr(reply, "ca_fingerprint"));
	printf("database: %s\n", ctl_jstr(reply, "database"));
	if ((t = ctl_table_new(6, "URL", "STATE", "DHCP", "VERSION", "STARTED",
	    "LAST SEEN")) == NULL) {
		rc = ctl_error("out of memory");
		goto out;
	}
	json_array_foreach(list, i, b) {
		/* Who runs dnsmasq on each interface. */
		leader = json_is_true(json_object_get(b, "dhcp_leader"));
		up = json_is_true(json_object_get(b, "up"));
		if (leader || up)
			snprintf(dhcp, sizeof dhcp, "%s %s", leader ? "leader" :
			    "standby", ctl_jstr(b, "dhcp_interface"));
		else
			snprintf(dhcp, sizeof dhcp, "-");
		if (ctl_table_row(t, ctl_jstr(b, "url"), up ? "up" : "gone",
		    dhcp, ctl_jstr(b, "version"), ctl_jstr(b, "started_at"),
		    ctl_jstr(b, "last_seen")) == -1) {
			rc = ctl_error("out of memory");
			goto out;
		}
	}
	ctl_table_print(t, stdout, 0);
	rc = CTL_OK;
out:
	ctl_table_free(t);
	json_decref(reply);
	return rc;
}

const struct ctl_command ctl_cluster_commands[] = {
	{ "cluster", "status", "[--json]",
	    "the bastions that share this database, who leads DHCP, and "
	    "when each was last seen", cluster_status, 0, 0, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
