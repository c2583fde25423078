/* attention.h — what needs the operator: a level (ok, warning, critical)
 * and its reasons for one node, computed from what its agent sent
 * (DESIGN §14). Pure: no I/O, no locks, so a pass over 20,000 nodes is a
 * loop (bench/attention) and each reason is a row of one table in
 * attention.c — container_exited, container_unhealthy and guest_stopped
 * plug in there as rows once those reports exist. */
#ifndef BASTION_ATTENTION_H
#define BASTION_ATTENTION_H

#include <stdint.h>

#include <jansson.h>

#include "config.h"

enum att_level { ATT_OK = 0, ATT_WARNING = 1, ATT_CRITICAL = 2 };

#define ATT_MAX_REASONS		32
#define ATT_REASON_LEN		24
#define ATT_SUBJECT_LEN		96
#define ATT_MESSAGE_LEN		160

struct att_reason {
	char		reason[ATT_REASON_LEN];	/* "disk_low" */
	char		subject[ATT_SUBJECT_LEN]; /* "/var" ("" for the node) */
	enum att_level	level;
	char		message[ATT_MESSAGE_LEN];
};

struct att_result {
	enum att_level		level;		/* the worst of its reasons */
	int			nreasons;
	struct att_reason	r[ATT_MAX_REASONS];
};

/* What one node's computation reads. heartbeat is borrowed. */
struct att_input {
	int64_t		 now_ms;
	int64_t		 last_seen_ms;
	int64_t		 inventory_ms;	/* 0: never inventoried */
	int64_t		 cert_not_after_ms;
	const json_t	*heartbeat;	/* the last heartbeat's body */
	const char	*version;	/* bastion's; older agents are outdated */
};

/* Thresholds, from [alerts] and [agent] heartbeat_interval. */
struct att_thresholds {
	int	disk_warning, disk_critical;		/* percent used */
	int	memory_warning, memory_critical;	/* percent used */
	int	load_warning, load_critical;		/* 1-minute load per CPU */
	int	temperature_warning, temperature_critical; /* Celsius */
	int	cert_days;
	int	stale_after_s;
};

void	attention_thresholds(const struct config *, struct att_thresholds *);
void	attention_compute(const struct att_input *,
	    const struct att_thresholds *, struct att_result *out);
const char *attention_level_name(enum att_level);
/* The reason names the table knows, NULL-terminated (silences check). */
int	attention_reason_known(const char *);
/* {"level", "reasons": [{reason, subject, level, message}]} */
json_t	*attention_json(const struct att_result *);

#endif
