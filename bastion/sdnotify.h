/* sdnotify.h — telling systemd that bastion is ready (Type=notify in
 * bastion.service): the "READY=1" datagram of sd_notify(3), without
 * libsystemd. */
#ifndef BASTION_SDNOTIFY_H
#define BASTION_SDNOTIFY_H

/* Send STATE ("READY=1", "STOPPING=1") to $NOTIFY_SOCKET, if set (a path
 * or an abstract "@name"). 0 when sent or when there is no socket; -1
 * (logged) when it could not be sent. */
int	sdnotify_send(const char *state);

#endif
