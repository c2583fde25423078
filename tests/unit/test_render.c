/* test_render.c — the mustache renderer against the official spec suite
 * (its non-optional files, copied with their LICENSE into
 * tests/data/mustache/) and bastion's own cases (bastion.json,
 * errors.json there). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "buf.h"
#include "render.h"

#define SPEC_DIR	TEST_SRCDIR "/tests/data/mustache/"
#define DATA_DIR	SPEC_DIR

struct partials {
	const json_t	*map;		/* name -> text */
	int		 calls;
};

static char *
partial_text(void *cls, const char *name)
{
	struct partials *p = cls;
	const json_t *v;

	p->calls++;
	v = json_object_get(p->map, name);
	return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static void
show(const char *what, const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	char *d = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : NULL;

	fprintf(stderr, "    %-9s %s\n", what, d != NULL ? d : "?");
	free(d);
	json_decref(j);
}

/* One case in the spec's format; "error" in place of "expected" for a
 * template that must be refused. Returns 1 if it passes. */
static int
run_case(const char *file, const json_t *tc)
{
	struct render_opts o;
	struct render_tmpl *t = NULL;
	struct partials p;
	const json_t *tmpl, *want, *werr;
	char err[512], *out = NULL;
	size_t outlen = 0;
	int rc, ok;

	memset(&o, 0, sizeof(o));
	memset(&p, 0, sizeof(p));
	p.map = json_object_get(tc, "partials");
	o.partial = partial_text;
	o.cls = &p;
	o.max_output = (size_t)json_integer_value(json_object_get(tc,
	    "max_output"));
	o.max_depth = (int)json_integer_value(json_object_get(tc,
	    "max_depth"));
	tmpl = json_object_get(tc, "template");
	want = json_object_get(tc, "expected");
	werr = json_object_get(tc, "error");
	if (!json_is_string(tmpl) || (!json_is_string(want) &&
	    !json_is_string(werr))) {
		fprintf(stderr, "%s: malformed case\n", file);
		return 0;
	}
	err[0] = '\0';
	rc = render_compile("ks.mustache", json_string_value(tmpl),
	    json_string_length(tmpl), &t, err, sizeof(err));
	if (rc == 0) {
		rc = render_exec(t, json_object_get(tc, "data"), &o, &out,
		    &outlen, err, sizeof(err));
		render_free(t);
	}
	if (want != NULL)
		ok = rc == 0 && outlen == json_string_length(want) &&
		    memcmp(out, json_string_value(want), outlen) == 0 &&
		    strlen(out) == outlen;
	else
		ok = rc == -1 && strcmp(err, json_string_value(werr)) == 0;
	if (!ok) {
		fprintf(stderr, "FAIL %s: %s\n", file,
		    json_string_value(json_object_get(tc, "name")));
		show("template", json_string_value(tmpl),
		    json_string_length(tmpl));
		if (want != NULL)
			show("expected", json_string_value(want),
			    json_string_length(want));
		else
			show("error", json_string_value(werr),
			    strlen(json_string_value(werr)));
		if (rc == 0)
			show("got", out, outlen);
		else
			show("got error", err, strlen(err));
	}
	free(out);
	return ok;
}

static void
run_file(const char *path, int min_cases)
{
	json_error_t jerr;
	json_t *doc, *tests;
	const char *base;
	size_t i;
	int pass = 0, total;

	base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
	if ((doc = json_load_file(path, 0, &jerr)) == NULL)
		fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
	tests = json_object_get(doc, "tests");
	assert_true(json_is_array(tests));
	total = (int)json_array_size(tests);
	for (i = 0; i < json_array_size(tests); i++)
		pass += run_case(base, json_array_get(tests, i));
	printf("render: %-18s %d/%d passed\n", base, pass, total);
	json_decref(doc);
	assert_true(total >= min_cases);
	assert_int_equal(pass, total);
}

static void
test_spec_comments(void **state)
{
	run_file(SPEC_DIR "comments.json", 12);
}

static void
test_spec_interpolation(void **state)
{
	run_file(SPEC_DIR "interpolation.json", 40);
}

static void
test_spec_inverted(void **state)
{
	run_file(SPEC_DIR "inverted.json", 20);
}

static void
test_spec_partials(void **state)
{
	run_file(SPEC_DIR "partials.json", 11);
}

static void
test_spec_sections(void **state)
{
	run_file(SPEC_DIR "sections.json", 30);
}

static void
test_spec_delimiters(void **state)
{
	run_file(DATA_DIR "delimiters.json", 14);
}

static void
test_bastion_cases(void **state)
{
	run_file(DATA_DIR "bastion.json", 30);
}

static void
test_bastion_errors(void **state)
{
	run_file(DATA_DIR "errors.json", 30);
}

/* --- API behaviour ------------------------------------------------------- */

static void
test_null_data_and_opts(void **state)
{
	char *out = NULL, err[128];
	size_t len = 99;

	assert_int_equal(render_template("t", "a{{x}}{{#x}}no{{/x}}"
	    "{{^x}}b{{/x}}{{.}}{{>p}}c", NULL, NULL, &out, &len, err,
	    sizeof(err)), 0);
	assert_string_equal(out, "abc");
	assert_int_equal(len, 3);
	free(out);

	/* err is left alone on success */
	strcpy(err, "keep");
	assert_int_equal(render_template("t", "x", NULL, NULL, &out, &len, err,
	    sizeof(err)), 0);
	assert_string_equal(err, "keep");
	free(out);

	/* outlen is optional */
	out = NULL;
	assert_int_equal(render_template("t", "", NULL, NULL, &out, NULL,
	    NULL, 0), 0);
	assert_string_equal(out, "");
	free(out);
}

static void
test_outparams_untouched_on_error(void **state)
{
	struct render_tmpl *t = (struct render_tmpl *)0x1;
	struct render_opts o;
	char *out = (char *)0x2, err[128];
	size_t len = 77;

	assert_int_equal(render_compile("x.mustache", "{{#a}}", 6, &t, err,
	    sizeof(err)), -1);
	assert_ptr_equal(t, (struct render_tmpl *)0x1);
	assert_string_equal(err, "x.mustache:1: unclosed section 'a'");

	memset(&o, 0, sizeof(o));
	o.max_output = 2;
	assert_int_equal(render_template("y", "abc", NULL, &o, &out, &len,
	    err, sizeof(err)), -1);
	assert_ptr_equal(out, (char *)0x2);
	assert_int_equal(len, 77);
	assert_string_equal(err, "y:1: output exceeds 2 bytes");

	/* errors without an error buffer, and a tiny one */
	assert_int_equal(render_template("y", "abc", NULL, &o, &out, &len,
	    NULL, 0), -1);
	assert_int_equal(render_template("y", "abc", NULL, &o, &out, &len,
	    err, 3), -1);
	assert_string_equal(err, "y:");
}

static void
test_embedded_nul(void **state)
{
	static const char src[] = "a\0{{x}}\0b";
	struct render_tmpl *t;
	json_t *data = json_pack("{s:s%}", "x", "1\0002", (size_t)3);
	char *out, err[128];
	size_t len;

	assert_non_null(data);
	assert_int_equal(render_compile("nul", src, sizeof(src) - 1, &t, err,
	    sizeof(err)), 0);
	assert_int_equal(render_exec(t, data, NULL, &out, &len, err,
	    sizeof(err)), 0);
	assert_int_equal(len, 7);
	assert_memory_equal(out, "a\0" "1\0" "2\0b", 7);
	assert_int_equal(out[7], '\0');
	free(out);
	render_free(t);
	json_decref(data);

	/* a NUL inside a tag name is refused */
	assert_int_equal(render_compile("nul", "{{a\0b}}", 7, &t, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "nul:1: invalid name 'a'");
}

static const struct render_tmpl *compiled_partial;

static const struct render_tmpl *
partial_compiled(void *cls, const char *name)
{
	int *calls = cls;

	(*calls)++;
	return strcmp(name, "row") == 0 ? compiled_partial : NULL;
}

static void
test_compile_once_render_many(void **state)
{
	struct render_tmpl *t, *row;
	struct render_opts o;
	json_t *data;
	char *out, err[128], want[64];
	int calls = 0, i;

	static const char rowsrc[] = "{{n}}:{{name}}\n";
	static const char mainsrc[] =
	    "{{#hosts}}\n  {{>row}}\n{{/hosts}}\n{{>gone}}";

	assert_int_equal(render_compile("row", rowsrc, strlen(rowsrc), &row,
	    err, sizeof(err)), 0);
	assert_string_equal(render_name(row), "row");
	assert_int_equal(render_compile("main", mainsrc, strlen(mainsrc), &t,
	    err, sizeof(err)), 0);
	compiled_partial = row;
	memset(&o, 0, sizeof(o));
	o.partial_tmpl = partial_compiled;
	o.cls = &calls;
	for (i = 0; i < 100; i++) {
		data = json_pack("{s:[{s:i,s:s},{s:i,s:s}]}", "hosts",
		    "n", i, "name", "a", "n", i + 1, "name", "b");
		assert_non_null(data);
		assert_int_equal(render_exec(t, data, &o, &out, NULL, err,
		    sizeof(err)), 0);
		snprintf(want, sizeof(want), "  %d:a\n  %d:b\n", i, i + 1);
		assert_string_equal(out, want);
		free(out);
		json_decref(data);
	}
	assert_int_equal(calls, 200);	/* "row" and "gone", once each */
	render_free(t);
	render_free(row);
	render_free(NULL);
}

static void
test_partial_text_asked_once(void **state)
{
	struct render_opts o;
	struct partials p;
	json_t *map, *data;
	char *out, err[128];

	map = json_pack("{s:s}", "p", "<{{.}}>");
	data = json_pack("{s:[i,i,i,i]}", "l", 1, 2, 3, 4);
	memset(&o, 0, sizeof(o));
	memset(&p, 0, sizeof(p));
	p.map = map;
	o.partial = partial_text;
	o.cls = &p;
	assert_int_equal(render_template("t",
	    "{{#l}}{{>p}}{{>q}}{{/l}}", data, &o, &out, NULL, err,
	    sizeof(err)), 0);
	assert_string_equal(out, "<1><2><3><4>");
	assert_int_equal(p.calls, 2);	/* "p" and the missing "q" */
	free(out);
	json_decref(map);
	json_decref(data);
}

static void
test_depth_is_clamped(void **state)
{
	struct render_opts o;
	struct partials p;
	json_t *map;
	char *out, err[128];

	map = json_pack("{s:s}", "r", "{{>r}}");
	memset(&o, 0, sizeof(o));
	memset(&p, 0, sizeof(p));
	p.map = map;
	o.partial = partial_text;
	o.cls = &p;
	o.max_depth = 1000000;
	assert_int_equal(render_template("t", "{{>r}}", NULL, &o, &out, NULL,
	    err, sizeof(err)), -1);
	assert_string_equal(err, "r:1: nesting deeper than 256");
	json_decref(map);
}

static void
test_compile_limits(void **state)
{
	struct buf b;
	struct render_tmpl *t;
	char err[128], *big;
	int i;

	/* section nesting is bounded at compile time */
	buf_init(&b, 1 << 20);
	for (i = 0; i < RENDER_DEPTH_LIMIT + 1; i++)
		assert_int_equal(buf_printf(&b, "{{#s%d}}\n", i), 0);
	assert_int_equal(render_compile("deep", b.data, b.len, &t, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "deep:257: sections nested deeper than 256");
	buf_free(&b);

	/* so is the source */
	big = malloc(RENDER_MAX_SOURCE + 1);
	assert_non_null(big);
	memset(big, 'x', RENDER_MAX_SOURCE + 1);
	assert_int_equal(render_compile("big", big, RENDER_MAX_SOURCE + 1, &t,
	    err, sizeof(err)), -1);
	assert_string_equal(err, "big:1: template larger than 16777216 bytes");
	free(big);
}

static void
test_many_tokens(void **state)
{
	struct buf b, w;
	struct render_tmpl *t;
	json_t *data;
	char *out, err[128];
	size_t len;
	int i;

	/* many tokens and a large output, under a raised cap */
	buf_init(&b, 1 << 22);
	buf_init(&w, 1 << 22);
	for (i = 0; i < 20000; i++) {
		assert_int_equal(buf_printf(&b, "{{v}}-%d{{! c }}\n", i), 0);
		assert_int_equal(buf_printf(&w, "xyz-%d\n", i), 0);
	}
	data = json_pack("{s:s}", "v", "xyz");
	assert_int_equal(render_compile("many", b.data, b.len, &t, err,
	    sizeof(err)), 0);
	assert_int_equal(render_exec(t, data, NULL, &out, &len, err,
	    sizeof(err)), 0);
	assert_int_equal(len, w.len);
	assert_string_equal(out, w.data);
	free(out);
	render_free(t);
	json_decref(data);
	buf_free(&b);
	buf_free(&w);
}

/* A kickstart-sized template: ~5 KB, 30 variables, a section over 10
 * logical volumes. Prints the cost of one render; asserts nothing about
 * speed (sanitizer and valgrind runs are slow). */
static void
test_timing(void **state)
{
	struct buf b;
	struct render_tmpl *t;
	struct timespec t0, t1;
	json_t *data, *lvs;
	char *out, err[128];
	size_t len = 0;
	double us, cus;
	int i, n = 20000;
	static const char *vars[] = {
		"hostname", "node-017", "lang", "en_US.UTF-8",
		"keyboard", "us", "timezone", "Europe/Amsterdam",
		"ip", "10.20.30.17", "netmask", "255.255.255.0",
		"gateway", "10.20.30.1", "dns", "10.20.30.2",
		"domain", "lab.example", "mac", "52:54:00:12:34:56",
		"repo_url", "http://10.20.30.1:8080/repo", "os", "rocky",
		"os_version", "9.4",
		"root_hash", "$6$abcdefgh$0123456789012345678901234567890123",
		"callback", "https://10.20.30.1:8443",
		"token", "0123456789abcdef0123456789abcdef", "vg", "vg_node",
		"disk", "sda",
		"agent_pubkey", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIexample",
		"agent_version", "0.1.0", "ntp", "10.20.30.1", "site", "ams1",
		"rack", "r07", "role", "worker", "serial", "SN123456", NULL
	};

	buf_init(&b, 1 << 16);
	assert_int_equal(buf_adds(&b, "# kickstart for {{hostname}}\n"
	    "text\nreboot\nlang {{lang}}\nkeyboard {{keyboard}}\n"
	    "timezone {{timezone}} --utc\n"
	    "network --bootproto=static --ip={{ip}} --netmask={{netmask}} "
	    "--gateway={{gateway}} --nameserver={{dns}} "
	    "--hostname={{hostname}}.{{domain}} --device={{mac}}\n"
	    "url --url={{repo_url}}/{{os}}/{{os_version}}/BaseOS\n"
	    "rootpw --iscrypted {{root_hash}}\n"
	    "%pre --log=/tmp/pre.log\n"
	    "curl -fsS -X POST {{callback}}/machines/{{mac}}/progress"
	    " -d 'stage=pre&token={{token}}'\n"
	    "vgs {{vg}} >/dev/null 2>&1 && echo existing > /tmp/vg-state\n"
	    "%end\n"
	    "bootloader --location=mbr --boot-drive={{disk}}\n"
	    "part /boot --fstype=xfs --size={{boot_size}} --ondisk={{disk}}\n"
	    "part pv.01 --grow --ondisk={{disk}}\n"
	    "volgroup {{vg}} pv.01\n"
	    "{{#lvs}}\n"
	    "logvol {{mount}} --vgname={{vg}} --name={{name}}"
	    "{{#preserve}} --useexisting --noformat{{/preserve}}"
	    "{{^preserve}} --size={{size}} --fstype={{fs}}{{/preserve}}\n"
	    "{{/lvs}}\n"
	    "%packages\n{{#packages}}\n{{.}}\n{{/packages}}\n%end\n"
	    "%post --log=/root/post.log\n"
	    "echo {{agent_pubkey}} > /etc/bastion/agent.pub\n"
	    "curl -fsS {{callback}}/agentd/{{agent_version}}/agentd -o "
	    "/usr/sbin/agentd\n"
	    "echo 'server {{ntp}} iburst' >> /etc/chrony.conf\n"
	    "echo '{{site}} {{rack}} {{role}} {{serial}}' > /etc/bastion/id\n"
	    "%end\n"), 0);
	while (b.len < 5000)
		assert_int_equal(buf_adds(&b, "# Filler comment line that "
		    "stands for the static bulk of a real kickstart file.\n"),
		    0);
	data = json_pack("{s:i,s:[s,s,s,s]}", "boot_size", 1024,
	    "packages", "@core", "chrony", "lvm2", "curl");
	assert_non_null(data);
	for (i = 0; vars[i] != NULL; i += 2)
		json_object_set_new(data, vars[i], json_string(vars[i + 1]));
	lvs = json_array();
	for (i = 0; i < 10; i++)
		json_array_append_new(lvs, json_pack("{s:s,s:s,s:i,s:s,s:b}",
		    "mount", i == 0 ? "/" : "/srv/data", "name", "lv",
		    "size", 10240 * (i + 1), "fs", "xfs", "preserve", i & 1));
	json_object_set_new(data, "lvs", lvs);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 1000; i++) {
		assert_int_equal(render_compile("ks", b.data, b.len, &t, err,
		    sizeof(err)), 0);
		render_free(t);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cus = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
	    (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / 1000;

	assert_int_equal(render_compile("ks", b.data, b.len, &t, err,
	    sizeof(err)), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		assert_int_equal(render_exec(t, data, NULL, &out, &len, err,
		    sizeof(err)), 0);
		free(out);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
	    (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / n;
	printf("render: %zu-byte template -> %zu bytes: compile %.1f us, "
	    "render %.2f us\n", b.len, len, cus, us);
	render_free(t);
	json_decref(data);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_comments),
		cmocka_unit_test(test_spec_interpolation),
		cmocka_unit_test(test_spec_inverted),
		cmocka_unit_test(test_spec_partials),
		cmocka_unit_test(test_spec_sections),
		cmocka_unit_test(test_spec_delimiters),
		cmocka_unit_test(test_bastion_cases),
		cmocka_unit_test(test_bastion_errors),
		cmocka_unit_test(test_null_data_and_opts),
		cmocka_unit_test(test_outparams_untouched_on_error),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_compile_once_render_many),
		cmocka_unit_test(test_partial_text_asked_once),
		cmocka_unit_test(test_depth_is_clamped),
		cmocka_unit_test(test_compile_limits),
		cmocka_unit_test(test_many_tokens),
		cmocka_unit_test(test_timing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
