/* transient.c — what needs root's full rights runs outside agentd's
 * sandbox.
 *
 * Under systemd, agentd.service is confined (no capabilities, a read-only
 * system, no block devices, a system-call filter: see the unit). The
 * commands of exec jobs, guest jobs (liblxc), reboots and efibootmgr,
 * smartctl and the disk probe need the node itself: they run in transient
 * units that systemd starts for agentd (`systemd-run --pipe --wait`, an
 * argv, never a shell string), with agentd's pipes as their standard
 * descriptors and their exit status as systemd-run's. Outside systemd
 * (tests, the discovery and install images) they are agentd's children,
 * as before. */
#ifndef AGENTD_NO_CURL	/* the discovery image has no libcurl, OpenSSL or inih */
#define _GNU_SOURCE
#define LOG_SUBSYS "transient"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "clock.h"
#include "log.h"

#define SYSTEMD_RUN	"/usr/bin/systemd-run"
#define TR_FIXED	16	/* systemd-run's own arguments, at most */

static int	tr_on = -1;		/* transient_init not called: off */
static char	tr_self[PATH_MAX];	/* this executable */
static char	tr_unit[256];		/* our unit: "agentd.service" */

/* Our service's name, from the control group systemd put us in. */
static void
own_unit(void)
{
	char line[512], *path, *base, *nl;
	FILE *f;

	if ((f = fopen("/proc/self/cgroup", "re")) == NULL)
		return;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "0::", 3) == 0)
			path = line + 3;
		else if ((path = strstr(line, ":name=systemd:")) != NULL)
			path += 14;
		else
			continue;
		if ((nl = strchr(path, '\n')) != NULL)
			*nl = '\0';
		base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
		if (strlen(base) > 8 && strlen(base) < sizeof tr_unit &&
		    strcmp(base + strlen(base) - 8, ".service") == 0) {
			snprintf(tr_unit, sizeof tr_unit, "%s", base);
			break;
		}
	}
	fclose(f);
}

int
transient_detect(int mode)
{
	const char *id = getenv("INVOCATION_ID");

	if (mode != TRANSIENT_AUTO)
		return mode == TRANSIENT_YES;
	/* A service of systemd's: its manager set INVOCATION_ID, is our
	 * parent, and systemd-run is there to reach it. */
	return id != NULL && id[0] != '\0' && getppid() == 1 &&
	    access("/run/systemd/system", F_OK) == 0 &&
	    access(SYSTEMD_RUN, X_OK) == 0;
}

void
transient_init(const struct agent_conf *c)
{
	ssize_t n;
	char *del;

	tr_on = transient_detect(c->transient);
	/* A replaced binary reads "PATH (deleted)": the new one at PATH
	 * is what the unit runs. */
	if ((n = readlink("/proc/self/exe", tr_self, sizeof tr_self - 1)) <= 0)
		n = 0;
	tr_self[n] = '\0';
	if ((del = strstr(tr_self, " (deleted)")) != NULL && del[10] == '\0')
		*del = '\0';
	if (tr_on)
		own_unit();
	if (tr_on)
		log_info("under systemd: jobs that need the whole node run in "
		    "transient units (%s)", SYSTEMD_RUN);
}

int
transient_on(void)
{
	return tr_on == 1;
}

const char *
transient_unit(void)
{
	return tr_unit;
}

const char *
transient_self(void)
{
	return tr_self;
}

/* systemd expands $NAME and ${NAME} in a unit's command line, and "$$"
 * is a '$': every '$' doubled, the argument reaches the command as it
 * was given. */
char *
transient_escape(const char *s)
{
	size_t n = 0, i;
	char *out, *p;

	for (i = 0; s[i]; i++)
		n += s[i] == '$' ? 2 : 1;
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (p = out, i = 0; s[i]; i++) {
		*p++ = s[i];
		if (s[i] == '$')
			*p++ = '$';
	}
	*p = '\0';
	return out;
}

void
transient_free(char **argv)
{
	size_t i;

	if (argv == NULL)
		return;
	/* Before "--": systemd-run's own options, static text except the
	 * --opt=value ones made here; after it, each argument is ours. */
	for (i = 0; argv[i] && strcmp(argv[i], "--") != 0; i++)
		if (strchr(argv[i], '=') != NULL &&
		    strcmp(argv[i], "--service-type=exec") != 0)
			free(argv[i]);
	if (argv[i])
		for (i++; argv[i]; i++)
			free(argv[i]);
	free(argv);
}

static int
push(char **out, size_t *n, char *s)
{
	if (s == NULL)
		return -1;
	out[(*n)++] = s;
	return 0;
}

/* "--name=" value */
static char *
opt(const char *name, const char *value)
{
	char *s;

	return asprintf(&s, "%s%s", name, value) == -1 ? NULL : s;
}

char **
transient_argv(char *const argv[], const struct transient_opts *o)
{
	size_t nargv = 0, nenv = 0, n = 0, i;
	char **out, buf[32];

	for (; argv[nargv]; nargv++)
		;
	for (; o->envp && o->envp[nenv]; nenv++)
		;
	if ((out = calloc(TR_FIXED + nenv + nargv + 2, sizeof *out)) == NULL)
		return NULL;
	out[n++] = SYSTEMD_RUN;
	/* --pipe: the unit gets our stdin, stdout and stderr; --wait: we
	 * wait for it and get its exit status; exec: a command that
	 * cannot be run fails the start. */
	out[n++] = "--pipe";
	out[n++] = "--wait";
	out[n++] = "--quiet";
	out[n++] = "--collect";
	out[n++] = "--service-type=exec";
	if (o->unit && push(out, &n, opt("--unit=", o->unit)) == -1)
		goto fail;
	if (o->description && push(out, &n, opt("--description=",
	    o->description)) == -1)
		goto fail;
	if (o->cwd && push(out, &n, opt("--working-directory=", o->cwd)) == -1)
		goto fail;
	if (o->property && push(out, &n, opt("--property=", o->property)) == -1)
		goto fail;
	if (o->hush && push(out, &n, opt("--property=", "LogLevelMax=notice"))
	    == -1)
		goto fail;
	if (o->max_s > 0) {
		snprintf(buf, sizeof buf, "%ld", o->max_s);
		if (push(out, &n, opt("--property=RuntimeMaxSec=", buf)) == -1)
			goto fail;
	}
	for (i = 0; i < nenv; i++)
		if (push(out, &n, opt("--setenv=", o->envp[i])) == -1)
			goto fail;
	out[n++] = "--";
	for (i = 0; i < nargv; i++)
		if (push(out, &n, transient_escape(argv[i])) == -1)
			goto fail;
	out[n] = NULL;
	return out;
fail:
	out[n] = NULL;
	transient_free(out);
	return NULL;
}

int
transient_capture(char *const argv[], const struct transient_opts *o,
    size_t max, long timeout_ms, char **out, int *status)
{
	struct pollfd pfd;
	char **run = NULL, *buf = NULL;
	size_t n = 0;
	ssize_t r;
	int64_t deadline = clock_mono_ms() + timeout_ms;
	int fds[2] = { -1, -1 }, st = 0, devnull, killed = 0;
	pid_t pid;

	*status = -1;
	if (out)
		*out = NULL;
	if (transient_on() && (run = transient_argv(argv, o)) == NULL)
		return -1;
	if (pipe2(fds, O_CLOEXEC) == -1 || (buf = malloc(max + 1)) == NULL)
		goto fail;
	if ((pid = fork()) == -1)
		goto fail;
	if (pid == 0) {
		child_prepare();
		devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		dup2(fds[1], 1);
		if (devnull != -1) {
			dup2(devnull, 0);
			if (o->quiet)
				dup2(devnull, 2);
		}
		if (run)
			execv(run[0], run);
		else
			execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	fds[1] = -1;
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	for (;;) {
		int64_t left = timeout_ms > 0 ? deadline - clock_mono_ms() : -1;

		if (timeout_ms > 0 && left <= 0) {
			kill(pid, SIGKILL);	/* the unit has RuntimeMaxSec */
			killed = 1;
			break;
		}
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;	/* EINTR, or the deadline (above) */
		if (n == max) {		/* capped: the rest is not read */
			kill(pid, SIGKILL);
			killed = 1;
			break;
		}
		if ((r = read(fds[0], buf + n, max - n)) <= 0) {
			if (r == -1 && errno == EINTR)
				continue;
			break;
		}
		n += (size_t)r;
	}
	close(fds[0]);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	transient_free(run);
	buf[n] = '\0';
	if (!killed && WIFEXITED(st))
		*status = WEXITSTATUS(st);
	if (out)
		*out = buf;
	else
		free(buf);
	return 0;
fail:
	if (fds[0] != -1)
		close(fds[0]);
	if (fds[1] != -1)
		close(fds[1]);
	free(buf);
	transient_free(run);
	return -1;
}
#endif /* AGENTD_NO_CURL */
