/* db_hardware.c — questions about stored hardware reports. */
#define LOG_SUBSYS "db"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "log.h"

int
db_hardware_conflict(struct db *db, const char *mac, const json_t *report,
    char other[MAC_STRLEN], char nic[MAC_STRLEN])
{
	sqlite3_stmt *st = NULL;
	char *text;
	int rc = DB_ERR;

	if ((text = json_dumps(report, JSON_COMPACT)) == NULL)
		return DB_ERR;
	db_lock(db);
	/* A NIC of this report that is another machine (it network-booted
	 * with that MAC), or that another machine's report lists. */
	st = db_prepare(db,
	    "WITH mine(nic) AS (SELECT json_extract(value, '$.mac')"
	    "  FROM json_each(?2, '$.nics') UNION SELECT ?1)"
	    " SELECT m.mac, m.mac FROM machines m, mine"
	    "  WHERE m.mac = mine.nic AND m.mac != ?1"
	    " UNION ALL"
	    " SELECT h.mac, json_extract(n.value, '$.mac')"
	    "  FROM hardware h, json_each(h.report, '$.nics') n, mine"
	    "  WHERE h.mac != ?1 AND json_extract(n.value, '$.mac') = mine.nic"
	    " LIMIT 1");
	if (st == NULL)
		goto out;
	db_bind_text(st, 1, mac);
	db_bind_text(st, 2, text);
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		snprintf(other, MAC_STRLEN, "%s", db_col_text(st, 0));
		snprintf(nic, MAC_STRLEN, "%s", db_col_text(st, 1));
		rc = DB_CONFLICT;
		break;
	case SQLITE_DONE:
		rc = DB_OK;
		break;
	default:
		log_warnx("hardware conflict: %s", sqlite3_errmsg(db->h));
	}
out:
	sqlite3_finalize(st);
	db_unlock(db);
	free(text);
	return rc;
}
