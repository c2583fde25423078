/* guests.c — bastionctl guests: the VMs (libvirt) and LXC containers of
 * nodes (DESIGN §13), from the reports their agents push, and actions on
 * them as signed jobs: list, show, snapshots, start|shutdown|stop|reboot|
 * suspend|resume, snapshot, rollback, snapshot-delete and guard (a change
 * inside an LXC guest kept only when its health check passes: exit 0
 * kept, 1 rolled back or failed, 2 usage). The console is console.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "duration.h"
#include "guest.h"

/* Names are checked here too: garbage never reaches a URL. */
static int
name_arg(const char *name)
{
	if (guest_name_valid(name))
		return 0;
	ctl_error("'%.200s' is not a guest name (^[a-zA-Z0-9][a-zA-Z0-9_.-]"
	    "{0,63}$)", name);
	return -1;
}

static int
snap_arg(const char *name)
{
	if (guest_snap_valid(name))
		return 0;
	ctl_error("'%.200s' is not a snapshot name (^[a-zA-Z0-9][a-zA-Z0-9_.-]"
	    "{0,63}$)", name);
	return -1;
}

/* A node's drivers and age, on stderr, when something is off. */
static void
node_notes(const json_t *node)
{
	const char *host = ctl_jstr(node, "hostname"), *k;
	const json_t *d;

	if (ctl_jint(node, "received", 0) == 0) {
		ctl_warn("%s: no guest report yet", host);
		return;
	}
	json_object_foreach((json_t *)json_object_get(node, "drivers"), k, d)
		if (strcmp(ctl_jstr(d, "state"), "ok") != 0)
			ctl_warn("%s: %s %s: %s", host, k, ctl_jstr(d, "state"),
			    ctl_jstr(d, "detail"));
	if (json_is_true(json_object_get(node, "stale")))
		ctl_warn("%s: the report is stale: its agent has not reported "
		    "for three heartbeat intervals", host);
}

static int
guest_row(struct ctl_table *t, const json_t *node, const json_t *g)
{
	char cpus[24], mem[24], snaps[24];

	snprintf(cpus, sizeof cpus, "%lld", ctl_jint(g, "vcpus", 0));
	snprintf(mem, sizeof mem, "%lld MiB", ctl_jint(g, "memory_mib", 0));
	snprintf(snaps, sizeof snaps, "%zu", json_array_size(
	    json_object_get(g, "snapshots")));
	return ctl_table_row(t, ctl_jstr(node, "hostname"), ctl_jstr(g,
	    "name"), ctl_jstr(g, "type"), ctl_jstr(g, "state"), cpus, mem,
	    snaps);
}

/* guests list [TARGET]: one table; --json a flat array, each guest with
 * its node's agent, hostname, received and stale. */
static int
guests_list(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	static const char *const carry[] = { "agent", "hostname", "received",
	    "stale", NULL };
	static const struct ctl_node_list l = { "the guest list", "nodes",
	    "guests", carry, node_notes, guest_row };
	struct ctl_args a;
	char *path;
	int json, rc;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	path = a.npos ? ctl_agent_path(a.pos[0], "guests", NULL, NULL) :
	    strdup("/api/v1/guests");
	if (path == NULL)
		return ctl_error("out of memory");
	rc = ctl_node_list(c, path, a.npos, json, ctl_table_new(7, "NODE",
	    "NAME", "TYPE", "STATE", "VCPUS", "MEMORY", "SNAPSHOTS"), &l);
	free(path);
	return rc;
}

static void
snaps_print(const json_t *g)
{
	const json_t *s;
	char when[64], iso[32];
	size_t i;
	time_t t;
	struct tm tm;

	json_array_foreach(json_object_get(g, "snapshots"), i, s) {
		t = (time_t)(ctl_jint(s, "created", 0) / 1000);
		if (t > 0 && gmtime_r(&t, &tm) != NULL) {
			strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
			ctl_fmt_time(when, sizeof when, iso);
		} else
			snprintf(when, sizeof when, "-");
		ctl_line("%-16s %s  %s%s", i ? "" : "snapshots", ctl_jstr(s,
		    "name"), when, json_is_true(json_object_get(s, "current")) ?
		    "  (current)" : "");
	}
}

static void
guest_print(const json_t *o)
{
	const json_t *g = json_object_get(o, "guest"), *v, *ad;
	char size[32];
	size_t i, k;

	ctl_line("%-16s %s", "agent", ctl_jstr(o, "agent"));
	ctl_line("%-16s %s", "name", ctl_jstr(g, "name"));
	ctl_line("%-16s %s", "id", ctl_jstr(g, "id"));
	ctl_line("%-16s %s", "type", ctl_jstr(g, "type"));
	ctl_line("%-16s %s", "state", ctl_jstr(g, "state"));
	ctl_line("%-16s %lld", "vcpus", ctl_jint(g, "vcpus", 0));
	ctl_line("%-16s %lld MiB", "memory", ctl_jint(g, "memory_mib", 0));
	ctl_line("%-16s %s", "autostart", json_is_true(json_object_get(g,
	    "autostart")) ? "yes" : "no");
	json_array_foreach(json_object_get(g, "disks"), i, v) {
		ctl_fmt_size(size, sizeof size, ctl_jint(v, "size_bytes", -1));
		ctl_line("%-16s %s %s (%s, %s)", i ? "" : "disks", ctl_jstr(v,
		    "target"), ctl_jstr(v, "source"), ctl_jstr(v, "format"),
		    size);
	}
	json_array_foreach(json_object_get(g, "nics"), i, v) {
		ctl_line("%-16s %s on %s", i ? "" : "nics", ctl_jstr(v, "mac"),
		    ctl_jstr(v, "network"));
		json_array_foreach(json_object_get(v, "addresses"), k, ad)
			ctl_line("%-16s   %s", "", json_string_value(ad) ?
			    json_string_value(ad) : "");
	}
	snaps_print(g);
	if (json_is_true(json_object_get(o, "stale")))
		ctl_line("%-16s %s", "report", "stale");
}

static int
guests_show(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	struct ctl_args a;
	char *path;
	int json, rc;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	if (name_arg(a.pos[1]) == -1)
		return CTL_ERR;
	if ((path = ctl_agent_path(a.pos[0], "guests", a.pos[1], NULL)) == NULL)
		return ctl_error("out of memory");
	rc = ctl_show(c, path, "the guest", json, guest_print);
	free(path);
	return rc;
}

/* snapshots TARGET GUEST: the guest's snapshots from the latest report. */
static int
guests_snapshots(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	struct ctl_args a;
	struct ctl_table *t;
	json_t *o = NULL, *s, *snaps;
	char *path, created[32], cur[8];
	size_t i;
	int json, rc = CTL_ERR;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	if (name_arg(a.pos[1]) == -1)
		return CTL_ERR;
	if ((path = ctl_agent_path(a.pos[0], "guests", a.pos[1], NULL)) == NULL)
		return ctl_error("out of memory");
	if (ctl_request(c, "GET", path, NULL, &o, NULL, NULL) == -1) {
		free(path);
		return CTL_ERR;
	}
	free(path);
	snaps = json_object_get(json_object_get(o, "guest"), "snapshots");
	if (!json_is_array(snaps)) {
		json_decref(o);
		return ctl_bad_answer("the guest");
	}
	if (json) {
		rc = ctl_print_json(snaps) == 0 ? CTL_OK : CTL_ERR;
		json_decref(o);
		return ctl_finish_output(rc);
	}
	if ((t = ctl_table_new(3, "NAME", "CREATED_MS", "CURRENT")) == NULL) {
		json_decref(o);
		return ctl_error("out of memory");
	}
	rc = CTL_OK;
	json_array_foreach(snaps, i, s) {
		snprintf(created, sizeof created, "%lld", ctl_jint(s, "created",
		    0));
		snprintf(cur, sizeof cur, "%s", json_is_true(json_object_get(s,
		    "current")) ? "yes" : "no");
		if (ctl_table_row(t, ctl_jstr(s, "name"), created, cur) == -1) {
			rc = ctl_error("out of memory");
			break;
		}
	}
	if (rc == CTL_OK)
		ctl_table_print(t, stdout, 0);
	ctl_table_free(t);
	json_decref(o);
	return ctl_finish_output(rc);
}

/* POST the action: the job (from {"job": …}), or NULL (error printed). */
static json_t *
action_post(struct ctl *c, const char *target, const char *guest,
    const char *action, const json_t *body)
{
	json_t *o = NULL, *job;
	char *path;

	if ((path = ctl_agent_path(target, "guests", guest, action)) == NULL) {
		ctl_error("out of memory");
		return NULL;
	}
	if (ctl_request(c, "POST", path, body, &o, NULL, NULL) == -1) {
		free(path);
		return NULL;
	}
	free(path);
	job = json_incref(json_object_get(o, "job"));
	json_decref(o);
	if (!json_is_object(job)) {
		json_decref(job);
		ctl_bad_answer("the action");
		return NULL;
	}
	return job;
}

/* The job: printed (--json, --detach) or followed (its output; the exit
 * code is the job's). */
static int
action_run(struct ctl *c, const char *target, const char *guest,
    const char *action, const json_t *body, int json, int detach)
{
	json_t *job;
	long long id;
	int rc;

	if ((job = action_post(c, target, guest, action, body)) == NULL)
		return CTL_ERR;
	id = ctl_jint(job, "id", 0);
	if (json) {
		rc = ctl_print_json(job) == 0 ? CTL_OK : CTL_ERR;
		json_decref(job);
		return ctl_finish_output(rc);
	}
	json_decref(job);
	if (detach) {
		printf("%lld\n", id);
		return ctl_finish_output(CTL_OK);
	}
	rc = ctl_job_follow(c, id);
	return rc == CTL_OK || rc == 130 ? rc : CTL_ERR;
}

/* start|shutdown|stop|reboot|suspend|resume TARGET GUEST,
 * snapshot|rollback|snapshot-delete TARGET GUEST SNAP */
static int
guests_action(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *timeout = NULL, *type = NULL;
	int json = 0, detach = 0, rc;
	const struct ctl_opt opts[] = {
		{ "timeout", &timeout, NULL },
		{ "type", &type, NULL },
		{ "detach", NULL, &detach },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	enum guest_type t;
	struct ctl_args a;
	json_t *body;
	int64_t secs;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (timeout && strcmp(cmd->verb, "shutdown") != 0)
		return ctl_usage_error(cmd, "only shutdown takes --timeout");
	if (type && guest_type_parse(type, &t) == -1)
		return ctl_usage_error(cmd, "--type is vm or lxc");
	if (name_arg(a.pos[1]) == -1 || (guest_action_wants_snap(cmd->verb) &&
	    snap_arg(a.pos[2]) == -1))
		return CTL_ERR;
	if ((body = json_object()) == NULL)
		return ctl_error("out of memory");
	if (timeout) {
		if (duration_parse(timeout, GUEST_TIMEOUT_MAX, &secs) == -1 ||
		    secs < 1) {
			json_decref(body);
			return ctl_usage_error(cmd, "--timeout: a duration up to "
			    "1h (e.g. 30s, 5m)");
		}
		json_object_set_new(body, "timeout", json_integer(secs));
	}
	if (type)
		json_object_set_new(body, "type", json_string(type));
	if (guest_action_wants_snap(cmd->verb))
		json_object_set_new(body, "snapshot", json_string(a.pos[2]));
	rc = action_run(c, a.pos[0], a.pos[1], cmd->verb, body, json, detach);
	json_decref(body);
	return rc;
}

/* --health 'argv': words split on blanks (no shell). */
static json_t *
words(const char *s)
{
	json_t *out = json_array();
	char buf[4096], *tok, *save = NULL;

	if (out == NULL || strlen(s) >= sizeof buf) {
		json_decref(out);
		return NULL;
	}
	strcpy(buf, s);
	for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL,
	    " \t", &save))
		json_array_append_new(out, json_string(tok));
	if (json_array_size(out) == 0 || json_array_size(out) >
	    GUEST_ARGV_MAX) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* DESIGN §13 spells it "guard TARGET GUEST --health 'argv' -- argv…":
 * before "--", options are moved in front of TARGET GUEST, where the
 * command-line parser wants them (after its positional arguments,
 * everything is the command). v has room for argc + 1 pointers. */
static void
options_first(int argc, char *argv[], char **v)
{
	static const char *const valued[] = { "--health", "--snapshot",
	    "--timeout", "--type", NULL };
	int i, j, n = 1, dash = argc;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			dash = i;
			break;
		}
	v[0] = argv[0];
	for (i = 1; i < dash; i++) {
		if (strncmp(argv[i], "--", 2) != 0)
			continue;
		v[n++] = argv[i];
		for (j = 0; valued[j]; j++)
			if (strcmp(argv[i], valued[j]) == 0 && i + 1 < dash) {
				v[n++] = argv[++i];
				break;
			}
	}
	for (i = 1; i < dash; i++) {
		if (strncmp(argv[i], "--", 2) == 0) {
			for (j = 0; valued[j]; j++)
				if (strcmp(argv[i], valued[j]) == 0)
					break;
			if (valued[j] && i + 1 < dash)
				i++;
			continue;
		}
		v[n++] = argv[i];
	}
	for (i = dash; i < argc; i++)
		v[n++] = argv[i];
	v[n] = NULL;
}

/* guard TARGET GUEST --health 'argv' [--snapshot NAME] [--keep-snapshot]
 * [--timeout D] -- argv…: 0 when the change was kept, 1 when it was
 * rolled back (or the guard failed), 2 on usage errors. */
static int	guard_run(struct ctl *, const struct ctl_command *,
		    struct ctl_args *, const char *, const char *, const char *,
		    const char *, int, int, int);

static int
guests_guard(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *health = NULL, *snap = NULL, *timeout = NULL, *type = NULL;
	int keep = 0, json = 0, detach = 0, rc;
	const struct ctl_opt opts[] = {
		{ "health", &health, NULL },
		{ "snapshot", &snap, NULL },
		{ "timeout", &timeout, NULL },
		{ "type", &type, NULL },
		{ "keep-snapshot", NULL, &keep },
		{ "detach", NULL, &detach },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_args a;
	char **v;

	if ((v = calloc((size_t)argc + 1, sizeof *v)) == NULL)
		return ctl_error("out of memory");
	options_first(argc, argv, v);
	rc = ctl_parse_command_line(cmd, argc, v, opts, NULL, &a);
	if (rc == -1) {
		free(v);
		return a.rc;
	}
	rc = guard_run(c, cmd, &a, health, snap, timeout, type, keep, json,
	    detach);
	free(v);
	return rc;
}

static int
guard_run(struct ctl *c, const struct ctl_command *cmd, struct ctl_args *ap,
    const char *health, const char *snap, const char *timeout,
    const char *type, int keep, int json, int detach)
{
	struct ctl_args a = *ap;
	enum guest_type t;
	json_t *body, *change, *h;
	int64_t secs;
	int rc, i;

	if (!guest_name_valid(a.pos[1]))
		return ctl_usage_error(cmd, "'%.200s' is not a guest name",
		    a.pos[1]);
	if (health == NULL || (h = words(health)) == NULL)
		return ctl_usage_error(cmd, "--health 'COMMAND ARGS' is required "
		    "(1 to %d words)", GUEST_ARGV_MAX);
	if (a.nrest > GUEST_ARGV_MAX || (snap && !guest_snap_valid(snap)) ||
	    (type && guest_type_parse(type, &t) == -1)) {
		json_decref(h);
		return ctl_usage_error(cmd, "at most %d words of change, a valid "
		    "--snapshot name, --type vm or lxc", GUEST_ARGV_MAX);
	}
	change = json_array();
	for (i = 0; i < a.nrest; i++)
		json_array_append_new(change, json_string(a.rest[i]));
	body = json_pack("{s:o, s:o}", "argv", change, "health", h);
	if (body == NULL)
		return ctl_error("out of memory");
	if (timeout) {
		if (duration_parse(timeout, GUEST_GUARD_MAX, &secs) == -1 ||
		    secs < 1) {
			json_decref(body);
			return ctl_usage_error(cmd, "--timeout: a duration up to "
			    "1d");
		}
		json_object_set_new(body, "timeout", json_integer(secs));
	}
	if (snap)
		json_object_set_new(body, "snapshot", json_string(snap));
	if (type)
		json_object_set_new(body, "type", json_string(type));
	if (keep)
		json_object_set_new(body, "keep_snapshot", json_true());
	rc = action_run(c, a.pos[0], a.pos[1], "guard", body, json, detach);
	json_decref(body);
	return rc;
}

const struct ctl_command ctl_guests_commands[] = {
	{ "guests", "list", "[TARGET] [--json]", "the VMs and LXC containers of "
	    "every node (or of one) from their agents' latest reports",
	    guests_list, 0, 1, 0 },
	{ "guests", "show", "TARGET GUEST [--json]", "one guest: state, vCPUs, "
	    "memory, disks, NICs, snapshots", guests_show, 2, 2, 0 },
	{ "guests", "snapshots", "TARGET GUEST [--json]", "a guest's snapshots",
	    guests_snapshots, 2, 2, 0 },
	{ "guests", "start", "TARGET GUEST [--type vm|lxc] [--detach] [--json]",
	    "start a guest", guests_action, 2, 2, 0 },
	{ "guests", "shutdown", "TARGET GUEST [--timeout D] [--type vm|lxc] "
	    "[--detach] [--json]", "shut a guest down gracefully (fails after "
	    "the timeout; stop forces it)", guests_action, 2, 2, 0 },
	{ "guests", "stop", "TARGET GUEST [--type vm|lxc] [--detach] [--json]",
	    "stop a guest at once (forced)", guests_action, 2, 2, 0 },
	{ "guests", "reboot", "TARGET GUEST [--type vm|lxc] [--detach] "
	    "[--json]", "reboot a guest", guests_action, 2, 2, 0 },
	{ "guests", "suspend", "TARGET GUEST [--type vm|lxc] [--detach] "
	    "[--json]", "pause a guest (LXC: freeze)", guests_action, 2, 2, 0 },
	{ "guests", "resume", "TARGET GUEST [--type vm|lxc] [--detach] "
	    "[--json]", "resume a suspended guest", guests_action, 2, 2, 0 },
	{ "guests", "snapshot", "TARGET GUEST NAME [--type vm|lxc] [--detach] "
	    "[--json]", "take a snapshot (VMs: internal qcow2; LXC: its own)",
	    guests_action, 3, 3, 0 },
	{ "guests", "rollback", "TARGET GUEST SNAP [--type vm|lxc] [--detach] "
	    "[--json]", "revert a guest to a snapshot", guests_action, 3, 3, 0 },
	{ "guests", "snapshot-delete", "TARGET GUEST SNAP [--type vm|lxc] "
	    "[--detach] [--json]", "delete a snapshot", guests_action, 3, 3, 0 },
	{ "guests", "guard", "TARGET GUEST --health 'COMMAND ARGS' [--snapshot "
	    "NAME] [--keep-snapshot] [--timeout D] [--] COMMAND...", "snapshot, "
	    "run COMMAND in an LXC guest, run the health check, roll back if "
	    "either fails (exit 0 kept, 1 rolled back)", guests_guard, 2, 2, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
