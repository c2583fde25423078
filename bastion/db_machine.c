/* db_machine.c — machines and their events, and the per-thread read-only
 * connections that answer the hot read of a known machine. */
#define LOG_SUBSYS "db"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcache.h"
#include "clock.h"
#include "db_agent.h"
#include "db_internal.h"
#include "log.h"

#define MACHINE_COLS "machines.mac, state, uuid, serial, arch, platform, ip," \
	" hostname, created_ms, machines.updated_ms, last_boot_ms, boot_count," \
	" boots, discovery_addr"
#define MACHINE_NCOLS 14	/* columns after MACHINE_COLS start here */

static void
machine_from_row(struct db_st *st, struct machine *m)
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
	m->created_ms = db_col_int64(st, 8);
	m->updated_ms = db_col_int64(st, 9);
	m->last_boot_ms = db_col_int64(st, 10);
	m->boots_in_state = db_col_int(st, 11);
	m->boots = db_col_int(st, 12);
	snprintf(m->discovery_addr, sizeof m->discovery_addr, "%s",
	    db_col_text(st, 13));
}

static void
machine_fill(struct db_st *st, void *m)
{
	machine_from_row(st, m);
}

/*
 * Hot reads (a /dispatch for a machine that is already known) go through a
 * read-only connection per thread: WAL lets readers run beside the writer,
 * so a boot storm does not queue on the writer's mutex.
 */
#define READER_CACHE 256

struct reader {
	struct db_conn	*c;
	struct db_st	*get_machine;
	struct db_st	*get_lease;	/* db_lease.c's, on the boot path too */
	struct db_st	*get_cert;	/* db_heartbeat.c's certificate check */
	struct db_st	*get_jobs;	/* the long poll's (db_jobs_waiting) */
	struct {
		unsigned long	gen;
		int		valid;
		struct machine	m;
	}		 cache[READER_CACHE];
	struct {			/* leases, the same way */
		unsigned long	gen;
		int		valid, found;
		char		mac[MAC_STRLEN];
		char		ip[64];
		int64_t		expires;
	}		 leases[READER_CACHE];
};

void
db_reader_free(void *p)
{
	struct reader *rd = p;

	if (rd == NULL)
		return;
	db_finalize(rd->get_machine);
	db_finalize(rd->get_lease);
	db_finalize(rd->get_cert);
	db_finalize(rd->get_jobs);
	db_conn_close(rd->c);
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
	if (db_conn_open(db, 1, &rd->c) == -1 ||
	    (rd->get_machine = db_conn_prepare(rd->c, "SELECT " MACHINE_COLS
	    " FROM machines WHERE mac = ?")) == NULL ||
	    (rd->get_lease = db_conn_prepare(rd->c, "SELECT ip, expires FROM"
	    " leases WHERE mac = ?")) == NULL ||
	    (rd->get_cert = db_conn_prepare(rd->c, "SELECT a.revoked_ms,"
	    " c.revoked_ms, a.cert_not_after_ms FROM certificates c JOIN"
	    " agents a ON a.id = c.agent_id WHERE c.serial = ? AND"
	    " c.agent_id = ?")) == NULL ||
	    (rd->get_jobs = db_conn_prepare(rd->c, "SELECT COALESCE(MAX(CASE"
	    " WHEN status = 'queued' OR sent_ms < ?2 THEN 1 ELSE 0 END), 0),"
	    " COUNT(*) FROM jobs WHERE agent_id = ?1 AND (status = 'queued'"
	    " OR (status = 'sent' AND started_ms = 0))")) == NULL) {
		db_reader_free(rd);
		return NULL;
	}
	pthread_setspecific(db->reader, rd);
	return rd;
}

/* db_machine_get without the writer's lock. */
static int
reader_machine_get(struct db *db, const char *mac, struct machine *out)
{
	struct reader *rd = reader_get(db);
	struct db_st *st;
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
	if (db_bind(st, DB_ARGV(DB_TEXT(mac))) == -1)
		return DB_ERR;
	rc = db_step(st);
	if (rc == DB_ROW) {
		machine_from_row(st, out);
		/* Tagged with the generation seen before the read. */
		rd->cache[h].m = *out;
		rd->cache[h].gen = gen;
		rd->cache[h].valid = 1;
		rc = DB_OK;
	} else {
		rc = rc == DB_DONE ? DB_NOTFOUND : DB_ERR;
	}
	db_reset(st);
	return rc;
}

int
db_reader_lease(struct db *db, const char *mac, char ip[64],
    int64_t *expires)
{
	struct reader *rd = reader_get(db);
	unsigned long gen = atomic_load(&db->machines_gen);
	unsigned h = 5381;
	const char *p;
	struct db_st *st;
	int rc;

	if (rd == NULL)
		return DB_ERR;
	for (p = mac; *p; p++)
		h = h * 33 + (unsigned char)*p;
	h %= READER_CACHE;
	/* Known at this generation (the lease table bumps it too). */
	if (rd->leases[h].valid && rd->leases[h].gen == gen &&
	    strcmp(rd->leases[h].mac, mac) == 0) {
		if (!rd->leases[h].found)
			return DB_NOTFOUND;
		snprintf(ip, 64, "%s", rd->leases[h].ip);
		*expires = rd->leases[h].expires;
		return DB_OK;
	}
	st = rd->get_lease;
	if (db_bind(st, DB_ARGV(DB_TEXT(mac))) == -1)
		return DB_ERR;
	rc = db_step(st);
	if (rc == DB_ROW || rc == DB_DONE) {
		rd->leases[h].found = rc == DB_ROW;
		snprintf(rd->leases[h].ip, sizeof rd->leases[h].ip, "%s",
		    rc == DB_ROW ? db_col_text(st, 0) : "");
		rd->leases[h].expires = rc == DB_ROW ?
		    db_col_int64(st, 1) : 0;
		snprintf(rd->leases[h].mac, sizeof rd->leases[h].mac, "%s", mac);
		rd->leases[h].gen = gen;
		rd->leases[h].valid = 1;
		if (rc == DB_ROW) {
			snprintf(ip, 64, "%s", rd->leases[h].ip);
			*expires = rd->leases[h].expires;
		}
		rc = rc == DB_ROW ? DB_OK : DB_NOTFOUND;
	} else
		rc = DB_ERR;
	db_reset(st);
	return rc;
}

int
db_reader_agent_cert(struct db *db, const char *id, const char *serial,
    int64_t *cert_not_after_ms)
{
	struct reader *rd;
	struct db_st *st;
	int64_t not_after = 0;
	unsigned long gen;
	int rc;

	gen = agentcache_gen(db->agents);	/* before the read */
	if (agentcache_get(db->agents, id, serial, clock_mono_ms(),
	    cert_not_after_ms))
		return DB_OK;
	if ((rd = reader_get(db)) == NULL)
		return DB_ERR;
	st = rd->get_cert;
	if (db_bind(st, DB_ARGV(DB_TEXT(serial), DB_TEXT(id))) == -1)
		return DB_ERR;
	rc = db_step(st);
	if (rc == DB_ROW) {
		rc = db_col_int64(st, 0) || db_col_int64(st, 1) ?
		    DB_CONFLICT : DB_OK;
		not_after = db_col_int64(st, 2);
	} else
		rc = rc == DB_DONE ? DB_NOTFOUND : DB_ERR;
	db_reset(st);
	if (rc == DB_OK) {
		agentcache_put(db->agents, id, serial, not_after, gen,
		    clock_mono_ms());
		*cert_not_after_ms = not_after;
	}
	return rc;
}

int
db_reader_jobs(struct db *db, const char *agent_id, int64_t cutoff_ms,
    int *deliverable, int64_t *outstanding)
{
	struct reader *rd;
	struct db_st *st;
	int rc;

	if ((rd = reader_get(db)) == NULL)
		return DB_ERR;
	st = rd->get_jobs;
	if (db_bind(st, DB_ARGV(DB_TEXT(agent_id), DB_INT(cutoff_ms))) == -1)
		return DB_ERR;
	if ((rc = db_step(st)) == DB_ROW) {
		*deliverable = db_col_int(st, 0) != 0;
		*outstanding = db_col_int64(st, 1);
		rc = DB_OK;
	} else
		rc = DB_ERR;
	db_reset(st);
	return rc;
}

int
db_machine_lookup(struct db *db, const char *mac, struct machine *out)
{
	return reader_machine_get(db, mac, out);
}

int
db_machine_discovery_bind(struct db *db, const char *mac, const char *addr,
    int rebind)
{
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	/* Compare and set: of two first boots at once, one binds. */
	rc = db_run(db, "UPDATE machines SET discovery_addr = ?1 WHERE"
	    " mac = ?2 AND state = 'discovering' AND (discovery_addr = '' OR"
	    " discovery_addr = ?1 OR ?3)", DB_TEXT(addr), DB_TEXT(mac),
	    DB_INT(rebind != 0));
	return db_end(db, 0, rc == DB_NOTFOUND ? DB_DENIED : rc);
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

int
db_event_add_locked(struct db *db, const char *mac, const char *state,
    const char *source, const char *message, int progress)
{
	return db_run(db, "INSERT INTO machine_events (mac, time_ms, source,"
	    " state, message, progress) VALUES (?, ?, ?, ?, ?, ?)",
	    DB_TEXT(mac), DB_INT(clock_wall_ms()), DB_TEXT(source), DB_TEXT(state),
	    DB_TEXT(message), progress >= 0 ? DB_INT(progress) : DB_NULL) ==
	    DB_OK ? DB_OK : DB_ERR;
}

/* Only refresh a known machine's boot row this often: a boot storm of
 * the same machines must not turn every /dispatch into a write. */
#define BOOT_REFRESH_MS 10000

/* The boot of a machine not seen before, in the open transaction. */
static int
machine_create_locked(struct db *db, const struct boot_info *bi, int64_t now)
{
	if (db_run(db, "INSERT INTO machines (mac, state, uuid, serial, arch,"
	    " platform, ip, created_ms, updated_ms, last_boot_ms, boot_count,"
	    " boots) VALUES (?1, 'discovering', ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7,"
	    " 1, 1)",
	    DB_TEXT(bi->mac), DB_TEXT(bi->uuid), DB_TEXT(bi->serial),
	    DB_TEXT(bi->arch), DB_TEXT(bi->platform), DB_TEXT(bi->ip),
	    DB_INT(now)) != DB_OK)
		return DB_ERR;
	return db_event_add_locked(db, bi->mac, "discovering", "dispatch",
	    "first network boot: discovery image", -1);
}

/* The boot of a known machine: its boot data refreshed, in the open
 * transaction. */
static int
machine_reboot_locked(struct db *db, const struct boot_info *bi, int64_t now)
{
	return db_run(db, "UPDATE machines SET uuid = ?1, serial = ?2,"
	    " arch = ?3, platform = ?4, ip = CASE WHEN ?5 = '' THEN ip"
	    " ELSE ?5 END, last_boot_ms = ?6, boot_count = boot_count + 1,"
	    " boots = boots + 1 WHERE mac = ?7", DB_TEXT(bi->uuid), DB_TEXT(bi->serial),
	    DB_TEXT(bi->arch), DB_TEXT(bi->platform), DB_TEXT(bi->ip),
	    DB_INT(now), DB_TEXT(bi->mac)) == DB_OK ? DB_OK : DB_ERR;
}

int
db_machine_boot(struct db *db, const struct boot_info *bi,
    struct machine *out, int *created)
{
	struct machine m;
	int64_t now = clock_wall_ms();
	int rc, isnew = 0;

	/* Known and recently refreshed: answered without the writer. */
	if (reader_machine_get(db, bi->mac, &m) == DB_OK &&
	    now - m.last_boot_ms < BOOT_REFRESH_MS &&
	    strcmp(m.uuid, bi->uuid) == 0) {
		*created = 0;
		*out = m;
		return DB_OK;
	}
	if (db_begin(db) == -1)
		return DB_ERR;
	rc = db_machine_get_locked(db, bi->mac, &m);
	if (rc == DB_NOTFOUND) {
		isnew = 1;
		rc = machine_create_locked(db, bi, now);
	} else if (rc == DB_OK && (now - m.last_boot_ms >= BOOT_REFRESH_MS ||
	    strcmp(m.uuid, bi->uuid) != 0))
		rc = machine_reboot_locked(db, bi, now);
	if (rc == DB_OK)
		rc = db_machine_get_locked(db, bi->mac, &m);
	/* Only the first boot's commit carries an audit row, as before. */
	if ((rc = db_end(db, isnew, rc)) != DB_OK) {
		log_warnx("machine boot %s failed", bi->mac);
		return rc;
	}
	*created = isnew;
	*out = m;
	return DB_OK;
}

int
db_machine_transition(struct db *db, const char *mac, unsigned from,
    enum machine_state to, const char *source, const char *message)
{
	struct machine m;
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = db_machine_get_locked(db, mac, &m)) != DB_OK)
		goto out;
	if (from && !(from & (1u << m.state))) {
		rc = DB_CONFLICT;
		goto out;
	}
	if (db_run(db, "UPDATE machines SET state = ?1, updated_ms = ?2,"
	    " boot_count = CASE WHEN state = ?1 THEN boot_count ELSE 0 END"
	    " WHERE mac = ?3", DB_TEXT(machine_state_name(to)),
	    DB_INT(clock_wall_ms()), DB_TEXT(mac)) == DB_ERR) {
		rc = DB_ERR;
		goto out;
	}
	rc = db_event_add_locked(db, mac, machine_state_name(to), source,
	    message, -1);
out:
	return db_end(db, 1, rc);
}

int
db_machine_delete(struct db *db, const char *mac)
{
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = db_run(db, "DELETE FROM machines WHERE mac = ?",
	    DB_TEXT(mac))) == DB_OK && db_run(db, "DELETE FROM machine_events"
	    " WHERE mac = ?", DB_TEXT(mac)) == DB_ERR)
		rc = DB_ERR;
	return db_end(db, 1, rc);
}

static json_t *
machine_row_json(struct db_st *st)
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
machine_list_row(struct db_st *st)
{
	json_t *o = machine_row_json(st);

	if (!db_col_null(st, MACHINE_NCOLS))
		json_object_set_new(o, "summary", json_pack("{s:I, s:I, s:I, s:I}",
		    "cpu_threads",
		    (json_int_t)db_col_int64(st, MACHINE_NCOLS),
		    "memory_bytes",
		    (json_int_t)db_col_int64(st, MACHINE_NCOLS + 1),
		    "disks",
		    (json_int_t)db_col_int64(st, MACHINE_NCOLS + 2),
		    "nics",
		    (json_int_t)db_col_int64(st, MACHINE_NCOLS + 3)));
	return o;
}

int
db_machine_list(struct db *db, int state, json_t **out)
{
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, "SELECT " MACHINE_COLS ","
	    " h.cpu_threads, h.memory_bytes, h.disk_count, h.nic_count"
	    " FROM machines LEFT JOIN hardware h USING (mac)"
	    " WHERE ?1 = '' OR state = ?1 ORDER BY created_ms, mac",
	    DB_TEXT(state < 0 ? "" : machine_state_name(state))),
	    machine_list_row, out);
	db_unlock(db);
	return rc;
}

int
db_machine_json(struct db *db, const char *mac, json_t **out)
{
	struct db_st *st;
	json_t *o = NULL, *hw = NULL;
	int rc;

	db_lock(db);
	if ((st = db_stmt(db, "SELECT " MACHINE_COLS ", h.report,"
	    " h.updated_ms FROM machines LEFT JOIN hardware h USING (mac)"
	    " WHERE mac = ?", DB_TEXT(mac))) == NULL) {
		db_unlock(db);
		return DB_ERR;
	}
	rc = db_step(st);
	if (rc == DB_ROW) {
		o = machine_row_json(st);
		if (!db_col_null(st, MACHINE_NCOLS))
			hw = json_loads(db_col_text(st, MACHINE_NCOLS), 0,
			    NULL);
		json_object_set_new(o, "hardware", hw ? hw : json_null());
		json_object_set_new(o, "hardware_updated_at",
		    db_time_json(db_col_int64(st, MACHINE_NCOLS + 1)));
		json_object_set_new(o, "install", db_install_json_locked(db, mac));
		json_object_set_new(o, "agent", db_agent_json_for_mac_locked(db,
		    mac));
		rc = DB_OK;
	} else {
		rc = rc == DB_DONE ? DB_NOTFOUND : DB_ERR;
	}
	db_finalize(st);
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
event_row(struct db_st *st)
{
	json_t *o = json_pack("{s:I, s:o, s:s, s:s, s:s}",
	    "id", (json_int_t)db_col_int64(st, 0),
	    "time", db_time_json(db_col_int64(st, 1)),
	    "source", db_col_text(st, 2), "state", db_col_text(st, 3),
	    "message", db_col_text(st, 4));

	json_object_set_new(o, "progress", db_col_null(st, 5) ? json_null() : json_integer(db_col_int(st, 5)));
	return o;
}

int
db_events_json(struct db *db, const char *mac, int64_t after_id, int limit,
    json_t **out)
{
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, "SELECT id, time_ms, source, state,"
	    " message, progress FROM machine_events WHERE mac = ? AND id > ?"
	    " ORDER BY id LIMIT ?", DB_TEXT(mac), DB_INT(after_id),
	    DB_INT(limit)), event_row, out);
	db_unlock(db);
	return rc;
}

int
db_count_by_state(struct db *db, long counts[MS_NSTATES])
{
	struct db_st *st;
	long n[MS_NSTATES] = { 0 };
	int rc, s;

	db_lock(db);
	if ((st = db_stmt(db, "SELECT state, count(*) FROM machines"
	    " GROUP BY state")) == NULL) {
		db_unlock(db);
		return DB_ERR;
	}
	while ((rc = db_step(st)) == DB_ROW)
		if ((s = machine_state_from_name(db_col_text(st, 0))) >= 0)
			n[s] = (long)db_col_int64(st, 1);
	db_finalize(st);
	db_unlock(db);
	if (rc != DB_DONE)
		return DB_ERR;
	memcpy(counts, n, sizeof n);
	return DB_OK;
}
