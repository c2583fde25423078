/* alerts.c — bastionctl attention, alerts list|silence, channels
 * list|test (DESIGN §14). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctl.h"

/* "disk_low /data, load_high" */
static void
reasons_text(const json_t *reasons, char *out, size_t len)
{
	const json_t *r;
	size_t i, off = 0;
	int n;

	out[0] = '\0';
	json_array_foreach(reasons, i, r) {
		n = snprintf(out + off, len - off, "%s%s%s%s", off ? ", " : "",
		    ctl_jstr(r, "reason"), *ctl_jstr(r, "subject") ? " " : "",
		    ctl_jstr(r, "subject"));
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
}

static int
attention_line(struct ctl_table *t, const json_t *n)
{
	char reasons[1024], seen[64];

	reasons_text(json_object_get(n, "reasons"), reasons, sizeof reasons);
	ctl_fmt_time(seen, sizeof seen, ctl_jstr(n, "heartbeat_at"));
	return ctl_table_row(t, ctl_jstr(n, "node"), ctl_jstr(n, "mac"),
	    ctl_jstr(n, "level"), seen, reasons);
}

static int
attention(struct ctl *c, const struct ctl_command *cmd, int argc, char *argv[])
{
	int json = 0, all = 0;
	struct ctl_opt opts[] = { { "json", NULL, &json }, { "all", NULL, &all },
	    { NULL, NULL, NULL } };
	struct ctl_args a;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	return ctl_list(c, all ? "/api/v1/attention?all=1" : "/api/v1/attention",
	    "attention", json, ctl_table_new(5, "NODE", "MAC", "LEVEL",
	    "LAST HEARTBEAT", "REASONS"), attention_line);
}

static int
alert_line(struct ctl_table *t, const json_t *al)
{
	char id[32], opened[64], resolved[64], what[160];

	snprintf(id, sizeof id, "%lld", ctl_jint(al, "id", 0));
	ctl_fmt_time(opened, sizeof opened, ctl_jstr(al, "opened_at"));
	ctl_fmt_time(resolved, sizeof resolved, ctl_jstr(al, "resolved_at"));
	snprintf(what, sizeof what, "%s%s%s", ctl_jstr(al, "reason"),
	    *ctl_jstr(al, "subject") ? " " : "", ctl_jstr(al, "subject"));
	return ctl_table_row(t, id, ctl_jstr(al, "node"), what,
	    ctl_jstr(al, "level"), ctl_jstr(al, "state"), opened, resolved,
	    ctl_jstr(al, "message"));
}

static int
alerts_list(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *state = NULL;
	int json = 0;
	struct ctl_opt opts[] = { { "json", NULL, &json },
	    { "state", &state, NULL }, { NULL, NULL, NULL } };
	struct ctl_args a;
	char path[128];

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (state && strcmp(state, "open") != 0 && strcmp(state, "resolved") != 0 &&
	    strcmp(state, "all") != 0)
		return ctl_usage_error(cmd, "--state is open, resolved or all");
	snprintf(path, sizeof path, "/api/v1/alerts?state=%s",
	    state ? state : "all");
	return ctl_list(c, path, "the alert list", json, ctl_table_new(8, "ID",
	    "NODE", "REASON", "LEVEL", "STATE", "OPENED", "RESOLVED", "MESSAGE"),
	    alert_line);
}

static int
alerts_silence(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *dur = NULL;
	int json = 0, rc;
	struct ctl_opt opts[] = { { "for", &dur, NULL }, { "json", NULL, &json },
	    { NULL, NULL, NULL } };
	struct ctl_args a;
	json_t *body, *out = NULL;
	char until[64];

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (dur == NULL)
		return ctl_usage_error(cmd, "--for DURATION is required");
	body = json_pack("{s:s, s:s, s:s}", "node", a.pos[0], "reason",
	    a.pos[1], "for", dur);
	rc = ctl_request(c, "POST", "/api/v1/silences", body, &out, NULL, NULL);
	json_decref(body);
	if (rc == -1)
		return CTL_ERR;
	if (json)
		ctl_print_json(out);
	else {
		ctl_fmt_time(until, sizeof until, ctl_jstr(out, "until"));
		ctl_line("silenced %s on %s until %s", ctl_jstr(out, "reason"),
		    ctl_jstr(out, "node"), until);
	}
	json_decref(out);
	return ctl_finish_output(CTL_OK);
}

static int
silence_line(struct ctl_table *t, const json_t *s)
{
	char id[32], until[64];

	snprintf(id, sizeof id, "%lld", ctl_jint(s, "id", 0));
	ctl_fmt_time(until, sizeof until, ctl_jstr(s, "until"));
	return ctl_table_row(t, id, ctl_jstr(s, "node"), ctl_jstr(s, "reason"),
	    until, ctl_jstr(s, "actor"));
}

static int
alerts_silences(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json;
	struct ctl_args a;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	return ctl_list(c, "/api/v1/silences", "the silences", json,
	    ctl_table_new(5, "ID", "NODE", "REASON", "UNTIL", "BY"),
	    silence_line);
}

static int
channel_line(struct ctl_table *t, const json_t *ch)
{
	const json_t *last = json_object_get(ch, "last_delivery");
	char ok[32], bad[32], when[64], lastres[600];

	snprintf(ok, sizeof ok, "%lld", ctl_jint(ch, "delivered", 0));
	snprintf(bad, sizeof bad, "%lld", ctl_jint(ch, "failed", 0));
	ctl_fmt_time(when, sizeof when, json_is_object(last) ?
	    ctl_jstr(last, "time") : NULL);
	snprintf(lastres, sizeof lastres, "%s%s%s", json_is_object(last) ?
	    ctl_jstr(last, "result") : "-", json_is_object(last) &&
	    *ctl_jstr(last, "error") ? ": " : "", json_is_object(last) ?
	    ctl_jstr(last, "error") : "");
	return ctl_table_row(t, ctl_jstr(ch, "name"), ctl_jstr(ch, "type"),
	    ctl_jstr(ch, "min_level"), ok, bad, when, lastres);
}

static int
channels_list(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json;
	struct ctl_args a;

	if (ctl_parse_json_arg(cmd, argc, argv, &json, &a) == -1)
		return a.rc;
	return ctl_list(c, "/api/v1/channels", "the channel list", json,
	    ctl_table_new(7, "NAME", "TYPE", "MIN LEVEL", "OK", "ERRORS",
	    "LAST", "LAST RESULT"), channel_line);
}

/* Queue a test message, then wait for its delivery row (retries with
 * backoff can take a while: up to the channel's timeouts and pauses). */
static int
channels_test(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *wait_s = NULL;
	int json = 0, rc = CTL_ERR;
	struct ctl_opt opts[] = { { "json", NULL, &json },
	    { "wait", &wait_s, NULL }, { NULL, NULL, NULL } };
	struct ctl_args a;
	json_t *out = NULL, *list = NULL, *d, *found = NULL;
	long long after, wait = 120;
	char path[512], dpath[512], *esc;
	int64_t deadline;
	size_t i;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (wait_s && ctl_parse_count(wait_s, 3600, &wait) == -1)
		return ctl_usage_error(cmd, "--wait is seconds (0-3600)");
	if (strlen(a.pos[0]) > 64)
		return ctl_usage_error(cmd, "a channel name is at most 31 "
		    "characters");
	if ((esc = ctl_escape(a.pos[0])) == NULL)
		return ctl_error("out of memory");
	snprintf(path, sizeof path, "/api/v1/channels/%s/test", esc);
	snprintf(dpath, sizeof dpath, "/api/v1/channels/%s/deliveries?limit=20",
	    esc);
	free(esc);
	if (ctl_request(c, "POST", path, NULL, &out, NULL, NULL) == -1)
		goto out;
	after = ctl_jint(out, "after", 0);
	deadline = clock_mono_ms() + wait * 1000;
	while (found == NULL) {
		json_decref(list);
		list = NULL;
		if (ctl_request(c, "GET", dpath, NULL, &list, NULL, NULL) == -1)
			goto out;
		json_array_foreach(list, i, d)
			if (ctl_jint(d, "id", 0) > after &&
			    strcmp(ctl_jstr(d, "kind"), "test") == 0)
				found = d;
		if (found || clock_mono_ms() >= deadline || ctl_interrupted)
			break;
		usleep(200000);
	}
	if (found == NULL) {
		rc = ctl_error("channel %s: no delivery recorded yet (queued; see "
		    "channels list)", a.pos[0]);
		goto out;
	}
	if (json)
		ctl_print_json(found);
	else if (strcmp(ctl_jstr(found, "result"), "ok") == 0)
		ctl_line("channel %s: delivered (%lld attempt%s)", a.pos[0],
		    ctl_jint(found, "attempts", 1), ctl_jint(found, "attempts", 1)
		    == 1 ? "" : "s");
	else
		ctl_line("channel %s: failed after %lld attempt%s: %s", a.pos[0],
		    ctl_jint(found, "attempts", 0), ctl_jint(found, "attempts", 0)
		    == 1 ? "" : "s", ctl_jstr(found, "error"));
	rc = strcmp(ctl_jstr(found, "result"), "ok") == 0 ? CTL_OK : CTL_ERR;
	rc = ctl_finish_output(rc);
out:
	json_decref(out);
	json_decref(list);
	return rc;
}

const struct ctl_command ctl_alerts_commands[] = {
	{ "attention", NULL, "[--all] [--json]",
	    "nodes that need attention, with their reasons", attention, 0, 0, 0 },
	{ "alerts", "list", "[--state open|resolved|all] [--json]",
	    "alerts, newest first", alerts_list, 0, 0, 0 },
	{ "alerts", "silence", "NODE REASON|'*' --for DURATION [--json]",
	    "silence a node's reason for a while", alerts_silence, 2, 2, 0 },
	{ "alerts", "silences", "[--json]", "silences in force",
	    alerts_silences, 0, 0, 0 },
	{ "channels", "list", "[--json]",
	    "notification channels and their delivery health", channels_list,
	    0, 0, 0 },
	{ "channels", "test", "NAME [--wait SECONDS] [--json]",
	    "send a test message and say what happened", channels_test, 1, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
