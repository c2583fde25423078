/* test_stream.c — bastion/stream.c: a stream's end is told once, whoever
 * ends it (the node, the operator, a takeover), and only to the stream's
 * own parties; what is written reaches the other side. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "stream.h"

static int told;
static char why[32];

static void
over(void *arg, const char *w)
{
	told++;
	snprintf(why, sizeof why, "%s", w);
	assert_ptr_equal(arg, &told);
}

static void
fresh(char id[STREAM_ID_LEN])
{
	told = 0;
	why[0] = '\0';
	assert_int_equal(stream_create("agent1", "alice", 24, 80, id), 0);
	assert_int_equal(stream_on_over(id, over, &told), 0);
}

static void
test_node_end_is_told_once(void **state)
{
	char id[STREAM_ID_LEN];
	struct stream_state st;
	struct buf out;

	fresh(id);
	assert_int_equal(stream_write(id, STREAM_NODE, "agent1", "hi", 2), 0);
	assert_int_equal(stream_end(id, STREAM_NODE, "agent1", 1, 0), 0);
	assert_int_equal(told, 1);
	assert_string_equal(why, "node");
	/* Over: no new callback, and the rest is still read. */
	assert_int_equal(stream_on_over(id, over, &told), -1);
	assert_int_equal(stream_end(id, STREAM_CLIENT, "alice", 0, 0), 0);
	buf_init(&out, 1024);
	assert_int_equal(stream_take(id, STREAM_CLIENT, "alice", &out, &st), 0);
	assert_int_equal(out.len, 2);
	assert_true(st.ended && st.has_exit);
	buf_free(&out);
	assert_int_equal(told, 1);
	/* Read and over: gone. */
	assert_int_equal(stream_kill(id), -1);
	assert_int_equal(told, 1);
}

static void
test_client_close_and_kill(void **state)
{
	char id[STREAM_ID_LEN];

	fresh(id);
	/* Someone else cannot end it. */
	assert_int_equal(stream_end(id, STREAM_CLIENT, "mallory", 0, 0), -1);
	assert_int_equal(stream_end(id, STREAM_NODE, "agent2", 0, 0), -1);
	assert_int_equal(told, 0);
	assert_int_equal(stream_end(id, STREAM_CLIENT, "alice", 0, 0), 0);
	assert_int_equal(told, 1);
	assert_string_equal(why, "client");
	assert_int_equal(stream_kill(id), 0);	/* gone now, told before */
	assert_int_equal(told, 1);

	fresh(id);
	assert_int_equal(stream_kill(id), 0);
	assert_int_equal(told, 1);
	assert_string_equal(why, "killed");
	assert_int_equal(stream_write(id, STREAM_CLIENT, "alice", "x", 1), -1);
	assert_int_equal(stream_kill(id), -1);
}

/* The node never came (another bastion heard so): the stream ends for
 * the client with why, in its data and its state; only for the stream's
 * own agent, and never once the node has used it. */
static void
test_fail_unreached(void **state)
{
	char id[STREAM_ID_LEN];
	struct stream_state st;
	struct buf out;

	fresh(id);
	assert_int_equal(stream_fail(id, "agent2", "not yours"), -1);
	assert_int_equal(stream_fail("0123", "agent1", "no such"), -1);
	assert_int_equal(told, 0);
	assert_int_equal(stream_fail(id, "agent1", "the node could not reach "
	    "it"), 0);
	assert_int_equal(told, 1);
	assert_string_equal(why, "unreached");
	assert_int_equal(stream_fail(id, "agent1", "again"), -1);
	buf_init(&out, 1024);
	assert_int_equal(stream_take(id, STREAM_CLIENT, "alice", &out, &st), 0);
	assert_true(st.ended && !st.has_exit && !st.attached);
	assert_string_equal(st.why, "the node could not reach it");
	assert_int_equal(out.len, strlen("bastion: the node could not reach "
	    "it\r\n"));
	assert_memory_equal(out.data, "bastion: the node", 17);
	buf_free(&out);
	/* Read and over: gone. */
	assert_int_equal(stream_kill(id), -1);
	assert_int_equal(told, 1);

	/* A node that came ends its stream itself. */
	fresh(id);
	assert_int_equal(stream_write(id, STREAM_NODE, "agent1", "", 0), 0);
	assert_int_equal(stream_fail(id, "agent1", "late"), -1);
	assert_int_equal(told, 0);
	assert_int_equal(stream_kill(id), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_node_end_is_told_once),
		cmocka_unit_test(test_client_close_and_kill),
		cmocka_unit_test(test_fail_unreached),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
