/* db_pg_listen.c — what the other bastions on one PostgreSQL database
 * changed, heard on a connection of its own (LISTEN bastion): a job for
 * an agent that long-polls here ("w:AGENT_ID"), an agent that did not
 * reach a stream ("s:SID AGENT WHY"), and the machines or leases tables
 * changed ("m"), which ends the machine caches' generation, and an
 * agent or its certificate was revoked or renewed ("a"), which ends the
 * agent certificate cache's (agentcache.h).
 * The connection is kept with a backoff; after each (re)connection every
 * waiter is woken and the caches dropped, since a notification sent
 * while it was away is lost; while it is away, the caches and the
 * quiet agents (jobseen.h) are off.
 *
 * The same connection competes for the DHCP lead of the interface (a
 * session advisory lock, db.h's struct db_dhcp_lead): its loss is seen
 * here at once, and the lock goes with it, so the lead is given up
 * before anything else happens. */
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

#include "agentcache.h"
#include "clock.h"
#include "db_cluster.h"
#include "db_internal.h"
#include "jobseen.h"
#include "log.h"
#include "strhash.h"

#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	5000
#define PAYLOAD_MAX	128	/* "w:" and an agent id, with room */
#define STREAM_PAYLOAD_MAX	(PAYLOAD_MAX + DB_STREAM_WHY_MAX)
#define LEAD_URL_MAX	512	/* a bastion's control URL */
#define LEAD_NAME_MAX	64	/* an interface's name */

struct db_listener {
	struct db	*db;
	void		(*fn)(const char *agent_id, void *arg);
	void		*arg;
	pthread_t	 t;
	int		 stop[2];	/* a byte written ends the thread */
	/* The DHCP lead, when lead_fn is set. */
	void		(*lead_fn)(int leading, const char *interface,
			    void *arg);
	void		*lead_arg;
	char		 url[LEAD_URL_MAX];
	char		 interface[LEAD_NAME_MAX];
	uint32_t	 lead_key;	/* the lock's second key */
	int		 leading;	/* this connection holds the lock */
	int		 recorded;	/* its session is in the bastions row */
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

/*
 * Over TCP, a connection whose peer silently went (a cut network) is
 * found by keepalives: here after about 5 + 3 * 2 s, so that a DHCP
 * leader stops dnsmasq before the server, which looks after 10 + 3 * 2 s
 * (the SETs below), ends the session and frees the lock for another.
 */
static const char *const listen_keys[] = { "dbname", "keepalives",
    "keepalives_idle", "keepalives_interval", "keepalives_count", NULL };

static PGconn *
listen_connect(struct db_listener *l)
{
	const char *values[] = { l->db->path, "1", "5", "2", "3", NULL };
	PGresult *r;
	PGconn *pg;

	pg = PQconnectdbParams(listen_keys, values, 1);
	if (pg == NULL || PQstatus(pg) != CONNECTION_OK)
		goto fail;
	r = PQexec(pg, "SET tcp_keepalives_idle = 10;"
	    " SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3;"
	    " LISTEN bastion");
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

/* "s:SID AGENT WHY": an agent did not reach stream SID (db_notify_stream). */
static void
heard_stream(struct db_listener *l, const char *payload)
{
	char copy[STREAM_PAYLOAD_MAX], *sid, *agent, *why;

	if (l->db->stream_fn == NULL || strlen(payload) >= sizeof copy)
		return;
	snprintf(copy, sizeof copy, "%s", payload + 2);
	sid = copy;
	if ((agent = strchr(sid, ' ')) == NULL)
		return;
	*agent++ = '\0';
	if ((why = strchr(agent, ' ')) == NULL)
		return;
	*why++ = '\0';
	if (*sid == '\0' || *agent == '\0')
		return;
	l->db->stream_fn(sid, agent, why, l->db->stream_arg);
}

static void
heard(struct db_listener *l, const char *payload)
{
	if (strcmp(payload, "m") == 0)
		atomic_fetch_add(&l->db->machines_gen, 1);
	else if (strcmp(payload, "a") == 0)	/* an agent revoked, renewed */
		agentcache_bump(l->db->agents);
	else if (strncmp(payload, "w:", 2) == 0 && payload[2] != '\0' &&
	    strlen(payload) < PAYLOAD_MAX) {
		/* Before the waiters wake: they look (jobseen.h). */
		jobseen_woke(l->db->jobs, payload + 2);
		l->fn(payload + 2, l->arg);
	}
	else if (strncmp(payload, "s:", 2) == 0)
		heard_stream(l, payload);
}

/* Every notification libpq has read (a query reads them too). */
static void
drain(struct db_listener *l, PGconn *pg)
{
	PGnotify *n;

	while ((n = PQnotifies(pg)) != NULL) {
		heard(l, n->extra);
		PQfreemem(n);
	}
}

/* FNV-1a of the interface's name, 31 bits: pg_locks shows the same
 * number as objid (an oid) as the lock takes (an integer). */
static uint32_t
lead_key(const char *name)
{
	return str_fnv1a(name) & 0x7fffffffU;
}

/* A candidate's turn on pg: record its session, then try the lock (it
 * stays with the session: a second try would stack another hold). */
static void
lead_try(struct db_listener *l, PGconn *pg)
{
	char k1[16], k2[16];
	const char *values[2] = { k1, k2 };
	PGresult *r;
	int rc;

	if (!l->recorded) {
		rc = db_cluster_dhcp_session(l->db, l->url, PQbackendPID(pg));
		l->recorded = rc == DB_OK;
	}
	if (l->leading)
		return;
	snprintf(k1, sizeof k1, "%d", DB_PG_LOCK_DHCP);
	snprintf(k2, sizeof k2, "%u", l->lead_key);
	r = PQexecParams(pg, "SELECT pg_try_advisory_lock($1::integer,"
	    " $2::integer)", 2, NULL, values, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
		l->leading = 1;
		l->lead_fn(1, l->interface, l->lead_arg);
	} else if (PQresultStatus(r) != PGRES_TUPLES_OK)
		log_debug("the DHCP lead: %s", PQresultErrorMessage(r));
	PQclear(r);
}

static void *
listen_thread(void *arg)
{
	struct db_listener *l = arg;
	int64_t next_try = 0, now;
	PGconn *pg;
	int backoff = 0, rc, ms;

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
		agentcache_enable(l->db->agents, 1);	/* from now on, heard */
		jobseen_enable(l->db->jobs, 1);
		l->fn(NULL, l->arg);
		l->recorded = 0;	/* a new session */
		for (;;) {
			ms = -1;
			if (l->lead_fn != NULL && (!l->leading ||
			    !l->recorded)) {
				now = clock_mono_ms();
				if (now >= next_try) {
					lead_try(l, pg);
					drain(l, pg);
					next_try = now + DB_DHCP_RETRY_MS;
					if (PQstatus(pg) != CONNECTION_OK)
						break;
					continue;
				}
				ms = (int)(next_try - now);
			}
			if ((rc = wait_for(l, PQsocket(pg), ms)) == -1) {
				agentcache_enable(l->db->agents, 0);
				jobseen_enable(l->db->jobs, 0);
				PQfinish(pg);
				return NULL;
			}
			if (rc == 0)
				continue;
			if (PQconsumeInput(pg) != 1 ||
			    PQstatus(pg) != CONNECTION_OK)
				break;
			drain(l, pg);
		}
		/* A revocation now would go unheard: no cached yes; nor a
		 * job: every long poll asks the database. */
		agentcache_enable(l->db->agents, 0);
		jobseen_enable(l->db->jobs, 0);
		log_warnx("listening for other bastions: %s",
		    PQerrorMessage(pg));
		/* The lock went with the session: dnsmasq stops now, before
		 * the reconnection's backoff. */
		if (l->leading) {
			l->leading = 0;
			l->lead_fn(0, l->interface, l->lead_arg);
		}
		next_try = 0;
		PQfinish(pg);
	}
}

int
db_pg_listen_start(struct db *db, void (*fn)(const char *, void *),
    void *arg, const struct db_dhcp_lead *lead, struct db_listener **out)
{
	struct db_listener *l;

	if ((l = calloc(1, sizeof *l)) == NULL)
		return -1;
	l->db = db;
	l->fn = fn;
	l->arg = arg;
	if (lead != NULL) {
		if (snprintf(l->url, sizeof l->url, "%s", lead->url) >=
		    (int)sizeof l->url || snprintf(l->interface,
		    sizeof l->interface, "%s", lead->interface) >=
		    (int)sizeof l->interface) {
			free(l);
			return -1;
		}
		l->lead_fn = lead->fn;
		l->lead_arg = lead->arg;
		l->lead_key = lead_key(l->interface);
	}
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
