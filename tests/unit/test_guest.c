/* test_guest.c — the fields of a guest job as both sides check them
 * (DESIGN §13): bastion's routes_guest_args() building a job from a
 * request body, agentd's guest_job_parse() taking it apart again without
 * trusting bastion, and routes_guest_report_clean() on an agent's
 * report; plus agentd.conf's guests list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent.h"
#include "guest.h"
#include "routes.h"

static json_t *
args_of(const char *action, const char *guest, const char *body)
{
	char why[256];
	json_t *b = body ? json_loads(body, 0, NULL) : NULL, *a;

	if (body)
		assert_non_null(b);
	a = routes_guest_args(action, guest, b, why, sizeof why);
	json_decref(b);
	return a;
}

static void
test_bastion_builds_only_valid_jobs(void **state)
{
	static const struct { const char *action, *guest, *body; } bad[] = {
		{ "start", "a;b", NULL }, { "start", "-x", NULL },
		{ "start", "..", NULL }, { "start", "", NULL },
		{ "console", "ct1", NULL },		/* not here: its own route */
		{ "explode", "ct1", NULL },
		{ "start", "ct1", "{\"argv\":[\"true\"]}" },
		{ "start", "ct1", "{\"type\":\"docker\"}" },
		{ "start", "ct1", "[]" },
		{ "shutdown", "ct1", "{\"timeout\":0}" },
		{ "shutdown", "ct1", "{\"timeout\":3601}" },
		{ "shutdown", "ct1", "{\"timeout\":\"5\"}" },
		{ "snapshot", "ct1", NULL },		/* needs a name */
		{ "snapshot", "ct1", "{\"snapshot\":\"a/b\"}" },
		{ "rollback", "ct1", "{\"snapshot\":\"../x\"}" },
		{ "snapshot-delete", "ct1", "{\"snapshot\":\"\"}" },
		{ "guard", "ct1", "{\"argv\":[\"true\"]}" },	/* no health */
		{ "guard", "ct1", "{\"argv\":[],\"health\":[\"true\"]}" },
		{ "guard", "ct1", "{\"argv\":\"rm -rf /\",\"health\":[\"true\"]}" },
		{ "guard", "ct1", "{\"argv\":[1],\"health\":[\"true\"]}" },
		{ "guard", "ct1", "{\"argv\":[\"\"],\"health\":[\"true\"]}" },
		{ "guard", "ct1", "{\"argv\":[\"a\"],\"health\":[\"b\"],"
		    "\"keep_snapshot\":1}" },
		{ "guard", "ct1", "{\"argv\":[\"a\"],\"health\":[\"b\"],"
		    "\"timeout\":86401}" },
	};
	json_t *a;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if ((a = args_of(bad[i].action, bad[i].guest, bad[i].body)) !=
		    NULL) {
			json_decref(a);
			fail_msg("accepted %s %s %s", bad[i].action, bad[i].guest,
			    bad[i].body ? bad[i].body : "");
		}
	/* 65 argv words: one over. */
	{
		json_t *b = json_pack("{s:[], s:[s]}", "argv", "health", "true");
		char why[128];

		for (i = 0; i <= GUEST_ARGV_MAX; i++)
			json_array_append_new(json_object_get(b, "argv"),
			    json_string("x"));
		assert_null(routes_guest_args("guard", "ct1", b, why,
		    sizeof why));
		json_decref(b);
	}
	a = args_of("guard", "ct1", "{\"argv\":[\"sh\",\"-c\",\"echo x\"],"
	    "\"health\":[\"true\"],\"snapshot\":\"g1\",\"keep_snapshot\":true,"
	    "\"timeout\":60,\"type\":\"lxc\"}");
	assert_non_null(a);
	assert_string_equal(json_string_value(json_object_get(a, "action")),
	    "guard");
	assert_string_equal(json_string_value(json_object_get(a, "guest")),
	    "ct1");
	assert_int_equal(json_array_size(json_object_get(a, "argv")), 3);
	assert_true(json_is_true(json_object_get(a, "keep_snapshot")));
	json_decref(a);
	a = args_of("snapshot-delete", "vm-1.web", "{\"snapshot\":\"before-x\"}");
	assert_non_null(a);
	json_decref(a);
	a = args_of("reboot", "web1", NULL);
	assert_non_null(a);
	assert_int_equal(json_object_size(a), 2);
	json_decref(a);
}

static int
parse(const char *text, struct guest_job *gj)
{
	char why[256];
	json_t *a = json_loads(text, 0, NULL);
	int rc;

	assert_non_null(a);
	rc = guest_job_parse(a, gj, why, sizeof why);
	json_decref(a);
	return rc;
}

static void
test_agent_checks_every_field_again(void **state)
{
	static const char *const bad[] = {
		"{\"action\":\"start\",\"guest\":\"../x\"}",
		"{\"action\":\"start\",\"guest\":\"web1\",\"extra\":1}",
		"{\"action\":\"start\",\"guest\":\"web1\",\"type\":\"xen\"}",
		"{\"action\":\"nuke\",\"guest\":\"web1\"}",
		"{\"guest\":\"web1\"}",
		"{\"action\":\"rollback\",\"guest\":\"web1\"}",
		"{\"action\":\"rollback\",\"guest\":\"web1\",\"snapshot\":\"a b\"}",
		"{\"action\":\"shutdown\",\"guest\":\"web1\",\"timeout\":-1}",
		"{\"action\":\"start\",\"guest\":\"web1\",\"argv\":[\"x\"]}",
		"{\"action\":\"guard\",\"guest\":\"web1\",\"argv\":[\"x\"]}",
		"{\"action\":\"guard\",\"guest\":\"web1\",\"argv\":[\"x\"],"
		    "\"health\":[true]}",
		"{\"action\":\"console\",\"guest\":\"web1\"}",
		"{\"action\":\"console\",\"guest\":\"web1\",\"stream\":\"zz\"}",
		"{\"action\":\"start\",\"guest\":\"web1\",\"stream\":"
		    "\"0123456789abcdef0123456789abcdef\"}",
		/* stream_url: a console's only, https://host:port only. */
		"{\"action\":\"start\",\"guest\":\"web1\",\"stream_url\":"
		    "\"https://10.77.0.2:8443\"}",
		"{\"action\":\"console\",\"guest\":\"web1\",\"stream\":"
		    "\"0123456789abcdef0123456789abcdef\",\"stream_url\":"
		    "\"http://10.77.0.2:8443\"}",
		"{\"action\":\"console\",\"guest\":\"web1\",\"stream\":"
		    "\"0123456789abcdef0123456789abcdef\",\"stream_url\":"
		    "\"https://10.77.0.2:8443/evil\"}",
		"{\"action\":\"console\",\"guest\":\"web1\",\"stream\":"
		    "\"0123456789abcdef0123456789abcdef\",\"stream_url\":8443}",
		"[]",
	};
	struct guest_job gj;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (parse(bad[i], &gj) == 0)
			fail_msg("accepted %s", bad[i]);
	assert_int_equal(parse("{\"action\":\"guard\",\"guest\":\"ct1\","
	    "\"argv\":[\"sh\",\"-c\",\"x\"],\"health\":[\"true\"],"
	    "\"keep_snapshot\":true,\"timeout\":30,\"type\":\"lxc\"}", &gj), 0);
	assert_string_equal(gj.action, "guard");
	assert_string_equal(gj.guest, "ct1");
	assert_true(gj.has_type && gj.type == GUEST_LXC);
	assert_true(gj.keep_snapshot);
	assert_int_equal(gj.timeout, 30);
	assert_string_equal(gj.snapshot, "");
	assert_int_equal(parse("{\"action\":\"console\",\"guest\":\"vm1\","
	    "\"stream\":\"0123456789abcdef0123456789abcdef\"}", &gj), 0);
	assert_false(gj.has_type);
	assert_int_equal(parse("{\"action\":\"console\",\"guest\":\"vm1\","
	    "\"stream\":\"0123456789abcdef0123456789abcdef\",\"stream_url\":"
	    "\"https://bastion-b.lan:8443\"}", &gj), 0);
	assert_int_equal(parse("{\"action\":\"rollback\",\"guest\":\"vm1\","
	    "\"snapshot\":\"s1\",\"type\":\"vm\"}", &gj), 0);
	assert_string_equal(gj.snapshot, "s1");
	assert_true(gj.type == GUEST_VM);
}

static void
test_report_is_checked_and_rebuilt(void **state)
{
	char why[256];
	json_t *in, *out, *g;

	in = json_loads("{\"drivers\":{\"lxc\":{\"state\":\"ok\",\"version\":"
	    "\"5.0.2\",\"secret\":\"x\"},\"libvirt\":{\"state\":\"absent\","
	    "\"detail\":\"no libvirt.so.0\"}},\"guests\":[{\"id\":\"ct1\","
	    "\"name\":\"ct1\",\"type\":\"lxc\",\"state\":\"running\",\"vcpus\":2,"
	    "\"memory_mib\":512,\"autostart\":true,\"junk\":[1,2],\"disks\":"
	    "[{\"target\":\"rootfs\",\"source\":\"/var/lib/lxc/ct1/rootfs\","
	    "\"format\":\"dir\",\"size_bytes\":null}],\"nics\":[{\"mac\":"
	    "\"00:16:3e:00:00:01\",\"network\":\"lxcbr0\",\"addresses\":"
	    "[\"10.0.3.5\"]}],\"snapshots\":[{\"name\":\"before-x\",\"created\":"
	    "1733300000000,\"current\":false}]}]}", 0, NULL);
	assert_non_null(in);
	out = routes_guest_report_clean(in, why, sizeof why);
	assert_non_null(out);
	assert_null(json_object_get(json_object_get(json_object_get(out,
	    "drivers"), "lxc"), "secret"));
	g = json_array_get(json_object_get(out, "guests"), 0);
	assert_null(json_object_get(g, "junk"));
	assert_int_equal(json_integer_value(json_object_get(g, "memory_mib")),
	    512);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(g, "snapshots"), 0), "name")), "before-x");
	json_decref(out);
	/* A bad snapshot name, state, type or name: refused whole. */
	json_object_set_new(json_array_get(json_object_get(json_array_get(
	    json_object_get(in, "guests"), 0), "snapshots"), 0), "name",
	    json_string("../x"));
	assert_null(routes_guest_report_clean(in, why, sizeof why));
	json_decref(in);
	in = json_loads("{\"drivers\":{},\"guests\":[{\"name\":\"a;b\","
	    "\"type\":\"vm\",\"state\":\"running\"}]}", 0, NULL);
	assert_null(routes_guest_report_clean(in, why, sizeof why));
	json_decref(in);
	in = json_loads("{\"drivers\":{\"xen\":{\"state\":\"ok\"}},\"guests\":"
	    "[]}", 0, NULL);
	assert_null(routes_guest_report_clean(in, why, sizeof why));
	json_decref(in);
	in = json_loads("{\"drivers\":{},\"guests\":[{\"name\":\"vm1\","
	    "\"type\":\"vm\",\"state\":\"exploded\"}]}", 0, NULL);
	assert_null(routes_guest_report_clean(in, why, sizeof why));
	json_decref(in);
}

static void
test_conf_guests_list(void **state)
{
	unsigned g = 99;

	assert_int_equal(agent_guests_parse("libvirt,lxc", &g), 0);
	assert_int_equal(g, GUESTS_LIBVIRT | GUESTS_LXC);
	assert_int_equal(agent_guests_parse("lxc", &g), 0);
	assert_int_equal(g, GUESTS_LXC);
	assert_int_equal(agent_guests_parse("none", &g), 0);
	assert_int_equal(g, 0);
	assert_int_equal(agent_guests_parse("xen", &g), -1);
	assert_int_equal(agent_accept_parse("exec,guests", &g), 0);
	assert_int_equal(g, ACCEPT_EXEC | ACCEPT_GUESTS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bastion_builds_only_valid_jobs),
		cmocka_unit_test(test_agent_checks_every_field_again),
		cmocka_unit_test(test_report_is_checked_and_rebuilt),
		cmocka_unit_test(test_conf_guests_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
