/* auth.h — who is asking and what they may do: roles, token scopes,
 * Argon2id passwords, sessions and API tokens on the control listener,
 * the admin socket's implicit admin, the global switches (read-only,
 * production, allowlist) and login throttling. The decision for a request
 * is made once, in http.c, from the route table's columns. */
#ifndef BASTION_AUTH_H
#define BASTION_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "bastion.h"

/* Ordered: a higher role may do everything a lower one may. */
enum auth_role {
	ROLE_UNSET = 0,		/* route row that says nothing: admin only */
	ROLE_NONE,		/* route: open to anyone (own credentials) */
	ROLE_VIEWER,
	ROLE_OPERATOR,
	ROLE_ADMIN,
};

/*
 * What an API token may be used for. read covers every non-mutating
 * route; provision and exec are siblings (neither covers the other);
 * admin covers everything. A route names the one scope it needs.
 */
enum auth_scope {
	SCOPE_READ = 0,
	SCOPE_PROVISION,
	SCOPE_EXEC,
	SCOPE_ADMIN,
};

/* Route flags (struct route.flags). */
#define RF_MUTATES	0x01	/* changes state: CSRF, read-only, audited */
#define RF_DESTRUCTIVE	0x02	/* production mode: admin + X-Confirm */
#define RF_RO_EXEMPT	0x04	/* allowed in read-only mode (login, logout) */
#define RF_RO_HANDLER	0x08	/* the handler applies read-only itself */
#define RF_PW_CHANGE	0x10	/* usable before a one-time password is changed */
#define RF_AUDIT	0x20	/* audited although not RF_MUTATES (GET /ks) */
#define RF_SYSTEM	0x40	/* machine/daemon feed: never read-only blocked */
#define RF_AGENT	0x80	/* called by agentd (join token or client
				   certificate): audited with actor "agent" */

enum auth_kind {
	AUTH_NONE = 0,		/* anonymous */
	AUTH_ADMIN_SOCKET,	/* whoever opened STATE_DIR/admin.sock */
	AUTH_SESSION,		/* bastion_session cookie */
	AUTH_TOKEN,		/* Authorization: Bearer */
	AUTH_MACHINE,		/* boot listener: a machine or its installer */
};

#define AUTH_NAME_LEN	33	/* user names: 1-32 of [a-z0-9._-] */
#define AUTH_TOKEN_PREFIX	"bst_"
#define AUTH_TOKEN_LEN	(4 + 64)	/* prefix + 32 random bytes as hex */
#define AUTH_SESSION_COOKIE	"bastion_session"
#define AUTH_PASSWORD_MIN	8
#define AUTH_PASSWORD_MAX	1024

struct principal {
	enum auth_kind	 kind;
	char		 user[AUTH_NAME_LEN];	/* "" for anonymous */
	int64_t		 user_id;
	enum auth_role	 role;
	enum auth_scope	 scope;		/* AUTH_TOKEN only */
	int64_t		 token_id;	/* AUTH_TOKEN only */
	int64_t		 session_id;	/* AUTH_SESSION only */
	int		 must_change;	/* logged in with a one-time password */
	char		 csrf[65];	/* AUTH_SESSION: the expected X-CSRF-Token */
};

const char	*auth_role_name(enum auth_role);
int		 auth_role_from_name(const char *);	/* -1 if unknown */
const char	*auth_scope_name(enum auth_scope);
int		 auth_scope_from_name(const char *);	/* -1 if unknown */
/* The role a user needs to hold a token of this scope. */
enum auth_role	 auth_scope_min_role(enum auth_scope);
/* Whether a token of scope `have` may use a route that needs `need`. */
int		 auth_scope_covers(enum auth_scope have, enum auth_scope need);
/* 1-32 of [a-z0-9._-], starting with a letter or digit. */
int		 auth_name_valid(const char *);

/* --- passwords (Argon2id) --------------------------------------------- */

struct argon2_cost {
	unsigned	t, m_kib, p;
};

/* Encoded Argon2id hash ("$argon2id$v=19$m=...") of pw into out. */
int	auth_password_hash(const struct argon2_cost *, const char *pw,
	    char *out, size_t outlen);
/* 1 when pw matches the encoded hash, 0 when not (or on error). */
int	auth_password_verify(const char *encoded, const char *pw);
/* A fresh one-time password: 24 characters from an unambiguous alphabet. */
int	auth_password_generate(char out[25]);
/* Checks the rules for a chosen password; NULL when fine, else why. */
const char *auth_password_problem(const char *pw);
void	auth_cost_from_config(const struct config *, struct argon2_cost *);
/* A hash of nothing anyone knows, made with the configured cost: checked
 * when the user does not exist, so both cases take the same time. */
const char *auth_dummy_hash(struct bastion *);

/* --- CIDR allowlist ---------------------------------------------------- */

struct cidr {
	int		family;		/* AF_INET or AF_INET6 */
	unsigned char	addr[16];
	int		bits;
};

#define AUTH_MAX_CIDRS	64

/* "10.0.0.0/8,fd00::/8, 192.0.2.7" (a bare address is a /32 or /128).
 * Fills out (at most max) and *n; -1 with why on the first bad entry. */
int	auth_cidrs_parse(const char *text, struct cidr *out, int max, int *n,
	    char *why, size_t whylen);
/* Whether the numeric address (v4, v6 or v4-mapped v6) is in one of them. */
int	auth_cidrs_match(const struct cidr *, int n, const char *addr);
/* Canonical text form "a/b,c/d" of the list. */
void	auth_cidrs_format(const struct cidr *, int n, char *out, size_t len);

/* --- the daemon's auth state --------------------------------------------- */

struct settings {
	int		read_only;
	int		production;
	struct cidr	allow[AUTH_MAX_CIDRS];
	int		nallow;		/* 0: every address may connect */
};

/* Loads the settings from the database; on the very first start (no
 * users at all) creates "admin" with a one-time password and logs it. */
int	auth_open(struct bastion *);
void	auth_close(struct bastion *);
void	auth_settings_get(struct bastion *, struct settings *out);
/* Store one setting ("read_only", "production": "on"/"off"; "allowlist":
 * CIDRs) and update the cache. 0, or -1 with why (400-class). The audit
 * entry of the request in progress goes into the same transaction. */
int	auth_settings_set(struct bastion *, const char *key, const char *value,
	    char *why, size_t whylen);
json_t	*auth_settings_json(struct bastion *);

/*
 * Login throttling, per address and per user name (and reusable for
 * enrollment with other keys). auth_throttle_check answers 0 when an
 * attempt may go ahead, or the seconds to wait; auth_throttle_fail records
 * a failure and answers 1 when it started a lockout; auth_throttle_ok
 * forgets the failures of a key after a success.
 */
int	auth_throttle_check(struct bastion *, const char *key, int64_t now_ms);
int	auth_throttle_fail(struct bastion *, const char *key, int64_t now_ms);
void	auth_throttle_ok(struct bastion *, const char *key);

/* Authenticate a bearer token or a session cookie value. 0 with *p
 * filled; -1 when unknown, expired, revoked or the user is disabled
 * (*why says which, for the log; the client only hears "invalid"). */
int	auth_token(struct bastion *, const char *token, const char *addr,
	    struct principal *p, const char **why);
int	auth_session(struct bastion *, const char *sid, struct principal *p,
	    const char **why);
/* The CSRF token that belongs to a session id: SHA-256 of a fixed label
 * and the id, so it needs no storage and cannot be guessed without the
 * cookie. */
void	auth_csrf_for(const char *sid, char out[65]);

#endif
