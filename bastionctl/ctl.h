/* ctl.h — bastionctl: the API client (http.c), argument parsing and
 * dispatch (main.c), output helpers (out.c) and the command tables, one
 * file per noun (machines.c, templates.c, config.c, auth.c, settings.c,
 * audit.c, tokens.c, agents.c, jobs.c, containers.c, guests.c, misc.c). */
#ifndef BASTION_CTL_H
#define BASTION_CTL_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "buf.h"
#include "mac.h"

#define CTL_DEFAULT_SOCKET	"/var/lib/bastion/admin.sock"
#define CTL_MAX_RESPONSE	(16 * 1024 * 1024)
#define CTL_TIMEOUT_MS		60000L

/* Exit codes, as operators' scripts expect them. */
enum {
	CTL_OK = 0,
	CTL_ERR = 1,
	CTL_USAGE = 2,
};

struct ctl_http;

/* Where and how to reach bastion; filled by main.c. */
struct ctl {
	const char	*socket;	/* admin socket, or NULL */
	const char	*server;	/* base URL, or NULL (exactly one is set) */
	const char	*token;		/* Bearer token, or NULL */
	const char	*cacert;	/* CA bundle for HTTPS, or NULL */
	const char	*ca_pem;	/* or the only CA to trust, as PEM text
					   (cluster join's pinned CA) */
	const char	*confirm;	/* sent as X-Confirm (production mode) */
	long		 timeout_ms;	/* whole request; 0: CTL_TIMEOUT_MS */
	int		 quiet_errors;	/* ctl_http: do not print failures */
	struct ctl_http	*http;		/* lazily created by http.c */
};

/* --- http.c ------------------------------------------------------- */

enum ctl_fail {
	CTL_FAIL_NONE,
	CTL_FAIL_CONNECT,	/* no answer at all (connect, TLS, timeout) */
	CTL_FAIL_SERVER,	/* an HTTP error status */
	CTL_FAIL_LOCAL,		/* bad response, out of memory, interrupted */
};

/*
 * One request. path starts with "/" and is already escaped (see
 * ctl_escape). body, when not NULL, is sent as JSON. On a 2xx answer the
 * body is parsed into *out (the caller owns it; out may be NULL to
 * discard it) and 0 is returned. Otherwise an explanation is printed on
 * stderr ("bastionctl: <server message>", unless quiet_errors) and -1 is
 * returned; *fail (may be NULL) and *status (may be NULL) say what
 * happened.
 */
int	ctl_request(struct ctl *, const char *method, const char *path,
	    const json_t *body, json_t **out, enum ctl_fail *fail, long *status);
/* Same, but moves the raw 2xx body into *out (text endpoints such as
 * metrics); the caller buf_free()s it. */
int	ctl_request_raw(struct ctl *, const char *method, const char *path,
	    const json_t *body, struct buf *out, enum ctl_fail *fail,
	    long *status);
/* curl_easy_escape into a malloc'd string (free() it), or NULL. */
char	*ctl_escape(const char *);
/* prefix + escaped arg + suffix, malloc'd (free() it), or NULL. */
char	*ctl_path3(const char *prefix, const char *arg, const char *suffix);
/* /api/v1/agents/TARGET/NOUN[/ITEM[/ACTION]], TARGET and ITEM escaped,
 * malloc'd (free() it), or NULL. */
char	*ctl_agent_path(const char *target, const char *noun,
	    const char *item, const char *action);
/* Set by SIGINT/SIGTERM while a command wants to stop cleanly (watch);
 * an interrupted transfer fails with CTL_FAIL_LOCAL. */
extern volatile sig_atomic_t ctl_interrupted;
void	ctl_http_free(struct ctl *);

/* --- tty.c: an interactive session over a stream ------------------- */

/* The terminal's size when stdin is one. 0 or -1. */
int	ctl_tty_size(int *rows, int *cols);
/* The terminal raw (when stdin is one), keys to stream sid, its output
 * to stdout, resizes sent, until the node ends it (its exit code) or
 * Ctrl-] (CTL_OK); label names it in the messages. */
int	ctl_tty_session(struct ctl *, const char *sid, const char *label);

/* --- main.c: commands and their arguments --------------------------- */

struct ctl_command;
typedef int (*ctl_run)(struct ctl *, const struct ctl_command *, int argc,
    char *argv[]);

struct ctl_command {
	const char	*noun;
	const char	*verb;		/* NULL: the noun alone is the command */
	const char	*synopsis;	/* arguments after noun [verb] */
	const char	*help;		/* one line */
	ctl_run		 run;
	int		 min_args;	/* positional arguments */
	int		 max_args;
	int		 hidden;	/* not in the usage text */
};

/* Command tables, each ending with a zeroed entry. */
extern const struct ctl_command ctl_machines_commands[];
extern const struct ctl_command ctl_templates_commands[];
extern const struct ctl_command ctl_os_commands[];
extern const struct ctl_command ctl_cluster_commands[];
extern const struct ctl_command ctl_cluster_join_commands[];
extern const struct ctl_command ctl_config_commands[];
extern const struct ctl_command ctl_auth_commands[];
extern const struct ctl_command ctl_settings_commands[];
extern const struct ctl_command ctl_audit_commands[];
extern const struct ctl_command ctl_tokens_commands[];
extern const struct ctl_command ctl_agents_commands[];
extern const struct ctl_command ctl_jobs_commands[];
extern const struct ctl_command ctl_misc_commands[];
extern const struct ctl_command ctl_alerts_commands[];
extern const struct ctl_command ctl_containers_commands[];
extern const struct ctl_command ctl_guests_commands[];
extern const struct ctl_command ctl_guest_console_commands[];
/* guest_console.c: guests console TARGET GUEST [--force]. */
int	guests_console(struct ctl *, const struct ctl_command *, int argc,
	    char *argv[]);

/* One option of a command: --name, --name=value or --name value. */
struct ctl_opt {
	const char	 *name;
	const char	**value;	/* takes a value, stored here */
	int		 *flag;		/* or is a flag, set to 1 */
};

/* A repeatable option (--ssh-key A --ssh-key B): every value, in order. */
struct ctl_multi {
	const char	 *name;
	const char	**values;	/* room for max values */
	int		  max;
	int		 *n;		/* how many were given */
};

#define CTL_MAX_POS	8

struct ctl_args {
	const char	*pos[CTL_MAX_POS];	/* positional, in order */
	int		 npos;
	char	       **rest;	/* ctl_parse_command_line: the command */
	int		 nrest;
	int		 rc;	/* exit code when ctl_parse_args said stop */
};

/*
 * Parse argv (argv[0] is the verb, or the noun for verb-less commands)
 * against opts (ending with a zeroed entry; --help/-h is implied) and the
 * command's min_args/max_args. Options may come before or after
 * positional arguments; "--" ends them. Returns 0 to go on, or -1 to
 * stop with a->rc: CTL_OK after --help (usage on stdout), CTL_USAGE after
 * a usage error (message and usage on stderr).
 */
int	ctl_parse_args(const struct ctl_command *, int argc, char *argv[],
	    const struct ctl_opt *, struct ctl_args *a);
/* The same with repeatable options as well (multi ends with a zeroed
 * entry; may be NULL); more than max values is a usage error. */
int	ctl_parse_args_multi(const struct ctl_command *, int argc,
	    char *argv[], const struct ctl_opt *, const struct ctl_multi *multi,
	    struct ctl_args *a);
/* The same for a command that runs a command line (exec): options, then
 * the command's max_args positional arguments (a target), then — after
 * them or after "--" — everything left is the command, dashes and all,
 * in a->rest (a->nrest of them, at least one). */
int	ctl_parse_command_line(const struct ctl_command *, int argc,
	    char *argv[], const struct ctl_opt *, const struct ctl_multi *multi,
	    struct ctl_args *a);
/* ctl_parse_args for a command whose only option is --json. */
int	ctl_parse_json_arg(const struct ctl_command *, int argc, char *argv[],
	    int *json, struct ctl_args *a);
/* Print "bastionctl: <message>" and the command's usage on stderr;
 * returns CTL_USAGE. */
int	ctl_usage_error(const struct ctl_command *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* A non-negative decimal integer up to max, or -1. */
int	ctl_parse_count(const char *, long long max, long long *out);

/* --- out.c: output ------------------------------------------------ */

/* "bastionctl: <message>" on stderr; returns CTL_ERR. The message is
 * cleaned as a whole (ctl_clean), whatever server text it carries. */
int	ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	ctl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One line on stdout: fmt formatted, cleaned as a whole (ctl_clean), and
 * a newline. Every line that shows server-supplied text goes through it
 * (or through ctl_clean or a table). */
void	ctl_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Pretty-print a JSON value on stdout followed by a newline. */
int	ctl_print_json(const json_t *);

/* String member, "" when absent or not a string. */
const char	*ctl_jstr(const json_t *, const char *key);
/* Integer member, def when absent or not an integer. */
long long	 ctl_jint(const json_t *, const char *key, long long def);

/* Human sizes: 1073741824 -> "1.0 GiB"; negative -> "-". */
void	ctl_fmt_size(char *out, size_t len, long long bytes);
/* API timestamp ("2024-05-01T12:00:00.000Z") as local
 * "2024-05-01 14:00:00"; "-" when NULL or unparsable. */
void	ctl_fmt_time(char *out, size_t len, const char *iso);
/* "LABEL            2024-05-01 14:00:00" from o's timestamp member key. */
void	ctl_print_time(const char *label, const json_t *o, const char *key);
/* "[#####-----] 50%" */
void	ctl_fmt_progress(char *out, size_t len, long long percent);
/* Copy s for a terminal: C0 controls (newline and tab included), DEL,
 * C1 controls (U+0080..U+009F: \xc2\x9b is CSI) and invalid UTF-8
 * become '?', "" becomes "-" when dash is set. Returns out. */
char	*ctl_clean(const char *s, char *out, size_t len, int dash);

/* Aligned columns; every cell is cleaned; the last column is not padded. */
#define CTL_TABLE_MAX_COLS	16
struct ctl_table;
/* ncols header strings follow; NULL when out of memory. */
struct ctl_table *ctl_table_new(int ncols, ...);
/* Add a row: exactly ncols strings (NULL or "" is shown as "-"). */
int	ctl_table_row(struct ctl_table *, ...);
void	ctl_table_print(struct ctl_table *, FILE *, int indent);
void	ctl_table_free(struct ctl_table *);

/* "unexpected answer from the server for WHAT"; returns CTL_ERR. */
int	ctl_bad_answer(const char *what);
/*
 * A listing: GET path (escaped), which must answer a JSON array (else
 * ctl_bad_answer(what)). With json the array goes to stdout; otherwise
 * each element becomes row(t, element) (-1: out of memory) and t is
 * printed. t is the caller's new table with its headers (NULL: out of
 * memory) and is freed here. Returns the exit code.
 */
int	ctl_list(struct ctl *, const char *path, const char *what, int json,
	    struct ctl_table *t, int (*row)(struct ctl_table *, const json_t *));
/* The same for one object: print(o) or, with json, the object. */
int	ctl_show(struct ctl *, const char *path, const char *what, int json,
	    void (*print)(const json_t *));
/*
 * A listing of what the nodes run (containers, guests): GET path answers
 * one node (one_node), or the nodes as an array, or under nodes_key. A
 * table gets row(t, node, item) for each item of a node's items_key,
 * after notes(node); json prints one flat array of the items, each with
 * its node's fields named in carry (NULL-terminated). t as for ctl_list.
 */
struct ctl_node_list {
	const char		*what;		/* "the guest list" */
	const char		*nodes_key;	/* NULL: the answer is the array */
	const char		*items_key;
	const char *const	*carry;
	void	(*notes)(const json_t *node);
	int	(*row)(struct ctl_table *, const json_t *node,
		    const json_t *item);
};
int	ctl_node_list(struct ctl *, const char *path, int one_node, int json,
	    struct ctl_table *t, const struct ctl_node_list *);
/* Flush stdout; CTL_ERR with a message if writing failed. */
int	ctl_finish_output(int rc);

/* --- jobs.c -------------------------------------------------------- */

/* POST /api/v1/jobs. With json (the job) or detach (its id) it is
 * printed and the exit code returned; otherwise -2 and the caller follows
 * job *id. */
int	ctl_job_submit(struct ctl *, const json_t *body, int json, int detach,
	    long long *id);
/* Poll job id until it has finished: its JSON into *out and CTL_OK;
 * CTL_ERR, or 130 after ^C. */
int	ctl_job_wait(struct ctl *, long long id, json_t **out);
/* Print job id's output as it comes (stdout/stderr) until it ends; the
 * remote exit code, or 130 after ^C (the job goes on). */
int	ctl_job_follow(struct ctl *, long long id);
/* "TARGET: what the agent said (job N)" on stdout for a done job and
 * CTL_OK; otherwise an error on stderr and CTL_ERR. */
int	ctl_job_report(const char *target, const json_t *job);

/* --- machines.c --------------------------------------------------- */

/* Normalise a MAC the user typed (any common spelling) into out; -1 with
 * a message when it is not one, so garbage never reaches a URL. */
int	ctl_mac_arg(const char *in, char out[MAC_STRLEN]);
/* POST machines/MAC/reprovision with body (the install changes; "reboot"
 * is added) so the machine's agent reboots it into network boot; prints
 * what was queued (or the JSON) and waits for the agent's answer unless
 * detach or json. */
int	ctl_reprovision(struct ctl *, const char *mac, json_t *body, int json,
	    int detach);

/* --- templates.c -------------------------------------------------- */

/* Read a whole file ("-": standard input) of at most max bytes into *out
 * (NUL-terminated; the caller buf_free()s it). -1 with a message naming
 * the file otherwise. */
int	ctl_read_file(const char *path, size_t max, struct buf *out);

#endif
