/* roles.c — built-in roles and [role NAME] parsing. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roles.h"

/* The seeds' layout: /, /var and /boot are reformatted on reprovision;
 * /home, /srv and the role's data volume keep their data. */
static const char *const worker_volumes[] = {
	"/ 20G xfs reformat", "/var 20G xfs reformat", "/home 10G xfs preserve",
	"/srv 10G xfs preserve", "/var/lib/longhorn grow xfs preserve", NULL
};
static const char *const infra_volumes[] = {
	"/ 20G xfs reformat", "/var 20G xfs reformat", "/home 10G xfs preserve",
	"/srv 10G xfs preserve", "/var/lib/rancher grow xfs preserve", NULL
};

int
roles_valid_name(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n >= ROLE_NAME_LEN || !islower((unsigned char)name[0]))
		return 0;
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)name[i]) &&
		    !isdigit((unsigned char)name[i]) && name[i] != '_' &&
		    name[i] != '-')
			return 0;
	return 1;
}

const struct role *
roles_find(const struct role_set *rs, const char *name)
{
	int i;

	for (i = 0; i < rs->nroles; i++)
		if (strcmp(rs->roles[i].name, name) == 0)
			return &rs->roles[i];
	return NULL;
}

/* "/var/lib/longhorn" -> "var_lib_longhorn", "/" -> "root". LVM names
 * avoid dashes (they double in /dev/mapper). */
static int
lv_name(const char *mount, char *out, size_t len)
{
	size_t i, o = 0;

	if (strcmp(mount, "/") == 0 || strcmp(mount, "swap") == 0) {
		snprintf(out, len, "%s", mount[0] == '/' ? "root" : "swap");
		return 0;
	}
	for (i = 1; mount[i]; i++) {
		if (o + 1 >= len)
			return -1;
		out[o++] = mount[i] == '/' || mount[i] == '-' || mount[i] == '.' ?
		    '_' : mount[i];
	}
	out[o] = '\0';
	return 0;
}

static int
valid_mount(const char *m)
{
	size_t i;

	if (strcmp(m, "swap") == 0)
		return 1;
	if (m[0] != '/' || strstr(m, "//") || strstr(m, "/.") ||
	    (strlen(m) > 1 && m[strlen(m) - 1] == '/'))
		return 0;
	for (i = 0; m[i]; i++)
		if (!islower((unsigned char)m[i]) && !isdigit((unsigned char)m[i]) &&
		    !strchr("/_-.", m[i]))
			return 0;
	/* Partitions, not logical volumes: the layout makes these itself. */
	return strcmp(m, "/boot") != 0 && strncmp(m, "/boot/", 6) != 0;
}

/* "20G", "512M", "grow" (at least 1 GiB, takes the rest). */
static int
parse_size(const char *s, long *mb, int *grow)
{
	char *end;
	long n;

	if (strcmp(s, "grow") == 0) {
		*mb = 1024;
		*grow = 1;
		return 0;
	}
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || n <= 0 || end == s)
		return -1;
	if (strcmp(end, "G") == 0 && n <= 1024 * 1024)
		n *= 1024;
	else if (strcmp(end, "M") != 0 || n < 16)
		return -1;
	*mb = n;
	*grow = 0;
	return 0;
}

static int
parse_volume(const char *value, struct volume *out, const char **why)
{
	char mount[128], size[32], fs[32], keep[32], extra[8];
	struct volume v;
	int n;

	memset(&v, 0, sizeof v);
	n = sscanf(value, "%127s %31s %31s %31s %7s", mount, size, fs, keep, extra);
	if (n != 4) {
		*why = "expected: MOUNT SIZE FSTYPE preserve|reformat "
		    "(SIZE as 20G, 512M or grow)";
		return -1;
	}
	if (strlen(mount) >= sizeof v.mount || !valid_mount(mount)) {
		*why = "mount must be an absolute path of [a-z0-9/_-.] (not /boot) "
		    "or swap";
		return -1;
	}
	if (parse_size(size, &v.size_mb, &v.grow) == -1) {
		*why = "size must be like 20G, 512M (at least 16M) or grow";
		return -1;
	}
	if (strcmp(fs, "xfs") && strcmp(fs, "ext4") && strcmp(fs, "ext3") &&
	    strcmp(fs, "ext2") && strcmp(fs, "swap")) {
		*why = "fstype must be xfs, ext4, ext3, ext2 or swap";
		return -1;
	}
	if ((strcmp(fs, "swap") == 0) != (strcmp(mount, "swap") == 0)) {
		*why = "swap goes with the mount point swap, and only with it";
		return -1;
	}
	if (strcmp(keep, "preserve") == 0)
		v.preserve = 1;
	else if (strcmp(keep, "reformat") != 0) {
		*why = "the last field must be preserve or reformat";
		return -1;
	}
	strcpy(v.mount, mount);
	strcpy(v.fstype, fs);
	if (lv_name(mount, v.name, sizeof v.name) == -1) {
		*why = "mount path too long for a volume name";
		return -1;
	}
	*out = v;
	return 0;
}

static struct role *
role_get(struct role_set *rs, const char *name)
{
	struct role *r;

	if ((r = (struct role *)roles_find(rs, name)) != NULL)
		return r;
	if (rs->nroles == ROLES_MAX)
		return NULL;
	r = &rs->roles[rs->nroles++];
	memset(r, 0, sizeof *r);
	snprintf(r->name, sizeof r->name, "%s", name);
	return r;
}

int
roles_add_volume(struct role_set *rs, const char *role, const char *value,
    int first, const char **why)
{
	struct volume v;
	struct role *r;

	if (!roles_valid_name(role)) {
		*why = "role names are 1-31 of [a-z0-9_-], starting with a letter";
		return -1;
	}
	if (parse_volume(value, &v, why) == -1)
		return -1;
	if ((r = role_get(rs, role)) == NULL) {
		*why = "too many roles (at most 16)";
		return -1;
	}
	if (first) {	/* the file's definition replaces a built-in one */
		r->nvolumes = 0;
		r->builtin = 0;
	}
	if (r->nvolumes == ROLE_MAX_VOLUMES) {
		*why = "too many volumes (at most 16)";
		return -1;
	}
	r->volumes[r->nvolumes++] = v;
	return 0;
}

void
roles_defaults(struct role_set *rs)
{
	const char *why;
	int i;

	memset(rs, 0, sizeof *rs);
	for (i = 0; worker_volumes[i]; i++)
		roles_add_volume(rs, "worker", worker_volumes[i], 0, &why);
	for (i = 0; infra_volumes[i]; i++)
		roles_add_volume(rs, "infra", infra_volumes[i], 0, &why);
	rs->roles[0].builtin = rs->roles[1].builtin = 1;
}

int
roles_check(const struct role_set *rs, const char **which, const char **why)
{
	int i, j, k, root, grow;

	for (i = 0; i < rs->nroles; i++) {
		const struct role *r = &rs->roles[i];

		*which = r->name;
		root = grow = 0;
		for (j = 0; j < r->nvolumes; j++) {
			root += strcmp(r->volumes[j].mount, "/") == 0;
			grow += r->volumes[j].grow;
			for (k = 0; k < j; k++)
				if (strcmp(r->volumes[j].mount,
				    r->volumes[k].mount) == 0 ||
				    strcmp(r->volumes[j].name,
				    r->volumes[k].name) == 0) {
					*why = "the same mount point twice";
					return -1;
				}
		}
		if (root != 1) {
			*why = "a role needs a volume for /";
			return -1;
		}
		if (grow > 1) {
			*why = "at most one volume may grow";
			return -1;
		}
	}
	return 0;
}

json_t *
role_volumes_json(const struct role *r)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; i < r->nvolumes; i++) {
		const struct volume *v = &r->volumes[i];

		json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:s, s:s,"
		    " s:s}", "name", v->name, "mount", v->mount,
		    "size_mb", (json_int_t)v->size_mb, "grow", v->grow ? "yes" : "no",
		    "fstype", v->fstype, "preserve", v->preserve ? "yes" : "no"));
	}
	return arr;
}

json_t *
roles_json(const struct role_set *rs)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; i < rs->nroles; i++)
		json_array_append_new(arr, json_pack("{s:s, s:b, s:o}",
		    "name", rs->roles[i].name, "builtin", rs->roles[i].builtin,
		    "volumes", role_volumes_json(&rs->roles[i])));
	return arr;
}
