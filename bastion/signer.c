/* signer.c — the CA's signing process: forked by ca_privsep() at start-up
 * with the CA and job keys; the daemon then frees its copies. Messages on
 * a stream socketpair: a header (type or status, length) and a payload of
 * at most SIGNER_MAX_MSG bytes, both read in full and checked before use.
 * The signer takes no file names and no PEM from the daemon: a DER public
 * key it checks again, a serial list, or bytes to sign.
 *
 * If the signer dies (or stops answering), the request that noticed gets
 * a failure (its handler answers 503) and the main loop's signer_tick
 * reaps it and starts a new one with backoff, like dnsmasq (respawn.c).
 * The new one is a fresh exec of this program ("bastion --signer DIR")
 * that reads the keys from the CA directory itself: forking the running,
 * threaded daemon could copy a lock some other thread held, and the
 * daemon never holds the keys again. */
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
#include <limits.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "b64.h"
#include "clock.h"
#include "envelope.h"
#include "keybundle.h"
#include "log.h"
#include "msgio.h"
#include "respawn.h"
#include "signer.h"

#define SIGNER_FD		3	/* a restarted signer's socket */
#define SIGNER_TIMEOUT_S	5	/* an answer takes milliseconds */
#define SIGNER_BACKOFF_MIN_MS	100
#define SIGNER_BACKOFF_MAX_MS	10000
#define SIGNER_STABLE_MS	60000
#define SIGNER_STOP_WAIT_MS	2000	/* for its exit at close, then SIGKILL */

/* Request types; an answer's type is 0 ok or 1 failed. */
enum { SIGN_CERT = 1, SIGN_CRL, SIGN_JOB, SIGN_JOIN };

struct signer {
	int		 fd;		/* -1: down (or handed away) */
	pid_t		 pid;		/* -1: none to reap */
	unsigned	 gen;		/* which start this is */
	/* Parent: every new signer's socket goes to the worker. */
	int		(*give)(int fd, unsigned gen, void *arg);
	void		*give_arg;
	/* Worker: a signer that stops answering is reported. */
	void		(*on_down)(unsigned gen, void *arg);
	void		*down_arg;
	pthread_mutex_t	 mu;
	char		 cadir[PATH_MAX];	/* "": no restarts */
	struct respawn	 rs;
	unsigned long	 restarts;
};

static int
send_msg(int fd, uint32_t type, const void *p, size_t len)
{
	return msg_send(fd, type, p, len, SIGNER_MAX_MSG, -1);
}

static int
recv_msg(int fd, uint32_t *type, char **p, size_t *len)
{
	return msg_recv(fd, type, p, len, SIGNER_MAX_MSG, NULL);
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

/* cluster join: the keys, sealed to the joiner's raw X25519 public key
 * (keybundle.h); only the box, base64, leaves this process. */
static int
do_join(X509 *cacert, EVP_PKEY *cakey, EVP_PKEY *jobkey, const char *p,
    size_t len, char **out)
{
	unsigned char *box;
	size_t blen;

	if (len != SEAL_KEY_LEN || keybundle_seal(cacert, cakey, jobkey,
	    (const unsigned char *)p, &box, &blen) == -1)
		return -1;
	*out = b64_encode(box, blen);
	free(box);
	return *out ? 0 : -1;
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
		case SIGN_JOIN:
			rc = do_join(cacert, cakey, jobkey, p, len, &out);
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

/* Answers come within SIGNER_TIMEOUT_S or the signer counts as hung. */
static void
set_timeouts(int fd)
{
	struct timeval tv = { SIGNER_TIMEOUT_S, 0 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == -1)
		log_warn("signer socket timeouts");
}

struct signer *
signer_start(X509 *cacert, EVP_PKEY *cakey, EVP_PKEY *jobkey,
    const char *cadir)
{
	struct signer *s;
	int sv[2];

	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	if (cadir && snprintf(s->cadir, sizeof s->cadir, "%s", cadir) >=
	    (int)sizeof s->cadir) {
		free(s);
		return NULL;
	}
	respawn_init(&s->rs, SIGNER_BACKOFF_MIN_MS, SIGNER_BACKOFF_MAX_MS,
	    SIGNER_STABLE_MS);
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
	set_timeouts(s->fd);
	respawn_started(&s->rs, clock_mono_ms());
	pthread_mutex_init(&s->mu, NULL);
	log_info("signer process %d holds the CA and job keys", (int)s->pid);
	return s;
}

void
signer_close(struct signer *s)
{
	struct timespec ts = { 0, 10 * 1000000 };
	pid_t r = 0;
	int i;

	if (s == NULL)
		return;
	if (s->fd != -1)
		close(s->fd);
	/* It exits at EOF; a hung one (stopped, stuck) would hold the
	 * daemon's stop for ever: it gets a while, then SIGKILL. */
	for (i = 0; s->pid > 0 && i < SIGNER_STOP_WAIT_MS / 10; i++) {
		if ((r = waitpid(s->pid, NULL, WNOHANG)) != 0)
			break;
		nanosleep(&ts, NULL);
	}
	if (s->pid > 0 && r == 0) {
		log_warnx("the signer process %ld did not exit; killing it",
		    (long)s->pid);
		kill(s->pid, SIGKILL);
		while (waitpid(s->pid, NULL, 0) == -1 && errno == EINTR)
			;
	}
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* The signer failed a request: no more requests to it, and a hung one
 * is killed (our unreaped child: the pid cannot be anyone else's).
 * Caller holds s->mu. */
static void
signer_down_locked(struct signer *s)
{
	if (s->fd == -1)
		return;
	if (s->pid > 0)
		log_warnx("the signer process %ld does not answer; signing is "
		    "unavailable until it is restarted", (long)s->pid);
	else
		log_warnx("the signer does not answer; signing is unavailable "
		    "until the parent restarts it");
	close(s->fd);
	s->fd = -1;
	if (s->pid > 0)
		kill(s->pid, SIGKILL);
	else if (s->on_down)
		s->on_down(s->gen, s->down_arg);
}

/* posix_spawn "bastion --signer CADIR" with the socket as SIGNER_FD.
 * Caller holds s->mu. */
static int
signer_respawn_locked(struct signer *s)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char *argv[4];
	int sv[2], rc;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair");
		return -1;
	}
	argv[0] = "bastion-signer";
	argv[1] = "--signer";
	argv[2] = s->cadir;
	argv[3] = NULL;
	posix_spawn_file_actions_init(&fa);
	respawn_spawnattr(&attr);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, sv[1], SIGNER_FD);
	posix_spawn_file_actions_addclosefrom_np(&fa, SIGNER_FD + 1);
	rc = posix_spawn(&s->pid, "/proc/self/exe", &fa, &attr, argv,
	    environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(sv[1]);
	if (rc != 0) {
		errno = rc;
		log_warn("cannot start the signer");
		s->pid = -1;
		close(sv[0]);
		return -1;
	}
	s->fd = sv[0];
	set_timeouts(s->fd);
	s->gen++;
	if (s->give) {
		if (s->give(s->fd, s->gen, s->give_arg) == -1)
			log_warn("cannot hand the new signer to the HTTP worker");
		close(s->fd);
		s->fd = -1;
	}
	return 0;
}

void
signer_tick(struct signer *s)
{
	char why[96];
	int64_t now;
	int status, delay;
	pid_t r;

	/* A request holds the lock for milliseconds, or a hung signer's
	 * timeout: never wait for it in the main loop. */
	if (s == NULL || s->cadir[0] == '\0' || pthread_mutex_trylock(&s->mu))
		return;
	now = clock_mono_ms();
	if (s->pid > 0) {
		r = waitpid(s->pid, &status, WNOHANG);
		if (r == 0 || (r == -1 && errno != ECHILD))
			goto out;
		if (r == -1)
			snprintf(why, sizeof why, "is gone");
		else
			respawn_describe_exit(status, why, sizeof why);
		if (s->fd != -1) {
			close(s->fd);
			s->fd = -1;
		}
		log_warnx("the signer process %ld %s after %lld s", (long)s->pid,
		    why, (long long)((now - s->rs.started_ms) / 1000));
		s->pid = -1;
		delay = respawn_schedule(&s->rs, now);
		log_info("restarting the signer in %d ms", delay);
		goto out;
	}
	if (!respawn_due(&s->rs, now))
		goto out;
	if (signer_respawn_locked(s) == -1) {
		respawn_schedule(&s->rs, now);
		goto out;
	}
	respawn_started(&s->rs, now);
	s->restarts++;
	log_info("signer process %ld started again (restart %lu)",
	    (long)s->pid, s->restarts);
out:
	pthread_mutex_unlock(&s->mu);
}

int
signer_give_away(struct signer *s, int (*give)(int, unsigned, void *),
    void *arg)
{
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	if (s->fd != -1) {
		rc = give(s->fd, s->gen, arg);
		close(s->fd);
		s->fd = -1;
	}
	s->give = give;
	s->give_arg = arg;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void
signer_kill(struct signer *s, unsigned gen)
{
	pthread_mutex_lock(&s->mu);
	if (s->pid > 0 && gen == s->gen) {
		log_warnx("the signer process %ld stopped answering the HTTP "
		    "worker; killing it", (long)s->pid);
		kill(s->pid, SIGKILL);
	}
	pthread_mutex_unlock(&s->mu);
}

struct signer *
signer_remote(int fd, unsigned gen, void (*on_down)(unsigned, void *),
    void *arg)
{
	struct signer *s;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	s->fd = fd;
	s->pid = -1;
	s->gen = gen;
	s->on_down = on_down;
	s->down_arg = arg;
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void
signer_replace(struct signer *s, int fd, unsigned gen)
{
	pthread_mutex_lock(&s->mu);
	if (s->fd != -1)
		close(s->fd);
	s->fd = fd;
	s->gen = gen;
	pthread_mutex_unlock(&s->mu);
	log_info("signing is available again (signer %u)", gen);
}

int
signer_up(struct signer *s)
{
	int up;

	pthread_mutex_lock(&s->mu);
	up = s->fd != -1;
	pthread_mutex_unlock(&s->mu);
	return up;
}

int
signer_exec_main(const char *cadir)
{
	X509 *cacert;
	EVP_PKEY *cakey, *jobkey;

	log_init(1, 0, "bastion-signer");
	if (fcntl(SIGNER_FD, F_GETFD) == -1) {
		log_warnx("--signer is bastion's own; it needs its socket");
		return 2;
	}
	if (ca_signer_keys(cadir, &cacert, &cakey, &jobkey) == -1) {
		log_warnx("%s: the CA and job keys cannot be read", cadir);
		return 1;
	}
	signer_main(SIGNER_FD, cacert, cakey, jobkey);
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
	if (s->fd == -1) {
		/* Down: the handler answers 503 until signer_tick restarts it. */
	} else if (send_msg(s->fd, type, p, len) == 0 &&
	    recv_msg(s->fd, &status, &r, &rlen) == 1) {
		if (status == 0 && rlen > 0) {
			*out = r;
			r = NULL;
			rc = 0;
		}
	} else {
		signer_down_locked(s);
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

int
signer_join(struct signer *s, const unsigned char joiner[SEAL_KEY_LEN],
    char **box_b64)
{
	return call(s, SIGN_JOIN, joiner, SEAL_KEY_LEN, box_b64);
}
