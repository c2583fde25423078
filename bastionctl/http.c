/* http.c — bastionctl's client: libcurl to the local admin socket
 * (CURLOPT_UNIX_SOCKET_PATH) or to the control listener over HTTPS, JSON in
 * and out, and every failure explained in one line on stderr. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <curl/curl.h>

#include "ctl.h"

volatile sig_atomic_t ctl_interrupted;

struct ctl_http {
	CURL	*curl;
	char	 errbuf[CURL_ERROR_SIZE];
	char	*base;		/* URL prefix without a trailing '/' */
	char	*auth;		/* "Authorization: Bearer ..." or NULL */
	char	*confirm;	/* "X-Confirm: ..." or NULL */
	struct buf *resp;	/* the transfer in progress writes here */
	int	 overflow;	/* the response hit CTL_MAX_RESPONSE */
};

static int	curl_ready;

/* Anything that would let a value break out of a URL or a header line. */
static int
has_ctl_or_space(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 1;
	return 0;
}

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct ctl_http *h = arg;

	if (buf_add(h->resp, p, size * n) == -1) {
		h->overflow = 1;
		return 0;	/* curl fails the transfer: CURLE_WRITE_ERROR */
	}
	return size * n;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	return ctl_interrupted ? 1 : 0;
}

/* Check what the user gave us before anything goes on the wire. */
static int
check_target(const struct ctl *c)
{
	if (c->socket && strlen(c->socket) >=
	    sizeof(((struct sockaddr_un *)0)->sun_path)) {
		ctl_error("%s: socket path too long", c->socket);
		return -1;
	}
	if (c->server && ((strncmp(c->server, "http://", 7) != 0 &&
	    strncmp(c->server, "https://", 8) != 0) ||
	    has_ctl_or_space(c->server))) {
		ctl_error("%s: not an http:// or https:// URL (e.g. "
		    "https://bastion.lan:8443)", c->server);
		return -1;
	}
	if (c->token && (*c->token == '\0' || has_ctl_or_space(c->token))) {
		ctl_error("the token is empty or contains spaces or control "
		    "characters");
		return -1;
	}
	if (c->confirm && (*c->confirm == '\0' ||
	    has_ctl_or_space(c->confirm))) {
		ctl_error("--confirm: the target is empty or contains spaces or "
		    "control characters");
		return -1;
	}
	return 0;
}

static int
http_setup(struct ctl *c)
{
	struct ctl_http *h;
	struct buf b;

	if (c->http)
		return 0;
	if (check_target(c) == -1)
		return -1;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			ctl_error("cannot initialise libcurl");
			return -1;
		}
		curl_ready = 1;
	}
	if ((h = calloc(1, sizeof *h)) == NULL)
		goto err_alloc;
	if ((h->curl = curl_easy_init()) == NULL)
		goto err_curl;
	buf_init(&b, 4096);
	if (buf_adds(&b, c->socket ? "http://localhost" : c->server) == -1)
		goto err_base;
	while (b.len > 0 && b.data[b.len - 1] == '/')
		b.data[--b.len] = '\0';
	h->base = buf_take(&b);
	if (c->token) {
		if (buf_printf(&b, "Authorization: Bearer %s", c->token) == -1)
			goto err_auth;
		h->auth = buf_take(&b);
	}
	if (c->confirm) {
		if (buf_printf(&b, "X-Confirm: %s", c->confirm) == -1)
			goto err_confirm;
		h->confirm = buf_take(&b);
	}
	c->http = h;
	return 0;

err_confirm:
	free(h->auth);
err_auth:
	free(h->base);
err_base:
	buf_free(&b);
	curl_easy_cleanup(h->curl);
err_curl:
	free(h);
err_alloc:
	ctl_error("out of memory");
	return -1;
}

void
ctl_http_free(struct ctl *c)
{
	struct ctl_http *h = c->http;

	if (h) {
		curl_easy_cleanup(h->curl);
		free(h->base);
		if (h->auth) {
			memset(h->auth, 0, strlen(h->auth));
			free(h->auth);
		}
		free(h->confirm);
		free(h);
		c->http = NULL;
	}
	if (curl_ready) {
		curl_global_cleanup();
		curl_ready = 0;
	}
}

char *
ctl_escape(const char *s)
{
	char *e, *copy;

	if ((e = curl_easy_escape(NULL, s, 0)) == NULL)
		return NULL;
	copy = strdup(e);
	curl_free(e);
	return copy;
}

char *
ctl_path3(const char *prefix, const char *arg, const char *suffix)
{
	char *esc, *p;
	size_t len;

	if ((esc = ctl_escape(arg)) == NULL)
		return NULL;
	len = strlen(prefix) + strlen(esc) + strlen(suffix) + 1;
	if ((p = malloc(len)) != NULL)
		snprintf(p, len, "%s%s%s", prefix, esc, suffix);
	free(esc);
	return p;
}

char *
ctl_agent_path(const char *target, const char *noun, const char *item,
    const char *action)
{
	char mid[64], suffix[64], *base, *p;

	snprintf(mid, sizeof mid, "/%s%s", noun, item ? "/" : "");
	if ((base = ctl_path3("/api/v1/agents/", target, mid)) == NULL ||
	    item == NULL)
		return base;
	snprintf(suffix, sizeof suffix, "%s%s", action ? "/" : "",
	    action ? action : "");
	p = ctl_path3(base, item, suffix);
	free(base);
	return p;
}

static const char *
where(const struct ctl *c)
{
	return c->socket ? c->socket : c->server;
}

/* No HTTP answer: say what went wrong and what usually fixes it. */
static void
explain_curl(struct ctl *c, CURLcode rc)
{
	struct ctl_http *h = c->http;
	const char *detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
	char clean[CURL_ERROR_SIZE + 16];
	long oserr = 0;

	curl_easy_getinfo(h->curl, CURLINFO_OS_ERRNO, &oserr);
	ctl_clean(detail, clean, sizeof clean, 0);
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		if (c->socket && oserr == ENOENT)
			ctl_error("cannot connect to %s: no such socket (is "
			    "bastion running? Use --socket STATE_DIR/admin.sock "
			    "or --server URL)", c->socket);
		else if (c->socket && (oserr == EACCES || oserr == EPERM))
			ctl_error("cannot connect to %s: permission denied (the "
			    "admin socket is for root and the bastion user; "
			    "others use --server URL --token TOKEN)", c->socket);
		else if (c->socket)
			ctl_error("cannot connect to %s: %s (is bastion "
			    "running?)", c->socket, oserr ? strerror((int)oserr) :
			    clean);
		else
			ctl_error("cannot connect to %s: %s (is bastion running "
			    "and control.listen reachable from here?)", c->server,
			    clean);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		ctl_error("cannot resolve the host in %s: %s", c->server, clean);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		if (c->ca_pem) {
			ctl_error("%s: the server's certificate is not trusted: "
			    "%s (the pinned CA did not issue it, or the URL's "
			    "host is not among its names: that bastion's "
			    "[control] names)", c->server, clean);
			break;
		}
		ctl_error("%s: the server's certificate is not trusted: %s (pass "
		    "bastion's CA with --cacert FILE or BASTION_CACERT: "
		    "STATE_DIR/ca/ca.pem on the appliance)", c->server, clean);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		ctl_error("cannot use the CA file %s: %s", c->cacert ?
		    c->cacert : "(system default)", clean);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		ctl_error("TLS handshake with %s failed: %s (is that bastion's "
		    "HTTPS control listener?)", c->server, clean);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		ctl_error("%s: no answer within %ld s", where(c),
		    (c->timeout_ms ? c->timeout_ms : CTL_TIMEOUT_MS) / 1000);
		break;
	case CURLE_WRITE_ERROR:
		if (h->overflow) {
			ctl_error("%s: the answer is larger than %d MiB",
			    where(c), CTL_MAX_RESPONSE >> 20);
			break;
		}
		/* FALLTHROUGH */
	default:
		ctl_error("request to %s failed: %s", where(c), clean);
		break;
	}
}

/* An HTTP error status: print the server's own message. */
static void
explain_status(struct ctl *c, long status, const struct buf *b)
{
	char clean[1024];
	const char *msg = NULL;
	json_t *j = NULL;

	if (b->len)
		j = json_loadb(b->data, b->len, 0, NULL);
	if (j)
		msg = json_string_value(json_object_get(json_object_get(j,
		    "error"), "message"));
	if (msg) {
		ctl_clean(msg, clean, sizeof clean, 0);
		if ((status == 401 || status == 403) && c->token == NULL &&
		    c->server)
			ctl_error("%s (pass an API token with --token or "
			    "BASTION_TOKEN)", clean);
		else
			ctl_error("%s", clean);
	} else {
		char line[200];
		size_t n = 0;

		if (b->data)
			while (n < sizeof line - 1 && b->data[n] &&
			    b->data[n] != '\n' && b->data[n] != '\r')
				n++;
		snprintf(line, sizeof line, "%.*s", (int)n, b->data ? b->data : "");
		ctl_clean(line, clean, sizeof clean, 0);
		ctl_error("%s answered HTTP %ld%s%s", where(c), status,
		    *clean ? ": " : "", clean);
	}
	json_decref(j);
}

static int
perform(struct ctl *c, const char *method, const char *path,
    const json_t *body, struct buf *resp, enum ctl_fail *fail, long *status)
{
	struct ctl_http *h;
	struct curl_slist *hdrs = NULL, *t;
	char *payload = NULL;
	long timeout = c->timeout_ms ? c->timeout_ms : CTL_TIMEOUT_MS;
	long code = 0;
	struct buf url;
	CURLcode rc;
	int ret = -1;

	*fail = CTL_FAIL_LOCAL;
	buf_init(resp, CTL_MAX_RESPONSE);
	if (http_setup(c) == -1)
		return -1;
	h = c->http;
	buf_init(&url, 8192);
	if (buf_printf(&url, "%s%s", h->base, path) == -1)
		goto err_url;
	if (body && (payload = json_dumps(body, JSON_COMPACT)) == NULL)
		goto err_url;
	if ((t = curl_slist_append(hdrs, "Accept: application/json")) == NULL)
		goto err_hdrs;
	hdrs = t;
	if ((t = curl_slist_append(hdrs, "User-Agent: bastionctl/"
	    BASTION_VERSION)) == NULL)
		goto err_hdrs;
	hdrs = t;
	if (body) {
		if ((t = curl_slist_append(hdrs,
		    "Content-Type: application/json")) == NULL)
			goto err_hdrs;
		hdrs = t;
	}
	if (h->auth) {
		if ((t = curl_slist_append(hdrs, h->auth)) == NULL)
			goto err_hdrs;
		hdrs = t;
	}
	if (h->confirm) {
		if ((t = curl_slist_append(hdrs, h->confirm)) == NULL)
			goto err_hdrs;
		hdrs = t;
	}

	curl_easy_reset(h->curl);
	h->errbuf[0] = '\0';
	h->resp = resp;
	h->overflow = 0;
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(h->curl, CURLOPT_URL, url.data);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (c->socket)
		curl_easy_setopt(h->curl, CURLOPT_UNIX_SOCKET_PATH, c->socket);
	else if (c->ca_pem) {
		/* That CA alone: neither the system's CAs nor a file. */
		struct curl_blob blob = { (void *)c->ca_pem, strlen(c->ca_pem),
		    CURL_BLOB_COPY };

		curl_easy_setopt(h->curl, CURLOPT_CAINFO, NULL);
		curl_easy_setopt(h->curl, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(h->curl, CURLOPT_CAINFO_BLOB, &blob);
	} else if (c->cacert)
		curl_easy_setopt(h->curl, CURLOPT_CAINFO, c->cacert);
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS,
	    timeout < 10000 ? timeout : 10000L);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	if (payload) {
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE,
		    (long)strlen(payload));
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE, 0L);
	} else {
		curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
		if (strcmp(method, "GET") != 0)
			curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
	}

	rc = curl_easy_perform(h->curl);
	h->resp = NULL;
	if (rc == CURLE_ABORTED_BY_CALLBACK && ctl_interrupted) {
		*fail = CTL_FAIL_LOCAL;
		goto out;
	}
	if (rc != CURLE_OK) {
		*fail = CTL_FAIL_CONNECT;
		if (!c->quiet_errors)
			explain_curl(c, rc);
		goto out;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &code);
	if (status)
		*status = code;
	if (code < 200 || code > 299) {
		*fail = CTL_FAIL_SERVER;
		if (!c->quiet_errors)
			explain_status(c, code, resp);
		goto out;
	}
	*fail = CTL_FAIL_NONE;
	ret = 0;
out:
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	free(payload);
	buf_free(&url);
	if (ret == -1)
		buf_free(resp);
	return ret;

err_hdrs:
	curl_slist_free_all(hdrs);
	free(payload);
err_url:
	buf_free(&url);
	ctl_error("out of memory");
	return -1;
}

int
ctl_request_raw(struct ctl *c, const char *method, const char *path,
    const json_t *body, struct buf *out, enum ctl_fail *fail, long *status)
{
	enum ctl_fail f;
	struct buf resp;

	if (status)
		*status = 0;
	if (perform(c, method, path, body, &resp, &f, status) == -1) {
		if (fail)
			*fail = f;
		return -1;
	}
	if (fail)
		*fail = CTL_FAIL_NONE;
	*out = resp;
	return 0;
}

int
ctl_request(struct ctl *c, const char *method, const char *path,
    const json_t *body, json_t **out, enum ctl_fail *fail, long *status)
{
	json_error_t jerr;
	struct buf resp;
	json_t *j;

	if (ctl_request_raw(c, method, path, body, &resp, fail, status) == -1)
		return -1;
	if (resp.len == 0)
		j = json_null();
	else if ((j = json_loadb(resp.data, resp.len, JSON_DECODE_ANY,
	    &jerr)) == NULL) {
		if (fail)
			*fail = CTL_FAIL_LOCAL;
		if (!c->quiet_errors)
			ctl_error("%s %s: the answer is not JSON (%s)", method,
			    path, jerr.text);
		buf_free(&resp);
		return -1;
	}
	buf_free(&resp);
	if (out)
		*out = j;
	else
		json_decref(j);
	return 0;
}
