/* privsep.c — the channels between the privileged parent and the HTTP
 * worker; see privsep.h. */
#define _GNU_SOURCE
#define LOG_SUBSYS "privsep"
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bastion.h"
#include "ca.h"
#include "config.h"
#include "dnsmasq.h"
#include "log.h"
#include "msgio.h"
#include "privsep.h"
#include "signer.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define LEAK_CHECKED_BUILD 1
#endif

/* The largest message is the configuration itself. */
#define PS_MAX_MSG		(4 * 1024 * 1024)
#define PS_KEY_MAX		128
#define PS_VALUE_MAX		(64 * 1024)
/* A request's answer: dnsmasq --test on a config change takes a second
 * or two; a parent that says nothing for this long is broken. */
#define PS_ANSWER_TIMEOUT_S	30

_Static_assert(sizeof(struct config) <= PS_MAX_MSG,
    "the configuration must fit one message");

enum {
	/* events, parent → worker */
	PS_EV_CA = 1,		/* ca_public_export(): all of the CA it may hold */
	PS_EV_SIGNER,		/* uint32 generation + the socket */
	PS_EV_CONFIG,		/* struct config, as the parent holds it */
	PS_EV_READY,		/* dnsmasq runs (or stands by): ready */
	/* requests, worker → parent */
	PS_RQ_UP = 16,		/* the worker listens */
	PS_RQ_DNSMASQ,		/* → dnsmasq_status() as JSON text */
	PS_RQ_CONFIG_SET,	/* "key\0value" → errors text when refused */
	PS_RQ_SIGNER_DOWN,	/* uint32 generation */
	PS_RQ_DHCP_LEAD,	/* uint32 1: this bastion leads DHCP, 0: no
				 * longer (dnsmasq_lead) */
};
/* An answer's type. */
enum { PS_OK = 0, PS_FAILED = 1 };

struct privsep {
	int		evt;	/* parent: sends events; worker: reads them */
	int		req;	/* parent: serves; worker: asks */
	pid_t		worker;	/* parent: the worker; worker: 0 */
	pthread_mutex_t	mu;	/* worker: one request at a time */
};

int
privsep_user(const char *user, uid_t *uid, gid_t *gid, char *why,
    size_t whylen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int rc;

	if ((rc = getpwnam_r(user, &pw, buf, sizeof buf, &res)) != 0 ||
	    res == NULL) {
		snprintf(why, whylen, "user %s: %s", user, rc ? strerror(rc) :
		    "no such user (create it with `adduser --system --group "
		    "--no-create-home bastion`, or set [bastion] user)");
		return -1;
	}
	if (pw.pw_uid == 0) {
		snprintf(why, whylen, "user %s is root: the HTTP worker must "
		    "run as an unprivileged user", user);
		return -1;
	}
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

/* --- parent -------------------------------------------------------------- */

int
privsep_fork(struct bastion *app, int (*worker_main)(struct bastion *))
{
	struct timeval tv = { PS_ANSWER_TIMEOUT_S, 0 };
	struct privsep *ps;
	int evt[2], req[2];
	pid_t pid;

	if ((ps = calloc(1, sizeof *ps)) == NULL)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, evt) == -1)
		goto err_evt;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, req) == -1)
		goto err_req;
	fflush(NULL);
	if ((pid = fork()) == -1)
		goto err_fork;
	if (pid == 0) {
		close(evt[0]);
		close(req[0]);
		ps->evt = evt[1];
		ps->req = req[1];
		pthread_mutex_init(&ps->mu, NULL);
		if (setsockopt(ps->req, SOL_SOCKET, SO_RCVTIMEO, &tv,
		    sizeof tv) == -1)
			log_warn("request channel timeout");
		app->privsep = ps;
		exit(worker_main(app));
	}
	close(evt[1]);
	close(req[1]);
	ps->evt = evt[0];
	ps->req = req[0];
	ps->worker = pid;
	app->privsep = ps;
	log_info("HTTP worker process %ld started", (long)pid);
	return 0;

err_fork:
	log_warn("fork");
	close(req[0]);
	close(req[1]);
err_req:
	close(evt[0]);
	close(evt[1]);
err_evt:
	free(ps);
	return -1;
}

/* The fuzz target's way in: a parent whose worker is the other end of
 * req (no process, no event channel). */
int privsep_fuzz_attach(struct bastion *, int);

int
privsep_fuzz_attach(struct bastion *app, int req)
{
	struct privsep *ps;

	if ((ps = calloc(1, sizeof *ps)) == NULL)
		return -1;
	ps->req = req;
	ps->evt = -1;
	ps->worker = -1;
	app->privsep = ps;
	return 0;
}

pid_t
privsep_worker_pid(struct bastion *app)
{
	return app->privsep ? app->privsep->worker : -1;
}

void
privsep_forget_worker(struct bastion *app)
{
	if (app->privsep)
		app->privsep->worker = -1;
}

int
privsep_request_fd(struct bastion *app)
{
	return app->privsep ? app->privsep->req : -1;
}

static int
answer(struct privsep *ps, int status, const char *text)
{
	return msg_send(ps->req, (uint32_t)status, text, text ? strlen(text) : 0,
	    PS_MAX_MSG, -1);
}

static int
serve_dnsmasq(struct bastion *app)
{
	json_t *st = dnsmasq_status(app);
	char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
	int rc;

	rc = answer(app->privsep, text ? PS_OK : PS_FAILED, text);
	free(text);
	json_decref(st);
	return rc;
}

/* "key\0value": both checked before config_set_in_file sees them. */
static int
serve_config_set(struct bastion *app, const char *p, size_t len,
    void (*reload)(struct bastion *))
{
	const char *key = p, *value;
	size_t klen = strnlen(p, len);
	struct buf errors;
	char path[PATH_MAX];
	int rc;

	if (klen == 0 || klen >= PS_KEY_MAX || klen == len ||
	    len - klen - 1 > PS_VALUE_MAX)
		return answer(app->privsep, PS_FAILED, "malformed request");
	value = p + klen + 1;
	if (strlen(value) != len - klen - 1)
		return answer(app->privsep, PS_FAILED, "malformed request");
	snprintf(path, sizeof path, "%s", app->cfg->path);
	buf_init(&errors, 8192);
	if (config_set_in_file(path, key, value, &errors) == -1) {
		rc = answer(app->privsep, PS_FAILED, errors.data ? errors.data :
		    "invalid");
		buf_free(&errors);
		return rc;
	}
	buf_free(&errors);
	log_info("HTTP worker: %s set in %s", key, path);
	reload(app);
	return answer(app->privsep, PS_OK, NULL);
}

int
privsep_serve(struct bastion *app, void (*reload)(struct bastion *))
{
	struct privsep *ps = app->privsep;
	uint32_t type, gen, lead;
	size_t len;
	char *p;
	int rc;

	if ((rc = msg_recv(ps->req, &type, &p, &len, PS_MAX_MSG, NULL)) <= 0)
		return -1;
	switch (type) {
	case PS_RQ_UP:
		rc = len == 0 ? answer(ps, PS_OK, NULL) : -1;
		break;
	case PS_RQ_DNSMASQ:
		rc = len == 0 ? serve_dnsmasq(app) : -1;
		break;
	case PS_RQ_CONFIG_SET:
		rc = serve_config_set(app, p, len, reload);
		break;
	case PS_RQ_SIGNER_DOWN:
		if (len != sizeof gen) {
			rc = -1;
			break;
		}
		memcpy(&gen, p, sizeof gen);
		if (app->ca)
			signer_kill(ca_signer(app->ca), gen);
		rc = answer(ps, PS_OK, NULL);
		break;
	case PS_RQ_DHCP_LEAD:
		if (len != sizeof lead) {
			rc = -1;
			break;
		}
		memcpy(&lead, p, sizeof lead);
		if (lead > 1) {
			rc = -1;
			break;
		}
		rc = answer(ps, dnsmasq_lead(app, (int)lead) == 0 ? PS_OK :
		    PS_FAILED, NULL);
		break;
	default:
		rc = -1;
	}
	if (rc == -1)
		log_warnx("the HTTP worker sent a bad request (type %u, %zu "
		    "bytes)", type, len);
	free(p);
	return rc;
}

int
privsep_send_config(struct bastion *app)
{
	if (app->privsep == NULL)
		return 0;
	return msg_send(app->privsep->evt, PS_EV_CONFIG, app->cfg,
	    sizeof *app->cfg, PS_MAX_MSG, -1);
}

int
privsep_send_ca(struct bastion *app)
{
	struct buf b;
	int rc = -1;

	buf_init(&b, PS_MAX_MSG);
	if (ca_public_export(app->ca, &b) == 0)
		rc = msg_send(app->privsep->evt, PS_EV_CA, b.data, b.len,
		    PS_MAX_MSG, -1);
	if (b.data)
		OPENSSL_cleanse(b.data, b.len);	/* the server key */
	buf_free(&b);
	return rc;
}

int
privsep_send_ready(struct bastion *app)
{
	return msg_send(app->privsep->evt, PS_EV_READY, NULL, 0, PS_MAX_MSG,
	    -1);
}

int
privsep_send_signer(int fd, unsigned gen, void *arg)
{
	struct bastion *app = arg;
	uint32_t g = gen;

	if (app->privsep == NULL || app->privsep->worker <= 0)
		return -1;
	return msg_send(app->privsep->evt, PS_EV_SIGNER, &g, sizeof g,
	    PS_MAX_MSG, fd);
}

int
privsep_stop(struct bastion *app, int wait_ms)
{
	struct privsep *ps = app->privsep;
	struct timespec ts = { 0, 10 * 1000000 };
	int status = -1, i;
	pid_t r = 0;

	if (ps == NULL)
		return -1;
	/* Requests are no longer served: one in flight (the DHCP lead, from
	 * the worker's listener thread) fails now instead of holding the
	 * worker's stop. */
	if (ps->req != -1)
		shutdown(ps->req, SHUT_RDWR);
	if (ps->worker > 0) {
		kill(ps->worker, SIGTERM);
		for (i = 0; i < wait_ms / 10; i++) {
			if ((r = waitpid(ps->worker, &status, WNOHANG)) != 0)
				break;
			nanosleep(&ts, NULL);
		}
		if (r == 0) {
			log_warnx("the HTTP worker %ld did not stop; killing it",
			    (long)ps->worker);
			kill(ps->worker, SIGKILL);
			while ((r = waitpid(ps->worker, &status, 0)) == -1 &&
			    errno == EINTR)
				;
		}
	}
	if (ps->evt != -1)
		close(ps->evt);
	if (ps->req != -1)
		close(ps->req);
	free(ps);
	app->privsep = NULL;
	return r > 0 ? status : -1;
}

/* --- worker -------------------------------------------------------------- */

int
privsep_drop(uid_t uid, gid_t gid)
{
	if (getuid() != 0) {
		log_warnx("not started as root: the HTTP worker runs as uid %ld "
		    "like the rest (no privilege separation)", (long)getuid());
	} else if (setgroups(0, NULL) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1) {
		log_warn("cannot become uid %ld gid %ld", (long)uid, (long)gid);
		return -1;
	} else if (setuid(0) == 0 || getuid() != uid || geteuid() != uid) {
		log_warnx("privileges were not dropped");
		return -1;
	}
#ifdef LEAK_CHECKED_BUILD
	/* LeakSanitizer stops the threads with ptrace at exit, which the uid
	 * change (it makes the process undumpable) forbids. Sanitizer
	 * builds only: a release worker stays undumpable. */
	prctl(PR_SET_DUMPABLE, 1);
#endif
	/* After the uid change, which clears it: die with the parent. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	prctl(PR_SET_NAME, "bastion-http");
	if (getppid() == 1) {
		log_warnx("the parent process is gone");
		return -1;
	}
	return 0;
}

int
privsep_event_fd(struct bastion *app)
{
	return app->privsep->evt;
}

/* The parent's config replaces ours (it already kept what only a restart
 * can change). */
static int
take_config(struct bastion *app, const char *p, size_t len)
{
	struct config *next, *old;

	if (len != sizeof *next || (next = malloc(sizeof *next)) == NULL)
		return -1;
	memcpy(next, p, sizeof *next);
	pthread_rwlock_wrlock(&app->cfg_lock);
	old = app->cfg;
	app->cfg = next;
	pthread_rwlock_unlock(&app->cfg_lock);
	config_free(old);
	log_set_debug(app->cfg->debug || log_is_debug());
	log_debug("configuration from the parent taken");
	return 0;
}

int
privsep_event(struct bastion *app)
{
	struct signer *s;
	uint32_t type, gen;
	size_t len;
	char *p;
	int fd = -1, rc = -1;

	if (msg_recv(app->privsep->evt, &type, &p, &len, PS_MAX_MSG, &fd) != 1) {
		log_warnx("the parent process is gone");
		return -1;
	}
	switch (type) {
	case PS_EV_CA:
		if (app->ca == NULL)
			rc = ca_public_import(app->cfg->state_dir, p, len, &app->ca);
		if (p && len)
			OPENSSL_cleanse(p, len);	/* the server key */
		break;
	case PS_EV_SIGNER:
		if (len != sizeof gen || fd == -1 || app->ca == NULL)
			break;
		memcpy(&gen, p, sizeof gen);
		if (ca_signer(app->ca)) {
			signer_replace(ca_signer(app->ca), fd, gen);
			fd = -1;
			rc = 0;
		} else if ((s = signer_remote(fd, gen, privsep_signer_down,
		    app)) != NULL) {
			ca_set_signer(app->ca, s);
			fd = -1;
			rc = 0;
		}
		break;
	case PS_EV_CONFIG:
		rc = take_config(app, p, len);
		if (p && len)
			OPENSSL_cleanse(p, len);	/* the channels' secrets */
		break;
	case PS_EV_READY:
		atomic_store(&app->ready, 1);
		rc = 0;
		break;
	}
	if (fd != -1)
		close(fd);
	if (rc == -1)
		log_warnx("bad event from the parent (type %u, %zu bytes)", type,
		    len);
	free(p);
	return 0;
}

/* One request and its answer: 0 with *status and *text (malloc'd, the
 * caller frees it), or -1 when the parent does not answer (the channel is
 * then closed: a late answer must not be read as the next one's). */
static int
call(struct privsep *ps, uint32_t type, const void *p, size_t len,
    uint32_t *status, char **text)
{
	size_t tlen;
	int rc = -1;

	pthread_mutex_lock(&ps->mu);
	if (ps->req != -1) {
		if (msg_send(ps->req, type, p, len, PS_MAX_MSG, -1) == 0 &&
		    msg_recv(ps->req, status, text, &tlen, PS_MAX_MSG, NULL) == 1)
			rc = 0;
		else {
			log_warnx("the parent process does not answer");
			close(ps->req);
			ps->req = -1;
		}
	}
	pthread_mutex_unlock(&ps->mu);
	return rc;
}

int
privsep_up(struct bastion *app)
{
	uint32_t status;
	char *text;

	if (call(app->privsep, PS_RQ_UP, NULL, 0, &status, &text) == -1)
		return -1;
	free(text);
	return status == PS_OK ? 0 : -1;
}

json_t *
privsep_dnsmasq_status(struct bastion *app)
{
	uint32_t status;
	char *text;
	json_t *j = NULL;

	if (app->privsep == NULL)
		return dnsmasq_status(app);
	if (call(app->privsep, PS_RQ_DNSMASQ, NULL, 0, &status, &text) == 0) {
		if (status == PS_OK)
			j = json_loads(text, 0, NULL);
		free(text);
	}
	if (!json_is_object(j)) {
		json_decref(j);
		j = json_pack("{s:b, s:s}", "running", 0, "last_error",
		    "the parent process does not answer");
	}
	return j;
}

int
privsep_config_set(struct bastion *app, const char *key, const char *value,
    struct buf *errors)
{
	size_t klen = strlen(key), vlen = strlen(value);
	uint32_t status;
	char *msg, *text;
	int rc = -1;

	if (app->privsep == NULL) {
		/* One process: as an operator's kill -HUP does. */
		if (config_set_in_file(app->cfg->path, key, value, errors) == -1)
			return -1;
		kill(getpid(), SIGHUP);
		return 0;
	}
	if (klen == 0 || klen >= PS_KEY_MAX || vlen > PS_VALUE_MAX) {
		buf_note(errors, "%s: value too long\n", key);
		return -1;
	}
	if ((msg = malloc(klen + 1 + vlen)) == NULL) {
		buf_note(errors, "out of memory\n");
		return -1;
	}
	memcpy(msg, key, klen + 1);
	memcpy(msg + klen + 1, value, vlen);
	if (call(app->privsep, PS_RQ_CONFIG_SET, msg, klen + 1 + vlen, &status,
	    &text) == -1)
		buf_note(errors, "the parent process does not answer\n");
	else {
		if (status == PS_OK)
			rc = 0;
		else
			buf_note(errors, "%s", text);
		free(text);
	}
	free(msg);
	return rc;
}

void
privsep_signer_down(unsigned gen, void *arg)
{
	struct bastion *app = arg;
	uint32_t g = gen, status;
	char *text;

	if (call(app->privsep, PS_RQ_SIGNER_DOWN, &g, sizeof g, &status,
	    &text) == 0)
		free(text);
}

int
privsep_dhcp_lead(struct bastion *app, int lead)
{
	uint32_t v = lead ? 1 : 0, status;
	char *text;

	if (call(app->privsep, PS_RQ_DHCP_LEAD, &v, sizeof v, &status,
	    &text) == -1)
		return -1;
	free(text);
	return status == PS_OK ? 0 : -1;
}
