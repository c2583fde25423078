/* roles.h — machine roles: the LVM layout an install lays down. worker
 * and infra are built in; [role NAME] sections in bastion.conf add roles
 * or replace a built-in one:
 *	[role gpu]
 *	volume = /            20G   xfs  reformat
 *	volume = /var         20G   xfs  reformat
 *	volume = /var/lib/gpu grow  xfs  preserve
 */
#ifndef BASTION_ROLES_H
#define BASTION_ROLES_H

#include <jansson.h>

#define ROLES_MAX		16
#define ROLE_MAX_VOLUMES	16
#define ROLE_NAME_LEN		32

struct volume {
	char	name[40];	/* LV name derived from the mount: var_lib_x */
	char	mount[64];	/* "/", "/var/lib/x" or "swap" */
	long	size_mb;	/* minimum size when grow */
	int	grow;
	char	fstype[8];	/* xfs ext4 ext3 ext2 swap */
	int	preserve;	/* kept on reprovision */
};

struct role {
	char		name[ROLE_NAME_LEN];
	struct volume	volumes[ROLE_MAX_VOLUMES];
	int		nvolumes;
	int		builtin;
};

struct role_set {
	struct role	roles[ROLES_MAX];
	int		nroles;
};

/* worker and infra. */
void	roles_defaults(struct role_set *);
/* One "volume = ..." line of [role name]. first is set for the first line
 * of that section in the file (it replaces a built-in role's volumes).
 * 0, or -1 with *why. */
int	roles_add_volume(struct role_set *, const char *role, const char *value,
	    int first, const char **why);
/* After the whole file: every role has /, at most one grow volume, unique
 * mounts. 0, or -1 with the role name in *which and *why. */
int	roles_check(const struct role_set *, const char **which,
	    const char **why);
const struct role *roles_find(const struct role_set *, const char *name);
int	roles_valid_name(const char *name);
json_t	*roles_json(const struct role_set *);
json_t	*role_volumes_json(const struct role *);

#endif
