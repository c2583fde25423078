/* trim.c — after start-up, hand back what only start-up needed.
 *
 * Enrollment, key generation, the inventory and OpenSSL's initialisation
 * run code that the idle loop (a heartbeat, a long poll) never runs again,
 * and the kernel maps a file's cached pages around every page faulted in,
 * so nearly all of a static agentd's text stays resident. Telling the
 * kernel the file-backed pages may be reclaimed leaves resident only what
 * the loop uses again (faulted back in from the page cache on demand); a
 * hint, so no data can be lost (anonymous pages with no swap stay).
 * Each thread calls it once its own start-up is over (the main loop
 * before its first poll, a reporter after its first report). */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <sys/mman.h>

#include "agent.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21	/* Linux 5.4; older kernels ignore it (EINVAL) */
#endif

void
agent_trim(void)
{
	char line[768], perms[8], path[512];
	unsigned long lo, hi;
	FILE *fp;

	malloc_trim(0);
	if ((fp = fopen("/proc/self/maps", "re")) == NULL)
		return;
	while (fgets(line, sizeof line, fp) != NULL)
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %511s", &lo, &hi,
		    perms, path) == 4 && path[0] == '/' && hi > lo)
			(void)madvise((void *)lo, hi - lo, MADV_PAGEOUT);
	fclose(fp);
}

/* glibc's defaults suit a program that keeps allocating: one arena per
 * thread (each with its own free space kept resident), and after a large
 * buffer is freed, thresholds raised so that the next ones come from the
 * heap and are kept. agentd is idle between short bursts (a heartbeat, an
 * engine's list, a report of 100 KB and more): one arena, large buffers
 * mapped and unmapped on their own, the heap's free top handed back. */
void
agent_malloc_init(void)
{
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}
