/* alerts.h — the attention pass and the alert life cycle (alerts.c).
 * A thread in the HTTP worker recomputes every node's attention when
 * heartbeats arrive (alerts_poke, at most once a second) and on a timer
 * ([alerts] recompute_interval, for heartbeat_stale); an alert opens when
 * a reason appears and resolves when it goes, both audited (alert.open,
 * alert.resolve) and sent to the channels (notify.h) unless silenced; an
 * alert still open is sent again after [alerts] repeat_interval. */
#ifndef BASTION_ALERTS_H
#define BASTION_ALERTS_H

#include <jansson.h>

struct bastion;

int	alerts_start(struct bastion *);
void	alerts_stop(void);
/* New data arrived (a heartbeat, an inventory): recompute soon. Cheap. */
void	alerts_poke(void);
/* The last pass: every node (all) or only those not ok, as a JSON array
 * of {agent_id, mac, hostname, node, level, reasons, heartbeat_at}. */
json_t	*alerts_attention(int all);
/* Add "attention": {level, reasons} to each machine whose agent is known
 * (GET /api/v1/machines). */
void	alerts_annotate_machines(json_t *machines);

#endif
