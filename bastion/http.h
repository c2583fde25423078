/* http.h — the three listeners (boot HTTP, control HTTPS, admin unix
 * socket) on libmicrohttpd, and the request/response API handlers use.
 * Handlers never touch MHD: they read a struct request and answer with
 * exactly one http_reply_*() call. */
#ifndef BASTION_HTTP_H
#define BASTION_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "audit.h"
#include "auth.h"
#include "bastion.h"
#include "buf.h"

enum listener {
	L_BOOT = 1 << 0,	/* plain HTTP for firmware and installers */
	L_CONTROL = 1 << 1,	/* HTTPS for operators and agents */
	L_ADMIN = 1 << 2,	/* local unix socket: whoever opens it is admin */
};

#define HTTP_MAX_PARAMS	4
#define HTTP_PARAM_LEN	128
#define HTTP_DEFAULT_MAX_BODY	(64 * 1024)
#define HTTP_MAX_HEADERS	4

struct route;

struct request {
	int			 parked;	/* http.c only: always 0 here */
	char			 id[17];	/* request id, hex */
	enum listener		 listener;
	const char		*method;
	const char		*path;
	char			 client[64];	/* numeric address or "admin" */
	int			 from_loopback;
	struct buf		 body;
	int			 body_too_large;
	int			 nparams;
	const struct route	*route;
	struct bastion		*app;
	void			*conn;		/* MHD connection, http.c only */
	int			 status;	/* set by http_reply_* */
	int			 replied;
	/* Who is asking (decided before the handler runs) and the audit
	 * row of this request; handlers may refine target, detail, actor
	 * with AUDIT_SET(&r->audit, ...) and set audit.wanted. */
	struct principal	 who;
	struct audit_entry	 audit;
	int			 nhdrs;
	int			 hold;		/* http.c only: refusals wait for */
	void			*held;		/* the body (an MHD_Response) */
	/* Long polls (http_suspend): the handler's own state, and a hook
	 * http.c calls when the request is freed, whatever happened. */
	void			*poll;
	void			(*on_free)(struct request *);
	int			 suspended;	/* http.c only */
	/* Not zeroed when a request starts (http.c): read only up to
	 * nparams and nhdrs, error from error[0] on (set to ""). Zeroing
	 * all of struct request was 2 KiB more per request. */
	char			 params[HTTP_MAX_PARAMS][HTTP_PARAM_LEN];
	char			 error[256];	/* last http_reply_error message */
	/* Extra response headers (http_add_header). */
	char			 hdr_name[HTTP_MAX_HEADERS][32];
	char			 hdr_value[HTTP_MAX_HEADERS][256];
};
#define HTTP_REQUEST_ZEROED	offsetof(struct request, params)

typedef void (*route_handler)(struct request *);

/*
 * One row of the one table that says who may do what. Before the handler
 * runs, http.c checks, in this order: the control listener's allowlist,
 * authentication (session cookie or bearer token; the admin socket is
 * always admin; the boot listener never authenticates), role >= role,
 * a token's scope covers scope, CSRF for cookie sessions, read-only mode
 * (RF_MUTATES), production mode (RF_DESTRUCTIVE: admin + X-Confirm naming
 * the target). RF_MUTATES and RF_AUDIT requests leave an audit row named
 * action, whatever their outcome. docs/api.md has the table in prose.
 */
struct route {
	unsigned	 listeners;	/* mask of enum listener */
	const char	*method;
	const char	*pattern;	/* "/api/v1/machines/{mac}/events" */
	route_handler	 handler;
	size_t		 max_body;	/* 0: HTTP_DEFAULT_MAX_BODY */
	enum auth_role	 role;		/* minimum role; ROLE_NONE: open */
	enum auth_scope	 scope;		/* what an API token needs */
	unsigned	 flags;		/* RF_* (auth.h) */
	const char	*action;	/* audit action, "machine.forget" */
};

/* Route tables, one per routes_*.c, each ends with a zeroed entry. */
extern const struct route routes_boot[];
extern const struct route routes_api[];
extern const struct route routes_install[];
extern const struct route routes_agent[];
extern const struct route routes_auth[];
extern const struct route routes_ui[];
extern const struct route routes_alerts[];
extern const struct route routes_containers[];
extern const struct route routes_guests[];
extern const struct route routes_stream[];
extern const struct route routes_guest_console[];
extern const struct route routes_cluster[];
/* routes_agent.c: answer every waiting long poll and take no new ones;
 * returns once none is suspended (http_stop calls it first). */
void	routes_agent_stop(void);
/* Answer the long polls of agent_id (NULL: every one) now: a job came
 * for it, maybe through another bastion (db_listen_start's fn). */
void	routes_agent_wake(const char *agent_id, void *unused);

/* Bind the boot and control listeners (as root, before privileges are
 * dropped: a port below 1024 needs it). 0 or -1, logged. */
int	http_listen(struct bastion *);
/* Serve on them, and on the admin socket (created now, as the user the
 * worker runs as). Frees what http_listen bound on failure. */
int	http_start(struct bastion *);
void	http_stop(struct bastion *);
/* PEM of the control listener's certificate chain and key changed. */

/* Query argument (already URL-decoded) or NULL. */
const char *http_query(struct request *, const char *key);
const char *http_header(struct request *, const char *name);
const char *http_cookie(struct request *, const char *name);
/* Add a response header (before the http_reply_* call); at most
 * HTTP_MAX_HEADERS, longer values are refused. */
int	http_add_header(struct request *, const char *name, const char *value);
/* Production mode, for a destructive route whose target is in the body
 * (a path parameter is checked before the handler runs): 0 when the
 * request may go on, -1 after replying 428 because X-Confirm does not
 * name target. Also records target in the audit row. */
int	http_require_confirm(struct request *, const char *target);
/* Every route of every table as JSON (listeners, method, pattern, role,
 * scope, mutates, destructive, action): GET /api/v1/routes. */
json_t	*http_routes_json(void);

/* Exactly one of these per request. They take ownership of nothing
 * except http_reply_json, which steals the reference to body. */
void	http_reply_json(struct request *, int status, json_t *body);
void	http_reply_error(struct request *, int status, const char *code,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	http_reply_text(struct request *, int status, const char *ctype,
	    const char *text, size_t len);
/* Serve a file from disk (fd ownership moves to the response). */
void	http_reply_file(struct request *, const char *path, const char *ctype);

/* Parse the body as a JSON object; on failure replies and returns NULL:
 * 415 unless it came as Content-Type: application/json, 400 when it is
 * missing or not a JSON object. */
json_t	*http_body_json(struct request *);

/* The client certificate the peer presented on the control listener, as
 * DER borrowed from the TLS session (valid during the request), or -1
 * when there is none. Whether it is an enrolled, unrevoked agent is for
 * the caller to decide (ca_verify_client and the database). */
int	http_peer_cert_der(struct request *, const unsigned char **der,
	    size_t *len);

/*
 * Long polls without a thread per waiter: a handler that has nothing to
 * answer yet calls http_suspend() and returns without replying; later
 * any thread calls http_resume() with the handle it got and the handler
 * runs again for the same connection and must reply or suspend again.
 * While it waits the request is parked: only its id, route, r->poll and
 * r->on_free are kept (thousands of agents wait at once), so the handler
 * runs again on a new struct request with those, the same method, path,
 * query and headers, and a fresh audit row; keep anything else in
 * r->poll. Set r->on_free to learn when the request is gone (client
 * closed, daemon stopping) so nobody resumes it afterwards.
 */
struct http_waiting;
struct http_waiting *http_suspend(struct request *);
void	http_resume(struct http_waiting *);

#endif
