/* inventory_cpu.c — CPUs: model and flags from /proc/cpuinfo, topology
 * (sockets, cores, threads) from sysfs, cpuinfo's physical/core ids when
 * sysfs has no topology. Counts are totals for the machine. */
#define LOG_SUBSYS "inventory"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"
#include "log.h"

/* Flags an operator picks machines by; reported when present. */
static const char *const notable_flags[] = {
	"lm", "nx", "hypervisor", "vmx", "svm", "aes", "sse4_2", "avx",
	"avx2", "avx512f", "sha_ni", "rdrand", "pdpe1gb", "x2apic",
	"constant_tsc", "ept", "npt", NULL
};

struct topo {
	long	pkg;
	long	die;
	long	core;
};

struct cpuinfo {
	char	 model[INV_STRMAX];
	char	 vendor[64];
	char	 flags[8192];
	long	 mhz;
	size_t	 nproc;		/* "processor" entries */
	struct topo *ids;	/* from "physical id" / "core id" */
	size_t	 nids;
	int	 ids_ok;	/* every processor had both */
};

static int
topo_cmp(const void *a, const void *b)
{
	const struct topo *x = a, *y = b;

	if (x->pkg != y->pkg)
		return x->pkg < y->pkg ? -1 : 1;
	if (x->die != y->die)
		return x->die < y->die ? -1 : 1;
	if (x->core != y->core)
		return x->core < y->core ? -1 : 1;
	return 0;
}

/* Distinct sockets and cores in t[0..n) (sorted here). */
static void
topo_count(struct topo *t, size_t n, long *sockets, long *cores)
{
	size_t i;

	qsort(t, n, sizeof *t, topo_cmp);
	*sockets = *cores = 0;
	for (i = 0; i < n; i++) {
		if (i == 0 || t[i].pkg != t[i - 1].pkg)
			(*sockets)++;
		if (i == 0 || topo_cmp(&t[i], &t[i - 1]) != 0)
			(*cores)++;
	}
}

/* "key<TAB>: value" -> value, or NULL if line is not key. */
static const char *
field(const char *line, const char *key)
{
	size_t n = strlen(key);

	if (strncmp(line, key, n) != 0)
		return NULL;
	line += n;
	while (*line == ' ' || *line == '\t')
		line++;
	if (*line != ':')
		return NULL;
	line++;
	while (*line == ' ')
		line++;
	return line;
}

static int
cpuinfo_push(struct cpuinfo *ci, long pkg, long core)
{
	struct topo *t;

	if (ci->nids >= INV_MAX_CPUS)
		return -1;
	if ((t = reallocarray(ci->ids, ci->nids + 1, sizeof *t)) == NULL)
		return -1;
	ci->ids = t;
	t[ci->nids].pkg = pkg;
	t[ci->nids].die = 0;
	t[ci->nids].core = core;
	ci->nids++;
	return 0;
}

static int
cpuinfo_read(const char *root, struct cpuinfo *ci)
{
	char path[4096], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long pkg = -1, core = -1;
	int in_proc = 0;
	const char *v;
	FILE *f;

	if (inventory_path(path, sizeof path, root, "proc/cpuinfo") == -1 ||
	    (f = fopen(path, "re")) == NULL)
		return -1;
	ci->ids_ok = 1;
	while ((n = getline(&line, &cap, f)) != -1) {
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n == 0) {	/* end of one processor's block */
			if (in_proc && (pkg < 0 || core < 0 ||
			    cpuinfo_push(ci, pkg, core) == -1))
				ci->ids_ok = 0;
			in_proc = 0;
			pkg = core = -1;
			continue;
		}
		if ((v = field(line, "processor")) != NULL) {
			in_proc = 1;
			ci->nproc++;
		} else if ((v = field(line, "model name")) != NULL) {
			if (ci->model[0] == '\0')
				snprintf(ci->model, sizeof ci->model, "%s", v);
		} else if ((v = field(line, "vendor_id")) != NULL) {
			if (ci->vendor[0] == '\0')
				snprintf(ci->vendor, sizeof ci->vendor, "%s", v);
		} else if ((v = field(line, "flags")) != NULL) {
			if (ci->flags[0] == '\0')
				snprintf(ci->flags, sizeof ci->flags, " %s ", v);
		} else if ((v = field(line, "cpu MHz")) != NULL) {
			if (ci->mhz == 0)
				ci->mhz = (long)(strtod(v, NULL) + 0.5);
		} else if ((v = field(line, "physical id")) != NULL) {
			pkg = strtol(v, NULL, 10);
		} else if ((v = field(line, "core id")) != NULL) {
			core = strtol(v, NULL, 10);
		}
	}
	if (in_proc && (pkg < 0 || core < 0 || cpuinfo_push(ci, pkg, core) == -1))
		ci->ids_ok = 0;
	free(line);
	fclose(f);
	if (ci->nids != ci->nproc)
		ci->ids_ok = 0;
	inventory_clean(ci->model);
	inventory_clean(ci->vendor);
	return 0;
}

/* Is "cpuN" (N decimal) and online? */
static int
cpu_online(const char *root, const char *name)
{
	char rel[PATH_MAX];
	long long on;
	const char *p;

	if (strncmp(name, "cpu", 3) != 0 || name[3] == '\0')
		return 0;
	for (p = name + 3; *p; p++)
		if (!isdigit((unsigned char)*p))
			return 0;
	snprintf(rel, sizeof rel, "sys/devices/system/cpu/%s/online", name);
	if (inventory_read_ll(root, rel, &on) == 0 && on == 0)
		return 0;
	return 1;
}

/* Topology of the online CPUs from sysfs: 0 and *n > 0, or -1. */
static int
sysfs_topology(const char *root, struct topo **out, size_t *n)
{
	char path[PATH_MAX], rel[PATH_MAX];
	struct topo *t = NULL, *nt;
	size_t cnt = 0;
	long long pkg, die, core;
	struct dirent *de;
	DIR *d;

	if (inventory_path(path, sizeof path, root, "sys/devices/system/cpu")
	    == -1 || (d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (!cpu_online(root, de->d_name))
			continue;
		snprintf(rel, sizeof rel, "sys/devices/system/cpu/%s/topology/"
		    "physical_package_id", de->d_name);
		if (inventory_read_ll(root, rel, &pkg) == -1)
			continue;	/* offline or no topology */
		snprintf(rel, sizeof rel, "sys/devices/system/cpu/%s/topology/"
		    "core_id", de->d_name);
		if (inventory_read_ll(root, rel, &core) == -1)
			continue;
		snprintf(rel, sizeof rel, "sys/devices/system/cpu/%s/topology/"
		    "die_id", de->d_name);
		if (inventory_read_ll(root, rel, &die) == -1)
			die = 0;
		if (cnt >= INV_MAX_CPUS ||
		    (nt = reallocarray(t, cnt + 1, sizeof *t)) == NULL)
			goto err;
		t = nt;
		t[cnt].pkg = (long)pkg;
		t[cnt].die = (long)die;
		t[cnt].core = (long)core;
		cnt++;
	}
	closedir(d);
	if (cnt == 0) {
		free(t);
		return -1;
	}
	*out = t;
	*n = cnt;
	return 0;
err:
	closedir(d);
	free(t);
	return -1;
}

static json_t *
notable(const char *flags)
{
	char pat[64];
	json_t *a = json_array();
	int i;

	for (i = 0; notable_flags[i]; i++) {
		snprintf(pat, sizeof pat, " %s ", notable_flags[i]);
		if (strstr(flags, pat))
			json_array_append_new(a, json_string(notable_flags[i]));
	}
	return a;
}

static long
count_numa_nodes(const char *root)
{
	char path[4096];
	struct dirent *de;
	long n = 0;
	DIR *d;

	if (inventory_path(path, sizeof path, root, "sys/devices/system/node")
	    == -1 || (d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "node", 4) == 0 &&
		    isdigit((unsigned char)de->d_name[4]))
			n++;
	closedir(d);
	return n;
}

int
inventory_cpu(const char *root, json_t **out)
{
	struct cpuinfo ci;
	struct topo *t = NULL;
	size_t threads;
	long sockets, cores, numa;
	long long khz;
	const char *virt = NULL;
	json_t *o;

	memset(&ci, 0, sizeof ci);
	if (cpuinfo_read(root, &ci) == -1) {
		log_warn("%s/proc/cpuinfo", strcmp(root, "/") ? root : "");
		return -1;
	}
	if (sysfs_topology(root, &t, &threads) == 0) {
		topo_count(t, threads, &sockets, &cores);
		free(t);
	} else if (ci.nproc > 0 && ci.ids_ok) {
		threads = ci.nids;
		topo_count(ci.ids, ci.nids, &sockets, &cores);
	} else if (ci.nproc > 0) {
		threads = ci.nproc;
		sockets = 1;
		cores = (long)threads;
	} else {
		log_warnx("no processor found in /proc/cpuinfo or sysfs");
		free(ci.ids);
		return -1;
	}
	free(ci.ids);

	if (strstr(ci.flags, " vmx "))
		virt = "vmx";
	else if (strstr(ci.flags, " svm "))
		virt = "svm";
	o = json_pack("{s:s, s:s, s:I, s:I, s:I}",
	    "model", ci.model, "vendor", ci.vendor,
	    "sockets", (json_int_t)sockets, "cores", (json_int_t)cores,
	    "threads", (json_int_t)threads);
	if (o == NULL)
		return -1;
#if defined(__x86_64__)
	json_object_set_new(o, "arch", json_string("x86_64"));
#elif defined(__aarch64__)
	json_object_set_new(o, "arch", json_string("aarch64"));
#endif
	if (ci.mhz > 0)
		json_object_set_new(o, "mhz", json_integer(ci.mhz));
	if (inventory_read_ll(root, "sys/devices/system/cpu/cpu0/cpufreq/"
	    "cpuinfo_max_freq", &khz) == 0 && khz > 0)
		json_object_set_new(o, "max_mhz", json_integer(khz / 1000));
	if ((numa = count_numa_nodes(root)) > 0)
		json_object_set_new(o, "numa_nodes", json_integer(numa));
	json_object_set_new(o, "virtualization", virt ? json_string(virt) :
	    json_null());
	json_object_set_new(o, "hypervisor",
	    json_boolean(strstr(ci.flags, " hypervisor ") != NULL));
	json_object_set_new(o, "flags", notable(ci.flags));
	*out = o;
	return 0;
}
