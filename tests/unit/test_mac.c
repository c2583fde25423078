/* test_mac.c — lib/mac.c: every common spelling in, one spelling out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mac.h"

static const uint8_t want[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
#define WANT_STR "52:54:00:ab:cd:ef"

/* in must parse to `want` and normalise to WANT_STR. */
static void
accept(const char *in)
{
	uint8_t m[6];
	char s[MAC_STRLEN];

	if (mac_parse(in, m) != 0)
		fail_msg("mac_parse rejected \"%s\"", in);
	assert_memory_equal(m, want, 6);
	memset(s, 'x', sizeof s);
	assert_int_equal(mac_normalize(in, s), 0);
	assert_string_equal(s, WANT_STR);
}

/* in must be rejected and the outputs left untouched. */
static void
reject(const char *in)
{
	uint8_t m[6], before[6];
	char s[MAC_STRLEN], sbefore[MAC_STRLEN];

	memset(m, 0x5a, sizeof m);
	memcpy(before, m, sizeof m);
	memset(s, 'x', sizeof s);
	memcpy(sbefore, s, sizeof s);
	if (mac_parse(in, m) != -1)
		fail_msg("mac_parse accepted \"%s\"", in ? in : "(null)");
	assert_memory_equal(m, before, 6);
	assert_int_equal(mac_normalize(in, s), -1);
	assert_memory_equal(s, sbefore, sizeof s);
}

static void
test_colon_lower(void **state)
{
	accept("52:54:00:ab:cd:ef");
}

static void
test_colon_upper_and_mixed_case(void **state)
{
	accept("52:54:00:AB:CD:EF");
	accept("52:54:00:aB:Cd:eF");
}

static void
test_dash(void **state)
{
	accept("52-54-00-AB-CD-EF");
	accept("52-54-00-ab-cd-ef");
}

static void
test_cisco_dots(void **state)
{
	accept("5254.00ab.cdef");
	accept("5254.00AB.CDEF");
}

static void
test_bare_hex(void **state)
{
	accept("525400abcdef");
	accept("525400ABCDEF");
}

static void
test_one_digit_groups(void **state)
{
	uint8_t m[6];
	const uint8_t small[6] = { 0x02, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f };
	const uint8_t mixed[6] = { 0x02, 0x0b, 0x0c, 0x0d, 0x0e, 0xff };
	const uint8_t dmix[6] = { 0x52, 0x54, 0x00, 0xab, 0x0c, 0xef };

	assert_int_equal(mac_parse("2:b:c:d:e:f", m), 0);
	assert_memory_equal(m, small, 6);
	assert_int_equal(mac_parse("2-B-C-D-E-F", m), 0);
	assert_memory_equal(m, small, 6);
	/* Mixed one- and two-digit groups, including the 12-character
	 * spelling that is the same length as bare hex. */
	assert_int_equal(mac_parse("52:54:0:ab:c:ef", m), 0);
	assert_memory_equal(m, dmix, 6);
	assert_int_equal(mac_parse("2:b:c:d:e:ff", m), 0);
	assert_memory_equal(m, mixed, 6);
	accept("52:54:0:ab:cd:ef");
}

static void
test_pxelinux(void **state)
{
	accept("01-52-54-00-ab-cd-ef");
	accept("01-52-54-00-AB-CD-EF");
}

static void
test_format(void **state)
{
	const uint8_t m[6] = { 0x00, 0x1a, 0x2b, 0xfe, 0x00, 0x09 };
	char s[MAC_STRLEN];

	mac_format(m, s);
	assert_string_equal(s, "00:1a:2b:fe:00:09");
	assert_int_equal(strlen(s), MAC_STRLEN - 1);
}

static void
test_locally_administered_ok(void **state)
{
	uint8_t m[6];

	/* Bit 1 (locally administered) is fine, bit 0 (group) is not. */
	assert_int_equal(mac_parse("02:00:00:00:00:01", m), 0);
	assert_int_equal(mac_parse("fe:ff:ff:ff:ff:ff", m), 0);
	/* Zero in the first octet is an ordinary OUI. */
	assert_int_equal(mac_parse("00:00:00:00:00:01", m), 0);
}

static void
test_reject_mixed_separators(void **state)
{
	reject("52:54-00:ab:cd:ef");
	reject("52-54:00-ab-cd-ef");
	reject("5254.00ab:cdef");
	reject("52:54:00.ab:cd:ef");
	reject("01:52-54-00-ab-cd-ef");
	reject("01-52:54:00:ab:cd:ef");
	reject("52.54.00.ab.cd.ef");
}

static void
test_reject_group_count(void **state)
{
	reject("52:54:00:ab:cd");		/* 5 groups */
	reject("52:54:00:ab:cd:ef:01");		/* 7 groups */
	reject("2:b:c:d:e");
	reject("2:b:c:d:e:f:1");
	reject("52:54:00:ab:cd:ef:");
	reject(":52:54:00:ab:cd:ef");
	reject("52::54:00:ab:cd");
	reject("5254.00ab");
	reject("5254.00ab.cdef.0123");
	reject("01-52-54-00-ab-cd");
	reject("01-52-54-00-ab-cd-ef-01");
}

static void
test_reject_long_groups(void **state)
{
	reject("525:54:00:ab:cd:ef");
	reject("52:54:00:ab:cd:eff");
	reject("52:54:000:ab:cd:ef");
	reject("5254.00abc.def");
	reject("52540.0abc.def");
}

static void
test_reject_non_hex(void **state)
{
	reject("52:54:00:ab:cd:eg");
	reject("g2:54:00:ab:cd:ef");
	reject("525400abcdeg");
	reject("5254.00ab.cdeg");
	reject("0x:54:00:ab:cd:ef");
	reject("52:54:00:ab:cd:e\xc3\xa9");
	reject("01-52-54-00-ab-cd-zz");
	reject("02-52-54-00-ab-cd-ef-");	/* not a PXELINUX prefix */
	reject("02-52-54-00-ab-cd-ef");		/* ARP type 2 is not Ethernet */
}

static void
test_reject_empty_null(void **state)
{
	reject("");
	reject(NULL);
	reject(":");
	reject(":::::");
}

static void
test_reject_space(void **state)
{
	reject(" 52:54:00:ab:cd:ef");
	reject("52:54:00:ab:cd:ef ");
	reject("52:54:00:ab:cd:ef\n");
	reject("\t52:54:00:ab:cd:ef");
	reject(" 525400abcdef");
	reject("525400abcdef ");
	reject("52: 54:00:ab:cd:ef");
	reject("2:b:c:d:e: f");
	reject(" 2:b:c:d:e:f");
}

static void
test_reject_all_zero(void **state)
{
	reject("00:00:00:00:00:00");
	reject("000000000000");
	reject("0:0:0:0:0:0");
	reject("0000.0000.0000");
	reject("01-00-00-00-00-00-00");
}

static void
test_reject_multicast(void **state)
{
	reject("01:00:5e:00:00:01");
	reject("33:33:00:00:00:01");
	reject("ff:ff:ff:ff:ff:ff");
	reject("FFFFFFFFFFFF");
	reject("1:2:3:4:5:6");
	reject("0100.5e00.0001");
	reject("01-01-00-5e-00-00-01");
}

static void
test_reject_too_long(void **state)
{
	char big[4096];

	reject("525400abcdef0");
	reject("525400abcdef00");
	reject("52:54:00:ab:cd:ef52:54:00:ab:cd:ef");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	reject(big);
	/* A valid MAC followed by junk far past any length check. */
	memset(big, ' ', sizeof big - 1);
	memcpy(big, "52:54:00:ab:cd:ef", 17);
	reject(big);
}

static void
test_roundtrip(void **state)
{
	uint8_t m[6], back[6];
	char s[MAC_STRLEN];
	int i;

	for (i = 0; i < 256; i += 2) {
		m[0] = (uint8_t)i;
		m[1] = (uint8_t)(255 - i);
		m[2] = (uint8_t)(i * 7);
		m[3] = 0;
		m[4] = (uint8_t)(i ^ 0x5a);
		m[5] = 1;
		mac_format(m, s);
		assert_int_equal(mac_parse(s, back), 0);
		assert_memory_equal(m, back, 6);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_colon_lower),
		cmocka_unit_test(test_colon_upper_and_mixed_case),
		cmocka_unit_test(test_dash),
		cmocka_unit_test(test_cisco_dots),
		cmocka_unit_test(test_bare_hex),
		cmocka_unit_test(test_one_digit_groups),
		cmocka_unit_test(test_pxelinux),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_locally_administered_ok),
		cmocka_unit_test(test_reject_mixed_separators),
		cmocka_unit_test(test_reject_group_count),
		cmocka_unit_test(test_reject_long_groups),
		cmocka_unit_test(test_reject_non_hex),
		cmocka_unit_test(test_reject_empty_null),
		cmocka_unit_test(test_reject_space),
		cmocka_unit_test(test_reject_all_zero),
		cmocka_unit_test(test_reject_multicast),
		cmocka_unit_test(test_reject_too_long),
		cmocka_unit_test(test_roundtrip),
	};

	return cmocka_run_group_tests_name("mac", tests, NULL, NULL);
}
