/* container.c — jobs of kind "container" (DESIGN §12): one action on one
 * container of the node's engine, on a thread of its own like exec.
 *
 * args: {action, ref} and, per action: stop/restart {timeout: seconds},
 * kill {signal: "TERM"}, remove {force, volumes}, logs {tail, since,
 * follow, timestamps, limit: seconds a follow may last}, exec {argv,
 * limit: seconds}. The ref is checked again here whatever bastion said.
 * Output (logs, exec, inspect) is streamed as job output chunks; exec's
 * result carries the container process's exit code. inspect's env values
 * that look like secrets are masked before they leave the node. */
#ifndef AGENTD_NO_CURL	/* the discovery image has no Docker to talk to */
#define LOG_SUBSYS "container"
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "b64.h"
#include "http1.h"
#include "buf.h"
#include "clock.h"
#include "container.h"
#include "log.h"

#define CALL_MS		30000
#define ONE_MAX		(4 * 1024 * 1024)
#define SEND_MS		250
#define SEND_BYTES	(128 * 1024)
#define FOLLOW_DEFAULT	3600
#define EXEC_DEFAULT	600

/* A streamed answer to job output: the engine's multiplexed frames
 * (8-byte header: stream, 0, 0, 0, big-endian size) or, for a TTY
 * container, raw bytes. */
struct relay {
	struct aclient		*a;
	int64_t			 id;
	struct job_output	*out;
	int			 raw;
	unsigned char		 hdr[8];
	size_t			 hlen;
	uint32_t		 left;		/* of the current frame */
	const char		*stream;
	int64_t			 last_send;
	/* Frames of one stream in a row become one chunk. */
	struct buf		 cur;
	const char		*cur_stream;
};

static void
relay_flush(struct relay *r)
{
	if (r->cur.len > 0)
		job_output_add(r->out, r->cur_stream, r->cur.data, r->cur.len);
	r->cur.len = 0;
}

static void
relay_emit(struct relay *r, const char *stream, const char *p, size_t n)
{
	if (r->cur_stream != stream || r->cur.len + n > r->cur.max)
		relay_flush(r);
	r->cur_stream = stream;
	if (n > r->cur.max)
		job_output_add(r->out, stream, p, n);
	else if (buf_add(&r->cur, p, n) == -1)
		job_output_add(r->out, stream, p, n);	/* out of memory */
}

static void
relay_send(struct relay *r, int force)
{
	int64_t now = clock_mono_ms();

	if (!force && now - r->last_send < SEND_MS &&
	    r->out->pending_bytes + (long)r->cur.len < SEND_BYTES)
		return;
	relay_flush(r);
	job_output_send(r->a, r->id, r->out, 0);
	r->last_send = now;
}

static int
relay_sink(void *ctx, const char *p, size_t n)
{
	struct relay *r = ctx;
	size_t take;

	if (r->raw) {
		relay_emit(r, "stdout", p, n);
		relay_send(r, 0);
		return 0;
	}
	while (n > 0) {
		if (r->left == 0) {
			take = sizeof r->hdr - r->hlen < n ? sizeof r->hdr -
			    r->hlen : n;
			memcpy(r->hdr + r->hlen, p, take);
			r->hlen += take;
			p += take;
			n -= take;
			if (r->hlen < sizeof r->hdr)
				break;
			r->hlen = 0;
			r->stream = r->hdr[0] == 2 ? "stderr" : "stdout";
			r->left = (uint32_t)r->hdr[4] << 24 |
			    (uint32_t)r->hdr[5] << 16 | (uint32_t)r->hdr[6] << 8 |
			    r->hdr[7];
			continue;
		}
		take = r->left < n ? r->left : n;
		relay_emit(r, r->stream, p, take);
		r->left -= (uint32_t)take;
		p += take;
		n -= take;
	}
	relay_send(r, 0);
	return 0;
}

static int
relay_tick(void *ctx)
{
	struct relay *r = ctx;

	if (json_array_size(r->out->pending) > 0 || r->cur.len > 0)
		relay_send(r, 1);
	return 0;
}

static json_t *
failed(const char *fmt, const char *what)
{
	return json_pack("{s:s, s:s+, s:i}", "status", "failed", "error", fmt,
	    what, "exit_code", 1);
}

static json_t *
done(const char *note)
{
	return note ? json_pack("{s:s, s:s, s:i}", "status", "done", "error",
	    note, "exit_code", 0) : json_pack("{s:s, s:i}", "status", "done",
	    "exit_code", 0);
}

/* The engine's answer to an action: 2xx done, 304 done with the note
 * (nothing to do), anything else failed with the engine's message. */
static json_t *
engine_result(long code, const char *err, const char *note304)
{
	if (code >= 200 && code < 300)
		return done(NULL);
	if (code == 304)
		return done(note304);
	if (code == 0)
		return failed("the engine did not answer: ", err);
	return failed("", err);
}

static json_t *
simple_action(struct docker *d, const char *action, const char *ref,
    const json_t *args)
{
	char path[512], err[512], sig[16] = "";
	const char *s;
	json_t *reply = NULL;
	long code, t;
	size_t i;

	if (strcmp(action, "stop") == 0 || strcmp(action, "restart") == 0) {
		t = json_is_integer(json_object_get(args, "timeout")) ?
		    (long)json_integer_value(json_object_get(args, "timeout")) :
		    -1;
		if (t > CONTAINER_STOP_MAX)
			t = CONTAINER_STOP_MAX;
		if (t >= 0)
			snprintf(path, sizeof path, "/containers/%s/%s?t=%ld", ref,
			    action, t);
		else
			snprintf(path, sizeof path, "/containers/%s/%s", ref,
			    action);
		code = docker_json(d, "POST", path, NULL, CALL_MS +
		    (t > 0 ? t * 1000 : 10000), ONE_MAX, &reply, err, sizeof err);
		json_decref(reply);
		return engine_result(code, err, strcmp(action, "stop") == 0 ?
		    "already stopped" : NULL);
	}
	if (strcmp(action, "kill") == 0) {
		if ((s = json_string_value(json_object_get(args, "signal"))) ==
		    NULL)
			s = "KILL";
		i = strlen(s);
		if (i == 0 || i >= sizeof sig || strspn(s,
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != i)
			return failed("kill: a signal is a name or number like "
			    "TERM or 9, not ", s);
		memcpy(sig, s, i + 1);
		snprintf(path, sizeof path, "/containers/%s/kill?signal=%s", ref,
		    sig);
	} else if (strcmp(action, "remove") == 0) {
		snprintf(path, sizeof path, "/containers/%s?force=%d&v=%d", ref,
		    json_is_true(json_object_get(args, "force")),
		    json_is_true(json_object_get(args, "volumes")));
		code = docker_json(d, "DELETE", path, NULL, CALL_MS, ONE_MAX,
		    &reply, err, sizeof err);
		json_decref(reply);
		return engine_result(code, err, NULL);
	} else {	/* start pause unpause */
		snprintf(path, sizeof path, "/containers/%s/%s", ref, action);
	}
	code = docker_json(d, "POST", path, NULL, CALL_MS, ONE_MAX, &reply, err,
	    sizeof err);
	json_decref(reply);
	return engine_result(code, err, strcmp(action, "start") == 0 ?
	    "already running" : NULL);
}

/* inspect: the engine's JSON with the env masked, as stdout. */
static json_t *
inspect(struct docker *d, struct relay *r, const char *ref)
{
	char path[512], err[512], *text;
	json_t *in = NULL, *res;
	long code;

	snprintf(path, sizeof path, "/containers/%s/json", ref);
	code = docker_json(d, "GET", path, NULL, CALL_MS, ONE_MAX, &in, err,
	    sizeof err);
	if (code != 200) {
		json_decref(in);
		return engine_result(code, err, NULL);
	}
	container_env_mask(json_object_get(json_object_get(in, "Config"),
	    "Env"));
	if ((text = json_dumps(in, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL) {
		json_decref(in);
		return failed("out of memory", "");
	}
	job_output_add(r->out, "stdout", text, strlen(text));
	job_output_add(r->out, "stdout", "\n", 1);
	res = done(NULL);
	free(text);
	json_decref(in);
	return res;
}

/* Whether the container runs with a TTY (its output is then raw). 0 no,
 * 1 yes, -1 with *res set (no such container, no engine). */
static int
has_tty(struct docker *d, const char *ref, json_t **res)
{
	char path[512], err[512];
	json_t *in = NULL;
	long code;
	int tty;

	snprintf(path, sizeof path, "/containers/%s/json", ref);
	code = docker_json(d, "GET", path, NULL, CALL_MS, ONE_MAX, &in, err,
	    sizeof err);
	if (code != 200) {
		json_decref(in);
		*res = engine_result(code, err, NULL);
		return -1;
	}
	tty = json_is_true(json_object_get(json_object_get(in, "Config"),
	    "Tty"));
	json_decref(in);
	return tty;
}

static long
limit_of(const json_t *args, long def)
{
	const json_t *v = json_object_get(args, "limit");
	long n = json_is_integer(v) ? (long)json_integer_value(v) : def;

	return n < 1 ? def : n > CONTAINER_RUN_MAX ? CONTAINER_RUN_MAX : n;
}

static json_t *
logs(struct docker *d, struct relay *r, const char *ref, const json_t *args)
{
	struct docker_stream st = { relay_sink, relay_tick, r };
	const json_t *tail = json_object_get(args, "tail");
	const json_t *since = json_object_get(args, "since");
	int follow = json_is_true(json_object_get(args, "follow"));
	char path[640], tailv[24] = "all", err[512];
	long code, limit = limit_of(args, FOLLOW_DEFAULT);
	json_t *res = NULL;
	struct buf none;
	int tty;

	if ((tty = has_tty(d, ref, &res)) == -1)
		return res;
	r->raw = tty;
	if (json_is_integer(tail) && json_integer_value(tail) >= 0)
		snprintf(tailv, sizeof tailv, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(tail));
	snprintf(path, sizeof path, "/containers/%s/logs?stdout=1&stderr=1"
	    "&follow=%d&timestamps=%d&tail=%s&since=%" JSON_INTEGER_FORMAT, ref,
	    follow, json_is_true(json_object_get(args, "timestamps")), tailv,
	    json_is_integer(since) && json_integer_value(since) > 0 ?
	    json_integer_value(since) : (json_int_t)0);
	buf_init(&none, 1);
	code = docker_call(d, "GET", path, NULL, follow ? limit * 1000 :
	    CALL_MS * 10, &none, &st, err, sizeof err);
	buf_free(&none);
	relay_send(r, 1);
	if (code == 200 && err[0] && follow)
		return done("the follow's time was up");
	if (code == 200 && err[0])
		return failed("the log was cut: ", err);
	return engine_result(code, err, NULL);
}

static json_t *
exec_in(struct docker *d, struct relay *r, const char *ref,
    const json_t *args)
{
	struct docker_stream st = { relay_sink, relay_tick, r };
	const json_t *argv = json_object_get(args, "argv"), *v;
	char path[512], err[512], eid[80];
	json_t *body, *reply = NULL, *res;
	long code, limit = limit_of(args, EXEC_DEFAULT);
	struct buf none;
	size_t i;

	if (!json_is_array(argv) || json_array_size(argv) == 0)
		return failed("exec: argv is required", "");
	json_array_foreach(argv, i, v)
		if (!json_is_string(v))
			return failed("exec: argv holds strings only", "");
	body = json_pack("{s:b, s:b, s:b, s:O}", "AttachStdout", 1,
	    "AttachStderr", 1, "Tty", 0, "Cmd", argv);
	snprintf(path, sizeof path, "/containers/%s/exec", ref);
	code = docker_json(d, "POST", path, body, CALL_MS, ONE_MAX, &reply, err,
	    sizeof err);
	json_decref(body);
	if (code != 201 || !json_is_string(json_object_get(reply, "Id")) ||
	    json_string_length(json_object_get(reply, "Id")) >= sizeof eid) {
		json_decref(reply);
		return code == 201 ? failed("exec: the engine named no exec", "") :
		    engine_result(code, err, NULL);
	}
	snprintf(eid, sizeof eid, "%s", json_string_value(json_object_get(reply,
	    "Id")));
	json_decref(reply);
	reply = NULL;
	if (!container_ref_valid(eid))
		return failed("exec: a strange exec id from the engine", "");
	snprintf(path, sizeof path, "/exec/%s/start", eid);
	buf_init(&none, 1);
	code = docker_call(d, "POST", path, "{\"Detach\":false,\"Tty\":false}",
	    limit * 1000, &none, &st, err, sizeof err);
	buf_free(&none);
	relay_send(r, 1);
	if (code != 200)
		return engine_result(code, err, NULL);
	if (err[0])
		return failed("exec: ", err);	/* its time was up */
	snprintf(path, sizeof path, "/exec/%s/json", eid);
	code = docker_json(d, "GET", path, NULL, CALL_MS, ONE_MAX, &reply, err,
	    sizeof err);
	if (code != 200 || !json_is_integer(json_object_get(reply,
	    "ExitCode"))) {
		json_decref(reply);
		return failed("exec: no exit code from the engine: ", err);
	}
	res = json_pack("{s:s, s:I}", "status", "done", "exit_code",
	    json_integer_value(json_object_get(reply, "ExitCode")));
	json_decref(reply);
	return res;
}

/* --- exec with a TTY over a stream (bastion/stream.c) ------------------- */

struct tty {
	const struct agent_conf	*c;
	struct docker		*d;
	int			 fd;		/* the process's TTY */
	char			 eid[80];
	struct astream		*st;		/* the stream */
	volatile sig_atomic_t	 done;
};

static void
tty_resize(struct tty *t, long rows, long cols)
{
	char path[160], err[256];
	json_t *reply = NULL;

	if (rows < 1 || cols < 1 || rows > 1000 || cols > 1000)
		return;
	snprintf(path, sizeof path, "/exec/%s/resize?h=%ld&w=%ld", t->eid, rows,
	    cols);
	docker_json(t->d, "POST", path, NULL, CALL_MS, ONE_MAX, &reply, err,
	    sizeof err);
	json_decref(reply);
}

static int
write_all(int fd, const unsigned char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if (h1_wait(fd, POLLOUT, (long)clock_mono_ms() + 10000,
		    &agent_stop) == -1)
			return -1;
		if ((w = send(fd, p, n, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The operator's keys (and resizes) into the TTY, until the stream or
 * the process ends. */
static void *
tty_input(void *arg)
{
	struct tty *t = arg;
	struct aclient *a = astream_client(t->st);
	char path[160], err[256];
	unsigned char *raw;
	const char *data;
	json_t *reply, *rs;
	size_t len;
	long code;

	snprintf(path, sizeof path, "/agent/v1/streams/%s/input?wait=20",
	    t->st->sid);
	while (a && !t->done && !agent_stop) {
		reply = NULL;
		code = aclient_call(a, "GET", path, NULL, 35000, &reply, err,
		    sizeof err);
		if (code != 200) {
			json_decref(reply);
			if (code == 0 && !t->done) {
				struct timespec ts = { 1, 0 };

				nanosleep(&ts, NULL);	/* bastion away: again */
				continue;
			}
			break;		/* the stream is gone */
		}
		if ((rs = json_object_get(reply, "resize")) != NULL)
			tty_resize(t, (long)json_integer_value(json_array_get(rs,
			    0)), (long)json_integer_value(json_array_get(rs, 1)));
		data = json_string_value(json_object_get(reply, "data"));
		if (data && *data && (raw = b64_decode(data, 1 << 20, &len)) !=
		    NULL) {
			if (write_all(t->fd, raw, len) == -1)
				t->done = 1;
			free(raw);
		}
		if (json_is_true(json_object_get(reply, "closed")) ||
		    json_is_true(json_object_get(reply, "ended")))
			t->done = 1;
		json_decref(reply);
	}
	t->done = 1;
	shutdown(t->fd, SHUT_RDWR);	/* the output loop sees the end */
	aclient_free(a);
	return NULL;
}

static json_t *
exec_tty(struct docker *d, struct relay *r, const char *ref,
    const json_t *args, const struct agent_conf *c)
{
	const json_t *argv = json_object_get(args, "argv"), *v;
	char path[512], err[512], buf[32768];
	json_t *body, *reply = NULL, *res, *ec = NULL;
	struct aclient *sa = NULL;	/* to the stream's bastion */
	struct astream st;
	struct tty t;
	struct pollfd pf;
	pthread_t in;
	int64_t deadline = clock_mono_ms() + limit_of(args, EXEC_DEFAULT) * 1000;
	long code;
	ssize_t n;
	size_t i;
	int closed = 0, started = 0;

	if (astream_parse(&st, c, args, err, sizeof err) == -1)
		return failed("exec: a TTY needs the stream bastion made: ",
		    err);
	if (!json_is_array(argv) || json_array_size(argv) == 0)
		return failed("exec: argv is required", "");
	json_array_foreach(argv, i, v)
		if (!json_is_string(v))
			return failed("exec: argv holds strings only", "");
	memset(&t, 0, sizeof t);
	t.c = c;
	t.d = d;
	t.fd = -1;
	t.st = &st;
	body = json_pack("{s:b, s:b, s:b, s:b, s:b, s:O, s:[s]}", "AttachStdin",
	    1, "AttachStdout", 1, "AttachStderr", 1, "Tty", 1, "OpenStdin", 1,
	    "Cmd", argv, "Env", "TERM=xterm");
	snprintf(path, sizeof path, "/containers/%s/exec", ref);
	code = docker_json(d, "POST", path, body, CALL_MS, ONE_MAX, &reply, err,
	    sizeof err);
	json_decref(body);
	if (code != 201 || !json_is_string(json_object_get(reply, "Id")) ||
	    !container_ref_valid(json_string_value(json_object_get(reply,
	    "Id")))) {
		json_decref(reply);
		res = code == 201 ? failed("exec: the engine named no exec", "") :
		    engine_result(code, err, NULL);
		goto tell;
	}
	snprintf(t.eid, sizeof t.eid, "%s", json_string_value(json_object_get(
	    reply, "Id")));
	json_decref(reply);
	reply = NULL;
	snprintf(path, sizeof path, "/exec/%s/start", t.eid);
	if ((t.fd = docker_hijack(d, path, "{\"Detach\":false,\"Tty\":true}",
	    err, sizeof err)) == -1) {
		res = failed("exec: ", err);
		goto tell;
	}
	tty_resize(&t, (long)json_integer_value(json_object_get(args, "rows")),
	    (long)json_integer_value(json_object_get(args, "cols")));
	/* The TTY is there: now the stream, wherever it is. */
	if (astream_reach(&st, err, sizeof err) == -1) {
		res = failed(err, "");
		goto unreached;
	}
	if ((sa = astream_client(&st)) == NULL) {
		res = failed("exec: cannot make a client", "");
		goto unreached;
	}
	if (pthread_create(&in, NULL, tty_input, &t) != 0) {
		res = failed("exec: cannot start a thread", "");
		goto tell;
	}
	started = 1;
	while (!closed && !agent_stop && clock_mono_ms() < deadline) {
		pf.fd = t.fd;
		pf.events = POLLIN;
		pf.revents = 0;
		if (poll(&pf, 1, 250) <= 0)
			continue;
		if ((n = recv(t.fd, buf, sizeof buf, 0)) == 0)
			break;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break;
		}
		astream_out(sa, &st, buf, (size_t)n, 0, NULL, &closed);
	}
	t.done = 1;
	snprintf(path, sizeof path, "/exec/%s/json", t.eid);
	code = docker_json(d, "GET", path, NULL, CALL_MS, ONE_MAX, &reply, err,
	    sizeof err);
	if (code == 200 && json_is_integer(json_object_get(reply, "ExitCode")) &&
	    !json_is_true(json_object_get(reply, "Running"))) {
		ec = json_object_get(reply, "ExitCode");
		res = json_pack("{s:s, s:O}", "status", "done", "exit_code", ec);
	} else {
		res = closed ? done("the operator left; the process goes on "
		    "until its input ends") : failed("exec: the TTY ended "
		    "early: ", agent_stop ? "agentd stopping" : "time was up");
	}
tell:
	/* Its end, to the operator (and the input poll). */
	if (sa == NULL && astream_reach(&st, err, sizeof err) == 0)
		sa = astream_client(&st);
	if (sa != NULL)		/* else the job's error ends it, by bastion */
		astream_out(sa, &st, "", 0, 1, ec, &closed);
unreached:
	if (started)
		pthread_join(in, NULL);
	if (t.fd != -1)
		close(t.fd);
	aclient_free(sa);
	json_decref(reply);
	return res;
}

void *
container_thread(void *arg)
{
	struct job_thread *t = arg;
	const struct agent_conf *c = job_conf(t);
	const char *action = json_string_value(json_object_get(t->args,
	    "action"));
	const char *ref = json_string_value(json_object_get(t->args, "ref"));
	struct job_output out = { json_array(), 0, 0, 0 };
	struct relay r;
	struct docker *d = NULL;
	json_t *res;

	memset(&r, 0, sizeof r);
	buf_init(&r.cur, SEND_BYTES);
	r.id = t->id;
	r.out = &out;
	if ((r.a = aclient_new(c, 1)) == NULL)
		goto out;
	if (!container_action_known(action))
		res = failed("container: unknown action ", action ? action : "");
	else if (!container_ref_valid(ref))
		res = failed("container: refs are ^[a-zA-Z0-9][a-zA-Z0-9_.-]"
		    "{0,127}$", "");
	else if (c->docker_socket[0] == '\0')
		res = failed("this node has no docker_socket in its agentd.conf",
		    "");
	else if ((d = docker_new(c->docker_socket)) == NULL)
		res = failed("out of memory", "");
	else {
		log_info("job %" PRId64 ": container %s %s", t->id, action, ref);
		job_output_send(r.a, t->id, &out, 1);	/* it runs */
		if (strcmp(action, "inspect") == 0)
			res = inspect(d, &r, ref);
		else if (strcmp(action, "logs") == 0)
			res = logs(d, &r, ref, t->args);
		else if (strcmp(action, "exec") == 0 && json_is_true(
		    json_object_get(t->args, "tty")))
			res = exec_tty(d, &r, ref, t->args, c);
		else if (strcmp(action, "exec") == 0)
			res = exec_in(d, &r, ref, t->args);
		else
			res = simple_action(d, action, ref, t->args);
	}
	if (res == NULL)
		res = failed("out of memory", "");
	relay_flush(&r);
	json_object_set(res, "chunks", out.pending);
	if (out.truncated)
		json_object_set_new(res, "error", json_string("output truncated: "
		    "bastion was unreachable for too long"));
	job_finish(t->j, r.a, t->id, res);
out:
	docker_free(d);
	buf_free(&r.cur);
	aclient_free(r.a);
	json_decref(out.pending);
	job_thread_done(t);
	return NULL;
}
#endif /* AGENTD_NO_CURL */
