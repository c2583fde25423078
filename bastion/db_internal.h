/* db_internal.h — shared by the db*.c files only, grouped by the file
 * that defines it. */
#ifndef BASTION_DB_INTERNAL_H
#define BASTION_DB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "db_agent.h"

/*
 * The backend: a connection and its statements, opaque here so that the
 * db_*.c subjects never see which engine answers (db_sqlite.c implements
 * them for SQLite).
 *
 * Conversion rules for code written against sqlite3 directly (apply them
 * to any db_*.c merged later):
 *   sqlite3_stmt *st                 -> struct db_st *st
 *   sqlite3_step(st) == SQLITE_ROW   -> db_step(st) == DB_ROW
 *   SQLITE_DONE / SQLITE_CONSTRAINT  -> DB_DONE / DB_CONSTRAINT (any other
 *                                       failure of db_step is DB_ERR)
 *   sqlite3_finalize(st)             -> db_finalize(st)
 *   sqlite3_column_int64/int(st, i)  -> db_col_int64/db_col_int(st, i)
 *   sqlite3_column_text(st, i)       -> db_col_text(st, i) ("" for NULL)
 *   sqlite3_column_type(st, i) != SQLITE_NULL -> !db_col_null(st, i)
 *   sqlite3_column_blob + _bytes     -> db_col_blob(st, i, &len)
 *   sqlite3_last_insert_rowid(db->h) -> db_last_id(db)
 *   sqlite3_changes(db->h)           -> db_changes(db)
 *   sqlite3_errmsg(db->h)            -> db_errmsg(db)
 *   sqlite3_reset + clear_bindings   -> db_reset(st) (db_bind resets too)
 *   db_exec(db, "BEGIN IMMEDIATE")   -> db_conn_begin(db->w) (or db_begin)
 *   ?N IS NULL (type from nowhere)   -> CAST(?N AS TEXT) IS NULL
 *   substr(x, -1)                    -> substr(x, length(x))
 *   INSERT OR IGNORE                 -> INSERT ... ON CONFLICT DO NOTHING
 *   FROM (SELECT ...)                -> FROM (SELECT ...) AS name
 *   WHERE 1 / SUM(a = b)             -> WHERE 1 = 1 / SUM(CASE WHEN a = b
 *                                       THEN 1 ELSE 0 END) (no int booleans)
 *   a ?N the text never uses         -> fine (typed text on PostgreSQL)
 *   json_each/json_extract           -> two texts chosen by db_is_pg(db)
 *                                       (db_hardware.c's conflict query)
 *   a connection of one's own        -> db_conn_open(db, 1, &c),
 *                                       db_conn_prepare(c, sql), db_conn_close
 * and never #include <sqlite3.h> outside db_sqlite.c.
 */
struct db_arg;
struct db_conn;		/* one connection to the database */
struct db_st;		/* a prepared statement and its current row */

/* A backend: what db_conn_* and db_* below call. Each backend's
 * connection and statement start with the common part (be). */
struct db_backend {
	const char	*name;
	int		(*open)(struct db *, int, struct db_conn **);
	void		(*close)(struct db_conn *);
	int		(*exec)(struct db_conn *, const char *);
	int		(*begin)(struct db_conn *);
	struct db_st	*(*prepare)(struct db_conn *, const char *);
	const char	*(*errmsg)(struct db_conn *);
	int64_t		(*changes)(struct db_conn *);
	int64_t		(*last_id)(struct db_conn *);
	int		(*schema_get)(struct db_conn *);
	int		(*schema_set)(struct db_conn *, int);
	int		(*bind)(struct db_st *, const struct db_arg *);
	int		(*step)(struct db_st *);
	void		(*reset)(struct db_st *);
	void		(*finalize)(struct db_st *);
	int64_t		(*col_int64)(struct db_st *, int);
	const char	*(*col_text)(struct db_st *, int);
	int		(*col_null)(struct db_st *, int);
	const void	*(*col_blob)(struct db_st *, int, size_t *);
};

struct db_conn {
	const struct db_backend	*be;
};

struct db_st {
	const struct db_backend	*be;
};

extern const struct db_backend db_sqlite;	/* db_sqlite.c */
extern const struct db_backend db_pg;		/* db_pg.c */
/* SQL that cannot be common (JSON functions) is chosen by this. */
#define db_is_pg(db)	((db)->be == &db_pg)

/* PostgreSQL advisory locks taken by bastion: the two-key form, whose
 * space is apart from the one-key form's; the class is "bast". */
#define DB_PG_LOCK_CLASS	0x62617374
#define DB_PG_LOCK_WRITE	2	/* a write transaction (db_pg.c) */
/* The DHCP lead of an interface (db_pg_listen.c): a class of its own
 * ("dhcp"), the second key a hash of the interface's name. */
#define DB_PG_LOCK_DHCP		0x64686370

/* What db_step returns besides DB_ERR (apart from enum db_rc's values). */
enum db_step_rc {
	DB_ROW = 100,		/* a row is there to read */
	DB_DONE,		/* no more rows: the statement ran */
	DB_CONSTRAINT,		/* a UNIQUE/PRIMARY KEY/CHECK refused it */
};

struct db {
	const struct db_backend *be;	/* by the url: SQLite or PostgreSQL */
	struct db_conn	*w;		/* the writer, under mu */
	pthread_mutex_t	 mu;
	char		 path[4096];	/* a file, or a postgresql:// url */
	char		 statedir[4096];	/* beside it: audit.head */
	pthread_key_t	 reader;	/* per-thread read-only connection */
	/* Bumped after every committed change to the machines table; the
	 * per-thread machine caches are valid only for the value they saw. */
	atomic_ulong	 machines_gen;
	int		 machines_dirty;	/* under mu */
	/* Set while the database cannot be reached (PostgreSQL), until a
	 * reconnect works: requests are answered 503 meanwhile. */
	atomic_int	 unavailable;
	struct db_listener *listener;	/* PostgreSQL: db_pg_listen.c */
	/* db_listen_streams: an agent did not reach a stream. */
	void		(*stream_fn)(const char *sid, const char *agent_id,
			    const char *why, void *arg);
	void		*stream_arg;
	struct db_hb	*hb;		/* heartbeats written behind */
	/* The certificate check's yes answers (agentcache.h); on
	 * PostgreSQL on only while db_pg_listen.c listens. */
	struct agentcache *agents;
	/* A committed change may have turned one into a no: db_unlock
	 * bumps the cache's generation (and tells the other bastions). */
	int		 agents_dirty;	/* under mu */
	/* PostgreSQL: "a" went with the commit itself (db_end), not after
	 * it: a revocation and its notice are one. */
	int		 agents_told;	/* under mu */
	/* Agents known to have no job to fetch (jobseen.h); on PostgreSQL
	 * on only while db_pg_listen.c listens. */
	struct jobseen	*jobs;
};

/* --- db.c: the backend's calls (db_sqlite.c, db_pg.c) ------------------ */

/* A new connection to db->path: read-only for readers beside the writer;
 * the writer (readonly 0) marks db->machines_dirty on a change to the
 * tables the per-thread caches hold. */
int		 db_conn_open(struct db *, int readonly, struct db_conn **out);
void		 db_conn_close(struct db_conn *);
/* Run sql (one or more statements, no parameters): 0 or -1 (logged). */
int		 db_conn_exec(struct db_conn *, const char *sql);
/* Prepare sql for repeated use (db_bind, db_step, db_reset); NULL
 * (logged) on failure. */
struct db_st	*db_conn_prepare(struct db_conn *, const char *sql);
const char	*db_conn_errmsg(struct db_conn *);
/* Rows changed by the last statement, the id the last INSERT made. */
int64_t		 db_conn_changes(struct db_conn *);
int64_t		 db_conn_last_id(struct db_conn *);
/* The schema version the migrations reached (-1 on error), and setting
 * it inside the migration's transaction. */
int		 db_conn_schema_get(struct db_conn *);
int		 db_conn_schema_set(struct db_conn *, int);
/* Open a write transaction. */
int		 db_conn_begin(struct db_conn *);

/* DB_ROW, DB_DONE, DB_CONSTRAINT or DB_ERR (logged). */
int		 db_step(struct db_st *);
/* Back to before the first row, parameters cleared. */
void		 db_reset(struct db_st *);
void		 db_finalize(struct db_st *);	/* NULL is a no-op */
int64_t		 db_col_int64(struct db_st *, int);
int		 db_col_int(struct db_st *, int);
const char	*db_col_text(struct db_st *, int);	/* "" for NULL */
int		 db_col_null(struct db_st *, int);
/* The bytes of column i (*len of them; never NULL). */
const void	*db_col_blob(struct db_st *, int, size_t *len);

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
struct db_st	*db_stmt_argv(struct db *, const char *sql,
		    const struct db_arg *);
int		 db_run_argv(struct db *, const char *sql,
		    const struct db_arg *);
/* Bind args to an already prepared st (reset first); -1 (logged) when
 * their number is not the number of parameters of st. */
int		 db_bind(struct db_st *, const struct db_arg *);
/* The writer's db_conn_changes, db_conn_last_id, db_conn_errmsg. Caller
 * holds the lock. */
int64_t		 db_changes(struct db *);
int64_t		 db_last_id(struct db *);
const char	*db_errmsg(struct db *);

/* db_time_json, db_time_str and DB_TIME_LEN: db_agent.h. */
/* Step st to its end, one row(st) per row into a new array; finalizes
 * st (NULL: a failed db_stmt). Caller holds the lock. */
int		 db_rows_json(struct db *, struct db_st *,
		    json_t *(*row)(struct db_st *), json_t **out);
/* The one row sql selects for key (its only parameter), through
 * fill(st, out). Caller holds the lock. */
int		 db_get_one(struct db *, const char *sql, const char *key,
		    void (*fill)(struct db_st *, void *), void *out);

/* --- db_pg_listen.c: other bastions' changes (db_listen_start) --------- */
struct db_listener;
int		 db_pg_listen_start(struct db *,
		    void (*fn)(const char *agent_id, void *), void *arg,
		    const struct db_dhcp_lead *, struct db_listener **out);
void		 db_pg_listen_stop(struct db_listener *);

/* --- db_audit.c ------------------------------------------------------- */

/* COMMIT, with the row of a pending audit entry (db_auth.h) written
 * first in the same transaction; if that row cannot be written the
 * transaction is not committed. 0 or -1, like db_exec. */
int		 db_commit(struct db *);

/* --- db_machine.c ----------------------------------------------------- */

/* --- db_heartbeat.c: heartbeats written behind --------------------------- */
int		 db_hb_init(struct db *);
/* Write what waits and stop the flusher (db_close). */
void		 db_hb_close(struct db *);
/* Write what waits, in one transaction; db->mu is held (db_lock). */
void		 db_hb_flush_locked(struct db *);
/* The agent and its certificate `serial` as db_agent_cert_check says,
 * on the per-thread read connection, and the current certificate's
 * expiry (db_machine.c). */
int		 db_reader_agent_cert(struct db *, const char *id,
		    const char *serial, int64_t *cert_not_after_ms);

/* The long poll's question on the per-thread read connection: whether
 * agent_id has a job to take now (queued, or sent before cutoff_ms and
 * not started), and how many it has queued or sent but not started
 * (db_machine.c). */
int		 db_reader_jobs(struct db *, const char *agent_id,
		    int64_t cutoff_ms, int *deliverable, int64_t *outstanding);

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
