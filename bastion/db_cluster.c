/* db_cluster.c — the bastions table and the keys every bastion of the
 * database shares (db_cluster.h). */
#define LOG_SUBSYS "db"
#include <stdio.h>
#include <string.h>

#include "db_cluster.h"
#include "db_internal.h"

#define KEY_CA		"cluster.ca_fingerprint"
#define KEY_JOBS	"cluster.jobs_key_id"

/* The value of settings' key into out (len), or "" if it has none. */
static int
setting(struct db *db, const char *key, char *out, size_t len)
{
	struct db_st *st;
	int rc;

	out[0] = '\0';
	if ((st = db_stmt(db, "SELECT value FROM settings WHERE key = ?",
	    DB_TEXT(key))) == NULL)
		return DB_ERR;
	if ((rc = db_step(st)) == DB_ROW)
		snprintf(out, len, "%s", db_col_text(st, 0));
	db_finalize(st);
	return rc == DB_ROW || rc == DB_DONE ? DB_OK : DB_ERR;
}

int
db_cluster_keys(struct db *db, const char *ca_fp, const char *key_id,
    char *db_ca_fp, size_t ca_len, char *db_key_id, size_t key_len)
{
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	/* Recorded by the first bastion; a race of two first starts is
	 * settled by the primary key (one insert wins, both compare). */
	if (db_run(db, "INSERT INTO settings (key, value) VALUES (?1, ?2)"
	    " ON CONFLICT (key) DO NOTHING", DB_TEXT(KEY_CA), DB_TEXT(ca_fp))
	    == DB_ERR || db_run(db, "INSERT INTO settings (key, value) VALUES"
	    " (?1, ?2) ON CONFLICT (key) DO NOTHING", DB_TEXT(KEY_JOBS),
	    DB_TEXT(key_id)) == DB_ERR ||
	    setting(db, KEY_CA, db_ca_fp, ca_len) == DB_ERR ||
	    setting(db, KEY_JOBS, db_key_id, key_len) == DB_ERR)
		return db_end(db, 0, DB_ERR);
	rc = strcmp(db_ca_fp, ca_fp) == 0 && strcmp(db_key_id, key_id) == 0 ?
	    DB_OK : DB_CONFLICT;
	return db_end(db, 0, rc);
}

int
db_cluster_seen(struct db *db, const char *url, const char *version,
    const char *interface, int64_t started_ms, int64_t now_ms)
{
	if (db_begin(db) == -1)
		return DB_ERR;
	return db_end(db, 0, db_run(db, "INSERT INTO bastions (url, version,"
	    " started_ms, seen_ms, dhcp_interface) VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT (url) DO UPDATE SET version = ?2, started_ms = ?3,"
	    " seen_ms = ?4, dhcp_interface = ?5", DB_TEXT(url),
	    DB_TEXT(version), DB_INT(started_ms), DB_INT(now_ms),
	    DB_TEXT(interface)) == DB_ERR ? DB_ERR : DB_OK);
}

int
db_cluster_dhcp_session(struct db *db, const char *url, int64_t session)
{
	/* A session is a server process id: a gone bastion's row may still
	 * name the one this bastion has now. */
	if (db_begin(db) == -1)
		return DB_ERR;
	if (db_run(db, "UPDATE bastions SET dhcp_session = 0 WHERE"
	    " dhcp_session = ?1 AND url <> ?2", DB_INT(session),
	    DB_TEXT(url)) == DB_ERR)
		return db_end(db, 0, DB_ERR);
	return db_end(db, 0, db_run(db, "UPDATE bastions SET dhcp_session = ?1"
	    " WHERE url = ?2", DB_INT(session), DB_TEXT(url)));
}

static json_t *
bastion_row(struct db_st *st)
{
	return json_pack("{s:s, s:s, s:o, s:o, s:b, s:s, s:b}", "url",
	    db_col_text(st, 0), "version", db_col_text(st, 1), "started_at",
	    db_time_json(db_col_int64(st, 2)), "last_seen",
	    db_time_json(db_col_int64(st, 3)), "up", db_col_int(st, 4),
	    "dhcp_interface", db_col_text(st, 5), "dhcp_leader",
	    db_col_int(st, 6));
}

int
db_cluster_json(struct db *db, int64_t up_after_ms, json_t **out)
{
	int rc;

	db_lock(db);
	/* PostgreSQL: a bastion leads DHCP while its session holds an
	 * advisory lock of the DHCP class (db_pg_listen.c; one per session).
	 * SQLite: the one bastion leads whenever it is up. */
	if (db_is_pg(db))
		rc = db_rows_json(db, db_stmt(db, "SELECT url, version,"
		    " started_ms, seen_ms, CASE WHEN seen_ms >= ?1 THEN 1"
		    " ELSE 0 END, dhcp_interface, CASE WHEN EXISTS (SELECT 1"
		    " FROM pg_locks l WHERE l.locktype = 'advisory' AND"
		    " l.granted AND l.classid = ?2 AND l.objsubid = 2 AND"
		    " l.pid = b.dhcp_session AND l.database = (SELECT oid FROM"
		    " pg_database WHERE datname = current_database())) THEN 1"
		    " ELSE 0 END FROM bastions b ORDER BY url",
		    DB_INT(up_after_ms), DB_INT(DB_PG_LOCK_DHCP)), bastion_row,
		    out);
	else
		rc = db_rows_json(db, db_stmt(db, "SELECT url, version,"
		    " started_ms, seen_ms, CASE WHEN seen_ms >= ?1 THEN 1"
		    " ELSE 0 END, dhcp_interface, CASE WHEN seen_ms >= ?1 THEN"
		    " 1 ELSE 0 END FROM bastions ORDER BY url",
		    DB_INT(up_after_ms)), bastion_row, out);
	db_unlock(db);
	return rc;
}
