/* agents.c — bastionctl agents list|show|revoke and the jobs that act on
 * an agent's machine: reboot, reprovision, inventory. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"


/* revoked, stale (missed heartbeats) or enrolled. */
static const char *
agent_state(const json_t *ag)
{
	if (json_is_true(json_object_get(ag, "revoked")))
		return "revoked";
	return json_is_true(json_object_get(ag, "stale")) ? "stale" :
	    "enrolled";
}

static int
agent_line(struct ctl_table *t, const json_t *ag)
{
	char seen[64], exp[64];

	ctl_fmt_time(seen, sizeof seen, ctl_jstr(ag, "last_heartbeat_at"));
	ctl_fmt_time(exp, sizeof exp, ctl_jstr(ag, "cert_expires_at"));
	return ctl_table_row(t, ctl_jstr(ag, "id"), ctl_jstr(ag, "hostname"),
	    ctl_jstr(ag, "mac"), agent_state(ag), seen, ctl_jstr(ag,
	    "last_addr"), exp);
}

static int
agents_list(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json;
	struct ctl_args a;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	return ctl_list(c, "/api/v1/agents", "the agent list", json,
	    ctl_table_new(7, "ID", "HOSTNAME", "MAC", "STATE", "LAST HEARTBEAT",
	    "ADDRESS", "CERT EXPIRES"), agent_line);
}

static void
agent_print(const json_t *ag)
{
	const json_t *hb = json_object_get(ag, "heartbeat"), *load;

	ctl_line("%-16s %s", "agent", ctl_jstr(ag, "id"));
	ctl_line("%-16s %s", "hostname", ctl_jstr(ag, "hostname"));
	ctl_line("%-16s %s", "mac", ctl_jstr(ag, "mac"));
	ctl_line("%-16s %s%s%s", "state", agent_state(ag), *ctl_jstr(ag,
	    "revoked_reason") ? ": " : "", ctl_jstr(ag, "revoked_reason"));
	ctl_print_time("enrolled", ag, "enrolled_at");
	ctl_print_time("last heartbeat", ag, "last_heartbeat_at");
	ctl_line("%-16s %s", "address", ctl_jstr(ag, "last_addr"));
	ctl_line("%-16s %s", "certificate", ctl_jstr(ag, "cert_serial"));
	ctl_print_time("cert expires", ag, "cert_expires_at");
	if ((load = json_object_get(hb, "load")) && json_array_size(load) == 3)
		ctl_line("%-16s %.2f %.2f %.2f", "load",
		    json_number_value(json_array_get(load, 0)),
		    json_number_value(json_array_get(load, 1)),
		    json_number_value(json_array_get(load, 2)));
	if (json_is_integer(json_object_get(hb, "running_jobs")))
		ctl_line("%-16s %lld", "running jobs", ctl_jint(hb,
		    "running_jobs", 0));
}

static int
agents_show(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json, rc;
	struct ctl_args a;
	char *path;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	if ((path = ctl_path3("/api/v1/agents/", a.pos[0], "")) == NULL)
		return ctl_error("out of memory");
	rc = ctl_show(c, path, "the agent", json, agent_print);
	free(path);
	return rc;
}

static int
agents_revoke(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	struct ctl_args a;
	json_t *ag;
	char *path;
	int rc = CTL_ERR;

	if (ctl_parse_args(cmd, argc, argv, NULL, &a) == -1)
		return a.rc;
	if ((path = ctl_path3("/api/v1/agents/", a.pos[0], "/revoke")) == NULL)
		return ctl_error("out of memory");
	if (ctl_request(c, "POST", path, NULL, &ag, NULL, NULL) == 0) {
		ctl_line("agent %s (%s) revoked: its next request is refused",
		    ctl_jstr(ag, "id"), ctl_jstr(ag, "hostname"));
		json_decref(ag);
		rc = CTL_OK;
	}
	free(path);
	return rc;
}



/*
 * agents reboot|inventory|reprovision: a job of that kind, waited for
 * unless --detach (the job id) or --json (what was queued). reprovision
 * also queues the machine's reinstall keeping its data, as machines
 * reprovision MAC --reboot does.
 */
static int
agent_job(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json = 0, detach = 0, rc = CTL_ERR;
	const struct ctl_opt opts[] = {
		{ "detach", NULL, &detach },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_args a;
	json_t *body = NULL, *ag = NULL, *done;
	char *path = NULL, mac[MAC_STRLEN];
	long long id;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (strcmp(cmd->verb, "reprovision") == 0) {
		if ((path = ctl_path3("/api/v1/agents/", a.pos[0], "")) == NULL ||
		    (body = json_object()) == NULL)
			rc = ctl_error("out of memory");
		else if (ctl_request(c, "GET", path, NULL, &ag, NULL, NULL) == -1)
			;
		else if (mac_normalize(ctl_jstr(ag, "mac"), mac) == -1)
			rc = ctl_error("agent %s has no MAC address: it was not "
			    "installed by bastion", a.pos[0]);
		else
			rc = ctl_reprovision(c, mac, body, json, detach);
		goto out;
	}
	if ((body = json_pack("{s:s, s:s}", "target", a.pos[0], "kind",
	    cmd->verb)) == NULL) {
		rc = ctl_error("out of memory");
		goto out;
	}
	if ((rc = ctl_job_submit(c, body, json, detach, &id)) == -2 &&
	    (rc = ctl_job_wait(c, id, &done)) == CTL_OK) {
		rc = ctl_job_report(a.pos[0], done);
		json_decref(done);
	}
out:
	free(path);
	json_decref(ag);
	json_decref(body);
	return rc;
}

const struct ctl_command ctl_agents_commands[] = {
	{ "agents", "list", "[--json]", "list enrolled node agents",
	    agents_list, 0, 0, 0 },
	{ "agents", "show", "TARGET [--json]", "one agent (id, host name or MAC)",
	    agents_show, 1, 1, 0 },
	{ "agents", "revoke", "TARGET", "revoke an agent's certificates (its "
	    "next request is refused)", agents_revoke, 1, 1, 0 },
	{ "agents", "reboot", "TARGET [--detach] [--json]", "reboot the "
	    "agent's machine", agent_job, 1, 1, 0 },
	{ "agents", "reprovision", "TARGET [--detach] [--json]", "reinstall "
	    "the agent's machine keeping its data: queue it and reboot it into "
	    "network boot", agent_job, 1, 1, 0 },
	{ "agents", "inventory", "TARGET [--detach] [--json]", "have the agent "
	    "send its hardware inventory now", agent_job, 1, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
