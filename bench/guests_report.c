/* guests_report.c — bench/guests-report's measuring part: build agentd's
 * guest report (agentd/guest_report.c, the LXC driver only) of the
 * containers under an lxcpath ROUNDS times; print the best and median
 * time and the report's size. Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "clock.h"

static int
cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char *argv[])
{
	struct agent_conf c;
	int64_t t[64], t0;
	json_t *r = NULL;
	char *text = NULL;
	int rounds, i;

	if (argc != 3 || (rounds = atoi(argv[2])) < 1 || rounds > 64) {
		fprintf(stderr, "usage: guests_report LXCPATH ROUNDS(1-64)\n");
		return 2;
	}
	memset(&c, 0, sizeof c);
	c.guests = GUESTS_LXC;
	snprintf(c.lxc_path, sizeof c.lxc_path, "%s", argv[1]);
	for (i = 0; i < rounds; i++) {
		json_decref(r);
		t0 = clock_mono_ms();
		r = guest_report_build(&c);
		t[i] = clock_mono_ms() - t0;
	}
	if (r == NULL || (text = json_dumps(r, JSON_COMPACT)) == NULL)
		return 1;
	qsort(t, (size_t)rounds, sizeof t[0], cmp);
	printf("guests %zu best_ms %lld median_ms %lld bytes %zu\n",
	    json_array_size(json_object_get(r, "guests")), (long long)t[0],
	    (long long)t[rounds / 2], strlen(text));
	free(text);
	json_decref(r);
	return 0;
}
