/* attention.c — the reason table and the level of one node. Each row is
 * a check that reads the node's data and adds reasons; the level is the
 * worst reason's. Checks see only struct att_input: what bastion has
 * today is the heartbeat (health.c on the node), the last heartbeat's
 * time, the inventory's time and the certificate. The container and
 * guest reasons (DESIGN §14) need their reports in att_input first, and
 * then are one row each here. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"

typedef void (*att_check)(const struct att_input *,
    const struct att_thresholds *, struct att_result *);

static void add(struct att_result *, const char *reason, const char *subject,
    enum att_level, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
add(struct att_result *res, const char *reason, const char *subject,
    enum att_level level, const char *fmt, ...)
{
	struct att_reason *r;
	va_list ap;

	if (level == ATT_OK || res->nreasons == ATT_MAX_REASONS)
		return;
	r = &res->r[res->nreasons++];
	snprintf(r->reason, sizeof r->reason, "%s", reason);
	snprintf(r->subject, sizeof r->subject, "%s", subject ? subject : "");
	r->level = level;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof r->message, fmt, ap);
	va_end(ap);
	if (level > res->level)
		res->level = level;
}

static enum att_level
grade(double v, double warn, double crit)
{
	return v >= crit ? ATT_CRITICAL : v >= warn ? ATT_WARNING : ATT_OK;
}

static const json_t *
hb(const struct att_input *in, const char *key)
{
	return in->heartbeat ? json_object_get(in->heartbeat, key) : NULL;
}

static void
check_stale(const struct att_input *in, const struct att_thresholds *t,
    struct att_result *res)
{
	int64_t age = in->now_ms - in->last_seen_ms;

	if (age > (int64_t)t->stale_after_s * 1000)
		add(res, "heartbeat_stale", NULL, ATT_CRITICAL,
		    "no heartbeat for %lld s", (long long)(age / 1000));
}

static void
check_inventory(const struct att_input *in, const struct att_thresholds *t,
    struct att_result *res)
{
	if (in->inventory_ms == 0)
		add(res, "never_inventoried", NULL, ATT_WARNING,
		    "the agent has not sent an inventory");
}

static void
check_disks(const struct att_input *in, const struct att_thresholds *t,
    struct att_result *res)
{
	const json_t *m;
	double size, avail, pct;
	const char *mnt;
	size_t i;

	json_array_foreach(hb(in, "mounts"), i, m) {
		size = json_number_value(json_object_get(m, "size_bytes"));
		avail = json_number_value(json_object_get(m, "free_bytes"));
		mnt = json_string_value(json_object_get(m, "mount"));
		if (size <= 0 || mnt == NULL || avail < 0 || avail > size)
			continue;
		pct = 100.0 * (size - avail) / size;
		add(res, "disk_low", mnt, grade(pct, t->disk_warning,
		    t->disk_critical), "%s is %.0f%% full (%.1f GiB free)", mnt,
		    pct, avail / 1073741824.0);
	}
}

static void
check_memory(const struct att_input *in, const struct att_thresholds *t,
    struct att_result *res)
{
	const json_t *m = hb(in, "memory");
	double total = json_number_value(json_object_get(m, "total_bytes"));
	const json_t *av = json_object_get(m, "available_bytes");
	double pct;

	if (total <= 0 || av == NULL || json_number_value(av) > total)
		return;
	pct = 100.0 * (total - json_number_value(av)) / total;
	add(res, "memory_high", NULL, grade(pct, t->memory_warning,
	    t->memory_critical), "memory %.0f%% used", pct);
}

static void
check_load(const struct att_input *in, const struct att_thresholds *t,
    struct att_result *res)
{
	double l = json_number_value(json_array_get(hb(in, "load"), 0));
	json_int_t cpus = json_integer_value(hb(in, "cpus"));

	if (cpus <= 0)
		return;
	add(res, "load_high", NULL, grade(l / (double)cpus, t->load_warning,
	    t->load_critical), "load %.2f on %lld CPUs", l, (long long)cpus);
}

static void
check_temperature(const struct att_input *in,
    const struct att_thresholds *t, struct att_result *res)
{
	const json_t *s;
	const char *name;
	double c, crit, warn;
	size_t i;

	json_array_foreach(hb(in, "temperatures"), i, s) {
		c = json_number_value(json_object_get(s, "celsius"));
		name = json_string_value(json_object_get(s, "sensor"));
		if (name == NULL)
			continue;
		/* The sensor's own critical point, when lower, counts too. */
		crit = t->temperature_critical;
		if (json_number_value(json_object_get(s, "critical_celsius")) > 0 &&
		    json_number_value(json_object_get(s, "critical_celsius")) < crit)
			crit = json_number_value(json_object_get(s,
			    "critical_celsius"));
		warn = t->temperature_warning < crit ? t->temperature_warning : crit;
		add(res, "temperature_high", name, grade(c, warn, crit),
		    "%s at %.0f °C", name, c);
	}
	json_array_foreach(hb(in, "smart"), i, s) {
		name = json_string_value(json_object_get(s, "device"));
		if (name == NULL || !json_is_number(json_object_get(s, "celsius")))
			continue;
		c = json_number_value(json_object_get(s, "celsius"));
		add(res, "temperature_high", name, grade(c,
		    t->temperature_warning, t->temperature_critical),
		    "disk %s at %.0f °C", name, c);
	}
}

static void
check_smart(const struct att_input *in, const struct att_thresholds *t,
    struct att_result *res)
{
	const json_t *s;
	const char *dev;
	size_t i;

	json_array_foreach(hb(in, "smart"), i, s) {
		dev = json_string_value(json_object_get(s, "device"));
		if (dev && json_is_false(json_object_get(s, "passed")))
			add(res, "smart_failing", dev, ATT_CRITICAL,
			    "SMART overall health of %s: FAILED", dev);
	}
}

static void
check_cert(const struct att_input *in, const struct att_thresholds *t,
    struct att_result *res)
{
	int64_t left = in->cert_not_after_ms - in->now_ms;

	if (in->cert_not_after_ms == 0)
		return;
	if (left <= 0)
		add(res, "cert_expiring", NULL, ATT_CRITICAL,
		    "the agent's certificate has expired");
	else if (left < (int64_t)t->cert_days * 86400000)
		add(res, "cert_expiring", NULL, ATT_WARNING,
		    "the agent's certificate expires in %lld h",
		    (long long)(left / 3600000));
}

/* "0.1.10" > "0.1.9": numeric parts compared in order. */
static int
version_cmp(const char *a, const char *b)
{
	char *ea, *eb;
	long x, y;

	while (*a || *b) {
		x = strtol(a, &ea, 10);
		y = strtol(b, &eb, 10);
		if (x != y)
			return x < y ? -1 : 1;
		if (ea == a || eb == b)
			return strcmp(a, b);
		a = *ea == '.' ? ea + 1 : ea;
		b = *eb == '.' ? eb + 1 : eb;
		if (*ea != '.' && *eb != '.')
			return strcmp(a, b);
	}
	return 0;
}

static void
check_version(const struct att_input *in, const struct att_thresholds *t,
    struct att_result *res)
{
	const char *v = json_string_value(hb(in, "version"));

	if (v && in->version && version_cmp(v, in->version) < 0)
		add(res, "agent_outdated", NULL, ATT_WARNING,
		    "agentd %s is older than bastion %s", v, in->version);
}

/* The table: one row per reason. A node that stopped sending shows only
 * heartbeat_stale (its last numbers are old news). */
static const struct {
	const char	*reason;
	att_check	 check;
	int		 needs_fresh;	/* skipped when heartbeat_stale */
} reasons[] = {
	{ "heartbeat_stale", check_stale, 0 },
	{ "never_inventoried", check_inventory, 0 },
	{ "disk_low", check_disks, 1 },
	{ "memory_high", check_memory, 1 },
	{ "load_high", check_load, 1 },
	{ "temperature_high", check_temperature, 1 },
	{ "smart_failing", check_smart, 1 },
	{ "cert_expiring", check_cert, 0 },
	{ "agent_outdated", check_version, 0 },
};
#define NREASONS (sizeof reasons / sizeof reasons[0])

void
attention_compute(const struct att_input *in, const struct att_thresholds *t,
    struct att_result *out)
{
	size_t i;
	int stale;

	out->level = ATT_OK;
	out->nreasons = 0;
	check_stale(in, t, out);
	stale = out->nreasons > 0;
	for (i = 1; i < NREASONS; i++)
		if (!(stale && reasons[i].needs_fresh))
			reasons[i].check(in, t, out);
}

int
attention_reason_known(const char *name)
{
	size_t i;

	for (i = 0; i < NREASONS; i++)
		if (strcmp(name, reasons[i].reason) == 0)
			return 1;
	return 0;
}

const char *
attention_level_name(enum att_level l)
{
	return l == ATT_CRITICAL ? "critical" : l == ATT_WARNING ? "warning" :
	    "ok";
}

void
attention_thresholds(const struct config *c, struct att_thresholds *t)
{
	t->disk_warning = c->alerts_disk_warning;
	t->disk_critical = c->alerts_disk_critical;
	t->memory_warning = c->alerts_memory_warning;
	t->memory_critical = c->alerts_memory_critical;
	t->load_warning = c->alerts_load_warning;
	t->load_critical = c->alerts_load_critical;
	t->temperature_warning = c->alerts_temperature_warning;
	t->temperature_critical = c->alerts_temperature_critical;
	t->cert_days = c->alerts_cert_days;
	t->stale_after_s = c->alerts_stale_after ? c->alerts_stale_after :
	    3 * c->agent_heartbeat_interval;
}

json_t *
attention_json(const struct att_result *res)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; arr && i < res->nreasons; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}",
		    "reason", res->r[i].reason, "subject", res->r[i].subject,
		    "level", attention_level_name(res->r[i].level), "message",
		    res->r[i].message));
	return json_pack("{s:s, s:o}", "level", attention_level_name(res->level),
	    "reasons", arr ? arr : json_array());
}
