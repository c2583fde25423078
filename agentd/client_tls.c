/* client_tls.c — agentd's HTTPS client for the static node build
 * (-DAGENTD_STATIC, build/bin/agentd-static): HTTP/1.1 (http1.c) over
 * mbedTLS, because Debian's libcurl cannot be linked statically and
 * OpenSSL 3's TLS stack alone kept the idle agent ~1 MB over its memory
 * goal (docs/benchmarks.md, issue 13). Same interface and the same rules
 * as client.c: only the pinned CA is trusted (never a system store), the
 * server's name or address is checked against its certificate, TLS 1.2
 * at least, the agent's certificate is presented, and one client (one
 * thread) keeps its connection alive between calls. The clients that
 * present the agent's certificate share one configuration (the pinned
 * CA, the certificate and key). */
#ifdef AGENTD_STATIC
#define LOG_SUBSYS "client"
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>	/* its error codes only */
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "agent.h"
#include "clock.h"
#include "http1.h"
#include "log.h"

#define CONNECT_TIMEOUT_MS	10000

/* What a connection is made with: shared by the clients that verify
 * bastion and present the agent's certificate (counted; a renewal makes
 * a new one, connections keep theirs). mbedTLS only reads a
 * configuration once it is set up, so threads may share it. */
struct tls_conf {
	mbedtls_ssl_config	 ssl;
	mbedtls_x509_crt	 ca;
	mbedtls_x509_crt	 crt;
	mbedtls_pk_context	 key;
	int			 refs;		/* under shared_mu */
};

struct aclient {
	struct tls_conf	*tc;		/* a reference, taken at connecting */
	mbedtls_ssl_context ssl;
	int		 connected;
	int		 fd;
	int		 sockerr;	/* errno of the last send/recv */
	int		 mtls;
	int		 verify;	/* 0 only for the first CA fetch */
	int		 fixed;		/* aclient_new_at: url stays */
	int		 ip;		/* url.host is an address */
	unsigned char	 addr[16];	/* it, for the certificate check */
	size_t		 addrlen;
	const struct agent_conf *conf;
	unsigned	 turn;		/* agent_server_turn() of url */
	struct h1_url	 url;
	struct h1_io	 io;
};

static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tls_conf *shared_tc;

/* A server that reset the connection must be an error (EPIPE), not a
 * SIGPIPE ending agentd enroll or renew (send() below says so too; other
 * writers may not). */
int
aclient_global_init(void)
{
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

void
aclient_global_cleanup(void)
{
	aclient_credentials_changed();
}

static void
conf_release(struct tls_conf *tc)
{
	int last;

	if (tc == NULL)
		return;
	pthread_mutex_lock(&shared_mu);
	last = --tc->refs == 0;
	pthread_mutex_unlock(&shared_mu);
	if (!last)
		return;
	mbedtls_ssl_config_free(&tc->ssl);
	mbedtls_x509_crt_free(&tc->ca);
	mbedtls_x509_crt_free(&tc->crt);
	mbedtls_pk_free(&tc->key);
	free(tc);
}

/* The reason for a failure: the certificate check's verdict when that is
 * what failed, else mbedTLS's, else the socket's. */
static void
tls_error(struct aclient *a, int rc, const char *what, char *err,
    size_t errlen)
{
	char e[256] = "";
	uint32_t vr;
	size_t n;

	if (a->connected && a->verify &&
	    (rc == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED ||
	    rc == MBEDTLS_ERR_SSL_PEER_VERIFY_FAILED) &&
	    (vr = mbedtls_ssl_get_verify_result(&a->ssl)) != 0) {
		mbedtls_x509_crt_verify_info(e, sizeof e, "", vr);
		if ((n = strcspn(e, "\n")) < sizeof e)	/* the first reason */
			e[n] = '\0';
		snprintf(err, errlen, "%s: the server's certificate is not "
		    "trusted: %s", what, e);
		return;
	}
	if (a->sockerr || rc == MBEDTLS_ERR_NET_CONN_RESET ||
	    rc == MBEDTLS_ERR_NET_SEND_FAILED ||
	    rc == MBEDTLS_ERR_NET_RECV_FAILED) {
		snprintf(err, errlen, "%s: %s", what, a->sockerr ?
		    strerror(a->sockerr) : "connection reset");
		return;
	}
	if (rc == MBEDTLS_ERR_SSL_CONN_EOF) {
		snprintf(err, errlen, "%s: connection closed", what);
		return;
	}
	mbedtls_strerror(rc, e, sizeof e);
	snprintf(err, errlen, "%s: %s", what, e);
}

/* The socket under mbedTLS: non-blocking, so a want is returned and the
 * caller polls with its deadline. */
static int
bio_send(void *ctx, const unsigned char *p, size_t n)
{
	struct aclient *a = ctx;
	ssize_t rc;

	while ((rc = send(a->fd, p, n, MSG_NOSIGNAL)) == -1 && errno == EINTR)
		;
	if (rc >= 0)
		return (int)rc;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	a->sockerr = errno;
	return errno == EPIPE || errno == ECONNRESET ?
	    MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_SEND_FAILED;
}

static int
bio_recv(void *ctx, unsigned char *p, size_t n)
{
	struct aclient *a = ctx;
	ssize_t rc;

	while ((rc = recv(a->fd, p, n, 0)) == -1 && errno == EINTR)
		;
	if (rc >= 0)
		return (int)rc;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_READ;
	a->sockerr = errno;
	return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET :
	    MBEDTLS_ERR_NET_RECV_FAILED;
}

/* Waits for what mbedTLS asked for. 0, or -1 with err set. */
static int
tls_wait(struct aclient *a, int rc, const char *what, long deadline,
    char *err, size_t errlen)
{
	switch (rc) {
	case MBEDTLS_ERR_SSL_WANT_READ:
		rc = h1_wait(a->fd, POLLIN, deadline, &agent_stop);
		break;
	case MBEDTLS_ERR_SSL_WANT_WRITE:
		rc = h1_wait(a->fd, POLLOUT, deadline, &agent_stop);
		break;
	default:
		tls_error(a, rc, what, err, errlen);
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
	int rc;

	for (;;) {
		a->sockerr = 0;
		rc = mbedtls_ssl_read(&a->ssl, (unsigned char *)p, n);
		if (rc > 0)
			return rc;
		/* A peer that closes without close_notify ends the stream
		 * too: every answer bastion sends has its own length, so
		 * nothing is cut (h1_read_reply sees a short body). */
		if (rc == 0 || rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY ||
		    (rc == MBEDTLS_ERR_SSL_CONN_EOF && a->sockerr == 0))
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
	int rc;

	while (n > 0) {
		a->sockerr = 0;
		rc = mbedtls_ssl_write(&a->ssl, (const unsigned char *)p, n);
		if (rc > 0) {
			p += rc;
			n -= (size_t)rc;
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
	 * (make_conf joins them when it needs them). */
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

/* No close_notify: nothing waits for it. The context's 33 KB of record
 * buffers go with it. */
static void
disconnect(struct aclient *a)
{
	if (a->connected) {
		mbedtls_ssl_free(&a->ssl);
		a->connected = 0;
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
	conf_release(a->tc);
	free(a);
}

/* Whether the certificate names the address we connected to, in an
 * iPAddress of its subjectAltName (mbedTLS 2.28 checks only names). */
static int
crt_has_ip(const mbedtls_x509_crt *crt, const unsigned char *addr,
    size_t addrlen)
{
	unsigned char *p = crt->v3_ext.p, *end, *ext_end, *san_end;
	mbedtls_x509_buf oid;
	size_t len;
	int crit, tag;

	if (p == NULL)		/* no extensions */
		return 0;
	end = p + crt->v3_ext.len;
	if (mbedtls_asn1_get_tag(&p, end, &len,
	    MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
		return 0;
	end = p + len;
	while (p < end) {
		if (mbedtls_asn1_get_tag(&p, end, &len,
		    MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
			return 0;
		ext_end = p + len;
		if (mbedtls_asn1_get_tag(&p, ext_end, &oid.len,
		    MBEDTLS_ASN1_OID) != 0)
			return 0;
		oid.p = p;
		p += oid.len;
		if (mbedtls_asn1_get_bool(&p, ext_end, &crit) != 0 &&
		    p >= ext_end)
			return 0;
		if (mbedtls_asn1_get_tag(&p, ext_end, &len,
		    MBEDTLS_ASN1_OCTET_STRING) != 0 || p + len != ext_end)
			return 0;
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, &oid) != 0) {
			p = ext_end;
			continue;
		}
		if (mbedtls_asn1_get_tag(&p, ext_end, &len,
		    MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
			return 0;
		san_end = p + len;
		while (p < san_end) {
			tag = *p++;
			if (mbedtls_asn1_get_len(&p, san_end, &len) != 0)
				return 0;
			/* [7] iPAddress, primitive: 4 or 16 bytes */
			if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) &&
			    len == addrlen && memcmp(p, addr, len) == 0)
				return 1;
			p += len;
		}
		return 0;
	}
	return 0;
}

/* Certificate check, per certificate of the chain: bastion's (depth 0)
 * must name the address the URL has. Names are checked by mbedTLS
 * (mbedtls_ssl_set_hostname: the subjectAltName's DNS names, else the
 * CN; a wildcard only as a whole leftmost label). */
static int
verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	struct aclient *a = ctx;

	if (depth == 0 && a->ip && !crt_has_ip(crt, a->addr, a->addrlen))
		*flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
	return 0;
}

/* mbedTLS stores an EC group's table of multiples of its generator in
 * the group at the first multiplication by it: done here, in one thread,
 * so that the clients sharing this configuration only read the tables
 * (the key's group signs in client authentication, the CA's verifies
 * bastion's certificate). */
static int
warm_group(mbedtls_pk_context *pk)
{
	mbedtls_ecp_keypair *ec;
	mbedtls_ecp_point r;
	mbedtls_mpi one;
	int rc;

	if (!mbedtls_pk_can_do(pk, MBEDTLS_PK_ECKEY))
		return 0;
	ec = mbedtls_pk_ec(*pk);
	mbedtls_ecp_point_init(&r);
	mbedtls_mpi_init(&one);
	if ((rc = mbedtls_mpi_lset(&one, 1)) == 0)
		rc = mbedtls_ecp_mul(&ec->grp, &r, &one, &ec->grp.G,
		    agent_random, NULL);
	mbedtls_mpi_free(&one);
	mbedtls_ecp_point_free(&r);
	return rc;
}

/* Trust: the pinned CA file and nothing else; our certificate and key. */
static struct tls_conf *
make_conf(struct aclient *a, char *err, size_t errlen)
{
	struct tls_conf *tc;
	mbedtls_x509_crt *crt;
	char path[PATH_MAX];
	int rc;

	if ((tc = calloc(1, sizeof *tc)) == NULL) {
		snprintf(err, errlen, "TLS setup: out of memory");
		return NULL;
	}
	tc->refs = 1;
	mbedtls_ssl_config_init(&tc->ssl);
	mbedtls_x509_crt_init(&tc->ca);
	mbedtls_x509_crt_init(&tc->crt);
	mbedtls_pk_init(&tc->key);
	if ((rc = mbedtls_ssl_config_defaults(&tc->ssl, MBEDTLS_SSL_IS_CLIENT,
	    MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
		tls_error(a, rc, "TLS setup", err, errlen);
		goto fail;
	}
	/* TLS 1.2 (3.3) at least; mbedTLS 2.28 has nothing newer. */
	mbedtls_ssl_conf_min_version(&tc->ssl, MBEDTLS_SSL_MAJOR_VERSION_3,
	    MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_rng(&tc->ssl, agent_random, NULL);
	if (a->verify) {
		if (agent_path(a->conf, "ca.pem", path, sizeof path) == -1 ||
		    (rc = mbedtls_x509_crt_parse_file(&tc->ca, path)) != 0) {
			tls_error(a, rc, path, err, errlen);
			goto fail;
		}
		for (crt = &tc->ca; crt != NULL; crt = crt->next)
			if ((rc = warm_group(&crt->pk)) != 0) {
				tls_error(a, rc, path, err, errlen);
				goto fail;
			}
		mbedtls_ssl_conf_ca_chain(&tc->ssl, &tc->ca, NULL);
		mbedtls_ssl_conf_authmode(&tc->ssl, MBEDTLS_SSL_VERIFY_REQUIRED);
	} else
		mbedtls_ssl_conf_authmode(&tc->ssl, MBEDTLS_SSL_VERIFY_NONE);
	if (a->mtls && (agent_path(a->conf, "cert.pem", path, sizeof path)
	    == -1 || (rc = mbedtls_x509_crt_parse_file(&tc->crt, path)) != 0 ||
	    agent_path(a->conf, "key.pem", path, sizeof path) == -1 ||
	    (rc = mbedtls_pk_parse_keyfile(&tc->key, path, NULL)) != 0 ||
	    (rc = mbedtls_pk_check_pair(&tc->crt.pk, &tc->key)) != 0 ||
	    (rc = warm_group(&tc->key)) != 0 ||
	    (rc = mbedtls_ssl_conf_own_cert(&tc->ssl, &tc->crt,
	    &tc->key)) != 0)) {
		tls_error(a, rc, "the agent certificate", err, errlen);
		goto fail;
	}
	return tc;
fail:
	conf_release(tc);
	return NULL;
}

void
aclient_credentials_changed(void)
{
	struct tls_conf *tc;

	pthread_mutex_lock(&shared_mu);
	tc = shared_tc;
	shared_tc = NULL;
	pthread_mutex_unlock(&shared_mu);
	conf_release(tc);	/* connections keep theirs */
}

/* a->tc: the shared configuration (the current one) or one of its own. */
static int
take_conf(struct aclient *a, char *err, size_t errlen)
{
	struct tls_conf *tc;

	if (!a->mtls || !a->verify) {
		if (a->tc == NULL && (a->tc = make_conf(a, err, errlen)) ==
		    NULL)
			return -1;
		return 0;
	}
	pthread_mutex_lock(&shared_mu);
	if (shared_tc == NULL)
		shared_tc = make_conf(a, err, errlen);
	if ((tc = shared_tc) != NULL)
		tc->refs++;
	pthread_mutex_unlock(&shared_mu);
	if (tc == NULL)
		return -1;
	conf_release(a->tc);
	a->tc = tc;
	return 0;
}

static int
tls_connect(struct aclient *a, long deadline, char *err, size_t errlen)
{
	long t0 = clock_mono_ms(), cdl = t0 + CONNECT_TIMEOUT_MS;
	int rc;

	if (cdl > deadline)
		cdl = deadline;
	if (take_conf(a, err, errlen) == -1)
		return -1;
	a->ip = 0;
	if (inet_pton(AF_INET, a->url.host, a->addr) == 1) {
		a->ip = 1;
		a->addrlen = 4;
	} else if (inet_pton(AF_INET6, a->url.host, a->addr) == 1) {
		a->ip = 1;
		a->addrlen = 16;
	}
	if ((a->fd = h1_connect(&a->url, cdl, &agent_stop, err, errlen)) == -1)
		return -1;
	mbedtls_ssl_init(&a->ssl);
	a->connected = 1;
	a->sockerr = 0;
	if ((rc = mbedtls_ssl_setup(&a->ssl, &a->tc->ssl)) != 0) {
		tls_error(a, rc, "TLS setup", err, errlen);
		goto fail;
	}
	/* A name: sent (SNI) and checked. An address: no SNI, checked by
	 * verify_cb. */
	if (!a->ip && (rc = mbedtls_ssl_set_hostname(&a->ssl,
	    a->url.host)) != 0) {
		tls_error(a, rc, "TLS setup", err, errlen);
		goto fail;
	}
	if (a->verify)
		mbedtls_ssl_set_verify(&a->ssl, verify_cb, a);
	mbedtls_ssl_set_bio(&a->ssl, a, bio_send, bio_recv, NULL);
	/* Step by step: a stop is seen between two steps, not only while
	 * waiting for the server (a step's arithmetic can take a while on a
	 * slow node, and several clients may be connecting at once). */
	while (a->ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
		if (agent_stop) {
			snprintf(err, errlen, "TLS handshake: stopped");
			goto fail;
		}
		a->sockerr = 0;
		if ((rc = mbedtls_ssl_handshake_step(&a->ssl)) != 0 &&
		    tls_wait(a, rc, "TLS handshake", cdl, err, errlen) == -1)
			goto fail;
	}
	log_debug("%s: %s, %s, handshake %ld ms", a->url.host,
	    mbedtls_ssl_get_version(&a->ssl),
	    mbedtls_ssl_get_ciphersuite(&a->ssl), clock_mono_ms() - t0);
	return 0;
fail:
	disconnect(a);
	return -1;
}

/* An idle kept-alive connection that has something to read was closed
 * (or is being closed) by the server, or sent what nothing asked for:
 * in the socket, or already decrypted by mbedTLS. */
static int
stale(struct aclient *a)
{
	struct pollfd p = { a->fd, POLLIN, 0 };

	return mbedtls_ssl_get_bytes_avail(&a->ssl) > 0 ||
	    poll(&p, 1, 0) != 0;
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
	if (a->connected && stale(a))
		disconnect(a);
	for (attempt = 0; attempt < 2; attempt++) {
		memset(&r, 0, sizeof r);
		reused = a->connected;
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
