/* http1.h — agentd's own HTTP/1.1 client layer, for the builds without
 * libcurl: URLs, connecting with a deadline, writing a request and
 * reading its answer (Content-Length, chunked, or up to the close).
 *
 * The bytes go through a struct h1_io: a plain socket (report.c, the
 * discovery image) or an mbedTLS connection (client_tls.c, the static
 * node build). Deadlines are absolute clock_mono_ms() values. */
#ifndef AGENTD_HTTP1_H
#define AGENTD_HTTP1_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "clock.h"

/* The builds: the default links libcurl; -DAGENTD_STATIC (the node build,
 * build/bin/agentd-static) uses client_tls.c on mbedTLS; -DAGENTD_NO_CURL
 * (the discovery image) only discovers, over plain HTTP. */
#if !defined(AGENTD_NO_CURL) && !defined(AGENTD_STATIC)
#define AGENTD_HAVE_CURL 1
#endif

#define H1_ERRLEN	512

struct h1_url {
	int	 tls;			/* https:// */
	char	 host[256];		/* without IPv6 brackets */
	char	 port[8];
	char	 hostport[300];		/* as in the URL, for Host: */
	const char *path;		/* points into the URL; "/" if none */
};

/* http:// or https:// URL -> parts. 0 or -1. */
int	h1_url_parse(const char *url, struct h1_url *);
/*
 * Whether url is a bastion's base URL as a job may name one (a stream's,
 * stream_url): https:// only; a host name of letters, digits, '.' and
 * '-' (each label 1-63, not starting or ending with '-'), a dotted IPv4
 * address or an IPv6 address in brackets; an optional port 1-65535; then
 * nothing (no path, query, fragment or user info); shorter than max.
 */
int	h1_url_base_valid(const char *url, size_t max);
/*
 * Waits until fd is ready for ev (POLLIN, POLLOUT) or the deadline, in
 * short slices so that *stop (may be NULL) ends it early. 0, or -1 with
 * errno ETIMEDOUT or ECANCELED (stopped).
 */
int	h1_wait(int fd, short ev, long deadline, volatile sig_atomic_t *stop);
/*
 * A non-blocking TCP connection to u's host and port. Addresses
 * (10.77.0.1, [fd77::1]) are taken as they are: no resolver and no NSS
 * module is involved, which a static binary cannot load safely on
 * another distribution. Names go through getaddrinfo(). fd or -1 with err.
 */
int	h1_connect(const struct h1_url *, long deadline,
	    volatile sig_atomic_t *stop, char *err, size_t errlen);

struct h1_io {
	/* Bytes read (> 0), 0 at the end of the stream, -1 with err set. */
	ssize_t	(*read)(void *ctx, char *p, size_t n, long deadline,
		    char *err, size_t errlen);
	/* All of p, or -1 with err set. */
	int	(*write)(void *ctx, const char *p, size_t n, long deadline,
		    char *err, size_t errlen);
	void	*ctx;
	/* When set, an answer's body goes here as it comes instead of into
	 * the body buffer (a stream: no size cap); -1 from it ends the
	 * reading with an error (err says "stopped"). */
	int	(*sink)(void *sink_ctx, const char *p, size_t n);
	void	*sink_ctx;
	char	 in[16384];		/* read ahead; a header line must fit */
	size_t	 off, len;
};

/* All of p to the socket fd (non-blocking), or -1 with err. */
int	h1_send_all(int fd, volatile sig_atomic_t *stop, const char *p,
	    size_t n, long deadline, char *err, size_t errlen);

/* A plain socket as an h1_io: ctx is a struct h1_sock. */
struct h1_sock {
	int	 fd;
	volatile sig_atomic_t *stop;
};
void	h1_io_socket(struct h1_io *, struct h1_sock *);

/* "METHOD path HTTP/1.1" with Host, User-Agent, Accept and, with a body,
 * Content-Type and Content-Length; close asks for Connection: close. */
int	h1_request(struct buf *out, const char *method, const struct h1_url *,
	    const char *path, const char *ctype, const char *body, size_t len,
	    int close);

struct h1_reply {
	long	 status;
	int	 keep_alive;	/* the connection may carry the next request */
	size_t	 received;	/* bytes of the answer seen; 0: nothing came */
};
/*
 * Reads one answer: status, headers, body into body (whose cap is the
 * reply size limit: a longer body is an error). head: a HEAD request (no
 * body follows). 0, or -1 with err set (r->received tells whether
 * anything came at all).
 */
int	h1_read_reply(struct h1_io *, int head, struct buf *body,
	    long deadline, struct h1_reply *r, char *err, size_t errlen);

#endif
