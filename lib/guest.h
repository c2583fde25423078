/* guest.h — what bastion, bastionctl and agentd agree on about guests
 * on a node (DESIGN §13): libvirt VMs and LXC containers, the names they
 * accept, and the actions of a `guest` job. */
#ifndef BASTION_GUEST_H
#define BASTION_GUEST_H

#include <stddef.h>

#define GUEST_NAME_MAX		64	/* ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$ */
#define GUEST_SNAP_MAX		64	/* the same rule for snapshot names */
#define GUEST_TIMEOUT_MAX	3600	/* shutdown --timeout, seconds */
#define GUEST_GUARD_MAX		86400	/* a guarded change + health, seconds */
#define GUEST_ARGV_MAX		64	/* words of a guard's change or health */
#define GUEST_REPORT_MAX	1024	/* guests in one report */

enum guest_type {
	GUEST_VM,	/* libvirt, qemu:///system */
	GUEST_LXC,	/* liblxc */
};

/* start shutdown stop reboot suspend resume snapshot rollback
 * snapshot-delete guard console, NULL at the end. */
extern const char *const guest_actions[];

/* Whether s is a guest name: ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$. */
int		 guest_name_valid(const char *s);
/* Whether s is a snapshot name (the same rule). */
int		 guest_snap_valid(const char *s);
int		 guest_action_known(const char *);
/* Whether the action needs a snapshot name (snapshot rollback
 * snapshot-delete). */
int		 guest_action_wants_snap(const char *);
/* "vm" / "lxc" and back (parse: 0, or -1 for anything else). */
const char	*guest_type_name(enum guest_type);
int		 guest_type_parse(const char *, enum guest_type *);

#endif
