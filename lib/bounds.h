/* bounds.h — bounds that bastion enforces and bastionctl checks before it
 * asks, kept in one place so the two cannot drift. */
#ifndef BASTION_BOUNDS_H
#define BASTION_BOUNDS_H

/* A job's command: argv entries, bytes per argument (and per env value),
 * env variables. */
#define JOB_MAX_ARGV		256
#define JOB_MAX_ARG		4096
#define JOB_MAX_ENV		128

/* A job's timeout, and the shortest time it may wait for its agent (the
 * longest is ENVELOPE_MAX_TTL, which bounds the agent's nonce memory). */
#define JOB_MAX_TIMEOUT		(7L * 86400)
#define JOB_MIN_TTL		10

/* Join tokens. */
#define TOKEN_DEFAULT_TTL	3600
#define TOKEN_MIN_TTL		60
#define TOKEN_MAX_TTL		(30L * 86400)
#define TOKEN_MAX_USES		10000

/* API tokens' mandatory expiry. */
#define APITOKEN_MAX_EXPIRY	(366LL * 86400)

#endif
