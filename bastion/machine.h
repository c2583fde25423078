/* machine.h — a machine and its lifecycle states: unknown → discovering →
 * discovered → queued → installing → installed → active, and failed. */
#ifndef BASTION_MACHINE_H
#define BASTION_MACHINE_H

#include <stdint.h>

#include "mac.h"

enum machine_state {
	MS_DISCOVERING,	/* booted the discovery image, no report yet */
	MS_DISCOVERED,	/* hardware reported, waiting for an operator */
	MS_QUEUED,	/* install queued, next boot starts the installer */
	MS_INSTALLING,	/* kickstart fetched */
	MS_INSTALLED,	/* installer said done */
	MS_ACTIVE,	/* agent enrolled */
	MS_FAILED,	/* install failed or looped */
	MS_NSTATES
};

struct machine {
	char			mac[MAC_STRLEN];
	enum machine_state	state;
	char			uuid[64];
	char			serial[128];
	char			arch[16];
	char			platform[16];
	char			ip[64];
	char			hostname[254];
	int64_t			created_ms;
	int64_t			updated_ms;
	int64_t			last_boot_ms;
	int			boots;		/* network boots, lifetime */
	int			boots_in_state;	/* ... in this state (the
						 * boot_count column) */
	char			discovery_addr[64];	/* sent the discovery
						 * image (binding.h) */
};

const char	*machine_state_name(enum machine_state);
/* -1 when unknown. */
int		 machine_state_from_name(const char *);

#endif
