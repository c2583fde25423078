/* routes_api.c — the operator API on the control listener and the admin
 * socket: machines, events, health, metrics, config, leases, doctor. */
#define LOG_SUBSYS "api"
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alerts.h"
#include "ca.h"
#include "clock.h"
#include "cluster.h"
#include "db.h"
#include "db_cluster.h"
#include "dnsmasq.h"
#include "privsep.h"
#include "http.h"
#include "lease.h"
#include "log.h"
#include "path.h"
#include "routes.h"
#include "mac.h"

#define L_API (L_CONTROL | L_ADMIN)

int
route_mac_param(struct request *r, char out[MAC_STRLEN])
{
	if (mac_normalize(r->params[0], out) == -1) {
		http_reply_error(r, 400, "bad_mac", "'%.40s' is not a MAC address",
		    r->params[0]);
		return -1;
	}
	return 0;
}

static void
reply_db_error(struct request *r, int rc, const char *mac)
{
	if (rc == DB_NOTFOUND)
		http_reply_error(r, 404, "not_found", "no machine %s", mac);
	else
		http_reply_error(r, 500, "internal", "database error");
}

/* Rows of machines being installed carry their install's progress, so a
 * list (the panel's machines page) needs no request per machine. */
static int
add_progress(struct db *db, json_t *list)
{
	struct install in;
	const char *st;
	json_t *m;
	size_t i;
	int rc;

	json_array_foreach(list, i, m) {
		st = json_string_value(json_object_get(m, "state"));
		if (st == NULL || (strcmp(st, "queued") != 0 &&
		    strcmp(st, "installing") != 0))
			continue;
		rc = db_install_current(db, json_string_value(json_object_get(m,
		    "mac")), &in);
		if (rc == DB_NOTFOUND)	/* forgotten since the list was read */
			continue;
		if (rc != DB_OK)
			return -1;
		json_object_set_new(m, "progress", json_pack("{s:s, s:i, s:s}",
		    "stage", in.stage, "percent", in.progress,
		    "message", in.message));
	}
	return 0;
}

static void
get_machines(struct request *r)
{
	const char *state = http_query(r, "state");
	json_t *list = NULL;
	int s = -1;

	if (state && *state && (s = machine_state_from_name(state)) < 0) {
		http_reply_error(r, 400, "bad_state", "unknown state '%.32s'", state);
		return;
	}
	if (db_machine_list(r->app->db, s, &list) != DB_OK ||
	    add_progress(r->app->db, list) == -1) {
		json_decref(list);
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	alerts_annotate_machines(list);
	http_reply_json(r, 200, list);
}

static void
get_machine(struct request *r)
{
	char mac[MAC_STRLEN];
	json_t *m;
	int rc;

	if (route_mac_param(r, mac) == -1)
		return;
	if ((rc = db_machine_json(r->app->db, mac, &m)) != DB_OK) {
		reply_db_error(r, rc, mac);
		return;
	}
	http_reply_json(r, 200, m);
}

static void
delete_machine(struct request *r)
{
	char mac[MAC_STRLEN];
	int rc;

	if (route_mac_param(r, mac) == -1)
		return;
	if ((rc = db_machine_delete(r->app->db, mac)) != DB_OK) {
		reply_db_error(r, rc, mac);
		return;
	}
	log_info("req %s: machine %s forgotten by %s", r->id, mac, r->client);
	http_reply_json(r, 200, json_pack("{s:s}", "forgotten", mac));
}

/* Non-negative integer query value within [0, max], or def when absent. */
static int
query_int(struct request *r, const char *key, long long def, long long max,
    long long *out)
{
	const char *v = http_query(r, key);
	char *end;
	long long n;

	if (v == NULL || *v == '\0') {
		*out = def;
		return 0;
	}
	errno = 0;
	n = strtoll(v, &end, 10);
	if (*end || errno || n < 0 || n > max) {
		http_reply_error(r, 400, "bad_request", "%s must be an integer "
		    "0..%lld", key, max);
		return -1;
	}
	*out = n;
	return 0;
}

static void
get_events(struct request *r)
{
	char mac[MAC_STRLEN];
	struct machine m;
	long long after, limit;
	json_t *ev;
	int rc;

	if (route_mac_param(r, mac) == -1)
		return;
	if (query_int(r, "after", 0, INT64_MAX, &after) == -1 ||
	    query_int(r, "limit", 100, 1000, &limit) == -1)
		return;
	if ((rc = db_machine_get(r->app->db, mac, &m)) != DB_OK) {
		reply_db_error(r, rc, mac);
		return;
	}
	if (db_events_json(r->app->db, mac, after, (int)limit, &ev) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	http_reply_json(r, 200, ev);
}

static void
get_healthz(struct request *r)
{
	http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void
get_readyz(struct request *r)
{
	json_t *dq = privsep_dnsmasq_status(r->app);
	int db_ok = db_schema_version(r->app->db) > 0;
	/* Standing by: another bastion of the database leads DHCP. */
	int dq_ok = json_is_true(json_object_get(dq, "running")) ||
	    json_is_true(json_object_get(dq, "standby"));
	int ok = atomic_load(&r->app->ready) && db_ok && dq_ok;

	http_reply_json(r, ok ? 200 : 503, json_pack("{s:b, s:b, s:b, s:o}",
	    "ready", ok, "database", db_ok, "listeners",
	    atomic_load(&r->app->ready), "dnsmasq", dq));
}

static void
get_metrics(struct request *r)
{
	static const char *const lnames[] = { "boot", "control", "admin" };
	struct metrics *mt = &r->app->metrics;
	long counts[MS_NSTATES];
	struct db_hb_stats hs;
	struct buf b;
	json_t *dq;
	unsigned long restarts;
	int i, j, rc = 0;

	if (db_count_by_state(r->app->db, counts) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	/* dnsmasq is the parent's: its count comes with its status. */
	dq = privsep_dnsmasq_status(r->app);
	restarts = (unsigned long)json_integer_value(json_object_get(dq,
	    "restarts"));
	json_decref(dq);
	buf_init(&b, 64 * 1024);
	rc |= buf_adds(&b, "# HELP bastion_machines Machines by lifecycle state.\n"
	    "# TYPE bastion_machines gauge\n");
	for (i = 0; i < MS_NSTATES; i++)
		rc |= buf_printf(&b, "bastion_machines{state=\"%s\"} %ld\n",
		    machine_state_name(i), counts[i]);
	rc |= buf_adds(&b, "# HELP bastion_http_requests_total Requests answered, by "
	    "listener and status class.\n"
	    "# TYPE bastion_http_requests_total counter\n");
	for (i = 0; i < 3; i++)
		for (j = 1; j < 6; j++)
			rc |= buf_printf(&b, "bastion_http_requests_total{listener=\"%s\","
			    "code=\"%dxx\"} %lu\n", lnames[i], j,
			    atomic_load(&mt->requests[i][j]));
	rc |= buf_printf(&b, "# HELP bastion_dispatch_total /dispatch answers.\n"
	    "# TYPE bastion_dispatch_total counter\n"
	    "bastion_dispatch_total %lu\n"
	    "# HELP bastion_discover_reports_total Discovery reports stored.\n"
	    "# TYPE bastion_discover_reports_total counter\n"
	    "bastion_discover_reports_total %lu\n"
	    "# HELP bastion_dnsmasq_restarts_total Times dnsmasq was restarted "
	    "after it died.\n"
	    "# TYPE bastion_dnsmasq_restarts_total counter\n"
	    "bastion_dnsmasq_restarts_total %lu\n"
	    "# HELP bastion_start_time_seconds When this bastion started.\n"
	    "# TYPE bastion_start_time_seconds gauge\n"
	    "bastion_start_time_seconds %lld\n",
	    atomic_load(&mt->dispatches), atomic_load(&mt->discover_reports),
	    restarts, (long long)r->app->started);
	rc |= buf_adds(&b, "# HELP bastion_http_connections Connections open now, by "
	    "listener.\n"
	    "# TYPE bastion_http_connections gauge\n");
	for (i = 0; i < 3; i++)
		rc |= buf_printf(&b, "bastion_http_connections{listener=\"%s\"} %lu\n",
		    lnames[i], atomic_load(&mt->connections[i]));
	rc |= buf_adds(&b, "# HELP bastion_http_connections_refused_total Connections "
	    "closed at accept: over max_connections or "
	    "max_connections_per_address.\n"
	    "# TYPE bastion_http_connections_refused_total counter\n");
	for (i = 0; i < 3; i++)
		rc |= buf_printf(&b, "bastion_http_connections_refused_total{listener="
		    "\"%s\"} %lu\n", lnames[i], atomic_load(&mt->refused[i]));
	rc |= buf_printf(&b, "# HELP bastion_http_waiting Requests waiting without a "
	    "thread (agents' long polls).\n"
	    "# TYPE bastion_http_waiting gauge\n"
	    "bastion_http_waiting %lu\n", atomic_load(&mt->waiting));
	db_heartbeat_stats(r->app->db, &hs);
	rc |= buf_printf(&b, "# HELP bastion_heartbeats_total Heartbeats accepted.\n"
	    "# TYPE bastion_heartbeats_total counter\n"
	    "bastion_heartbeats_total %llu\n"
	    "# HELP bastion_heartbeat_rows_written_total Agents' rows written by "
	    "heartbeats (one per agent per batch).\n"
	    "# TYPE bastion_heartbeat_rows_written_total counter\n"
	    "bastion_heartbeat_rows_written_total %llu\n"
	    "# HELP bastion_heartbeats_persisted_total Heartbeats accepted whose "
	    "agent's row was written with them or with a newer heartbeat of "
	    "the same agent that replaced them before the write.\n"
	    "# TYPE bastion_heartbeats_persisted_total counter\n"
	    "bastion_heartbeats_persisted_total %llu\n"
	    "# HELP bastion_heartbeat_batches_total Transactions that wrote "
	    "heartbeats.\n"
	    "# TYPE bastion_heartbeat_batches_total counter\n"
	    "bastion_heartbeat_batches_total %llu\n"
	    "# HELP bastion_heartbeats_pending Heartbeats accepted, not yet "
	    "written (one per agent).\n"
	    "# TYPE bastion_heartbeats_pending gauge\n"
	    "bastion_heartbeats_pending %zu\n"
	    "# HELP bastion_agent_cert_cache_hits_total Agent certificate checks "
	    "answered from the cache.\n"
	    "# TYPE bastion_agent_cert_cache_hits_total counter\n"
	    "bastion_agent_cert_cache_hits_total %llu\n"
	    "# HELP bastion_agent_cert_cache_misses_total Agent certificate "
	    "checks that asked the database.\n"
	    "# TYPE bastion_agent_cert_cache_misses_total counter\n"
	    "bastion_agent_cert_cache_misses_total %llu\n"
	    "# HELP bastion_agent_polls_quiet_total Long polls' job checks (at "
	    "the start, after listing, at the end) answered without the "
	    "database: the agent was known to have no job.\n"
	    "# TYPE bastion_agent_polls_quiet_total counter\n"
	    "bastion_agent_polls_quiet_total %llu\n"
	    "# HELP bastion_agent_polls_asked_total Long polls' job checks that "
	    "asked the database.\n"
	    "# TYPE bastion_agent_polls_asked_total counter\n"
	    "bastion_agent_polls_asked_total %llu\n", hs.acked,
	    hs.written, hs.covered, hs.batches, hs.pending, hs.cert_cache_hits,
	    hs.cert_cache_misses, hs.polls_quiet, hs.polls_asked);
	if (rc != 0)
		http_reply_error(r, 500, "internal", "the metrics do not fit %zu "
		    "KiB", b.max / 1024);
	else
		http_reply_text(r, 200, "text/plain; version=0.0.4", b.data,
		    b.len);
	buf_free(&b);
}

static void
get_config(struct request *r)
{
	const struct config *c = bastion_config_acquire(r->app);
	json_t *values = json_object();
	const char *key;
	struct buf v;
	size_t i;

	buf_init(&v, 8192);
	for (i = 0; (key = config_key_at(i)) != NULL; i++) {
		char k[64];

		snprintf(k, sizeof k, "%s", key);
		buf_reset(&v);
		if (config_get(c, k, &v) == 0)
			json_object_set_new(values, k, json_string(v.data ? v.data : ""));
	}
	buf_free(&v);
	http_reply_json(r, 200, json_pack("{s:s, s:o}", "path", c->path,
	    "values", values));
	bastion_config_release(r->app);
}

/* Keys whose new value only takes effect after a restart. */
static int
needs_restart(const char *key)
{
	return strcmp(key, "boot.listen") == 0 ||
	    strcmp(key, "control.listen") == 0 ||
	    strcmp(key, "control.names") == 0 ||
	    strcmp(key, "control.max_connections") == 0 ||
	    strcmp(key, "control.max_connections_per_address") == 0 ||
	    strcmp(key, "boot.max_connections_per_address") == 0 ||
	    strcmp(key, "bastion.state_dir") == 0 ||
	    strcmp(key, "bastion.user") == 0 ||
	    strcmp(key, "bastion.share_dir") == 0;
}

static void
put_config(struct request *r)
{
	const char *key = r->params[0];
	json_t *body;
	const json_t *value;
	struct buf errors;

	if ((body = http_body_json(r)) == NULL)
		return;
	value = json_object_get(body, "value");
	if (!json_is_string(value)) {
		http_reply_error(r, 400, "bad_request",
		    "the body must be {\"value\": \"...\"}");
		json_decref(body);
		return;
	}
	AUDIT_SET(&r->audit, detail, "%s = %s", key, json_string_value(value));
	buf_init(&errors, 8192);
	/* The parent validates and writes it (this process cannot), then
	 * reloads, exactly as for an operator's kill -HUP. */
	if (privsep_config_set(r->app, key, json_string_value(value), &errors)
	    == -1) {
		size_t n = errors.len;

		while (n && errors.data[n - 1] == '\n')
			errors.data[--n] = '\0';
		http_reply_error(r, strncmp(errors.data ? errors.data : "",
		    "unknown key", 11) == 0 ? 404 : 422, "bad_config", "%s",
		    errors.data ? errors.data : "invalid");
		goto out;
	}
	log_info("req %s: %s set %s = %s", r->id, r->client, key,
	    json_string_value(value));
	http_reply_json(r, 200, json_pack("{s:s, s:O, s:b}", "key", key,
	    "value", value, "restart_required", needs_restart(key)));
out:
	buf_free(&errors);
	json_decref(body);
}

static void
post_lease(struct request *r)
{
	struct lease l;
	const char *why;
	json_t *body;

	if ((body = http_body_json(r)) == NULL)
		return;
	if (lease_from_json(body, &l, &why) == -1) {
		http_reply_error(r, 422, "bad_lease", "%s", why);
		json_decref(body);
		return;
	}
	json_decref(body);
	AUDIT_SET(&r->audit, target, "%s", l.mac);
	AUDIT_SET(&r->audit, detail, "%s %s%s%s", l.action, l.ip,
	    l.hostname[0] ? " " : "", l.hostname);
	if (db_lease_record(r->app->db, l.action, l.mac, l.ip, l.hostname,
	    l.expires) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	log_info("lease %s %s %s%s%s", l.action, l.mac, l.ip,
	    l.hostname[0] ? " " : "", l.hostname);
	http_reply_json(r, 200, lease_to_json(&l));
}

static void
get_leases(struct request *r)
{
	json_t *list;

	if (db_leases_json(r->app->db, &list) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	http_reply_json(r, 200, list);
}

/* The bastions of this database (DESIGN §16): up while they said so in
 * the last three intervals. */
static void
get_cluster(struct request *r)
{
	char fp[CA_FINGERPRINT_LEN];
	json_t *list;

	if (db_cluster_json(r->app->db, clock_wall_ms() - 3 * CLUSTER_SEEN_S *
	    1000, &list) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	/* What `cluster join --ca-sha256` pins. */
	ca_fingerprint(r->app->ca, fp);
	http_reply_json(r, 200, json_pack("{s:s, s:s, s:o}", "database",
	    db_shared(r->app->db) ? "postgresql" : "sqlite", "ca_fingerprint",
	    fp, "bastions", list));
}

static void
add_check(json_t *checks, const char *name, const char *status,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
add_check(json_t *checks, const char *name, const char *status,
    const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	json_array_append_new(checks, json_pack("{s:s, s:s, s:s}", "name", name,
	    "status", status, "detail", detail));
}

static void
check_file(json_t *checks, const char *name, const char *dir,
    const char *file, const char *missing_status)
{
	char path[PATH_MAX];
	struct stat st;

	if (path_join(path, sizeof path, dir, file) == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
		add_check(checks, name, "ok", "%s (%lld bytes)", path,
		    (long long)st.st_size);
	else
		add_check(checks, name, missing_status, "%s is missing", path);
}

/*
 * iPXE waits about 13 s for an IPv6 router advertisement at every network
 * boot (LAB.md) unless one comes: in full DHCP mode dnsmasq sends them,
 * but only for a prefix the interface has.
 */
static void
check_ipv6_ra(json_t *checks, const struct config *c)
{
	char addr[INET6_ADDRSTRLEN];

	if (c->dhcp_mode != DHCP_FULL)
		return;
	if (!c->ipv6_ra)
		add_check(checks, "ipv6 router adverts", "warn", "boot.ipv6_ra "
		    "is off: unless a router on %s advertises, iPXE waits "
		    "about 13 s for IPv6 at every network boot", c->interface);
	else if (dnsmasq_iface_ipv6(c->interface, addr, sizeof addr))
		add_check(checks, "ipv6 router adverts", "ok", "%s has %s: "
		    "dnsmasq advertises its prefix", c->interface, addr);
	else
		add_check(checks, "ipv6 router adverts", "warn", "%s has no IPv6 "
		    "address but link-local, so dnsmasq has no prefix to "
		    "advertise and iPXE waits about 13 s for IPv6 at every "
		    "network boot: give it a ULA (ip -6 addr add fdXX::1/64 dev "
		    "%s)", c->interface, c->interface);
}

static void
get_doctor(struct request *r)
{
	const struct config *c = bastion_config_acquire(r->app);
	json_t *checks = json_array(), *dq, *c_i;
	char path[PATH_MAX];
	struct stat st;
	long expires;
	size_t i;
	int failed = 0;

	if (access(c->dnsmasq_path, X_OK) == 0)
		add_check(checks, "dnsmasq binary", "ok", "%s", c->dnsmasq_path);
	else
		add_check(checks, "dnsmasq binary", "fail", "%s is not executable "
		    "(apt-get install dnsmasq-base)", c->dnsmasq_path);
	dq = privsep_dnsmasq_status(r->app);
	if (json_is_true(json_object_get(dq, "running")))
		add_check(checks, "dnsmasq running", "ok", "pid %lld, %lld restarts",
		    (long long)json_integer_value(json_object_get(dq, "pid")),
		    (long long)json_integer_value(json_object_get(dq, "restarts")));
	else if (json_is_true(json_object_get(dq, "standby")))
		add_check(checks, "dnsmasq running", "ok", "standing by: it "
		    "runs on the bastion that leads DHCP on %s (cluster "
		    "status)", c->interface);
	else
		add_check(checks, "dnsmasq running", "fail", "not running: %s",
		    json_string_value(json_object_get(dq, "last_error")) ?
		    json_string_value(json_object_get(dq, "last_error")) : "unknown");
	json_decref(dq);
	check_ipv6_ra(checks, c);
	check_file(checks, "ipxe bios", c->ipxe_dir, "undionly.kpxe", "fail");
	check_file(checks, "ipxe uefi", c->ipxe_dir, "ipxe.efi", "fail");
	check_file(checks, "ipxe uefi snp", c->ipxe_dir, "snponly.efi", "fail");
	check_file(checks, "discovery kernel", c->discovery_dir, "vmlinuz", "warn");
	check_file(checks, "discovery initrd", c->discovery_dir, "initrd.img",
	    "warn");
	if (stat(c->state_dir, &st) == -1)
		add_check(checks, "state dir", "fail", "%s: %s", c->state_dir,
		    strerror(errno));
	else if (st.st_mode & 002)
		add_check(checks, "state dir", "fail", "%s is world-writable",
		    c->state_dir);
	else if (access(c->state_dir, W_OK) != 0)
		add_check(checks, "state dir", "fail", "%s is not writable",
		    c->state_dir);
	else
		add_check(checks, "state dir", "ok", "%s, schema %d", c->state_dir,
		    db_schema_version(r->app->db));
	add_check(checks, "listeners", atomic_load(&r->app->ready) ? "ok" : "fail",
	    "boot %s:%d, control %s:%d", c->boot_listen.host,
	    c->boot_listen.port, c->control_listen.host, c->control_listen.port);
	if (path_join(path, sizeof path, c->state_dir, "ca/ca.key") == 0 &&
	    stat(path, &st) == -1 && errno == EACCES)
		add_check(checks, "ca key", "ok", "%s is out of this process's "
		    "reach (the signer holds it)", path);
	else if (stat(path, &st) == 0 && (st.st_mode & 077) == 0)
		add_check(checks, "ca key", "ok", "%s is 0600", path);
	else
		add_check(checks, "ca key", "fail", "%s is missing or readable by "
		    "others", path);
	expires = ca_server_expires_in(r->app->ca);
	add_check(checks, "certificate", expires > 30 * 86400 ? "ok" :
	    expires > 0 ? "warn" : "fail", "control certificate expires in %ld "
	    "days", expires / 86400);
	bastion_config_release(r->app);
	json_array_foreach(checks, i, c_i)
		if (strcmp(json_string_value(json_object_get(c_i, "status")),
		    "fail") == 0)
			failed++;
	http_reply_json(r, 200, json_pack("{s:b, s:o}", "ok", failed == 0,
	    "checks", checks));
}

static void
get_version(struct request *r)
{
	http_reply_json(r, 200, json_pack("{s:s, s:I}", "version",
	    BASTION_VERSION, "uptime_s",
	    (json_int_t)(time(NULL) - r->app->started)));
}

/* Who may do what: see struct route in http.h and docs/api.md. */
const struct route routes_api[] = {
	{ L_API, "GET", "/api/v1/machines", get_machines, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/machines/{mac}", get_machine, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "DELETE", "/api/v1/machines/{mac}", delete_machine, 0,
	    ROLE_OPERATOR, SCOPE_PROVISION, RF_MUTATES | RF_DESTRUCTIVE,
	    "machine.forget" },
	{ L_API, "GET", "/api/v1/machines/{mac}/events", get_events, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/healthz", get_healthz, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/readyz", get_readyz, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/metrics", get_metrics, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/config", get_config, 0,
	    ROLE_OPERATOR, SCOPE_READ, 0, NULL },
	{ L_ADMIN, "PUT", "/api/v1/config/{key}", put_config, 0,
	    ROLE_ADMIN, SCOPE_ADMIN, RF_MUTATES, "config.set" },
	{ L_ADMIN, "POST", "/api/v1/leases", post_lease, 0,
	    ROLE_ADMIN, SCOPE_ADMIN, RF_MUTATES | RF_SYSTEM, "lease.record" },
	{ L_API, "GET", "/api/v1/leases", get_leases, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/doctor", get_doctor, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/version", get_version, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/cluster", get_cluster, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ 0, NULL, NULL, NULL, 0, ROLE_NONE, SCOPE_READ, 0, NULL },
};
