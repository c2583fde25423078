/* sigas.h — signalling a process that runs as another user without
 * CAP_KILL. bastion.service keeps CAP_SETUID (the HTTP worker and dnsmasq
 * drop to their users) but not CAP_KILL: the kernel lets a process signal
 * one whose real or saved uid is its own, so a signal for a child that
 * already dropped to uid goes through a short-lived child that becomes
 * uid first. */
#ifndef BASTION_SIGAS_H
#define BASTION_SIGAS_H

#include <sys/types.h>

/* kill(pid, sig); if that is refused (EPERM) and this process is root,
 * again as uid. 0, or -1 with errno (that of the last attempt). */
int	sigas_send(pid_t pid, int sig, uid_t uid);
/* The same for a process that may call nothing but system calls (a child
 * forked from a process with threads) and is about to exit: on EPERM it
 * becomes uid itself and signals pidfd. */
int	sigas_pidfd_self(int pidfd, int sig, uid_t uid);

#endif
