/* db_auth.c — users, sessions, API tokens, settings and login lockouts. Every change is
 * its own transaction committed through db_commit(), so the audit row of
 * the request that made it lands in the same transaction. */
#define LOG_SUBSYS "db"
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "db_auth.h"
#include "db_internal.h"
#include "log.h"


json_t *
db_auth_time(int64_t ms)
{
	return db_time_json(ms);
}

/* --- users ---------------------------------------------------------------- */

int
db_user_count(struct db *db, int64_t *out)
{
	struct db_st *st;
	int rc = DB_ERR;

	db_lock(db);
	if ((st = db_stmt(db, "SELECT count(*) FROM users")) != NULL &&
	    db_step(st) == DB_ROW) {
		*out = db_col_int64(st, 0);
		rc = DB_OK;
	}
	db_finalize(st);
	db_unlock(db);
	return rc;
}

int
db_user_add(struct db *db, const char *name, const char *role,
    const char *password_hash, int must_change)
{
	struct db_st *st;
	int64_t now = clock_wall_ms();
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((st = db_stmt(db, "INSERT INTO users (name, role, password_hash,"
	    " must_change, created_ms, updated_ms, password_changed_ms)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5)", DB_TEXT(name),
	    DB_TEXT(role),
	    DB_TEXT(password_hash), DB_INT(must_change), DB_INT(now))) == NULL)
		return db_end(db, 1, DB_ERR);
	rc = db_step(st);
	db_finalize(st);
	if (rc == DB_CONSTRAINT)
		return db_end(db, 1, DB_CONFLICT);
	return db_end(db, 1, rc == DB_DONE ? DB_OK : DB_ERR);
}

static void
user_fill(struct db_st *st, void *p)
{
	struct db_user *out = p;

	memset(out, 0, sizeof *out);
	out->id = db_col_int64(st, 0);
	snprintf(out->name, sizeof out->name, "%s", db_col_text(st, 1));
	snprintf(out->role, sizeof out->role, "%s", db_col_text(st, 2));
	snprintf(out->password_hash, sizeof out->password_hash, "%s",
	    db_col_text(st, 3));
	out->must_change = db_col_int(st, 4);
	out->disabled = db_col_int(st, 5);
}

static int
user_get_locked(struct db *db, const char *name, struct db_user *out)
{
	return db_get_one(db, "SELECT id, name, role, password_hash,"
	    " must_change, disabled FROM users WHERE name = ?", name, user_fill,
	    out);
}

int
db_user_get(struct db *db, const char *name, struct db_user *out)
{
	int rc;

	db_lock(db);
	rc = user_get_locked(db, name, out);
	db_unlock(db);
	return rc;
}

static json_t *
user_row(struct db_st *st)
{
	return json_pack("{s:s, s:s, s:b, s:b, s:o, s:o, s:o, s:I, s:I}",
	    "name", db_col_text(st, 0),
	    "role", db_col_text(st, 1),
	    "disabled", db_col_int(st, 2),
	    "must_change_password", db_col_int(st, 3),
	    "created_at", db_time_json(db_col_int64(st, 4)),
	    "password_changed_at", db_time_json(db_col_int64(st, 5)),
	    "last_login_at", db_time_json(db_col_int64(st, 6)),
	    "sessions", (json_int_t)db_col_int64(st, 7),
	    "api_tokens", (json_int_t)db_col_int64(st, 8));
}

int
db_users_json(struct db *db, json_t **out)
{
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, "SELECT name, role, disabled,"
	    " must_change, created_ms, password_changed_ms, last_login_ms,"
	    " (SELECT count(*) FROM sessions s WHERE s.user_id = users.id),"
	    " (SELECT count(*) FROM api_tokens t WHERE t.user_id = users.id"
	    "  AND t.revoked_ms = 0 AND t.expires_ms > ?1)"
	    " FROM users ORDER BY name", DB_INT(clock_wall_ms())), user_row, out);
	db_unlock(db);
	return rc;
}

int
db_user_set_password(struct db *db, const char *name,
    const char *password_hash, int must_change, int64_t keep_session_id)
{
	struct db_user u;
	int64_t now = clock_wall_ms();
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = user_get_locked(db, name, &u)) != DB_OK)
		return db_end(db, 1, rc);
	if (db_run(db, "UPDATE users SET password_hash = ?1, must_change = ?2,"
	    " updated_ms = ?3, password_changed_ms = ?3 WHERE id = ?4",
	    DB_TEXT(password_hash), DB_INT(must_change), DB_INT(now),
	    DB_INT(u.id)) == DB_ERR)
		return db_end(db, 1, DB_ERR);
	/* A new password ends every other session of that user. */
	rc = db_run(db, "DELETE FROM sessions WHERE user_id = ? AND id != ?",
	    DB_INT(u.id), DB_INT(keep_session_id));
	return db_end(db, 1, rc == DB_ERR ? DB_ERR : DB_OK);
}

int
db_user_update(struct db *db, const char *name, const char *role,
    int disabled)
{
	struct db_user u;
	struct db_st *st;
	int rc, admins = 0;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = user_get_locked(db, name, &u)) != DB_OK)
		return db_end(db, 1, rc);
	if (role == NULL)
		role = u.role;
	if (disabled < 0)
		disabled = u.disabled;
	/* Never leave the control listener without an enabled admin. */
	if (strcmp(u.role, "admin") == 0 && !u.disabled &&
	    (strcmp(role, "admin") != 0 || disabled)) {
		if ((st = db_stmt(db, "SELECT count(*) FROM users WHERE"
		    " role = 'admin' AND disabled = 0")) == NULL)
			return db_end(db, 1, DB_ERR);
		if (db_step(st) == DB_ROW)
			admins = db_col_int(st, 0);
		db_finalize(st);
		if (admins <= 1)
			return db_end(db, 1, DB_CONFLICT);
	}
	if (db_run(db, "UPDATE users SET role = ?, disabled = ?, updated_ms = ?"
	    " WHERE id = ?", DB_TEXT(role), DB_INT(disabled),
	    DB_INT(clock_wall_ms()), DB_INT(u.id)) == DB_ERR)
		return db_end(db, 1, DB_ERR);
	if (disabled && db_run(db, "DELETE FROM sessions WHERE user_id = ?",
	    DB_INT(u.id)) == DB_ERR)
		return db_end(db, 1, DB_ERR);
	return db_end(db, 1, DB_OK);
}

/* --- sessions -------------------------------------------------------------- */

int
db_session_add(struct db *db, const char *id_hash, int64_t user_id,
    const char *address, const char *user_agent, int64_t expires_ms,
    int64_t *id_out)
{
	int64_t now = clock_wall_ms(), id;

	if (db_begin(db) == -1)
		return DB_ERR;
	/* Sweep what can never be used again. */
	if (db_run(db, "DELETE FROM sessions WHERE expires_ms <= ?",
	    DB_INT(now)) == DB_ERR ||
	    db_run(db, "INSERT INTO sessions (id_hash, user_id, address,"
	    " user_agent, created_ms, last_seen_ms, expires_ms)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)", DB_TEXT(id_hash),
	    DB_INT(user_id), DB_TEXT(address), DB_TEXT(user_agent), DB_INT(now),
	    DB_INT(expires_ms)) != DB_OK)
		return db_end(db, 1, DB_ERR);
	id = db_last_id(db);
	if (db_end(db, 1, db_run(db, "UPDATE users SET last_login_ms = ? WHERE"
	    " id = ?", DB_INT(now), DB_INT(user_id)) == DB_ERR ? DB_ERR :
	    DB_OK) != DB_OK)
		return DB_ERR;
	*id_out = id;
	return DB_OK;
}

/* Columns 0-5 of a session or token row: its id and its owner. */
#define PRINCIPAL_FILL(st, out) do {					\
	(out)->id = db_col_int64((st), 0);			\
	(out)->user_id = db_col_int64((st), 1);			\
	snprintf((out)->user, sizeof (out)->user, "%s", db_col_text((st), 2)); \
	snprintf((out)->role, sizeof (out)->role, "%s", db_col_text((st), 3)); \
	(out)->disabled = db_col_int((st), 4);			\
	(out)->must_change = db_col_int((st), 5);		\
} while (0)

static void
session_fill(struct db_st *st, void *p)
{
	struct db_session *out = p;

	memset(out, 0, sizeof *out);
	PRINCIPAL_FILL(st, out);
	out->created_ms = db_col_int64(st, 6);
	out->last_seen_ms = db_col_int64(st, 7);
	out->expires_ms = db_col_int64(st, 8);
}

int
db_session_get(struct db *db, const char *id_hash, struct db_session *out)
{
	int rc;

	db_lock(db);
	rc = db_get_one(db, "SELECT s.id, s.user_id, u.name, u.role,"
	    " u.disabled, u.must_change, s.created_ms, s.last_seen_ms,"
	    " s.expires_ms FROM sessions s JOIN users u ON u.id = s.user_id"
	    " WHERE s.id_hash = ?", id_hash, session_fill, out);
	db_unlock(db);
	return rc;
}

int
db_session_touch(struct db *db, int64_t id, int64_t now_ms)
{
	int rc;

	db_lock(db);
	rc = db_run(db, "UPDATE sessions SET last_seen_ms = ? WHERE id = ?",
	    DB_INT(now_ms), DB_INT(id));
	db_unlock(db);
	return rc == DB_ERR ? DB_ERR : DB_OK;
}

int
db_session_delete(struct db *db, int64_t id, int64_t user_id)
{
	if (db_begin(db) == -1)
		return DB_ERR;
	return db_end(db, 1, db_run(db, "DELETE FROM sessions WHERE id = ?1"
	    " AND (?2 = 0 OR user_id = ?2)", DB_INT(id), DB_INT(user_id)));
}

static json_t *
session_row(struct db_st *st)
{
	return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:b}",
	    "id", (json_int_t)db_col_int64(st, 0),
	    "address", db_col_text(st, 1),
	    "user_agent", db_col_text(st, 2),
	    "created_at", db_time_json(db_col_int64(st, 3)),
	    "last_seen_at", db_time_json(db_col_int64(st, 4)),
	    "expires_at", db_time_json(db_col_int64(st, 5)),
	    "current", db_col_int(st, 6));
}

int
db_sessions_json(struct db *db, int64_t user_id, int64_t current_id,
    json_t **out)
{
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, "SELECT id, address, user_agent,"
	    " created_ms, last_seen_ms, expires_ms, id = ?3 FROM sessions"
	    " WHERE user_id = ?1 AND expires_ms > ?2 ORDER BY id",
	    DB_INT(user_id), DB_INT(clock_wall_ms()), DB_INT(current_id)),
	    session_row, out);
	db_unlock(db);
	return rc;
}

/* --- API tokens ------------------------------------------------------------ */

int
db_apitoken_add(struct db *db, const char *hash, int64_t user_id,
    const char *scope, const char *description, int64_t expires_ms,
    const char *created_by, int64_t *id_out)
{
	int64_t id;

	if (db_begin(db) == -1)
		return DB_ERR;
	if (db_run(db, "INSERT INTO api_tokens (hash, user_id, scope,"
	    " description, created_by, created_ms, expires_ms)"
	    " VALUES (?, ?, ?, ?, ?, ?, ?)", DB_TEXT(hash), DB_INT(user_id),
	    DB_TEXT(scope), DB_TEXT(description), DB_TEXT(created_by),
	    DB_INT(clock_wall_ms()), DB_INT(expires_ms)) != DB_OK)
		return db_end(db, 1, DB_ERR);
	id = db_last_id(db);
	if (db_end(db, 1, DB_OK) != DB_OK)
		return DB_ERR;
	*id_out = id;
	return DB_OK;
}

static void
apitoken_fill(struct db_st *st, void *p)
{
	struct db_apitoken *out = p;

	memset(out, 0, sizeof *out);
	PRINCIPAL_FILL(st, out);
	snprintf(out->scope, sizeof out->scope, "%s", db_col_text(st, 6));
	out->expires_ms = db_col_int64(st, 7);
	out->revoked_ms = db_col_int64(st, 8);
	out->last_used_ms = db_col_int64(st, 9);
}

int
db_apitoken_get(struct db *db, const char *hash, struct db_apitoken *out)
{
	int rc;

	db_lock(db);
	rc = db_get_one(db, "SELECT t.id, t.user_id, u.name, u.role,"
	    " u.disabled, u.must_change, t.scope, t.expires_ms, t.revoked_ms,"
	    " t.last_used_ms FROM api_tokens t JOIN users u ON u.id = t.user_id"
	    " WHERE t.hash = ?", hash, apitoken_fill, out);
	db_unlock(db);
	return rc;
}

int
db_apitoken_used(struct db *db, int64_t id, int64_t now_ms, const char *address)
{
	int rc;

	db_lock(db);
	rc = db_run(db, "UPDATE api_tokens SET last_used_ms = ?,"
	    " last_used_address = ? WHERE id = ?", DB_INT(now_ms),
	    DB_TEXT(address), DB_INT(id));
	db_unlock(db);
	return rc == DB_ERR ? DB_ERR : DB_OK;
}

int
db_apitoken_revoke(struct db *db, int64_t id, int64_t user_id)
{
	if (db_begin(db) == -1)
		return DB_ERR;
	return db_end(db, 1, db_run(db, "UPDATE api_tokens SET revoked_ms = ?1"
	    " WHERE id = ?2 AND (?3 = 0 OR user_id = ?3) AND revoked_ms = 0",
	    DB_INT(clock_wall_ms()), DB_INT(id), DB_INT(user_id)));
}

static json_t *
apitoken_row(struct db_st *st)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:o,"
	    " s:s}", "id", (json_int_t)db_col_int64(st, 0),
	    "user", db_col_text(st, 1), "scope", db_col_text(st, 2),
	    "description", db_col_text(st, 3),
	    "created_by", db_col_text(st, 4),
	    "created_at", db_time_json(db_col_int64(st, 5)),
	    "expires_at", db_time_json(db_col_int64(st, 6)),
	    "last_used_at", db_time_json(db_col_int64(st, 7)),
	    "last_used_address", db_col_text(st, 8),
	    "revoked_at", db_time_json(db_col_int64(st, 9)),
	    "status", db_col_text(st, 10));
}

int
db_apitokens_json(struct db *db, int64_t user_id, json_t **out)
{
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, "SELECT t.id, u.name, t.scope,"
	    " t.description, t.created_by, t.created_ms, t.expires_ms,"
	    " t.last_used_ms, t.last_used_address, t.revoked_ms,"
	    " CASE WHEN t.revoked_ms != 0 THEN 'revoked'"
	    "  WHEN t.expires_ms <= ?2 THEN 'expired' ELSE 'active' END"
	    " FROM api_tokens t JOIN users u ON u.id = t.user_id"
	    " WHERE ?1 = 0 OR t.user_id = ?1 ORDER BY t.id", DB_INT(user_id),
	    DB_INT(clock_wall_ms())), apitoken_row, out);
	db_unlock(db);
	return rc;
}

/* --- settings ----------------------------------------------------------- */

int
db_setting_get(struct db *db, const char *key, char *out, size_t len)
{
	struct db_st *st;
	int rc;

	db_lock(db);
	if ((st = db_stmt(db, "SELECT value FROM settings WHERE key = ?",
	    DB_TEXT(key))) == NULL) {
		db_unlock(db);
		return DB_ERR;
	}
	rc = db_step(st);
	if (rc == DB_ROW) {
		snprintf(out, len, "%s", db_col_text(st, 0));
		rc = DB_OK;
	} else
		rc = rc == DB_DONE ? DB_NOTFOUND : DB_ERR;
	db_finalize(st);
	db_unlock(db);
	return rc;
}

int
db_setting_set(struct db *db, const char *key, const char *value)
{
	if (db_begin(db) == -1)
		return DB_ERR;
	return db_end(db, 1, db_run(db, "INSERT INTO settings (key, value)"
	    " VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
	    DB_TEXT(key), DB_TEXT(value)) == DB_ERR ? DB_ERR : DB_OK);
}

/* --- login lockouts ------------------------------------------------------ */

int
db_lockout_set(struct db *db, const char *key, int64_t until_ms,
    int64_t now_ms)
{
	if (db_begin(db) == -1)
		return DB_ERR;
	/* The table holds running lockouts only: it cannot grow without
	 * bound however many addresses or names are tried. Not the
	 * request's audit row: the lockout has one of its own. */
	if (db_run(db, "DELETE FROM auth_lockouts WHERE locked_until_ms <= ?",
	    DB_INT(now_ms)) == DB_ERR ||
	    db_run(db, "INSERT INTO auth_lockouts (key, locked_until_ms,"
	    " created_ms) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET"
	    " locked_until_ms = ?2, created_ms = ?3", DB_TEXT(key),
	    DB_INT(until_ms),
	    DB_INT(now_ms)) != DB_OK)
		return db_end(db, 0, DB_ERR);
	return db_end(db, 0, DB_OK);
}

int
db_lockouts_load(struct db *db, int64_t now_ms, int max,
    void (*fn)(void *, const char *, int64_t), void *cls)
{
	struct db_st *st;
	int rc;

	db_lock(db);
	if ((st = db_stmt(db, "SELECT key, locked_until_ms FROM"
	    " auth_lockouts WHERE locked_until_ms > ? ORDER BY"
	    " locked_until_ms DESC LIMIT ?", DB_INT(now_ms), DB_INT(max))) ==
	    NULL) {
		db_unlock(db);
		return DB_ERR;
	}
	while ((rc = db_step(st)) == DB_ROW)
		fn(cls, db_col_text(st, 0), db_col_int64(st, 1));
	db_finalize(st);
	db_unlock(db);
	return rc == DB_DONE ? DB_OK : DB_ERR;
}
