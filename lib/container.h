/* container.h — what bastion, bastionctl and agentd agree on about Docker
 * containers (DESIGN §12): the refs they accept, the actions of a
 * `container` job, and which environment values are secrets. */
#ifndef BASTION_CONTAINER_H
#define BASTION_CONTAINER_H

#include <stddef.h>

#include <jansson.h>

#define CONTAINER_REF_MAX	128	/* ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$ */
#define CONTAINER_MASK		"********"
#define CONTAINER_TAIL_MAX	1000000	/* logs --tail */
#define CONTAINER_STOP_MAX	3600	/* stop/restart --timeout, seconds */
#define CONTAINER_RUN_MAX	86400	/* logs --follow and exec, seconds */

/* start stop restart pause unpause kill remove logs inspect exec, NULL
 * at the end. */
extern const char *const container_actions[];

/* Whether s is a container ref: an id (or its prefix) or a name, as
 * ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$ says. */
int	container_ref_valid(const char *s);
int	container_action_known(const char *);
/* Whether an environment variable's name looks like it holds a secret
 * (PASS, SECRET, TOKEN, KEY, CREDENTIAL, PRIVATE, AUTH, CERT, SALT
 * anywhere in it, any case). */
int	container_env_secret(const char *name, size_t len);
/* Replace, in place, the value of every secret-looking "K=V" string of
 * the array env with CONTAINER_MASK. The number replaced. */
size_t	container_env_mask(json_t *env);

#endif
