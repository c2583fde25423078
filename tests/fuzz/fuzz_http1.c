/* fuzz_http1.c — agentd/http1.c: h1_read_reply over whatever a server (or
 * whoever answers on the boot network) sends, delivered in pieces whose
 * sizes the input's first byte chooses. An accepted answer must have a
 * real status, a body within the cap, and never claim keep-alive when
 * bytes were left over; then a second answer is read from what remains
 * to exercise the read-ahead. The input is also tried as a job's
 * stream_url (h1_url_base_valid). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "http1.h"

#define CAP	4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
	const uint8_t	*p;
	size_t		 off, len, step;
};

static ssize_t
feed_read(void *ctx, char *p, size_t n, long deadline, char *err,
    size_t errlen)
{
	struct feed *f = ctx;
	size_t k = f->len - f->off;

	(void)deadline;
	(void)err;
	(void)errlen;
	if (k > f->step)
		k = f->step;
	if (k > n)
		k = n;
	memcpy(p, f->p + f->off, k);
	f->off += k;
	return (ssize_t)k;
}

static void
one(struct h1_io *io, int head)
{
	char err[H1_ERRLEN];
	struct h1_reply r;
	struct buf body;

	buf_init(&body, CAP);
	if (h1_read_reply(io, head, &body, clock_mono_ms() + 10000, &r, err,
	    sizeof err) == 0) {
		if (r.status < 200 || r.status > 599 || body.len > CAP ||
		    (body.data && body.data[body.len] != '\0'))
			abort();
		if (r.keep_alive && io->off != io->len)
			abort();	/* leftover bytes on a reused connection */
	} else {
		if (memchr(err, '\0', sizeof err) == NULL || err[0] == '\0')
			abort();
		if (r.keep_alive)
			abort();	/* an error leaves the state unknown */
	}
	buf_free(&body);
}

/* The same bytes as a job's stream_url: what h1_url_base_valid takes is
 * an https URL that parses, with nothing after the host and port. */
static void
base_url(const uint8_t *data, size_t size)
{
	char url[512];
	struct h1_url u;
	size_t n = size < sizeof url - 1 ? size : sizeof url - 1;

	memcpy(url, data, n);
	url[n] = '\0';
	if (!h1_url_base_valid(url, sizeof url))
		return;
	if (h1_url_parse(url, &u) == -1 || !u.tls || strcmp(u.path, "/") ||
	    strpbrk(url + 8, "/?#@ \t\r\n%\\") != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct feed f;
	struct h1_io *io;

	base_url(data, size);
	if (size < 1)
		return 0;
	if ((io = calloc(1, sizeof *io)) == NULL)
		return 0;
	f.p = data + 1;
	f.len = size - 1;
	f.off = 0;
	f.step = (data[0] & 0x3f) + 1;
	io->read = feed_read;
	io->ctx = &f;
	one(io, data[0] & 0x40);
	one(io, 0);
	free(io);
	return 0;
}
