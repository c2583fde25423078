/* db_agent.c — join tokens, agents and certificates, enrollment attempts,
 * jobs and their output. */
#define LOG_SUBSYS "db"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentcache.h"
#include "jobseen.h"
#include "b64.h"
#include "clock.h"
#include "db_agent.h"
#include "db_internal.h"
#include "log.h"


/* --- join tokens ------------------------------------------------------ */

static int
token_insert_locked(struct db *db, const char *id, const char *hash,
    const char *mac, int uses, int64_t expires_ms, int64_t install_id,
    const char *comment)
{
	return db_run(db, "INSERT INTO join_tokens (id, hash, mac, uses,"
	    " expires_ms, created_ms, install_id, comment)"
	    " VALUES (?, ?, ?, ?, ?, ?, nullif(?, 0), ?)", DB_TEXT(id),
	    DB_TEXT(hash), DB_TEXT(mac), DB_INT(uses), DB_INT(expires_ms),
	    DB_INT(clock_wall_ms()), DB_INT(install_id), DB_TEXT(comment));
}

int
db_token_create(struct db *db, const char *id, const char *hash,
    const char *mac, int uses, int64_t expires_ms, int64_t install_id,
    const char *comment)
{
	if (db_begin(db) == -1)
		return DB_ERR;
	return db_end(db, 1, token_insert_locked(db, id, hash, mac, uses,
	    expires_ms, install_id, comment));
}

int
db_token_install_create(struct db *db, int64_t install_id, const char *mac,
    const char *hash, int64_t expires_ms)
{
	char id[TOKEN_ID_LEN];
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	/* Tokens of the machine's earlier installs are of no use any more:
	 * no kickstart that is still to come carries them. */
	rc = db_run(db, "UPDATE join_tokens SET revoked_ms = ?1 WHERE mac = ?2"
	    " AND install_id IS NOT NULL AND install_id != ?3 AND"
	    " revoked_ms = 0 AND used < uses", DB_INT(clock_wall_ms()),
	    DB_TEXT(mac), DB_INT(install_id));
	if (rc == DB_ERR)
		goto out;
	/* The install's token is the first 16 hex of its first hash: a
	 * handle, not the secret. Its secret is replaced by each installer
	 * boot's kickstart (db_install_kickstart); its expiry never is. */
	snprintf(id, sizeof id, "%.16s", hash);
	rc = token_insert_locked(db, id, hash, mac, 1, expires_ms, install_id,
	    "install");
out:
	return db_end(db, 1, rc);
}

#define TOKEN_COLS "id, mac, uses, used, expires_ms, revoked_ms," \
	" coalesce(install_id, 0), created_ms, last_used_ms, comment"

static void
token_fill(struct db_st *st, void *p)
{
	struct join_token *t = p;

	memset(t, 0, sizeof *t);
	snprintf(t->id, sizeof t->id, "%s", db_col_text(st, 0));
	snprintf(t->mac, sizeof t->mac, "%s", db_col_text(st, 1));
	t->uses = db_col_int(st, 2);
	t->used = db_col_int(st, 3);
	t->expires_ms = db_col_int64(st, 4);
	t->revoked_ms = db_col_int64(st, 5);
	t->install_id = db_col_int64(st, 6);
}

int
db_token_by_hash(struct db *db, const char *hash, struct join_token *out)
{
	int rc;

	db_lock(db);
	rc = db_get_one(db, "SELECT " TOKEN_COLS " FROM join_tokens WHERE"
	    " hash = ?", hash, token_fill, out);
	db_unlock(db);
	return rc;
}

int
db_token_revoke(struct db *db, const char *id)
{
	if (db_begin(db) == -1)
		return DB_ERR;
	return db_end(db, 1, db_run(db, "UPDATE join_tokens SET revoked_ms = ?"
	    " WHERE id = ? AND revoked_ms = 0", DB_INT(clock_wall_ms()),
	    DB_TEXT(id)));
}

static json_t *
token_row(struct db_st *st)
{
	struct join_token t;
	const char *state;
	int64_t now = clock_wall_ms();

	token_fill(st, &t);
	state = t.revoked_ms ? "revoked" : t.used >= t.uses ? "used" :
	    t.expires_ms <= now ? "expired" : "active";
	return json_pack("{s:s, s:s, s:i, s:i, s:o, s:o, s:o, s:s, s:s, s:o}",
	    "id", t.id, "mac", t.mac, "uses", t.uses, "used", t.used,
	    "expires_at", db_time_json(t.expires_ms),
	    "created_at", db_time_json(db_col_int64(st, 7)),
	    "last_used_at", db_time_json(db_col_int64(st, 8)),
	    "comment", db_col_text(st, 9), "state", state,
	    "install_id", t.install_id ? json_integer(t.install_id) :
	    json_null());
}

int
db_token_list(struct db *db, json_t **out)
{
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, "SELECT " TOKEN_COLS " FROM"
	    " join_tokens ORDER BY created_ms DESC, id"), token_row, out);
	db_unlock(db);
	return rc;
}

int
db_enroll_attempt(struct db *db, const char *addr, const char *token_id,
    const char *mac, const char *hostname, const char *agent_id,
    const char *result, const char *message)
{
	int rc;

	/* Not an audited change: the request's audit row says how the
	 * enrollment ended, after it ended. */
	db_lock(db);
	rc = db_run(db, "INSERT INTO enroll_attempts (time_ms, addr,"
	    " token_id, mac, hostname, agent_id, result, message)"
	    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", DB_INT(clock_wall_ms()),
	    DB_TEXT(addr), DB_TEXT(token_id), DB_TEXT(mac), DB_TEXT(hostname),
	    DB_TEXT(agent_id), DB_TEXT(result), DB_TEXT(message));
	db_unlock(db);
	return rc == DB_ERR ? DB_ERR : DB_OK;
}

/* --- agents ----------------------------------------------------------- */

static int
cert_insert_locked(struct db *db, const char *agent_id,
    const struct ca_issued *c)
{
	return db_run(db, "INSERT INTO certificates (serial, agent_id,"
	    " not_before_ms, not_after_ms, created_ms) VALUES (?, ?, ?, ?, ?)",
	    DB_TEXT(c->serial), DB_TEXT(agent_id), DB_INT(c->not_before_ms),
	    DB_INT(c->not_after_ms), DB_INT(clock_wall_ms()));
}

static int
revoke_locked(struct db *db, const char *where, const char *key,
    const char *reason)
{
	char sql[512];
	int64_t now = clock_wall_ms();
	int rc1, rc2;

	snprintf(sql, sizeof sql, "UPDATE certificates SET revoked_ms = ?1"
	    " WHERE revoked_ms = 0 AND agent_id IN (SELECT id FROM agents"
	    " WHERE revoked_ms = 0 AND %s = ?2)", where);
	if ((rc1 = db_run(db, sql, DB_INT(now), DB_TEXT(key))) == DB_ERR)
		return DB_ERR;
	snprintf(sql, sizeof sql, "UPDATE agents SET revoked_ms = ?1,"
	    " revoked_reason = ?3 WHERE revoked_ms = 0 AND %s = ?2", where);
	if ((rc2 = db_run(db, sql, DB_INT(now), DB_TEXT(key),
	    DB_TEXT(reason))) == DB_ERR)
		return DB_ERR;
	/* Rows changed: their cached yes ends at db_unlock, after the
	 * commit. */
	if (rc1 == DB_OK || rc2 == DB_OK)
		db->agents_dirty = 1;
	return DB_OK;
}

/*
 * Whether the token of e may enroll an agent for e->mac, in the open
 * transaction. Only the MAC's own install token may replace a live agent
 * of that MAC (the install that is replacing the node); a token bound to
 * no MAC may not take the MAC of an installed or active machine either,
 * even with its agent revoked: an operator re-enrolls such a node with a
 * token bound to its MAC. DB_DENIED otherwise.
 */
static int
enroll_mac_free_locked(struct db *db, const struct enrollment *e)
{
	struct join_token t;
	struct machine m;
	struct db_st *st;
	int rc, live, install_token;

	if ((rc = db_get_one(db, "SELECT " TOKEN_COLS " FROM join_tokens"
	    " WHERE id = ?", e->token_id, token_fill, &t)) != DB_OK)
		return rc == DB_NOTFOUND ? DB_CONFLICT : rc;
	install_token = t.install_id != 0 && strcmp(t.mac, e->mac) == 0;
	if (install_token)
		return DB_OK;
	if ((st = db_stmt(db, "SELECT 1 FROM agents WHERE mac = ? AND"
	    " revoked_ms = 0", DB_TEXT(e->mac))) == NULL)
		return DB_ERR;
	rc = db_step(st);
	db_finalize(st);
	if (rc != DB_ROW && rc != DB_DONE)
		return DB_ERR;
	live = rc == DB_ROW;
	if (live)
		return DB_DENIED;
	if (t.mac[0] == '\0' && (rc = db_machine_get_locked(db, e->mac, &m)) ==
	    DB_OK && (m.state == MS_INSTALLED || m.state == MS_ACTIVE))
		return DB_DENIED;
	return rc == DB_ERR ? DB_ERR : DB_OK;
}

int
db_agent_enroll(struct db *db, const struct enrollment *e, int *activated)
{
	struct machine m;
	int64_t now = clock_wall_ms();
	int rc, act = 0;

	if (db_begin(db) == -1)
		return DB_ERR;
	if (e->mac[0] && (rc = enroll_mac_free_locked(db, e)) != DB_OK)
		goto out;
	rc = db_run(db, "UPDATE join_tokens SET used = used + 1,"
	    " last_used_ms = ?1 WHERE id = ?2 AND used < uses AND"
	    " revoked_ms = 0 AND expires_ms > ?1", DB_INT(now),
	    DB_TEXT(e->token_id));
	if (rc != DB_OK) {
		if (rc == DB_NOTFOUND)
			rc = DB_CONFLICT;
		goto out;
	}
	if (e->mac[0] && (rc = revoke_locked(db, "mac", e->mac,
	    "re-enrolled")) != DB_OK)
		goto out;
	if ((rc = db_run(db, "INSERT INTO agents (id, mac, hostname,"
	    " token_id, enrolled_ms, enrolled_addr, last_seen_ms, last_addr,"
	    " inventory, inventory_ms, cert_serial, cert_not_after_ms)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?6, ?7, ?5, ?8, ?9)",
	    DB_TEXT(e->agent_id), DB_TEXT(e->mac), DB_TEXT(e->hostname),
	    DB_TEXT(e->token_id), DB_INT(now), DB_TEXT(e->addr),
	    DB_TEXT(e->inventory ? e->inventory : "{}"),
	    DB_TEXT(e->cert.serial), DB_INT(e->cert.not_after_ms))) != DB_OK ||
	    (rc = cert_insert_locked(db, e->agent_id, &e->cert)) != DB_OK)
		goto out;
	if (e->mac[0] && db_machine_get_locked(db, e->mac, &m) == DB_OK) {
		char msg[400];

		snprintf(msg, sizeof msg, "agent %s enrolled as %s from %s",
		    e->agent_id, e->hostname, e->addr);
		if (m.state == MS_INSTALLED) {
			if ((rc = db_run(db, "UPDATE machines SET state ="
			    " 'active', updated_ms = ? WHERE mac = ?",
			    DB_INT(now), DB_TEXT(e->mac))) != DB_OK)
				goto out;
			act = 1;
		}
		rc = db_event_add_locked(db, e->mac, act ? "active" :
		    machine_state_name(m.state), "agent", msg, -1);
	}
out:
	if ((rc = db_end(db, 1, rc)) == DB_OK)
		*activated = act;
	return rc;
}

#define AGENT_COLS "id, mac, hostname, enrolled_ms, last_seen_ms," \
	" cert_not_after_ms, revoked_ms, cert_serial"

static void
agent_fill(struct db_st *st, void *p)
{
	struct agent *a = p;

	memset(a, 0, sizeof *a);
	snprintf(a->id, sizeof a->id, "%s", db_col_text(st, 0));
	snprintf(a->mac, sizeof a->mac, "%s", db_col_text(st, 1));
	snprintf(a->hostname, sizeof a->hostname, "%s", db_col_text(st, 2));
	a->enrolled_ms = db_col_int64(st, 3);
	a->last_seen_ms = db_col_int64(st, 4);
	a->cert_not_after_ms = db_col_int64(st, 5);
	a->revoked_ms = db_col_int64(st, 6);
	snprintf(a->cert_serial, sizeof a->cert_serial, "%s", db_col_text(st, 7));
}

int
db_agent_get(struct db *db, const char *id, struct agent *out)
{
	int rc;

	db_lock(db);
	rc = db_get_one(db, "SELECT " AGENT_COLS " FROM agents WHERE id = ?", id,
	    agent_fill, out);
	db_unlock(db);
	return rc;
}

void
db_agent_cache_max_age(struct db *db, int64_t max_age_ms)
{
	agentcache_max_age(db->agents, max_age_ms);
}

int
db_agent_cert_check(struct db *db, const char *id, const char *serial)
{
	int64_t not_after;

	/* A read (cached): not the writer, nor the heartbeats it would
	 * write first. */
	return db_reader_agent_cert(db, id, serial, &not_after);
}

int
db_agent_inventory(struct db *db, const char *id, const char *inventory)
{
	int rc;

	db_lock(db);
	rc = db_run(db, "UPDATE agents SET last_seen_ms = ?2,"
	    " inventory_ms = ?2, inventory = ?3 WHERE id = ?1", DB_TEXT(id),
	    DB_INT(clock_wall_ms()), DB_TEXT(inventory));
	db_unlock(db);
	return rc;
}

int
db_agent_cert_add(struct db *db, const char *id, const struct ca_issued *c)
{
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = cert_insert_locked(db, id, c)) == DB_OK)
		rc = db_run(db, "UPDATE agents SET cert_serial = ?,"
		    " cert_not_after_ms = ? WHERE id = ? AND revoked_ms = 0",
		    DB_TEXT(c->serial), DB_INT(c->not_after_ms), DB_TEXT(id));
	db->agents_dirty = 1;	/* the agent's expiry, in cached answers */
	return db_end(db, 1, rc);
}

int
db_agent_revoke(struct db *db, const char *id, const char *reason)
{
	struct agent a;
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = db_get_one(db, "SELECT " AGENT_COLS " FROM agents WHERE"
	    " id = ?", id, agent_fill, &a)) == DB_OK) {
		if (a.revoked_ms == 0)
			rc = revoke_locked(db, "id", id, reason);
		if (rc == DB_OK && a.revoked_ms == 0 && a.mac[0]) {
			char msg[200];

			snprintf(msg, sizeof msg, "agent %s revoked: %s", id,
			    reason);
			struct machine m;

			if (db_machine_get_locked(db, a.mac, &m) == DB_OK)
				rc = db_event_add_locked(db, a.mac,
				    machine_state_name(m.state), "agent", msg, -1);
		}
	}
	return db_end(db, 1, rc);
}

int
db_agent_resolve(struct db *db, const char *target, char id[AGENT_ID_LEN])
{
	char mac[MAC_STRLEN], found[AGENT_ID_LEN] = "";
	struct db_st *st;
	int rc, n = 0;

	db_lock(db);
	if (mac_normalize(target, mac) == 0)
		st = db_stmt(db, "SELECT id FROM agents WHERE mac = ?1"
		    " ORDER BY revoked_ms = 0 DESC, enrolled_ms DESC LIMIT 1",
		    DB_TEXT(mac));
	else
		st = db_stmt(db, "SELECT id FROM agents WHERE id = ?1 UNION ALL"
		    " SELECT * FROM (SELECT id FROM agents WHERE hostname = ?1 AND"
		    " revoked_ms = 0 AND NOT EXISTS (SELECT 1 FROM agents WHERE"
		    " id = ?1) ORDER BY enrolled_ms DESC LIMIT 2) AS by_name",
		    DB_TEXT(target));
	if (st == NULL) {
		db_unlock(db);
		return DB_ERR;
	}
	while ((rc = db_step(st)) == DB_ROW)
		if (n++ == 0)
			snprintf(found, sizeof found, "%s", db_col_text(st, 0));
	db_finalize(st);
	db_unlock(db);
	if (rc != DB_DONE)
		return DB_ERR;
	if (n != 1)
		return n == 0 ? DB_NOTFOUND : DB_CONFLICT;
	memcpy(id, found, AGENT_ID_LEN);
	return DB_OK;
}

/* stale: an SQL truth value, or NULL to leave "stale" out. */
#define AGENT_JSON_COLS(stale) AGENT_COLS ", heartbeat, last_addr," \
	" enrolled_addr, token_id, revoked_reason, inventory_ms, " stale
#define AGENT_STALE(param) "(revoked_ms = 0 AND last_seen_ms < " param ")"

static json_t *
agent_row(struct db_st *st)
{
	struct agent a;
	json_t *hb, *o;

	agent_fill(st, &a);
	if ((hb = json_loads(db_col_text(st, 8), 0, NULL)) == NULL)
		hb = json_object();
	o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:s, s:o, s:s,"
	    " s:s, s:s, s:o, s:o, s:b}",
	    "id", a.id, "mac", a.mac, "hostname", a.hostname,
	    "enrolled_at", db_time_json(a.enrolled_ms),
	    "last_heartbeat_at", db_time_json(a.last_seen_ms),
	    "last_addr", db_col_text(st, 9),
	    "cert_expires_at", db_time_json(a.cert_not_after_ms),
	    "cert_serial", a.cert_serial,
	    "revoked_at", db_time_json(a.revoked_ms),
	    "enrolled_addr", db_col_text(st, 10),
	    "token_id", db_col_text(st, 11),
	    "revoked_reason", db_col_text(st, 12),
	    "heartbeat", hb,
	    "inventory_at", db_time_json(db_col_int64(st, 13)),
	    "revoked", a.revoked_ms != 0);
	if (o && !db_col_null(st, 14))
		json_object_set_new(o, "stale", json_boolean(
		    db_col_int(st, 14)));
	return o;
}

int
db_agent_list(struct db *db, int64_t stale_before_ms, json_t **out)
{
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, "SELECT " AGENT_JSON_COLS(
	    AGENT_STALE("?1")) " FROM agents ORDER BY enrolled_ms, id",
	    DB_INT(stale_before_ms)), agent_row, out);
	db_unlock(db);
	return rc;
}

int
db_agent_json(struct db *db, const char *id, int64_t stale_before_ms,
    json_t **out)
{
	struct db_st *st;
	json_t *o = NULL, *inv;
	int rc;

	db_lock(db);
	if ((st = db_stmt(db, "SELECT " AGENT_JSON_COLS(AGENT_STALE("?2"))
	    ", inventory FROM agents WHERE id = ?1", DB_TEXT(id),
	    DB_INT(stale_before_ms))) == NULL) {
		db_unlock(db);
		return DB_ERR;
	}
	rc = db_step(st);
	if (rc == DB_ROW) {
		o = agent_row(st);
		if ((inv = json_loads(db_col_text(st, 15), 0, NULL)) == NULL)
			inv = json_object();
		json_object_set_new(o, "inventory", inv);
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

json_t *
db_agent_json_for_mac_locked(struct db *db, const char *mac)
{
	struct db_st *st;
	json_t *o = NULL;

	if ((st = db_stmt(db, "SELECT " AGENT_JSON_COLS("NULL") " FROM agents"
	    " WHERE mac = ? ORDER BY revoked_ms = 0 DESC, enrolled_ms DESC"
	    " LIMIT 1", DB_TEXT(mac))) == NULL)
		return json_null();
	if (db_step(st) == DB_ROW) {
		o = agent_row(st);
		json_object_set_new(o, "enrolled", json_true());
	}
	db_finalize(st);
	return o ? o : json_null();
}

int
db_revoked_certs(struct db *db, struct ca_revoked **out, size_t *n)
{
	struct ca_revoked *v = NULL;
	struct db_st *st = NULL;
	int64_t now = clock_wall_ms();
	size_t len = 0, cap = 0;
	int rc = DB_ERR;

	db_lock(db);
	/* Expired certificates need not be listed any more. */
	if ((st = db_stmt(db, "SELECT count(*) FROM certificates WHERE"
	    " revoked_ms != 0 AND not_after_ms > ?", DB_INT(now))) == NULL)
		goto out;
	if (db_step(st) != DB_ROW)
		goto out;
	cap = (size_t)db_col_int64(st, 0);
	db_finalize(st);
	st = NULL;
	if ((v = calloc(cap + 1, sizeof *v)) == NULL ||
	    (st = db_stmt(db, "SELECT serial, revoked_ms FROM certificates"
	    " WHERE revoked_ms != 0 AND not_after_ms > ? ORDER BY serial",
	    DB_INT(now))) == NULL)
		goto out;
	while (len < cap && db_step(st) == DB_ROW) {
		snprintf(v[len].serial, sizeof v[len].serial, "%s",
		    db_col_text(st, 0));
		v[len++].revoked_ms = db_col_int64(st, 1);
	}
	*out = v;
	*n = len;
	v = NULL;
	rc = DB_OK;
out:
	db_finalize(st);
	db_unlock(db);
	free(v);
	return rc;
}

/* --- jobs ------------------------------------------------------------- */

int
db_job_create(struct db *db, const char *agent_id, const char *kind,
    const char *args, int64_t not_after_ms, const char *created_by,
    int64_t *id)
{
	int rc;

	/* Not audited yet: the job is real once sealed (or failed), and
	 * that commit carries the audit row. */
	db_lock(db);
	if ((rc = db_run(db, "INSERT INTO jobs (agent_id, kind, args,"
	    " not_after_ms, status, created_by, created_ms)"
	    " VALUES (?, ?, ?, ?, 'new', ?, ?)", DB_TEXT(agent_id),
	    DB_TEXT(kind), DB_TEXT(args), DB_INT(not_after_ms),
	    DB_TEXT(created_by), DB_INT(clock_wall_ms()))) == DB_OK)
		*id = db_last_id(db);
	db_unlock(db);
	return rc;
}

int
db_job_seal(struct db *db, int64_t id, const char *envelope, const char *sig,
    const char *key_id)
{
	char agent_id[AGENT_ID_LEN] = "";
	struct db_st *st;
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	rc = db_run(db, "UPDATE jobs SET envelope = ?, sig = ?, key_id = ?,"
	    " status = 'queued' WHERE id = ? AND status = 'new'",
	    DB_TEXT(envelope), DB_TEXT(sig), DB_TEXT(key_id), DB_INT(id));
	/* The job is announced with the commit (PostgreSQL delivers a
	 * NOTIFY made in a transaction at its commit, or never): the
	 * agent's long poll on any bastion asks again (jobseen.h). */
	if (rc == DB_OK) {
		if ((st = db_stmt(db, db_is_pg(db) ? "SELECT agent_id,"
		    " pg_notify('bastion', 'w:' || agent_id) FROM jobs WHERE"
		    " id = ?" : "SELECT agent_id, 0 FROM jobs WHERE id = ?",
		    DB_INT(id))) == NULL)
			rc = DB_ERR;
		else if (db_step(st) == DB_ROW)
			snprintf(agent_id, sizeof agent_id, "%s",
			    db_col_text(st, 0));
		else
			rc = DB_ERR;
		db_finalize(st);
	}
	rc = db_end(db, 1, rc);
	/* Here, before anything wakes its long polls. */
	if (rc == DB_OK)
		jobseen_woke(db->jobs, agent_id);
	return rc;
}

int
db_job_fail(struct db *db, int64_t id, const char *error)
{
	if (db_begin(db) == -1)
		return DB_ERR;
	return db_end(db, 1, db_run(db, "UPDATE jobs SET status = 'failed',"
	    " error = ?, finished_ms = ? WHERE id = ?", DB_TEXT(error),
	    DB_INT(clock_wall_ms()), DB_INT(id)));
}

/*
 * A job is delivered again when the agent did not show that it got it
 * (no start, output or result) within JOB_REDELIVER_MS: the long poll's
 * answer may have gone to a connection the agent had already closed.
 * The agent's nonce memory makes a second delivery harmless. ?3 is
 * now - JOB_REDELIVER_MS.
 */
#define JOB_REDELIVER_MS	10000
#define DELIVERABLE "(status = 'queued' OR (status = 'sent' AND" \
	" sent_ms < ?3 AND started_ms = 0))"

static json_t *
take_row(struct db_st *st)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s}",
	    "id", (json_int_t)db_col_int64(st, 0),
	    "kind", db_col_text(st, 1), "envelope", db_col_text(st, 2),
	    "sig", db_col_text(st, 3), "key_id", db_col_text(st, 4));
}

int
db_jobs_take(struct db *db, const char *agent_id, int max, int fresh,
    json_t **out)
{
	json_t *arr = NULL;
	int64_t now = clock_wall_ms();
	/* DELIVERABLE's ?3: sent before it and not started: send again. */
	int64_t cutoff = fresh ? now : now - JOB_REDELIVER_MS;
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if (db_run(db, "UPDATE jobs SET status = 'expired',"
	    " error = 'not delivered before it expired', finished_ms = ?1"
	    " WHERE agent_id = ?2 AND status = 'queued' AND not_after_ms <= ?1",
	    DB_INT(now), DB_TEXT(agent_id)) == DB_ERR) {
		rc = DB_ERR;
		goto out;
	}
	if ((rc = db_rows_json(db, db_stmt(db, "SELECT id, kind, envelope, sig,"
	    " key_id FROM jobs WHERE agent_id = ?1 AND " DELIVERABLE " ORDER BY"
	    " id LIMIT ?2", DB_TEXT(agent_id), DB_INT(max), DB_INT(cutoff)),
	    take_row, &arr)) != DB_OK)
		goto out;
	if (json_array_size(arr) > 0 && db_run(db, "UPDATE jobs SET status ="
	    " 'sent', sent_ms = ?4 WHERE id IN (SELECT id FROM jobs WHERE"
	    " agent_id = ?1 AND " DELIVERABLE " ORDER BY id LIMIT ?2)",
	    DB_TEXT(agent_id), DB_INT(max), DB_INT(cutoff), DB_INT(now)) ==
	    DB_ERR)
		rc = DB_ERR;
out:
	rc = db_end(db, 1, rc);
	if (rc == DB_OK)
		*out = arr;
	else
		json_decref(arr);
	return rc;
}

int
db_jobs_waiting(struct db *db, const char *agent_id, int fresh,
    uint64_t *quiet)
{
	uint64_t mark;
	int64_t outstanding = 0;
	int deliverable = 0;

	*quiet = 0;
	if ((mark = jobseen_quiet(db->jobs, agent_id, clock_mono_ms())) != 0) {
		*quiet = mark;
		return 0;
	}
	mark = jobseen_mark(db->jobs);		/* before the read */
	/* Heartbeats waiting to be written change no job: the read
	 * connection, not the writer and its lock. */
	if (db_reader_jobs(db, agent_id, clock_wall_ms() -
	    (fresh ? 0 : JOB_REDELIVER_MS), &deliverable, &outstanding) !=
	    DB_OK)
		return 0;
	if (deliverable)
		return 1;
	/* A job sent but not started comes due by the clock, unannounced:
	 * not quiet. */
	if (outstanding == 0) {
		jobseen_quiet_put(db->jobs, agent_id, mark, clock_mono_ms());
		*quiet = jobseen_since(db->jobs, agent_id, mark) ? mark : 0;
	}
	return 0;
}

int
db_jobs_quiet(struct db *db, const char *agent_id, uint64_t quiet)
{
	if (!jobseen_since(db->jobs, agent_id, quiet))
		return 0;
	jobseen_count_quiet(db->jobs);
	return 1;
}

/* The job's status if it belongs to agent_id. Caller holds the lock. */
static int
job_owned_locked(struct db *db, const char *agent_id, int64_t id,
    char status[16], int64_t *bytes)
{
	struct db_st *st;
	int rc;

	if ((st = db_stmt(db, "SELECT status, output_bytes FROM jobs WHERE"
	    " id = ? AND agent_id = ?", DB_INT(id), DB_TEXT(agent_id))) == NULL)
		return DB_ERR;
	rc = db_step(st);
	if (rc == DB_ROW) {
		snprintf(status, 16, "%s", db_col_text(st, 0));
		*bytes = db_col_int64(st, 1);
		rc = DB_OK;
	} else {
		rc = rc == DB_DONE ? DB_NOTFOUND : DB_ERR;
	}
	db_finalize(st);
	return rc;
}

static int
job_finished(const char *status)
{
	return strcmp(status, "done") == 0 || strcmp(status, "failed") == 0 ||
	    strcmp(status, "refused") == 0 || strcmp(status, "expired") == 0;
}

int
db_job_started(struct db *db, const char *agent_id, int64_t id)
{
	char status[16];
	int64_t bytes;
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = job_owned_locked(db, agent_id, id, status, &bytes)) == DB_OK &&
	    (strcmp(status, "sent") == 0 || strcmp(status, "queued") == 0)) {
		rc = db_run(db, "UPDATE jobs SET status = 'running',"
		    " started_ms = ? WHERE id = ?", DB_INT(clock_wall_ms()),
		    DB_INT(id));
	}
	return db_end(db, 1, rc);
}

int
db_job_output(struct db *db, const char *agent_id, int64_t id, int64_t seq,
    const char *stream, const void *data, size_t len)
{
	char status[16];
	int64_t bytes;
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = job_owned_locked(db, agent_id, id, status, &bytes)) != DB_OK)
		goto out;
	if (bytes + (int64_t)len > JOB_MAX_OUTPUT)
		goto out;	/* dropped: the cap is documented */
	/* A chunk seen before (the same seq) is not counted again. */
	if ((rc = db_run(db, "INSERT INTO job_output (job_id, seq, stream,"
	    " data, time_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
	    DB_INT(id),
	    DB_INT(seq), DB_TEXT(stream), DB_BLOB(data, len),
	    DB_INT(clock_wall_ms()))) != DB_OK) {
		if (rc == DB_NOTFOUND)
			rc = DB_OK;
		goto out;
	}
	if (db_run(db, "UPDATE jobs SET output_bytes = output_bytes + ?1,"
	    " status = CASE WHEN status IN ('sent', 'queued') THEN 'running'"
	    " ELSE status END, started_ms = CASE WHEN started_ms = 0 THEN ?2"
	    " ELSE started_ms END WHERE id = ?3", DB_INT(len),
	    DB_INT(clock_wall_ms()), DB_INT(id)) == DB_ERR)
		rc = DB_ERR;
out:
	return db_end(db, 1, rc);
}

int
db_job_result(struct db *db, const char *agent_id, int64_t id,
    const struct job_result *res)
{
	char status[16];
	int64_t bytes;
	int rc;

	if (db_begin(db) == -1)
		return DB_ERR;
	if ((rc = job_owned_locked(db, agent_id, id, status, &bytes)) != DB_OK ||
	    job_finished(status))
		goto out;
	rc = db_run(db, "UPDATE jobs SET status = ?1, exit_code = ?2,"
	    " signal = ?3, timed_out = ?4, duration_ms = ?5, error = ?6,"
	    " finished_ms = ?7 WHERE id = ?8", DB_TEXT(res->status),
	    res->has_exit ? DB_INT(res->exit_code) : DB_NULL,
	    res->has_signal ? DB_INT(res->signal) : DB_NULL,
	    DB_INT(res->timed_out),
	    res->duration_ms >= 0 ? DB_INT(res->duration_ms) : DB_NULL,
	    DB_TEXT(res->error), DB_INT(clock_wall_ms()), DB_INT(id)) == DB_ERR ?
	    DB_ERR : DB_OK;
out:
	return db_end(db, 1, rc);
}

#define JOB_COLS "j.id, j.agent_id, j.kind, j.args, j.status, j.created_by," \
	" j.created_ms, j.sent_ms, j.started_ms, j.finished_ms, j.exit_code," \
	" j.signal, j.timed_out, j.duration_ms, j.error, j.output_bytes," \
	" j.not_after_ms, coalesce(a.hostname, ''), coalesce(a.mac, '')"

static json_t *
int_or_null(struct db_st *st, int i)
{
	return db_col_null(st, i) ? json_null() :
	    json_integer(db_col_int64(st, i));
}

static json_t *
job_row(struct db_st *st)
{
	json_t *args = json_loads(db_col_text(st, 3), 0, NULL);

	return json_pack("{s:I, s:s, s:s, s:o, s:s, s:s, s:o, s:o, s:o, s:o,"
	    " s:o, s:o, s:b, s:o, s:s, s:I, s:o, s:s, s:s}",
	    "id", (json_int_t)db_col_int64(st, 0),
	    "agent_id", db_col_text(st, 1), "kind", db_col_text(st, 2),
	    "args", args ? args : json_object(),
	    "status", db_col_text(st, 4), "created_by", db_col_text(st, 5),
	    "created_at", db_time_json(db_col_int64(st, 6)),
	    "sent_at", db_time_json(db_col_int64(st, 7)),
	    "started_at", db_time_json(db_col_int64(st, 8)),
	    "finished_at", db_time_json(db_col_int64(st, 9)),
	    "exit_code", int_or_null(st, 10), "signal", int_or_null(st, 11),
	    "timed_out", db_col_int(st, 12) != 0,
	    "duration_ms", int_or_null(st, 13), "error", db_col_text(st, 14),
	    "output_bytes", (json_int_t)db_col_int64(st, 15),
	    "not_after", db_time_json(db_col_int64(st, 16)),
	    "hostname", db_col_text(st, 17), "mac", db_col_text(st, 18));
}

int
db_job_json(struct db *db, int64_t id, json_t **out)
{
	json_t *arr = NULL;
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, "SELECT " JOB_COLS " FROM jobs j"
	    " LEFT JOIN agents a ON a.id = j.agent_id WHERE j.id = ?",
	    DB_INT(id)), job_row, &arr);
	db_unlock(db);
	if (rc != DB_OK)
		return rc;
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return DB_NOTFOUND;
	}
	*out = json_incref(json_array_get(arr, 0));
	json_decref(arr);
	return DB_OK;
}

int
db_job_list(struct db *db, const char *agent_id, int limit, json_t **out)
{
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, "SELECT " JOB_COLS " FROM jobs j"
	    " LEFT JOIN agents a ON a.id = j.agent_id WHERE ?1 = '' OR"
	    " j.agent_id = ?1 ORDER BY j.id DESC LIMIT ?2", DB_TEXT(agent_id),
	    DB_INT(limit)), job_row, out);
	db_unlock(db);
	return rc;
}

static json_t *
output_row(struct db_st *st)
{
	size_t len;
	const void *data = db_col_blob(st, 2, &len);
	char *b = b64_encode(data, len);
	json_t *o = json_pack("{s:I, s:s, s:s, s:o}",
	    "seq", (json_int_t)db_col_int64(st, 0),
	    "stream", db_col_text(st, 1), "data", b ? b : "",
	    "time", db_time_json(db_col_int64(st, 3)));

	free(b);
	return o;
}

int
db_job_output_json(struct db *db, int64_t id, int64_t after, int limit,
    json_t **out)
{
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, "SELECT seq, stream, data, time_ms"
	    " FROM job_output WHERE job_id = ? AND seq > ? ORDER BY seq"
	    " LIMIT ?", DB_INT(id), DB_INT(after), DB_INT(limit)), output_row,
	    out);
	db_unlock(db);
	return rc;
}
