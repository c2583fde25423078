/* db_internal.h — shared by the db*.c files only, grouped by the file
 * that defines it. */
#ifndef BASTION_DB_INTERNAL_H
#define BASTION_DB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "db.h"

struct db {
	sqlite3		*h;		/* the writer, under mu */
	pthread_mutex_t	 mu;
	char		 path[4096];
	pthread_key_t	 reader;	/* per-thread read-only connection */
	/* Bumped after every committed change to the machines table; the
	 * per-thread machine caches are valid only for the value they saw. */
	atomic_ulong	 machines_gen;
	int		 machines_dirty;	/* under mu */
};

/* --- db.c: the writer, transactions, statements ------------------------ */

void		 db_lock(struct db *);
void		 db_unlock(struct db *);
int		 db_exec(struct db *, const char *sql);
/* A write transaction: db_begin takes the lock and opens it (-1, lock
 * released, on failure); db_end commits when rc is DB_OK — with the
 * pending audit row (db_commit) when audited — else rolls back, releases
 * the lock and returns rc. */
int		 db_begin(struct db *);
int		 db_end(struct db *, int audited, int rc);

/*
 * One parameter of a statement, made only by the typed constructors
 * below, so that a value of the wrong kind does not compile:
 *   DB_TEXT(s)     a string (const char *; NULL binds "")
 *   DB_INT(n)      any integer type, bound as a 64-bit integer (a pointer,
 *                  a floating-point value or a struct is a compile error)
 *   DB_BLOB(p, n)  n bytes at p (n == 0 binds an empty blob)
 *   DB_NULL        SQL NULL
 */
enum db_arg_kind {
	DB_ARG_END = 0,	/* the terminator DB_ARGV adds */
	DB_ARG_NULL,
	DB_ARG_TEXT,
	DB_ARG_INT,
	DB_ARG_BLOB,
};

struct db_arg {
	enum db_arg_kind	 kind;
	const char		*text;
	int64_t			 i;
	const void		*blob;
	size_t			 len;
};

#define DB_TEXT(s)	((struct db_arg){ .kind = DB_ARG_TEXT, .text = (s) })
/* _Generic without a default: only an integer type selects. */
#define DB_INT(n)	((struct db_arg){ .kind = DB_ARG_INT,		\
	.i = _Generic((n), _Bool: (n), char: (n), signed char: (n),	\
	unsigned char: (n), short: (n), unsigned short: (n), int: (n),	\
	unsigned int: (n), long: (n), unsigned long: (n),		\
	long long: (n), unsigned long long: (n)) })
#define DB_BLOB(p, n)	((struct db_arg){ .kind = DB_ARG_BLOB,		\
	.blob = (p), .len = (n) })
#define DB_NULL		((struct db_arg){ .kind = DB_ARG_NULL })
/* The arguments of one call as an array that ends in DB_ARG_END. */
#ifndef __CPPCHECK__
#define DB_ARGV(...)	((const struct db_arg[]){			\
	__VA_ARGS__ __VA_OPT__(,) { .kind = DB_ARG_END } })
#else
/* cppcheck 2.10 (tests/analyze.sh defines __CPPCHECK__) parses neither
 * __VA_OPT__ nor _Generic: it sees the calls without their arguments
 * (the compilers check those). */
#define DB_ARGV(...)	((const struct db_arg *)0)
#endif

/* Prepare sql and bind ?1, ?2, ... from the DB_* arguments, in order:
 *   st = db_stmt(db, "SELECT ... WHERE mac = ? AND id > ?",
 *       DB_TEXT(mac), DB_INT(after));
 * NULL (logged) if it cannot be prepared or when the number of arguments
 * is not the number of parameters sql has. Caller holds the lock. */
#define db_stmt(db, sql, ...) db_stmt_argv((db), (sql), DB_ARGV(__VA_ARGS__))
/* db_stmt, stepped once and finalized: DB_OK when it changed a row,
 * DB_NOTFOUND when it changed none, DB_ERR. Caller holds the lock. */
#define db_run(db, sql, ...) db_run_argv((db), (sql), DB_ARGV(__VA_ARGS__))
sqlite3_stmt	*db_stmt_argv(struct db *, const char *sql,
		    const struct db_arg *);
int		 db_run_argv(struct db *, const char *sql,
		    const struct db_arg *);
/* Bind args to an already prepared st (reset first); -1 (logged) when
 * their number is not the number of parameters of st. */
int		 db_bind(sqlite3_stmt *, const struct db_arg *);

const char	*db_col_text(sqlite3_stmt *, int);
json_t		*db_time_json(int64_t ms);
/* Step st to its end, one row(st) per row into a new array; finalizes
 * st (NULL: a failed db_stmt). Caller holds the lock. */
int		 db_rows_json(struct db *, sqlite3_stmt *,
		    json_t *(*row)(sqlite3_stmt *), json_t **out);
/* The one row sql selects for key (its only parameter), through
 * fill(st, out). Caller holds the lock. */
int		 db_get_one(struct db *, const char *sql, const char *key,
		    void (*fill)(sqlite3_stmt *, void *), void *out);

/* --- db_audit.c ------------------------------------------------------- */

/* COMMIT, with the row of a pending audit entry (db_auth.h) written
 * first in the same transaction; if that row cannot be written the
 * transaction is not committed. 0 or -1, like db_exec. */
int		 db_commit(struct db *);

/* --- db_machine.c ----------------------------------------------------- */

/* The per-thread read-only connection (struct db's reader key). */
void		 db_reader_free(void *);
/* The lease of mac (ip, expires) read on the calling thread's read-only
 * connection (db_machine.c's reader), without the writer's lock. */
int		 db_reader_lease(struct db *, const char *mac, char ip[64],
		    int64_t *expires);
/* Caller holds the lock for these. */
int		 db_machine_get_locked(struct db *, const char *mac,
		    struct machine *out);
int		 db_event_add_locked(struct db *, const char *mac,
		    const char *state, const char *source, const char *message,
		    int progress);

/* --- db_install.c ----------------------------------------------------- */

/* The machine's current install as JSON, or JSON null. Caller holds the
 * lock. */
json_t		*db_install_json_locked(struct db *, const char *mac);

#endif
