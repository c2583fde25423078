/* http1.c — a small HTTP/1.1 client over any byte stream (see http1.h):
 * shared by report.c's plain transport and client_tls.c. */
#define LOG_SUBSYS "http"
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "http1.h"

#define SLICE_MS	250	/* how often a wait looks at *stop */
#define MAX_HEADERS	100

int
h1_url_parse(const char *url, struct h1_url *u)
{
	const char *h, *end, *colon, *close_br;
	size_t n;

	memset(u, 0, sizeof *u);
	if (strncmp(url, "http://", 7) == 0)
		h = url + 7;
	else if (strncmp(url, "https://", 8) == 0) {
		h = url + 8;
		u->tls = 1;
	} else
		return -1;
	end = h + strcspn(h, "/?#");
	u->path = *end == '/' ? end : "/";
	if ((size_t)(end - h) >= sizeof u->hostport || end == h)
		return -1;
	snprintf(u->hostport, sizeof u->hostport, "%.*s", (int)(end - h), h);
	snprintf(u->port, sizeof u->port, u->tls ? "443" : "80");
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
	if (n == 0 || n >= sizeof u->host)
		return -1;
	memcpy(u->host, h, n);
	u->host[n] = '\0';
	if (colon) {
		n = (size_t)(end - colon - 1);
		if (n == 0 || n >= sizeof u->port ||
		    strspn(colon + 1, "0123456789") < n)
			return -1;
		memcpy(u->port, colon + 1, n);
		u->port[n] = '\0';
	}
	return 0;
}

/* One DNS label: 1-63 of [A-Za-z0-9-], no '-' at either end. */
static int
label_ok(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && p[i] != '-')
			return 0;
	return 1;
}

int
h1_url_base_valid(const char *url, size_t max)
{
	const char *h, *end, *dot;
	char addr[64];
	unsigned char b[16];
	size_t n, len;
	long port;

	if (url == NULL || (len = strlen(url)) >= max || len > 300 ||
	    strncmp(url, "https://", 8) != 0)
		return 0;
	h = url + 8;
	if (*h == '[') {
		if ((end = strchr(h, ']')) == NULL || (n = (size_t)(end - h - 1))
		    == 0 || n >= sizeof addr)
			return 0;
		memcpy(addr, h + 1, n);
		addr[n] = '\0';
		if (strspn(addr, "0123456789abcdefABCDEF:.") != n ||
		    inet_pton(AF_INET6, addr, b) != 1)
			return 0;
		end++;
	} else {
		end = h + strspn(h, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
		if (end == h || (size_t)(end - h) > 253)
			return 0;
		/* Labels between the dots (a dotted IPv4 address is one too). */
		for (; h < end; h = dot + 1) {
			if ((dot = memchr(h, '.', (size_t)(end - h))) == NULL)
				dot = end;
			if (!label_ok(h, (size_t)(dot - h)))
				return 0;
			if (dot == end)
				break;
		}
	}
	if (*end == '\0')
		return 1;
	if (*end != ':' || (n = strlen(end + 1)) == 0 || n > 5 ||
	    strspn(end + 1, "0123456789") != n)
		return 0;
	port = strtol(end + 1, NULL, 10);
	return port >= 1 && port <= 65535;
}

int
h1_wait(int fd, short ev, long deadline, volatile sig_atomic_t *stop)
{
	struct pollfd p = { fd, ev, 0 };
	long left;
	int n;

	for (;;) {
		if (stop && *stop) {
			errno = ECANCELED;
			return -1;
		}
		if ((left = deadline - clock_mono_ms()) <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(&p, 1, (int)(left < SLICE_MS ? left : SLICE_MS));
		if (n > 0)
			return 0;
		if (n == -1 && errno != EINTR)
			return -1;
	}
}

/* One address: connect, wait for it. fd or -1 (errno set). */
static int
connect_addr(const struct sockaddr *sa, socklen_t salen, long deadline,
    volatile sig_atomic_t *stop)
{
	socklen_t len;
	int fd, soerr;

	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		return -1;
	if (connect(fd, sa, salen) == 0)
		return fd;
	if (errno == EINPROGRESS && h1_wait(fd, POLLOUT, deadline, stop) == 0) {
		len = sizeof soerr;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
			soerr = errno;
		if (soerr == 0)
			return fd;
		errno = soerr;
	}
	soerr = errno;
	close(fd);
	errno = soerr;
	return -1;
}

int
h1_connect(const struct h1_url *u, long deadline, volatile sig_atomic_t *stop,
    char *err, size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	unsigned long port = strtoul(u->port, NULL, 10);
	int fd = -1, rc;

	if (port == 0 || port > 65535) {
		snprintf(err, errlen, "bad port %s", u->port);
		return -1;
	}
	memset(&s4, 0, sizeof s4);
	memset(&s6, 0, sizeof s6);
	if (inet_pton(AF_INET, u->host, &s4.sin_addr) == 1) {
		s4.sin_family = AF_INET;
		s4.sin_port = htons((uint16_t)port);
		fd = connect_addr((struct sockaddr *)&s4, sizeof s4, deadline,
		    stop);
	} else if (inet_pton(AF_INET6, u->host, &s6.sin6_addr) == 1) {
		s6.sin6_family = AF_INET6;
		s6.sin6_port = htons((uint16_t)port);
		fd = connect_addr((struct sockaddr *)&s6, sizeof s6, deadline,
		    stop);
	} else {
		memset(&hints, 0, sizeof hints);
		hints.ai_socktype = SOCK_STREAM;
		if ((rc = getaddrinfo(u->host, u->port, &hints, &res)) != 0) {
			snprintf(err, errlen, "%.200s: %s", u->host,
			    gai_strerror(rc));
			return -1;
		}
		for (ai = res; ai && fd == -1; ai = ai->ai_next)
			fd = connect_addr(ai->ai_addr, ai->ai_addrlen, deadline,
			    stop);
		freeaddrinfo(res);
	}
	if (fd == -1)
		snprintf(err, errlen, "connect to %.200s port %s: %s", u->host,
		    u->port, errno == ECANCELED ? "stopped" : strerror(errno));
	return fd;
}

/* --- a plain socket ---------------------------------------------------- */

static ssize_t
sock_read(void *ctx, char *p, size_t n, long deadline, char *err,
    size_t errlen)
{
	struct h1_sock *s = ctx;
	ssize_t r;

	for (;;) {
		if (h1_wait(s->fd, POLLIN, deadline, s->stop) == -1) {
			snprintf(err, errlen, "waiting for the answer: %s",
			    strerror(errno));
			return -1;
		}
		if ((r = recv(s->fd, p, n, 0)) >= 0)
			return r;
		if (errno != EINTR && errno != EAGAIN) {
			snprintf(err, errlen, "reading: %s", strerror(errno));
			return -1;
		}
	}
}

int
h1_send_all(int fd, volatile sig_atomic_t *stop, const char *p, size_t n,
    long deadline, char *err, size_t errlen)
{
	ssize_t w;

	while (n > 0) {
		if (h1_wait(fd, POLLOUT, deadline, stop) == -1) {
			snprintf(err, errlen, "sending: %s", strerror(errno));
			return -1;
		}
		if ((w = send(fd, p, n, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			snprintf(err, errlen, "sending: %s", strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
sock_write(void *ctx, const char *p, size_t n, long deadline, char *err,
    size_t errlen)
{
	struct h1_sock *s = ctx;

	return h1_send_all(s->fd, s->stop, p, n, deadline, err, errlen);
}

void
h1_io_socket(struct h1_io *io, struct h1_sock *s)
{
	memset(io, 0, sizeof *io);
	io->read = sock_read;
	io->write = sock_write;
	io->ctx = s;
}

/* --- requests and answers ---------------------------------------------- */

int
h1_request(struct buf *out, const char *method, const struct h1_url *u,
    const char *path, const char *ctype, const char *body, size_t len,
    int close)
{
	if (buf_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: bastion-agentd/%s\r\nAccept: application/json\r\n",
	    method, path, u->hostport, BASTION_VERSION) == -1)
		return -1;
	if (body && buf_printf(out, "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n", ctype, len) == -1)
		return -1;
	if (close && buf_adds(out, "Connection: close\r\n") == -1)
		return -1;
	if (buf_adds(out, "\r\n") == -1)
		return -1;
	return body ? buf_add(out, body, len) : 0;
}

/* More bytes into io->in. 1, 0 at the end of the stream, -1 (err set). */
static int
fill(struct h1_io *io, long deadline, struct h1_reply *r, char *err,
    size_t errlen)
{
	ssize_t n;

	if (io->off > 0) {
		memmove(io->in, io->in + io->off, io->len - io->off);
		io->len -= io->off;
		io->off = 0;
	}
	if (io->len == sizeof io->in) {
		snprintf(err, errlen, "answer header line too long");
		return -1;
	}
	n = io->read(io->ctx, io->in + io->len, sizeof io->in - io->len,
	    deadline, err, errlen);
	if (n < 0)
		return -1;
	io->len += (size_t)n;
	r->received += (size_t)n;
	return n > 0;
}

/* The next line (CR LF or LF cut off, NUL-terminated, in io->in). */
static char *
get_line(struct h1_io *io, long deadline, struct h1_reply *r, char *err,
    size_t errlen)
{
	char *line, *nl;
	int rc;

	for (;;) {
		line = io->in + io->off;
		if ((nl = memchr(line, '\n', io->len - io->off)) != NULL) {
			io->off = (size_t)(nl - io->in) + 1;
			*nl = '\0';
			if (nl > line && nl[-1] == '\r')
				nl[-1] = '\0';
			return line;
		}
		if ((rc = fill(io, deadline, r, err, errlen)) <= 0) {
			if (rc == 0)
				snprintf(err, errlen, r->received ? "the server "
				    "closed the connection mid-answer" :
				    "the server closed the connection");
			return NULL;
		}
	}
}

#define SINK_READ	(256 * 1024)

/*
 * A large body for a sink (an OS image), once the read-ahead is used up:
 * read straight into a buffer of SINK_READ bytes, a sixteenth of the
 * system calls of io->in. n: as get_body's; 1 when it is all taken, 0 to
 * go on through io->in (small rest, no memory), -1 with err.
 */
static int
sink_direct(struct h1_io *io, size_t *n, long deadline, struct h1_reply *r,
    char *err, size_t errlen)
{
	char *big;
	ssize_t got;
	size_t want;

	if (io->sink == NULL || io->off != io->len || *n < SINK_READ ||
	    (big = malloc(SINK_READ)) == NULL)
		return 0;
	while (*n >= SINK_READ) {
		want = SINK_READ;
		if ((got = io->read(io->ctx, big, want, deadline, err, errlen)) <
		    0)
			goto fail;
		if (got == 0) {
			if (*n == SIZE_MAX)
				break;
			snprintf(err, errlen, "the server closed the connection "
			    "mid-answer");
			goto fail;
		}
		r->received += (size_t)got;
		if (io->sink(io->sink_ctx, big, (size_t)got) == -1) {
			snprintf(err, errlen, "stopped");
			goto fail;
		}
		if (*n != SIZE_MAX)
			*n -= (size_t)got;
	}
	free(big);
	return *n == SIZE_MAX ? 1 : 0;
fail:
	free(big);
	return -1;
}

/* n bytes of body (n == SIZE_MAX: up to the end of the stream). */
static int
get_body(struct h1_io *io, size_t n, struct buf *body, long deadline,
    struct h1_reply *r, char *err, size_t errlen)
{
	size_t take;
	int rc;

	while (n > 0) {
		if ((rc = sink_direct(io, &n, deadline, r, err, errlen)) != 0)
			return rc == 1 ? 0 : -1;
		if (io->off == io->len) {
			if ((rc = fill(io, deadline, r, err, errlen)) == -1)
				return -1;
			if (rc == 0) {
				if (n == SIZE_MAX)
					return 0;
				snprintf(err, errlen, "the server closed the "
				    "connection mid-answer");
				return -1;
			}
		}
		take = io->len - io->off;
		if (take > n)
			take = n;
		if (io->sink) {
			if (io->sink(io->sink_ctx, io->in + io->off, take) ==
			    -1) {
				snprintf(err, errlen, "stopped");
				return -1;
			}
		} else if (buf_add(body, io->in + io->off, take) == -1) {
			snprintf(err, errlen, "answer larger than %zu bytes",
			    body->max);
			return -1;
		}
		io->off += take;
		if (n != SIZE_MAX)
			n -= take;
	}
	return 0;
}

static int
get_chunked(struct h1_io *io, struct buf *body, long deadline,
    struct h1_reply *r, char *err, size_t errlen)
{
	unsigned long long n;
	char *line, *end;

	for (;;) {
		if ((line = get_line(io, deadline, r, err, errlen)) == NULL)
			return -1;
		errno = 0;
		n = strtoull(line, &end, 16);
		/* Hex digits only: no sign, blank or 0x that strtoull takes. */
		if (end == line || (size_t)(end - line) != strspn(line,
		    "0123456789abcdefABCDEF") || errno || (*end && *end != ';' &&
		    *end != ' ') || (n > body->max && io->sink == NULL)) {
			snprintf(err, errlen, "bad chunk size in the answer");
			return -1;
		}
		if (n == 0)
			break;
		if (get_body(io, (size_t)n, body, deadline, r, err, errlen) ==
		    -1 || (line = get_line(io, deadline, r, err, errlen)) ==
		    NULL)
			return -1;
		if (*line) {
			snprintf(err, errlen, "bad chunk in the answer");
			return -1;
		}
	}
	/* Trailers, up to the empty line. */
	do {
		if ((line = get_line(io, deadline, r, err, errlen)) == NULL)
			return -1;
	} while (*line);
	return 0;
}

/* Whether the comma-separated header value v holds token t. */
static int
has_token(const char *v, const char *t)
{
	size_t n = strlen(t);

	while (*v) {
		v += strspn(v, " \t,");
		if (strncasecmp(v, t, n) == 0 && strchr(" \t,;", v[n]) != NULL)
			return 1;
		v += strcspn(v, ",");
	}
	return 0;
}

int
h1_read_reply(struct h1_io *io, int head, struct buf *body, long deadline,
    struct h1_reply *r, char *err, size_t errlen)
{
	unsigned long long clen = 0, n;
	int minor, have_len, chunked, nh;
	char *line, *v, *end;

	memset(r, 0, sizeof *r);
	do {	/* 1xx answers come before the real one */
		if ((line = get_line(io, deadline, r, err, errlen)) == NULL)
			goto fail;
		if (sscanf(line, "HTTP/1.%1d %3ld", &minor, &r->status) != 2 ||
		    r->status < 100 || r->status > 599) {
			snprintf(err, errlen, "not an HTTP/1.x answer");
			r->status = 0;
			goto fail;
		}
		r->keep_alive = minor >= 1;
		have_len = chunked = 0;
		for (nh = 0; ; nh++) {
			if ((line = get_line(io, deadline, r, err, errlen)) ==
			    NULL)
				goto fail;
			if (*line == '\0')
				break;
			if (nh == MAX_HEADERS || (v = strchr(line, ':')) ==
			    NULL) {
				snprintf(err, errlen, "bad header in the answer");
				goto fail;
			}
			*v++ = '\0';
			v += strspn(v, " \t");
			if (strcasecmp(line, "Content-Length") == 0) {
				errno = 0;
				n = strtoull(v, &end, 10);
				end += strspn(end, " \t");
				/* Two different lengths: which one frames
				 * the answer is anyone's guess. */
				if (!isdigit((unsigned char)*v) || errno ||
				    *end || (have_len && n != clen)) {
					snprintf(err, errlen, "bad Content-Length "
					    "in the answer");
					goto fail;
				}
				clen = n;
				have_len = 1;
			} else if (strcasecmp(line, "Transfer-Encoding") == 0)
				chunked = has_token(v, "chunked");
			else if (strcasecmp(line, "Connection") == 0) {
				if (has_token(v, "close"))
					r->keep_alive = 0;
				else if (has_token(v, "keep-alive"))
					r->keep_alive = 1;
			}
		}
	} while (r->status < 200);
	if (head || r->status == 204 || r->status == 304)
		goto done;	/* no body, whatever the headers say */
	if (chunked) {
		if (have_len)	/* RFC 9112 6.3: chunked wins, then close */
			r->keep_alive = 0;
		if (get_chunked(io, body, deadline, r, err, errlen) == -1)
			goto fail;
	} else if (have_len) {
		if (clen > body->max && io->sink == NULL) {
			snprintf(err, errlen, "answer larger than %zu bytes",
			    body->max);
			goto fail;
		}
		if (get_body(io, (size_t)clen, body, deadline, r, err, errlen)
		    == -1)
			goto fail;
	} else {
		r->keep_alive = 0;	/* the body ends with the connection */
		if (get_body(io, SIZE_MAX, body, deadline, r, err, errlen) == -1)
			goto fail;
	}
done:
	/* Bytes beyond the answer: nothing asked for them; do not reuse. */
	if (io->off != io->len)
		r->keep_alive = 0;
	return 0;
fail:
	r->keep_alive = 0;
	return -1;
}
