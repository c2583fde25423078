/* routes_alerts.c — fleet attention, alerts, silences and channels on
 * the operator API (DESIGN §14). */
#define LOG_SUBSYS "api"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "attention.h"
#include "bastion.h"
#include "channels.h"
#include "clock.h"
#include "db_agent.h"
#include "db_alerts.h"
#include "duration.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "routes.h"

#define L_API (L_CONTROL | L_ADMIN)
#define SILENCE_MAX_S	(90LL * 86400)

static void
get_attention(struct request *r)
{
	const char *all = http_query(r, "all");

	http_reply_json(r, 200, alerts_attention(all && (strcmp(all, "1") == 0 ||
	    strcmp(all, "true") == 0)));
}

static int
limit_arg(struct request *r, int def)
{
	const char *v = http_query(r, "limit");
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return def;
	n = strtol(v, &end, 10);
	if (*end || n < 1 || n > 10000) {
		http_reply_error(r, 400, "bad_limit", "limit is 1-10000");
		return -1;
	}
	return (int)n;
}

static void
get_alerts(struct request *r)
{
	const char *state = http_query(r, "state");
	json_t *out;
	int limit;

	if (state && (*state == '\0' || strcmp(state, "all") == 0))
		state = NULL;
	if (state && strcmp(state, "open") != 0 && strcmp(state, "resolved") != 0) {
		http_reply_error(r, 400, "bad_state", "state is open, resolved "
		    "or all");
		return;
	}
	if ((limit = limit_arg(r, 500)) == -1)
		return;
	if (db_alert_list(r->app->db, state, limit, &out) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	http_reply_json(r, 200, out);
}

static void
get_silences(struct request *r)
{
	json_t *out;

	if (db_silence_list(r->app->db, clock_wall_ms(), &out) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	http_reply_json(r, 200, out);
}

/* {"node": id|hostname|mac, "reason": "disk_low"|"*", "for": "2h"} */
static void
post_silence(struct request *r)
{
	char id[AGENT_ID_LEN];
	struct agent a;
	const char *node, *reason, *dur;
	int64_t secs, sid, until;
	json_t *body;

	if ((body = http_body_json(r)) == NULL)
		return;
	node = json_string_value(json_object_get(body, "node"));
	reason = json_string_value(json_object_get(body, "reason"));
	dur = json_string_value(json_object_get(body, "for"));
	if (node == NULL || reason == NULL || dur == NULL || strlen(node) > 253) {
		http_reply_error(r, 400, "bad_request", "node, reason and for "
		    "are required strings");
		goto out;
	}
	if (strcmp(reason, "*") != 0 && !attention_reason_known(reason)) {
		http_reply_error(r, 400, "bad_reason", "unknown reason '%.32s'",
		    reason);
		goto out;
	}
	if (duration_parse(dur, SILENCE_MAX_S, &secs) == -1 || secs <= 0) {
		http_reply_error(r, 400, "bad_duration", "for is a duration up "
		    "to 90d (30m, 2h, 7d)");
		goto out;
	}
	if (routes_agent_of(r, node, id) == -1)
		goto out;
	if (db_agent_get(r->app->db, id, &a) != DB_OK) {
		http_reply_error(r, 404, "not_found", "no agent %s", id);
		goto out;
	}
	until = clock_wall_ms() + secs * 1000;
	AUDIT_SET(&r->audit, target, "%s/%s", a.hostname[0] ? a.hostname : id,
	    reason);
	AUDIT_SET(&r->audit, detail, "for %s", dur);
	if (db_silence_add(r->app->db, id, a.hostname[0] ? a.hostname : id,
	    reason, until, r->audit.actor, &sid) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	log_info("req %s: silence %lld on %s %s for %s", r->id, (long long)sid,
	    a.hostname, reason, dur);
	http_reply_json(r, 201, json_pack("{s:I, s:s, s:s, s:s, s:o}", "id",
	    (json_int_t)sid, "agent_id", id, "node", a.hostname[0] ? a.hostname :
	    id, "reason", reason, "until", db_time_json(until)));
out:
	json_decref(body);
}

static void
get_channels(struct request *r)
{
	const struct config *c;
	json_t *out = json_array(), *sum = NULL, *o, *s;
	int i;

	if (db_delivery_summary(r->app->db, &sum) != DB_OK) {
		json_decref(out);
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	c = bastion_config_acquire(r->app);
	for (i = 0; i < c->channels.n; i++) {
		o = channels_json(&c->channels.ch[i]);
		s = json_object_get(sum, c->channels.ch[i].name);
		json_object_set_new(o, "delivered", json_integer(s ?
		    json_integer_value(json_object_get(s, "ok")) : 0));
		json_object_set_new(o, "failed", json_integer(s ?
		    json_integer_value(json_object_get(s, "error")) : 0));
		json_object_set(o, "last_delivery", s ? json_object_get(s, "last") :
		    json_null());
		json_array_append_new(out, o);
	}
	bastion_config_release(r->app);
	json_decref(sum);
	http_reply_json(r, 200, out);
}

static int
channel_known(struct request *r, const char *name)
{
	int ok;

	ok = strlen(name) < CHANNEL_NAME_LEN && channels_find(
	    &bastion_config_acquire(r->app)->channels, name) != NULL;
	bastion_config_release(r->app);
	if (!ok)
		http_reply_error(r, 404, "not_found", "no channel '%.32s'", name);
	return ok;
}

static void
get_deliveries(struct request *r)
{
	json_t *out;
	int limit;

	if (!channel_known(r, r->params[0]) || (limit = limit_arg(r, 100)) == -1)
		return;
	if (db_delivery_list(r->app->db, r->params[0], limit, &out) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	http_reply_json(r, 200, out);
}

/* Queued, never sent here: the answer says which delivery row to wait
 * for (the newest id before it, in "after"). */
static void
post_channel_test(struct request *r)
{
	struct notice *n;
	json_t *last = NULL;
	json_int_t after = 0;

	if (!channel_known(r, r->params[0]))
		return;
	if (db_delivery_list(r->app->db, r->params[0], 1, &last) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		return;
	}
	if (json_array_size(last))
		after = json_integer_value(json_object_get(json_array_get(last, 0),
		    "id"));
	json_decref(last);
	if ((n = calloc(1, sizeof *n)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	n->kind = NOTICE_TEST;
	n->level = 2;
	/* channel_known: a configured name, shorter than CHANNEL_NAME_LEN */
	memcpy(n->channel, r->params[0], strlen(r->params[0]) + 1);
	n->reasons = json_array();
	notify_post(n);
	AUDIT_SET(&r->audit, target, "%s", r->params[0]);
	http_reply_json(r, 202, json_pack("{s:s, s:b, s:I}", "channel",
	    r->params[0], "queued", 1, "after", after));
}

const struct route routes_alerts[] = {
	{ L_API, "GET", "/api/v1/attention", get_attention, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/alerts", get_alerts, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/silences", get_silences, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "POST", "/api/v1/silences", post_silence, 4096,
	    ROLE_OPERATOR, SCOPE_PROVISION, RF_MUTATES, "alert.silence" },
	{ L_API, "GET", "/api/v1/channels", get_channels, 0,
	    ROLE_OPERATOR, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/channels/{name}/deliveries", get_deliveries, 0,
	    ROLE_OPERATOR, SCOPE_READ, 0, NULL },
	{ L_API, "POST", "/api/v1/channels/{name}/test", post_channel_test, 0,
	    ROLE_ADMIN, SCOPE_ADMIN, RF_MUTATES, "channel.test" },
	{ 0, NULL, NULL, NULL, 0, ROLE_NONE, SCOPE_READ, 0, NULL },
};
