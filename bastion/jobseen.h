/* jobseen.h — which agents are known to have no job to fetch, so that a
 * long poll asks the database only when something may have changed
 * (issue 17: two round trips per poll cycle, ~3,300 cycles a second on a
 * bastion holding 19,700 agents, were what it spent its time on).
 *
 * An agent is "quiet" as of a mark (a number read BEFORE the database
 * answered that it had nothing queued and nothing sent but not started)
 * while (1) no job was announced for it since the mark: a job sealed
 * here (db_job_seal) or heard from another bastion ("w:AGENT"), each
 * taking a new number; (2) the tracker is on and was not switched since
 * the mark (PostgreSQL: on only while db_pg_listen.c listens, since a
 * job announced while nobody listened is not heard); (3) the answer is
 * younger than the maximum age (a bound, should an announcement ever be
 * missed). An agent with a job sent but not started is never quiet: it
 * becomes deliverable again by the clock, with nothing announced.
 *
 * Announcements are kept by a hash of the agent id in a fixed table: a
 * clash makes another agent look announced (one query more), never the
 * other way. */
#ifndef BASTION_JOBSEEN_H
#define BASTION_JOBSEEN_H

#include <stdint.h>

#define JOBSEEN_MAX_AGE_MS	(5 * 60 * 1000)
#define JOBSEEN_SLOTS		65536	/* quiet agents, 4-way */
#define JOBSEEN_WOKE		16384	/* announcements, by hash */

struct jobseen;

struct jobseen *jobseen_new(unsigned slots, unsigned woke, int64_t max_age_ms);
void	jobseen_free(struct jobseen *);

/* The mark to pass to jobseen_quiet_put, read before the database. */
uint64_t jobseen_mark(struct jobseen *);
/* The database said id has nothing to fetch, by a read that began at
 * mark. */
void	jobseen_quiet_put(struct jobseen *, const char *id, uint64_t mark,
	    int64_t now_ms);
/* A mark at which id was quiet and still is, or 0. */
uint64_t jobseen_quiet(struct jobseen *, const char *id, int64_t now_ms);
/* Nothing announced for id since mark (not 0), and still on. */
int	jobseen_since(struct jobseen *, const char *id, uint64_t mark);
/* A job for id (NULL: for anyone) was announced. */
void	jobseen_woke(struct jobseen *, const char *id);
/* Off: nobody is quiet until on again; either way, earlier marks end. */
void	jobseen_enable(struct jobseen *, int on);

/* What answered a long poll: known quiet (jobseen_quiet's or
 * jobseen_since's yes), or the database (jobseen_quiet's no). */
struct jobseen_stats {
	unsigned long long	quiet, asked;
};
void	jobseen_count_quiet(struct jobseen *);
void	jobseen_stats(struct jobseen *, struct jobseen_stats *);

#endif
