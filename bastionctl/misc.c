/* misc.c — bastionctl doctor, version and the internal lease-hook that
 * dnsmasq's --dhcp-script runs. */
#define _GNU_SOURCE
#include <sys/stat.h>

#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "lease.h"

#define LEASE_HOOK_TIMEOUT_MS	5000L	/* never hold dnsmasq up for long */

/* --- doctor ------------------------------------------------------------- */

static int
doctor(struct ctl *c, const struct ctl_command *cmd, int argc, char *argv[])
{
	int json = 0, rc;
	const struct ctl_opt opts[] = {
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_table *t = NULL;
	struct ctl_args a;
	const json_t *checks, *ch;
	json_t *j;
	size_t i;
	int fails = 0, warns = 0;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (ctl_request(c, "GET", "/api/v1/doctor", NULL, &j, NULL, NULL) == -1)
		return CTL_ERR;
	checks = json_object_get(j, "checks");
	if (!json_is_array(checks)) {
		json_decref(j);
		return ctl_error("unexpected answer from the server for doctor");
	}
	json_array_foreach(checks, i, ch) {
		if (strcmp(ctl_jstr(ch, "status"), "fail") == 0)
			fails++;
		else if (strcmp(ctl_jstr(ch, "status"), "warn") == 0)
			warns++;
	}
	/* Belt and braces: the server's verdict counts as well. */
	if (json_is_false(json_object_get(j, "ok")) && fails == 0)
		fails = 1;
	if (json) {
		rc = ctl_print_json(j) == 0 ? CTL_OK : CTL_ERR;
		goto out;
	}
	if ((t = ctl_table_new(3, "CHECK", "STATUS", "DETAIL")) == NULL)
		goto err_mem;
	json_array_foreach(checks, i, ch)
		if (ctl_table_row(t, ctl_jstr(ch, "name"), ctl_jstr(ch, "status"),
		    ctl_jstr(ch, "detail")) == -1)
			goto err_mem;
	ctl_table_print(t, stdout, 0);
	printf("\n%d check%s, %d failed, %d warning%s\n",
	    (int)json_array_size(checks), json_array_size(checks) == 1 ? "" : "s",
	    fails, warns, warns == 1 ? "" : "s");
	rc = CTL_OK;
	goto out;

err_mem:
	rc = ctl_error("out of memory");
out:
	ctl_table_free(t);
	json_decref(j);
	if (rc == CTL_OK && fails)
		rc = CTL_ERR;
	return rc;
}

/* --- version ------------------------------------------------------------ */

static void
fmt_uptime(char *out, size_t len, long long s)
{
	if (s < 0)
		snprintf(out, len, "-");
	else if (s >= 86400)
		snprintf(out, len, "%lldd %lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(out, len, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(out, len, "%lldm %llds", s / 60, s % 60);
	else
		snprintf(out, len, "%llds", s);
}

static int
version(struct ctl *c, const struct ctl_command *cmd, int argc, char *argv[])
{
	int json = 0, rc = CTL_OK;
	const struct ctl_opt opts[] = {
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	char ver[128], up[64];
	struct ctl_args a;
	json_t *srv, *out;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (!json)
		printf("bastionctl %s\n", BASTION_VERSION);
	if (ctl_request(c, "GET", "/api/v1/version", NULL, &srv, NULL,
	    NULL) == -1)
		return CTL_ERR;
	if (json) {
		if ((out = json_pack("{s:{s:s}, s:O}", "client", "version",
		    BASTION_VERSION, "server", srv)) == NULL)
			rc = ctl_error("out of memory");
		else if (ctl_print_json(out) == -1)
			rc = CTL_ERR;
		json_decref(out);
	} else {
		fmt_uptime(up, sizeof up, ctl_jint(srv, "uptime_s", -1));
		printf("bastion    %s (up %s)\n", ctl_clean(ctl_jstr(srv,
		    "version"), ver, sizeof ver, 1), up);
	}
	json_decref(srv);
	return rc;
}

/* --- lease-hook --------------------------------------------------------- */

static const char *
lease_env(const char *name)
{
	return getenv(name);
}

/* init: dnsmasq (leasefile-ro) starts with the leases this prints, in
 * its lease file's format: EXPIRES MAC IP HOSTNAME|* CLIENT-ID|*. They
 * are the database's (each was checked when it was recorded). */
static int
lease_init(struct ctl *c)
{
	const json_t *l;
	json_t *list;
	const char *host;
	size_t i;

	c->timeout_ms = LEASE_HOOK_TIMEOUT_MS;
	if (ctl_request(c, "GET", "/api/v1/leases", NULL, &list, NULL,
	    NULL) == -1)
		return CTL_ERR;
	if (!json_is_array(list)) {
		json_decref(list);
		return ctl_error("lease-hook init: unexpected answer from the "
		    "server");
	}
	json_array_foreach(list, i, l) {
		host = ctl_jstr(l, "hostname");
		printf("%lld %s %s %s *\n", ctl_jint(l, "expires", 0),
		    ctl_jstr(l, "mac"), ctl_jstr(l, "ip"), host[0] ? host : "*");
	}
	json_decref(list);
	return fflush(stdout) == 0 ? CTL_OK : CTL_ERR;
}

/*
 * dnsmasq runs init itself, as root, before it drops to nobody (the other
 * actions come from its helper, already as dhcp-scriptuser). Under
 * bastion.service that root has no CAP_DAC_OVERRIDE and cannot open the
 * worker's admin socket (0600, the worker's user's), and the hook needs
 * no more than that user: root becomes the socket's owner. If it cannot,
 * it goes on as it is and the connection says why.
 */
static void
lease_hook_as_owner(const struct ctl *c)
{
	struct stat st;

	if (geteuid() != 0 || c->socket == NULL ||
	    stat(c->socket, &st) == -1 || st.st_uid == 0)
		return;
	if (setgroups(0, NULL) == -1 ||
	    setresgid(st.st_gid, st.st_gid, st.st_gid) == -1)
		return;
	(void)!setresuid(st.st_uid, st.st_uid, st.st_uid);
}

/*
 * dnsmasq runs the hook as: add|old|del MAC IP [HOSTNAME], init (the
 * leases it starts with), and also for tftp, arp-add ... which are not
 * leases: those end quietly with 0. DHCPv6 leases (DNSMASQ_IAID set)
 * carry a DUID, not a MAC: not ours.
 */
static int
lease_hook(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	struct lease l;
	const char *why;
	json_t *body;
	int rc;

	if (argc < 2)
		return ctl_usage_error(cmd, "missing ACTION");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		printf("usage: bastionctl lease-hook %s\n  %s\n", cmd->synopsis,
		    cmd->help);
		return CTL_OK;
	}
	lease_hook_as_owner(c);
	if (strcmp(argv[1], "init") == 0)
		return argc == 2 ? lease_init(c) : ctl_usage_error(cmd,
		    "init takes no arguments");
	if (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "old") != 0 &&
	    strcmp(argv[1], "del") != 0)
		return CTL_OK;
	if (getenv("DNSMASQ_IAID") != NULL)
		return CTL_OK;
	if (argc < 4 || argc > 5)
		return ctl_usage_error(cmd, "expected ACTION MAC IP [HOSTNAME]");
	if (lease_parse(argc - 1, argv + 1, lease_env, &l, &why) == -1)
		return ctl_error("lease-hook: %s", why);
	if ((body = lease_to_json(&l)) == NULL)
		return ctl_error("out of memory");
	c->timeout_ms = LEASE_HOOK_TIMEOUT_MS;
	rc = ctl_request(c, "POST", "/api/v1/leases", body, NULL, NULL,
	    NULL) == 0 ? CTL_OK : CTL_ERR;
	json_decref(body);
	return rc;
}

const struct ctl_command ctl_misc_commands[] = {
	{ "doctor", NULL, "[--json]",
	    "check the appliance; exit 1 if a check failed", doctor, 0, 0, 0 },
	{ "version", NULL, "[--json]",
	    "bastionctl's and bastion's versions", version, 0, 0, 0 },
	{ "lease-hook", NULL, "ACTION MAC IP [HOSTNAME]",
	    "internal: dnsmasq's --dhcp-script", lease_hook, 0, 4, 1 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
