/* thread.c — agentd's threads: every one starts with all signals blocked
 * (the main thread takes SIGTERM, SIGHUP and SIGCHLD), and the reporters
 * (docker_report.c, guest_report.c) start and stop the same way. */
#include <pthread.h>
#include <signal.h>

#include "agent.h"
#include "log.h"

int
agent_thread(pthread_t *joinable, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	int rc;

	pthread_attr_init(&attr);
	if (joinable == NULL)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(joinable ? joinable : &t, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return rc == 0 ? 0 : -1;
}

int
agent_reporter_start(struct agent_reporter *r, const struct agent_conf *c,
    void *(*fn)(void *), const char *what)
{
	if (r->running)
		return 0;
	r->c = c;
	r->stop = 0;
	if (agent_thread(&r->t, fn, NULL) == -1) {
		log_warnx("cannot start the %s reporter", what);
		return -1;
	}
	r->running = 1;
	return 0;
}

void
agent_reporter_stop(struct agent_reporter *r)
{
	if (!r->running)
		return;
	r->stop = 1;
	pthread_join(r->t, NULL);
	r->running = 0;
}
