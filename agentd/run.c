/* run.c — `agentd run`: enroll if needed, then heartbeats, the job long
 * poll, spooled results and renewal, reconnecting with backoff and jitter
 * whenever bastion cannot be reached or refuses us. */
#ifndef AGENTD_NO_CURL	/* the discovery image has no libcurl, OpenSSL or inih */
#define LOG_SUBSYS "run"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "clock.h"
#include "inventory.h"
#include "log.h"

#define POLL_WAIT_MAX	25
#define STOP_GRACE_MS	5000	/* for job threads at stop */

static void
on_signal(int sig)
{
	agent_stop = 1;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { 0, 100 * 1000000 };

	for (; ms > 0 && !agent_stop; ms -= 100)
		nanosleep(&ts, NULL);
}

/* 0 sent, -1 not sent (try again), 1 cannot be collected here: trying
 * again would not change that (an inventory job still may). */
static int
send_inventory(const struct agent_conf *c, struct aclient *a)
{
	char err[256];
	json_t *inv;
	long code;

	if (agent_inventory(c, 0, &inv) == -1)
		return 1;
	code = aclient_call(a, "PUT", "/agent/v1/inventory", inv, 30000, NULL,
	    err, sizeof err);
	json_decref(inv);
	return code == 200 ? 0 : -1;
}

/* 1 when the certificate has lived two thirds of its life. */
static int
renew_due(const struct agent_state *s)
{
	int64_t now = time(NULL);

	return s->not_after > s->not_before &&
	    now >= s->not_before + (s->not_after - s->not_before) * 2 / 3;
}

int
agent_run(const struct agent_conf *conf)
{
	struct agent_conf *c = NULL;
	struct sigaction sa;
	struct agent_state st;
	struct aclient *a = NULL;
	struct jobs *jobs = NULL;
	json_t *reply, *hb;
	char err[512], path[64];
	int64_t next_hb = 0, now;
	long code, interval = 30, wait, delay;
	int attempt = 0, retry, ok, inventory_sent = 0, server_renew = 0;
	int polled = 0, running, unreachable;
	size_t i;
	int rc = 1;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	memset(&st, 0, sizeof st);
	if (aclient_global_init() == -1)
		goto out;
	/* Before any other thread starts. */
	agent_malloc_init();
	scratch_init();
	transient_init(conf);
	/* No mac = in the file: the NIC that routes to bastion, found once
	 * for every inventory (else the inventory's boot NIC rule). */
	if ((c = malloc(sizeof *c)) == NULL)
		goto out;
	*c = *conf;
	if (c->mac[0] == '\0' && agent_route_mac(c, c->mac) == 0)
		log_info("this machine's MAC is %s (its route to %s)", c->mac,
		    agent_server(c));

	while (!agent_enrolled(c) && !agent_stop) {
		if (agent_enroll(c, &retry) == 0)
			break;
		if (!retry)
			goto out;
		agent_server_next(c);
		delay = agent_backoff_ms(++attempt, arc4random());
		log_info("enrollment: trying again in %ld ms", delay);
		sleep_ms(delay);
	}
	if (agent_stop || agent_state_load(c, &st) == -1)
		goto out;
	if ((jobs = jobs_new(c, &st)) == NULL || (a = aclient_new(c, 1)) == NULL)
		goto out;
	log_info("agent %s running against %s (accepts %s)", st.agent_id,
	    agent_server(c), c->accept_text);
	docker_reporter_start(c);
	guest_reporter_start(c);
	attempt = 0;
	while (!agent_stop) {
		ok = 1;
		unreachable = 0;
		now = clock_mono_ms() / 1000;
		if (now >= next_hb) {
			hb = agent_heartbeat_json(jobs);
			code = aclient_call(a, "POST", "/agent/v1/heartbeat", hb,
			    15000, &reply, err, sizeof err);
			json_decref(hb);
			if (code == 200) {
				interval = (long)json_integer_value(json_object_get(
				    reply, "interval"));
				if (interval < 5 || interval > 3600)
					interval = 30;
				agent_interval_s = (sig_atomic_t)interval;
				agent_heard = 1;
				server_renew = json_is_true(json_object_get(reply,
				    "renew"));
				next_hb = now + interval;
				if (attempt)
					log_info("bastion is reachable again");
			} else {
				ok = 0;
				unreachable = code == 0 || code >= 500;
				if (code == 0)
					log_warnx("heartbeat: %s", err);
				else
					log_warnx("heartbeat refused (HTTP %ld): %s%s",
					    code, aclient_error_message(reply),
					    code == 403 ? " — this agent must be "
					    "enrolled again" : "");
			}
			json_decref(reply);
		}
		if (ok && !inventory_sent)
			inventory_sent = send_inventory(c, a) != -1;
		if (ok && jobs_flush(jobs, a) == -1)
			ok = 0;
		if (ok && (server_renew || renew_due(&st))) {
			if (agent_renew(c, &st) == 0) {
				/* New key and certificate: new connections. */
				aclient_free(a);
				if ((a = aclient_new(c, 1)) == NULL)
					goto out;
				server_renew = 0;
			}
		}
		if (ok) {
			wait = (long)(next_hb - clock_mono_ms() / 1000);
			wait = wait < 1 ? 1 : wait > POLL_WAIT_MAX ?
			    POLL_WAIT_MAX : wait;
			if (!polled)	/* start-up is over */
				agent_trim();
			/* The first poll of this process: whatever bastion
			 * sent before cannot be in flight any more. */
			snprintf(path, sizeof path, "/agent/v1/jobs?wait=%ld%s",
			    wait, polled ? "" : "&fresh=1");
			code = aclient_call(a, "GET", path, NULL,
			    (wait + 15) * 1000, &reply, err, sizeof err);
			if (code == 200 || code == 204)
				polled = 1;
			if (code == 200) {
				json_t *list = json_object_get(reply, "jobs"), *j;

				json_array_foreach(list, i, j)
					jobs_handle(jobs, j);
			} else if (code != 204) {
				ok = 0;
				unreachable = code == 0 || code >= 500;
				if (code == 0)
					log_warnx("job poll: %s", err);
				else
					log_warnx("job poll refused (HTTP %ld): %s",
					    code, aclient_error_message(reply));
			}
			json_decref(reply);
		}
		if (ok) {
			attempt = 0;
			continue;
		}
		/* Another bastion may answer (server = URL1, URL2, …); the
		 * spool goes to whichever does. */
		if (unreachable && !agent_stop)
			agent_server_next(c);
		delay = agent_backoff_ms(++attempt, arc4random());
		log_info("reconnecting in %ld ms (attempt %d)", delay, attempt);
		sleep_ms(delay);
		next_hb = 0;
	}
	log_info("stopping");
	rc = 0;
out:
	docker_reporter_stop();
	guest_reporter_stop();
	aclient_free(a);
	/* Job threads use the jobs, the configuration and libcurl until
	 * their last line: a job still running after the grace keeps them
	 * (its spool mark reports it failed at the next start). */
	if (jobs && (running = jobs_drain(jobs, STOP_GRACE_MS)) > 0) {
		log_warnx("%d job(s) still running; leaving them to the exit",
		    running);
		return rc;
	}
	jobs_free(jobs);
	agent_state_free(&st);
	aclient_global_cleanup();
	free(c);
	return rc;
}
#endif /* AGENTD_NO_CURL */
