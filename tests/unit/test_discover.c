/* test_discover.c — bastion/discover.c: the discovery report schema
 * (the fields the API documents) and the change summary between two reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "discover.h"

/* A QEMU VM as agentd reports it: 2 vCPUs, 2 GiB, two disks, two NICs. */
static const char *const REPORT =
	"{"
	"  \"mac\": \"52-54-00-AB-CD-EF\","
	"  \"boot_mac\": \"5254.00ab.cdef\","
	"  \"firmware\": \"uefi\","
	"  \"cpu\": {\"model\": \"QEMU Virtual CPU version 2.5+\","
	"           \"sockets\": 1, \"cores\": 2, \"threads\": 2},"
	"  \"memory\": {\"total_bytes\": 2147483648},"
	"  \"disks\": ["
	"    {\"name\": \"vda\", \"size_bytes\": 21474836480, \"model\": \"\","
	"     \"serial\": \"disk0\", \"rotational\": true, \"removable\": false},"
	"    {\"name\": \"sda\", \"size_bytes\": 1073741824, \"model\": \"QEMU HARDDISK\","
	"     \"serial\": \"QM00001\", \"wwn\": \"0x5000c500a0b1c2d3\", \"rotational\": false}"
	"  ],"
	"  \"nics\": ["
	"    {\"name\": \"eth0\", \"mac\": \"52:54:00:AB:CD:EF\", \"driver\": \"virtio_net\","
	"     \"speed_mbps\": -1, \"carrier\": true, \"boot\": true},"
	"    {\"name\": \"eth1\", \"mac\": \"525400abcdf0\", \"driver\": \"e1000\","
	"     \"speed_mbps\": 1000, \"carrier\": false}"
	"  ],"
	"  \"dmi\": {\"vendor\": \"QEMU\", \"product\": \"Standard PC (Q35 + ICH9, 2009)\","
	"          \"serial\": \"\", \"uuid\": \"9b2f3c1e-6f0d-4a6c-9e1a-2b3c4d5e6f70\"}"
	"}";

static json_t *
report(void)
{
	json_error_t err;
	json_t *r = json_loads(REPORT, 0, &err);

	if (r == NULL)
		fail_msg("REPORT is not JSON: %s (line %d)", err.text, err.line);
	return r;
}

/* Follow "a.b[2].c" into r; NULL if absent. Returns the parent in *parent
 * and the last key in key (for arrays, key is empty and *index set). */
static json_t *
walk(json_t *r, const char *path, json_t **parent, char *key, size_t klen,
    size_t *index)
{
	char buf[128], *tok, *save = NULL;
	json_t *cur = r, *par = NULL;

	snprintf(buf, sizeof buf, "%s", path);
	key[0] = '\0';
	for (tok = strtok_r(buf, ".", &save); tok;
	    tok = strtok_r(NULL, ".", &save)) {
		char *br = strchr(tok, '[');

		if (br) {
			*br = '\0';
			cur = json_object_get(cur, tok);
			par = cur;
			*index = (size_t)atoi(br + 1);
			key[0] = '\0';
			cur = json_array_get(cur, *index);
		} else {
			par = cur;
			snprintf(key, klen, "%s", tok);
			cur = json_object_get(cur, tok);
		}
	}
	if (parent)
		*parent = par;
	return cur;
}

/* Set (or with v == NULL, delete) the field at path in a fresh report. */
static json_t *
report_with(const char *path, json_t *v)
{
	json_t *r = report(), *parent;
	char key[64];
	size_t idx = 0;

	walk(r, path, &parent, key, sizeof key, &idx);
	assert_non_null(parent);
	if (key[0] == '\0') {
		if (v)
			json_array_set_new(parent, idx, v);
		else
			json_array_remove(parent, idx);
	} else if (v) {
		json_object_set_new(parent, key, v);
	} else {
		json_object_del(parent, key);
	}
	return r;
}

/* The report must be rejected with a message starting with prefix. */
static void
expect_error(json_t *r, const char *prefix, const char *what)
{
	json_t *out = (json_t *)0x1;	/* must not be touched */
	char why[256] = "";

	if (discover_validate(r, &out, why, sizeof why) != -1)
		fail_msg("accepted a report with %s", what);
	assert_ptr_equal(out, (json_t *)0x1);
	if (strncmp(why, prefix, strlen(prefix)) != 0)
		fail_msg("%s: expected an error starting with \"%s\", got \"%s\"",
		    what, prefix, why);
	json_decref(r);
}

static json_t *
expect_ok(json_t *r, const char *what)
{
	json_t *out = NULL;
	char why[256] = "";

	if (discover_validate(r, &out, why, sizeof why) != 0)
		fail_msg("rejected %s: %s", what, why);
	assert_non_null(out);
	json_decref(r);
	return out;
}

/* ---- validation --------------------------------------------------------- */

static void
test_valid_normalised(void **state)
{
	json_t *r = report(), *out = NULL;
	char why[256] = "";

	assert_int_equal(discover_validate(r, &out, why, sizeof why), 0);
	assert_non_null(out);
	assert_ptr_not_equal(out, r);
	assert_string_equal(json_string_value(json_object_get(out, "mac")),
	    "52:54:00:ab:cd:ef");
	assert_string_equal(json_string_value(json_object_get(out, "boot_mac")),
	    "52:54:00:ab:cd:ef");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(out, "nics"), 0), "mac")), "52:54:00:ab:cd:ef");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(out, "nics"), 1), "mac")), "52:54:00:ab:cd:f0");
	/* Everything else is as it came. */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(out,
	    "memory"), "total_bytes")), 2147483648LL);
	assert_int_equal(json_array_size(json_object_get(out, "disks")), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    out, "dmi"), "product")), "Standard PC (Q35 + ICH9, 2009)");
	/* The input is not modified. */
	assert_string_equal(json_string_value(json_object_get(r, "mac")),
	    "52-54-00-AB-CD-EF");
	/* Validating the output again gives the same output. */
	{
		json_t *again = NULL;

		assert_int_equal(discover_validate(out, &again, why, sizeof why), 0);
		assert_true(json_equal(out, again));
		json_decref(again);
	}
	json_decref(out);
	json_decref(r);
}

static void
test_minimal_valid(void **state)
{
	json_t *out = expect_ok(json_pack("{s:s, s:s, s:{s:i, s:i, s:i},"
	    " s:{s:I}}", "mac", "02:00:00:00:00:01", "firmware", "bios",
	    "cpu", "sockets", 1, "cores", 1, "threads", 1,
	    "memory", "total_bytes", (json_int_t)1), "the minimal report");

	json_decref(out);
	/* Optional fields may be null. */
	out = expect_ok(report_with("dmi", json_null()), "dmi: null");
	json_decref(out);
	out = expect_ok(report_with("disks", json_array()), "no disks");
	json_decref(out);
	out = expect_ok(report_with("boot_mac", NULL), "no boot_mac");
	json_decref(out);
	out = expect_ok(report_with("cpu.model", NULL), "no cpu.model");
	json_decref(out);
	out = expect_ok(report_with("nics[0].speed_mbps", NULL), "no speed");
	json_decref(out);
}

static void
test_required_fields(void **state)
{
	static const char *const required[][2] = {
		{ "mac", "mac: " },
		{ "firmware", "firmware: " },
		{ "cpu", "cpu: " },
		{ "cpu.sockets", "cpu.sockets: " },
		{ "cpu.cores", "cpu.cores: " },
		{ "cpu.threads", "cpu.threads: " },
		{ "memory", "memory: " },
		{ "memory.total_bytes", "memory.total_bytes: " },
		{ "disks[0].name", "disks[0].name: " },
		{ "disks[1].size_bytes", "disks[1].size_bytes: " },
		{ "nics[0].name", "nics[0].name: " },
		{ "nics[1].mac", "nics[1].mac: " },
	};
	size_t i;
	char what[128];

	for (i = 0; i < sizeof required / sizeof required[0]; i++) {
		snprintf(what, sizeof what, "%s missing", required[i][0]);
		expect_error(report_with(required[i][0], NULL), required[i][1],
		    what);
		snprintf(what, sizeof what, "%s null", required[i][0]);
		expect_error(report_with(required[i][0], json_null()),
		    required[i][1], what);
	}
}

static void
test_wrong_types(void **state)
{
	static const struct { const char *path, *json, *prefix; } cases[] = {
		{ "mac", "52", "mac: " },
		{ "mac", "[\"52:54:00:ab:cd:ef\"]", "mac: " },
		{ "boot_mac", "true", "boot_mac: " },
		{ "firmware", "1", "firmware: " },
		{ "firmware", "\"efi\"", "firmware: " },
		{ "firmware", "\"UEFI\"", "firmware: " },
		{ "cpu", "\"8 cores\"", "cpu: " },
		{ "cpu", "[1, 2]", "cpu: " },
		{ "cpu.model", "42", "cpu.model: " },
		{ "cpu.sockets", "\"1\"", "cpu.sockets: " },
		{ "cpu.cores", "2.0", "cpu.cores: " },
		{ "cpu.threads", "true", "cpu.threads: " },
		{ "memory", "2147483648", "memory: " },
		{ "memory.total_bytes", "\"2G\"", "memory.total_bytes: " },
		{ "memory.total_bytes", "2147483648.5", "memory.total_bytes: " },
		{ "disks", "{}", "disks: " },
		{ "disks", "\"vda\"", "disks: " },
		{ "disks[0]", "\"vda\"", "disks[0]: " },
		{ "disks[1]", "null", "disks[1]: " },
		{ "disks[0].name", "7", "disks[0].name: " },
		{ "disks[0].size_bytes", "\"20G\"", "disks[0].size_bytes: " },
		{ "disks[1].model", "{}", "disks[1].model: " },
		{ "disks[0].serial", "123", "disks[0].serial: " },
		{ "disks[0].wwn", "[]", "disks[0].wwn: " },
		{ "disks[0].rotational", "\"yes\"", "disks[0].rotational: " },
		{ "disks[0].removable", "0", "disks[0].removable: " },
		{ "nics", "{\"eth0\": {}}", "nics: " },
		{ "nics[1]", "[]", "nics[1]: " },
		{ "nics[0].mac", "525400", "nics[0].mac: " },
		{ "nics[0].driver", "false", "nics[0].driver: " },
		{ "nics[0].speed_mbps", "\"1000\"", "nics[0].speed_mbps: " },
		{ "nics[0].carrier", "\"up\"", "nics[0].carrier: " },
		{ "nics[0].boot", "1", "nics[0].boot: " },
		{ "dmi", "[]", "dmi: " },
		{ "dmi", "\"QEMU\"", "dmi: " },
		{ "dmi.vendor", "5", "dmi.vendor: " },
		{ "dmi.uuid", "{}", "dmi.uuid: " },
	};
	size_t i;
	char what[128];

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);

		assert_non_null(v);
		snprintf(what, sizeof what, "%s = %s", cases[i].path,
		    cases[i].json);
		expect_error(report_with(cases[i].path, v), cases[i].prefix,
		    what);
	}
	/* Not an object at all. */
	expect_error(json_array(), "the report", "an array");
	expect_error(json_string("hello"), "the report", "a string");
	{
		json_t *out = (json_t *)0x1;
		char why[64];

		assert_int_equal(discover_validate(NULL, &out, why, sizeof why),
		    -1);
		assert_ptr_equal(out, (json_t *)0x1);
	}
}

static void
test_bad_macs(void **state)
{
	static const char *const bad[] = {
		"", "52:54:00:ab:cd", "01:00:5e:00:00:01", "00:00:00:00:00:00",
		"ff:ff:ff:ff:ff:ff", "52:54:00:ab:cd:eg", "52:54-00:ab:cd:ef",
	};
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		expect_error(report_with("mac", json_string(bad[i])), "mac: ",
		    bad[i]);
		expect_error(report_with("boot_mac", json_string(bad[i])),
		    "boot_mac: ", bad[i]);
		expect_error(report_with("nics[1].mac", json_string(bad[i])),
		    "nics[1].mac: ", bad[i]);
	}
}

static void
test_ranges(void **state)
{
	static const struct { const char *path; json_int_t v; const char *prefix; }
	    bad[] = {
		{ "cpu.sockets", 0, "cpu.sockets: " },
		{ "cpu.sockets", -1, "cpu.sockets: " },
		{ "cpu.sockets", 1025, "cpu.sockets: " },
		{ "cpu.cores", 0, "cpu.cores: " },
		{ "cpu.cores", (1 << 20) + 1, "cpu.cores: " },
		{ "cpu.threads", 0, "cpu.threads: " },
		{ "cpu.threads", 1, "cpu.threads: " },	/* < cores (2) */
		{ "cpu.threads", (1 << 20) + 1, "cpu.threads: " },
		{ "memory.total_bytes", 0, "memory.total_bytes: " },
		{ "memory.total_bytes", -2147483648LL, "memory.total_bytes: " },
		{ "memory.total_bytes", (1LL << 50) + 1, "memory.total_bytes: " },
		{ "memory.total_bytes", INT64_MAX, "memory.total_bytes: " },
		{ "disks[0].size_bytes", -1, "disks[0].size_bytes: " },
		{ "disks[1].size_bytes", (1LL << 50) + 1, "disks[1].size_bytes: " },
		{ "disks[1].size_bytes", INT64_MIN, "disks[1].size_bytes: " },
		{ "nics[0].speed_mbps", -2, "nics[0].speed_mbps: " },
		{ "nics[1].speed_mbps", 10000001, "nics[1].speed_mbps: " },
	};
	size_t i;
	char what[128];
	json_t *out, *r;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(what, sizeof what, "%s = %lld", bad[i].path,
		    (long long)bad[i].v);
		expect_error(report_with(bad[i].path, json_integer(bad[i].v)),
		    bad[i].prefix, what);
	}
	/* cores >= sockets, threads >= cores */
	r = report_with("cpu.sockets", json_integer(4));
	expect_error(r, "cpu.cores: ", "4 sockets, 2 cores");

	/* The edges that are fine. */
	out = expect_ok(report_with("disks[0].size_bytes", json_integer(0)),
	    "an empty disk (card reader)");
	json_decref(out);
	out = expect_ok(report_with("disks[0].size_bytes",
	    json_integer(1LL << 50)), "a 1 PiB disk");
	json_decref(out);
	out = expect_ok(report_with("nics[0].speed_mbps", json_integer(400000)),
	    "400 GbE");
	json_decref(out);
	out = expect_ok(report_with("cpu.threads", json_integer(2)),
	    "threads == cores");
	json_decref(out);
	r = report();
	json_object_set_new(json_object_get(r, "cpu"), "sockets",
	    json_integer(2));
	json_object_set_new(json_object_get(r, "cpu"), "cores", json_integer(64));
	json_object_set_new(json_object_get(r, "cpu"), "threads",
	    json_integer(128));
	out = expect_ok(r, "2 sockets, 64 cores, 128 threads");
	json_decref(out);
}

static void
test_too_many(void **state)
{
	json_t *r, *arr, *out;
	int i;

	/* 256 disks are fine, 257 are not. */
	r = report();
	arr = json_array();
	for (i = 0; i < DISCOVER_MAX_DISKS; i++)
		json_array_append_new(arr, json_pack("{s:s, s:I}", "name", "sdx",
		    "size_bytes", (json_int_t)i));
	json_object_set_new(r, "disks", arr);
	out = expect_ok(json_deep_copy(r), "256 disks");
	json_decref(out);
	json_array_append_new(arr, json_pack("{s:s, s:I}", "name", "sdy",
	    "size_bytes", (json_int_t)1));
	expect_error(r, "disks: ", "257 disks");

	/* 128 NICs are fine, 129 are not. */
	r = report();
	arr = json_array();
	for (i = 0; i < DISCOVER_MAX_NICS; i++) {
		char mac[18];

		snprintf(mac, sizeof mac, "52:54:00:00:00:%02x", i + 1);
		json_array_append_new(arr, json_pack("{s:s, s:s}", "name", "eth",
		    "mac", mac));
	}
	json_object_set_new(r, "nics", arr);
	out = expect_ok(json_deep_copy(r), "128 nics");
	json_decref(out);
	json_array_append_new(arr, json_pack("{s:s, s:s}", "name", "ethx",
	    "mac", "52:54:00:00:01:01"));
	expect_error(r, "nics: ", "129 nics");

	/* Objects with too many fields. */
	r = report();
	for (i = 0; i < 300; i++) {
		char k[16];

		snprintf(k, sizeof k, "x%d", i);
		json_object_set_new(r, k, json_true());
	}
	expect_error(r, "", "300 top-level fields");
	r = report();
	arr = json_object_get(r, "dmi");
	for (i = 0; i < 300; i++) {
		char k[16];

		snprintf(k, sizeof k, "x%d", i);
		json_object_set_new(arr, k, json_true());
	}
	expect_error(r, "dmi: ", "300 dmi fields");
}

static void
test_strings(void **state)
{
	char s[300];
	json_t *out;

	memset(s, 'a', sizeof s);
	s[256] = '\0';
	out = expect_ok(report_with("cpu.model", json_string(s)),
	    "a 256-byte model");
	json_decref(out);
	s[256] = 'a';
	s[257] = '\0';
	expect_error(report_with("cpu.model", json_string(s)), "cpu.model: ",
	    "a 257-byte model");
	expect_error(report_with("disks[0].serial", json_string(s)),
	    "disks[0].serial: ", "a 257-byte serial");
	expect_error(report_with("nics[0].name", json_string(s)),
	    "nics[0].name: ", "a 257-byte nic name");
	expect_error(report_with("dmi.product", json_string(s)),
	    "dmi.product: ", "a 257-byte product");

	expect_error(report_with("disks[0].name", json_string("vda\n")),
	    "disks[0].name: ", "a newline");
	expect_error(report_with("disks[0].model", json_string("\x1b[31mred")),
	    "disks[0].model: ", "an escape sequence");
	expect_error(report_with("dmi.vendor", json_string("a\x7f")),
	    "dmi.vendor: ", "DEL");
	expect_error(report_with("nics[0].driver", json_string("\t")),
	    "nics[0].driver: ", "a tab");
	expect_error(report_with("dmi.serial", json_stringn("ab\0cd", 5)),
	    "dmi.serial: ", "an embedded NUL");
	/* UTF-8 is text, not control characters. */
	out = expect_ok(report_with("dmi.vendor",
	    json_string("Gigabyte Technology Co., Ltd. \xc2\xae")), "UTF-8");
	json_decref(out);
}

static void
test_unknown_top_level_fields_dropped(void **state)
{
	json_t *r = report(), *out;

	/* Unknown top-level fields are not stored (a machine on the hostile
	 * network does not get to park data of its choosing)... */
	json_object_set_new(r, "kernel", json_string("6.1.0-13-amd64"));
	json_object_set_new(r, "gpus", json_pack("[{s:s}]", "model", "virtio"));
	/* ...agentd's own additions are kept... */
	json_object_set_new(r, "volume_groups", json_pack("[{s:s, s:[s]}]",
	    "name", "vg0", "pvs", "vda2"));
	json_object_set_new(r, "agent", json_pack("{s:s, s:i}", "version",
	    "0.1.0", "collect_ms", 12));
	/* ...and so is what is inside the known objects. */
	json_object_set_new(json_array_get(json_object_get(r, "disks"), 0),
	    "partitions", json_pack("[s, s]", "vda1", "vda2"));
	json_object_set_new(json_object_get(r, "cpu"), "flags",
	    json_pack("[s, s]", "sse4_2", "avx2"));
	json_object_set_new(json_array_get(json_object_get(r, "nics"), 1),
	    "addresses", json_pack("[s]", "10.77.0.123/24"));
	out = expect_ok(json_incref(r), "extra fields");
	assert_null(json_object_get(out, "kernel"));
	assert_null(json_object_get(out, "gpus"));
	assert_true(json_equal(json_object_get(out, "volume_groups"),
	    json_object_get(r, "volume_groups")));
	assert_true(json_equal(json_object_get(out, "agent"),
	    json_object_get(r, "agent")));
	assert_int_equal(json_array_size(json_object_get(json_array_get(
	    json_object_get(out, "disks"), 0), "partitions")), 2);
	assert_non_null(json_object_get(json_object_get(out, "cpu"), "flags"));
	assert_non_null(json_object_get(json_array_get(json_object_get(out,
	    "nics"), 1), "addresses"));
	json_decref(out);
	json_decref(r);
}

static void
test_why_truncated(void **state)
{
	json_t *r = report_with("disks[1].size_bytes", json_string("x")), *out;
	char why[8];

	memset(why, 'x', sizeof why);
	assert_int_equal(discover_validate(r, &out, why, sizeof why), -1);
	assert_int_equal(why[sizeof why - 1], '\0');
	assert_string_equal(why, "disks[1");
	json_decref(r);
}

/* ---- discover_diff ------------------------------------------------------ */

static char *
diff(json_t *a, json_t *b)
{
	struct buf out;

	buf_init(&out, 4096);
	assert_int_equal(discover_diff(a, b, &out), 0);
	return buf_take(&out);
}

static void
test_diff_equal(void **state)
{
	json_t *a = report(), *b = report(), *na, *nb;
	char why[128], *d;

	d = diff(a, b);
	assert_string_equal(d, "");
	free(d);
	/* Spelling of MACs does not count once normalised. */
	json_object_set_new(json_array_get(json_object_get(b, "nics"), 0), "mac",
	    json_string("52:54:00:ab:cd:ef"));
	assert_int_equal(discover_validate(a, &na, why, sizeof why), 0);
	assert_int_equal(discover_validate(b, &nb, why, sizeof why), 0);
	d = diff(na, nb);
	assert_string_equal(d, "");
	free(d);
	json_decref(na);
	json_decref(nb);
	json_decref(a);
	json_decref(b);

	/* dmi, disks and nics are optional: two reports that both lack
	 * them have not changed. */
	a = report();
	json_object_del(a, "dmi");
	json_object_del(a, "disks");
	json_object_del(a, "nics");
	b = json_deep_copy(a);
	d = diff(a, b);
	if (strcmp(d, "") != 0)
		fail_msg("two identical reports without dmi/disks/nics differ: "
		    "\"%s\"", d);
	free(d);
	json_decref(a);
	json_decref(b);
}

static void
test_diff_changes(void **state)
{
	json_t *a = report(), *b;
	char *d;

	b = report_with("memory.total_bytes", json_integer(4294967296LL));
	d = diff(a, b);
	assert_string_equal(d, "memory 2.0 GiB -> 4.0 GiB");
	free(d);
	json_decref(b);

	b = report_with("cpu.threads", json_integer(4));
	d = diff(a, b);
	assert_string_equal(d, "cpu threads 2 -> 4");
	free(d);
	json_decref(b);

	b = report_with("disks[1]", NULL);
	d = diff(a, b);
	assert_string_equal(d, "disks 2 -> 1");
	free(d);
	json_decref(b);

	b = report_with("disks[0].size_bytes", json_integer(42949672960LL));
	d = diff(a, b);
	assert_string_equal(d, "disk details changed");
	free(d);
	json_decref(b);

	b = report_with("nics[0]", NULL);
	d = diff(a, b);
	assert_string_equal(d, "nics 2 -> 1");
	free(d);
	json_decref(b);

	b = report_with("nics[1].mac", json_string("52:54:00:00:00:99"));
	d = diff(a, b);
	assert_string_equal(d, "nic details changed");
	free(d);
	json_decref(b);

	/* The firmware decides the install's partitions: it is a change. */
	b = report_with("firmware", json_string("bios"));
	d = diff(a, b);
	assert_string_equal(d, "firmware uefi -> bios");
	free(d);
	json_decref(b);

	b = report_with("dmi.serial", json_string("NEW"));
	d = diff(a, b);
	assert_string_equal(d, "dmi changed");
	free(d);
	json_decref(b);

	/* Several at once, separated by "; ". */
	b = report_with("memory.total_bytes", json_integer(1073741824LL));
	json_object_set_new(json_object_get(b, "cpu"), "threads",
	    json_integer(8));
	json_object_set_new(json_object_get(b, "cpu"), "cores", json_integer(8));
	json_array_append_new(json_object_get(b, "disks"),
	    json_pack("{s:s, s:I}", "name", "vdb", "size_bytes", (json_int_t)1));
	json_array_clear(json_object_get(b, "nics"));
	d = diff(a, b);
	assert_string_equal(d, "cpu threads 2 -> 8; memory 2.0 GiB -> 1.0 GiB; "
	    "disks 2 -> 3; nics 2 -> 0");
	free(d);
	json_decref(b);

	/* Fields the summary does not know are not reported. */
	b = report_with("kernel", json_string("6.1"));
	d = diff(a, b);
	assert_string_equal(d, "");
	free(d);
	json_decref(b);
	json_decref(a);
}

static void
test_diff_missing_parts(void **state)
{
	json_t *a = report(), *empty = json_object();
	char *d;

	/* Never crashes on partial reports (old rows, odd agents). */
	d = diff(empty, a);
	assert_non_null(strstr(d, "memory 0.0 GiB -> 2.0 GiB"));
	assert_non_null(strstr(d, "disks 0 -> 2"));
	free(d);
	d = diff(a, empty);
	assert_non_null(strstr(d, "nics 2 -> 0"));
	free(d);
	d = diff(empty, empty);
	assert_string_equal(d, "");
	free(d);
	json_decref(empty);
	json_decref(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_normalised),
		cmocka_unit_test(test_minimal_valid),
		cmocka_unit_test(test_required_fields),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_bad_macs),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_unknown_top_level_fields_dropped),
		cmocka_unit_test(test_why_truncated),
		cmocka_unit_test(test_diff_equal),
		cmocka_unit_test(test_diff_changes),
		cmocka_unit_test(test_diff_missing_parts),
	};

	return cmocka_run_group_tests_name("discover", tests, NULL, NULL);
}
