/* guest_lxc.c — the LXC driver (DESIGN §13): the containers under
 * [agent] lxc_path through liblxc, for the report and the actions of
 * guest jobs.
 *
 * Why liblxc is loaded with dlopen() and not linked: a node without LXC
 * must run the same agentd and report the driver "absent" rather than
 * fail to start on a missing liblxc.so.1, and Debian's liblxc drags in
 * libseccomp, libapparmor, libselinux and libcap that nodes without
 * containers never need. The symbols used are few (the rest are the
 * struct lxc_container's own methods), so they sit in a small table
 * filled once. The static agentd (AGENTD_STATIC) has no LXC at all: a
 * static-pie binary cannot dlopen() a library built against the shared
 * glibc, so there the driver is compiled out and reported absent with
 * that reason.
 *
 * LXC names its snapshots snap0, snap1, …; the name the operator gave is
 * the snapshot's comment and is what the report shows and the actions
 * take. A directory-backed container can be snapshot or restored only
 * while it is stopped: a running one is stopped for it (said in the job
 * output) and started again. */
#ifndef AGENTD_NO_CURL	/* the discovery image has no guests to run */
#define _GNU_SOURCE
#define LOG_SUBSYS "lxc"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "clock.h"
#include "log.h"

#ifdef AGENTD_STATIC
#define STATIC_WHY "the static agentd has no guest drivers (liblxc is a " \
	"shared library it cannot load); run the dynamic agentd"

json_t *
guest_lxc_driver(const struct agent_conf *c)
{
	return json_pack("{s:s, s:s, s:s}", "state", "absent", "detail",
	    STATIC_WHY, "version", "");
}

int
guest_lxc_list(const struct agent_conf *c, json_t *list, char *err,
    size_t errlen)
{
	snprintf(err, errlen, "%s", STATIC_WHY);
	return -1;
}

int
guest_lxc_exists(const struct agent_conf *c, const char *name)
{
	return -1;
}

int
guest_lxc_running(const struct agent_conf *c, const char *name)
{
	return -1;
}

int
guest_lxc_action(const struct agent_conf *c, const struct guest_job *gj,
    struct guest_out *o, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", STATIC_WHY);
	return -1;
}

int
guest_lxc_attach(const struct agent_conf *c, const char *name,
    const json_t *argv, long timeout_s, struct guest_out *o, int *status,
    char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", STATIC_WHY);
	return -1;
}
#else /* the dynamic agentd: liblxc.so.1 at run time */
#include <dlfcn.h>

#include <lxc/attach_options.h>
#include <lxc/lxccontainer.h>

#define LXC_SONAME	"liblxc.so.1"
#define SHUTDOWN_DEFAULT 60	/* seconds */
#define SNAP_STOP_S	30	/* a graceful stop before a snapshot */
#define CFG_MAX		4096

#define LXC_SYMS(X) X(lxc_container_new) X(lxc_container_put) \
	X(lxc_get_version) X(list_defined_containers) X(lxc_attach_run_command)
#define LXC_FIELD(n) __typeof__(n) *n;
static struct {
	LXC_SYMS(LXC_FIELD)
} L;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_err[256] = "not loaded";	/* "" once loaded */

static void
load(void)
{
	void *h;

	if ((h = dlopen(LXC_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(load_err, sizeof load_err, "%s cannot be loaded (is "
		    "lxc installed?): %s", LXC_SONAME, dlerror());
		return;
	}
#define LXC_LOAD(n) \
	if ((L.n = (__typeof__(L.n))dlsym(h, #n)) == NULL) { \
		snprintf(load_err, sizeof load_err, "%s has no %s", \
		    LXC_SONAME, #n); \
		return; \
	}
	LXC_SYMS(LXC_LOAD)
#undef LXC_LOAD
	load_err[0] = '\0';
}

static int
loaded(char *err, size_t errlen)
{
	pthread_once(&load_once, load);
	if (load_err[0]) {
		snprintf(err, errlen, "%s", load_err);
		return 0;
	}
	return 1;
}

json_t *
guest_lxc_driver(const struct agent_conf *c)
{
	char err[256];

	if (!loaded(err, sizeof err))
		return json_pack("{s:s, s:s, s:s}", "state", "absent", "detail",
		    err, "version", "");
	if (access(c->lxc_path, R_OK | X_OK) == -1)
		return json_pack("{s:s, s:s+, s:s}", "state", "error", "detail",
		    c->lxc_path, errno == ENOENT ? ": no such directory (lxc_path)"
		    : ": not readable", "version", L.lxc_get_version());
	return json_pack("{s:s, s:s, s:s}", "state", "ok", "detail", c->lxc_path,
	    "version", L.lxc_get_version());
}

/* The container, or NULL with err (no driver, no such container). */
static struct lxc_container *
open_ct(const struct agent_conf *c, const char *name, char *err,
    size_t errlen)
{
	struct lxc_container *ct;

	if (!loaded(err, errlen))
		return NULL;
	if (!guest_name_valid(name)) {
		snprintf(err, errlen, "not a guest name");
		return NULL;
	}
	if ((ct = L.lxc_container_new(name, c->lxc_path)) == NULL) {
		snprintf(err, errlen, "liblxc cannot open %s in %s", name,
		    c->lxc_path);
		return NULL;
	}
	if (!ct->is_defined(ct)) {
		snprintf(err, errlen, "no LXC container %s in %s", name,
		    c->lxc_path);
		L.lxc_container_put(ct);
		return NULL;
	}
	return ct;
}

int
guest_lxc_exists(const struct agent_conf *c, const char *name)
{
	struct lxc_container *ct;
	char err[256];

	if (!loaded(err, sizeof err))
		return -1;
	if ((ct = open_ct(c, name, err, sizeof err)) == NULL)
		return 0;
	L.lxc_container_put(ct);
	return 1;
}

static const char *
state_of(struct lxc_container *ct)
{
	static const struct { const char *lxc, *ours; } map[] = {
		{ "STOPPED", "stopped" }, { "STARTING", "starting" },
		{ "RUNNING", "running" }, { "STOPPING", "stopping" },
		{ "ABORTING", "stopping" }, { "FREEZING", "paused" },
		{ "FROZEN", "paused" }, { "THAWED", "running" },
	};
	const char *s = ct->state(ct);
	size_t i;

	for (i = 0; s && i < sizeof map / sizeof map[0]; i++)
		if (strcmp(s, map[i].lxc) == 0)
			return map[i].ours;
	return "unknown";
}

int
guest_lxc_running(const struct agent_conf *c, const char *name)
{
	struct lxc_container *ct;
	char err[256];
	int rc;

	if ((ct = open_ct(c, name, err, sizeof err)) == NULL)
		return -1;
	rc = strcmp(state_of(ct), "running") == 0;
	L.lxc_container_put(ct);
	return rc;
}

/* A config item into out ("" when unset). */
static void
cfg(struct lxc_container *ct, const char *key, char *out, size_t len)
{
	int n;

	out[0] = '\0';
	n = ct->get_config_item(ct, key, out, (int)len);
	if (n < 0 || (size_t)n >= len)
		out[0] = '\0';
}

/* "512M", "1G", "536870912" -> MiB; 0 when unset or "max". */
static long long
mib_of(const char *s)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || n <= 0 || end == s)
		return 0;
	switch (*end) {
	case 'k': case 'K':
		return n / 1024;
	case 'm': case 'M':
		return n;
	case 'g': case 'G':
		return n * 1024;
	default:
		return n / (1024 * 1024);
	}
}

/* "0-3,6" -> 5. */
static long long
cpus_of(const char *s)
{
	long long n = 0, a, b;
	char *end;

	while (*s) {
		a = strtoll(s, &end, 10);
		if (end == s)
			return 0;
		b = a;
		if (*end == '-') {
			s = end + 1;
			b = strtoll(s, &end, 10);
			if (end == s || b < a)
				return 0;
		}
		n += b - a + 1;
		s = *end == ',' ? end + 1 : end;
		if (*end != ',' && *end != '\0')
			return 0;
	}
	return n;
}

/* The name the operator gave a snapshot (its comment's first line), or
 * "" when it has none that is a snapshot name. */
static void
snap_label(const struct lxc_snapshot *s, char out[GUEST_SNAP_MAX + 1])
{
	char line[GUEST_SNAP_MAX + 2] = "";
	FILE *f;

	out[0] = '\0';
	if (s->comment_pathname == NULL ||
	    (f = fopen(s->comment_pathname, "re")) == NULL)
		return;
	if (fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (guest_snap_valid(line))
			snprintf(out, GUEST_SNAP_MAX + 1, "%s", line);
	}
	fclose(f);
}

static json_t *
snapshots_json(struct lxc_container *ct)
{
	struct lxc_snapshot *snaps = NULL;
	char label[GUEST_SNAP_MAX + 1];
	json_t *out = json_array();
	struct tm tm;
	int n, i;

	if ((n = ct->snapshot_list(ct, &snaps)) <= 0)
		return out;
	for (i = 0; i < n; i++) {
		time_t t = 0;

		snap_label(&snaps[i], label);
		memset(&tm, 0, sizeof tm);
		if (snaps[i].timestamp && strptime(snaps[i].timestamp,
		    "%Y:%m:%d %H:%M:%S", &tm) != NULL) {
			tm.tm_isdst = -1;
			t = mktime(&tm);
		}
		json_array_append_new(out, json_pack("{s:s, s:I, s:b}", "name",
		    label[0] ? label : snaps[i].name ? snaps[i].name : "",
		    "created", (json_int_t)t * 1000, "current", 0));
		snaps[i].free(&snaps[i]);
	}
	free(snaps);
	return out;
}

static json_t *
nics_json(struct lxc_container *ct, int running)
{
	char key[64], type[64], val[CFG_MAX], name[64];
	json_t *out = json_array(), *addrs;
	char **ips;
	int i, k;

	for (i = 0; i < 32; i++) {
		snprintf(key, sizeof key, "lxc.net.%d.type", i);
		cfg(ct, key, type, sizeof type);
		if (type[0] == '\0')
			break;
		if (strcmp(type, "empty") == 0 || strcmp(type, "none") == 0)
			continue;
		addrs = json_array();
		snprintf(key, sizeof key, "lxc.net.%d.name", i);
		cfg(ct, key, name, sizeof name);
		if (name[0] == '\0')
			snprintf(name, sizeof name, "eth%d", i);
		if (running && (ips = ct->get_ips(ct, name, NULL, 0)) != NULL) {
			for (k = 0; ips[k]; k++) {
				json_array_append_new(addrs, json_string(ips[k]));
				free(ips[k]);
			}
			free(ips);
		}
		snprintf(key, sizeof key, "lxc.net.%d.hwaddr", i);
		cfg(ct, key, val, sizeof val);
		json_array_append_new(out, json_pack("{s:s, s:s, s:o}", "mac", val,
		    "network", type, "addresses", addrs));
		snprintf(key, sizeof key, "lxc.net.%d.link", i);
		cfg(ct, key, val, sizeof val);
		if (val[0])
			json_object_set_new(json_array_get(out,
			    json_array_size(out) - 1), "network", json_string(val));
	}
	return out;
}

static json_t *
guest_json(struct lxc_container *ct, const char *name)
{
	char val[CFG_MAX], *colon;
	const char *state = state_of(ct), *src, *fmt = "dir";
	json_t *disks;

	cfg(ct, "lxc.rootfs.path", val, sizeof val);
	src = val;
	if ((colon = strchr(val, ':')) != NULL && colon[1] == '/') {
		*colon = '\0';
		fmt = val;
		src = colon + 1;
	}
	disks = json_pack("[{s:s, s:s, s:s, s:n}]", "target", "rootfs",
	    "source", src, "format", fmt, "size_bytes");
	{
		json_t *g = json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", name,
		    "name", name, "type", "lxc", "state", state, "disks", disks);
		char mem[64] = "", cpus[256] = "", aut[16] = "";

		cfg(ct, "lxc.cgroup2.memory.max", mem, sizeof mem);
		if (!mem[0])
			cfg(ct, "lxc.cgroup.memory.limit_in_bytes", mem,
			    sizeof mem);
		cfg(ct, "lxc.cgroup2.cpuset.cpus", cpus, sizeof cpus);
		if (!cpus[0])
			cfg(ct, "lxc.cgroup.cpuset.cpus", cpus, sizeof cpus);
		cfg(ct, "lxc.start.auto", aut, sizeof aut);
		json_object_set_new(g, "vcpus", json_integer(cpus_of(cpus)));
		json_object_set_new(g, "memory_mib", json_integer(mib_of(mem)));
		json_object_set_new(g, "autostart", json_boolean(strcmp(aut, "1")
		    == 0));
		json_object_set_new(g, "nics", nics_json(ct,
		    strcmp(state, "running") == 0));
		json_object_set_new(g, "snapshots", snapshots_json(ct));
		return g;
	}
}

int
guest_lxc_list(const struct agent_conf *c, json_t *list, char *err,
    size_t errlen)
{
	struct lxc_container **cts = NULL;
	char **names = NULL;
	json_t *g;
	int n, i;

	if (!loaded(err, errlen))
		return -1;
	if ((n = L.list_defined_containers(c->lxc_path, &names, &cts)) < 0) {
		snprintf(err, errlen, "cannot list the containers in %s",
		    c->lxc_path);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (guest_name_valid(names[i]) && json_array_size(list) <
		    GUEST_REPORT_MAX && (g = guest_json(cts[i], names[i])) != NULL)
			json_array_append_new(list, g);
		L.lxc_container_put(cts[i]);
		free(names[i]);
	}
	free(names);
	free(cts);
	return 0;
}

/* liblxc forks the container's monitor and init (start) or the attached
 * process (attach) from this thread: they inherit its signal mask, which
 * blocks everything (jobs.c starts threads so). Unblocked around those
 * calls: an init that cannot get SIGPWR or SIGTERM never shuts down. */
static void
signals_open(sigset_t *old)
{
	sigset_t none;

	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, old);
}

static void
signals_close(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static int
start_ct(struct lxc_container *ct, char *err, size_t errlen)
{
	sigset_t old;
	int ok;

	ct->want_daemonize(ct, true);
	ct->want_close_all_fds(ct, true);
	signals_open(&old);
	ok = ct->start(ct, 0, NULL);
	signals_close(&old);
	if (!ok) {
		snprintf(err, errlen, "liblxc could not start %s (see the "
		    "container's log)", ct->name);
		return -1;
	}
	return 0;
}

/* Stopped, gracefully for up to secs, then forced. */
static int
stop_ct(struct lxc_container *ct, int secs, char *err, size_t errlen)
{
	if (!ct->is_running(ct))
		return 0;
	if (strcmp(ct->state(ct), "FROZEN") == 0)
		ct->unfreeze(ct);
	if (secs > 0 && ct->shutdown(ct, secs))
		return 0;
	if (!ct->stop(ct)) {
		snprintf(err, errlen, "liblxc could not stop %s", ct->name);
		return -1;
	}
	return 0;
}

/* LXC's own name (snapN) of the snapshot the operator named label; "" when
 * none is. */
static void
snap_find(struct lxc_container *ct, const char *label, char out[64])
{
	struct lxc_snapshot *snaps = NULL;
	char l[GUEST_SNAP_MAX + 1];
	int n, i;

	out[0] = '\0';
	if ((n = ct->snapshot_list(ct, &snaps)) <= 0)
		return;
	for (i = 0; i < n; i++) {
		snap_label(&snaps[i], l);
		if (out[0] == '\0' && snaps[i].name && (strcmp(l, label) == 0 ||
		    (l[0] == '\0' && strcmp(snaps[i].name, label) == 0)))
			snprintf(out, 64, "%s", snaps[i].name);
		snaps[i].free(&snaps[i]);
	}
	free(snaps);
}

static int
snapshot(const struct agent_conf *c, struct lxc_container *ct,
    const char *label, struct guest_out *o, char *err, size_t errlen)
{
	char lxcname[64], path[PATH_MAX + 32];
	int fd, n, was_running;

	snap_find(ct, label, lxcname);
	if (lxcname[0]) {
		snprintf(err, errlen, "%s already has a snapshot %s", ct->name,
		    label);
		return -1;
	}
	/* The comment file: the operator's name for it. */
	snprintf(path, sizeof path, "%s/guest-snap.XXXXXX", c->state_dir);
	if ((fd = mkostemp(path, O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = dprintf(fd, "%s\n", label);
	close(fd);
	if (n < 0) {
		unlink(path);
		snprintf(err, errlen, "cannot write %s", path);
		return -1;
	}
	was_running = ct->is_running(ct);
	n = ct->snapshot(ct, path);
	if (n < 0 && was_running) {
		guest_say(o, "stdout", "%s: a directory-backed container is "
		    "snapshot while stopped: stopping it (%d s, then forced)",
		    ct->name, SNAP_STOP_S);
		if (stop_ct(ct, SNAP_STOP_S, err, errlen) == 0)
			n = ct->snapshot(ct, path);
		if (start_ct(ct, err, errlen) == 0)
			guest_say(o, "stdout", "%s: started again", ct->name);
		else
			guest_say(o, "stderr", "%s: %s", ct->name, err);
	}
	unlink(path);
	if (n < 0) {
		snprintf(err, errlen, "liblxc could not snapshot %s (rsync "
		    "installed? see the container's log)", ct->name);
		return -1;
	}
	guest_say(o, "stdout", "%s: snapshot %s taken (snap%d)", ct->name, label,
	    n);
	return 0;
}

static int
rollback(const struct agent_conf *c, struct lxc_container **ctp,
    const char *label, struct guest_out *o, char *err, size_t errlen)
{
	struct lxc_container *ct = *ctp;
	char lxcname[64], name[GUEST_NAME_MAX + 1];
	int was_running = ct->is_running(ct);

	snap_find(ct, label, lxcname);
	if (lxcname[0] == '\0') {
		snprintf(err, errlen, "%s has no snapshot %s", ct->name, label);
		return -1;
	}
	snprintf(name, sizeof name, "%s", ct->name);
	if (was_running) {
		guest_say(o, "stdout", "%s: stopping it to restore %s", name,
		    label);
		if (stop_ct(ct, SNAP_STOP_S, err, errlen) == -1)
			return -1;
	}
	if (!ct->snapshot_restore(ct, lxcname, name)) {
		snprintf(err, errlen, "liblxc could not restore %s of %s", label,
		    name);
		return -1;
	}
	/* The container was destroyed and cloned back: a fresh handle. */
	L.lxc_container_put(ct);
	if ((*ctp = open_ct(c, name, err, errlen)) == NULL)
		return -1;
	guest_say(o, "stdout", "%s: rolled back to %s", name, label);
	if (was_running) {
		if (start_ct(*ctp, err, errlen) == -1)
			return -1;
		guest_say(o, "stdout", "%s: started again", name);
	}
	return 0;
}

int
guest_lxc_action(const struct agent_conf *c, const struct guest_job *gj,
    struct guest_out *o, char *err, size_t errlen)
{
	struct lxc_container *ct;
	const char *a = gj->action, *st;
	char lxcname[64];
	int rc = -1;

	if ((ct = open_ct(c, gj->guest, err, errlen)) == NULL)
		return -1;
	st = state_of(ct);
	if (strcmp(a, "start") == 0) {
		if (strcmp(st, "running") == 0)
			guest_say(o, "stdout", "%s: already running", gj->guest);
		else if (start_ct(ct, err, errlen) == -1)
			goto out;
		else
			guest_say(o, "stdout", "%s: started", gj->guest);
	} else if (strcmp(a, "shutdown") == 0) {
		if (!ct->is_running(ct))
			guest_say(o, "stdout", "%s: already stopped", gj->guest);
		else if (!ct->shutdown(ct, gj->timeout ? (int)gj->timeout :
		    SHUTDOWN_DEFAULT)) {
			snprintf(err, errlen, "%s did not shut down within %ld s "
			    "(stop forces it)", gj->guest, gj->timeout ?
			    gj->timeout : SHUTDOWN_DEFAULT);
			goto out;
		} else
			guest_say(o, "stdout", "%s: shut down", gj->guest);
	} else if (strcmp(a, "stop") == 0) {
		if (stop_ct(ct, 0, err, errlen) == -1)
			goto out;
		guest_say(o, "stdout", "%s: stopped", gj->guest);
	} else if (strcmp(a, "reboot") == 0) {
		if (!ct->is_running(ct) || !ct->reboot(ct)) {
			snprintf(err, errlen, "%s: cannot reboot (%s)", gj->guest,
			    st);
			goto out;
		}
		guest_say(o, "stdout", "%s: rebooting", gj->guest);
	} else if (strcmp(a, "suspend") == 0) {
		if (!ct->freeze(ct)) {
			snprintf(err, errlen, "%s: cannot freeze (%s)", gj->guest,
			    st);
			goto out;
		}
		guest_say(o, "stdout", "%s: suspended (frozen)", gj->guest);
	} else if (strcmp(a, "resume") == 0) {
		if (!ct->unfreeze(ct)) {
			snprintf(err, errlen, "%s: cannot thaw (%s)", gj->guest,
			    st);
			goto out;
		}
		guest_say(o, "stdout", "%s: resumed", gj->guest);
	} else if (strcmp(a, "snapshot") == 0) {
		if (snapshot(c, ct, gj->snapshot, o, err, errlen) == -1)
			goto out;
	} else if (strcmp(a, "rollback") == 0) {
		if (rollback(c, &ct, gj->snapshot, o, err, errlen) == -1)
			goto out;
	} else if (strcmp(a, "snapshot-delete") == 0) {
		snap_find(ct, gj->snapshot, lxcname);
		if (lxcname[0] == '\0') {
			snprintf(err, errlen, "%s has no snapshot %s", gj->guest,
			    gj->snapshot);
			goto out;
		}
		if (!ct->snapshot_destroy(ct, lxcname)) {
			snprintf(err, errlen, "liblxc could not delete snapshot %s "
			    "of %s", gj->snapshot, gj->guest);
			goto out;
		}
		guest_say(o, "stdout", "%s: snapshot %s deleted", gj->guest,
		    gj->snapshot);
	} else {
		snprintf(err, errlen, "%s is not an LXC action", a);
		goto out;
	}
	rc = 0;
out:
	if (ct)
		L.lxc_container_put(ct);
	return rc;
}

int
guest_lxc_attach(const struct agent_conf *c, const char *name,
    const json_t *argv, long timeout_s, struct guest_out *o, int *status,
    char *err, size_t errlen)
{
	static char *env[] = {
	    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	    "LANG=C.UTF-8", "HOME=/root", NULL };
	lxc_attach_options_t opts = LXC_ATTACH_OPTIONS_DEFAULT;
	lxc_attach_command_t cmd;
	struct lxc_container *ct;
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, st = 0, rc = -1;
	int exited = 0, killed = 0, nullfd = -1;
	char *args[GUEST_ARGV_MAX + 1], buf[16384];
	int64_t deadline = clock_mono_ms() + timeout_s * 1000;
	struct pollfd pf[2];
	sigset_t old;
	pid_t pid = -1;
	ssize_t n;
	size_t i;
	int k;

	if ((ct = open_ct(c, name, err, errlen)) == NULL)
		return -1;
	if (json_array_size(argv) == 0 || json_array_size(argv) >
	    GUEST_ARGV_MAX) {
		snprintf(err, errlen, "argv: 1 to %d words", GUEST_ARGV_MAX);
		goto out;
	}
	for (i = 0; i < json_array_size(argv); i++)
		args[i] = (char *)json_string_value(json_array_get(argv, i));
	args[i] = NULL;
	if (pipe2(outp, O_CLOEXEC) == -1 || pipe2(errp, O_CLOEXEC) == -1 ||
	    (nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot make pipes: %s", strerror(errno));
		goto out;
	}
	cmd.program = args[0];
	cmd.argv = args;
	opts.env_policy = LXC_ATTACH_CLEAR_ENV;
	opts.extra_env_vars = env;
	opts.stdin_fd = nullfd;
	opts.stdout_fd = outp[1];
	opts.stderr_fd = errp[1];
	signals_open(&old);
	k = ct->attach(ct, L.lxc_attach_run_command, &cmd, &opts, &pid);
	signals_close(&old);
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	if (k < 0 || pid <= 0) {
		snprintf(err, errlen, "liblxc could not attach to %s (is it "
		    "running?)", name);
		goto out;
	}
	while (!exited || outp[0] != -1 || errp[0] != -1) {
		pf[0].fd = outp[0];
		pf[1].fd = errp[0];
		pf[0].events = pf[1].events = POLLIN;
		pf[0].revents = pf[1].revents = 0;
		if (poll(pf, 2, 250) > 0)
			for (k = 0; k < 2; k++) {
				if (pf[k].fd < 0 || !(pf[k].revents & (POLLIN |
				    POLLHUP | POLLERR)))
					continue;
				if ((n = read(pf[k].fd, buf, sizeof buf)) > 0) {
					guest_out_add(o, k ? "stderr" : "stdout",
					    buf, (size_t)n);
					continue;
				}
				if (n == -1 && errno == EINTR)
					continue;
				close(pf[k].fd);
				*(k ? &errp[0] : &outp[0]) = -1;
			}
		if (!exited && waitpid(pid, &st, WNOHANG) == pid)
			exited = 1;
		if (!exited && !killed && (clock_mono_ms() >= deadline ||
		    agent_stop)) {
			kill(pid, SIGKILL);
			killed = 1;
		}
		if (exited && (killed || clock_mono_ms() >= deadline + 1000))
			break;	/* a grandchild holds the pipes open */
	}
	if (!exited && waitpid(pid, &st, 0) == pid)
		exited = 1;
	if (killed)
		*status = 124;
	else if (WIFEXITED(st))
		*status = WEXITSTATUS(st);
	else
		*status = 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	if (killed)
		guest_say(o, "stderr", "%s: time was up (%ld s): killed", args[0],
		    timeout_s);
	rc = 0;
out:
	for (k = 0; k < 2; k++) {
		if (outp[k] != -1)
			close(outp[k]);
		if (errp[k] != -1)
			close(errp[k]);
	}
	if (nullfd != -1)
		close(nullfd);
	L.lxc_container_put(ct);
	return rc;
}
#endif /* AGENTD_STATIC */
#endif /* AGENTD_NO_CURL */
