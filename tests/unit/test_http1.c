/* test_http1.c — agentd/http1.c: URLs, and answers read from a scripted
 * stream (delivered a few bytes at a time, as a network does): lengths,
 * chunks, the close, the reply cap, keep-alive, malformed answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "http1.h"

struct script {
	const char	*data;
	size_t		 off, len, step;
};

static ssize_t
script_read(void *ctx, char *p, size_t n, long deadline, char *err,
    size_t errlen)
{
	struct script *s = ctx;
	size_t k = s->len - s->off;

	if (k > s->step)
		k = s->step;
	if (k > n)
		k = n;
	memcpy(p, s->data + s->off, k);
	s->off += k;
	return (ssize_t)k;
}

/* io reading len bytes of data, step at a time, its body to sink. */
static void
sink_io(struct h1_io *io, struct script *sc, const char *data, size_t len,
    size_t step, int (*sink)(void *, const char *, size_t), void *ctx)
{
	sc->data = data;
	sc->off = 0;
	sc->len = len;
	sc->step = step;
	memset(io, 0, sizeof *io);
	io->read = script_read;
	io->ctx = sc;
	io->sink = sink;
	io->sink_ctx = ctx;
}

/* Reads one answer from text (step bytes per read). rc of h1_read_reply. */
static int
read_answer(const char *text, size_t step, size_t cap, int head,
    struct h1_reply *r, struct buf *body, char *err, struct h1_io *io,
    struct script *s)
{
	s->data = text;
	s->off = 0;
	s->len = strlen(text);
	s->step = step;
	memset(io, 0, sizeof *io);
	io->read = script_read;
	io->ctx = s;
	buf_init(body, cap);
	return h1_read_reply(io, head, body, clock_mono_ms() + 5000, r, err,
	    H1_ERRLEN);
}

static void
test_url(void **state)
{
	struct h1_url u;

	assert_int_equal(h1_url_parse("https://10.77.0.1:8443", &u), 0);
	assert_true(u.tls);
	assert_string_equal(u.host, "10.77.0.1");
	assert_string_equal(u.port, "8443");
	assert_string_equal(u.path, "/");
	assert_int_equal(h1_url_parse("http://[fd77::1]/api/v1/discover", &u), 0);
	assert_false(u.tls);
	assert_string_equal(u.host, "fd77::1");
	assert_string_equal(u.port, "80");
	assert_string_equal(u.hostport, "[fd77::1]");
	assert_string_equal(u.path, "/api/v1/discover");
	assert_int_equal(h1_url_parse("https://bastion.lan", &u), 0);
	assert_string_equal(u.port, "443");
	assert_int_equal(h1_url_parse("ftp://x", &u), -1);
	assert_int_equal(h1_url_parse("https://", &u), -1);
	assert_int_equal(h1_url_parse("https://h:12x/", &u), -1);
	assert_int_equal(h1_url_parse("https://h:/", &u), -1);
	assert_int_equal(h1_url_parse("https://[fd77::1/", &u), -1);
}

/* A stream's bastion as a signed job names it (stream_url): strict. */
static void
test_url_base_valid(void **state)
{
	static const char *const good[] = {
		"https://10.77.0.1:8443", "https://bastion-b.lan:8443",
		"https://b.example", "https://[fd77::1]:8443", "https://[::1]",
		"https://B1.Example.org:1", "https://h:65535",
	};
	static const char *const bad[] = {
		"http://10.77.0.1:8443",	/* not TLS */
		"HTTPS://b:1", "https://", "https://:8443", "ftp://b",
		"https://b:8443/", "https://b:8443/x", "https://b?x=1",
		"https://b#f", "https://user@b:8443", "https://b:0",
		"https://b:65536", "https://b:123456", "https://b:", "https://b:8x",
		"https://-b:1", "https://b-.lan", "https://a..b", "https://.b",
		"https://b_c:1", "https://b c", "https://b\n", "https://[fd77::1",
		"https://[fd77::zz]:1", "https://[]:1", "https://[1.2.3.4]",
		"https://b:1\r\nX: y", "https://%62", "https://b;x",
	};
	char big[600];
	size_t i;

	for (i = 0; i < sizeof good / sizeof good[0]; i++)
		if (!h1_url_base_valid(good[i], 512))
			fail_msg("refused %s", good[i]);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (h1_url_base_valid(bad[i], 512))
			fail_msg("took %s", bad[i]);
	assert_false(h1_url_base_valid(NULL, 512));
	/* Length: under the cap given, and 300 at most; labels 63. */
	assert_false(h1_url_base_valid("https://bastion:8443", 20));
	assert_true(h1_url_base_valid("https://bastion:8443", 21));
	memset(big, 'a', sizeof big);
	memcpy(big, "https://", 8);
	big[8 + 64] = '\0';
	assert_false(h1_url_base_valid(big, 512));
	big[8 + 63] = '\0';
	assert_true(h1_url_base_valid(big, 512));
	for (i = 8; i < sizeof big - 1; i++)
		big[i] = i % 50 == 0 ? '.' : 'a';
	big[sizeof big - 1] = '\0';
	assert_false(h1_url_base_valid(big, sizeof big + 1));
}

static void
test_content_length(void **state)
{
	char err[H1_ERRLEN];
	struct h1_reply r;
	struct h1_io io;
	struct script s;
	struct buf b;
	size_t step;

	for (step = 1; step <= 64; step *= 4) {
		assert_int_equal(read_answer("HTTP/1.1 201 Created\r\n"
		    "Content-Type: application/json\r\ncontent-length:  7\r\n"
		    "\r\n{\"a\":1}", step, 1024, 0, &r, &b, err, &io, &s), 0);
		assert_int_equal(r.status, 201);
		assert_true(r.keep_alive);
		assert_int_equal(b.len, 7);
		assert_string_equal(b.data, "{\"a\":1}");
		buf_free(&b);
	}
}

static void
test_chunked(void **state)
{
	char err[H1_ERRLEN];
	struct h1_reply r;
	struct h1_io io;
	struct script s;
	struct buf b;

	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n6;x=y\r\npedia \r\n"
	    "E\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n", 3, 1024, 0,
	    &r, &b, err, &io, &s), 0);
	assert_int_equal(r.status, 200);
	assert_true(r.keep_alive);
	assert_string_equal(b.data, "Wikipedia in \r\n\r\nchunks.");
	buf_free(&b);
	/* A chunk that does not end where its size says. */
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", 5, 1024, 0, &r, &b, err,
	    &io, &s), -1);
	assert_non_null(strstr(err, "chunk"));
	assert_false(r.keep_alive);
	buf_free(&b);
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: "
	    "chunked\r\n\r\nzz\r\n", 5, 1024, 0, &r, &b, err, &io, &s), -1);
	assert_non_null(strstr(err, "chunk size"));
	buf_free(&b);
}

/* A streamed body (docker logs, exec): every byte to the sink as it
 * comes, beyond the body buffer's cap; -1 from the sink stops it. */
struct sunk {
	char	data[256];
	size_t	len;
	size_t	stop_after;
};

static int
sink(void *ctx, const char *p, size_t n)
{
	struct sunk *k = ctx;

	if (k->len + n > sizeof k->data - 1 || (k->stop_after &&
	    k->len >= k->stop_after))
		return -1;
	memcpy(k->data + k->len, p, n);
	k->len += n;
	k->data[k->len] = '\0';
	return 0;
}

static void
test_sink(void **state)
{
	static const char *const answers[] = {
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "10\r\n0123456789abcdef\r\n4\r\nWiki\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n"
		    "0123456789abcdefWiki",
		"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
		    "0123456789abcdefWiki",
	};
	char err[H1_ERRLEN];
	struct h1_reply r;
	struct h1_io io;
	struct script sc;
	struct sunk k;
	struct buf b;
	size_t i;

	for (i = 0; i < sizeof answers / sizeof answers[0]; i++) {
		memset(&k, 0, sizeof k);
		sink_io(&io, &sc, answers[i], strlen(answers[i]), 3, sink, &k);
		buf_init(&b, 1);	/* a cap the body is far over */
		assert_int_equal(h1_read_reply(&io, 0, &b, clock_mono_ms() +
		    5000, &r, err, H1_ERRLEN), 0);
		assert_int_equal(r.status, 200);
		assert_string_equal(k.data, "0123456789abcdefWiki");
		assert_int_equal(b.len, 0);
		buf_free(&b);
	}
	/* The sink says stop: an error, "stopped", the status known. */
	memset(&k, 0, sizeof k);
	k.stop_after = 4;
	sink_io(&io, &sc, answers[1], strlen(answers[1]), 2, sink, &k);
	buf_init(&b, 1);
	assert_int_equal(h1_read_reply(&io, 0, &b, clock_mono_ms() + 5000, &r,
	    err, H1_ERRLEN), -1);
	assert_string_equal(err, "stopped");
	assert_int_equal(r.status, 200);
	buf_free(&b);
}

/* An image-sized body (over the 256 KiB of the direct reads): every byte
 * in order, with a length, up to the close, and cut short (an error). */
struct big_sunk {
	size_t		len;
	unsigned	sum;	/* of byte * position: order matters */
	size_t		calls;
};

static int
big_sink(void *ctx, const char *p, size_t n)
{
	struct big_sunk *k = ctx;
	size_t i;

	for (i = 0; i < n; i++)
		k->sum += (unsigned char)p[i] * (unsigned)(k->len + i + 1);
	k->len += n;
	k->calls++;
	return 0;
}

static void
test_sink_large(void **state)
{
	size_t body = 3 * 256 * 1024 + 12345, hlen, i;
	unsigned want = 0;
	char hdr[128], err[H1_ERRLEN];
	struct h1_reply r;
	struct h1_io io;
	struct script sc;
	struct big_sunk k;
	struct buf b;
	char *text;
	int v;

	for (v = 0; v < 3; v++) {
		hlen = (size_t)snprintf(hdr, sizeof hdr, v == 1 ?
		    "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" :
		    "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", body);
		text = malloc(hlen + body);
		assert_non_null(text);
		memcpy(text, hdr, hlen);
		want = 0;
		for (i = 0; i < body; i++) {
			text[hlen + i] = (char)(i * 7 + i / 251);
			want += (unsigned char)text[hlen + i] * (unsigned)(i + 1);
		}
		memset(&k, 0, sizeof k);
		/* v 2: the connection ends 1000 bytes early; a network
		 * gives what it has. */
		sink_io(&io, &sc, text, hlen + body - (v == 2 ? 1000 : 0),
		    100 * 1024, big_sink, &k);
		buf_init(&b, 1);
		if (v == 2) {
			assert_int_equal(h1_read_reply(&io, 0, &b,
			    clock_mono_ms() + 5000, &r, err, H1_ERRLEN), -1);
			assert_string_equal(err, "the server closed the "
			    "connection mid-answer");
		} else {
			assert_int_equal(h1_read_reply(&io, 0, &b,
			    clock_mono_ms() + 5000, &r, err, H1_ERRLEN), 0);
			assert_int_equal(r.status, 200);
			assert_int_equal(k.len, body);
			assert_int_equal(k.sum, want);
			assert_int_equal(r.received, hlen + body);
		}
		assert_int_equal(b.len, 0);
		buf_free(&b);
		free(text);
	}
}

static void
test_until_close_and_keep_alive(void **state)
{
	char err[H1_ERRLEN];
	struct h1_reply r;
	struct h1_io io;
	struct script s;
	struct buf b;

	/* No length: the body is everything up to the close. */
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\n\r\nall of it", 4,
	    1024, 0, &r, &b, err, &io, &s), 0);
	assert_string_equal(b.data, "all of it");
	assert_false(r.keep_alive);
	buf_free(&b);
	/* HTTP/1.0 closes unless it says otherwise; Connection: close. */
	assert_int_equal(read_answer("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n"
	    "\r\n", 64, 1024, 0, &r, &b, err, &io, &s), 0);
	assert_false(r.keep_alive);
	buf_free(&b);
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nConnection: Close\r\n"
	    "Content-Length: 0\r\n\r\n", 64, 1024, 0, &r, &b, err, &io, &s), 0);
	assert_false(r.keep_alive);
	buf_free(&b);
	/* 204, HEAD: no body even with a length; 1xx answers are skipped. */
	assert_int_equal(read_answer("HTTP/1.1 100 Continue\r\n\r\n"
	    "HTTP/1.1 204 No Content\r\n\r\n", 7, 1024, 0, &r, &b, err, &io,
	    &s), 0);
	assert_int_equal(r.status, 204);
	assert_true(r.keep_alive);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n"
	    "\r\n", 7, 1024, 1, &r, &b, err, &io, &s), 0);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	/* Bytes after the answer: the connection is not reused. */
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	    "\r\nokHTTP/1.1 200 OK\r\n", 64, 1024, 0, &r, &b, err, &io, &s), 0);
	assert_false(r.keep_alive);
	buf_free(&b);
}

static void
test_cap_and_malformed(void **state)
{
	char err[H1_ERRLEN];
	struct h1_reply r;
	struct h1_io io;
	struct script s;
	struct buf b;
	char *big;

	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n"
	    "\r\n0123456789a", 64, 10, 0, &r, &b, err, &io, &s), -1);
	assert_non_null(strstr(err, "larger than 10"));
	assert_int_equal(r.status, 200);	/* the status is known */
	buf_free(&b);
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\n\r\n0123456789a", 3, 10,
	    0, &r, &b, err, &io, &s), -1);
	assert_non_null(strstr(err, "larger than 10"));
	buf_free(&b);
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: "
	    "chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n", 64, 10, 0, &r, &b, err,
	    &io, &s), -1);
	buf_free(&b);
	assert_int_equal(read_answer("SSH-2.0-OpenSSH\r\n", 64, 10, 0, &r, &b,
	    err, &io, &s), -1);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(err, "not an HTTP"));
	buf_free(&b);
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n"
	    "\r\n", 64, 10, 0, &r, &b, err, &io, &s), -1);
	assert_non_null(strstr(err, "Content-Length"));
	buf_free(&b);
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", 64,
	    10, 0, &r, &b, err, &io, &s), -1);
	buf_free(&b);
	/* Closed before anything / in the middle. */
	assert_int_equal(read_answer("", 64, 10, 0, &r, &b, err, &io, &s), -1);
	assert_int_equal(r.received, 0);
	assert_string_equal(err, "the server closed the connection");
	buf_free(&b);
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	    "\r\nab", 64, 10, 0, &r, &b, err, &io, &s), -1);
	assert_true(r.received > 0);
	assert_non_null(strstr(err, "mid-answer"));
	buf_free(&b);
	/* A header line longer than the read-ahead buffer. */
	big = malloc(40000);
	assert_non_null(big);
	snprintf(big, 40000, "HTTP/1.1 200 OK\r\nX: %035000d\r\n\r\n", 0);
	assert_int_equal(read_answer(big, 4096, 10, 0, &r, &b, err, &io, &s),
	    -1);
	assert_non_null(strstr(err, "too long"));
	buf_free(&b);
	free(big);
}

/* Whatever goes wrong, or is left over, the connection is not reused:
 * its state is unknown and the next answer would be read from the wrong
 * place. */
static void
test_no_reuse_after_doubt(void **state)
{
	char err[H1_ERRLEN];
	struct h1_reply r;
	struct h1_io io;
	struct script s;
	struct buf b;

	/* A 204 or a HEAD answer followed by bytes nothing asked for. */
	assert_int_equal(read_answer("HTTP/1.1 204 No Content\r\n\r\n"
	    "HTTP/1.1 200 OK\r\n\r\n", 64, 1024, 0, &r, &b, err, &io, &s), 0);
	assert_int_equal(r.status, 204);
	assert_false(r.keep_alive);
	buf_free(&b);
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n"
	    "\r\nbody", 64, 1024, 1, &r, &b, err, &io, &s), 0);
	assert_int_equal(b.len, 0);
	assert_false(r.keep_alive);
	buf_free(&b);
	/* A 1xx, then garbage or the close. */
	assert_int_equal(read_answer("HTTP/1.1 100 Continue\r\n\r\n"
	    "SSH-2.0-OpenSSH\r\n", 7, 1024, 0, &r, &b, err, &io, &s), -1);
	assert_non_null(strstr(err, "not an HTTP"));
	assert_false(r.keep_alive);
	buf_free(&b);
	assert_int_equal(read_answer("HTTP/1.1 100 Continue\r\n\r\n", 7, 1024,
	    0, &r, &b, err, &io, &s), -1);
	assert_non_null(strstr(err, "mid-answer"));
	assert_false(r.keep_alive);
	buf_free(&b);
}

/* Answers whose length could be read two ways are refused, or at least
 * never leave the connection to be reused. */
static void
test_ambiguous_framing(void **state)
{
	static const char *bad_size[] = { "0x5", "-5", " 5", "+5" };
	char err[H1_ERRLEN], text[256];
	struct h1_reply r;
	struct h1_io io;
	struct script s;
	struct buf b;
	size_t i;

	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	    "Content-Length: 12\r\n\r\nokHTTP/1.1 20", 64, 1024, 0, &r, &b,
	    err, &io, &s), -1);
	assert_non_null(strstr(err, "Content-Length"));
	buf_free(&b);
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nContent-Length: 2 5"
	    "\r\n\r\nok", 64, 1024, 0, &r, &b, err, &io, &s), -1);
	assert_non_null(strstr(err, "Content-Length"));
	buf_free(&b);
	/* The same length twice is one length. */
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	    "Content-Length: 2 \r\n\r\nok", 64, 1024, 0, &r, &b, err, &io,
	    &s), 0);
	assert_string_equal(b.data, "ok");
	assert_true(r.keep_alive);
	buf_free(&b);
	/* A length and chunked: the chunks frame it, then the close. */
	assert_int_equal(read_answer("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 5,
	    1024, 0, &r, &b, err, &io, &s), 0);
	assert_string_equal(b.data, "ok");
	assert_false(r.keep_alive);
	buf_free(&b);
	/* Chunk sizes are hex digits, nothing strtoull would also take. */
	for (i = 0; i < sizeof bad_size / sizeof bad_size[0]; i++) {
		snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\nTransfer-Encoding:"
		    " chunked\r\n\r\n%s\r\nhello\r\n0\r\n\r\n", bad_size[i]);
		assert_int_equal(read_answer(text, 64, 1024, 0, &r, &b, err, &io,
		    &s), -1);
		assert_non_null(strstr(err, "chunk size"));
		buf_free(&b);
	}
}

static void
test_request(void **state)
{
	struct h1_url u;
	struct buf b;

	assert_int_equal(h1_url_parse("https://10.77.0.1:8443", &u), 0);
	buf_init(&b, 4096);
	assert_int_equal(h1_request(&b, "POST", &u, "/agent/v1/heartbeat",
	    "application/json", "{}", 2, 0), 0);
	assert_non_null(strstr(b.data, "POST /agent/v1/heartbeat HTTP/1.1\r\n"
	    "Host: 10.77.0.1:8443\r\n"));
	assert_non_null(strstr(b.data, "Content-Length: 2\r\n"));
	assert_null(strstr(b.data, "Connection: close"));
	assert_int_equal(strcmp(b.data + b.len - 6, "\r\n\r\n{}"), 0);
	buf_reset(&b);
	assert_int_equal(h1_request(&b, "GET", &u, "/ca.pem", NULL, NULL, 0, 1),
	    0);
	assert_null(strstr(b.data, "Content-Length"));
	assert_non_null(strstr(b.data, "Connection: close\r\n\r\n"));
	buf_free(&b);
	/* The cap holds. */
	buf_init(&b, 16);
	assert_int_equal(h1_request(&b, "GET", &u, "/", NULL, NULL, 0, 0), -1);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_url_base_valid),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_until_close_and_keep_alive),
		cmocka_unit_test(test_cap_and_malformed),
		cmocka_unit_test(test_no_reuse_after_doubt),
		cmocka_unit_test(test_ambiguous_framing),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_sink),
		cmocka_unit_test(test_sink_large),
	};

	return cmocka_run_group_tests_name("http1", tests, NULL, NULL);
}
