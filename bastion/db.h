/* db.h — all persistent state, grouped by the file that implements it
 * (db_agent.h and db_auth.h hold the agents' and the operators'). Nothing
 * outside db*.c speaks SQL, so another backend can replace SQLite without
 * touching handlers. Every function is safe to call from any thread and
 * writes its out-parameters only when it returns DB_OK (the exception is
 * said where it is made). */
#ifndef BASTION_DB_H
#define BASTION_DB_H

#include <stdint.h>

#include <jansson.h>

#include "machine.h"

enum db_rc {
	DB_OK = 0,
	DB_ERR = -1,
	DB_NOTFOUND = 1,
	DB_CONFLICT = 2,	/* state changed under us / not allowed */
	DB_DENIED = 3,		/* refused by a rule (said where it is made) */
};

struct db;

/* What a network boot told us about the machine (from /dispatch). */
struct boot_info {
	char	mac[MAC_STRLEN];
	char	uuid[64];
	char	serial[128];
	char	arch[16];
	char	platform[16];
	char	ip[64];
};

/* --- db.c ------------------------------------------------------------- */

/* path: an SQLite file; its directory is the state directory (where
 * audit.head is kept). db_open_url: an SQLite file or a postgresql://
 * (postgres://) url, which db_is_url tells, with the state directory. */
int	db_open(const char *path, struct db **out);
int	db_open_url(const char *url, const char *statedir, struct db **out);
int	db_is_url(const char *path);
void	db_close(struct db *);
int	db_schema_version(struct db *);
/* 1 while the database cannot be reached (a PostgreSQL connection was
 * lost and is being re-established with a backoff), else 0. */
int	db_unavailable(struct db *);
/* Several bastions on one PostgreSQL database (DESIGN §16): tell every
 * bastion, this one included, that agent_id has a job (its long polls
 * answer), and hear it: fn(agent_id, arg) for each, fn(NULL, arg) when
 * some may have been missed (wake every waiter). The machine caches
 * follow the other bastions' changes too. On SQLite (one bastion) these
 * do nothing. */
int	db_wake_agent(struct db *, const char *agent_id);
/* Whether other bastions may share this database (PostgreSQL). */
int	db_shared(struct db *);
/*
 * A candidate for the DHCP lead (DESIGN §16): on a shared database one
 * bastion per provisioning interface runs dnsmasq, the one whose
 * listening connection holds a session advisory lock on the interface's
 * name; the others try again every DB_DHCP_RETRY_MS. fn(1, interface,
 * arg) when this bastion took the lead; fn(0, interface, arg) as soon as
 * it lost it — its listening connection broke, and the lock with its
 * session — before anything else (it reconnects and competes again
 * after). fn runs on the listener's thread, never after db_listen_stop.
 * url is this bastion's (its bastions row, db_cluster.h, records the
 * session for status).
 */
#define DB_DHCP_RETRY_MS	1000
struct db_dhcp_lead {
	const char	*interface;
	const char	*url;
	void		(*fn)(int leading, const char *interface, void *arg);
	void		*arg;
};
/* lead: NULL, or a candidate (copied) — ignored on SQLite, where the one
 * bastion leads. */
int	db_listen_start(struct db *, void (*fn)(const char *agent_id, void *),
	    void *arg, const struct db_dhcp_lead *lead);
void	db_listen_stop(struct db *);
/*
 * Interactive streams live in the memory of the bastion that made them
 * (stream.h): when the agent could not reach one, the bastion that hears
 * of it (the job's result) tells every bastion, this one included, with
 * "s:SID AGENT WHY" (WHY at most DB_STREAM_WHY_MAX bytes, cut), and the
 * holder ends it. fn(sid, agent_id, why, arg) for each heard; set before
 * db_listen_start. On SQLite: nothing sent or heard (0).
 */
#define DB_STREAM_WHY_MAX	200
void	db_listen_streams(struct db *, void (*fn)(const char *sid,
	    const char *agent_id, const char *why, void *), void *arg);
int	db_notify_stream(struct db *, const char *sid, const char *agent_id,
	    const char *why);


/* --- db_machine.c ----------------------------------------------------- */

/* Record a network boot: an unknown MAC becomes a machine in state
 * discovering (with an event); a known one has its boot data refreshed.
 * *created is set to 1 when the machine is new. */
int	db_machine_boot(struct db *, const struct boot_info *,
	    struct machine *out, int *created);
int	db_machine_get(struct db *, const char *mac, struct machine *out);
/* db_machine_get for the hot path (/dispatch): a read beside the writer,
 * never older than the last committed change. */
int	db_machine_lookup(struct db *, const char *mac, struct machine *out);
/* A discovering machine was sent the discovery image at addr: bind it
 * there (binding.h) if it is bound nowhere yet or already there, or
 * anyway when rebind (its DHCP lease moved). DB_DENIED when it is bound
 * to another address or no longer discovering. */
int	db_machine_discovery_bind(struct db *, const char *mac,
	    const char *addr, int rebind);
/* Move mac to state `to`, only from one of the states in the `from` mask
 * (bit per enum machine_state; 0 = from any). Writes an event. */
int	db_machine_transition(struct db *, const char *mac, unsigned from,
	    enum machine_state to, const char *source, const char *message);
int	db_machine_delete(struct db *, const char *mac);
/* JSON array of machine objects, optionally filtered by state (-1 = all). */
int	db_machine_list(struct db *, int state, json_t **out);
/* One machine as JSON, with its hardware report under "hardware". */
int	db_machine_json(struct db *, const char *mac, json_t **out);

int	db_event_add(struct db *, const char *mac, const char *source,
	    const char *message, int progress);
/* Events with id > after_id, oldest first, at most limit. */
int	db_events_json(struct db *, const char *mac, int64_t after_id, int limit,
	    json_t **out);

/* Machines per state, for /metrics. */
int	db_count_by_state(struct db *, long counts[MS_NSTATES]);
/* Heartbeats written behind (db_heartbeat.c), since the start. */
struct db_hb_stats {
	unsigned long long	 acked;		/* answered DB_OK */
	unsigned long long	 written;	/* rows written (after coalescing) */
	/* Heartbeats in those rows: written, or replaced before the write
	 * by a newer one of the same agent that was. */
	unsigned long long	 covered;
	unsigned long long	 batches;	/* transactions committed */
	size_t			 pending;	/* waiting now, one per agent */
	/* The certificate checks answered from the cache, and not. */
	unsigned long long	 cert_cache_hits, cert_cache_misses;
	/* Long polls: their agent known to have no job (no query), and
	 * not (asked the database; jobseen.h). */
	unsigned long long	 polls_quiet, polls_asked;
};
void	db_heartbeat_stats(struct db *, struct db_hb_stats *);

/* --- db_hardware.c ---------------------------------------------------- */

/* Store a validated discovery report for mac and move it to discovered.
 * The machine must exist (it booted) and be discovering (DB_CONFLICT).
 * summary is a short description of what changed since the previous
 * report (NULL for the first). */
int	db_hardware_store(struct db *, const char *mac, const json_t *report,
	    const char *summary);
/* DB_CONFLICT when a NIC MAC of report (or mac itself) belongs to another
 * machine: one that network-booted with it, or whose report lists it
 * (mac itself excepted: a report cannot take a machine's own boot MAC).
 * other and nic then name that machine and the MAC (written only with
 * DB_CONFLICT); DB_OK when none. */
int	db_hardware_conflict(struct db *, const char *mac, const json_t *report,
	    char other[MAC_STRLEN], char nic[MAC_STRLEN]);
/* The stored report, or DB_NOTFOUND. */
int	db_hardware_get(struct db *, const char *mac, json_t **out);

/* --- db_lease.c ------------------------------------------------------- */

/* dnsmasq lease hook: action is add, old or del. */
int	db_lease_record(struct db *, const char *action, const char *mac,
	    const char *ip, const char *hostname, int64_t expires);
int	db_leases_json(struct db *, json_t **out);
/* The address of mac's current lease (not expired), DB_NOTFOUND if
 * it has none. */
int	db_lease_addr(struct db *, const char *mac, char ip[64]);

/* --- db_install.c ----------------------------------------------------- */

/* An install: what was asked for and how far it got. */
struct install {
	int64_t	id;
	char	mac[MAC_STRLEN];
	char	hostname[254];
	char	role[32];
	char	os[32];
	char	disk[64];
	char	ssh_keys[16384];	/* JSON array */
	int	reprovision;
	char	key_hash[65];		/* SHA-256 of the current install key */
	char	bound_addr[64];		/* the address it is bound to
					 * (binding.h), "" before its first
					 * installer boot */
	int	token_boot;		/* the boot whose kickstart carried
					 * the join token, 0: none yet */
	char	status[16];		/* queued installing done failed */
	int	boots;			/* network boots of this install */
	char	stage[16];
	int	progress;
	char	message[256];
};

/* Queue an install for mac (only from the states in the `from` mask; the
 * machine's hostname becomes in->hostname) and move it to queued. */
int	db_install_queue(struct db *, const struct install *in, unsigned from,
	    const char *event);
/* The machine's current install. */
int	db_install_current(struct db *, const char *mac, struct install *out);
/* A network boot of a queued/installing machine from addr: count it and
 * store the hash of the key the installer now gets. Past max_boots the
 * install and the machine are failed instead (*failed = 1). The install
 * is bound to addr (binding.h) on its first boot; a boot from another
 * address is DB_DENIED and changes nothing, unless rebind (its DHCP
 * lease moved there). */
int	db_install_boot(struct db *, const char *mac, const char *key_hash,
	    const char *addr, int rebind, int max_boots, int *boots,
	    int *failed);
/* The installer fetched its kickstart: queued -> installing. */
int	db_install_started(struct db *, const char *mac);
/*
 * The kickstart of installer boot `boot` of install `install_id` is
 * sent, carrying a new join token secret (token_hash): in one
 * transaction the install's token takes that secret and keeps its
 * expiry (fixed when the install was queued), and the machine is
 * installing. Once per installer boot: DB_CONFLICT when this boot's
 * kickstart was sent already or the boot is not the install's current
 * one; DB_DENIED when the install's token was used, revoked or expired.
 */
int	db_install_kickstart(struct db *, const char *mac, int64_t install_id,
	    int boot, const char *token_hash);
/* A progress report. done -> installed, error -> failed. */
int	db_install_progress(struct db *, const char *mac, const char *stage,
	    int percent, const char *message);

#endif
