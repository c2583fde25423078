/* buf.h — growable byte buffer with a hard cap (curl dynbuf style).
 * Every append checks the cap; the contents are always NUL-terminated. */
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

void	 buf_init(struct buf *, size_t max);
int	 buf_add(struct buf *, const void *, size_t);
int	 buf_adds(struct buf *, const char *);
int	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	 buf_vprintf(struct buf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
/* Hands the string to the caller (never NULL on success: "" if empty). */
char	*buf_take(struct buf *);
void	 buf_reset(struct buf *);
void	 buf_free(struct buf *);

#endif
