#define _GNU_SOURCE	/* ppoll */
/* tty.c — an interactive session over a bastion stream (routes_stream.c):
 * the terminal raw, keys to the node, its screen back, resizes, Ctrl-]
 * to leave. Used by `containers exec -it` and `guests console`. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "ctl.h"

static volatile sig_atomic_t winch;

static void
on_winch(int sig)
{
	winch = 1;
}

struct session {
	struct ctl	 c;		/* its own connection */
	char		 sid[40];
	volatile sig_atomic_t done;
	int		 exit_code;	/* -1: none */
	int		 failed;
	int		 gone;		/* the stream ended on bastion */
	char		 reason[300];	/* ended without its node: why */
};

/* The node's output to stdout, until the stream ends. */
static void *
session_output(void *arg)
{
	struct session *s = arg;
	char path[128];
	unsigned char *raw;
	json_t *o;
	size_t len;
	long status;

	snprintf(path, sizeof path, "/api/v1/streams/%s/output?wait=20", s->sid);
	s->c.timeout_ms = 40000;
	s->c.quiet_errors = 1;
	while (!s->done) {
		o = NULL;
		if (ctl_request(&s->c, "GET", path, NULL, &o, NULL, &status) == -1) {
			if (status == 404)	/* taken over, idle, or taken */
				s->gone = 1;
			else
				s->failed = 1;
			break;
		}
		if ((raw = b64_decode(ctl_jstr(o, "data"), 1 << 20, &len)) != NULL) {
			if (len && write(1, raw, len) < 0)
				s->done = 1;
			free(raw);
		}
		if (json_is_true(json_object_get(o, "ended"))) {
			if (json_is_integer(json_object_get(o, "exit_code")))
				s->exit_code = (int)ctl_jint(o, "exit_code", 1);
			if (json_is_string(json_object_get(o, "reason")))
				snprintf(s->reason, sizeof s->reason, "%s",
				    ctl_jstr(o, "reason"));
			json_decref(o);
			break;
		}
		json_decref(o);
	}
	s->done = 1;
	return NULL;
}

static int
session_send(struct ctl *c, const char *sid, json_t *body)
{
	char path[128];
	int rc;

	snprintf(path, sizeof path, "/api/v1/streams/%s/input", sid);
	rc = ctl_request(c, "POST", path, body, NULL, NULL, NULL);
	json_decref(body);
	return rc;
}

static int
send_bytes(struct ctl *c, const char *sid, const char *p, size_t n)
{
	char *b64;
	int rc;

	if (n == 0)
		return 0;
	if ((b64 = b64_encode(p, n)) == NULL)
		return -1;
	rc = session_send(c, sid, json_pack("{s:s}", "data", b64));
	free(b64);
	return rc;
}

int
ctl_tty_size(int *rows, int *cols)
{
	struct winsize ws;

	if (!isatty(0) || ioctl(0, TIOCGWINSZ, &ws) == -1 || ws.ws_row == 0 ||
	    ws.ws_col == 0)
		return -1;
	*rows = ws.ws_row;
	*cols = ws.ws_col;
	return 0;
}

int
ctl_tty_session(struct ctl *c, const char *sid, const char *label)
{
	struct termios saved, raw;
	struct winsize ws;
	struct sigaction sa;
	struct timespec tick = { 0, 200 * 1000000 };
	sigset_t winch_set, old, wait_mask;
	struct session *s;
	struct pollfd pf;
	pthread_t out;
	char buf[4096], *esc;
	int tty = isatty(0), rc = CTL_ERR, eof = 0;
	ssize_t n;

	if (sid == NULL || strlen(sid) != 32)
		return ctl_bad_answer(label);
	if ((s = calloc(1, sizeof *s)) == NULL)
		return ctl_error("out of memory");
	snprintf(s->sid, sizeof s->sid, "%s", sid);
	s->c = *c;
	s->c.http = NULL;
	s->exit_code = -1;
	if (tty) {
		tcgetattr(0, &saved);
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_winch;
		sigaction(SIGWINCH, &sa, NULL);
		fprintf(stderr, "[connected to %s; Ctrl-] leaves]\r\n", label);
	}
	/*
	 * A resize goes out before the keys typed after it (a command run
	 * at once sees the new size): SIGWINCH is blocked everywhere (the
	 * output thread inherits that) but in the loop's ppoll, so it lands
	 * there, never between the flag's check and the read of keys.
	 */
	sigemptyset(&winch_set);
	sigaddset(&winch_set, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &winch_set, &old);
	if (pthread_create(&out, NULL, session_output, s) != 0) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (tty)
			tcsetattr(0, TCSANOW, &saved);
		free(s);
		return ctl_error("cannot start a thread");
	}
	wait_mask = old;
	sigdelset(&wait_mask, SIGWINCH);
	c->timeout_ms = 30000;
	while (!s->done) {
		if (winch) {
			winch = 0;
			if (ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row)
				session_send(c, s->sid, json_pack("{s:[i, i]}",
				    "resize", ws.ws_row, ws.ws_col));
		}
		if (eof) {	/* input over: wait for the node's end */
			struct timespec ts = { 0, 100 * 1000000 };

			nanosleep(&ts, NULL);
			continue;
		}
		pf.fd = 0;
		pf.events = POLLIN;
		pf.revents = 0;
		/* A signal that came with keys runs its handler as ppoll
		 * returns: the resize goes out first. */
		if (ppoll(&pf, 1, &tick, &wait_mask) <= 0 || winch)
			continue;
		if ((n = read(0, buf, sizeof buf)) <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			eof = 1;
			continue;
		}
		if ((esc = memchr(buf, 0x1d, (size_t)n)) != NULL) {
			send_bytes(c, s->sid, buf, (size_t)(esc - buf));
			session_send(c, s->sid, json_pack("{s:b}", "close", 1));
			s->done = 1;
			rc = CTL_OK;
			break;
		}
		if (send_bytes(c, s->sid, buf, (size_t)n) == -1)
			break;
	}
	s->done = 1;
	pthread_join(out, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (tty) {
		tcsetattr(0, TCSANOW, &saved);
		fprintf(stderr, "\r\n[%s]\n", rc == CTL_OK ? "left the session" :
		    "session over");
	}
	if (rc != CTL_OK && s->exit_code >= 0)
		rc = s->exit_code & 0xff;
	else if (rc != CTL_OK && s->reason[0] && !tty)	/* a tty showed it */
		ctl_error("%s", s->reason);
	else if (rc != CTL_OK && s->gone)
		ctl_error("the session was ended on bastion (taken over by "
		    "another session, or idle)");
	else if (rc != CTL_OK && s->failed)
		ctl_error("the session was cut: bastion did not answer");
	ctl_http_free(&s->c);
	free(s);
	return rc;
}
