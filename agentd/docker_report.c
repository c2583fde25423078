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
	secret_sha256_hex(b.data ? b.data : "", b.len, out);
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

/* One stats sample: memory as the docker CLI counts it (without the
 * inactive page cache), CPU % against this agent's previous sample of the
 * same container (one-shot stats carry no previous one). prev: id ->
 * [container ns, system ns]. */
static json_t *
stats_json(struct docker *d, const char *id, json_t *prev)
{
	char path[256], err[256];
	json_t *s, *out = NULL, *cpu, *mem, *ms, *p;
	json_int_t total, system, online, usage, inactive;
	long code;

	snprintf(path, sizeof path, "/containers/%s/stats?stream=false"
	    "&one-shot=true", id);
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
	out = json_pack("{s:I, s:I}", "memory_bytes", usage,
	    "memory_limit_bytes", jint(mem, "limit"));
	if ((p = json_object_get(prev, id)) != NULL && system >
	    json_integer_value(json_array_get(p, 1)) && total >=
	    json_integer_value(json_array_get(p, 0)) && online > 0)
		json_object_set_new(out, "cpu_percent", json_real(
		    (double)(total - json_integer_value(json_array_get(p, 0))) /
		    (double)(system - json_integer_value(json_array_get(p, 1))) *
		    (double)online * 100.0));
	else
		json_object_set_new(out, "cpu_percent", json_null());
	json_object_set_new(prev, id, json_pack("[I, I]", total, system));
out:
	json_decref(s);
	return out;
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
	c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o, "
	    "s:o, s:I, s:O, s:o, s:s, s:s, s:I, s:I, s:b, s:s}",
	    "id", id, "name", name, "image", jstr(l, "Image"),
	    "image_id", jstr(in, "Image"), "command", jstr(l, "Command"),
	    "state", jstr(st, "Status"), "status", jstr(l, "Status"),
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

static int	rep_stopping(void);

/* What an inspect depends on, as the list shows it: the same key, the
 * same inspect (a state change, a restart, health, a new name or image
 * make a new one). */
static void
list_key(const json_t *l, struct buf *b)
{
	b->len = 0;
	if (buf_printf(b, "%s|%s|%s|%s|%s", jstr(l, "Id"), jstr(l, "State"),
	    status_health(jstr(l, "Status")), jstr(l, "Image"),
	    json_string_value(json_array_get(json_object_get(l, "Names"), 0)) ?
	    json_string_value(json_array_get(json_object_get(l, "Names"), 0)) :
	    "") == -1)
		b->len = 0;
}

/* Drop what cache keeps of containers no longer in list. */
static void
cache_prune(json_t *cache, const json_t *list)
{
	static const char *const maps[] = { "cpu", "inspect", "stats", NULL };
	const json_t *l;
	const char *k;
	json_t *m, *v, *ids = json_object();
	void *tmp;
	size_t i;
	int j;

	json_array_foreach(list, i, l)
		json_object_set_new(ids, jstr(l, "Id"), json_true());
	for (j = 0; maps[j]; j++) {
		m = json_object_get(cache, maps[j]);
		json_object_foreach_safe(m, tmp, k, v)
			if (json_object_get(ids, k) == NULL)
				json_object_del(m, k);
	}
	json_decref(ids);
}

json_t *
docker_cache_new(void)
{
	return json_pack("{s:{}, s:{}, s:{}, s:[], s:i}", "cpu", "inspect",
	    "stats", "running", "cursor", 0);
}

json_t *
docker_snapshot(struct docker *d, const char *socket, json_t *cache,
    int *seen, char fp[SECRET_HEXLEN])
{
	char err[512];
	json_t *list = NULL, *snap, *cs, *c, *l, *hit, *st;
	json_t *inspect = json_object_get(cache, "inspect");
	json_t *stats = json_object_get(cache, "stats");
	struct stat sb;
	struct buf key;
	size_t i;
	long code;

	if (stat(socket, &sb) == -1) {
		/* Gone after it was there: the engine stopped. */
		snprintf(fp, SECRET_HEXLEN, "absent");
		if (*seen)
			return json_pack("{s:{s:b, s:b, s:s}, s:[]}", "engine",
			    "present", 1, "reachable", 0, "error", errno == ENOENT ?
			    "the engine's socket is gone (the engine stopped)" :
			    strerror(errno), "containers");
		return json_pack("{s:{s:b, s:b, s:s}, s:[]}", "engine", "present",
		    0, "reachable", 0, "error", errno == ENOENT ? "no engine "
		    "socket" : strerror(errno), "containers");
	}
	*seen = 1;
	code = docker_json(d, "GET", "/containers/json?all=1", NULL,
	    DOCKER_CALL_MS, DOCKER_LIST_MAX, &list, err, sizeof err);
	if (code != 200 || !json_is_array(list)) {
		json_decref(list);
		secret_sha256_hex(err, strlen(err), fp);
		return json_pack("{s:{s:b, s:b, s:s}, s:[]}", "engine", "present",
		    1, "reachable", 0, "error", err, "containers");
	}
	list_fingerprint(list, fp);
	cs = json_array();
	buf_init(&key, 4096);
	json_array_foreach(list, i, l) {
		list_key(l, &key);
		hit = json_object_get(inspect, jstr(l, "Id"));
		/* Kept as text: a tenth of the memory of the objects. */
		c = NULL;
		if (hit && key.len && strlen(jstr(hit, "key")) == key.len &&
		    memcmp(jstr(hit, "key"), key.data, key.len) == 0)
			c = json_loads(jstr(hit, "c"), 0, NULL);
		if (c == NULL && (c = container_json(d, l)) != NULL &&
		    key.len) {
			char *text = json_dumps(c, JSON_COMPACT);

			if (text)
				json_object_set_new(inspect, jstr(l, "Id"),
				    json_pack("{s:s%, s:s}", "key", key.data,
				    key.len, "c", text));
			free(text);
		}
		if (c == NULL)
			continue;
		/* The list's status moves with time ("Up 3 minutes"). */
		json_object_set(c, "status", json_object_get(l, "Status"));
		if (strcmp(jstr(l, "State"), "running") == 0 &&
		    (st = json_object_get(stats, jstr(l, "Id"))) != NULL)
			json_object_set(c, "stats", st);
		json_array_append_new(cs, c);
	}
	buf_free(&key);
	snap = json_pack("{s:{s:b, s:b, s:s, s:s}, s:o}", "engine", "present", 1,
	    "reachable", 1, "api_version", docker_api_version(d), "version",
	    docker_engine_version(d), "containers", cs);
	cache_prune(cache, list);
	/* Of the list only the running ids are kept (for the stats). */
	{
		json_t *running = json_array();

		json_array_foreach(list, i, l)
			if (strcmp(jstr(l, "State"), "running") == 0 &&
			    container_ref_valid(jstr(l, "Id")))
				json_array_append_new(running, json_string(
				    jstr(l, "Id")));
		json_object_set_new(cache, "running", running);
	}
	json_decref(list);
	return snap;
}

int
docker_stats_sample(struct docker *d, json_t *cache, long budget_ms)
{
	const json_t *list = json_object_get(cache, "running");
	const char *id;
	json_t *st;
	int64_t end = clock_mono_ms() + budget_ms;
	size_t n = json_array_size(list), i, tried;

	i = (size_t)json_integer_value(json_object_get(cache, "cursor"));
	for (tried = 0; tried < n && clock_mono_ms() < end && !agent_stop &&
	    !rep_stopping(); tried++, i++) {
		id = json_string_value(json_array_get(list, i % n));
		if (id && (st = stats_json(d, id, json_object_get(cache,
		    "cpu"))) != NULL)
			json_object_set_new(json_object_get(cache, "stats"), id,
			    st);
	}
	json_object_set_new(cache, "cursor", json_integer(n ? (json_int_t)(i %
	    n) : 0));
	return n > 0 && i >= n;	/* went round */
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
	json_t *list = NULL;
	struct stat sb;
	long code;
	int rc;

	if (stat(socket, &sb) == -1)
		return strcmp(fp, "absent") != 0;
	code = docker_json(d, "GET", "/containers/json?all=1", NULL,
	    DOCKER_CALL_MS, DOCKER_LIST_MAX, &list, err, sizeof err);
	if (code != 200 || !json_is_array(list))
		secret_sha256_hex(err, strlen(err), now);
	else
		list_fingerprint(list, now);
	rc = strcmp(now, fp) != 0;
	json_decref(list);
	return rc;
}

static void *
reporter(void *arg)
{
	const struct agent_conf *c = rep.c;
	char fp[SECRET_HEXLEN] = "", err[256];
	struct aclient *a = NULL;
	struct docker *d;
	json_t *cache = docker_cache_new(), *snap, *reply;
	int64_t next = 0, now;
	long code;
	int was_reachable = -1, reachable, seen = 0, first_round = 0;

	if ((d = docker_new(c->docker_socket)) == NULL || cache == NULL) {
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
			if (docker_stats_sample(d, cache, DOCKER_POLL_MS / 2)) {
				if (!first_round)	/* every one sampled: */
					next = 0;	/* report them now */
				first_round = 1;
				malloc_trim(0);
			}
			nap(DOCKER_POLL_MS / 2);
			continue;
		}
		snap = docker_snapshot(d, c->docker_socket, cache, &seen, fp);
		if (snap == NULL) {
			nap(DOCKER_RETRY_MS);
			continue;
		}
		reachable = json_is_true(json_object_get(json_object_get(snap,
		    "engine"), "reachable"));
		if (reachable != was_reachable) {
			if (reachable)
				log_info("engine at %s reachable (API %s)",
				    c->docker_socket, docker_api_version(d));
			else
				log_warnx("engine at %s unreachable: %s",
				    c->docker_socket, jstr(json_object_get(snap,
				    "engine"), "error"));
			was_reachable = reachable;
		}
		if (a == NULL)
			a = aclient_new(c, 1);
		reply = NULL;
		code = a ? aclient_call(a, "POST", "/agent/v1/reports/docker",
		    snap, 30000, &reply, err, sizeof err) : 0;
		json_decref(snap);
		if (code == 200) {
			next = clock_mono_ms() + (int64_t)agent_interval_s * 1000;
		} else {
			if (code)
				log_warnx("docker report refused (HTTP %ld): %s",
				    code, aclient_error_message(reply));
			fp[0] = '\0';	/* send again, whatever changes */
			next = clock_mono_ms() + DOCKER_RETRY_MS;
		}
		json_decref(reply);
		/* What a snapshot of many containers took goes back. */
		malloc_trim(0);
		nap(DOCKER_POLL_MS);
	}
out:
	aclient_free(a);
	docker_free(d);
	json_decref(cache);
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
