/* stream.h — interactive byte streams between an operator and a node,
 * relayed by bastion (stream.c): a TTY in a container (`containers exec
 * -it`), later a guest's console. Nothing listens on the node: the agent
 * opens its side with requests of its own (long polls for input, posts of
 * output), as the operator's client does on the other side.
 *
 * A stream lives in memory only: made for one job, owned by whoever made
 * it (the same actor must use it), ended by either side or after
 * STREAM_IDLE_MS without a request from one of them. Each direction
 * buffers at most STREAM_BUF_MAX bytes (a writer past it gets -2: try
 * again). Thread-safe. */
#ifndef BASTION_STREAM_H
#define BASTION_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define STREAM_ID_LEN	33		/* 32 hex */
#define STREAM_MAX	64		/* open at once */
#define STREAM_BUF_MAX	(1024 * 1024)
#define STREAM_IDLE_MS	(120 * 1000)
#define STREAM_WAIT_MAX	30		/* seconds a long poll may hold */
#define STREAM_WHY_MAX	256

enum stream_side {
	STREAM_NODE,	/* the agent: reads input, writes output */
	STREAM_CLIENT,	/* the operator: reads output, writes input */
};

/* What a side learns besides the bytes. */
struct stream_state {
	int	ended;		/* the node side is over (exit_code may be set) */
	int	closed;		/* the client left */
	int	has_exit;
	int	exit_code;
	int	rows, cols;	/* a resize for the node, 0 if none */
	int	attached;	/* the node has come */
	char	why[STREAM_WHY_MAX];	/* ended without the node: why, or "" */
};

struct request;
struct http_waiting;

/* A new stream for agent_id, owned by owner, with the terminal's size.
 * 0, or -1 (too many open, out of memory). */
int	stream_create(const char *agent_id, const char *owner, int rows,
	    int cols, char id[STREAM_ID_LEN]);
/*
 * who: the agent id (STREAM_NODE) or the owner (STREAM_CLIENT). Returns
 * 0, -1 when there is no such stream for who (never telling which), -2
 * when the other side's buffer is full (nothing taken).
 */
int	stream_write(const char *id, enum stream_side, const char *who,
	    const void *p, size_t n);
int	stream_resize(const char *id, const char *who, int rows, int cols);
/* The node side ended (with its exit code, has_exit), or the client
 * left. Waiters on the other side wake up. */
int	stream_end(const char *id, enum stream_side, const char *who,
	    int has_exit, int exit_code);
/* What is there for side, moved into out (at most out's cap), and the
 * state (out NULL: the state only, nothing taken). 0 or -1 (no such
 * stream for who). */
int	stream_take(const char *id, enum stream_side, const char *who,
	    struct buf *out, struct stream_state *st);
/*
 * Nothing to take yet: park the request until something comes for side
 * or wait_s seconds pass (then the handler runs again with r->poll set;
 * stream_resumed() says so). 0 parked, -1 no such stream.
 */
int	stream_park(struct request *, const char *id, enum stream_side,
	    const char *who, int wait_s);
/* A parked stream request running again: who it was parked for (the
 * request's own credentials are not checked again on resume); else
 * NULL. */
const char *stream_resumed(const struct request *);
/*
 * Told once, when the stream is first over: why is "node" (the agent
 * ended it), "client" (the operator left), "killed" (stream_kill),
 * "unreached" (stream_fail), "idle" or "stopping". Runs on the thread
 * that ended it, without the streams' lock held (it may call stream_*
 * itself); arg is the callback's. 0, or
 * -1 when there is no such stream (or it is over already): nothing kept.
 */
typedef void (*stream_over_fn)(void *arg, const char *why);
int	stream_on_over(const char *id, stream_over_fn, void *arg);
/*
 * The node will not come: its agent could not reach this bastion (the
 * stream was made on another than the one it polls, DESIGN §16) or
 * refused the job. A stream of agent_id that its agent has not used yet
 * ends for the client with why (in its terminal and its next answer);
 * the over callback hears "unreached". 0, or -1 (no such stream of that
 * agent, or the node has used it: then it is the node's to end).
 */
int	stream_fail(const char *id, const char *agent_id, const char *why);
/* End a stream for both sides (a session taken over): the node's input
 * poll and the client's output poll answer now, the stream is gone.
 * 0, or -1 when there is no such stream. */
int	stream_kill(const char *id);
/* End every stream and answer every parked request (daemon stopping). */
void	stream_stop_all(void);

#endif
