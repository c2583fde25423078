/* stream.c — byte streams relayed between an operator's client and a
 * node's agent (stream.h): one list of streams under one lock, each with
 * a buffer per direction and at most one parked request per side; a
 * timer thread answers parked requests at their deadline and ends
 * streams nobody has used for STREAM_IDLE_MS. */
#define LOG_SUBSYS "stream"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "http.h"
#include "log.h"
#include "secret.h"
#include "stream.h"

struct waiter {
	struct http_waiting	*h;
	char			 id[STREAM_ID_LEN];
	char			 who[80];	/* as it was checked then */
	enum stream_side	 side;
	int64_t			 deadline_ms;
	int			 listed;
	struct waiter		*prev, *next;
};

struct stream {
	char		 id[STREAM_ID_LEN];
	char		 agent_id[64];
	char		 owner[80];
	struct buf	 to_node, to_client;
	int		 rows, cols, resized;
	int		 attached, ended, closed, has_exit, exit_code;
	char		 why[STREAM_WHY_MAX];	/* stream_fail's */
	int64_t		 used_ms[2];	/* last request of each side */
	struct waiter	*w[2];		/* parked, per side */
	stream_over_fn	 over;		/* told once when it is over */
	void		*over_arg;
	struct stream	*next;
};

/* Callbacks to run once the lock is released. */
struct overs {
	stream_over_fn	 fn[STREAM_MAX];
	void		*arg[STREAM_MAX];
	const char	*why[STREAM_MAX];
	int		 n;
};

static struct {
	pthread_mutex_t	 mu;
	struct stream	*head;
	size_t		 n;
	struct waiter	*waiters;	/* every parked request */
	pthread_once_t	 once;
	int		 stopping;
	size_t		 alive;		/* parked or resumed, not yet freed */
} S = { PTHREAD_MUTEX_INITIALIZER, NULL, 0, NULL, PTHREAD_ONCE_INIT, 0, 0 };

/* --- parked requests (caller holds S.mu) -------------------------------- */

static void
waiter_unlink(struct waiter *w)
{
	if (!w->listed)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		S.waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->listed = 0;
}

static void
wake(struct stream *s, enum stream_side side)
{
	struct waiter *w = s->w[side];

	if (w == NULL)
		return;
	s->w[side] = NULL;
	waiter_unlink(w);
	http_resume(w->h);
}

static struct stream *
find(const char *id)
{
	struct stream *s;

	for (s = S.head; s; s = s->next)
		if (strlen(id) == STREAM_ID_LEN - 1 && secret_equal(s->id, id))
			return s;
	return NULL;
}

/* The stream id names, if who may use it from side. */
static struct stream *
find_for(const char *id, enum stream_side side, const char *who)
{
	struct stream *s = find(id);

	if (s == NULL || strcmp(side == STREAM_NODE ? s->agent_id : s->owner,
	    who) != 0)
		return NULL;
	s->used_ms[side] = clock_mono_ms();
	return s;
}

/* s is over: its callback (if any, once) into o. */
static void
over(struct stream *s, struct overs *o, const char *why)
{
	if (s->over == NULL || o->n >= STREAM_MAX)
		return;
	o->fn[o->n] = s->over;
	o->arg[o->n] = s->over_arg;
	o->why[o->n] = why;
	o->n++;
	s->over = NULL;
	s->over_arg = NULL;
}

/* Outside the lock. */
static void
overs_run(struct overs *o)
{
	int i;

	for (i = 0; i < o->n; i++)
		o->fn[i](o->arg[i], o->why[i]);
	o->n = 0;
}

static void
stream_free(struct stream *s, struct overs *o, const char *why)
{
	struct stream **pp;

	for (pp = &S.head; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	over(s, o, why);
	wake(s, STREAM_NODE);
	wake(s, STREAM_CLIENT);
	buf_free(&s->to_node);
	buf_free(&s->to_client);
	S.n--;
	free(s);
}

static void *
timer(void *arg)
{
	struct timespec ts = { 0, 200 * 1000000 };
	struct waiter *w, *wn;
	struct stream *s, *sn;
	struct overs o;
	int64_t now;

	o.n = 0;
	for (;;) {
		nanosleep(&ts, NULL);
		now = clock_mono_ms();
		pthread_mutex_lock(&S.mu);
		for (w = S.waiters; w; w = wn) {
			wn = w->next;
			if (w->deadline_ms > now)
				continue;
			if ((s = find(w->id)) != NULL && s->w[w->side] == w)
				s->w[w->side] = NULL;
			waiter_unlink(w);
			http_resume(w->h);
		}
		for (s = S.head; s; s = sn) {
			sn = s->next;
			/* Idle: neither side asked for a while, or the node
			 * never came, or both are done and gone. */
			if (now - s->used_ms[STREAM_NODE] > STREAM_IDLE_MS ||
			    now - s->used_ms[STREAM_CLIENT] > STREAM_IDLE_MS) {
				log_info("stream %.8s… of agent %s: idle, ended",
				    s->id, s->agent_id);
				stream_free(s, &o, "idle");
			}
		}
		pthread_mutex_unlock(&S.mu);
		overs_run(&o);
	}
	return NULL;
}

static void
timer_start(void)
{
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 512 * 1024);	/* over callbacks write audit rows */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&t, &attr, timer, NULL) != 0)
		log_warnx("cannot start the stream timer");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
}

/* --- the API ------------------------------------------------------------ */

int
stream_create(const char *agent_id, const char *owner, int rows, int cols,
    char id[STREAM_ID_LEN])
{
	char hex[SECRET_HEXLEN];
	struct stream *s;
	int64_t now = clock_mono_ms();

	pthread_once(&S.once, timer_start);
	if (secret_random_hex(hex) == -1 || (s = calloc(1, sizeof *s)) == NULL)
		return -1;
	snprintf(s->id, sizeof s->id, "%.32s", hex);
	snprintf(s->agent_id, sizeof s->agent_id, "%s", agent_id);
	snprintf(s->owner, sizeof s->owner, "%s", owner);
	buf_init(&s->to_node, STREAM_BUF_MAX);
	buf_init(&s->to_client, STREAM_BUF_MAX);
	s->rows = rows;
	s->cols = cols;
	s->resized = rows > 0 && cols > 0;
	s->used_ms[0] = s->used_ms[1] = now;
	pthread_mutex_lock(&S.mu);
	if (S.n >= STREAM_MAX || S.stopping) {
		pthread_mutex_unlock(&S.mu);
		free(s);
		return -1;
	}
	s->next = S.head;
	S.head = s;
	S.n++;
	memcpy(id, s->id, STREAM_ID_LEN);
	pthread_mutex_unlock(&S.mu);
	return 0;
}

int
stream_write(const char *id, enum stream_side side, const char *who,
    const void *p, size_t n)
{
	struct stream *s;
	struct buf *b;
	int rc = -1;

	pthread_mutex_lock(&S.mu);
	if ((s = find_for(id, side, who)) == NULL)
		goto out;
	if (side == STREAM_NODE)
		s->attached = 1;
	b = side == STREAM_NODE ? &s->to_client : &s->to_node;
	if (b->len + n > b->max) {
		rc = -2;
		goto out;
	}
	if (n > 0 && buf_add(b, p, n) == -1) {
		rc = -2;
		goto out;
	}
	wake(s, side == STREAM_NODE ? STREAM_CLIENT : STREAM_NODE);
	rc = 0;
out:
	pthread_mutex_unlock(&S.mu);
	return rc;
}

int
stream_resize(const char *id, const char *who, int rows, int cols)
{
	struct stream *s;
	int rc = -1;

	pthread_mutex_lock(&S.mu);
	if ((s = find_for(id, STREAM_CLIENT, who)) != NULL) {
		s->rows = rows;
		s->cols = cols;
		s->resized = 1;
		wake(s, STREAM_NODE);
		rc = 0;
	}
	pthread_mutex_unlock(&S.mu);
	return rc;
}

int
stream_end(const char *id, enum stream_side side, const char *who,
    int has_exit, int exit_code)
{
	struct stream *s;
	struct overs o;
	int rc = -1;

	o.n = 0;
	pthread_mutex_lock(&S.mu);
	if ((s = find_for(id, side, who)) != NULL) {
		over(s, &o, side == STREAM_NODE ? "node" : "client");
		if (side == STREAM_NODE) {
			s->ended = 1;
			s->attached = 1;
			s->has_exit = has_exit;
			s->exit_code = exit_code;
		} else {
			s->closed = 1;
		}
		/* Both sides: the node's own input poll ends too. */
		wake(s, STREAM_CLIENT);
		wake(s, STREAM_NODE);
		rc = 0;
	}
	pthread_mutex_unlock(&S.mu);
	overs_run(&o);
	return rc;
}

int
stream_on_over(const char *id, stream_over_fn fn, void *arg)
{
	struct stream *s;
	int rc = -1;

	pthread_mutex_lock(&S.mu);
	if ((s = find(id)) != NULL && !s->ended && !s->closed) {
		s->over = fn;
		s->over_arg = arg;
		rc = 0;
	}
	pthread_mutex_unlock(&S.mu);
	return rc;
}

int
stream_fail(const char *id, const char *agent_id, const char *why)
{
	char line[STREAM_WHY_MAX + 32];
	struct stream *s;
	struct overs o;
	int rc = -1, n;

	o.n = 0;
	pthread_mutex_lock(&S.mu);
	s = find(id);
	if (s != NULL && strcmp(s->agent_id, agent_id) == 0 && !s->attached &&
	    !s->ended) {
		over(s, &o, "unreached");
		snprintf(s->why, sizeof s->why, "%s", why);
		s->ended = 1;
		/* What the operator's terminal shows. */
		n = snprintf(line, sizeof line, "bastion: %s\r\n", s->why);
		if (n > 0 && (size_t)n >= sizeof line)
			n = (int)sizeof line - 1;
		if (n > 0 && s->to_client.len + (size_t)n <= s->to_client.max &&
		    buf_add(&s->to_client, line, (size_t)n) == -1)
			log_debug("stream %.8s…: no room for why", s->id);
		wake(s, STREAM_CLIENT);
		wake(s, STREAM_NODE);
		rc = 0;
	}
	pthread_mutex_unlock(&S.mu);
	overs_run(&o);
	return rc;
}

int
stream_kill(const char *id)
{
	struct stream *s;
	struct overs o;
	int rc = -1;

	o.n = 0;
	pthread_mutex_lock(&S.mu);
	if ((s = find(id)) != NULL) {
		stream_free(s, &o, "killed");
		rc = 0;
	}
	pthread_mutex_unlock(&S.mu);
	overs_run(&o);
	return rc;
}

int
stream_take(const char *id, enum stream_side side, const char *who,
    struct buf *out, struct stream_state *st)
{
	struct stream *s;
	struct overs o;
	struct buf *b;
	size_t n;

	o.n = 0;
	pthread_mutex_lock(&S.mu);
	if ((s = find_for(id, side, who)) == NULL) {
		pthread_mutex_unlock(&S.mu);
		return -1;
	}
	if (side == STREAM_NODE)
		s->attached = 1;
	b = side == STREAM_NODE ? &s->to_node : &s->to_client;
	n = out == NULL ? 0 : b->len < out->max - out->len ? b->len :
	    out->max - out->len;
	if (n > 0 && buf_add(out, b->data, n) == 0) {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	memset(st, 0, sizeof *st);
	st->ended = s->ended;
	st->closed = s->closed;
	st->has_exit = s->has_exit;
	st->exit_code = s->exit_code;
	st->attached = s->attached;
	memcpy(st->why, s->why, sizeof st->why);
	if (out == NULL) {	/* a look only */
		pthread_mutex_unlock(&S.mu);
		return 0;
	}
	if (side == STREAM_NODE && s->resized) {
		st->rows = s->rows;
		st->cols = s->cols;
		s->resized = 0;
	}
	/* Both sides know it is over and nothing is left: gone. */
	if (side == STREAM_CLIENT && s->ended && s->to_client.len == 0)
		stream_free(s, &o, "node");
	else if (side == STREAM_NODE && s->closed && s->ended)
		stream_free(s, &o, "client");
	pthread_mutex_unlock(&S.mu);
	overs_run(&o);
	return 0;
}

static void
waiter_free(struct request *r)
{
	struct waiter *w = r->poll;
	struct stream *s;

	if (w == NULL)
		return;
	pthread_mutex_lock(&S.mu);
	if ((s = find(w->id)) != NULL && s->w[w->side] == w)
		s->w[w->side] = NULL;
	waiter_unlink(w);
	S.alive--;
	pthread_mutex_unlock(&S.mu);
	free(w);
	r->poll = NULL;
	r->on_free = NULL;
}

const char *
stream_resumed(const struct request *r)
{
	if (r->poll == NULL || r->on_free != waiter_free)
		return NULL;
	return ((const struct waiter *)r->poll)->who;
}

int
stream_park(struct request *r, const char *id, enum stream_side side,
    const char *who, int wait_s)
{
	struct stream *s;
	struct waiter *w;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return -1;
	pthread_mutex_lock(&S.mu);
	if ((s = find_for(id, side, who)) == NULL || S.stopping) {
		pthread_mutex_unlock(&S.mu);
		free(w);
		return -1;
	}
	/* One parked request per side: an older one answers now. */
	wake(s, side);
	memcpy(w->id, s->id, STREAM_ID_LEN);
	snprintf(w->who, sizeof w->who, "%s", who);
	w->side = side;
	w->deadline_ms = clock_mono_ms() + (int64_t)(wait_s < 1 ? 1 : wait_s >
	    STREAM_WAIT_MAX ? STREAM_WAIT_MAX : wait_s) * 1000;
	w->next = S.waiters;
	if (S.waiters)
		S.waiters->prev = w;
	S.waiters = w;
	w->listed = 1;
	s->w[side] = w;
	S.alive++;
	r->poll = w;
	r->on_free = waiter_free;
	w->h = http_suspend(r);
	pthread_mutex_unlock(&S.mu);
	return 0;
}

void
stream_stop_all(void)
{
	struct timespec ts = { 0, 10 * 1000000 };
	struct overs o;
	size_t alive;
	int i;

	o.n = 0;
	pthread_mutex_lock(&S.mu);
	S.stopping = 1;
	while (S.head)
		stream_free(S.head, &o, "stopping");
	pthread_mutex_unlock(&S.mu);
	overs_run(&o);
	/* The listeners' threads answer the resumed requests and free
	 * them: libmicrohttpd does not stop with one suspended. */
	for (i = 0; i < 500; i++) {
		pthread_mutex_lock(&S.mu);
		alive = S.alive;
		pthread_mutex_unlock(&S.mu);
		if (alive == 0)
			break;
		nanosleep(&ts, NULL);
	}
}
