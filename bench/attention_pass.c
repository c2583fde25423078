/* attention_pass.c — bench/attention's pass timer: NODES agents with the
 * heartbeat agentd sends (health.c), some of them with full disks, hot
 * sensors or failing SMART, in a real bastion database (migrations from
 * db_open); then the attention pass as alerts.c makes it — the scan on a
 * read-only connection (db_health_each), each heartbeat parsed and put
 * through the reason table — timed per pass, beside the scan alone (the
 * reference: what reading the rows costs).
 *
 *   attention_pass DIR [NODES] [PASSES]
 * prints "nodes N scan_ms S pass_ms P ratio P/S not_ok K".
 * The rows are written with SQLite directly: a bench's fixture, not
 * bastion code (which speaks SQL only in db*.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "attention.h"
#include "db.h"
#include "db_alerts.h"

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct acc {
	struct att_thresholds	t;
	long long		now, not_ok, rows;
	int			compute;
};

static void
on_row(const struct db_health_row *r, void *arg)
{
	struct acc *a = arg;
	struct att_input in;
	struct att_result res;
	json_t *hb;

	a->rows++;
	if (!a->compute)
		return;
	hb = json_loads(r->heartbeat, 0, NULL);
	in.now_ms = a->now;
	in.last_seen_ms = r->last_seen_ms;
	in.inventory_ms = r->inventory_ms;
	in.cert_not_after_ms = r->cert_not_after_ms;
	in.heartbeat = hb;
	in.version = "0.1.0";
	attention_compute(&in, &a->t, &res);
	if (res.level != ATT_OK)
		a->not_ok++;
	json_decref(hb);
}

int
main(int argc, char **argv)
{
	char path[4096], hb[4096], id[40];
	struct db *db;
	sqlite3 *h;
	sqlite3_stmt *st;
	struct acc a;
	long nodes = argc > 2 ? strtol(argv[2], NULL, 10) : 20000;
	int passes = argc > 3 ? atoi(argv[3]) : 5, i, p;
	long long now = (long long)time(NULL) * 1000;
	double t0, scan = 0, pass = 0;

	if (argc < 2 || nodes < 1 || passes < 1) {
		fprintf(stderr, "usage: attention_pass DIR [NODES] [PASSES]\n");
		return 2;
	}
	snprintf(path, sizeof path, "%s/bastion.db", argv[1]);
	if (db_open(path, &db) == -1)
		return 1;
	if (sqlite3_open(path, &h) != SQLITE_OK)
		return 1;
	sqlite3_exec(h, "BEGIN", NULL, NULL, NULL);
	sqlite3_prepare_v2(h, "INSERT INTO agents (id, mac, hostname,"
	    " enrolled_ms, last_seen_ms, heartbeat, inventory_ms,"
	    " cert_not_after_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL);
	for (i = 0; i < nodes; i++) {
		/* 1 in 50 with a full /var, 1 in 200 hot, 1 in 1000 failing. */
		snprintf(hb, sizeof hb, "{\"version\":\"0.1.0\",\"load\":[0.4,0.3,"
		    "0.3],\"cpus\":8,\"memory\":{\"total_bytes\":16777216000,"
		    "\"available_bytes\":9663676416},\"mounts\":[{\"mount\":\"/\","
		    "\"size_bytes\":53687091200,\"free_bytes\":21474836480},"
		    "{\"mount\":\"/var\",\"size_bytes\":10737418240,\"free_bytes\":"
		    "%s},{\"mount\":\"/boot\",\"size_bytes\":1063256064,"
		    "\"free_bytes\":700000000}],\"temperatures\":[{\"sensor\":"
		    "\"coretemp/Package id 0\",\"celsius\":%s,\"critical_celsius\":"
		    "100.0},{\"sensor\":\"coretemp/Core 0\",\"celsius\":50.0},"
		    "{\"sensor\":\"nvme/Composite\",\"celsius\":41.85}],\"smart\":"
		    "[{\"device\":\"sda\",\"passed\":%s,\"celsius\":34},"
		    "{\"device\":\"nvme0n1\",\"passed\":true,\"celsius\":41}]}",
		    i % 50 == 0 ? "107374182" : "5368709120",
		    i % 200 == 0 ? "93.0" : "52.0", i % 1000 == 0 ? "false" : "true");
		snprintf(id, sizeof id, "a%020d", i);
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, "52:54:00:00:00:00", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, now - 86400000);
		sqlite3_bind_int64(st, 5, now - 1000);
		sqlite3_bind_text(st, 6, hb, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 7, now - 3600000);
		sqlite3_bind_int64(st, 8, now + 20LL * 86400000);
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(h);

	memset(&a, 0, sizeof a);
	a.t = (struct att_thresholds){ 85, 95, 90, 97, 2, 4, 80, 90, 7, 90 };
	a.now = now;
	for (p = 0; p < passes; p++) {
		a.compute = 0;
		t0 = now_ms();
		db_health_each(db, on_row, &a);
		scan += now_ms() - t0;
		a.compute = 1;
		a.not_ok = 0;
		t0 = now_ms();
		db_health_each(db, on_row, &a);
		pass += now_ms() - t0;
	}
	printf("nodes %ld scan_ms %.1f pass_ms %.1f ratio %.2f not_ok %lld\n",
	    nodes, scan / passes, pass / passes, pass / scan, a.not_ok);
	db_close(db);
	return 0;
}
