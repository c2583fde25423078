/* config.c — bastion.conf parsing with inih over one typed option table.
 * Every error is reported as file:line and parsing goes on, so that
 * `bastion -n` shows all of them at once. */
#define LOG_SUBSYS "config"
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "file.h"
#include "hostname.h"
#include "log.h"
#include "path.h"

enum opt_type {
	OPT_PATH, OPT_STRING, OPT_LISTEN, OPT_ENUM, OPT_BOOL, OPT_INT,
	OPT_NAMES, OPT_URL, OPT_IFACE, OPT_RANGE, OPT_DBURL
};

struct option {
	const char	*section;
	const char	*key;
	enum opt_type	 type;
	size_t		 off;
	size_t		 size;
	const char	*def;
	const char *const *enums;	/* OPT_ENUM: names, NULL-terminated */
	long		 min, max;	/* OPT_INT */
};

static const char *const dhcp_modes[] = { "full", "proxy", "off", NULL };
static const char *const idle_actions[] = { "exit", "poweroff", NULL };

#define F(m) offsetof(struct config, m), sizeof(((struct config *)0)->m)

static const struct option options[] = {
	{ "bastion", "state_dir", OPT_PATH, F(state_dir), "/var/lib/bastion", NULL, 0, 0 },
	{ "bastion", "share_dir", OPT_PATH, F(share_dir), BASTION_DATADIR, NULL, 0, 0 },
	{ "bastion", "user", OPT_STRING, F(user), "bastion", NULL, 0, 0 },
	{ "bastion", "debug", OPT_BOOL, F(debug), "no", NULL, 0, 0 },
	{ "database", "url", OPT_DBURL, F(database_url), "", NULL, 0, 0 },
	{ "boot", "listen", OPT_LISTEN, F(boot_listen), "10.77.0.1:8080", NULL, 0, 0 },
	{ "boot", "url", OPT_URL, F(boot_url), "", NULL, 0, 0 },
	{ "boot", "interface", OPT_IFACE, F(interface), "bastion0", NULL, 0, 0 },
	{ "boot", "dhcp_mode", OPT_ENUM, F(dhcp_mode), "full", dhcp_modes, 0, 0 },
	{ "boot", "dhcp_range", OPT_RANGE, F(dhcp_range), "10.77.0.100,10.77.0.200,12h", NULL, 0, 0 },
	{ "boot", "dnsmasq", OPT_PATH, F(dnsmasq_path), "/usr/sbin/dnsmasq", NULL, 0, 0 },
	{ "boot", "ipxe_dir", OPT_PATH, F(ipxe_dir), "/usr/lib/ipxe", NULL, 0, 0 },
	{ "boot", "discovery_dir", OPT_PATH, F(discovery_dir), "", NULL, 0, 0 },
	{ "boot", "installer_dir", OPT_PATH, F(installer_dir), "", NULL, 0, 0 },
	{ "boot", "idle_action", OPT_ENUM, F(idle_action), "exit", idle_actions, 0, 0 },
	{ "boot", "ipv6_ra", OPT_BOOL, F(ipv6_ra), "yes", NULL, 0, 0 },
	{ "boot", "max_connections_per_address", OPT_INT, F(boot_max_conns_per_addr), "64", NULL, 0, 100000 },
	{ "boot", "request_rate", OPT_INT, F(boot_request_rate), "50", NULL, 0, 1000000 },
	{ "boot", "request_burst", OPT_INT, F(boot_request_burst), "500", NULL, 1, 1000000 },
	{ "control", "listen", OPT_LISTEN, F(control_listen), "127.0.0.1:8443", NULL, 0, 0 },
	{ "control", "names", OPT_NAMES, F(names), "localhost,127.0.0.1", NULL, 0, 0 },
	{ "control", "max_connections", OPT_INT, F(control_max_conns), "20480", NULL, 0, 1000000 },
	{ "control", "max_connections_per_address", OPT_INT, F(control_max_conns_per_addr), "1024", NULL, 0, 1000000 },
	{ "install", "repo", OPT_URL, F(install_repo), "", NULL, 0, 0 },
	{ "install", "os", OPT_STRING, F(install_os), "fedora-40", NULL, 0, 0 },
	{ "install", "kickstart_os", OPT_STRING, F(install_kickstart_os), "fedora-40", NULL, 0, 0 },
	{ "install", "max_boots", OPT_INT, F(install_max_boots), "3", NULL, 1, 100 },
	{ "auth", "session_idle", OPT_INT, F(auth_session_idle), "1800", NULL, 1, 7 * 86400 },
	{ "auth", "session_lifetime", OPT_INT, F(auth_session_lifetime), "43200", NULL, 1, 30 * 86400 },
	{ "auth", "argon2_time", OPT_INT, F(auth_argon2_time), "3", NULL, 1, 16 },
	{ "auth", "argon2_memory", OPT_INT, F(auth_argon2_memory), "65536", NULL, 8, 4 * 1024 * 1024 },
	{ "auth", "argon2_threads", OPT_INT, F(auth_argon2_threads), "1", NULL, 1, 16 },
	{ "auth", "login_max_failures", OPT_INT, F(auth_login_max_failures), "5", NULL, 1, 1000 },
	{ "auth", "login_window", OPT_INT, F(auth_login_window), "900", NULL, 1, 86400 },
	{ "auth", "lockout", OPT_INT, F(auth_lockout), "900", NULL, 1, 86400 },
	{ "agent", "heartbeat_interval", OPT_INT, F(agent_heartbeat_interval), "30", NULL, 5, 3600 },
	{ "alerts", "disk_warning", OPT_INT, F(alerts_disk_warning), "85", NULL, 1, 100 },
	{ "alerts", "disk_critical", OPT_INT, F(alerts_disk_critical), "95", NULL, 1, 100 },
	{ "alerts", "memory_warning", OPT_INT, F(alerts_memory_warning), "90", NULL, 1, 100 },
	{ "alerts", "memory_critical", OPT_INT, F(alerts_memory_critical), "97", NULL, 1, 100 },
	{ "alerts", "load_warning", OPT_INT, F(alerts_load_warning), "2", NULL, 1, 1000 },
	{ "alerts", "load_critical", OPT_INT, F(alerts_load_critical), "4", NULL, 1, 1000 },
	{ "alerts", "temperature_warning", OPT_INT, F(alerts_temperature_warning), "80", NULL, 1, 200 },
	{ "alerts", "temperature_critical", OPT_INT, F(alerts_temperature_critical), "90", NULL, 1, 200 },
	{ "alerts", "cert_days", OPT_INT, F(alerts_cert_days), "7", NULL, 0, 365 },
	{ "alerts", "stale_after", OPT_INT, F(alerts_stale_after), "0", NULL, 0, 86400 },
	{ "alerts", "repeat_interval", OPT_INT, F(alerts_repeat_interval), "3600", NULL, 0, 30 * 86400 },
	{ "alerts", "recompute_interval", OPT_INT, F(alerts_recompute_interval), "15", NULL, 1, 3600 },
};
#define NOPTIONS (sizeof options / sizeof options[0])

void
config_node_url(const struct config *c, char out[CONFIG_URL_LEN])
{
	const char *host = c->nnames ? c->names[0] : c->control_listen.host;
	unsigned char ip[16];
	int i;

	for (i = 0; i < c->nnames; i++)
		if ((inet_pton(AF_INET, c->names[i], ip) == 1 && ip[0] != 127) ||
		    (inet_pton(AF_INET6, c->names[i], ip) == 1 &&
		    strcmp(c->names[i], "::1") != 0)) {
			host = c->names[i];
			break;
		}
	snprintf(out, CONFIG_URL_LEN, strchr(host, ':') ? "https://[%s]:%d" :
	    "https://%s:%d", host, c->control_listen.port);
}

const char *
config_dhcp_mode_name(enum dhcp_mode m)
{
	return dhcp_modes[m];
}

const char *
config_key_at(size_t i)
{
	static char key[64];

	if (i >= NOPTIONS)
		return NULL;
	snprintf(key, sizeof key, "%s.%s", options[i].section, options[i].key);
	return key;
}

static const struct option *
option_find(const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < NOPTIONS; i++)
		if (strcmp(options[i].section, section) == 0 &&
		    strcmp(options[i].key, key) == 0)
			return &options[i];
	return NULL;
}

static const struct option *
option_find_dotted(const char *dotted)
{
	char section[32];
	const char *dot = strchr(dotted, '.');
	size_t n;

	if (dot == NULL || (n = (size_t)(dot - dotted)) >= sizeof section)
		return NULL;
	memcpy(section, dotted, n);
	section[n] = '\0';
	return option_find(section, dot + 1);
}

static int
parse_bool(const char *v, int *out)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
	    !strcasecmp(v, "on") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") ||
	    !strcasecmp(v, "off") || !strcmp(v, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* "1.2.3.4:80" or "[::1]:80": numeric only, so nothing resolves names. */
static int
parse_listen(const char *v, struct listen_addr *out, const char **why)
{
	struct listen_addr la;
	const char *colon;
	unsigned char tmp[16];
	char *end;
	long port;
	size_t hlen;

	memset(&la, 0, sizeof la);
	if (v[0] == '[') {
		const char *close = strchr(v, ']');

		if (close == NULL || close[1] != ':') {
			*why = "expected [IPv6]:port";
			return -1;
		}
		hlen = (size_t)(close - v - 1);
		if (hlen >= sizeof la.host)
			goto bad_addr;
		memcpy(la.host, v + 1, hlen);
		if (inet_pton(AF_INET6, la.host, tmp) != 1)
			goto bad_addr;
		colon = close + 1;
	} else {
		if ((colon = strrchr(v, ':')) == NULL) {
			*why = "expected address:port";
			return -1;
		}
		hlen = (size_t)(colon - v);
		if (hlen >= sizeof la.host)
			goto bad_addr;
		memcpy(la.host, v, hlen);
		if (inet_pton(AF_INET, la.host, tmp) != 1)
			goto bad_addr;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (!isdigit((unsigned char)colon[1]) || *end != '\0' || errno ||
	    port < 1 || port > 65535) {
		*why = "port must be 1-65535";
		return -1;
	}
	la.port = (int)port;
	*out = la;
	return 0;
bad_addr:
	*why = "not a numeric IPv4 or [IPv6] address";
	return -1;
}

static int
valid_ipv4(const char *s)
{
	unsigned char tmp[4];

	return inet_pton(AF_INET, s, tmp) == 1;
}

/* start,end[,lease] with lease as N, Nm, Nh, Nd or "infinite". */
static int
valid_range(const char *v, const char **why)
{
	char copy[128], *start, *end, *lease;
	unsigned char a[4], b[4];

	if (strlen(v) >= sizeof copy)
		goto bad;
	strcpy(copy, v);
	start = copy;
	if ((end = strchr(start, ',')) == NULL)
		goto bad;
	*end++ = '\0';
	if ((lease = strchr(end, ',')) != NULL)
		*lease++ = '\0';
	if (inet_pton(AF_INET, start, a) != 1 || inet_pton(AF_INET, end, b) != 1)
		goto bad;
	if (memcmp(a, b, 4) > 0) {
		*why = "range start is after its end";
		return -1;
	}
	if (lease) {
		size_t n = strlen(lease), i;

		if (strcmp(lease, "infinite") == 0)
			return 0;
		if (n == 0 || n > 8)
			goto bad_lease;
		for (i = 0; i < n; i++)
			if (!isdigit((unsigned char)lease[i]) &&
			    !(i == n - 1 && strchr("mhdw", lease[i])))
				goto bad_lease;
		if (!isdigit((unsigned char)lease[0]))
			goto bad_lease;
	}
	return 0;
bad:
	*why = "expected START,END[,LEASE] with IPv4 addresses";
	return -1;
bad_lease:
	*why = "lease time must be N, Nm, Nh, Nd, Nw or infinite";
	return -1;
}

/* RFC 1123 host name, or an IP address. */
static int
valid_name(const char *s)
{
	unsigned char tmp[16];

	return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1 ||
	    hostname_valid(s, 0);
}

static int
valid_url(const char *v)
{
	size_t i;

	if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0)
		return 0;
	for (i = 0; v[i]; i++)
		if ((unsigned char)v[i] <= ' ' || v[i] == '"' || v[i] == '\'' ||
		    v[i] == '\\' || v[i] == '<' || v[i] == '>' || v[i] == 0x7f)
			return 0;
	/* Something must follow the scheme: a host. */
	return v[strncmp(v, "https://", 8) == 0 ? 8 : 7] != '\0' &&
	    v[strncmp(v, "https://", 8) == 0 ? 8 : 7] != '/';
}

/* Set one option from text. Returns 0, or -1 with *why set. */
static int
option_set(struct config *c, const struct option *o, const char *v,
    const char **why)
{
	void *p = (char *)c + o->off;
	size_t i;

	switch (o->type) {
	case OPT_PATH:
		if (v[0] == '\0' && o->def[0] != '\0') {
			*why = "must not be empty";
			return -1;
		}
		if (v[0] != '\0' && v[0] != '/') {
			*why = "must be an absolute path";
			return -1;
		}
		/* FALLTHROUGH */
	case OPT_STRING:
		if (strlen(v) >= o->size) {
			*why = "value too long";
			return -1;
		}
		strcpy(p, v);
		return 0;
	case OPT_DBURL:
		/* Empty: the SQLite file in state_dir. libpq parses the rest
		 * when it connects. */
		if (v[0] != '\0' && strncmp(v, "postgresql://", 13) != 0 &&
		    strncmp(v, "postgres://", 11) != 0) {
			*why = "must be empty or a postgresql:// URL";
			return -1;
		}
		if (strlen(v) >= o->size || strpbrk(v, " \t\"'") != NULL) {
			*why = "value too long or with spaces or quotes";
			return -1;
		}
		strcpy(p, v);
		return 0;
	case OPT_URL:
		if (v[0] != '\0' && !valid_url(v)) {
			*why = "must be an http:// or https:// URL without spaces or quotes";
			return -1;
		}
		if (strlen(v) >= o->size) {
			*why = "value too long";
			return -1;
		}
		strcpy(p, v);
		return 0;
	case OPT_IFACE:
		if (v[0] == '\0' || strlen(v) >= o->size || strchr(v, '/') ||
		    strchr(v, ' ') || strchr(v, ',')) {
			*why = "not a valid interface name (1-15 characters)";
			return -1;
		}
		strcpy(p, v);
		return 0;
	case OPT_RANGE:
		if (valid_range(v, why) == -1)
			return -1;
		if (strlen(v) >= o->size) {
			*why = "value too long";
			return -1;
		}
		strcpy(p, v);
		return 0;
	case OPT_LISTEN:
		return parse_listen(v, p, why);
	case OPT_BOOL:
		if (parse_bool(v, p) == -1) {
			*why = "expected yes or no";
			return -1;
		}
		return 0;
	case OPT_ENUM:
		for (i = 0; o->enums[i]; i++)
			if (strcmp(o->enums[i], v) == 0) {
				*(int *)p = (int)i;
				return 0;
			}
		*why = "unknown value";
		return -1;
	case OPT_INT: {
		char *end;
		long n;

		errno = 0;
		n = strtol(v, &end, 10);
		if (v[0] == '\0' || *end) {
			*why = "not a number";
			return -1;
		}
		if (errno || n < o->min || n > o->max) {
			*why = "number out of range";
			return -1;
		}
		*(int *)p = (int)n;
		return 0;
	}
	case OPT_NAMES: {
		char copy[1024], *tok, *save = NULL;
		char names[CONFIG_MAX_NAMES][CONFIG_NAME_LEN];
		int n = 0;

		if (strlen(v) >= sizeof copy) {
			*why = "value too long";
			return -1;
		}
		strcpy(copy, v);
		for (tok = strtok_r(copy, ", ", &save); tok;
		    tok = strtok_r(NULL, ", ", &save)) {
			if (n == CONFIG_MAX_NAMES) {
				*why = "too many names (at most 16)";
				return -1;
			}
			if (!valid_name(tok)) {
				*why = "not a host name or IP address";
				return -1;
			}
			snprintf(names[n++], CONFIG_NAME_LEN, "%s", tok);
		}
		if (n == 0) {
			*why = "at least one name is needed";
			return -1;
		}
		memset(c->names, 0, sizeof c->names);
		memcpy(c->names, names, sizeof names[0] * (size_t)n);
		c->nnames = n;
		return 0;
	}
	}
	*why = "internal: unknown option type";
	return -1;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	explicit_bzero(c, sizeof *c);
	free(c);
}

void
config_defaults(struct config *c)
{
	const char *why;
	size_t i;

	memset(c, 0, sizeof *c);
	for (i = 0; i < NOPTIONS; i++)
		if (option_set(c, &options[i], options[i].def, &why) == -1)
			fatalx("default for %s.%s: %s", options[i].section,
			    options[i].key, why);
	roles_defaults(&c->roles);
}

struct parse_state {
	struct config	*c;
	struct buf	*errors;
	const char	*name;
	int		 lineno;
	int		 nerrors;
	char		 roles_seen[ROLES_MAX][ROLE_NAME_LEN];
	int		 nroles_seen;
	FILE		*fp;		/* file input */
	const char	*text;		/* or string input */
	char		 pending[4096];	/* "key = v" after "[section]" */
	int		 has_pending;
	int		 set_at[128];	/* line each option was set on */
};
_Static_assert(NOPTIONS <= sizeof ((struct parse_state *)0)->set_at /
    sizeof (int), "set_at must have room for every option");

static void
parse_error(struct parse_state *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
parse_error(struct parse_state *ps, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	ps->nerrors++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (ps->lineno > 0)
		buf_note(ps->errors, "%s:%d: %s\n", ps->name, ps->lineno, msg);
	else		/* about the file as a whole, not one line */
		buf_note(ps->errors, "%s: %s\n", ps->name, msg);
}

/* inih reader: one whole line per call, counted, with leading white space
 * removed (so indented keys are keys, not continuations). */
/* inih reader: one whole line per call, counted, with leading white space
 * removed (so indented keys are keys, not continuations). A key on the
 * same line as its section header ("[boot]  listen = ...", as the
 * documented examples write it) is handed over as a line of its own. An unterminated section
 * header is reported here, in line order with every other error. */
static char *
read_line(char *str, int num, void *stream)
{
	struct parse_state *ps = stream;
	char line[4096], *close;
	size_t n = 0, skip = 0;
	int ch;

	if (ps->has_pending) {
		ps->has_pending = 0;
		snprintf(str, (size_t)num, "%s", ps->pending);
		return str;
	}
	for (;;) {
		if (ps->fp)
			ch = fgetc(ps->fp);
		else
			ch = *ps->text ? (unsigned char)*ps->text++ : EOF;
		if (ch == EOF) {
			if (n == 0)
				return NULL;
			break;
		}
		if (n < sizeof line - 2)
			line[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	if (n && line[n - 1] != '\n')
		line[n++] = '\n';
	line[n] = '\0';
	ps->lineno++;
	while (line[skip] == ' ' || line[skip] == '\t')
		skip++;
	/* The line and its NUL must fit inih's buffer. */
	if (n - skip > (size_t)num - 1) {
		parse_error(ps, "line too long (at most %d characters)", num - 2);
		strcpy(str, "\n");
		return str;
	}
	if (line[skip] != '[' && line[skip] != ';' && line[skip] != '#' &&
	    line[skip] != '\n' && line[skip] != '\r' && strchr(line + skip, '=') ==
	    NULL) {
		parse_error(ps, "syntax error: expected key = value");
		strcpy(str, "\n");
		return str;
	}
	if (line[skip] == '[') {
		if ((close = strchr(line + skip, ']')) == NULL) {
			parse_error(ps, "unterminated [section] header");
			strcpy(str, "\n");
			return str;
		}
		if (close[1] != '\0' && strspn(close + 1, " \t\r\n") !=
		    strlen(close + 1) && close[1 + strspn(close + 1, " \t")] != ';' &&
		    close[1 + strspn(close + 1, " \t")] != '#') {
			snprintf(ps->pending, sizeof ps->pending, "%s",
			    close + 1 + strspn(close + 1, " \t"));
			ps->has_pending = 1;
			close[1] = '\n';
			close[2] = '\0';
		}
	}
	memcpy(str, line + skip, strlen(line + skip) + 1);
	return str;
}

static void
on_role_value(struct parse_state *ps, const char *role, const char *name,
    const char *value)
{
	const char *why = NULL;
	int i, first = 1;

	if (strcmp(name, "volume") != 0) {
		parse_error(ps, "unknown key %s in [role %s] (only volume)", name,
		    role);
		return;
	}
	for (i = 0; i < ps->nroles_seen; i++)
		if (strcmp(ps->roles_seen[i], role) == 0)
			first = 0;
	if (roles_add_volume(&ps->c->roles, role, value, first, &why) == -1) {
		parse_error(ps, "[role %s] volume = \"%s\": %s", role, value, why);
		return;
	}
	if (first && ps->nroles_seen < ROLES_MAX)
		snprintf(ps->roles_seen[ps->nroles_seen++], ROLE_NAME_LEN, "%s",
		    role);
}

static int
valid_os(const char *s)
{
	size_t i;

	if (s[0] == '\0' || strlen(s) > 31)
		return 0;
	for (i = 0; s[i]; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) &&
		    !strchr("._-", s[i]))
			return 0;
	return 1;
}

static int
on_value(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *ps = user;
	const struct option *o;
	const char *why = NULL;

	if (strncmp(section, "role ", 5) == 0) {
		on_role_value(ps, section + 5, name, value);
		return 1;
	}
	if (strncmp(section, "channel ", 8) == 0) {
		if (channels_config_value(&ps->c->channels, section + 8, name,
		    value, &why) == -1)
			parse_error(ps, "[%s] %s: %s", section, name, why);
		return 1;
	}
	if ((o = option_find(section, name)) == NULL) {
		if (option_find_dotted(section) == NULL && section[0] == '\0')
			parse_error(ps, "%s: key outside of any [section]", name);
		else
			parse_error(ps, "unknown key %s.%s", section, name);
		return 1;
	}
	if (ps->set_at[o - options]) {
		parse_error(ps, "%s.%s is set twice (first on line %d)", section,
		    name, ps->set_at[o - options]);
		return 1;
	}
	ps->set_at[o - options] = ps->lineno;
	if (option_set(ps->c, o, value, &why) == -1)
		parse_error(ps, "%s.%s = \"%s\": %s", section, name, value, why);
	return 1;
}

static int
is_wildcard(const char *host)
{
	return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

/* The line an option was set on, 0 when it kept its default. */
static int
set_line(const struct parse_state *ps, const char *section, const char *key)
{
	const struct option *o = option_find(section, key);

	return o ? ps->set_at[o - options] : 0;
}

/* Values derived from others once the whole file is read. */
static void
config_finish(struct parse_state *ps)
{
	struct config *c = ps->c;

	if (c->boot_url[0] == '\0') {
		ps->lineno = set_line(ps, "boot", "listen");
		if (is_wildcard(c->boot_listen.host))
			parse_error(ps, "boot.url must be set when boot.listen "
			    "is a wildcard address");
		else if (strchr(c->boot_listen.host, ':'))
			snprintf(c->boot_url, sizeof c->boot_url, "http://[%s]:%d",
			    c->boot_listen.host, c->boot_listen.port);
		else
			snprintf(c->boot_url, sizeof c->boot_url, "http://%s:%d",
			    c->boot_listen.host, c->boot_listen.port);
	}
	ps->lineno = set_line(ps, "bastion", "state_dir");
	if (c->discovery_dir[0] == '\0')
		if (path_join(c->discovery_dir, sizeof c->discovery_dir,
		    c->state_dir, "images/discovery") == -1)
			parse_error(ps, "bastion.state_dir is too long");
	if (c->installer_dir[0] == '\0')
		if (path_join(c->installer_dir, sizeof c->installer_dir,
		    c->state_dir, "images/installer") == -1)
			parse_error(ps, "bastion.state_dir is too long");
	{
		const char *which = NULL, *why = NULL;

		ps->lineno = 0;
		if (roles_check(&c->roles, &which, &why) == -1)
			parse_error(ps, "[role %s]: %s", which, why);
	}
	{
		const char *which = NULL, *why = NULL;

		ps->lineno = 0;
		if (channels_check(&c->channels, &which, &why) == -1)
			parse_error(ps, "[channel %s]: %s", which, why);
	}
	ps->lineno = set_line(ps, "alerts", "disk_critical");
	if (c->alerts_disk_critical < c->alerts_disk_warning ||
	    c->alerts_memory_critical < c->alerts_memory_warning ||
	    c->alerts_load_critical < c->alerts_load_warning ||
	    c->alerts_temperature_critical < c->alerts_temperature_warning)
		parse_error(ps, "[alerts]: a critical threshold is below its "
		    "warning threshold");
	ps->lineno = set_line(ps, "bastion", "user");
	if (strspn(c->user, "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
	    strlen(c->user) || !islower((unsigned char)c->user[0]))
		parse_error(ps, "bastion.user must be a user name ([a-z][a-z0-9_-]*)");
	ps->lineno = set_line(ps, "install", "os");
	if (!valid_os(c->install_os))
		parse_error(ps, "install.os must be 1-31 of [a-z0-9._-]");
	ps->lineno = set_line(ps, "install", "kickstart_os");
	if (strspn(c->install_kickstart_os, "abcdefghijklmnopqrstuvwxyz0123456789"
	    "._-, ") != strlen(c->install_kickstart_os))
		parse_error(ps, "install.kickstart_os is a list of OS names of "
		    "[a-z0-9._-]");
	ps->lineno = set_line(ps, "bastion", "state_dir");
	if (strlen(c->state_dir) > 80)
		parse_error(ps, "bastion.state_dir is too long for the admin "
		    "socket path (at most 80 characters)");
	ps->lineno = set_line(ps, "boot", "listen");
	if (c->dhcp_mode == DHCP_FULL && !valid_ipv4(c->boot_listen.host) &&
	    !is_wildcard(c->boot_listen.host))
		parse_error(ps, "boot.listen must be an IPv4 address with "
		    "dhcp_mode = full");
}

static int
config_parse(struct parse_state *ps)
{
	int rc;

	config_defaults(ps->c);
	rc = ini_parse_stream(read_line, ps, on_value, ps);
	if (rc > 0 && ps->nerrors == 0) {
		ps->lineno = rc;
		parse_error(ps, "syntax error");
	}
	config_finish(ps);
	return ps->nerrors ? -1 : 0;
}

int
config_load(const char *path, struct config *out, struct buf *errors)
{
	struct parse_state ps;
	struct config *c;
	int rc;

	if ((c = malloc(sizeof *c)) == NULL) {
		buf_note(errors, "%s: out of memory\n", path);
		return -1;
	}
	memset(&ps, 0, sizeof ps);
	ps.c = c;
	ps.errors = errors;
	ps.name = path;
	if ((ps.fp = fopen(path, "r")) == NULL) {
		buf_note(errors, "%s: %s\n", path, strerror(errno));
		config_free(c);
		return -1;
	}
	rc = config_parse(&ps);
	fclose(ps.fp);
	if (rc == 0) {
		if (realpath(path, c->path) == NULL)
			snprintf(c->path, sizeof c->path, "%s", path);
		*out = *c;
	}
	config_free(c);
	return rc;
}

int
config_load_string(const char *name, const char *text, struct config *out,
    struct buf *errors)
{
	struct parse_state ps;
	struct config *c;
	int rc;

	if ((c = malloc(sizeof *c)) == NULL)
		return -1;
	memset(&ps, 0, sizeof ps);
	ps.c = c;
	ps.errors = errors;
	ps.name = name;
	ps.text = text;
	rc = config_parse(&ps);
	if (rc == 0) {
		snprintf(c->path, sizeof c->path, "%s", name);
		*out = *c;
	}
	config_free(c);
	return rc;
}

int
config_get(const struct config *c, const char *key, struct buf *value)
{
	const struct option *o = option_find_dotted(key);
	const void *p;
	int i;

	if (o == NULL)
		return -1;
	p = (const char *)c + o->off;
	switch (o->type) {
	case OPT_PATH: case OPT_STRING: case OPT_URL: case OPT_IFACE:
	case OPT_DBURL:
	case OPT_RANGE:
		return buf_adds(value, p);
	case OPT_LISTEN: {
		const struct listen_addr *la = p;

		return strchr(la->host, ':') ?
		    buf_printf(value, "[%s]:%d", la->host, la->port) :
		    buf_printf(value, "%s:%d", la->host, la->port);
	}
	case OPT_BOOL:
		return buf_adds(value, *(const int *)p ? "yes" : "no");
	case OPT_ENUM:
		return buf_adds(value, o->enums[*(const int *)p]);
	case OPT_INT:
		return buf_printf(value, "%d", *(const int *)p);
	case OPT_NAMES:
		for (i = 0; i < c->nnames; i++)
			if (buf_printf(value, "%s%s", i ? "," : "",
			    c->names[i]) == -1)
				return -1;
		return 0;
	}
	return -1;
}

/* Rewrite "key = value" in [section], or add it, keeping everything else.
 * -1 with errno: EFBIG when the new file would not fit out, E2BIG for a
 * line longer than the reader takes; out is then to be thrown away. */
static int
rewrite_file(const char *path, const char *section, const char *key,
    const char *value, struct buf *out)
{
	FILE *fp;
	char line[4096], cur[64] = "";
	int done = 0, in_section = 0, rc = 0;
	size_t n;

	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (rc == 0 && fgets(line, sizeof line, fp)) {
		char *s = line, *e;
		size_t klen = strlen(key);

		n = strlen(line);
		if (line[n - 1] != '\n' && !feof(fp)) {
			fclose(fp);
			errno = E2BIG;
			return -1;
		}
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '[' && (e = strchr(s, ']')) != NULL) {
			if (in_section && !done) {
				rc |= buf_printf(out, "%s = %s\n", key, value);
				done = 1;
			}
			snprintf(cur, sizeof cur, "%.*s", (int)(e - s - 1), s + 1);
			in_section = strcmp(cur, section) == 0;
		} else if (in_section && !done && strncmp(s, key, klen) == 0 &&
		    (s[klen] == ' ' || s[klen] == '\t' || s[klen] == '=')) {
			rc |= buf_printf(out, "%.*s%s = %s\n", (int)(s - line),
			    line, key, value);
			done = 1;
			continue;
		}
		rc |= buf_adds(out, line);
		if (line[n - 1] != '\n')
			rc |= buf_adds(out, "\n");
	}
	fclose(fp);
	if (rc == 0 && !done) {
		if (!in_section)
			rc |= buf_printf(out, "%s[%s]\n", out->len &&
			    out->data[out->len - 1] != '\n' ? "\n" : "",
			    section);
		rc |= buf_printf(out, "%s = %s\n", key, value);
	}
	if (rc != 0) {
		errno = EFBIG;
		return -1;
	}
	return 0;
}

int
config_set_in_file(const char *path, const char *dotted, const char *value,
    struct buf *errors)
{
	const struct option *o = option_find_dotted(dotted);
	const char *why = NULL;
	struct config *scratch = NULL, *check = NULL;
	struct buf text;
	struct stat st;
	int rc = -1;

	buf_init(&text, 1 << 20);
	if (o == NULL) {
		buf_note(errors, "unknown key %s\n", dotted);
		return -1;
	}
	if (strchr(value, '\n') || strchr(value, ';') || strchr(value, '#')) {
		buf_note(errors, "%s: value may not contain newlines, ';' or "
		    "'#'\n", dotted);
		return -1;
	}
	if ((scratch = calloc(1, sizeof *scratch)) == NULL ||
	    (check = calloc(1, sizeof *check)) == NULL)
		goto out;
	config_defaults(scratch);
	if (option_set(scratch, o, value, &why) == -1) {
		buf_note(errors, "%s = \"%s\": %s\n", dotted, value, why);
		goto out;
	}
	if (rewrite_file(path, o->section, o->key, value, &text) == -1) {
		if (errno == EFBIG)
			buf_note(errors, "%s: the file would be larger than %zu "
			    "KiB; left as it is\n", path, text.max / 1024);
		else if (errno == E2BIG)
			buf_note(errors, "%s: a line is longer than 4 KiB; left "
			    "as it is\n", path);
		else
			buf_note(errors, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	/* The whole new file must still be valid before it replaces the old. */
	if (config_load_string(path, text.data, check, errors) == -1)
		goto out;
	if (file_write_atomic(path, text.data, text.len,
	    stat(path, &st) == 0 ? st.st_mode & 07777 : 0640) == -1) {
		buf_note(errors, "%s: cannot write: %s\n", path,
		    strerror(errno));
		goto out;
	}
	rc = 0;
	/* Every way out frees the same: one label. */
out:
	config_free(scratch);
	config_free(check);
	buf_free(&text);
	return rc;
}
