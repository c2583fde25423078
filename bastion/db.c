/* db.c — the state: opening the database, forward-only migrations (the
 * version is the backend's: user_version on SQLite), and what every
 * db_*.c file shares: the lock, write transactions, statements and their
 * parameters, over the backend's connections (db_sqlite.c).
 *
 * Writes go through one connection serialised by a mutex (SQLite is fast
 * enough that the lock is never the bottleneck; see docs/benchmarks.md).
 * In WAL mode reads can run beside it: the hot read of a known machine
 * uses a read-only connection per thread (db_machine.c). The subjects
 * live in db_machine.c, db_hardware.c, db_lease.c, db_install.c,
 * db_agent.c, db_auth.c and db_audit.c. */
#define LOG_SUBSYS "db"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentcache.h"
#include "jobseen.h"
#include "db.h"
#include "db_internal.h"
#include "log.h"


/* Forward-only: append, never edit a released step. */
static const char *const migrations[] = {
	/* 1: machines, events, hardware, leases */
	"CREATE TABLE machines ("
	"  mac TEXT PRIMARY KEY,"
	"  state TEXT NOT NULL,"
	"  uuid TEXT NOT NULL DEFAULT '',"
	"  serial TEXT NOT NULL DEFAULT '',"
	"  arch TEXT NOT NULL DEFAULT '',"
	"  platform TEXT NOT NULL DEFAULT '',"
	"  ip TEXT NOT NULL DEFAULT '',"
	"  hostname TEXT NOT NULL DEFAULT '',"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL,"
	"  last_boot_ms INTEGER NOT NULL DEFAULT 0,"
	"  boot_count INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE machine_events ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  mac TEXT NOT NULL,"
	"  time_ms INTEGER NOT NULL,"
	"  source TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  message TEXT NOT NULL,"
	"  progress INTEGER"
	");"
	"CREATE INDEX machine_events_mac ON machine_events(mac, id);"
	"CREATE TABLE hardware ("
	"  mac TEXT PRIMARY KEY REFERENCES machines(mac) ON DELETE CASCADE,"
	"  report TEXT NOT NULL,"
	"  updated_ms INTEGER NOT NULL,"
	"  cpu_threads INTEGER,"
	"  memory_bytes INTEGER,"
	"  disk_count INTEGER,"
	"  nic_count INTEGER"
	");"
	"CREATE TABLE leases ("
	"  mac TEXT PRIMARY KEY,"
	"  ip TEXT NOT NULL,"
	"  hostname TEXT NOT NULL DEFAULT '',"
	"  expires INTEGER NOT NULL DEFAULT 0,"
	"  updated_ms INTEGER NOT NULL"
	");"
	"CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
	/* 2: installs; the install key is stored only as its SHA-256 */
	"CREATE TABLE installs ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  mac TEXT NOT NULL,"
	"  hostname TEXT NOT NULL,"
	"  role TEXT NOT NULL,"
	"  os TEXT NOT NULL,"
	"  disk TEXT NOT NULL,"
	"  ssh_keys TEXT NOT NULL,"
	"  reprovision INTEGER NOT NULL DEFAULT 0,"
	"  key_hash TEXT NOT NULL DEFAULT '',"
	"  status TEXT NOT NULL,"
	"  boots INTEGER NOT NULL DEFAULT 0,"
	"  stage TEXT NOT NULL DEFAULT '',"
	"  progress INTEGER NOT NULL DEFAULT 0,"
	"  message TEXT NOT NULL DEFAULT '',"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX installs_mac ON installs(mac, id);"
	"ALTER TABLE machines ADD COLUMN install_id INTEGER;",
	/* 3: node agents (issue 5): join tokens (hash only), agents, their
	 * certificates, enrollment attempts, signed jobs and their output */
	"CREATE TABLE join_tokens ("
	"  id TEXT PRIMARY KEY,"
	"  hash TEXT NOT NULL UNIQUE,"
	"  mac TEXT NOT NULL DEFAULT '',"
	"  uses INTEGER NOT NULL,"
	"  used INTEGER NOT NULL DEFAULT 0,"
	"  expires_ms INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  last_used_ms INTEGER NOT NULL DEFAULT 0,"
	"  revoked_ms INTEGER NOT NULL DEFAULT 0,"
	"  install_id INTEGER,"
	"  comment TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE INDEX join_tokens_install ON join_tokens(install_id);"
	"CREATE TABLE agents ("
	"  id TEXT PRIMARY KEY,"
	"  mac TEXT NOT NULL DEFAULT '',"
	"  hostname TEXT NOT NULL DEFAULT '',"
	"  token_id TEXT NOT NULL DEFAULT '',"
	"  enrolled_ms INTEGER NOT NULL,"
	"  enrolled_addr TEXT NOT NULL DEFAULT '',"
	"  last_seen_ms INTEGER NOT NULL DEFAULT 0,"
	"  last_addr TEXT NOT NULL DEFAULT '',"
	"  heartbeat TEXT NOT NULL DEFAULT '{}',"
	"  inventory TEXT NOT NULL DEFAULT '{}',"
	"  inventory_ms INTEGER NOT NULL DEFAULT 0,"
	"  cert_serial TEXT NOT NULL DEFAULT '',"
	"  cert_not_after_ms INTEGER NOT NULL DEFAULT 0,"
	"  revoked_ms INTEGER NOT NULL DEFAULT 0,"
	"  revoked_reason TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE INDEX agents_mac ON agents(mac);"
	"CREATE INDEX agents_hostname ON agents(hostname);"
	"CREATE TABLE certificates ("
	"  serial TEXT PRIMARY KEY,"
	"  agent_id TEXT NOT NULL,"
	"  not_before_ms INTEGER NOT NULL,"
	"  not_after_ms INTEGER NOT NULL,"
	"  revoked_ms INTEGER NOT NULL DEFAULT 0,"
	"  created_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX certificates_agent ON certificates(agent_id);"
	"CREATE TABLE enroll_attempts ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time_ms INTEGER NOT NULL,"
	"  addr TEXT NOT NULL,"
	"  token_id TEXT NOT NULL DEFAULT '',"
	"  mac TEXT NOT NULL DEFAULT '',"
	"  hostname TEXT NOT NULL DEFAULT '',"
	"  agent_id TEXT NOT NULL DEFAULT '',"
	"  result TEXT NOT NULL,"
	"  message TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE TABLE jobs ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  agent_id TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  args TEXT NOT NULL,"
	"  envelope TEXT NOT NULL DEFAULT '',"
	"  sig TEXT NOT NULL DEFAULT '',"
	"  key_id TEXT NOT NULL DEFAULT '',"
	"  not_after_ms INTEGER NOT NULL,"
	"  status TEXT NOT NULL,"
	"  created_by TEXT NOT NULL DEFAULT '',"
	"  created_ms INTEGER NOT NULL,"
	"  sent_ms INTEGER NOT NULL DEFAULT 0,"
	"  started_ms INTEGER NOT NULL DEFAULT 0,"
	"  finished_ms INTEGER NOT NULL DEFAULT 0,"
	"  exit_code INTEGER,"
	"  signal INTEGER,"
	"  timed_out INTEGER NOT NULL DEFAULT 0,"
	"  duration_ms INTEGER,"
	"  error TEXT NOT NULL DEFAULT '',"
	"  output_bytes INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX jobs_agent ON jobs(agent_id, status, id);"
	"CREATE TABLE job_output ("
	"  job_id INTEGER NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  stream TEXT NOT NULL,"
	"  data BLOB NOT NULL,"
	"  time_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (job_id, seq)"
	");",
	/* 4: operators and the audit trail (issue 6). Passwords are
	 * Argon2id strings, session ids and API tokens only their SHA-256;
	 * audit_log rows are hash-chained (audit.h) and the triggers refuse
	 * edits in place. */
	"CREATE TABLE users ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL UNIQUE,"
	"  role TEXT NOT NULL,"
	"  password_hash TEXT NOT NULL,"
	"  must_change INTEGER NOT NULL DEFAULT 0,"
	"  disabled INTEGER NOT NULL DEFAULT 0,"
	"  created_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL,"
	"  password_changed_ms INTEGER NOT NULL,"
	"  last_login_ms INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE sessions ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  id_hash TEXT NOT NULL UNIQUE,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  address TEXT NOT NULL DEFAULT '',"
	"  user_agent TEXT NOT NULL DEFAULT '',"
	"  created_ms INTEGER NOT NULL,"
	"  last_seen_ms INTEGER NOT NULL,"
	"  expires_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX sessions_user ON sessions(user_id);"
	"CREATE TABLE api_tokens ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  hash TEXT NOT NULL UNIQUE,"
	"  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
	"  scope TEXT NOT NULL,"
	"  description TEXT NOT NULL DEFAULT '',"
	"  created_by TEXT NOT NULL DEFAULT '',"
	"  created_ms INTEGER NOT NULL,"
	"  expires_ms INTEGER NOT NULL,"
	"  last_used_ms INTEGER NOT NULL DEFAULT 0,"
	"  last_used_address TEXT NOT NULL DEFAULT '',"
	"  revoked_ms INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE audit_log ("
	"  id INTEGER PRIMARY KEY,"
	"  time_ms INTEGER NOT NULL,"
	"  actor_type TEXT NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  source TEXT NOT NULL,"
	"  action TEXT NOT NULL,"
	"  target TEXT NOT NULL,"
	"  result TEXT NOT NULL,"
	"  error TEXT NOT NULL,"
	"  detail TEXT NOT NULL,"
	"  request_id TEXT NOT NULL,"
	"  prev_hash TEXT NOT NULL,"
	"  hash TEXT NOT NULL"
	");"
	"CREATE INDEX audit_log_time ON audit_log(time_ms);"
	"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
	" BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;"
	"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
	" BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;",
	/* 5: login lockouts that outlive a restart (auth.c). Only a lockout
	 * is stored, when it starts; the failure counters stay in memory. */
	"CREATE TABLE auth_lockouts ("
	"  key TEXT PRIMARY KEY,"
	"  locked_until_ms INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL"
	");",
	/* 6: lifetime network boots beside boot_count, which counts boots in
	 * the current state only. Past boots are not known: they start from
	 * the count in the current state. */
	"ALTER TABLE machines"
	" ADD COLUMN boots INTEGER NOT NULL DEFAULT 0;"
	"UPDATE machines SET boots = boot_count;",
	/* 7: what the boot listener binds to an address (binding.h): the
	 * address an install is bound to and the installer boot whose
	 * kickstart carried the join token; the address a discovering
	 * machine was sent the discovery image. */
	"ALTER TABLE installs ADD COLUMN bound_addr TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE installs ADD COLUMN token_boot INTEGER NOT NULL"
	" DEFAULT 0;"
	"ALTER TABLE machines ADD COLUMN discovery_addr TEXT NOT NULL"
	" DEFAULT '';",
	/* 8: alerts (alerts.c, db_alerts.c): one row per alert, open while
	 * resolved_ms = 0 (at most one open per node, reason and subject);
	 * silences with an expiry; every delivery to a channel. */
	"CREATE TABLE alerts ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  agent_id TEXT NOT NULL,"
	"  node TEXT NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  subject TEXT NOT NULL DEFAULT '',"
	"  level TEXT NOT NULL,"
	"  message TEXT NOT NULL DEFAULT '',"
	"  opened_ms INTEGER NOT NULL,"
	"  resolved_ms INTEGER NOT NULL DEFAULT 0,"
	"  notified_ms INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE UNIQUE INDEX alerts_open ON alerts(agent_id, reason, subject)"
	" WHERE resolved_ms = 0;"
	"CREATE TABLE silences ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  agent_id TEXT NOT NULL,"
	"  node TEXT NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  until_ms INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  actor TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE TABLE deliveries ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  channel TEXT NOT NULL,"
	"  time_ms INTEGER NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  alert_id INTEGER,"
	"  node TEXT NOT NULL DEFAULT '',"
	"  result TEXT NOT NULL,"
	"  attempts INTEGER NOT NULL,"
	"  error TEXT NOT NULL DEFAULT ''"
	");"
	"CREATE INDEX deliveries_channel ON deliveries(channel, id);",
	/* 9: the latest container report of each node (DESIGN §12), as the
	 * agent sent it (env secrets already masked on the node), and when
	 * it came (its age; stale after three heartbeat intervals). */
	"CREATE TABLE container_reports ("
	"  agent_id TEXT PRIMARY KEY,"
	"  received_ms INTEGER NOT NULL,"
	"  report TEXT NOT NULL"
	");",
	/* 10: the latest guest report of each node (DESIGN §13: libvirt VMs
	 * and LXC containers, checked and rebuilt by routes_guests.c), and
	 * when it came (stale after three heartbeat intervals). */
	"CREATE TABLE guest_reports ("
	"  agent_id TEXT PRIMARY KEY,"
	"  received_ms INTEGER NOT NULL,"
	"  report TEXT NOT NULL"
	");",
	/* 11: the bastions that share this database (DESIGN §16), by their
	 * control URL, and when each was last seen (db_cluster.c). */
	"CREATE TABLE bastions ("
	"  url TEXT PRIMARY KEY,"
	"  version TEXT NOT NULL,"
	"  started_ms INTEGER NOT NULL,"
	"  seen_ms INTEGER NOT NULL"
	");",
	/* 12: who leads DHCP (DESIGN §16): each bastion's provisioning
	 * interface, and on PostgreSQL the session (server process id) of
	 * its listening connection, which holds the interface's advisory
	 * lock while it leads (db_cluster.c reads pg_locks). */
	"ALTER TABLE bastions ADD COLUMN dhcp_interface TEXT NOT NULL"
	" DEFAULT '';"
	"ALTER TABLE bastions ADD COLUMN dhcp_session INTEGER NOT NULL"
	" DEFAULT 0;",
};
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

/* NOTIFY bastion, payload (db_pg_listen.c hears it). Caller holds the
 * lock. */
static int
pg_notify(struct db *db, const char *payload)
{
	struct db_st *st;
	int rc;

	if ((st = db_stmt(db, "SELECT pg_notify('bastion', ?)",
	    DB_TEXT(payload))) == NULL)
		return -1;
	rc = db_step(st) == DB_ROW ? 0 : -1;
	db_finalize(st);
	return rc;
}

void
db_lock(struct db *db)
{
	pthread_mutex_lock(&db->mu);
	/* Heartbeats written behind go first: what is read or written
	 * next sees them. */
	db_hb_flush_locked(db);
}

void
db_unlock(struct db *db)
{
	/* After the commit: a reader that cached the old row sees the new
	 * generation and reads again. */
	if (db->machines_dirty) {
		db->machines_dirty = 0;
		atomic_fetch_add(&db->machines_gen, 1);
		if (db_is_pg(db))	/* and the other bastions' caches */
			pg_notify(db, "m");
	}
	/* The same for the agent certificate cache: a revocation holds on
	 * this bastion as soon as its request is answered, on the others
	 * as soon as they hear "a". */
	if (db->agents_dirty) {
		db->agents_dirty = 0;
		agentcache_bump(db->agents);
		if (db_is_pg(db) && !db->agents_told)
			pg_notify(db, "a");
	}
	db->agents_told = 0;
	pthread_mutex_unlock(&db->mu);
}

int
db_shared(struct db *db)
{
	return db_is_pg(db);
}

int
db_wake_agent(struct db *db, const char *agent_id)
{
	char payload[128];
	int rc;

	if (!db_is_pg(db))
		return 0;
	if (snprintf(payload, sizeof payload, "w:%s", agent_id) >=
	    (int)sizeof payload)
		return -1;
	db_lock(db);
	rc = pg_notify(db, payload);
	db_unlock(db);
	return rc;
}

void
db_listen_streams(struct db *db, void (*fn)(const char *, const char *,
    const char *, void *), void *arg)
{
	db->stream_fn = fn;
	db->stream_arg = arg;
}

int
db_notify_stream(struct db *db, const char *sid, const char *agent_id,
    const char *why)
{
	char payload[128 + DB_STREAM_WHY_MAX];
	int rc;

	if (!db_is_pg(db))
		return 0;
	/* Ids have no spaces: the reason is the rest, cut to its cap. */
	if (strlen(sid) > 40 || strlen(agent_id) > 64 || strpbrk(sid, " ") ||
	    strpbrk(agent_id, " "))
		return -1;
	snprintf(payload, sizeof payload, "s:%s %s %.*s", sid, agent_id,
	    DB_STREAM_WHY_MAX, why);
	db_lock(db);
	rc = pg_notify(db, payload);
	db_unlock(db);
	return rc;
}

int
db_listen_start(struct db *db, void (*fn)(const char *, void *), void *arg,
    const struct db_dhcp_lead *lead)
{
	if (!db_is_pg(db))
		return 0;
	return db_pg_listen_start(db, fn, arg, lead, &db->listener);
}

void
db_listen_stop(struct db *db)
{
	db_pg_listen_stop(db->listener);
	db->listener = NULL;
}

int
db_begin(struct db *db)
{
	db_lock(db);
	if (db_conn_begin(db->w) == -1) {
		db_unlock(db);
		return -1;
	}
	return 0;
}

int
db_end(struct db *db, int audited, int rc)
{
	/* Inside the transaction: PostgreSQL delivers it with the commit,
	 * or not at all, so no bastion keeps a revoked agent's yes because
	 * a notice sent after the commit was lost (agentcache.h). */
	if (rc == DB_OK && db->agents_dirty && db_is_pg(db)) {
		if (pg_notify(db, "a") == -1)
			rc = DB_ERR;
		else
			db->agents_told = 1;
	}
	if (rc == DB_OK && (audited ? db_commit(db) :
	    db_exec(db, "COMMIT")) == -1)
		rc = DB_ERR;
	if (rc != DB_OK)
		db_exec(db, "ROLLBACK");
	db_unlock(db);
	return rc;
}

/* The backend's calls. */
int
db_conn_open(struct db *db, int readonly, struct db_conn **out)
{
	return db->be->open(db, readonly, out);
}

void
db_conn_close(struct db_conn *c)
{
	if (c)
		c->be->close(c);
}

int
db_conn_exec(struct db_conn *c, const char *sql)
{
	return c->be->exec(c, sql);
}

int
db_conn_begin(struct db_conn *c)
{
	return c->be->begin(c);
}

struct db_st *
db_conn_prepare(struct db_conn *c, const char *sql)
{
	return c->be->prepare(c, sql);
}

const char *
db_conn_errmsg(struct db_conn *c)
{
	return c->be->errmsg(c);
}

int64_t
db_conn_changes(struct db_conn *c)
{
	return c->be->changes(c);
}

int64_t
db_conn_last_id(struct db_conn *c)
{
	return c->be->last_id(c);
}

int
db_conn_schema_get(struct db_conn *c)
{
	return c->be->schema_get(c);
}

int
db_conn_schema_set(struct db_conn *c, int v)
{
	return c->be->schema_set(c, v);
}

int
db_bind(struct db_st *st, const struct db_arg *args)
{
	return st->be->bind(st, args);
}

int
db_step(struct db_st *st)
{
	return st->be->step(st);
}

void
db_reset(struct db_st *st)
{
	st->be->reset(st);
}

void
db_finalize(struct db_st *st)
{
	if (st)
		st->be->finalize(st);
}

int64_t
db_col_int64(struct db_st *st, int i)
{
	return st->be->col_int64(st, i);
}

int
db_col_int(struct db_st *st, int i)
{
	return (int)st->be->col_int64(st, i);
}

const char *
db_col_text(struct db_st *st, int i)
{
	return st->be->col_text(st, i);
}

int
db_col_null(struct db_st *st, int i)
{
	return st->be->col_null(st, i);
}

const void *
db_col_blob(struct db_st *st, int i, size_t *len)
{
	return st->be->col_blob(st, i, len);
}

int
db_exec(struct db *db, const char *sql)
{
	return db_conn_exec(db->w, sql);
}

struct db_st *
db_stmt_argv(struct db *db, const char *sql, const struct db_arg *args)
{
	struct db_st *st;

	if ((st = db_conn_prepare(db->w, sql)) == NULL)
		return NULL;
	if (db_bind(st, args) == -1) {
		db_finalize(st);
		return NULL;
	}
	return st;
}

int
db_run_argv(struct db *db, const char *sql, const struct db_arg *args)
{
	struct db_st *st;
	int rc;

	if ((st = db_stmt_argv(db, sql, args)) == NULL)
		return DB_ERR;
	rc = db_step(st);
	if (rc == DB_CONSTRAINT)
		log_warnx("step: %s", db_errmsg(db));
	db_finalize(st);
	if (rc != DB_DONE)
		return DB_ERR;
	return db_changes(db) ? DB_OK : DB_NOTFOUND;
}

int64_t
db_changes(struct db *db)
{
	return db_conn_changes(db->w);
}

int64_t
db_last_id(struct db *db)
{
	return db_conn_last_id(db->w);
}

const char *
db_errmsg(struct db *db)
{
	return db_conn_errmsg(db->w);
}

void
db_time_str(int64_t ms, char out[DB_TIME_LEN])
{
	struct tm tm;
	time_t t = (time_t)(ms / 1000);

	gmtime_r(&t, &tm);
	snprintf(out, DB_TIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

json_t *
db_time_json(int64_t ms)
{
	char s[DB_TIME_LEN];

	if (ms <= 0)
		return json_null();
	db_time_str(ms, s);
	return json_string(s);
}

int
db_rows_json(struct db *db, struct db_st *st, json_t *(*row)(struct db_st *),
    json_t **out)
{
	json_t *arr;
	int rc;

	if (st == NULL)
		return DB_ERR;
	arr = json_array();
	while ((rc = db_step(st)) == DB_ROW)
		json_array_append_new(arr, row(st));
	db_finalize(st);
	if (rc != DB_DONE) {
		json_decref(arr);
		return DB_ERR;
	}
	*out = arr;
	return DB_OK;
}

int
db_get_one(struct db *db, const char *sql, const char *key,
    void (*fill)(struct db_st *, void *), void *out)
{
	struct db_st *st;
	int rc;

	if ((st = db_stmt(db, sql, DB_TEXT(key))) == NULL)
		return DB_ERR;
	rc = db_step(st);
	if (rc == DB_ROW) {
		fill(st, out);
		rc = DB_OK;
	} else {
		rc = rc == DB_DONE ? DB_NOTFOUND : DB_ERR;
	}
	db_finalize(st);
	return rc;
}

/* Each step in its own transaction, with the user_version it reaches. */
static int
migrate(struct db *db)
{
	int v = db_conn_schema_get(db->w);

	if (v < 0)
		return -1;
	if (v > NMIGRATIONS) {
		log_warnx("database schema %d is newer than this bastion (%d)",
		    v, NMIGRATIONS);
		return -1;
	}
	for (; v < NMIGRATIONS; v++) {
		if (db_begin(db) == -1)
			return -1;
		if (db_end(db, 0, db_exec(db, migrations[v]) == -1 ||
		    db_conn_schema_set(db->w, v + 1) == -1 ? DB_ERR : DB_OK) !=
		    DB_OK) {
			log_warnx("migration %d failed", v + 1);
			return -1;
		}
		log_info("database migrated to schema %d", v + 1);
	}
	return 0;
}

int
db_is_url(const char *path)
{
	return strncmp(path, "postgresql://", 13) == 0 ||
	    strncmp(path, "postgres://", 11) == 0;
}

int
db_open(const char *path, struct db **out)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];

	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - path),
	    path) >= (int)sizeof dir)
		return -1;
	return db_open_url(path, dir[0] ? dir : "/", out);
}

int
db_open_url(const char *path, const char *statedir, struct db **out)
{
	struct db *db;

	if ((db = calloc(1, sizeof *db)) == NULL)
		return -1;
	if (snprintf(db->path, sizeof db->path, "%s", path) >=
	    (int)sizeof db->path || snprintf(db->statedir,
	    sizeof db->statedir, "%s", statedir) >= (int)sizeof db->statedir ||
	    pthread_key_create(&db->reader, db_reader_free) != 0) {
		free(db);
		return -1;
	}
	db->be = db_is_url(path) ? &db_pg : &db_sqlite;
	pthread_mutex_init(&db->mu, NULL);
	/* Every use of the writer is under db->mu. */
	if (db_conn_open(db, 0, &db->w) == -1)
		goto err_open;
	if ((db->agents = agentcache_new(AGENTCACHE_SLOTS,
	    AGENTCACHE_MAX_AGE_MS)) == NULL || (db->jobs = jobseen_new(
	    JOBSEEN_SLOTS, JOBSEEN_WOKE, JOBSEEN_MAX_AGE_MS)) == NULL)
		goto err_migrate;
	/* Shared with other bastions: off until their changes are heard. */
	if (db_is_pg(db)) {
		agentcache_enable(db->agents, 0);
		jobseen_enable(db->jobs, 0);
	}
	if (migrate(db) == -1 || db_hb_init(db) == -1)
		goto err_migrate;
	*out = db;
	return 0;
err_migrate:
	agentcache_free(db->agents);
	jobseen_free(db->jobs);
	db_conn_close(db->w);
err_open:
	pthread_mutex_destroy(&db->mu);
	pthread_key_delete(db->reader);
	free(db);
	return -1;
}

void
db_close(struct db *db)
{
	if (db == NULL)
		return;
	db_hb_close(db);
	/* Other threads' readers went with their threads (the listeners
	 * stop first); this thread's goes now. */
	db_reader_free(pthread_getspecific(db->reader));
	pthread_setspecific(db->reader, NULL);
	pthread_key_delete(db->reader);
	db_conn_close(db->w);
	agentcache_free(db->agents);
	jobseen_free(db->jobs);
	pthread_mutex_destroy(&db->mu);
	free(db);
}

int
db_schema_version(struct db *db)
{
	int v;

	db_lock(db);
	v = db_conn_schema_get(db->w);
	db_unlock(db);
	return v;
}

int
db_unavailable(struct db *db)
{
	return atomic_load(&db->unavailable);
}
