/* http.c — libmicrohttpd listeners and the request lifecycle:
 * the first callback allocates the request and routes it, later ones
 * consume the upload into a capped buffer, the last one runs the handler,
 * and the completion callback frees it (libmicrohttpd largepost.c). */
#define _GNU_SOURCE	/* struct ucred */
#define LOG_SUBSYS "http"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "auth.h"
#include "ca.h"
#include "clock.h"
#include "db.h"
#include "db_auth.h"
#include "http.h"
#include "log.h"
#include "mac.h"
#include "nofile.h"
#include "ratelimit.h"
#include "secret.h"
#include "stream.h"

struct listener_ctx {
	struct bastion	*app;
	enum listener	 kind;
	const char	*name;
	unsigned long	 max_conns;	/* 0: no cap of our own */
	atomic_llong	 refused_logged; /* when, to log one line in ten s */
};

/*
 * A suspended request (a long poll) is parked: its struct request is
 * freed and only this is kept until it runs again, because thousands of
 * agents wait at once. *con_cls points at either; both begin with the
 * int "parked".
 */
struct parked {
	int			 parked;	/* 1 */
	char			 id[17];
	const struct route	*route;
	void			*poll;
	void			(*on_free)(struct request *);
};

/*
 * Per-connection memory of the control listener (libmicrohttpd's pool:
 * request line and headers, header index, response headers). MHD zeroes
 * the whole pool after every request on a keep-alive connection, so all
 * of it stays resident for as long as the connection is open: 64 KiB
 * made a waiting agent cost ~82 KiB. 4 KiB holds about 3 KiB of request
 * headers, cookies counting twice (MHD copies them to parse): a browser
 * with our session cookie sends about 1 KiB, an agent 0.2 KiB. Bodies
 * stream through it. More is answered 431.
 */
#define CONTROL_CONN_MEMORY	(4 * 1024)
/* Open files kept back from the control listener's connections for the
 * boot and admin listeners, the database, dnsmasq and logs. */
#define FD_RESERVE		256

struct http {
	struct MHD_Daemon	*boot, *control, *admin;
	struct listener_ctx	 ctx_boot, ctx_control, ctx_admin;
	int			 admin_fd;
	int			 boot_fd, control_fd;	/* bound by http_listen */
	char			 admin_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char			*tls_cert, *tls_key;
};

static atomic_ulong request_counter;

static int
listener_index(enum listener l)
{
	return l == L_BOOT ? 0 : l == L_CONTROL ? 1 : 2;
}

/* "/a/{x}/b" against "/a/52:54/b": fills params. */
static int
route_match(const char *pattern, const char *path, struct request *r)
{
	const char *p = pattern, *s = path;
	int n = 0;

	while (*p && *s) {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			size_t len = strcspn(s, "/");

			if (pe == NULL || len == 0 || len >= HTTP_PARAM_LEN ||
			    n == HTTP_MAX_PARAMS)
				return 0;
			memcpy(r->params[n], s, len);
			r->params[n++][len] = '\0';
			p = pe + 1;
			s += len;
			continue;
		}
		if (*p != *s)
			return 0;
		p++;
		s++;
	}
	if (*p || *s)
		return 0;
	r->nparams = n;
	return 1;
}

static const struct route *const route_tables[] = { routes_boot, routes_api,
    routes_install, routes_agent, routes_auth, routes_ui, routes_alerts,
    routes_containers, routes_guest_console, routes_guests, routes_stream,
    routes_cluster };

/* Returns the route, or NULL with *path_known set when only the method
 * did not match (405 rather than 404). */
static const struct route *
route_find(struct request *r, int *path_known)
{
	size_t t;
	const struct route *rt;

	*path_known = 0;
	for (t = 0; t < sizeof route_tables / sizeof route_tables[0]; t++)
		for (rt = route_tables[t]; rt->pattern; rt++) {
			if (!(rt->listeners & r->listener))
				continue;
			if (!route_match(rt->pattern, r->path, r))
				continue;
			if (strcmp(rt->method, r->method) == 0)
				return rt;
			*path_known = 1;
		}
	return NULL;
}

static void
client_address(struct request *r, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	if (r->listener == L_ADMIN) {
		snprintf(r->client, sizeof r->client, "admin");
		r->from_loopback = 1;
		return;
	}
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL) {
		snprintf(r->client, sizeof r->client, "unknown");
		return;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, r->client, sizeof r->client);
		r->from_loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, r->client, sizeof r->client);
		r->from_loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			r->from_loopback = in6->sin6_addr.s6_addr[12] == 127;
	} else {
		snprintf(r->client, sizeof r->client, "unknown");
	}
}

static enum MHD_Result
queue(struct request *r, int status, struct MHD_Response *resp,
    const char *ctype)
{
	struct MHD_Connection *conn = r->conn;
	enum MHD_Result ret;
	int i;

	if (resp == NULL) {
		/* Out of memory: the caller has freed what it gave. */
		log_warnx("req %s: cannot create response", r->id);
		r->replied = -1;
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", ctype);
	MHD_add_response_header(resp, "X-Request-Id", r->id);
	for (i = 0; i < r->nhdrs; i++)
		MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (r->hold) {
		/* Refused before its body arrived: answer once it has, so the
		 * client is not cut off in the middle of sending it. */
		r->held = resp;
		r->status = status;
		r->replied = 1;
		return MHD_YES;
	}
	ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	r->status = status;
	r->replied = ret == MHD_YES ? 1 : -1;
	return ret;
}

void
http_reply_text(struct request *r, int status, const char *ctype,
    const char *text, size_t len)
{
	if (r->replied)
		return;
	queue(r, status, MHD_create_response_from_buffer(len, (void *)text,
	    MHD_RESPMEM_MUST_COPY), ctype);
}

void
http_reply_json(struct request *r, int status, json_t *body)
{
	struct MHD_Response *resp;
	char *text;

	if (r->replied) {
		json_decref(body);
		return;
	}
	text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(body);
	if (text == NULL) {
		log_warnx("req %s: cannot encode response", r->id);
		r->replied = -1;
		return;
	}
	/* text is the response's only once it exists. */
	if ((resp = MHD_create_response_from_buffer(strlen(text), text,
	    MHD_RESPMEM_MUST_FREE)) == NULL)
		free(text);
	queue(r, status, resp, "application/json");
}

#define DB_DOWN_MSG "the database cannot be reached; try again later"

static void
reply_error_msg(struct request *r, int status, const char *code,
    const char *msg, int quiet)
{
	/* A failure while the database cannot be reached is the
	 * database's, not the handler's: 503, try again later. */
	if (status == 500 && r->app->db && db_unavailable(r->app->db)) {
		status = 503;
		code = "unavailable";
		msg = DB_DOWN_MSG;
	}
	if (!r->replied)
		audit_setf(r->error, sizeof r->error, "%s: %s", code, msg);
	if (status >= 500)
		log_warnx("req %s %s %s: %d %s", r->id, r->method, r->path,
		    status, msg);
	else if (!quiet)
		log_debug("req %s %s %s: %d %s", r->id, r->method, r->path,
		    status, msg);
	http_reply_json(r, status, json_pack("{s:{s:s, s:s}}", "error",
	    "code", code, "message", msg));
}

void
http_reply_error(struct request *r, int status, const char *code,
    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	reply_error_msg(r, status, code, msg, 0);
}

/* Credentials could not be checked because the database cannot be
 * reached: answered 503 (1), else 0. */
static int
db_down(struct request *r)
{
	if (r->app->db == NULL || !db_unavailable(r->app->db))
		return 0;
	http_reply_error(r, 503, "unavailable", DB_DOWN_MSG);
	return 1;
}

void
http_reply_file(struct request *r, const char *path, const char *ctype)
{
	struct MHD_Response *resp;
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			http_reply_error(r, 404, "not_found", "%s is not installed",
			    r->path);
		else
			http_reply_error(r, 500, "internal", "cannot open %s",
			    r->path);
		return;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		http_reply_error(r, 404, "not_found", "%s is not a file", r->path);
		return;
	}
	/* The response owns fd once it exists; until then it is ours. */
	if ((resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd))
	    == NULL)
		close(fd);
	queue(r, 200, resp, ctype);
}

const char *
http_query(struct request *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *
http_header(struct request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *
http_cookie(struct request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}

int
http_add_header(struct request *r, const char *name, const char *value)
{
	if (r->nhdrs == HTTP_MAX_HEADERS ||
	    strlen(name) >= sizeof r->hdr_name[0] ||
	    strlen(value) >= sizeof r->hdr_value[0])
		return -1;
	snprintf(r->hdr_name[r->nhdrs], sizeof r->hdr_name[0], "%s", name);
	snprintf(r->hdr_value[r->nhdrs], sizeof r->hdr_value[0], "%s", value);
	r->nhdrs++;
	return 0;
}

/* Content-Type is application/json, parameters (charset) allowed. A
 * browser sends text/plain, form types or none cross-site without a
 * preflight: they never reach a JSON handler. */
static int
is_json_type(const char *ct)
{
	static const char want[] = "application/json";

	if (ct == NULL || strncasecmp(ct, want, sizeof want - 1) != 0)
		return 0;
	ct += sizeof want - 1;
	ct += strspn(ct, " \t");
	return *ct == '\0' || *ct == ';';
}

json_t *
http_body_json(struct request *r)
{
	json_error_t err;
	json_t *j;

	if (r->body.len == 0) {
		http_reply_error(r, 400, "bad_request", "a JSON body is required");
		return NULL;
	}
	if (!is_json_type(http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE))) {
		http_reply_error(r, 415, "unsupported_media_type", "the body "
		    "must be sent as Content-Type: application/json");
		return NULL;
	}
	j = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL) {
		http_reply_error(r, 400, "bad_json", "invalid JSON at line %d "
		    "column %d: %s", err.line, err.column, err.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		http_reply_error(r, 400, "bad_json", "the body must be a JSON object");
		return NULL;
	}
	return j;
}

static size_t
route_max_body(const struct request *r)
{
	return r->route && r->route->max_body ? r->route->max_body :
	    HTTP_DEFAULT_MAX_BODY;
}

/* --- who is asking, and may they ------------------------------------------ */

static const char *const listener_names[] = { "boot", "control", "admin" };

/* The admin socket's peer: its user name, or "uid N". */
static void
admin_peer(struct request *r, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci;
	struct passwd pw, *res = NULL;
	struct ucred uc;
	socklen_t ulen = sizeof uc;
	char buf[1024];

	snprintf(out, len, "root");
	ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED,
	    &uc, &ulen) == -1)
		return;
	if (getpwuid_r(uc.uid, &pw, buf, sizeof buf, &res) == 0 && res)
		snprintf(out, len, "%s", res->pw_name);
	else
		snprintf(out, len, "uid %u", (unsigned)uc.uid);
}

/* The route's target: its first path parameter, a MAC normalised; a
 * container's is NODE/CONTAINER. */
static void
route_target(const struct request *r, char *out, size_t len)
{
	char mac[MAC_STRLEN];

	out[0] = '\0';
	if (r->route == NULL || r->nparams == 0)
		return;
	if (strstr(r->route->pattern, "{mac}") &&
	    mac_normalize(r->params[0], mac) == 0)
		snprintf(out, len, "%s", mac);
	else if (strstr(r->route->pattern, "{ref}") && r->nparams >= 2)
		snprintf(out, len, "%.64s/%.90s", r->params[0], r->params[1]);
	else
		snprintf(out, len, "%s", r->params[0]);
}

static void
audit_start(struct request *r)
{
	struct audit_entry *e = &r->audit;
	const struct route *rt = r->route;

	e->wanted = rt && (rt->flags & (RF_MUTATES | RF_AUDIT));
	/* The boot listener's hot path (/dispatch, boot files) fills the row
	 * in only when its handler asks for one (audit_finish). */
	if (r->listener == L_BOOT && !e->wanted)
		return;
	AUDIT_SET(e, request_id, "%s", r->id);
	AUDIT_SET(e, source, "%s", r->client);
	AUDIT_SET(e, result, "ok");
	AUDIT_SET(e, action, "%s", rt && rt->action ? rt->action : "");
	route_target(r, e->target, sizeof e->target);
	if (r->listener == L_BOOT) {
		AUDIT_SET(e, actor_type, "machine");
		AUDIT_SET(e, actor, "%s", e->target[0] ? e->target : r->client);
	} else if (rt && (rt->flags & RF_AGENT)) {
		AUDIT_SET(e, actor_type, "agent");
		AUDIT_SET(e, actor, "%s", r->client);
	} else {
		AUDIT_SET(e, actor_type, "anonymous");
		AUDIT_SET(e, actor, "-");
	}
}

static void
audit_who(struct request *r)
{
	struct audit_entry *e = &r->audit;

	switch (r->who.kind) {
	case AUTH_ADMIN_SOCKET:
		AUDIT_SET(e, actor_type, "admin-socket");
		AUDIT_SET(e, actor, "%s", r->who.user);
		break;
	case AUTH_SESSION:
		AUDIT_SET(e, actor_type, "user");
		AUDIT_SET(e, actor, "%s", r->who.user);
		break;
	case AUTH_TOKEN:
		AUDIT_SET(e, actor_type, "token");
		AUDIT_SET(e, actor, "%s#%lld", r->who.user,
		    (long long)r->who.token_id);
		break;
	default:
		break;
	}
}

/* After the answer: the row, unless a committed change already carried
 * it. Never lost silently (db_audit_append logs what it cannot write). */
static void
audit_finish(struct request *r)
{
	struct audit_entry *e = &r->audit;

	if (!e->wanted || e->written)
		return;
	if (e->request_id[0] == '\0') {	/* a boot request that asked late */
		AUDIT_SET(e, request_id, "%s", r->id);
		AUDIT_SET(e, source, "%s", r->client);
		if (r->route && r->route->action)
			AUDIT_SET(e, action, "%s", r->route->action);
		AUDIT_SET(e, actor_type, "machine");
		if (e->actor[0] == '\0')
			AUDIT_SET(e, actor, "%s", e->target[0] ? e->target :
			    r->client);
	}
	if (e->action[0] == '\0')
		return;
	if (r->status == 401 || r->status == 403 || r->status == 423 ||
	    r->status == 428 || r->status == 429)
		AUDIT_SET(e, result, "denied");
	else if (r->status >= 400 || r->replied != 1)
		AUDIT_SET(e, result, "error");
	if (r->status >= 400 && e->error[0] == '\0')
		AUDIT_SET(e, error, "%s", r->error);
	db_audit_append(r->app->db, e);
}

static void
deny(struct request *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
deny(struct request *r, int status, const char *code, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (status == 401)
		http_add_header(r, "WWW-Authenticate", "Bearer realm=\"bastion\"");
	log_info("req %s %s %s from %s (%s %s): %d %s", r->id, r->method,
	    r->path, r->client, r->audit.actor_type, r->audit.actor, status,
	    msg);
	reply_error_msg(r, status, code, msg, 1);
}

/* Fill r->who from the listener and the credentials. -1 after replying
 * 401 to credentials that are present but not valid, except on an open
 * route (a stale cookie must not stand in the way of logging in again),
 * where they count as none. */
static int
authenticate(struct request *r)
{
	const char *h, *cookie, *why = "";
	int open = r->route && r->route->role == ROLE_NONE;

	memset(&r->who, 0, sizeof r->who);
	switch (r->listener) {
	case L_BOOT:
		r->who.kind = AUTH_MACHINE;
		return 0;
	case L_ADMIN:
		r->who.kind = AUTH_ADMIN_SOCKET;
		r->who.role = ROLE_ADMIN;
		r->who.scope = SCOPE_ADMIN;
		admin_peer(r, r->who.user, sizeof r->who.user);
		audit_who(r);
		return 0;
	case L_CONTROL:
		break;
	}
	if ((h = http_header(r, MHD_HTTP_HEADER_AUTHORIZATION)) != NULL) {
		if (strncasecmp(h, "Bearer ", 7) != 0) {
			if (open)
				return 0;
			deny(r, 401, "unauthenticated", "only Authorization: "
			    "Bearer TOKEN is accepted");
			return -1;
		}
		for (h += 7; *h == ' '; h++)
			;
		if (auth_token(r->app, h, r->client, &r->who, &why) == -1) {
			memset(&r->who, 0, sizeof r->who);
			if (db_down(r))
				return -1;
			if (open)
				return 0;
			AUDIT_SET(&r->audit, detail, "%s", why);
			deny(r, 401, "unauthenticated", "the API token is not "
			    "valid (unknown, expired or revoked)");
			return -1;
		}
	} else if ((cookie = http_cookie(r, AUTH_SESSION_COOKIE)) != NULL &&
	    *cookie) {
		if (auth_session(r->app, cookie, &r->who, &why) == -1) {
			memset(&r->who, 0, sizeof r->who);
			if (db_down(r))	/* not known bad: keep the cookie */
				return -1;
			if (open)
				return 0;
			AUDIT_SET(&r->audit, detail, "%s", why);
			http_add_header(r, "Set-Cookie", AUTH_SESSION_COOKIE "=;"
			    " HttpOnly; Secure; SameSite=Strict; Path=/;"
			    " Max-Age=0");
			deny(r, 401, "unauthenticated", "%s: log in again", why);
			return -1;
		}
	}
	audit_who(r);
	return 0;
}

/* The confirmation an operator gave for a destructive action matches
 * the target (MACs in any spelling). */
static int
confirmed(struct request *r)
{
	const char *c = http_header(r, "X-Confirm");
	char mac[MAC_STRLEN];

	if (c == NULL || r->audit.target[0] == '\0')
		return 0;
	/* A container's route: the operator names the container again. */
	if (strstr(r->route->pattern, "{ref}") && r->nparams >= 2)
		return strcmp(c, r->params[1]) == 0;
	if (strstr(r->route->pattern, "{mac}") && mac_normalize(c, mac) == 0)
		c = mac;
	return strcmp(c, r->audit.target) == 0;
}

/* A row that names no role is for admins only: new routes fail closed. */
static enum auth_role
route_role(const struct route *rt)
{
	return rt->role == ROLE_UNSET ? ROLE_ADMIN : rt->role;
}

static enum auth_scope
route_scope(const struct route *rt)
{
	return rt->role == ROLE_UNSET ? SCOPE_ADMIN : rt->scope;
}

/* The boot listener is on a hostile network and nobody on it logs in:
 * each address gets a bucket of [boot] request_burst requests refilled
 * at request_rate a second. 0 when the request may go on. */
static struct ratelimit boot_limiter = RATELIMIT_INIT;

static int
boot_rate_ok(struct request *r)
{
	const struct config *c = bastion_config_acquire(r->app);
	int rate = c->boot_request_rate, burst = c->boot_request_burst;

	bastion_config_release(r->app);
	if (rate == 0 || ratelimit_take(&boot_limiter, r->client, burst, rate,
	    clock_wall_ms()))
		return 1;
	/* Neither an audit row nor a log line each: a flood must not turn
	 * into database or log writes. */
	r->audit.wanted = 0;
	http_add_header(r, "Retry-After", "1");
	http_reply_error(r, 429, "rate_limited", "more than %d requests a "
	    "second from %s ([boot] request_rate, request_burst)", rate,
	    r->client);
	return 0;
}

/* Everything decided before the handler runs. -1 after replying. */
static int
gate(struct request *r, int path_known)
{
	const struct route *rt = r->route;
	const char *csrf;
	struct settings st;

	memset(&st, 0, sizeof st);	/* the boot listener reads only some */
	if (r->listener == L_BOOT) {
		r->who.kind = AUTH_MACHINE;
		if (!boot_rate_ok(r))
			return -1;
		goto route_check;
	}
	auth_settings_get(r->app, &st);
	if (r->listener == L_CONTROL && st.nallow &&
	    !auth_cidrs_match(st.allow, st.nallow, r->client)) {
		deny(r, 403, "address_not_allowed", "%s is not in the control "
		    "listener's allowlist", r->client);
		return -1;
	}
	if (authenticate(r) == -1)
		return -1;
	if (r->listener == L_CONTROL && r->who.kind == AUTH_NONE &&
	    (rt == NULL || rt->role != ROLE_NONE)) {
		deny(r, 401, "unauthenticated", "authentication required: log in "
		    "(POST /api/v1/session) or send Authorization: Bearer TOKEN");
		return -1;
	}
route_check:
	if (rt == NULL && !path_known) {
		http_reply_error(r, 404, "not_found", "no such resource: %s",
		    r->path);
		return -1;
	}
	if (rt == NULL) {
		http_reply_error(r, 405, "method_not_allowed",
		    "%s is not allowed on %s", r->method, r->path);
		return -1;
	}
	/* Read-only mode freezes what machines report too (discovery,
	 * progress); boot scripts are still answered. */
	if (r->listener == L_BOOT && (rt->flags & RF_MUTATES)) {
		auth_settings_get(r->app, &st);
		if (st.read_only) {
			deny(r, 503, "read_only", "bastion is in read-only mode: "
			    "reports are not taken until an admin turns it off");
			return -1;
		}
	}
	if (rt->role == ROLE_NONE || r->listener == L_BOOT)
		return 0;
	if (r->who.role < route_role(rt)) {
		deny(r, 403, "forbidden", "%s %s needs the %s role (%s is %s)",
		    r->method, rt->pattern, auth_role_name(route_role(rt)),
		    r->who.user, auth_role_name(r->who.role));
		return -1;
	}
	if (r->who.kind == AUTH_TOKEN &&
	    !auth_scope_covers(r->who.scope, route_scope(rt))) {
		deny(r, 403, "insufficient_scope", "%s %s needs a token with "
		    "scope %s%s (this one has %s)", r->method, rt->pattern,
		    auth_scope_name(route_scope(rt)), route_scope(rt) ==
		    SCOPE_ADMIN ? "" : " or admin", auth_scope_name(r->who.scope));
		return -1;
	}
	if (r->who.must_change && !(rt->flags & RF_PW_CHANGE)) {
		deny(r, 403, "password_change_required", "%s logged in with a "
		    "one-time password: change it first (PUT /api/v1/users/%s/"
		    "password)", r->who.user, r->who.user);
		return -1;
	}
	if (r->who.kind == AUTH_SESSION && strcmp(r->method, "GET") != 0 &&
	    strcmp(r->method, "HEAD") != 0 &&
	    ((csrf = http_header(r, "X-CSRF-Token")) == NULL ||
	    !secret_equal(csrf, r->who.csrf))) {
		deny(r, 403, "csrf", "missing or wrong X-CSRF-Token header (the "
		    "csrf_token from POST or GET /api/v1/session)");
		return -1;
	}
	if (st.read_only && (rt->flags & RF_MUTATES) &&
	    !(rt->flags & (RF_RO_EXEMPT | RF_RO_HANDLER | RF_SYSTEM))) {
		deny(r, 423, "read_only", "bastion is in read-only mode: nothing "
		    "can be changed until an admin turns it off (bastionctl "
		    "settings set read_only off)");
		return -1;
	}
	if (st.production && (rt->flags & RF_DESTRUCTIVE)) {
		if (r->who.role < ROLE_ADMIN || (r->who.kind == AUTH_TOKEN &&
		    r->who.scope != SCOPE_ADMIN)) {
			deny(r, 403, "production_mode", "production mode: %s %s "
			    "needs an admin%s", r->method, rt->pattern,
			    r->who.kind == AUTH_TOKEN ? " token (scope admin)" :
			    "");
			return -1;
		}
		/* A target in the body is for the handler to confirm
		 * (http_require_confirm). */
		if (r->nparams > 0 && !confirmed(r)) {
			const char *t = strstr(rt->pattern, "{ref}") &&
			    r->nparams >= 2 ? r->params[1] : r->audit.target;

			deny(r, 428, "confirmation_required", "production mode: "
			    "confirm by naming the target: header X-Confirm: %s "
			    "(bastionctl --confirm %s ...)", t, t);
			return -1;
		}
	}
	return 0;
}

int
http_require_confirm(struct request *r, const char *target)
{
	struct settings st;

	if (r->route == NULL || !(r->route->flags & RF_DESTRUCTIVE))
		return 0;
	AUDIT_SET(&r->audit, target, "%s", target);
	auth_settings_get(r->app, &st);
	if (!st.production)
		return 0;
	if (confirmed(r))
		return 0;
	deny(r, 428, "confirmation_required", "production mode: confirm by "
	    "naming the target: header X-Confirm: %s (bastionctl --confirm %s "
	    "...)", target, target);
	return -1;
}

json_t *
http_routes_json(void)
{
	json_t *arr = json_array(), *ls;
	const struct route *rt;
	size_t t;
	int i;

	for (t = 0; t < sizeof route_tables / sizeof route_tables[0]; t++)
		for (rt = route_tables[t]; rt->pattern; rt++) {
			ls = json_array();
			for (i = 0; i < 3; i++)
				if (rt->listeners & (1u << i))
					json_array_append_new(ls,
					    json_string(listener_names[i]));
			json_array_append_new(arr, json_pack("{s:o, s:s, s:s, s:s,"
			    " s:s, s:b, s:b, s:b, s:b, s:s?}", "listeners", ls,
			    "method", rt->method, "pattern", rt->pattern,
			    "role", auth_role_name(route_role(rt)),
			    "scope", auth_scope_name(route_scope(rt)),
			    "declared", rt->role != ROLE_UNSET,
			    "mutates", (rt->flags & RF_MUTATES) != 0,
			    "destructive", (rt->flags & RF_DESTRUCTIVE) != 0,
			    "read_only_exempt", (rt->flags & (RF_RO_EXEMPT |
			    RF_RO_HANDLER | RF_SYSTEM)) != 0,
			    "action", rt->action));
		}
	return arr;
}

/* A request's state from MHD's first callback; NULL when out of memory. */
static struct request *
request_new(struct listener_ctx *lc, struct MHD_Connection *conn,
    const char *url, const char *method, int *path_known)
{
	struct request *r;

	/* All but the arrays read only as far as they are filled. */
	if ((r = malloc(sizeof *r)) == NULL)
		return NULL;
	memset(r, 0, HTTP_REQUEST_ZEROED);
	r->error[0] = '\0';
	snprintf(r->id, sizeof r->id, "%08lx%08lx",
	    (unsigned long)(lc->app->started & 0xffffffff),
	    (unsigned long)atomic_fetch_add(&request_counter, 1));
	r->listener = lc->kind;
	r->method = method;
	r->path = url;
	r->app = lc->app;
	r->conn = conn;
	client_address(r, conn);
	r->route = route_find(r, path_known);
	buf_init(&r->body, route_max_body(r));
	audit_start(r);
	return r;
}

/* The handler suspended r and returned: keep only what it runs on again.
 * Out of memory, r itself waits. */
static void
park(struct request *r, void **con_cls)
{
	struct parked *p;

	if ((p = calloc(1, sizeof *p)) == NULL)
		return;
	p->parked = 1;
	memcpy(p->id, r->id, sizeof p->id);
	p->route = r->route;
	p->poll = r->poll;
	p->on_free = r->on_free;
	buf_free(&r->body);
	free(r);
	*con_cls = p;
}

/* A parked request was resumed: a new struct request from what was
 * kept, the same connection's method, path and headers. */
static struct request *
unpark(struct listener_ctx *lc, struct MHD_Connection *conn,
    const char *url, const char *method, struct parked *p)
{
	struct request *r;
	int path_known;

	if ((r = request_new(lc, conn, url, method, &path_known)) == NULL)
		return NULL;
	memcpy(r->id, p->id, sizeof r->id);
	r->route = p->route;
	r->poll = p->poll;
	r->on_free = p->on_free;
	free(p);
	atomic_fetch_sub(&lc->app->metrics.waiting, 1);
	return r;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct listener_ctx *lc = cls;
	struct request *r = *con_cls;
	int path_known;

	if (r != NULL && r->parked) {
		/* On failure on_completed still finds the parked one. */
		if ((r = unpark(lc, conn, url, method, *con_cls)) == NULL)
			return MHD_NO;
		*con_cls = r;
	} else if (r == NULL) {
		const char *cl;

		if ((r = request_new(lc, conn, url, method, &path_known)) == NULL)
			return MHD_NO;
		*con_cls = r;
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		/* A small body still to come: a refusal waits for it. */
		r->hold = cl && strtoull(cl, NULL, 10) > 0 &&
		    strtoull(cl, NULL, 10) <= route_max_body(r);
		if (gate(r, path_known) == -1) {
			r->hold = 0;
			audit_finish(r);
			if (r->held)
				return MHD_YES;
			return r->replied == 1 ? MHD_YES : MHD_NO;
		}
		r->hold = 0;
		if (cl && strtoull(cl, NULL, 10) > route_max_body(r)) {
			http_reply_error(r, 413, "too_large", "request body over "
			    "%zu bytes", route_max_body(r));
			audit_finish(r);
			return r->replied == 1 ? MHD_YES : MHD_NO;
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!r->replied && !r->body_too_large &&
		    buf_add(&r->body, upload_data, *upload_data_size) == -1) {
			r->body_too_large = 1;
			buf_free(&r->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->held) {
		struct MHD_Response *resp = r->held;
		enum MHD_Result ret;

		r->held = NULL;
		ret = MHD_queue_response(conn, (unsigned)r->status, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	if (r->replied)
		return r->replied == 1 ? MHD_YES : MHD_NO;
	if (r->body_too_large)
		http_reply_error(r, 413, "too_large", "request body over %zu bytes",
		    route_max_body(r));
	else {
		if (r->suspended) {	/* resumed, not parked */
			r->suspended = 0;
			atomic_fetch_sub(&lc->app->metrics.waiting, 1);
		}
		/* A change the handler commits carries the audit row. */
		db_audit_pending(r->audit.wanted ? &r->audit : NULL);
		r->route->handler(r);
		db_audit_pending(NULL);
	}
	if (r->suspended) {		/* a long poll: it runs again */
		park(r, con_cls);
		return MHD_YES;
	}
	if (!r->replied) {
		log_warnx("req %s %s %s: handler gave no answer", r->id, method,
		    url);
		http_reply_error(r, 500, "internal", "no response");
	}
	audit_finish(r);
	return r->replied == 1 ? MHD_YES : MHD_NO;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct listener_ctx *lc = cls;
	struct request *r = *con_cls;
	int cls_idx;

	if (r == NULL)
		return;
	if (r->parked) {
		/* Closed while parked: the handler's hook sees r->poll. */
		struct parked *p = *con_cls;
		struct request tmp;

		log_debug("req %s %s: closed while waiting", p->id, lc->name);
		memset(&tmp, 0, sizeof tmp);
		memcpy(tmp.id, p->id, sizeof tmp.id);
		tmp.app = lc->app;
		tmp.listener = lc->kind;
		tmp.poll = p->poll;
		if (p->on_free)
			p->on_free(&tmp);
		atomic_fetch_sub(&lc->app->metrics.waiting, 1);
		free(p);
		*con_cls = NULL;
		return;
	}
	if (r->suspended)
		atomic_fetch_sub(&lc->app->metrics.waiting, 1);
	cls_idx = r->status / 100;
	if (cls_idx < 0 || cls_idx > 5)
		cls_idx = 0;
	atomic_fetch_add(&lc->app->metrics.requests[listener_index(lc->kind)]
	    [cls_idx], 1);
	log_debug("req %s %s %s %s from %s: %d%s", r->id, lc->name, r->method,
	    r->path, r->client, r->status,
	    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
	if (r->on_free)
		r->on_free(r);
	if (r->held)
		MHD_destroy_response(r->held);
	buf_free(&r->body);
	free(r);
	*con_cls = NULL;
}

/* --- connections ----------------------------------------------------------- */

/* A connection over a cap is closed as soon as it is accepted, before
 * any TLS: counted, and logged at most once in ten seconds. */
static void
conn_refused(struct listener_ctx *lc, const char *from, const char *why)
{
	unsigned long n;
	long long now = (long long)time(NULL), last;

	n = atomic_fetch_add(&lc->app->metrics.refused[listener_index(lc->kind)],
	    1) + 1;
	last = atomic_load(&lc->refused_logged);
	if (now - last < 10 ||
	    !atomic_compare_exchange_strong(&lc->refused_logged, &last, now))
		return;
	log_warnx("%s listener: refused a connection%s%s: %s (%lu refused "
	    "since start)", lc->name, from ? " from " : "", from ? from : "",
	    why, n);
}

static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
    enum MHD_ConnectionNotificationCode code)
{
	struct listener_ctx *lc = cls;
	atomic_ulong *n = &lc->app->metrics.connections[listener_index(
	    lc->kind)];

	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add(n, 1);
	else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
		atomic_fetch_sub(n, 1);
}

/* MHD's accept policy hook: the listener's own cap. */
static enum MHD_Result
on_accept(void *cls, const struct sockaddr *sa, socklen_t len)
{
	struct listener_ctx *lc = cls;
	char addr[INET6_ADDRSTRLEN] = "";
	char why[160];

	if (lc->max_conns == 0 || atomic_load(&lc->app->metrics.connections[
	    listener_index(lc->kind)]) < lc->max_conns)
		return MHD_YES;
	if (sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    addr, sizeof addr);
	else if (sa && sa->sa_family == AF_INET6 &&
	    len >= sizeof(struct sockaddr_in6))
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    addr, sizeof addr);
	snprintf(why, sizeof why, "%lu connections are open, the limit "
	    "([control] max_connections)", lc->max_conns);
	conn_refused(lc, addr[0] ? addr : NULL, why);
	return MHD_NO;
}

static void
on_mhd_error(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
on_mhd_error(void *cls, const char *fmt, va_list ap)
{
	struct listener_ctx *lc = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* On the control listener our own cap comes first (on_accept) and
	 * MHD's is set above it, so this is the per-address one. */
	if (lc && strncmp(msg, "Server reached connection limit", 31) == 0) {
		conn_refused(lc, NULL, lc->kind == L_BOOT ? "too many "
		    "connections from one address ([boot] "
		    "max_connections_per_address)" : lc->max_conns ? "too many "
		    "connections from one address ([control] "
		    "max_connections_per_address)" : "the listener's connection "
		    "limit");
		return;
	}
	log_debug("libmicrohttpd: %s", msg);
}

static int
make_sockaddr(const struct listen_addr *la, struct sockaddr_storage *ss,
    socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(la->host, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)la->port);
		if (inet_pton(AF_INET6, la->host, &in6->sin6_addr) != 1)
			return -1;
		*len = sizeof *in6;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)la->port);
		if (inet_pton(AF_INET, la->host, &in->sin_addr) != 1)
			return -1;
		*len = sizeof *in;
	}
	return 0;
}

/* Bound here, not by MHD, so that a busy port is a clear start-up error
 * and IP_FREEBIND lets the boot listener come up before its bridge does. */
static int
listen_socket(const struct listen_addr *la, int freebind)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, on = 1;

	if (make_sockaddr(la, &ss, &len) == -1)
		return -1;
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	if (freebind)
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &on, sizeof on);
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, 1024) == -1) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int
admin_socket(struct http *h, const char *state_dir)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(h->admin_path, sizeof h->admin_path,
	    "%s/admin.sock", state_dir) >= sizeof h->admin_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", h->admin_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	unlink(h->admin_path);
	/* umask makes the socket 0600 from birth: no window where others
	 * could connect before a chmod. */
	{
		mode_t old = umask(0177);
		int rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);

		umask(old);
		if (rc == -1)
			goto err;
	}
	if (chmod(h->admin_path, 0600) == -1 || listen(fd, 64) == -1)
		goto err;
	return fd;
err:
	{
		int saved = errno;

		close(fd);
		errno = saved;
	}
	return -1;
}

static struct MHD_Daemon *
start_daemon(struct listener_ctx *lc, int fd, unsigned extra_flags,
    unsigned threads, const char *cert, const char *key, unsigned per_addr)
{
	unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TURBO |
	    MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME | extra_flags;
	struct MHD_OptionItem opts[16];
	int n = 0;

	/* The logger must come first or MHD logs the other options itself. */
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER,
	    (intptr_t)on_mhd_error, lc };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, fd, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED,
	    (intptr_t)on_completed, lc };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
	    (intptr_t)on_connection, lc };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, 60,
	    NULL };
	/* With a cap of our own, MHD's sits above it: at its own limit MHD
	 * stops accepting and clients hang in the backlog instead of being
	 * refused. */
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT,
	    lc->max_conns ? lc->max_conns + 64 : 16384, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    cert ? CONTROL_CONN_MEMORY : 64 * 1024, NULL };
	if (per_addr)
		opts[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_addr, NULL };
	if (threads > 1)
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE,
		    threads, NULL };
	if (cert) {
		/* Only HTTP/1.1 is spoken: no ALPN state in every session. */
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_TLS_NO_ALPN, 1,
		    NULL };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
		    (void *)cert };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
		    (void *)key };
		/* Ask for (not require) a client certificate: agents present
		 * theirs; bastion, not GnuTLS, decides (http_peer_cert_der). */
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST,
		    0, (void *)ca_cert_pem(lc->app->ca) };
	}
	opts[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	return MHD_start_daemon(flags, 0, on_accept, lc, on_request, lc,
	    MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
}

/* Raise the soft limit on open files to the hard one (every agent that
 * waits holds a connection) and fit want, the connection cap, under
 * it. Returns the cap in force, 0 for none. */
static unsigned long
fd_budget(unsigned long want)
{
	unsigned long avail;
	rlim_t cur;
	int rc;

	if ((rc = nofile_raise(&cur)) == -1)
		log_warn("raising the open-file limit (RLIMIT_NOFILE)");
	else if (rc == 1)
		log_debug("open files: raised to %llu", (unsigned long long)cur);
	if (cur == RLIM_INFINITY)
		return want;
	avail = cur > 2 * FD_RESERVE ? (unsigned long)cur - FD_RESERVE :
	    (unsigned long)cur / 2;
	if (want == 0 || want > avail) {
		log_warnx("control listener: %llu open files allowed (LimitNOFILE"
		    ", ulimit -n): holding at most %lu connections%s",
		    (unsigned long long)cur, avail, want ? ", less than "
		    "[control] max_connections" : "");
		want = avail;
	}
	return want;
}

int
http_listen(struct bastion *app)
{
	struct http *h;
	const struct config *c = app->cfg;

	if ((h = calloc(1, sizeof *h)) == NULL)
		return -1;
	h->admin_fd = h->control_fd = -1;
	if ((h->boot_fd = listen_socket(&c->boot_listen, 1)) == -1) {
		log_warn("boot listener %s:%d", c->boot_listen.host,
		    c->boot_listen.port);
		goto err_boot;
	}
	if ((h->control_fd = listen_socket(&c->control_listen, 0)) == -1) {
		log_warn("control listener %s:%d", c->control_listen.host,
		    c->control_listen.port);
		goto err_control;
	}
	app->http = h;
	return 0;

err_control:
	close(h->boot_fd);
err_boot:
	free(h);
	return -1;
}

int
http_start(struct bastion *app)
{
	struct http *h = app->http;
	const struct config *c = app->cfg;
	unsigned threads = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	int fd;

	if (h == NULL)
		return -1;
	if (threads < 1)
		threads = 1;
	if (threads > 8)
		threads = 8;
	h->ctx_boot = (struct listener_ctx){ app, L_BOOT, "boot", 0, 0 };
	h->ctx_control = (struct listener_ctx){ app, L_CONTROL, "control",
	    fd_budget((unsigned long)c->control_max_conns), 0 };
	h->ctx_admin = (struct listener_ctx){ app, L_ADMIN, "admin", 0, 0 };

	if ((h->boot = start_daemon(&h->ctx_boot, h->boot_fd, 0, threads, NULL,
	    NULL, (unsigned)c->boot_max_conns_per_addr)) == NULL) {
		log_warnx("cannot start the boot listener");
		goto err_boot;
	}
	h->boot_fd = -1;	/* MHD's now */
	if (ca_server_pem(app->ca, &h->tls_cert, &h->tls_key) == -1) {
		log_warnx("no server certificate for the control listener");
		goto err_control;
	}
	if ((h->control = start_daemon(&h->ctx_control, h->control_fd,
	    MHD_USE_TLS, threads, h->tls_cert, h->tls_key,
	    (unsigned)c->control_max_conns_per_addr)) == NULL) {
		log_warnx("cannot start the control listener (TLS)");
		goto err_control;
	}
	h->control_fd = -1;
	if ((fd = admin_socket(h, c->state_dir)) == -1) {
		log_warn("admin socket %s", h->admin_path);
		goto err_admin;
	}
	if ((h->admin = start_daemon(&h->ctx_admin, fd, 0, 1, NULL, NULL, 0))
	    == NULL) {
		close(fd);
		log_warnx("cannot start the admin socket listener");
		goto err_admin;
	}
	log_info("boot listener on http://%s:%d, control on https://%s:%d "
	    "(%lu connections at most), admin socket %s", c->boot_listen.host,
	    c->boot_listen.port, c->control_listen.host, c->control_listen.port,
	    h->ctx_control.max_conns, h->admin_path);
	return 0;

err_admin:
	MHD_stop_daemon(h->control);
err_control:
	MHD_stop_daemon(h->boot);
err_boot:
	if (h->boot_fd != -1)
		close(h->boot_fd);
	if (h->control_fd != -1)
		close(h->control_fd);
	ca_pem_free(h->tls_cert, h->tls_key);
	free(h);
	app->http = NULL;
	return -1;
}

void
http_stop(struct bastion *app)
{
	struct http *h = app->http;

	if (h == NULL)
		return;
	/* libmicrohttpd refuses to stop with suspended connections. */
	routes_agent_stop();
	stream_stop_all();
	MHD_stop_daemon(h->admin);
	MHD_stop_daemon(h->control);
	MHD_stop_daemon(h->boot);
	unlink(h->admin_path);
	ca_pem_free(h->tls_cert, h->tls_key);
	free(h);
	app->http = NULL;
}

int
http_peer_cert_der(struct request *r, const unsigned char **der, size_t *len)
{
	const union MHD_ConnectionInfo *ci;
	const gnutls_datum_t *peers;
	unsigned int n = 0;

	if (r->listener != L_CONTROL)
		return -1;
	ci = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return -1;
	peers = gnutls_certificate_get_peers(
	    (gnutls_session_t)ci->tls_session, &n);
	if (peers == NULL || n == 0 || peers[0].size == 0)
		return -1;
	*der = peers[0].data;
	*len = peers[0].size;
	return 0;
}

struct http_waiting *
http_suspend(struct request *r)
{
	r->suspended = 1;
	atomic_fetch_add(&r->app->metrics.waiting, 1);
	MHD_suspend_connection(r->conn);
	/* The connection is the handle: it outlives the parked request. */
	return (struct http_waiting *)r->conn;
}

void
http_resume(struct http_waiting *h)
{
	MHD_resume_connection((struct MHD_Connection *)h);
}
