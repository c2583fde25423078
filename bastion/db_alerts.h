/* db_alerts.h — alerts, silences and deliveries (db_alerts.c), and the
 * agents' health as the attention pass reads it. Same rules as db.h. */
#ifndef BASTION_DB_ALERTS_H
#define BASTION_DB_ALERTS_H

#include <stdint.h>

#include <jansson.h>

#include "audit.h"
#include "db.h"

/* One unrevoked agent as the attention pass needs it; heartbeat is
 * borrowed for the callback's duration only. */
struct db_health_row {
	const char	*agent_id, *mac, *hostname;
	int64_t		 last_seen_ms, inventory_ms, cert_not_after_ms;
	const char	*heartbeat;	/* JSON text */
};

/* Call fn for every unrevoked agent, read on the calling thread's
 * read-only connection (the writer is not held). */
int	db_health_each(struct db *, void (*fn)(const struct db_health_row *,
	    void *), void *arg);

struct db_alert {
	int64_t	id;
	char	agent_id[40];
	char	node[256];
	char	reason[24];
	char	subject[96];
	char	level[12];
	int64_t	opened_ms, notified_ms;
};

/* Every open alert (malloc'd array, *n of them). */
int	db_alert_open_list(struct db *, struct db_alert **out, size_t *n);
/* Open one (a->id set); e, when not NULL, is the audit row written in
 * the same transaction. DB_CONFLICT if it is open already. */
int	db_alert_open(struct db *, struct db_alert *a, const char *message,
	    struct audit_entry *e);
int	db_alert_resolve(struct db *, int64_t id, struct audit_entry *e);
int	db_alert_update(struct db *, int64_t id, const char *level,
	    const char *message);
int	db_alert_notified(struct db *, int64_t id, int64_t ms);
/* state: "open", "resolved" or NULL (all); newest first, at most limit. */
int	db_alert_list(struct db *, const char *state, int limit, json_t **out);

/* A silence of reason ("*": every reason) on agent_id until until_ms,
 * with its audit row. */
int	db_silence_add(struct db *, const char *agent_id, const char *node,
	    const char *reason, int64_t until_ms, const char *actor,
	    int64_t *id);
/* Silences in force at now_ms (JSON array). */
int	db_silence_list(struct db *, int64_t now_ms, json_t **out);

int	db_delivery_add(struct db *, const char *channel, const char *kind,
	    int64_t alert_id, const char *node, const char *result,
	    int attempts, const char *error, int64_t *id);
/* The newest deliveries of channel (NULL: all), at most limit. */
int	db_delivery_list(struct db *, const char *channel, int limit,
	    json_t **out);
/* Per channel: {"NAME": {"ok": n, "error": n, "last": {...}}} */
int	db_delivery_summary(struct db *, json_t **out);

#endif
