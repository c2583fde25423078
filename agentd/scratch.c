/* scratch.c — short-lived JSON kept off the heap.
 *
 * The docker reporter parses the engine's list every few seconds (200
 * containers: 135 KB of text, about a megabyte of small jansson objects)
 * and an inspect or a stats sample per container. Freed, those objects
 * leave the malloc heap in pieces around the few allocations that stay,
 * and the pages stay resident (3 MB of a 4 MB agent, measured). While a
 * thread has a scratch open, jansson allocates from pages mapped for that
 * scratch (bump allocation; freeing is a no-op), and closing it unmaps
 * them: nothing of a parse outlives it. Other threads, and this thread
 * with no scratch open, get malloc as before.
 *
 * Rules for a caller: open and close in one function (scratch_open,
 * scratch_close on the same struct, innermost first); no jansson value
 * made inside may be kept past the close (the pages are gone: a use is a
 * fault, not a silent corruption); text that must outlive it is copied
 * with plain malloc. Values are still released with json_decref as
 * usual, so the code reads the same with or without a scratch. */
#ifndef AGENTD_NO_CURL	/* only the reporters use it */
#include <stdlib.h>
#include <sys/mman.h>

#include <jansson.h>

#include "agent.h"

/* A thread's scratch space: reserved once (address space only), used
 * from the bottom; a page is resident once touched. Closing the outermost
 * scratch hands back what is above SCRATCH_KEEP in one madvise: small
 * parses (a stats sample, a reply) then cost no page fault at all, a
 * large one (the list) one TLB flush, not one per mapping (which is what
 * costs CPU in a VM). What does not fit comes from malloc. */
#define SCRATCH_SIZE	(64 * 1024 * 1024)
#define SCRATCH_KEEP	(64 * 1024)
#define SCRATCH_ALIGN	16

struct scratch_area {
	char	*base;		/* NULL: not reserved yet (or it failed) */
	size_t	 used;
	size_t	 touched;	/* high-water mark since the last release */
};

static __thread struct scratch_area area;
static __thread struct scratch *cur;	/* the innermost open scratch */

static void *
scratch_malloc(size_t n)
{
	void *p;

	if (cur == NULL || area.base == NULL || n > SCRATCH_SIZE)
		return malloc(n);
	n = (n + SCRATCH_ALIGN - 1) & ~(size_t)(SCRATCH_ALIGN - 1);
	if (n > SCRATCH_SIZE - area.used)
		return malloc(n);
	p = area.base + area.used;
	area.used += n;
	if (area.used > area.touched)
		area.touched = area.used;
	return p;
}

static void
scratch_free(void *p)
{
	if (area.base != NULL && (char *)p >= area.base &&
	    (char *)p < area.base + SCRATCH_SIZE)
		return;
	free(p);
}

void
scratch_init(void)
{
	json_set_alloc_funcs(scratch_malloc, scratch_free);
}

void
scratch_open(struct scratch *s)
{
	void *p;

	if (area.base == NULL && (p = mmap(NULL, SCRATCH_SIZE, PROT_READ |
	    PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)) !=
	    MAP_FAILED)
		area.base = p;
	s->mark = area.used;
	s->outer = cur;
	cur = s;
}

void
scratch_close(struct scratch *s)
{
	size_t keep;

	area.used = s->mark;
	cur = s->outer;
	if (cur != NULL || area.touched <= SCRATCH_KEEP)
		return;
	keep = SCRATCH_KEEP;
	(void)madvise(area.base + keep, area.touched - keep, MADV_DONTNEED);
	area.touched = keep;
}

void
scratch_thread_done(void)
{
	if (area.base != NULL)
		munmap(area.base, SCRATCH_SIZE);
	area.base = NULL;
	area.used = area.touched = 0;
}
#endif /* AGENTD_NO_CURL */
