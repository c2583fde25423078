/* inventory_dmi.c — system identity from the kernel's DMI export
 * (/sys/class/dmi/id), and the SMBIOS string-set reader that
 * inventory_mem.c uses for raw structures. */
#define LOG_SUBSYS "inventory"
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "inventory.h"
#include "log.h"

#define DMI_ID	"sys/class/dmi/id/"

int
inventory_dmi_string(const uint8_t *raw, size_t rawlen, uint8_t idx,
    char *out, size_t outlen)
{
	const uint8_t *p, *end = raw + rawlen;
	uint8_t i;
	size_t n;

	if (rawlen < 4 || raw[1] < 4 || raw[1] > rawlen)
		return -1;
	if (idx == 0) {
		if (outlen)
			out[0] = '\0';
		return 0;
	}
	p = raw + raw[1];
	for (i = 1; p < end && *p != '\0'; i++) {
		n = strnlen((const char *)p, (size_t)(end - p));
		if (p + n >= end)
			return -1;	/* unterminated */
		if (i == idx) {
			snprintf(out, outlen, "%.*s", (int)n, (const char *)p);
			inventory_clean(out);
			return 0;
		}
		p += n + 1;
	}
	if (outlen)
		out[0] = '\0';	/* fewer strings than the index: firmware bug */
	return 0;
}

static const char *
chassis_name(long long t)
{
	static const char *const names[] = {
		NULL, "other", "unknown", "desktop", "low-profile desktop",
		"pizza box", "mini tower", "tower", "portable", "laptop",
		"notebook", "hand held", "docking station", "all in one",
		"sub notebook", "space-saving", "lunch box", "main server chassis",
		"expansion chassis", "sub chassis", "bus expansion chassis",
		"peripheral chassis", "raid chassis", "rack mount chassis",
		"sealed-case pc", "multi-system chassis", "compact pci",
		"advanced tca", "blade", "blade enclosure", "tablet",
		"convertible", "detachable", "iot gateway", "embedded pc",
		"mini pc", "stick pc",
	};

	size_t i = (size_t)(t & 0x7f);	/* bit 7: chassis lock present */

	if (i == 0 || i >= sizeof names / sizeof names[0])
		return "unknown";
	return names[i];
}

/* A canonical (lower-case) UUID, or "" when it is not one. */
static void
uuid_clean(char *s)
{
	size_t i;

	if (strlen(s) != 36)
		goto bad;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				goto bad;
		} else if (!isxdigit((unsigned char)s[i])) {
			goto bad;
		} else {
			s[i] = (char)tolower((unsigned char)s[i]);
		}
	}
	return;
bad:
	s[0] = '\0';
}

static json_t *
group(const char *root, const char *const *map)
{
	char rel[128], v[INV_STRMAX];
	json_t *o = json_object();

	for (; map[0]; map += 2) {
		snprintf(rel, sizeof rel, DMI_ID "%s", map[1]);
		if (inventory_read_str(root, rel, v, sizeof v) == 0)
			json_object_set_new(o, map[0], json_string(v));
	}
	return o;
}

int
inventory_dmi(const char *root, json_t **out)
{
	static const char *const sys[] = {
		"vendor", "sys_vendor", "product", "product_name",
		"version", "product_version", "serial", "product_serial",
		"sku", "product_sku", "family", "product_family", NULL
	};
	static const char *const board[] = {
		"vendor", "board_vendor", "name", "board_name",
		"version", "board_version", "serial", "board_serial",
		"asset_tag", "board_asset_tag", NULL
	};
	static const char *const chassis[] = {
		"vendor", "chassis_vendor", "serial", "chassis_serial",
		"asset_tag", "chassis_asset_tag", NULL
	};
	static const char *const bios[] = {
		"vendor", "bios_vendor", "version", "bios_version",
		"date", "bios_date", "release", "bios_release", NULL
	};
	char uuid[INV_STRMAX];
	long long type;
	json_t *o, *c;

	if ((o = group(root, sys)) == NULL)
		return -1;
	if (inventory_read_str(root, DMI_ID "product_uuid", uuid,
	    sizeof uuid) == 0) {
		uuid_clean(uuid);
		json_object_set_new(o, "uuid", json_string(uuid));
	}
	if (json_object_size(o) == 0)
		log_debug("no DMI data under %s", root);
	json_object_set_new(o, "board", group(root, board));
	c = group(root, chassis);
	if (inventory_read_ll(root, DMI_ID "chassis_type", &type) == 0)
		json_object_set_new(c, "type", json_string(chassis_name(type)));
	json_object_set_new(o, "chassis", c);
	json_object_set_new(o, "bios", group(root, bios));
	*out = o;
	return 0;
}
