/* routes_guests.c — guests on nodes (DESIGN §13): libvirt VMs and LXC
 * containers as their agents report them (POST /agent/v1/reports/guests),
 * the latest of each node with its age for operators, and actions as
 * signed jobs of kind "guest". Nothing here reaches a hypervisor: a report
 * is what the agent pushed, an action is a job it verifies and runs.
 *
 * A report is checked field by field and rebuilt from the fields
 * GUESTS.md names (anything else is dropped), each string and array
 * capped. It is "stale" after STALE_HEARTBEATS heartbeat intervals, as
 * container reports are. The console (POST …/console) is
 * routes_console's; the other actions are here. */
#define LOG_SUBSYS "guests"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounds.h"
#include "clock.h"
#include "db.h"
#include "db_report.h"
#include "guest.h"
#include "http.h"
#include "log.h"
#include "routes.h"

#define L_API (L_CONTROL | L_ADMIN)

#define REPORT_MAX_BODY		(8 * 1024 * 1024)
#define STR_MAX			1024	/* one string of a report */
#define ITEMS_MAX		64	/* disks, NICs, addresses of a guest */
#define SNAPS_MAX		1024	/* snapshots of a guest */

/* --- the agent's report ------------------------------------------------- */

static const char *const states[] = { "running", "stopped", "paused",
    "shutoff", "crashed", "starting", "stopping", "unknown", NULL };

static int
one_of(const char *s, const char *const *list)
{
	for (; s && *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* A string member up to STR_MAX bytes without NUL ("" when absent):
 * copied into out. -1 when it is something else. */
static int
take_str(const json_t *in, json_t *out, const char *key)
{
	const json_t *v = json_object_get(in, key);

	if (v == NULL || json_is_null(v)) {
		json_object_set_new(out, key, json_string(""));
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) > STR_MAX ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -1;
	json_object_set(out, key, (json_t *)v);
	return 0;
}

/* A non-negative integer member (absent: 0; with nullable, null stays). */
static int
take_int(const json_t *in, json_t *out, const char *key, int nullable)
{
	const json_t *v = json_object_get(in, key);

	if (v == NULL || (json_is_null(v) && !nullable)) {
		json_object_set_new(out, key, json_integer(0));
		return 0;
	}
	if (json_is_null(v)) {
		json_object_set_new(out, key, json_null());
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	json_object_set(out, key, (json_t *)v);
	return 0;
}

static json_t *
driver_clean(const json_t *d, char *why, size_t whylen, const char *name)
{
	static const char *const dstates[] = { "ok", "absent", "error", NULL };
	json_t *out;

	if (!json_is_object(d) || !one_of(json_string_value(json_object_get(d,
	    "state")), dstates)) {
		snprintf(why, whylen, "drivers.%s: an object with state ok, "
		    "absent or error", name);
		return NULL;
	}
	out = json_pack("{s:O}", "state", json_object_get(d, "state"));
	if (out == NULL || take_str(d, out, "detail") == -1 ||
	    take_str(d, out, "version") == -1) {
		json_decref(out);
		snprintf(why, whylen, "drivers.%s: detail and version are "
		    "strings of at most %d bytes", name, STR_MAX);
		return NULL;
	}
	return out;
}

/* An array member of objects, each rebuilt by fn (NULL: refused). */
static json_t *
take_list(const json_t *in, const char *key, size_t max,
    json_t *(*fn)(const json_t *))
{
	const json_t *a = json_object_get(in, key), *v;
	json_t *out, *x;
	size_t i;

	if (a == NULL || json_is_null(a))
		return json_array();
	if (!json_is_array(a) || json_array_size(a) > max)
		return NULL;
	if ((out = json_array()) == NULL)
		return NULL;
	json_array_foreach(a, i, v)
		if (!json_is_object(v) || (x = fn(v)) == NULL ||
		    json_array_append_new(out, x) == -1) {
			json_decref(out);
			return NULL;
		}
	return out;
}

static json_t *
disk_clean(const json_t *d)
{
	json_t *o = json_object();

	if (o == NULL || take_str(d, o, "target") == -1 ||
	    take_str(d, o, "source") == -1 || take_str(d, o, "format") == -1 ||
	    take_int(d, o, "size_bytes", 1) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
nic_clean(const json_t *n)
{
	const json_t *addrs = json_object_get(n, "addresses"), *v;
	json_t *o = json_object();
	size_t i;

	if (o == NULL || take_str(n, o, "mac") == -1 ||
	    take_str(n, o, "network") == -1)
		goto err;
	if (addrs != NULL && (!json_is_array(addrs) || json_array_size(addrs) >
	    ITEMS_MAX))
		goto err;
	json_array_foreach(addrs, i, v)
		if (!json_is_string(v) || json_string_length(v) > 128)
			goto err;
	json_object_set_new(o, "addresses", addrs ? json_deep_copy(addrs) :
	    json_array());
	return o;
err:
	json_decref(o);
	return NULL;
}

static json_t *
snap_clean(const json_t *s)
{
	const json_t *name = json_object_get(s, "name");
	json_t *o;

	if (!guest_snap_valid(json_string_value(name)))
		return NULL;
	o = json_pack("{s:O, s:b}", "name", name, "current",
	    json_is_true(json_object_get(s, "current")));
	if (o && take_int(s, o, "created", 0) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
guest_clean(const json_t *g, size_t i, char *why, size_t whylen)
{
	const char *name = json_string_value(json_object_get(g, "name"));
	const char *type = json_string_value(json_object_get(g, "type"));
	const char *state = json_string_value(json_object_get(g, "state"));
	enum guest_type t;
	json_t *o, *x;

	if (!guest_name_valid(name) || guest_type_parse(type, &t) == -1 ||
	    !one_of(state, states)) {
		snprintf(why, whylen, "guests[%zu]: a valid name, type vm or lxc "
		    "and a known state", i);
		return NULL;
	}
	o = json_pack("{s:s, s:s, s:s, s:b}", "name", name, "type", type,
	    "state", state, "autostart", json_is_true(json_object_get(g,
	    "autostart")));
	if (o == NULL || take_str(g, o, "id") == -1 ||
	    take_int(g, o, "vcpus", 0) == -1 ||
	    take_int(g, o, "memory_mib", 0) == -1) {
		snprintf(why, whylen, "guests[%zu]: id is a string, vcpus and "
		    "memory_mib non-negative integers", i);
		goto err;
	}
	if ((x = take_list(g, "disks", ITEMS_MAX, disk_clean)) == NULL ||
	    json_object_set_new(o, "disks", x) == -1 ||
	    (x = take_list(g, "nics", ITEMS_MAX, nic_clean)) == NULL ||
	    json_object_set_new(o, "nics", x) == -1) {
		snprintf(why, whylen, "guests[%zu]: disks and nics are arrays of "
		    "at most %d objects as the API says", i, ITEMS_MAX);
		goto err;
	}
	if ((x = take_list(g, "snapshots", SNAPS_MAX, snap_clean)) == NULL ||
	    json_object_set_new(o, "snapshots", x) == -1) {
		snprintf(why, whylen, "guests[%zu]: snapshots are at most %d, "
		    "each with a valid name", i, SNAPS_MAX);
		goto err;
	}
	return o;
err:
	json_decref(o);
	return NULL;
}

json_t *
routes_guest_report_clean(const json_t *body, char *why, size_t whylen)
{
	const json_t *drivers = json_object_get(body, "drivers");
	const json_t *gs = json_object_get(body, "guests"), *v;
	json_t *out, *d, *list, *g;
	const char *k;
	size_t i;

	if (!json_is_object(drivers) || json_object_size(drivers) > 2) {
		snprintf(why, whylen, "drivers must be an object with libvirt "
		    "and/or lxc");
		return NULL;
	}
	if (!json_is_array(gs) || json_array_size(gs) > GUEST_REPORT_MAX) {
		snprintf(why, whylen, "guests must be an array of at most %d",
		    GUEST_REPORT_MAX);
		return NULL;
	}
	out = json_pack("{s:{}, s:[]}", "drivers", "guests");
	if (out == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	json_object_foreach((json_t *)drivers, k, v) {
		if (strcmp(k, "libvirt") != 0 && strcmp(k, "lxc") != 0) {
			snprintf(why, whylen, "drivers: libvirt and lxc only");
			goto err;
		}
		if ((d = driver_clean(v, why, whylen, k)) == NULL)
			goto err;
		json_object_set_new(json_object_get(out, "drivers"), k, d);
	}
	list = json_object_get(out, "guests");
	json_array_foreach(gs, i, v) {
		if (!json_is_object(v)) {
			snprintf(why, whylen, "guests[%zu]: an object", i);
			goto err;
		}
		if ((g = guest_clean(v, i, why, whylen)) == NULL)
			goto err;
		json_array_append_new(list, g);
	}
	return out;
err:
	json_decref(out);
	return NULL;
}

static json_t *
report_clean(json_t *body, char *why, size_t whylen)
{
	return routes_guest_report_clean(body, why, whylen);
}

static void
post_report_guests(struct request *r)
{
	routes_report_post(r, DB_REPORT_GUESTS, "guests", report_clean);
}

/* --- reports for operators ---------------------------------------------- */

/* One node as GUESTS.md shows it: {agent, hostname, received (ms, 0:
 * none yet), stale, drivers, guests}. */
static json_t *
node_json(struct request *r, const json_t *row)
{
	int64_t at = json_integer_value(json_object_get(row, "received_ms"));
	int64_t now = clock_wall_ms();
	const json_t *rep = json_object_get(row, "report");
	const json_t *drivers = json_object_get(rep, "drivers");
	const json_t *gs = json_object_get(rep, "guests");

	return json_pack("{s:O, s:O, s:I, s:b, s:o, s:o}",
	    "agent", json_object_get(row, "agent_id"),
	    "hostname", json_object_get(row, "hostname"),
	    "received", (json_int_t)at,
	    "stale", routes_report_stale(r, at, now),
	    "drivers", drivers ? json_incref((json_t *)drivers) : json_object(),
	    "guests", gs ? json_incref((json_t *)gs) : json_array());
}

/* The nodes (one: agent_id's) into *out; replies itself on failure. */
static int
nodes(struct request *r, const char *agent_id, json_t **out)
{
	return routes_report_nodes(r, DB_REPORT_GUESTS, agent_id, node_json,
	    out);
}

static void
get_guests(struct request *r)
{
	json_t *list;

	if (nodes(r, NULL, &list) == 0)
		http_reply_json(r, 200, json_pack("{s:o}", "nodes", list));
}

static void
get_agent_guests(struct request *r)
{
	char id[AGENT_ID_LEN];
	json_t *list;

	if (routes_agent_of(r, r->params[0], id) == -1 ||
	    nodes(r, id, &list) == -1)
		return;
	http_reply_json(r, 200, json_incref(json_array_get(list, 0)));
	json_decref(list);
}

static int
name_param(struct request *r, const char *name)
{
	if (guest_name_valid(name))
		return 0;
	http_reply_error(r, 422, "bad_name", "a guest is named "
	    "^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$");
	return -1;
}

static void
get_agent_guest(struct request *r)
{
	char id[AGENT_ID_LEN];
	const char *type = http_query(r, "type");
	json_t *list, *g, *hit = NULL;
	size_t i;

	if (name_param(r, r->params[1]) == -1 ||
	    routes_agent_of(r, r->params[0], id) == -1 ||
	    nodes(r, id, &list) == -1)
		return;
	json_array_foreach(json_object_get(json_array_get(list, 0), "guests"),
	    i, g)
		if (strcmp(json_string_value(json_object_get(g, "name")),
		    r->params[1]) == 0 && (type == NULL || strcmp(type,
		    json_string_value(json_object_get(g, "type"))) == 0)) {
			hit = g;
			break;
		}
	if (hit == NULL)
		http_reply_error(r, 404, "not_found", "no guest %s in the latest "
		    "report of %s", r->params[1], id);
	else
		http_reply_json(r, 200, json_pack("{s:s, s:O, s:O, s:O}", "agent",
		    id, "guest", hit, "stale", json_object_get(json_array_get(
		    list, 0), "stale"), "received", json_object_get(
		    json_array_get(list, 0), "received")));
	json_decref(list);
}

/* --- actions ---------------------------------------------------------- */

static int
argv_of(const json_t *body, json_t *args, const char *key, char *why,
    size_t whylen)
{
	const json_t *a = json_object_get(body, key), *v;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > GUEST_ARGV_MAX) {
		snprintf(why, whylen, "%s must be 1-%d strings", key,
		    GUEST_ARGV_MAX);
		return -1;
	}
	json_array_foreach(a, i, v)
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > JOB_MAX_ARG ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(why, whylen, "%s[%zu] must be a non-empty string "
			    "of at most %d bytes without NUL", key, i,
			    JOB_MAX_ARG);
			return -1;
		}
	json_object_set(args, key, (json_t *)a);
	return 0;
}

json_t *
routes_guest_args(const char *action, const char *guest, const json_t *body,
    char *why, size_t whylen)
{
	static const struct {
		const char	*action;
		const char	*fields;	/* " a b c " */
	} allowed[] = {
		{ "shutdown", " type timeout " },
		{ "snapshot", " type snapshot " },
		{ "rollback", " type snapshot " },
		{ "snapshot-delete", " type snapshot " },
		{ "guard", " type snapshot timeout argv health keep_snapshot " },
	};
	const char *fields = " type ", *k, *s;
	enum guest_type t;
	const json_t *v;
	char key[72];
	json_t *args;
	size_t i;

	if (!guest_action_known(action) || strcmp(action, "console") == 0) {
		snprintf(why, whylen, "no guest action %.40s", action);
		return NULL;
	}
	if (!guest_name_valid(guest)) {
		snprintf(why, whylen, "a guest is named "
		    "^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$");
		return NULL;
	}
	if (body != NULL && !json_is_object(body)) {
		snprintf(why, whylen, "the body is a JSON object");
		return NULL;
	}
	for (i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
		if (strcmp(allowed[i].action, action) == 0)
			fields = allowed[i].fields;
	json_object_foreach((json_t *)body, k, v) {
		snprintf(key, sizeof key, " %.64s ", k);
		if (strlen(k) > 64 || strstr(fields, key) == NULL) {
			snprintf(why, whylen, "%s takes no '%.40s'", action, k);
			return NULL;
		}
	}
	if ((args = json_pack("{s:s, s:s}", "action", action, "guest", guest)) ==
	    NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	if ((v = json_object_get(body, "type")) != NULL) {
		if (guest_type_parse(json_string_value(v), &t) == -1) {
			snprintf(why, whylen, "type is vm or lxc");
			goto err;
		}
		json_object_set(args, "type", (json_t *)v);
	}
	if ((v = json_object_get(body, "snapshot")) != NULL) {
		s = json_string_value(v);
		if (!guest_snap_valid(s)) {
			snprintf(why, whylen, "a snapshot is named "
			    "^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$");
			goto err;
		}
		json_object_set(args, "snapshot", (json_t *)v);
	} else if (guest_action_wants_snap(action)) {
		snprintf(why, whylen, "%s needs a snapshot name", action);
		goto err;
	}
	if ((v = json_object_get(body, "timeout")) != NULL) {
		long long max = strcmp(action, "guard") == 0 ? GUEST_GUARD_MAX :
		    GUEST_TIMEOUT_MAX;

		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > max) {
			snprintf(why, whylen, "timeout must be an integer from 1 "
			    "to %lld seconds", max);
			goto err;
		}
		json_object_set(args, "timeout", (json_t *)v);
	}
	if ((v = json_object_get(body, "keep_snapshot")) != NULL) {
		if (!json_is_boolean(v)) {
			snprintf(why, whylen, "keep_snapshot must be true or false");
			goto err;
		}
		json_object_set(args, "keep_snapshot", (json_t *)v);
	}
	if (strcmp(action, "guard") == 0 && (argv_of(body, args, "argv", why,
	    whylen) == -1 || argv_of(body, args, "health", why, whylen) == -1))
		goto err;
	return args;
err:
	json_decref(args);
	return NULL;
}

/* POST /api/v1/agents/{id}/guests/{guest}/ACTION: the action is the last
 * path segment (each has its own row in the table, with its audit name). */
static void
post_action(struct request *r)
{
	const char *action = strrchr(r->path, '/') + 1;
	char id[AGENT_ID_LEN], why[256];
	json_t *body = NULL, *args = NULL, *job;
	const char *snap;

	if (name_param(r, r->params[1]) == -1)
		return;
	if (r->body.len > 0 && (body = http_body_json(r)) == NULL)
		return;
	if (routes_agent_of(r, r->params[0], id) == -1)
		goto out;
	args = routes_guest_args(action, r->params[1], body, why, sizeof why);
	snap = json_string_value(json_object_get(args, "snapshot"));
	if (snap)
		AUDIT_SET(&r->audit, target, "%s/%s@%s", id, r->params[1], snap);
	else
		AUDIT_SET(&r->audit, target, "%s/%s", id, r->params[1]);
	if (args == NULL) {
		http_reply_error(r, 422, "invalid", "%s", why);
		goto out;
	}
	if (body && json_object_size(body) > 0) {
		char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);

		if (text)
			AUDIT_SET(&r->audit, detail, "%s", text);
		free(text);
	}
	if (routes_job_submit(r, id, "guest", args, ROUTES_JOB_TTL, &job) == 0)
		http_reply_json(r, 202, json_pack("{s:o}", "job", job));
out:
	json_decref(args);
	json_decref(body);
}

#define ACTION(a) \
	{ L_API, "POST", "/api/v1/agents/{id}/guests/{guest}/" a, post_action, \
	    0, ROLE_OPERATOR, SCOPE_EXEC, RF_MUTATES, "guest." a }

/* Who may do what: see struct route in http.h and docs/api.md. */
const struct route routes_guests[] = {
	{ L_CONTROL, "POST", "/agent/v1/reports/guests", post_report_guests,
	    REPORT_MAX_BODY, ROLE_NONE, SCOPE_READ, RF_AGENT, NULL },
	{ L_API, "GET", "/api/v1/guests", get_guests, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/agents/{id}/guests", get_agent_guests,
	    0, ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/agents/{id}/guests/{guest}", get_agent_guest,
	    0, ROLE_VIEWER, SCOPE_READ, 0, NULL },
	ACTION("start"),
	ACTION("shutdown"),
	ACTION("stop"),
	ACTION("reboot"),
	ACTION("suspend"),
	ACTION("resume"),
	ACTION("snapshot"),
	ACTION("rollback"),
	ACTION("snapshot-delete"),
	ACTION("guard"),
	{ 0, NULL, NULL, NULL, 0, ROLE_UNSET, SCOPE_READ, 0, NULL },
};
