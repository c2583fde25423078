/* routes_guest_console.c — a guest's console (DESIGN §13): POST
 * /api/v1/agents/{id}/guests/{guest}/console makes a stream
 * (stream.c) and a signed job of kind "guest" (action console) that tells
 * the node's agent to relay the guest's console over it; the operator's
 * client then uses /api/v1/streams/{id}/… (routes_stream.c) as
 * `containers exec -it` does.
 *
 * One session per guest: another open is 409 console_busy unless it
 * forces, which ends the old stream first. Each session leaves two audit
 * rows: guest.console when it opens (the route's own) and
 * guest.console.end with its duration when it is over, whichever side
 * ended it (the operator, the node, a takeover, idle, bastion stopping):
 * the stream tells once (stream_on_over). */
#define LOG_SUBSYS "console"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bastion.h"
#include "clock.h"
#include "db_auth.h"
#include "guest.h"
#include "http.h"
#include "log.h"
#include "routes.h"
#include "stream.h"

#define L_API (L_CONTROL | L_ADMIN)

/* An open console: who holds it, since when, its stream. */
struct session {
	char			 agent[AGENT_ID_LEN];
	char			 guest[GUEST_NAME_MAX + 1];
	char			 sid[STREAM_ID_LEN];
	int64_t			 start_mono;
	int			 opened;	/* the job is queued */
	struct audit_entry	 e;		/* the opener's row, for the end */
	struct db		*db;
	struct session		*next;
};

static struct {
	pthread_mutex_t	 mu;
	struct session	*head;
} C = { PTHREAD_MUTEX_INITIALIZER, NULL };

/* Caller holds C.mu. */
static struct session *
session_find(const char *agent, const char *guest)
{
	struct session *s;

	for (s = C.head; s; s = s->next)
		if (strcmp(s->agent, agent) == 0 && strcmp(s->guest, guest) == 0)
			return s;
	return NULL;
}

static void
session_unlink(struct session *s)
{
	struct session **pp;

	for (pp = &C.head; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			return;
		}
}

/* The stream is over (stream_over_fn): the end row, once, and the guest
 * is free again. */
static void
session_over(void *arg, const char *why)
{
	struct session *s = arg;
	int64_t ms = clock_mono_ms() - s->start_mono;
	static const struct {
		const char *why, *by;
	} names[] = {
		{ "node", "node" }, { "client", "operator" },
		{ "killed", "forced" }, { "idle", "idle" },
		{ "stopping", "bastion stopping" },
		{ "unreached", "node did not come" },
	};
	const char *by = why;
	size_t i;

	pthread_mutex_lock(&C.mu);
	session_unlink(s);
	pthread_mutex_unlock(&C.mu);
	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(names[i].why, why) == 0)
			by = names[i].by;
	if (s->opened) {
		s->e.written = 0;
		s->e.id = 0;
		s->e.error[0] = '\0';
		AUDIT_SET(&s->e, action, "guest.console.end");
		AUDIT_SET(&s->e, result, "ok");
		AUDIT_SET(&s->e, detail, "{\"duration_ms\":%lld,\"ended_by\":"
		    "\"%s\",\"stream\":\"%.8s\"}", (long long)ms, by, s->sid);
		log_info("console of %s on agent %s (stream %.8s…) over after "
		    "%lld ms: %s", s->guest, s->agent, s->sid, (long long)ms, by);
		db_audit_append(s->db, &s->e);
	}
	free(s);
}

/* {rows, cols, force?}: every member checked, nothing else taken. 0 or
 * -1 replied. */
static int
body_check(struct request *r, const json_t *body, int *rows, int *cols,
    int *force)
{
	const char *k;
	json_t *v;
	long long n;

	*rows = 24;
	*cols = 80;
	*force = 0;
	if (body == NULL)
		return 0;
	json_object_foreach((json_t *)body, k, v) {
		if (strcmp(k, "force") == 0) {
			if (!json_is_boolean(v))
				goto bad;
			*force = json_is_true(v);
		} else if (strcmp(k, "rows") == 0 || strcmp(k, "cols") == 0) {
			n = json_is_integer(v) ? json_integer_value(v) : 0;
			if (n < 1 || n > 1000)
				goto bad;
			*(k[0] == 'r' ? rows : cols) = (int)n;
		} else {
			http_reply_error(r, 422, "invalid", "console takes rows, "
			    "cols and force, not '%.40s'", k);
			return -1;
		}
	}
	return 0;
bad:
	http_reply_error(r, 422, "invalid", "rows and cols are 1-1000, force "
	    "true or false");
	return -1;
}

/* Whoever holds agent's guest: ended when force (its own end row), else
 * 409. 0 when the guest is free now, -1 replied. */
static int
take_over(struct request *r, const char *agent, const char *guest,
    int force)
{
	char sid[STREAM_ID_LEN], holder[80];
	struct session *s;
	int64_t since;
	int tries;

	for (tries = 0; tries < 3; tries++) {
		pthread_mutex_lock(&C.mu);
		if ((s = session_find(agent, guest)) == NULL) {
			pthread_mutex_unlock(&C.mu);
			return 0;
		}
		memcpy(sid, s->sid, sizeof sid);
		snprintf(holder, sizeof holder, "%s", s->e.actor);
		since = (clock_mono_ms() - s->start_mono) / 1000;
		pthread_mutex_unlock(&C.mu);
		if (!force) {
			http_reply_error(r, 409, "console_busy", "%s has had the "
			    "console of %s open for %lld s (force takes it over)",
			    holder, guest, (long long)since);
			return -1;
		}
		log_info("req %s: console of %s on agent %s taken over from %s",
		    r->id, guest, agent, holder);
		stream_kill(sid);	/* session_over runs, the slot frees */
	}
	http_reply_error(r, 409, "console_busy", "the console of %s is being "
	    "opened by someone else", guest);
	return -1;
}

/* A session whose job was never queued: no end row (it never opened;
 * no agent has the job, so only a takeover or bastion stopping can have
 * ended it already), and its stream goes. */
static void
abandon(const char *agent, const char *guest, const char *sid)
{
	struct session *s;

	pthread_mutex_lock(&C.mu);
	if ((s = session_find(agent, guest)) != NULL && strcmp(s->sid, sid) ==
	    0)
		s->opened = 0;
	pthread_mutex_unlock(&C.mu);
	stream_kill(sid);
}

static void
post_console(struct request *r)
{
	char id[AGENT_ID_LEN], sid[STREAM_ID_LEN];
	const char *guest = r->params[1], *owner;
	json_t *body = NULL, *args = NULL, *job = NULL;
	struct session *s = NULL;
	int rows, cols, force;

	if (!guest_name_valid(guest)) {
		http_reply_error(r, 422, "bad_guest", "a guest is named by "
		    "^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$");
		return;
	}
	if (r->body.len > 0 && (body = http_body_json(r)) == NULL)
		return;
	if (body_check(r, body, &rows, &cols, &force) == -1 ||
	    routes_agent_of(r, r->params[0], id) == -1)
		goto out;
	AUDIT_SET(&r->audit, target, "%s/%s", id, guest);
	AUDIT_SET(&r->audit, detail, "{\"force\":%s,\"rows\":%d,\"cols\":%d}",
	    force ? "true" : "false", rows, cols);
	if (take_over(r, id, guest, force) == -1)
		goto out;
	if ((s = calloc(1, sizeof *s)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	snprintf(s->agent, sizeof s->agent, "%s", id);
	snprintf(s->guest, sizeof s->guest, "%.64s", guest);
	s->start_mono = clock_mono_ms();
	s->e = r->audit;
	s->db = r->app->db;
	owner = r->audit.actor[0] ? r->audit.actor : r->client;
	/* The slot and its stream at once: a second open waits on C.mu and
	 * then finds this one. */
	pthread_mutex_lock(&C.mu);
	if (session_find(id, guest) != NULL) {
		pthread_mutex_unlock(&C.mu);
		http_reply_error(r, 409, "console_busy", "the console of %s was "
		    "opened by someone else just now", guest);
		goto err_session;
	}
	if (stream_create(id, owner, rows, cols, sid) == -1) {
		pthread_mutex_unlock(&C.mu);
		http_reply_error(r, 503, "busy", "too many interactive streams "
		    "open; try again later");
		goto err_session;
	}
	memcpy(s->sid, sid, sizeof sid);
	s->opened = 1;
	s->next = C.head;
	C.head = s;
	if (stream_on_over(sid, session_over, s) == -1) {	/* cannot be */
		session_unlink(s);
		pthread_mutex_unlock(&C.mu);
		stream_kill(sid);
		http_reply_error(r, 500, "internal", "the stream went away");
		goto err_session;
	}
	pthread_mutex_unlock(&C.mu);
	/* From here the session is the stream's: session_over frees it (a
	 * forced open elsewhere may do so at any time), so s is not used
	 * again; the stream id names it. */
	s = NULL;
	args = json_pack("{s:s, s:s}", "action", "console", "guest", guest);
	if (args == NULL || routes_stream_args(r, id, args, sid) == -1) {
		http_reply_error(r, 500, "internal", "out of memory");
		abandon(id, guest, sid);
		goto out;
	}
	if (routes_job_submit(r, id, "guest", args, ROUTES_JOB_TTL, &job) ==
	    -1) {
		abandon(id, guest, sid);
		goto out;
	}
	http_reply_json(r, 202, json_pack("{s:o, s:s}", "job", job, "stream",
	    sid));
	goto out;

err_session:
	free(s);
out:
	json_decref(args);
	json_decref(body);
}

/* Who may do what: see struct route in http.h and docs/api.md. Opening
 * a console is an action on the guest (operator, scope exec); the stream
 * is then used only by whoever opened it. */
const struct route routes_guest_console[] = {
	{ L_API, "POST", "/api/v1/agents/{id}/guests/{guest}/console",
	    post_console, 4096, ROLE_OPERATOR, SCOPE_EXEC, RF_MUTATES,
	    "guest.console" },
	{ 0, NULL, NULL, NULL, 0, ROLE_UNSET, SCOPE_READ, 0, NULL },
};
