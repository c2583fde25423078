/* helper.c — `agentd -f FILE helper job|inventory|guests`: the parts of
 * agentd that need root's full rights on the node, run by the confined
 * agentd in transient units (transient.c), and the calls that start them.
 * Internal: only agentd runs them, and what they read comes from agentd
 * (a job it has verified, on stdin), never from the network.
 *
 *   helper job                  {"id", "kind", "args"} on stdin: runs the
 *                               exec or guest job (jobs.c), streams its
 *                               output to bastion, spools the result
 *   helper inventory MAC        the inventory with the disk probe, JSON on
 *                               stdout (MAC the boot NIC, or "-")
 *   helper guests               the guest report (liblxc), JSON on stdout */
#ifndef AGENTD_NO_CURL	/* the discovery image has no libcurl, OpenSSL or inih */
#define LOG_SUBSYS "helper"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "inventory.h"
#include "log.h"

#define HELPER_OUT_MAX		(16 * 1024 * 1024)
#define HELPER_TIMEOUT_MS	(5 * 60 * 1000)

/* Run `agentd -f FILE helper what arg` in a transient unit; its stdout
 * parsed as JSON. 0 or -1 (logged). */
static int
helper_json(const struct agent_conf *c, const char *what, const char *arg,
    json_t **out)
{
	char *argv[7], *text = NULL, desc[64];
	struct transient_opts o;
	json_error_t e;
	int status;

	*out = NULL;
	memset(&o, 0, sizeof o);
	snprintf(desc, sizeof desc, "agentd: %s", what);
	o.description = desc;
	o.max_s = HELPER_TIMEOUT_MS / 1000 + 5;
	o.hush = strcmp(what, "guests") == 0;	/* every GUEST_POLL_MS */
	argv[0] = (char *)transient_self();
	argv[1] = "-f";
	argv[2] = (char *)c->path;
	argv[3] = "helper";
	argv[4] = (char *)what;
	argv[5] = (char *)arg;
	argv[6] = NULL;
	if (transient_capture(argv, &o, HELPER_OUT_MAX, HELPER_TIMEOUT_MS,
	    &text, &status) == -1) {
		log_warnx("%s: cannot start its transient unit", what);
		return -1;
	}
	if (status != 0) {
		log_warnx("%s: its transient unit ended with status %d", what,
		    status);
		free(text);
		return -1;
	}
	if ((*out = json_loads(text, 0, &e)) == NULL)
		log_warnx("%s: unreadable output: %s", what, e.text);
	free(text);
	return *out ? 0 : -1;
}

int
agent_inventory(const struct agent_conf *c, int probe, json_t **out)
{
	struct inventory_opts io = { c->inventory_root, NULL, probe };

	/* Only the probe opens the disks, which the sandbox hides. */
	if (probe && transient_on())
		return helper_json(c, "inventory", c->mac[0] ? c->mac : "-", out);
	io.boot_mac = c->mac[0] ? c->mac : NULL;
	return inventory_collect(&io, out);
}

json_t *
agent_guest_report(const struct agent_conf *c)
{
	json_t *d, *r;
	int lxc = 0;

	/* liblxc asks for root's rights (namespaces, cgroups) even to
	 * read a container's addresses; libvirt is a socket away. */
	if (transient_on() && (c->guests & GUESTS_LXC) &&
	    (d = guest_lxc_driver(c)) != NULL) {
		lxc = strcmp(json_string_value(json_object_get(d, "state")),
		    "absent") != 0;
		json_decref(d);
	}
	if (!lxc)
		return guest_report_build(c);
	return helper_json(c, "guests", NULL, &r) == 0 ? r : NULL;
}

static int
print_json(json_t *j)
{
	int rc;

	if (j == NULL)
		return 1;
	rc = json_dumpf(j, stdout, JSON_COMPACT) == 0 && fflush(stdout) == 0 ?
	    0 : 1;
	json_decref(j);
	return rc;
}

int
helper_main(const struct agent_conf *c, int argc, char **argv)
{
	struct inventory_opts io = { c->inventory_root, NULL, 1 };
	char mac[MAC_STRLEN];
	json_t *j;
	int rc;

	if (argc == 1 && strcmp(argv[0], "job") == 0)
		return jobs_helper(c, stdin);
	if (argc == 2 && strcmp(argv[0], "inventory") == 0) {
		if (strcmp(argv[1], "-") != 0) {
			if (mac_normalize(argv[1], mac) == -1)
				return 2;
			io.boot_mac = mac;
		}
		rc = inventory_collect(&io, &j);
		return rc == -1 ? 1 : print_json(j);
	}
	if (argc == 1 && strcmp(argv[0], "guests") == 0)
		return print_json(guest_report_build(c));
	fprintf(stderr, "agentd: helper job|inventory MAC|guests: internal, "
	    "run by agentd itself\n");
	return 2;
}
#endif /* AGENTD_NO_CURL */
