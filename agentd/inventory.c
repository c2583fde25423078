/* inventory.c — reading sysfs/procfs values below a root prefix, and the
 * whole discovery report put together from the collectors. */
#define LOG_SUBSYS "inventory"
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "inventory.h"
#include "log.h"

int
inventory_path(char *out, size_t len, const char *root, const char *rel)
{
	int n;

	while (*rel == '/')
		rel++;
	if (root == NULL || root[0] == '\0' || strcmp(root, "/") == 0)
		n = snprintf(out, len, "/%s", rel);
	else
		n = snprintf(out, len, "%s/%s", root, rel);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

void
inventory_clean(char *s)
{
	size_t n;
	char *p;

	for (p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = (*p == '\n' || *p == '\t' || *p == '\r') ? ' ' : '?';
	n = strlen(s);
	while (n > 0 && s[n - 1] == ' ')
		s[--n] = '\0';
	for (p = s; *p == ' '; p++)
		;
	if (p != s)
		memmove(s, p, strlen(p) + 1);
}

json_t *
inventory_jstr(const char *s)
{
	char tmp[INV_STRMAX];

	snprintf(tmp, sizeof tmp, "%s", s);
	inventory_clean(tmp);
	return json_string(tmp);
}

int
inventory_read_str(const char *root, const char *rel, char *out, size_t len)
{
	char path[4096], tmp[INV_STRMAX];
	ssize_t n;
	int fd;

	if (len == 0 || inventory_path(path, sizeof path, root, rel) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK))
	    == -1)
		return -1;
	n = read(fd, tmp, sizeof tmp - 1);
	close(fd);
	if (n < 0)
		return -1;
	tmp[n] = '\0';
	/* A value ends at its first NUL (vpd and raw files are not read here). */
	inventory_clean(tmp);
	snprintf(out, len, "%s", tmp);
	return 0;
}

int
inventory_read_ll(const char *root, const char *rel, long long *out)
{
	char s[64], *end;
	long long v;

	if (inventory_read_str(root, rel, s, sizeof s) == -1 || s[0] == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

void
inventory_set_file(json_t *o, const char *key, const char *root,
    const char *rel)
{
	char v[INV_STRMAX];

	if (inventory_read_str(root, rel, v, sizeof v) == 0)
		json_object_set_new(o, key, json_string(v));
}

const char *
inventory_firmware(const char *root)
{
	char path[4096];
	struct stat st;

	if (inventory_path(path, sizeof path, root, "sys/firmware/efi") == 0 &&
	    stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return "uefi";
	return "bios";
}

static atomic_flag no_mac_said = ATOMIC_FLAG_INIT;

/* No boot MAC given: the first NIC with carrier, else the first NIC. */
static const char *
guess_boot_mac(const json_t *nics)
{
	const json_t *n;
	size_t i;

	json_array_foreach(nics, i, n)
		if (json_is_true(json_object_get(n, "carrier")))
			return json_string_value(json_object_get(n, "mac"));
	if (json_array_size(nics) > 0)
		return json_string_value(json_object_get(json_array_get(nics, 0),
		    "mac"));
	return NULL;
}

static long
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 +
	    (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

int
inventory_collect(const struct inventory_opts *o, json_t **out)
{
	json_t *r, *cpu = NULL, *mem = NULL, *disks = NULL, *nics = NULL;
	json_t *dmi = NULL, *vgs = NULL, *n;
	const char *mac;
	struct timespec t0;
	size_t i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (inventory_cpu(o->root, &cpu) == -1) {
		log_warnx("cannot read the CPUs");
		goto err_cpu;
	}
	log_debug("cpu: %ld ms", elapsed_ms(&t0));
	if (inventory_memory(o->root, &mem) == -1) {
		log_warnx("cannot read the memory size");
		goto err_mem;
	}
	log_debug("memory: %ld ms", elapsed_ms(&t0));
	/* Disks, NICs and DMI are best effort: a node without them still
	 * reports (an empty list says what was seen). */
	if (inventory_disks(o->root, o->probe, &disks) == -1)
		disks = json_array();
	log_debug("disks: %ld ms", elapsed_ms(&t0));
	if (inventory_nics(o->root, o->boot_mac, &nics) == -1)
		nics = json_array();
	log_debug("nics: %ld ms", elapsed_ms(&t0));
	if (inventory_dmi(o->root, &dmi) == -1)
		dmi = json_object();
	log_debug("dmi: %ld ms", elapsed_ms(&t0));
	if (inventory_volume_groups(disks, &vgs) == -1)
		vgs = json_array();

	mac = o->boot_mac;
	if (mac == NULL || mac[0] == '\0') {
		mac = guess_boot_mac(nics);
		json_array_foreach(nics, i, n)
			if (mac && strcmp(json_string_value(json_object_get(n,
			    "mac")), mac) == 0)
				json_object_set_new(n, "boot", json_true());
	}
	if (mac == NULL) {
		/* Nothing changes it while agentd runs: said once, with what
		 * to do; every later report fails quietly. */
		if (!atomic_flag_test_and_set(&no_mac_said))
			log_warnx("no boot MAC given and no network interface "
			    "seen, so no inventory can be reported: set mac = "
			    "in agentd.conf (agentd discover: --mac, or "
			    "bastion.mac= on the kernel command line)");
		else
			log_debug("inventory not collected (no MAC, see above)");
		goto err_mac;
	}
	r = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o}",
	    "mac", mac, "boot_mac", mac,
	    "firmware", inventory_firmware(o->root),
	    "cpu", cpu, "memory", mem, "disks", disks,
	    "volume_groups", vgs, "nics", nics, "dmi", dmi);
	if (r == NULL)
		return -1;	/* json_pack "o" stole every reference */
	json_object_set_new(r, "agent", json_pack("{s:s, s:I}", "version",
	    BASTION_VERSION, "collect_ms", (json_int_t)elapsed_ms(&t0)));
	*out = r;
	return 0;

err_mac:
	json_decref(vgs);
	json_decref(dmi);
	json_decref(nics);
	json_decref(disks);
	json_decref(mem);
err_mem:
	json_decref(cpu);
err_cpu:
	return -1;
}
