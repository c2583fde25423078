/* inventory_nic.c — physical Ethernet interfaces from /sys/class/net:
 * MAC, driver (device/driver link), speed, carrier, PCI address, and
 * which one the machine booted from. */
#define _GNU_SOURCE	/* strverscmp */
#define LOG_SUBSYS "inventory"
#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inventory.h"
#include "log.h"

#define ARPHRD_ETHER_	1	/* <net/if_arp.h> without its baggage */

static int
name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strverscmp((*a)->d_name, (*b)->d_name);
}

static int
want_entry(const struct dirent *de)
{
	return de->d_name[0] != '.' && strcmp(de->d_name, "lo") != 0;
}

/* Basename of the target of root/rel, a symlink. */
static int
link_base(const char *root, const char *rel, char *out, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *b;
	ssize_t n;

	if (inventory_path(path, sizeof path, root, rel) == -1 ||
	    (n = readlink(path, target, sizeof target - 1)) <= 0)
		return -1;
	target[n] = '\0';
	b = strrchr(target, '/');
	b = b ? b + 1 : target;
	if (strlen(b) >= len)
		return -1;
	memcpy(out, b, strlen(b) + 1);
	inventory_clean(out);
	return 0;
}

static int
is_pci_addr(const char *s, size_t n)
{
	/* dddd:bb:dd.f */
	static const char pat[] = "xxxx:xx:xx.x";
	size_t i;

	if (n != sizeof pat - 1)
		return 0;
	for (i = 0; i < n; i++)
		if (pat[i] == 'x' ? !isxdigit((unsigned char)s[i]) :
		    s[i] != pat[i])
			return 0;
	return 1;
}

/*
 * The PCI function of a NIC: the last PCI address in its resolved device
 * path (also for virtio NICs, which sit below their PCI function). Adds
 * pci, vendor_id and device_id (the PCI ids, not virtio's) to n.
 */
static void
pci_ids(const char *root, const char *name, json_t *n)
{
	char rel[PATH_MAX], path[PATH_MAX], real[PATH_MAX], v[32];
	char *p, *best = NULL;
	size_t len;

	snprintf(rel, sizeof rel, "sys/class/net/%s/device", name);
	if (inventory_path(path, sizeof path, root, rel) == -1 ||
	    realpath(path, real) == NULL)
		return;
	for (p = real; (p = strchr(p, '/')) != NULL; p++)
		if (is_pci_addr(p + 1, strcspn(p + 1, "/")))
			best = p + 1;
	if (best == NULL)
		return;
	best[12] = '\0';	/* real is now the PCI function's directory */
	json_object_set_new(n, "pci", json_string(best));
	len = strlen(real);
	snprintf(real + len, sizeof real - len, "/vendor");
	if (inventory_read_str("/", real, v, sizeof v) == 0)
		json_object_set_new(n, "vendor_id", json_string(v));
	snprintf(real + len, sizeof real - len, "/device");
	if (inventory_read_str("/", real, v, sizeof v) == 0)
		json_object_set_new(n, "device_id", json_string(v));
}

static json_t *
nic_read(const char *root, const char *name, const char *boot_mac)
{
	char rel[PATH_MAX], path[PATH_MAX], v[INV_STRMAX];
	char mac[MAC_STRLEN], driver[128];
	long long type, speed, carrier, mtu;
	json_t *n;

	snprintf(rel, sizeof rel, "sys/class/net/%s/device", name);
	if (inventory_path(path, sizeof path, root, rel) == -1 ||
	    access(path, F_OK) == -1)
		return NULL;	/* virtual: bridge, bond, vlan, tun ... */
	snprintf(rel, sizeof rel, "sys/class/net/%s/type", name);
	if (inventory_read_ll(root, rel, &type) == -1 || type != ARPHRD_ETHER_)
		return NULL;	/* InfiniBand, CAN ...: no Ethernet MAC */
	snprintf(rel, sizeof rel, "sys/class/net/%s/address", name);
	if (inventory_read_str(root, rel, v, sizeof v) == -1 ||
	    mac_normalize(v, mac) == -1) {
		log_warnx("%s: no usable MAC address (\"%s\"), not reported",
		    name, v);
		return NULL;
	}
	snprintf(rel, sizeof rel, "sys/class/net/%s/device/driver", name);
	if (link_base(root, rel, driver, sizeof driver) == -1)
		driver[0] = '\0';
	/* speed and carrier read EINVAL while the interface is down; a
	 * speed without carrier is only what was advertised: unknown. */
	snprintf(rel, sizeof rel, "sys/class/net/%s/carrier", name);
	if (inventory_read_ll(root, rel, &carrier) == -1)
		carrier = -1;
	snprintf(rel, sizeof rel, "sys/class/net/%s/speed", name);
	if (carrier != 1 || inventory_read_ll(root, rel, &speed) == -1 ||
	    speed <= 0 || speed > 10000000)
		speed = -1;
	n = json_pack("{s:s, s:s, s:s, s:I, s:b}", "name", name, "mac", mac,
	    "driver", driver, "speed_mbps", (json_int_t)speed,
	    "boot", boot_mac && strcmp(boot_mac, mac) == 0);
	if (n == NULL)
		return NULL;
	json_object_set_new(n, "carrier", carrier == -1 ? json_null() :
	    json_boolean(carrier != 0));
	snprintf(rel, sizeof rel, "sys/class/net/%s/duplex", name);
	inventory_set_file(n, "duplex", root, rel);
	snprintf(rel, sizeof rel, "sys/class/net/%s/operstate", name);
	inventory_set_file(n, "operstate", root, rel);
	snprintf(rel, sizeof rel, "sys/class/net/%s/mtu", name);
	if (inventory_read_ll(root, rel, &mtu) == 0)
		json_object_set_new(n, "mtu", json_integer(mtu));
	pci_ids(root, name, n);
	return n;
}

int
inventory_nics(const char *root, const char *boot_mac, json_t **out)
{
	char path[PATH_MAX];
	struct dirent **ents = NULL;
	json_t *a, *n;
	int i, cnt;

	if (inventory_path(path, sizeof path, root, "sys/class/net") == -1)
		return -1;
	if ((cnt = scandir(path, &ents, want_entry, name_cmp)) == -1) {
		log_warn("%s", path);
		return -1;
	}
	a = json_array();
	for (i = 0; i < cnt; i++) {
		if (a && json_array_size(a) < INV_MAX_NICS &&
		    (n = nic_read(root, ents[i]->d_name, boot_mac)) != NULL)
			json_array_append_new(a, n);
		free(ents[i]);
	}
	free(ents);
	if (a == NULL)
		return -1;
	*out = a;
	return 0;
}
