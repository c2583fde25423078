/* test_b64.c — lib/b64.c: RFC 4648's vectors both ways, the bound on
 * the decoded size, and what strict decoding refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "b64.h"

static const char *const vec[][2] = {	/* RFC 4648 §10 */
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void
test_vectors(void **state)
{
	unsigned char *d;
	size_t i, n;
	char *e;

	for (i = 0; i < sizeof vec / sizeof vec[0]; i++) {
		e = b64_encode(vec[i][0], strlen(vec[i][0]));
		assert_non_null(e);
		assert_string_equal(e, vec[i][1]);
		free(e);
		d = b64_decode(vec[i][1], 64, &n);
		assert_non_null(d);
		assert_int_equal(n, strlen(vec[i][0]));
		assert_memory_equal(d, vec[i][0], n);
		assert_int_equal(d[n], '\0');
		free(d);
	}
}

static void
test_binary_roundtrip(void **state)
{
	unsigned char in[256], *d;
	size_t i, len, n;
	char *e;

	for (i = 0; i < sizeof in; i++)
		in[i] = (unsigned char)(255 - i);
	for (len = 0; len <= sizeof in; len += 37) {
		e = b64_encode(in, len);
		assert_non_null(e);
		assert_int_equal(strlen(e), (len + 2) / 3 * 4);
		d = b64_decode(e, len, &n);
		assert_non_null(d);
		assert_int_equal(n, len);
		assert_memory_equal(d, in, len);
		free(d);
		free(e);
	}
}

static void
test_max(void **state)
{
	unsigned char *d;
	size_t n;

	d = b64_decode("Zm9vYmFy", 6, &n);	/* exactly max */
	assert_non_null(d);
	free(d);
	assert_null(b64_decode("Zm9vYmFy", 5, &n));
	assert_null(b64_decode("Zm9vYg==", 3, &n));
}

static void
test_rejects(void **state)
{
	static const char *const bad[] = {
		"Zm9", "Zm9vY", "Zm 9v", "Zm9v\n", "Zm-v", "Zm_v", "=Zm9",
		"Zg=a", "Z===", "Zm9v====", "Zg==Zg==", "Zm9v!",
	};
	size_t i, n;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_null(b64_decode(bad[i], 64, &n));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_binary_roundtrip),
		cmocka_unit_test(test_max),
		cmocka_unit_test(test_rejects),
	};

	return cmocka_run_group_tests_name("b64", tests, NULL, NULL);
}
