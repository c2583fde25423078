/* containers.c — bastionctl containers: the Docker containers of nodes
 * (DESIGN §12), from the reports their agents push, and actions on them
 * as signed jobs: list, show, start|stop|restart|pause|unpause|kill|
 * remove, inspect, logs (streamed, --follow), exec (streamed, exits with
 * the container process's exit code). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "bounds.h"
#include "container.h"
#include "ctl.h"
#include "duration.h"

/* A ref is checked here too: garbage never reaches a URL. */
static int
ref_arg(const char *ref)
{
	if (container_ref_valid(ref))
		return 0;
	ctl_error("'%.200s' is not a container: a container is named by its id "
	    "or name (^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$)", ref);
	return -1;
}

static const char *
health_of(const json_t *c)
{
	const char *h = ctl_jstr(c, "health");

	return *h ? h : "-";
}

/* What a node's report says beside its containers, on stderr: an engine
 * that was not reached, a report that is stale or missing. */
static void
node_notes(const json_t *node)
{
	const json_t *engine = json_object_get(node, "engine");
	const char *host = ctl_jstr(node, "hostname");

	if (!json_is_object(engine)) {
		ctl_warn("%s: no container report yet", host);
		return;
	}
	if (!json_is_true(json_object_get(engine, "reachable")))
		ctl_warn("%s: docker engine %s: %s", host,
		    json_is_false(json_object_get(engine, "present")) ?
		    "absent" : "unreachable", ctl_jstr(engine, "error"));
	if (json_is_true(json_object_get(node, "stale")))
		ctl_warn("%s: the report is stale (%lld s old): its agent has "
		    "not reported for three heartbeat intervals", host,
		    ctl_jint(node, "age_s", -1));
}

static int
container_row(struct ctl_table *t, const json_t *node, const json_t *ct)
{
	char id[16], restarts[24];

	snprintf(id, sizeof id, "%.12s", ctl_jstr(ct, "id"));
	snprintf(restarts, sizeof restarts, "%lld", ctl_jint(ct,
	    "restart_count", 0));
	return ctl_table_row(t, ctl_jstr(node, "hostname"), ctl_jstr(ct,
	    "name"), id, ctl_jstr(ct, "image"), ctl_jstr(ct, "state"),
	    health_of(ct), ctl_jstr(ct, "status"), restarts);
}

/* containers list [TARGET]: one table of every node's containers; --json
 * a flat array, each container with its node's agent_id, hostname,
 * reported_at and stale. */
static int
containers_list(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	static const char *const carry[] = { "agent_id", "hostname",
	    "reported_at", "stale", NULL };
	static const struct ctl_node_list l = { "the container list", NULL,
	    "containers", carry, node_notes, container_row };
	struct ctl_args a;
	char *path;
	int json, rc;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	path = a.npos ? ctl_agent_path(a.pos[0], "containers", NULL, NULL) :
	    strdup("/api/v1/containers");
	if (path == NULL)
		return ctl_error("out of memory");
	rc = ctl_node_list(c, path, a.npos, json, ctl_table_new(8, "NODE",
	    "NAME", "ID", "IMAGE", "STATE", "HEALTH", "STATUS", "RESTARTS"), &l);
	free(path);
	return rc;
}

static void
container_print(const json_t *ct)
{
	const json_t *v, *st = json_object_get(ct, "stats");
	const char *k;
	char size[32], lim[32], when[64];
	size_t i;

	ctl_line("%-16s %s", "node", ctl_jstr(ct, "hostname"));
	ctl_line("%-16s %s", "name", ctl_jstr(ct, "name"));
	ctl_line("%-16s %s", "id", ctl_jstr(ct, "id"));
	ctl_line("%-16s %s", "image", ctl_jstr(ct, "image"));
	ctl_line("%-16s %s", "command", ctl_jstr(ct, "command"));
	ctl_line("%-16s %s (%s)", "state", ctl_jstr(ct, "state"),
	    ctl_jstr(ct, "status"));
	ctl_line("%-16s %s", "health", health_of(ct));
	ctl_line("%-16s %lld", "restarts", ctl_jint(ct, "restart_count", 0));
	ctl_line("%-16s %s", "restart policy", ctl_jstr(ct, "restart_policy"));
	ctl_line("%-16s %s", "started", ctl_jstr(ct, "started_at"));
	if (json_is_object(st)) {
		ctl_fmt_size(size, sizeof size, ctl_jint(st, "memory_bytes", -1));
		ctl_fmt_size(lim, sizeof lim, ctl_jint(st, "memory_limit_bytes",
		    -1));
		if (json_is_number(json_object_get(st, "cpu_percent")))
			ctl_line("%-16s %.1f %%", "cpu", json_number_value(
			    json_object_get(st, "cpu_percent")));
		ctl_line("%-16s %s of %s", "memory", size, lim);
	}
	json_array_foreach(json_object_get(ct, "ports"), i, v)
		ctl_line("%-16s %s:%lld -> %lld/%s", i ? "" : "ports",
		    *ctl_jstr(v, "ip") ? ctl_jstr(v, "ip") : "*",
		    ctl_jint(v, "public_port", 0), ctl_jint(v, "private_port", 0),
		    ctl_jstr(v, "type"));
	json_array_foreach(json_object_get(ct, "networks"), i, v)
		ctl_line("%-16s %s %s", i ? "" : "networks", ctl_jstr(v, "name"),
		    ctl_jstr(v, "ip"));
	json_array_foreach(json_object_get(ct, "mounts"), i, v)
		ctl_line("%-16s %s %s -> %s%s", i ? "" : "mounts",
		    ctl_jstr(v, "type"), ctl_jstr(v, "source"),
		    ctl_jstr(v, "destination"), json_is_true(json_object_get(v,
		    "rw")) ? "" : " (ro)");
	json_array_foreach(json_object_get(ct, "env"), i, v)
		ctl_line("%-16s %s", i ? "" : "env", json_string_value(v) ?
		    json_string_value(v) : "");
	i = 0;
	json_object_foreach(json_object_get(ct, "labels"), k, v)
		ctl_line("%-16s %s=%s", i++ ? "" : "labels", k,
		    json_string_value(v) ? json_string_value(v) : "");
	ctl_fmt_time(when, sizeof when, ctl_jstr(ct, "reported_at"));
	ctl_line("%-16s %s%s", "reported", when, json_is_true(json_object_get(
	    ct, "stale")) ? " (stale)" : "");
}

static int
containers_show(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	struct ctl_args a;
	char *path;
	int json, rc;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	if (ref_arg(a.pos[1]) == -1)
		return CTL_ERR;
	if ((path = ctl_agent_path(a.pos[0], "containers", a.pos[1], NULL)) ==
	    NULL)
		return ctl_error("out of memory");
	rc = ctl_show(c, path, "the container", json, container_print);
	free(path);
	return rc;
}

/* POST the action; in production mode a remove asks for the container's
 * name again (on a terminal; elsewhere --confirm NAME says it). The job,
 * or NULL (the error printed). */
static json_t *
action_post(struct ctl *c, const char *target, const char *ref,
    const char *action, const json_t *body)
{
	char *path, line[256];
	json_t *job = NULL;
	long status = 0;
	int quiet = c->quiet_errors;

	if (ref == NULL || (path = ctl_agent_path(target, "containers", ref,
	    action)) == NULL) {
		ctl_error("out of memory");
		return NULL;
	}
	c->quiet_errors = strcmp(action, "remove") == 0 && c->confirm == NULL &&
	    isatty(0);
	if (ctl_request(c, "POST", path, body, &job, NULL, &status) == 0 ||
	    !c->quiet_errors)
		goto out;
	c->quiet_errors = quiet;
	if (status != 428) {	/* say what it was */
		ctl_request(c, "POST", path, body, &job, NULL, NULL);
		goto out;
	}
	fprintf(stderr, "production mode: type the container's name (%s) to "
	    "remove it from %s: ", ref, target);
	if (fgets(line, sizeof line, stdin) == NULL) {
		ctl_error("not confirmed: nothing removed");
		goto out;
	}
	line[strcspn(line, "\r\n")] = '\0';
	if (strcmp(line, ref) != 0) {
		ctl_error("'%s' is not %s: nothing removed", line, ref);
		goto out;
	}
	/* The header is part of the connection's settings: a new one. */
	ctl_http_free(c);
	c->confirm = line;
	ctl_request(c, "POST", path, body, &job, NULL, NULL);
	ctl_http_free(c);
	c->confirm = NULL;
out:
	c->quiet_errors = quiet;
	free(path);
	return job;
}

/* What a finished action job says: "node/name: stopped (job N)". */
static int
action_report(const char *target, const char *ref, const char *action,
    const json_t *job)
{
	static const struct { const char *action, *done; } said[] = {
		{ "start", "started" }, { "stop", "stopped" },
		{ "restart", "restarted" }, { "pause", "paused" },
		{ "unpause", "unpaused" }, { "kill", "killed" },
		{ "remove", "removed" },
	};
	const char *note = ctl_jstr(job, "error"), *what = action;
	size_t i;

	if (strcmp(ctl_jstr(job, "status"), "done") != 0)
		return ctl_error("%s/%s: %s %s%s%s (job %lld)", target, ref,
		    action, ctl_jstr(job, "status"), *note ? ": " : "", note,
		    ctl_jint(job, "id", 0));
	for (i = 0; i < sizeof said / sizeof said[0]; i++)
		if (strcmp(said[i].action, action) == 0)
			what = said[i].done;
	ctl_line("%s/%s: %s (job %lld)", target, ref, *note ? note : what,
	    ctl_jint(job, "id", 0));
	return CTL_OK;
}

/* The action's job: printed (--json, --detach) or waited for. */
static int
action_run(struct ctl *c, const char *target, const char *ref,
    const char *action, const json_t *body, int json, int detach)
{
	json_t *job, *done;
	long long id;
	int rc;

	if ((job = action_post(c, target, ref, action, body)) == NULL)
		return CTL_ERR;
	id = ctl_jint(job, "id", 0);
	if (json) {
		rc = ctl_print_json(job) == 0 ? CTL_OK : CTL_ERR;
		json_decref(job);
		return rc;
	}
	json_decref(job);
	if (detach) {
		printf("%lld\n", id);
		return CTL_OK;
	}
	if ((rc = ctl_job_wait(c, id, &done)) != CTL_OK)
		return rc;
	rc = action_report(target, ref, action, done);
	json_decref(done);
	return rc;
}

/* start|stop|restart|pause|unpause|kill|remove TARGET REF */
static int
containers_action(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *timeout = NULL, *sig = NULL;
	int json = 0, detach = 0, force = 0, volumes = 0, rc;
	const struct ctl_opt opts[] = {
		{ "timeout", &timeout, NULL },
		{ "signal", &sig, NULL },
		{ "force", NULL, &force },
		{ "volumes", NULL, &volumes },
		{ "detach", NULL, &detach },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	const char *verb = cmd->verb;
	struct ctl_args a;
	json_t *body;
	long long n;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if ((timeout && strcmp(verb, "stop") && strcmp(verb, "restart")) ||
	    (sig && strcmp(verb, "kill")) || ((force || volumes) &&
	    strcmp(verb, "remove")))
		return ctl_usage_error(cmd, "that option is not one of %s's",
		    verb);
	if (ref_arg(a.pos[1]) == -1)
		return CTL_ERR;
	if ((body = json_object()) == NULL)
		return ctl_error("out of memory");
	if (timeout) {
		if (ctl_parse_count(timeout, CONTAINER_STOP_MAX, &n) == -1) {
			json_decref(body);
			return ctl_usage_error(cmd, "--timeout: 0 to %d seconds",
			    CONTAINER_STOP_MAX);
		}
		json_object_set_new(body, "timeout", json_integer(n));
	}
	if (sig)
		json_object_set_new(body, "signal", json_string(sig));
	if (force)
		json_object_set_new(body, "force", json_true());
	if (volumes)
		json_object_set_new(body, "volumes", json_true());
	rc = action_run(c, a.pos[0], a.pos[1], verb, json_object_size(body) ?
	    body : NULL, json, detach);
	json_decref(body);
	return rc;
}

/* A job whose output is the point (inspect, logs, exec): its output as it
 * comes, and its exit code. */
static int
streamed(struct ctl *c, const char *target, const char *ref,
    const char *action, const json_t *body, int json, int detach)
{
	json_t *job;
	long long id;
	int rc;

	if ((job = action_post(c, target, ref, action, body)) == NULL)
		return CTL_ERR;
	id = ctl_jint(job, "id", 0);
	if (json || detach) {
		if (json)
			rc = ctl_print_json(job) == 0 ? CTL_OK : CTL_ERR;
		else {
			printf("%lld\n", id);
			rc = CTL_OK;
		}
		json_decref(job);
		return rc;
	}
	json_decref(job);
	return ctl_job_follow(c, id);
}

static int
containers_inspect(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	struct ctl_args a;

	if (ctl_parse_args(cmd, argc, argv, NULL, &a) == -1)
		return a.rc;
	if (ref_arg(a.pos[1]) == -1)
		return CTL_ERR;
	return streamed(c, a.pos[0], a.pos[1], "inspect", NULL, 0, 0);
}

/* --since: a duration back from now (10m, 2h) or a Unix time. */
static int
since_arg(const char *s, long long *out)
{
	int64_t secs;
	long long n;

	if (ctl_parse_count(s, 1LL << 40, &n) == 0 && n >= 1000000000LL) {
		*out = n;
		return 0;
	}
	if (duration_parse(s, 100L * 365 * 86400, &secs) == -1)
		return -1;
	*out = (long long)time(NULL) - secs;
	return 0;
}

static int
containers_logs(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *tail = NULL, *since = NULL, *limit = NULL;
	int follow = 0, stamps = 0, detach = 0, json = 0, rc;
	const struct ctl_opt opts[] = {
		{ "tail", &tail, NULL },
		{ "since", &since, NULL },
		{ "limit", &limit, NULL },
		{ "follow", NULL, &follow },
		{ "timestamps", NULL, &stamps },
		{ "detach", NULL, &detach },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_args a;
	json_t *body;
	long long n;
	int64_t secs;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (ref_arg(a.pos[1]) == -1)
		return CTL_ERR;
	if ((body = json_object()) == NULL)
		return ctl_error("out of memory");
	rc = CTL_OK;
	if (tail) {
		if (ctl_parse_count(tail, CONTAINER_TAIL_MAX, &n) == -1)
			rc = ctl_usage_error(cmd, "--tail: 0 to %d lines",
			    CONTAINER_TAIL_MAX);
		else
			json_object_set_new(body, "tail", json_integer(n));
	}
	if (rc == CTL_OK && since) {
		if (since_arg(since, &n) == -1)
			rc = ctl_usage_error(cmd, "--since: a duration (10m, 2h) "
			    "or a Unix time");
		else
			json_object_set_new(body, "since", json_integer(n));
	}
	if (rc == CTL_OK && limit) {
		if (duration_parse(limit, CONTAINER_RUN_MAX, &secs) == -1 ||
		    secs < 1)
			rc = ctl_usage_error(cmd, "--limit: a duration up to 1d");
		else
			json_object_set_new(body, "limit", json_integer(secs));
	}
	if (follow)
		json_object_set_new(body, "follow", json_true());
	if (stamps)
		json_object_set_new(body, "timestamps", json_true());
	if (rc == CTL_OK)
		rc = streamed(c, a.pos[0], a.pos[1], "logs",
		    json_object_size(body) ? body : NULL, json, detach);
	json_decref(body);
	return rc;
}

/* --- exec --tty: an interactive session over a stream (tty.c) ---------- */

static int
exec_tty(struct ctl *c, const char *target, const char *ref, json_t *body)
{
	char label[300];
	json_t *job;
	int rows, cols, rc;

	if (ctl_tty_size(&rows, &cols) == 0) {
		json_object_set_new(body, "rows", json_integer(rows));
		json_object_set_new(body, "cols", json_integer(cols));
	}
	json_object_set_new(body, "tty", json_true());
	if ((job = action_post(c, target, ref, "exec", body)) == NULL)
		return CTL_ERR;
	snprintf(label, sizeof label, "%s/%s", target, ref);
	rc = ctl_tty_session(c, ctl_jstr(job, "stream"), label);
	json_decref(job);
	return rc;
}

/* exec TARGET REF [--] argv...: the container process's exit code. */
static int
containers_exec(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *limit = NULL;
	int detach = 0, json = 0, tty = 0, rc, i;
	const struct ctl_opt opts[] = {
		{ "limit", &limit, NULL },
		{ "tty", NULL, &tty },
		{ "detach", NULL, &detach },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_args a;
	json_t *body, *args;
	int64_t secs;

	/* -it (docker's spelling) is --tty, before the command. */
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "-it") == 0 || strcmp(argv[i], "-ti") == 0)
			argv[i] = "--tty";
	if (ctl_parse_command_line(cmd, argc, argv, opts, NULL, &a) == -1)
		return a.rc;
	if (ref_arg(a.pos[1]) == -1)
		return CTL_ERR;
	if (a.nrest > JOB_MAX_ARGV)
		return ctl_error("at most %d words in the command", JOB_MAX_ARGV);
	if ((args = json_array()) == NULL)
		return ctl_error("out of memory");
	for (i = 0; i < a.nrest; i++)
		json_array_append_new(args, json_string(a.rest[i]));
	body = json_pack("{s:o}", "argv", args);
	if (limit) {
		if (duration_parse(limit, CONTAINER_RUN_MAX, &secs) == -1 ||
		    secs < 1) {
			json_decref(body);
			return ctl_usage_error(cmd, "--limit: a duration up to 1d");
		}
		json_object_set_new(body, "limit", json_integer(secs));
	}
	if (tty && !json && !detach)
		rc = exec_tty(c, a.pos[0], a.pos[1], body);
	else
		rc = streamed(c, a.pos[0], a.pos[1], "exec", body, json, detach);
	json_decref(body);
	return rc;
}

const struct ctl_command ctl_containers_commands[] = {
	{ "containers", "list", "[TARGET] [--json]", "the Docker containers of "
	    "every node (or of one) from their agents' latest reports",
	    containers_list, 0, 1, 0 },
	{ "containers", "show", "TARGET REF [--json]", "one container: state, "
	    "stats, ports, networks, mounts, env (masked), labels",
	    containers_show, 2, 2, 0 },
	{ "containers", "start", "TARGET REF [--detach] [--json]",
	    "start a container", containers_action, 2, 2, 0 },
	{ "containers", "stop", "TARGET REF [--timeout SECONDS] [--detach] "
	    "[--json]", "stop a container (SIGTERM, SIGKILL after the timeout)",
	    containers_action, 2, 2, 0 },
	{ "containers", "restart", "TARGET REF [--timeout SECONDS] [--detach] "
	    "[--json]", "restart a container", containers_action, 2, 2, 0 },
	{ "containers", "pause", "TARGET REF [--detach] [--json]",
	    "pause a container's processes", containers_action, 2, 2, 0 },
	{ "containers", "unpause", "TARGET REF [--detach] [--json]",
	    "resume a paused container", containers_action, 2, 2, 0 },
	{ "containers", "kill", "TARGET REF [--signal SIG] [--detach] [--json]",
	    "send a signal (default KILL)", containers_action, 2, 2, 0 },
	{ "containers", "remove", "TARGET REF [--force] [--volumes] [--detach] "
	    "[--json]", "remove a container (production mode: name it again)",
	    containers_action, 2, 2, 0 },
	{ "containers", "inspect", "TARGET REF", "the engine's view of a "
	    "container (env secrets masked)", containers_inspect, 2, 2, 0 },
	{ "containers", "logs", "TARGET REF [--tail N] [--since D] [--follow] "
	    "[--timestamps] [--limit D]", "a container's log, streamed",
	    containers_logs, 2, 2, 0 },
	{ "containers", "exec", "TARGET REF [-it|--tty] [--limit D] [--] "
	    "COMMAND...", "run a command in a container; exits with its exit "
	    "code (-it: interactive, with a TTY; Ctrl-] leaves)",
	    containers_exec, 2, 2, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
