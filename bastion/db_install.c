/* db_install.c — the install queue and its progress. */
#define LOG_SUBSYS "db"
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "db_internal.h"
#include "log.h"

#define INSTALL_COLS "id, mac, hostname, role, os, disk, ssh_keys," \
	" reprovision, key_hash, status, boots, stage, progress, message," \
	" bound_addr, token_boot"

static void
install_from_row(struct db_st *st, struct install *in)
{
	memset(in, 0, sizeof *in);
	in->id = db_col_int64(st, 0);
	snprintf(in->mac, sizeof in->mac, "%s", db_col_text(st, 1));
	snprintf(in->hostname, sizeof in->hostname, "%s", db_col_text(st, 2));
	snprintf(in->role, sizeof in->role, "%s", db_col_text(st, 3));
	snprintf(in->os, sizeof in->os, "%s", db_col_text(st, 4));
	snprintf(in->disk, sizeof in->disk, "%s", db_col_text(st, 5));
	snprintf(in->ssh_keys, sizeof in->ssh_keys, "%s", db_col_text(st, 6));
	in->reprovision = db_col_int(st, 7);
	snprintf(in->key_hash, sizeof in->key_hash, "%s", db_col_text(st, 8));
	snprintf(in->status, sizeof in->status, "%s", db_col_text(st, 9));
	in->boots = db_col_int(st, 10);
	snprintf(in->stage, sizeof in->stage, "%s", db_col_text(st, 11));
	in->progress = db_col_int(st, 12);
	snprintf(in->message, sizeof in->message, "%s", db_col_text(st, 13));
	snprintf(in->bound_addr, sizeof in->bound_addr, "%s",
	    db_col_text(st, 14));
	in->token_boot = db_col_int(st, 15);
}

static void
install_fill(struct db_st *st, void *in)
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

/* Set the machine's state in the open transaction, with an event. */
static int
set_state_locked(struct db *db, const char *mac, enum machine_state to,
    const char *source, const char *message, int progress)
{
	if (db_run(db, "UPDATE machines SET state = ?, updated_ms = ?"
	    " WHERE mac = ?", DB_TEXT(machine_state_name(to)),
	    DB_INT(clock_wall_ms()), DB_TEXT(mac)) == DB_ERR)
		return DB_ERR;
	return db_event_add_locked(db, mac, machine_state_name(to), source,
	    message, progress);
}

int
db_install_queue(struct db *db, const struct install *in, unsigned from,
    const char *event)
{
	struct machine m;
	int64_t now = clock_wall_ms();
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = db_machine_get_locked(db, in->mac, &m)) != DB_OK)
		goto out;
	if (from && !(from & (1u << m.state))) {
		rc = DB_CONFLICT;
		goto out;
	}
	rc = DB_ERR;
	if (db_run(db, "INSERT INTO installs (mac, hostname, role, os, disk,"
	    " ssh_keys, reprovision, status, created_ms, updated_ms)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?8)",
	    DB_TEXT(in->mac), DB_TEXT(in->hostname), DB_TEXT(in->role),
	    DB_TEXT(in->os), DB_TEXT(in->disk), DB_TEXT(in->ssh_keys),
	    DB_INT(in->reprovision), DB_INT(now)) != DB_OK)
		goto out;
	if (db_run(db, "UPDATE machines SET install_id = ?, hostname = ?,"
	    " boot_count = 0 WHERE mac = ?",
	    DB_INT(db_last_id(db)), DB_TEXT(in->hostname),
	    DB_TEXT(in->mac)) == DB_ERR)
		goto out;
	rc = set_state_locked(db, in->mac, MS_QUEUED, "api", event, -1);
out:
	return db_end(db, 1, rc);
}

/* UPDATE installs SET <what> WHERE id = id, in the open transaction. */
static int
install_update_locked(struct db *db, int64_t id, const char *status,
    const char *stage, int progress, const char *message)
{
	return db_run(db, "UPDATE installs SET status = ?1,"
	    " stage = CASE WHEN ?2 = '' THEN stage ELSE ?2 END,"
	    " progress = CASE WHEN ?3 < 0 THEN progress ELSE ?3 END,"
	    " message = ?4, updated_ms = ?5 WHERE id = ?6", DB_TEXT(status),
	    DB_TEXT(stage), DB_INT(progress), DB_TEXT(message),
	    DB_INT(clock_wall_ms()), DB_INT(id)) == DB_ERR ? DB_ERR : DB_OK;
}

/* Past max_boots: the install and the machine fail, in the open
 * transaction. */
static int
install_too_many_boots_locked(struct db *db, const char *mac,
    const struct install *in, int max_boots)
{
	char msg[160];

	snprintf(msg, sizeof msg, "%d network boots without finishing the "
	    "install (install.max_boots = %d)", in->boots - 1, max_boots);
	if (install_update_locked(db, in->id, "failed", "", -1, msg) != DB_OK)
		return DB_ERR;
	return set_state_locked(db, mac, MS_FAILED, "dispatch", msg, -1);
}

/* One more boot of the install from addr, with the hash of its new key,
 * in the open transaction. */
static int
install_count_boot_locked(struct db *db, const struct machine *m,
    const struct install *in, const char *key_hash, const char *addr,
    int max_boots)
{
	char msg[200];

	if (db_run(db, "UPDATE installs SET boots = ?, key_hash = ?,"
	    " bound_addr = ?, updated_ms = ? WHERE id = ?", DB_INT(in->boots),
	    DB_TEXT(key_hash), DB_TEXT(addr), DB_INT(clock_wall_ms()),
	    DB_INT(in->id)) == DB_ERR)
		return DB_ERR;
	if (strcmp(in->bound_addr, addr) == 0)
		snprintf(msg, sizeof msg, "network boot %d of %d: installer "
		    "sent", in->boots, max_boots);
	else
		snprintf(msg, sizeof msg, "network boot %d of %d: installer "
		    "sent; install bound to %s", in->boots, max_boots, addr);
	return db_event_add_locked(db, m->mac, machine_state_name(m->state),
	    "dispatch", msg, -1);
}

int
db_install_boot(struct db *db, const char *mac, const char *key_hash,
    const char *addr, int rebind, int max_boots, int *boots, int *failed)
{
	struct install in;
	struct machine m;
	int rc, over = 0;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = db_machine_get_locked(db, mac, &m)) != DB_OK ||
	    (rc = install_current_locked(db, mac, &in)) != DB_OK)
		goto out;
	if (m.state != MS_QUEUED && m.state != MS_INSTALLING) {
		rc = DB_CONFLICT;
		goto out;
	}
	/* Checked again here, under the lock: of two first boots from
	 * different addresses only one binds the install. */
	if (!rebind && in.bound_addr[0] && strcmp(in.bound_addr, addr) != 0) {
		rc = DB_DENIED;
		goto out;
	}
	in.boots++;
	if ((over = in.boots > max_boots))
		rc = install_too_many_boots_locked(db, mac, &in, max_boots);
	else
		rc = install_count_boot_locked(db, &m, &in, key_hash, addr,
		    max_boots);
out:
	if ((rc = db_end(db, 1, rc)) != DB_OK)
		return rc;
	*boots = in.boots;
	*failed = over;
	return DB_OK;
}

/* queued -> installing, in the open transaction. */
static int
install_started_locked(struct db *db, const struct machine *m,
    const struct install *in)
{
	if (m->state == MS_QUEUED && (install_update_locked(db, in->id,
	    "installing", "", -1, "kickstart fetched") != DB_OK ||
	    set_state_locked(db, m->mac, MS_INSTALLING, "kickstart",
	    "kickstart fetched: the installer is running", -1) != DB_OK))
		return DB_ERR;
	return DB_OK;
}

int
db_install_started(struct db *db, const char *mac)
{
	struct install in;
	struct machine m;
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = db_machine_get_locked(db, mac, &m)) == DB_OK &&
	    (rc = install_current_locked(db, mac, &in)) == DB_OK)
		rc = install_started_locked(db, &m, &in);
	return db_end(db, 1, rc);
}

int
db_install_kickstart(struct db *db, const char *mac, int64_t install_id,
    int boot, const char *token_hash)
{
	struct install in;
	struct machine m;
	int64_t now = clock_wall_ms();
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = db_machine_get_locked(db, mac, &m)) != DB_OK ||
	    (rc = install_current_locked(db, mac, &in)) != DB_OK)
		goto out;
	if (in.id != install_id || in.boots != boot || boot < 1 ||
	    (m.state != MS_QUEUED && m.state != MS_INSTALLING)) {
		rc = DB_CONFLICT;
		goto out;
	}
	/* Once per installer boot: the boot's key fetches one kickstart. */
	if ((rc = db_run(db, "UPDATE installs SET token_boot = ?1,"
	    " updated_ms = ?2 WHERE id = ?3 AND token_boot < ?1", DB_INT(boot),
	    DB_INT(now), DB_INT(in.id))) != DB_OK) {
		if (rc == DB_NOTFOUND)
			rc = DB_CONFLICT;
		goto out;
	}
	/* The new secret replaces the one of the previous installer boot;
	 * the expiry stays what it was made with (queueing + 24 h). */
	if ((rc = db_run(db, "UPDATE join_tokens SET hash = ?1 WHERE"
	    " install_id = ?2 AND mac = ?3 AND used < uses AND"
	    " revoked_ms = 0 AND expires_ms > ?4", DB_TEXT(token_hash),
	    DB_INT(in.id), DB_TEXT(mac), DB_INT(now))) != DB_OK) {
		if (rc == DB_NOTFOUND)
			rc = DB_DENIED;
		goto out;
	}
	rc = install_started_locked(db, &m, &in);
out:
	return db_end(db, 1, rc);
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
	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = db_machine_get_locked(db, mac, &m)) != DB_OK ||
	    (rc = install_current_locked(db, mac, &in)) != DB_OK)
		goto out;
	if (m.state != MS_INSTALLING) {
		rc = DB_CONFLICT;
		goto out;
	}
	if (strcmp(stage, "done") == 0) {
		if ((rc = install_update_locked(db, in.id, "done", stage,
		    percent, message)) == DB_OK)
			rc = set_state_locked(db, mac, MS_INSTALLED, "progress",
			    msg, percent);
	} else if (strcmp(stage, "error") == 0) {
		if ((rc = install_update_locked(db, in.id, "failed", stage,
		    percent, message)) == DB_OK)
			rc = set_state_locked(db, mac, MS_FAILED, "progress",
			    msg, percent);
	} else if ((rc = install_update_locked(db, in.id, "installing", stage,
	    percent, message)) == DB_OK)
		rc = db_event_add_locked(db, mac, "installing", "progress", msg,
		    percent);
out:
	return db_end(db, 1, rc);
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
	    " s:i, s:s, s:s}", "id", (json_int_t)in.id, "hostname", in.hostname,
	    "role", in.role, "os", in.os, "disk", in.disk, "ssh_keys", keys,
	    "reprovision", in.reprovision, "status", in.status,
	    "boots", in.boots, "stage", in.stage, "progress", in.progress,
	    "message", in.message, "bound_addr", in.bound_addr);
}
