/* db_pg.c — the PostgreSQL backend of the statement layer
 * (db_internal.h) through libpq. SQL is written once for both engines:
 * ?N and ? parameters become $N here, and the migrations' few SQLite
 * spellings (integer widths, AUTOINCREMENT, BLOB, triggers) are
 * translated by dialect() below. Each statement is prepared on the
 * server once per connection (its parameters' types inferred there);
 * values go as text, blobs as binary; results come as text. A lost connection is reset with a backoff; the call that found
 * it fails (DB_ERR) and the database reads as unavailable meanwhile. */
#define LOG_SUBSYS "db"
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <openssl/sha.h>

#include "clock.h"
#include "db_internal.h"
#include "log.h"

#define PG_MAXPARAMS	64
#define PG_CACHE	512
#define OID_TEXT	25
#define PG_RETRIES	3	/* of a statement that lost a serialization */

struct pg_conn {
	struct db_conn	 base;
	PGconn		*pg;
	struct db	*db;
	int		 readonly;
	char		 url[4096];
	int64_t		 changes;
	char		 err[512];
	int64_t		 retry_ms;	/* next reset attempt, when lost */
	int		 in_tx;		/* between BEGIN and COMMIT/ROLLBACK */
	int		 tx_lost;	/* the session of in_tx was reset: all
					 * fails until its ROLLBACK */
	int64_t		 backoff_ms;
	/* Statements prepared on the server, by their text ($N form):
	 * named s<slot>, replaced when another text hashes there. */
	/* Slot n holds the SHA-256 of the text prepared as "s<n>" (no copy
	 * of the text to own: equal digests are equal texts). */
	unsigned char	 cache[PG_CACHE][SHA256_DIGEST_LENGTH];
	unsigned char	 cached[PG_CACHE];
};

struct pg_st {
	struct db_st	 base;
	struct pg_conn	*c;
	char		*sql;		/* with $N parameters */
	char		 name[16];	/* its prepared statement's */
	unsigned char	 key[SHA256_DIGEST_LENGTH];	/* of sql */
	uint64_t	 used;		/* bit n-1: $n appears in sql */
	int		 nparams;
	int		 nargs;
	char		*values[PG_MAXPARAMS];
	int		 lengths[PG_MAXPARAMS];
	int		 formats[PG_MAXPARAMS];
	PGresult	*res;
	int		 row;		/* -1 before the first step */
	unsigned char	*blob;		/* the last db_col_blob's bytes */
};

#define CONN(c)	((struct pg_conn *)(c))
#define ST(st)	((struct pg_st *)(st))

static void
pg_seterr(struct pg_conn *c, const char *what, const char *msg)
{
	size_t n;

	snprintf(c->err, sizeof c->err, "%s: %s", what, msg ? msg : "?");
	n = strlen(c->err);
	while (n > 0 && (c->err[n - 1] == '\n' || c->err[n - 1] == ' '))
		c->err[--n] = '\0';
	log_warnx("%s", c->err);
}

/* A new session has none of the prepared statements. */
static void
pg_cache_clear(struct pg_conn *c)
{
	memset(c->cached, 0, sizeof c->cached);
}

/* Usable now? A lost connection is reset, at most once per backoff
 * (doubling from 100 ms to 5 s); 0 when it works again. */
static int
pg_alive(struct pg_conn *c)
{
	int64_t now;

	if (PQstatus(c->pg) == CONNECTION_OK)
		return 0;
	now = clock_mono_ms();
	if (now < c->retry_ms)
		return -1;
	PQreset(c->pg);
	pg_cache_clear(c);
	/* The server rolled the open transaction back with its session:
	 * nothing of it may run in autocommit on the new one. */
	if (c->in_tx)
		c->tx_lost = 1;
	if (PQstatus(c->pg) == CONNECTION_OK) {
		log_info("reconnected to the database");
		c->backoff_ms = 0;
		atomic_store(&c->db->unavailable, 0);
		return 0;
	}
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 100;
	if (c->backoff_ms > 5000)
		c->backoff_ms = 5000;
	c->retry_ms = now + c->backoff_ms;
	pg_seterr(c, "database unavailable", PQerrorMessage(c->pg));
	atomic_store(&c->db->unavailable, 1);
	return -1;
}

/* After a failed call: was it the connection? */
static void
pg_check_lost(struct pg_conn *c)
{
	if (PQstatus(c->pg) != CONNECTION_OK) {
		atomic_store(&c->db->unavailable, 1);
		c->retry_ms = 0;
	}
}

static int
pg_open(struct db *db, int readonly, struct db_conn **out)
{
	struct pg_conn *c;
	PGresult *r;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return -1;
	c->base.be = &db_pg;
	c->db = db;
	c->readonly = readonly;
	snprintf(c->url, sizeof c->url, "%s", db->path);
	c->pg = PQconnectdb(c->url);
	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
		pg_seterr(c, "connect", c->pg ? PQerrorMessage(c->pg) :
		    "no memory");
		/* A reader's (or a scan's) connection: requests read 503. */
		atomic_store(&db->unavailable, 1);
		goto err_connect;
	}
	/* Quiet NOTICEs (CREATE ... IF NOT EXISTS), integers as text. */
	r = PQexec(c->pg, readonly ? "SET client_min_messages = warning;"
	    " SET default_transaction_read_only = on" :
	    "SET client_min_messages = warning");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		pg_seterr(c, "connect", PQresultErrorMessage(r));
		PQclear(r);
		goto err_connect;
	}
	PQclear(r);
	atomic_store(&db->unavailable, 0);	/* reachable, as this shows */
	*out = &c->base;
	return 0;
err_connect:
	PQfinish(c->pg);
	free(c);
	return -1;
}

static void
pg_close(struct db_conn *c)
{
	pg_cache_clear(CONN(c));
	PQfinish(CONN(c)->pg);
	free(c);
}

/* The migrations' SQLite spellings in PostgreSQL's. */
static const struct {
	const char *from, *to;
} dialect_words[] = {
	{ "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY" },
	{ "INTEGER", "BIGINT" },
	{ "BLOB", "BYTEA" },
	{ "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
	  " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;",
	  "CREATE FUNCTION audit_log_append_only() RETURNS trigger"
	  " LANGUAGE plpgsql AS $f$ BEGIN"
	  " RAISE EXCEPTION 'audit_log is append-only'; END $f$;"
	  "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
	  " FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();" },
	{ "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
	  " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;",
	  "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
	  " FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();" },
};

/* sql with dialect_words replaced (whole words, longest first), and ? /
 * ?N parameters as $N outside quotes; *nparams the highest. NULL when
 * out of memory. */
static char *
dialect(const char *sql, int *nparams, uint64_t *used)
{
	size_t cap = strlen(sql) * 2 + 1024, n = 0, k, i;
	char *out = malloc(cap), quote = 0;
	int next = 1, max = 0, num;
	const char *p = sql;

	if (out == NULL)
		return NULL;
	while (*p) {
		if (n + 512 > cap) {
			char *t;

			cap *= 2;
			if ((t = realloc(out, cap)) == NULL) {
				free(out);
				return NULL;
			}
			out = t;
		}
		if (quote) {
			if (*p == quote)
				quote = 0;
			out[n++] = *p++;
			continue;
		}
		if (*p == '\'' || *p == '"') {
			quote = *p;
			out[n++] = *p++;
			continue;
		}
		if (*p == '?') {
			p++;
			if (isdigit((unsigned char)*p)) {
				num = (int)strtol(p, (char **)&p, 10);
			} else
				num = next;
			next = num + 1;
			if (num > max)
				max = num;
			if (num >= 1 && num <= 64)
				*used |= (uint64_t)1 << (num - 1);
			n += (size_t)snprintf(out + n, cap - n, "$%d", num);
			continue;
		}
		if (p == sql || !(isalnum((unsigned char)p[-1]) ||
		    p[-1] == '_')) {
			for (i = 0; i < sizeof dialect_words /
			    sizeof dialect_words[0]; i++) {
				k = strlen(dialect_words[i].from);
				if (strncmp(p, dialect_words[i].from, k) == 0 &&
				    (!isalnum((unsigned char)p[k - 1]) ||
				    !(isalnum((unsigned char)p[k]) ||
				    p[k] == '_')))
					break;
			}
			if (i < sizeof dialect_words / sizeof dialect_words[0]) {
				size_t tl = strlen(dialect_words[i].to);

				while (n + tl + 512 > cap) {
					char *t;

					cap *= 2;
					if ((t = realloc(out, cap)) == NULL) {
						free(out);
						return NULL;
					}
					out = t;
				}
				memcpy(out + n, dialect_words[i].to, tl);
				n += tl;
				p += k;
				continue;
			}
		}
		out[n++] = *p++;
	}
	out[n] = '\0';
	*nparams = max;
	return out;
}

static int
pg_exec(struct db_conn *cn, const char *sql)
{
	struct pg_conn *c = CONN(cn);
	PGresult *r;
	char *q;
	int np, rc = 0;
	uint64_t used = 0;

	if (strcmp(sql, "ROLLBACK") == 0 || strcmp(sql, "COMMIT") == 0) {
		c->in_tx = 0;
		if (c->tx_lost) {	/* nothing to end, and no commit */
			c->tx_lost = 0;
			return sql[0] == 'C' ? -1 : 0;
		}
	}
	if (c->tx_lost || pg_alive(c) == -1)
		return -1;
	if ((q = dialect(sql, &np, &used)) == NULL)
		return -1;
	r = PQexec(c->pg, q);
	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_seterr(c, "exec", PQresultErrorMessage(r));
		pg_check_lost(c);
		rc = -1;
	}
	PQclear(r);
	free(q);
	if (rc == 0 && strcmp(sql, "BEGIN") == 0)
		c->in_tx = 1;
	return rc;
}

/* A write transaction first takes the cluster's write lock (released at
 * its end): one at a time across all bastions, as on SQLite, so that
 * two of them never deadlock on rows taken in different orders and
 * nothing has to re-run a transaction's logic. Reads never wait for it. */
static int
pg_begin(struct db_conn *cn)
{
	struct pg_conn *c = CONN(cn);
	char sql[96];

	if (pg_exec(cn, "BEGIN") == -1)
		return -1;
	if (c->readonly)
		return 0;
	snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%d, %d)",
	    DB_PG_LOCK_CLASS, DB_PG_LOCK_WRITE);
	if (pg_exec(cn, sql) == -1) {
		pg_exec(cn, "ROLLBACK");
		return -1;
	}
	return 0;
}

/* st->sql prepared on the server once per connection (the types of its
 * parameters inferred there); st->name names it. */
static int
pg_server_prepare(struct pg_conn *c, struct pg_st *st)
{
	PGresult *r;
	Oid types[PG_MAXPARAMS];
	unsigned h;
	int i, ok;

	h = ((unsigned)st->key[0] << 8 | st->key[1]) % PG_CACHE;
	snprintf(st->name, sizeof st->name, "s%u", h);
	if (c->cached[h] && memcmp(c->cache[h], st->key, sizeof st->key) == 0)
		return 0;
	if (pg_alive(c) == -1)
		return -1;
	if (c->cached[h]) {
		char sql[32];

		snprintf(sql, sizeof sql, "DEALLOCATE %s", st->name);
		PQclear(PQexec(c->pg, sql));
		c->cached[h] = 0;
	}
	/* A parameter the text never uses has no type to infer: text. */
	for (i = 0; i < st->nparams; i++)
		types[i] = st->used & ((uint64_t)1 << i) ? 0 : OID_TEXT;
	r = PQprepare(c->pg, st->name, st->sql, st->nparams, types);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok) {
		pg_seterr(c, "prepare", PQresultErrorMessage(r));
		pg_check_lost(c);
	}
	PQclear(r);
	if (!ok)
		return -1;
	memcpy(c->cache[h], st->key, sizeof st->key);
	c->cached[h] = 1;
	return 0;
}

static struct db_st *
pg_prepare(struct db_conn *cn, const char *sql)
{
	struct pg_st *st;

	if ((st = calloc(1, sizeof *st)) == NULL)
		return NULL;
	st->base.be = &db_pg;
	st->c = CONN(cn);
	st->row = -1;
	if ((st->sql = dialect(sql, &st->nparams, &st->used)) == NULL ||
	    st->nparams > PG_MAXPARAMS) {
		log_warnx("prepare: too many parameters: %s", sql);
		goto err_prepare;
	}
	SHA256((const unsigned char *)st->sql, strlen(st->sql), st->key);
	if (pg_server_prepare(CONN(cn), st) == -1)
		goto err_prepare;
	return &st->base;
err_prepare:
	free(st->sql);
	free(st);
	return NULL;
}

static const char *
pg_errmsg(struct db_conn *c)
{
	return CONN(c)->err;
}

static int64_t
pg_changes(struct db_conn *c)
{
	return CONN(c)->changes;
}

static int64_t
pg_last_id(struct db_conn *cn)
{
	struct pg_conn *c = CONN(cn);
	PGresult *r = PQexec(c->pg, "SELECT lastval()");
	int64_t id = 0;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return id;
}

static int
pg_schema_get(struct db_conn *cn)
{
	struct pg_conn *c = CONN(cn);
	PGresult *r;
	int v = -1;

	if (pg_exec(cn, "CREATE TABLE IF NOT EXISTS schema_version"
	    " (version INTEGER NOT NULL)") == -1)
		return -1;
	r = PQexec(c->pg, "SELECT coalesce(max(version), 0)"
	    " FROM schema_version");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = atoi(PQgetvalue(r, 0, 0));
	else
		pg_seterr(c, "schema version", PQresultErrorMessage(r));
	PQclear(r);
	return v;
}

static int
pg_schema_set(struct db_conn *c, int v)
{
	char sql[128];

	snprintf(sql, sizeof sql, "DELETE FROM schema_version;"
	    " INSERT INTO schema_version VALUES (%d)", v);
	return pg_exec(c, sql);
}

static void
pg_clear(struct pg_st *st)
{
	int i;

	PQclear(st->res);
	st->res = NULL;
	st->row = -1;
	PQfreemem(st->blob);
	st->blob = NULL;
	for (i = 0; i < st->nargs; i++) {
		free(st->values[i]);
		st->values[i] = NULL;
	}
	st->nargs = 0;
}

static void
pg_reset(struct db_st *s)
{
	pg_clear(ST(s));
}

static int
pg_bind(struct db_st *s, const struct db_arg *args)
{
	struct pg_st *st = ST(s);
	const struct db_arg *a;
	char num[32];
	int i;

	pg_clear(st);
	for (a = args, i = 0; a->kind != DB_ARG_END; a++)
		i++;
	if (i != st->nparams) {
		log_warnx("bind: %d arguments for %d parameters: %s", i,
		    st->nparams, st->sql);
		return -1;
	}
	for (a = args, i = 0; a->kind != DB_ARG_END; a++, i++) {
		st->formats[i] = 0;
		st->lengths[i] = 0;
		switch (a->kind) {
		case DB_ARG_TEXT:
			st->values[i] = strdup(a->text ? a->text : "");
			break;
		case DB_ARG_INT:
			snprintf(num, sizeof num, "%" PRId64, a->i);
			st->values[i] = strdup(num);
			break;
		case DB_ARG_BLOB:
			if (a->len > INT32_MAX)
				goto err_arg;
			st->values[i] = malloc(a->len ? a->len : 1);
			if (st->values[i] && a->len)
				memcpy(st->values[i], a->blob, a->len);
			st->lengths[i] = (int)a->len;
			st->formats[i] = 1;
			break;
		default:	/* DB_ARG_NULL */
			st->nargs = i + 1;
			continue;
		}
		st->nargs = i + 1;
		if (st->values[i] == NULL)
			goto err_arg;
	}
	st->nargs = i;
	return 0;
err_arg:
	log_warnx("bind $%d: no memory or too big: %s", i + 1, st->sql);
	pg_clear(st);
	return -1;
}

static int
pg_step(struct db_st *s)
{
	struct pg_st *st = ST(s);
	struct pg_conn *c = st->c;
	char state[6];
	const char *v;
	int tries;

	if (st->res == NULL) {
		if (c->tx_lost || pg_alive(c) == -1)
			return DB_ERR;
		/* Prepared again when the session was reset since. */
		if (pg_server_prepare(c, st) == -1)
			return DB_ERR;
		for (tries = 0;; tries++) {
			st->res = PQexecPrepared(c->pg, st->name, st->nparams,
			    (const char *const *)st->values, st->lengths,
			    st->formats, 0);
			if (PQresultStatus(st->res) == PGRES_TUPLES_OK ||
			    PQresultStatus(st->res) == PGRES_COMMAND_OK) {
				c->changes = strtoll(PQcmdTuples(st->res), NULL,
				    10);
				/* What SQLite's update hook tells: the tables
				 * the per-thread caches hold changed (the
				 * writer runs under db->mu). */
				if (!c->readonly && c->changes > 0 &&
				    strncmp(st->sql, "SELECT", 6) != 0 &&
				    (strstr(st->sql, "machines") ||
				    strstr(st->sql, "leases")))
					c->db->machines_dirty = 1;
				break;
			}
			v = PQresultErrorField(st->res, PG_DIAG_SQLSTATE);
			snprintf(state, sizeof state, "%s", v ? v : "");
			pg_seterr(c, "step", PQresultErrorMessage(st->res));
			pg_check_lost(c);
			PQclear(st->res);
			st->res = NULL;
			/* A serialization failure or a deadlock outside a
			 * transaction is the statement's alone: run it again
			 * (inside one, the caller's db_end rolls back). */
			if (!c->in_tx && tries < PG_RETRIES &&
			    (strcmp(state, "40001") == 0 ||
			    strcmp(state, "40P01") == 0))
				continue;
			/* Class 23: integrity constraint violation. */
			if (strncmp(state, "23", 2) == 0)
				return DB_CONSTRAINT;
			return DB_ERR;
		}
	}
	if (++st->row < PQntuples(st->res))
		return DB_ROW;
	st->row = PQntuples(st->res);
	return DB_DONE;
}

static void
pg_finalize(struct db_st *s)
{
	pg_clear(ST(s));
	free(ST(s)->sql);
	free(s);
}

static int
pg_valid(struct pg_st *st, int i)
{
	return st->res && st->row >= 0 && st->row < PQntuples(st->res) &&
	    i >= 0 && i < PQnfields(st->res);
}

static int64_t
pg_col_int64(struct db_st *s, int i)
{
	struct pg_st *st = ST(s);
	const char *v;

	if (!pg_valid(st, i) || PQgetisnull(st->res, st->row, i))
		return 0;
	v = PQgetvalue(st->res, st->row, i);
	if (strcmp(v, "t") == 0)	/* a boolean */
		return 1;
	if (strcmp(v, "f") == 0)
		return 0;
	return strtoll(v, NULL, 10);
}

static const char *
pg_col_text(struct db_st *s, int i)
{
	struct pg_st *st = ST(s);

	if (!pg_valid(st, i))
		return "";
	return PQgetvalue(st->res, st->row, i);
}

static int
pg_col_null(struct db_st *s, int i)
{
	struct pg_st *st = ST(s);

	return !pg_valid(st, i) || PQgetisnull(st->res, st->row, i);
}

static const void *
pg_col_blob(struct db_st *s, int i, size_t *len)
{
	struct pg_st *st = ST(s);
	size_t n = 0;

	*len = 0;
	if (!pg_valid(st, i) || PQgetisnull(st->res, st->row, i))
		return "";
	PQfreemem(st->blob);
	st->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(st->res,
	    st->row, i), &n);
	if (st->blob == NULL)
		return "";
	*len = n;
	return st->blob;
}

const struct db_backend db_pg = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.exec = pg_exec,
	.begin = pg_begin,
	.prepare = pg_prepare,
	.errmsg = pg_errmsg,
	.changes = pg_changes,
	.last_id = pg_last_id,
	.schema_get = pg_schema_get,
	.schema_set = pg_schema_set,
	.bind = pg_bind,
	.step = pg_step,
	.reset = pg_reset,
	.finalize = pg_finalize,
	.col_int64 = pg_col_int64,
	.col_text = pg_col_text,
	.col_null = pg_col_null,
	.col_blob = pg_col_blob,
};
