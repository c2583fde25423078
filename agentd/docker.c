/* docker.c — the node's Docker engine, on its local unix socket only
 * ([agent] docker_socket): one HTTP/1.1 request per connection through
 * http1.c (the same code in the libcurl and the static build), the API
 * version negotiated from GET /version and never hard-coded (Debian 12's
 * engine speaks 1.41; newer engines refuse clients older than 1.44). */
#ifndef AGENTD_NO_CURL	/* the discovery image has no Docker to talk to */
#define LOG_SUBSYS "docker"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "clock.h"
#include "http1.h"
#include "log.h"

/* The newest API this agent was written against: an engine that speaks a
 * newer one is asked in this version (engines keep old versions for a
 * while); an older engine is asked in its own. The oldest we can use. */
#define DOCKER_API_MAX_MAJOR	1
#define DOCKER_API_MAX_MINOR	45
#define DOCKER_API_MIN_MINOR	24

struct docker {
	char	 socket[sizeof ((struct sockaddr_un *)0)->sun_path];
	char	 version[16];	/* "1.41", "" until negotiated */
	char	 engine[64];	/* the engine's own version */
};

struct docker *
docker_new(const char *socket_path)
{
	struct docker *d;

	if ((d = calloc(1, sizeof *d)) == NULL)
		return NULL;
	if (strlen(socket_path) >= sizeof d->socket) {
		free(d);
		return NULL;
	}
	snprintf(d->socket, sizeof d->socket, "%s", socket_path);
	return d;
}

void
docker_free(struct docker *d)
{
	free(d);
}

const char *
docker_api_version(const struct docker *d)
{
	return d->version;
}

const char *
docker_engine_version(const struct docker *d)
{
	return d->engine;
}

static int
dial(const struct docker *d, long deadline, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, d->socket, strlen(d->socket));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1 &&
	    errno != EINPROGRESS && errno != EAGAIN) {
		snprintf(err, errlen, "connect to %s: %s", d->socket,
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (h1_wait(fd, POLLOUT, deadline, &agent_stop) == -1) {
		snprintf(err, errlen, "connect to %s: %s", d->socket,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The connection's bytes, read in slices of DOCKER_TICK_MS so that a
 * stream's consumer hears of silence too (tick) and a stop is seen. */
#define DOCKER_TICK_MS	250

struct dsock {
	int	 fd;
	int	(*tick)(void *);
	void	*tick_ctx;
};

static ssize_t
dsock_read(void *ctx, char *p, size_t n, long deadline, char *err,
    size_t errlen)
{
	struct dsock *s = ctx;
	struct pollfd pf;
	long now, slice;
	ssize_t r;
	int pr;

	for (;;) {
		now = (long)clock_mono_ms();
		if (agent_stop || now >= deadline) {
			snprintf(err, errlen, "waiting for the engine: %s",
			    agent_stop ? "stopped" : "timed out");
			return -1;
		}
		slice = deadline - now < DOCKER_TICK_MS ? deadline - now :
		    DOCKER_TICK_MS;
		pf.fd = s->fd;
		pf.events = POLLIN;
		pf.revents = 0;
		if ((pr = poll(&pf, 1, (int)slice)) == -1 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return -1;
		}
		if (pr <= 0) {
			if (s->tick && s->tick(s->tick_ctx) == -1) {
				snprintf(err, errlen, "stopped");
				return -1;
			}
			continue;
		}
		if ((r = recv(s->fd, p, n, 0)) >= 0)
			return r;
		if (errno != EINTR && errno != EAGAIN) {
			snprintf(err, errlen, "reading: %s", strerror(errno));
			return -1;
		}
	}
}

static int
dsock_write(void *ctx, const char *p, size_t n, long deadline, char *err,
    size_t errlen)
{
	return h1_send_all(((struct dsock *)ctx)->fd, &agent_stop, p, n,
	    deadline, err, errlen);
}

/* One request on a connection of its own. path is the whole path
 * (versioned or not); body is JSON text or NULL. The status, or 0 with
 * err set. */
static long
raw_call(const struct docker *d, const char *method, const char *path,
    const char *body, long timeout_ms, struct buf *resp,
    const struct docker_stream *st, char *err, size_t errlen)
{
	struct h1_url u;
	struct dsock s;
	struct h1_io *io = NULL;
	struct h1_reply rep;
	struct buf req;
	long deadline = (long)clock_mono_ms() + timeout_ms, status = 0;
	int fd;

	memset(&u, 0, sizeof u);
	snprintf(u.hostport, sizeof u.hostport, "docker");
	buf_init(&req, 64 * 1024);
	if ((fd = dial(d, deadline, err, errlen)) == -1)
		goto err_dial;
	if ((io = calloc(1, sizeof *io)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto err_io;
	}
	s.fd = fd;
	s.tick = st ? st->tick : NULL;
	s.tick_ctx = st ? st->ctx : NULL;
	io->read = dsock_read;
	io->write = dsock_write;
	io->ctx = &s;
	io->sink = st ? st->sink : NULL;
	io->sink_ctx = st ? st->ctx : NULL;
	if (h1_request(&req, method, &u, path, "application/json", body,
	    body ? strlen(body) : 0, 1) == -1) {
		snprintf(err, errlen, "request too large");
		goto err_io;
	}
	if (io->write(io->ctx, req.data, req.len, deadline, err, errlen) == -1)
		goto err_io;
	if (h1_read_reply(io, strcmp(method, "HEAD") == 0, resp, deadline, &rep,
	    err, errlen) == -1) {
		/* A stream that was cut (stopped, its time up) still had
		 * an answer. */
		if (rep.status >= 200 && st)
			status = rep.status;
		goto err_io;
	}
	status = rep.status;
	err[0] = '\0';
err_io:
	free(io);
	close(fd);
err_dial:
	buf_free(&req);
	return status;
}

/* "1.41" -> 1, 41. 0 or -1. */
static int
version_parse(const char *s, int *major, int *minor)
{
	char *end;
	long a, b;

	if (s == NULL)
		return -1;
	errno = 0;
	a = strtol(s, &end, 10);
	if (end == s || *end != '.' || errno)
		return -1;
	b = strtol(end + 1, &end, 10);
	if (*end || errno || a < 0 || a > 99 || b < 0 || b > 999)
		return -1;
	*major = (int)a;
	*minor = (int)b;
	return 0;
}

int
docker_negotiate(struct docker *d, char *err, size_t errlen)
{
	struct buf resp;
	json_t *v = NULL;
	const char *api, *min;
	int maj, mnr, lo_maj = 1, lo_mnr = 12;
	long code;
	int rc = -1;

	buf_init(&resp, 64 * 1024);
	code = raw_call(d, "GET", "/version", NULL, 10000, &resp, NULL, err,
	    errlen);
	if (code == 0)
		goto out;
	if (code != 200 || (v = json_loadb(resp.data ? resp.data : "",
	    resp.len, 0, NULL)) == NULL) {
		snprintf(err, errlen, "GET /version: HTTP %ld, not the engine's "
		    "version", code);
		goto out;
	}
	api = json_string_value(json_object_get(v, "ApiVersion"));
	min = json_string_value(json_object_get(v, "MinAPIVersion"));
	if (version_parse(api, &maj, &mnr) == -1) {
		snprintf(err, errlen, "the engine names no API version");
		goto out;
	}
	if (min)
		version_parse(min, &lo_maj, &lo_mnr);
	/* What both speak: the engine's, or ours if it is newer. */
	if (maj > DOCKER_API_MAX_MAJOR || (maj == DOCKER_API_MAX_MAJOR &&
	    mnr > DOCKER_API_MAX_MINOR)) {
		maj = DOCKER_API_MAX_MAJOR;
		mnr = DOCKER_API_MAX_MINOR;
	}
	if (maj < 1 || (maj == 1 && mnr < DOCKER_API_MIN_MINOR) ||
	    maj < lo_maj || (maj == lo_maj && mnr < lo_mnr)) {
		snprintf(err, errlen, "the engine speaks API %s (min %s); this "
		    "agent needs 1.%d to %d.%d", api, min ? min : "?",
		    DOCKER_API_MIN_MINOR, DOCKER_API_MAX_MAJOR,
		    DOCKER_API_MAX_MINOR);
		goto out;
	}
	snprintf(d->version, sizeof d->version, "%d.%d", maj, mnr);
	snprintf(d->engine, sizeof d->engine, "%s",
	    json_string_value(json_object_get(v, "Version")) ?
	    json_string_value(json_object_get(v, "Version")) : "");
	rc = 0;
out:
	json_decref(v);
	buf_free(&resp);
	return rc;
}

long
docker_call(struct docker *d, const char *method, const char *path,
    const char *body, long timeout_ms, struct buf *resp,
    const struct docker_stream *st, char *err, size_t errlen)
{
	char full[1024];
	long code;

	if (d->version[0] == '\0' && docker_negotiate(d, err, errlen) == -1)
		return 0;
	if ((size_t)snprintf(full, sizeof full, "/v%s%s", d->version, path) >=
	    sizeof full) {
		snprintf(err, errlen, "path too long");
		return 0;
	}
	code = raw_call(d, method, full, body, timeout_ms, resp, st, err,
	    errlen);
	if (code == 0)	/* maybe another engine now: ask again next time */
		d->version[0] = '\0';
	return code;
}

long
docker_json(struct docker *d, const char *method, const char *path,
    const json_t *body, long timeout_ms, size_t max, json_t **out,
    char *err, size_t errlen)
{
	struct buf resp;
	char *text = NULL;
	json_t *v;
	long code;

	*out = NULL;
	if (body && (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	buf_init(&resp, max);
	code = docker_call(d, method, path, text, timeout_ms, &resp, NULL, err,
	    errlen);
	free(text);
	if (code != 0 && resp.len > 0) {
		v = json_loadb(resp.data, resp.len, 0, NULL);
		if (v == NULL && code >= 200 && code < 300) {
			snprintf(err, errlen, "%s %s: the engine's answer is not "
			    "JSON", method, path);
			code = 0;
		}
		*out = v;
	}
	if (code >= 300 && *out == NULL)
		snprintf(err, errlen, "HTTP %ld", code);
	else if (code >= 300)
		snprintf(err, errlen, "%.400s", json_string_value(
		    json_object_get(*out, "message")) ? json_string_value(
		    json_object_get(*out, "message")) : "engine error");
	buf_free(&resp);
	return code;
}
int
docker_hijack(struct docker *d, const char *path, const char *body,
    char *err, size_t errlen)
{
	struct dsock s = { -1, NULL, NULL };
	char full[1024], head[8192];
	struct buf req;
	long deadline = (long)clock_mono_ms() + 15000;
	size_t n = 0;
	ssize_t r;
	int fd = -1, status;

	if (d->version[0] == '\0' && docker_negotiate(d, err, errlen) == -1)
		return -1;
	snprintf(full, sizeof full, "/v%s%s", d->version, path);
	buf_init(&req, 64 * 1024);
	if (buf_printf(&req, "POST %s HTTP/1.1\r\nHost: docker\r\n"
	    "User-Agent: bastion-agentd/%s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	    "\r\n%s", full, BASTION_VERSION, strlen(body), body) == -1) {
		snprintf(err, errlen, "request too large");
		goto err;
	}
	if ((fd = dial(d, deadline, err, errlen)) == -1)
		goto err;
	s.fd = fd;
	if (dsock_write(&s, req.data, req.len, deadline, err, errlen) == -1)
		goto err;
	/* The answer's head, a byte at a time: what follows it is the
	 * process's, not ours to read ahead. */
	while (n < sizeof head - 1) {
		if (h1_wait(fd, POLLIN, deadline, &agent_stop) == -1) {
			snprintf(err, errlen, "waiting for the engine: %s",
			    strerror(errno));
			goto err;
		}
		if ((r = recv(fd, head + n, 1, 0)) == 0) {
			snprintf(err, errlen, "the engine closed the connection");
			goto err;
		}
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			snprintf(err, errlen, "reading: %s", strerror(errno));
			goto err;
		}
		n++;
		if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	head[n] = '\0';
	if (sscanf(head, "HTTP/1.%*d %d", &status) != 1 || (status != 101 &&
	    status != 200)) {
		snprintf(err, errlen, "the engine refused the attach: %.80s",
		    head);
		goto err;
	}
	buf_free(&req);
	return fd;
err:
	if (fd != -1)
		close(fd);
	buf_free(&req);
	return -1;
}
#endif /* AGENTD_NO_CURL */
