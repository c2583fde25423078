/* buf.h — growable byte buffer with a hard cap (curl dynbuf style).
 * Every append checks the cap; the contents are always NUL-terminated.
 * An append that did not fit (-1: over the cap, or out of memory) leaves
 * the buffer as it was, and its caller must say what that means: the
 * results cannot be ignored. */
#ifndef BASTION_BUF_H
#define BASTION_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char	*data;	/* owned; NUL-terminated when non-NULL */
	size_t	 len;
	size_t	 alloc;
	size_t	 max;	/* appends past this fail with -1 */
};

#define BUF_MUST_USE	__attribute__((warn_unused_result))

void	 buf_init(struct buf *, size_t max);
int	 buf_add(struct buf *, const void *, size_t) BUF_MUST_USE;
int	 buf_adds(struct buf *, const char *) BUF_MUST_USE;
int	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3))) BUF_MUST_USE;
int	 buf_vprintf(struct buf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0))) BUF_MUST_USE;
/* Raw bytes where a cap is the design (a child's output kept for a log
 * line, a reply only logged): what fits is appended, the rest dropped.
 * How many bytes were kept (0 also when out of memory). */
size_t	 buf_add_cut(struct buf *, const void *, size_t);
/* Messages for a person (errors, change summaries): a note that does not
 * fit is dropped and the text ends with "...\n" once, so a reader sees it
 * was cut. It never fails, by design: the caller's verdict (an error
 * count, a status) does not depend on the text. */
void	 buf_note(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Hands the string to the caller (never NULL on success: "" if empty). */
char	*buf_take(struct buf *);
void	 buf_reset(struct buf *);
void	 buf_free(struct buf *);

#endif
