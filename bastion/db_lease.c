/* db_lease.c — dnsmasq's DHCP leases, and the address a known machine
 * learns from its lease. */
#define LOG_SUBSYS "db"
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "db_internal.h"
#include "log.h"

int
db_lease_record(struct db *db, const char *action, const char *mac,
    const char *ip, const char *hostname, int64_t expires)
{
	int rc, del = strcmp(action, "del") == 0;

	if (db_begin(db) == -1)
		return DB_ERR;
	if (del)
		rc = db_run(db, "DELETE FROM leases WHERE mac = ?",
		    DB_TEXT(mac));
	else
		rc = db_run(db, "INSERT INTO leases (mac, ip, hostname,"
		    " expires, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
		    " ON CONFLICT (mac) DO UPDATE SET ip = ?2, hostname = ?3,"
		    " expires = ?4, updated_ms = ?5", DB_TEXT(mac), DB_TEXT(ip),
		    DB_TEXT(hostname), DB_INT(expires), DB_INT(clock_wall_ms()));
	/* A machine we know learns its address from its lease. */
	if (rc != DB_ERR)
		rc = db_run(db, "UPDATE machines SET ip = ?2, hostname ="
		    " CASE WHEN hostname = '' THEN ?3 ELSE hostname END"
		    " WHERE mac = ?1", DB_TEXT(mac), DB_TEXT(del ? "" : ip),
		    DB_TEXT(del ? "" : hostname));
	return db_end(db, 1, rc == DB_ERR ? DB_ERR : DB_OK);
}

static json_t *
lease_row(struct db_st *st)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:o}",
	    "mac", db_col_text(st, 0), "ip", db_col_text(st, 1),
	    "hostname", db_col_text(st, 2),
	    "expires", (json_int_t)db_col_int64(st, 3),
	    "updated_at", db_time_json(db_col_int64(st, 4)));
}

int
db_leases_json(struct db *db, json_t **out)
{
	int rc;

	db_lock(db);
	rc = db_rows_json(db, db_stmt(db, "SELECT mac, ip, hostname, expires,"
	    " updated_ms FROM leases ORDER BY mac"), lease_row, out);
	db_unlock(db);
	return rc;
}

int
db_lease_addr(struct db *db, const char *mac, char ip[64])
{
	char addr[64];
	int64_t expires;
	int rc;

	/* On every boot of a machine that is bound: the thread's read-only
	 * connection, not the writer's lock. */
	rc = db_reader_lease(db, mac, addr, &expires);
	/* expires is unix time from dnsmasq, 0 for an infinite lease. */
	if (rc == DB_OK && (addr[0] == '\0' ||
	    (expires != 0 && expires <= clock_wall_ms() / 1000)))
		rc = DB_NOTFOUND;
	if (rc == DB_OK)
		memcpy(ip, addr, sizeof addr);
	return rc;
}
