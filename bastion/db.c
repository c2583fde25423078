/* db.c — SQLite state: WAL, forward-only migrations via user_version,
 * one connection serialised by a mutex (SQLite is fast enough that the
 * lock is never the bottleneck; see docs/benchmarks.md). */
#define LOG_SUBSYS "db"
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "db.h"
#include "db_agent.h"
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
	 * the current state only (issue 18). Past boots are not known: they
	 * start from the count in the current state. */
	"ALTER TABLE machines ADD COLUMN boots INTEGER NOT NULL DEFAULT 0;"
	"UPDATE machines SET boots = boot_count;",
};
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static void	reader_free(void *);

int64_t
db_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
db_lock(struct db *db)
{
	pthread_mutex_lock(&db->mu);
}

void
db_unlock(struct db *db)
{
	/* After the commit: a reader that cached the old row sees the new
	 * generation and reads again. */
	if (db->machines_dirty) {
		db->machines_dirty = 0;
		atomic_fetch_add(&db->machines_gen, 1);
	}
	pthread_mutex_unlock(&db->mu);
}

int
db_begin(struct db *db)
{
	db_lock(db);
	if (db_exec(db, "BEGIN IMMEDIATE") == -1) {
		db_unlock(db);
		return -1;
	}
	return 0;
}

int
db_end(struct db *db, int audited, int rc)
{
	if (rc == DB_OK && (audited ? db_commit(db) :
	    db_exec(db, "COMMIT")) == -1)
		rc = DB_ERR;
	if (rc != DB_OK)
		db_exec(db, "ROLLBACK");
	db_unlock(db);
	return rc;
}

static void
on_update(void *cls, int op, const char *dbname, const char *table,
    sqlite3_int64 rowid)
{
	struct db *db = cls;

	if (strcmp(table, "machines") == 0)
		db->machines_dirty = 1;
}

int
db_exec(struct db *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db->h, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("%s", err ? err : "sqlite3_exec failed");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

sqlite3_stmt *
db_prepare(struct db *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
		log_warnx("prepare: %s", sqlite3_errmsg(db->h));
		return NULL;
	}
	return st;
}

void
db_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_TRANSIENT);
}

static sqlite3_stmt *
stmt_va(struct db *db, const char *sql, const char *fmt, va_list ap)
{
	sqlite3_stmt *st;
	const char *f;
	int i;

	if ((st = db_prepare(db, sql)) == NULL)
		return NULL;
	for (f = fmt, i = 1; *f; f++, i++) {
		switch (*f) {
		case 't':
			db_bind_text(st, i, va_arg(ap, const char *));
			break;
		case 'i':
			sqlite3_bind_int(st, i, va_arg(ap, int));
			break;
		case 'I':
			sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
			break;
		default:	/* '-': left NULL */
			break;
		}
	}
	return st;
}

sqlite3_stmt *
db_stmt(struct db *db, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;

	va_start(ap, fmt);
	st = stmt_va(db, sql, fmt, ap);
	va_end(ap);
	return st;
}

int
db_run(struct db *db, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	st = stmt_va(db, sql, fmt, ap);
	va_end(ap);
	if (st == NULL)
		return DB_ERR;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		log_warnx("step: %s", sqlite3_errmsg(db->h));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return DB_ERR;
	return sqlite3_changes(db->h) ? DB_OK : DB_NOTFOUND;
}

const char *
db_col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? (const char *)s : "";
}

static int
user_version(struct db *db)
{
	sqlite3_stmt *st = db_prepare(db, "PRAGMA user_version");
	int v = -1;

	if (st && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int
migrate(struct db *db)
{
	char sql[64];
	int v = user_version(db);

	if (v < 0)
		return -1;
	if (v > NMIGRATIONS) {
		log_warnx("database schema %d is newer than this bastion (%d)",
		    v, NMIGRATIONS);
		return -1;
	}
	for (; v < NMIGRATIONS; v++) {
		if (db_exec(db, "BEGIN IMMEDIATE") == -1)
			return -1;
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
		if (db_exec(db, migrations[v]) == -1 || db_exec(db, sql) == -1) {
			db_exec(db, "ROLLBACK");
			log_warnx("migration %d failed", v + 1);
			return -1;
		}
		if (db_exec(db, "COMMIT") == -1)
			return -1;
		log_info("database migrated to schema %d", v + 1);
	}
	return 0;
}

int
db_open(const char *path, struct db **out)
{
	struct db *db;

	if ((db = calloc(1, sizeof *db)) == NULL)
		return -1;
	if (snprintf(db->path, sizeof db->path, "%s", path) >=
	    (int)sizeof db->path || pthread_key_create(&db->reader,
	    reader_free) != 0) {
		free(db);
		return -1;
	}
	pthread_mutex_init(&db->mu, NULL);
	/* NOMUTEX: every use of the writer is under db->mu already. */
	if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_warnx("%s: %s", path, db->h ? sqlite3_errmsg(db->h) : "open");
		goto err_open;
	}
	sqlite3_busy_timeout(db->h, 5000);
	sqlite3_update_hook(db->h, on_update, db);
	if (db_exec(db, "PRAGMA journal_mode = WAL;"
	    "PRAGMA synchronous = NORMAL;"
	    "PRAGMA foreign_keys = ON;") == -1)
		goto err_open;
	if (migrate(db) == -1)
		goto err_open;
	*out = db;
	return 0;
err_open:
	sqlite3_close(db->h);
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
	/* Other threads' readers went with their threads (the listeners
	 * stop first); this thread's goes now. */
	reader_free(pthread_getspecific(db->reader));
	pthread_setspecific(db->reader, NULL);
	pthread_key_delete(db->reader);
	sqlite3_close(db->h);
	pthread_mutex_destroy(&db->mu);
	free(db);
}

int
db_schema_version(struct db *db)
{
	int v;

	db_lock(db);
	v = user_version(db);
	db_unlock(db);
	return v;
}

/* Step st to its end, one row(st) per row into a new array; finalizes
 * st (NULL: a failed prepare). Caller holds the lock. */
int
db_rows_json(struct db *db, sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *),
    json_t **out)
{
	json_t *arr;
	int rc;

	if (st == NULL)
		return DB_ERR;
	arr = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(arr, row(st));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_warnx("step: %s", sqlite3_errmsg(db->h));
		json_decref(arr);
		return DB_ERR;
	}
	*out = arr;
	return DB_OK;
}

/* The one row sql selects for key, through fill(st, out). Caller holds
 * the lock. */
int
db_get_one(struct db *db, const char *sql, const char *key,
    void (*fill)(sqlite3_stmt *, void *), void *out)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_prepare(db, sql)) == NULL)
		return DB_ERR;
	db_bind_text(st, 1, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		fill(st, out);
		rc = DB_OK;
	} else {
		rc = rc == SQLITE_DONE ? DB_NOTFOUND : DB_ERR;
	}
	sqlite3_finalize(st);
	return rc;
}

#define MACHINE_COLS "machines.mac, state, uuid, serial, arch, platform, ip," \
	" hostname, created_ms, machines.updated_ms, last_boot_ms, boot_count," \
	" boots"
#define MACHINE_NCOLS 13	/* columns after MACHINE_COLS start here */

static void machine_from_row(sqlite3_stmt *, struct machine *);

static void
machine_fill(sqlite3_stmt *st, void *m)
{
	machine_from_row(st, m);
}

static void
machine_from_row(sqlite3_stmt *st, struct machine *m)
{
	int s;

	memset(m, 0, sizeof *m);
	snprintf(m->mac, sizeof m->mac, "%s", db_col_text(st, 0));
	s = machine_state_from_name(db_col_text(st, 1));
	m->state = s < 0 ? MS_FAILED : (enum machine_state)s;
	snprintf(m->uuid, sizeof m->uuid, "%s", db_col_text(st, 2));
	snprintf(m->serial, sizeof m->serial, "%s", db_col_text(st, 3));
	snprintf(m->arch, sizeof m->arch, "%s", db_col_text(st, 4));
	snprintf(m->platform, sizeof m->platform, "%s", db_col_text(st, 5));
	snprintf(m->ip, sizeof m->ip, "%s", db_col_text(st, 6));
	snprintf(m->hostname, sizeof m->hostname, "%s", db_col_text(st, 7));
	m->created_ms = sqlite3_column_int64(st, 8);
	m->updated_ms = sqlite3_column_int64(st, 9);
	m->last_boot_ms = sqlite3_column_int64(st, 10);
	m->boots_in_state = sqlite3_column_int(st, 11);
	m->boots = sqlite3_column_int(st, 12);
}

/* Caller holds the lock. */
/*
 * Hot reads (a /dispatch for a machine that is already known) go through a
 * read-only connection per thread: WAL lets readers run beside the writer,
 * so a boot storm does not queue on the writer's mutex.
 */
#define READER_CACHE 256

struct reader {
	sqlite3		*h;
	sqlite3_stmt	*get_machine;
	struct {
		unsigned long	gen;
		int		valid;
		struct machine	m;
	}		 cache[READER_CACHE];
};

static void
reader_free(void *p)
{
	struct reader *rd = p;

	if (rd == NULL)
		return;
	sqlite3_finalize(rd->get_machine);
	sqlite3_close(rd->h);
	free(rd);
}

static struct reader *
reader_get(struct db *db)
{
	struct reader *rd = pthread_getspecific(db->reader);

	if (rd)
		return rd;
	if ((rd = calloc(1, sizeof *rd)) == NULL)
		return NULL;
	if (sqlite3_open_v2(db->path, &rd->h, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(rd->h, "SELECT " MACHINE_COLS
	    " FROM machines WHERE mac = ?", -1, SQLITE_PREPARE_PERSISTENT,
	    &rd->get_machine, NULL) != SQLITE_OK) {
		reader_free(rd);
		return NULL;
	}
	sqlite3_busy_timeout(rd->h, 5000);
	pthread_setspecific(db->reader, rd);
	return rd;
}

/* db_machine_get without the writer's lock. */
static int
reader_machine_get(struct db *db, const char *mac, struct machine *out)
{
	struct reader *rd = reader_get(db);
	sqlite3_stmt *st;
	unsigned long gen = atomic_load(&db->machines_gen);
	unsigned h = 5381;
	const char *p;
	int rc;

	if (rd == NULL)
		return DB_ERR;
	for (p = mac; *p; p++)
		h = h * 33 + (unsigned char)*p;
	h %= READER_CACHE;
	if (rd->cache[h].valid && rd->cache[h].gen == gen &&
	    strcmp(rd->cache[h].m.mac, mac) == 0) {
		*out = rd->cache[h].m;
		return DB_OK;
	}
	st = rd->get_machine;
	db_bind_text(st, 1, mac);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		machine_from_row(st, out);
		/* Tagged with the generation seen before the read. */
		rd->cache[h].m = *out;
		rd->cache[h].gen = gen;
		rd->cache[h].valid = 1;
		rc = DB_OK;
	} else {
		rc = rc == SQLITE_DONE ? DB_NOTFOUND : DB_ERR;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int
db_machine_get_locked(struct db *db, const char *mac, struct machine *out)
{
	return db_get_one(db, "SELECT " MACHINE_COLS " FROM machines WHERE"
	    " mac = ?", mac, machine_fill, out);
}

int
db_machine_get(struct db *db, const char *mac, struct machine *out)
{
	int rc;

	db_lock(db);
	rc = db_machine_get_locked(db, mac, out);
	db_unlock(db);
	return rc;
}

/* Caller holds the lock. */
int
db_event_add_locked(struct db *db, const char *mac, const char *state,
    const char *source, const char *message, int progress)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_prepare(db, "INSERT INTO machine_events "
	    "(mac, time_ms, source, state, message, progress) "
	    "VALUES (?, ?, ?, ?, ?, ?)")) == NULL)
		return DB_ERR;
	db_bind_text(st, 1, mac);
	sqlite3_bind_int64(st, 2, db_now_ms());
	db_bind_text(st, 3, source);
	db_bind_text(st, 4, state);
	db_bind_text(st, 5, message);
	if (progress >= 0)
		sqlite3_bind_int(st, 6, progress);
	rc = sqlite3_step(st) == SQLITE_DONE ? DB_OK : DB_ERR;
	sqlite3_finalize(st);
	return rc;
}

/* Only refresh a known machine's boot row this often: a boot storm of
 * the same machines must not turn every /dispatch into a write. */
#define BOOT_REFRESH_MS 10000

int
db_machine_boot(struct db *db, const struct boot_info *bi,
    struct machine *out, int *created)
{
	struct machine m;
	sqlite3_stmt *st = NULL;
	int64_t now = db_now_ms();
	int rc;

	/* Known and recently refreshed: answered without the writer. */
	if (reader_machine_get(db, bi->mac, &m) == DB_OK &&
	    now - m.last_boot_ms < BOOT_REFRESH_MS &&
	    strcmp(m.uuid, bi->uuid) == 0) {
		*created = 0;
		*out = m;
		return DB_OK;
	}
	db_lock(db);
	rc = db_machine_get_locked(db, bi->mac, &m);
	if (rc == DB_OK) {
		*created = 0;
		if (now - m.last_boot_ms < BOOT_REFRESH_MS &&
		    strcmp(m.uuid, bi->uuid) == 0)
			goto out;
		if ((st = db_prepare(db, "UPDATE machines SET uuid = ?, serial = ?,"
		    " arch = ?, platform = ?, ip = CASE WHEN ? = '' THEN ip"
		    " ELSE ? END, last_boot_ms = ?, boot_count = boot_count + 1,"
		    " boots = boots + 1"
		    " WHERE mac = ?")) == NULL)
			goto err;
		db_bind_text(st, 1, bi->uuid);
		db_bind_text(st, 2, bi->serial);
		db_bind_text(st, 3, bi->arch);
		db_bind_text(st, 4, bi->platform);
		db_bind_text(st, 5, bi->ip);
		db_bind_text(st, 6, bi->ip);
		sqlite3_bind_int64(st, 7, now);
		db_bind_text(st, 8, bi->mac);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto err;
		rc = db_machine_get_locked(db, bi->mac, &m);
		goto out;
	}
	if (rc != DB_NOTFOUND)
		goto err;
	if (db_exec(db, "BEGIN IMMEDIATE") == -1)
		goto err;
	if ((st = db_prepare(db, "INSERT INTO machines (mac, state, uuid, serial,"
	    " arch, platform, ip, created_ms, updated_ms, last_boot_ms,"
	    " boot_count, boots) VALUES (?, 'discovering', ?, ?, ?, ?, ?, ?, ?,"
	    " ?, 1, 1)"))
	    == NULL)
		goto err_rollback;
	db_bind_text(st, 1, bi->mac);
	db_bind_text(st, 2, bi->uuid);
	db_bind_text(st, 3, bi->serial);
	db_bind_text(st, 4, bi->arch);
	db_bind_text(st, 5, bi->platform);
	db_bind_text(st, 6, bi->ip);
	sqlite3_bind_int64(st, 7, now);
	sqlite3_bind_int64(st, 8, now);
	sqlite3_bind_int64(st, 9, now);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto err_rollback;
	if (db_event_add_locked(db, bi->mac, "discovering", "dispatch",
	    "first network boot: discovery image", -1) != DB_OK)
		goto err_rollback;
	if (db_commit(db) == -1)
		goto err_rollback;
	*created = 1;
	rc = db_machine_get_locked(db, bi->mac, &m);
out:
	sqlite3_finalize(st);
	db_unlock(db);
	if (rc == DB_OK)
		*out = m;
	return rc;
err_rollback:
	db_exec(db, "ROLLBACK");
err:
	log_warnx("machine boot %s: %s", bi->mac, sqlite3_errmsg(db->h));
	sqlite3_finalize(st);
	db_unlock(db);
	return DB_ERR;
}

int
db_machine_transition(struct db *db, const char *mac, unsigned from,
    enum machine_state to, const char *source, const char *message)
{
	struct machine m;
	sqlite3_stmt *st = NULL;
	int rc;

	db_lock(db);
	if (db_exec(db, "BEGIN IMMEDIATE") == -1) {
		db_unlock(db);
		return DB_ERR;
	}
	if ((rc = db_machine_get_locked(db, mac, &m)) != DB_OK)
		goto out_rollback;
	if (from && !(from & (1u << m.state))) {
		rc = DB_CONFLICT;
		goto out_rollback;
	}
	rc = DB_ERR;
	if ((st = db_prepare(db, "UPDATE machines SET state = ?, updated_ms = ?,"
	    " boot_count = CASE WHEN state = ? THEN boot_count ELSE 0 END"
	    " WHERE mac = ?")) == NULL)
		goto out_rollback;
	db_bind_text(st, 1, machine_state_name(to));
	sqlite3_bind_int64(st, 2, db_now_ms());
	db_bind_text(st, 3, machine_state_name(to));
	db_bind_text(st, 4, mac);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out_rollback;
	if (db_event_add_locked(db, mac, machine_state_name(to), source, message,
	    -1) != DB_OK)
		goto out_rollback;
	if (db_commit(db) == -1)
		goto out_rollback;
	sqlite3_finalize(st);
	db_unlock(db);
	return DB_OK;
out_rollback:
	db_exec(db, "ROLLBACK");
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}

int
db_machine_delete(struct db *db, const char *mac)
{
	sqlite3_stmt *st = NULL;
	int rc = DB_ERR;

	db_lock(db);
	if (db_exec(db, "BEGIN IMMEDIATE") == -1)
		goto out;
	if ((st = db_prepare(db, "DELETE FROM machines WHERE mac = ?")) == NULL)
		goto out_rollback;
	db_bind_text(st, 1, mac);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out_rollback;
	if (sqlite3_changes(db->h) == 0) {
		rc = DB_NOTFOUND;
		goto out_rollback;
	}
	sqlite3_finalize(st);
	if ((st = db_prepare(db, "DELETE FROM machine_events WHERE mac = ?")) == NULL)
		goto out_rollback;
	db_bind_text(st, 1, mac);
	if (sqlite3_step(st) != SQLITE_DONE || db_commit(db) == -1)
		goto out_rollback;
	rc = DB_OK;
	goto out;
out_rollback:
	db_exec(db, "ROLLBACK");
out:
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}

json_t *
db_time_json(int64_t ms)
{
	char s[64];
	struct tm tm;
	time_t t = (time_t)(ms / 1000);

	if (ms <= 0)
		return json_null();
	gmtime_r(&t, &tm);
	snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return json_string(s);
}

static json_t *
machine_row_json(sqlite3_stmt *st)
{
	struct machine m;

	machine_from_row(st, &m);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o,"
	    " s:o, s:i, s:i}",
	    "mac", m.mac, "state", machine_state_name(m.state),
	    "hostname", m.hostname, "ip", m.ip, "uuid", m.uuid,
	    "serial", m.serial, "arch", m.arch, "platform", m.platform,
	    "created_at", db_time_json(m.created_ms),
	    "updated_at", db_time_json(m.updated_ms),
	    "last_boot_at", db_time_json(m.last_boot_ms),
	    "boots", m.boots, "boots_in_state", m.boots_in_state);
}

/* A machine list row: the machine and its hardware summary. */
static json_t *
machine_list_row(sqlite3_stmt *st)
{
	json_t *o = machine_row_json(st);

	if (sqlite3_column_type(st, MACHINE_NCOLS) != SQLITE_NULL)
		json_object_set_new(o, "summary", json_pack("{s:I, s:I, s:I, s:I}",
		    "cpu_threads", (json_int_t)sqlite3_column_int64(st,
		    MACHINE_NCOLS),
		    "memory_bytes", (json_int_t)sqlite3_column_int64(st,
		    MACHINE_NCOLS + 1),
		    "disks", (json_int_t)sqlite3_column_int64(st,
		    MACHINE_NCOLS + 2),
		    "nics", (json_int_t)sqlite3_column_int64(st,
		    MACHINE_NCOLS + 3)));
	return o;
}

int
db_machine_list(struct db *db, int state, json_t **out)
{
	sqlite3_stmt *st;
	int rc;

	db_lock(db);
	st = db_prepare(db, "SELECT " MACHINE_COLS ", h.cpu_threads,"
	    " h.memory_bytes, h.disk_count, h.nic_count FROM machines"
	    " LEFT JOIN hardware h USING (mac)"
	    " WHERE ?1 = '' OR state = ?1 ORDER BY created_ms, mac");
	if (st)
		db_bind_text(st, 1, state < 0 ? "" : machine_state_name(state));
	rc = db_rows_json(db, st, machine_list_row, out);
	db_unlock(db);
	return rc;
}

int
db_machine_json(struct db *db, const char *mac, json_t **out)
{
	sqlite3_stmt *st;
	json_t *o = NULL, *hw = NULL;
	int rc;

	db_lock(db);
	if ((st = db_prepare(db, "SELECT " MACHINE_COLS ", h.report,"
	    " h.updated_ms FROM machines LEFT JOIN hardware h USING (mac)"
	    " WHERE mac = ?")) == NULL) {
		db_unlock(db);
		return DB_ERR;
	}
	db_bind_text(st, 1, mac);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		o = machine_row_json(st);
		if (sqlite3_column_type(st, MACHINE_NCOLS) != SQLITE_NULL)
			hw = json_loads(db_col_text(st, MACHINE_NCOLS), 0, NULL);
		json_object_set_new(o, "hardware", hw ? hw : json_null());
		json_object_set_new(o, "hardware_updated_at",
		    db_time_json(sqlite3_column_int64(st, MACHINE_NCOLS + 1)));
		json_object_set_new(o, "install", db_install_json_locked(db, mac));
		json_object_set_new(o, "agent", db_agent_json_for_mac_locked(db,
		    mac));
		rc = DB_OK;
	} else {
		rc = rc == SQLITE_DONE ? DB_NOTFOUND : DB_ERR;
	}
	sqlite3_finalize(st);
	db_unlock(db);
	if (rc == DB_OK)
		*out = o;
	return rc;
}

int
db_event_add(struct db *db, const char *mac, const char *source,
    const char *message, int progress)
{
	struct machine m;
	int rc;

	db_lock(db);
	if ((rc = db_machine_get_locked(db, mac, &m)) == DB_OK)
		rc = db_event_add_locked(db, mac, machine_state_name(m.state),
		    source, message, progress);
	db_unlock(db);
	return rc;
}

static json_t *
event_row(sqlite3_stmt *st)
{
	json_t *o = json_pack("{s:I, s:o, s:s, s:s, s:s}",
	    "id", (json_int_t)sqlite3_column_int64(st, 0),
	    "time", db_time_json(sqlite3_column_int64(st, 1)),
	    "source", db_col_text(st, 2), "state", db_col_text(st, 3),
	    "message", db_col_text(st, 4));

	json_object_set_new(o, "progress", sqlite3_column_type(st, 5) ==
	    SQLITE_NULL ? json_null() : json_integer(sqlite3_column_int(st, 5)));
	return o;
}

int
db_events_json(struct db *db, const char *mac, int64_t after_id, int limit,
    json_t **out)
{
	sqlite3_stmt *st;
	int rc;

	db_lock(db);
	if ((st = db_prepare(db, "SELECT id, time_ms, source, state, message,"
	    " progress FROM machine_events WHERE mac = ? AND id > ?"
	    " ORDER BY id LIMIT ?")) != NULL) {
		db_bind_text(st, 1, mac);
		sqlite3_bind_int64(st, 2, after_id);
		sqlite3_bind_int(st, 3, limit);
	}
	rc = db_rows_json(db, st, event_row, out);
	db_unlock(db);
	return rc;
}

static json_int_t
count_of(const json_t *report, const char *key)
{
	const json_t *v = json_object_get(report, key);

	return json_is_array(v) ? (json_int_t)json_array_size(v) : 0;
}

int
db_hardware_store(struct db *db, const char *mac, const json_t *report,
    const char *summary)
{
	struct machine m;
	sqlite3_stmt *st = NULL;
	char *text = NULL;
	int rc;

	if ((text = json_dumps(report, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		return DB_ERR;
	db_lock(db);
	if (db_exec(db, "BEGIN IMMEDIATE") == -1) {
		db_unlock(db);
		free(text);
		return DB_ERR;
	}
	if ((rc = db_machine_get_locked(db, mac, &m)) != DB_OK)
		goto out_rollback;
	rc = DB_ERR;
	if ((st = db_prepare(db, "INSERT INTO hardware (mac, report, updated_ms,"
	    " cpu_threads, memory_bytes, disk_count, nic_count)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (mac) DO UPDATE"
	    " SET report = ?2, updated_ms = ?3, cpu_threads = ?4,"
	    " memory_bytes = ?5, disk_count = ?6, nic_count = ?7")) == NULL)
		goto out_rollback;
	db_bind_text(st, 1, mac);
	db_bind_text(st, 2, text);
	sqlite3_bind_int64(st, 3, db_now_ms());
	sqlite3_bind_int64(st, 4, json_integer_value(json_object_get(
	    json_object_get(report, "cpu"), "threads")));
	sqlite3_bind_int64(st, 5, json_integer_value(json_object_get(
	    json_object_get(report, "memory"), "total_bytes")));
	sqlite3_bind_int64(st, 6, count_of(report, "disks"));
	sqlite3_bind_int64(st, 7, count_of(report, "nics"));
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out_rollback;
	sqlite3_finalize(st);
	st = NULL;
	if (m.state == MS_DISCOVERING) {
		if ((st = db_prepare(db, "UPDATE machines SET state = 'discovered',"
		    " updated_ms = ?, boot_count = 0 WHERE mac = ?")) == NULL)
			goto out_rollback;
		sqlite3_bind_int64(st, 1, db_now_ms());
		db_bind_text(st, 2, mac);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out_rollback;
		if (db_event_add_locked(db, mac, "discovered", "discover",
		    summary ? summary : "hardware reported", -1) != DB_OK)
			goto out_rollback;
	} else if (db_event_add_locked(db, mac, machine_state_name(m.state),
	    "discover", summary ? summary : "hardware re-reported", -1) != DB_OK)
		goto out_rollback;
	if (db_commit(db) == -1)
		goto out_rollback;
	rc = DB_OK;
	goto out;
out_rollback:
	db_exec(db, "ROLLBACK");
out:
	sqlite3_finalize(st);
	db_unlock(db);
	free(text);
	return rc;
}

int
db_hardware_get(struct db *db, const char *mac, json_t **out)
{
	sqlite3_stmt *st;
	json_t *hw = NULL;
	int rc;

	db_lock(db);
	if ((st = db_prepare(db, "SELECT report FROM hardware WHERE mac = ?"))
	    == NULL) {
		db_unlock(db);
		return DB_ERR;
	}
	db_bind_text(st, 1, mac);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		hw = json_loads(db_col_text(st, 0), 0, NULL);
	sqlite3_finalize(st);
	db_unlock(db);
	if (rc == SQLITE_DONE)
		return DB_NOTFOUND;
	if (hw == NULL)
		return DB_ERR;
	*out = hw;
	return DB_OK;
}

int
db_lease_record(struct db *db, const char *action, const char *mac,
    const char *ip, const char *hostname, int64_t expires)
{
	sqlite3_stmt *st = NULL;
	int rc = DB_ERR, del = strcmp(action, "del") == 0;

	db_lock(db);
	if (db_exec(db, "BEGIN IMMEDIATE") == -1)
		goto out;
	st = db_prepare(db, del ? "DELETE FROM leases WHERE mac = ?1" :
	    "INSERT INTO leases (mac, ip, hostname, expires, updated_ms)"
	    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (mac) DO UPDATE SET"
	    " ip = ?2, hostname = ?3, expires = ?4, updated_ms = ?5");
	if (st == NULL)
		goto out_rollback;
	db_bind_text(st, 1, mac);
	if (!del) {
		db_bind_text(st, 2, ip);
		db_bind_text(st, 3, hostname);
		sqlite3_bind_int64(st, 4, expires);
		sqlite3_bind_int64(st, 5, db_now_ms());
	}
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out_rollback;
	sqlite3_finalize(st);
	/* A machine we know learns its address from its lease. */
	if ((st = db_prepare(db, "UPDATE machines SET ip = ?2,"
	    " hostname = CASE WHEN hostname = '' THEN ?3 ELSE hostname END"
	    " WHERE mac = ?1")) == NULL)
		goto out_rollback;
	db_bind_text(st, 1, mac);
	db_bind_text(st, 2, del ? "" : ip);
	db_bind_text(st, 3, del ? "" : hostname);
	if (sqlite3_step(st) != SQLITE_DONE || db_commit(db) == -1)
		goto out_rollback;
	rc = DB_OK;
	goto out;
out_rollback:
	db_exec(db, "ROLLBACK");
out:
	sqlite3_finalize(st);
	db_unlock(db);
	return rc;
}

static json_t *
lease_row(sqlite3_stmt *st)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:o}",
	    "mac", db_col_text(st, 0), "ip", db_col_text(st, 1),
	    "hostname", db_col_text(st, 2),
	    "expires", (json_int_t)sqlite3_column_int64(st, 3),
	    "updated_at", db_time_json(sqlite3_column_int64(st, 4)));
}

int
db_leases_json(struct db *db, json_t **out)
{
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_prepare(db, "SELECT mac, ip, hostname,"
	    " expires, updated_ms FROM leases ORDER BY mac"), lease_row, out);
	db_unlock(db);
	return rc;
}

int
db_count_by_state(struct db *db, long counts[MS_NSTATES])
{
	sqlite3_stmt *st;
	int rc, s;

	memset(counts, 0, sizeof(long) * MS_NSTATES);
	db_lock(db);
	if ((st = db_prepare(db, "SELECT state, count(*) FROM machines"
	    " GROUP BY state")) == NULL) {
		db_unlock(db);
		return DB_ERR;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((s = machine_state_from_name(db_col_text(st, 0))) >= 0)
			counts[s] = (long)sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	db_unlock(db);
	return rc == SQLITE_DONE ? DB_OK : DB_ERR;
}
