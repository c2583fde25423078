/* msgio.h — length-checked messages between bastion's own processes (the
 * signer, the parent and the HTTP worker) on a stream socketpair: a
 * header (type, length) and a payload of at most max bytes, both read in
 * full and checked before use. A message may carry one descriptor
 * (SCM_RIGHTS), the way the parent hands a new signer to the worker. */
#ifndef BASTION_MSGIO_H
#define BASTION_MSGIO_H

#include <stddef.h>
#include <stdint.h>

/* Send type and len bytes of p (len <= max); pass_fd >= 0 travels with
 * it. 0 or -1 (errno set). */
int	msg_send(int fd, uint32_t type, const void *p, size_t len,
	    size_t max, int pass_fd);
/* Receive one message into a malloc'd, NUL-terminated buffer (*p, *len;
 * the caller frees it). A descriptor that came with it goes to *got_fd
 * (may be NULL: then it is closed), -1 if none. Returns 1, 0 on a clean
 * EOF before anything, -1 on an error, a short read or a length over
 * max. Out-parameters are written only on 1. */
int	msg_recv(int fd, uint32_t *type, char **p, size_t *len, size_t max,
	    int *got_fd);

#endif
