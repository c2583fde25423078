/* test_log.c — lib/log.c: what a request carries cannot forge a log line
 * or reach a terminal as a control sequence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

static void
expect(const char *in, const char *want)
{
	char out[256];

	assert_int_equal(log_escape(out, sizeof out, in), strlen(want));
	assert_string_equal(out, want);
}

static void
test_plain_text_unchanged(void **state)
{
	expect("req 1 GET /dispatch?mac=52:54:00:aa:bb:cc: 200",
	    "req 1 GET /dispatch?mac=52:54:00:aa:bb:cc: 200");
	/* Printable UTF-8 (é, €, 𝄞) passes. */
	expect("caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e",
	    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e");
}

static void
test_c0_and_del_escaped(void **state)
{
	expect("a\nfake: line\r\tb", "a\\nfake: line\\r\\tb");
	expect("\x1b[31mred\x7f\x01", "\\x1b[31mred\\x7f\\x01");
}

static void
test_c1_and_invalid_utf8_escaped(void **state)
{
	/* U+009B (CSI) and U+0085 (NEL) as UTF-8. */
	expect("x\xc2\x9b" "2Jy\xc2\x85", "x\\xc2\\x9b" "2Jy\\xc2\\x85");
	/* A lone continuation byte, an overlong '/', a surrogate, a
	 * truncated sequence. */
	expect("\x80", "\\x80");
	expect("\xc0\xaf", "\\xc0\\xaf");
	expect("\xed\xa0\x80", "\\xed\\xa0\\x80");
	expect("\xe2\x82", "\\xe2\\x82");
}

static void
test_cut_at_whole_escape(void **state)
{
	char out[6];

	/* "ab" + "\n" (2) fits in 5, the next "\x1b" (4) does not. */
	assert_int_equal(log_escape(out, sizeof out, "ab\n\x1b"), 4);
	assert_string_equal(out, "ab\\n");
	assert_int_equal(log_escape(out, 3, "\xe2\x82\xac"), 0);
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_text_unchanged),
		cmocka_unit_test(test_c0_and_del_escaped),
		cmocka_unit_test(test_c1_and_invalid_utf8_escaped),
		cmocka_unit_test(test_cut_at_whole_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
