/* stream.c — the node's side of an interactive stream (bastion's
 * stream.c and routes_stream.c), shared by `containers exec -it`
 * (container.c) and a guest's console (guest_console.c): which bastion
 * holds it, and the posts of output.
 *
 * A stream lives in the memory of the bastion that made it. With several
 * bastions on one database (DESIGN §16) that may not be the one this
 * agent polls: the job then names it (stream_url), and the stream is
 * reached on connections of its own to that bastion, with the same
 * pinned CA and agent certificate. A stream bastion that gives no answer
 * (connection, TLS) is not the end: the agent's own bastion is tried.
 * Found nowhere, the job fails with "unreached_stream: …", and the
 * bastion that gets that result has the stream ended for its operator. */
#ifndef AGENTD_NO_CURL	/* the discovery image has no streams */
#define LOG_SUBSYS "stream"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "b64.h"
#include "http1.h"
#include "log.h"

#define PROBE_MS	10000	/* a stream bastion's first answer */

static int
sid_ok(const char *sid)
{
	return sid != NULL && strlen(sid) == 32 && strspn(sid,
	    "0123456789abcdef") == 32;
}

int
astream_parse(struct astream *s, const struct agent_conf *c,
    const json_t *args, char *why, size_t whylen)
{
	const char *sid = json_string_value(json_object_get(args, "stream"));
	const json_t *u = json_object_get(args, "stream_url");

	memset(s, 0, sizeof *s);
	s->c = c;
	if (!sid_ok(sid)) {
		snprintf(why, whylen, "stream: the 32 hex digits of the stream "
		    "bastion made");
		return -1;
	}
	snprintf(s->sid, sizeof s->sid, "%s", sid);
	if (u == NULL)
		return 0;
	if (!h1_url_base_valid(json_string_value(u), sizeof s->url)) {
		snprintf(why, whylen, "stream_url: a bastion's https://host:port");
		return -1;
	}
	/* Its own bastion's: the connection it has is as good. */
	if (strcmp(json_string_value(u), agent_server(c)) != 0)
		snprintf(s->url, sizeof s->url, "%s", json_string_value(u));
	return 0;
}

/* A client to the bastion at url, or to the agent's own when url is "". */
static struct aclient *
client_at(const struct agent_conf *c, const char *url)
{
	return url[0] ? aclient_new_at(c, url, 1) : aclient_new(c, 1);
}

struct aclient *
astream_client(const struct astream *s)
{
	return client_at(s->c, s->url);
}

static long
post(struct aclient *a, const char *sid, const char *p, size_t n, int end,
    const json_t *exit_code, long timeout_ms, int *closed, char *err,
    size_t errlen)
{
	char path[160], *b64;
	json_t *body, *reply = NULL;
	long code;

	if ((b64 = b64_encode(p, n)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	body = json_pack("{s:s}", "data", b64);
	free(b64);
	if (body == NULL) {
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	if (end) {
		json_object_set_new(body, "end", json_true());
		if (exit_code)
			json_object_set(body, "exit_code", (json_t *)exit_code);
	}
	snprintf(path, sizeof path, "/agent/v1/streams/%s/output", sid);
	code = aclient_call(a, "POST", path, body, timeout_ms, &reply, err,
	    errlen);
	if ((code == 200 && json_is_true(json_object_get(reply, "closed"))) ||
	    code == 404)
		*closed = 1;
	if (code != 0 && code != 200)
		snprintf(err, errlen, "%s", code == 404 ? "no such stream" :
		    aclient_error_message(reply));
	json_decref(body);
	json_decref(reply);
	return code;
}

long
astream_out(struct aclient *a, const struct astream *s, const char *p,
    size_t n, int end, const json_t *exit_code, int *closed)
{
	char err[256];

	return post(a, s->sid, p, n, end, exit_code, 30000, closed, err,
	    sizeof err);
}

/* A first post (no bytes: the stream's state only) where it may be: at
 * url, or at the agent's own bastion when url is "". */
static long
probe(const struct astream *s, const char *url, int *closed, char *err,
    size_t errlen)
{
	struct aclient *a;
	long code;

	if ((a = client_at(s->c, url)) == NULL) {
		snprintf(err, errlen, "cannot make a client");
		return 0;
	}
	code = post(a, s->sid, "", 0, 0, NULL, PROBE_MS, closed, err, errlen);
	aclient_free(a);
	return code;
}

int
astream_reach(struct astream *s, char *why, size_t whylen)
{
	char err[256] = "", own[256] = "";
	int closed = 0;
	long code;

	if (s->reached == 1)
		return 0;
	if (s->reached == -1) {
		snprintf(why, whylen, "%s", s->why);
		return -1;
	}
	if (s->url[0]) {
		if ((code = probe(s, s->url, &closed, err, sizeof err)) == 200) {
			s->reached = 1;
			return 0;
		}
		log_info("stream %.8s…: %s: %s; trying %s", s->sid, s->url,
		    err[0] ? err : "no answer", agent_server(s->c));
	}
	if ((code = probe(s, "", &closed, own, sizeof own)) == 200) {
		s->url[0] = '\0';
		s->reached = 1;
		return 0;
	}
	if (s->url[0])
		snprintf(s->why, sizeof s->why, "unreached_stream: %s: %s; %s: "
		    "%s", s->url, err[0] ? err : "no answer", agent_server(s->c),
		    own[0] ? own : "no answer");
	else
		snprintf(s->why, sizeof s->why, "unreached_stream: %s: %s",
		    agent_server(s->c), own[0] ? own : "no answer");
	log_warnx("stream %.8s…: %s", s->sid, s->why);
	s->reached = -1;
	snprintf(why, whylen, "%s", s->why);
	return -1;
}
#endif /* AGENTD_NO_CURL */
