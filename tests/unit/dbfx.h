/* dbfx.h — the unit tests' fixture for a real database: a fresh
 * bastion.db in its own temporary directory per test, removed after; or,
 * when BASTION_TEST_DB_URL names a PostgreSQL database (tests/run.sh
 * starts one with tests/pg.sh), that database emptied before each test. */
#ifndef BASTION_TEST_DBFX_H
#define BASTION_TEST_DBFX_H

#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

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
	if (db_open(f->path, &f->db) != 0)
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

/* A cmocka test run with the fixture. */
#define DBFX_TEST(t) cmocka_unit_test_setup_teardown(t, dbfx_setup, \
    dbfx_teardown)

#endif
