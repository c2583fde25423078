/* routes_stream.c — the two ends of an interactive stream (stream.h):
 * the agent's (client certificate) and the operator's (the actor that
 * made it). Bytes travel base64 in JSON; reads are long polls.
 *
 *   agent:    GET  /agent/v1/streams/{id}/input?wait=S
 *             POST /agent/v1/streams/{id}/output  {data, end?, exit_code?}
 *   operator: GET  /api/v1/streams/{id}/output?wait=S
 *             POST /api/v1/streams/{id}/input   {data?, resize?: [rows, cols],
 *                                                 close?}
 */
#define LOG_SUBSYS "stream"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "bastion.h"
#include "cluster.h"
#include "db_agent.h"
#include "http.h"
#include "log.h"
#include "routes.h"
#include "stream.h"

#define L_API (L_CONTROL | L_ADMIN)
#define CHUNK_MAX	(256 * 1024)	/* bytes per answer */
#define BODY_MAX	(512 * 1024)

/* Who is asking, for the stream's owner check. */
static const char *
owner_of(const struct request *r)
{
	return r->audit.actor[0] ? r->audit.actor : r->client;
}

static int
wait_param(struct request *r)
{
	const char *ws = http_query(r, "wait");
	char *end;
	long w;

	if (ws == NULL)
		return 0;
	errno = 0;
	w = strtol(ws, &end, 10);
	if (*ws == '\0' || *end || errno || w < 0)
		return 0;
	return w > STREAM_WAIT_MAX ? STREAM_WAIT_MAX : (int)w;
}

/* Take what side has; nothing and a wait: park (once). */
static void
reply_take(struct request *r, enum stream_side side, const char *who)
{
	struct stream_state st;
	struct buf out;
	char *b64 = NULL;
	json_t *o;
	int wait = wait_param(r), resumed = stream_resumed(r) != NULL;

	if (resumed)
		who = stream_resumed(r);
	buf_init(&out, CHUNK_MAX);
	if (stream_take(r->params[0], side, who, &out, &st) == -1) {
		http_reply_error(r, 404, "not_found", "no such stream (it ended, "
		    "or is not yours)");
		goto out;
	}
	if (out.len == 0 && !resumed && wait > 0 && !st.ended && !st.closed &&
	    !(side == STREAM_NODE && st.rows)) {
		if (stream_park(r, r->params[0], side, who, wait) == 0)
			goto out;	/* answered when something comes */
	}
	if ((b64 = b64_encode(out.data ? out.data : "", out.len)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	o = json_pack("{s:s, s:b, s:b}", "data", b64, "ended", st.ended,
	    "closed", st.closed);
	if (side == STREAM_CLIENT) {
		json_object_set_new(o, "attached", json_boolean(st.attached));
		json_object_set_new(o, "exit_code", st.has_exit ?
		    json_integer(st.exit_code) : json_null());
		if (st.why[0])
			json_object_set_new(o, "reason", json_string(st.why));
	} else if (st.rows > 0) {
		json_object_set_new(o, "resize", json_pack("[i, i]", st.rows,
		    st.cols));
	}
	http_reply_json(r, 200, o);
out:
	free(b64);
	buf_free(&out);
}

/* {data: base64} into the stream; 0, or -1 replied. */
static int
put_data(struct request *r, const json_t *body, enum stream_side side,
    const char *who)
{
	const char *d = json_string_value(json_object_get(body, "data"));
	unsigned char *raw;
	size_t len;
	int rc;

	if (json_object_get(body, "data") == NULL)
		return 0;
	if (d == NULL || (raw = b64_decode(d, BODY_MAX, &len)) == NULL) {
		http_reply_error(r, 422, "invalid", "data must be base64");
		return -1;
	}
	rc = stream_write(r->params[0], side, who, raw, len);
	free(raw);
	if (rc == -2) {
		http_reply_error(r, 429, "stream_full", "the other side has not "
		    "read what was sent: try again");
		return -1;
	}
	if (rc == -1) {
		http_reply_error(r, 404, "not_found", "no such stream (it ended, "
		    "or is not yours)");
		return -1;
	}
	return 0;
}

/* --- the agent's end ----------------------------------------------------- */

static void
get_node_input(struct request *r)
{
	char agent[AGENT_ID_LEN];

	if (stream_resumed(r))		/* as which agent it was parked */
		reply_take(r, STREAM_NODE, "");
	else if (routes_agent_auth(r, agent) == 0)
		reply_take(r, STREAM_NODE, agent);
}

static void
post_node_output(struct request *r)
{
	char agent[AGENT_ID_LEN];
	const json_t *ec;
	json_t *body;

	if (routes_agent_auth(r, agent) == -1 ||
	    (body = http_body_json(r)) == NULL)
		return;
	if (put_data(r, body, STREAM_NODE, agent) == 0) {
		ec = json_object_get(body, "exit_code");
		if (json_is_true(json_object_get(body, "end")) &&
		    stream_end(r->params[0], STREAM_NODE, agent,
		    json_is_integer(ec), (int)json_integer_value(ec)) == -1)
			http_reply_error(r, 404, "not_found", "no such stream");
		else {
			struct stream_state st;

			/* Tell the agent whether the operator left. */
			if (stream_take(r->params[0], STREAM_NODE, agent, NULL,
			    &st) == -1) {
				memset(&st, 0, sizeof st);
				st.closed = 1;
			}
			http_reply_json(r, 200, json_pack("{s:b}", "closed",
			    st.closed));
		}
	}
	json_decref(body);
}

/* --- the operator's end -------------------------------------------------- */

static void
get_client_output(struct request *r)
{
	reply_take(r, STREAM_CLIENT, owner_of(r));
}

static void
post_client_input(struct request *r)
{
	const json_t *rs = NULL;
	json_t *body;
	long rows, cols;

	if ((body = http_body_json(r)) == NULL)
		return;
	if (put_data(r, body, STREAM_CLIENT, owner_of(r)) == -1)
		goto out;
	if ((rs = json_object_get(body, "resize")) != NULL) {
		rows = (long)json_integer_value(json_array_get(rs, 0));
		cols = (long)json_integer_value(json_array_get(rs, 1));
		if (!json_is_array(rs) || json_array_size(rs) != 2 || rows < 1 ||
		    rows > 1000 || cols < 1 || cols > 1000) {
			http_reply_error(r, 422, "invalid", "resize is [rows, "
			    "columns], 1-1000 each");
			goto out;
		}
		if (stream_resize(r->params[0], owner_of(r), (int)rows,
		    (int)cols) == -1) {
			http_reply_error(r, 404, "not_found", "no such stream");
			goto out;
		}
	}
	if (json_is_true(json_object_get(body, "close")) &&
	    stream_end(r->params[0], STREAM_CLIENT, owner_of(r), 0, 0) == -1) {
		http_reply_error(r, 404, "not_found", "no such stream");
		goto out;
	}
	http_reply_json(r, 200, json_pack("{s:s}", "stream", r->params[0]));
out:
	json_decref(body);
}

/* --- across bastions (DESIGN §16) ---------------------------------------- */

int
routes_stream_args(struct request *r, const char *agent_id, json_t *args,
    const char *sid)
{
	char url[CONFIG_URL_LEN];

	if (json_object_set_new(args, "stream", json_string(sid)) == -1)
		return -1;
	/* Only where it helps: an agent long-polling here reaches the
	 * stream on its own connection (and an agent older than
	 * stream_url, which refuses what it does not know, keeps working
	 * wherever it did). */
	if (!db_shared(r->app->db) || routes_agent_polling(agent_id))
		return 0;
	cluster_url(url);
	if (url[0] && json_object_set_new(args, "stream_url", json_string(url))
	    == -1)
		return -1;
	return 0;
}

void
routes_stream_unreached(const char *sid, const char *agent_id,
    const char *why, void *unused)
{
	(void)unused;
	if (stream_fail(sid, agent_id, why) == 0)
		log_info("stream %.8s… of agent %s: the node did not come: %s",
		    sid, agent_id, why);
}

void
routes_stream_job_failed(struct db *db, const char *agent_id, int64_t job,
    const char *error)
{
	char why[DB_STREAM_WHY_MAX + 1];
	const char *sid, *owner;
	json_t *j = NULL;

	if (db_job_json(db, job, &j) != DB_OK)
		return;
	sid = json_string_value(json_object_get(json_object_get(j, "args"),
	    "stream"));
	owner = json_string_value(json_object_get(j, "agent_id"));
	if (sid == NULL || owner == NULL || strcmp(owner, agent_id) != 0)
		goto out;
	if (error && strncmp(error, "unreached_stream", 16) == 0)
		snprintf(why, sizeof why, "the node could not reach the bastion "
		    "that holds this session%s", error + 16);
	else
		snprintf(why, sizeof why, "the node did not open the session: "
		    "%s", error && *error ? error : "its job failed");
	/* Here, and on the bastion that holds it (if another). */
	routes_stream_unreached(sid, agent_id, why, NULL);
	if (db_notify_stream(db, sid, agent_id, why) == -1)
		log_warnx("stream %.8s…: cannot tell the other bastions that "
		    "its node did not come", sid);
out:
	json_decref(j);
}

/* Who may do what: see struct route in http.h. A stream is used only by
 * the actor who made it (and its agent); making one is an audited action
 * of its own (container.exec with tty). */
const struct route routes_stream[] = {
	{ L_CONTROL, "GET", "/agent/v1/streams/{id}/input", get_node_input, 0,
	    ROLE_NONE, SCOPE_READ, RF_AGENT, NULL },
	{ L_CONTROL, "POST", "/agent/v1/streams/{id}/output", post_node_output,
	    BODY_MAX, ROLE_NONE, SCOPE_READ, RF_AGENT, NULL },
	{ L_API, "GET", "/api/v1/streams/{id}/output", get_client_output, 0,
	    ROLE_OPERATOR, SCOPE_EXEC, 0, NULL },
	{ L_API, "POST", "/api/v1/streams/{id}/input", post_client_input,
	    BODY_MAX, ROLE_OPERATOR, SCOPE_EXEC, 0, NULL },
	{ 0, NULL, NULL, NULL, 0, ROLE_UNSET, SCOPE_READ, 0, NULL },
};
