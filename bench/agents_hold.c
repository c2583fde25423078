/* agents_hold.c — waiting agents for bench/fleet at the cost of a socket
 * and a TLS session each: long polls over mutual TLS on OpenSSL's
 * non-blocking API and epoll, one thread, thousands of connections per
 * process (agents_load's libcurl multi interface walks every handle at
 * each turn: with thousands idle, the load generator measured itself).
 *
 *   agents_hold CERT KEY CA CONNECTIONS SECONDS SOURCE URL...
 *
 * Opens CONNECTIONS connections to each URL (https://A.B.C.D:PORT), sends
 * GET /agent/v1/jobs?wait=30 on each and, when one is answered, sends it
 * again on the same connection; holds them for SECONDS or until SIGTERM.
 * At most RAMP handshakes are in flight at once, the URLs taken in turn.
 * Connection j to URL u comes from SOURCE.(u+1).(j/PER_ADDR+1) (SOURCE
 * is two octets, e.g. 127.1): bastion caps connections per address.
 * Responses are parsed strictly, as bastion (libmicrohttpd) sends them:
 * "HTTP/1.1 NNN", 204 without a body, else Content-Length or chunked.
 * A connection that fails, is closed, or whose poll is unanswered after
 * STUCK_S is counted an error and made again (after a second).
 *
 * Prints on stderr "all N polls sent to URL after S s" once every
 * connection to URL has sent its first poll, and every PROGRESS_S
 * seconds a line of counts; at the end, on stdout, a line per URL:
 *   polls_sent N after S s answered A min_per_connection M connects C
 *   errors E reconnects R waiting W url URL
 * (N requests sent in all, S the time every connection's first poll
 * was out, A answered 200/204, M the fewest answers of a connection,
 * C TLS connections made, R of them made again, W polls waiting then).
 */
#define _GNU_SOURCE	/* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "nofile.h"

#define RAMP		64	/* connections being made at once */
#define PER_ADDR	1000	/* connections per source address */
#define MAX_URLS	64
#define HEAD_MAX	8192	/* response header (or chunk line) cap */
#define STUCK_S		75	/* a poll of 30 s unanswered: broken */
#define MAKE_S		60	/* connect + handshake, at most */
#define PROGRESS_S	10

enum state { S_IDLE, S_CONNECT, S_HANDSHAKE, S_SEND, S_HEAD, S_BODY,
    S_CHUNK_SIZE, S_CHUNK_DATA, S_CHUNK_CRLF, S_TRAILER };

struct conn {
	SSL		*ssl;
	char		*head;		/* while a header/line is read */
	long		 left;		/* body or chunk bytes to come */
	uint32_t	 answers;
	uint32_t	 since;		/* s: state entered (make, poll sent) */
	uint32_t	 retry_at;	/* s: when S_IDLE, not before */
	int		 fd;
	uint16_t	 hlen;
	uint16_t	 status;
	uint8_t		 state;
	uint8_t		 url;
	uint8_t		 events;	/* registered: EPOLLIN/OUT bits */
	uint8_t		 close_after;
	uint8_t		 polled;	/* its first poll went out */
	uint8_t		 made;		/* a connection was made before */
};

struct target {
	struct sockaddr_in sa;
	const char	*url;
	char		 req[256];
	size_t		 reqlen;
	long		 first;		/* connections whose first poll is out */
	long		 sent, answered, connects, errors, reconnects;
	double		 all_at;	/* s: when first == n, else 0 */
};

static volatile sig_atomic_t stop;
static long err_making, err_waiting, err_answer;	/* errors by when */
static struct target tg[MAX_URLS];
static struct conn *cs;
static long nurl, per, total;
static long *queue, qhead, qlen;	/* ring of connections to make */
static long making;
static int ep;
static SSL_CTX *ctx;
static double t0;
static const char *source;

static void
on_term(int sig)
{
	stop = 1;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t0;
}

static uint32_t
now_u(void)
{
	return (uint32_t)now_s();
}

static void
enqueue(long i, uint32_t at)
{
	cs[i].retry_at = at;
	queue[(qhead + qlen) % total] = i;
	qlen++;
}

static void
want(struct conn *c, long i, uint8_t ev)
{
	struct epoll_event e;

	if (c->events == ev)
		return;
	memset(&e, 0, sizeof e);
	e.events = (ev & 1 ? EPOLLIN : 0) | (ev & 2 ? EPOLLOUT : 0);
	e.data.u64 = (uint64_t)i;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) == -1)
		perror("agents_hold: epoll_ctl");
	c->events = ev;
}

/* Closes connection i and makes it again in a second; counts an error
 * (why) unless it is NULL or we are stopping. */
static void
drop(long i, const char *why)
{
	struct conn *c = &cs[i];
	struct target *t = &tg[c->url];

	if (c->state == S_CONNECT || c->state == S_HANDSHAKE)
		making--;
	if (!stop && why != NULL) {
		if (c->state == S_CONNECT || c->state == S_HANDSHAKE)
			err_making++;
		else if (c->state == S_HEAD && c->hlen == 0)
			err_waiting++;
		else
			err_answer++;
		if (t->errors++ < 5)
			fprintf(stderr, "agents_hold: %s: connection %ld: %s\n",
			    t->url, i, why);
	}
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	free(c->head);
	c->head = NULL;
	c->hlen = 0;
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->state = S_IDLE;
	c->events = 0;
	if (!stop)
		enqueue(i, now_u() + 1);
}

static void
start(long i)
{
	struct conn *c = &cs[i];
	struct target *t = &tg[c->url];
	struct sockaddr_in src;
	struct epoll_event e;
	char a[32];
	long j = i / nurl;	/* its number among URL's connections */
	int one = 1;

	snprintf(a, sizeof a, "%s.%ld.%ld", source, (long)c->url + 1,
	    j / PER_ADDR + 1);
	memset(&src, 0, sizeof src);
	src.sin_family = AF_INET;
	if (inet_pton(AF_INET, a, &src.sin_addr) != 1) {
		fprintf(stderr, "agents_hold: bad source address %s\n", a);
		exit(1);
	}
	making++;
	c->state = S_CONNECT;
	c->since = now_u();
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		drop(i, strerror(errno));
		return;
	}
	/* The port is chosen at connect(): the address's whole range. */
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
	if (bind(c->fd, (struct sockaddr *)&src, sizeof src) == -1 ||
	    (connect(c->fd, (struct sockaddr *)&t->sa, sizeof t->sa) == -1 &&
	    errno != EINPROGRESS)) {
		drop(i, strerror(errno));
		return;
	}
	memset(&e, 0, sizeof e);
	e.events = EPOLLOUT;
	e.data.u64 = (uint64_t)i;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) == -1) {
		drop(i, strerror(errno));
		return;
	}
	c->events = 2;
}

/* The SSL call's result r: 0 to wait (events set), -1 dropped. */
static int
ssl_wait(long i, int r, const char *what)
{
	struct conn *c = &cs[i];
	char why[256];
	int e = SSL_get_error(c->ssl, r);
	unsigned long ee;

	if (e == SSL_ERROR_WANT_READ) {
		want(c, i, 1);
		return 0;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		want(c, i, 2);
		return 0;
	}
	ee = ERR_get_error();
	ERR_clear_error();
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ee == 0))
		snprintf(why, sizeof why, "%s: closed by the server%s%s", what,
		    errno ? ": " : "", errno ? strerror(errno) : "");
	else
		snprintf(why, sizeof why, "%s: %s", what, ee ?
		    ERR_error_string(ee, NULL) : "TLS error");
	drop(i, why);
	return -1;
}

static int
send_poll(long i)
{
	struct conn *c = &cs[i];
	struct target *t = &tg[c->url];
	int r;

	c->state = S_SEND;
	ERR_clear_error();
	if ((r = SSL_write(c->ssl, t->req, (int)t->reqlen)) <= 0)
		return ssl_wait(i, r, "sending");
	t->sent++;
	if (!c->polled) {
		c->polled = 1;
		if (++t->first == per) {
			t->all_at = now_s();
			fprintf(stderr, "all %ld polls sent to %s after %.1f s\n",
			    per, t->url, t->all_at);
		}
	}
	c->state = S_HEAD;
	c->since = now_u();
	c->status = 0;
	c->close_after = 0;
	want(c, i, 1);
	return 0;
}

/* A value that is digits only, at most 9 of them, else -1. */
static long
digits(const char *v)
{
	long n = 0;
	int k = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v >= '0' && *v <= '9'; v++, k++)
		n = n * 10 + (*v - '0');
	while (*v == ' ' || *v == '\t')
		v++;
	return k == 0 || k > 9 || *v ? -1 : n;
}

/* The header in c->head (hlen bytes, up to and with the empty line):
 * 0 and the state for the body, or -1. */
static int
parse_head(struct conn *c)
{
	char *p = c->head, *eol, *v;
	long cl = -1;
	int chunked = 0, first = 1;

	c->head[c->hlen] = '\0';
	if (strncmp(p, "HTTP/1.1 ", 9) != 0 || p[9] < '1' || p[9] > '5' ||
	    p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9' ||
	    p[12] != ' ')
		return -1;
	c->status = (uint16_t)((p[9] - '0') * 100 + (p[10] - '0') * 10 +
	    (p[11] - '0'));
	for (; (eol = strstr(p, "\r\n")) != NULL && eol != p; p = eol + 2) {
		*eol = '\0';
		if (first) {
			first = 0;
			continue;
		}
		if ((v = strchr(p, ':')) == NULL)
			return -1;
		*v++ = '\0';
		if (strcasecmp(p, "Content-Length") == 0) {
			if (cl != -1 || (cl = digits(v)) == -1)
				return -1;
		} else if (strcasecmp(p, "Transfer-Encoding") == 0) {
			while (*v == ' ')
				v++;
			if (strcasecmp(v, "chunked") != 0)
				return -1;
			chunked = 1;
		} else if (strcasecmp(p, "Connection") == 0)
			c->close_after = strcasestr(v, "close") != NULL;
	}
	if (c->status < 200 || (chunked && cl != -1))
		return -1;
	free(c->head);
	c->head = NULL;
	c->hlen = 0;
	if (c->status == 204 || c->status == 304) {
		if (chunked || cl > 0)
			return -1;
		c->left = 0;
		c->state = S_BODY;
	} else if (chunked)
		c->state = S_CHUNK_SIZE;
	else if (cl >= 0) {
		c->left = cl;
		c->state = S_BODY;
	} else
		return -1;	/* read to close: not on a keep-alive poll */
	return 0;
}

/* Appends byte ch to the line or header being read: 1 when it ended
 * (with end "\r\n" or "\r\n\r\n"), 0 not yet, -1 too long. */
static int
take(struct conn *c, char ch, const char *end)
{
	size_t n = strlen(end);

	if (c->head == NULL && (c->head = malloc(HEAD_MAX + 1)) == NULL)
		return -1;
	if (c->hlen >= HEAD_MAX)
		return -1;
	c->head[c->hlen++] = ch;
	return c->hlen >= n && memcmp(c->head + c->hlen - n, end, n) == 0;
}

/* Feeds n bytes of response to connection i: the number of bytes left
 * over after a whole response (0 unless the server sent more), -1 on a
 * bad response, with *done set when a response ended. */
static long
feed(struct conn *c, const char *p, long n, int *done)
{
	long k;
	char *end;
	int r;

	*done = 0;
	while (n > 0) {
		switch (c->state) {
		case S_HEAD:
			/* Byte by byte: a header is a few hundred bytes. */
			if ((r = take(c, *p, "\r\n\r\n")) == -1)
				return -1;
			p++, n--;
			if (r == 1 && parse_head(c) == -1)
				return -1;
			break;
		case S_BODY:
			k = n < c->left ? n : c->left;
			c->left -= k;
			p += k, n -= k;
			break;
		case S_CHUNK_SIZE:
		case S_TRAILER:
			if ((r = take(c, *p, "\r\n")) == -1)
				return -1;
			p++, n--;
			if (r == 0)
				break;
			c->head[c->hlen - 2] = '\0';
			if (c->state == S_TRAILER) {
				r = c->hlen == 2;
				c->hlen = 0;
				if (r) {	/* the empty line: done */
					free(c->head);
					c->head = NULL;
					c->state = S_BODY;
					c->left = 0;
				}
				break;
			}
			errno = 0;
			c->left = strtol(c->head, &end, 16);
			if (end == c->head || errno || c->left < 0 ||
			    c->left > 1L << 24 || (*end != '\0' && *end != ';'))
				return -1;
			c->hlen = 0;
			c->state = c->left ? S_CHUNK_DATA : S_TRAILER;
			break;
		case S_CHUNK_DATA:
			k = n < c->left ? n : c->left;
			c->left -= k;
			p += k, n -= k;
			if (c->left == 0) {
				c->state = S_CHUNK_CRLF;
				c->left = 2;
			}
			break;
		case S_CHUNK_CRLF:
			if (*p != (c->left == 2 ? '\r' : '\n'))
				return -1;
			p++, n--;
			if (--c->left == 0)
				c->state = S_CHUNK_SIZE;
			break;
		default:
			return -1;
		}
		if (c->state == S_BODY && c->left == 0) {
			*done = 1;
			return n;
		}
	}
	/* A 204 (or empty body) ends with its header. */
	if (c->state == S_BODY && c->left == 0)
		*done = 1;
	return 0;
}

static void
readable(long i)
{
	static char buf[16384];
	struct conn *c = &cs[i];
	struct target *t = &tg[c->url];
	long extra;
	int r, done;

	for (;;) {
		ERR_clear_error();
		errno = 0;
		if ((r = SSL_read(c->ssl, buf, sizeof buf)) <= 0) {
			ssl_wait(i, r, c->state == S_HEAD && c->hlen == 0 ?
			    "waiting" : "reading");
			return;
		}
		if ((extra = feed(c, buf, r, &done)) == -1) {
			drop(i, c->status ? "bad response" : "bad status line");
			return;
		}
		if (!done)
			continue;
		if (extra > 0 || SSL_pending(c->ssl) > 0) {
			drop(i, "more than one response to a poll");
			return;
		}
		if (c->status != 200 && c->status != 204) {
			char why[64];

			snprintf(why, sizeof why, "HTTP %u", c->status);
			drop(i, why);
			return;
		}
		t->answered++;
		c->answers++;
		if (stop)
			return;
		if (c->close_after) {	/* as an agent would: again */
			drop(i, NULL);
			return;
		}
		send_poll(i);
		return;
	}
}

static void
handshake(long i)
{
	struct conn *c = &cs[i];
	struct target *t = &tg[c->url];
	int r;

	ERR_clear_error();
	if ((r = SSL_do_handshake(c->ssl)) != 1) {
		ssl_wait(i, r, "handshake");
		return;
	}
	making--;
	t->connects++;
	if (c->made)
		t->reconnects++;
	c->made = 1;
	send_poll(i);
}

static void
event(long i, uint32_t ev)
{
	struct conn *c = &cs[i];
	socklen_t len = sizeof(int);
	int err = 0;

	switch (c->state) {
	case S_CONNECT:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0) {
			drop(i, strerror(err ? err : errno));
			return;
		}
		if ((c->ssl = SSL_new(ctx)) == NULL ||
		    SSL_set_fd(c->ssl, c->fd) != 1) {
			drop(i, "SSL_new");
			return;
		}
		SSL_set_connect_state(c->ssl);
		c->state = S_HANDSHAKE;
		handshake(i);
		return;
	case S_HANDSHAKE:
		handshake(i);
		return;
	case S_SEND:
		send_poll(i);
		return;
	case S_IDLE:
		return;
	default:
		if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
			readable(i);
		return;
	}
}

/* Once a second: connections being made too long, polls unanswered. */
static void
sweep(uint32_t now)
{
	long i;

	for (i = 0; i < total; i++) {
		struct conn *c = &cs[i];

		if ((c->state == S_CONNECT || c->state == S_HANDSHAKE) &&
		    now - c->since > MAKE_S)
			drop(i, "connection not made in time");
		else if (c->state >= S_HEAD && now - c->since > STUCK_S)
			drop(i, "poll unanswered");
	}
}

static int
url_parse(struct target *t, const char *url)
{
	char host[64], rest[8];
	unsigned port;

	t->url = url;
	memset(&t->sa, 0, sizeof t->sa);
	t->sa.sin_family = AF_INET;
	if (sscanf(url, "https://%63[0-9.]:%5u%7s", host, &port, rest) != 2 ||
	    port == 0 || port > 65535 ||
	    inet_pton(AF_INET, host, &t->sa.sin_addr) != 1)
		return -1;
	t->sa.sin_port = htons((uint16_t)port);
	t->reqlen = (size_t)snprintf(t->req, sizeof t->req,
	    "GET /agent/v1/jobs?wait=30 HTTP/1.1\r\nHost: %s:%u\r\n"
	    "Accept: */*\r\n\r\n", host, port);
	return 0;
}

static void
summary(void)
{
	long u, i, w;
	uint32_t min;

	for (u = 0; u < nurl; u++) {
		struct target *t = &tg[u];

		min = UINT32_MAX;
		for (w = 0, i = u; i < total; i += nurl) {
			if (cs[i].answers < min)
				min = cs[i].answers;
			w += cs[i].state >= S_HEAD;
		}
		printf("polls_sent %ld after %.1f s answered %ld "
		    "min_per_connection %lu connects %ld errors %ld "
		    "reconnects %ld waiting %ld url %s\n", t->sent, t->all_at,
		    t->answered, (unsigned long)min, t->connects, t->errors,
		    t->reconnects, w, t->url);
	}
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct epoll_event evs[512];
	rlim_t cur;
	long secs, i, u;
	uint32_t last = 0, now;
	double next_progress = PROGRESS_S;
	int n, k;

	if (argc < 8 || argc - 7 > MAX_URLS) {
		fprintf(stderr, "usage: agents_hold CERT KEY CA CONNECTIONS"
		    " SECONDS SOURCE URL...\n");
		return 2;
	}
	per = strtol(argv[4], NULL, 10);
	secs = strtol(argv[5], NULL, 10);
	source = argv[6];
	nurl = argc - 7;
	if (per < 1 || per > 255L * PER_ADDR || secs < 1) {
		fprintf(stderr, "agents_hold: bad CONNECTIONS or SECONDS\n");
		return 2;
	}
	for (u = 0; u < nurl; u++)
		if (url_parse(&tg[u], argv[7 + u]) == -1) {
			fprintf(stderr, "agents_hold: %s: not https://A.B.C.D:PORT\n",
			    argv[7 + u]);
			return 2;
		}
	total = per * nurl;
	(void)nofile_raise(&cur);
	if (cur != RLIM_INFINITY && (rlim_t)total + 16 > cur) {
		fprintf(stderr, "agents_hold: %ld connections need more than the"
		    " %llu open files allowed\n", total,
		    (unsigned long long)cur);
		return 1;
	}
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_use_certificate_chain_file(ctx, argv[1]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1) {
		fprintf(stderr, "agents_hold: certificate, key or CA: %s\n",
		    ERR_error_string(ERR_get_error(), NULL));
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* The bastion's certificate names the address we connect to. */
	if (X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx),
	    inet_ntoa(tg[0].sa.sin_addr)) != 1)
		return 1;
	/* Every agent makes its own session, as agents would: no resumption.
	 * Idle connections give their buffers back. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if ((cs = calloc((size_t)total, sizeof *cs)) == NULL ||
	    (queue = calloc((size_t)total, sizeof *queue)) == NULL ||
	    (ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("agents_hold");
		return 1;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);
	t0 = 0;
	t0 = now_s();
	/* Connection i goes to URL i mod nurl: the URLs in turn. */
	for (i = 0; i < total; i++) {
		cs[i].fd = -1;
		cs[i].url = (uint8_t)(i % nurl);
		enqueue(i, 0);
	}
	while (!stop && now_s() < (double)secs) {
		now = now_u();
		while (qlen > 0 && making < RAMP && cs[queue[qhead]].retry_at <=
		    now) {
			i = queue[qhead];
			qhead = (qhead + 1) % total;
			qlen--;
			start(i);
		}
		if ((n = epoll_wait(ep, evs, 512, 100)) == -1 && errno != EINTR) {
			perror("agents_hold: epoll_wait");
			break;
		}
		for (k = 0; k < n; k++)
			event((long)evs[k].data.u64, evs[k].events);
		if ((now = now_u()) != last) {
			last = now;
			sweep(now);
		}
		if (now_s() >= next_progress) {
			long f = 0, a = 0, e = 0;

			next_progress += PROGRESS_S;
			for (u = 0; u < nurl; u++) {
				f += tg[u].first;
				a += tg[u].answered;
				e += tg[u].errors;
			}
			fprintf(stderr, "%.0f s: %ld of %ld polled, %ld being "
			    "made, %ld answered, %ld errors\n", now_s(), f, total,
			    making, a, e);
		}
	}
	summary();
	fprintf(stderr, "errors: %ld making a connection, %ld while a poll"
	    " waited, %ld in an answer\n", err_making, err_waiting, err_answer);
	for (i = 0; i < total; i++) {
		SSL_free(cs[i].ssl);
		free(cs[i].head);
		if (cs[i].fd != -1)
			close(cs[i].fd);
	}
	free(cs);
	free(queue);
	close(ep);
	SSL_CTX_free(ctx);
	return 0;
}
