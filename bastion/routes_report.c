/* routes_report.c — what agents report of the workloads on their nodes
 * (containers, DESIGN §12; guests, §13): posted by the agent, stored as
 * the latest per node, listed per node for operators. The kinds differ
 * only in how a report is checked and how a node is shown. */
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "db.h"
#include "http.h"
#include "routes.h"

#define STALE_HEARTBEATS	3	/* missed this many: "stale" */

void
routes_report_post(struct request *r, enum db_report_kind kind,
    const char *items, routes_report_clean_fn clean)
{
	char agent[AGENT_ID_LEN], why[200];
	json_t *body, *keep = NULL;
	char *text = NULL;

	if (routes_agent_auth(r, agent) == -1 ||
	    (body = http_body_json(r)) == NULL)
		return;
	if ((keep = clean(body, why, sizeof why)) == NULL) {
		http_reply_error(r, 422, "invalid", "%s", why);
		goto out;
	}
	if ((text = json_dumps(keep, JSON_COMPACT)) == NULL ||
	    db_report_put(r->app->db, kind, agent, text) != DB_OK) {
		http_reply_error(r, 500, "internal", "cannot store the report");
		goto out;
	}
	http_reply_json(r, 200, json_pack("{s:s, s:I}", "agent_id", agent,
	    items, (json_int_t)json_array_size(json_object_get(keep, items))));
out:
	free(text);
	json_decref(keep);
	json_decref(body);
}

int
routes_report_nodes(struct request *r, enum db_report_kind kind,
    const char *agent_id, routes_report_node_fn node_json, json_t **out)
{
	json_t *rows, *list, *row, *n;
	size_t i;
	int rc;

	if ((rc = db_reports(r->app->db, kind, agent_id, &rows)) != DB_OK) {
		if (rc == DB_NOTFOUND)
			http_reply_error(r, 404, "not_found", "no agent %s",
			    agent_id);
		else
			http_reply_error(r, 500, "internal", "database error");
		return -1;
	}
	if ((list = json_array()) == NULL) {
		json_decref(rows);
		http_reply_error(r, 500, "internal", "out of memory");
		return -1;
	}
	json_array_foreach(rows, i, row)
		if ((n = node_json(r, row)) != NULL)
			json_array_append_new(list, n);
	json_decref(rows);
	*out = list;
	return 0;
}

int
routes_report_stale(struct request *r, int64_t at_ms, int64_t now_ms)
{
	return at_ms == 0 || now_ms - at_ms > (int64_t)STALE_HEARTBEATS *
	    1000 * routes_heartbeat_interval(r);
}
