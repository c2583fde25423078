/* machine.c — state names. */
#include <string.h>

#include "machine.h"

static const char *const state_names[MS_NSTATES] = {
	"discovering", "discovered", "queued", "installing", "installed",
	"active", "failed"
};

const char *
machine_state_name(enum machine_state s)
{
	if ((unsigned)s >= MS_NSTATES)
		return "unknown";
	return state_names[s];
}

int
machine_state_from_name(const char *name)
{
	int i;

	for (i = 0; i < MS_NSTATES; i++)
		if (strcmp(state_names[i], name) == 0)
			return i;
	return -1;
}
