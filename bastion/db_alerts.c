/* db_alerts.c — alerts, silences, deliveries, and the scan of agents'
 * health that the attention pass (alerts.c) makes. */
#define LOG_SUBSYS "db"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db_alerts.h"
#include "db_auth.h"
#include "db_internal.h"
#include "log.h"

int
db_health_each(struct db *db, void (*fn)(const struct db_health_row *,
    void *), void *arg)
{
	struct db_health_row r;
	struct db_st *st = NULL;
	struct db_conn *c = NULL;
	int rc = DB_ERR;

	/* A connection of its own: a pass over every agent never holds the
	 * writer that heartbeats need (WAL: readers do not block it). */
	if (db_conn_open(db, 1, &c) == -1)
		goto err_open;
	if ((st = db_conn_prepare(c, "SELECT id, mac, hostname, last_seen_ms,"
	    " inventory_ms, cert_not_after_ms, heartbeat FROM agents"
	    " WHERE revoked_ms = 0 ORDER BY id")) == NULL)
		goto err_open;
	while ((rc = db_step(st)) == DB_ROW) {
		r.agent_id = db_col_text(st, 0);
		r.mac = db_col_text(st, 1);
		r.hostname = db_col_text(st, 2);
		r.last_seen_ms = db_col_int64(st, 3);
		r.inventory_ms = db_col_int64(st, 4);
		r.cert_not_after_ms = db_col_int64(st, 5);
		r.heartbeat = db_col_text(st, 6);
		fn(&r, arg);
	}
	rc = rc == DB_DONE ? DB_OK : DB_ERR;
err_open:
	if (rc != DB_OK)
		log_warnx("health scan failed");
	db_finalize(st);
	db_conn_close(c);
	return rc;
}

static void
alert_fill(struct db_st *st, struct db_alert *a)
{
	memset(a, 0, sizeof *a);
	a->id = db_col_int64(st, 0);
	snprintf(a->agent_id, sizeof a->agent_id, "%s", db_col_text(st, 1));
	snprintf(a->node, sizeof a->node, "%s", db_col_text(st, 2));
	snprintf(a->reason, sizeof a->reason, "%s", db_col_text(st, 3));
	snprintf(a->subject, sizeof a->subject, "%s", db_col_text(st, 4));
	snprintf(a->level, sizeof a->level, "%s", db_col_text(st, 5));
	a->opened_ms = db_col_int64(st, 6);
	a->notified_ms = db_col_int64(st, 7);
}

int
db_alert_open_list(struct db *db, struct db_alert **out, size_t *n)
{
	struct db_alert *arr = NULL, *tmp;
	struct db_st *st;
	size_t cnt = 0, cap = 0;
	int rc;

	db_lock(db);
	if ((st = db_stmt(db, "SELECT id, agent_id, node, reason, subject,"
	    " level, opened_ms, notified_ms FROM alerts WHERE resolved_ms = 0"
	    " ORDER BY id")) == NULL) {
		db_unlock(db);
		return DB_ERR;
	}
	while ((rc = db_step(st)) == DB_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			if (cap > SIZE_MAX / sizeof *arr ||
			    (tmp = realloc(arr, cap * sizeof *arr)) == NULL) {
				rc = DB_ERR;
				break;
			}
			arr = tmp;
		}
		alert_fill(st, &arr[cnt++]);
	}
	db_finalize(st);
	db_unlock(db);
	if (rc != DB_DONE) {
		free(arr);
		return DB_ERR;
	}
	*out = arr;
	*n = cnt;
	return DB_OK;
}

int
db_alert_open(struct db *db, struct db_alert *a, const char *message,
    struct audit_entry *e)
{
	struct db_st *st;
	int rc;

	if (e)
		db_audit_pending(e);
	if (db_begin(db) == -1) {
		db_audit_pending(NULL);
		return DB_ERR;
	}
	if ((st = db_stmt(db, "INSERT INTO alerts (agent_id, node, reason,"
	    " subject, level, message, opened_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"
	    " ON CONFLICT DO NOTHING RETURNING id", DB_TEXT(a->agent_id),
	    DB_TEXT(a->node), DB_TEXT(a->reason), DB_TEXT(a->subject),
	    DB_TEXT(a->level), DB_TEXT(message), DB_INT(a->opened_ms))) == NULL)
		rc = DB_ERR;
	else {
		rc = db_step(st);
		if (rc == DB_ROW) {
			a->id = db_col_int64(st, 0);
			rc = DB_OK;
		} else
			rc = rc == DB_DONE ? DB_CONFLICT : DB_ERR;
		db_finalize(st);
	}
	rc = db_end(db, e != NULL, rc);
	db_audit_pending(NULL);
	return rc;
}

int
db_alert_resolve(struct db *db, int64_t id, struct audit_entry *e)
{
	int rc;

	if (e)
		db_audit_pending(e);
	if (db_begin(db) == -1) {
		db_audit_pending(NULL);
		return DB_ERR;
	}
	rc = db_run(db, "UPDATE alerts SET resolved_ms = ? WHERE id = ? AND"
	    " resolved_ms = 0", DB_INT(clock_wall_ms()), DB_INT(id));
	rc = db_end(db, e != NULL, rc);
	db_audit_pending(NULL);
	return rc;
}

int
db_alert_update(struct db *db, int64_t id, const char *level,
    const char *message)
{
	int rc;

	db_lock(db);
	rc = db_run(db, "UPDATE alerts SET level = ?, message = ? WHERE id = ?",
	    DB_TEXT(level), DB_TEXT(message), DB_INT(id));
	db_unlock(db);
	return rc;
}

int
db_alert_notified(struct db *db, int64_t id, int64_t ms)
{
	int rc;

	db_lock(db);
	rc = db_run(db, "UPDATE alerts SET notified_ms = ? WHERE id = ?",
	    DB_INT(ms), DB_INT(id));
	db_unlock(db);
	return rc;
}

static json_t *
alert_row(struct db_st *st)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o,"
	    " s:s}",
	    "id", (json_int_t)db_col_int64(st, 0),
	    "agent_id", db_col_text(st, 1), "node", db_col_text(st, 2),
	    "reason", db_col_text(st, 3), "subject", db_col_text(st, 4),
	    "level", db_col_text(st, 5), "message", db_col_text(st, 6),
	    "opened_at", db_time_json(db_col_int64(st, 7)),
	    "resolved_at", db_time_json(db_col_int64(st, 8)),
	    "notified_at", db_time_json(db_col_int64(st, 9)),
	    "state", db_col_int64(st, 8) ? "resolved" : "open");
}

int
db_alert_list(struct db *db, const char *state, int limit, json_t **out)
{
	const char *where = state == NULL ? "1 = 1" : strcmp(state, "open") == 0 ?
	    "resolved_ms = 0" : "resolved_ms != 0";
	char sql[512];
	int rc;

	snprintf(sql, sizeof sql, "SELECT id, agent_id, node, reason, subject,"
	    " level, message, opened_ms, resolved_ms, notified_ms FROM alerts"
	    " WHERE %s ORDER BY id DESC LIMIT ?", where);
	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, sql, DB_INT(limit)), alert_row, out);
	db_unlock(db);
	return rc;
}

int
db_silence_add(struct db *db, const char *agent_id, const char *node,
    const char *reason, int64_t until_ms, const char *actor, int64_t *id)
{
	struct db_st *st;
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((st = db_stmt(db, "INSERT INTO silences (agent_id, node, reason,"
	    " until_ms, created_ms, actor) VALUES (?, ?, ?, ?, ?, ?)"
	    " RETURNING id", DB_TEXT(agent_id), DB_TEXT(node), DB_TEXT(reason),
	    DB_INT(until_ms), DB_INT(clock_wall_ms()), DB_TEXT(actor))) == NULL)
		rc = DB_ERR;
	else {
		rc = db_step(st) == DB_ROW ? DB_OK : DB_ERR;
		if (rc == DB_OK)
			*id = db_col_int64(st, 0);
		db_finalize(st);
	}
	return db_end(db, 1, rc);
}

static json_t *
silence_row(struct db_st *st)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:s}",
	    "id", (json_int_t)db_col_int64(st, 0),
	    "agent_id", db_col_text(st, 1), "node", db_col_text(st, 2),
	    "reason", db_col_text(st, 3),
	    "until", db_time_json(db_col_int64(st, 4)),
	    "created_at", db_time_json(db_col_int64(st, 5)),
	    "actor", db_col_text(st, 6));
}

int
db_silence_list(struct db *db, int64_t now_ms, json_t **out)
{
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, "SELECT id, agent_id, node, reason,"
	    " until_ms, created_ms, actor FROM silences WHERE until_ms > ?"
	    " ORDER BY until_ms", DB_INT(now_ms)), silence_row, out);
	db_unlock(db);
	return rc;
}

int
db_delivery_add(struct db *db, const char *channel, const char *kind,
    int64_t alert_id, const char *node, const char *result, int attempts,
    const char *error, int64_t *id)
{
	struct db_st *st;
	int rc;

	db_lock(db);
	if ((st = db_stmt(db, "INSERT INTO deliveries (channel, time_ms, kind,"
	    " alert_id, node, result, attempts, error) VALUES (?, ?, ?, ?, ?,"
	    " ?, ?, ?) RETURNING id", DB_TEXT(channel), DB_INT(clock_wall_ms()),
	    DB_TEXT(kind), alert_id ? DB_INT(alert_id) : DB_NULL, DB_TEXT(node),
	    DB_TEXT(result), DB_INT(attempts), DB_TEXT(error))) == NULL) {
		db_unlock(db);
		return DB_ERR;
	}
	rc = db_step(st) == DB_ROW ? DB_OK : DB_ERR;
	if (rc == DB_OK && id)
		*id = db_col_int64(st, 0);
	db_finalize(st);
	db_unlock(db);
	return rc;
}

static json_t *
delivery_row(struct db_st *st)
{
	json_t *o = json_pack("{s:I, s:s, s:o, s:s, s:s, s:s, s:i, s:s}",
	    "id", (json_int_t)db_col_int64(st, 0),
	    "channel", db_col_text(st, 1),
	    "time", db_time_json(db_col_int64(st, 2)),
	    "kind", db_col_text(st, 3), "node", db_col_text(st, 5),
	    "result", db_col_text(st, 6), "attempts", db_col_int(st, 7),
	    "error", db_col_text(st, 8));

	if (o && !db_col_null(st, 4))
		json_object_set_new(o, "alert_id",
		    json_integer(db_col_int64(st, 4)));
	return o;
}

#define DELIVERY_COLS "id, channel, time_ms, kind, alert_id, node, result," \
	" attempts, error"

int
db_delivery_list(struct db *db, const char *channel, int limit, json_t **out)
{
	int rc;

	db_lock(db);
	if (channel)
		rc = db_rows_json(db, db_stmt(db, "SELECT " DELIVERY_COLS
		    " FROM deliveries WHERE channel = ? ORDER BY id DESC LIMIT ?",
		    DB_TEXT(channel), DB_INT(limit)), delivery_row, out);
	else
		rc = db_rows_json(db, db_stmt(db, "SELECT " DELIVERY_COLS
		    " FROM deliveries ORDER BY id DESC LIMIT ?", DB_INT(limit)),
		    delivery_row, out);
	db_unlock(db);
	return rc;
}

int
db_delivery_summary(struct db *db, json_t **out)
{
	struct db_st *st;
	json_t *o = json_object(), *last = NULL;
	int rc;

	db_lock(db);
	if ((st = db_stmt(db, "SELECT channel,"
	    " SUM(CASE WHEN result = 'ok' THEN 1 ELSE 0 END),"
	    " SUM(CASE WHEN result = 'ok' THEN 0 ELSE 1 END), MAX(id)"
	    " FROM deliveries GROUP BY channel"))
	    == NULL) {
		db_unlock(db);
		json_decref(o);
		return DB_ERR;
	}
	while ((rc = db_step(st)) == DB_ROW)
		json_object_set_new(o, db_col_text(st, 0), json_pack("{s:I, s:I,"
		    " s:I}", "ok", (json_int_t)db_col_int64(st, 1),
		    "error", (json_int_t)db_col_int64(st, 2), "last_id",
		    (json_int_t)db_col_int64(st, 3)));
	db_finalize(st);
	if (rc == DB_DONE) {
		const char *k;
		json_t *v;

		json_object_foreach(o, k, v) {
			struct db_st *s2 = db_stmt(db, "SELECT " DELIVERY_COLS
			    " FROM deliveries WHERE id = ?", DB_INT(
			    (int64_t)json_integer_value(json_object_get(v,
			    "last_id"))));

			if (s2 && db_step(s2) == DB_ROW)
				last = delivery_row(s2);
			db_finalize(s2);
			json_object_set_new(v, "last", last ? last : json_null());
			last = NULL;
		}
	}
	db_unlock(db);
	if (rc != DB_DONE) {
		json_decref(o);
		return DB_ERR;
	}
	*out = o;
	return DB_OK;
}
