/* health.c — what agentd adds to its heartbeat for bastion's attention
 * model (DESIGN §14): load and CPU count, memory, usage per mounted file
 * system, temperatures (hwmon and thermal zones) and SMART health from
 * `smartctl --json` where smartmontools is installed.
 *
 * Everything is read below a root prefix ([agent] inventory_root: "/" on
 * a node, a fixture tree in tests). smartctl runs by fork/exec with an
 * argv, its output capped at HEALTH_SMART_MAX bytes and its run at
 * HEALTH_SMART_TIMEOUT_MS; SMART results are cached for
 * HEALTH_SMART_EVERY_S (a heartbeat every 30 s must not wake the disks'
 * firmware every time). */
#ifndef AGENTD_NO_CURL
#define _GNU_SOURCE
#define LOG_SUBSYS "health"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "clock.h"
#include "inventory.h"
#include "log.h"

#define HEALTH_MAX_MOUNTS	64
#define HEALTH_MAX_SENSORS	64
#define HEALTH_MAX_DISKS	32
#define HEALTH_SMART_MAX	(256 * 1024)
#define HEALTH_SMART_TIMEOUT_MS	10000
#define HEALTH_SMART_EVERY_S	600

/* File systems that hold data; pseudo and memory file systems are left
 * out (tmpfs fills RAM, which memory already shows). */
static const char *const real_fs[] = { "ext2", "ext3", "ext4", "xfs",
    "btrfs", "vfat", "exfat", "f2fs", "jfs", "reiserfs", "zfs", "fuseblk",
    "ntfs", "ntfs3", NULL };

static int
is_real_fs(const char *t)
{
	int i;

	for (i = 0; real_fs[i]; i++)
		if (strcmp(t, real_fs[i]) == 0)
			return 1;
	return 0;
}

/* /proc/mounts escapes space, tab, newline and backslash as \ooo. */
static void
unescape_octal(char *s)
{
	char *w = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
			    (s[3] - '0'));
			s += 4;
		} else
			*w++ = *s++;
	}
	*w = '\0';
}

static json_t *
health_mounts(const char *root)
{
	char path[PATH_MAX], line[1024], dev[256], mnt[512], type[64];
	char stpath[PATH_MAX];
	struct statvfs vfs;
	json_t *arr, *m;
	size_t i;
	FILE *fp;
	int dup;

	if ((arr = json_array()) == NULL)
		return NULL;
	/* Confined, our own mounts are the sandbox's (a private /tmp, the
	 * state directory bound on itself): the node's are PID 1's. */
	if (inventory_path(path, sizeof path, root, transient_on() ?
	    "proc/1/mounts" : "proc/self/mounts") == -1 ||
	    (fp = fopen(path, "re")) == NULL)
		return arr;
	while (fgets(line, sizeof line, fp) &&
	    json_array_size(arr) < HEALTH_MAX_MOUNTS) {
		if (sscanf(line, "%255s %511s %63s", dev, mnt, type) != 3 ||
		    !is_real_fs(type))
			continue;
		unescape_octal(mnt);
		dup = 0;
		json_array_foreach(arr, i, m)
			if (strcmp(json_string_value(json_object_get(m, "mount")),
			    mnt) == 0)
				dup = 1;
		if (dup || inventory_path(stpath, sizeof stpath, root, mnt) == -1 ||
		    statvfs(stpath, &vfs) == -1 || vfs.f_blocks == 0)
			continue;
		inventory_clean(mnt);
		inventory_clean(dev);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I}",
		    "mount", mnt, "device", dev, "fstype", type,
		    "size_bytes", (json_int_t)(vfs.f_blocks * vfs.f_frsize),
		    "free_bytes", (json_int_t)(vfs.f_bavail * vfs.f_frsize)));
	}
	fclose(fp);
	return arr;
}

/* MemTotal and MemAvailable in bytes; -1 if either is missing. */
static int
health_meminfo(const char *root, long long *total, long long *avail)
{
	char path[PATH_MAX], line[256];
	long long t = -1, a = -1, v;
	FILE *fp;

	if (inventory_path(path, sizeof path, root, "proc/meminfo") == -1 ||
	    (fp = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof line, fp)) {
		if (sscanf(line, "MemTotal: %lld kB", &v) == 1)
			t = v * 1024;
		else if (sscanf(line, "MemAvailable: %lld kB", &v) == 1)
			a = v * 1024;
	}
	fclose(fp);
	if (t < 0 || a < 0)
		return -1;
	*total = t;
	*avail = a;
	return 0;
}

static int
health_loadavg(const char *root, double load[3])
{
	char path[PATH_MAX];
	FILE *fp;
	int n;

	if (inventory_path(path, sizeof path, root, "proc/loadavg") == -1 ||
	    (fp = fopen(path, "re")) == NULL)
		return -1;
	n = fscanf(fp, "%lf %lf %lf", &load[0], &load[1], &load[2]);
	fclose(fp);
	return n == 3 ? 0 : -1;
}

/* Online CPUs from sys/devices/system/cpu/online ("0-3,6"). */
static int
health_cpus(const char *root)
{
	char s[256], *p, *end;
	long a, b;
	int n = 0;

	if (inventory_read_str(root, "sys/devices/system/cpu/online", s,
	    sizeof s) == -1)
		return 0;
	for (p = s; *p; ) {
		a = strtol(p, &end, 10);
		if (end == p)
			break;
		b = a;
		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		if (b >= a && b - a < 65536)
			n += (int)(b - a + 1);
		if (*end != ',')
			break;
		p = end + 1;
	}
	return n;
}

/* snprintf that says when it cut: 0 or -1. */
static int pathf(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
pathf(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void
add_sensor(json_t *arr, const char *name, long long milli, long long crit)
{
	json_t *o;

	if (json_array_size(arr) >= HEALTH_MAX_SENSORS || milli < -100000 ||
	    milli > 250000)
		return;
	o = json_pack("{s:o, s:f}", "sensor", inventory_jstr(name), "celsius",
	    (double)milli / 1000.0);
	if (o && crit > 0 && crit < 250000)
		json_object_set_new(o, "critical_celsius",
		    json_real((double)crit / 1000.0));
	json_array_append_new(arr, o);
}

/* Sorted entries of root/rel whose names start with prefix. */
static int
list_dir(const char *root, const char *rel, const char *prefix,
    char names[][64], int max)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0, i, j;
	char tmp[64];

	if (inventory_path(path, sizeof path, root, rel) == -1 ||
	    (d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) && n < max)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 &&
		    strlen(de->d_name) < 64)
			snprintf(names[n++], 64, "%s", de->d_name);
	closedir(d);
	for (i = 1; i < n; i++)		/* few entries: insertion sort */
		for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			memcpy(tmp, names[j], 64);
			memcpy(names[j], names[j - 1], 64);
			memcpy(names[j - 1], tmp, 64);
		}
	return n;
}

static json_t *
health_temperatures(const char *root)
{
	char dev[HEALTH_MAX_SENSORS][64], in[32][64], rel[PATH_MAX], name[64];
	char label[64], sensor[160];
	long long milli, crit;
	json_t *arr = json_array();
	int nd, ni, i, k;

	if (arr == NULL)
		return NULL;
	nd = list_dir(root, "sys/class/hwmon", "hwmon", dev, HEALTH_MAX_SENSORS);
	for (i = 0; i < nd; i++) {
		(void)pathf(rel, sizeof rel, "sys/class/hwmon/%s/name", dev[i]);
		if (inventory_read_str(root, rel, name, sizeof name) == -1)
			(void)pathf(name, sizeof name, "%s", dev[i]);
		(void)pathf(rel, sizeof rel, "sys/class/hwmon/%s", dev[i]);
		ni = list_dir(root, rel, "temp", in, 32);
		for (k = 0; k < ni; k++) {
			size_t l = strlen(in[k]);

			if (l < 7 || strcmp(in[k] + l - 6, "_input") != 0)
				continue;
			(void)pathf(rel, sizeof rel, "sys/class/hwmon/%s/%s", dev[i],
			    in[k]);
			if (inventory_read_ll(root, rel, &milli) == -1)
				continue;
			in[k][l - 6] = '\0';
			(void)pathf(rel, sizeof rel, "sys/class/hwmon/%s/%s_label",
			    dev[i], in[k]);
			if (inventory_read_str(root, rel, label, sizeof label) == -1)
				(void)pathf(label, sizeof label, "%s", in[k]);
			(void)pathf(rel, sizeof rel, "sys/class/hwmon/%s/%s_crit",
			    dev[i], in[k]);
			if (inventory_read_ll(root, rel, &crit) == -1)
				crit = 0;
			(void)pathf(sensor, sizeof sensor, "%s/%s", name, label);
			add_sensor(arr, sensor, milli, crit);
		}
	}
	nd = list_dir(root, "sys/class/thermal", "thermal_zone", dev,
	    HEALTH_MAX_SENSORS);
	for (i = 0; i < nd; i++) {
		(void)pathf(rel, sizeof rel, "sys/class/thermal/%s/temp", dev[i]);
		if (inventory_read_ll(root, rel, &milli) == -1)
			continue;
		(void)pathf(rel, sizeof rel, "sys/class/thermal/%s/type", dev[i]);
		if (inventory_read_str(root, rel, name, sizeof name) == -1)
			(void)pathf(name, sizeof name, "zone");
		(void)pathf(sensor, sizeof sensor, "%s/%s", dev[i], name);
		add_sensor(arr, sensor, milli, 0);
	}
	return arr;
}

/* One disk's SMART summary from smartctl's JSON, or NULL. */
json_t *
health_smart_parse(const char *dev, const char *text)
{
	json_t *j, *st, *o;
	json_error_t e;

	if ((j = json_loads(text, 0, &e)) == NULL)
		return NULL;
	if ((st = json_object_get(json_object_get(j, "smart_status"),
	    "passed")) == NULL || !json_is_boolean(st)) {
		json_decref(j);
		return NULL;
	}
	o = json_pack("{s:s, s:b}", "device", dev, "passed", json_is_true(st));
	if (o && json_is_integer(json_object_get(json_object_get(j,
	    "temperature"), "current")))
		json_object_set(o, "celsius", json_object_get(json_object_get(j,
		    "temperature"), "current"));
	if (o && json_is_string(json_object_get(j, "model_name")))
		json_object_set_new(o, "model", inventory_jstr(json_string_value(
		    json_object_get(j, "model_name"))));
	json_decref(j);
	return o;
}

static int
smart_disk(const char *name)
{
	static const char *const skip[] = { "loop", "ram", "zram", "dm-", "sr",
	    "md", "nbd", "fd", NULL };
	int i;

	for (i = 0; skip[i]; i++)
		if (strncmp(name, skip[i], strlen(skip[i])) == 0)
			return 0;
	return 1;
}

static json_t *
health_smart(const char *root, const char *smartctl)
{
	char disks[HEALTH_MAX_DISKS][64], devpath[80], *text;
	char *argv[6];
	struct transient_opts o;
	json_t *arr, *s;
	int n, i, status;

	if (smartctl[0] == '\0' || access(smartctl, X_OK) == -1)
		return NULL;	/* not installed: nothing, not an error */
	if ((arr = json_array()) == NULL)
		return NULL;
	memset(&o, 0, sizeof o);
	o.description = "agentd: smartctl";
	o.quiet = 1;
	o.hush = 1;
	o.max_s = HEALTH_SMART_TIMEOUT_MS / 1000 + 5;
	n = list_dir(root, "sys/block", "", disks, HEALTH_MAX_DISKS);
	for (i = 0; i < n; i++) {
		if (disks[i][0] == '.' || !smart_disk(disks[i]))
			continue;
		if (pathf(devpath, sizeof devpath, "/dev/%s", disks[i]) == -1)
			continue;
		argv[0] = (char *)smartctl;
		argv[1] = (char *)"--json";
		argv[2] = (char *)"-H";
		argv[3] = (char *)"-A";
		argv[4] = devpath;
		argv[5] = NULL;
		/* Whatever its exit status: smartctl sets bits for failing
		 * disks and still prints its JSON. */
		if (transient_capture(argv, &o, HEALTH_SMART_MAX,
		    HEALTH_SMART_TIMEOUT_MS, &text, &status) == -1)
			continue;
		if ((s = health_smart_parse(disks[i], text)) != NULL)
			json_array_append_new(arr, s);
		free(text);
	}
	return arr;
}

static pthread_mutex_t smart_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *smart_cache;
static int64_t smart_at;

void
health_add(const struct agent_conf *c, json_t *hb)
{
	long long total, avail;
	double load[3];
	json_t *v;
	int64_t now = clock_mono_ms();
	int cpus;

	if (health_loadavg(c->inventory_root, load) == 0)
		json_object_set_new(hb, "load", json_pack("[f, f, f]", load[0],
		    load[1], load[2]));
	if ((cpus = health_cpus(c->inventory_root)) > 0)
		json_object_set_new(hb, "cpus", json_integer(cpus));
	if (health_meminfo(c->inventory_root, &total, &avail) == 0)
		json_object_set_new(hb, "memory", json_pack("{s:I, s:I}",
		    "total_bytes", (json_int_t)total, "available_bytes",
		    (json_int_t)avail));
	if ((v = health_mounts(c->inventory_root)) != NULL)
		json_object_set_new(hb, "mounts", v);
	if ((v = health_temperatures(c->inventory_root)) != NULL)
		json_object_set_new(hb, "temperatures", v);
	pthread_mutex_lock(&smart_mu);
	if (smart_cache == NULL || smart_at == 0 ||
	    now - smart_at >= (int64_t)HEALTH_SMART_EVERY_S * 1000) {
		json_decref(smart_cache);
		smart_cache = health_smart(c->inventory_root, c->smartctl);
		smart_at = now;
	}
	if (smart_cache)
		json_object_set(hb, "smart", smart_cache);
	pthread_mutex_unlock(&smart_mu);
}
#endif /* AGENTD_NO_CURL */
