/* http.h — the three listeners (boot HTTP, control HTTPS, admin unix
 * socket) on libmicrohttpd, and the request/response API handlers use.
 * Handlers never touch MHD: they read a struct request and answer with
 * exactly one http_reply_*() call. */
#ifndef BASTION_HTTP_H
#define BASTION_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

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

struct route;

struct request {
	char			 id[17];	/* request id, hex */
	enum listener		 listener;
	const char		*method;
	const char		*path;
	char			 client[64];	/* numeric address or "admin" */
	int			 from_loopback;
	struct buf		 body;
	int			 body_too_large;
	char			 params[HTTP_MAX_PARAMS][HTTP_PARAM_LEN];
	int			 nparams;
	const struct route	*route;
	struct bastion		*app;
	void			*conn;		/* MHD connection, http.c only */
	int			 status;	/* set by http_reply_* */
	int			 replied;
};

typedef void (*route_handler)(struct request *);

struct route {
	unsigned	 listeners;	/* mask of enum listener */
	const char	*method;
	const char	*pattern;	/* "/api/v1/machines/{mac}/events" */
	route_handler	 handler;
	size_t		 max_body;	/* 0: HTTP_DEFAULT_MAX_BODY */
};

/* Route tables, one per routes_*.c, each ends with a zeroed entry. */
extern const struct route routes_boot[];
extern const struct route routes_api[];
extern const struct route routes_install[];

int	http_start(struct bastion *);
void	http_stop(struct bastion *);
/* PEM of the control listener's certificate chain and key changed. */

/* Query argument (already URL-decoded) or NULL. */
const char *http_query(struct request *, const char *key);
const char *http_header(struct request *, const char *name);

/* Exactly one of these per request. They take ownership of nothing
 * except http_reply_json, which steals the reference to body. */
void	http_reply_json(struct request *, int status, json_t *body);
void	http_reply_error(struct request *, int status, const char *code,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	http_reply_text(struct request *, int status, const char *ctype,
	    const char *text, size_t len);
/* Serve a file from disk (fd ownership moves to the response). */
void	http_reply_file(struct request *, const char *path, const char *ctype);

/* Parse the body as a JSON object; on failure replies 400 and returns NULL. */
json_t	*http_body_json(struct request *);

#endif
