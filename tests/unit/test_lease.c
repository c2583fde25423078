/* test_lease.c — lease_parse() on what dnsmasq hands its --dhcp-script,
 * and the JSON round trip between bastionctl lease-hook and the daemon. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lease.h"

/* A fake environment: NULL-terminated "NAME=value" strings. */
static const char *const *fake_env;

static const char *
env_get(const char *name)
{
	size_t n = strlen(name);
	const char *const *e;

	for (e = fake_env; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* argv as dnsmasq passes it to the hook, minus the script name. */
static int
parse(const char *const *env, struct lease *l, const char **why, int argc,
    ...)
{
	char *argv[8];
	va_list ap;
	int i;

	assert_true(argc < 8);
	va_start(ap, argc);
	for (i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	fake_env = env;
	*why = NULL;
	return lease_parse(argc, argv, env_get, l, why);
}

static void
test_add_with_hostname(void **state)
{
	const char *env[] = { "DNSMASQ_LEASE_EXPIRES=1732230000",
	    "DNSMASQ_INTERFACE=bastion0", NULL };
	struct lease l;
	const char *why;

	(void)state;
	assert_int_equal(parse(env, &l, &why, 4, "add", "52:54:00:AB:CD:EF",
	    "10.77.0.150", "node-1"), 0);
	assert_string_equal(l.action, "add");
	assert_string_equal(l.mac, "52:54:00:ab:cd:ef");
	assert_string_equal(l.ip, "10.77.0.150");
	assert_string_equal(l.hostname, "node-1");
	assert_int_equal(l.expires, 1732230000);
}

static void
test_old_del_without_hostname(void **state)
{
	const char *noenv[] = { NULL };
	struct lease l;
	const char *why;

	(void)state;
	assert_int_equal(parse(noenv, &l, &why, 3, "old", "525400abcdef",
	    "10.77.0.151"), 0);
	assert_string_equal(l.action, "old");
	assert_string_equal(l.mac, "52:54:00:ab:cd:ef");
	assert_string_equal(l.hostname, "");
	assert_int_equal(l.expires, 0);	/* no DNSMASQ_LEASE_EXPIRES */

	assert_int_equal(parse(noenv, &l, &why, 4, "del", "5254.00ab.cdef",
	    "10.77.0.152", ""), 0);
	assert_string_equal(l.action, "del");
	assert_string_equal(l.mac, "52:54:00:ab:cd:ef");
	assert_string_equal(l.hostname, "");

	/* A NULL env lookup is allowed too. */
	{
		char *argv[] = { "add", "52:54:00:00:00:01", "10.0.0.1", NULL };

		assert_int_equal(lease_parse(3, argv, NULL, &l, &why), 0);
		assert_int_equal(l.expires, 0);
	}
}

static void
test_mac_spellings(void **state)
{
	static const char *const spellings[] = {
		"52:54:00:ab:cd:ef", "52-54-00-AB-CD-EF", "525400ABCDEF",
		"5254.00ab.cdef", "01-52-54-00-ab-cd-ef",
	};
	const char *noenv[] = { NULL };
	struct lease l;
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
		assert_int_equal(parse(noenv, &l, &why, 3, "add", spellings[i],
		    "10.77.0.150"), 0);
		assert_string_equal(l.mac, "52:54:00:ab:cd:ef");
	}
	/* One-digit groups are a valid spelling as well. */
	assert_int_equal(parse(noenv, &l, &why, 3, "add", "2:4:0:a:b:c",
	    "10.77.0.150"), 0);
	assert_string_equal(l.mac, "02:04:00:0a:0b:0c");
}

static void
test_ip_normalised(void **state)
{
	const char *noenv[] = { NULL };
	struct lease l;
	const char *why;

	(void)state;
	assert_int_equal(parse(noenv, &l, &why, 3, "add", "52:54:00:ab:cd:ef",
	    "fd77:0:0::0:1"), 0);
	assert_string_equal(l.ip, "fd77::1");
}

static void
test_expires(void **state)
{
	const char *ok[] = { "DNSMASQ_LEASE_EXPIRES=0", NULL };
	const char *bad1[] = { "DNSMASQ_LEASE_EXPIRES=12h", NULL };
	const char *bad2[] = { "DNSMASQ_LEASE_EXPIRES=-5", NULL };
	const char *bad3[] = { "DNSMASQ_LEASE_EXPIRES=99999999999999999999",
	    NULL };
	const char *bad4[] = { "DNSMASQ_LEASE_EXPIRES= 17", NULL };
	struct lease l;
	const char *why;

	(void)state;
	assert_int_equal(parse(ok, &l, &why, 3, "add", "52:54:00:ab:cd:ef",
	    "10.77.0.150"), 0);
	assert_int_equal(l.expires, 0);
	assert_int_equal(parse(bad1, &l, &why, 3, "add", "52:54:00:ab:cd:ef",
	    "10.77.0.150"), -1);
	assert_non_null(strstr(why, "DNSMASQ_LEASE_EXPIRES"));
	assert_int_equal(parse(bad2, &l, &why, 3, "add", "52:54:00:ab:cd:ef",
	    "10.77.0.150"), -1);
	assert_int_equal(parse(bad3, &l, &why, 3, "add", "52:54:00:ab:cd:ef",
	    "10.77.0.150"), -1);
	assert_int_equal(parse(bad4, &l, &why, 3, "add", "52:54:00:ab:cd:ef",
	    "10.77.0.150"), -1);
}

/* A failed parse leaves out exactly as it was. */
static void
test_out_untouched_on_error(void **state)
{
	const char *noenv[] = { NULL };
	struct lease l, before;
	const char *why;

	(void)state;
	memset(&l, 0x5a, sizeof l);
	before = l;
	assert_int_equal(parse(noenv, &l, &why, 4, "add", "52:54:00:ab:cd:ef",
	    "10.77.0.150", "bad_name"), -1);
	assert_memory_equal(&l, &before, sizeof l);
}

static void
test_garbage_rejected(void **state)
{
	const char *noenv[] = { NULL };
	char long_name[80];
	struct lease l;
	const char *why;

	(void)state;
	/* Actions. */
	assert_int_equal(parse(noenv, &l, &why, 3, "bogus",
	    "52:54:00:ab:cd:ef", "10.77.0.150"), -1);
	assert_non_null(strstr(why, "unknown action"));
	assert_int_equal(parse(noenv, &l, &why, 3, "ADD",
	    "52:54:00:ab:cd:ef", "10.77.0.150"), -1);
	assert_int_equal(parse(noenv, &l, &why, 4, "tftp", "74213",
	    "10.77.0.150", "/var/lib/bastion/tftp/undionly.kpxe"), -1);
	assert_non_null(strstr(why, "tftp"));
	assert_non_null(strstr(why, "not a lease"));
	assert_int_equal(parse(noenv, &l, &why, 1, "init"), -1);
	assert_non_null(strstr(why, "not a lease"));
	assert_int_equal(parse(noenv, &l, &why, 3, "arp-add",
	    "52:54:00:ab:cd:ef", "10.77.0.150"), -1);
	assert_non_null(strstr(why, "not a lease"));
	assert_int_equal(lease_parse(0, NULL, env_get, &l, &why), -1);

	/* Argument counts. */
	assert_int_equal(parse(noenv, &l, &why, 2, "add",
	    "52:54:00:ab:cd:ef"), -1);
	assert_non_null(strstr(why, "too few"));
	assert_int_equal(parse(noenv, &l, &why, 5, "add",
	    "52:54:00:ab:cd:ef", "10.77.0.150", "node1", "extra"), -1);
	assert_non_null(strstr(why, "too many"));

	/* MACs: garbage, DUIDs, other hardware types, group, zero. */
	assert_int_equal(parse(noenv, &l, &why, 3, "add", "52:54:00:ab:cd",
	    "10.77.0.150"), -1);
	assert_non_null(strstr(why, "MAC"));
	assert_int_equal(parse(noenv, &l, &why, 3, "add",
	    "00:01:00:01:2c:3d:4e:5f:52:54:00:ab:cd:ef", "fd77::10"), -1);
	assert_int_equal(parse(noenv, &l, &why, 3, "add",
	    "06-01:23:45:67:89:ab", "10.77.0.150"), -1);
	assert_int_equal(parse(noenv, &l, &why, 3, "add",
	    "01:00:5e:00:00:01", "10.77.0.150"), -1);
	assert_int_equal(parse(noenv, &l, &why, 3, "add",
	    "00:00:00:00:00:00", "10.77.0.150"), -1);
	assert_int_equal(parse(noenv, &l, &why, 3, "add",
	    "52:54:00:ab:cd:ef;reboot", "10.77.0.150"), -1);

	/* IPs. */
	assert_int_equal(parse(noenv, &l, &why, 3, "add",
	    "52:54:00:ab:cd:ef", "10.77.0.256"), -1);
	assert_non_null(strstr(why, "IP"));
	assert_int_equal(parse(noenv, &l, &why, 3, "add",
	    "52:54:00:ab:cd:ef", "10.77.0.1/24"), -1);
	assert_int_equal(parse(noenv, &l, &why, 3, "add",
	    "52:54:00:ab:cd:ef", ""), -1);
	assert_int_equal(parse(noenv, &l, &why, 3, "add",
	    "52:54:00:ab:cd:ef", "010.77.0.1"), -1);

	/* Hostnames: RFC 1123 labels only, 63 characters at most. */
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	assert_int_equal(parse(noenv, &l, &why, 4, "add",
	    "52:54:00:ab:cd:ef", "10.77.0.150", long_name), -1);
	assert_non_null(strstr(why, "hostname"));
	long_name[63] = '\0';
	assert_int_equal(parse(noenv, &l, &why, 4, "add",
	    "52:54:00:ab:cd:ef", "10.77.0.150", long_name), 0);
	assert_int_equal(strlen(l.hostname), 63);
	assert_int_equal(parse(noenv, &l, &why, 4, "add",
	    "52:54:00:ab:cd:ef", "10.77.0.150", "-node"), -1);
	assert_int_equal(parse(noenv, &l, &why, 4, "add",
	    "52:54:00:ab:cd:ef", "10.77.0.150", "node-"), -1);
	assert_int_equal(parse(noenv, &l, &why, 4, "add",
	    "52:54:00:ab:cd:ef", "10.77.0.150", "node_1"), -1);
	assert_int_equal(parse(noenv, &l, &why, 4, "add",
	    "52:54:00:ab:cd:ef", "10.77.0.150", "node.lan"), -1);
	assert_int_equal(parse(noenv, &l, &why, 4, "add",
	    "52:54:00:ab:cd:ef", "10.77.0.150", "no de"), -1);
	assert_int_equal(parse(noenv, &l, &why, 4, "add",
	    "52:54:00:ab:cd:ef", "10.77.0.150", "n\xc3\xa9"), -1);
}

static void
test_json_round_trip(void **state)
{
	const char *env[] = { "DNSMASQ_LEASE_EXPIRES=1732230000", NULL };
	const char *noenv[] = { NULL };
	struct lease a, b;
	const char *why;
	json_t *j;
	char *text;

	(void)state;
	assert_int_equal(parse(env, &a, &why, 4, "add", "52-54-00-AB-CD-EF",
	    "10.77.0.150", "node1"), 0);
	j = lease_to_json(&a);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "mac")),
	    "52:54:00:ab:cd:ef");
	assert_int_equal(json_integer_value(json_object_get(j, "expires")),
	    1732230000);
	/* Through text, as it travels over the admin socket. */
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	j = json_loads(text, 0, NULL);
	free(text);
	memset(&b, 0, sizeof b);
	assert_int_equal(lease_from_json(j, &b, &why), 0);
	json_decref(j);
	assert_memory_equal(&a, &b, sizeof a);

	/* No hostname: null in JSON, "" back. */
	assert_int_equal(parse(noenv, &a, &why, 3, "del", "52:54:00:ab:cd:ef",
	    "10.77.0.150"), 0);
	j = lease_to_json(&a);
	assert_true(json_is_null(json_object_get(j, "hostname")));
	memset(&b, 0x11, sizeof b);
	assert_int_equal(lease_from_json(j, &b, &why), 0);
	json_decref(j);
	assert_string_equal(b.hostname, "");
	assert_string_equal(b.action, "del");
	assert_int_equal(b.expires, 0);
}

/* lease_from_json on text; returns its result and leaves why. */
static int
from_text(const char *text, struct lease *l, const char **why)
{
	json_error_t err;
	json_t *j;
	int rc;

	j = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
	if (j == NULL)
		fail_msg("bad test JSON %s: %s", text, err.text);
	*why = NULL;
	rc = lease_from_json(j, l, why);
	json_decref(j);
	return rc;
}

static void
test_json_rejects(void **state)
{
	static const char *const bad[] = {
		"[]",
		"\"add\"",
		"{}",
		"{\"mac\":\"52:54:00:ab:cd:ef\",\"ip\":\"10.0.0.1\"}",
		"{\"action\":\"tftp\",\"mac\":\"52:54:00:ab:cd:ef\","
		    "\"ip\":\"10.0.0.1\"}",
		"{\"action\":1,\"mac\":\"52:54:00:ab:cd:ef\","
		    "\"ip\":\"10.0.0.1\"}",
		"{\"action\":\"add\",\"mac\":\"nope\",\"ip\":\"10.0.0.1\"}",
		"{\"action\":\"add\",\"mac\":\"52:54:00:ab:cd:ef\\u0000x\","
		    "\"ip\":\"10.0.0.1\"}",
		"{\"action\":\"add\",\"ip\":\"10.0.0.1\"}",
		"{\"action\":\"add\",\"mac\":\"52:54:00:ab:cd:ef\","
		    "\"ip\":\"10.0.0.300\"}",
		"{\"action\":\"add\",\"mac\":\"52:54:00:ab:cd:ef\",\"ip\":17}",
		"{\"action\":\"add\",\"mac\":\"52:54:00:ab:cd:ef\","
		    "\"ip\":\"10.0.0.1\",\"hostname\":\"a_b\"}",
		"{\"action\":\"add\",\"mac\":\"52:54:00:ab:cd:ef\","
		    "\"ip\":\"10.0.0.1\",\"hostname\":5}",
		"{\"action\":\"add\",\"mac\":\"52:54:00:ab:cd:ef\","
		    "\"ip\":\"10.0.0.1\",\"hostname\":\"ok\\u0000;rm\"}",
		"{\"action\":\"add\",\"mac\":\"52:54:00:ab:cd:ef\","
		    "\"ip\":\"10.0.0.1\",\"hostname\":"
		    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",	/* 64 */
		"{\"action\":\"add\",\"mac\":\"52:54:00:ab:cd:ef\","
		    "\"ip\":\"10.0.0.1\",\"expires\":\"1732230000\"}",
		"{\"action\":\"add\",\"mac\":\"52:54:00:ab:cd:ef\","
		    "\"ip\":\"10.0.0.1\",\"expires\":-1}",
		"{\"action\":\"add\",\"mac\":\"52:54:00:ab:cd:ef\","
		    "\"ip\":\"10.0.0.1\",\"expires\":1.5}",
		"{\"action\":\"add\",\"mac\":\"52:54:00:ab:cd:ef\","
		    "\"ip\":\"10.0.0.1\",\"expires\":999999999999999}",
	};
	struct lease l, before;
	const char *why;
	size_t i;

	(void)state;
	memset(&l, 0x5a, sizeof l);
	before = l;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (from_text(bad[i], &l, &why) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(why);
		assert_memory_equal(&l, &before, sizeof l);
	}
	assert_int_equal(lease_from_json(NULL, &l, &why), -1);

	/* Accepted: any MAC spelling (normalised), no hostname or expires. */
	assert_int_equal(from_text("{\"action\":\"old\","
	    "\"mac\":\"525400ABCDEF\",\"ip\":\"10.0.0.1\"}", &l, &why), 0);
	assert_string_equal(l.mac, "52:54:00:ab:cd:ef");
	assert_string_equal(l.hostname, "");
	assert_int_equal(l.expires, 0);
	assert_int_equal(from_text("{\"action\":\"add\",\"mac\":"
	    "\"52:54:00:ab:cd:ef\",\"ip\":\"10.0.0.1\",\"hostname\":\"\","
	    "\"expires\":0}", &l, &why), 0);
	assert_string_equal(l.hostname, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_with_hostname),
		cmocka_unit_test(test_old_del_without_hostname),
		cmocka_unit_test(test_mac_spellings),
		cmocka_unit_test(test_ip_normalised),
		cmocka_unit_test(test_expires),
		cmocka_unit_test(test_out_untouched_on_error),
		cmocka_unit_test(test_garbage_rejected),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_json_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
