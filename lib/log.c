/* log.c — OpenBSD-style logging: stderr in the foreground, syslog otherwise
 * (journald picks syslog up on systemd machines). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static int log_foreground = 1;
static int log_debug_on;

void
log_init(int foreground, int debug, const char *ident)
{
	log_foreground = foreground;
	log_debug_on = debug;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_debug(int debug)
{
	log_debug_on = debug;
}

int
log_is_debug(void)
{
	return log_debug_on;
}

void
log_vemit(int prio, const char *subsys, int with_errno, const char *fmt,
    va_list ap)
{
	char msg[2048];
	int saved = errno;
	size_t n;

	if (prio == LOG_DEBUG && !log_debug_on)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (with_errno) {
		n = strlen(msg);
		snprintf(msg + n, sizeof msg - n, ": %s", strerror(saved));
	}
	if (log_foreground) {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s: %s\n", stamp,
		    ts.tv_nsec / 1000000, subsys, msg);
	} else {
		syslog(prio, "%s: %s", subsys, msg);
	}
	errno = saved;
}

void
log_emit(int prio, const char *subsys, int with_errno, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(prio, subsys, with_errno, fmt, ap);
	va_end(ap);
}

void
log_fatal(const char *subsys, int with_errno, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_CRIT, subsys, with_errno, fmt, ap);
	va_end(ap);
	exit(1);
}
