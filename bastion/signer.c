/* signer.c — the CA's signing process: forked by ca_privsep() at start-up
 * with the CA and job keys; the daemon then frees its copies. Messages on
 * a stream socketpair: a header (type or status, length) and a payload of
 * at most SIGNER_MAX_MSG bytes, both read in full and checked before use.
 * The signer takes no file names and no PEM from the daemon: a DER public
 * key it checks again, a serial list, or bytes to sign. */
#define _GNU_SOURCE
#define LOG_SUBSYS "signer"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "b64.h"
#include "envelope.h"
#include "log.h"
#include "signer.h"

enum { SIGN_CERT = 1, SIGN_CRL, SIGN_JOB };

struct msg_hdr {
	uint32_t	type;	/* request type, or 0 ok / 1 failed */
	uint32_t	len;
};

struct signer {
	int		 fd;
	pid_t		 pid;
	pthread_mutex_t	 mu;
};

static int
write_full(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		if ((w = send(fd, c, n, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 1 read, 0 clean EOF before anything, -1 error or short read. */
static int
read_full(int fd, void *p, size_t n)
{
	char *c = p;
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		if ((r = recv(fd, c + got, n - got, 0)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			return got == 0 ? 0 : -1;
		got += (size_t)r;
	}
	return 1;
}

static int
send_msg(int fd, uint32_t type, const void *p, size_t len)
{
	struct msg_hdr h = { type, (uint32_t)len };

	if (len > SIGNER_MAX_MSG)
		return -1;
	return write_full(fd, &h, sizeof h) == 0 &&
	    (len == 0 || write_full(fd, p, len) == 0) ? 0 : -1;
}

/* A message into a malloc'd, NUL-terminated buffer. */
static int
recv_msg(int fd, uint32_t *type, char **p, size_t *len)
{
	struct msg_hdr h;
	char *b;
	int rc;

	if ((rc = read_full(fd, &h, sizeof h)) <= 0)
		return rc == 0 ? 0 : -1;
	if (h.len > SIGNER_MAX_MSG ||
	    (b = calloc(1, (size_t)h.len + 1)) == NULL)
		return -1;
	if (h.len && read_full(fd, b, h.len) != 1) {
		free(b);
		return -1;
	}
	b[h.len] = '\0';
	*type = h.type;
	*p = b;
	*len = h.len;
	return 1;
}

/* --- the signer process ------------------------------------------------- */

static int
valid_agent_id(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n >= 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return 1;
}

static int
do_cert(X509 *cacert, EVP_PKEY *cakey, const char *p, size_t len,
    char **out)
{
	const unsigned char *der;
	uint32_t days, idlen;
	char id[64], group[64] = "";
	size_t glen;
	EVP_PKEY *pub = NULL;
	int rc = -1;

	if (len < 8)
		return -1;
	memcpy(&days, p, 4);
	memcpy(&idlen, p + 4, 4);
	if (days < 1 || days > 397 || idlen > len - 8 ||
	    !valid_agent_id(p + 8, idlen))
		return -1;
	memcpy(id, p + 8, idlen);
	id[idlen] = '\0';
	der = (const unsigned char *)p + 8 + idlen;
	if ((pub = d2i_PUBKEY(NULL, &der, (long)(len - 8 - idlen))) == NULL ||
	    der != (const unsigned char *)p + len ||
	    EVP_PKEY_get_id(pub) != EVP_PKEY_EC ||
	    EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof group, &glen) != 1 || strcmp(group, "prime256v1") != 0)
		goto out;
	rc = ca_build_client_cert(cacert, cakey, pub, id, (int)days, out);
out:
	ERR_clear_error();
	EVP_PKEY_free(pub);
	return rc;
}

static int
do_crl(X509 *cacert, EVP_PKEY *cakey, const char *p, size_t len, char **out)
{
	struct ca_revoked *list = NULL;
	uint32_t hours;
	size_t n, i;
	int rc;

	if (len < 4 || (len - 4) % sizeof *list != 0)
		return -1;
	memcpy(&hours, p, 4);
	if (hours < 1 || hours > 24 * 31)
		return -1;
	n = (len - 4) / sizeof *list;
	if (n && (list = malloc(n * sizeof *list)) == NULL)
		return -1;
	if (n)
		memcpy(list, p + 4, n * sizeof *list);
	for (i = 0; i < n; i++) {
		list[i].serial[CA_SERIAL_LEN - 1] = '\0';
		if (strspn(list[i].serial, "0123456789abcdef") !=
		    strlen(list[i].serial) || list[i].serial[0] == '\0') {
			free(list);
			return -1;
		}
	}
	rc = ca_build_crl(cacert, cakey, list, n, (int)hours, out);
	free(list);
	return rc;
}

static __attribute__((noreturn)) void
signer_main(int fd, X509 *cacert, EVP_PKEY *cakey, EVP_PKEY *jobkey)
{
	sigset_t none;
	uint32_t type;
	size_t len;
	char *p, *out;
	int rc;

	/* Nothing of the daemon's but the socket and stdio. */
	if (fd > 3)
		close_range(3, (unsigned)fd - 1, 0);
	close_range((unsigned)fd + 1, ~0U, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);	/* ^C in the foreground: the daemon decides */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	prctl(PR_SET_NAME, "bastion-signer");
	prctl(PR_SET_DUMPABLE, 0);
	for (;;) {
		if ((rc = recv_msg(fd, &type, &p, &len)) <= 0)
			_exit(rc == 0 ? 0 : 1);
		out = NULL;
		switch (type) {
		case SIGN_CERT:
			rc = do_cert(cacert, cakey, p, len, &out);
			break;
		case SIGN_CRL:
			rc = do_crl(cacert, cakey, p, len, &out);
			break;
		case SIGN_JOB:
			rc = envelope_sign(jobkey, p, len, &out);
			break;
		default:
			rc = -1;
		}
		free(p);
		if (send_msg(fd, rc == 0 ? 0 : 1, out, out ? strlen(out) : 0) == -1)
			_exit(1);
		free(out);
	}
}

struct signer *
signer_start(X509 *cacert, EVP_PKEY *cakey, EVP_PKEY *jobkey)
{
	struct signer *s;
	int sv[2];

	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair");
		free(s);
		return NULL;
	}
	fflush(NULL);
	if ((s->pid = fork()) == -1) {
		log_warn("fork");
		close(sv[0]);
		close(sv[1]);
		free(s);
		return NULL;
	}
	if (s->pid == 0) {
		close(sv[0]);
		signer_main(sv[1], cacert, cakey, jobkey);
	}
	close(sv[1]);
	s->fd = sv[0];
	pthread_mutex_init(&s->mu, NULL);
	log_info("signer process %d holds the CA and job keys", (int)s->pid);
	return s;
}

void
signer_close(struct signer *s)
{
	if (s == NULL)
		return;
	close(s->fd);
	while (waitpid(s->pid, NULL, 0) == -1 && errno == EINTR)
		;
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* One request and its answer (a string) under the lock. */
static int
call(struct signer *s, uint32_t type, const void *p, size_t len, char **out)
{
	uint32_t status;
	size_t rlen;
	char *r = NULL;
	int rc = -1;

	pthread_mutex_lock(&s->mu);
	if (send_msg(s->fd, type, p, len) == 0 &&
	    recv_msg(s->fd, &status, &r, &rlen) == 1) {
		if (status == 0 && rlen > 0) {
			*out = r;
			r = NULL;
			rc = 0;
		}
	} else {
		log_warnx("the signer process does not answer");
	}
	pthread_mutex_unlock(&s->mu);
	free(r);
	return rc;
}

int
signer_cert(struct signer *s, EVP_PKEY *pub, const char *agent_id, int days,
    char **pem)
{
	unsigned char *der = NULL;
	uint32_t d = (uint32_t)days, idlen = (uint32_t)strlen(agent_id);
	char *msg;
	int n, rc;

	if ((n = i2d_PUBKEY(pub, &der)) <= 0 || idlen >= 64)
		return -1;
	if ((msg = malloc(8 + idlen + (size_t)n)) == NULL) {
		OPENSSL_free(der);
		return -1;
	}
	memcpy(msg, &d, 4);
	memcpy(msg + 4, &idlen, 4);
	memcpy(msg + 8, agent_id, idlen);
	memcpy(msg + 8 + idlen, der, (size_t)n);
	rc = call(s, SIGN_CERT, msg, 8 + idlen + (size_t)n, pem);
	OPENSSL_free(der);
	free(msg);
	return rc;
}

int
signer_crl(struct signer *s, const struct ca_revoked *list, size_t n,
    int hours, char **pem)
{
	uint32_t h = (uint32_t)hours;
	size_t len;
	char *msg;
	int rc;

	if (n > (SIGNER_MAX_MSG - 4) / sizeof *list)
		return -1;
	len = 4 + n * sizeof *list;
	if ((msg = malloc(len)) == NULL)
		return -1;
	memcpy(msg, &h, 4);
	if (n)
		memcpy(msg + 4, list, n * sizeof *list);
	rc = call(s, SIGN_CRL, msg, len, pem);
	free(msg);
	return rc;
}

int
signer_job(struct signer *s, const char *text, size_t len, char **sig_b64)
{
	return call(s, SIGN_JOB, text, len, sig_b64);
}
