/* notify.c — the delivery thread: takes notices off a bounded queue,
 * fans each out to the channels whose min_level it reaches, and sends
 * with libcurl (SMTP, HTTP). It runs in the HTTP worker, the process
 * that holds the config: channel passwords and tokens are config values
 * (bastion.conf, 0640 root:bastion in the package), not the CA or job
 * keys the worker must never hold (DESIGN §17). */
#define LOG_SUBSYS "notify"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "bastion.h"
#include "buf.h"
#include "channels.h"
#include "clock.h"
#include "db_alerts.h"
#include "log.h"
#include "notify.h"

#define NOTIFY_QUEUE_MAX	4096
#define NOTIFY_BODY_MAX		(64 * 1024)

static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct notice	*head, *tail;
	int		 n, stop, running;
	pthread_t	 t;
	struct bastion	*app;
	struct {			/* rate limit: a fixed one-hour window */
		char	 name[CHANNEL_NAME_LEN];
		int64_t	 window_ms;
		int	 count;
	}		 rate[CHANNELS_MAX];
} q = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0,
    0, 0, 0, NULL, { { "", 0, 0 } } };

static void
notice_free(struct notice *n)
{
	if (n) {
		json_decref(n->reasons);
		free(n);
	}
}

int
notify_addr_allowed(const struct sockaddr *sa)
{
	const struct sockaddr_in6 *s6;
	uint32_t a;
	const uint8_t *b;

	if (sa->sa_family == AF_INET) {
		a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
		if ((a & 0xffff0000u) == 0xa9fe0000u)	/* 169.254.0.0/16 */
			return 0;
		if (a == 0x646464c8u)	/* 100.100.100.200: Alibaba metadata */
			return 0;
		return 1;
	}
	if (sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)sa;
		b = s6->sin6_addr.s6_addr;
		if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)	/* fe80::/10 */
			return 0;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && b[12] == 169 &&
		    b[13] == 254)
			return 0;
		/* fd00:ec2::254, the EC2 metadata service over IPv6 */
		if (b[0] == 0xfd && b[1] == 0x00 && b[2] == 0x0e && b[3] == 0xc2 &&
		    b[15] == 0x54 && b[14] == 0x02)
			return 0;
		return 1;
	}
	return 0;
}

struct xfer {
	const struct channel	*ch;
	int			 refused;	/* the address check said no */
	const char		*up;		/* SMTP payload */
	size_t			 uplen, upoff;
};

static curl_socket_t
open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct xfer *x = arg;

	if (!x->ch->allow_link_local && !notify_addr_allowed(&addr->addr)) {
		x->refused = 1;
		return CURL_SOCKET_BAD;
	}
	return socket(addr->family, addr->socktype, addr->protocol);
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	return size * n;
}

static size_t
read_up(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t k = size * n;

	if (k > x->uplen - x->upoff)
		k = x->uplen - x->upoff;
	memcpy(p, x->up + x->upoff, k);
	x->upoff += k;
	return k;
}

static const char *
level_name(int l)
{
	return l >= 2 ? "critical" : "warning";
}

/* Node names and subjects come from agents: no control character may
 * reach a mail header, an HTTP header or a chat line as one. */
static void
clean_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void notice_title_raw(const struct notice *, char *, size_t);

/* "FIRING warning node1: disk_low /data" */
static void
notice_title(const struct notice *n, char *out, size_t len)
{
	notice_title_raw(n, out, len);
	clean_line(out);
}

static void
notice_title_raw(const struct notice *n, char *out, size_t len)
{
	const json_t *r = json_array_get(n->reasons, 0);
	const char *reason = json_string_value(json_object_get(r, "reason"));
	const char *subj = json_string_value(json_object_get(r, "subject"));

	if (n->kind == NOTICE_TEST) {
		snprintf(out, len, "[bastion] test message for channel %s",
		    n->channel);
		return;
	}
	snprintf(out, len, "[bastion] %s %s %s: %s%s%s",
	    n->kind == NOTICE_FIRING ? "FIRING" : "RESOLVED",
	    level_name(n->level), n->node, reason ? reason : "",
	    subj && *subj ? " " : "", subj ? subj : "");
}

static void
notice_text(const struct notice *n, char *out, size_t len)
{
	const json_t *r;
	size_t i, off = 0;
	int k;

	if (n->kind == NOTICE_TEST) {
		snprintf(out, len, "This is a test message from bastion: channel "
		    "%s works.", n->channel);
		return;
	}
	out[0] = '\0';
	json_array_foreach(n->reasons, i, r) {
		char line[512];

		snprintf(line, sizeof line, "%s: %s", n->node,
		    json_string_value(json_object_get(r, "message")) ?
		    json_string_value(json_object_get(r, "message")) : "");
		clean_line(line);
		k = snprintf(out + off, len - off, "%s%s", off ? "\n" : "", line);
		if (k < 0 || (size_t)k >= len - off)
			break;
		off += (size_t)k;
	}
	if (n->kind == NOTICE_RESOLVED && off + 12 < len)
		snprintf(out + off, len - off, " (resolved)");
}

json_t *
notify_webhook_body(const struct notice *n)
{
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:O, s:s, s:s}",
	    "status", n->kind == NOTICE_FIRING ? "firing" :
	    n->kind == NOTICE_RESOLVED ? "resolved" : "test",
	    "level", level_name(n->level), "node", n->node,
	    "agent_id", n->agent_id, "alert_id", (json_int_t)n->alert_id,
	    "reasons", n->reasons ? n->reasons : json_array(),
	    "time", ts, "bastion", BASTION_VERSION);
}

/* One attempt. 0, or -1 with err. */
static int
send_once(const struct channel *ch, const struct notice *n, char *err,
    size_t errlen)
{
	char title[512], text[2048], url[CHANNEL_URL_LEN + 320];
	char hdr[700], ebuf[CURL_ERROR_SIZE] = "", *body = NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0, i;
	struct curl_slist *h = NULL, *rcpt = NULL;
	struct xfer x = { ch, 0, NULL, 0, 0 };
	struct buf mail;
	json_t *j = NULL;
	CURL *c;
	CURLcode cc;
	long status = 0;
	int rc = -1;

	buf_init(&mail, NOTIFY_BODY_MAX);
	notice_title(n, title, sizeof title);
	notice_text(n, text, sizeof text);
	if ((c = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)ch->timeout_s);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &x);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,smtp,smtps");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	if (ch->cacert[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, ch->cacert);
	if (ch->user[0]) {
		curl_easy_setopt(c, CURLOPT_USERNAME, ch->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, ch->password);
	}
	switch (ch->type) {
	case CH_EMAIL: {
		char from[300], one[300], *list, *tok, *save = NULL;
		char date[64];
		unsigned char rnd[8];
		unsigned long long mid = 0;
		time_t now = time(NULL);
		struct tm tm;

		if (strncmp(ch->url, "smtp+starttls://", 16) == 0) {
			snprintf(url, sizeof url, "smtp://%s", ch->url + 16);
			curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
		} else
			snprintf(url, sizeof url, "%s", ch->url);
		snprintf(from, sizeof from, "<%s>", ch->from);
		curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
		if ((list = strdup(ch->to)) == NULL)
			goto err_curl;
		for (tok = strtok_r(list, ", ", &save); tok;
		    tok = strtok_r(NULL, ", ", &save)) {
			snprintf(one, sizeof one, "<%s>", tok);
			rcpt = curl_slist_append(rcpt, one);
		}
		free(list);
		curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
		localtime_r(&now, &tm);
		strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
		RAND_bytes(rnd, sizeof rnd);
		memcpy(&mid, rnd, sizeof mid);
		if (buf_printf(&mail, "Date: %s\r\nFrom: %s\r\nTo: %s\r\n"
		    "Subject: %s\r\nMessage-ID: <%llx.%lld@bastion>\r\n"
		    "MIME-Version: 1.0\r\nContent-Type: text/plain; "
		    "charset=utf-8\r\n\r\n%s\r\n", date, ch->from, ch->to, title,
		    mid, (long long)now, text) ==
		    -1) {
			snprintf(err, errlen, "message too long");
			goto err_curl;
		}
		x.up = mail.data;
		x.uplen = mail.len;
		curl_easy_setopt(c, CURLOPT_READFUNCTION, read_up);
		curl_easy_setopt(c, CURLOPT_READDATA, &x);
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)mail.len);
		break;
	}
	case CH_WEBHOOK:
		snprintf(url, sizeof url, "%s", ch->url);
		j = notify_webhook_body(n);
		body = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		h = curl_slist_append(h, "Content-Type: application/json");
		if (body && ch->secret[0]) {
			HMAC(EVP_sha256(), ch->secret, (int)strlen(ch->secret),
			    (const unsigned char *)body, strlen(body), mac,
			    &maclen);
			snprintf(hdr, sizeof hdr, "X-Bastion-Signature: sha256=");
			for (i = 0; i < maclen; i++)
				snprintf(hdr + strlen(hdr), sizeof hdr - strlen(hdr),
				    "%02x", mac[i]);
			h = curl_slist_append(h, hdr);
		}
		break;
	case CH_NTFY:
		/* ntfy: POST the message to https://server/topic; title,
		 * priority and tags as headers. */
		snprintf(url, sizeof url, "%s", ch->url);
		body = strdup(text);
		snprintf(hdr, sizeof hdr, "Title: %s", title);
		h = curl_slist_append(h, hdr);
		snprintf(hdr, sizeof hdr, "Priority: %s", n->kind ==
		    NOTICE_FIRING && n->level >= 2 ? "5" : n->kind ==
		    NOTICE_FIRING ? "4" : "3");
		h = curl_slist_append(h, hdr);
		snprintf(hdr, sizeof hdr, "Tags: %s", n->kind == NOTICE_RESOLVED ?
		    "white_check_mark" : n->kind == NOTICE_TEST ? "bell" :
		    n->level >= 2 ? "rotating_light" : "warning");
		h = curl_slist_append(h, hdr);
		h = curl_slist_append(h, "Content-Type: text/plain; charset=utf-8");
		if (ch->token[0]) {
			snprintf(hdr, sizeof hdr, "Authorization: Bearer %s",
			    ch->token);
			h = curl_slist_append(h, hdr);
		}
		break;
	case CH_GOTIFY:
		/* Gotify: POST /message with an application token. */
		snprintf(url, sizeof url, "%s%smessage", ch->url,
		    ch->url[strlen(ch->url) - 1] == '/' ? "" : "/");
		j = json_pack("{s:s, s:s, s:i}", "title", title, "message", text,
		    "priority", n->kind == NOTICE_FIRING ? (n->level >= 2 ? 8 : 5) :
		    2);
		body = json_dumps(j, JSON_COMPACT);
		h = curl_slist_append(h, "Content-Type: application/json");
		snprintf(hdr, sizeof hdr, "X-Gotify-Key: %s", ch->token);
		h = curl_slist_append(h, hdr);
		break;
	case CH_TELEGRAM: {
		/* Bot API: POST {base}/bot{token}/sendMessage. */
		const char *base = ch->url[0] ? ch->url : "https://api.telegram.org";

		snprintf(url, sizeof url, "%s%sbot%s/sendMessage", base,
		    base[strlen(base) - 1] == '/' ? "" : "/", ch->token);
		snprintf(hdr, sizeof hdr, "%s\n%s", title, text);
		j = json_pack("{s:s, s:s, s:b}", "chat_id", ch->to, "text", hdr,
		    "disable_web_page_preview", 1);
		body = json_dumps(j, JSON_COMPACT);
		h = curl_slist_append(h, "Content-Type: application/json");
		break;
	}
	}
	if (ch->type != CH_EMAIL) {
		if (body == NULL) {
			snprintf(err, errlen, "out of memory");
			goto err_curl;
		}
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (x.refused)
		snprintf(err, errlen, "refused: the server's address is "
		    "link-local or a metadata service (allow_link_local = no)");
	else if (cc != CURLE_OK)
		snprintf(err, errlen, "%s", ebuf[0] ? ebuf : curl_easy_strerror(cc));
	else if (ch->type != CH_EMAIL && (status < 200 || status > 299))
		snprintf(err, errlen, "HTTP %ld", status);
	else
		rc = 0;
err_curl:
	OPENSSL_cleanse(url, sizeof url);	/* telegram: the bot token */
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	curl_slist_free_all(rcpt);
	buf_free(&mail);
	free(body);
	json_decref(j);
	return rc;
}

/* 1 if the channel may send one more message this hour. */
static int
rate_take(const struct channel *ch)
{
	int64_t now = clock_mono_ms();
	int i, free_slot = -1;

	if (ch->rate_per_hour == 0)
		return 1;
	for (i = 0; i < CHANNELS_MAX; i++) {
		if (strcmp(q.rate[i].name, ch->name) == 0)
			break;
		if (free_slot < 0 && q.rate[i].name[0] == '\0')
			free_slot = i;
	}
	if (i == CHANNELS_MAX) {
		if (free_slot < 0)
			return 1;
		i = free_slot;
		snprintf(q.rate[i].name, sizeof q.rate[i].name, "%s", ch->name);
		q.rate[i].window_ms = now;
		q.rate[i].count = 0;
	}
	if (now - q.rate[i].window_ms >= 3600000) {
		q.rate[i].window_ms = now;
		q.rate[i].count = 0;
	}
	if (q.rate[i].count >= ch->rate_per_hour)
		return 0;
	q.rate[i].count++;
	return 1;
}

/* Sleep ms unless stopping; 1 when told to stop. */
static int
nap(long ms)
{
	struct timespec ts;
	int stop;

	ts = clock_wall_after(ms);
	pthread_mutex_lock(&q.mu);
	if (!q.stop)
		pthread_cond_timedwait(&q.cv, &q.mu, &ts);
	stop = q.stop;
	pthread_mutex_unlock(&q.mu);
	return stop;
}

static void
deliver(const struct channel *ch, const struct notice *n)
{
	const char *kind = n->kind == NOTICE_FIRING ? "firing" :
	    n->kind == NOTICE_RESOLVED ? "resolved" : "test";
	char err[512] = "";
	int attempt, ok = 0;

	if (!rate_take(ch)) {
		snprintf(err, sizeof err, "rate limit: more than %d messages this "
		    "hour", ch->rate_per_hour);
		attempt = 0;
		goto out;
	}
	for (attempt = 1; attempt <= ch->retries + 1; attempt++) {
		if (send_once(ch, n, err, sizeof err) == 0) {
			ok = 1;
			break;
		}
		/* Refused by policy: trying again changes nothing. */
		if (strncmp(err, "refused:", 8) == 0 || attempt > ch->retries)
			break;
		log_info("channel %s: attempt %d failed (%s), retrying", ch->name,
		    attempt, err);
		if (nap(1000L << (attempt - 1)))	/* 1 s, 2 s, 4 s ... */
			break;
	}
	if (attempt > ch->retries + 1)
		attempt = ch->retries + 1;
out:
	if (!ok)
		log_warnx("channel %s: %s notice for %s not delivered: %s",
		    ch->name, kind, n->node[0] ? n->node : "-", err);
	if (db_delivery_add(q.app->db, ch->name, kind, n->alert_id, n->node,
	    ok ? "ok" : "error", attempt, ok ? "" : err, NULL) != DB_OK)
		log_warnx("channel %s: delivery not recorded", ch->name);
}

static void *
notify_thread(void *arg)
{
	struct channel_set *set;
	struct notice *n;
	const struct config *c;
	int i;

	if ((set = malloc(sizeof *set)) == NULL)
		return NULL;
	for (;;) {
		pthread_mutex_lock(&q.mu);
		while (q.head == NULL && !q.stop)
			pthread_cond_wait(&q.cv, &q.mu);
		if (q.stop) {
			pthread_mutex_unlock(&q.mu);
			break;
		}
		n = q.head;
		q.head = n->next;
		if (q.head == NULL)
			q.tail = NULL;
		q.n--;
		pthread_mutex_unlock(&q.mu);
		/* A copy: a reload may swap the config while we send. */
		c = bastion_config_acquire(q.app);
		memcpy(set, &c->channels, sizeof *set);
		bastion_config_release(q.app);
		for (i = 0; i < set->n; i++) {
			if (n->kind == NOTICE_TEST ? strcmp(set->ch[i].name,
			    n->channel) != 0 : n->level < set->ch[i].min_level)
				continue;
			deliver(&set->ch[i], n);
		}
		notice_free(n);
	}
	OPENSSL_cleanse(set, sizeof *set);
	free(set);
	return NULL;
}

void
notify_post(struct notice *n)
{
	n->next = NULL;
	pthread_mutex_lock(&q.mu);
	if (!q.running || q.n >= NOTIFY_QUEUE_MAX) {
		pthread_mutex_unlock(&q.mu);
		log_warnx("notification queue full: %s notice for %s dropped",
		    n->kind == NOTICE_FIRING ? "firing" : "resolved", n->node);
		notice_free(n);
		return;
	}
	if (q.tail)
		q.tail->next = n;
	else
		q.head = n;
	q.tail = n;
	q.n++;
	pthread_cond_broadcast(&q.cv);
	pthread_mutex_unlock(&q.mu);
}

int
notify_start(struct bastion *app)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_warnx("libcurl cannot start: no notifications");
		return -1;
	}
	q.app = app;
	q.stop = 0;
	if (pthread_create(&q.t, NULL, notify_thread, NULL) != 0) {
		log_warnx("cannot start the delivery thread");
		return -1;
	}
	q.running = 1;
	return 0;
}

void
notify_stop(void)
{
	struct notice *n;

	if (!q.running)
		return;
	pthread_mutex_lock(&q.mu);
	q.stop = 1;
	pthread_cond_broadcast(&q.cv);
	pthread_mutex_unlock(&q.mu);
	pthread_join(q.t, NULL);
	q.running = 0;
	while ((n = q.head) != NULL) {
		q.head = n->next;
		notice_free(n);
	}
	q.tail = NULL;
	q.n = 0;
	curl_global_cleanup();
}
