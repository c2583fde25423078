/* db_auth.h — users, sessions, API tokens, settings and the audit log
 * (db_auth.c, db_audit.c). Same rules as db.h: nothing else speaks SQL,
 * every function is thread-safe, out-parameters are written on DB_OK only.
 * Secrets never reach these functions in clear: callers pass SHA-256
 * hashes of session ids and tokens, and Argon2id strings for passwords. */
#ifndef BASTION_DB_AUTH_H
#define BASTION_DB_AUTH_H

#include <stdint.h>

#include <jansson.h>

#include "audit.h"
#include "db.h"

struct db_user {
	int64_t	id;
	char	name[33];
	char	role[16];
	char	password_hash[256];
	int	must_change;
	int	disabled;
};

/* A time in ms as the API's ISO 8601 string (JSON null for 0). */
json_t	*db_auth_time(int64_t ms);

/* --- users ---------------------------------------------------------------- */

int	db_user_count(struct db *, int64_t *out);
/* DB_CONFLICT when the name is taken. */
int	db_user_add(struct db *, const char *name, const char *role,
	    const char *password_hash, int must_change);
int	db_user_get(struct db *, const char *name, struct db_user *out);
int	db_users_json(struct db *, json_t **out);
/* New hash; must_change as given; every session of the user but
 * keep_session_id (0: none) is ended. */
int	db_user_set_password(struct db *, const char *name,
	    const char *password_hash, int must_change, int64_t keep_session_id);
/* role NULL: unchanged; disabled -1: unchanged. Disabling ends the user's
 * sessions. DB_CONFLICT when it would leave no enabled admin. */
int	db_user_update(struct db *, const char *name, const char *role,
	    int disabled);

/* --- sessions -------------------------------------------------------------- */

struct db_session {
	int64_t	id;
	int64_t	user_id;
	char	user[33];
	char	role[16];
	int	disabled;
	int	must_change;
	int64_t	created_ms;
	int64_t	last_seen_ms;
	int64_t	expires_ms;
};

int	db_session_add(struct db *, const char *id_hash, int64_t user_id,
	    const char *address, const char *user_agent, int64_t expires_ms,
	    int64_t *id_out);
int	db_session_get(struct db *, const char *id_hash, struct db_session *out);
int	db_session_touch(struct db *, int64_t id, int64_t now_ms);
/* Delete session id; when user_id is not 0 only if it is that user's. */
int	db_session_delete(struct db *, int64_t id, int64_t user_id);
int	db_sessions_json(struct db *, int64_t user_id, int64_t current_id,
	    json_t **out);

/* --- API tokens ------------------------------------------------------------ */

struct db_apitoken {
	int64_t	id;
	int64_t	user_id;
	char	user[33];
	char	role[16];		/* the owner's role now */
	int	disabled;		/* the owner is disabled */
	int	must_change;
	char	scope[16];
	int64_t	expires_ms;
	int64_t	revoked_ms;
	int64_t	last_used_ms;
};

int	db_apitoken_add(struct db *, const char *hash, int64_t user_id,
	    const char *scope, const char *description, int64_t expires_ms,
	    const char *created_by, int64_t *id_out);
int	db_apitoken_get(struct db *, const char *hash, struct db_apitoken *out);
int	db_apitoken_used(struct db *, int64_t id, int64_t now_ms,
	    const char *address);
/* Revoke token id; when user_id is not 0 only if it is that user's. */
int	db_apitoken_revoke(struct db *, int64_t id, int64_t user_id);
/* Every token (user_id 0) or one user's, without secrets. */
int	db_apitokens_json(struct db *, int64_t user_id, json_t **out);

/* --- settings ----------------------------------------------------------- */

/* DB_NOTFOUND when never set. */
int	db_setting_get(struct db *, const char *key, char *out, size_t len);
int	db_setting_set(struct db *, const char *key, const char *value);

/* --- login lockouts ------------------------------------------------------ */

/* A throttle key ("addr:1.2.3.4", "user:alice") is locked out until
 * until_ms. Lockouts already over are dropped in the same write. */
int	db_lockout_set(struct db *, const char *key, int64_t until_ms,
	    int64_t now_ms);
/* Calls fn for every lockout still running at now_ms, the latest ending
 * first, at most max of them. */
int	db_lockouts_load(struct db *, int64_t now_ms, int max,
	    void (*fn)(void *cls, const char *key, int64_t until_ms), void *cls);

/* --- audit log ------------------------------------------------------------- */

/*
 * The entry of the request this thread is serving (NULL: none). While it
 * is pending, the first transaction this thread commits through
 * db_commit() carries its row, so the change and its record are one
 * atomic write. Otherwise db_audit_append() writes it on its own.
 */
void	db_audit_pending(struct audit_entry *);
/* Write e now (its own transaction) unless already written. */
int	db_audit_append(struct db *, struct audit_entry *e);

struct audit_query {
	int64_t		since_ms;	/* 0: any time */
	int64_t		after_id;	/* 0: the newest `limit` rows */
	const char	*actor;		/* NULL: any; "alice" also matches
					   alice's tokens ("alice#3") */
	const char	*action;	/* NULL: any; "machine." is a prefix */
	int		 limit;
};

/* Oldest first. */
int	db_audit_list(struct db *, const struct audit_query *, json_t **out);
/* Recompute the whole chain: {"ok", "rows", "first_bad_id", "reason"}. */
int	db_audit_verify(struct db *, json_t **out);

#endif
