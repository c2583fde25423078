/* routes_ui.c — the web panel's static files (SHARE_DIR/webroot) on the
 * control listener. Open: they are the same for everyone and hold no
 * data; everything behind them is the authenticated /api/v1. Every answer
 * carries a strict Content-Security-Policy: the panel runs only its own
 * scripts and styles and talks only to its own origin. */
#define LOG_SUBSYS "ui"
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "bastion.h"
#include "config.h"
#include "http.h"
#include "path.h"

#define UI_CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
	"img-src 'self'; connect-src 'self'; base-uri 'none'; " \
	"form-action 'self'; frame-ancestors 'none'"

static const struct {
	const char	*ext;
	const char	*ctype;
} ui_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".json", "application/json" },
};

/* A file name the panel may serve: 1-64 of [a-z0-9._-], no leading dot
 * (so no "..", no hidden files), and a known extension. NULL otherwise. */
static const char *
ui_ctype(const char *name)
{
	size_t len = strlen(name), i, el;
	const char *p;

	if (len == 0 || len > 64 || name[0] == '.')
		return NULL;
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '.' || *p == '_' || *p == '-'))
			return NULL;
	for (i = 0; i < sizeof ui_types / sizeof ui_types[0]; i++) {
		el = strlen(ui_types[i].ext);
		if (len > el && strcmp(name + len - el, ui_types[i].ext) == 0)
			return ui_types[i].ctype;
	}
	return NULL;
}

/* webroot[/sub]/name */
static void
ui_serve(struct request *r, const char *sub, const char *name)
{
	const struct config *c;
	const char *ctype;
	char dir[PATH_MAX], path[PATH_MAX];
	int rc;

	http_add_header(r, "Content-Security-Policy", UI_CSP);
	http_add_header(r, "X-Frame-Options", "DENY");
	http_add_header(r, "Referrer-Policy", "no-referrer");
	if ((ctype = ui_ctype(name)) == NULL) {
		http_reply_error(r, 404, "not_found", "no such file: %s", r->path);
		return;
	}
	c = bastion_config_acquire(r->app);
	rc = path_join(dir, sizeof dir, c->share_dir, sub ? "webroot/vendor" :
	    "webroot");
	bastion_config_release(r->app);
	if (rc == -1 || path_join(path, sizeof path, dir, name) == -1) {
		http_reply_error(r, 404, "not_found", "no such file: %s", r->path);
		return;
	}
	http_reply_file(r, path, ctype);
}

static void
get_index(struct request *r)
{
	ui_serve(r, NULL, "index.html");
}

static void
get_ui_file(struct request *r)
{
	ui_serve(r, NULL, r->params[0]);
}

/* Third-party modules (make panel-deps): webroot/vendor/NAME. */
static void
get_ui_vendor(struct request *r)
{
	ui_serve(r, "vendor", r->params[0]);
}

/* Open by design: static files, no data (see above). */
const struct route routes_ui[] = {
	{ L_CONTROL, "GET", "/", get_index, 0,
	    ROLE_NONE, SCOPE_READ, 0, NULL },
	{ L_CONTROL, "GET", "/ui/{name}", get_ui_file, 0,
	    ROLE_NONE, SCOPE_READ, 0, NULL },
	{ L_CONTROL, "GET", "/ui/vendor/{name}", get_ui_vendor, 0,
	    ROLE_NONE, SCOPE_READ, 0, NULL },
	{ 0, NULL, NULL, NULL, 0, ROLE_NONE, SCOPE_READ, 0, NULL },
};
