/* db_report.c — the container_reports and guest_reports tables: the
 * latest report of each node, per kind (db_report.h). */
#define LOG_SUBSYS "db"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db_internal.h"
#include "db_report.h"

/* The statements of each kind, whole: no SQL is built at run time. */
static const struct {
	const char	*put;
	const char	*list;
} sql[] = {
	[DB_REPORT_CONTAINERS] = {
	    "INSERT INTO container_reports (agent_id, received_ms, report)"
	    " VALUES (?1, ?2, ?3) ON CONFLICT(agent_id) DO UPDATE SET"
	    " received_ms = ?2, report = ?3",
	    "SELECT a.id, a.hostname, coalesce(r.received_ms, 0), r.report"
	    " FROM agents a LEFT JOIN container_reports r ON r.agent_id = a.id"
	    " WHERE a.revoked_ms = 0 AND (CAST(?1 AS TEXT) IS NULL OR"
	    " a.id = ?1) ORDER BY a.hostname, a.id" },
	[DB_REPORT_GUESTS] = {
	    "INSERT INTO guest_reports (agent_id, received_ms, report)"
	    " VALUES (?1, ?2, ?3) ON CONFLICT(agent_id) DO UPDATE SET"
	    " received_ms = ?2, report = ?3",
	    "SELECT a.id, a.hostname, coalesce(r.received_ms, 0), r.report"
	    " FROM agents a LEFT JOIN guest_reports r ON r.agent_id = a.id"
	    " WHERE a.revoked_ms = 0 AND (CAST(?1 AS TEXT) IS NULL OR"
	    " a.id = ?1) ORDER BY a.hostname, a.id" },
};

int
db_report_put(struct db *db, enum db_report_kind kind, const char *agent_id,
    const char *report)
{
	int rc;

	db_lock(db);
	rc = db_run(db, sql[kind].put, DB_TEXT(agent_id),
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
db_reports(struct db *db, enum db_report_kind kind, const char *agent_id,
    json_t **out)
{
	json_t *list;
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, sql[kind].list, agent_id ?
	    DB_TEXT(agent_id) : DB_NULL), report_row, &list);
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
