/* db_internal.h — shared by the db*.c files only. */
#ifndef BASTION_DB_INTERNAL_H
#define BASTION_DB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

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

void		 db_lock(struct db *);
void		 db_unlock(struct db *);
int		 db_exec(struct db *, const char *sql);
/* COMMIT, with the row of a pending audit entry (db_auth.h) written
 * first in the same transaction; if that row cannot be written the
 * transaction is not committed. 0 or -1, like db_exec. */
int		 db_commit(struct db *);
/* A write transaction: db_begin takes the lock and opens it (-1, lock
 * released, on failure); db_end commits when rc is DB_OK — with the
 * pending audit row (db_commit) when audited — else rolls back, releases
 * the lock and returns rc. */
int		 db_begin(struct db *);
int		 db_end(struct db *, int audited, int rc);
sqlite3_stmt	*db_prepare(struct db *, const char *sql);
void		 db_bind_text(sqlite3_stmt *, int, const char *);
/* Prepare sql and bind ?1, ?2, ... from fmt, a letter each: 't' text
 * (const char *; NULL binds ""), 'i' int, 'I' int64_t, '-' left NULL.
 * NULL (logged) if it cannot be prepared. Caller holds the lock. */
sqlite3_stmt	*db_stmt(struct db *, const char *sql, const char *fmt, ...);
/* db_stmt, stepped once and finalized: DB_OK when it changed a row,
 * DB_NOTFOUND when it changed none, DB_ERR. Caller holds the lock. */
int		 db_run(struct db *, const char *sql, const char *fmt, ...);

const char	*db_col_text(sqlite3_stmt *, int);
json_t		*db_time_json(int64_t ms);
/* Caller holds the lock for these. */
int		 db_rows_json(struct db *, sqlite3_stmt *,
		    json_t *(*row)(sqlite3_stmt *), json_t **out);
int		 db_get_one(struct db *, const char *sql, const char *key,
		    void (*fill)(sqlite3_stmt *, void *), void *out);
int		 db_machine_get_locked(struct db *, const char *mac,
		    struct machine *out);
int		 db_event_add_locked(struct db *, const char *mac,
		    const char *state, const char *source, const char *message,
		    int progress);

/* The machine's current install as JSON, or JSON null. */
json_t		*db_install_json_locked(struct db *, const char *mac);

#endif
