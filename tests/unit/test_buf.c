/* test_buf.c — lib/buf.c: the cap is exact, growth works, ownership moves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void
test_init_empty(void **state)
{
	struct buf b;
	char *s;

	buf_init(&b, 100);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 100);
	/* take of an empty buffer is "", never NULL */
	s = buf_take(&b);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
	assert_null(b.data);
	buf_free(&b);
}

static void
test_cap_exact(void **state)
{
	struct buf b;
	char chunk[11];

	memset(chunk, 'a', sizeof chunk);
	buf_init(&b, 10);
	assert_int_equal(buf_add(&b, chunk, 10), 0);	/* exactly max */
	assert_int_equal(b.len, 10);
	assert_int_equal(strlen(b.data), 10);
	assert_int_equal(buf_add(&b, "x", 1), -1);	/* one past */
	assert_int_equal(b.len, 10);			/* unchanged */
	assert_int_equal(buf_add(&b, "", 0), 0);	/* nothing always fits */
	assert_string_equal(b.data, "aaaaaaaaaa");
	buf_free(&b);

	buf_init(&b, 10);
	assert_int_equal(buf_add(&b, chunk, 9), 0);
	assert_int_equal(buf_add(&b, "xy", 2), -1);	/* 11 > 10 */
	assert_int_equal(b.len, 9);
	assert_int_equal(buf_adds(&b, "z"), 0);		/* 10 == 10 */
	assert_string_equal(b.data, "aaaaaaaaaz");
	assert_int_equal(buf_adds(&b, "q"), -1);
	buf_free(&b);

	buf_init(&b, 10);
	assert_int_equal(buf_add(&b, chunk, 11), -1);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void
test_cap_huge_length(void **state)
{
	struct buf b;

	buf_init(&b, 10);
	assert_int_equal(buf_add(&b, "abc", 3), 0);
	/* Sizes that would wrap len + n must be refused, not truncated. */
	assert_int_equal(buf_add(&b, "x", SIZE_MAX), -1);
	assert_int_equal(buf_add(&b, "x", SIZE_MAX - 2), -1);
	assert_int_equal(b.len, 3);
	assert_string_equal(b.data, "abc");
	buf_free(&b);

	buf_init(&b, SIZE_MAX);
	assert_int_equal(buf_add(&b, "abc", 3), 0);
	assert_int_equal(buf_add(&b, "x", SIZE_MAX - 1), -1);
	assert_int_equal(b.len, 3);
	buf_free(&b);
}

static void
test_printf_cap(void **state)
{
	struct buf b;

	buf_init(&b, 8);
	assert_int_equal(buf_printf(&b, "%d", 1234), 0);
	assert_int_equal(buf_printf(&b, "%s", "5678"), 0);	/* len 8 == max */
	assert_string_equal(b.data, "12345678");
	assert_int_equal(buf_printf(&b, "%c", '9'), -1);
	assert_string_equal(b.data, "12345678");
	assert_int_equal(b.len, 8);
	buf_free(&b);
}

static void
test_printf_growth(void **state)
{
	struct buf b;
	size_t i;
	char *s;

	buf_init(&b, 1 << 20);
	for (i = 0; i < 1000; i++)
		assert_int_equal(buf_printf(&b, "%04zu,", i), 0);
	assert_int_equal(b.len, 5000);
	assert_int_equal(strlen(b.data), 5000);
	assert_true(b.alloc > b.len);
	assert_memory_equal(b.data, "0000,0001,", 10);
	assert_memory_equal(b.data + 4995, "0999,", 5);
	/* One printf much larger than the current allocation. */
	assert_int_equal(buf_printf(&b, "%*s", 100000, "x"), 0);
	assert_int_equal(b.len, 105000);
	assert_int_equal(b.data[b.len - 1], 'x');
	assert_int_equal(b.data[b.len], '\0');
	s = buf_take(&b);
	assert_int_equal(strlen(s), 105000);
	free(s);
	buf_free(&b);
}

static void
test_binary_data(void **state)
{
	struct buf b;
	const char bin[4] = { 'a', '\0', 'b', '\0' };

	buf_init(&b, 100);
	assert_int_equal(buf_add(&b, bin, sizeof bin), 0);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, bin, 4);
	assert_int_equal(b.data[4], '\0');
	buf_free(&b);
}

static void
test_take(void **state)
{
	struct buf b;
	char *s;

	buf_init(&b, 64);
	assert_int_equal(buf_adds(&b, "hello"), 0);
	s = buf_take(&b);
	assert_string_equal(s, "hello");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.alloc, 0);
	assert_int_equal(b.max, 64);
	/* The buffer is reusable after take and does not alias s. */
	assert_int_equal(buf_adds(&b, "world"), 0);
	assert_string_equal(b.data, "world");
	assert_string_equal(s, "hello");
	free(s);
	buf_free(&b);
}

static void
test_reset(void **state)
{
	struct buf b;
	char *data;

	buf_init(&b, 16);
	buf_reset(&b);				/* on an empty buffer */
	assert_null(b.data);
	assert_int_equal(buf_adds(&b, "0123456789abcdef"), 0);
	data = b.data;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.data, data);		/* memory kept */
	assert_string_equal(b.data, "");
	/* The cap counts from zero again. */
	assert_int_equal(buf_adds(&b, "0123456789ABCDEF"), 0);
	assert_string_equal(b.data, "0123456789ABCDEF");
	assert_int_equal(buf_adds(&b, "!"), -1);
	buf_free(&b);
}

static void
test_free_twice(void **state)
{
	struct buf b;

	buf_init(&b, 16);
	assert_int_equal(buf_adds(&b, "x"), 0);
	buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	buf_free(&b);				/* harmless */
	assert_int_equal(buf_adds(&b, "y"), 0);	/* and reusable */
	assert_string_equal(b.data, "y");
	buf_free(&b);
}

static void
test_zero_cap(void **state)
{
	struct buf b;

	buf_init(&b, 0);
	assert_int_equal(buf_add(&b, "", 0), 0);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	assert_int_equal(buf_adds(&b, "a"), -1);
	assert_int_equal(buf_printf(&b, "%s", ""), 0);
	assert_int_equal(buf_printf(&b, "%d", 1), -1);
	buf_free(&b);
}

/* buf_note: what does not fit is dropped and the text says so, once. */
static void
test_note_marks_the_cut_once(void **state)
{
	struct buf b;

	buf_init(&b, 16);
	buf_note(&b, "%s\n", "first");			/* 6 bytes */
	assert_string_equal(b.data, "first\n");
	buf_note(&b, "%s\n", "second is far too long");	/* does not fit */
	assert_string_equal(b.data, "first\n...\n");
	buf_note(&b, "third\n");			/* fits: 16 */
	assert_string_equal(b.data, "first\n...\nthird\n");
	buf_note(&b, "x\n");				/* full */
	assert_int_equal(b.len, 16);
	assert_string_equal(b.data + b.len - 4, "...\n");
	buf_note(&b, "y\n");				/* marked already */
	assert_int_equal(b.len, 16);
	assert_string_equal(b.data + b.len - 4, "...\n");
	buf_free(&b);

	buf_init(&b, 3);				/* no room for the mark */
	buf_note(&b, "abcdef");
	assert_true(b.data == NULL || b.len <= 3);
	buf_free(&b);
}

/* buf_add_cut keeps what fits and says how much. */
static void
test_add_cut(void **state)
{
	struct buf b;

	buf_init(&b, 5);
	assert_int_equal(buf_add_cut(&b, "abc", 3), 3);
	assert_int_equal(buf_add_cut(&b, "defg", 4), 2);
	assert_string_equal(b.data, "abcde");
	assert_int_equal(buf_add_cut(&b, "h", 1), 0);
	assert_int_equal(b.len, 5);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_empty),
		cmocka_unit_test(test_cap_exact),
		cmocka_unit_test(test_cap_huge_length),
		cmocka_unit_test(test_printf_cap),
		cmocka_unit_test(test_printf_growth),
		cmocka_unit_test(test_binary_data),
		cmocka_unit_test(test_take),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_free_twice),
		cmocka_unit_test(test_zero_cap),
		cmocka_unit_test(test_note_marks_the_cut_once),
		cmocka_unit_test(test_add_cut),
	};

	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
