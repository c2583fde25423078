/* backoff.c — reconnect delays: exponential, capped, with jitter, so a
 * bastion restart does not meet every agent at the same instant. */
#include "agent.h"

long
agent_backoff_ms(int attempt, uint32_t rnd)
{
	long step = AGENT_BACKOFF_MIN_MS, d;
	int i;

	for (i = 1; i < attempt && step < AGENT_BACKOFF_MAX_MS; i++)
		step *= 2;
	if (step > AGENT_BACKOFF_MAX_MS)
		step = AGENT_BACKOFF_MAX_MS;
	d = step / 2 + (long)(rnd % (uint32_t)(step / 2 + 1));
	return d < AGENT_BACKOFF_MIN_MS ? AGENT_BACKOFF_MIN_MS : d;
}
