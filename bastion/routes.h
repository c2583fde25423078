/* routes.h — helpers the routes_*.c handlers share. */
#ifndef BASTION_ROUTES_H
#define BASTION_ROUTES_H

#include <jansson.h>

#include "db_agent.h"
#include "db_report.h"
#include "http.h"
#include "mac.h"

/* Normalise the request's first path parameter ({mac}) into out; replies
 * 400 "bad_mac" and returns -1 on garbage. */
int	route_mac_param(struct request *, char out[MAC_STRLEN]);

#define ROUTES_JOB_TTL	3600	/* seconds a job may wait for its agent */

/* routes_agent.c: the unrevoked agent that target (agent id, host name or
 * MAC) names into id; replies 404/409 and returns -1 if there is none. */
int	routes_agent_of(struct request *, const char *target,
	    char id[AGENT_ID_LEN]);
/* Queue a signed job of kind (args as checked for it; the caller keeps
 * its reference) for agent_id, valid ttl seconds: its JSON into *job.
 * Replies the error itself (503 while the signer restarts) and returns
 * -1 otherwise. The commit that seals or fails the job carries the
 * request's audit row. */
int	routes_job_submit(struct request *, const char *agent_id,
	    const char *kind, json_t *args, long long ttl, json_t **job);

/* routes_agent.c: the agent a request comes from, authenticated (its
 * client certificate, unrevoked); replies 401/403 and returns -1 if it
 * is none. */
int	routes_agent_auth(struct request *, char agent_id[AGENT_ID_LEN]);
/* routes_agent.c: whether agent_id has a long poll waiting here now. */
int	routes_agent_polling(const char *agent_id);

/* routes_stream.c, streams across bastions (DESIGN §16): the job's
 * "stream" (sid) into args and, on a shared database when the agent does
 * not poll this bastion, "stream_url" (this bastion's control URL, for
 * the agent to reach the stream). 0 or -1 (out of memory). */
int	routes_stream_args(struct request *, const char *agent_id,
	    json_t *args, const char *sid);
/* A job that was to open a stream failed (error: the agent's; the node
 * never came, "unreached_stream…", or it refused the job): the stream
 * ends with why, here or on the bastion that holds it. */
void	routes_stream_job_failed(struct db *, const char *agent_id,
	    int64_t job, const char *error);
/* db_listen_streams' fn: stream_fail here, if the stream is here. */
void	routes_stream_unreached(const char *sid, const char *agent_id,
	    const char *why, void *unused);

/* [agent] heartbeat_interval in force, seconds. */
int	routes_heartbeat_interval(struct request *);

/* routes_report.c: the latest report of a node's containers or guests.
 * POST: clean(body) gives what is kept (a new reference; NULL with why:
 * 422), stored for the calling agent; the answer counts its items. */
typedef json_t *(*routes_report_clean_fn)(json_t *body, char *why,
	    size_t whylen);
void	routes_report_post(struct request *, enum db_report_kind,
	    const char *items, routes_report_clean_fn clean);
/* The nodes' reports (agent_id's only, or every node's when NULL), each
 * as node_json(row) shows it, into the new array *out; -1 when it
 * answered the request itself (404, 500). */
typedef json_t *(*routes_report_node_fn)(struct request *, const json_t *);
int	routes_report_nodes(struct request *, enum db_report_kind,
	    const char *agent_id, routes_report_node_fn node_json, json_t **out);
/* Whether a report received at at_ms (0: never) is stale at now_ms: three
 * heartbeat intervals old. */
int	routes_report_stale(struct request *, int64_t at_ms, int64_t now_ms);

/* routes_guests.c (DESIGN §13): the args of a guest job for action on
 * guest from a request body (may be NULL): only that action's fields,
 * each checked; NULL with why otherwise. */
json_t	*routes_guest_args(const char *action, const char *guest,
	    const json_t *body, char *why, size_t whylen);
/* A guest report rebuilt from the fields it may hold, each checked and
 * capped; NULL with why when it is not one. */
json_t	*routes_guest_report_clean(const json_t *body, char *why,
	    size_t whylen);

#endif
