/* dbfx.h — the unit tests' fixture for a real database: a fresh
 * bastion.db in its own temporary directory per test, removed after; or,
 * when BASTION_TEST_DB_URL names a PostgreSQL database (tests/run.sh
 * starts one with tests/pg.sh), that database emptied before each test.
 * Include after <cmocka.h> (the raw_* helpers assert). */
#ifndef BASTION_TEST_DBFX_H
#define BASTION_TEST_DBFX_H

#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "db.h"

struct dbfx {
	char		 dir[64];
	char		 path[4096];	/* the file, or the url */
	int		 pg;		/* path is a PostgreSQL url */
	struct db	*db;
};

/* Empty the PostgreSQL database at url: -1 when it cannot be reached (a
 * failure, never a skip). */
static int
dbfx_pg_empty(const char *url)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r;
	int rc = -1;

	if (PQstatus(c) == CONNECTION_OK) {
		r = PQexec(c, "SET client_min_messages = warning;"
		    " DROP SCHEMA public CASCADE; CREATE SCHEMA public");
		rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
		if (rc == -1)
			fprintf(stderr, "%s", PQresultErrorMessage(r));
		PQclear(r);
	} else
		fprintf(stderr, "%s", PQerrorMessage(c));
	PQfinish(c);
	return rc;
}

/* Open the fixture's database (again). */
static int
dbfx_open(struct dbfx *f, struct db **out)
{
	return db_open_url(f->path, f->dir, out);
}

static int
dbfx_setup(void **state)
{
	struct dbfx *f = calloc(1, sizeof *f);

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/bastion-test-db.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof f->path, "%s/bastion.db", f->dir);
	if (getenv("BASTION_TEST_DB_URL") && *getenv("BASTION_TEST_DB_URL")) {
		f->pg = 1;
		snprintf(f->path, sizeof f->path, "%s",
		    getenv("BASTION_TEST_DB_URL"));
		if (dbfx_pg_empty(f->path) == -1)
			return -1;
	}
	if (dbfx_open(f, &f->db) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
dbfx_teardown(void **state)
{
	struct dbfx *f = *state;
	char cmd[128];

	db_close(f->db);
	/* dir is mkdtemp's, not input. */
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Raw SQL on the database, beside the db handle (tests only): through
 * sqlite3 on the file, or libpq on BASTION_TEST_DB_URL's database. */
static int __attribute__((unused))
raw_int(struct dbfx *f, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	PGconn *c;
	PGresult *r;
	int v = -1;

	if (f->pg) {
		c = PQconnectdb(f->path);
		assert_int_equal(PQstatus(c), CONNECTION_OK);
		r = PQexec(c, sql);
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		if (PQntuples(r) > 0)
			v = atoi(PQgetvalue(r, 0, 0));
		PQclear(r);
		PQfinish(c);
		return v;
	}
	assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

static void __attribute__((unused))
raw_exec(struct dbfx *f, const char *sql)
{
	sqlite3 *h;
	PGconn *c;
	PGresult *r;

	if (f->pg) {
		c = PQconnectdb(f->path);
		assert_int_equal(PQstatus(c), CONNECTION_OK);
		r = PQexec(c, sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fail_msg("%s: %s", sql, PQresultErrorMessage(r));
		PQclear(r);
		PQfinish(c);
		return;
	}
	assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(h), SQLITE_OK);
}

/* sql on its own connection: 0, or -1 when the database refused it. */
static int __attribute__((unused))
raw_try(struct dbfx *f, const char *sql)
{
	sqlite3 *h;
	PGconn *c;
	PGresult *r;
	int rc;

	if (f->pg) {
		c = PQconnectdb(f->path);
		assert_int_equal(PQstatus(c), CONNECTION_OK);
		r = PQexec(c, sql);
		rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
		PQclear(r);
		PQfinish(c);
		return rc;
	}
	assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
	rc = sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	sqlite3_close(h);
	return rc;
}

/* A trigger that makes every `event` (INSERT, UPDATE) on table fail, and
 * its removal, in the dialect of the backend under test. */
static void __attribute__((unused))
raw_block(struct dbfx *f, const char *name, const char *event,
    const char *table)
{
	char sql[512];

	if (f->pg)
		snprintf(sql, sizeof sql, "CREATE OR REPLACE FUNCTION"
		    " test_fail() RETURNS trigger LANGUAGE plpgsql AS"
		    " $$BEGIN RAISE EXCEPTION 'no'; END$$;"
		    " CREATE TRIGGER %s BEFORE %s ON %s FOR EACH ROW"
		    " EXECUTE FUNCTION test_fail()", name, event, table);
	else
		snprintf(sql, sizeof sql, "CREATE TRIGGER %s BEFORE %s ON %s"
		    " BEGIN SELECT RAISE(ABORT, 'no'); END", name, event,
		    table);
	raw_exec(f, sql);
}

static void __attribute__((unused))
raw_unblock(struct dbfx *f, const char *name, const char *table)
{
	char sql[256];

	if (f->pg)
		snprintf(sql, sizeof sql, "DROP TRIGGER %s ON %s", name, table);
	else
		snprintf(sql, sizeof sql, "DROP TRIGGER %s", name);
	raw_exec(f, sql);
}

/* The schema version as the backend stores it. */
#define RAW_VERSION(f) ((f)->pg ? "SELECT version FROM schema_version" : \
	"PRAGMA user_version")

/* A cmocka test run with the fixture. */
#define DBFX_TEST(t) cmocka_unit_test_setup_teardown(t, dbfx_setup, \
    dbfx_teardown)

#endif
