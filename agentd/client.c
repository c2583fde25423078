/* client.c — agentd's HTTPS client: libcurl (OpenSSL), only the pinned
 * CA trusted, the agent's certificate presented, one handle per thread so
 * the connection is kept alive between calls. The static node build has
 * the same interface in client_tls.c, on OpenSSL alone. */
#ifndef AGENTD_NO_CURL	/* the discovery image has no libcurl, OpenSSL or inih */
#define LOG_SUBSYS "client"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "buf.h"
#include "http1.h"

volatile sig_atomic_t agent_stop;

const char *
aclient_error_message(const json_t *reply)
{
	const char *m = json_string_value(json_object_get(json_object_get(reply,
	    "error"), "message"));

	return m ? m : "";
}

/* JSON in and out; the transfer is the transport's (aclient_raw). */
long
aclient_call(struct aclient *a, const char *method, const char *path,
    const json_t *body, long timeout_ms, json_t **reply, char *err,
    size_t errlen)
{
	struct buf resp;
	char *payload = NULL;
	long code;

	if (reply)
		*reply = NULL;
	err[0] = '\0';
	if (body && (payload = json_dumps(body, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	buf_init(&resp, ACLIENT_REPLY_MAX);
	code = aclient_raw(a, method, path, payload, timeout_ms, &resp, err,
	    errlen);
	if (code && reply && resp.len > 0)
		*reply = json_loadb(resp.data, resp.len, 0, NULL);
	buf_free(&resp);
	free(payload);
	return code;
}

#ifdef AGENTD_HAVE_CURL
#include <curl/curl.h>

#include "log.h"

int
aclient_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void
aclient_global_cleanup(void)
{
	curl_global_cleanup();
}

struct aclient {
	CURL	*c;
	const struct agent_conf *conf;
	unsigned	 turn;		/* agent_server_turn() of base */
	char	 base[AGENT_URL_LEN];
	char	 ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
	int	 mtls;
	int	 fixed;		/* aclient_new_at: base stays */
};

struct aclient *
aclient_new(const struct agent_conf *conf, int mtls)
{
	struct aclient *a;

	if ((a = calloc(1, sizeof *a)) == NULL)
		return NULL;
	a->conf = conf;
	a->turn = agent_server_turn();
	snprintf(a->base, sizeof a->base, "%s", agent_server(conf));
	if (agent_path(conf, "ca.pem", a->ca, sizeof a->ca) == -1 ||
	    agent_path(conf, "cert.pem", a->cert, sizeof a->cert) == -1 ||
	    agent_path(conf, "key.pem", a->key, sizeof a->key) == -1 ||
	    (a->c = curl_easy_init()) == NULL) {
		free(a);
		return NULL;
	}
	a->mtls = mtls;
	return a;
}

struct aclient *
aclient_new_at(const struct agent_conf *conf, const char *url, int mtls)
{
	struct aclient *a;

	if (!h1_url_base_valid(url, sizeof a->base) ||
	    (a = aclient_new(conf, mtls)) == NULL)
		return NULL;
	snprintf(a->base, sizeof a->base, "%s", url);
	a->fixed = 1;
	return a;
}

void
aclient_free(struct aclient *a)
{
	if (a == NULL)
		return;
	curl_easy_cleanup(a->c);
	free(a);
}

/* libcurl reads the key and certificate files for every new connection. */
void
aclient_credentials_changed(void)
{
}

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	if (buf_add(arg, p, size * n) == -1)
		return 0;
	return size * n;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	return agent_stop ? 1 : 0;
}

long
aclient_raw(struct aclient *a, const char *method, const char *path,
    const char *payload, long timeout_ms, struct buf *resp, char *err,
    size_t errlen)
{
	char url[AGENT_URL_LEN + 512], errbuf[CURL_ERROR_SIZE] = "", ua[64];
	struct curl_slist *hdr = NULL;
	long code = 0;
	CURLcode cc;
	CURL *c = a->c;

	err[0] = '\0';
	if (!a->fixed && a->turn != agent_server_turn()) {	/* failover */
		a->turn = agent_server_turn();
		snprintf(a->base, sizeof a->base, "%s", agent_server(a->conf));
	}
	snprintf(url, sizeof url, "%s%s", a->base, path);
	snprintf(ua, sizeof ua, "bastion-agentd/%s", BASTION_VERSION);
	hdr = curl_slist_append(hdr, "Accept: application/json");
	if (payload)
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	/* Only the CA pinned at enrollment, never the system store. */
	curl_easy_setopt(c, CURLOPT_CAINFO, a->ca);
	curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (a->mtls) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, a->cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, a->key);
	}
	if (payload) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)strlen(payload));
	}
	if (strcmp(method, "GET") == 0)
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "POST") != 0 || payload == NULL)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		snprintf(err, errlen, "%s", errbuf[0] ? errbuf :
		    curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
out:
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdr);
	return code;
}

long
aclient_fetch_unverified(const struct agent_conf *conf, const char *path,
    size_t max, char **body, char *err, size_t errlen)
{
	char url[AGENT_URL_LEN + 512], errbuf[CURL_ERROR_SIZE] = "";
	struct buf b;
	long code = 0;
	CURL *h;

	*body = NULL;
	if ((h = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "curl_easy_init failed");
		return 0;
	}
	snprintf(url, sizeof url, "%s%s", agent_server(conf), path);
	buf_init(&b, max);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	if (curl_easy_perform(h) != CURLE_OK)
		snprintf(err, errlen, "%s", errbuf);
	else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		*body = buf_take(&b);
	}
	buf_free(&b);
	curl_easy_cleanup(h);
	return code;
}
#endif /* AGENTD_HAVE_CURL */
#endif /* AGENTD_NO_CURL */
