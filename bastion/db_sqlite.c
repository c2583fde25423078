/* db_sqlite.c — the SQLite backend of the statement layer
 * (db_internal.h): connections, statements, their parameters and their
 * columns. Nothing else includes <sqlite3.h>. */
#define LOG_SUBSYS "db"
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db_internal.h"
#include "log.h"

struct db_conn {
	sqlite3		*h;
	struct db	*db;	/* whose machines_dirty the writer sets */
};

struct db_st {
	sqlite3_stmt	*s;
	sqlite3		*h;
};

static void
on_update(void *cls, int op, const char *dbname, const char *table,
    sqlite3_int64 rowid)
{
	struct db *db = cls;

	/* Both are read through the per-thread caches (db_machine.c). */
	if (strcmp(table, "machines") == 0 || strcmp(table, "leases") == 0)
		db->machines_dirty = 1;
}

int
db_conn_open(struct db *db, int readonly, struct db_conn **out)
{
	struct db_conn *c;
	int flags = SQLITE_OPEN_NOMUTEX;	/* each under one thread/lock */

	if ((c = calloc(1, sizeof *c)) == NULL)
		return -1;
	c->db = db;
	flags |= readonly ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(db->path, &c->h, flags, NULL) != SQLITE_OK) {
		log_warnx("%s: %s", db->path, c->h ? sqlite3_errmsg(c->h) :
		    "open");
		goto err_open;
	}
	sqlite3_busy_timeout(c->h, 5000);
	if (!readonly) {
		sqlite3_update_hook(c->h, on_update, db);
		if (db_conn_exec(c, "PRAGMA journal_mode = WAL;"
		    "PRAGMA synchronous = NORMAL;"
		    "PRAGMA foreign_keys = ON;") == -1)
			goto err_open;
	}
	*out = c;
	return 0;
err_open:
	sqlite3_close(c->h);
	free(c);
	return -1;
}

void
db_conn_close(struct db_conn *c)
{
	if (c == NULL)
		return;
	sqlite3_close(c->h);
	free(c);
}

int
db_conn_exec(struct db_conn *c, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(c->h, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("%s", err ? err : "sqlite3_exec failed");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

int
db_conn_begin(struct db_conn *c)
{
	return db_conn_exec(c, "BEGIN IMMEDIATE");
}

struct db_st *
db_conn_prepare(struct db_conn *c, const char *sql)
{
	struct db_st *st;

	if ((st = calloc(1, sizeof *st)) == NULL)
		return NULL;
	st->h = c->h;
	if (sqlite3_prepare_v2(c->h, sql, -1, &st->s, NULL) != SQLITE_OK) {
		log_warnx("prepare: %s", sqlite3_errmsg(c->h));
		free(st);
		return NULL;
	}
	return st;
}

const char *
db_conn_errmsg(struct db_conn *c)
{
	return sqlite3_errmsg(c->h);
}

int64_t
db_conn_changes(struct db_conn *c)
{
	return sqlite3_changes(c->h);
}

int64_t
db_conn_last_id(struct db_conn *c)
{
	return sqlite3_last_insert_rowid(c->h);
}

int
db_conn_schema_get(struct db_conn *c)
{
	struct db_st *st = db_conn_prepare(c, "PRAGMA user_version");
	int v = -1;

	if (st && db_step(st) == DB_ROW)
		v = db_col_int(st, 0);
	db_finalize(st);
	return v;
}

int
db_conn_schema_set(struct db_conn *c, int v)
{
	char sql[64];

	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v);
	return db_conn_exec(c, sql);
}

int
db_bind(struct db_st *st, const struct db_arg *args)
{
	const struct db_arg *a;
	int i, rc = SQLITE_OK;

	sqlite3_reset(st->s);
	sqlite3_clear_bindings(st->s);
	for (a = args, i = 1; a->kind != DB_ARG_END && rc == SQLITE_OK;
	    a++, i++) {
		switch (a->kind) {
		case DB_ARG_TEXT:
			rc = sqlite3_bind_text(st->s, i, a->text ? a->text :
			    "", -1, SQLITE_TRANSIENT);
			break;
		case DB_ARG_INT:
			rc = sqlite3_bind_int64(st->s, i, a->i);
			break;
		case DB_ARG_BLOB:
			if (a->len > INT32_MAX) {
				rc = SQLITE_TOOBIG;
				break;
			}
			rc = sqlite3_bind_blob(st->s, i, a->len ? a->blob : "",
			    (int)a->len, SQLITE_TRANSIENT);
			break;
		default:	/* DB_ARG_NULL: clear_bindings left it NULL */
			break;
		}
	}
	if (rc != SQLITE_OK) {
		log_warnx("bind ?%d: %s: %s", i - 1, sqlite3_errstr(rc),
		    sqlite3_sql(st->s));
		return -1;
	}
	if (i - 1 != sqlite3_bind_parameter_count(st->s)) {
		log_warnx("bind: %d arguments for %d parameters: %s", i - 1,
		    sqlite3_bind_parameter_count(st->s), sqlite3_sql(st->s));
		return -1;
	}
	return 0;
}

int
db_step(struct db_st *st)
{
	int rc = sqlite3_step(st->s);

	switch (rc) {
	case SQLITE_ROW:
		return DB_ROW;
	case SQLITE_DONE:
		return DB_DONE;
	case SQLITE_CONSTRAINT:
		return DB_CONSTRAINT;
	default:
		log_warnx("step: %s", sqlite3_errmsg(st->h));
		return DB_ERR;
	}
}

void
db_reset(struct db_st *st)
{
	sqlite3_reset(st->s);
	sqlite3_clear_bindings(st->s);
}

void
db_finalize(struct db_st *st)
{
	if (st == NULL)
		return;
	sqlite3_finalize(st->s);
	free(st);
}

int64_t
db_col_int64(struct db_st *st, int i)
{
	return sqlite3_column_int64(st->s, i);
}

int
db_col_int(struct db_st *st, int i)
{
	return sqlite3_column_int(st->s, i);
}

const char *
db_col_text(struct db_st *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st->s, i);

	return s ? (const char *)s : "";
}

int
db_col_null(struct db_st *st, int i)
{
	return sqlite3_column_type(st->s, i) == SQLITE_NULL;
}

const void *
db_col_blob(struct db_st *st, int i, size_t *len)
{
	const void *p = sqlite3_column_blob(st->s, i);
	int n = sqlite3_column_bytes(st->s, i);

	*len = p && n > 0 ? (size_t)n : 0;
	return p ? p : "";
}
