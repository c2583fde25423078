/* db_container.c — the container_reports table: the latest snapshot of
 * each node's Docker engine. */
#define LOG_SUBSYS "db"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db_container.h"
#include "db_internal.h"

int
db_container_report_put(struct db *db, const char *agent_id,
    const char *report)
{
	int rc;

	db_lock(db);
	rc = db_run(db, "INSERT INTO container_reports (agent_id, received_ms,"
	    " report) VALUES (?1, ?2, ?3) ON CONFLICT(agent_id) DO UPDATE SET"
	    " received_ms = ?2, report = ?3", DB_TEXT(agent_id),
	    DB_INT(clock_wall_ms()), DB_TEXT(report));
	db_unlock(db);
	return rc;
}

static json_t *
report_row(struct db_st *st)
{
	json_t *rep = NULL;

	if (!db_col_null(st, 3))
		rep = json_loads(db_col_text(st, 3), 0, NULL);
	return json_pack("{s:s, s:s, s:I, s:o}", "agent_id", db_col_text(st, 0),
	    "hostname", db_col_text(st, 1), "received_ms",
	    (json_int_t)db_col_int64(st, 2), "report",
	    rep ? rep : json_null());
}

int
db_container_reports(struct db *db, const char *agent_id, json_t **out)
{
	json_t *list;
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, "SELECT a.id, a.hostname,"
	    " coalesce(r.received_ms, 0), r.report FROM agents a"
	    " LEFT JOIN container_reports r ON r.agent_id = a.id"
	    " WHERE a.revoked_ms = 0 AND (CAST(?1 AS TEXT) IS NULL OR"
	    " a.id = ?1)"
	    " ORDER BY a.hostname, a.id", agent_id ? DB_TEXT(agent_id) :
	    DB_NULL), report_row, &list);
	db_unlock(db);
	if (rc != DB_OK)
		return rc;
	if (agent_id && json_array_size(list) == 0) {
		json_decref(list);
		return DB_NOTFOUND;
	}
	*out = list;
	return DB_OK;
}
