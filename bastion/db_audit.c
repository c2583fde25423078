/* db_audit.c — the append-only, hash-chained audit log.
 *
 * Rows get consecutive ids and each row's hash covers its id, its fields
 * and the previous row's hash (audit.h), so a row changed, removed or
 * moved breaks the chain at that row. The newest id and hash are also
 * kept outside the database, in STATE_DIR/audit.head, so that cutting
 * rows off the end is noticed as well. */
#define LOG_SUBSYS "audit"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "db_auth.h"
#include "db_internal.h"
#include "log.h"

static __thread struct audit_entry *pending;

void
db_audit_pending(struct audit_entry *e)
{
	pending = e;
}

/* STATE_DIR/audit.head (beside an SQLite database file). */
static int
head_path(const struct db *db, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/audit.head", db->statedir);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Fixed-length record, rewritten in place: "<20-digit id> <hash>\n". */
static void
head_write(struct db *db, const struct audit_entry *e)
{
	char path[PATH_MAX], rec[128];
	int fd, n;

	if (head_path(db, path, sizeof path) == -1)
		return;
	n = snprintf(rec, sizeof rec, "%020" PRId64 " %s\n", e->id, e->hash);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600)) == -1) {
		log_warn("%s", path);
		return;
	}
	if (pwrite(fd, rec, (size_t)n, 0) != n)
		log_warn("%s", path);
	close(fd);
}

/* 1 and the record when there is one, 0 when there is none, -1 when it
 * is unreadable or malformed. */
static int
head_read(struct db *db, int64_t *id, char hash[AUDIT_HASH_LEN])
{
	char path[PATH_MAX], rec[128];
	long long v;
	ssize_t n;
	int fd;

	if (head_path(db, path, sizeof path) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return errno == ENOENT ? 0 : -1;
	n = read(fd, rec, sizeof rec - 1);
	close(fd);
	if (n != 86)
		return -1;
	rec[n] = '\0';
	if (sscanf(rec, "%20lld %64[0-9a-f]", &v, hash) != 2 || v < 1 ||
	    strlen(hash) != 64)
		return -1;
	*id = v;
	return 1;
}

/* Append e in the open transaction. Caller holds the lock. */
static int
insert_locked(struct db *db, struct audit_entry *e)
{
	struct db_st *st;
	int64_t last = 0;
	int rc;

	/* Bastions sharing a PostgreSQL database append to one chain: the
	 * transaction holds the cluster's write lock since its BEGIN
	 * (db_pg.c), so no two read the same last row. */
	if ((st = db_stmt(db, "SELECT id, hash FROM audit_log"
	    " ORDER BY id DESC LIMIT 1")) == NULL)
		return DB_ERR;
	rc = db_step(st);
	if (rc == DB_ROW) {
		last = db_col_int64(st, 0);
		snprintf(e->prev_hash, sizeof e->prev_hash, "%s",
		    db_col_text(st, 1));
	} else
		snprintf(e->prev_hash, sizeof e->prev_hash, "%s", AUDIT_GENESIS);
	db_finalize(st);
	if (rc != DB_ROW && rc != DB_DONE)
		return DB_ERR;
	e->id = last + 1;
	e->time_ms = clock_wall_ms();
	if (e->result[0] == '\0')
		snprintf(e->result, sizeof e->result, "ok");
	audit_hash(e, e->prev_hash, e->hash);
	if (db_run(db, "INSERT INTO audit_log (id, time_ms, actor_type, actor,"
	    " source, action, target, result, error, detail, request_id,"
	    " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    DB_INT(e->id), DB_INT(e->time_ms), DB_TEXT(e->actor_type),
	    DB_TEXT(e->actor), DB_TEXT(e->source), DB_TEXT(e->action),
	    DB_TEXT(e->target), DB_TEXT(e->result), DB_TEXT(e->error),
	    DB_TEXT(e->detail), DB_TEXT(e->request_id), DB_TEXT(e->prev_hash),
	    DB_TEXT(e->hash)) != DB_OK) {
		log_warnx("cannot append to the audit log: %s",
		    db_errmsg(db));
		return DB_ERR;
	}
	return DB_OK;
}

int
db_commit(struct db *db)
{
	struct audit_entry *e = pending;
	int with_row = e && e->wanted && !e->written;

	if (with_row && insert_locked(db, e) != DB_OK) {
		log_warnx("req %s: %s not committed: its audit row could not be "
		    "written", e->request_id, e->action);
		return -1;
	}
	if (db_exec(db, "COMMIT") == -1)
		return -1;
	if (with_row) {
		e->written = 1;
		head_write(db, e);
	}
	return 0;
}

int
db_audit_append(struct db *db, struct audit_entry *e)
{
	int rc;

	if (e->written)
		return DB_OK;
	db_lock(db);
	if (db_conn_begin(db->w) == -1) {
		db_unlock(db);
		goto err;
	}
	if ((rc = insert_locked(db, e)) != DB_OK || db_exec(db, "COMMIT") == -1) {
		db_exec(db, "ROLLBACK");
		db_unlock(db);
		goto err;
	}
	e->written = 1;
	head_write(db, e);
	db_unlock(db);
	return DB_OK;
err:
	/* Never lost silently: the whole row goes to the log instead. */
	log_warnx("AUDIT ROW LOST: req %s actor %s:%s from %s action %s "
	    "target %s result %s error %s", e->request_id, e->actor_type,
	    e->actor, e->source, e->action, e->target, e->result, e->error);
	return DB_ERR;
}

#define AUDIT_COLS "id, time_ms, actor_type, actor, source, action, target," \
	" result, error, detail, request_id, prev_hash, hash"

static json_t *
row_json(struct db_st *st)
{
	return json_pack("{s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
	    " s:s, s:s, s:s}",
	    "id", (json_int_t)db_col_int64(st, 0),
	    "time", db_time_json(db_col_int64(st, 1)),
	    "actor_type", db_col_text(st, 2), "actor", db_col_text(st, 3),
	    "source", db_col_text(st, 4), "action", db_col_text(st, 5),
	    "target", db_col_text(st, 6), "result", db_col_text(st, 7),
	    "error", db_col_text(st, 8), "detail", db_col_text(st, 9),
	    "request_id", db_col_text(st, 10), "prev_hash", db_col_text(st, 11),
	    "hash", db_col_text(st, 12));
}

/* ?1 since, ?2 an actor (alone or followed by "#..."), ?3 an action or,
 * ending in ".", a prefix of actions; a NULL matches any. (The casts
 * give PostgreSQL the parameters' type.) */
#define AUDIT_FILTER "time_ms >= ?1 AND (CAST(?2 AS TEXT) IS NULL OR" \
	" actor = ?2 OR substr(actor, 1, length(?2) + 1) = ?2 || '#') AND" \
	" (CAST(?3 AS TEXT) IS NULL OR action = ?3 OR" \
	" (substr(?3, length(?3)) = '.' AND" \
	" substr(action, 1, length(?3)) = ?3))"

int
db_audit_list(struct db *db, const struct audit_query *q, json_t **out)
{
	struct db_st *st;
	json_t *arr = json_array(), *o;
	int rc, newest = q->after_id <= 0;

	db_lock(db);
	if (newest)
		st = db_stmt(db, "SELECT " AUDIT_COLS " FROM audit_log WHERE "
		    AUDIT_FILTER " ORDER BY id DESC LIMIT ?4",
		    DB_INT(q->since_ms), q->actor ? DB_TEXT(q->actor) : DB_NULL,
		    q->action ? DB_TEXT(q->action) : DB_NULL, DB_INT(q->limit));
	else
		st = db_stmt(db, "SELECT " AUDIT_COLS " FROM audit_log WHERE "
		    AUDIT_FILTER " AND id > ?5 ORDER BY id LIMIT ?4",
		    DB_INT(q->since_ms), q->actor ? DB_TEXT(q->actor) : DB_NULL,
		    q->action ? DB_TEXT(q->action) : DB_NULL, DB_INT(q->limit),
		    DB_INT(q->after_id));
	if (st == NULL)
		goto err;
	while ((rc = db_step(st)) == DB_ROW) {
		if ((o = row_json(st)) == NULL)
			continue;
		if (newest)
			json_array_insert_new(arr, 0, o);
		else
			json_array_append_new(arr, o);
	}
	db_finalize(st);
	if (rc != DB_DONE)
		goto err;
	db_unlock(db);
	*out = arr;
	return DB_OK;
err:
	db_unlock(db);
	json_decref(arr);
	return DB_ERR;
}

static void
verdict(json_t *v, int64_t bad_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
verdict(json_t *v, int64_t bad_id, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	json_object_set_new(v, "ok", json_false());
	json_object_set_new(v, "first_bad_id", json_integer(bad_id));
	json_object_set_new(v, "reason", json_string(reason));
}

int
db_audit_verify(struct db *db, json_t **out)
{
	char prev[AUDIT_HASH_LEN] = AUDIT_GENESIS, calc[AUDIT_HASH_LEN];
	char head_hash[AUDIT_HASH_LEN] = "", head_at_id[AUDIT_HASH_LEN] = "";
	int64_t expect = 1, rows = 0, id, head_id = 0;
	const char *f[AUDIT_NFIELDS];
	char ids[32], times[32];
	struct db_st *st;
	json_t *v;
	int rc, i, head, bad = 0;

	if ((v = json_pack("{s:b, s:n, s:n}", "ok", 1, "first_bad_id",
	    "reason")) == NULL)
		return DB_ERR;
	db_lock(db);
	head = head_read(db, &head_id, head_hash);
	if ((st = db_stmt(db, "SELECT " AUDIT_COLS " FROM audit_log"
	    " ORDER BY id")) == NULL) {
		db_unlock(db);
		json_decref(v);
		return DB_ERR;
	}
	while ((rc = db_step(st)) == DB_ROW) {
		rows++;
		if (bad)
			continue;
		id = db_col_int64(st, 0);
		if (id != expect) {
			verdict(v, expect, id > expect ? "row %" PRId64 " is "
			    "missing (the next row is %" PRId64 ")" : "row %"
			    PRId64 " is out of order", expect, id);
			bad = 1;
			continue;
		}
		/* Hash the columns exactly as stored, whatever their length. */
		snprintf(ids, sizeof ids, "%" PRId64, id);
		snprintf(times, sizeof times, "%" PRId64,
		    (int64_t)db_col_int64(st, 1));
		f[0] = ids;
		f[1] = times;
		for (i = 2; i < AUDIT_NFIELDS; i++)
			f[i] = db_col_text(st, i);
		if (strcmp(db_col_text(st, 11), prev) != 0) {
			verdict(v, id, "row %" PRId64 " does not follow row %"
			    PRId64 " (a row was removed, inserted or moved)", id,
			    id - 1);
			bad = 1;
			continue;
		}
		audit_hash_fields(f, prev, calc);
		if (strcmp(calc, db_col_text(st, 12)) != 0) {
			verdict(v, id, "row %" PRId64 " was changed: its content "
			    "does not match its hash", id);
			bad = 1;
			continue;
		}
		if (id == head_id)
			snprintf(head_at_id, sizeof head_at_id, "%s", calc);
		snprintf(prev, sizeof prev, "%s", calc);
		expect++;
	}
	db_finalize(st);
	db_unlock(db);
	if (rc != DB_DONE) {
		json_decref(v);
		return DB_ERR;
	}
	if (!bad && head == -1)
		verdict(v, expect, "STATE_DIR/audit.head is unreadable");
	else if (!bad && head == 1 && head_id >= expect)
		verdict(v, expect, "row %" PRId64 " is missing: the log ends at "
		    "row %" PRId64 " but %" PRId64 " rows were written", expect,
		    expect - 1, head_id);
	else if (!bad && head == 1 && strcmp(head_at_id, head_hash) != 0)
		verdict(v, head_id, "row %" PRId64 " differs from the one "
		    "recorded in STATE_DIR/audit.head", head_id);
	json_object_set_new(v, "rows", json_integer(rows));
	json_object_set_new(v, "anchored", json_boolean(head == 1));
	*out = v;
	return DB_OK;
}
