/* db_pg_listen.c — what the other bastions on one PostgreSQL database
 * changed, heard on a connection of its own (LISTEN bastion): a job for
 * an agent that long-polls here ("w:AGENT_ID"), and the machines or
 * leases tables changed ("m"), which ends the machine caches' generation.
 * The connection is kept with a backoff; after each (re)connection every
 * waiter is woken and the caches dropped, since a notification sent
 * while it was away is lost. */
#define _GNU_SOURCE
#define LOG_SUBSYS "db"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "db_internal.h"
#include "log.h"

#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	5000
#define PAYLOAD_MAX	128	/* "w:" and an agent id, with room */

struct db_listener {
	struct db	*db;
	void		(*fn)(const char *agent_id, void *arg);
	void		*arg;
	pthread_t	 t;
	int		 stop[2];	/* a byte written ends the thread */
};

/* Wait up to ms (-1: no limit) for fd to be readable or the stop pipe:
 * 1 readable, 0 timed out, -1 stopping. */
static int
wait_for(struct db_listener *l, int fd, int ms)
{
	struct pollfd p[2] = { { l->stop[0], POLLIN, 0 }, { fd, POLLIN, 0 } };
	int n;

	do
		n = poll(p, fd == -1 ? 1 : 2, ms);
	while (n == -1 && errno == EINTR);
	if (n > 0 && p[0].revents)
		return -1;
	return n > 0 ? 1 : 0;
}

static PGconn *
listen_connect(struct db_listener *l)
{
	PGresult *r;
	PGconn *pg;

	pg = PQconnectdb(l->db->path);
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
		goto fail;
	r = PQexec(pg, "LISTEN bastion");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	/* Not blocking: PQconsumeInput never waits for a whole message. */
	if (PQsetnonblocking(pg, 1) == -1)
		goto fail;
	return pg;
fail:
	log_warnx("listening for other bastions: %s", pg ? PQerrorMessage(pg) :
	    "out of memory");
	PQfinish(pg);
	return NULL;
}

static void
heard(struct db_listener *l, const char *payload)
{
	if (strcmp(payload, "m") == 0)
		atomic_fetch_add(&l->db->machines_gen, 1);
	else if (strncmp(payload, "w:", 2) == 0 && payload[2] != '\0' &&
	    strlen(payload) < PAYLOAD_MAX)
		l->fn(payload + 2, l->arg);
}

static void *
listen_thread(void *arg)
{
	struct db_listener *l = arg;
	PGnotify *n;
	PGconn *pg;
	int backoff = 0, rc;

	for (;;) {
		if ((pg = listen_connect(l)) == NULL) {
			backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
			if (backoff > BACKOFF_MAX_MS)
				backoff = BACKOFF_MAX_MS;
			if (wait_for(l, -1, backoff) == -1)
				return NULL;
			continue;
		}
		if (backoff)
			log_info("listening for other bastions again");
		backoff = 0;
		/* What was sent while nobody listened is lost. */
		atomic_fetch_add(&l->db->machines_gen, 1);
		l->fn(NULL, l->arg);
		for (;;) {
			if ((rc = wait_for(l, PQsocket(pg), -1)) == -1) {
				PQfinish(pg);
				return NULL;
			}
			if (PQconsumeInput(pg) != 1)
				break;
			while ((n = PQnotifies(pg)) != NULL) {
				heard(l, n->extra);
				PQfreemem(n);
			}
		}
		log_warnx("listening for other bastions: %s",
		    PQerrorMessage(pg));
		PQfinish(pg);
	}
}

int
db_pg_listen_start(struct db *db, void (*fn)(const char *, void *),
    void *arg, struct db_listener **out)
{
	struct db_listener *l;

	if ((l = calloc(1, sizeof *l)) == NULL)
		return -1;
	l->db = db;
	l->fn = fn;
	l->arg = arg;
	if (pipe2(l->stop, O_CLOEXEC) == -1) {
		free(l);
		return -1;
	}
	/* Signals stay with the worker's signalfd: main.c blocked them for
	 * every thread. */
	if (pthread_create(&l->t, NULL, listen_thread, l) != 0) {
		close(l->stop[0]);
		close(l->stop[1]);
		free(l);
		return -1;
	}
	*out = l;
	return 0;
}

void
db_pg_listen_stop(struct db_listener *l)
{
	if (l == NULL)
		return;
	if (write(l->stop[1], "", 1) != 1)
		log_warn("stopping the listener");
	pthread_join(l->t, NULL);
	close(l->stop[0]);
	close(l->stop[1]);
	free(l);
}
