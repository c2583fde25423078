/* alerts.c — the attention pass and the alert life cycle (alerts.h). */
#define LOG_SUBSYS "alerts"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerts.h"
#include "attention.h"
#include "bastion.h"
#include "clock.h"
#include "db_agent.h"
#include "db_alerts.h"
#include "db_auth.h"
#include "log.h"
#include "notify.h"

static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	int		 stop, running;
	atomic_int	 poked;
	pthread_t	 t;
	struct bastion	*app;
	json_t		*nodes;		/* last pass, every node; under mu */
	json_t		*by_mac;	/* mac -> {level, reasons}; under mu */
} E = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0,
    NULL, NULL, NULL };

/* One reason of one node in this pass. */
struct cur {
	char	agent_id[40];
	char	node[256];
	char	reason[ATT_REASON_LEN];
	char	subject[ATT_SUBJECT_LEN];
	int	level;
	char	message[ATT_MESSAGE_LEN];
	int	seen;
};

struct pass {
	struct att_thresholds	 t;
	int64_t			 now;
	json_t			*nodes, *by_mac;
	struct cur		*cur;
	size_t			 ncur, cap;
};

static int
key_cmp(const char *a1, const char *r1, const char *s1, const char *a2,
    const char *r2, const char *s2)
{
	int c;

	if ((c = strcmp(a1, a2)) != 0 || (c = strcmp(r1, r2)) != 0)
		return c;
	return strcmp(s1, s2);
}

static int
cur_cmp(const void *x, const void *y)
{
	const struct cur *a = x, *b = y;

	return key_cmp(a->agent_id, a->reason, a->subject, b->agent_id,
	    b->reason, b->subject);
}

static void
on_node(const struct db_health_row *row, void *arg)
{
	struct pass *p = arg;
	struct att_input in;
	struct att_result res;
	struct cur *c, *tmp;
	json_t *hb, *o;
	const char *node = row->hostname[0] ? row->hostname : row->agent_id;
	int i;

	hb = json_loads(row->heartbeat, 0, NULL);
	in.now_ms = p->now;
	in.last_seen_ms = row->last_seen_ms;
	in.inventory_ms = row->inventory_ms;
	in.cert_not_after_ms = row->cert_not_after_ms;
	in.heartbeat = hb;
	in.version = BASTION_VERSION;
	attention_compute(&in, &p->t, &res);
	json_decref(hb);
	o = attention_json(&res);
	if (o && row->mac[0])
		json_object_set(p->by_mac, row->mac, o);
	if (o) {
		json_object_set_new(o, "agent_id", json_string(row->agent_id));
		json_object_set_new(o, "mac", json_string(row->mac));
		json_object_set_new(o, "hostname", json_string(row->hostname));
		json_object_set_new(o, "node", json_string(node));
		json_object_set_new(o, "heartbeat_at",
		    db_time_json(row->last_seen_ms));
		json_array_append_new(p->nodes, o);
	}
	for (i = 0; i < res.nreasons; i++) {
		if (p->ncur == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 256;
			if ((tmp = reallocarray(p->cur, p->cap, sizeof *tmp)) ==
			    NULL) {
				p->cap = p->ncur;
				return;
			}
			p->cur = tmp;
		}
		c = &p->cur[p->ncur++];
		snprintf(c->agent_id, sizeof c->agent_id, "%s", row->agent_id);
		snprintf(c->node, sizeof c->node, "%s", node);
		memcpy(c->reason, res.r[i].reason, sizeof c->reason);
		memcpy(c->subject, res.r[i].subject, sizeof c->subject);
		memcpy(c->message, res.r[i].message, sizeof c->message);
		c->level = res.r[i].level;
		c->seen = 0;
	}
}

static int
level_of(const char *s)
{
	return strcmp(s, "critical") == 0 ? ATT_CRITICAL : ATT_WARNING;
}

static int
silenced(const json_t *silences, const char *agent_id, const char *reason,
    int64_t now)
{
	const json_t *s;
	const char *r;
	size_t i;

	json_array_foreach(silences, i, s) {
		r = json_string_value(json_object_get(s, "reason"));
		if (strcmp(json_string_value(json_object_get(s, "agent_id")),
		    agent_id) == 0 && r && (strcmp(r, "*") == 0 ||
		    strcmp(r, reason) == 0))
			return 1;
	}
	return 0;
}

static void
audit_alert(struct audit_entry *e, const char *action, const char *node,
    const char *reason, const char *subject, const char *message)
{
	memset(e, 0, sizeof *e);
	AUDIT_SET(e, actor_type, "system");
	AUDIT_SET(e, actor, "alerts");
	AUDIT_SET(e, source, "local");
	AUDIT_SET(e, action, "%s", action);
	AUDIT_SET(e, target, "%s/%s%s%s", node, reason, subject[0] ? "/" : "",
	    subject);
	AUDIT_SET(e, result, "ok");
	AUDIT_SET(e, detail, "%s", message);
	e->wanted = 1;
}

static void
send_notice(enum notice_kind kind, int64_t alert_id, const char *agent_id,
    const char *node, int level, const char *reason, const char *subject,
    const char *message)
{
	struct notice *n;

	if ((n = calloc(1, sizeof *n)) == NULL)
		return;
	n->kind = kind;
	n->alert_id = alert_id;
	n->level = level;
	snprintf(n->node, sizeof n->node, "%s", node);
	snprintf(n->agent_id, sizeof n->agent_id, "%s", agent_id);
	n->reasons = json_pack("[{s:s, s:s, s:s, s:s}]", "reason", reason,
	    "subject", subject, "level", attention_level_name(level),
	    "message", message);
	notify_post(n);
}

/* Open what appeared, resolve what went, repeat what is due. */
static void
reconcile(struct db *db, struct pass *p, int repeat_s)
{
	struct db_alert *open = NULL, a;
	struct audit_entry e;
	struct cur key, *c;
	json_t *silences = NULL;
	size_t n = 0, i;
	int quiet;

	if (db_alert_open_list(db, &open, &n) != DB_OK ||
	    db_silence_list(db, p->now, &silences) != DB_OK) {
		log_warnx("cannot read open alerts or silences");
		goto out;
	}
	if (p->ncur)
		qsort(p->cur, p->ncur, sizeof *p->cur, cur_cmp);
	for (i = 0; i < n; i++) {
		snprintf(key.agent_id, sizeof key.agent_id, "%s", open[i].agent_id);
		snprintf(key.reason, sizeof key.reason, "%s", open[i].reason);
		snprintf(key.subject, sizeof key.subject, "%s", open[i].subject);
		c = p->ncur ? bsearch(&key, p->cur, p->ncur, sizeof *p->cur,
		    cur_cmp) : NULL;
		quiet = silenced(silences, open[i].agent_id, open[i].reason,
		    p->now);
		if (c == NULL) {
			audit_alert(&e, "alert.resolve", open[i].node,
			    open[i].reason, open[i].subject, "resolved");
			if (db_alert_resolve(db, open[i].id, &e) != DB_OK)
				continue;
			log_info("alert %lld resolved: %s %s %s",
			    (long long)open[i].id, open[i].node, open[i].reason,
			    open[i].subject);
			if (!quiet && open[i].notified_ms)
				send_notice(NOTICE_RESOLVED, open[i].id,
				    open[i].agent_id, open[i].node,
				    level_of(open[i].level), open[i].reason,
				    open[i].subject, "resolved");
			continue;
		}
		c->seen = 1;
		if (level_of(open[i].level) != c->level)
			db_alert_update(db, open[i].id,
			    attention_level_name(c->level), c->message);
		/* Dedup: an open alert is sent once, then again only after
		 * repeat_interval, or when it gets worse, or when its silence
		 * ran out before it was ever sent. */
		if (!quiet && (open[i].notified_ms == 0 ||
		    c->level > level_of(open[i].level) || (repeat_s > 0 &&
		    p->now - open[i].notified_ms >= (int64_t)repeat_s * 1000))) {
			send_notice(NOTICE_FIRING, open[i].id, c->agent_id, c->node,
			    c->level, c->reason, c->subject, c->message);
			db_alert_notified(db, open[i].id, p->now);
		}
	}
	for (i = 0; i < p->ncur; i++) {
		c = &p->cur[i];
		if (c->seen)
			continue;
		memset(&a, 0, sizeof a);
		snprintf(a.agent_id, sizeof a.agent_id, "%s", c->agent_id);
		snprintf(a.node, sizeof a.node, "%s", c->node);
		snprintf(a.reason, sizeof a.reason, "%s", c->reason);
		snprintf(a.subject, sizeof a.subject, "%s", c->subject);
		snprintf(a.level, sizeof a.level, "%s",
		    attention_level_name(c->level));
		a.opened_ms = p->now;
		audit_alert(&e, "alert.open", c->node, c->reason, c->subject,
		    c->message);
		if (db_alert_open(db, &a, c->message, &e) != DB_OK)
			continue;
		log_info("alert %lld opened: %s %s %s (%s)", (long long)a.id,
		    c->node, c->reason, c->subject, c->message);
		if (!silenced(silences, c->agent_id, c->reason, p->now)) {
			send_notice(NOTICE_FIRING, a.id, c->agent_id, c->node,
			    c->level, c->reason, c->subject, c->message);
			db_alert_notified(db, a.id, p->now);
		}
	}
out:
	free(open);
	json_decref(silences);
}

static void
run_pass(void)
{
	const struct config *c;
	struct pass p;
	int repeat_s;

	memset(&p, 0, sizeof p);
	c = bastion_config_acquire(E.app);
	attention_thresholds(c, &p.t);
	repeat_s = c->alerts_repeat_interval;
	bastion_config_release(E.app);
	p.now = clock_wall_ms();
	p.nodes = json_array();
	p.by_mac = json_object();
	if (p.nodes == NULL || p.by_mac == NULL ||
	    db_health_each(E.app->db, on_node, &p) != DB_OK) {
		json_decref(p.nodes);
		json_decref(p.by_mac);
		free(p.cur);
		return;
	}
	reconcile(E.app->db, &p, repeat_s);
	free(p.cur);
	pthread_mutex_lock(&E.mu);
	json_decref(E.nodes);
	json_decref(E.by_mac);
	E.nodes = p.nodes;
	E.by_mac = p.by_mac;
	pthread_mutex_unlock(&E.mu);
}

static void *
alerts_thread(void *arg)
{
	struct timespec ts;
	int64_t next = 0, now, last = 0, gap = 1000;
	int interval;

	for (;;) {
		pthread_mutex_lock(&E.mu);
		if (E.stop) {
			pthread_mutex_unlock(&E.mu);
			break;
		}
		now = clock_mono_ms();
		/* Heartbeats pile up: for them, a pass a second at most, and
		 * never more than a fifth of the time (a pass over 20,000
		 * nodes takes about half a second: docs/benchmarks.md). */
		if (!(atomic_load(&E.poked) && now - last >= gap) &&
		    now < next) {
			int64_t until = next;

			if (atomic_load(&E.poked) && last + gap < until)
				until = last + gap;
			ts = clock_wall_after(until - now);
			pthread_cond_timedwait(&E.cv, &E.mu, &ts);
			pthread_mutex_unlock(&E.mu);
			continue;
		}
		pthread_mutex_unlock(&E.mu);
		atomic_store(&E.poked, 0);
		now = clock_mono_ms();
		run_pass();
		last = clock_mono_ms();
		gap = 4 * (last - now) > 1000 ? 4 * (last - now) : 1000;
		interval = bastion_config_acquire(E.app)->alerts_recompute_interval;
		bastion_config_release(E.app);
		next = last + (int64_t)interval * 1000;
	}
	return NULL;
}

void
alerts_poke(void)
{
	if (!atomic_exchange(&E.poked, 1)) {
		pthread_mutex_lock(&E.mu);
		pthread_cond_broadcast(&E.cv);
		pthread_mutex_unlock(&E.mu);
	}
}

json_t *
alerts_attention(int all)
{
	json_t *out = json_array(), *n;
	const char *lvl;
	size_t i;

	pthread_mutex_lock(&E.mu);
	json_array_foreach(E.nodes, i, n) {
		lvl = json_string_value(json_object_get(n, "level"));
		if (all || (lvl && strcmp(lvl, "ok") != 0))
			json_array_append(out, n);
	}
	pthread_mutex_unlock(&E.mu);
	return out;
}

void
alerts_annotate_machines(json_t *machines)
{
	json_t *m, *a;
	size_t i;

	pthread_mutex_lock(&E.mu);
	json_array_foreach(machines, i, m) {
		a = json_object_get(E.by_mac, json_string_value(json_object_get(m,
		    "mac")) ? json_string_value(json_object_get(m, "mac")) : "");
		if (a)
			json_object_set(m, "attention", a);
	}
	pthread_mutex_unlock(&E.mu);
}

int
alerts_start(struct bastion *app)
{
	E.app = app;
	E.stop = 0;
	if (notify_start(app) == -1)
		log_warnx("notifications are off");
	if (pthread_create(&E.t, NULL, alerts_thread, NULL) != 0) {
		log_warnx("cannot start the attention thread");
		notify_stop();
		return -1;
	}
	pthread_mutex_lock(&E.mu);
	E.running = 1;
	pthread_mutex_unlock(&E.mu);
	return 0;
}

void
alerts_stop(void)
{
	pthread_mutex_lock(&E.mu);
	if (!E.running) {
		pthread_mutex_unlock(&E.mu);
		return;
	}
	E.stop = 1;
	E.running = 0;
	pthread_cond_broadcast(&E.cv);
	pthread_mutex_unlock(&E.mu);
	pthread_join(E.t, NULL);
	notify_stop();
	pthread_mutex_lock(&E.mu);
	json_decref(E.nodes);
	json_decref(E.by_mac);
	E.nodes = E.by_mac = NULL;
	pthread_mutex_unlock(&E.mu);
}
