/* test_install_plan.c — what `agentd install` accepts from the plan it
 * fetches over plain HTTP (agentd/install.c): a good plan parses, every
 * field that reaches a path, a command line or a config file is refused
 * when it could do harm; partition device names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "installer.h"

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static json_t *
good_plan(void)
{
	json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s,"
	    " s:{s:s, s:s, s:i, s:i, s:[{s:s, s:s, s:i, s:s, s:s, s:s},"
	    " {s:s, s:s, s:i, s:s, s:s, s:s}, {s:s, s:s, s:i, s:s, s:s, s:s}]},"
	    " s:{s:s, s:s, s:I, s:s}, s:[s],"
	    " s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}}",
	    "version", "0.1.0", "mac", "52:54:00:AA:BB:01", "hostname", "n1.lab",
	    "os", "debian-12", "reprovision", 0, "role", "worker",
	    "progress_url", "http://10.77.0.1:8080/api/v1/progress/52:54:00:aa:bb:01?k=" SHA,
	    "storage", "vg", "bastion", "disk", "vda", "boot_size_mb", 1024,
	    "efi_size_mb", 600, "volumes",
	    "name", "root", "mount", "/", "size_mb", 20480, "grow", "no",
	    "fstype", "xfs", "preserve", "no",
	    "name", "srv", "mount", "/srv", "size_mb", 10240, "grow", "no",
	    "fstype", "ext4", "preserve", "yes",
	    "name", "var_lib_x", "mount", "/var/lib/x", "size_mb", 1024, "grow",
	    "yes", "fstype", "xfs", "preserve", "yes",
	    "image", "url", "http://10.77.0.1:8080/boot/os/debian-12/rootfs.tar.zst",
	    "sha256", SHA, "size", (json_int_t)241246910, "format", "tar.zst",
	    "ssh_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA ops@lab",
	    "agent", "server", "https://10.77.0.1:8443", "ca_fingerprint",
	    "sha256:" SHA, "token", SHA, "agentd_url",
	    "http://10.77.0.1:8080/boot/agent/agentd-dynamic", "agentd_sha256",
	    SHA, "unit_url", "http://10.77.0.1:8080/boot/agent/agentd.service",
	    "unit_sha256", SHA, "agentd_build", "dynamic");

	assert_non_null(p);
	return p;
}

static void
test_good_plan(void **state)
{
	struct inst_plan p;
	char why[INST_ERRLEN];
	json_t *j = good_plan();

	(void)state;
	assert_int_equal(install_plan_parse(j, &p, why, sizeof why), 0);
	assert_string_equal(p.mac, "52:54:00:aa:bb:01");
	/* bastion's image plan names the dynamic agentd (agentd_build is
	 * for people and is not needed here) */
	assert_string_equal(p.agentd_url,
	    "http://10.77.0.1:8080/boot/agent/agentd-dynamic");
	assert_string_equal(p.disk, "vda");
	assert_int_equal(p.nvol, 3);
	assert_true(p.vol[1].preserve && !p.vol[1].grow);
	assert_true(p.vol[2].grow);
	assert_int_equal(p.nkeys, 1);
	assert_int_equal(p.image_size, 241246910);
	install_plan_free(&p);
	json_decref(j);
}

/* Sets member path (a.b or a.b.N.c) of a fresh good plan to v and
 * expects the plan refused. */
static void
refused(const char *obj, const char *key, int index, const char *member,
    json_t *v)
{
	struct inst_plan p;
	char why[INST_ERRLEN];
	json_t *j = good_plan(), *o = obj ? json_object_get(j, obj) : j;

	if (index >= 0)
		o = json_array_get(json_object_get(o, key), (size_t)index);
	json_object_set_new(o, index >= 0 ? member : key, v);
	if (install_plan_parse(j, &p, why, sizeof why) == 0) {
		install_plan_free(&p);
		fail_msg("accepted %s.%s[%d].%s", obj ? obj : "", key, index,
		    member ? member : "");
	}
	assert_true(why[0] != '\0');
	json_decref(j);
}

static void
test_hostile_fields(void **state)
{
	(void)state;
	refused("storage", "disk", -1, NULL, json_string("../sda"));
	refused("storage", "disk", -1, NULL, json_string("vda;reboot"));
	refused("storage", "vg", -1, NULL, json_string("bastion-x"));
	refused(NULL, "hostname", -1, NULL, json_string("n1\nroot::0:0"));
	refused(NULL, "hostname", -1, NULL, json_string("-rf"));
	refused(NULL, "mac", -1, NULL, json_string("not a mac"));
	refused(NULL, "progress_url", -1, NULL, json_string("http://x/'$(reboot)'"));
	refused(NULL, "progress_url", -1, NULL, json_string("file:///etc/passwd"));
	refused("image", "sha256", -1, NULL, json_string("abc"));
	refused("image", "size", -1, NULL, json_integer(0));
	refused("image", "url", -1, NULL, json_string("https://elsewhere/x"));
	refused("agent", "server", -1, NULL, json_string("https://a\nb"));
	refused("agent", "token", -1, NULL, json_string("short"));
	refused("agent", "token", -1, NULL, json_string(SHA "\ninject = 1"));
	refused("storage", "volumes", 1, "mount", json_string("/srv/../etc"));
	refused("storage", "volumes", 1, "mount", json_string("srv"));
	refused("storage", "volumes", 1, "mount", json_string("/"));	/* two roots */
	refused("storage", "volumes", 1, "name", json_string("root"));	/* twice */
	refused("storage", "volumes", 1, "name", json_string("s r v"));
	refused("storage", "volumes", 1, "fstype", json_string("btrfs"));
	refused("storage", "volumes", 1, "fstype", json_string("swap"));
	refused("storage", "volumes", 1, "size_mb", json_integer(0));
	refused("storage", "volumes", 1, "grow", json_string("yes"));	/* two */
	refused("storage", "boot_size_mb", -1, NULL, json_integer(1 << 20));
	refused(NULL, "ssh_keys", -1, NULL, json_pack("[s]",
	    "ssh-ed25519 AAAA x\nssh-rsa BBBB evil"));
	refused(NULL, "ssh_keys", -1, NULL, json_pack("[s]", "command=\"x\" ssh-rsa A"));
	refused(NULL, "ssh_keys", -1, NULL, json_string("ssh-rsa AAAA"));
	refused(NULL, "storage", -1, NULL, json_null());
}

static json_t *
root_image(void)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:s, s:{s:s, s:s, s:I}}",
	    "url", "http://10.77.0.1:8080/boot/os/debian-12/root.xfs.zst",
	    "sha256", SHA, "size", (json_int_t)155571017, "bytes",
	    (json_int_t)772800512, "fstype", "xfs", "rest", "url",
	    "http://10.77.0.1:8080/boot/os/debian-12/rest.tar.zst", "sha256",
	    SHA, "size", (json_int_t)41992895);
}

/* image.root (the root filesystem image and the rest) is optional; when
 * there it is checked like the archive's fields. */
static void
test_root_image(void **state)
{
	static const struct {
		const char *key, *sub, *bad;	/* bad NULL: the number 0 */
	} cases[] = { { "url", NULL, "https://elsewhere/x" },
	    { "sha256", NULL, "abc" }, { "fstype", NULL, "ext4" },
	    { "size", NULL, NULL }, { "bytes", NULL, NULL },
	    { "url", "rest", "http://x/'$(reboot)'" }, { "sha256", "rest", "0" },
	    { "size", "rest", NULL } };
	struct inst_plan p;
	char why[INST_ERRLEN];
	json_t *j = good_plan(), *r;
	size_t i;

	(void)state;
	assert_int_equal(install_plan_parse(j, &p, why, sizeof why), 0);
	assert_string_equal(p.root_url, "");	/* the archive is unpacked */
	install_plan_free(&p);
	json_object_set_new(json_object_get(j, "image"), "root", root_image());
	assert_int_equal(install_plan_parse(j, &p, why, sizeof why), 0);
	assert_string_equal(p.root_url,
	    "http://10.77.0.1:8080/boot/os/debian-12/root.xfs.zst");
	assert_string_equal(p.rest_url,
	    "http://10.77.0.1:8080/boot/os/debian-12/rest.tar.zst");
	assert_int_equal(p.root_size, 155571017);
	assert_int_equal(p.root_bytes, 772800512);
	assert_int_equal(p.rest_size, 41992895);
	install_plan_free(&p);
	json_decref(j);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		j = good_plan();
		r = root_image();
		json_object_set_new(cases[i].sub ? json_object_get(r,
		    cases[i].sub) : r, cases[i].key, cases[i].bad ?
		    json_string(cases[i].bad) : json_integer(0));
		json_object_set_new(json_object_get(j, "image"), "root", r);
		if (install_plan_parse(j, &p, why, sizeof why) == 0) {
			install_plan_free(&p);
			fail_msg("image.root %s%s%s accepted", cases[i].sub ?
			    cases[i].sub : "", cases[i].sub ? "." : "",
			    cases[i].key);
		}
		assert_non_null(strstr(why, "image.root"));
		json_decref(j);
	}
	/* An XFS root image for a root volume of another filesystem. */
	j = good_plan();
	json_object_set_new(json_object_get(j, "image"), "root", root_image());
	json_object_set_new(json_array_get(json_object_get(json_object_get(j,
	    "storage"), "volumes"), 0), "fstype", json_string("ext4"));
	assert_int_equal(install_plan_parse(j, &p, why, sizeof why), -1);
	assert_non_null(strstr(why, "image.root is XFS"));
	json_decref(j);
	/* An image bigger than its filesystem is not one. */
	j = good_plan();
	r = root_image();
	json_object_set_new(r, "bytes", json_integer(1000));
	json_object_set_new(json_object_get(j, "image"), "root", r);
	assert_int_equal(install_plan_parse(j, &p, why, sizeof why), -1);
	json_decref(j);
}

static void
test_too_many_volumes(void **state)
{
	struct inst_plan p;
	char why[INST_ERRLEN], name[16], mount[16];
	json_t *j = good_plan(), *vols = json_array();
	int i;

	(void)state;
	json_array_append_new(vols, json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}",
	    "name", "root", "mount", "/", "size_mb", 100, "grow", "no", "fstype",
	    "xfs", "preserve", "no"));
	for (i = 0; i < INST_MAX_VOLUMES; i++) {
		snprintf(name, sizeof name, "v%d", i);
		snprintf(mount, sizeof mount, "/v%d", i);
		json_array_append_new(vols, json_pack("{s:s, s:s, s:i, s:s, s:s,"
		    " s:s}", "name", name, "mount", mount, "size_mb", 100, "grow",
		    "no", "fstype", "xfs", "preserve", "no"));
	}
	json_object_set_new(json_object_get(j, "storage"), "volumes", vols);
	assert_int_equal(install_plan_parse(j, &p, why, sizeof why), -1);
	json_decref(j);
}

static void
test_part_node(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(install_part_node("vda", 3, out, sizeof out), 0);
	assert_string_equal(out, "/dev/vda3");
	assert_int_equal(install_part_node("nvme0n1", 1, out, sizeof out), 0);
	assert_string_equal(out, "/dev/nvme0n1p1");
	assert_int_equal(install_part_node("mmcblk0", 2, out, sizeof out), 0);
	assert_string_equal(out, "/dev/mmcblk0p2");
	assert_int_equal(install_part_node("vda", 3, out, 8), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_plan),
		cmocka_unit_test(test_hostile_fields),
		cmocka_unit_test(test_root_image),
		cmocka_unit_test(test_too_many_volumes),
		cmocka_unit_test(test_part_node),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
