/* discover.c — discovery report schema. Extra fields are kept (agents may
 * report more than this schema knows) but every field named here is
 * typed, range-checked and size-capped. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "discover.h"
#include "mac.h"

#define MAX_STR		256
#define MAX_KEYS	256	/* per object */

struct vctx {
	char	*why;
	size_t	 whylen;
};

static int
fail(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct vctx *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->why, v->whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Optional string field of at most max bytes, printable. */
static int
check_str(struct vctx *v, const json_t *o, const char *path, const char *key,
    int required)
{
	const json_t *s = json_object_get(o, key);
	const char *p;

	if (s == NULL || json_is_null(s))
		return required ? fail(v, "%s%s: is required", path, key) : 0;
	if (!json_is_string(s))
		return fail(v, "%s%s: must be a string", path, key);
	if (json_string_length(s) > MAX_STR)
		return fail(v, "%s%s: longer than %d bytes", path, key, MAX_STR);
	for (p = json_string_value(s); *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return fail(v, "%s%s: contains control characters",
			    path, key);
	if (json_string_length(s) != strlen(json_string_value(s)))
		return fail(v, "%s%s: contains NUL", path, key);
	return 0;
}

static int
check_int(struct vctx *v, const json_t *o, const char *path, const char *key,
    json_int_t min, json_int_t max, int required)
{
	const json_t *n = json_object_get(o, key);

	if (n == NULL || json_is_null(n))
		return required ? fail(v, "%s%s: is required", path, key) : 0;
	if (!json_is_integer(n))
		return fail(v, "%s%s: must be an integer", path, key);
	if (json_integer_value(n) < min || json_integer_value(n) > max)
		return fail(v, "%s%s: must be %lld..%lld", path, key,
		    (long long)min, (long long)max);
	return 0;
}

static int
check_bool(struct vctx *v, const json_t *o, const char *path, const char *key)
{
	const json_t *b = json_object_get(o, key);

	if (b == NULL || json_is_null(b) || json_is_boolean(b))
		return 0;
	return fail(v, "%s%s: must be true or false", path, key);
}

/* Normalise o[key] as a MAC in place. */
static int
check_mac(struct vctx *v, json_t *o, const char *path, const char *key,
    int required)
{
	json_t *s = json_object_get(o, key);
	char mac[MAC_STRLEN];

	if (s == NULL || json_is_null(s))
		return required ? fail(v, "%s%s: is required", path, key) : 0;
	if (!json_is_string(s) || mac_normalize(json_string_value(s), mac) == -1)
		return fail(v, "%s%s: not a valid unicast MAC address", path, key);
	json_object_set_new(o, key, json_string(mac));
	return 0;
}

static int
check_object(struct vctx *v, const json_t *o, const char *path, int required)
{
	if (o == NULL || json_is_null(o))
		return required ? fail(v, "%s: is required", path) : 0;
	if (!json_is_object(o))
		return fail(v, "%s: must be an object", path);
	if (json_object_size(o) > MAX_KEYS)
		return fail(v, "%s: more than %d fields", path, MAX_KEYS);
	return 0;
}

#define TB (1LL << 50)	/* a petabyte: more than any one machine has */

static int
check_cpu(struct vctx *v, const json_t *cpu)
{
	if (check_object(v, cpu, "cpu", 1) ||
	    check_str(v, cpu, "cpu.", "model", 0) ||
	    check_int(v, cpu, "cpu.", "sockets", 1, 1024, 1) ||
	    check_int(v, cpu, "cpu.", "cores", 1, 1 << 20, 1) ||
	    check_int(v, cpu, "cpu.", "threads", 1, 1 << 20, 1))
		return -1;
	if (json_integer_value(json_object_get(cpu, "cores")) <
	    json_integer_value(json_object_get(cpu, "sockets")))
		return fail(v, "cpu.cores: fewer cores than sockets");
	if (json_integer_value(json_object_get(cpu, "threads")) <
	    json_integer_value(json_object_get(cpu, "cores")))
		return fail(v, "cpu.threads: fewer threads than cores");
	return 0;
}

static int
check_disks(struct vctx *v, const json_t *disks)
{
	char path[32];
	size_t i;
	json_t *d;

	if (disks == NULL || json_is_null(disks))
		return 0;
	if (!json_is_array(disks))
		return fail(v, "disks: must be an array");
	if (json_array_size(disks) > DISCOVER_MAX_DISKS)
		return fail(v, "disks: more than %d", DISCOVER_MAX_DISKS);
	json_array_foreach(disks, i, d) {
		snprintf(path, sizeof path, "disks[%zu]", i);
		if (check_object(v, d, path, 1))
			return -1;
		strcat(path, ".");
		if (check_str(v, d, path, "name", 1) ||
		    check_int(v, d, path, "size_bytes", 0, TB, 1) ||
		    check_str(v, d, path, "model", 0) ||
		    check_str(v, d, path, "serial", 0) ||
		    check_str(v, d, path, "wwn", 0) ||
		    check_bool(v, d, path, "rotational") ||
		    check_bool(v, d, path, "removable"))
			return -1;
	}
	return 0;
}

static int
check_nics(struct vctx *v, const json_t *nics)
{
	char path[32];
	size_t i;
	json_t *n;

	if (nics == NULL || json_is_null(nics))
		return 0;
	if (!json_is_array(nics))
		return fail(v, "nics: must be an array");
	if (json_array_size(nics) > DISCOVER_MAX_NICS)
		return fail(v, "nics: more than %d", DISCOVER_MAX_NICS);
	json_array_foreach(nics, i, n) {
		snprintf(path, sizeof path, "nics[%zu]", i);
		if (check_object(v, n, path, 1))
			return -1;
		strcat(path, ".");
		if (check_str(v, n, path, "name", 1) ||
		    check_mac(v, n, path, "mac", 1) ||
		    check_str(v, n, path, "driver", 0) ||
		    check_int(v, n, path, "speed_mbps", -1, 10000000, 0) ||
		    check_bool(v, n, path, "carrier") ||
		    check_bool(v, n, path, "boot"))
			return -1;
	}
	return 0;
}

/* The top-level fields a report may carry: DESIGN §9's and what agentd's
 * inventory adds (agentd/inventory.c). Anything else is dropped, not
 * stored: a machine on the provisioning network does not get to park a
 * megabyte of its own choosing in the database. */
static const char *const known_fields[] = { "mac", "boot_mac", "firmware",
    "cpu", "memory", "disks", "nics", "dmi", "volume_groups", "agent",
    NULL };

static void
drop_unknown(json_t *r)
{
	const char *k;
	json_t *v;
	void *tmp;
	size_t i;

	json_object_foreach_safe(r, tmp, k, v) {
		for (i = 0; known_fields[i]; i++)
			if (strcmp(k, known_fields[i]) == 0)
				break;
		if (known_fields[i] == NULL)
			json_object_del(r, k);
	}
}

int
discover_validate(const json_t *report, json_t **out, char *why, size_t whylen)
{
	struct vctx v = { why, whylen };
	const json_t *fw, *dmi, *mem;
	json_t *r;

	if (!json_is_object(report))
		return fail(&v, "the report must be a JSON object");
	if (json_object_size(report) > MAX_KEYS)
		return fail(&v, "more than %d top-level fields", MAX_KEYS);
	if ((r = json_deep_copy(report)) == NULL)
		return fail(&v, "out of memory");
	drop_unknown(r);
	if (check_mac(&v, r, "", "mac", 1) || check_mac(&v, r, "", "boot_mac", 0))
		goto err;
	fw = json_object_get(r, "firmware");
	if (!json_is_string(fw) || (strcmp(json_string_value(fw), "bios") != 0 &&
	    strcmp(json_string_value(fw), "uefi") != 0)) {
		fail(&v, "firmware: must be \"bios\" or \"uefi\"");
		goto err;
	}
	if (check_cpu(&v, json_object_get(r, "cpu")))
		goto err;
	mem = json_object_get(r, "memory");
	if (check_object(&v, mem, "memory", 1) ||
	    check_int(&v, mem, "memory.", "total_bytes", 1, TB, 1))
		goto err;
	if (check_disks(&v, json_object_get(r, "disks")) ||
	    check_nics(&v, json_object_get(r, "nics")))
		goto err;
	dmi = json_object_get(r, "dmi");
	if (check_object(&v, dmi, "dmi", 0))
		goto err;
	if (dmi && json_is_object(dmi) && (
	    check_str(&v, dmi, "dmi.", "vendor", 0) ||
	    check_str(&v, dmi, "dmi.", "product", 0) ||
	    check_str(&v, dmi, "dmi.", "serial", 0) ||
	    check_str(&v, dmi, "dmi.", "uuid", 0)))
		goto err;
	*out = r;
	return 0;
err:
	json_decref(r);
	return -1;
}

static json_int_t
int_at(const json_t *o, const char *a, const char *b)
{
	const json_t *x = json_object_get(o, a);

	return json_integer_value(b ? json_object_get(x, b) : x);
}

static size_t
len_at(const json_t *o, const char *a)
{
	return json_array_size(json_object_get(o, a));
}

/* Absent and null are the same; json_equal(NULL, NULL) is not "equal". */
static int
same(const json_t *a, const json_t *b)
{
	if (a && json_is_null(a))
		a = NULL;
	if (b && json_is_null(b))
		b = NULL;
	return (a == NULL && b == NULL) || (a && b && json_equal(a, b));
}

int
discover_diff(const json_t *old, const json_t *new, struct buf *out)
{
	const char *sep = "", *fa, *fb;
	json_int_t a, b;

	/* The firmware decides the install's partitions: first. */
	fa = json_string_value(json_object_get(old, "firmware"));
	fb = json_string_value(json_object_get(new, "firmware"));
	if ((fa || fb) && (fa == NULL || fb == NULL || strcmp(fa, fb) != 0)) {
		buf_note(out, "firmware %s -> %s", fa ? fa : "none",
		    fb ? fb : "none");
		sep = "; ";
	}
	a = int_at(old, "cpu", "threads");
	b = int_at(new, "cpu", "threads");
	if (a != b) {
		buf_note(out, "cpu threads %lld -> %lld", (long long)a,
		    (long long)b);
		sep = "; ";
	}
	a = int_at(old, "memory", "total_bytes");
	b = int_at(new, "memory", "total_bytes");
	if (a != b) {
		buf_note(out, "%smemory %.1f GiB -> %.1f GiB", sep,
		    (double)a / (1 << 30), (double)b / (1 << 30));
		sep = "; ";
	}
	if (len_at(old, "disks") != len_at(new, "disks")) {
		buf_note(out, "%sdisks %zu -> %zu", sep, len_at(old, "disks"),
		    len_at(new, "disks"));
		sep = "; ";
	} else if (!same(json_object_get(old, "disks"),
	    json_object_get(new, "disks"))) {
		buf_note(out, "%sdisk details changed", sep);
		sep = "; ";
	}
	if (len_at(old, "nics") != len_at(new, "nics")) {
		buf_note(out, "%snics %zu -> %zu", sep, len_at(old, "nics"),
		    len_at(new, "nics"));
		sep = "; ";
	} else if (!same(json_object_get(old, "nics"),
	    json_object_get(new, "nics"))) {
		buf_note(out, "%snic details changed", sep);
		sep = "; ";
	}
	if (!same(json_object_get(old, "dmi"), json_object_get(new, "dmi")))
		buf_note(out, "%sdmi changed", sep);
	return 0;
}
