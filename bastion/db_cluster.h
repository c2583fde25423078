/* db_cluster.h — the bastions that share a database (DESIGN §16): the
 * keys they must all have, and who is there (db_cluster.c). Same rules
 * as db.h: thread-safe, enum db_rc, out-parameters written only on
 * DB_OK or where said. */
#ifndef BASTION_DB_CLUSTER_H
#define BASTION_DB_CLUSTER_H

#include <stdint.h>

#include <jansson.h>

#include "db.h"

/* The CA fingerprint and job key id of the database: the first bastion
 * records its own; DB_CONFLICT when they are not ca_fp and key_id, with
 * the database's in db_ca_fp and db_key_id. */
int	db_cluster_keys(struct db *, const char *ca_fp, const char *key_id,
	    char *db_ca_fp, size_t ca_len, char *db_key_id, size_t key_len);
/* This bastion (its control URL) is up, started at started_ms, with
 * dnsmasq for interface. */
int	db_cluster_seen(struct db *, const char *url, const char *version,
	    const char *interface, int64_t started_ms, int64_t now_ms);
/* PostgreSQL: the session (server process id) of the bastion at url that
 * competes for the DHCP lead (db_pg_listen.c). DB_NOTFOUND while it has
 * no row yet. */
int	db_cluster_dhcp_session(struct db *, const char *url, int64_t session);
/* Every bastion seen: [{url, version, started_at, last_seen, up,
 * dhcp_interface, dhcp_leader}] by URL, up when it was seen at or after
 * up_after_ms; dhcp_leader while it runs dnsmasq for dhcp_interface (on
 * SQLite: while it is up). */
int	db_cluster_json(struct db *, int64_t up_after_ms, json_t **out);

#endif
