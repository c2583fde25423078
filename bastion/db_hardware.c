/* db_hardware.c — discovery reports: storing them, reading them back and
 * asking which machine a NIC belongs to. */
#define LOG_SUBSYS "db"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db_internal.h"
#include "log.h"

static json_int_t
count_of(const json_t *report, const char *key)
{
	const json_t *v = json_object_get(report, key);

	return json_is_array(v) ? (json_int_t)json_array_size(v) : 0;
}

int
db_hardware_store(struct db *db, const char *mac, const json_t *report,
    const char *summary)
{
	struct machine m;
	char *text;
	int rc;

	if ((text = json_dumps(report, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		return DB_ERR;
	if (db_begin(db) == -1) {
		free(text);
		return DB_ERR;
	}
	if ((rc = db_machine_get_locked(db, mac, &m)) != DB_OK)
		goto out;
	if (m.state != MS_DISCOVERING) {
		rc = DB_CONFLICT;
		goto out;
	}
	rc = DB_ERR;
	if (db_run(db, "INSERT INTO hardware (mac, report, updated_ms,"
	    " cpu_threads, memory_bytes, disk_count, nic_count)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (mac) DO UPDATE"
	    " SET report = ?2, updated_ms = ?3, cpu_threads = ?4,"
	    " memory_bytes = ?5, disk_count = ?6, nic_count = ?7",
	    DB_TEXT(mac), DB_TEXT(text), DB_INT(clock_wall_ms()),
	    DB_INT(json_integer_value(json_object_get(json_object_get(report,
	    "cpu"), "threads"))),
	    DB_INT(json_integer_value(json_object_get(json_object_get(report,
	    "memory"), "total_bytes"))),
	    DB_INT(count_of(report, "disks")),
	    DB_INT(count_of(report, "nics"))) == DB_ERR)
		goto out;
	if (db_run(db, "UPDATE machines SET state = 'discovered',"
	    " updated_ms = ?, boot_count = 0 WHERE mac = ?",
	    DB_INT(clock_wall_ms()), DB_TEXT(mac)) == DB_ERR)
		goto out;
	rc = db_event_add_locked(db, mac, "discovered", "discover",
	    summary ? summary : "hardware reported", -1);
out:
	free(text);
	return db_end(db, 1, rc);
}

int
db_hardware_get(struct db *db, const char *mac, json_t **out)
{
	struct db_st *st;
	json_t *hw = NULL;
	int rc;

	db_lock(db);
	if ((st = db_stmt(db, "SELECT report FROM hardware WHERE mac = ?",
	    DB_TEXT(mac))) == NULL) {
		db_unlock(db);
		return DB_ERR;
	}
	rc = db_step(st);
	if (rc == DB_ROW)
		hw = json_loads(db_col_text(st, 0), 0, NULL);
	db_finalize(st);
	db_unlock(db);
	if (rc == DB_DONE)
		return DB_NOTFOUND;
	if (hw == NULL)
		return DB_ERR;
	*out = hw;
	return DB_OK;
}

/* The JSON functions differ: ?1 the reporter's MAC, ?2 its report. */
#define CONFLICT_SQL_SQLITE \
	"WITH mine(nic) AS (SELECT json_extract(value, '$.mac')" \
	"  FROM json_each(?2, '$.nics') UNION SELECT ?1)" \
	" SELECT m.mac, m.mac FROM machines m, mine" \
	"  WHERE m.mac = mine.nic AND m.mac != ?1" \
	" UNION ALL" \
	" SELECT h.mac, json_extract(n.value, '$.mac')" \
	"  FROM hardware h, json_each(h.report, '$.nics') n, mine" \
	"  WHERE h.mac != ?1 AND mine.nic != ?1" \
	"  AND json_extract(n.value, '$.mac') = mine.nic" \
	" LIMIT 1"
#define CONFLICT_SQL_PG \
	"WITH mine(nic) AS (SELECT n->>'mac' FROM jsonb_array_elements(" \
	"  CAST(?2 AS jsonb)->'nics') n UNION SELECT CAST(?1 AS TEXT))" \
	" SELECT m.mac, m.mac FROM machines m, mine" \
	"  WHERE m.mac = mine.nic AND m.mac != ?1" \
	" UNION ALL" \
	" SELECT h.mac, n->>'mac'" \
	"  FROM hardware h, jsonb_array_elements(" \
	"  CAST(h.report AS jsonb)->'nics') n, mine" \
	"  WHERE h.mac != ?1 AND mine.nic != ?1" \
	"  AND n->>'mac' = mine.nic" \
	" LIMIT 1"

int
db_hardware_conflict(struct db *db, const char *mac, const json_t *report,
    char other[MAC_STRLEN], char nic[MAC_STRLEN])
{
	struct db_st *st;
	char *text;
	int rc = DB_ERR;

	if ((text = json_dumps(report, JSON_COMPACT)) == NULL)
		return DB_ERR;
	db_lock(db);
	/* A NIC of this report that is another machine (it network-booted
	 * with that MAC), or that another machine's report lists — except
	 * mac itself: the reporter network-booted with it (and reports from
	 * where it was sent the discovery image), while another report's
	 * list is only a claim; a claim made first must not lock the real
	 * machine out. */
	st = db_stmt(db, db_is_pg(db) ? CONFLICT_SQL_PG : CONFLICT_SQL_SQLITE,
	    DB_TEXT(mac), DB_TEXT(text));
	if (st == NULL)
		goto out;
	switch (db_step(st)) {
	case DB_ROW:
		snprintf(other, MAC_STRLEN, "%s", db_col_text(st, 0));
		snprintf(nic, MAC_STRLEN, "%s", db_col_text(st, 1));
		rc = DB_CONFLICT;
		break;
	case DB_DONE:
		rc = DB_OK;
		break;
	default:
		log_warnx("hardware conflict: %s", db_errmsg(db));
	}
	db_finalize(st);
out:
	db_unlock(db);
	free(text);
	return rc;
}
