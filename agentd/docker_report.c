/* docker_report.c — the container snapshot (DESIGN §12) and the thread
 * that pushes it to POST /agent/v1/reports/docker: on every change it
 * sees (the list is read every DOCKER_POLL_MS) and at least once per
 * heartbeat interval. Secret-looking env values are masked here, before
 * anything leaves the node; an engine that does not answer is reported
 * as unreachable, never as "no containers". */
#ifndef AGENTD_NO_CURL	/* the discovery image has no Docker to talk to */
#define LOG_SUBSYS "docker"
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "buf.h"
#include "clock.h"
#include "container.h"
#include "log.h"
#include "secret.h"

#define DOCKER_POLL_MS		2000
#define DOCKER_RETRY_MS		5000	/* after a report bastion did not take */
#define DOCKER_LIST_MAX		(32 * 1024 * 1024)
#define DOCKER_ONE_MAX		(4 * 1024 * 1024)
#define DOCKER_CALL_MS		15000
#define DOCKER_REPORT_MAX	(16 * 1024 * 1024)	/* what bastion takes */
#define DOCKER_CONTAINERS_MAX	10000			/* in one report */

volatile sig_atomic_t agent_interval_s = 30;
volatile sig_atomic_t agent_heard;

static const char *
jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static json_int_t
jint(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* "(healthy)" in the list's Status: the health part of the change
 * fingerprint without an inspect per container. */
static const char *
status_health(const char *status)
{
	if (strstr(status, "(unhealthy)"))
		return "unhealthy";
	if (strstr(status, "(healthy)"))
		return "healthy";
	if (strstr(status, "(health: starting)"))
		return "starting";
	return "";
}

/* What a change is: a container that came or went, or changed name,
 * image, state or health. */
static void
list_fingerprint(const json_t *list, char out[SECRET_HEXLEN])
{
	struct buf b;
	const json_t *c;
	size_t i;

	buf_init(&b, DOCKER_LIST_MAX);
	json_array_foreach(list, i, c)
		if (buf_printf(&b, "%s|%s|%s|%s|%s\n", jstr(c, "Id"),
		    json_string_value(json_array_get(json_object_get(c, "Names"),
		    0)) ? json_string_value(json_array_get(json_object_get(c,
		    "Names"), 0)) : "", jstr(c, "Image"), jstr(c, "State"),
		    status_health(jstr(c, "Status"))) == -1)
			break;
	agent_sha256_hex(b.data ? b.data : "", b.len, out);
	buf_free(&b);
}

static json_t *
ports_json(const json_t *ports)
{
	json_t *out = json_array(), *p;
	size_t i;

	json_array_foreach(ports, i, p) {
		json_t *o = json_pack("{s:s, s:I, s:s}", "ip", jstr(p, "IP"),
		    "private_port", jint(p, "PrivatePort"), "type",
		    jstr(p, "Type"));

		if (json_is_integer(json_object_get(p, "PublicPort")))
			json_object_set_new(o, "public_port", json_integer(
			    jint(p, "PublicPort")));
		json_array_append_new(out, o);
	}
	return out;
}

static json_t *
mounts_json(const json_t *mounts)
{
	json_t *out = json_array(), *m;
	size_t i;

	json_array_foreach(mounts, i, m)
		json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:s, "
		    "s:b}", "type", jstr(m, "Type"), "name", jstr(m, "Name"),
		    "source", jstr(m, "Source"), "destination",
		    jstr(m, "Destination"), "mode", jstr(m, "Mode"), "rw",
		    json_is_true(json_object_get(m, "RW"))));
	return out;
}

static json_t *
networks_json(const json_t *nets)
{
	json_t *out = json_array(), *n;
	const char *k;

	json_object_foreach((json_t *)nets, k, n)
		json_array_append_new(out, json_pack("{s:s, s:s, s:I, s:s, s:s}",
		    "name", k, "ip", jstr(n, "IPAddress"), "prefix_len",
		    jint(n, "IPPrefixLen"), "gateway", jstr(n, "Gateway"), "mac",
		    jstr(n, "MacAddress")));
	return out;
}

/* Labels as they are, strings only. */
static json_t *
labels_json(const json_t *labels)
{
	json_t *out = json_object(), *v;
	const char *k;

	json_object_foreach((json_t *)labels, k, v)
		if (json_is_string(v))
			json_object_set(out, k, v);
	return out;
}

/* --- what the reports keep between snapshots ----------------------------- */

/* Per container the last list showed: its JSON from the inspect, kept as
 * text until the list shows it changed (a state change, a restart,
 * health, a new name or image make a new one), and its latest stats
 * sample. Plain C and malloc: nothing of jansson outlives a snapshot. */
struct dentry {
	char		 id[65];
	char		 key[SECRET_HEXLEN];	/* of the list line text is for */
	char		*text;		/* "{...": no status, no stats, not
					 * closed; NULL: no inspect yet */
	size_t		 len;
	json_int_t	 mem, limit;	/* the latest sample */
	double		 cpu;
	json_int_t	 prev_total, prev_system;	/* its CPU counters */
	unsigned	 running:1, stats:1, cpu_known:1, prev:1, seen:1;
};

struct dcache {
	struct dentry	*e;
	size_t		 n, alloc;
	size_t		 cursor;	/* the next entry to sample */
};

static struct dentry *
cache_get(struct dcache *cache, const char *id)
{
	struct dentry *e;
	size_t i, alloc;

	for (i = 0; i < cache->n; i++)
		if (strcmp(cache->e[i].id, id) == 0)
			return &cache->e[i];
	if (strlen(id) >= sizeof cache->e->id ||
	    cache->n >= DOCKER_CONTAINERS_MAX)
		return NULL;
	if (cache->n == cache->alloc) {
		alloc = cache->alloc ? cache->alloc * 2 : 64;
		if ((e = reallocarray(cache->e, alloc, sizeof *e)) == NULL)
			return NULL;
		cache->e = e;
		cache->alloc = alloc;
	}
	e = &cache->e[cache->n++];
	memset(e, 0, sizeof *e);
	snprintf(e->id, sizeof e->id, "%s", id);
	return e;
}

/* Drop the containers the last list did not show. */
static void
cache_prune(struct dcache *cache)
{
	size_t i, j;

	for (i = j = 0; i < cache->n; i++) {
		if (!cache->e[i].seen) {
			free(cache->e[i].text);
			if (cache->cursor > j)
				cache->cursor--;
			continue;
		}
		if (i != j)
			cache->e[j] = cache->e[i];
		j++;
	}
	cache->n = j;
	if (cache->cursor >= cache->n)
		cache->cursor = 0;
	if (cache->n == 0) {
		free(cache->e);
		cache->e = NULL;
		cache->alloc = 0;
	}
}

static void
cache_free(struct dcache *cache)
{
	size_t i;

	for (i = 0; i < cache->n; i++)
		free(cache->e[i].text);
	free(cache->e);
	memset(cache, 0, sizeof *cache);
}

/* j's compact text appended to out; skip leading bytes of it left out
 * (1: an object's "{", to extend another). 0 or -1. */
static int
add_json(struct buf *out, const json_t *j, size_t skip)
{
	size_t n = j ? json_dumpb(j, NULL, 0, JSON_COMPACT) : 0;
	char *text;
	int rc;

	if (n <= skip || (text = malloc(n)) == NULL)
		return -1;
	rc = json_dumpb(j, text, n, JSON_COMPACT) == n ?
	    buf_add(out, text + skip, n - skip) : -1;
	free(text);
	return rc;
}

/* One stats sample into e: memory as the docker CLI counts it (without
 * the inactive page cache), CPU % against this agent's previous sample of
 * the same container (one-shot stats carry no previous one). */
static void
stats_take(struct docker *d, struct dentry *e)
{
	char path[256], err[256];
	struct scratch sc;
	json_t *s, *cpu, *mem, *ms;
	json_int_t total, system, online, usage, inactive;
	long code;

	snprintf(path, sizeof path, "/containers/%s/stats?stream=false"
	    "&one-shot=true", e->id);
	scratch_open(&sc);
	code = docker_json(d, "GET", path, NULL, DOCKER_CALL_MS, DOCKER_ONE_MAX,
	    &s, err, sizeof err);
	if (code != 200)
		goto out;
	cpu = json_object_get(s, "cpu_stats");
	mem = json_object_get(s, "memory_stats");
	ms = json_object_get(mem, "stats");
	total = jint(json_object_get(cpu, "cpu_usage"), "total_usage");
	system = jint(cpu, "system_cpu_usage");
	online = jint(cpu, "online_cpus");
	if (online <= 0)
		online = json_array_size(json_object_get(json_object_get(cpu,
		    "cpu_usage"), "percpu_usage"));
	usage = jint(mem, "usage");
	inactive = json_object_get(ms, "total_inactive_file") ?
	    jint(ms, "total_inactive_file") : jint(ms, "inactive_file");
	if (inactive > 0 && inactive < usage)
		usage -= inactive;
	e->mem = usage;
	e->limit = jint(mem, "limit");
	e->cpu_known = e->prev && system > e->prev_system &&
	    total >= e->prev_total && online > 0;
	if (e->cpu_known)
		e->cpu = (double)(total - e->prev_total) /
		    (double)(system - e->prev_system) * (double)online * 100.0;
	e->prev_total = total;
	e->prev_system = system;
	e->prev = 1;
	e->stats = 1;
out:
	json_decref(s);
	scratch_close(&sc);
}

/* One container of the snapshot: l from the list, its inspect merged
 * in. NULL when it went away between the two. */
static json_t *
container_json(struct docker *d, const json_t *l)
{
	char path[256], err[256];
	const char *id = jstr(l, "Id"), *name;
	json_t *in = NULL, *c = NULL, *st, *cfg, *env, *health;
	long code;

	if (!container_ref_valid(id))
		return NULL;
	snprintf(path, sizeof path, "/containers/%s/json", id);
	code = docker_json(d, "GET", path, NULL, DOCKER_CALL_MS, DOCKER_ONE_MAX,
	    &in, err, sizeof err);
	if (code != 200)
		goto out;
	st = json_object_get(in, "State");
	cfg = json_object_get(in, "Config");
	name = jstr(in, "Name");
	if (*name == '/')
		name++;
	env = json_deep_copy(json_object_get(cfg, "Env"));
	if (!json_is_array(env)) {
		json_decref(env);
		env = json_array();
	}
	container_env_mask(env);
	health = json_object_get(json_object_get(st, "Health"), "Status");
	c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o, "
	    "s:o, s:I, s:O, s:o, s:s, s:s, s:I, s:I, s:b, s:s}",
	    "id", id, "name", name, "image", jstr(l, "Image"),
	    "image_id", jstr(in, "Image"), "command", jstr(l, "Command"),
	    "state", jstr(st, "Status"),
	    "created", jint(l, "Created"),
	    "ports", ports_json(json_object_get(l, "Ports")),
	    "networks", networks_json(json_object_get(json_object_get(in,
	    "NetworkSettings"), "Networks")),
	    "mounts", mounts_json(json_object_get(l, "Mounts")),
	    "labels", labels_json(json_object_get(l, "Labels")),
	    "restart_count", jint(in, "RestartCount"),
	    "health", json_is_string(health) ? health : json_null(),
	    "env", env,
	    "started_at", jstr(st, "StartedAt"),
	    "finished_at", jstr(st, "FinishedAt"),
	    "exit_code", jint(st, "ExitCode"), "pid", jint(st, "Pid"),
	    "oom_killed", json_is_true(json_object_get(st, "OOMKilled")),
	    "restart_policy", jstr(json_object_get(json_object_get(in,
	    "HostConfig"), "RestartPolicy"), "Name"));
out:
	json_decref(in);
	return c;
}

/* e->text from l and its inspect: everything but what moves with time
 * (the status, the stats), left open for them. 0, or -1 (gone, no
 * engine, out of memory) with e->text NULL. */
static int
container_text(struct docker *d, const json_t *l, struct dentry *e)
{
	struct scratch sc;
	struct buf b;
	json_t *c;
	char *t;
	int rc = -1;

	free(e->text);
	e->text = NULL;
	buf_init(&b, DOCKER_ONE_MAX);
	scratch_open(&sc);
	if ((c = container_json(d, l)) != NULL && add_json(&b, c, 0) == 0 &&
	    b.len > 2) {
		b.data[--b.len] = '\0';		/* the closing "}" */
		e->len = b.len;
		e->text = buf_take(&b);
		rc = e->text ? 0 : -1;
		/* Kept until the container changes: no slack (the buffer
		 * doubled to 1 KB for ~600 bytes; 80 KB in 200 entries). */
		if (e->text && (t = realloc(e->text, e->len + 1)) != NULL)
			e->text = t;
	}
	json_decref(c);
	scratch_close(&sc);
	buf_free(&b);
	return rc;
}

/* What closes e's text in this snapshot: the list's status ("Up 3
 * minutes" moves with time) and, running, the latest stats sample. */
static int
add_tail(struct buf *out, const char *status, const struct dentry *e)
{
	json_t *t, *st = NULL;
	int rc;

	if (e->running && e->stats)
		st = json_pack("{s:I, s:I, s:o}", "memory_bytes", e->mem,
		    "memory_limit_bytes", e->limit, "cpu_percent",
		    e->cpu_known && isfinite(e->cpu) ? json_real(e->cpu) :
		    json_null());
	t = json_pack("{s:s, s:o*}", "status", status, "stats", st);
	rc = buf_adds(out, ",") == -1 || add_json(out, t, 1) == -1 ? -1 : 0;
	json_decref(t);
	return rc;
}

static int	rep_stopping(void);

/* What an inspect depends on, as the list shows it: the same key, the
 * same inspect (a state change, a restart, health, a new name or image
 * make a new one). */
static void
list_key(const json_t *l, char out[SECRET_HEXLEN])
{
	char key[4096];
	int n;

	n = snprintf(key, sizeof key, "%s|%s|%s|%s|%s", jstr(l, "Id"),
	    jstr(l, "State"), status_health(jstr(l, "Status")),
	    jstr(l, "Image"), json_string_value(json_array_get(
	    json_object_get(l, "Names"), 0)) ? json_string_value(
	    json_array_get(json_object_get(l, "Names"), 0)) : "");
	if (n < 0)
		n = 0;
	agent_sha256_hex(key, (size_t)n < sizeof key ? (size_t)n :
	    sizeof key - 1, out);
}

/* An engine that is not there or does not answer: said so, with no
 * containers (never "none"). */
static int
engine_down(struct buf *out, int present, const char *why)
{
	json_t *j = json_pack("{s:{s:b, s:b, s:s}, s:[]}", "engine", "present",
	    present, "reachable", 0, "error", why, "containers");
	int rc = add_json(out, j, 0);

	json_decref(j);
	return rc;
}

/* The snapshot (DESIGN §12) as JSON text in out, with the stats sampled
 * so far; *seen says the socket was there before (one that is gone is
 * then an unreachable engine, not an absent one); fp gets the fingerprint
 * of what counts as a change. 1 when the engine answered, 0 when it did
 * not (why says why; so does the snapshot), -1 when there is none (out
 * of memory, larger than bastion takes). */
static int
docker_snapshot(struct docker *d, const char *socket, struct dcache *cache,
    int *seen, char fp[SECRET_HEXLEN], struct buf *out, char *why,
    size_t whylen)
{
	char err[512], key[SECRET_HEXLEN];
	struct scratch sc;
	json_t *list = NULL, *eng, *l;
	struct dentry *e;
	struct stat sb;
	const char *id;
	size_t i;
	long code;
	int rc = -1, first = 1;

	buf_reset(out);
	if (stat(socket, &sb) == -1) {
		/* Gone after it was there: the engine stopped. */
		snprintf(why, whylen, "%s", errno != ENOENT ? strerror(errno) :
		    *seen ? "the engine's socket is gone (the engine stopped)" :
		    "no engine socket");
		snprintf(fp, SECRET_HEXLEN, "absent");
		return engine_down(out, *seen, why) == -1 ? -1 : 0;
	}
	*seen = 1;
	scratch_open(&sc);
	code = docker_json(d, "GET", "/containers/json?all=1", NULL,
	    DOCKER_CALL_MS, DOCKER_LIST_MAX, &list, err, sizeof err);
	if (code != 200 || !json_is_array(list)) {
		agent_sha256_hex(err, strlen(err), fp);
		snprintf(why, whylen, "%s", err);
		rc = engine_down(out, 1, err) == -1 ? -1 : 0;
		goto out;
	}
	list_fingerprint(list, fp);
	eng = json_pack("{s:b, s:b, s:s, s:s}", "present", 1, "reachable", 1,
	    "api_version", docker_api_version(d), "version",
	    docker_engine_version(d));
	rc = buf_adds(out, "{\"engine\":") == -1 || add_json(out, eng, 0) ==
	    -1 || buf_adds(out, ",\"containers\":[") == -1 ? -1 : 0;
	json_decref(eng);
	if (rc == -1)
		goto out;
	for (i = 0; i < cache->n; i++)
		cache->e[i].seen = 0;
	json_array_foreach(list, i, l) {
		id = jstr(l, "Id");
		if (!container_ref_valid(id) || (e = cache_get(cache, id)) ==
		    NULL)
			continue;
		e->seen = 1;
		e->running = strcmp(jstr(l, "State"), "running") == 0;
		list_key(l, key);
		if ((e->text == NULL || strcmp(e->key, key) != 0) &&
		    container_text(d, l, e) == 0)
			memcpy(e->key, key, sizeof key);
		if (e->text == NULL)
			continue;
		if ((!first && buf_adds(out, ",") == -1) ||
		    buf_add(out, e->text, e->len) == -1 ||
		    add_tail(out, jstr(l, "Status"), e) == -1) {
			rc = -1;
			goto out;
		}
		first = 0;
	}
	rc = buf_adds(out, "]}") == -1 ? -1 : 1;
	cache_prune(cache);
out:
	json_decref(list);
	scratch_close(&sc);
	return rc;
}

/* Refresh the stats of running containers, round-robin from where the
 * last call stopped, for at most budget_ms. 1 when it went round the
 * whole list. */
static int
docker_stats_sample(struct docker *d, struct dcache *cache, long budget_ms)
{
	int64_t end = clock_mono_ms() + budget_ms;
	size_t i, tried, running = 0;
	int round = 0;

	for (i = 0; i < cache->n; i++)
		running += cache->e[i].running;
	i = cache->cursor < cache->n ? cache->cursor : 0;
	for (tried = 0; tried < running && clock_mono_ms() < end &&
	    !agent_stop && !rep_stopping(); i++) {
		if (i >= cache->n) {
			i = 0;
			round = 1;
		}
		if (!cache->e[i].running)
			continue;
		stats_take(d, &cache->e[i]);
		tried++;
	}
	/* The last running one sampled: round. */
	for (; i < cache->n && !cache->e[i].running; i++)
		;
	if (i >= cache->n && running > 0) {
		i = 0;
		round = 1;
	}
	cache->cursor = i;
	return round;
}

/* --- the reporting thread ---------------------------------------------- */

static struct agent_reporter rep;

static int
rep_stopping(void)
{
	return rep.stop != 0;
}

static void
nap(long ms)
{
	struct timespec ts = { 0, 100 * 1000000 };

	for (; ms > 0 && !agent_stop && !rep.stop; ms -= 100)
		nanosleep(&ts, NULL);
}

/* The list only: has anything changed since fp? */
static int
changed(struct docker *d, const char *socket, const char *fp)
{
	char now[SECRET_HEXLEN], err[512];
	struct scratch sc;
	json_t *list = NULL;
	struct stat sb;
	long code;
	int rc;

	if (stat(socket, &sb) == -1)
		return strcmp(fp, "absent") != 0;
	scratch_open(&sc);
	code = docker_json(d, "GET", "/containers/json?all=1", NULL,
	    DOCKER_CALL_MS, DOCKER_LIST_MAX, &list, err, sizeof err);
	if (code != 200 || !json_is_array(list))
		agent_sha256_hex(err, strlen(err), now);
	else
		list_fingerprint(list, now);
	rc = strcmp(now, fp) != 0;
	json_decref(list);
	scratch_close(&sc);
	return rc;
}

/* POST the snapshot. The status, or 0 (err says why). */
static long
send_snapshot(struct aclient *a, const struct buf *snap, char *err,
    size_t errlen)
{
	struct scratch sc;
	struct buf resp;
	json_t *reply = NULL;
	long code;

	buf_init(&resp, ACLIENT_REPLY_MAX);
	code = aclient_raw(a, "POST", "/agent/v1/reports/docker", snap->data,
	    30000, &resp, err, errlen);
	if (code && code != 200) {
		scratch_open(&sc);
		if (resp.len > 0)
			reply = json_loadb(resp.data, resp.len, 0, NULL);
		log_warnx("docker report refused (HTTP %ld): %s", code,
		    aclient_error_message(reply));
		json_decref(reply);
		scratch_close(&sc);
	}
	buf_free(&resp);
	return code;
}

static void *
reporter(void *arg)
{
	const struct agent_conf *c = rep.c;
	char fp[SECRET_HEXLEN] = "", err[256], why[512];
	struct dcache cache;
	struct aclient *a = NULL;
	struct docker *d;
	struct buf snap;
	int64_t next = 0, now;
	long code;
	int was_reachable = -1, reachable, seen = 0, first_round = 0;
	int trimmed = 0;

	memset(&cache, 0, sizeof cache);
	buf_init(&snap, DOCKER_REPORT_MAX);
	if ((d = docker_new(c->docker_socket)) == NULL) {
		log_warnx("docker_socket = %s: cannot report", c->docker_socket);
		goto out;
	}
	/* Bastion has answered a heartbeat first: the agent is known and
	 * reachable before anything else is sent. */
	while (!agent_heard && !agent_stop && !rep.stop)
		nap(100);
	while (!agent_stop && !rep.stop) {
		now = clock_mono_ms();
		if (now < next && (fp[0] == '\0' || !changed(d, c->docker_socket,
		    fp))) {
			/* Quiet: a few stats samples, kept for the next
			 * report (one each per round of the list). */
			if (docker_stats_sample(d, &cache, DOCKER_POLL_MS / 2)) {
				if (!first_round)	/* every one sampled: */
					next = 0;	/* report them now */
				first_round = 1;
			}
			/* What the engine's answers took goes back. */
			malloc_trim(0);
			nap(DOCKER_POLL_MS / 2);
			continue;
		}
		reachable = docker_snapshot(d, c->docker_socket, &cache, &seen,
		    fp, &snap, why, sizeof why);
		if (reachable == -1) {
			buf_free(&snap);
			malloc_trim(0);
			nap(DOCKER_RETRY_MS);
			continue;
		}
		if (reachable != was_reachable) {
			if (reachable)
				log_info("engine at %s reachable (API %s)",
				    c->docker_socket, docker_api_version(d));
			else
				log_warnx("engine at %s unreachable: %s",
				    c->docker_socket, why);
			was_reachable = reachable;
		}
		if (a == NULL)
			a = aclient_new(c, 1);
		code = a ? send_snapshot(a, &snap, err, sizeof err) : 0;
		buf_free(&snap);
		if (code == 200) {
			next = clock_mono_ms() + (int64_t)agent_interval_s * 1000;
			if (!trimmed++)	/* this thread's start-up is over */
				agent_trim();
		} else {
			fp[0] = '\0';	/* send again, whatever changes */
			next = clock_mono_ms() + DOCKER_RETRY_MS;
		}
		/* What a snapshot of many containers took goes back. */
		malloc_trim(0);
		nap(DOCKER_POLL_MS);
	}
out:
	aclient_free(a);
	docker_free(d);
	cache_free(&cache);
	buf_free(&snap);
	scratch_thread_done();
	return NULL;
}

int
docker_reporter_start(const struct agent_conf *c)
{
	if (c->docker_socket[0] == '\0')
		return 0;
	return agent_reporter_start(&rep, c, reporter, "docker");
}

void
docker_reporter_stop(void)
{
	agent_reporter_stop(&rep);
}
#endif /* AGENTD_NO_CURL */
