/* machines.c — bastionctl machines list|show|install|reprovision|events|
 * forget|watch. install and reprovision queue an install (or a reinstall
 * that keeps the role's preserved volumes) with SSH public keys read from
 * OpenSSH .pub / authorized_keys-style files. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "ctl.h"
#include "mac.h"

#define KEY_FILES_MAX	32		/* --ssh-key options */
#define KEY_FILE_MAX	(64 * 1024)	/* bytes per file */
#define EVENTS_PAGE	1000	/* the API's largest limit */
#define WATCH_PERIOD_MS	1000

static int
bad_answer(const char *what)
{
	return ctl_error("unexpected answer from the server for %s", what);
}

/* --- list --------------------------------------------------------------- */

/* The machine list as a table; -1 when out of memory. */
static int
list_table(const json_t *list)
{
	struct ctl_table *t;
	const json_t *m, *sum;
	char cpus[32], mem[32], disks[64], boot[32], size[32];
	long long d, db;
	size_t i;

	if ((t = ctl_table_new(9, "MAC", "STATE", "HOSTNAME", "IP", "CPUS",
	    "MEMORY", "DISKS", "LAST BOOT", "ATTENTION")) == NULL)
		return -1;
	json_array_foreach(list, i, m) {
		snprintf(cpus, sizeof cpus, "-");
		snprintf(mem, sizeof mem, "-");
		snprintf(disks, sizeof disks, "-");
		if (json_is_object(sum = json_object_get(m, "summary"))) {
			d = ctl_jint(sum, "disks", -1);
			db = ctl_jint(sum, "disk_bytes", -1);
			if (ctl_jint(sum, "cpu_threads", -1) >= 0)
				snprintf(cpus, sizeof cpus, "%lld",
				    ctl_jint(sum, "cpu_threads", 0));
			ctl_fmt_size(mem, sizeof mem,
			    ctl_jint(sum, "memory_bytes", -1));
			if (d >= 0 && db >= 0) {
				ctl_fmt_size(size, sizeof size, db);
				snprintf(disks, sizeof disks, "%lld (%s)", d,
				    size);
			} else if (d >= 0)
				snprintf(disks, sizeof disks, "%lld", d);
		}
		ctl_fmt_time(boot, sizeof boot, json_string_value(
		    json_object_get(m, "last_boot_at")));
		if (ctl_table_row(t, ctl_jstr(m, "mac"), ctl_jstr(m, "state"),
		    ctl_jstr(m, "hostname"), ctl_jstr(m, "ip"), cpus, mem, disks,
		    boot, ctl_jstr(json_object_get(m, "attention"), "level")) ==
		    -1) {
			ctl_table_free(t);
			return -1;
		}
	}
	ctl_table_print(t, stdout, 0);
	ctl_table_free(t);
	return 0;
}

static int
machines_list(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *state = NULL;
	int json = 0, rc = CTL_ERR;
	const struct ctl_opt opts[] = {
		{ "state", &state, NULL },
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_args a;
	struct buf path;
	json_t *list;
	char *esc = NULL;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	buf_init(&path, 1024);
	if ((state && (esc = ctl_escape(state)) == NULL) ||
	    buf_printf(&path, "/api/v1/machines%s%s", esc ? "?state=" : "",
	    esc ? esc : "") == -1) {
		ctl_error("out of memory");
		goto err_path;
	}
	if (ctl_request(c, "GET", path.data, NULL, &list, NULL, NULL) == -1)
		goto err_path;
	if (!json_is_array(list))
		rc = bad_answer("the machine list");
	else if (json)
		rc = ctl_print_json(list) == 0 ? CTL_OK : CTL_ERR;
	else if (list_table(list) == -1)
		rc = ctl_error("out of memory");
	else
		rc = CTL_OK;
	json_decref(list);
err_path:
	free(esc);
	buf_free(&path);
	return rc;
}

/* --- show --------------------------------------------------------------- */

static void
kv(int indent, const char *key, const char *value)
{
	char clean[1024];

	printf("%*s%-*s %s\n", indent, "", 14 - indent, key,
	    ctl_clean(value, clean, sizeof clean, 1));
}

static void
kv_time(const char *key, const json_t *o, const char *member)
{
	char t[32];

	ctl_fmt_time(t, sizeof t, json_string_value(json_object_get(o, member)));
	kv(0, key, t);
}

static const char *
plural(long long n)
{
	return n == 1 ? "" : "s";
}

/* "  LABEL:" and a table of arr's elements (row(t, element) each, -1:
 * out of memory), or "none"; t (NULL: out of memory) is freed. */
static int
show_table(const char *label, const json_t *arr, struct ctl_table *t,
    int (*row)(struct ctl_table *, const json_t *))
{
	const json_t *el;
	size_t i;
	int rc = -1;

	if (json_array_size(arr) == 0) {
		kv(2, label, "none");
		ctl_table_free(t);
		return 0;
	}
	if (t == NULL)
		return -1;
	printf("  %s\n", label);
	json_array_foreach(arr, i, el)
		if (row(t, el) == -1)
			goto out;
	ctl_table_print(t, stdout, 4);
	rc = 0;
out:
	ctl_table_free(t);
	return rc;
}

static int
disk_line(struct ctl_table *t, const json_t *d)
{
	const json_t *rot = json_object_get(d, "rotational");
	char size[32];

	ctl_fmt_size(size, sizeof size, ctl_jint(d, "size_bytes", -1));
	return ctl_table_row(t, ctl_jstr(d, "name"), size, ctl_jstr(d, "model"),
	    ctl_jstr(d, "serial"), json_is_true(rot) ? "hdd" :
	    json_is_false(rot) ? "ssd" : "-");
}

static int
nic_line(struct ctl_table *t, const json_t *n)
{
	long long mbps = ctl_jint(n, "speed_mbps", -1);
	char speed[32] = "-";

	if (mbps > 0)
		snprintf(speed, sizeof speed, "%lld Mb/s", mbps);
	return ctl_table_row(t, ctl_jstr(n, "name"), ctl_jstr(n, "mac"),
	    ctl_jstr(n, "driver"), speed,
	    json_is_true(json_object_get(n, "boot")) ? "yes" : "");
}

static int
show_hardware(const json_t *m)
{
	const json_t *hw = json_object_get(m, "hardware");
	const json_t *cpu, *dmi;
	char line[1024], model[256], t[32];
	long long s, co, th;

	printf("\n");
	if (!json_is_object(hw)) {
		printf("Hardware:      not reported yet (the machine reports "
		    "when it boots the discovery image)\n");
		return 0;
	}
	ctl_fmt_time(t, sizeof t, json_string_value(json_object_get(m,
	    "hardware_updated_at")));
	printf("Hardware (reported %s):\n", t);
	kv(2, "Firmware:", ctl_jstr(hw, "firmware"));
	cpu = json_object_get(hw, "cpu");
	s = ctl_jint(cpu, "sockets", 0);
	co = ctl_jint(cpu, "cores", 0);
	th = ctl_jint(cpu, "threads", 0);
	ctl_clean(ctl_jstr(cpu, "model"), model, sizeof model, 1);
	snprintf(line, sizeof line, "%s, %lld socket%s, %lld core%s, %lld "
	    "thread%s", model, s, plural(s), co, plural(co), th, plural(th));
	kv(2, "CPU:", line);
	ctl_fmt_size(t, sizeof t, ctl_jint(json_object_get(hw, "memory"),
	    "total_bytes", -1));
	kv(2, "Memory:", t);
	dmi = json_object_get(hw, "dmi");
	snprintf(line, sizeof line, "%s%s%s%s%s", ctl_jstr(dmi, "vendor"),
	    *ctl_jstr(dmi, "product") ? " " : "", ctl_jstr(dmi, "product"),
	    *ctl_jstr(dmi, "serial") ? ", serial " : "", ctl_jstr(dmi, "serial"));
	kv(2, "DMI:", line);
	if (*ctl_jstr(dmi, "uuid"))
		kv(2, "DMI UUID:", ctl_jstr(dmi, "uuid"));
	if (show_table("Disks:", json_object_get(hw, "disks"), ctl_table_new(5,
	    "NAME", "SIZE", "MODEL", "SERIAL", "TYPE"), disk_line) == -1 ||
	    show_table("NICs:", json_object_get(hw, "nics"), ctl_table_new(5,
	    "NAME", "MAC", "DRIVER", "SPEED", "BOOT"), nic_line) == -1)
		return -1;
	return 0;
}

/* The current install, when there is one. */
static void
show_install(const json_t *m)
{
	const json_t *in = json_object_get(m, "install");
	char line[64];
	long long n;

	if (!json_is_object(in))
		return;
	printf("\nInstall:\n");
	kv(2, "Role:", ctl_jstr(in, "role"));
	kv(2, "Hostname:", ctl_jstr(in, "hostname"));
	kv(2, "OS:", ctl_jstr(in, "os"));
	kv(2, "Disk:", ctl_jstr(in, "disk"));
	n = (long long)json_array_size(json_object_get(in, "ssh_keys"));
	snprintf(line, sizeof line, "%lld", n);
	kv(2, "SSH keys:", line);
	kv(2, "Status:", ctl_jstr(in, "status"));
	kv(2, "Stage:", ctl_jstr(in, "stage"));
	ctl_fmt_progress(line, sizeof line, ctl_jint(in, "progress", 0));
	kv(2, "Progress:", line);
	snprintf(line, sizeof line, "%lld", ctl_jint(in, "boots", 0));
	kv(2, "Installer boots:", line);
	kv(2, "Reprovision:", json_is_true(json_object_get(in,
	    "reprovision")) ? "yes" : "no");
	if (*ctl_jstr(in, "message"))
		kv(2, "Message:", ctl_jstr(in, "message"));
}

/* The machine's node agent, when one enrolled. */
static void
show_agent(const json_t *m)
{
	const json_t *ag = json_object_get(m, "agent");
	char t[64];

	if (!json_is_object(ag))
		return;
	printf("\nAgent:\n");
	kv(2, "ID:", ctl_jstr(ag, "id"));
	kv(2, "State:", json_is_true(json_object_get(ag, "revoked")) ?
	    "revoked" : "enrolled");
	ctl_fmt_time(t, sizeof t, ctl_jstr(ag, "enrolled_at"));
	kv(2, "Enrolled:", t);
	ctl_fmt_time(t, sizeof t, ctl_jstr(ag, "last_heartbeat_at"));
	kv(2, "Last heartbeat:", t);
	ctl_fmt_time(t, sizeof t, ctl_jstr(ag, "cert_expires_at"));
	kv(2, "Cert expires:", t);
}

static int
machines_show(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json = 0, rc = CTL_ERR;
	const struct ctl_opt opts[] = {
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	char mac[MAC_STRLEN], path[64], line[256];
	struct ctl_args a;
	json_t *m;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (ctl_mac_arg(a.pos[0], mac) == -1)
		return CTL_ERR;
	snprintf(path, sizeof path, "/api/v1/machines/%s", mac);
	if (ctl_request(c, "GET", path, NULL, &m, NULL, NULL) == -1)
		return CTL_ERR;
	if (!json_is_object(m)) {
		rc = bad_answer(mac);
		goto out;
	}
	if (json) {
		rc = ctl_print_json(m) == 0 ? CTL_OK : CTL_ERR;
		goto out;
	}
	kv(0, "MAC:", ctl_jstr(m, "mac"));
	kv(0, "State:", ctl_jstr(m, "state"));
	kv(0, "Hostname:", ctl_jstr(m, "hostname"));
	kv(0, "IP:", ctl_jstr(m, "ip"));
	kv(0, "UUID:", ctl_jstr(m, "uuid"));
	kv(0, "Serial:", ctl_jstr(m, "serial"));
	snprintf(line, sizeof line, "%s%s%s%s", ctl_jstr(m, "arch"),
	    *ctl_jstr(m, "platform") ? " (" : "", ctl_jstr(m, "platform"),
	    *ctl_jstr(m, "platform") ? ")" : "");
	kv(0, "Arch:", line);
	snprintf(line, sizeof line, "%lld (%lld in this state)",
	    ctl_jint(m, "boots", 0), ctl_jint(m, "boots_in_state", 0));
	kv(0, "Boots:", line);
	kv_time("Created:", m, "created_at");
	kv_time("Updated:", m, "updated_at");
	kv_time("Last boot:", m, "last_boot_at");
	show_install(m);
	show_agent(m);
	if (show_hardware(m) == -1)
		rc = ctl_error("out of memory");
	else
		rc = CTL_OK;
out:
	json_decref(m);
	return rc;
}

/* --- events ------------------------------------------------------------- */

/* Every event of mac after id *after, oldest first, appended to arr;
 * *after moves to the last id seen. */
static int
events_fetch(struct ctl *c, const char *mac, long long *after, json_t *arr,
    enum ctl_fail *fail, long *status)
{
	char path[128];
	json_t *page, *ev;
	size_t i, n;
	long long id;

	for (;;) {
		snprintf(path, sizeof path, "/api/v1/machines/%s/events?"
		    "after=%lld&limit=%d", mac, *after, EVENTS_PAGE);
		if (ctl_request(c, "GET", path, NULL, &page, fail, status) == -1)
			return -1;
		if (!json_is_array(page))
			goto err_answer;
		n = json_array_size(page);
		json_array_foreach(page, i, ev) {
			/* Ids only grow: anything else would loop forever. */
			if ((id = ctl_jint(ev, "id", -1)) <= *after)
				goto err_answer;
			*after = id;
			if (json_array_append(arr, ev) == -1)
				goto err_answer;
		}
		json_decref(page);
		if (n < EVENTS_PAGE)
			return 0;
	}

err_answer:
	json_decref(page);
	if (fail)
		*fail = CTL_FAIL_LOCAL;
	bad_answer("the events");
	return -1;
}

static int
machines_events(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json = 0, rc = CTL_ERR;
	const struct ctl_opt opts[] = {
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	char mac[MAC_STRLEN], t[32], prog[32];
	struct ctl_table *tab;
	struct ctl_args a;
	long long after = 0;
	json_t *arr, *ev;
	size_t i;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (ctl_mac_arg(a.pos[0], mac) == -1)
		return CTL_ERR;
	if ((arr = json_array()) == NULL)
		return ctl_error("out of memory");
	if (events_fetch(c, mac, &after, arr, NULL, NULL) == -1)
		goto out;
	if (json) {
		rc = ctl_print_json(arr) == 0 ? CTL_OK : CTL_ERR;
		goto out;
	}
	if ((tab = ctl_table_new(5, "TIME", "STATE", "SOURCE", "PROGRESS",
	    "MESSAGE")) == NULL)
		goto err_mem;
	json_array_foreach(arr, i, ev) {
		ctl_fmt_time(t, sizeof t, json_string_value(json_object_get(ev,
		    "time")));
		if (json_is_integer(json_object_get(ev, "progress")))
			snprintf(prog, sizeof prog, "%lld%%",
			    ctl_jint(ev, "progress", 0));
		else
			snprintf(prog, sizeof prog, "-");
		if (ctl_table_row(tab, t, ctl_jstr(ev, "state"),
		    ctl_jstr(ev, "source"), prog, ctl_jstr(ev, "message")) == -1) {
			ctl_table_free(tab);
			goto err_mem;
		}
	}
	ctl_table_print(tab, stdout, 0);
	ctl_table_free(tab);
	rc = CTL_OK;
	goto out;

err_mem:
	rc = ctl_error("out of memory");
out:
	json_decref(arr);
	return rc;
}

/* --- forget ------------------------------------------------------------- */

static int
machines_forget(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	char mac[MAC_STRLEN], path[64];
	struct ctl_args a;

	if (ctl_parse_args(cmd, argc, argv, NULL, &a) == -1)
		return a.rc;
	if (ctl_mac_arg(a.pos[0], mac) == -1)
		return CTL_ERR;
	snprintf(path, sizeof path, "/api/v1/machines/%s", mac);
	if (ctl_request(c, "DELETE", path, NULL, NULL, NULL, NULL) == -1)
		return CTL_ERR;
	printf("forgot %s\n", mac);
	return CTL_OK;
}

/* --- watch -------------------------------------------------------------- */

struct watched {
	char		mac[MAC_STRLEN];
	long long	last_id;
	int		listed;		/* in the latest machine list */
};

struct watch {
	struct ctl	*c;
	int		 all;		/* every machine, not one */
	struct watched	*w;
	size_t		 n, alloc;
	long long	 left;		/* events still to print; -1: no limit */
	int		 started;	/* failures are retried from now on */
	int		 lost;		/* the last request failed */
	int		 gone;		/* the one machine is not (yet) known */
};

static void
on_signal(int sig)
{
	ctl_interrupted = 1;
}

static struct watched *
watch_add(struct watch *wa, const char *mac, long long last_id)
{
	struct watched *w;
	size_t na;

	if (wa->n == wa->alloc) {
		na = wa->alloc ? wa->alloc * 2 : 16;
		if ((w = reallocarray(wa->w, na, sizeof *w)) == NULL)
			return NULL;
		wa->w = w;
		wa->alloc = na;
	}
	w = &wa->w[wa->n++];
	snprintf(w->mac, sizeof w->mac, "%s", mac);
	w->last_id = last_id;
	w->listed = 1;
	return w;
}

/* Sleep up to ms; returns early (race-free) on SIGINT/SIGTERM. */
static void
watch_sleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	sigset_t block, old;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	if (!ctl_interrupted)
		pselect(0, NULL, NULL, NULL, &ts, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static int
cmp_id(const void *a, const void *b)
{
	long long x = ctl_jint(*(json_t *const *)a, "id", 0);
	long long y = ctl_jint(*(json_t *const *)b, "id", 0);

	return x < y ? -1 : x > y;
}

static void
watch_print(struct watch *wa, const json_t *ev)
{
	char t[32], state[32], source[32], msg[1024], bar[32] = "";
	const json_t *p = json_object_get(ev, "progress");

	ctl_fmt_time(t, sizeof t, json_string_value(json_object_get(ev,
	    "time")));
	ctl_clean(ctl_jstr(ev, "state"), state, sizeof state, 1);
	ctl_clean(ctl_jstr(ev, "source"), source, sizeof source, 1);
	ctl_clean(ctl_jstr(ev, "message"), msg, sizeof msg, 1);
	if (json_is_integer(p)) {
		bar[0] = ' ';
		ctl_fmt_progress(bar + 1, sizeof bar - 1,
		    (long long)json_integer_value(p));
	}
	ctl_line("%s %s %-11s %-9s %s%s", t, ctl_jstr(ev, "mac"), state,
	    source, msg, bar);
	if (wa->left > 0)
		wa->left--;
}

/* Before a request: once the watch runs, only the first failure of a
 * series is explained. */
static void
watch_before(struct watch *wa)
{
	wa->c->quiet_errors = wa->started && wa->lost;
}

static void
watch_answered(struct watch *wa)
{
	wa->c->quiet_errors = 0;
	if (wa->lost)
		ctl_warn("bastion answers again");
	wa->lost = 0;
}

/* A request failed: 0 to carry on (retry next round), -1 to give up. */
static int
watch_failed(struct watch *wa, enum ctl_fail fail, long status)
{
	wa->c->quiet_errors = 0;
	if (ctl_interrupted)
		return 0;
	if (!wa->started)
		return -1;
	if (fail == CTL_FAIL_CONNECT || (fail == CTL_FAIL_SERVER &&
	    status >= 500)) {
		if (!wa->lost)
			ctl_warn("retrying every second until bastion answers");
		wa->lost = 1;
		return 0;
	}
	if (wa->lost && fail == CTL_FAIL_SERVER)
		ctl_error("the server answered HTTP %ld", status);
	return -1;
}

/* Without a MAC: follow the machine list; new machines start at 0 (all
 * their events are new). 0 ok, 1 failed but retry, -1 give up. */
static int
watch_list(struct watch *wa)
{
	enum ctl_fail fail;
	long status = 0;
	const char *mac;
	json_t *list, *m;
	size_t i, j;

	watch_before(wa);
	if (ctl_request(wa->c, "GET", "/api/v1/machines", NULL, &list, &fail,
	    &status) == -1)
		return watch_failed(wa, fail, status) == -1 ? -1 : 1;
	watch_answered(wa);
	if (!json_is_array(list)) {
		json_decref(list);
		bad_answer("the machine list");
		return -1;
	}
	for (j = 0; j < wa->n; j++)
		wa->w[j].listed = 0;
	json_array_foreach(list, i, m) {
		mac = ctl_jstr(m, "mac");
		for (j = 0; j < wa->n; j++)
			if (strcmp(wa->w[j].mac, mac) == 0)
				break;
		if (j < wa->n)
			wa->w[j].listed = 1;
		else if (strlen(mac) == MAC_STRLEN - 1 &&
		    watch_add(wa, mac, 0) == NULL) {
			json_decref(list);
			ctl_error("out of memory");
			return -1;
		}
	}
	json_decref(list);
	/* Forgotten machines leave the set. */
	for (i = j = 0; i < wa->n; i++)
		if (wa->w[i].listed)
			wa->w[j++] = wa->w[i];
	wa->n = j;
	return 0;
}

/* One round: the new events of every watched machine, printed in id
 * (time) order when print is set. -1 to give up, 0 otherwise. */
static int
watch_poll(struct watch *wa, int print)
{
	enum ctl_fail fail;
	json_t **evs = NULL;
	json_t *arr;
	size_t i, k, n, before;
	long status;
	int rc = 0;

	if (wa->all && (rc = watch_list(wa)) != 0)
		return rc == -1 ? -1 : 0;
	if ((arr = json_array()) == NULL)
		return -1;
	for (i = 0; i < wa->n && !ctl_interrupted; i++) {
		before = json_array_size(arr);
		status = 0;
		watch_before(wa);
		if (events_fetch(wa->c, wa->w[i].mac, &wa->w[i].last_id, arr,
		    &fail, &status) == 0) {
			watch_answered(wa);
			wa->gone = 0;
		} else if (fail == CTL_FAIL_SERVER && status == 404) {
			/* Forgotten (or not booted yet): ids only grow, so
			 * keeping last_id is right when it comes back. */
			watch_answered(wa);
			if (!wa->all && !wa->gone)
				ctl_warn("%s is not known (any more); waiting "
				    "for it to network-boot", wa->w[i].mac);
			wa->gone = 1;
		} else {
			rc = watch_failed(wa, fail, status);
			break;
		}
		/* Label each new event with its machine. */
		for (k = before; k < json_array_size(arr); k++)
			json_object_set_new(json_array_get(arr, k), "mac",
			    json_string(wa->w[i].mac));
	}
	/* Print even after a failure: last_id already moved past these. */
	if (!print || (n = json_array_size(arr)) == 0)
		goto out;
	if ((evs = calloc(n, sizeof *evs)) == NULL) {
		ctl_error("out of memory");
		rc = -1;
		goto out;
	}
	for (i = 0; i < n; i++)
		evs[i] = json_array_get(arr, i);
	qsort(evs, n, sizeof *evs, cmp_id);
	for (i = 0; i < n && wa->left != 0; i++)
		watch_print(wa, evs[i]);
	fflush(stdout);
out:
	free(evs);
	json_decref(arr);
	return rc;
}

static int
machines_watch(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *count = NULL;
	const struct ctl_opt opts[] = {
		{ "count", &count, NULL },
		{ NULL, NULL, NULL },
	};
	struct sigaction sa;
	struct ctl_args a;
	struct watch wa;
	char mac[MAC_STRLEN];
	long long n;
	int rc = CTL_ERR;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	memset(&wa, 0, sizeof wa);
	wa.c = c;
	wa.left = -1;
	if (count) {
		if (ctl_parse_count(count, 1LL << 40, &n) == -1 || n == 0)
			return ctl_usage_error(cmd, "--count needs a positive "
			    "number");
		wa.left = n;
	}
	if (a.npos == 1 && ctl_mac_arg(a.pos[0], mac) == -1)
		return CTL_ERR;
	wa.all = a.npos == 0;
	if (!wa.all && watch_add(&wa, mac, 0) == NULL) {
		ctl_error("out of memory");
		goto out;
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* Start where the machines are now: only new events are shown. A
	 * failure here (bastion unreachable, bad token) ends the command. */
	if (watch_poll(&wa, 0) == -1)
		goto out;
	wa.started = 1;
	while (!ctl_interrupted && wa.left != 0) {
		watch_sleep(WATCH_PERIOD_MS);
		if (ctl_interrupted)
			break;
		if (watch_poll(&wa, 1) == -1)
			goto out;
	}
	rc = CTL_OK;
out:
	free(wa.w);
	return rc;
}

/* --- install and reprovision ------------------------------------------- */

int
ctl_mac_arg(const char *in, char out[MAC_STRLEN])
{
	char clean[64];

	if (mac_normalize(in, out) == -1) {
		ctl_error("'%s' is not a MAC address (e.g. 52:54:00:12:34:56, "
		    "52-54-00-12-34-56 or 5254.0012.3456)",
		    ctl_clean(in, clean, sizeof clean, 0));
		return -1;
	}
	return 0;
}

/*
 * One line of a key file into keys. Blank lines and # comments are
 * skipped; the fields are re-joined with single spaces (the server wants
 * "TYPE BASE64 [COMMENT]"). A private key is refused here: it must never
 * leave this machine. cfile is the file's name, cleaned for messages.
 * 0, or -1 with a message.
 */
static int
add_key_line(json_t *keys, const char *cfile, unsigned long line, char *s,
    size_t len)
{
	size_t i, o = 0;
	int space = 0;
	json_t *v;

	if (memchr(s, '\0', len) != NULL) {
		ctl_error("%s:%lu: a NUL byte: not an OpenSSH public key file",
		    cfile, line);
		return -1;
	}
	/* In place: squeeze runs of blanks, drop leading and trailing ones
	 * (and the \r of CRLF files). */
	for (i = 0; i < len; i++) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
			space = o > 0;
			continue;
		}
		if (space)
			s[o++] = ' ';
		space = 0;
		s[o++] = s[i];
	}
	s[o] = '\0';
	if (o == 0 || s[0] == '#')
		return 0;
	if (strncmp(s, "-----BEGIN", 10) == 0 || strstr(s, "PRIVATE KEY") ||
	    strncmp(s, "PuTTY-User-Key-File", 19) == 0) {
		ctl_error("%s:%lu: this is a private key; pass the public key "
		    "(the .pub file) instead", cfile, line);
		return -1;
	}
	if ((v = json_string(s)) == NULL) {
		ctl_error("%s:%lu: not UTF-8 text", cfile, line);
		return -1;
	}
	if (json_array_append_new(keys, v) == -1) {
		ctl_error("out of memory");
		return -1;
	}
	return 0;
}

/* Every key of every file, in order, into a new array *out. */
static int
read_keys(const char *const *files, int nfiles, json_t **out)
{
	struct buf b;
	json_t *keys;
	char *p, *nl, cfile[256];
	unsigned long line;
	size_t before;
	int i, stdin_used = 0;

	if ((keys = json_array()) == NULL) {
		ctl_error("out of memory");
		return -1;
	}
	for (i = 0; i < nfiles; i++)
		if (strcmp(files[i], "-") == 0 && stdin_used++) {
			ctl_error("--ssh-key -: standard input can be read only "
			    "once");
			goto err_keys;
		}
	for (i = 0; i < nfiles; i++) {
		ctl_clean(strcmp(files[i], "-") == 0 ? "(standard input)" :
		    files[i], cfile, sizeof cfile, 0);
		if (ctl_read_file(files[i], KEY_FILE_MAX, &b) == -1)
			goto err_keys;
		before = json_array_size(keys);
		for (p = b.data, line = 1; p < b.data + b.len; p = nl + 1,
		    line++) {
			if ((nl = memchr(p, '\n', (size_t)(b.data + b.len - p))) ==
			    NULL)
				nl = b.data + b.len;
			*nl = '\0';
			if (add_key_line(keys, cfile, line, p,
			    (size_t)(nl - p)) == -1) {
				buf_free(&b);
				goto err_keys;
			}
		}
		buf_free(&b);
		if (json_array_size(keys) == before) {
			ctl_error("%s: no SSH public key in it", cfile);
			goto err_keys;
		}
	}
	*out = keys;
	return 0;

err_keys:
	json_decref(keys);
	return -1;
}

/* Add "key": value to body unless value is NULL. */
static int
set_opt_string(json_t *body, const char *key, const char *value)
{
	json_t *v;

	if (value == NULL)
		return 0;
	if ((v = json_string(value)) == NULL) {
		ctl_error("--%s must be UTF-8 text", key);
		return -1;
	}
	if (json_object_set_new(body, key, v) == -1) {
		ctl_error("out of memory");
		return -1;
	}
	return 0;
}

/* "queued install of MAC: HOST as ROLE, OS on DISK, N SSH keys". */
static void
print_queued(const char *what, const char *mac, const json_t *m)
{
	const json_t *in = json_object_get(m, "install");
	char host[300], role[64], os[64], disk[64];
	size_t n = json_array_size(json_object_get(in, "ssh_keys"));

	ctl_clean(ctl_jstr(in, "hostname"), host, sizeof host, 1);
	ctl_clean(ctl_jstr(in, "role"), role, sizeof role, 1);
	ctl_clean(ctl_jstr(in, "os"), os, sizeof os, 1);
	ctl_clean(ctl_jstr(in, "disk"), disk, sizeof disk, 1);
	ctl_line("queued %s of %s: %s as %s, %s on %s, %zu SSH key%s%s", what,
	    mac, host, role, os, disk, n, n == 1 ? "" : "s",
	    json_is_true(json_object_get(in, "reprovision")) ?
	    "; preserved volumes are kept" : "");
}

/* What install and reprovision send; NULL members are left out. */
struct queue_req {
	const char	*hostname, *role, *os, *disk;
	const char	*files[KEY_FILES_MAX];	/* --ssh-key */
	int		 nfiles;
	int		 json;
	int		 reboot, detach;	/* reprovision --reboot */
};

/* POST the install or reprovision of mac; print what was queued and,
 * with a reboot job, wait for the agent's answer unless detach. */
static int
post_queue(struct ctl *c, const char *mac, json_t *body, int reprovision,
    int json, int detach)
{
	char path[80];
	const json_t *job;
	json_t *m, *done;
	int rc;

	snprintf(path, sizeof path, "/api/v1/machines/%s/%s", mac,
	    reprovision ? "reprovision" : "install");
	if (ctl_request(c, "POST", path, body, &m, NULL, NULL) == -1)
		return CTL_ERR;
	job = json_object_get(m, "job");
	if (!json_is_object(m) || !json_is_object(json_object_get(m,
	    "install")) || (json_is_true(json_object_get(body, "reboot")) &&
	    !json_is_object(job)))
		rc = ctl_error("unexpected answer from the server for %s", mac);
	else if (json)
		rc = ctl_print_json(m) == 0 ? CTL_OK : CTL_ERR;
	else {
		print_queued(reprovision ? "reprovision" : "install", mac, m);
		rc = CTL_OK;
		if (job && detach)
			printf("%lld\n", ctl_jint(job, "id", 0));
		else if (job && (rc = ctl_job_wait(c, ctl_jint(job, "id", 0),
		    &done)) == CTL_OK) {
			rc = ctl_job_report(mac, done);
			json_decref(done);
		}
	}
	json_decref(m);
	return rc;
}

int
ctl_reprovision(struct ctl *c, const char *mac, json_t *body, int json,
    int detach)
{
	if (json_object_set_new(body, "reboot", json_true()) == -1)
		return ctl_error("out of memory");
	return post_queue(c, mac, body, 1, json, detach);
}

static int
submit_install(struct ctl *c, const char *macarg, const struct queue_req *q,
    int reprovision)
{
	char mac[MAC_STRLEN];
	json_t *body, *keys;
	int rc = CTL_ERR;

	if (ctl_mac_arg(macarg, mac) == -1)
		return CTL_ERR;
	if ((body = json_object()) == NULL)
		return ctl_error("out of memory");
	if (set_opt_string(body, "hostname", q->hostname) == -1 ||
	    set_opt_string(body, "role", q->role) == -1 ||
	    set_opt_string(body, "os", q->os) == -1 ||
	    set_opt_string(body, "disk", q->disk) == -1)
		goto out;
	/* A reprovision without --ssh-key keeps the install's keys. */
	if (q->nfiles > 0 || !reprovision) {
		if (read_keys(q->files, q->nfiles, &keys) == -1)
			goto out;
		if (json_object_set_new(body, "ssh_keys", keys) == -1) {
			ctl_error("out of memory");
			goto out;
		}
	}
	if (q->reboot)
		rc = ctl_reprovision(c, mac, body, q->json, q->detach);
	else
		rc = post_queue(c, mac, body, reprovision, q->json, 0);
out:
	json_decref(body);
	return rc;
}

static int
machines_install(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	struct queue_req q;
	const struct ctl_opt opts[] = {
		{ "hostname", &q.hostname, NULL },
		{ "role", &q.role, NULL },
		{ "os", &q.os, NULL },
		{ "disk", &q.disk, NULL },
		{ "json", NULL, &q.json },
		{ NULL, NULL, NULL },
	};
	const struct ctl_multi multi[] = {
		{ "ssh-key", q.files, KEY_FILES_MAX, &q.nfiles },
		{ NULL, NULL, 0, NULL },
	};
	struct ctl_args a;

	memset(&q, 0, sizeof q);
	if (ctl_parse_args_multi(cmd, argc, argv, opts, multi, &a) == -1)
		return a.rc;
	if (q.hostname == NULL)
		return ctl_usage_error(cmd, "--hostname is required");
	if (q.role == NULL)
		return ctl_usage_error(cmd, "--role is required");
	return submit_install(c, a.pos[0], &q, 0);
}

static int
machines_reprovision(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	struct queue_req q;
	const struct ctl_opt opts[] = {
		{ "hostname", &q.hostname, NULL },
		{ "role", &q.role, NULL },
		{ "reboot", NULL, &q.reboot },
		{ "detach", NULL, &q.detach },
		{ "json", NULL, &q.json },
		{ NULL, NULL, NULL },
	};
	const struct ctl_multi multi[] = {
		{ "ssh-key", q.files, KEY_FILES_MAX, &q.nfiles },
		{ NULL, NULL, 0, NULL },
	};
	struct ctl_args a;

	memset(&q, 0, sizeof q);
	if (ctl_parse_args_multi(cmd, argc, argv, opts, multi, &a) == -1)
		return a.rc;
	if (q.detach && !q.reboot)
		return ctl_usage_error(cmd, "--detach goes with --reboot");
	return submit_install(c, a.pos[0], &q, 1);
}

const struct ctl_command ctl_machines_commands[] = {
	{ "machines", "list", "[--state STATE] [--json]",
	    "list machines", machines_list, 0, 0, 0 },
	{ "machines", "show", "MAC [--json]",
	    "one machine with its hardware", machines_show, 1, 1, 0 },
	{ "machines", "install", "MAC --hostname H --role R [--ssh-key FILE]... "
	    "[--os OS] [--disk DISK] [--json]",
	    "queue an OS install for its next network boot", machines_install,
	    1, 1, 0 },
	{ "machines", "reprovision", "MAC [--role R] [--hostname H] "
	    "[--ssh-key FILE]... [--reboot [--detach]] [--json]",
	    "reinstall, keeping the role's preserved volumes (--reboot: its "
	    "agent reboots it into network boot)",
	    machines_reprovision, 1, 1, 0 },
	{ "machines", "events", "MAC [--json]",
	    "a machine's timeline", machines_events, 1, 1, 0 },
	{ "machines", "forget", "MAC",
	    "delete a machine (its audit trail stays)", machines_forget, 1, 1, 0 },
	{ "machines", "watch", "[MAC] [--count N]",
	    "follow events live until interrupted", machines_watch, 0, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
