/* test_db.c — bastion/db.c (statements and their typed arguments),
 * db_machine.c, db_hardware.c, db_lease.c and db_install.c against a real
 * SQLite file in a temp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "audit.h"
#include "clock.h"
#include "db.h"
#include "db_agent.h"
#include "db_auth.h"
#include "db_cluster.h"
#include "db_internal.h"
#include "log.h"

#define MAC1 "52:54:00:00:00:01"
#define MAC2 "52:54:00:00:00:02"
#define MAC3 "52:54:00:00:00:03"
#define BIT(s) (1u << (s))

#include "dbfx.h"

static void
boot_info(struct boot_info *bi, const char *mac, const char *uuid,
    const char *ip)
{
	memset(bi, 0, sizeof *bi);
	snprintf(bi->mac, sizeof bi->mac, "%s", mac);
	snprintf(bi->uuid, sizeof bi->uuid, "%s", uuid);
	snprintf(bi->serial, sizeof bi->serial, "SER-%s", uuid);
	snprintf(bi->arch, sizeof bi->arch, "x86_64");
	snprintf(bi->platform, sizeof bi->platform, "efi");
	snprintf(bi->ip, sizeof bi->ip, "%s", ip);
}

static void
boot(struct db *db, const char *mac, int want_created)
{
	struct boot_info bi;
	struct machine m;
	int created = -1;

	boot_info(&bi, mac, "uuid-1", "10.77.0.100");
	assert_int_equal(db_machine_boot(db, &bi, &m, &created), DB_OK);
	assert_int_equal(created, want_created);
	assert_string_equal(m.mac, mac);
}

static json_t *
events(struct db *db, const char *mac)
{
	json_t *ev = NULL;

	assert_int_equal(db_events_json(db, mac, 0, 1000, &ev), DB_OK);
	assert_true(json_is_array(ev));
	return ev;
}

static size_t
nevents(struct db *db, const char *mac)
{
	json_t *ev = events(db, mac);
	size_t n = json_array_size(ev);

	json_decref(ev);
	return n;
}

static const char *
event_str(json_t *ev, size_t i, const char *key)
{
	const char *s = json_string_value(json_object_get(json_array_get(ev, i),
	    key));

	assert_non_null(s);
	return s;
}

static enum machine_state
state_of(struct db *db, const char *mac)
{
	struct machine m;

	assert_int_equal(db_machine_get(db, mac, &m), DB_OK);
	return m.state;
}

static json_t *
hw_report(int threads, long long mem)
{
	return json_pack("{s:s, s:s, s:{s:i, s:i, s:i}, s:{s:I},"
	    " s:[{s:s, s:I}, {s:s, s:I}], s:[{s:s, s:s}]}",
	    "mac", MAC1, "firmware", "bios",
	    "cpu", "sockets", 1, "cores", threads, "threads", threads,
	    "memory", "total_bytes", (json_int_t)mem,
	    "disks", "name", "vda", "size_bytes", (json_int_t)1 << 34,
	    "name", "vdb", "size_bytes", (json_int_t)1 << 30,
	    "nics", "name", "eth0", "mac", MAC1);
}

/* ---- statements and their arguments -------------------------------------- */

/* test_stmt_typed_args in the common SQL of both backends (typed
 * columns; no typeof or quote). */
static void
stmt_typed_args_portable(struct db *db)
{
	struct db_st *st;
	const void *p;
	size_t len;

	assert_int_equal(db_exec(db, "CREATE TEMP TABLE t (k INTEGER, a TEXT,"
	    " b INTEGER, c BLOB, d INTEGER)"), 0);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (1, ?, ?, ?, ?)",
	    DB_TEXT("x"), DB_INT(INT64_MAX), DB_BLOB("a\0b", 3), DB_NULL),
	    DB_OK);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (2, ?, ?, ?, ?)",
	    DB_TEXT(NULL), DB_INT((unsigned char)200), DB_BLOB(NULL, 0),
	    DB_INT(-1)), DB_OK);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (3, ?2, ?1, NULL,"
	    " ?1)", DB_INT((size_t)7), DB_TEXT("y")), DB_OK);
	st = db_stmt(db, "SELECT a, b, c, d FROM t WHERE k = ?", DB_INT(1));
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_ROW);
	assert_string_equal(db_col_text(st, 0), "x");
	assert_true(db_col_int64(st, 1) == INT64_MAX);
	p = db_col_blob(st, 2, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "a\0b", 3);
	assert_true(db_col_null(st, 3));
	db_finalize(st);
	st = db_stmt(db, "SELECT a, b, c, d FROM t WHERE k = ?", DB_INT(2));
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_ROW);
	assert_string_equal(db_col_text(st, 0), "");
	assert_int_equal(db_col_int(st, 1), 200);
	assert_false(db_col_null(st, 2));
	db_col_blob(st, 2, &len);
	assert_int_equal(len, 0);
	assert_int_equal(db_col_int(st, 3), -1);
	db_finalize(st);
	st = db_stmt(db, "SELECT a, b, d FROM t WHERE k = 3");
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_ROW);
	assert_string_equal(db_col_text(st, 0), "y");
	assert_int_equal(db_col_int(st, 1), 7);
	assert_int_equal(db_col_int(st, 2), 7);
	assert_int_equal(db_step(st), DB_DONE);
	db_finalize(st);
	assert_int_equal(db_run(db, "UPDATE t SET a = ? WHERE k = ?",
	    DB_TEXT("z"), DB_INT(99)), DB_NOTFOUND);
	assert_int_equal(db_run(db, "UPDATE t SET a = ? WHERE k = ?",
	    DB_TEXT("z"), DB_INT(1)), DB_OK);
	assert_int_equal(db_exec(db, "DROP TABLE t"), 0);
}

static void
test_stmt_typed_args(void **state)
{
	struct dbfx *f = *state;
	struct db *db = f->db;
	struct db_st *st;

	db_lock(db);
	stmt_typed_args_portable(db);
	if (f->pg) {
		db_unlock(db);
		return;
	}
	assert_int_equal(db_exec(db, "CREATE TEMP TABLE t (k, a, b, c, d)"), 0);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (1, ?, ?, ?, ?)",
	    DB_TEXT("x"), DB_INT(INT64_MAX), DB_BLOB("a\0b", 3), DB_NULL),
	    DB_OK);
	/* NULL text binds "", an empty blob is a blob, any integer type. */
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (2, ?, ?, ?, ?)",
	    DB_TEXT(NULL), DB_INT((unsigned char)200), DB_BLOB(NULL, 0),
	    DB_INT(-1)), DB_OK);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (3, ?2, ?1, ?2, ?1)",
	    DB_INT((size_t)7), DB_TEXT("y")), DB_OK);
	st = db_stmt(db, "SELECT typeof(a) || a, b, typeof(c), length(c),"
	    " quote(c), typeof(d) FROM t WHERE k = ?", DB_INT(1));
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_ROW);
	assert_string_equal(db_col_text(st, 0), "textx");
	assert_true(db_col_int64(st, 1) == INT64_MAX);
	assert_string_equal(db_col_text(st, 2), "blob");
	assert_int_equal(db_col_int(st, 3), 3);
	assert_string_equal(db_col_text(st, 4), "X'610062'");
	assert_string_equal(db_col_text(st, 5), "null");
	db_finalize(st);
	st = db_stmt(db, "SELECT typeof(a), a, b, typeof(c), length(c), d"
	    " FROM t WHERE k = ?", DB_INT(2));
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_ROW);
	assert_string_equal(db_col_text(st, 0), "text");
	assert_string_equal(db_col_text(st, 1), "");
	assert_int_equal(db_col_int(st, 2), 200);
	assert_string_equal(db_col_text(st, 3), "blob");
	assert_int_equal(db_col_int(st, 4), 0);
	assert_int_equal(db_col_int(st, 5), -1);
	db_finalize(st);
	st = db_stmt(db, "SELECT a, b, c, d FROM t WHERE k = 3");
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_ROW);
	assert_string_equal(db_col_text(st, 0), "y");
	assert_int_equal(db_col_int(st, 1), 7);
	assert_string_equal(db_col_text(st, 2), "y");
	assert_int_equal(db_col_int(st, 3), 7);
	db_finalize(st);
	/* No row changed is DB_NOTFOUND, not an error. */
	assert_int_equal(db_run(db, "UPDATE t SET a = ? WHERE k = ?",
	    DB_TEXT("z"), DB_INT(99)), DB_NOTFOUND);
	assert_int_equal(db_run(db, "UPDATE t SET a = ? WHERE k = ?",
	    DB_TEXT("z"), DB_INT(1)), DB_OK);
	db_unlock(db);
}

static void
test_stmt_arg_count_checked(void **state)
{
	struct dbfx *f = *state;
	struct db *db = f->db;
	struct db_st *st;

	db_lock(db);
	assert_int_equal(db_exec(db, "CREATE TEMP TABLE t (a TEXT, b INTEGER)"),
	    0);
	/* Too few, too many, none: refused before anything runs. */
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (?, ?)",
	    DB_TEXT("x")), DB_ERR);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (?, ?)",
	    DB_TEXT("x"), DB_INT(1), DB_INT(2)), DB_ERR);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (?1, ?2)"), DB_ERR);
	assert_null(db_stmt(db, "SELECT ?1 + ?3", DB_INT(1), DB_INT(2)));
	assert_null(db_stmt(db, "SELECT 1", DB_INT(1)));
	assert_null(db_stmt(db, "SELECT nonsense FROM nowhere"));
	st = db_stmt(db, "SELECT count(*) FROM t");
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_ROW);
	assert_int_equal(db_col_int(st, 0), 0);
	db_finalize(st);
	db_unlock(db);
}

/* A transaction that fails at its commit: the audit row it carries cannot
 * be written. Undone with audit_unblock(). */
static void
audit_block(struct dbfx *f, struct audit_entry *e)
{
	memset(e, 0, sizeof *e);
	e->wanted = 1;
	AUDIT_SET(e, actor_type, "admin-socket");
	AUDIT_SET(e, actor, "root");
	AUDIT_SET(e, action, "test");
	raw_block(f, "audit_full", "INSERT", "audit_log");
	db_audit_pending(e);
}

static void
audit_unblock(struct dbfx *f)
{
	db_audit_pending(NULL);
	raw_unblock(f, "audit_full", "audit_log");
}

/* ---- schema ------------------------------------------------------------- */

static void
test_open_creates_schema(void **state)
{
	struct dbfx *f = *state;
	int v = db_schema_version(f->db);
	static const char *const tables[] = {
		"machines", "machine_events", "hardware", "leases", "settings",
	};
	char sql[128];
	size_t i;

	assert_true(v >= 1);
	assert_int_equal(raw_int(f, RAW_VERSION(f)), v);
	for (i = 0; i < sizeof tables / sizeof tables[0]; i++) {
		snprintf(sql, sizeof sql, f->pg ? "SELECT count(*) FROM"
		    " information_schema.tables WHERE table_schema = 'public'"
		    " AND table_name = '%s'" : "SELECT count(*) FROM"
		    " sqlite_master WHERE type = 'table' AND name = '%s'",
		    tables[i]);
		if (raw_int(f, sql) != 1)
			fail_msg("table %s missing", tables[i]);
	}
	/* WAL: readers never wait for the writer. */
	if (!f->pg) {
		sqlite3 *h;
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_open(f->path, &h), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode",
		    -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0),
		    "wal");
		sqlite3_finalize(st);
		sqlite3_close(h);
	}
	/* Reopening an up-to-date file migrates nothing. */
	db_close(f->db);
	assert_int_equal(dbfx_open(f, &f->db), 0);
	assert_int_equal(db_schema_version(f->db), v);
}

static void
test_reopen_keeps_data(void **state)
{
	struct dbfx *f = *state;
	struct machine m;
	json_t *hw = hw_report(2, 1LL << 31), *got = NULL;

	boot(f->db, MAC1, 1);
	assert_int_equal(db_hardware_store(f->db, MAC1, hw, NULL), DB_OK);
	db_close(f->db);
	f->db = NULL;
	assert_int_equal(dbfx_open(f, &f->db), 0);
	assert_int_equal(db_machine_get(f->db, MAC1, &m), DB_OK);
	assert_string_equal(m.mac, MAC1);
	assert_int_equal(m.state, MS_DISCOVERED);
	assert_string_equal(m.uuid, "uuid-1");
	assert_string_equal(m.serial, "SER-uuid-1");
	assert_string_equal(m.arch, "x86_64");
	assert_string_equal(m.platform, "efi");
	assert_string_equal(m.ip, "10.77.0.100");
	assert_int_equal(db_hardware_get(f->db, MAC1, &got), DB_OK);
	assert_true(json_equal(got, hw));
	assert_int_equal(nevents(f->db, MAC1), 2);
	json_decref(got);
	json_decref(hw);
	/* And a second boot of a known machine is not a new machine. */
	boot(f->db, MAC1, 0);
}

static void
test_newer_schema_refused(void **state)
{
	struct dbfx *f = *state;
	struct db *db = (struct db *)0x1;
	int v = db_schema_version(f->db);
	char sql[64];

	db_close(f->db);
	f->db = NULL;
	raw_exec(f, f->pg ? "UPDATE schema_version SET version = 9999" :
	    "PRAGMA user_version = 9999");
	assert_int_equal(dbfx_open(f, &db), -1);
	assert_ptr_equal(db, (struct db *)0x1);		/* untouched */
	/* The file is left as it was. */
	assert_int_equal(raw_int(f, RAW_VERSION(f)), 9999);
	/* Put it back so dbfx_teardown can close a real handle. */
	snprintf(sql, sizeof sql, f->pg ? "UPDATE schema_version SET"
	    " version = %d" : "PRAGMA user_version = %d", v);
	raw_exec(f, sql);
	assert_int_equal(dbfx_open(f, &f->db), 0);
}

static void
test_open_garbage_refused(void **state)
{
	struct dbfx *f = *state;
	char path[160];
	struct db *db = NULL;
	FILE *fp;

	snprintf(path, sizeof path, "%s/garbage.db", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("this is not an SQLite database, it is a text file.\n"
	    "0123456789012345678901234567890123456789\n", fp);
	fclose(fp);
	assert_int_equal(db_open(path, &db), -1);
	assert_null(db);
	snprintf(path, sizeof path, "%s/no/such/dir/x.db", f->dir);
	assert_int_equal(db_open(path, &db), -1);
	assert_null(db);
}

/* ---- machines ----------------------------------------------------------- */

static void
test_boot_creates_once(void **state)
{
	struct dbfx *f = *state;
	struct boot_info bi;
	struct machine m;
	json_t *ev;
	int created = -1;

	assert_int_equal(db_machine_get(f->db, MAC1, &m), DB_NOTFOUND);
	boot_info(&bi, MAC1, "uuid-1", "10.77.0.100");
	assert_int_equal(db_machine_boot(f->db, &bi, &m, &created), DB_OK);
	assert_int_equal(created, 1);
	assert_int_equal(m.state, MS_DISCOVERING);
	assert_int_equal(m.boots, 1);
	assert_int_equal(m.boots_in_state, 1);
	assert_true(m.created_ms > 0);
	assert_true(m.last_boot_ms >= m.created_ms);
	ev = events(f->db, MAC1);
	assert_int_equal(json_array_size(ev), 1);
	assert_string_equal(event_str(ev, 0, "state"), "discovering");
	assert_string_equal(event_str(ev, 0, "source"), "dispatch");
	json_decref(ev);

	/* Again: same machine, no new row, no new event. */
	created = -1;
	assert_int_equal(db_machine_boot(f->db, &bi, &m, &created), DB_OK);
	assert_int_equal(created, 0);
	assert_int_equal(m.state, MS_DISCOVERING);
	assert_int_equal(nevents(f->db, MAC1), 1);

	/* New boot data (another uuid: a board swap) is recorded; an empty
	 * ip does not erase the known one. */
	boot_info(&bi, MAC1, "uuid-2", "");
	assert_int_equal(db_machine_boot(f->db, &bi, &m, &created), DB_OK);
	assert_int_equal(created, 0);
	assert_string_equal(m.uuid, "uuid-2");
	assert_string_equal(m.serial, "SER-uuid-2");
	assert_string_equal(m.ip, "10.77.0.100");
	assert_int_equal(db_machine_get(f->db, MAC1, &m), DB_OK);
	assert_string_equal(m.uuid, "uuid-2");

	/* A transition starts the count in the new state; the lifetime
	 * count goes on. */
	assert_int_equal(m.boots, 2);
	assert_int_equal(db_machine_transition(f->db, MAC1, 0, MS_DISCOVERED,
	    "test", "reported"), DB_OK);
	boot_info(&bi, MAC1, "uuid-3", "");
	assert_int_equal(db_machine_boot(f->db, &bi, &m, &created), DB_OK);
	assert_int_equal(m.boots, 3);
	assert_int_equal(m.boots_in_state, 1);

	/* Another MAC is another machine. */
	boot(f->db, MAC2, 1);
}

static void
test_transitions(void **state)
{
	struct dbfx *f = *state;
	json_t *ev;

	boot(f->db, MAC1, 1);
	/* Allowed: discovering → discovered (from discovering only). */
	assert_int_equal(db_machine_transition(f->db, MAC1, BIT(MS_DISCOVERING),
	    MS_DISCOVERED, "test", "reported"), DB_OK);
	assert_int_equal(state_of(f->db, MAC1), MS_DISCOVERED);
	assert_int_equal(nevents(f->db, MAC1), 2);

	/* Not allowed: install from installed-only → conflict, nothing
	 * written. */
	assert_int_equal(db_machine_transition(f->db, MAC1,
	    BIT(MS_INSTALLED) | BIT(MS_ACTIVE), MS_QUEUED, "test",
	    "reprovision"), DB_CONFLICT);
	assert_int_equal(state_of(f->db, MAC1), MS_DISCOVERED);
	assert_int_equal(nevents(f->db, MAC1), 2);

	/* A mask with several states. */
	assert_int_equal(db_machine_transition(f->db, MAC1,
	    BIT(MS_DISCOVERED) | BIT(MS_FAILED), MS_QUEUED, "api",
	    "install queued by admin"), DB_OK);
	assert_int_equal(db_machine_transition(f->db, MAC1, BIT(MS_QUEUED),
	    MS_INSTALLING, "ks", "kickstart fetched"), DB_OK);
	assert_int_equal(db_machine_transition(f->db, MAC1, BIT(MS_INSTALLING),
	    MS_INSTALLED, "progress", "done"), DB_OK);
	/* 0 = from any state. */
	assert_int_equal(db_machine_transition(f->db, MAC1, 0, MS_FAILED,
	    "test", "forced"), DB_OK);
	assert_int_equal(state_of(f->db, MAC1), MS_FAILED);

	ev = events(f->db, MAC1);
	assert_int_equal(json_array_size(ev), 6);
	assert_string_equal(event_str(ev, 1, "state"), "discovered");
	assert_string_equal(event_str(ev, 1, "message"), "reported");
	assert_string_equal(event_str(ev, 2, "state"), "queued");
	assert_string_equal(event_str(ev, 2, "source"), "api");
	assert_string_equal(event_str(ev, 2, "message"),
	    "install queued by admin");
	assert_string_equal(event_str(ev, 3, "state"), "installing");
	assert_string_equal(event_str(ev, 4, "state"), "installed");
	assert_string_equal(event_str(ev, 5, "state"), "failed");
	/* Oldest first, ids increasing, times present. */
	assert_true(json_integer_value(json_object_get(json_array_get(ev, 0),
	    "id")) < json_integer_value(json_object_get(json_array_get(ev, 5),
	    "id")));
	assert_true(json_is_string(json_object_get(json_array_get(ev, 0),
	    "time")));
	json_decref(ev);

	/* Unknown machine. */
	assert_int_equal(db_machine_transition(f->db, MAC3, 0, MS_QUEUED,
	    "test", "x"), DB_NOTFOUND);
	assert_int_equal(nevents(f->db, MAC3), 0);
}

static void
test_transition_every_mask(void **state)
{
	struct dbfx *f = *state;
	int from, to;

	boot(f->db, MAC1, 1);
	/* From every state, a mask without it conflicts and one with it
	 * succeeds. */
	for (from = 0; from < MS_NSTATES; from++) {
		assert_int_equal(db_machine_transition(f->db, MAC1, 0,
		    (enum machine_state)from, "test", "set"), DB_OK);
		for (to = 0; to < MS_NSTATES; to++) {
			unsigned without = ((1u << MS_NSTATES) - 1) & ~BIT(from);

			assert_int_equal(db_machine_transition(f->db, MAC1,
			    without, (enum machine_state)to, "test", "no"),
			    DB_CONFLICT);
			assert_int_equal(state_of(f->db, MAC1), from);
		}
		assert_int_equal(db_machine_transition(f->db, MAC1, BIT(from),
		    (enum machine_state)((from + 1) % MS_NSTATES), "test", "yes"),
		    DB_OK);
		assert_int_equal(state_of(f->db, MAC1), (from + 1) % MS_NSTATES);
	}
	/* 1 boot event + 2 per state. */
	assert_int_equal(nevents(f->db, MAC1), 1 + 2 * MS_NSTATES);
}

static void
test_delete(void **state)
{
	struct dbfx *f = *state;
	struct machine m;
	json_t *hw = hw_report(2, 1LL << 31), *out = NULL;

	boot(f->db, MAC1, 1);
	boot(f->db, MAC2, 1);
	assert_int_equal(db_hardware_store(f->db, MAC1, hw, NULL), DB_OK);
	assert_int_equal(db_event_add(f->db, MAC1, "test", "hello", 50), DB_OK);
	assert_int_equal(nevents(f->db, MAC1), 3);

	assert_int_equal(db_machine_delete(f->db, MAC1), DB_OK);
	assert_int_equal(db_machine_get(f->db, MAC1, &m), DB_NOTFOUND);
	assert_int_equal(nevents(f->db, MAC1), 0);
	assert_int_equal(db_hardware_get(f->db, MAC1, &out), DB_NOTFOUND);
	assert_int_equal(db_machine_json(f->db, MAC1, &out), DB_NOTFOUND);
	assert_int_equal(raw_int(f,
	    "SELECT count(*) FROM hardware WHERE mac = '" MAC1 "'"), 0);
	/* Second time: not found. */
	assert_int_equal(db_machine_delete(f->db, MAC1), DB_NOTFOUND);
	assert_int_equal(db_machine_delete(f->db, MAC3), DB_NOTFOUND);
	/* The other machine is untouched. */
	assert_int_equal(db_machine_get(f->db, MAC2, &m), DB_OK);
	assert_int_equal(nevents(f->db, MAC2), 1);
	/* Booting again starts from scratch. */
	boot(f->db, MAC1, 1);
	assert_int_equal(nevents(f->db, MAC1), 1);
	json_decref(hw);
}

/* ---- events ------------------------------------------------------------- */

static void
test_events(void **state)
{
	struct dbfx *f = *state;
	json_t *ev = NULL;
	json_int_t first;
	int i;

	assert_int_equal(db_event_add(f->db, MAC1, "x", "y", -1), DB_NOTFOUND);
	boot(f->db, MAC1, 1);
	for (i = 0; i <= 100; i += 25)
		assert_int_equal(db_event_add(f->db, MAC1, "progress",
		    "packages", i), DB_OK);
	ev = events(f->db, MAC1);
	assert_int_equal(json_array_size(ev), 6);
	assert_true(json_is_null(json_object_get(json_array_get(ev, 0),
	    "progress")));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(ev,
	    3), "progress")), 50);
	/* Events carry the machine's state at the time. */
	assert_string_equal(event_str(ev, 3, "state"), "discovering");
	first = json_integer_value(json_object_get(json_array_get(ev, 0), "id"));
	json_decref(ev);

	/* after_id and limit page through them. */
	assert_int_equal(db_events_json(f->db, MAC1, first, 2, &ev), DB_OK);
	assert_int_equal(json_array_size(ev), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(ev,
	    0), "progress")), 0);
	json_decref(ev);
	assert_int_equal(db_events_json(f->db, MAC1, first + 1000, 10, &ev),
	    DB_OK);
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
	/* Text is stored as given, quotes and all. */
	assert_int_equal(db_event_add(f->db, MAC1, "t", "it's \"quoted\"; "
	    "DROP TABLE machines; --", -1), DB_OK);
	ev = events(f->db, MAC1);
	assert_string_equal(event_str(ev, 6, "message"),
	    "it's \"quoted\"; DROP TABLE machines; --");
	json_decref(ev);
	assert_int_equal(state_of(f->db, MAC1), MS_DISCOVERING);
}

/* ---- hardware ----------------------------------------------------------- */

static void
test_hardware_store(void **state)
{
	struct dbfx *f = *state;
	json_t *hw = hw_report(4, 1LL << 32), *hw2, *got = NULL, *ev, *mj;

	assert_int_equal(db_hardware_get(f->db, MAC1, &got), DB_NOTFOUND);
	/* The machine must have booted first. */
	assert_int_equal(db_hardware_store(f->db, MAC1, hw, NULL), DB_NOTFOUND);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM hardware"), 0);

	boot(f->db, MAC1, 1);
	assert_int_equal(db_hardware_store(f->db, MAC1, hw, NULL), DB_OK);
	assert_int_equal(state_of(f->db, MAC1), MS_DISCOVERED);
	assert_int_equal(db_hardware_get(f->db, MAC1, &got), DB_OK);
	assert_true(json_equal(got, hw));
	json_decref(got);
	ev = events(f->db, MAC1);
	assert_int_equal(json_array_size(ev), 2);
	assert_string_equal(event_str(ev, 1, "state"), "discovered");
	assert_string_equal(event_str(ev, 1, "source"), "discover");
	json_decref(ev);

	/* The machine JSON carries the report under "hardware". */
	assert_int_equal(db_machine_json(f->db, MAC1, &mj), DB_OK);
	assert_string_equal(json_string_value(json_object_get(mj, "state")),
	    "discovered");
	assert_true(json_equal(json_object_get(mj, "hardware"), hw));
	assert_true(json_is_string(json_object_get(mj, "hardware_updated_at")));
	json_decref(mj);

	/* A report is taken only from a discovering machine: a later one
	 * (a forged inventory) is DB_CONFLICT and changes nothing. */
	hw2 = hw_report(8, 1LL << 33);
	assert_int_equal(db_hardware_store(f->db, MAC1, hw2,
	    "memory 4.0 GiB -> 8.0 GiB"), DB_CONFLICT);
	assert_int_equal(state_of(f->db, MAC1), MS_DISCOVERED);
	assert_int_equal(db_hardware_get(f->db, MAC1, &got), DB_OK);
	assert_true(json_equal(got, hw));
	json_decref(got);
	ev = events(f->db, MAC1);
	assert_int_equal(json_array_size(ev), 2);
	json_decref(ev);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM hardware"), 1);
	/* Nor from an installed one. */
	assert_int_equal(db_machine_transition(f->db, MAC1, 0, MS_INSTALLED,
	    "test", "x"), DB_OK);
	assert_int_equal(db_hardware_store(f->db, MAC1, hw2, NULL),
	    DB_CONFLICT);
	assert_int_equal(state_of(f->db, MAC1), MS_INSTALLED);
	/* Back in discovering, a changed report replaces the first; the
	 * summary becomes the event. */
	assert_int_equal(db_machine_transition(f->db, MAC1, 0, MS_DISCOVERING,
	    "test", "x"), DB_OK);
	assert_int_equal(db_hardware_store(f->db, MAC1, hw2,
	    "memory 4.0 GiB -> 8.0 GiB"), DB_OK);
	assert_int_equal(state_of(f->db, MAC1), MS_DISCOVERED);
	ev = events(f->db, MAC1);
	assert_string_equal(event_str(ev, json_array_size(ev) - 1, "message"),
	    "memory 4.0 GiB -> 8.0 GiB");
	json_decref(ev);
	assert_int_equal(raw_int(f,
	    "SELECT cpu_threads FROM hardware"), 8);
	json_decref(hw);
	json_decref(hw2);
}

/* ---- listing and counting ----------------------------------------------- */

static json_t *
find_mac(json_t *arr, const char *mac)
{
	size_t i;
	json_t *o;

	json_array_foreach(arr, i, o)
		if (strcmp(json_string_value(json_object_get(o, "mac")), mac) == 0)
			return o;
	return NULL;
}

static void
test_list_filters(void **state)
{
	struct dbfx *f = *state;
	json_t *all = NULL, *some = NULL, *hw = hw_report(2, 1LL << 31), *o;

	assert_int_equal(db_machine_list(f->db, -1, &all), DB_OK);
	assert_int_equal(json_array_size(all), 0);
	json_decref(all);

	boot(f->db, MAC1, 1);
	boot(f->db, MAC2, 1);
	boot(f->db, MAC3, 1);
	assert_int_equal(db_hardware_store(f->db, MAC2, hw, NULL), DB_OK);
	assert_int_equal(db_machine_transition(f->db, MAC3, 0, MS_ACTIVE,
	    "test", "x"), DB_OK);

	assert_int_equal(db_machine_list(f->db, -1, &all), DB_OK);
	assert_int_equal(json_array_size(all), 3);
	o = find_mac(all, MAC2);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "state")),
	    "discovered");
	/* Hardware summary columns for machines that reported. */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o,
	    "summary"), "disks")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o,
	    "summary"), "memory_bytes")), 1LL << 31);
	assert_null(json_object_get(find_mac(all, MAC1), "summary"));
	json_decref(all);

	assert_int_equal(db_machine_list(f->db, MS_DISCOVERING, &some), DB_OK);
	assert_int_equal(json_array_size(some), 1);
	assert_non_null(find_mac(some, MAC1));
	json_decref(some);
	assert_int_equal(db_machine_list(f->db, MS_ACTIVE, &some), DB_OK);
	assert_int_equal(json_array_size(some), 1);
	assert_non_null(find_mac(some, MAC3));
	json_decref(some);
	assert_int_equal(db_machine_list(f->db, MS_QUEUED, &some), DB_OK);
	assert_int_equal(json_array_size(some), 0);
	json_decref(some);
	json_decref(hw);
}

static void
test_count_by_state(void **state)
{
	struct dbfx *f = *state;
	long counts[MS_NSTATES];
	int i;

	memset(counts, 0x7f, sizeof counts);
	assert_int_equal(db_count_by_state(f->db, counts), DB_OK);
	for (i = 0; i < MS_NSTATES; i++)
		assert_int_equal(counts[i], 0);
	boot(f->db, MAC1, 1);
	boot(f->db, MAC2, 1);
	boot(f->db, MAC3, 1);
	assert_int_equal(db_machine_transition(f->db, MAC3, 0, MS_FAILED,
	    "test", "x"), DB_OK);
	assert_int_equal(db_count_by_state(f->db, counts), DB_OK);
	assert_int_equal(counts[MS_DISCOVERING], 2);
	assert_int_equal(counts[MS_FAILED], 1);
	assert_int_equal(counts[MS_ACTIVE], 0);
	assert_int_equal(counts[MS_QUEUED], 0);
}

/* ---- out-parameters: written only on success ---------------------------- */

static void
test_boot_out_params(void **state)
{
	struct dbfx *f = *state;
	struct boot_info bi;
	struct machine m;
	int created = -1;

	/* A new machine whose row cannot be written. */
	raw_block(f, "no_insert", "INSERT", "machines");
	boot_info(&bi, MAC1, "uuid-1", "10.77.0.100");
	memset(&m, 0x5a, sizeof m);
	assert_int_equal(db_machine_boot(f->db, &bi, &m, &created), DB_ERR);
	assert_int_equal(created, -1);
	assert_int_equal((unsigned char)m.mac[0], 0x5a);
	raw_unblock(f, "no_insert", "machines");
	assert_int_equal(db_machine_get(f->db, MAC1, &m), DB_NOTFOUND);
	/* A known machine whose boot row cannot be refreshed. */
	boot(f->db, MAC1, 1);
	raw_block(f, "no_update", "UPDATE", "machines");
	boot_info(&bi, MAC1, "uuid-2", "10.77.0.100");
	memset(&m, 0x5a, sizeof m);
	assert_int_equal(db_machine_boot(f->db, &bi, &m, &created), DB_ERR);
	assert_int_equal(created, -1);
	assert_int_equal((unsigned char)m.mac[0], 0x5a);
	raw_unblock(f, "no_update", "machines");
	assert_int_equal(db_machine_boot(f->db, &bi, &m, &created), DB_OK);
	assert_int_equal(created, 0);
	assert_string_equal(m.uuid, "uuid-2");
}

static void
install_queue(struct db *db, const char *mac)
{
	struct install in;

	memset(&in, 0, sizeof in);
	snprintf(in.mac, sizeof in.mac, "%s", mac);
	snprintf(in.hostname, sizeof in.hostname, "node1");
	snprintf(in.role, sizeof in.role, "base");
	snprintf(in.os, sizeof in.os, "debian12");
	snprintf(in.disk, sizeof in.disk, "auto");
	snprintf(in.ssh_keys, sizeof in.ssh_keys, "[]");
	assert_int_equal(db_install_queue(db, &in, 0, "queued"), DB_OK);
}

static void
test_install_boot_out_params(void **state)
{
	struct dbfx *f = *state;
	struct audit_entry e;
	struct install in;
	struct machine m;
	int boots = -1, failed = -1;

	boot(f->db, MAC1, 1);
	/* Not queued: a conflict, nothing written. */
	assert_int_equal(db_install_boot(f->db, MAC1, "h0", "10.0.0.5", 0, 3,
	    &boots, &failed),
	    DB_NOTFOUND);
	install_queue(f->db, MAC1);
	assert_int_equal(db_machine_transition(f->db, MAC1, 0, MS_DISCOVERED,
	    "test", "x"), DB_OK);
	assert_int_equal(db_install_boot(f->db, MAC1, "h0", "10.0.0.5", 0, 3,
	    &boots, &failed),
	    DB_CONFLICT);
	assert_int_equal(boots, -1);
	assert_int_equal(failed, -1);
	assert_int_equal(db_machine_transition(f->db, MAC1, 0, MS_QUEUED,
	    "test", "x"), DB_OK);
	assert_int_equal(db_install_boot(f->db, MAC1, "h1", "10.0.0.5", 0, 1,
	    &boots, &failed),
	    DB_OK);
	assert_int_equal(boots, 1);
	assert_int_equal(failed, 0);
	/* Past max_boots, but the commit fails: neither is written and the
	 * install is as it was. */
	boots = failed = -1;
	audit_block(f, &e);
	assert_int_equal(db_install_boot(f->db, MAC1, "h2", "10.0.0.5", 0, 1,
	    &boots, &failed),
	    DB_ERR);
	audit_unblock(f);
	assert_int_equal(boots, -1);
	assert_int_equal(failed, -1);
	assert_int_equal(db_machine_get(f->db, MAC1, &m), DB_OK);
	assert_int_equal(m.state, MS_QUEUED);
	assert_int_equal(db_install_current(f->db, MAC1, &in), DB_OK);
	assert_string_equal(in.status, "queued");
	assert_int_equal(in.boots, 1);
	assert_string_equal(in.key_hash, "h1");
	/* Now it commits: the install and the machine fail. */
	assert_int_equal(db_install_boot(f->db, MAC1, "h2", "10.0.0.5", 0, 1,
	    &boots, &failed),
	    DB_OK);
	assert_int_equal(boots, 2);
	assert_int_equal(failed, 1);
	assert_int_equal(db_machine_get(f->db, MAC1, &m), DB_OK);
	assert_int_equal(m.state, MS_FAILED);
	assert_int_equal(db_install_current(f->db, MAC1, &in), DB_OK);
	assert_string_equal(in.status, "failed");
}

/* An install is bound to the address of its first installer boot; its
 * kickstart (and join token secret) goes out once per boot. */
static void
test_install_binding(void **state)
{
	struct dbfx *f = *state;
	struct install in;
	int boots = -1, failed = -1;

	boot(f->db, MAC1, 1);
	install_queue(f->db, MAC1);
	assert_int_equal(db_install_current(f->db, MAC1, &in), DB_OK);
	assert_string_equal(in.bound_addr, "");
	assert_int_equal(db_install_boot(f->db, MAC1, "h1", "10.0.0.5", 0, 3,
	    &boots, &failed), DB_OK);
	/* Another address: denied, nothing counted, the key unchanged. */
	boots = failed = -1;
	assert_int_equal(db_install_boot(f->db, MAC1, "hx", "10.0.0.66", 0, 3,
	    &boots, &failed), DB_DENIED);
	assert_int_equal(boots, -1);
	assert_int_equal(db_install_current(f->db, MAC1, &in), DB_OK);
	assert_string_equal(in.bound_addr, "10.0.0.5");
	assert_string_equal(in.key_hash, "h1");
	assert_int_equal(in.boots, 1);
	/* Its lease moved: rebound. */
	assert_int_equal(db_install_boot(f->db, MAC1, "h2", "10.0.0.6", 1, 3,
	    &boots, &failed), DB_OK);
	assert_int_equal(db_install_current(f->db, MAC1, &in), DB_OK);
	assert_string_equal(in.bound_addr, "10.0.0.6");
	assert_int_equal(in.boots, 2);
	/* No token yet: DB_DENIED, and the machine stays queued. */
	assert_int_equal(db_install_kickstart(f->db, MAC1, in.id, 2, "t1"),
	    DB_DENIED);
	assert_int_equal(state_of(f->db, MAC1), MS_QUEUED);
	assert_int_equal(db_token_install_create(f->db, in.id, MAC1, "t0",
	    clock_wall_ms() + 60000), DB_OK);
	/* A stale boot number: DB_CONFLICT. */
	assert_int_equal(db_install_kickstart(f->db, MAC1, in.id, 1, "t1"),
	    DB_CONFLICT);
	assert_int_equal(db_install_kickstart(f->db, MAC1, in.id, 2, "t1"),
	    DB_OK);
	assert_int_equal(state_of(f->db, MAC1), MS_INSTALLING);
	/* Once per boot. */
	assert_int_equal(db_install_kickstart(f->db, MAC1, in.id, 2, "t2"),
	    DB_CONFLICT);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM join_tokens"
	    " WHERE hash = 't1'"), 1);
	/* The next boot gets a new secret; the expiry does not move. */
	assert_int_equal(db_install_boot(f->db, MAC1, "h3", "10.0.0.6", 0, 3,
	    &boots, &failed), DB_OK);
	raw_exec(f, "UPDATE join_tokens SET expires_ms = 1");
	assert_int_equal(db_install_kickstart(f->db, MAC1, in.id, 3, "t3"),
	    DB_DENIED);
	assert_int_equal(raw_int(f, "SELECT expires_ms FROM join_tokens"),
	    1);
}

static void
test_install_progress(void **state)
{
	struct dbfx *f = *state;
	struct install in;
	struct machine m;

	boot(f->db, MAC1, 1);
	install_queue(f->db, MAC1);
	assert_int_equal(db_install_progress(f->db, MAC1, "disk", 10, ""),
	    DB_CONFLICT);
	assert_int_equal(db_install_started(f->db, MAC1), DB_OK);
	assert_int_equal(db_machine_get(f->db, MAC1, &m), DB_OK);
	assert_int_equal(m.state, MS_INSTALLING);
	assert_int_equal(db_install_started(f->db, MAC1), DB_OK);
	assert_int_equal(db_install_progress(f->db, MAC1, "disk", 10, "part"),
	    DB_OK);
	assert_int_equal(db_install_current(f->db, MAC1, &in), DB_OK);
	assert_string_equal(in.status, "installing");
	assert_string_equal(in.stage, "disk");
	assert_int_equal(in.progress, 10);
	assert_string_equal(in.message, "part");
	assert_int_equal(db_install_progress(f->db, MAC1, "done", 100, ""),
	    DB_OK);
	assert_int_equal(db_machine_get(f->db, MAC1, &m), DB_OK);
	assert_int_equal(m.state, MS_INSTALLED);
	assert_int_equal(db_install_current(f->db, MAC1, &in), DB_OK);
	assert_string_equal(in.status, "done");
	assert_int_equal(db_install_current(f->db, MAC2, &in), DB_NOTFOUND);
}

static void
test_count_by_state_out_param(void **state)
{
	struct dbfx *f = *state;
	long counts[MS_NSTATES];

	boot(f->db, MAC1, 1);
	raw_exec(f, "ALTER TABLE machines RENAME TO gone");
	memset(counts, 0x7f, sizeof counts);
	assert_int_equal(db_count_by_state(f->db, counts), DB_ERR);
	assert_int_equal(counts[MS_DISCOVERING], 0x7f7f7f7f7f7f7f7fL);
	raw_exec(f, "ALTER TABLE gone RENAME TO machines");
	assert_int_equal(db_count_by_state(f->db, counts), DB_OK);
	assert_int_equal(counts[MS_DISCOVERING], 1);
}

/* ---- leases ------------------------------------------------------------- */

static void
test_leases(void **state)
{
	struct dbfx *f = *state;
	json_t *l = NULL;
	struct machine m;

	assert_int_equal(db_leases_json(f->db, &l), DB_OK);
	assert_int_equal(json_array_size(l), 0);
	json_decref(l);

	/* A lease for a MAC bastion has not seen yet is still recorded. */
	assert_int_equal(db_lease_record(f->db, "add", MAC2, "10.77.0.150",
	    "", 1700000000), DB_OK);
	boot(f->db, MAC1, 1);
	assert_int_equal(db_lease_record(f->db, "add", MAC1, "10.77.0.151",
	    "node1", 1700000100), DB_OK);
	assert_int_equal(db_leases_json(f->db, &l), DB_OK);
	assert_int_equal(json_array_size(l), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l,
	    0), "mac")), MAC1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l,
	    0), "ip")), "10.77.0.151");
	assert_string_equal(json_string_value(json_object_get(json_array_get(l,
	    0), "hostname")), "node1");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(l,
	    0), "expires")), 1700000100);
	json_decref(l);
	/* The known machine learns its address and name. */
	assert_int_equal(db_machine_get(f->db, MAC1, &m), DB_OK);
	assert_string_equal(m.ip, "10.77.0.151");
	assert_string_equal(m.hostname, "node1");

	/* "old" renews: same row, new values. */
	assert_int_equal(db_lease_record(f->db, "old", MAC1, "10.77.0.152",
	    "node1", 1700000200), DB_OK);
	assert_int_equal(db_leases_json(f->db, &l), DB_OK);
	assert_int_equal(json_array_size(l), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l,
	    0), "ip")), "10.77.0.152");
	json_decref(l);

	/* "del" removes it. */
	assert_int_equal(db_lease_record(f->db, "del", MAC1, "10.77.0.152",
	    "node1", 0), DB_OK);
	assert_int_equal(db_leases_json(f->db, &l), DB_OK);
	assert_int_equal(json_array_size(l), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(l,
	    0), "mac")), MAC2);
	json_decref(l);
	assert_int_equal(db_machine_get(f->db, MAC1, &m), DB_OK);
	assert_string_equal(m.ip, "");
	/* Deleting what is not there is fine. */
	assert_int_equal(db_lease_record(f->db, "del", MAC3, "", "", 0), DB_OK);
}

/* ---- threads ------------------------------------------------------------ */

struct worker {
	struct db	*db;
	int		 id;
	int		 created;
	int		 rc;
};

static void *
boot_storm(void *arg)
{
	struct worker *w = arg;
	struct boot_info bi;
	struct machine m;
	char mac[MAC_STRLEN];
	int i, c;

	for (i = 0; i < 25; i++) {
		snprintf(mac, sizeof mac, "52:54:00:%02x:00:%02x", w->id, i);
		boot_info(&bi, mac, "u", "10.0.0.1");
		if (db_machine_boot(w->db, &bi, &m, &c) != DB_OK)
			w->rc = -1;
		else
			w->created += c;
		/* Everyone also boots one shared machine. */
		boot_info(&bi, MAC1, "u", "10.0.0.1");
		if (db_machine_boot(w->db, &bi, &m, &c) != DB_OK)
			w->rc = -1;
		else
			w->created += c;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct dbfx *f = *state;
	struct worker w[4];
	pthread_t t[4];
	long counts[MS_NSTATES];
	int i, created = 0;

	for (i = 0; i < 4; i++) {
		w[i].db = f->db;
		w[i].id = i + 0x10;
		w[i].created = 0;
		w[i].rc = 0;
		assert_int_equal(pthread_create(&t[i], NULL, boot_storm, &w[i]),
		    0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].rc, 0);
		created += w[i].created;
	}
	/* 100 own machines + the shared one, created exactly once. */
	assert_int_equal(created, 101);
	assert_int_equal(db_count_by_state(f->db, counts), DB_OK);
	assert_int_equal(counts[MS_DISCOVERING], 101);
	assert_int_equal(nevents(f->db, MAC1), 1);
}

/* The connection is cut under the db (on PostgreSQL its server
 * processes are terminated): the next call fails and the database reads
 * unavailable; it comes back by itself (a reconnect with a backoff),
 * with the data. SQLite has no connection to lose. */
static void
test_connection_lost(void **state)
{
	struct dbfx *f = *state;
	struct machine m;
	int i, rc = DB_ERR;

	boot(f->db, MAC1, 1);
	assert_int_equal(db_unavailable(f->db), 0);
	if (f->pg) {
		assert_true(raw_int(f, "SELECT count(pg_terminate_backend(pid))"
		    " FROM pg_stat_activity WHERE datname = current_database()"
		    " AND pid <> pg_backend_pid()") >= 1);
		assert_int_equal(db_machine_get(f->db, MAC1, &m), DB_ERR);
		assert_int_equal(db_unavailable(f->db), 1);
	}
	/* Back within the backoff's first steps (100 ms, 200 ms, ...). */
	for (i = 0; i < 100 && rc != DB_OK; i++)
		if ((rc = db_machine_get(f->db, MAC1, &m)) != DB_OK)
			usleep(50 * 1000);
	assert_int_equal(rc, DB_OK);
	assert_string_equal(m.mac, MAC1);
	assert_int_equal(db_unavailable(f->db), 0);
	/* And writes go through again. */
	boot(f->db, MAC2, 1);
}

/* A statement outside a transaction that loses a serialization (on
 * PostgreSQL: a trigger raises serialization_failure the first two times,
 * counted by a sequence, which no rollback undoes) is run again and
 * goes through once; the third failure in a row would be an error. */
static void
test_serialization_retried(void **state)
{
	struct dbfx *f = *state;
	struct db *db = f->db;

	db_lock(db);
	assert_int_equal(db_exec(db, "CREATE TABLE r (a INTEGER)"), 0);
	db_unlock(db);
	if (f->pg)
		raw_exec(f, "CREATE SEQUENCE fails;"
		    " CREATE FUNCTION fail_twice() RETURNS trigger"
		    " LANGUAGE plpgsql AS $$BEGIN"
		    " IF nextval('fails') <= 2 THEN RAISE EXCEPTION 'busy'"
		    " USING ERRCODE = 'serialization_failure'; END IF;"
		    " RETURN NEW; END$$;"
		    " CREATE TRIGGER fail_twice BEFORE INSERT ON r FOR EACH ROW"
		    " EXECUTE FUNCTION fail_twice()");
	db_lock(db);
	assert_int_equal(db_run(db, "INSERT INTO r VALUES (?)", DB_INT(1)),
	    DB_OK);
	db_unlock(db);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM r"), 1);
	if (f->pg)
		assert_int_equal(raw_int(f, "SELECT last_value FROM fails"), 3);
}

/* What one bastion does reaches the others on the database: a wake-up
 * for an agent, and the end of the machine caches' generation. On
 * SQLite (one bastion) both are no-ops that succeed. */
struct heard {
	pthread_mutex_t	 mu;
	int		 all;		/* fn(NULL): (re)connected */
	char		 agent[64];
};

static void
on_wake(const char *agent_id, void *arg)
{
	struct heard *h = arg;

	pthread_mutex_lock(&h->mu);
	if (agent_id == NULL)
		h->all++;
	else
		snprintf(h->agent, sizeof h->agent, "%s", agent_id);
	pthread_mutex_unlock(&h->mu);
}

/* Poll cond(h) for up to 10 s. */
static int
heard_wait(struct heard *h, int (*cond)(struct heard *, void *), void *arg)
{
	struct timespec ts = { 0, 20 * 1000000 };
	int i, ok = 0;

	for (i = 0; i < 500 && !ok; i++) {
		pthread_mutex_lock(&h->mu);
		ok = cond(h, arg);
		pthread_mutex_unlock(&h->mu);
		if (!ok)
			nanosleep(&ts, NULL);
	}
	return ok;
}

static int
heard_connect(struct heard *h, void *arg)
{
	(void)arg;
	return h->all > 0;
}

static int
heard_agent(struct heard *h, void *arg)
{
	return strcmp(h->agent, arg) == 0;
}

struct gen_watch {
	struct db	*db;
	unsigned long	 before;
};

static int
gen_moved(struct heard *h, void *arg)
{
	struct gen_watch *w = arg;

	(void)h;
	return atomic_load(&w->db->machines_gen) != w->before;
}

static void
test_other_bastions_are_heard(void **state)
{
	struct dbfx *f = *state;
	struct heard h = { PTHREAD_MUTEX_INITIALIZER, 0, "" };
	struct gen_watch w;
	struct db *other;

	assert_int_equal(dbfx_open(f, &other), 0);
	assert_int_equal(db_listen_start(other, on_wake, &h, NULL), 0);
	if (!f->pg) {
		assert_int_equal(db_wake_agent(f->db, "agent-1"), 0);
		db_listen_stop(other);
		db_close(other);
		return;
	}
	assert_true(heard_wait(&h, heard_connect, NULL));
	assert_int_equal(db_wake_agent(f->db, "agent-1"), 0);
	assert_true(heard_wait(&h, heard_agent, "agent-1"));
	/* A machine changed by this bastion: the other's caches go. */
	w.db = other;
	w.before = atomic_load(&other->machines_gen);
	boot(f->db, MAC1, 1);
	assert_true(heard_wait(&h, gen_moved, &w));
	db_listen_stop(other);
	db_close(other);
}

/* The DHCP lead (PostgreSQL): of two bastions competing for one
 * interface exactly one leads, and status names it; a third on another
 * interface leads its own. The leader's listening connection cut, it is
 * told at once that it lost the lead, and one of the two leads again.
 * On SQLite nobody competes and the one bastion leads. */
struct lead {
	pthread_mutex_t	 mu;
	int		 leading;
	int		 taken;		/* fn(1) calls */
	int		 lost;		/* fn(0) calls */
	int		 same;		/* calls that changed nothing */
	char		 interface[16];	/* as the last call said */
};

static void
on_lead(int leading, const char *interface, void *arg)
{
	struct lead *l = arg;

	pthread_mutex_lock(&l->mu);
	snprintf(l->interface, sizeof l->interface, "%s", interface);
	if (l->leading == leading)
		l->same++;
	l->leading = leading;
	if (leading)
		l->taken++;
	else
		l->lost++;
	pthread_mutex_unlock(&l->mu);
}

static int
lead_get(struct lead *l, int *taken, int *lost)
{
	int v;

	pthread_mutex_lock(&l->mu);
	v = l->leading;
	if (taken)
		*taken = l->taken;
	if (lost)
		*lost = l->lost;
	pthread_mutex_unlock(&l->mu);
	return v;
}

/* The urls status says lead DHCP, comma-separated, in url order. */
static void
status_leaders(struct db *db, char *out, size_t len)
{
	json_t *list, *b;
	size_t i, n = 0;

	out[0] = '\0';
	assert_int_equal(db_cluster_json(db, 0, &list), DB_OK);
	json_array_foreach(list, i, b) {
		if (!json_is_true(json_object_get(b, "dhcp_leader")))
			continue;
		n += (size_t)snprintf(out + n, len - n, "%s%s", n ? "," : "",
		    json_string_value(json_object_get(b, "url")));
		assert_true(n < len);
	}
	json_decref(list);
}

/* Poll for up to 10 s until cond(arg) holds. */
static int
eventually(int (*cond)(void *), void *arg)
{
	int i;

	for (i = 0; i < 500; i++) {
		if (cond(arg))
			return 1;
		usleep(20 * 1000);
	}
	return 0;
}

struct leaders_want {
	struct db	*db;
	const char	*want;
};

static int
leaders_are(void *arg)
{
	struct leaders_want *w = arg;
	char got[256];

	status_leaders(w->db, got, sizeof got);
	return strcmp(got, w->want) == 0;
}

static int
leads(void *arg)
{
	return lead_get(arg, NULL, NULL);
}

static int
lost_once(void *arg)
{
	int lost;

	lead_get(arg, NULL, &lost);
	return lost == 1;
}

struct two_leads {
	struct lead	*a, *b;
};

static int
one_of_two_leads(void *arg)
{
	struct two_leads *t = arg;

	return lead_get(t->a, NULL, NULL) + lead_get(t->b, NULL, NULL) == 1;
}

/* b's listener has tried the lock and is idle again. */
static struct dbfx *tried_fx;

static int
b_tried(void *arg)
{
	(void)arg;
	return raw_int(tried_fx, "SELECT count(*) FROM pg_stat_activity s"
	    " JOIN bastions b ON s.pid = b.dhcp_session WHERE b.url ="
	    " 'https://b' AND s.query LIKE '%pg_try_advisory_lock%' AND"
	    " s.state = 'idle'") == 1;
}

static void
test_dhcp_lead(void **state)
{
	struct dbfx *f = *state;
	struct lead la = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, "" };
	struct lead lb = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, "" };
	struct lead lc = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, "" };
	struct db_dhcp_lead da = { "bastion0", "https://a", on_lead, &la };
	struct db_dhcp_lead db_ = { "bastion0", "https://b", on_lead, &lb };
	struct db_dhcp_lead dc = { "bastion1", "https://c", on_lead, &lc };
	struct leaders_want w = { f->db, NULL };
	struct two_leads t = { &la, &lb };
	struct heard h = { PTHREAD_MUTEX_INITIALIZER, 0, "" };
	struct db *a, *b, *c;
	char got[256];
	int taken;

	assert_int_equal(db_cluster_seen(f->db, "https://a", "1", "bastion0",
	    1, 2), DB_OK);
	if (!f->pg) {
		/* Nothing competes: the one bastion leads. */
		assert_int_equal(db_listen_start(f->db, on_wake, &h, &da), 0);
		db_listen_stop(f->db);
		assert_int_equal(lead_get(&la, &taken, NULL), 0);
		assert_int_equal(taken, 0);
		status_leaders(f->db, got, sizeof got);
		assert_string_equal(got, "https://a");
		return;
	}
	assert_int_equal(db_cluster_seen(f->db, "https://b", "1", "bastion0",
	    1, 2), DB_OK);
	assert_int_equal(db_cluster_seen(f->db, "https://c", "1", "bastion1",
	    1, 2), DB_OK);
	assert_int_equal(dbfx_open(f, &a), 0);
	assert_int_equal(dbfx_open(f, &b), 0);
	assert_int_equal(dbfx_open(f, &c), 0);
	assert_int_equal(db_listen_start(a, on_wake, &h, &da), 0);
	assert_true(eventually(leads, &la));
	assert_int_equal(db_listen_start(b, on_wake, &h, &db_), 0);
	assert_int_equal(db_listen_start(c, on_wake, &h, &dc), 0);
	assert_true(eventually(leads, &lc));	/* another interface */
	w.want = "https://a,https://c";
	assert_true(eventually(leaders_are, &w));
	tried_fx = f;
	assert_true(eventually(b_tried, NULL));
	assert_int_equal(lead_get(&lb, &taken, NULL), 0);
	assert_int_equal(taken, 0);

	/* a's listening connection is cut: a hears it lost the lead, and
	 * one of a and b leads again (whoever tries first). */
	assert_int_equal(raw_int(f, "SELECT count(pg_terminate_backend("
	    "CAST(dhcp_session AS integer))) FROM bastions WHERE url ="
	    " 'https://a'"), 1);
	assert_true(eventually(lost_once, &la));
	assert_true(eventually(one_of_two_leads, &t));
	w.want = lead_get(&la, NULL, NULL) ? "https://a,https://c" :
	    "https://b,https://c";
	assert_true(eventually(leaders_are, &w));
	assert_int_equal(lead_get(&lc, NULL, NULL), 1);

	db_listen_stop(a);
	db_listen_stop(b);
	db_listen_stop(c);
	/* Told of changes only, and which interface. */
	assert_int_equal(la.same + lb.same + lc.same, 0);
	assert_string_equal(la.interface, "bastion0");
	assert_string_equal(lc.interface, "bastion1");
	db_close(a);
	db_close(b);
	db_close(c);
}

/* Two bastions' write transactions that take the same two rows in
 * opposite orders: on PostgreSQL (READ COMMITTED) they would deadlock and
 * one would fail; the cluster's write lock makes the second wait at its
 * BEGIN, and both commit. Reads are not held up meanwhile. */
struct crossing {
	struct db	*db;
	int		 first, second, rc;
};

static void *
crossing_writer(void *arg)
{
	struct crossing *x = arg;

	if (db_begin(x->db) == -1) {
		x->rc = -1;
		return NULL;
	}
	x->rc = db_run(x->db, "UPDATE x SET v = v + 1 WHERE k = ?",
	    DB_INT(x->second));
	if (x->rc == DB_OK)
		x->rc = db_run(x->db, "UPDATE x SET v = v + 1 WHERE k = ?",
		    DB_INT(x->first));
	x->rc = db_end(x->db, 0, x->rc);
	return NULL;
}

static struct dbfx *waiting_fx;

static int
writer_waits(void *arg)
{
	(void)arg;
	return raw_int(waiting_fx, "SELECT count(*) FROM pg_stat_activity"
	    " WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'")
	    == 1;
}

static void
test_write_transactions_never_deadlock(void **state)
{
	struct dbfx *f = *state;
	struct crossing y = { NULL, 1, 2, -2 };
	struct db *other;
	pthread_t t;
	int rc;

	db_lock(f->db);
	assert_int_equal(db_exec(f->db, "CREATE TABLE x (k INTEGER PRIMARY KEY,"
	    " v INTEGER)"), 0);
	assert_int_equal(db_exec(f->db, "INSERT INTO x VALUES (1, 0), (2, 0)"),
	    0);
	db_unlock(f->db);
	if (!f->pg)
		return;		/* one bastion: its own lock serialises */
	assert_int_equal(dbfx_open(f, &other), 0);
	y.db = other;

	/* This one takes row 1 and holds it... */
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(db_run(f->db, "UPDATE x SET v = v + 1 WHERE k = 1"),
	    DB_OK);
	/* ...the other bastion's transaction (row 2, then row 1) waits for
	 * the write lock, not in the middle of its rows... */
	assert_int_equal(pthread_create(&t, NULL, crossing_writer, &y), 0);
	waiting_fx = f;
	assert_true(eventually(writer_waits, NULL));
	assert_int_equal(raw_int(f, "SELECT v FROM x WHERE k = 2"), 0);
	/* ...so this one can take row 2 too, and commits. */
	rc = db_run(f->db, "UPDATE x SET v = v + 1 WHERE k = 2");
	assert_int_equal(db_end(f->db, 0, rc), DB_OK);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(y.rc, DB_OK);
	assert_int_equal(raw_int(f, "SELECT sum(v) FROM x"), 4);
	db_close(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		DBFX_TEST(test_stmt_typed_args),
		DBFX_TEST(test_stmt_arg_count_checked),
		DBFX_TEST(test_open_creates_schema),
		DBFX_TEST(test_reopen_keeps_data),
		DBFX_TEST(test_newer_schema_refused),
		DBFX_TEST(test_open_garbage_refused),
		DBFX_TEST(test_boot_creates_once),
		DBFX_TEST(test_transitions),
		DBFX_TEST(test_transition_every_mask),
		DBFX_TEST(test_delete),
		DBFX_TEST(test_events),
		DBFX_TEST(test_hardware_store),
		DBFX_TEST(test_list_filters),
		DBFX_TEST(test_count_by_state),
		DBFX_TEST(test_boot_out_params),
		DBFX_TEST(test_install_boot_out_params),
		DBFX_TEST(test_install_binding),
		DBFX_TEST(test_install_progress),
		DBFX_TEST(test_count_by_state_out_param),
		DBFX_TEST(test_leases),
		DBFX_TEST(test_threads),
		DBFX_TEST(test_connection_lost),
		DBFX_TEST(test_serialization_retried),
		DBFX_TEST(test_other_bastions_are_heard),
		DBFX_TEST(test_dhcp_lead),
		DBFX_TEST(test_write_transactions_never_deadlock),
	};

	/* The db logs its warnings; keep them on stderr, quietly. */
	log_init(1, 0, "test_db");
	return cmocka_run_group_tests_name("db", tests, NULL, NULL);
}
