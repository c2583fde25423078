/* db_container.h — the latest container report of each node
 * (db_container.c). Same rules as db.h: thread-safe, enum db_rc,
 * out-parameters written only on DB_OK. */
#ifndef BASTION_DB_CONTAINER_H
#define BASTION_DB_CONTAINER_H

#include <stdint.h>

#include <jansson.h>

#include "db.h"

/* Replace agent_id's report (JSON text) with this one, received now. */
int	db_container_report_put(struct db *, const char *agent_id,
	    const char *report);
/*
 * The unrevoked agents with their reports, by host name: an array of
 * {agent_id, hostname, received_ms (0: none yet), report (object or
 * null)}; only agent_id's when it is not NULL (DB_NOTFOUND: no such
 * unrevoked agent).
 */
int	db_container_reports(struct db *, const char *agent_id, json_t **out);

#endif
