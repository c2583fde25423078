/* main.c — bastionctl: global options, the command tables, argument
 * parsing for every command and the usage text. Exit 0 ok, 1 error,
 * 2 usage. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const struct ctl_command *const tables[] = {
	ctl_machines_commands,
	ctl_templates_commands,
	ctl_os_commands,
	ctl_config_commands,
	ctl_auth_commands,
	ctl_settings_commands,
	ctl_audit_commands,
	ctl_tokens_commands,
	ctl_agents_commands,
	ctl_jobs_commands,
	ctl_containers_commands,
	ctl_guests_commands,
	ctl_guest_console_commands,
	ctl_misc_commands,
	ctl_alerts_commands,
	ctl_cluster_commands,
	ctl_cluster_join_commands,
	NULL,
};

static void
command_usage(const struct ctl_command *cmd, FILE *fp)
{
	fprintf(fp, "usage: bastionctl %s%s%s%s%s\n", cmd->noun,
	    cmd->verb ? " " : "", cmd->verb ? cmd->verb : "",
	    *cmd->synopsis ? " " : "", cmd->synopsis);
	if (cmd->help)
		fprintf(fp, "  %s\n", cmd->help);
}

static void
usage(FILE *fp)
{
	const struct ctl_command *cmd;
	char line[160];
	int i;

	fprintf(fp, "usage: bastionctl [--socket PATH | --server URL] "
	    "[--token TOKEN] [--cacert FILE]\n"
	    "                  [--confirm TARGET]\n"
	    "                  COMMAND [ARGUMENTS]\n\n"
	    "Commands:\n");
	for (i = 0; tables[i]; i++)
		for (cmd = tables[i]; cmd->noun; cmd++) {
			if (cmd->hidden)
				continue;
			snprintf(line, sizeof line, "%s%s%s%s%s", cmd->noun,
			    cmd->verb ? " " : "", cmd->verb ? cmd->verb : "",
			    *cmd->synopsis ? " " : "", cmd->synopsis);
			/* A long synopsis gets a line of its own. */
			if (strlen(line) > 44)
				fprintf(fp, "  %s\n  %-44s %s\n", line, "",
				    cmd->help);
			else
				fprintf(fp, "  %-44s %s\n", line, cmd->help);
		}
	fprintf(fp, "\nGlobal options (before the command):\n"
	    "  --socket PATH   the admin socket (BASTION_SOCKET; default "
	    CTL_DEFAULT_SOCKET ")\n"
	    "  --server URL    the control listener, e.g. "
	    "https://bastion.lan:8443 (BASTION_URL)\n"
	    "  --token TOKEN   API token sent as a Bearer token "
	    "(BASTION_TOKEN)\n"
	    "  --cacert FILE   CA certificate to trust for --server "
	    "(BASTION_CACERT)\n"
	    "  --confirm TARGET  name the target of a destructive action "
	    "(production mode)\n"
	    "  -h, --help      this text; COMMAND --help describes one "
	    "command\n"
	    "  --version       print bastionctl's version and exit\n\n"
	    "Exit status: 0 ok, 1 error, 2 usage. See bastionctl(8).\n");
}

static void
noun_usage(const char *noun, FILE *fp)
{
	const struct ctl_command *cmd;
	int i;

	for (i = 0; tables[i]; i++)
		for (cmd = tables[i]; cmd->noun; cmd++)
			if (strcmp(cmd->noun, noun) == 0 && !cmd->hidden)
				command_usage(cmd, fp);
}

int
ctl_usage_error(const struct ctl_command *cmd, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("bastionctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	command_usage(cmd, stderr);
	return CTL_USAGE;
}

int
ctl_parse_count(const char *s, long long max, long long *out)
{
	char *end;
	long long n;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (*end != '\0' || errno != 0 || n < 0 || n > max)
		return -1;
	*out = n;
	return 0;
}

static const struct ctl_opt *
find_opt(const struct ctl_opt *opts, const char *name, size_t len)
{
	for (; opts && opts->name; opts++)
		if (strlen(opts->name) == len &&
		    strncmp(opts->name, name, len) == 0)
			return opts;
	return NULL;
}

static const struct ctl_multi *
find_multi(const struct ctl_multi *multi, const char *name, size_t len)
{
	for (; multi && multi->name; multi++)
		if (strlen(multi->name) == len &&
		    strncmp(multi->name, name, len) == 0)
			return multi;
	return NULL;
}

int
ctl_parse_json_arg(const struct ctl_command *cmd, int argc, char *argv[],
    int *json, struct ctl_args *a)
{
	const struct ctl_opt opts[] = {
		{ "json", NULL, json },
		{ NULL, NULL, NULL },
	};

	*json = 0;
	return ctl_parse_args(cmd, argc, argv, opts, a);
}

int
ctl_parse_args(const struct ctl_command *cmd, int argc, char *argv[],
    const struct ctl_opt *opts, struct ctl_args *a)
{
	return ctl_parse_args_multi(cmd, argc, argv, opts, NULL, a);
}

/* Both parsers: with command_line, the positional arguments end at
 * max_args and the rest of argv is the command. */
static int
parse(const struct ctl_command *cmd, int argc, char *argv[],
    const struct ctl_opt *opts, const struct ctl_multi *multi,
    int command_line, struct ctl_args *a)
{
	const struct ctl_multi *m;
	const struct ctl_opt *o;
	const char *arg, *name, *eq, *value;
	int i, only_pos = 0;
	size_t len;

	memset(a, 0, sizeof *a);
	a->rc = CTL_USAGE;
	for (m = multi; m && m->name; m++)
		*m->n = 0;
	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (command_line && (a->npos == cmd->max_args ||
		    strcmp(arg, "--") == 0)) {
			if (a->npos < cmd->min_args)
				break;		/* "--" before the target */
			if (strcmp(arg, "--") == 0)
				i++;
			a->rest = argv + i;
			a->nrest = argc - i;
			break;
		}
		if (only_pos || arg[0] != '-' || arg[1] == '\0') {
			if (a->npos == CTL_MAX_POS || a->npos == cmd->max_args) {
				ctl_usage_error(cmd, "unexpected argument '%s'",
				    arg);
				return -1;
			}
			a->pos[a->npos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			command_usage(cmd, stdout);
			a->rc = CTL_OK;
			return -1;
		}
		if (arg[1] != '-') {
			ctl_usage_error(cmd, "unknown option '%s'", arg);
			return -1;
		}
		name = arg + 2;
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		o = find_opt(opts, name, len);
		m = o ? NULL : find_multi(multi, name, len);
		if (o == NULL && m == NULL) {
			ctl_usage_error(cmd, "unknown option '--%.*s'", (int)len,
			    name);
			return -1;
		}
		if (m || o->value) {
			if (eq)
				value = eq + 1;
			else if (i + 1 < argc)
				value = argv[++i];
			else {
				ctl_usage_error(cmd, "option --%s needs a value",
				    m ? m->name : o->name);
				return -1;
			}
			if (o)
				*o->value = value;
			else if (*m->n < m->max)
				m->values[(*m->n)++] = value;
			else {
				ctl_usage_error(cmd, "option --%s given more "
				    "than %d times", m->name, m->max);
				return -1;
			}
		} else {
			if (eq) {
				ctl_usage_error(cmd, "option --%s takes no value",
				    o->name);
				return -1;
			}
			*o->flag = 1;
		}
	}
	if (a->npos < cmd->min_args) {
		ctl_usage_error(cmd, "missing argument");
		return -1;
	}
	if (command_line && a->nrest == 0) {
		ctl_usage_error(cmd, "missing the command to run");
		return -1;
	}
	a->rc = CTL_OK;
	return 0;
}

int
ctl_parse_args_multi(const struct ctl_command *cmd, int argc, char *argv[],
    const struct ctl_opt *opts, const struct ctl_multi *multi,
    struct ctl_args *a)
{
	return parse(cmd, argc, argv, opts, multi, 0, a);
}

int
ctl_parse_command_line(const struct ctl_command *cmd, int argc,
    char *argv[], const struct ctl_opt *opts, const struct ctl_multi *multi,
    struct ctl_args *a)
{
	return parse(cmd, argc, argv, opts, multi, 1, a);
}

/* --name VALUE or --name=VALUE at argv[*i]; 1 if it matched. */
static int
global_opt(int argc, char *argv[], int *i, const char *name,
    const char **value, int *bad)
{
	size_t len = strlen(name);
	const char *arg = argv[*i];

	if (strncmp(arg, name, len) != 0)
		return 0;
	if (arg[len] == '=') {
		*value = arg + len + 1;
		return 1;
	}
	if (arg[len] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "bastionctl: option %s needs a value\n\n", name);
		*bad = 1;
		return 1;
	}
	*value = argv[++*i];
	return 1;
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* Find noun [verb] and run it; argv[0] is the noun. */
static int
dispatch(struct ctl *c, int argc, char *argv[])
{
	const struct ctl_command *cmd, *found = NULL;
	int i, noun_known = 0;

	if (strcmp(argv[0], "help") == 0) {
		if (argc > 1)
			noun_usage(argv[1], stdout);
		else
			usage(stdout);
		return CTL_OK;
	}
	for (i = 0; tables[i] && found == NULL; i++)
		for (cmd = tables[i]; cmd->noun; cmd++) {
			if (strcmp(cmd->noun, argv[0]) != 0)
				continue;
			noun_known = 1;
			if (cmd->verb == NULL ||
			    (argc > 1 && strcmp(cmd->verb, argv[1]) == 0)) {
				found = cmd;
				break;
			}
		}
	if (!noun_known) {
		fprintf(stderr, "bastionctl: unknown command '%s'\n\n", argv[0]);
		usage(stderr);
		return CTL_USAGE;
	}
	if (found == NULL) {
		if (argc > 1 && (strcmp(argv[1], "--help") == 0 ||
		    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)) {
			noun_usage(argv[0], stdout);
			return CTL_OK;
		}
		if (argc > 1)
			fprintf(stderr, "bastionctl: %s: unknown verb '%s'\n",
			    argv[0], argv[1]);
		else
			fprintf(stderr, "bastionctl: %s: missing verb\n", argv[0]);
		noun_usage(argv[0], stderr);
		return CTL_USAGE;
	}
	if (found->verb)
		return found->run(c, found, argc - 1, argv + 1);
	return found->run(c, found, argc, argv);
}

int
main(int argc, char *argv[])
{
	struct ctl c;
	const char *sock = NULL, *server = NULL;
	int i, bad = 0, rc;

	memset(&c, 0, sizeof c);
	for (i = 1; i < argc && argv[i][0] == '-' && !bad; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return ctl_finish_output(CTL_OK);
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("bastionctl %s\n", BASTION_VERSION);
			return ctl_finish_output(CTL_OK);
		}
		if (global_opt(argc, argv, &i, "--socket", &sock, &bad) ||
		    global_opt(argc, argv, &i, "--server", &server, &bad) ||
		    global_opt(argc, argv, &i, "--token", &c.token, &bad) ||
		    global_opt(argc, argv, &i, "--cacert", &c.cacert, &bad) ||
		    global_opt(argc, argv, &i, "--confirm", &c.confirm, &bad))
			continue;
		fprintf(stderr, "bastionctl: unknown option '%s'\n\n", argv[i]);
		usage(stderr);
		return CTL_USAGE;
	}
	if (bad) {
		usage(stderr);
		return CTL_USAGE;
	}
	if (i >= argc) {
		fprintf(stderr, "bastionctl: missing command\n\n");
		usage(stderr);
		return CTL_USAGE;
	}
	if (sock && server) {
		fprintf(stderr, "bastionctl: --socket and --server are mutually "
		    "exclusive\n\n");
		usage(stderr);
		return CTL_USAGE;
	}
	/* The command line beats the environment; of the two variables
	 * BASTION_SOCKET wins, as it needs no token. */
	if (sock == NULL && server == NULL) {
		if ((sock = env("BASTION_SOCKET")) == NULL &&
		    (server = env("BASTION_URL")) == NULL)
			sock = CTL_DEFAULT_SOCKET;
	}
	c.socket = sock;
	c.server = server;
	if (c.token == NULL)
		c.token = env("BASTION_TOKEN");
	if (c.cacert == NULL)
		c.cacert = env("BASTION_CACERT");

	rc = dispatch(&c, argc - i, argv + i);
	ctl_http_free(&c);
	return ctl_finish_output(rc);
}
