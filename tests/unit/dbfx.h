/* dbfx.h — the unit tests' fixture for a real database: a fresh
 * bastion.db in its own temporary directory per test, removed after. */
#ifndef BASTION_TEST_DBFX_H
#define BASTION_TEST_DBFX_H

#include <stdio.h>
#include <stdlib.h>

#include "db.h"

struct dbfx {
	char		 dir[64];
	char		 path[128];
	struct db	*db;
};

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
