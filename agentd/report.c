/* report.c — POST a JSON report: per-attempt timeouts, retries with
 * exponential backoff and jitter, an overall deadline.
 *
 * Two transports share the retry loop: libcurl (http and https; the
 * default), and a minimal HTTP/1.1 client over a plain socket (http only).
 * The discovery image is built with -DAGENTD_NO_CURL and only has the
 * latter: the report goes to bastion's plain-HTTP boot listener anyway,
 * and libcurl with the libraries it pulls in would make the initrd six
 * times larger (image/README.md has the numbers). */
#define LOG_SUBSYS "report"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef AGENTD_NO_CURL
#include <curl/curl.h>
#endif

#include "buf.h"
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
#ifdef AGENTD_NO_CURL
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

/* --- plain HTTP/1.1 over a socket ---------------------------------------- */

struct target {
	char	host[256];	/* as in the URL, without IPv6 brackets */
	char	port[8];
	char	hostport[300];	/* for the Host header */
	const char *path;
};

static int
parse_http_url(const char *url, struct target *t)
{
	const char *h, *end, *colon, *close_br;
	size_t n;

	if (strncmp(url, "http://", 7) != 0)
		return -1;
	h = url + 7;
	end = h + strcspn(h, "/?#");
	t->path = *end == '/' ? end : "/";
	if ((size_t)(end - h) >= sizeof t->hostport || end == h)
		return -1;
	snprintf(t->hostport, sizeof t->hostport, "%.*s", (int)(end - h), h);
	snprintf(t->port, sizeof t->port, "80");
	if (*h == '[') {
		if ((close_br = memchr(h, ']', (size_t)(end - h))) == NULL)
			return -1;
		n = (size_t)(close_br - h - 1);
		colon = close_br + 1 < end && close_br[1] == ':' ? close_br + 1 :
		    NULL;
		h++;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		n = (size_t)((colon ? colon : end) - h);
	}
	if (n == 0 || n >= sizeof t->host)
		return -1;
	memcpy(t->host, h, n);
	t->host[n] = '\0';
	if (colon) {
		n = (size_t)(end - colon - 1);
		if (n == 0 || n >= sizeof t->port ||
		    strspn(colon + 1, "0123456789") < n)
			return -1;
		memcpy(t->port, colon + 1, n);
		t->port[n] = '\0';
	}
	return 0;
}

/* Waits for fd to be ready for ev until the absolute deadline. */
static int
wait_fd(int fd, short ev, long deadline)
{
	struct pollfd p = { fd, ev, 0 };
	long left;
	int n;

	for (;;) {
		if ((left = deadline - now_ms()) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n == -1 && errno != EINTR)
			return -1;
	}
}

static int
connect_to(const struct target *t, long conn_deadline, char *err)
{
	struct addrinfo hints, *res, *ai;
	socklen_t len;
	int fd = -1, rc, soerr;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(t->host, t->port, &hints, &res)) != 0) {
		snprintf(err, ERRLEN, "%.200s: %s", t->host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd == -1) {
			snprintf(err, ERRLEN, "socket: %s", strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS &&
		    wait_fd(fd, POLLOUT, conn_deadline) == 0) {
			len = sizeof soerr;
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len)
			    == -1)
				soerr = errno;
			if (soerr == 0)
				break;
			errno = soerr;
		}
		snprintf(err, ERRLEN, "connect to %.200s port %s: %s", t->host,
		    t->port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static int
send_all(int fd, const char *p, size_t n, long deadline)
{
	ssize_t w;

	while (n > 0) {
		if (wait_fd(fd, POLLOUT, deadline) == -1)
			return -1;
		if ((w = send(fd, p, n, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One POST. Returns the HTTP status, or 0 with err set. */
static long
plain_post(const char *url, const char *body, const struct report_opts *o,
    struct buf *reply, char *err)
{
	struct target t;
	struct buf req, resp;
	long start = now_ms(), status = 0;
	char chunk[4096], *hdr_end;
	ssize_t n;
	int fd;

	if (parse_http_url(url, &t) == -1) {
		snprintf(err, ERRLEN, "not a plain http:// URL this build "
		    "can reach");
		return 0;
	}
	if ((fd = connect_to(&t, start + o->connect_timeout_ms, err)) == -1)
		return 0;
	buf_init(&req, 64 * 1024 + strlen(body));
	buf_init(&resp, REPLY_MAX);
	if (buf_printf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: bastion-agentd/%s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n%s", t.path, t.hostport,
	    BASTION_VERSION, strlen(body), body) == -1) {
		snprintf(err, ERRLEN, "request too large");
		goto out;
	}
	if (send_all(fd, req.data, req.len, start + o->timeout_ms) == -1) {
		snprintf(err, ERRLEN, "sending: %s", strerror(errno));
		goto out;
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		if (wait_fd(fd, POLLIN, start + o->timeout_ms) == -1) {
			snprintf(err, ERRLEN, "waiting for the answer: %s",
			    strerror(errno));
			goto out;
		}
		if ((n = recv(fd, chunk, sizeof chunk, 0)) == 0)
			break;
		if (n == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			snprintf(err, ERRLEN, "reading: %s", strerror(errno));
			goto out;
		}
		if (buf_add(&resp, chunk, (size_t)n) == -1)
			break;	/* enough to know the status */
	}
	if (resp.data == NULL || sscanf(resp.data, "HTTP/1.%*1[01] %3ld ",
	    &status) != 1 || status < 100 || status > 599) {
		snprintf(err, ERRLEN, "not an HTTP response");
		status = 0;
		goto out;
	}
	if ((hdr_end = strstr(resp.data, "\r\n\r\n")) != NULL)
		buf_adds(reply, hdr_end + 4);
out:
	buf_free(&resp);
	buf_free(&req);
	close(fd);
	return status;
}

/* --- libcurl --------------------------------------------------------- */

#ifndef AGENTD_NO_CURL
static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	/* A reply longer than the cap is cut, not an error: it is only
	 * logged. */
	buf_add(arg, p, size * n);
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
	long code = 0, start = now_ms(), wait, left;
	int attempt, rc = -1;
#ifndef AGENTD_NO_CURL
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
	buf_init(&resp, REPLY_MAX);
	for (attempt = 1; ; attempt++) {
		buf_reset(&resp);
		err[0] = '\0';
#ifndef AGENTD_NO_CURL
		if (c != NULL)
			code = curl_post(c, &resp, err);
		else
#endif
			code = plain_post(url, body, o, &resp, err);
		if (code >= 200 && code < 300) {
			log_info("report accepted by %s (HTTP %ld, attempt %d)",
			    url, code, attempt);
			rc = 0;
			break;
		}
		if (code == 0)
			log_warnx("attempt %d: %s: %s", attempt, url, err);
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
#ifndef AGENTD_NO_CURL
	curl_slist_free_all(hdr);
	if (c != NULL)
		curl_easy_cleanup(c);
#endif
	return rc;
}
