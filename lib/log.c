/* log.c — OpenBSD-style logging: stderr in the foreground, syslog otherwise
 * (journald picks syslog up on systemd machines). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"
#include "utf8.h"

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

size_t
log_escape(char *out, size_t len, const char *in)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0, n, take;
	char esc[5];
	const char *add;

	if (len == 0)
		return 0;
	for (; *p; p += take) {
		n = utf8_char_len(p);
		if (n > 1 || (n == 1 && *p >= 0x20 && *p != 0x7f)) {
			add = (const char *)p;
			take = n;
		} else {
			/* A C0 control, DEL, or a byte of a C1 control or of
			 * invalid UTF-8: one visible escape per byte. */
			if (*p == '\n' || *p == '\r' || *p == '\t')
				snprintf(esc, sizeof esc, "\\%c", *p == '\n' ?
				    'n' : *p == '\r' ? 'r' : 't');
			else
				snprintf(esc, sizeof esc, "\\x%c%c",
				    hex[*p >> 4], hex[*p & 0xf]);
			add = esc;
			n = strlen(esc);
			take = 1;
		}
		if (o + n >= len)
			break;		/* never half a character or escape */
		memcpy(out + o, add, n);
		o += n;
	}
	out[o] = '\0';
	return o;
}

void
log_vemit(int prio, const char *subsys, int with_errno, const char *fmt,
    va_list ap)
{
	char msg[2048], safe[2048];
	int saved = errno;
	size_t n;

	if (prio == LOG_DEBUG && !log_debug_on)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (with_errno) {
		n = strlen(msg);
		snprintf(msg + n, sizeof msg - n, ": %s", strerror(saved));
	}
	/* One place for every line: what a request carried (a URL, a login
	 * name) cannot start a forged line or drive a terminal. */
	log_escape(safe, sizeof safe, msg);
	if (log_foreground) {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s: %s\n", stamp,
		    ts.tv_nsec / 1000000, subsys, safe);
	} else {
		syslog(prio, "%s: %s", subsys, safe);
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
