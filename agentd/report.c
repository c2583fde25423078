/* report.c — POST a JSON report with libcurl: per-attempt timeouts,
 * retries with exponential backoff and jitter, an overall deadline. */
#define LOG_SUBSYS "report"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "buf.h"
#include "inventory.h"
#include "log.h"

#define REPLY_MAX	(64 * 1024)

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

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;

	/* A reply longer than the cap is cut, not an error: it is only
	 * logged. */
	if (buf_add(b, p, size * n) == -1)
		return size * n;
	return size * n;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int
retryable(long status)
{
	return status == 0 || status == 408 || status == 429 || status >= 500;
}

int
report_post(const char *url, const char *body, const struct report_opts *o,
    long *status, char **reply)
{
	char errbuf[CURL_ERROR_SIZE], ua[64];
	struct curl_slist *hdr = NULL;
	struct buf resp;
	long code = 0, start = now_ms(), wait, left;
	CURLcode cc;
	CURL *c;
	int attempt, rc = -1;

	if ((c = curl_easy_init()) == NULL) {
		log_warnx("curl_easy_init failed");
		return -1;
	}
	buf_init(&resp, REPLY_MAX);
	snprintf(ua, sizeof ua, "bastion-agentd/%s", BASTION_VERSION);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");	/* no 100-continue wait */
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)strlen(body));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (o->cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->cacert);

	for (attempt = 1; ; attempt++) {
		buf_reset(&resp);
		errbuf[0] = '\0';
		code = 0;
		cc = curl_easy_perform(c);
		if (cc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		if (cc == CURLE_OK && code >= 200 && code < 300) {
			log_info("report accepted by %s (HTTP %ld, attempt %d)",
			    url, code, attempt);
			rc = 0;
			break;
		}
		if (cc != CURLE_OK)
			log_warnx("attempt %d: %s: %s", attempt, url,
			    errbuf[0] ? errbuf : curl_easy_strerror(cc));
		else
			log_warnx("attempt %d: %s: HTTP %ld: %.300s", attempt,
			    url, code, resp.data ? resp.data : "");
		if (!retryable(code)) {
			log_warnx("the report was refused; not retrying");
			break;
		}
		if (attempt >= o->max_attempts) {
			log_warnx("giving up after %d attempts", attempt);
			break;
		}
		wait = report_backoff_ms(o, attempt, arc4random());
		left = o->deadline_ms - (now_ms() - start);
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
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return rc;
}
