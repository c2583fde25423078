/* privsep.h — privilege separation, as relayd and httpd do it: a small
 * privileged parent (root) owns the state dir's secrets, runs the signer
 * (the CA and job keys) and supervises dnsmasq; the process that parses
 * the network — the HTTP worker, with every listener, the database and
 * the handlers — runs as an unprivileged user ([bastion] user) and can
 * read neither key.
 *
 * The two talk over two stream socketpairs with msgio.c's length-checked
 * messages:
 *   events, parent → worker: a (re)started signer's socket, the reloaded
 *     configuration, "ready" once dnsmasq runs;
 *   requests, worker → parent, each answered before the next: dnsmasq's
 *     status, a config change to validate and write (the worker cannot
 *     write bastion.conf), a signer that stopped answering, the DHCP lead
 *     taken or lost (the worker holds the database, the parent dnsmasq).
 * The parent checks every request as untrusted input. */
#ifndef BASTION_PRIVSEP_H
#define BASTION_PRIVSEP_H

#include <sys/types.h>

#include <jansson.h>

#include "buf.h"

struct bastion;

/* uid and gid of user; -1 with a message in why if there is none. */
int	privsep_user(const char *user, uid_t *uid, gid_t *gid, char *why,
	    size_t whylen);

/* --- parent ---------------------------------------------------------- */

/* Fork the worker: it runs worker_main(app) and exits with its return
 * value. The parent keeps its ends of the channels (app->privsep). Call
 * with no thread running. 0 or -1. */
int	privsep_fork(struct bastion *, int (*worker_main)(struct bastion *));
/* The worker's pid (for SIGCHLD) and the request channel (for poll). */
pid_t	privsep_worker_pid(struct bastion *);
int	privsep_request_fd(struct bastion *);
/* The worker was reaped by the caller: never signal its pid again. */
void	privsep_forget_worker(struct bastion *);
/* Answer one request. The first one is the worker's "up" (privsep_up),
 * which tells the parent start-up went well. reload is how the parent applies a changed
 * bastion.conf. 0, or -1 when the worker is gone or broke the protocol. */
int	privsep_serve(struct bastion *, void (*reload)(struct bastion *));
/* Events to the worker. 0 or -1. The CA's public part goes first (the
 * worker was forked before any key was loaded), then the signer. */
int	privsep_send_ca(struct bastion *);
int	privsep_send_config(struct bastion *);
int	privsep_send_ready(struct bastion *);
/* The signer's hand-off (signer_give_away): its socket to the worker. */
int	privsep_send_signer(int fd, unsigned gen, void *app);
/* Stop the worker: SIGTERM, up to wait_ms for it to exit, then SIGKILL;
 * closes the channels. Returns its wait status (or -1). */
int	privsep_stop(struct bastion *, int wait_ms);

/* --- worker ---------------------------------------------------------- */

/* Become the worker's user for good (no groups, no capabilities, no way
 * back) and die with the parent. As non-root there is nothing to drop:
 * the whole daemon then runs as that user (logged). 0 or -1. */
int	privsep_drop(uid_t, gid_t);
/* Tell the parent the listeners are up; 0 once it answered. */
int	privsep_up(struct bastion *);
/* The event channel (for poll). */
int	privsep_event_fd(struct bastion *);
/* Handle one event. 0, or -1 when the parent is gone. */
int	privsep_event(struct bastion *);
/* dnsmasq's status from the parent (dnsmasq_status's shape); never NULL
 * short of memory: {"running": false, "last_error": …} when the parent
 * does not answer. */
json_t	*privsep_dnsmasq_status(struct bastion *);
/* config_set_in_file through the parent, which then reloads. 0, or -1
 * with the reasons in errors. */
int	privsep_config_set(struct bastion *, const char *key, const char *value,
	    struct buf *errors);
/* Several bastions on one database (DESIGN §16): this one leads DHCP on
 * its interface (lead 1: the parent runs dnsmasq) or no longer does (0:
 * the parent stops it before answering). 0, or -1 when the parent did
 * not do it. */
int	privsep_dhcp_lead(struct bastion *, int lead);
/* The signer (generation gen) stopped answering (signer_remote's
 * callback): the parent kills it and starts another. */
void	privsep_signer_down(unsigned gen, void *app);

#endif
