/* routes.h — helpers the routes_*.c handlers share. */
#ifndef BASTION_ROUTES_H
#define BASTION_ROUTES_H

#include "http.h"
#include "mac.h"

/* Normalise the request's first path parameter ({mac}) into out; replies
 * 400 "bad_mac" and returns -1 on garbage. */
int	route_mac_param(struct request *, char out[MAC_STRLEN]);

#endif
