/* buf.c — capped growable buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
}

static int
buf_grow(struct buf *b, size_t extra)
{
	size_t need, nalloc;
	char *p;

	if (extra > b->max || b->len > b->max - extra ||
	    b->len + extra == (size_t)-1)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->alloc)
		return 0;
	nalloc = b->alloc ? b->alloc : 256;
	while (nalloc < need) {
		if (nalloc > ((size_t)-1) / 2)
			return -1;
		nalloc *= 2;
	}
	if ((p = realloc(b->data, nalloc)) == NULL)
		return -1;
	b->data = p;
	b->alloc = nalloc;
	return 0;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_grow(b, n) == -1)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || buf_grow(b, (size_t)n) == -1)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

size_t
buf_add_cut(struct buf *b, const void *p, size_t n)
{
	size_t room = b->len < b->max ? b->max - b->len : 0;

	if (n > room)
		n = room;
	return buf_add(b, p, n) == 0 ? n : 0;
}

void
buf_note(struct buf *b, const char *fmt, ...)
{
	static const char cut[] = "...\n";
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	if (rc == 0 || (b->len >= sizeof cut - 1 &&
	    strcmp(b->data + b->len - (sizeof cut - 1), cut) == 0))
		return;
	/* Room for the mark: give up the end of the last note if need be. */
	while (b->len > 0 && b->max - b->len < sizeof cut - 1)
		b->len--;
	if (buf_add(b, cut, sizeof cut - 1) == -1 && b->data)
		b->data[b->len] = '\0';
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

char *
buf_take(struct buf *b)
{
	char *p = b->data;

	if (p == NULL)
		p = strdup("");
	b->data = NULL;
	b->len = b->alloc = 0;
	return p;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
}
