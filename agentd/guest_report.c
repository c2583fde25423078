/* guest_report.c — the guest report (DESIGN §13, GUESTS.md) and the
 * thread that pushes it to POST /agent/v1/reports/guests: whenever it
 * changes (read every GUEST_POLL_MS) and at least once per heartbeat
 * interval. A driver the node lacks is "absent", one that does not
 * answer is "error" with the reason, never an empty list. */
#ifndef AGENTD_NO_CURL	/* the discovery image has no guests to run */
#define LOG_SUBSYS "guests"
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "clock.h"
#include "log.h"
#include "secret.h"

#define GUEST_POLL_MS	3000
#define GUEST_RETRY_MS	5000	/* after a report bastion did not take */

/* One driver's part: its state, and its guests appended to list. */
static void
driver_add(const struct agent_conf *c, json_t *drivers, json_t *list,
    const char *name, json_t *(*state)(const struct agent_conf *),
    int (*guests)(const struct agent_conf *, json_t *, char *, size_t))
{
	json_t *d = state(c);
	char err[512];

	if (d == NULL)
		return;
	if (strcmp(json_string_value(json_object_get(d, "state")), "ok") == 0 &&
	    guests(c, list, err, sizeof err) == -1) {
		json_object_set_new(d, "state", json_string("error"));
		json_object_set_new(d, "detail", json_string(err));
	}
	json_object_set_new(drivers, name, d);
}

json_t *
guest_report_build(const struct agent_conf *c)
{
	json_t *drivers = json_object(), *list = json_array();

	if (c->guests & GUESTS_LIBVIRT)
		driver_add(c, drivers, list, "libvirt", guest_libvirt_driver,
		    guest_libvirt_list);
	if (c->guests & GUESTS_LXC)
		driver_add(c, drivers, list, "lxc", guest_lxc_driver,
		    guest_lxc_list);
	return json_pack("{s:o, s:o}", "drivers", drivers, "guests", list);
}

/* --- the reporting thread ---------------------------------------------- */

static struct agent_reporter rep;

static void
nap(long ms)
{
	struct timespec ts = { 0, 100 * 1000000 };

	for (; ms > 0 && !agent_stop && !rep.stop; ms -= 100)
		nanosleep(&ts, NULL);
}

static void *
reporter(void *arg)
{
	const struct agent_conf *c = rep.c;
	char fp[SECRET_HEXLEN] = "", now_fp[SECRET_HEXLEN], err[256];
	struct aclient *a = NULL;
	json_t *snap, *reply;
	int64_t next = 0;
	char *text;
	long code;
	int trimmed = 0;

	while (!agent_heard && !agent_stop && !rep.stop)
		nap(100);
	while (!agent_stop && !rep.stop) {
		if ((snap = agent_guest_report(c)) == NULL ||
		    (text = json_dumps(snap, JSON_COMPACT | JSON_SORT_KEYS)) ==
		    NULL) {
			json_decref(snap);
			nap(GUEST_RETRY_MS);
			continue;
		}
		agent_sha256_hex(text, strlen(text), now_fp);
		free(text);
		if (strcmp(now_fp, fp) == 0 && clock_mono_ms() < next) {
			json_decref(snap);
			nap(GUEST_POLL_MS);
			continue;
		}
		if (a == NULL)
			a = aclient_new(c, 1);
		reply = NULL;
		code = a ? aclient_call(a, "POST", "/agent/v1/reports/guests",
		    snap, 30000, &reply, err, sizeof err) : 0;
		json_decref(snap);
		if (code == 200) {
			memcpy(fp, now_fp, sizeof fp);
			next = clock_mono_ms() + (int64_t)agent_interval_s * 1000;
			if (!trimmed++)	/* this thread's start-up is over */
				agent_trim();
		} else {
			if (code)
				log_warnx("guest report refused (HTTP %ld): %s",
				    code, aclient_error_message(reply));
			fp[0] = '\0';
			next = clock_mono_ms() + GUEST_RETRY_MS;
		}
		json_decref(reply);
		malloc_trim(0);
		nap(GUEST_POLL_MS);
	}
	aclient_free(a);
	return NULL;
}

int
guest_reporter_start(const struct agent_conf *c)
{
	if (c->guests == 0)
		return 0;
	return agent_reporter_start(&rep, c, reporter, "guest");
}

void
guest_reporter_stop(void)
{
	agent_reporter_stop(&rep);
}
#endif /* AGENTD_NO_CURL */
