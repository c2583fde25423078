/* db_install.c — the install queue and its progress. */
#define LOG_SUBSYS "db"
#include <stdio.h>
#include <string.h>

#include "db_internal.h"
#include "log.h"

#define INSTALL_COLS "id, mac, hostname, role, os, disk, ssh_keys," \
	" reprovision, key_hash, status, boots, stage, progress, message"

static void
install_from_row(sqlite3_stmt *st, struct install *in)
{
	memset(in, 0, sizeof *in);
	in->id = sqlite3_column_int64(st, 0);
	snprintf(in->mac, sizeof in->mac, "%s", db_col_text(st, 1));
	snprintf(in->hostname, sizeof in->hostname, "%s", db_col_text(st, 2));
	snprintf(in->role, sizeof in->role, "%s", db_col_text(st, 3));
	snprintf(in->os, sizeof in->os, "%s", db_col_text(st, 4));
	snprintf(in->disk, sizeof in->disk, "%s", db_col_text(st, 5));
	snprintf(in->ssh_keys, sizeof in->ssh_keys, "%s", db_col_text(st, 6));
	in->reprovision = sqlite3_column_int(st, 7);
	snprintf(in->key_hash, sizeof in->key_hash, "%s", db_col_text(st, 8));
	snprintf(in->status, sizeof in->status, "%s", db_col_text(st, 9));
	in->boots = sqlite3_column_int(st, 10);
	snprintf(in->stage, sizeof in->stage, "%s", db_col_text(st, 11));
	in->progress = sqlite3_column_int(st, 12);
	snprintf(in->message, sizeof in->message, "%s", db_col_text(st, 13));
}

static void
install_fill(sqlite3_stmt *st, void *in)
{
	install_from_row(st, in);
}

/* Caller holds the lock. */
static int
install_current_locked(struct db *db, const char *mac, struct install *out)
{
	return db_get_one(db, "SELECT " INSTALL_COLS " FROM installs WHERE"
	    " id = (SELECT install_id FROM machines WHERE mac = ?)", mac,
	    install_fill, out);
}

int
db_install_current(struct db *db, const char *mac, struct install *out)
{
	int rc;

	db_lock(db);
	rc = install_current_locked(db, mac, out);
	db_unlock(db);
	return rc;
}

/* Set the machine's state (and optionally hostname/install) in the open
 * transaction, with an event. */
static int
set_state_locked(struct db *db, const char *mac, enum machine_state to,
    const char *source, const char *message, int progress)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_prepare(db, "UPDATE machines SET state = ?, updated_ms = ?"
	    " WHERE mac = ?")) == NULL)
		return DB_ERR;
	db_bind_text(st, 1, machine_state_name(to));
	sqlite3_bind_int64(st, 2, db_now_ms());
	db_bind_text(st, 3, mac);
	rc = sqlite3_step(st) == SQLITE_DONE ? DB_OK : DB_ERR;
	sqlite3_finalize(st);
	if (rc == DB_OK)
		rc = db_event_add_locked(db, mac, machine_state_name(to), source,
		    message, progress);
	return rc;
}

int
db_install_queue(struct db *db, const struct install *in, unsigned from,
    const char *event)
{
	struct machine m;
	sqlite3_stmt *st = NULL;
	int64_t now = db_now_ms(), id;
	int rc;

	db_lock(db);
	if (db_exec(db, "BEGIN IMMEDIATE") == -1) {
		db_unlock(db);
		return DB_ERR;
	}
	if ((rc = db_machine_get_locked(db, in->mac, &m)) != DB_OK)
		goto out_rollback;
	if (from && !(from & (1u << m.state))) {
		rc = DB_CONFLICT;
		goto out_rollback;
	}
	rc = DB_ERR;
	if ((st = db_prepare(db, "INSERT INTO installs (mac, hostname, role, os,"
	    " disk, ssh_keys, reprovision, status, created_ms, updated_ms)"
	    " VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)")) == NULL)
		goto out_rollback;
	db_bind_text(st, 1, in->mac);
	db_bind_text(st, 2, in->hostname);
	db_bind_text(st, 3, in->role);
	db_bind_text(st, 4, in->os);
	db_bind_text(st, 5, in->disk);
	db_bind_text(st, 6, in->ssh_keys);
	sqlite3_bind_int(st, 7, in->reprovision);
	sqlite3_bind_int64(st, 8, now);
	sqlite3_bind_int64(st, 9, now);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out_rollback;
	id = sqlite3_last_insert_rowid(db->h);
	sqlite3_finalize(st);
	if ((st = db_prepare(db, "UPDATE machines SET install_id = ?,"
	    " hostname = ?, boot_count = 0 WHERE mac = ?")) == NULL)
		goto out_rollback;
	sqlite3_bind_int64(st, 1, id);
	db_bind_text(st, 2, in->hostname);
	db_bind_text(st, 3, in->mac);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out_rollback;
	if (set_state_locked(db, in->mac, MS_QUEUED, "api", event, -1) != DB_OK)
		goto out_rollback;
	if (db_commit(db) == -1)
		goto out_rollback;
	rc = DB_OK;
	goto out;
out_rollback:
	db_exec(db, "ROLLBACK");
out:
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}

/* UPDATE installs SET <what> WHERE id = id, in the open transaction. */
static int
install_update_locked(struct db *db, int64_t id, const char *status,
    const char *stage, int progress, const char *message)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_prepare(db, "UPDATE installs SET status = ?1,"
	    " stage = CASE WHEN ?2 = '' THEN stage ELSE ?2 END,"
	    " progress = CASE WHEN ?3 < 0 THEN progress ELSE ?3 END,"
	    " message = ?4, updated_ms = ?5 WHERE id = ?6")) == NULL)
		return DB_ERR;
	db_bind_text(st, 1, status);
	db_bind_text(st, 2, stage);
	sqlite3_bind_int(st, 3, progress);
	db_bind_text(st, 4, message);
	sqlite3_bind_int64(st, 5, db_now_ms());
	sqlite3_bind_int64(st, 6, id);
	rc = sqlite3_step(st) == SQLITE_DONE ? DB_OK : DB_ERR;
	sqlite3_finalize(st);
	return rc;
}

int
db_install_boot(struct db *db, const char *mac, const char *key_hash,
    int max_boots, int *boots, int *failed)
{
	struct install in;
	struct machine m;
	sqlite3_stmt *st = NULL;
	char msg[160];
	int rc;

	db_lock(db);
	if (db_exec(db, "BEGIN IMMEDIATE") == -1) {
		db_unlock(db);
		return DB_ERR;
	}
	if ((rc = db_machine_get_locked(db, mac, &m)) != DB_OK ||
	    (rc = install_current_locked(db, mac, &in)) != DB_OK)
		goto out_rollback;
	if (m.state != MS_QUEUED && m.state != MS_INSTALLING) {
		rc = DB_CONFLICT;
		goto out_rollback;
	}
	rc = DB_ERR;
	in.boots++;
	if (in.boots > max_boots) {
		snprintf(msg, sizeof msg, "%d network boots without finishing the "
		    "install (install.max_boots = %d)", in.boots - 1, max_boots);
		if (install_update_locked(db, in.id, "failed", "", -1, msg) != DB_OK ||
		    set_state_locked(db, mac, MS_FAILED, "dispatch", msg, -1) != DB_OK)
			goto out_rollback;
		*failed = 1;
	} else {
		if ((st = db_prepare(db, "UPDATE installs SET boots = ?,"
		    " key_hash = ?, updated_ms = ? WHERE id = ?")) == NULL)
			goto out_rollback;
		sqlite3_bind_int(st, 1, in.boots);
		db_bind_text(st, 2, key_hash);
		sqlite3_bind_int64(st, 3, db_now_ms());
		sqlite3_bind_int64(st, 4, in.id);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out_rollback;
		snprintf(msg, sizeof msg, "network boot %d of %d: installer sent",
		    in.boots, max_boots);
		if (db_event_add_locked(db, mac, machine_state_name(m.state),
		    "dispatch", msg, -1) != DB_OK)
			goto out_rollback;
		*failed = 0;
	}
	if (db_commit(db) == -1)
		goto out_rollback;
	*boots = in.boots;
	rc = DB_OK;
	goto out;
out_rollback:
	db_exec(db, "ROLLBACK");
out:
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}

int
db_install_started(struct db *db, const char *mac)
{
	struct install in;
	struct machine m;
	int rc;

	db_lock(db);
	if (db_exec(db, "BEGIN IMMEDIATE") == -1) {
		db_unlock(db);
		return DB_ERR;
	}
	if ((rc = db_machine_get_locked(db, mac, &m)) != DB_OK ||
	    (rc = install_current_locked(db, mac, &in)) != DB_OK)
		goto out_rollback;
	rc = DB_OK;
	if (m.state == MS_QUEUED) {
		rc = DB_ERR;
		if (install_update_locked(db, in.id, "installing", "", -1,
		    "kickstart fetched") != DB_OK ||
		    set_state_locked(db, mac, MS_INSTALLING, "kickstart",
		    "kickstart fetched: the installer is running", -1) != DB_OK)
			goto out_rollback;
		rc = DB_OK;
	}
	if (db_commit(db) == -1) {
		rc = DB_ERR;
		goto out_rollback;
	}
	db_unlock(db);
	return rc;
out_rollback:
	db_exec(db, "ROLLBACK");
	db_unlock(db);
	return rc;
}

int
db_install_progress(struct db *db, const char *mac, const char *stage,
    int percent, const char *message)
{
	struct install in;
	struct machine m;
	char msg[400];
	int rc;

	snprintf(msg, sizeof msg, "%s %d%%%s%s", stage, percent,
	    message[0] ? ": " : "", message);
	db_lock(db);
	if (db_exec(db, "BEGIN IMMEDIATE") == -1) {
		db_unlock(db);
		return DB_ERR;
	}
	if ((rc = db_machine_get_locked(db, mac, &m)) != DB_OK ||
	    (rc = install_current_locked(db, mac, &in)) != DB_OK)
		goto out_rollback;
	if (m.state != MS_INSTALLING) {
		rc = DB_CONFLICT;
		goto out_rollback;
	}
	rc = DB_ERR;
	if (strcmp(stage, "done") == 0) {
		if (install_update_locked(db, in.id, "done", stage, percent,
		    message) != DB_OK ||
		    set_state_locked(db, mac, MS_INSTALLED, "progress", msg,
		    percent) != DB_OK)
			goto out_rollback;
	} else if (strcmp(stage, "error") == 0) {
		if (install_update_locked(db, in.id, "failed", stage, percent,
		    message) != DB_OK ||
		    set_state_locked(db, mac, MS_FAILED, "progress", msg,
		    percent) != DB_OK)
			goto out_rollback;
	} else if (install_update_locked(db, in.id, "installing", stage, percent,
	    message) != DB_OK ||
	    db_event_add_locked(db, mac, "installing", "progress", msg,
	    percent) != DB_OK)
		goto out_rollback;
	if (db_commit(db) == -1)
		goto out_rollback;
	db_unlock(db);
	return DB_OK;
out_rollback:
	db_exec(db, "ROLLBACK");
	db_unlock(db);
	return rc;
}

json_t *
db_install_json_locked(struct db *db, const char *mac)
{
	struct install in;
	json_t *keys;

	if (install_current_locked(db, mac, &in) != DB_OK)
		return json_null();
	if ((keys = json_loads(in.ssh_keys, 0, NULL)) == NULL)
		keys = json_array();
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:b, s:s, s:i, s:s,"
	    " s:i, s:s}", "id", (json_int_t)in.id, "hostname", in.hostname,
	    "role", in.role, "os", in.os, "disk", in.disk, "ssh_keys", keys,
	    "reprovision", in.reprovision, "status", in.status,
	    "boots", in.boots, "stage", in.stage, "progress", in.progress,
	    "message", in.message);
}
