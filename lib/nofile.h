/* nofile.h — the open-file limit, for processes that hold a descriptor
 * per connection (bastion's control listener, the bench load
 * generators). */
#ifndef BASTION_NOFILE_H
#define BASTION_NOFILE_H

#include <sys/resource.h>

/* Raise the soft limit to the hard one. *now is the soft limit in force
 * afterwards (RLIM_INFINITY when it cannot be read). Returns 1 when it
 * was raised, 0 when it was at the hard limit already, -1 when it could
 * not be read or raised (errno set). */
int	nofile_raise(rlim_t *now);

#endif
