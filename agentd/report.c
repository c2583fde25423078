/* report.c — POST a JSON report: per-attempt timeouts, retries with
 * exponential backoff and jitter, an overall deadline.
 *
 * Two transports share the retry loop: libcurl (http and https; the
 * default), and agentd's own HTTP/1.1 client (http1.c) over a plain socket
 * (http only). The discovery image (-DAGENTD_NO_CURL) and the static node
 * build (-DAGENTD_STATIC) only have the latter. The report goes to
 * bastion's plain-HTTP boot listener anyway, and libcurl with the
 * libraries it pulls in would make the initrd six times larger
 * (image/README.md has the numbers). */
#define LOG_SUBSYS "report"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http1.h"	/* first: says whether this build has libcurl */
#ifdef AGENTD_HAVE_CURL
#include <curl/curl.h>
#endif

#include "buf.h"
#include "clock.h"
#include "inventory.h"
#include "log.h"

#define REPLY_MAX	(64 * 1024)
#define ERRLEN		512

void
report_opts_default(struct report_opts *o)
{
	memset(o, 0, sizeof *o);
	o->connect_timeout_ms = 3000;
	o->timeout_ms = 15000;
	o->max_attempts = 12;
	o->backoff_initial_ms = 500;
	o->backoff_max_ms = 30000;
	o->deadline_ms = 300000;
#ifndef AGENTD_HAVE_CURL
	o->transport = REPORT_PLAIN;
#else
	o->transport = REPORT_CURL;
#endif
}

long
report_backoff_ms(const struct report_opts *o, int attempt, uint32_t rnd)
{
	long d = o->backoff_initial_ms;
	int i;

	if (d <= 0)
		return 0;
	for (i = 1; i < attempt && d < o->backoff_max_ms; i++)
		d *= 2;
	if (d > o->backoff_max_ms)
		d = o->backoff_max_ms;
	return d / 2 + (long)(rnd % (uint32_t)(d / 2 + 1));
}

int
report_url(const char *url, char *out, size_t len)
{
	const char *host, *path;
	int n;

	if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return -1;
	if (*host == '\0' || *host == '/')
		return -1;
	path = strchr(host, '/');
	if (path == NULL || strcmp(path, "/") == 0)
		n = snprintf(out, len, "%.*s/api/v1/discover",
		    (int)(path ? (size_t)(path - url) : strlen(url)), url);
	else
		n = snprintf(out, len, "%s", url);
	if (n < 0 || (size_t)n >= len)
		return -1;
	return 0;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* --- plain HTTP/1.1 over a socket (http1.c) ------------------------------ */

/* One POST. Returns the HTTP status, or 0 with err set. */
static long
plain_post(const char *url, const char *body, const struct report_opts *o,
    struct buf *reply, char *err)
{
	struct h1_url u;
	struct h1_sock s = { -1, NULL };
	struct h1_io io;
	struct h1_reply r;
	struct buf req;
	long start = clock_mono_ms();

	if (h1_url_parse(url, &u) == -1 || u.tls) {
		snprintf(err, ERRLEN, "not a plain http:// URL this build "
		    "can reach");
		return 0;
	}
	if ((s.fd = h1_connect(&u, start + o->connect_timeout_ms, NULL, err,
	    ERRLEN)) == -1)
		return 0;
	h1_io_socket(&io, &s);
	buf_init(&req, 64 * 1024 + strlen(body));
	r.status = 0;
	if (h1_request(&req, "POST", &u, u.path, "application/json", body,
	    strlen(body), 1) == -1)
		snprintf(err, ERRLEN, "request too large");
	else if (io.write(io.ctx, req.data, req.len, start + o->timeout_ms,
	    err, ERRLEN) == 0 && h1_read_reply(&io, 0, reply,
	    start + o->timeout_ms, &r, err, ERRLEN) == -1 &&
	    strncmp(err, "answer larger", 13) != 0)
		r.status = 0;	/* a cut reply is still an answer: it is logged */
	buf_free(&req);
	close(s.fd);
	return r.status;
}

/* --- libcurl --------------------------------------------------------- */

#ifdef AGENTD_HAVE_CURL
static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	/* A reply longer than the cap is cut, not an error: it is only
	 * logged. */
	buf_add_cut(arg, p, size * n);
	return size * n;
}

static long
curl_post(CURL *c, struct buf *reply, char *err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	long code = 0;
	CURLcode cc;

	curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		snprintf(err, ERRLEN, "%s", errbuf[0] ? errbuf :
		    curl_easy_strerror(cc));
		return 0;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	return code;
}

static CURL *
curl_setup(const char *url, const char *body, const struct report_opts *o,
    struct curl_slist **hdr)
{
	char ua[64];
	CURL *c;

	if ((c = curl_easy_init()) == NULL)
		return NULL;
	snprintf(ua, sizeof ua, "bastion-agentd/%s", BASTION_VERSION);
	*hdr = curl_slist_append(NULL, "Content-Type: application/json");
	*hdr = curl_slist_append(*hdr, "Expect:");	/* no 100-continue */
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdr);
	curl_easy_setopt(c, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)strlen(body));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	if (o->cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->cacert);
	return c;
}
#endif

/* --- the retry loop -------------------------------------------------- */

static int
retryable(long status)
{
	return status == 0 || status == 408 || status == 429 || status >= 500;
}

int
report_post(const char *url, const char *body, const struct report_opts *o,
    long *status, char **reply)
{
	char err[ERRLEN];
	struct buf resp;
	long code = 0, start = clock_mono_ms(), wait, left;
	int attempt, rc = -1, shown;
#ifdef AGENTD_HAVE_CURL
	struct curl_slist *hdr = NULL;
	CURL *c = NULL;

	if (o->transport == REPORT_CURL &&
	    (c = curl_setup(url, body, o, &hdr)) == NULL) {
		log_warnx("curl_easy_init failed");
		return -1;
	}
#else
	if (o->transport != REPORT_PLAIN) {
		log_warnx("this agentd was built without libcurl");
		return -1;
	}
#endif
	/* The query (an install key) is not for the console. */
	shown = (int)strcspn(url, "?");
	buf_init(&resp, REPLY_MAX);
	for (attempt = 1; ; attempt++) {
		buf_reset(&resp);
		err[0] = '\0';
#ifdef AGENTD_HAVE_CURL
		if (c != NULL)
			code = curl_post(c, &resp, err);
		else
#endif
			code = plain_post(url, body, o, &resp, err);
		if (code >= 200 && code < 300) {
			log_info("report accepted by %.*s (HTTP %ld, attempt "
			    "%d)", shown, url, code, attempt);
			rc = 0;
			break;
		}
		if (code == 0)
			log_warnx("attempt %d: %.*s: %s", attempt, shown, url,
			    err);
		else
			log_warnx("attempt %d: %.*s: HTTP %ld: %.300s", attempt,
			    shown, url, code, resp.data ? resp.data : "");
		if (!retryable(code)) {
			log_warnx("the report was refused; not retrying");
			break;
		}
		if (attempt >= o->max_attempts) {
			log_warnx("giving up after %d attempts", attempt);
			break;
		}
		wait = report_backoff_ms(o, attempt, arc4random());
		left = o->deadline_ms - (clock_mono_ms() - start);
		if (left <= wait) {
			log_warnx("giving up: deadline of %ld ms reached",
			    o->deadline_ms);
			break;
		}
		log_info("retrying in %ld ms", wait);
		sleep_ms(wait);
	}
	*status = code;
	if (reply)
		*reply = buf_take(&resp);
	buf_free(&resp);
#ifdef AGENTD_HAVE_CURL
	curl_slist_free_all(hdr);
	if (c != NULL)
		curl_easy_cleanup(c);
#endif
	return rc;
}
