/* cluster.h — this bastion among those that share its database (DESIGN
 * §16; cluster.c). */
#ifndef BASTION_CLUSTER_H
#define BASTION_CLUSTER_H

#include "config.h"

#define CLUSTER_SEEN_S	10	/* how often a bastion says it is up */

struct bastion;

/* On PostgreSQL, check this bastion's CA and job key against the
 * database's (the first bastion records its own): -1, logged with what
 * to do, when they differ. Then say every CLUSTER_SEEN_S that this
 * bastion is up (on SQLite too: the one bastion). */
int	cluster_start(struct bastion *);
void	cluster_stop(void);
/* This bastion's control URL as agents and the other bastions reach it
 * (config_node_url, as its bastions row says), for the agents of jobs
 * whose stream lives here; "" before cluster_start. */
void	cluster_url(char out[CONFIG_URL_LEN]);

#endif
