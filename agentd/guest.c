/* guest.c — jobs of kind "guest" (DESIGN §13): one action on one VM
 * (libvirt, guest_libvirt.c) or LXC container (guest_lxc.c) of the node,
 * on a thread of its own like exec.
 *
 * args: {action, guest, type?, snapshot?, timeout?, argv?, health?,
 * keep_snapshot?, stream?}. Every field is checked here again whatever
 * bastion said (guest_job_parse). The node finds the guest's type when
 * the job names none; a name both drivers know needs one.
 *
 * guard (Felhom's snapshot-before-change, LXC guests): snapshot, run the
 * change argv inside the guest, run the health argv the same way, roll
 * back to the snapshot if either failed; the last stdout line is
 * {"outcome", "snapshot", "change_exit", "health_exit", "snapshot_kept"}
 * and the job exits 0 when the change was kept, 1 otherwise. */
#ifndef AGENTD_NO_CURL	/* the discovery image has no guests to run */
#define LOG_SUBSYS "guest"
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "clock.h"
#include "http1.h"
#include "log.h"

#define SEND_MS		250
#define GUARD_DEFAULT	600	/* seconds for change + health */


void
guest_out_add(struct guest_out *o, const char *stream, const char *p,
    size_t n)
{
	int64_t now = clock_mono_ms();

	job_output_add(o->out, stream, p, n);
	if (o->a && now - o->last_send >= SEND_MS) {
		job_output_send(o->a, o->id, o->out, 0);
		o->last_send = now;
	}
}

void
guest_say(struct guest_out *o, const char *stream, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	guest_out_add(o, stream, line, (size_t)n);
}

/* --- the job's fields ---------------------------------------------------- */

static int
argv_ok(const json_t *a)
{
	const json_t *v;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > GUEST_ARGV_MAX)
		return 0;
	json_array_foreach(a, i, v)
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) > 4096 ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return 0;
	return 1;
}

int
guest_job_parse(const json_t *args, struct guest_job *gj, char *why,
    size_t whylen)
{
	static const char *const known = " action guest type snapshot timeout "
	    "argv health keep_snapshot stream stream_url ";
	struct guest_job g;
	const char *action, *name, *k, *s;
	const json_t *v;
	char key[72];
	long max;

	memset(&g, 0, sizeof g);
	if (!json_is_object(args)) {
		snprintf(why, whylen, "the job's args are not an object");
		return -1;
	}
	json_object_foreach((json_t *)args, k, v) {
		snprintf(key, sizeof key, " %.64s ", k);
		if (strlen(k) > 64 || strstr(known, key) == NULL) {
			snprintf(why, whylen, "unknown field '%.64s'", k);
			return -1;
		}
	}
	action = json_string_value(json_object_get(args, "action"));
	name = json_string_value(json_object_get(args, "guest"));
	if (!guest_action_known(action)) {
		snprintf(why, whylen, "unknown action '%.40s'", action ? action :
		    "");
		return -1;
	}
	snprintf(g.action, sizeof g.action, "%s", action);
	if (!guest_name_valid(name)) {
		snprintf(why, whylen, "a guest name is ^[a-zA-Z0-9][a-zA-Z0-9_.-]"
		    "{0,63}$");
		return -1;
	}
	snprintf(g.guest, sizeof g.guest, "%s", name);
	if ((v = json_object_get(args, "type")) != NULL) {
		if (guest_type_parse(json_string_value(v), &g.type) == -1) {
			snprintf(why, whylen, "type is vm or lxc");
			return -1;
		}
		g.has_type = 1;
	}
	if ((v = json_object_get(args, "snapshot")) != NULL) {
		s = json_string_value(v);
		if (!guest_snap_valid(s)) {
			snprintf(why, whylen, "a snapshot name is "
			    "^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$");
			return -1;
		}
		snprintf(g.snapshot, sizeof g.snapshot, "%s", s);
	}
	if (guest_action_wants_snap(action) && g.snapshot[0] == '\0') {
		snprintf(why, whylen, "%s needs a snapshot name", action);
		return -1;
	}
	if ((v = json_object_get(args, "timeout")) != NULL) {
		max = strcmp(action, "guard") == 0 ? GUEST_GUARD_MAX :
		    GUEST_TIMEOUT_MAX;
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > max) {
			snprintf(why, whylen, "timeout is 1 to %ld seconds", max);
			return -1;
		}
		g.timeout = (long)json_integer_value(v);
	}
	if ((v = json_object_get(args, "keep_snapshot")) != NULL) {
		if (!json_is_boolean(v)) {
			snprintf(why, whylen, "keep_snapshot is true or false");
			return -1;
		}
		g.keep_snapshot = json_is_true(v);
	}
	g.argv = json_object_get(args, "argv");
	g.health = json_object_get(args, "health");
	if (strcmp(action, "guard") == 0) {
		if (!argv_ok(g.argv) || !argv_ok(g.health)) {
			snprintf(why, whylen, "guard needs argv and health: each 1 "
			    "to %d non-empty strings", GUEST_ARGV_MAX);
			return -1;
		}
	} else if (g.argv || g.health) {
		snprintf(why, whylen, "only guard takes argv and health");
		return -1;
	}
	if ((v = json_object_get(args, "stream")) != NULL) {
		s = json_string_value(v);
		if (strcmp(action, "console") != 0 || s == NULL ||
		    strlen(s) != 32 || strspn(s, "0123456789abcdef") != 32) {
			snprintf(why, whylen, "stream: the 32 hex digits of a "
			    "console's stream");
			return -1;
		}
		snprintf(g.stream, sizeof g.stream, "%s", s);
	}
	if ((v = json_object_get(args, "stream_url")) != NULL &&
	    (g.stream[0] == '\0' || !h1_url_base_valid(json_string_value(v),
	    AGENT_URL_LEN))) {
		snprintf(why, whylen, "stream_url: the https://host:port of the "
		    "bastion that holds a console's stream");
		return -1;
	}
	if (strcmp(action, "console") == 0 && g.stream[0] == '\0') {
		snprintf(why, whylen, "console needs the stream bastion made");
		return -1;
	}
	*gj = g;
	return 0;
}

/* --- dispatch ------------------------------------------------------------- */

/* The guest's type from the job or from what the drivers know. */
static int
find_type(const struct agent_conf *c, struct guest_job *gj, char *err,
    size_t errlen)
{
	int lxc = 0, vm = 0;

	if (gj->has_type) {
		if ((gj->type == GUEST_VM && !(c->guests & GUESTS_LIBVIRT)) ||
		    (gj->type == GUEST_LXC && !(c->guests & GUESTS_LXC))) {
			snprintf(err, errlen, "this node has no %s driver (guests "
			    "= in agentd.conf)", gj->type == GUEST_VM ? "libvirt" :
			    "lxc");
			return -1;
		}
		return 0;
	}
#ifdef AGENTD_STATIC
	/* No drivers here, but the console runs the node's own tools (see
	 * guest_console.c): LXC keeps a config file per container. */
	if (strcmp(gj->action, "console") == 0) {
		char path[PATH_MAX + 80];

		snprintf(path, sizeof path, "%s/%s/config", c->lxc_path,
		    gj->guest);
		gj->type = access(path, F_OK) == 0 ? GUEST_LXC : GUEST_VM;
		gj->has_type = 1;
		return 0;
	}
#endif
	if (c->guests & GUESTS_LXC)
		lxc = guest_lxc_exists(c, gj->guest);
	if (c->guests & GUESTS_LIBVIRT)
		vm = guest_libvirt_exists(c, gj->guest);
	if (lxc == 1 && vm == 1) {
		snprintf(err, errlen, "both a VM and an LXC container are named "
		    "%s: say which (type vm or lxc)", gj->guest);
		return -1;
	}
	if (lxc != 1 && vm != 1) {
		/* Not found, or no driver to look with: say which. */
		json_t *d = lxc == -1 ? guest_lxc_driver(c) : vm == -1 ?
		    guest_libvirt_driver(c) : NULL;

		snprintf(err, errlen, "no guest %s on this node%s%s%s",
		    gj->guest, d ? " (" : "", d ? json_string_value(
		    json_object_get(d, "detail")) : "", d ? ")" : "");
		json_decref(d);
		return -1;
	}
	lxc = lxc == 1;
	vm = vm == 1;
	gj->type = vm ? GUEST_VM : GUEST_LXC;
	gj->has_type = 1;
	return 0;
}

static int
lxc_run(const struct agent_conf *c, const char *guest, const char *what,
    const json_t *argv, long timeout, struct guest_out *o, int *status,
    char *err, size_t errlen)
{
	guest_say(o, "stdout", "guard: running the %s (%s ...)", what,
	    json_string_value(json_array_get(argv, 0)));
	if (guest_lxc_attach(c, guest, argv, timeout, o, status, err,
	    errlen) == -1) {
		guest_say(o, "stderr", "guard: %s: %s", what, err);
		*status = 127;
	}
	guest_say(o, "stdout", "guard: the %s exited %d", what, *status);
	return 0;
}

/* guard: exit 0 when the change is kept, 1 when it was rolled back or
 * the guard failed; the outcome as the last line of stdout. */
static json_t *
guard(const struct agent_conf *c, struct guest_job *gj, struct guest_out *o)
{
	struct guest_job step = *gj;
	char err[512] = "", *line;
	const char *outcome;
	int change = -1, health = -1, ran_health = 0, kept_snap = 1, rc = 1;
	int64_t end;
	json_t *res;
	long left;

	if (gj->type != GUEST_LXC) {
		snprintf(err, sizeof err, "guard runs its change inside an LXC "
		    "guest (attach); a VM has no such channel");
		outcome = "failed";
		kept_snap = 0;
		goto out;
	}
	if (gj->snapshot[0] == '\0')
		snprintf(step.snapshot, sizeof step.snapshot, "guard-%" PRId64,
		    clock_wall_ms());
	snprintf(gj->snapshot, sizeof gj->snapshot, "%s", step.snapshot);
	end = clock_mono_ms() + (gj->timeout ? gj->timeout : GUARD_DEFAULT) *
	    1000L;
	snprintf(step.action, sizeof step.action, "snapshot");
	guest_say(o, "stdout", "guard: snapshot %s of %s", step.snapshot,
	    gj->guest);
	if (guest_lxc_action(c, &step, o, err, sizeof err) == -1) {
		outcome = "failed";
		kept_snap = 0;
		goto out;
	}
	if (guest_lxc_running(c, gj->guest) != 1) {
		snprintf(err, sizeof err, "%s is not running: nothing to attach "
		    "the change to", gj->guest);
		change = 127;
		goto rollback;
	}
	left = (long)((end - clock_mono_ms()) / 1000);
	lxc_run(c, gj->guest, "change", gj->argv, left > 0 ? left : 1, o,
	    &change, err, sizeof err);
	if (change != 0)
		goto rollback;
	left = (long)((end - clock_mono_ms()) / 1000);
	lxc_run(c, gj->guest, "health check", gj->health, left > 0 ? left : 1,
	    o, &health, err, sizeof err);
	ran_health = 1;
	if (health != 0)
		goto rollback;
	outcome = "kept";
	rc = 0;
	if (!gj->keep_snapshot) {
		snprintf(step.action, sizeof step.action, "snapshot-delete");
		if (guest_lxc_action(c, &step, o, err, sizeof err) == -1)
			guest_say(o, "stderr", "guard: the change is kept but its "
			    "snapshot %s stays: %s", step.snapshot, err);
		else
			kept_snap = 0;
	}
	goto out;
rollback:
	guest_say(o, "stdout", "guard: rolling %s back to %s", gj->guest,
	    step.snapshot);
	snprintf(step.action, sizeof step.action, "rollback");
	if (guest_lxc_action(c, &step, o, err, sizeof err) == -1) {
		outcome = "failed";
		goto out;
	}
	outcome = "rolled_back";
	if (!gj->keep_snapshot) {
		snprintf(step.action, sizeof step.action, "snapshot-delete");
		if (guest_lxc_action(c, &step, o, err, sizeof err) == 0)
			kept_snap = 0;
	}
out:
	if (err[0] && strcmp(outcome, "kept") != 0)
		guest_say(o, "stderr", "guard: %s", err);
	res = json_pack("{s:s, s:s, s:i, s:o, s:b}", "outcome", outcome,
	    "snapshot", gj->snapshot, "change_exit", change, "health_exit",
	    ran_health ? json_integer(health) : json_null(), "snapshot_kept",
	    kept_snap);
	if (res && (line = json_dumps(res, JSON_COMPACT)) != NULL) {
		guest_say(o, "stdout", "%s", line);
		free(line);
	}
	json_decref(res);
	return json_pack("{s:s, s:i}", "status", "done", "exit_code", rc);
}

static json_t *
failed(const char *why)
{
	return json_pack("{s:s, s:s, s:i}", "status", "failed", "error", why,
	    "exit_code", 1);
}

static json_t *
run_job(const struct agent_conf *c, const json_t *args, struct guest_out *o)
{
	struct guest_job gj;
	char err[512] = "";
	int rc;

	if (guest_job_parse(args, &gj, err, sizeof err) == -1)
		goto refused;
	if (c->guests == 0) {
		snprintf(err, sizeof err, "this node has no guest drivers "
		    "(guests = none)");
		goto refused;
	}
	if (find_type(c, &gj, err, sizeof err) == -1)
		goto refused;
	log_info("job %" PRId64 ": guest %s %s (%s)", o->id, gj.action,
	    gj.guest, guest_type_name(gj.type));
	job_output_send(o->a, o->id, o->out, 1);	/* it runs */
	if (strcmp(gj.action, "guard") == 0)
		return guard(c, &gj, o);
	if (strcmp(gj.action, "console") == 0) {
		struct astream st;

		if (astream_parse(&st, c, args, err, sizeof err) == -1)
			return failed(err);
		rc = guest_console_run(c, gj.guest, gj.type, &st, o->out);
		if (st.reached == -1)		/* unreached_stream: … */
			return failed(st.why);
		return rc == 0 ? json_pack("{s:s, s:i}", "status", "done",
		    "exit_code", 0) : failed("the console relay failed");
	}
	rc = gj.type == GUEST_LXC ? guest_lxc_action(c, &gj, o, err,
	    sizeof err) : guest_libvirt_action(c, &gj, o, err, sizeof err);
	if (rc == -1) {
		guest_say(o, "stderr", "%s", err);
		return failed(err);
	}
	return json_pack("{s:s, s:i}", "status", "done", "exit_code", 0);

refused:
	/* A console's operator waits on the stream: end it with the reason. */
	if (json_is_string(json_object_get(args, "action")) && strcmp(
	    json_string_value(json_object_get(args, "action")), "console") == 0)
		guest_console_refuse(c, args, err);
	return failed(err);
}

void *
guest_thread(void *arg)
{
	struct job_thread *t = arg;
	const struct agent_conf *c = job_conf(t);
	struct job_output out = { json_array(), 0, 0, 0 };
	struct guest_out o;
	json_t *res;

	memset(&o, 0, sizeof o);
	o.id = t->id;
	o.out = &out;
	if ((o.a = aclient_new(c, 1)) == NULL)
		goto out;
	if ((res = run_job(c, t->args, &o)) == NULL)
		res = failed("out of memory");
	json_object_set(res, "chunks", out.pending);
	if (out.truncated)
		json_object_set_new(res, "error", json_string("output truncated: "
		    "bastion was unreachable for too long"));
	job_finish(t->j, o.a, t->id, res);
out:
	aclient_free(o.a);
	json_decref(out.pending);
	job_thread_done(t);
	return NULL;
}
#endif /* AGENTD_NO_CURL */
