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

static void
exec_usage(FILE *fp)
{
	fprintf(fp, "usage: bastionctl exec [--timeout DURATION] [--grace "
	    "SECONDS] [--cwd DIR]\n"
	    "           [--env NAME=VALUE]... [--shell] [--ttl DURATION] "
	    "[--detach] [--json]\n"
	    "           TARGET -- COMMAND [ARGUMENT]...\n"
	    "  Run COMMAND on the agent TARGET (agent id, host name or MAC), "
	    "print its\n  output as it comes and exit with its exit code "
	    "(128+N when killed by\n  signal N).\n");
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

/* exec has its own parser: everything after "--" is the remote argv. */
static int
exec_cmd(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *target = NULL, *timeout = NULL, *grace = NULL, *cwd = NULL;
	const char *ttl = NULL, *opt, *val;
	int shell = 0, detach = 0, json = 0, i, rc = CTL_ERR;
	json_t *body, *args, *rargv, *env;
	long long n, id;
	int64_t secs;
	struct sigaction sa;

	args = json_object();
	rargv = json_array();
	env = json_object();
	for (i = 1; i < argc; i++) {
		opt = argv[i];
		if (strcmp(opt, "--") == 0) {
			for (i++; i < argc; i++)
				json_array_append_new(rargv, json_string(argv[i]));
			break;
		}
		if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
			exec_usage(stdout);
			rc = CTL_OK;
			goto out;
		}
		if (strcmp(opt, "--shell") == 0) {
			shell = 1;
			continue;
		}
		if (strcmp(opt, "--detach") == 0) {
			detach = 1;
			continue;
		}
		if (strcmp(opt, "--json") == 0) {
			json = detach = 1;
			continue;
		}
		if (opt[0] != '-') {
			if (target) {
				json_array_append_new(rargv, json_string(opt));
				for (i++; i < argc; i++)
					json_array_append_new(rargv,
					    json_string(argv[i]));
				break;
			}
			target = opt;
			continue;
		}
		if (i + 1 >= argc) {
			ctl_error("option %s needs a value", opt);
			exec_usage(stderr);
			rc = CTL_USAGE;
			goto out;
		}
		val = argv[++i];
		if (strcmp(opt, "--timeout") == 0)
			timeout = val;
		else if (strcmp(opt, "--grace") == 0)
			grace = val;
		else if (strcmp(opt, "--cwd") == 0)
			cwd = val;
		else if (strcmp(opt, "--ttl") == 0)
			ttl = val;
		else if (strcmp(opt, "--env") == 0) {
			const char *eq = strchr(val, '=');

			if (eq == NULL || eq == val ||
			    json_object_size(env) >= JOB_MAX_ENV) {
				ctl_error("--env wants NAME=VALUE");
				rc = CTL_USAGE;
				goto out;
			}
			json_object_setn_new(env, val, (size_t)(eq - val),
			    json_string(eq + 1));
		} else {
			ctl_error("unknown option '%s'", opt);
			exec_usage(stderr);
			rc = CTL_USAGE;
			goto out;
		}
	}
	if (target == NULL || json_array_size(rargv) == 0 ||
	    json_array_size(rargv) > JOB_MAX_ARGV) {
		ctl_error("exec needs a target and a command");
		exec_usage(stderr);
		rc = CTL_USAGE;
		goto out;
	}
	if (shell && json_array_size(rargv) > 1) {
		/* --shell: the words are one command line. */
		struct buf line;
		const json_t *w;
		size_t k;

		buf_init(&line, 64 * 1024);
		json_array_foreach(rargv, k, w)
			buf_printf(&line, "%s%s", k ? " " : "",
			    json_string_value(w));
		json_array_clear(rargv);
		json_array_append_new(rargv, json_string(line.data ? line.data :
		    ""));
		buf_free(&line);
	}
	json_object_set(args, "argv", rargv);
	if (shell)
		json_object_set_new(args, "shell", json_true());
	if (json_object_size(env))
		json_object_set(args, "env", env);
	if (cwd)
		json_object_set_new(args, "cwd", json_string(cwd));
	if (timeout) {
		if (duration_parse(timeout, JOB_MAX_TIMEOUT, &secs) == -1) {
			ctl_error("--timeout: a duration up to 7d (e.g. 30s, 10m)");
			rc = CTL_USAGE;
			goto out;
		}
		json_object_set_new(args, "timeout", json_integer(secs));
	}
	if (grace) {
		if (ctl_parse_count(grace, 600, &n) == -1) {
			ctl_error("--grace: 0 to 600 seconds");
			rc = CTL_USAGE;
			goto out;
		}
		json_object_set_new(args, "grace", json_integer(n));
	}
	body = json_pack("{s:s, s:s, s:O}", "target", target, "kind", "exec",
	    "args", args);
	if (ttl) {
		if (duration_parse(ttl, ENVELOPE_MAX_TTL, &secs) == -1 ||
		    secs < JOB_MIN_TTL) {
			json_decref(body);
			ctl_error("--ttl: a duration from 10s to 31d");
			rc = CTL_USAGE;
			goto out;
		}
		json_object_set_new(body, "ttl", json_integer(secs));
	}
	rc = ctl_job_submit(c, body, json, detach, &id);
	json_decref(body);
	if (rc != -2)
		goto out;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_int;
	sigaction(SIGINT, &sa, NULL);
	/* The job's own timeout bounds it; each request is short. */
	c->timeout_ms = 30000;
	rc = follow(c, id, 1);
out:
	json_decref(args);
	json_decref(rargv);
	json_decref(env);
	return rc;
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
job_row(struct ctl_table *t, const json_t *jb)
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
	    "HOST", "KIND", "STATUS", "RESULT", "CREATED"), job_row);
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
	{ "exec", NULL, "[OPTIONS] TARGET -- COMMAND [ARG]...", "run a command "
	    "on an agent, stream its output, exit with its code", exec_cmd, 0,
	    CTL_MAX_POS, 0 },
	{ "jobs", "list", "[--agent TARGET] [--limit N] [--json]", "list jobs, "
	    "newest first", jobs_list, 0, 0, 0 },
	{ "jobs", "show", "ID [--json]", "one job and its result", jobs_show,
	    1, 1, 0 },
	{ "jobs", "output", "ID [--follow]", "a job's output (stdout and "
	    "stderr)", jobs_output, 1, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
