/* routes_containers.c — Docker containers on nodes (DESIGN §12): the
 * agents' reports (POST /agent/v1/reports/docker), the latest of each
 * node with its age for operators, and actions as signed jobs of kind
 * "container". No engine socket is ever reached from here: a report is
 * what the agent pushed, an action is a job it verifies and runs.
 *
 * A report three heartbeat intervals old is "stale" (routes_report.c);
 * an engine the agent could not reach is "unreachable", never an empty
 * list. Env values are masked on the node; bastion masks again what
 * still looks like a secret before it stores anything. */
#define LOG_SUBSYS "containers"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounds.h"
#include "clock.h"
#include "container.h"
#include "db.h"
#include "db_report.h"
#include "http.h"
#include "log.h"
#include "routes.h"
#include "stream.h"

#define L_API (L_CONTROL | L_ADMIN)

#define REPORT_MAX_BODY		(16 * 1024 * 1024)
#define REPORT_MAX_CONTAINERS	10000

/* --- the agent's report ------------------------------------------------- */

/* Keep what a report may hold: engine {present, reachable, error,
 * api_version, version} and containers with a valid id, env masked
 * again. 0 or -1 with why. */
static int
report_check(json_t *body, char *why, size_t whylen)
{
	json_t *engine = json_object_get(body, "engine");
	json_t *cs = json_object_get(body, "containers"), *c, *env;
	size_t i;

	if (!json_is_object(engine) || !json_is_boolean(json_object_get(engine,
	    "reachable"))) {
		snprintf(why, whylen, "engine must be an object with reachable "
		    "true or false");
		return -1;
	}
	if (!json_is_array(cs) || json_array_size(cs) > REPORT_MAX_CONTAINERS) {
		snprintf(why, whylen, "containers must be an array of at most %d",
		    REPORT_MAX_CONTAINERS);
		return -1;
	}
	json_array_foreach(cs, i, c) {
		if (!json_is_object(c) || !container_ref_valid(json_string_value(
		    json_object_get(c, "id")))) {
			snprintf(why, whylen, "containers[%zu]: an object with a "
			    "valid id", i);
			return -1;
		}
		env = json_object_get(c, "env");
		if (env != NULL && !json_is_array(env)) {
			snprintf(why, whylen, "containers[%zu].env: an array of "
			    "K=V strings", i);
			return -1;
		}
		if (env && container_env_mask(env) > 0)
			log_warnx("a report had unmasked secret-looking env "
			    "values; masked them");
	}
	return 0;
}

/* routes_report_clean_fn: the report itself, checked and masked. */
static json_t *
report_keep(json_t *body, char *why, size_t whylen)
{
	return report_check(body, why, whylen) == -1 ? NULL :
	    json_incref(body);
}

static void
post_report_docker(struct request *r)
{
	routes_report_post(r, DB_REPORT_CONTAINERS, "containers", report_keep);
}

/* --- reports for operators ---------------------------------------------- */

/* One node as the API shows it, from a db_reports row:
 * {agent_id, hostname, reported_at, age_s, stale, engine, containers}.
 * A node that never reported has engine null and no containers. */
static json_t *
node_json(struct request *r, const json_t *row)
{
	int64_t at = json_integer_value(json_object_get(row, "received_ms"));
	int64_t now = clock_wall_ms();
	const json_t *rep = json_object_get(row, "report");
	const json_t *engine = json_object_get(rep, "engine");
	const json_t *cs = json_object_get(rep, "containers");

	return json_pack("{s:O, s:O, s:o, s:o, s:b, s:o, s:o}",
	    "agent_id", json_object_get(row, "agent_id"),
	    "hostname", json_object_get(row, "hostname"),
	    "reported_at", db_time_json(at),
	    "age_s", at ? json_integer((now - at) / 1000) : json_null(),
	    "stale", routes_report_stale(r, at, now),
	    "engine", engine ? json_incref((json_t *)engine) : json_null(),
	    "containers", cs ? json_incref((json_t *)cs) : json_array());
}

static void
reply_reports(struct request *r, const char *agent_id, int one)
{
	json_t *out, *n;

	if (routes_report_nodes(r, DB_REPORT_CONTAINERS, agent_id, node_json,
	    &out) == -1)
		return;
	if (one) {
		n = json_incref(json_array_get(out, 0));
		json_decref(out);
		out = n;
	}
	if (out == NULL)
		http_reply_error(r, 500, "internal", "out of memory");
	else
		http_reply_json(r, 200, out);
}

static void
get_containers(struct request *r)
{
	reply_reports(r, NULL, 0);
}

static void
get_agent_containers(struct request *r)
{
	char id[AGENT_ID_LEN];

	if (routes_agent_of(r, r->params[0], id) == 0)
		reply_reports(r, id, 1);
}

/* A ref the node's report knows: an id, a unique id prefix or a name. */
static json_t *
find_container(const json_t *cs, const char *ref, int *ambiguous)
{
	const json_t *c, *hit = NULL;
	size_t i, n = strlen(ref);
	int prefixes = 0;

	*ambiguous = 0;
	json_array_foreach(cs, i, c) {
		const char *id = json_string_value(json_object_get(c, "id"));
		const char *name = json_string_value(json_object_get(c, "name"));

		if ((id && strcmp(id, ref) == 0) || (name && strcmp(name, ref) ==
		    0))
			return (json_t *)c;
		if (id && strncmp(id, ref, n) == 0) {
			hit = c;
			prefixes++;
		}
	}
	if (prefixes > 1) {
		*ambiguous = 1;
		return NULL;
	}
	return (json_t *)hit;
}

static int
ref_param(struct request *r, const char *ref)
{
	if (container_ref_valid(ref))
		return 0;
	http_reply_error(r, 422, "bad_ref", "a container is named by its id or "
	    "name: ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$");
	return -1;
}

static void
get_agent_container(struct request *r)
{
	char id[AGENT_ID_LEN];
	json_t *rows, *node = NULL, *c, *out;
	int ambiguous;

	if (ref_param(r, r->params[1]) == -1 ||
	    routes_agent_of(r, r->params[0], id) == -1)
		return;
	if (db_reports(r->app->db, DB_REPORT_CONTAINERS, id, &rows) != DB_OK ||
	    (node = node_json(r, json_array_get(rows, 0))) == NULL) {
		http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	c = find_container(json_object_get(node, "containers"), r->params[1],
	    &ambiguous);
	if (c == NULL) {
		if (ambiguous)
			http_reply_error(r, 409, "ambiguous", "several containers "
			    "of %s start with %s", id, r->params[1]);
		else
			http_reply_error(r, 404, "not_found", "no container %s in "
			    "the latest report of %s", r->params[1], id);
		goto out;
	}
	out = json_deep_copy(c);
	json_object_set(out, "agent_id", json_object_get(node, "agent_id"));
	json_object_set(out, "hostname", json_object_get(node, "hostname"));
	json_object_set(out, "reported_at", json_object_get(node,
	    "reported_at"));
	json_object_set(out, "stale", json_object_get(node, "stale"));
	http_reply_json(r, 200, out);
out:
	json_decref(node);
	json_decref(rows);
}

/* --- actions ---------------------------------------------------------- */

/* An optional integer member within [min, max] copied into args. */
static int
arg_int(const json_t *body, json_t *args, const char *key, long long min,
    long long max, char *why, size_t whylen)
{
	const json_t *v = json_object_get(body, key);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		snprintf(why, whylen, "%s must be an integer from %lld to %lld",
		    key, min, max);
		return -1;
	}
	json_object_set(args, key, (json_t *)v);
	return 0;
}

static int
arg_bool(const json_t *body, json_t *args, const char *key, char *why,
    size_t whylen)
{
	const json_t *v = json_object_get(body, key);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v)) {
		snprintf(why, whylen, "%s must be true or false", key);
		return -1;
	}
	json_object_set(args, key, (json_t *)v);
	return 0;
}

/* "TERM", "SIGTERM", "9" -> args.signal ("TERM", "9"). */
static int
arg_signal(const json_t *body, json_t *args, char *why, size_t whylen)
{
	const char *s = json_string_value(json_object_get(body, "signal"));
	char sig[16];
	size_t i;

	if (json_object_get(body, "signal") == NULL)
		return 0;
	if (s && strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (i = 0; s && s[i] && i < sizeof sig - 1; i++) {
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' &&
		    s[i] <= '9')))
			break;
		sig[i] = s[i];
	}
	if (s == NULL || i == 0 || s[i]) {
		snprintf(why, whylen, "signal: a name or number like TERM, "
		    "SIGHUP or 9");
		return -1;
	}
	sig[i] = '\0';
	json_object_set_new(args, "signal", json_string(sig));
	return 0;
}

static int
arg_argv(const json_t *body, json_t *args, char *why, size_t whylen)
{
	const json_t *argv = json_object_get(body, "argv"), *v;
	size_t i;

	if (!json_is_array(argv) || json_array_size(argv) == 0 ||
	    json_array_size(argv) > JOB_MAX_ARGV) {
		snprintf(why, whylen, "argv must be 1-%d strings", JOB_MAX_ARGV);
		return -1;
	}
	json_array_foreach(argv, i, v)
		if (!json_is_string(v) || json_string_length(v) > JOB_MAX_ARG ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(why, whylen, "argv[%zu] must be a string of at "
			    "most %d bytes without NUL", i, JOB_MAX_ARG);
			return -1;
		}
	json_object_set(args, "argv", (json_t *)argv);
	return 0;
}

/* The job's args for action from the request body (may be empty). Only
 * the options of that action are taken; anything else is refused. */
static json_t *
action_args(const char *action, const char *ref, const json_t *body,
    char *why, size_t whylen)
{
	static const struct {
		const char	*action;
		const char	*fields;	/* " a b c " */
	} allowed[] = {
		{ "stop", " timeout " }, { "restart", " timeout " },
		{ "kill", " signal " }, { "remove", " force volumes " },
		{ "logs", " tail since follow timestamps limit " },
		{ "exec", " argv limit tty rows cols " },
	};
	const char *fields = " ", *k;
	char key[72];
	json_t *args, *v;
	size_t i;
	int rc = 0;

	for (i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
		if (strcmp(allowed[i].action, action) == 0)
			fields = allowed[i].fields;
	json_object_foreach((json_t *)body, k, v) {
		snprintf(key, sizeof key, " %.64s ", k);
		if (strstr(fields, key) == NULL) {
			snprintf(why, whylen, "%s takes no '%.40s'", action, k);
			return NULL;
		}
	}
	args = json_pack("{s:s, s:s}", "action", action, "ref", ref);
	if (args == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	if (arg_int(body, args, "timeout", 0, CONTAINER_STOP_MAX, why, whylen)
	    == -1 || arg_int(body, args, "tail", 0, CONTAINER_TAIL_MAX, why,
	    whylen) == -1 || arg_int(body, args, "since", 0, LLONG_MAX / 2, why,
	    whylen) == -1 || arg_int(body, args, "limit", 1, CONTAINER_RUN_MAX,
	    why, whylen) == -1 || arg_bool(body, args, "follow", why, whylen) ==
	    -1 || arg_bool(body, args, "timestamps", why, whylen) == -1 ||
	    arg_bool(body, args, "force", why, whylen) == -1 ||
	    arg_bool(body, args, "volumes", why, whylen) == -1 ||
	    arg_bool(body, args, "tty", why, whylen) == -1 ||
	    arg_int(body, args, "rows", 1, 1000, why, whylen) == -1 ||
	    arg_int(body, args, "cols", 1, 1000, why, whylen) == -1 ||
	    arg_signal(body, args, why, whylen) == -1)
		rc = -1;
	if (rc == 0 && strcmp(action, "exec") == 0)
		rc = arg_argv(body, args, why, whylen);
	if (rc == -1) {
		json_decref(args);
		return NULL;
	}
	return args;
}

/* POST /api/v1/agents/{id}/containers/{ref}/ACTION: the action is the
 * last path segment (each has its own row in the table, with its audit
 * name). */
static void
post_action(struct request *r)
{
	const char *action = strrchr(r->path, '/') + 1;
	char id[AGENT_ID_LEN], why[256];
	json_t *body = NULL, *args = NULL, *job;

	if (ref_param(r, r->params[1]) == -1)
		return;
	if (r->body.len > 0 && (body = http_body_json(r)) == NULL)
		return;
	if (routes_agent_of(r, r->params[0], id) == -1)
		goto out;
	AUDIT_SET(&r->audit, target, "%s/%s", id, r->params[1]);
	args = action_args(action, r->params[1], body, why, sizeof why);
	if (args == NULL) {
		http_reply_error(r, 422, "invalid", "%s", why);
		goto out;
	}
	/* The options, in the audit row that the job's commit carries. */
	if (body && json_object_size(body) > 0) {
		char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);

		if (text)
			AUDIT_SET(&r->audit, detail, "%s", text);
		free(text);
	}
	/* exec with a TTY: the stream the agent and this client meet on. */
	if (json_is_true(json_object_get(args, "tty"))) {
		char sid[STREAM_ID_LEN];

		if (stream_create(id, r->audit.actor[0] ? r->audit.actor :
		    r->client, (int)json_integer_value(json_object_get(args,
		    "rows")), (int)json_integer_value(json_object_get(args,
		    "cols")), sid) == -1) {
			http_reply_error(r, 503, "busy", "too many interactive "
			    "streams open; try again later");
			goto out;
		}
		if (routes_stream_args(r, id, args, sid) == -1) {
			stream_kill(sid);
			http_reply_error(r, 500, "internal", "out of memory");
			goto out;
		}
	}
	if (routes_job_submit(r, id, "container", args, ROUTES_JOB_TTL, &job)
	    == 0) {
		if (json_object_get(args, "stream"))
			json_object_set(job, "stream", json_object_get(args,
			    "stream"));
		http_reply_json(r, 201, job);
	}
out:
	json_decref(args);
	json_decref(body);
}

#define ACTION(a, flags) \
	{ L_API, "POST", "/api/v1/agents/{id}/containers/{ref}/" a, post_action, \
	    0, ROLE_OPERATOR, SCOPE_EXEC, RF_MUTATES | (flags), "container." a }

/* Who may do what: see struct route in http.h and docs/api.md. */
const struct route routes_containers[] = {
	{ L_CONTROL, "POST", "/agent/v1/reports/docker", post_report_docker,
	    REPORT_MAX_BODY, ROLE_NONE, SCOPE_READ, RF_AGENT, NULL },
	{ L_API, "GET", "/api/v1/containers", get_containers, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/agents/{id}/containers", get_agent_containers,
	    0, ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/agents/{id}/containers/{ref}",
	    get_agent_container, 0, ROLE_VIEWER, SCOPE_READ, 0, NULL },
	ACTION("start", 0),
	ACTION("stop", 0),
	ACTION("restart", 0),
	ACTION("pause", 0),
	ACTION("unpause", 0),
	ACTION("kill", 0),
	ACTION("remove", RF_DESTRUCTIVE),
	ACTION("logs", 0),
	ACTION("inspect", 0),
	ACTION("exec", 0),
	{ 0, NULL, NULL, NULL, 0, ROLE_UNSET, SCOPE_READ, 0, NULL },
};
