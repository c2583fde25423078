/* db_agent.h — join tokens, agents, their certificates, enrollment
 * attempts, jobs and job output (db_agent.c). Same rules as db.h: every
 * function is thread-safe, returns enum db_rc, writes out-parameters only
 * on DB_OK. */
#ifndef BASTION_DB_AGENT_H
#define BASTION_DB_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ca.h"
#include "db.h"
#include "mac.h"

#define TOKEN_ID_LEN	17	/* 16 hex: the public handle of a token */
#define AGENT_ID_LEN	33	/* "a" + 20 hex, room to spare */
#define JOB_MAX_OUTPUT	(16L * 1024 * 1024)	/* stored per job */

/* An API timestamp, JSON null for 0; and as
 * text (2026-12-06T00:45:00.000Z). */
#define DB_TIME_LEN	64
json_t	*db_time_json(int64_t ms);
void	 db_time_str(int64_t ms, char out[DB_TIME_LEN]);

struct join_token {
	char	id[TOKEN_ID_LEN];
	char	mac[MAC_STRLEN];	/* "" = any machine */
	int	uses, used;
	int64_t	expires_ms, revoked_ms;
	int64_t	install_id;		/* 0 = made by an operator */
};

/* A new token: hash is the SHA-256 hex of the secret. */
int	db_token_create(struct db *, const char *id, const char *hash,
	    const char *mac, int uses, int64_t expires_ms, int64_t install_id,
	    const char *comment);
/* The token of a newly queued install: bound to mac, one use, dead at
 * expires_ms (fixed: db_install_kickstart gives it new secrets, never a
 * new lifetime). The tokens of the machine's earlier installs are
 * revoked. */
int	db_token_install_create(struct db *, int64_t install_id,
	    const char *mac, const char *hash, int64_t expires_ms);
int	db_token_by_hash(struct db *, const char *hash, struct join_token *);
int	db_token_revoke(struct db *, const char *id);
/* JSON array of tokens (never the hash), newest first, each with a
 * "state": active, used, expired or revoked. */
int	db_token_list(struct db *, json_t **out);

/* Every attempt, good or bad. */
int	db_enroll_attempt(struct db *, const char *addr, const char *token_id,
	    const char *mac, const char *hostname, const char *agent_id,
	    const char *result, const char *message);

struct enrollment {
	char		 agent_id[AGENT_ID_LEN];
	char		 token_id[TOKEN_ID_LEN];
	char		 mac[MAC_STRLEN];
	char		 hostname[254];
	char		 addr[64];
	const char	*inventory;	/* JSON text or NULL */
	struct ca_issued cert;
};

/*
 * In one transaction: check that the token may take e->mac (only the
 * MAC's install token may replace its live agent; a token bound to no MAC
 * may not take the MAC of an installed or active machine: else
 * DB_DENIED), consume one use of the token (still valid, not
 * revoked, uses left: else DB_CONFLICT), create the agent and its
 * certificate, retire earlier agents of the same MAC (revoked, reason
 * "re-enrolled"), and move the machine with that MAC from installed to
 * active with an event. *machine_state_changed says whether it moved.
 */
int	db_agent_enroll(struct db *, const struct enrollment *,
	    int *activated);

struct agent {
	char	id[AGENT_ID_LEN];
	char	mac[MAC_STRLEN];
	char	hostname[254];
	int64_t	enrolled_ms, last_seen_ms, cert_not_after_ms, revoked_ms;
	char	cert_serial[CA_SERIAL_LEN];
};

int	db_agent_get(struct db *, const char *id, struct agent *);
/*
 * The certificate `serial` presented by agent `id`: DB_OK when both the
 * agent and that certificate are known and not revoked, DB_CONFLICT when
 * either is revoked, DB_NOTFOUND when unknown.
 */
/* The certificate cache's bound on a change made behind bastion's back
 * (agentcache.h), from now on (tests make it short). */
void	db_agent_cache_max_age(struct db *, int64_t max_age_ms);
int	db_agent_cert_check(struct db *, const char *id, const char *serial);
/* Record a heartbeat (JSON text) and the peer's address, if the agent
 * and its certificate `serial` are known and unrevoked (DB_NOTFOUND or
 * DB_CONFLICT otherwise, as db_agent_cert_check); *cert_not_after_ms gets
 * the agent's current certificate's expiry. Written behind
 * (db_heartbeat.c): within 100 ms, before this bastion's next use of the
 * database's writer, and at db_close. */
int	db_agent_heartbeat(struct db *, const char *id, const char *serial,
	    const char *addr, const char *heartbeat, int64_t *cert_not_after_ms);
int	db_agent_inventory(struct db *, const char *id, const char *inventory);
/* A renewed certificate becomes the agent's current one. */
int	db_agent_cert_add(struct db *, const char *id,
	    const struct ca_issued *);
/* Revoke the agent and all its certificates. DB_NOTFOUND. */
int	db_agent_revoke(struct db *, const char *id, const char *reason);
/* An agent id from an id, a host name or a MAC (the newest unrevoked
 * match). DB_NOTFOUND, or DB_CONFLICT when a host name is ambiguous. */
int	db_agent_resolve(struct db *, const char *target,
	    char id[AGENT_ID_LEN]);
/* With "stale": true for unrevoked agents last heard of before
 * stale_before_ms. */
int	db_agent_list(struct db *, int64_t stale_before_ms, json_t **out);
int	db_agent_json(struct db *, const char *id, int64_t stale_before_ms,
	    json_t **out);
/* Revoked certificate serials for the CRL (malloc'd array) and a number
 * that changes whenever the list does. */
int	db_revoked_certs(struct db *, struct ca_revoked **out, size_t *n);

/* The agent of the machine with this MAC as JSON, or JSON null. Caller
 * holds the lock (db_machine_json). */
json_t	*db_agent_json_for_mac_locked(struct db *, const char *mac);

/* --- jobs ------------------------------------------------------------ */

/* A job row with status "new": the caller signs its envelope next. */
int	db_job_create(struct db *, const char *agent_id, const char *kind,
	    const char *args, int64_t not_after_ms, const char *created_by,
	    int64_t *id);
/* Store the signed envelope: new -> queued. */
int	db_job_seal(struct db *, int64_t id, const char *envelope,
	    const char *sig, const char *key_id);
/* Give up on a job that could not be signed. */
int	db_job_fail(struct db *, int64_t id, const char *error);
/* Queued jobs of the agent (at most max) as [{id, envelope, sig, key_id}],
 * now marked sent. Queued jobs past not_after become expired. Jobs sent
 * but never started are sent again after a while, or at once when fresh
 * (the agent process just started, so nothing can be in flight). *out is
 * an empty array when there are none. */
int	db_jobs_take(struct db *, const char *agent_id, int max, int fresh,
	    json_t **out);
/*
 * Whether the agent has jobs to take, for the long poll, asked of the
 * database only when something may have changed (jobseen.h): 1 when it
 * has; 0 when not, and *quiet is then a mark at which it had nothing
 * queued and nothing sent but not started (0: unknown), for
 * db_jobs_quiet.
 */
int	db_jobs_waiting(struct db *, const char *agent_id, int fresh,
	    uint64_t *quiet);
/* 1: nothing was announced for the agent since mark quiet (not 0), so it
 * still has nothing to take: its long poll ends without asking. */
int	db_jobs_quiet(struct db *, const char *agent_id, uint64_t quiet);
/*
 * Output chunk seq of job id (which must be the agent's; DB_NOTFOUND
 * otherwise). A seq already stored is ignored (retries). Past
 * JOB_MAX_OUTPUT bytes the chunk is dropped and DB_OK returned.
 */
int	db_job_output(struct db *, const char *agent_id, int64_t id,
	    int64_t seq, const char *stream, const void *data, size_t len);
struct job_result {
	const char	*status;	/* done, failed, refused */
	int		 has_exit, exit_code;
	int		 has_signal, signal;
	int		 timed_out;
	int64_t		 duration_ms;	/* -1: unknown */
	const char	*error;
};
/* The agent's result for its job; a second result for a finished job is
 * accepted and ignored (the agent retries until acknowledged). */
int	db_job_result(struct db *, const char *agent_id, int64_t id,
	    const struct job_result *);
/* The agent started the job (first output or an explicit start). */
int	db_job_started(struct db *, const char *agent_id, int64_t id);
int	db_job_json(struct db *, int64_t id, json_t **out);
/* Newest first; agent_id NULL for all. */
int	db_job_list(struct db *, const char *agent_id, int limit,
	    json_t **out);
/* Chunks with seq > after, oldest first, data as base64, at most limit. */
int	db_job_output_json(struct db *, int64_t id, int64_t after, int limit,
	    json_t **out);

#endif
