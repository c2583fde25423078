/* notify.h — deliveries to the [channel NAME]s (notify.c): a queue and
 * one delivery thread in the HTTP worker, so that neither a request nor
 * the attention pass ever waits on a mail server or a webhook. Retries
 * with backoff, a rate limit per channel, and a row per delivery
 * (db_alerts.h). Outbound connections are checked on the address they
 * are about to use (after name resolution): link-local and cloud
 * metadata addresses are refused unless the channel says
 * allow_link_local = yes. */
#ifndef BASTION_NOTIFY_H
#define BASTION_NOTIFY_H

#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>

struct bastion;

enum notice_kind { NOTICE_FIRING, NOTICE_RESOLVED, NOTICE_TEST };

struct notice {
	enum notice_kind kind;
	char		 channel[32];	/* test: the one channel; else "" */
	int64_t		 alert_id;
	char		 node[256];
	char		 agent_id[40];
	int		 level;		/* 1 warning, 2 critical */
	json_t		*reasons;	/* [{reason, subject, level, message}] */
	struct notice	*next;
};

int	notify_start(struct bastion *);
void	notify_stop(void);
/* Queue n (ownership moves; freed even when the queue is full, which is
 * logged and recorded as a failed delivery). Never blocks on I/O. */
void	notify_post(struct notice *n);
/* 1 when a connection to sa may be made without allow_link_local. */
int	notify_addr_allowed(const struct sockaddr *sa);
/* The webhook body of n (what docs/api.md documents). */
json_t	*notify_webhook_body(const struct notice *n);

#endif
