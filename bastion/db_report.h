/* db_report.h — the latest report of each node, one table per kind:
 * Docker containers (container_reports, DESIGN §12) and guests
 * (guest_reports, DESIGN §13) (db_report.c). Same rules as db.h:
 * thread-safe, enum db_rc, out-parameters written only on DB_OK. */
#ifndef BASTION_DB_REPORT_H
#define BASTION_DB_REPORT_H

#include <stdint.h>

#include <jansson.h>

#include "db.h"

enum db_report_kind {
	DB_REPORT_CONTAINERS,
	DB_REPORT_GUESTS,
};

/* Replace agent_id's report of that kind (JSON text) with this one,
 * received now. */
int	db_report_put(struct db *, enum db_report_kind, const char *agent_id,
	    const char *report);
/*
 * The unrevoked agents with their reports of that kind, by host name: an
 * array of {agent_id, hostname, received_ms (0: none yet), report
 * (object or null)}; only agent_id's when it is not NULL (DB_NOTFOUND:
 * no such unrevoked agent).
 */
int	db_reports(struct db *, enum db_report_kind, const char *agent_id,
	    json_t **out);

#endif
