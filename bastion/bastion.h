/* bastion.h — the daemon's shared context, handed to every handler. */
#ifndef BASTION_BASTION_H
#define BASTION_BASTION_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "config.h"

struct db;
struct ca;
struct dnsmasq;
struct http;
struct templates;
struct auth;
struct privsep;

struct metrics {
	atomic_ulong	requests[3][6];	/* [listener][status / 100] */
	atomic_ulong	dispatches;
	atomic_ulong	discover_reports;
	atomic_ulong	connections[3];	/* [listener] open now */
	atomic_ulong	refused[3];	/* [listener] over a connection cap */
	atomic_ulong	waiting;	/* suspended requests (long polls) */
};

struct bastion {
	/* The config in force. A reload swaps the pointer under cfg_lock;
	 * handlers hold the read lock while they use it. */
	pthread_rwlock_t	 cfg_lock;
	struct config		*cfg;
	struct db		*db;
	struct ca		*ca;
	struct dnsmasq		*dnsmasq;
	struct http		*http;
	struct templates	*templates;
	struct auth		*auth;		/* settings cache, throttling */
	struct privsep		*privsep;	/* parent <-> HTTP worker */
	struct metrics		 metrics;
	time_t			 started;
	atomic_int		 ready;		/* listeners up, dnsmasq running
						 * (or standing by) */
};

/* Borrow the config in force; give it back before the request ends. */
static inline const struct config *
bastion_config_acquire(struct bastion *app)
{
	pthread_rwlock_rdlock(&app->cfg_lock);
	return app->cfg;
}

static inline void
bastion_config_release(struct bastion *app)
{
	pthread_rwlock_unlock(&app->cfg_lock);
}

#endif
