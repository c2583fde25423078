/* db_guest.h — the latest guest report of each node
 * (db_guest.c). Same rules as db.h: thread-safe, enum db_rc,
 * out-parameters written only on DB_OK. */
#ifndef BASTION_DB_GUEST_H
#define BASTION_DB_GUEST_H

#include <stdint.h>

#include <jansson.h>

#include "db.h"

/* Replace agent_id's report (JSON text) with this one, received now. */
int	db_guest_report_put(struct db *, const char *agent_id,
	    const char *report);
/*
 * The unrevoked agents with their reports, by host name: an array of
 * {agent_id, hostname, received_ms (0: none yet), report (object or
 * null)}; only agent_id's when it is not NULL (DB_NOTFOUND: no such
 * unrevoked agent).
 */
int	db_guest_reports(struct db *, const char *agent_id, json_t **out);

#endif
