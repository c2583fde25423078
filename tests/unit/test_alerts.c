/* test_alerts.c — the attention reason table (every reason, thresholds,
 * staleness hiding stale numbers), the outbound address check, channel
 * and [alerts] config parsing, and agentd's health collector on the sysfs
 * fixture tree with captured smartctl --json outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "attention.h"
#include "buf.h"
#include "channels.h"
#include "config.h"
#include "notify.h"

#define FIX	TEST_SRCDIR "/tests/data/health"

static struct att_thresholds T = { 85, 95, 90, 97, 2, 4, 80, 90, 7, 90 };

static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *s = calloc(1, 1 << 20);
	size_t n;

	assert_non_null(fp);
	n = fread(s, 1, (1 << 20) - 1, fp);
	s[n] = '\0';
	fclose(fp);
	return s;
}

static const struct att_reason *
find(const struct att_result *r, const char *reason, const char *subject)
{
	int i;

	for (i = 0; i < r->nreasons; i++)
		if (strcmp(r->r[i].reason, reason) == 0 &&
		    strcmp(r->r[i].subject, subject) == 0)
			return &r->r[i];
	return NULL;
}

static void
compute(const char *hb_text, int64_t age_ms, int64_t inv_ms, int64_t cert_left,
    struct att_result *out)
{
	json_t *hb = json_loads(hb_text, 0, NULL);
	struct att_input in = { 1000000000000LL, 1000000000000LL - age_ms,
	    inv_ms, cert_left ? 1000000000000LL + cert_left : 0, hb, "0.1.0" };

	assert_non_null(hb);
	attention_compute(&in, &T, out);
	json_decref(hb);
}

static void
test_ok_node(void **state)
{
	struct att_result r;

	compute("{\"version\": \"0.1.0\", \"cpus\": 4, \"load\": [1.0, 1, 1],"
	    " \"memory\": {\"total_bytes\": 1000, \"available_bytes\": 500},"
	    " \"mounts\": [{\"mount\": \"/\", \"size_bytes\": 100,"
	    " \"free_bytes\": 50}], \"temperatures\": [{\"sensor\": \"a/b\","
	    " \"celsius\": 40.0}], \"smart\": [{\"device\": \"sda\","
	    " \"passed\": true, \"celsius\": 30}]}", 1000, 1, 30LL * 86400000,
	    &r);
	assert_int_equal(r.level, ATT_OK);
	assert_int_equal(r.nreasons, 0);
}

static void
test_every_reason(void **state)
{
	struct att_result r;

	compute("{\"version\": \"0.0.9\", \"cpus\": 2, \"load\": [5.0, 1, 1],"
	    " \"memory\": {\"total_bytes\": 1000, \"available_bytes\": 80},"
	    " \"mounts\": [{\"mount\": \"/\", \"size_bytes\": 100,"
	    " \"free_bytes\": 10}, {\"mount\": \"/data\", \"size_bytes\": 100,"
	    " \"free_bytes\": 2}, {\"mount\": \"/ok\", \"size_bytes\": 100,"
	    " \"free_bytes\": 90}], \"temperatures\": [{\"sensor\": \"cpu\","
	    " \"celsius\": 85.0}, {\"sensor\": \"gpu\", \"celsius\": 70.0,"
	    " \"critical_celsius\": 70.0}], \"smart\": [{\"device\": \"sdb\","
	    " \"passed\": false, \"celsius\": 95}]}", 1000, 0, 3600000, &r);
	assert_int_equal(r.level, ATT_CRITICAL);
	assert_int_equal(find(&r, "disk_low", "/")->level, ATT_WARNING);
	assert_int_equal(find(&r, "disk_low", "/data")->level, ATT_CRITICAL);
	assert_null(find(&r, "disk_low", "/ok"));
	assert_int_equal(find(&r, "memory_high", "")->level, ATT_WARNING);
	assert_int_equal(find(&r, "load_high", "")->level, ATT_WARNING);
	assert_int_equal(find(&r, "temperature_high", "cpu")->level, ATT_WARNING);
	/* The sensor's own critical point is lower than [alerts]. */
	assert_int_equal(find(&r, "temperature_high", "gpu")->level,
	    ATT_CRITICAL);
	assert_int_equal(find(&r, "temperature_high", "sdb")->level,
	    ATT_CRITICAL);
	assert_int_equal(find(&r, "smart_failing", "sdb")->level, ATT_CRITICAL);
	assert_int_equal(find(&r, "never_inventoried", "")->level, ATT_WARNING);
	assert_int_equal(find(&r, "cert_expiring", "")->level, ATT_WARNING);
	assert_int_equal(find(&r, "agent_outdated", "")->level, ATT_WARNING);
	assert_null(find(&r, "heartbeat_stale", ""));
	assert_true(attention_reason_known("smart_failing"));
	assert_false(attention_reason_known("container_exited"));
}

static void
test_stale_hides_old_numbers(void **state)
{
	struct att_result r;

	compute("{\"version\": \"0.1.0\", \"cpus\": 1, \"load\": [50, 1, 1]}",
	    91000, 1, -1000, &r);
	assert_int_equal(r.level, ATT_CRITICAL);
	assert_non_null(find(&r, "heartbeat_stale", ""));
	assert_null(find(&r, "load_high", ""));
	assert_int_equal(find(&r, "cert_expiring", "")->level, ATT_CRITICAL);
	/* Newer agents are not outdated; garbage is ignored. */
	compute("{\"version\": \"0.1.10\", \"mounts\": [{\"mount\": 1}],"
	    " \"memory\": \"x\", \"load\": \"y\", \"smart\": {}}", 1000, 1, 0, &r);
	assert_int_equal(r.level, ATT_OK);
}

static void
addr4(struct sockaddr_in *s, const char *a)
{
	memset(s, 0, sizeof *s);
	s->sin_family = AF_INET;
	inet_pton(AF_INET, a, &s->sin_addr);
}

static void
addr6(struct sockaddr_in6 *s, const char *a)
{
	memset(s, 0, sizeof *s);
	s->sin6_family = AF_INET6;
	inet_pton(AF_INET6, a, &s->sin6_addr);
}

static void
test_addr_allowed(void **state)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;

	addr4(&s4, "169.254.169.254");
	assert_false(notify_addr_allowed((struct sockaddr *)&s4));
	addr4(&s4, "169.254.0.1");
	assert_false(notify_addr_allowed((struct sockaddr *)&s4));
	addr4(&s4, "100.100.100.200");
	assert_false(notify_addr_allowed((struct sockaddr *)&s4));
	addr4(&s4, "127.0.0.1");
	assert_true(notify_addr_allowed((struct sockaddr *)&s4));
	addr4(&s4, "10.0.0.5");
	assert_true(notify_addr_allowed((struct sockaddr *)&s4));
	addr6(&s6, "fe80::1");
	assert_false(notify_addr_allowed((struct sockaddr *)&s6));
	addr6(&s6, "febf::1");
	assert_false(notify_addr_allowed((struct sockaddr *)&s6));
	addr6(&s6, "::ffff:169.254.169.254");
	assert_false(notify_addr_allowed((struct sockaddr *)&s6));
	addr6(&s6, "fd00:ec2::254");
	assert_false(notify_addr_allowed((struct sockaddr *)&s6));
	addr6(&s6, "fec0::1");
	assert_true(notify_addr_allowed((struct sockaddr *)&s6));
	addr6(&s6, "2001:db8::1");
	assert_true(notify_addr_allowed((struct sockaddr *)&s6));
}

static void
test_channel_config(void **state)
{
	struct config c;
	struct buf err;
	const struct channel *ch;

	buf_init(&err, 1 << 16);
	assert_int_equal(config_load_string("t.conf", "[channel m]\n"
	    "type = email\nurl = smtp+starttls://mail:587\nfrom = a@b\n"
	    "to = c@d\nmin_level = critical\nrate_limit = 5\n"
	    "[alerts]\ndisk_warning = 70\n", &c, &err), 0);
	ch = channels_find(&c.channels, "m");
	assert_non_null(ch);
	assert_int_equal(ch->type, CH_EMAIL);
	assert_int_equal(ch->min_level, 2);
	assert_int_equal(ch->rate_per_hour, 5);
	assert_int_equal(ch->retries, 3);
	assert_int_equal(c.alerts_disk_warning, 70);
	assert_int_equal(c.alerts_disk_critical, 95);
	buf_reset(&err);
	assert_int_equal(config_load_string("t.conf", "[channel w]\n"
	    "type = webhook\nurl = ftp://x\n[channel t]\ntype = telegram\n"
	    "token = 1\n[channel b]\ntype = ntfy\nurl = https://n/t\n"
	    "title = x\n[channel h]\ntype = webhook\nurl = https://h\n"
	    "to = a\r\n", &c, &err), -1);
	assert_non_null(strstr(err.data, "[channel w]: url must be"));
	assert_non_null(strstr(err.data, "[channel b] title: unknown key"));
	buf_free(&err);
}

static void
test_smart_parse(void **state)
{
	char *s = slurp(FIX "/smart/failing.json");
	json_t *o = health_smart_parse("sda", s);

	assert_non_null(o);
	assert_true(json_is_false(json_object_get(o, "passed")));
	assert_int_equal(json_integer_value(json_object_get(o, "celsius")), 40);
	json_decref(o);
	free(s);
	s = slurp(FIX "/smart/passing.json");
	o = health_smart_parse("nvme0n1", s);
	assert_true(json_is_true(json_object_get(o, "passed")));
	json_decref(o);
	free(s);
	s = slurp(FIX "/smart/unavailable.json");
	assert_null(health_smart_parse("vda", s));
	free(s);
	assert_null(health_smart_parse("x", "not json"));
}

static void
test_health_fixture(void **state)
{
	struct agent_conf c;
	json_t *hb = json_object(), *t;

	memset(&c, 0, sizeof c);
	snprintf(c.inventory_root, sizeof c.inventory_root, "%s",
	    FIX "/sysfs-hot");
	health_add(&c, hb);	/* no smartctl: no "smart" */
	assert_int_equal(json_integer_value(json_object_get(hb, "cpus")), 2);
	assert_true(json_number_value(json_array_get(json_object_get(hb,
	    "load"), 0)) == 9.5);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(hb,
	    "memory"), "available_bytes")), 160000LL * 1024);
	assert_int_equal(json_array_size(json_object_get(hb, "mounts")), 0);
	t = json_object_get(hb, "temperatures");
	assert_int_equal(json_array_size(t), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(t,
	    0), "sensor")), "coretemp/Package id 0");
	assert_true(json_number_value(json_object_get(json_array_get(t, 0),
	    "critical_celsius")) == 100.0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(t,
	    3), "sensor")), "thermal_zone0/x86_pkg_temp");
	assert_null(json_object_get(hb, "smart"));
	json_decref(hb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_node),
		cmocka_unit_test(test_every_reason),
		cmocka_unit_test(test_stale_hides_old_numbers),
		cmocka_unit_test(test_addr_allowed),
		cmocka_unit_test(test_channel_config),
		cmocka_unit_test(test_smart_parse),
		cmocka_unit_test(test_health_fixture),
	};

	return cmocka_run_group_tests_name("alerts", tests, NULL, NULL);
}
