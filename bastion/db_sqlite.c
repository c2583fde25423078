/* db_sqlite.c — the SQLite backend of the statement layer
 * (db_internal.h): connections, statements, their parameters and their
 * columns. Nothing else includes <sqlite3.h>. */
#define LOG_SUBSYS "db"
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db_internal.h"
#include "log.h"

struct sq_conn {
	struct db_conn	 base;
	sqlite3		*h;
};

struct sq_st {
	struct db_st	 base;
	sqlite3_stmt	*s;
	sqlite3		*h;
};

static int		 sq_exec(struct db_conn *, const char *);
static int		 sq_step(struct db_st *);
static void		 sq_finalize(struct db_st *);
static int64_t		 sq_col_int64(struct db_st *, int);

#define CONN(c)	((struct sq_conn *)(c))
#define ST(st)	((struct sq_st *)(st))

static void
on_update(void *cls, int op, const char *dbname, const char *table,
    sqlite3_int64 rowid)
{
	struct db *db = cls;

	/* Both are read through the per-thread caches (db_machine.c). */
	if (strcmp(table, "machines") == 0 || strcmp(table, "leases") == 0)
		db->machines_dirty = 1;
}

static int
sq_open(struct db *db, int readonly, struct db_conn **out)
{
	struct sq_conn *c;
	int flags = SQLITE_OPEN_NOMUTEX;	/* each under one thread/lock */

	if ((c = calloc(1, sizeof *c)) == NULL)
		return -1;
	c->base.be = &db_sqlite;
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
		if (sq_exec(&c->base, "PRAGMA journal_mode = WAL;"
		    "PRAGMA synchronous = NORMAL;"
		    "PRAGMA foreign_keys = ON;") == -1)
			goto err_open;
	}
	*out = &c->base;
	return 0;
err_open:
	sqlite3_close(c->h);
	free(c);
	return -1;
}

static void
sq_close(struct db_conn *c)
{
	if (c == NULL)
		return;
	sqlite3_close(CONN(c)->h);
	free(c);
}

static int
sq_exec(struct db_conn *c, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(CONN(c)->h, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("%s", err ? err : "sqlite3_exec failed");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

static int
sq_begin(struct db_conn *c)
{
	return sq_exec(c, "BEGIN IMMEDIATE");
}

static struct db_st *
sq_prepare(struct db_conn *c, const char *sql)
{
	struct sq_st *st;

	if ((st = calloc(1, sizeof *st)) == NULL)
		return NULL;
	st->base.be = &db_sqlite;
	st->h = CONN(c)->h;
	if (sqlite3_prepare_v2(st->h, sql, -1, &st->s, NULL) != SQLITE_OK) {
		log_warnx("prepare: %s", sqlite3_errmsg(st->h));
		free(st);
		return NULL;
	}
	return &st->base;
}

static const char *
sq_errmsg(struct db_conn *c)
{
	return sqlite3_errmsg(CONN(c)->h);
}

static int64_t
sq_changes(struct db_conn *c)
{
	return sqlite3_changes(CONN(c)->h);
}

static int64_t
sq_last_id(struct db_conn *c)
{
	return sqlite3_last_insert_rowid(CONN(c)->h);
}

static int
sq_schema_get(struct db_conn *c)
{
	struct db_st *st = sq_prepare(c, "PRAGMA user_version");
	int v = -1;

	if (st && sq_step(st) == DB_ROW)
		v = (int)sq_col_int64(st, 0);
	sq_finalize(st);
	return v;
}

static int
sq_schema_set(struct db_conn *c, int v)
{
	char sql[64];

	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v);
	return sq_exec(c, sql);
}

static int
sq_bind(struct db_st *st, const struct db_arg *args)
{
	const struct db_arg *a;
	int i, rc = SQLITE_OK;

	sqlite3_reset(ST(st)->s);
	sqlite3_clear_bindings(ST(st)->s);
	for (a = args, i = 1; a->kind != DB_ARG_END && rc == SQLITE_OK;
	    a++, i++) {
		switch (a->kind) {
		case DB_ARG_TEXT:
			rc = sqlite3_bind_text(ST(st)->s, i, a->text ? a->text :
			    "", -1, SQLITE_TRANSIENT);
			break;
		case DB_ARG_INT:
			rc = sqlite3_bind_int64(ST(st)->s, i, a->i);
			break;
		case DB_ARG_BLOB:
			if (a->len > INT32_MAX) {
				rc = SQLITE_TOOBIG;
				break;
			}
			rc = sqlite3_bind_blob(ST(st)->s, i, a->len ? a->blob : "",
			    (int)a->len, SQLITE_TRANSIENT);
			break;
		default:	/* DB_ARG_NULL: clear_bindings left it NULL */
			break;
		}
	}
	if (rc != SQLITE_OK) {
		log_warnx("bind ?%d: %s: %s", i - 1, sqlite3_errstr(rc),
		    sqlite3_sql(ST(st)->s));
		return -1;
	}
	if (i - 1 != sqlite3_bind_parameter_count(ST(st)->s)) {
		log_warnx("bind: %d arguments for %d parameters: %s", i - 1,
		    sqlite3_bind_parameter_count(ST(st)->s), sqlite3_sql(ST(st)->s));
		return -1;
	}
	return 0;
}

static int
sq_step(struct db_st *st)
{
	int rc = sqlite3_step(ST(st)->s);

	switch (rc) {
	case SQLITE_ROW:
		return DB_ROW;
	case SQLITE_DONE:
		return DB_DONE;
	case SQLITE_CONSTRAINT:
		return DB_CONSTRAINT;
	default:
		log_warnx("step: %s", sqlite3_errmsg(ST(st)->h));
		return DB_ERR;
	}
}

static void
sq_reset(struct db_st *st)
{
	sqlite3_reset(ST(st)->s);
	sqlite3_clear_bindings(ST(st)->s);
}

static void
sq_finalize(struct db_st *st)
{
	if (st == NULL)
		return;
	sqlite3_finalize(ST(st)->s);
	free(st);
}

static int64_t
sq_col_int64(struct db_st *st, int i)
{
	return sqlite3_column_int64(ST(st)->s, i);
}

static const char *
sq_col_text(struct db_st *st, int i)
{
	const unsigned char *s = sqlite3_column_text(ST(st)->s, i);

	return s ? (const char *)s : "";
}

static int
sq_col_null(struct db_st *st, int i)
{
	return sqlite3_column_type(ST(st)->s, i) == SQLITE_NULL;
}

static const void *
sq_col_blob(struct db_st *st, int i, size_t *len)
{
	const void *p = sqlite3_column_blob(ST(st)->s, i);
	int n = sqlite3_column_bytes(ST(st)->s, i);

	*len = p && n > 0 ? (size_t)n : 0;
	return p ? p : "";
}

const struct db_backend db_sqlite = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.exec = sq_exec,
	.begin = sq_begin,
	.prepare = sq_prepare,
	.errmsg = sq_errmsg,
	.changes = sq_changes,
	.last_id = sq_last_id,
	.schema_get = sq_schema_get,
	.schema_set = sq_schema_set,
	.bind = sq_bind,
	.step = sq_step,
	.reset = sq_reset,
	.finalize = sq_finalize,
	.col_int64 = sq_col_int64,
	.col_text = sq_col_text,
	.col_null = sq_col_null,
	.col_blob = sq_col_blob,
};
