/* db_heartbeat.c — heartbeats written behind. A heartbeat is checked at
 * once (the agent and its certificate, on the thread's read connection)
 * and answered; what it writes (last_seen_ms, last_addr, heartbeat) waits
 * in a pending set, one entry per agent (a newer heartbeat replaces an
 * older one), until a flusher writes the whole set in ONE transaction:
 * HB_GATHER_MS after the first one came (or as soon as HB_BATCH entries
 * wait), then again as soon as that write is done if more came meanwhile
 * — so a batch is what arrived during the last write, and an agent's two
 * heartbeats share a row only when they came within one write of each
 * other (with a fixed 100 ms period, one in ten of a fleet heartbeating
 * twice a second did); before any other use of the writer (db_lock:
 * what this bastion reads after a heartbeat includes it), and at
 * db_close (a clean stop loses none that were acknowledged). The write repeats the certificate check, so an agent
 * revoked in between is not written (nor one whose check came from the
 * cache, agentcache.h, before it heard of the revocation). On PostgreSQL
 * the set goes as one statement per HB_CHUNK agents, not one per agent:
 * a round trip each is what bounded the rows written per second. */
#define LOG_SUBSYS "db"
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "agentcache.h"
#include "jobseen.h"
#include "clock.h"
#include "db_agent.h"
#include "db_internal.h"
#include "log.h"

#define HB_GATHER_MS	10	/* after the first, what else comes */
#define HB_RETRY_MS	100	/* after a batch that failed */
#define HB_BATCH	512	/* this many waiting: written at once */
#define HB_MAX		65536	/* the cap: the caller writes the set itself */
#define HB_BUCKETS	4096
#define HB_CHUNK	1024	/* PostgreSQL: rows per statement */

struct hb_entry {
	struct hb_entry	*next;		/* in its bucket */
	struct hb_entry	*all;		/* in the pending list */
	int64_t		 seen_ms;
	unsigned	 count;		/* heartbeats it stands for (>= 1) */
	char		 id[AGENT_ID_LEN];
	char		 serial[CA_SERIAL_LEN];
	char		 addr[64];
	char		*text;		/* the heartbeat's JSON, owned */
};

struct db_hb {
	pthread_mutex_t	 mu;		/* the set; taken after db->mu */
	pthread_cond_t	 cv;
	pthread_t	 t;
	int		 started, stop;
	int		 failing;	/* the last batch failed; under db->mu */
	struct hb_entry	*bucket[HB_BUCKETS];
	struct hb_entry	*head;		/* every pending entry */
	atomic_size_t	 n;
	/* The metrics; covered: heartbeats whose row was written, by
	 * themselves or by a newer one of the same agent that replaced
	 * them in the set. */
	atomic_ullong	 acked, written, covered, batches;
};

static unsigned
hb_hash(const char *id)
{
	unsigned h = 5381;

	for (; *id; id++)
		h = h * 33 + (unsigned char)*id;
	return h % HB_BUCKETS;
}

static void
hb_entry_free(struct hb_entry *e)
{
	free(e->text);
	free(e);
}

/* Take the whole set (under hb->mu): the caller owns the list. */
static struct hb_entry *
hb_take(struct db_hb *hb)
{
	struct hb_entry *l = hb->head;

	memset(hb->bucket, 0, sizeof hb->bucket);
	hb->head = NULL;
	atomic_store(&hb->n, 0);
	return l;
}

/* The pending entry of agent id, or NULL (under hb->mu). */
static struct hb_entry *
hb_find(struct db_hb *hb, const char *id)
{
	struct hb_entry *o;

	for (o = hb->bucket[hb_hash(id)]; o; o = o->next)
		if (strcmp(o->id, id) == 0)
			return o;
	return NULL;
}

/* e joins the set (under hb->mu). */
static void
hb_link(struct db_hb *hb, struct hb_entry *e)
{
	unsigned h = hb_hash(e->id);

	e->next = hb->bucket[h];
	hb->bucket[h] = e;
	e->all = hb->head;
	hb->head = e;
	atomic_fetch_add(&hb->n, 1);
}

/* Put e back unless a newer heartbeat of its agent came meanwhile
 * (under hb->mu). */
static void
hb_put_back(struct db_hb *hb, struct hb_entry *e)
{
	struct hb_entry *o;

	if ((o = hb_find(hb, e->id)) != NULL) {	/* the newer stands for it */
		o->count += e->count;
		hb_entry_free(e);
		return;
	}
	if (atomic_load(&hb->n) >= HB_MAX) {
		hb_entry_free(e);
		return;
	}
	hb_link(hb, e);
}

/* PostgreSQL: up to HB_CHUNK entries of list *l in one statement (one
 * round trip, not one per agent: the writer, and every bastion's write
 * lock, is held that much shorter), *l moved past them. The rows go as
 * one JSON parameter; the certificate check is repeated per row. */
static int
hb_write_pg(struct db *db, struct hb_entry **l, unsigned long long *rows)
{
	struct hb_entry *e;
	struct db_st *st;
	json_t *a;
	char *text;
	int n, rc = DB_ERR;

	if ((a = json_array()) == NULL)
		return DB_ERR;
	for (e = *l, n = 0; e && n < HB_CHUNK; e = e->all, n++)
		if (json_array_append_new(a, json_pack("{s:s, s:I, s:s, s:s,"
		    " s:s}", "id", e->id, "seen", (json_int_t)e->seen_ms,
		    "addr", e->addr, "hb", e->text, "serial", e->serial)) ==
		    -1) {
			json_decref(a);
			return DB_ERR;
		}
	text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	if (text == NULL)
		return DB_ERR;
	if ((st = db_stmt(db, "UPDATE agents SET last_seen_ms = v.seen,"
	    " last_addr = v.addr, heartbeat = v.hb FROM json_to_recordset("
	    "CAST(? AS json)) AS v(id text, seen bigint, addr text, hb text,"
	    " serial text) WHERE agents.id = v.id AND agents.revoked_ms = 0"
	    " AND EXISTS (SELECT 1 FROM certificates c WHERE c.serial ="
	    " v.serial AND c.agent_id = v.id AND c.revoked_ms = 0)",
	    DB_TEXT(text))) != NULL) {
		if (db_step(st) == DB_DONE) {
			*rows += (unsigned long long)db_changes(db);
			rc = DB_OK;
		}
		db_finalize(st);
	}
	free(text);
	*l = e;
	return rc;
}

/* Write list l in one transaction; db->mu is held. Entries are freed, or
 * put back when the write failed (to try again at the next flush). */
static void
hb_write(struct db *db, struct hb_entry *l)
{
	struct db_hb *hb = db->hb;
	struct hb_entry *e, *next;
	struct db_st *st;
	unsigned long long rows = 0, entries = 0, stands = 0;
	int rc = DB_OK;

	if (db_conn_begin(db->w) == -1) {
		rc = DB_ERR;
		goto done;
	}
	for (e = l; db_is_pg(db) && e && rc == DB_OK; )
		rc = hb_write_pg(db, &e, &rows);
	for (; e && rc == DB_OK; e = e->all) {
		if ((st = db_stmt(db, "UPDATE agents SET last_seen_ms = ?2,"
		    " last_addr = ?3, heartbeat = ?4 WHERE id = ?1 AND"
		    " revoked_ms = 0 AND EXISTS (SELECT 1"
		    " FROM certificates WHERE serial = ?5 AND agent_id = ?1 AND"
		    " revoked_ms = 0)", DB_TEXT(e->id), DB_INT(e->seen_ms),
		    DB_TEXT(e->addr), DB_TEXT(e->text), DB_TEXT(e->serial))) ==
		    NULL) {
			rc = DB_ERR;
			break;
		}
		if (db_step(st) != DB_DONE)
			rc = DB_ERR;
		else	/* 0: revoked meanwhile, not written */
			rows += (unsigned long long)db_changes(db);
		db_finalize(st);
	}
	if (rc == DB_OK && db_exec(db, "COMMIT") == -1)
		rc = DB_ERR;
	if (rc != DB_OK)
		db_exec(db, "ROLLBACK");
done:
	if (rc != DB_OK) {
		if (!hb->failing)
			log_warnx("heartbeats: a batch failed; kept for the"
			    " next one");
		hb->failing = 1;
		pthread_mutex_lock(&hb->mu);
		for (e = l; e; e = next) {
			next = e->all;
			hb_put_back(hb, e);
		}
		/* Another thread's write (db_lock) may have failed while the
		 * flusher slept: it must see them again, heartbeats that
		 * replace these will not wake it. */
		pthread_cond_signal(&hb->cv);
		pthread_mutex_unlock(&hb->mu);
		return;
	}
	if (hb->failing)
		log_info("heartbeats: written again");
	hb->failing = 0;
	for (e = l; e; e = e->all) {
		entries++;
		stands += e->count;
	}
	/* A row not written (revoked meanwhile) is not known by name on
	 * PostgreSQL: then only the rows count, a lower bound. */
	atomic_fetch_add(&hb->covered, rows == entries ? stands : rows);
	atomic_fetch_add(&hb->written, rows);
	atomic_fetch_add(&hb->batches, 1);
	for (e = l; e; e = next) {
		next = e->all;
		hb_entry_free(e);
	}
}

void
db_hb_flush_locked(struct db *db)
{
	struct db_hb *hb = db->hb;
	struct hb_entry *l;

	if (hb == NULL || atomic_load(&hb->n) == 0)
		return;
	pthread_mutex_lock(&hb->mu);
	l = hb_take(hb);
	pthread_mutex_unlock(&hb->mu);
	if (l != NULL)
		hb_write(db, l);
}

static void *
hb_main(void *arg)
{
	struct db *db = arg;
	struct db_hb *hb = db->hb;
	struct timespec ts, retry = { 0, HB_RETRY_MS * 1000000L };
	int stop, failing;

	for (;;) {
		pthread_mutex_lock(&hb->mu);
		while (!hb->stop && atomic_load(&hb->n) == 0)
			pthread_cond_wait(&hb->cv, &hb->mu);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += HB_GATHER_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!hb->stop && atomic_load(&hb->n) < HB_BATCH &&
		    pthread_cond_timedwait(&hb->cv, &hb->mu, &ts) != ETIMEDOUT)
			;
		stop = hb->stop;
		pthread_mutex_unlock(&hb->mu);
		if (stop)
			break;
		db_lock(db);	/* which writes the set */
		failing = hb->failing;
		db_unlock(db);
		if (failing)	/* kept for later: not at once again */
			nanosleep(&retry, NULL);
	}
	return NULL;
}

int
db_hb_init(struct db *db)
{
	struct db_hb *hb;

	if ((hb = calloc(1, sizeof *hb)) == NULL)
		return -1;
	pthread_mutex_init(&hb->mu, NULL);
	pthread_cond_init(&hb->cv, NULL);
	db->hb = hb;
	return 0;
}

void
db_hb_close(struct db *db)
{
	struct db_hb *hb = db->hb;
	int started;

	if (hb == NULL)
		return;
	pthread_mutex_lock(&hb->mu);
	hb->stop = 1;
	started = hb->started;
	pthread_cond_signal(&hb->cv);
	pthread_mutex_unlock(&hb->mu);
	if (started)
		pthread_join(hb->t, NULL);
	/* The last ones: acknowledged, so written. */
	db_lock(db);
	db_unlock(db);
	pthread_mutex_lock(&hb->mu);
	while (hb->head) {
		struct hb_entry *e = hb->head;

		hb->head = e->all;
		hb_entry_free(e);
	}
	pthread_mutex_unlock(&hb->mu);
	pthread_cond_destroy(&hb->cv);
	pthread_mutex_destroy(&hb->mu);
	free(hb);
	db->hb = NULL;
}

void
db_heartbeat_stats(struct db *db, struct db_hb_stats *out)
{
	struct db_hb *hb = db->hb;

	struct agentcache_stats cs;
	struct jobseen_stats js;

	memset(out, 0, sizeof *out);
	agentcache_stats(db->agents, &cs);
	jobseen_stats(db->jobs, &js);
	out->polls_quiet = js.quiet;
	out->polls_asked = js.asked;
	out->cert_cache_hits = cs.hits;
	out->cert_cache_misses = cs.misses;
	if (hb == NULL)
		return;
	out->acked = atomic_load(&hb->acked);
	out->written = atomic_load(&hb->written);
	out->covered = atomic_load(&hb->covered);
	out->batches = atomic_load(&hb->batches);
	out->pending = atomic_load(&hb->n);
}

int
db_agent_heartbeat(struct db *db, const char *id, const char *serial,
    const char *addr, const char *heartbeat, int64_t *cert_not_after_ms)
{
	struct db_hb *hb = db->hb;
	struct hb_entry *e, *o;
	int64_t not_after;
	size_t n;
	int rc, full, wake;

	if ((rc = db_reader_agent_cert(db, id, serial, &not_after)) != DB_OK)
		return rc;
	if ((e = calloc(1, sizeof *e)) == NULL ||
	    (e->text = strdup(heartbeat)) == NULL)
		goto err_alloc;
	e->seen_ms = clock_wall_ms();
	snprintf(e->id, sizeof e->id, "%s", id);
	snprintf(e->serial, sizeof e->serial, "%s", serial);
	snprintf(e->addr, sizeof e->addr, "%s", addr);
	pthread_mutex_lock(&hb->mu);
	if (!hb->started && !hb->stop) {
		if (pthread_create(&hb->t, NULL, hb_main, db) != 0) {
			pthread_mutex_unlock(&hb->mu);
			goto err_alloc;
		}
		hb->started = 1;
	}
	e->count = 1;
	if ((o = hb_find(hb, id)) != NULL) {	/* the newer one wins */
		free(o->text);
		o->text = e->text;
		o->seen_ms = e->seen_ms;
		o->count++;
		memcpy(o->serial, e->serial, sizeof o->serial);
		memcpy(o->addr, e->addr, sizeof o->addr);
		free(e);
		wake = 0;
	} else {
		hb_link(hb, e);
		wake = 1;
	}
	n = atomic_load(&hb->n);
	full = n >= HB_MAX || hb->stop;
	/* The first wakes the flusher (it gathers the others); a full
	 * batch ends its gathering. Only then: a heartbeat that replaced a
	 * pending one, or came past HB_BATCH, changes nothing the flusher
	 * waits for, and waking it anyway cost a futex call and a context
	 * switch per heartbeat while it gathered (perf: 9% of bastion's CPU
	 * with one agent on 64 connections). */
	if (wake && (n == 1 || n == HB_BATCH))
		pthread_cond_signal(&hb->cv);
	pthread_mutex_unlock(&hb->mu);
	if (full) {			/* the caller writes the set */
		db_lock(db);
		db_unlock(db);
	}
	atomic_fetch_add(&hb->acked, 1);
	*cert_not_after_ms = not_after;
	return DB_OK;
err_alloc:
	if (e != NULL)
		hb_entry_free(e);
	return DB_ERR;
}
