/* worker.h — the HTTP worker: every listener, the database and the
 * handlers, as an unprivileged user (privsep.h). */
#ifndef BASTION_WORKER_H
#define BASTION_WORKER_H

struct bastion;

/* Forked by the parent (privsep_fork): bind, drop privileges, open the
 * database, serve until SIGTERM or the parent is gone. The exit code. */
int	worker_main(struct bastion *);

#endif
