/* client_tls.c — agentd's HTTPS client for the static node build
 * (-DAGENTD_STATIC, build/bin/agentd-static): HTTP/1.1 (http1.c) over
 * OpenSSL directly, because Debian's libcurl cannot be linked statically.
 * Same interface and the same rules as client.c: only the pinned CA is
 * trusted (never a system store), the server's name or address is checked
 * against its certificate, the agent's certificate is presented, and one
 * client (one thread) keeps its connection alive between calls. The
 * clients that present the agent's certificate share one SSL_CTX (the
 * pinned CA, the certificate and key, OpenSSL's tables: 60 KB each). */
#ifdef AGENTD_STATIC
#define LOG_SUBSYS "client"
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "agent.h"
#include "clock.h"
#include "http1.h"
#include "log.h"

#define CONNECT_TIMEOUT_MS	10000

struct aclient {
	SSL_CTX		*ctx;		/* a reference, taken at connecting */
	SSL		*ssl;		/* NULL: not connected */
	int		 fd;
	int		 mtls;
	int		 verify;	/* 0 only for the first CA fetch */
	int		 fixed;		/* aclient_new_at: url stays */
	const struct agent_conf *conf;
	unsigned	 turn;		/* agent_server_turn() of url */
	struct h1_url	 url;
	struct h1_io	 io;
};

/* No openssl.cnf: the node's (another distribution's) may name engines
 * and providers that a static binary cannot load. The protocol floor is
 * set here instead. OpenSSL writes with write(2): a server that reset the
 * connection must be an error (EPIPE), not SIGPIPE ending agentd enroll or
 * renew (libcurl ignores it during its transfers; run.c does for good). */
int
aclient_global_init(void)
{
	signal(SIGPIPE, SIG_IGN);
	return OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) == 1 ?
	    0 : -1;
}

void
aclient_global_cleanup(void)
{
	aclient_credentials_changed();
}

/* OpenSSL's reason for a failure, with the certificate check's verdict
 * when that is what failed (OpenSSL records one even when nothing is
 * verified: the first contact's is not a reason). */
static void
tls_error(struct aclient *a, const char *what, char *err, size_t errlen)
{
	char e[256] = "";
	unsigned long code = ERR_peek_last_error();
	long vr = a->ssl && a->verify ? SSL_get_verify_result(a->ssl) :
	    X509_V_OK;

	if (code)
		ERR_error_string_n(code, e, sizeof e);
	if (vr != X509_V_OK)
		snprintf(err, errlen, "%s: the server's certificate is not "
		    "trusted: %s", what, X509_verify_cert_error_string(vr));
	else if (e[0])
		snprintf(err, errlen, "%s: %s", what, e);
	else
		snprintf(err, errlen, "%s: %s", what, errno ? strerror(errno) :
		    "connection closed");
	ERR_clear_error();
}

/* Waits for what SSL_get_error asked for. 0, or -1 with err set. */
static int
tls_wait(struct aclient *a, int rc, const char *what, long deadline,
    char *err, size_t errlen)
{
	switch (SSL_get_error(a->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		rc = h1_wait(a->fd, POLLIN, deadline, &agent_stop);
		break;
	case SSL_ERROR_WANT_WRITE:
		rc = h1_wait(a->fd, POLLOUT, deadline, &agent_stop);
		break;
	default:
		tls_error(a, what, err, errlen);
		return -1;
	}
	if (rc == -1)
		snprintf(err, errlen, "%s: %s", what, errno == ECANCELED ?
		    "stopped" : errno == ETIMEDOUT ? "timed out" :
		    strerror(errno));
	return rc;
}

static ssize_t
tls_read(void *ctx, char *p, size_t n, long deadline, char *err,
    size_t errlen)
{
	struct aclient *a = ctx;
	size_t got;
	int rc;

	for (;;) {
		ERR_clear_error();
		errno = 0;
		if ((rc = SSL_read_ex(a->ssl, p, n, &got)) == 1)
			return (ssize_t)got;
		if (SSL_get_error(a->ssl, rc) == SSL_ERROR_ZERO_RETURN)
			return 0;
		if (tls_wait(a, rc, "reading", deadline, err, errlen) == -1)
			return -1;
	}
}

static int
tls_write(void *ctx, const char *p, size_t n, long deadline, char *err,
    size_t errlen)
{
	struct aclient *a = ctx;
	size_t put;
	int rc;

	while (n > 0) {
		ERR_clear_error();
		errno = 0;
		if ((rc = SSL_write_ex(a->ssl, p, n, &put)) == 1) {
			p += put;
			n -= put;
		} else if (tls_wait(a, rc, "sending", deadline, err, errlen)
		    == -1)
			return -1;
	}
	return 0;
}

static struct aclient *
client_new(const struct agent_conf *conf, int mtls, int verify)
{
	struct aclient *a;
	char path[PATH_MAX];

	if ((a = calloc(1, sizeof *a)) == NULL)
		return NULL;
	a->conf = conf;
	a->turn = agent_server_turn();
	if (h1_url_parse(agent_server(conf), &a->url) == -1 || !a->url.tls) {
		log_warnx("%s: server = %s is not an https:// URL", conf->path,
		    agent_server(conf));
		free(a);
		return NULL;
	}
	/* The longest of ca.pem, cert.pem and key.pem fits: so do all
	 * (make_ctx joins them when it needs them, 12 KB less a client). */
	if (agent_path(conf, "cert.pem", path, sizeof path) == -1) {
		free(a);
		return NULL;
	}
	a->fd = -1;
	a->mtls = mtls;
	a->verify = verify;
	a->io.read = tls_read;
	a->io.write = tls_write;
	a->io.ctx = a;
	return a;
}

struct aclient *
aclient_new(const struct agent_conf *conf, int mtls)
{
	return client_new(conf, mtls, 1);
}

struct aclient *
aclient_new_at(const struct agent_conf *conf, const char *url, int mtls)
{
	struct aclient *a;

	if (!h1_url_base_valid(url, AGENT_URL_LEN) ||
	    (a = client_new(conf, mtls, 1)) == NULL)
		return NULL;
	if (h1_url_parse(url, &a->url) == -1 || !a->url.tls) {
		free(a);
		return NULL;
	}
	a->url.path = "/";	/* not into the caller's string */
	a->fixed = 1;
	return a;
}

static void
disconnect(struct aclient *a)
{
	if (a->ssl) {
		SSL_free(a->ssl);	/* no close_notify: nothing waits for it */
		a->ssl = NULL;
	}
	if (a->fd != -1) {
		close(a->fd);
		a->fd = -1;
	}
	a->io.off = a->io.len = 0;
}

void
aclient_free(struct aclient *a)
{
	if (a == NULL)
		return;
	disconnect(a);
	SSL_CTX_free(a->ctx);
	free(a);
}

/* Trust: the pinned CA file and nothing else; our certificate and key. */
static SSL_CTX *
make_ctx(struct aclient *a, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	char path[PATH_MAX];

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		tls_error(a, "TLS setup", err, errlen);
		goto fail;
	}
	/* A peer that closes without close_notify ends the stream; every
	 * answer bastion sends has its own length, so nothing is cut. An
	 * idle connection holds no buffers (34 KB each). */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	    SSL_MODE_RELEASE_BUFFERS);
	if (a->verify) {
		if (agent_path(a->conf, "ca.pem", path, sizeof path) == -1 ||
		    SSL_CTX_load_verify_file(ctx, path) != 1) {
			tls_error(a, path, err, errlen);
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (a->mtls && (agent_path(a->conf, "cert.pem", path, sizeof path)
	    == -1 || SSL_CTX_use_certificate_chain_file(ctx, path) != 1 ||
	    agent_path(a->conf, "key.pem", path, sizeof path) == -1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, path,
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1)) {
		tls_error(a, "the agent certificate", err, errlen);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* The context of the clients that verify bastion and present the
 * agent's certificate: made by the first of them to connect, again after
 * a renewal. */
static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *shared_ctx;

void
aclient_credentials_changed(void)
{
	pthread_mutex_lock(&shared_mu);
	SSL_CTX_free(shared_ctx);	/* connections keep theirs */
	shared_ctx = NULL;
	pthread_mutex_unlock(&shared_mu);
}

/* a->ctx: the shared context (the current one) or one of its own. */
static int
take_ctx(struct aclient *a, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	int made;

	if (!a->mtls || !a->verify) {
		if (a->ctx == NULL && (a->ctx = make_ctx(a, err, errlen)) ==
		    NULL)
			return -1;
		return 0;
	}
	pthread_mutex_lock(&shared_mu);
	if (shared_ctx == NULL)
		shared_ctx = make_ctx(a, err, errlen);
	made = shared_ctx != NULL;
	if (made && SSL_CTX_up_ref(shared_ctx) == 1)
		ctx = shared_ctx;
	pthread_mutex_unlock(&shared_mu);
	if (ctx == NULL) {
		if (made)	/* else make_ctx() said why */
			snprintf(err, errlen, "TLS setup: out of memory");
		return -1;
	}
	SSL_CTX_free(a->ctx);
	a->ctx = ctx;
	return 0;
}

static int
is_address(const char *host)
{
	unsigned char b[16];

	return inet_pton(AF_INET, host, b) == 1 ||
	    inet_pton(AF_INET6, host, b) == 1;
}

static int
tls_connect(struct aclient *a, long deadline, char *err, size_t errlen)
{
	X509_VERIFY_PARAM *vp;
	long cdl = clock_mono_ms() + CONNECT_TIMEOUT_MS;
	int rc;

	if (cdl > deadline)
		cdl = deadline;
	if (take_ctx(a, err, errlen) == -1)
		return -1;
	if ((a->fd = h1_connect(&a->url, cdl, &agent_stop, err, errlen)) == -1)
		return -1;
	if ((a->ssl = SSL_new(a->ctx)) == NULL ||
	    SSL_set_fd(a->ssl, a->fd) != 1) {
		tls_error(a, "TLS setup", err, errlen);
		goto fail;
	}
	if (a->verify) {
		vp = SSL_get0_param(a->ssl);
		X509_VERIFY_PARAM_set_hostflags(vp,
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		rc = is_address(a->url.host) ?
		    X509_VERIFY_PARAM_set1_ip_asc(vp, a->url.host) :
		    SSL_set1_host(a->ssl, a->url.host);
		if (rc != 1) {
			tls_error(a, "TLS setup", err, errlen);
			goto fail;
		}
	}
	if (!is_address(a->url.host) &&
	    SSL_set_tlsext_host_name(a->ssl, a->url.host) != 1) {
		tls_error(a, "TLS setup", err, errlen);
		goto fail;
	}
	for (;;) {
		ERR_clear_error();
		errno = 0;
		if ((rc = SSL_connect(a->ssl)) == 1)
			break;
		if (tls_wait(a, rc, "TLS handshake", cdl, err, errlen) == -1)
			goto fail;
	}
	return 0;
fail:
	disconnect(a);
	return -1;
}

/* An idle kept-alive connection that has something to read was closed
 * (or is being closed) by the server, or sent what nothing asked for:
 * in the socket, or already decrypted by OpenSSL (the rest of a record
 * that the read-ahead buffer had no room for). */
static int
stale(const struct aclient *a)
{
	struct pollfd p = { a->fd, POLLIN, 0 };

	return SSL_pending(a->ssl) > 0 || poll(&p, 1, 0) != 0;
}

/* On the kept connection, or a new one. A reused connection that the
 * server closed before answering anything is replaced once, as libcurl
 * does. */
long
aclient_raw(struct aclient *a, const char *method, const char *path,
    const char *payload, long timeout_ms, struct buf *resp, char *err,
    size_t errlen)
{
	long deadline = clock_mono_ms() + timeout_ms;
	struct h1_reply r;
	struct buf req;
	int reused, attempt;

	err[0] = '\0';
	buf_init(&req, (payload ? strlen(payload) : 0) + 4096);
	if (h1_request(&req, method, &a->url, path, "application/json",
	    payload, payload ? strlen(payload) : 0, 0) == -1) {
		snprintf(err, errlen, "request too large");
		buf_free(&req);
		return 0;
	}
	if (!a->fixed && a->turn != agent_server_turn()) {	/* failover */
		a->turn = agent_server_turn();
		disconnect(a);
		if (h1_url_parse(agent_server(a->conf), &a->url) == -1 ||
		    !a->url.tls) {
			snprintf(err, errlen, "%s is not an https:// URL",
			    agent_server(a->conf));
			buf_free(&req);
			return 0;
		}
	}
	if (a->ssl && stale(a))
		disconnect(a);
	for (attempt = 0; attempt < 2; attempt++) {
		memset(&r, 0, sizeof r);
		reused = a->ssl != NULL;
		if (!reused && tls_connect(a, deadline, err, errlen) == -1)
			break;
		buf_reset(resp);
		if (a->io.write(a, req.data, req.len, deadline, err, errlen) ==
		    0 && h1_read_reply(&a->io, strcmp(method, "HEAD") == 0,
		    resp, deadline, &r, err, errlen) == 0) {
			if (!r.keep_alive)
				disconnect(a);
			break;
		}
		disconnect(a);
		if (!reused || r.received > 0 || agent_stop) {
			r.status = 0;
			break;
		}
		log_debug("%s %s: the kept connection was closed; "
		    "reconnecting", method, path);
	}
	buf_free(&req);
	return r.status;
}

long
aclient_fetch_unverified(const struct agent_conf *conf, const char *path,
    size_t max, char **body, char *err, size_t errlen)
{
	struct aclient *a;
	struct buf resp;
	long code;

	*body = NULL;
	if ((a = client_new(conf, 0, 0)) == NULL) {
		snprintf(err, errlen, "%s: bad server URL", agent_server(conf));
		return 0;
	}
	buf_init(&resp, max);
	code = aclient_raw(a, "GET", path, NULL, 20000, &resp, err, errlen);
	if (code)
		*body = buf_take(&resp);
	buf_free(&resp);
	aclient_free(a);
	return code;
}
#endif /* AGENTD_STATIC */
