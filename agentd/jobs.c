/* jobs.c — what agentd does with a job: verify the signed envelope
 * against the keys pinned at enrollment (never trusting the fields bastion
 * sent beside it), apply the local policy, remember the nonce, run it, and
 * spool the result on disk until bastion acknowledges it.
 *
 * exec runs in a thread of its own: the child gets its own session (so a
 * timeout can signal the whole process group), /dev/null as stdin, and a
 * clean environment plus the job's; stdout and stderr are streamed in
 * numbered chunks; on timeout SIGTERM, then SIGKILL after the grace. */
#ifndef AGENTD_NO_CURL	/* the discovery image has no libcurl, OpenSSL or inih */
#define _GNU_SOURCE
#define LOG_SUBSYS "jobs"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AGENTD_STATIC
#include <openssl/crypto.h>
#endif

#include "agent.h"
#include "b64.h"
#include "buf.h"
#include "clock.h"
#include "file.h"
#include "inventory.h"
#include "log.h"

#define CHUNK_MAX	(256 * 1024)	/* one stream's bytes per chunk */
#define PENDING_MAX	(8L * 1024 * 1024)	/* unsent output kept */
#define TICK_MS		250
#define JOB_ENV_MAX	128

struct jobs {
	const struct agent_conf	*c;
	struct agent_state	*s;
	pthread_mutex_t		 mu;	/* nonces, running */
	pthread_cond_t		 idle;	/* running dropped */
	pthread_mutex_t		 spool_mu;
	struct nonce_cache	 nonces;
	char			 nonce_path[PATH_MAX];
	char			 spool_dir[PATH_MAX];
	int			 running;
	int			 helper;	/* `agentd helper job` */
};

static void	running_orphans(struct jobs *);

struct jobs *
jobs_new(const struct agent_conf *c, struct agent_state *s)
{
	struct jobs *j;

	if ((j = calloc(1, sizeof *j)) == NULL)
		return NULL;
	j->c = c;
	j->s = s;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->idle, NULL);
	pthread_mutex_init(&j->spool_mu, NULL);
	nonce_cache_init(&j->nonces);
	if (agent_path(c, "nonces", j->nonce_path, sizeof j->nonce_path) == -1 ||
	    agent_path(c, "spool", j->spool_dir, sizeof j->spool_dir) == -1 ||
	    (mkdir(j->spool_dir, 0700) == -1 && errno != EEXIST) ||
	    nonce_cache_load(&j->nonces, j->nonce_path) == -1) {
		log_warn("%s", c->state_dir);
		jobs_free(j);
		return NULL;
	}
	nonce_cache_prune(&j->nonces, time(NULL));
	running_orphans(j);
	return j;
}

void
jobs_free(struct jobs *j)
{
	if (j == NULL)
		return;
	nonce_cache_free(&j->nonces);
	pthread_cond_destroy(&j->idle);
	pthread_mutex_destroy(&j->mu);
	pthread_mutex_destroy(&j->spool_mu);
	free(j);
}

int
jobs_running(struct jobs *j)
{
	int n;

	pthread_mutex_lock(&j->mu);
	n = j->running;
	pthread_mutex_unlock(&j->mu);
	return n;
}

int
jobs_drain(struct jobs *j, long ms)
{
	struct timespec until = clock_wall_after(ms);
	int n;

	pthread_mutex_lock(&j->mu);
	while (j->running > 0 &&
	    pthread_cond_timedwait(&j->idle, &j->mu, &until) == 0)
		;
	n = j->running;
	pthread_mutex_unlock(&j->mu);
	return n;
}

/* --- the spool ---------------------------------------------------------- */

static int
spool_result(struct jobs *j, int64_t id, json_t *result)
{
	char path[PATH_MAX + 32], *text;
	int rc;

	snprintf(path, sizeof path, "%s/%" PRId64 ".json", j->spool_dir, id);
	if ((text = json_dumps(result, JSON_COMPACT)) == NULL)
		return -1;
	pthread_mutex_lock(&j->spool_mu);
	rc = file_write_atomic(path, text, strlen(text), 0600);
	pthread_mutex_unlock(&j->spool_mu);
	free(text);
	return rc;
}

/* spool/ID.running exists while an exec job runs: if agentd dies with
 * it, the next start reports the job as failed instead of leaving it
 * "running" for ever. */
static void
running_mark(struct jobs *j, int64_t id, int on)
{
	char path[PATH_MAX + 32];
	int fd;

	snprintf(path, sizeof path, "%s/%" PRId64 ".running", j->spool_dir, id);
	if (!on)
		unlink(path);
	else if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) != -1)
		close(fd);
}

static void
running_orphans(struct jobs *j)
{
	struct dirent *de;
	json_t *res;
	int64_t id;
	char *end;
	DIR *d;

	if ((d = opendir(j->spool_dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		id = strtoll(de->d_name, &end, 10);
		if (id <= 0 || strcmp(end, ".running") != 0)
			continue;
		log_warnx("job %" PRId64 ": agentd stopped while it ran", id);
		res = json_pack("{s:s, s:s}", "status", "failed", "error",
		    "agentd stopped while the job ran; its outcome is unknown");
		if (res && spool_result(j, id, res) == 0)
			running_mark(j, id, 0);
		json_decref(res);
	}
	closedir(d);
}

int
jobs_flush(struct jobs *j, struct aclient *a)
{
	char path[PATH_MAX + 300], url[64], err[256];
	struct dirent *de;
	json_t *res, *reply;
	int64_t id;
	long code;
	char *end;
	int rc = 0;
	DIR *d;

	pthread_mutex_lock(&j->spool_mu);
	if ((d = opendir(j->spool_dir)) == NULL) {
		pthread_mutex_unlock(&j->spool_mu);
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		id = strtoll(de->d_name, &end, 10);
		if (id <= 0 || strcmp(end, ".json") != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", j->spool_dir, de->d_name);
		if ((res = json_load_file(path, 0, NULL)) == NULL) {
			log_warnx("%s is unreadable; dropping it", path);
			unlink(path);
			continue;
		}
		snprintf(url, sizeof url, "/agent/v1/jobs/%" PRId64 "/result", id);
		code = aclient_call(a, "POST", url, res, 30000, &reply, err,
		    sizeof err);
		json_decref(res);
		if (code == 200 || code == 404 || code == 422) {
			if (code != 200)
				log_warnx("job %" PRId64 ": bastion refused the "
				    "result (HTTP %ld: %s); dropping it", id, code,
				    aclient_error_message(reply));
			else
				log_info("job %" PRId64 ": result delivered", id);
			unlink(path);
		} else {
			rc = -1;
		}
		json_decref(reply);
	}
	closedir(d);
	pthread_mutex_unlock(&j->spool_mu);
	return rc;
}

void
job_finish(struct jobs *j, struct aclient *a, int64_t id, json_t *result)
{
	if (spool_result(j, id, result) == -1)
		log_warnx("job %" PRId64 ": cannot spool the result", id);
	json_decref(result);
	/* A helper's result is sent by the agentd that started it. */
	if (a && !j->helper)
		jobs_flush(j, a);
}

static void
refuse(struct jobs *j, struct aclient *a, int64_t id, const char *why)
{
	log_warnx("job %" PRId64 " refused: %s", id, why);
	job_finish(j, a, id, json_pack("{s:s, s:s}", "status", "refused", "error",
	    why));
}

/* --- exec ------------------------------------------------------------- */

void
job_output_add(struct job_output *o, const char *stream, const char *p, size_t n)
{
	char *b;

	if (n == 0)
		return;
	if (o->pending_bytes + (long)n > PENDING_MAX) {
		o->truncated = 1;
		return;
	}
	if ((b = b64_encode(p, n)) == NULL)
		return;
	json_array_append_new(o->pending, json_pack("{s:I, s:s, s:s}", "seq",
	    (json_int_t)++o->seq, "stream", stream, "data", b));
	o->pending_bytes += (long)n;
	free(b);
}

void
job_output_send(struct aclient *a, int64_t id, struct job_output *o,
    int always)
{
	char url[64], err[256];
	json_t *body;
	long code;

	if (json_array_size(o->pending) == 0 && !always)
		return;
	snprintf(url, sizeof url, "/agent/v1/jobs/%" PRId64 "/output", id);
	body = json_pack("{s:O}", "chunks", o->pending);
	code = aclient_call(a, "POST", url, body, 15000, NULL, err, sizeof err);
	json_decref(body);
	if (code == 200) {
		json_array_clear(o->pending);
		o->pending_bytes = 0;
	}
}

static char **
strv_from(const json_t *arr)
{
	const json_t *v;
	char **out;
	size_t i;

	if ((out = calloc(json_array_size(arr) + 1, sizeof *out)) == NULL)
		return NULL;
	json_array_foreach(arr, i, v)
		out[i] = (char *)json_string_value(v);
	return out;
}

/* A clean environment plus the job's (strings point into args/envbuf);
 * NULL when out of memory or when it does not fit envbuf. */
static char **
job_env(const json_t *env, struct buf *envbuf)
{
	static const char *const base[] = {
	    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	    "LANG=C.UTF-8", "HOME=/root", NULL };
	const char *k;
	const json_t *v;
	size_t n = 0, i, off;
	char **out;

	if ((out = calloc(json_object_size(env) + 4, sizeof *out)) == NULL)
		return NULL;
	for (i = 0; base[i]; i++) {
		const char *eq = strchr(base[i], '=');

		if (json_object_getn(env, base[i], (size_t)(eq - base[i])) == NULL)
			out[n++] = (char *)base[i];
	}
	/* Offsets first: the buffer may move while it grows. */
	{
		size_t offs[JOB_ENV_MAX];
		size_t m = 0;

		json_object_foreach((json_t *)env, k, v) {
			if (m == JOB_ENV_MAX)
				break;
			offs[m++] = envbuf->len;
			if (buf_printf(envbuf, "%s=%s", k, json_string_value(v))
			    == -1 || buf_add(envbuf, "", 1) == -1) {
				free(out);
				return NULL;	/* over the cap: no job */
			}
		}
		for (i = 0; i < m; i++) {
			off = offs[i];
			out[n++] = envbuf->data + off;
		}
	}
	out[n] = NULL;
	return out;
}

/* One exec job's process: its pid, the read ends of its stdout and stderr
 * (-1 once closed) and how it ended. */
struct run {
	pid_t	pid;
	int	out, err;
	int	status;
	int	timed_out;
};

/*
 * Start argv (or, with shell, /bin/sh -c argv[0]) in a session of its
 * own, with envp, in cwd, stdout and stderr into pipes. 0, or -1 with
 * the reason in why and in *code 127 when the command itself could not
 * be run (no such file, no such cwd) or -1 otherwise.
 */
static int
exec_spawn(char **argv, char **envp, const char *cwd, int shell,
    struct run *run, char *why, size_t whylen, int *code)
{
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, failp[2] = { -1, -1 };
	char *shargv[4] = { "/bin/sh", "-c", argv[0], NULL };
	int child_errno = 0, rc = -1;
	pid_t pid;

	*code = -1;
	if (pipe2(outp, O_CLOEXEC) == -1 || pipe2(errp, O_CLOEXEC) == -1 ||
	    pipe2(failp, O_CLOEXEC) == -1) {
		snprintf(why, whylen, "cannot make pipes");
		goto out;
	}
	if ((pid = fork()) == -1) {
		snprintf(why, whylen, "fork failed");
		goto out;
	}
	if (pid == 0) {
		int fd, e;

		setsid();
		child_prepare();
		/* O_CLOEXEC: the job gets it as stdin only, no extra fd. */
		if ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) != -1)
			dup2(fd, 0);
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		if (cwd && chdir(cwd) == -1) {
			e = errno;
			(void)!write(failp[1], &e, sizeof e);
			_exit(127);
		}
		if (shell)
			execve("/bin/sh", shargv, envp);
		else
			execvpe(argv[0], argv, envp);
		e = errno;
		(void)!write(failp[1], &e, sizeof e);
		_exit(127);
	}
	close(failp[1]);
	failp[1] = -1;
	/* The exec happened (close-on-exec: EOF) or its errno arrives. */
	if (read(failp[0], &child_errno, sizeof child_errno) ==
	    sizeof child_errno) {
		waitpid(pid, NULL, 0);
		snprintf(why, whylen, "cannot %s %s: %s", cwd &&
		    child_errno != ENOENT ? "run in" : "execute",
		    shell ? "/bin/sh" : argv[0], strerror(child_errno));
		*code = 127;
		goto out;
	}
	run->pid = pid;
	run->out = outp[0];
	run->err = errp[0];
	outp[0] = errp[0] = -1;
	rc = 0;
out:
	if (outp[0] != -1)
		close(outp[0]);
	if (errp[0] != -1)
		close(errp[0]);
	if (failp[0] != -1)
		close(failp[0]);
	if (outp[1] != -1)
		close(outp[1]);
	if (errp[1] != -1)
		close(errp[1]);
	if (failp[1] != -1)
		close(failp[1]);
	return rc;
}

/* Read what is ready on the run's pipes into out; a pipe at EOF is
 * closed. */
static void
exec_read(struct run *run, struct job_output *out)
{
	struct pollfd pf[2] = { { run->out, POLLIN, 0 }, { run->err, POLLIN, 0 } };
	char buf[65536];
	ssize_t n;
	int i;

	if (poll(pf, 2, TICK_MS) <= 0)
		return;
	for (i = 0; i < 2; i++) {
		if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP |
		    POLLERR)))
			continue;
		n = read(pf[i].fd, buf, sizeof buf);
		if (n > 0)
			job_output_add(out, i ? "stderr" : "stdout", buf, (size_t)n);
		else if (n == 0 || errno != EINTR) {
			close(pf[i].fd);
			*(i ? &run->err : &run->out) = -1;
		}
	}
}

/*
 * Until the process has exited and its pipes are closed: its output to
 * out, sent to bastion every tick. Past timeout: SIGTERM to its session,
 * SIGKILL after grace. Once it has exited, what its children left behind
 * has a second more to finish writing.
 */
static void
exec_pump(struct job_thread *ej, struct aclient *a, struct run *run,
    long timeout, long grace, struct job_output *out)
{
	int64_t now = clock_mono_ms(), deadline = now + timeout * 1000;
	int64_t kill_at = 0, last_send = 0;
	int exited = 0, term_sent = 0;

	while (!exited || run->out != -1 || run->err != -1) {
		exec_read(run, out);
		now = clock_mono_ms();
		if (!exited && waitpid(run->pid, &run->status, WNOHANG) ==
		    run->pid) {
			exited = 1;
			deadline = now + 1000 < deadline ? now + 1000 : deadline;
		}
		if (now >= deadline && !exited && !term_sent) {
			log_info("job %" PRId64 ": timed out after %ld s: SIGTERM",
			    ej->id, timeout);
			kill(-run->pid, SIGTERM);
			term_sent = run->timed_out = 1;
			kill_at = now + grace * 1000;
		} else if (term_sent && !exited && now >= kill_at) {
			log_info("job %" PRId64 ": still running after %ld s of "
			    "grace: SIGKILL", ej->id, grace);
			kill(-run->pid, SIGKILL);
			kill_at = INT64_MAX;
		} else if (exited && now >= deadline) {
			break;	/* a grandchild holds the pipes open */
		}
		if (now - last_send >= TICK_MS) {
			job_output_send(a, ej->id, out, 0);
			last_send = now;
		}
	}
	job_output_send(a, ej->id, out, 0);
}

/* The job's result: how it ended and the output bastion has not yet
 * acknowledged. */
static json_t *
exec_result(const struct run *run, const struct job_output *out, int64_t ms,
    long timeout)
{
	json_t *result;

	result = json_pack("{s:s, s:b, s:I, s:O}", "status", "done",
	    "timed_out", run->timed_out, "duration_ms", (json_int_t)ms,
	    "chunks", out->pending);
	if (WIFEXITED(run->status))
		json_object_set_new(result, "exit_code",
		    json_integer(WEXITSTATUS(run->status)));
	else if (WIFSIGNALED(run->status))
		json_object_set_new(result, "signal",
		    json_integer(WTERMSIG(run->status)));
	if (run->timed_out)
		json_object_set_new(result, "error", json_sprintf("timed out "
		    "after %ld s", timeout));
	else if (out->truncated)
		json_object_set_new(result, "error", json_string("output "
		    "truncated: bastion was unreachable for too long"));
	return result;
}

/* An exec job, on its own thread: build argv and env, spawn, pump the
 * output, report the result. */
static void *
exec_thread(void *arg)
{
	struct job_thread *ej = arg;
	struct jobs *j = ej->j;
	const json_t *args = ej->args;
	const char *cwd = json_string_value(json_object_get(args, "cwd"));
	int shell = json_is_true(json_object_get(args, "shell"));
	long timeout = (long)json_integer_value(json_object_get(args, "timeout"));
	long grace = (long)json_integer_value(json_object_get(args, "grace"));
	struct job_output out = { json_array(), 0, 0, 0 };
	struct run run = { -1, -1, -1, 0, 0 };
	char **argv = NULL, **envp = NULL, why[512];
	int64_t start = clock_mono_ms();
	struct aclient *a;
	struct buf envbuf;
	int code;

	buf_init(&envbuf, 1 << 20);
	if (timeout <= 0)
		timeout = 600;
	if ((a = aclient_new(j->c, 1)) == NULL)
		goto out;
	argv = strv_from(json_object_get(args, "argv"));
	envp = job_env(json_object_get(args, "env"), &envbuf);
	if (argv == NULL || envp == NULL || argv[0] == NULL) {
		job_finish(j, a, ej->id, json_pack("{s:s, s:s}", "status", "failed",
		    "error", "cannot build the command and its environment (out "
		    "of memory, or the environment is over 1 MiB)"));
		goto out;
	}
	job_output_send(a, ej->id, &out, 1);	/* tells bastion it runs */
	if (exec_spawn(argv, envp, cwd, shell, &run, why, sizeof why,
	    &code) == -1) {
		job_finish(j, a, ej->id, code == 127 ? json_pack("{s:s, s:s, s:i}",
		    "status", "failed", "error", why, "exit_code", 127) :
		    json_pack("{s:s, s:s}", "status", "failed", "error", why));
		goto out;
	}
	log_info("job %" PRId64 ": running %s (pid %d, timeout %ld s)", ej->id,
	    argv[0], (int)run.pid, timeout);
	exec_pump(ej, a, &run, timeout, grace, &out);
	log_info("job %" PRId64 ": finished (%s %d)", ej->id,
	    WIFEXITED(run.status) ? "exit" : "signal", WIFEXITED(run.status) ?
	    WEXITSTATUS(run.status) : WTERMSIG(run.status));
	job_finish(j, a, ej->id, exec_result(&run, &out, clock_mono_ms() - start,
	    timeout));
out:
	if (run.out != -1)
		close(run.out);
	if (run.err != -1)
		close(run.err);
	free(argv);
	free(envp);
	buf_free(&envbuf);
	json_decref(out.pending);
	aclient_free(a);
	job_thread_done(ej);
	return NULL;
}

void
job_thread_done(struct job_thread *t)
{
	struct jobs *j = t->j;

#ifndef AGENTD_STATIC	/* the static node build has no OpenSSL */
	/* This thread's OpenSSL state (its random generators) goes now, not
	 * in a destructor after the count below has let agentd exit. */
	OPENSSL_thread_stop();
#endif
	json_decref(t->args);
	running_mark(j, t->id, 0);
	free(t);
	pthread_mutex_lock(&j->mu);
	j->running--;
	pthread_cond_broadcast(&j->idle);
	pthread_mutex_unlock(&j->mu);
}

const struct agent_conf *
job_conf(const struct job_thread *t)
{
	return t->j->c;
}

/* Run fn(a struct job_thread) on a detached thread of its own, counted
 * and marked running on disk; args move to it. A job that cannot start
 * is failed here. */
static void
thread_start(struct jobs *j, struct aclient *a, int64_t id, json_t *args,
    const char *kind, void *(*fn)(void *))
{
	struct job_thread *t;

	if ((t = calloc(1, sizeof *t)) == NULL) {
		json_decref(args);
		job_finish(j, a, id, json_pack("{s:s, s:s}", "status", "failed",
		    "error", "out of memory"));
		return;
	}
	t->j = j;
	t->id = id;
	t->args = args;
	t->kind = kind;
	pthread_mutex_lock(&j->mu);
	j->running++;
	pthread_mutex_unlock(&j->mu);
	running_mark(j, id, 1);
	if (agent_thread(NULL, fn, t) == -1) {
		job_thread_done(t);
		job_finish(j, a, id, json_pack("{s:s, s:s}", "status", "failed",
		    "error", "cannot start a thread"));
	}
}

/* --- jobs in transient units (transient.c, helper.c) -------------------- */

/*
 * Under systemd an exec or guest job runs in a transient unit of its own,
 * agentd-job-ID.service, as `agentd -f FILE helper job` with {id, kind,
 * args} on its stdin: the same thread as below, run there with root's
 * full rights. It streams the output to bastion itself and spools the
 * result, which this thread sends once the unit is gone. The unit is
 * PartOf= agentd's: stopping agentd stops its jobs, as it did when they
 * were its children.
 */
static void *
unit_thread(void *arg)
{
	struct job_thread *t = arg;
	struct jobs *j = t->j;
	struct transient_opts o;
	struct aclient *a = NULL;
	char *argv[6], **run = NULL, *text = NULL, unit[48], desc[64];
	char part[300], path[PATH_MAX + 32];
	int in[2] = { -1, -1 }, status = -1;
	size_t off, len;
	ssize_t n;
	json_t *req;
	pid_t pid;

	memset(&o, 0, sizeof o);
	snprintf(unit, sizeof unit, "agentd-job-%" PRId64 ".service", t->id);
	snprintf(desc, sizeof desc, "agentd: %s job %" PRId64, t->kind, t->id);
	o.unit = unit;
	o.description = desc;
	if (transient_unit()[0]) {
		snprintf(part, sizeof part, "PartOf=%s", transient_unit());
		o.property = part;
	}
	argv[0] = (char *)transient_self();
	argv[1] = "-f";
	argv[2] = (char *)j->c->path;
	argv[3] = "helper";
	argv[4] = "job";
	argv[5] = NULL;
	a = aclient_new(j->c, 1);
	req = json_pack("{s:I, s:s, s:O}", "id", (json_int_t)t->id, "kind",
	    t->kind, "args", t->args);
	if (req == NULL || (text = json_dumps(req, JSON_COMPACT)) == NULL ||
	    (run = transient_argv(argv, &o)) == NULL ||
	    pipe2(in, O_CLOEXEC) == -1 || (pid = fork()) == -1) {
		json_decref(req);
		goto spawned;
	}
	json_decref(req);
	if (pid == 0) {
		child_prepare();
		dup2(in[0], 0);
		execv(run[0], run);
		_exit(127);
	}
	close(in[0]);
	in[0] = -1;
	/* The helper reads all of it before it does anything. */
	for (off = 0, len = strlen(text); off < len; off += (size_t)n)
		if ((n = write(in[1], text + off, len - off)) <= 0) {
			if (n == -1 && errno == EINTR) {
				n = 0;
				continue;
			}
			break;
		}
	close(in[1]);
	in[1] = -1;
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
spawned:
	snprintf(path, sizeof path, "%s/%" PRId64 ".json", j->spool_dir, t->id);
	if (access(path, F_OK) == 0) {
		if (a)
			jobs_flush(j, a);
	} else {
		log_warnx("job %" PRId64 ": %s ended (status %d) without a "
		    "result", t->id, unit, status);
		job_finish(j, a, t->id, json_pack("{s:s, s:s+}", "status",
		    "failed", "error", "the job's transient unit ended without "
		    "a result: see journalctl -u ", unit));
	}
	if (in[0] != -1)
		close(in[0]);
	if (in[1] != -1)
		close(in[1]);
	transient_free(run);
	free(text);
	aclient_free(a);
	job_thread_done(t);
	return NULL;
}

int
jobs_helper(const struct agent_conf *c, FILE *in)
{
	struct job_thread *t = NULL;
	struct jobs *j = NULL;
	const char *kind;
	json_error_t e;
	json_t *req;
	int64_t id;
	int rc = 1;

	if ((req = json_loadf(in, 0, &e)) == NULL) {
		log_warnx("job: unreadable on stdin: %s", e.text);
		return 1;
	}
	kind = json_string_value(json_object_get(req, "kind"));
	id = json_integer_value(json_object_get(req, "id"));
	if (kind == NULL || id <= 0 ||
	    !json_is_object(json_object_get(req, "args")) ||
	    (strcmp(kind, "exec") != 0 && strcmp(kind, "guest") != 0)) {
		log_warnx("job: not {id, kind: exec|guest, args}");
		goto out;
	}
	if (aclient_global_init() == -1)
		goto out;
	agent_malloc_init();
	scratch_init();
	/* Not jobs_new: the nonces and the running marks are the calling
	 * agentd's. */
	if ((j = calloc(1, sizeof *j)) == NULL || (t = calloc(1, sizeof *t)) ==
	    NULL)
		goto cleanup;
	j->c = c;
	j->helper = 1;
	j->running = 1;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->idle, NULL);
	pthread_mutex_init(&j->spool_mu, NULL);
	nonce_cache_init(&j->nonces);
	if (agent_path(c, "spool", j->spool_dir, sizeof j->spool_dir) == -1) {
		jobs_free(j);
		j = NULL;
		goto cleanup;
	}
	t->j = j;
	t->id = id;
	t->kind = kind;
	t->args = json_incref(json_object_get(req, "args"));
	if (strcmp(kind, "exec") == 0)
		exec_thread(t);		/* frees t */
	else
		guest_thread(t);
	t = NULL;
	rc = 0;
cleanup:
	free(t);
	jobs_free(j);
	aclient_global_cleanup();
out:
	json_decref(req);
	return rc;
}

/* --- reboot, reprovision, inventory -------------------------------------- */

/* argv from a command line split on blanks (no shell). */
static int
split(char *s, char **argv, int max)
{
	char *save = NULL, *t;
	int n = 0;

	for (t = strtok_r(s, " \t", &save); t && n < max - 1;
	    t = strtok_r(NULL, " \t", &save))
		argv[n++] = t;
	argv[n] = NULL;
	return n;
}

/* Run argv (in a transient unit under systemd), its stdout into out (may
 * be NULL; cut at its cap); the exit status or -1. */
static int
run_cmd(char *const argv[], struct buf *out)
{
	struct transient_opts o;
	char *text = NULL;
	int status;

	memset(&o, 0, sizeof o);
	o.description = "agentd: a reboot or reprovision job's command";
	if (transient_capture(argv, &o, 1 << 20, 0, out ? &text : NULL,
	    &status) == -1)
		return -1;
	if (out && text)
		buf_add_cut(out, text, strlen(text));
	free(text);
	return status;
}

static void
do_reboot(struct jobs *j, struct aclient *a, int64_t id, const char *note)
{
	char cmd[256], *argv[16];

	/* The result goes first: after the reboot nobody would send it. */
	job_finish(j, a, id, json_pack("{s:s, s:s, s:i}", "status", "done", "error",
	    note, "exit_code", 0));
	snprintf(cmd, sizeof cmd, "%s", j->c->reboot_command);
	if (split(cmd, argv, 16) == 0)
		return;
	log_info("job %" PRId64 ": %s; running %s", id, note,
	    j->c->reboot_command);
	if (run_cmd(argv, NULL) != 0)
		log_warnx("job %" PRId64 ": %s failed", id, j->c->reboot_command);
}

/* UEFI: the first network boot entry becomes BootNext. */
static void
do_reprovision(struct jobs *j, struct aclient *a, int64_t id)
{
	char path[PATH_MAX], entry[5] = "", note[160], *line, *save = NULL;
	char *argv[4];
	struct buf out;

	if (inventory_path(path, sizeof path, j->c->inventory_root,
	    "/sys/firmware/efi") == -1 || access(path, F_OK) == -1) {
		do_reboot(j, a, id, "BIOS: rebooting; the boot order must put "
		    "the network first");
		return;
	}
	buf_init(&out, 1 << 20);
	argv[0] = (char *)j->c->efibootmgr;
	argv[1] = NULL;
	if (run_cmd(argv, &out) == 0 && out.data)
		for (line = strtok_r(out.data, "\n", &save); line && !entry[0];
		    line = strtok_r(NULL, "\n", &save))
			if (strncmp(line, "Boot", 4) == 0 && strlen(line) > 9 &&
			    strspn(line + 4, "0123456789ABCDEFabcdef") == 4 &&
			    (strcasestr(line, "pxe") || strcasestr(line, "network") ||
			    strcasestr(line, "http") || strcasestr(line, "ipv4")))
				snprintf(entry, sizeof entry, "%.4s", line + 4);
	buf_free(&out);
	if (entry[0] == '\0') {
		job_finish(j, a, id, json_pack("{s:s, s:s}", "status", "failed",
		    "error", "UEFI: no network boot entry in efibootmgr's list"));
		return;
	}
	argv[1] = "--bootnext";
	argv[2] = entry;
	argv[3] = NULL;
	if (run_cmd(argv, NULL) != 0) {
		job_finish(j, a, id, json_pack("{s:s, s:s}", "status", "failed",
		    "error", "efibootmgr --bootnext failed"));
		return;
	}
	snprintf(note, sizeof note, "UEFI: BootNext = Boot%s (network); "
	    "rebooting", entry);
	do_reboot(j, a, id, note);
}

static void
do_inventory(struct jobs *j, struct aclient *a, int64_t id)
{
	char err[256];
	json_t *inv;
	long code;

	if (agent_inventory(j->c, 1, &inv) == -1) {
		job_finish(j, a, id, json_pack("{s:s, s:s}", "status", "failed",
		    "error", "cannot collect the inventory"));
		return;
	}
	code = aclient_call(a, "PUT", "/agent/v1/inventory", inv, 30000, NULL,
	    err, sizeof err);
	json_decref(inv);
	job_finish(j, a, id, code == 200 ? json_pack("{s:s, s:i}", "status", "done",
	    "exit_code", 0) : json_pack("{s:s, s:s}", "status", "failed",
	    "error", "the inventory did not reach bastion"));
}

void
jobs_handle(struct jobs *j, const json_t *job)
{
	const json_t *jid = json_object_get(job, "id");
	const char *text = json_string_value(json_object_get(job, "envelope"));
	const char *sig = json_string_value(json_object_get(job, "sig"));
	const char *key = json_string_value(json_object_get(job, "key_id"));
	struct aclient *a;
	struct envelope e;
	enum envelope_err err;
	char why[PATH_MAX + 512];
	int64_t id;

	if (!json_is_integer(jid) || json_integer_value(jid) <= 0)
		return;
	id = json_integer_value(jid);
	if ((a = aclient_new(j->c, 1)) == NULL)
		return;
	pthread_mutex_lock(&j->mu);
	nonce_cache_prune(&j->nonces, time(NULL));
	err = envelope_verify(j->s->keys, j->s->nkeys, key, text, sig,
	    j->s->agent_id, time(NULL), &j->nonces, &e);
	if (err == ENV_OK && e.job_id != id) {
		envelope_clear(&e);
		err = ENV_MALFORMED;
	}
	if (err == ENV_OK && nonce_cache_add(&j->nonces, e.nonce, e.not_after)
	    == -1) {
		envelope_clear(&e);
		err = ENV_MALFORMED;
	}
	/* Remembered before it runs: a crash cannot make it run twice. A
	 * nonce that cannot be kept could be replayed after a restart, so
	 * the job is refused. */
	if (err == ENV_OK && nonce_cache_save(&j->nonces, j->nonce_path) == -1) {
		log_warn("cannot save %s", j->nonce_path);
		envelope_clear(&e);
		snprintf(why, sizeof why, "cannot record the job's nonce in %s "
		    "(it could be replayed after a restart): not run",
		    j->nonce_path);
		err = ENV_MALFORMED;
	} else if (err != ENV_OK)
		snprintf(why, sizeof why, "signature check: %s",
		    envelope_err_str(err));
	pthread_mutex_unlock(&j->mu);
	if (err != ENV_OK) {
		refuse(j, a, id, why);
		goto out;
	}
	if (!agent_accepts(j->c, e.kind)) {
		snprintf(why, sizeof why, "local policy: this node does not accept "
		    "%s jobs (accept = %s in %s)", e.kind, j->c->accept_text,
		    j->c->path);
		refuse(j, a, id, why);
		envelope_clear(&e);
		goto out;
	}
	log_info("job %" PRId64 ": %s accepted (signed, nonce %s)", id, e.kind,
	    e.nonce);
	if (strcmp(e.kind, "exec") == 0) {
		thread_start(j, a, id, e.args, "exec", transient_on() ?
		    unit_thread : exec_thread);
		e.args = NULL;	/* the thread's */
	} else if (strcmp(e.kind, "container") == 0) {
		thread_start(j, a, id, e.args, "container", container_thread);
		e.args = NULL;
	} else if (strcmp(e.kind, "guest") == 0) {
		thread_start(j, a, id, e.args, "guest", transient_on() ?
		    unit_thread : guest_thread);
		e.args = NULL;
	} else if (strcmp(e.kind, "reboot") == 0) {
		do_reboot(j, a, id, "rebooting");
	} else if (strcmp(e.kind, "reprovision") == 0) {
		do_reprovision(j, a, id);
	} else if (strcmp(e.kind, "inventory") == 0) {
		do_inventory(j, a, id);
	}
	envelope_clear(&e);
out:
	aclient_free(a);
}

json_t *
agent_heartbeat_json(struct jobs *j)
{
	struct sysinfo si;
	struct statvfs vfs;
	double load[3] = { 0, 0, 0 };
	json_t *o;

	getloadavg(load, 3);
	o = json_pack("{s:s, s:[f, f, f], s:i}", "version", BASTION_VERSION,
	    "load", load[0], load[1], load[2], "running_jobs", jobs_running(j));
	if (sysinfo(&si) == 0) {
		json_object_set_new(o, "uptime_s", json_integer(si.uptime));
		json_object_set_new(o, "memory", json_pack("{s:I, s:I}",
		    "total_bytes", (json_int_t)si.totalram * si.mem_unit,
		    "free_bytes", (json_int_t)si.freeram * si.mem_unit));
	}
	if (statvfs("/", &vfs) == 0)
		json_object_set_new(o, "disks", json_pack("[{s:s, s:I, s:I}]",
		    "mount", "/", "size_bytes",
		    (json_int_t)(vfs.f_blocks * vfs.f_frsize), "free_bytes",
		    (json_int_t)(vfs.f_bavail * vfs.f_frsize)));
	if (o)
		health_add(j->c, o);
	return o;
}
#endif /* AGENTD_NO_CURL */
