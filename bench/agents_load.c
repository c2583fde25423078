/* agents_load.c — load generator for bench/agents and bench/fleet:
 * simulated agents over mutual TLS with keep-alive, one thread.
 *
 *   agents_load heartbeat URL CERT KEY CA CONNECTIONS SECONDS [SOURCE]
 *       every connection POSTs /agent/v1/heartbeat back to back, one
 *       request at a time (no pipelining), each answer read whole and
 *       checked (HTTP/1.1 200, Content-Length, a JSON object with
 *       "interval"); made RAMP at a time, counted from when all are made;
 *       prints "heartbeats N seconds S rate R errors E identities K
 *       cpu_s C" (C: this process's CPU seconds while counting). On
 *       OpenSSL's non-blocking API and epoll (as agents_hold.c): under
 *       libcurl's multi interface the load generator was the largest CPU
 *       user of bench/fleet's (a), each request a handle removed and
 *       added again.
 *   agents_load heartbeat-health URL CERT KEY CA CONNECTIONS SECONDS [SOURCE]
 *       the same with the body agentd sends since health.c (mounts,
 *       temperatures, SMART: bench/attention)
 *   agents_load poll URL CERT KEY CA CONNECTIONS SECONDS [SOURCE]
 *       (libcurl multi) opens CONNECTIONS long polls (GET
 *       /agent/v1/jobs?wait=30), keeps them open for SECONDS or until
 *       SIGTERM (re-polling on the same connection when one is answered)
 *       and prints
 *       "polls_sent N after S s answered A min_per_connection M
 *        connects C errors E"
 *       (every poll answered at least once when M >= 1; C == N when no
 *       connection had to be made again).
 * URL is https://A.B.C.D:PORT for the heartbeat modes. SOURCE is the
 * local address to connect from (127.0.0.2, ...): a
 * process holds at most its open-file limit and bastion caps connections
 * per address, so bench/agents spreads big runs over several.
 * CERT and KEY may hold one "%d": connection i is then agent identity
 * i mod K (CERT with 0 .. K-1 in place of %d exist), so that K agents'
 * rows are written, not one's.
 *
 *   agents_load identities CADIR OUTDIR FIRST COUNT PREFIX
 *       makes COUNT agent identities signed by CADIR/ca.{pem,key} (as
 *       bastion's CA signs them: CN the agent id PREFIX-NNNNNN, clientAuth)
 *       in OUTDIR/N.pem, N.key (N = FIRST ...) and prints the SQL that
 *       enrolls them (agents and certificates rows) for psql: enrollment
 *       over HTTP is rate-limited per address, which a bench of thousands
 *       of agents from one address would only measure.
 */
#define _GNU_SOURCE	/* memmem */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "nofile.h"

#define RAMP	32	/* connections being made at once */
#define WARM_MAX 60	/* heartbeat: seconds to make them, at most */

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	stop = 1;
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	return size * n;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What agentd's heartbeat carries with health.c: a typical node. */
static const char health_body[] = "{\"version\":\"0.1.0\","
    "\"load\":[0.41,0.35,0.3],\"cpus\":8,\"running_jobs\":0,"
    "\"uptime_s\":123456,\"memory\":{\"total_bytes\":16777216000,"
    "\"available_bytes\":9663676416},\"disks\":[{\"mount\":\"/\","
    "\"size_bytes\":53687091200,\"free_bytes\":21474836480}],"
    "\"mounts\":[{\"mount\":\"/\",\"device\":\"/dev/mapper/vg-root\","
    "\"fstype\":\"xfs\",\"size_bytes\":53687091200,\"free_bytes\":"
    "21474836480},{\"mount\":\"/boot\",\"device\":\"/dev/sda2\","
    "\"fstype\":\"ext4\",\"size_bytes\":1063256064,\"free_bytes\":"
    "700000000},{\"mount\":\"/var/lib/longhorn\",\"device\":"
    "\"/dev/mapper/vg-longhorn\",\"fstype\":\"xfs\",\"size_bytes\":"
    "900000000000,\"free_bytes\":400000000000}],\"temperatures\":["
    "{\"sensor\":\"coretemp/Package id 0\",\"celsius\":52.0,"
    "\"critical_celsius\":100.0},{\"sensor\":\"coretemp/Core 0\","
    "\"celsius\":50.0,\"critical_celsius\":100.0},{\"sensor\":"
    "\"nvme/Composite\",\"celsius\":41.85},{\"sensor\":"
    "\"thermal_zone0/x86_pkg_temp\",\"celsius\":52.0}],\"smart\":["
    "{\"device\":\"sda\",\"passed\":true,\"celsius\":34,\"model\":"
    "\"WDC WD40EFRX-68N32N0\"},{\"device\":\"nvme0n1\",\"passed\":true,"
    "\"celsius\":41,\"model\":\"Samsung SSD 980 PRO 1TB\"}]}";
static int with_health;
static long ids;	/* CERT holds %d: so many identities, else 0 */

/* pat with its "%d" (if any) replaced by i. */
static void
subst(char *out, size_t size, const char *pat, long i)
{
	const char *d = strstr(pat, "%d");

	if (d == NULL)
		snprintf(out, size, "%s", pat);
	else
		snprintf(out, size, "%.*s%ld%s", (int)(d - pat), pat, i, d + 2);
}

/* A long poll's handle (poll mode). */
static CURL *
handle(const char *url, char **av, const char *source, long *answers,
    long idx)
{
	CURL *c = curl_easy_init();

	curl_easy_setopt(c, CURLOPT_PRIVATE, answers);
	if (source)
		curl_easy_setopt(c, CURLOPT_INTERFACE, source);

	curl_easy_setopt(c, CURLOPT_URL, url);
	if (ids > 0) {		/* this connection's own agent (curl copies) */
		char cert[4096], key[4096];

		subst(cert, sizeof cert, av[3], idx % ids);
		subst(key, sizeof key, av[4], idx % ids);
		curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, key);
	} else {
		curl_easy_setopt(c, CURLOPT_SSLCERT, av[3]);
		curl_easy_setopt(c, CURLOPT_SSLKEY, av[4]);
	}
	curl_easy_setopt(c, CURLOPT_CAINFO, av[5]);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	return c;
}

/* The certificate (key 0) or private key (key 1) in PEM file path, or
 * NULL. */
static void *
load_pem(const char *path, int key)
{
	FILE *f = fopen(path, "r");
	void *v;

	if (f == NULL)
		return NULL;
	v = key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL) :
	    (void *)PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return v;
}

static int
add_ext(X509 *ca, X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;
	int rc;

	X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return -1;
	rc = X509_add_ext(x, e, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(e);
	return rc;
}

static int
write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = x ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, k, NULL, NULL,
	    0, NULL, NULL);
	return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

/* agents_load identities CADIR OUTDIR FIRST COUNT PREFIX */
static int
identities(char **av)
{
	char path[4096], id[64], serial[64], *h;
	long first = strtol(av[4], NULL, 10), count = strtol(av[5], NULL, 10), i;
	int64_t now = (int64_t)time(NULL) * 1000, nb = now - 3600000,
	    na = now + 30LL * 86400000;
	unsigned char rnd[16];
	EVP_PKEY *cakey, *k;
	X509 *ca, *x;
	BIGNUM *bn;
	size_t j;

	snprintf(path, sizeof path, "%s/ca.pem", av[2]);
	ca = load_pem(path, 0);
	snprintf(path, sizeof path, "%s/ca.key", av[2]);
	cakey = load_pem(path, 1);
	if (ca == NULL || cakey == NULL || first < 0 || count < 1 ||
	    strlen(av[6]) > 20) {
		fprintf(stderr, "agents_load identities: no CA in %s, or a bad"
		    " FIRST/COUNT/PREFIX\n", av[2]);
		return 1;
	}
	printf("BEGIN;\n");
	for (i = first; i < first + count; i++) {
		snprintf(id, sizeof id, "%s-%06ld", av[6], i);
		if ((k = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL)
			return 1;
		RAND_bytes(rnd, sizeof rnd);
		rnd[0] &= 0x7f;
		rnd[0] |= 0x10;		/* positive, 16 bytes: no leading 0 */
		bn = BN_bin2bn(rnd, sizeof rnd, NULL);
		BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
		h = BN_bn2hex(bn);
		snprintf(serial, sizeof serial, "%s", h);
		for (j = 0; serial[j]; j++)
			if (serial[j] >= 'A' && serial[j] <= 'F')
				serial[j] = (char)(serial[j] - 'A' + 'a');
		OPENSSL_free(h);
		BN_free(bn);
		X509_set_version(x, 2);
		X509_time_adj_ex(X509_getm_notBefore(x), 0, -3600, NULL);
		X509_time_adj_ex(X509_getm_notAfter(x), 30, 0, NULL);
		X509_NAME_add_entry_by_NID(X509_get_subject_name(x),
		    NID_commonName, MBSTRING_ASC, (unsigned char *)id, -1, -1, 0);
		X509_NAME_add_entry_by_NID(X509_get_subject_name(x),
		    NID_organizationName, MBSTRING_ASC,
		    (unsigned char *)"Bastion agents", -1, -1, 0);
		X509_set_issuer_name(x, X509_get_subject_name(ca));
		X509_set_pubkey(x, k);
		if (add_ext(ca, x, NID_basic_constraints, "critical,CA:FALSE") ||
		    add_ext(ca, x, NID_key_usage, "critical,digitalSignature") ||
		    add_ext(ca, x, NID_ext_key_usage, "clientAuth") ||
		    X509_sign(x, cakey, EVP_sha256()) == 0)
			return 1;
		snprintf(path, sizeof path, "%s/%ld.pem", av[3], i);
		if (write_pem(path, x, NULL) == -1)
			return 1;
		snprintf(path, sizeof path, "%s/%ld.key", av[3], i);
		if (write_pem(path, NULL, k) == -1)
			return 1;
		printf("INSERT INTO agents (id, hostname, enrolled_ms,"
		    " cert_serial, cert_not_after_ms) VALUES ('%s', '%s', %lld,"
		    " '%s', %lld);\n", id, id, (long long)now, serial,
		    (long long)na);
		printf("INSERT INTO certificates (serial, agent_id,"
		    " not_before_ms, not_after_ms, created_ms) VALUES ('%s',"
		    " '%s', %lld, %lld, %lld);\n", serial, id, (long long)nb,
		    (long long)na, (long long)now);
		X509_free(x);
		EVP_PKEY_free(k);
	}
	printf("COMMIT;\n");
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* --- heartbeats: OpenSSL non-blocking and epoll ----------------------------- */

#define HB_IN		4096	/* one response, header and body, at most */
#define HB_STUCK_S	60	/* a heartbeat unanswered this long: an error */

enum { H_IDLE, H_CONNECT, H_HANDSHAKE, H_SEND, H_WAIT };

struct hconn {
	SSL		*ssl;
	double		 since;		/* s: state entered */
	double		 retry_at;	/* s: when H_IDLE, not before */
	uint32_t	 answers;
	int		 fd;
	int		 inlen;
	uint8_t		 state;
	uint8_t		 events;	/* registered: 1 EPOLLIN, 2 EPOLLOUT */
	char		 in[HB_IN];
};

static struct {
	struct sockaddr_in dst, src;
	int		 with_src;
	SSL_CTX		*ctx;
	X509		**certs;	/* ids > 0: identity i's */
	EVP_PKEY	**keys;
	struct hconn	*cs;
	long		 n;
	long		*queue, qhead, qlen;	/* ring: connections to make */
	long		 making, made, done, errors;
	int		 ep;
	char		 req[2048];
	int		 reqlen;
} H;

static void
hb_enqueue(long i, double at)
{
	H.cs[i].retry_at = at;
	H.queue[(H.qhead + H.qlen) % H.n] = i;
	H.qlen++;
}

static void
hb_want(long i, uint8_t ev)
{
	struct hconn *c = &H.cs[i];
	struct epoll_event e;

	if (c->events == ev)
		return;
	memset(&e, 0, sizeof e);
	e.events = (ev & 1 ? EPOLLIN : 0) | (ev & 2 ? EPOLLOUT : 0);
	e.data.u64 = (uint64_t)i;
	if (epoll_ctl(H.ep, EPOLL_CTL_MOD, c->fd, &e) == -1)
		perror("agents_load: epoll_ctl");
	c->events = ev;
}

/* Closes connection i and makes it again: an error (why) at once after a
 * second, or the server's close (why NULL) at once. */
static void
hb_drop(long i, const char *why)
{
	struct hconn *c = &H.cs[i];

	if (c->state == H_CONNECT || c->state == H_HANDSHAKE)
		H.making--;
	if (why != NULL && !stop && H.errors++ < 5)
		fprintf(stderr, "agents_load: connection %ld: %s\n", i, why);
	SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->state = H_IDLE;
	c->events = 0;
	c->inlen = 0;
	hb_enqueue(i, now_s() + (why ? 1 : 0));
}

static void
hb_start(long i)
{
	struct hconn *c = &H.cs[i];
	struct epoll_event e;
	int one = 1;

	H.making++;
	c->state = H_CONNECT;
	c->since = now_s();
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		hb_drop(i, strerror(errno));
		return;
	}
	if (H.with_src) {
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof one);
		if (bind(c->fd, (struct sockaddr *)&H.src, sizeof H.src) == -1) {
			hb_drop(i, strerror(errno));
			return;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&H.dst, sizeof H.dst) == -1 &&
	    errno != EINPROGRESS) {
		hb_drop(i, strerror(errno));
		return;
	}
	memset(&e, 0, sizeof e);
	e.events = EPOLLOUT;
	e.data.u64 = (uint64_t)i;
	if (epoll_ctl(H.ep, EPOLL_CTL_ADD, c->fd, &e) == -1) {
		hb_drop(i, strerror(errno));
		return;
	}
	c->events = 2;
}

/* The SSL call's result r: 0 to wait (events set), -1 dropped. */
static int
hb_ssl_wait(long i, int r, const char *what)
{
	struct hconn *c = &H.cs[i];
	char why[300];
	int e = SSL_get_error(c->ssl, r);
	unsigned long ee;

	if (e == SSL_ERROR_WANT_READ) {
		hb_want(i, 1);
		return 0;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		hb_want(i, 2);
		return 0;
	}
	ee = ERR_get_error();
	ERR_clear_error();
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ee == 0))
		snprintf(why, sizeof why, "%s: closed by the server", what);
	else
		snprintf(why, sizeof why, "%s: %s", what, ee ?
		    ERR_error_string(ee, NULL) : "TLS error");
	hb_drop(i, why);
	return -1;
}

static void
hb_send(long i)
{
	struct hconn *c = &H.cs[i];
	int r;

	c->state = H_SEND;
	ERR_clear_error();
	/* Retried with the same buffer when it would block, as SSL_write
	 * wants. */
	if ((r = SSL_write(c->ssl, H.req, H.reqlen)) <= 0) {
		hb_ssl_wait(i, r, "sending");
		return;
	}
	c->state = H_WAIT;
	c->since = now_s();
	c->inlen = 0;
	hb_want(i, 1);
}

/* The value of header line [p, eol) if its name is name, else NULL. */
static const char *
hb_header(const char *p, const char *eol, const char *name)
{
	size_t n = strlen(name);

	if ((size_t)(eol - p) <= n || strncasecmp(p, name, n) != 0 ||
	    p[n] != ':')
		return NULL;
	for (p += n + 1; p < eol && (*p == ' ' || *p == '\t'); p++)
		;
	return p;
}

/*
 * The response in c->in, checked as bastion answers a heartbeat:
 * "HTTP/1.1 200", a Content-Length, no more bytes than it says (one
 * request at a time: anything after it is wrong), the body a JSON object
 * with "interval". 1 when whole and right, 0 when more is to come, -1
 * when wrong (why set); *close_after from a Connection: close.
 */
static int
hb_answer(struct hconn *c, int *close_after, const char **why)
{
	const char *p, *eol, *v, *body, *end;
	long cl = -1, hlen;
	int k;

	*close_after = 0;
	if ((end = (const char *)memmem(c->in, (size_t)c->inlen, "\r\n\r\n",
	    4)) == NULL) {
		*why = "a response header over 4 KiB";
		return c->inlen == HB_IN ? -1 : 0;
	}
	hlen = end + 4 - c->in;
	*why = "bad status line";
	if (c->inlen < 13 || memcmp(c->in, "HTTP/1.1 ", 9) != 0 ||
	    c->in[12] != ' ')
		return -1;
	*why = "HTTP status not 200";
	if (memcmp(c->in + 9, "200", 3) != 0)
		return -1;
	*why = "bad header";
	p = (const char *)memmem(c->in, (size_t)hlen, "\r\n", 2) + 2;
	for (; p < end + 2; p = eol + 2) {
		eol = (const char *)memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
		if ((v = hb_header(p, eol, "Content-Length")) != NULL) {
			if (cl != -1)
				return -1;
			for (cl = 0, k = 0; v < eol && *v >= '0' && *v <= '9' &&
			    k < 9; v++, k++)
				cl = cl * 10 + (*v - '0');
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			if (k == 0 || v != eol)
				return -1;
		} else if (hb_header(p, eol, "Transfer-Encoding") != NULL)
			return -1;	/* bastion sends a length */
		else if ((v = hb_header(p, eol, "Connection")) != NULL)
			*close_after = memmem(v, (size_t)(eol - v), "close", 5) !=
			    NULL;
	}
	*why = "no Content-Length, or an answer over 4 KiB";
	if (cl < 0 || hlen + cl > HB_IN)
		return -1;
	if (c->inlen < hlen + cl)
		return 0;
	*why = "more than one response to a request";
	if (c->inlen > hlen + cl)
		return -1;
	body = c->in + hlen;
	*why = "the answer is not a heartbeat's";
	if (cl < 2 || body[0] != '{' || body[cl - 1] != '}' ||
	    memmem(body, (size_t)cl, "\"interval\":", 11) == NULL)
		return -1;
	return 1;
}

static void
hb_readable(long i)
{
	struct hconn *c = &H.cs[i];
	const char *why;
	int r, close_after;

	for (;;) {
		ERR_clear_error();
		if ((r = SSL_read(c->ssl, c->in + c->inlen, HB_IN - c->inlen))
		    <= 0) {
			hb_ssl_wait(i, r, "reading");
			return;
		}
		c->inlen += r;
		if ((r = hb_answer(c, &close_after, &why)) == -1) {
			hb_drop(i, why);
			return;
		}
		if (r == 1)
			break;
	}
	if (SSL_pending(c->ssl) > 0) {
		hb_drop(i, "more than one response to a request");
		return;
	}
	H.done++;
	if (++c->answers == 1)
		H.made++;
	if (close_after)	/* as an agent would: again */
		hb_drop(i, NULL);
	else
		hb_send(i);
}

static void
hb_handshake(long i)
{
	struct hconn *c = &H.cs[i];
	int r;

	ERR_clear_error();
	if ((r = SSL_do_handshake(c->ssl)) != 1) {
		hb_ssl_wait(i, r, "handshake");
		return;
	}
	H.making--;
	hb_send(i);
}

static void
hb_event(long i)
{
	struct hconn *c = &H.cs[i];
	socklen_t len = sizeof(int);
	long id;
	int err = 0;

	switch (c->state) {
	case H_CONNECT:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0) {
			hb_drop(i, strerror(err ? err : errno));
			return;
		}
		if ((c->ssl = SSL_new(H.ctx)) == NULL ||
		    SSL_set_fd(c->ssl, c->fd) != 1) {
			hb_drop(i, "SSL_new");
			return;
		}
		if (ids > 0) {	/* this connection's own agent */
			id = i % ids;
			if (SSL_use_certificate(c->ssl, H.certs[id]) != 1 ||
			    SSL_use_PrivateKey(c->ssl, H.keys[id]) != 1) {
				hb_drop(i, "the agent's certificate or key");
				return;
			}
		}
		SSL_set_connect_state(c->ssl);
		c->state = H_HANDSHAKE;
		hb_handshake(i);
		return;
	case H_HANDSHAKE:
		hb_handshake(i);
		return;
	case H_SEND:
		hb_send(i);
		return;
	case H_WAIT:
		hb_readable(i);
		return;
	default:
		return;
	}
}

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* agents_load heartbeat|heartbeat-health URL CERT KEY CA CONNECTIONS
 * SECONDS [SOURCE] */
static int
heartbeats(int argc, char **argv, long n, long secs)
{
	static const char light[] = "{\"load\":[0.01,0.02,0.03],"
	    "\"memory\":{\"total_bytes\":1073741824,\"free_bytes\":"
	    "536870912},\"running_jobs\":0,\"uptime_s\":1234}";
	struct epoll_event evs[512];
	char host[64], rest[8], path[4096];
	const char *body = with_health ? health_body : light;
	unsigned port;
	double start, end, cpu0 = 0, t, last_sweep = 0;
	long i;
	int k, nev, warm = 0;

	memset(&H.dst, 0, sizeof H.dst);
	H.dst.sin_family = AF_INET;
	if (sscanf(argv[2], "https://%63[0-9.]:%5u%7s", host, &port, rest) != 2 ||
	    port == 0 || port > 65535 ||
	    inet_pton(AF_INET, host, &H.dst.sin_addr) != 1) {
		fprintf(stderr, "agents_load: %s: not https://A.B.C.D:PORT\n",
		    argv[2]);
		return 2;
	}
	H.dst.sin_port = htons((uint16_t)port);
	if (argc == 9) {
		memset(&H.src, 0, sizeof H.src);
		H.src.sin_family = AF_INET;
		if (inet_pton(AF_INET, argv[8], &H.src.sin_addr) != 1) {
			fprintf(stderr, "agents_load: bad SOURCE %s\n", argv[8]);
			return 2;
		}
		H.with_src = 1;
	}
	/* What curl sent, and agentd sends: one request per heartbeat. */
	H.reqlen = snprintf(H.req, sizeof H.req, "POST /agent/v1/heartbeat "
	    "HTTP/1.1\r\nHost: %s:%u\r\nAccept: */*\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\n\r\n%s", host, port,
	    strlen(body), body);
	if (H.reqlen <= 0 || (size_t)H.reqlen >= sizeof H.req)
		return 1;
	if ((H.ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_load_verify_locations(H.ctx, argv[5], NULL) != 1 ||
	    (ids == 0 && (SSL_CTX_use_certificate_chain_file(H.ctx, argv[3])
	    != 1 || SSL_CTX_use_PrivateKey_file(H.ctx, argv[4],
	    SSL_FILETYPE_PEM) != 1))) {
		fprintf(stderr, "agents_load: certificate, key or CA: %s\n",
		    ERR_error_string(ERR_get_error(), NULL));
		return 1;
	}
	/* The bastion's certificate names the address we connect to. */
	SSL_CTX_set_verify(H.ctx, SSL_VERIFY_PEER, NULL);
	if (X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(H.ctx), host) != 1)
		return 1;
	/* Every agent makes its own session, as agents would. */
	SSL_CTX_set_session_cache_mode(H.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(H.ctx, SSL_OP_NO_TICKET);
	if (ids > 0) {
		if ((H.certs = calloc((size_t)ids, sizeof *H.certs)) == NULL ||
		    (H.keys = calloc((size_t)ids, sizeof *H.keys)) == NULL)
			return 1;
		for (i = 0; i < ids; i++) {
			subst(path, sizeof path, argv[3], i);
			H.certs[i] = load_pem(path, 0);
			subst(path, sizeof path, argv[4], i);
			H.keys[i] = load_pem(path, 1);
			if (H.certs[i] == NULL || H.keys[i] == NULL) {
				fprintf(stderr, "agents_load: identity %ld: no"
				    " certificate or key\n", i);
				return 1;
			}
		}
	}
	H.n = n;
	if ((H.cs = calloc((size_t)n, sizeof *H.cs)) == NULL ||
	    (H.queue = calloc((size_t)n, sizeof *H.queue)) == NULL ||
	    (H.ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("agents_load");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < n; i++) {
		H.cs[i].fd = -1;
		hb_enqueue(i, 0);
	}
	/* RAMP connections being made at once; counted from when every
	 * one has been answered (at most WARM_MAX s). */
	start = now_s();
	end = start + WARM_MAX + (double)secs;
	while (!stop && (t = now_s()) < end) {
		while (H.qlen > 0 && H.making < RAMP &&
		    H.cs[H.queue[H.qhead]].retry_at <= t) {
			i = H.queue[H.qhead];
			H.qhead = (H.qhead + 1) % H.n;
			H.qlen--;
			hb_start(i);
		}
		if (!warm && (H.made == n || t >= start + WARM_MAX)) {
			warm = 1;
			fprintf(stderr, "%ld of %ld connections made after %.1f s\n",
			    H.made, n, t - start);
			start = t;
			end = start + (double)secs;
			H.done = 0;
			cpu0 = cpu_s();
		}
		if ((nev = epoll_wait(H.ep, evs, 512, 100)) == -1 &&
		    errno != EINTR) {
			perror("agents_load: epoll_wait");
			break;
		}
		for (k = 0; k < nev; k++)
			hb_event((long)evs[k].data.u64);
		if ((t = now_s()) - last_sweep >= 1) {
			last_sweep = t;
			for (i = 0; i < n; i++)
				if (H.cs[i].state != H_IDLE &&
				    t - H.cs[i].since > HB_STUCK_S)
					hb_drop(i, H.cs[i].state == H_WAIT ?
					    "heartbeat unanswered" :
					    "connection not made in time");
		}
	}
	t = now_s();
	printf("heartbeats %ld seconds %.1f rate %.0f errors %ld identities %ld"
	    " cpu_s %.2f\n", H.done, t - start, (double)H.done / (t - start),
	    H.errors, ids ? ids : 1, warm ? cpu_s() - cpu0 : 0.0);
	fflush(stdout);
	for (i = 0; i < n; i++) {
		SSL_free(H.cs[i].ssl);
		if (H.cs[i].fd != -1)
			close(H.cs[i].fd);
	}
	for (i = 0; i < ids; i++) {
		X509_free(H.certs[i]);
		EVP_PKEY_free(H.keys[i]);
	}
	free(H.certs);
	free(H.keys);
	free(H.cs);
	free(H.queue);
	close(H.ep);
	SSL_CTX_free(H.ctx);
	return 0;
}

int
main(int argc, char **argv)
{
	char url[512];
	CURLM *m;
	CURL **hs;
	CURLMsg *msg;
	rlim_t cur;
	long code, n, secs, done = 0, errors = 0, open = 0, connects = 0;
	long *answers, min_answers, added = 0;
	int running, left, poll, i;
	double start, end, sent_at = 0;

	if (argc == 7 && strcmp(argv[1], "identities") == 0)
		return identities(argv);
	if (argc != 8 && argc != 9) {
		fprintf(stderr, "usage: agents_load heartbeat|heartbeat-health|poll"
		    " URL CERT KEY CA CONNECTIONS SECONDS [SOURCE]\n"
		    "       agents_load identities CADIR OUTDIR FIRST COUNT"
		    " PREFIX\n");
		return 2;
	}
	poll = strcmp(argv[1], "poll") == 0;
	with_health = strcmp(argv[1], "heartbeat-health") == 0;
	n = strtol(argv[6], NULL, 10);
	secs = strtol(argv[7], NULL, 10);
	if (n < 1 || secs < 1) {
		fprintf(stderr, "agents_load: CONNECTIONS and SECONDS must be "
		    "positive\n");
		return 2;
	}
	if (strstr(argv[3], "%d") != NULL) {	/* the identities there */
		char path[4096];

		if (strstr(argv[4], "%d") == NULL) {
			fprintf(stderr, "agents_load: CERT and KEY both hold"
			    " %%d, or neither\n");
			return 2;
		}
		for (ids = 0; ids < n; ids++) {
			subst(path, sizeof path, argv[3], ids);
			if (access(path, R_OK) == -1)
				break;
		}
		if (ids == 0) {
			fprintf(stderr, "agents_load: no %s\n", argv[3]);
			return 1;
		}
	}
	/* One descriptor per connection, and a few for curl. */
	(void)nofile_raise(&cur);
	if (cur != RLIM_INFINITY && (rlim_t)n + 32 > cur) {
		fprintf(stderr, "agents_load: %ld connections need more than the "
		    "%llu open files allowed: use several processes\n", n,
		    (unsigned long long)cur);
		return 1;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	if (!poll)
		return heartbeats(argc, argv, n, secs);
	snprintf(url, sizeof url, "%s/agent/v1/jobs?wait=30", argv[2]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, n + 16);
	if ((hs = calloc((size_t)n, sizeof *hs)) == NULL ||
	    (answers = calloc((size_t)n, sizeof *answers)) == NULL)
		return 1;
	for (i = 0; i < n; i++)
		hs[i] = handle(url, argv, argc == 9 ? argv[8] : NULL,
		    &answers[i], i);
	start = now_s();
	end = start + (double)secs;
	for (;;) {
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			long *mine = NULL, nc = 0;

			code = 0;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
			    &code);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &mine);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_NUM_CONNECTS,
			    &nc);
			connects += nc;
			if (msg->data.result != CURLE_OK ||
			    (code != 200 && code != 204)) {
				if (errors++ < 5)
					fprintf(stderr, "agents_load: %s (HTTP %ld)\n",
					    curl_easy_strerror(msg->data.result),
					    code);
			} else {
				done++;
				if (mine)
					++*mine;
			}
			curl_multi_remove_handle(m, msg->easy_handle);
			if (now_s() < end && !stop)
				curl_multi_add_handle(m, msg->easy_handle);
		}
		if (now_s() >= end || stop)
			break;
		if (open < n) {
			long k = 0;

			/* Connected and waiting: the request went out. At most
			 * RAMP handshakes at a time, as agents coming back one
			 * by one would: a storm of thousands only times out. */
			for (i = 0; i < added; i++) {
				curl_off_t up = 0;

				curl_easy_getinfo(hs[i], CURLINFO_REQUEST_SIZE, &up);
				k += up > 0;
			}
			if (k > open) {
				open = k;
				sent_at = now_s() - start;
				if (open == n)
					fprintf(stderr, "all %ld polls sent after "
					    "%.1f s\n", n, sent_at);
			}
			while (added < n && added - k < RAMP)
				curl_multi_add_handle(m, hs[added++]);
		}
		curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	for (min_answers = -1, i = 0; i < n; i++)
		if (min_answers == -1 || answers[i] < min_answers)
			min_answers = answers[i];
	/* Connections still open were made too. */
	for (i = 0; i < n; i++) {
		long nc = 0;

		curl_easy_getinfo(hs[i], CURLINFO_NUM_CONNECTS, &nc);
		connects += nc;
	}
	printf("polls_sent %ld after %.1f s answered %ld min_per_connection %ld"
	    " connects %ld errors %ld\n", open, sent_at, done, min_answers,
	    connects, errors);
	fflush(stdout);
	for (i = 0; i < n; i++) {
		curl_multi_remove_handle(m, hs[i]);
		curl_easy_cleanup(hs[i]);
	}
	free(hs);
	free(answers);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	return 0;
}
