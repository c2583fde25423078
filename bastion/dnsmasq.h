/* dnsmasq.h — dnsmasq as a supervised child: its config is rendered into
 * the state dir, checked with --test, reloaded with SIGHUP and the process
 * restarted with backoff when it dies. */
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

/* Render dnsmasq.conf for cfg into out (pure: no I/O). bastionctl is the
 * absolute path of the bastionctl binary the lease hook runs. */
int	dnsmasq_render(const struct config *, const struct dnsmasq_paths *,
	    struct buf *out);
/* The lease hook script (pure). */
int	dnsmasq_render_hook(const struct dnsmasq_paths *, const char *bastionctl,
	    const char *admin_sock, struct buf *out);

/* Start supervising: write the files, --test them, spawn dnsmasq. */
int	dnsmasq_start(struct bastion *);
/* From the main loop, often (e.g. every 100 ms) and after SIGCHLD: reaps
 * the child and restarts it when due (backoff 0.2 s doubling to 30 s,
 * reset after 60 s of uptime; back within 2 s the first time). */
void	dnsmasq_tick(struct bastion *);
/* The config changed: re-render, --test, SIGHUP (or restart if the
 * change needs it). A config that fails --test keeps the old one. */
int	dnsmasq_reload(struct bastion *);
/* Write STATE/dnsmasq/hosts.d/<mac> so the MAC keeps its address
 * (dnsmasq re-reads the directory without a restart). */
int	dnsmasq_reserve(struct bastion *, const char *mac, const char *ip,
	    const char *hostname);
void	dnsmasq_stop(struct bastion *);
/* {running, pid, restarts, mode, last_error, uptime_s} for status/doctor. */
json_t	*dnsmasq_status(struct bastion *);

#endif
