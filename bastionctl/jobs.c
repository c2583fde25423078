/* jobs.c — bastionctl exec and jobs list|show|output: signed jobs and
 * their output. `exec` streams a command's output live and exits with its
 * exit code. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "bounds.h"
#include "ctl.h"
#include "duration.h"
#include "envelope.h"


static int
finished(const char *status)
{
	return strcmp(status, "done") == 0 || strcmp(status, "failed") == 0 ||
	    strcmp(status, "refused") == 0 || strcmp(status, "expired") == 0;
}

/* Write chunks after *seq to stdout/stderr; advances *seq. */
static int
write_chunks(const json_t *chunks, long long *seq)
{
	const json_t *ch;
	unsigned char *raw;
	size_t i, len;

	json_array_foreach(chunks, i, ch) {
		if (ctl_jint(ch, "seq", 0) <= *seq)
			continue;
		*seq = ctl_jint(ch, "seq", 0);
		if ((raw = b64_decode(ctl_jstr(ch, "data"), 64 << 20, &len)) ==
		    NULL)
			continue;
		fwrite(raw, 1, len, strcmp(ctl_jstr(ch, "stream"), "stderr") ?
		    stdout : stderr);
		free(raw);
	}
	fflush(stdout);
	fflush(stderr);
	return 0;
}

/* The exit status bastionctl exec ends with for a finished job. */
static int
job_exit(const json_t *job, int quiet)
{
	const char *status = ctl_jstr(job, "status"), *err = ctl_jstr(job,
	    "error");
	const json_t *code = json_object_get(job, "exit_code");
	const json_t *sig = json_object_get(job, "signal");

	if (strcmp(status, "done") != 0) {
		ctl_error("job %lld %s%s%s", ctl_jint(job, "id", 0), status,
		    *err ? ": " : "", err);
		return json_is_integer(code) ? (int)json_integer_value(code) :
		    CTL_ERR;
	}
	if (json_is_true(json_object_get(job, "timed_out")) && !quiet)
		ctl_warn("job %lld: %s", ctl_jint(job, "id", 0), *err ? err :
		    "timed out");
	if (json_is_integer(code))
		return (int)json_integer_value(code) & 0xff;
	if (json_is_integer(sig)) {
		if (!quiet)
			ctl_warn("job %lld: killed by signal %lld",
			    ctl_jint(job, "id", 0), (long long)json_integer_value(
			    sig));
		return 128 + ((int)json_integer_value(sig) & 0x7f);
	}
	return CTL_ERR;
}

static void
on_int(int sig)
{
	ctl_interrupted = 1;
}

/* Print the job's output as it comes until it finishes; its exit code. */
static int
follow(struct ctl *c, long long id, int wait)
{
	struct timespec ts = { 0, 200 * 1000000 };
	char path[128];
	long long seq = 0;
	json_t *o;
	int rc;

	for (;;) {
		snprintf(path, sizeof path, "/api/v1/jobs/%lld/output?after=%lld",
		    id, seq);
		if (ctl_request(c, "GET", path, NULL, &o, NULL, NULL) == -1)
			return CTL_ERR;
		write_chunks(json_object_get(o, "chunks"), &seq);
		if (finished(ctl_jstr(o, "status")) && json_array_size(
		    json_object_get(o, "chunks")) < 1000) {
			rc = job_exit(json_object_get(o, "job"), 0);
			json_decref(o);
			return rc;
		}
		json_decref(o);
		if (!wait)
			return CTL_OK;
		if (ctl_interrupted) {
			ctl_warn("interrupted: job %lld goes on (bastionctl jobs "
			    "output %lld)", id, id);
			return 130;
		}
		nanosleep(&ts, NULL);
	}
}

int
ctl_job_submit(struct ctl *c, const json_t *body, int json, int detach,
    long long *id)
{
	json_t *job;
	int rc = -2;

	if (ctl_request(c, "POST", "/api/v1/jobs", body, &job, NULL, NULL) == -1)
		return CTL_ERR;
	*id = ctl_jint(job, "id", 0);
	if (json)
		rc = ctl_print_json(job) == 0 ? CTL_OK : CTL_ERR;
	else if (detach) {
		printf("%lld\n", *id);
		rc = CTL_OK;
	}
	json_decref(job);
	return rc;
}

/* What exec was asked for, its options as given. */
struct exec_req {
	const char	*timeout, *grace, *cwd, *ttl;
	const char	*env[JOB_MAX_ENV];
	int		 nenv, shell, detach, json;
};

/* The remote argv: the words as given, or with --shell one command line
 * of them all (at most JOB_MAX_ARG bytes, the agent's limit). NULL with
 * a message. */
static json_t *
exec_argv(const struct ctl_args *a, int shell)
{
	json_t *argv = json_array();
	struct buf line;
	int i, rc = 0;

	if (argv == NULL || a->nrest > JOB_MAX_ARGV) {
		ctl_error("at most %d words in the command", JOB_MAX_ARGV);
		json_decref(argv);
		return NULL;
	}
	if (!shell) {
		for (i = 0; i < a->nrest; i++)
			json_array_append_new(argv, json_string(a->rest[i]));
		return argv;
	}
	buf_init(&line, JOB_MAX_ARG);
	for (i = 0; i < a->nrest && rc == 0; i++)
		rc = buf_printf(&line, "%s%s", i ? " " : "", a->rest[i]);
	if (rc == 0)
		json_array_append_new(argv, json_string(line.data));
	else {
		ctl_error("--shell: the command line is longer than %d bytes",
		    JOB_MAX_ARG);
		json_decref(argv);
		argv = NULL;
	}
	buf_free(&line);
	return argv;
}

/* The job's args ({argv, shell, env, cwd, timeout, grace}); NULL with a
 * message. */
static json_t *
exec_args(const struct exec_req *q, const struct ctl_args *a)
{
	json_t *args, *argv, *env;
	long long n;
	int64_t secs;
	int i;

	if ((argv = exec_argv(a, q->shell)) == NULL)
		return NULL;
	args = json_pack("{s:o}", "argv", argv);
	if (q->shell)
		json_object_set_new(args, "shell", json_true());
	if (q->nenv) {
		env = json_object();
		for (i = 0; i < q->nenv; i++) {
			const char *eq = strchr(q->env[i], '=');

			if (eq == NULL || eq == q->env[i]) {
				ctl_error("--env wants NAME=VALUE, not '%s'",
				    q->env[i]);
				json_decref(env);
				goto err;
			}
			json_object_setn_new(env, q->env[i],
			    (size_t)(eq - q->env[i]), json_string(eq + 1));
		}
		json_object_set_new(args, "env", env);
	}
	if (q->cwd)
		json_object_set_new(args, "cwd", json_string(q->cwd));
	if (q->timeout) {
		if (duration_parse(q->timeout, JOB_MAX_TIMEOUT, &secs) == -1) {
			ctl_error("--timeout: a duration up to 7d (e.g. 30s, 10m)");
			goto err;
		}
		json_object_set_new(args, "timeout", json_integer(secs));
	}
	if (q->grace) {
		if (ctl_parse_count(q->grace, 600, &n) == -1) {
			ctl_error("--grace: 0 to 600 seconds");
			goto err;
		}
		json_object_set_new(args, "grace", json_integer(n));
	}
	return args;
err:
	json_decref(args);
	return NULL;
}

int
ctl_job_follow(struct ctl *c, long long id)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_int;
	sigaction(SIGINT, &sa, NULL);
	/* The job's own timeout bounds it; each request is short. */
	c->timeout_ms = 30000;
	return follow(c, id, 1);
}

/* exec [OPTIONS] TARGET [--] COMMAND...: parse, build the job, submit it,
 * follow it unless --detach/--json. */
static int
exec_cmd(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	struct exec_req q;
	const struct ctl_opt opts[] = {
		{ "timeout", &q.timeout, NULL },
		{ "grace", &q.grace, NULL },
		{ "cwd", &q.cwd, NULL },
		{ "ttl", &q.ttl, NULL },
		{ "shell", NULL, &q.shell },
		{ "detach", NULL, &q.detach },
		{ "json", NULL, &q.json },
		{ NULL, NULL, NULL },
	};
	const struct ctl_multi multi[] = {
		{ "env", q.env, JOB_MAX_ENV, &q.nenv },
		{ NULL, NULL, 0, NULL },
	};
	struct ctl_args a;
	json_t *args, *body;
	long long id;
	int64_t secs;
	int rc;

	memset(&q, 0, sizeof q);
	if (ctl_parse_command_line(cmd, argc, argv, opts, multi, &a) == -1)
		return a.rc;
	if (q.json)
		q.detach = 1;
	if ((args = exec_args(&q, &a)) == NULL)
		return CTL_USAGE;
	body = json_pack("{s:s, s:s, s:o}", "target", a.pos[0], "kind", "exec",
	    "args", args);
	if (q.ttl) {
		if (duration_parse(q.ttl, ENVELOPE_MAX_TTL, &secs) == -1 ||
		    secs < JOB_MIN_TTL) {
			json_decref(body);
			ctl_error("--ttl: a duration from 10s to 31d");
			return CTL_USAGE;
		}
		json_object_set_new(body, "ttl", json_integer(secs));
	}
	rc = ctl_job_submit(c, body, q.json, q.detach, &id);
	json_decref(body);
	return rc == -2 ? ctl_job_follow(c, id) : rc;
}

int
ctl_job_wait(struct ctl *c, long long id, json_t **out)
{
	struct timespec ts = { 0, 200 * 1000000 };
	struct sigaction sa;
	char path[64];
	json_t *job;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_int;
	sigaction(SIGINT, &sa, NULL);
	snprintf(path, sizeof path, "/api/v1/jobs/%lld", id);
	for (;;) {
		if (ctl_request(c, "GET", path, NULL, &job, NULL, NULL) == -1)
			return CTL_ERR;
		if (finished(ctl_jstr(job, "status"))) {
			*out = job;
			return CTL_OK;
		}
		json_decref(job);
		if (ctl_interrupted) {
			ctl_warn("interrupted: job %lld goes on (bastionctl jobs "
			    "show %lld)", id, id);
			return 130;
		}
		nanosleep(&ts, NULL);
	}
}

int
ctl_job_report(const char *target, const json_t *job)
{
	char what[300];

	ctl_clean(ctl_jstr(job, "error"), what, sizeof what, 0);
	if (strcmp(ctl_jstr(job, "status"), "done") != 0)
		return ctl_error("%s: job %lld %s%s%s", target, ctl_jint(job, "id",
		    0), ctl_jstr(job, "status"), *what ? ": " : "", what);
	ctl_line("%s: %s (job %lld)", target, *what ? what : "done",
	    ctl_jint(job, "id", 0));
	return CTL_OK;
}

static int
job_line(struct ctl_table *t, const json_t *jb)
{
	char when[64], res[64], idb[32];

	snprintf(idb, sizeof idb, "%lld", ctl_jint(jb, "id", 0));
	ctl_fmt_time(when, sizeof when, ctl_jstr(jb, "created_at"));
	if (json_is_integer(json_object_get(jb, "exit_code")))
		snprintf(res, sizeof res, "exit %lld", ctl_jint(jb, "exit_code",
		    0));
	else if (json_is_integer(json_object_get(jb, "signal")))
		snprintf(res, sizeof res, "signal %lld%s", ctl_jint(jb, "signal",
		    0), json_is_true(json_object_get(jb, "timed_out")) ?
		    " (timeout)" : "");
	else
		snprintf(res, sizeof res, "-");
	return ctl_table_row(t, idb, ctl_jstr(jb, "hostname"), ctl_jstr(jb,
	    "kind"), ctl_jstr(jb, "status"), res, when);
}

static int
jobs_list(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *agent = NULL, *limit = NULL;
	int json = 0;
	const struct ctl_opt opts[] = {
		{ "agent", &agent, NULL },
		{ "limit", &limit, NULL },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_args a;
	char *ea = NULL, path[512];
	long long n = 50;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (limit && ctl_parse_count(limit, 10000, &n) == -1)
		return ctl_usage_error(cmd, "--limit: 1 to 10000");
	if (agent && (ea = ctl_escape(agent)) == NULL)
		return ctl_error("out of memory");
	snprintf(path, sizeof path, "/api/v1/jobs?limit=%lld%s%s", n,
	    ea ? "&agent=" : "", ea ? ea : "");
	free(ea);
	return ctl_list(c, path, "the job list", json, ctl_table_new(6, "ID",
	    "HOST", "KIND", "STATUS", "RESULT", "CREATED"), job_line);
}

static int
job_id_arg(const struct ctl_command *cmd, const char *s, long long *id)
{
	if (ctl_parse_count(s, INT64_MAX, id) == -1 || *id < 1) {
		ctl_usage_error(cmd, "'%s' is not a job id", s);
		return -1;
	}
	return 0;
}

static void
job_print(const json_t *jb)
{
	char *args = json_dumps(json_object_get(jb, "args"), JSON_COMPACT);

	ctl_line("%-16s %lld", "job", ctl_jint(jb, "id", 0));
	ctl_line("%-16s %s (%s, %s)", "agent", ctl_jstr(jb, "agent_id"),
	    ctl_jstr(jb, "hostname"), ctl_jstr(jb, "mac"));
	ctl_line("%-16s %s", "kind", ctl_jstr(jb, "kind"));
	ctl_line("%-16s %s", "args", args ? args : "{}");
	ctl_line("%-16s %s", "status", ctl_jstr(jb, "status"));
	if (json_is_integer(json_object_get(jb, "exit_code")))
		ctl_line("%-16s %lld", "exit code", ctl_jint(jb, "exit_code", 0));
	if (json_is_integer(json_object_get(jb, "signal")))
		ctl_line("%-16s %lld%s", "signal", ctl_jint(jb, "signal", 0),
		    json_is_true(json_object_get(jb, "timed_out")) ?
		    " (timed out)" : "");
	if (*ctl_jstr(jb, "error"))
		ctl_line("%-16s %s", "error", ctl_jstr(jb, "error"));
	ctl_line("%-16s %s", "created by", ctl_jstr(jb, "created_by"));
	ctl_print_time("created", jb, "created_at");
	ctl_print_time("started", jb, "started_at");
	ctl_print_time("finished", jb, "finished_at");
	ctl_line("%-16s %lld bytes", "output", ctl_jint(jb, "output_bytes", 0));
	free(args);
}

static int
jobs_show(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json;
	struct ctl_args a;
	char path[64];
	long long id;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	if (job_id_arg(cmd, a.pos[0], &id) == -1)
		return CTL_USAGE;
	snprintf(path, sizeof path, "/api/v1/jobs/%lld", id);
	return ctl_show(c, path, "the job", json, job_print);
}

static int
jobs_output(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int fl = 0;
	const struct ctl_opt opts[] = {
		{ "follow", NULL, &fl },
		{ NULL, NULL, NULL },
	};
	struct ctl_args a;
	long long id;
	int rc;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (job_id_arg(cmd, a.pos[0], &id) == -1)
		return CTL_USAGE;
	rc = follow(c, id, fl);
	/* Without --follow, only a transport error is an error. */
	return fl ? rc : rc == CTL_ERR ? CTL_ERR : CTL_OK;
}


const struct ctl_command ctl_jobs_commands[] = {
	{ "exec", NULL, "[--timeout DURATION] [--grace SECONDS] [--cwd DIR] "
	    "[--env NAME=VALUE]... [--shell] [--ttl DURATION] [--detach] "
	    "[--json] TARGET [--] COMMAND [ARG]...", "run COMMAND on the agent "
	    "TARGET (id, host name or MAC), print its output as it comes, exit "
	    "with its code (128+N when killed by signal N)", exec_cmd, 1, 1,
	    0 },
	{ "jobs", "list", "[--agent TARGET] [--limit N] [--json]", "list jobs, "
	    "newest first", jobs_list, 0, 0, 0 },
	{ "jobs", "show", "ID [--json]", "one job and its result", jobs_show,
	    1, 1, 0 },
	{ "jobs", "output", "ID [--follow]", "a job's output (stdout and "
	    "stderr)", jobs_output, 1, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
