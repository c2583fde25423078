/* dnsmasq.h — dnsmasq as a supervised child: its config is rendered into
 * the state dir, checked with --test, and the process restarted with
 * backoff when it dies. SIGHUP does not make dnsmasq re-read its main
 * config, so a changed config is applied by a restart; reservations
 * (hosts.d) need neither.
 *
 * Threads: dnsmasq_start, _standby, _lead, _tick, _reload and _stop belong
 * to the main loop; dnsmasq_status and dnsmasq_reserve may be called from
 * any thread.
 * dnsmasq runs as nobody: the state dir must be searchable by others
 * (mode 0711 or 0755), or dnsmasq_start fails and says so. */
#ifndef BASTION_DNSMASQ_H
#define BASTION_DNSMASQ_H

#include <sys/types.h>

#include <jansson.h>

#include "buf.h"
#include "config.h"

struct bastion;
struct dnsmasq;

/* Paths dnsmasq is pointed at, all inside the state dir. */
struct dnsmasq_paths {
	char	conf[PATH_MAX];		/* STATE/dnsmasq/dnsmasq.conf */
	char	hostsdir[PATH_MAX];	/* STATE/dnsmasq/hosts.d (per-MAC) */
	char	leasefile[PATH_MAX];	/* STATE/dnsmasq/leases */
	char	hook[PATH_MAX];		/* STATE/dnsmasq/lease-hook */
	char	tftp_root[PATH_MAX];	/* STATE/tftp (copies of iPXE) */
	char	pidfile[PATH_MAX];
};

void	dnsmasq_paths(const struct config *, struct dnsmasq_paths *out);

/* Render dnsmasq.conf for cfg into out (pure: no I/O; the reason for a -1
 * is logged). In proxy mode it serves the network of the first address of
 * cfg->dhcp_range; dnsmasq_start/reload use the interface's own IPv4
 * networks instead when it has any. */
int	dnsmasq_render(const struct config *, const struct dnsmasq_paths *,
	    struct buf *out);
/* The lease hook script (pure): runs `bastionctl --socket SOCK lease-hook
 * add|old|del MAC IP [HOSTNAME]` and exits 0 for every other dnsmasq
 * action (tftp, init, arp-*, ...). bastionctl and admin_sock must be
 * absolute paths without a single quote or control character. */
int	dnsmasq_render_hook(const struct dnsmasq_paths *, const char *bastionctl,
	    const char *admin_sock, struct buf *out);

/* Whether dnsmasq (as nobody) will reach STATE/tftp: every directory
 * above it that exists must be searchable by others. 0, or -1 with a
 * one-line reason and remedy in why. Checked by bastion -n, at start-up
 * and again by dnsmasq_start. */
int	dnsmasq_check_state_dir(const struct config *, char *why,
	    size_t whylen);

/* Start supervising: write the files, --test them, spawn dnsmasq. -1 (and
 * nothing running) if the config is rejected or cannot be written. A
 * dnsmasq left running by an earlier bastion (found by its pid file and
 * its --conf-file argument) is stopped first. Each dnsmasq it runs ends
 * with this process, even when that is killed with SIGKILL (dnsmasq runs
 * as nobody, beyond a parent-death signal: a watcher process ends it). */
int	dnsmasq_start(struct bastion *);
/* Several bastions on one database (DESIGN §16): only the one that leads
 * DHCP on the interface runs dnsmasq. dnsmasq_standby is dnsmasq_start
 * without running it: the files are written and the config --tested (-1
 * as dnsmasq_start), and reloads keep them so. dnsmasq_lead(1) runs it
 * now (then supervised as always); dnsmasq_lead(0) stops it (SIGTERM,
 * then SIGKILL) and nothing restarts it. -1 if neither start ran. */
int	dnsmasq_standby(struct bastion *);
int	dnsmasq_lead(struct bastion *, int lead);
/* From the main loop, often (e.g. every 100 ms) and after SIGCHLD: reaps
 * the child and restarts it when due (backoff 0.2 s doubling to 30 s,
 * reset after 60 s of uptime; back within 2 s the first time). */
void	dnsmasq_tick(struct bastion *);
/* The config changed: re-render; unchanged → nothing. Otherwise --test
 * it: rejected → the old file and process stay, last_error says why, -1;
 * accepted → it replaces dnsmasq.conf and dnsmasq is restarted (SIGHUP
 * would not re-read it). Starts supervising if dnsmasq_start never ran. */
int	dnsmasq_reload(struct bastion *);
/* Write STATE/dnsmasq/hosts.d/<aa-bb-cc-dd-ee-ff> ("MAC,IP[,HOSTNAME]")
 * so the MAC keeps its address: dnsmasq picks up a new file by itself and
 * gets a SIGHUP when an existing one changes. Works whether or not dnsmasq
 * runs. -1 (logged) for a bad MAC, IPv4 address or hostname (RFC 1123
 * label), or an address already reserved for another MAC. */
int	dnsmasq_reserve(struct bastion *, const char *mac, const char *ip,
	    const char *hostname);
/* SIGTERM, up to 2 s, then SIGKILL; frees the supervisor (status then
 * reports "not started"). Only the pid it started is signalled. */
void	dnsmasq_stop(struct bastion *);
/* {running, pid, restarts, mode, last_error, uptime_s, standby} for
 * status/doctor; never NULL short of memory. restarts counts restarts
 * after a death (a reload's restart is not one); last_error is null while
 * all is well; standby is true while another bastion leads DHCP. */
json_t	*dnsmasq_status(struct bastion *);
/* 1 when ifname has an IPv6 address other than link-local (the prefix
 * dnsmasq's router advertisements carry), its text in addr; else 0. */
int	dnsmasq_iface_ipv6(const char *ifname, char *addr, size_t len);

#endif
