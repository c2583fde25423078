/* test_auth.c — roles, scopes, durations, CIDR allowlists, Argon2id
 * passwords (auth.c), the audit row hash (audit.c), and the audit chain
 * and its transactions against a real SQLite file (db_audit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "audit.h"
#include "auth.h"
#include "duration.h"
#include "db.h"
#include "db_auth.h"
#include "log.h"

static void
test_roles_and_scopes(void **state)
{
	assert_int_equal(auth_role_from_name("viewer"), ROLE_VIEWER);
	assert_int_equal(auth_role_from_name("admin"), ROLE_ADMIN);
	assert_int_equal(auth_role_from_name("none"), -1);
	assert_int_equal(auth_role_from_name("Admin"), -1);
	assert_int_equal(auth_role_from_name(NULL), -1);
	assert_true(ROLE_VIEWER < ROLE_OPERATOR && ROLE_OPERATOR < ROLE_ADMIN);
	assert_string_equal(auth_role_name(ROLE_OPERATOR), "operator");
	assert_int_equal(auth_scope_from_name("exec"), SCOPE_EXEC);
	assert_int_equal(auth_scope_from_name("write"), -1);
	/* read is covered by all; admin covers all; the others themselves. */
	assert_true(auth_scope_covers(SCOPE_READ, SCOPE_READ));
	assert_true(auth_scope_covers(SCOPE_EXEC, SCOPE_READ));
	assert_true(auth_scope_covers(SCOPE_ADMIN, SCOPE_EXEC));
	assert_true(auth_scope_covers(SCOPE_PROVISION, SCOPE_PROVISION));
	assert_false(auth_scope_covers(SCOPE_READ, SCOPE_PROVISION));
	assert_false(auth_scope_covers(SCOPE_PROVISION, SCOPE_EXEC));
	assert_false(auth_scope_covers(SCOPE_EXEC, SCOPE_PROVISION));
	assert_false(auth_scope_covers(SCOPE_EXEC, SCOPE_ADMIN));
	assert_int_equal(auth_scope_min_role(SCOPE_READ), ROLE_VIEWER);
	assert_int_equal(auth_scope_min_role(SCOPE_PROVISION), ROLE_OPERATOR);
	assert_int_equal(auth_scope_min_role(SCOPE_EXEC), ROLE_OPERATOR);
	assert_int_equal(auth_scope_min_role(SCOPE_ADMIN), ROLE_ADMIN);
}

static void
test_names(void **state)
{
	assert_true(auth_name_valid("alice"));
	assert_true(auth_name_valid("ops-1.team_a"));
	assert_true(auth_name_valid("0day"));
	assert_true(auth_name_valid("abcdefghijklmnopqrstuvwxyz012345"));
	assert_false(auth_name_valid("abcdefghijklmnopqrstuvwxyz0123456"));
	assert_false(auth_name_valid(""));
	assert_false(auth_name_valid("Alice"));
	assert_false(auth_name_valid("-x"));
	assert_false(auth_name_valid("a b"));
	assert_false(auth_name_valid("a/b"));
	assert_false(auth_name_valid("caf\xc3\xa9"));
}

static void
test_durations(void **state)
{
	int64_t s;

	assert_int_equal(duration_parse("90d", 366 * 86400, &s), 0);
	assert_int_equal(s, 90 * 86400);
	assert_int_equal(duration_parse("12h", 86400, &s), 0);
	assert_int_equal(s, 12 * 3600);
	assert_int_equal(duration_parse("30m", 86400, &s), 0);
	assert_int_equal(s, 1800);
	assert_int_equal(duration_parse("45s", 86400, &s), 0);
	assert_int_equal(s, 45);
	assert_int_equal(duration_parse("2w", 30 * 86400, &s), 0);
	assert_int_equal(s, 14 * 86400);
	assert_int_equal(duration_parse("60", 86400, &s), 0);
	assert_int_equal(s, 60);
	s = -7;
	assert_int_equal(duration_parse("367d", 366 * 86400, &s), -1);
	assert_int_equal(duration_parse("0d", 86400, &s), -1);
	assert_int_equal(duration_parse("-1d", 86400, &s), -1);
	assert_int_equal(duration_parse("d", 86400, &s), -1);
	assert_int_equal(duration_parse("1dd", 86400, &s), -1);
	assert_int_equal(duration_parse("1y", 86400, &s), -1);
	assert_int_equal(duration_parse(" 1d", 86400, &s), -1);
	assert_int_equal(duration_parse("99999999999999999999d",
	    INT64_MAX, &s), -1);
	assert_int_equal(duration_parse("9223372036854775807w",
	    INT64_MAX, &s), -1);
	assert_int_equal(duration_parse(NULL, 86400, &s), -1);
	assert_int_equal(s, -7);	/* untouched on failure */
}

static void
test_cidrs(void **state)
{
	struct cidr c[AUTH_MAX_CIDRS];
	char why[200], out[512];
	int n = -1;

	assert_int_equal(auth_cidrs_parse("10.0.0.0/8, 192.0.2.7,fd00::/8 ::1",
	    c, AUTH_MAX_CIDRS, &n, why, sizeof why), 0);
	assert_int_equal(n, 4);
	auth_cidrs_format(c, n, out, sizeof out);
	assert_string_equal(out, "10.0.0.0/8,192.0.2.7/32,fd00::/8,::1/128");
	assert_true(auth_cidrs_match(c, n, "10.1.2.3"));
	assert_true(auth_cidrs_match(c, n, "192.0.2.7"));
	assert_false(auth_cidrs_match(c, n, "192.0.2.8"));
	assert_false(auth_cidrs_match(c, n, "11.0.0.1"));
	assert_true(auth_cidrs_match(c, n, "fd12:3456::1"));
	assert_false(auth_cidrs_match(c, n, "fe80::1"));
	assert_true(auth_cidrs_match(c, n, "::1"));
	assert_true(auth_cidrs_match(c, n, "::ffff:10.9.9.9"));	/* v4-mapped */
	assert_false(auth_cidrs_match(c, n, "unknown"));
	assert_false(auth_cidrs_match(c, n, ""));
	/* Prefixes that do not end on a byte. */
	assert_int_equal(auth_cidrs_parse("172.16.0.0/12", c, AUTH_MAX_CIDRS,
	    &n, why, sizeof why), 0);
	assert_true(auth_cidrs_match(c, n, "172.31.255.255"));
	assert_false(auth_cidrs_match(c, n, "172.32.0.0"));
	assert_int_equal(auth_cidrs_parse("0.0.0.0/0", c, AUTH_MAX_CIDRS, &n,
	    why, sizeof why), 0);
	assert_true(auth_cidrs_match(c, n, "203.0.113.9"));
	assert_false(auth_cidrs_match(c, n, "2001:db8::1"));
	/* Empty: no entries (the caller reads that as "any address"). */
	assert_int_equal(auth_cidrs_parse("", c, AUTH_MAX_CIDRS, &n, why,
	    sizeof why), 0);
	assert_int_equal(n, 0);
	/* Errors name the bad entry. */
	assert_int_equal(auth_cidrs_parse("10.0.0.0/8,10.0.0.0/33", c,
	    AUTH_MAX_CIDRS, &n, why, sizeof why), -1);
	assert_non_null(strstr(why, "10.0.0.0/33"));
	assert_int_equal(auth_cidrs_parse("host.lan", c, AUTH_MAX_CIDRS, &n,
	    why, sizeof why), -1);
	assert_int_equal(auth_cidrs_parse("1.2.3.4/", c, AUTH_MAX_CIDRS, &n,
	    why, sizeof why), -1);
	assert_int_equal(auth_cidrs_parse("1.2.3.4/-1", c, AUTH_MAX_CIDRS, &n,
	    why, sizeof why), -1);
	assert_int_equal(auth_cidrs_parse("::/129", c, AUTH_MAX_CIDRS, &n,
	    why, sizeof why), -1);
	assert_int_equal(auth_cidrs_parse("1.2.3.4,5.6.7.8", c, 1, &n, why,
	    sizeof why), -1);
}

static void
test_passwords(void **state)
{
	struct argon2_cost cost = { 1, 64, 1 };
	char h[256], h2[256], pw[25];
	int i;

	assert_int_equal(auth_password_hash(&cost, "correct horse", h,
	    sizeof h), 0);
	assert_non_null(strstr(h, "$argon2id$v=19$m=64,t=1,p=1$"));
	assert_true(auth_password_verify(h, "correct horse"));
	assert_false(auth_password_verify(h, "correct horsE"));
	assert_false(auth_password_verify(h, ""));
	/* Salted: the same password hashes differently. */
	assert_int_equal(auth_password_hash(&cost, "correct horse", h2,
	    sizeof h2), 0);
	assert_string_not_equal(h, h2);
	/* Only Argon2id strings are accepted. */
	h[8] = 'i';	/* "$argon2i$..." lookalike */
	assert_false(auth_password_verify(h, "correct horse"));
	assert_false(auth_password_verify("", "x"));
	assert_false(auth_password_verify("$argon2id$garbage", "x"));
	/* Too small an output buffer fails cleanly. */
	assert_int_equal(auth_password_hash(&cost, "x", h, 16), -1);
	assert_int_equal(auth_password_generate(pw), 0);
	assert_int_equal(strlen(pw), 24);
	for (i = 0; i < 24; i++)
		assert_null(strchr("0O1lI5S8BZ2 ", pw[i]));
	assert_null(auth_password_problem("eight ch"));
	assert_non_null(auth_password_problem("seven c"));
	assert_non_null(auth_password_problem("has a\ttab"));
}

static void
test_audit_hash_vector(void **state)
{
	struct audit_entry e;
	char h[AUDIT_HASH_LEN];

	/* Also computed independently in docs/api.md's description. */
	memset(&e, 0, sizeof e);
	e.id = 1;
	e.time_ms = 1700000000000LL;
	AUDIT_SET(&e, actor_type, "user");
	AUDIT_SET(&e, actor, "alice");
	AUDIT_SET(&e, source, "127.0.0.1");
	AUDIT_SET(&e, action, "session.login");
	AUDIT_SET(&e, target, "alice");
	AUDIT_SET(&e, result, "ok");
	AUDIT_SET(&e, request_id, "0000000100000002");
	audit_hash(&e, AUDIT_GENESIS, h);
	assert_string_equal(h, "d05419aa9d6f3a788aeab02336614f16dcbfc8c94b206d6"
	    "cdf6146cf58206748");
	/* Fields are length-prefixed: moving a byte between two changes it. */
	AUDIT_SET(&e, error, "x");
	AUDIT_SET(&e, result, "o");
	AUDIT_SET(&e, detail, "k");
	{
		char h2[AUDIT_HASH_LEN];

		audit_hash(&e, AUDIT_GENESIS, h2);
		assert_string_not_equal(h, h2);
	}
	/* Control characters never reach a row. */
	AUDIT_SET(&e, actor, "a\nb\x1b[31m");
	assert_string_equal(e.actor, "a?b?[31m");
}

/* --- the chain in a real database ---------------------------------------- */

#include "dbfx.h"

static void
entry(struct audit_entry *e, const char *action, const char *target)
{
	memset(e, 0, sizeof *e);
	e->wanted = 1;
	AUDIT_SET(e, actor_type, "admin-socket");
	AUDIT_SET(e, actor, "root");
	AUDIT_SET(e, source, "admin");
	AUDIT_SET(e, action, "%s", action);
	AUDIT_SET(e, target, "%s", target);
	AUDIT_SET(e, request_id, "00000000000000%02d", (int)strlen(target));
}

static json_int_t
verify_bad(struct db *db)
{
	json_t *v = NULL;
	json_int_t bad;

	assert_int_equal(db_audit_verify(db, &v), DB_OK);
	bad = json_is_true(json_object_get(v, "ok")) ? 0 :
	    json_integer_value(json_object_get(v, "first_bad_id"));
	json_decref(v);
	return bad;
}

static void
test_chain(void **state)
{
	struct dbfx *f = *state;
	struct audit_entry e;
	struct audit_query q;
	json_t *list = NULL;
	int i;

	assert_int_equal(verify_bad(f->db), 0);		/* empty is fine */
	for (i = 0; i < 5; i++) {
		entry(&e, "user.create", i % 2 ? "bob" : "alice");
		assert_int_equal(db_audit_append(f->db, &e), DB_OK);
		assert_true(e.written);
		assert_int_equal(e.id, i + 1);
		/* Already written: a second append is a no-op. */
		assert_int_equal(db_audit_append(f->db, &e), DB_OK);
	}
	assert_int_equal(verify_bad(f->db), 0);
	memset(&q, 0, sizeof q);
	q.limit = 2;
	assert_int_equal(db_audit_list(f->db, &q, &list), DB_OK);
	assert_int_equal(json_array_size(list), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list,
	    0), "id")), 4);
	json_decref(list);
	q.limit = 100;
	q.actor = "root";
	q.action = "user.";
	q.after_id = 3;
	assert_int_equal(db_audit_list(f->db, &q, &list), DB_OK);
	assert_int_equal(json_array_size(list), 2);
	json_decref(list);
	/* The triggers refuse edits in place... */
	assert_int_equal(raw_try(f, "UPDATE audit_log SET actor = 'x'"
	    " WHERE id = 2"), -1);
	assert_int_equal(raw_try(f, "DELETE FROM audit_log"), -1);
	/* ...and without them, verify names what changed. */
	raw_unblock(f, "audit_log_no_update", "audit_log");
	raw_unblock(f, "audit_log_no_delete", "audit_log");
	raw_exec(f, "UPDATE audit_log SET target = 'mallory' WHERE id = 3");
	assert_int_equal(verify_bad(f->db), 3);
	raw_exec(f, "UPDATE audit_log SET target = 'alice' WHERE id = 3");
	assert_int_equal(verify_bad(f->db), 0);
	raw_exec(f, "DELETE FROM audit_log WHERE id = 5");
	assert_int_equal(verify_bad(f->db), 5);		/* the tail, via audit.head */
}

static void
test_change_and_row_commit_together(void **state)
{
	struct dbfx *f = *state;
	struct audit_entry e;
	struct db_user u;

	entry(&e, "user.create", "carol");
	db_audit_pending(&e);
	assert_int_equal(db_user_add(f->db, "carol", "viewer", "$argon2id$x", 0),
	    DB_OK);
	db_audit_pending(NULL);
	assert_true(e.written);
	assert_int_equal(e.id, 1);
	/* The row cannot be written: the change does not happen either. */
	raw_block(f, "audit_full", "INSERT", "audit_log");
	entry(&e, "user.create", "dave");
	db_audit_pending(&e);
	assert_int_equal(db_user_add(f->db, "dave", "viewer", "$argon2id$x", 0),
	    DB_ERR);
	db_audit_pending(NULL);
	assert_false(e.written);
	assert_int_equal(db_user_get(f->db, "dave", &u), DB_NOTFOUND);
	assert_int_equal(db_audit_append(f->db, &e), DB_ERR);
	raw_unblock(f, "audit_full", "audit_log");
	assert_int_equal(db_user_add(f->db, "dave", "viewer", "$argon2id$x", 0),
	    DB_OK);
	assert_int_equal(db_user_get(f->db, "dave", &u), DB_OK);
	assert_int_equal(db_user_add(f->db, "dave", "viewer", "$argon2id$x", 0),
	    DB_CONFLICT);
	assert_int_equal(verify_bad(f->db), 0);
}

struct seen {
	int	n;
	char	key[4][96];
	int64_t	until[4];
};

static void
seen_add(void *cls, const char *key, int64_t until_ms)
{
	struct seen *s = cls;

	assert_true(s->n < 4);
	snprintf(s->key[s->n], sizeof s->key[0], "%s", key);
	s->until[s->n++] = until_ms;
}

static void
test_lockouts_persist(void **state)
{
	struct dbfx *f = *state;
	struct seen s;

	memset(&s, 0, sizeof s);
	assert_int_equal(db_lockout_set(f->db, "user:bob", 5000, 1000), DB_OK);
	assert_int_equal(db_lockout_set(f->db, "addr:192.0.2.7", 9000, 1000),
	    DB_OK);
	/* A second lockout of the same key replaces the first. */
	assert_int_equal(db_lockout_set(f->db, "user:bob", 7000, 2000), DB_OK);
	/* Survives closing the database, like a restart. */
	db_close(f->db);
	assert_int_equal(dbfx_open(f, &f->db), 0);
	assert_int_equal(db_lockouts_load(f->db, 3000, 10, seen_add, &s), DB_OK);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.key[0], "addr:192.0.2.7");	/* latest first */
	assert_int_equal(s.until[0], 9000);
	assert_string_equal(s.key[1], "user:bob");
	assert_int_equal(s.until[1], 7000);
	/* Over: not loaded; max is honoured. */
	memset(&s, 0, sizeof s);
	assert_int_equal(db_lockouts_load(f->db, 7000, 10, seen_add, &s), DB_OK);
	assert_int_equal(s.n, 1);
	memset(&s, 0, sizeof s);
	assert_int_equal(db_lockouts_load(f->db, 0, 1, seen_add, &s), DB_OK);
	assert_int_equal(s.n, 1);
	/* A new lockout drops the ones that are over. */
	assert_int_equal(db_lockout_set(f->db, "user:eve", 20000, 8000), DB_OK);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM auth_lockouts"), 2);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM auth_lockouts WHERE"
	    " key IN ('addr:192.0.2.7', 'user:eve')"), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles_and_scopes),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_cidrs),
		cmocka_unit_test(test_passwords),
		cmocka_unit_test(test_audit_hash_vector),
		DBFX_TEST(test_chain),
		DBFX_TEST(test_change_and_row_commit_together),
		DBFX_TEST(test_lockouts_persist),
	};

	log_init(1, 0, "test_auth");
	return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
