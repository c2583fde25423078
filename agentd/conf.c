/* conf.c — agentd.conf (INI, [agent] section), read with inih. */
#ifndef AGENTD_NO_CURL	/* the discovery image has no libcurl, OpenSSL or inih */
#define LOG_SUBSYS "conf"
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "agent.h"
#include "log.h"
#include "path.h"

/* accept = words, in ACCEPT_* order; "containers" accepts jobs of kind
 * "container", "guests" those of kind "guest". */
static const char *const kinds[] = { "exec", "reboot", "reprovision",
    "inventory", "containers", "guests", NULL };

/* guests = drivers, in GUESTS_* order. */
static const char *const drivers[] = { "libvirt", "lxc", NULL };

/* "a, b c" -> the bits of the words in names (bit i for names[i]);
 * "none" adds nothing. -1 on a word not in names. */
static int
words_parse(const char *s, const char *const names[], unsigned *out)
{
	char buf[256], *tok, *save = NULL;
	unsigned bits = 0;
	int i;

	if (strlen(s) >= sizeof buf)
		return -1;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ", \t", &save); tok;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (strcmp(tok, "none") == 0)
			continue;
		for (i = 0; names[i]; i++)
			if (strcmp(tok, names[i]) == 0)
				break;
		if (names[i] == NULL)
			return -1;
		bits |= 1u << i;
	}
	*out = bits;
	return 0;
}

int
agent_guests_parse(const char *s, unsigned *out)
{
	return words_parse(s, drivers, out);
}

int
agent_accept_parse(const char *s, unsigned *out)
{
	return words_parse(s, kinds, out);
}

int
agent_accepts(const struct agent_conf *c, const char *kind)
{
	int i;

	if (strcmp(kind, "container") == 0)
		return (c->accept & ACCEPT_CONTAINERS) != 0;
	if (strcmp(kind, "guest") == 0)
		return (c->accept & ACCEPT_GUESTS) != 0;
	for (i = 0; kinds[i]; i++)
		if (strcmp(kind, kinds[i]) == 0)
			return (c->accept & (1u << i)) != 0;
	return 0;
}

int
agent_path(const struct agent_conf *c, const char *name, char *out,
    size_t len)
{
	return path_join(out, len, c->state_dir, name);
}

struct parse {
	struct agent_conf	*c;
	int			 errors;
};

static int
set(char *dst, size_t len, const char *v)
{
	if (strlen(v) >= len)
		return -1;
	strcpy(dst, v);
	return 0;
}

/* server = URL1, URL2, …: every one https:// (http:// for tests on
 * loopback), trailing slashes dropped. A line holds 200 characters
 * (inih): each line of the key, continuation lines included, adds to
 * the list. NULL, or why not. */
static const char *
servers_parse(struct agent_conf *c, const char *value)
{
	char buf[AGENT_SERVERS_MAX * AGENT_URL_LEN], *tok, *save = NULL, *u;
	size_t i;

	if (strlen(value) >= sizeof buf)
		return "server is too long";
	strcpy(buf, value);
	for (tok = strtok_r(buf, ", \t", &save); tok;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (c->nservers == AGENT_SERVERS_MAX)
			return "server lists more than 8 URLs";
		if ((strncmp(tok, "https://", 8) != 0 &&
		    strncmp(tok, "http://", 7) != 0) ||
		    strlen(tok) >= AGENT_URL_LEN)
			return "server must be https:// URLs, separated by commas";
		u = c->servers[c->nservers++];
		strcpy(u, tok);
		while ((i = strlen(u)) > 8 && u[i - 1] == '/')
			u[i - 1] = '\0';
	}
	return NULL;
}

/* Which of servers is in use: one for the process, as every thread's
 * client talks to the same bastion. */
static atomic_uint server_turn;

const char *
agent_server(const struct agent_conf *c)
{
	if (c->nservers <= 1)
		return c->servers[0];
	return c->servers[atomic_load(&server_turn) % (unsigned)c->nservers];
}

unsigned
agent_server_turn(void)
{
	return atomic_load(&server_turn);
}

void
agent_server_next(const struct agent_conf *c)
{
	if (c->nservers <= 1)
		return;
	atomic_fetch_add(&server_turn, 1);
	log_info("moving to %s", agent_server(c));
}

static int
on_kv(void *arg, const char *section, const char *key, const char *value)
{
	struct parse *p = arg;
	struct agent_conf *c = p->c;
	const char *why = NULL;
	size_t i;

	if (strcmp(section, "agent") != 0) {
		why = "unknown section (only [agent])";
	} else if (strcmp(key, "server") == 0) {
		why = servers_parse(c, value);
	} else if (strcmp(key, "ca_fingerprint") == 0) {
		if (set(c->ca_fingerprint, sizeof c->ca_fingerprint, value) == -1)
			why = "ca_fingerprint is too long";
		for (i = 0; c->ca_fingerprint[i]; i++)
			c->ca_fingerprint[i] = (char)tolower(
			    (unsigned char)c->ca_fingerprint[i]);
		if (!why && strncmp(c->ca_fingerprint, "sha256:", 7) != 0)
			why = "ca_fingerprint must be sha256:HEX";
	} else if (strcmp(key, "token") == 0) {
		if (set(c->token, sizeof c->token, value) == -1)
			why = "token is too long";
	} else if (strcmp(key, "state_dir") == 0) {
		if (value[0] != '/' || set(c->state_dir, sizeof c->state_dir,
		    value) == -1)
			why = "state_dir must be an absolute path";
	} else if (strcmp(key, "accept") == 0) {
		if (agent_accept_parse(value, &c->accept) == -1 ||
		    set(c->accept_text, sizeof c->accept_text, value) == -1)
			why = "accept: a list of exec, reboot, reprovision, "
			    "inventory, containers, guests (or none)";
	} else if (strcmp(key, "hostname") == 0) {
		if (set(c->hostname, sizeof c->hostname, value) == -1)
			why = "hostname is too long";
	} else if (strcmp(key, "mac") == 0) {
		if (mac_normalize(value, c->mac) == -1)
			why = "mac is not a MAC address";
	} else if (strcmp(key, "reboot_command") == 0) {
		if (set(c->reboot_command, sizeof c->reboot_command, value) == -1)
			why = "reboot_command is too long";
	} else if (strcmp(key, "efibootmgr") == 0) {
		if (set(c->efibootmgr, sizeof c->efibootmgr, value) == -1)
			why = "efibootmgr is too long";
	} else if (strcmp(key, "inventory_root") == 0) {
		if (value[0] != '/' || set(c->inventory_root,
		    sizeof c->inventory_root, value) == -1)
			why = "inventory_root must be an absolute path";
	} else if (strcmp(key, "smartctl") == 0) {
		if ((value[0] != '/' && value[0] != '\0') || set(c->smartctl,
		    sizeof c->smartctl, value) == -1)
			why = "smartctl must be an absolute path (or empty: none)";
	} else if (strcmp(key, "docker_socket") == 0) {
		if ((value[0] != '/' && value[0] != '\0') ||
		    set(c->docker_socket, sizeof c->docker_socket, value) == -1)
			why = "docker_socket must be an absolute path (or empty: "
			    "no Docker reports)";
	} else if (strcmp(key, "guests") == 0) {
		if (agent_guests_parse(value, &c->guests) == -1)
			why = "guests: a list of libvirt, lxc (or none)";
	} else if (strcmp(key, "lxc_path") == 0) {
		if (value[0] != '/' || set(c->lxc_path, sizeof c->lxc_path,
		    value) == -1)
			why = "lxc_path must be an absolute path";
	} else if (strcmp(key, "transient_units") == 0) {
		if (strcmp(value, "auto") == 0)
			c->transient = TRANSIENT_AUTO;
		else if (strcmp(value, "yes") == 0)
			c->transient = TRANSIENT_YES;
		else if (strcmp(value, "no") == 0)
			c->transient = TRANSIENT_NO;
		else
			why = "transient_units: auto, yes or no";
	} else {
		why = "unknown key";
	}
	if (why) {
		fprintf(stderr, "%s: [%s] %s: %s\n", c->path, section, key, why);
		p->errors++;
	}
	return 1;
}

int
agent_conf_load(const char *path, struct agent_conf *c)
{
	struct parse p = { c, 0 };
	int rc;

	memset(c, 0, sizeof *c);
	snprintf(c->path, sizeof c->path, "%s", path);
	snprintf(c->state_dir, sizeof c->state_dir, "/var/lib/agentd");
	c->accept = ACCEPT_EXEC | ACCEPT_REBOOT | ACCEPT_REPROVISION |
	    ACCEPT_INVENTORY | ACCEPT_CONTAINERS | ACCEPT_GUESTS;
	snprintf(c->accept_text, sizeof c->accept_text,
	    "exec,reboot,reprovision,inventory,containers,guests");
	c->guests = GUESTS_LIBVIRT | GUESTS_LXC;
	snprintf(c->lxc_path, sizeof c->lxc_path, "/var/lib/lxc");
	snprintf(c->docker_socket, sizeof c->docker_socket, "/run/docker.sock");
	snprintf(c->reboot_command, sizeof c->reboot_command,
	    "/usr/bin/systemctl reboot");
	snprintf(c->efibootmgr, sizeof c->efibootmgr, "efibootmgr");
	snprintf(c->inventory_root, sizeof c->inventory_root, "/");
	snprintf(c->smartctl, sizeof c->smartctl, "/usr/sbin/smartctl");
	rc = ini_parse(path, on_kv, &p);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot read the configuration\n", path);
		return -1;
	}
	if (rc > 0) {
		fprintf(stderr, "%s:%d: syntax error\n", path, rc);
		return -1;
	}
	if (c->nservers == 0) {
		fprintf(stderr, "%s: server is required\n", path);
		p.errors++;
	}
	return p.errors ? -1 : 0;
}
#endif /* AGENTD_NO_CURL */
