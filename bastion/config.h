/* config.h — bastion.conf: one typed table of options with validators. */
#ifndef BASTION_CONFIG_H
#define BASTION_CONFIG_H

#include <limits.h>
#include <net/if.h>
#include <stddef.h>

#include "buf.h"
#include "channels.h"
#include "roles.h"

#define CONFIG_DEFAULT_PATH	"/etc/bastion/bastion.conf"
#define CONFIG_MAX_NAMES	16
#define CONFIG_NAME_LEN		254
#define CONFIG_URL_LEN		512

enum dhcp_mode { DHCP_FULL, DHCP_PROXY, DHCP_OFF };
enum idle_action { IDLE_EXIT, IDLE_POWEROFF };

struct listen_addr {
	char	host[64];	/* numeric address as written */
	int	port;
};

struct config {
	char			 path[PATH_MAX];	/* file it came from */
	/* [bastion] */
	char			 state_dir[PATH_MAX];
	char			 share_dir[PATH_MAX];	/* built-in templates */
	char			 user[64];	/* the HTTP worker runs as */
	int			 debug;
	/* [database] */
	char			 database_url[1024];	/* "": SQLite in state_dir */
	/* [boot] */
	struct listen_addr	 boot_listen;
	char			 boot_url[CONFIG_URL_LEN]; /* what clients are told */
	char			 interface[IF_NAMESIZE];
	enum dhcp_mode		 dhcp_mode;
	char			 dhcp_range[128];
	char			 dnsmasq_path[PATH_MAX];
	char			 ipxe_dir[PATH_MAX];
	char			 discovery_dir[PATH_MAX];
	char			 installer_dir[PATH_MAX];	/* tools.img */
	enum idle_action	 idle_action;
	int			 ipv6_ra;
	/* [control] */
	struct listen_addr	 control_listen;
	char			 names[CONFIG_MAX_NAMES][CONFIG_NAME_LEN];
	int			 nnames;
	int			 boot_max_conns_per_addr; /* 0: no cap */
	int			 boot_request_rate;	/* per s and address; 0: off */
	int			 boot_request_burst;
	int			 control_max_conns;	/* 0: no cap */
	int			 control_max_conns_per_addr;
	/* [install] */
	char			 install_repo[CONFIG_URL_LEN];
	char			 install_os[32];
	/* OS names installed by kickstart from install_repo ("a, b"). */
	char			 install_kickstart_os[256];
	int			 install_max_boots;
	/* [auth] (seconds, KiB, counts) */
	int			 auth_session_idle;
	int			 auth_session_lifetime;
	int			 auth_argon2_time;
	int			 auth_argon2_memory;
	int			 auth_argon2_threads;
	int			 auth_login_max_failures;
	int			 auth_login_window;
	int			 auth_lockout;
	/* [agent] (seconds) */
	int			 agent_heartbeat_interval;
	/* [alerts] (percent, load per CPU, degrees Celsius, days, seconds) */
	int			 alerts_disk_warning;
	int			 alerts_disk_critical;
	int			 alerts_memory_warning;
	int			 alerts_memory_critical;
	int			 alerts_load_warning;
	int			 alerts_load_critical;
	int			 alerts_temperature_warning;
	int			 alerts_temperature_critical;
	int			 alerts_cert_days;
	int			 alerts_stale_after;	/* 0: 3 heartbeats */
	int			 alerts_repeat_interval;
	int			 alerts_recompute_interval;
	/* [channel NAME] sections */
	struct channel_set	 channels;
	/* [role NAME] sections, on top of the built-in roles */
	struct role_set		 roles;
};

/* Defaults, then the file. Every problem is appended to errors as
 * "file:line: message\n"; returns 0 when there were none. */
int	config_load(const char *path, struct config *out, struct buf *errors);
void	config_defaults(struct config *);
/* Wipes c (channel passwords, tokens and HMAC keys live in it) and
 * frees it; NULL is fine. */
void	config_free(struct config *c);
/* Parse text as if it were the file "name" (tests and fuzzing). */
int	config_load_string(const char *name, const char *text,
	    struct config *out, struct buf *errors);

/* "section.key" lookups for bastionctl config get|list. */
int	config_get(const struct config *, const char *key, struct buf *value);
/* Iterate the option table: returns the i-th "section.key" or NULL. */
const char *config_key_at(size_t i);
/* Validate value for key, then rewrite the file (temp + rename) keeping
 * comments and order. On error nothing changes and errors says why. */
int	config_set_in_file(const char *path, const char *key, const char *value,
	    struct buf *errors);

const char *config_dhcp_mode_name(enum dhcp_mode);
/* The control listener's URL as nodes (and the other bastions) reach it:
 * the first address among [control] names that is not loopback (nodes
 * may not resolve our names), else the first name, else the listen
 * address; with the listen port. */
void	config_node_url(const struct config *, char out[CONFIG_URL_LEN]);

#endif
