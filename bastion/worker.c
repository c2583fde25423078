/* worker.c — the HTTP worker's life: forked before the parent loads any
 * key, it takes the CA's public part and the signer's socket from the
 * parent, binds the listeners while still root, drops to [bastion] user
 * for good, opens the database and serves until SIGTERM or the parent's
 * end. The CA and job keys were never in its memory. */
#define LOG_SUBSYS "worker"
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "alerts.h"
#include "auth.h"
#include "bastion.h"
#include "ca.h"
#include "cluster.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "path.h"
#include "privsep.h"
#include "routes.h"
#include "signer.h"
#include "templates.h"
#include "worker.h"

/* The DHCP lead on a shared database (db.h's struct db_dhcp_lead), on
 * the listener's thread: the parent runs dnsmasq, or stops it before
 * this returns. */
static void
dhcp_lead(int leading, const char *iface, void *arg)
{
	struct bastion *app = arg;

	if (leading)
		log_info("dhcp: leading on %s", iface);
	else
		log_warnx("dhcp: lost the lead on %s (the database connection "
		    "broke): stopping dnsmasq", iface);
	if (privsep_dhcp_lead(app, leading) == -1)
		log_warnx("dhcp: the parent did not %s dnsmasq", leading ?
		    "start" : "stop");
}

/* Until SIGTERM, or the parent is gone. */
static void
worker_loop(struct bastion *app)
{
	struct signalfd_siginfo si;
	struct pollfd pfd[2];
	sigset_t set;
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	if ((sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) == -1) {
		log_warn("signalfd");
		return;
	}
	pfd[0].fd = sfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = privsep_event_fd(app);
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) == -1 && errno != EINTR) {
			log_warn("poll");
			break;
		}
		if (read(sfd, &si, sizeof si) == sizeof si)
			break;
		if ((pfd[1].revents & (POLLIN | POLLHUP)) &&
		    privsep_event(app) == -1)
			break;
	}
	close(sfd);
}

int
worker_main(struct bastion *app)
{
	const struct config *c = app->cfg;
	char path[PATH_MAX], why[256], url[CONFIG_URL_LEN];
	struct db_dhcp_lead lead;
	uid_t uid;
	gid_t gid;
	int rc = 1;

	/* ^C in the foreground reaches both: the parent decides. */
	signal(SIGINT, SIG_IGN);
	if (privsep_user(c->user, &uid, &gid, why, sizeof why) == -1) {
		log_warnx("%s", why);
		return 1;
	}
	/* Forked before the parent loaded any key: the CA's public part and
	 * the signer's socket come first. */
	while (app->ca == NULL || ca_signer(app->ca) == NULL)
		if (privsep_event(app) == -1)
			goto err_db;
	if (http_listen(app) == -1)
		goto err_db;
	if (privsep_drop(uid, gid) == -1)
		goto err_db;
	if (c->database_url[0] != '\0') {
		/* Not logged: the url may carry a password. */
		if (db_open_url(c->database_url, c->state_dir, &app->db) ==
		    -1) {
			log_warnx("cannot open the PostgreSQL database of"
			    " [database] url");
			goto err_db;
		}
	} else if (path_join(path, sizeof path, c->state_dir, "bastion.db") ==
	    -1 || db_open(path, &app->db) == -1) {
		log_warnx("cannot open the database %s", path);
		goto err_db;
	}
	if (auth_open(app) == -1) {
		log_warnx("cannot set up accounts and settings");
		goto err_auth;
	}
	if (path_join(path, sizeof path, c->state_dir, "templates") == -1 ||
	    templates_open(path, c->share_dir, &app->templates) == -1) {
		log_warnx("cannot set up templates");
		goto err_templates;
	}
	/* Attention and notifications: threads of their own (alerts.h). */
	if (alerts_start(app) == -1)
		goto err_alerts;
	if (http_start(app) == -1)
		goto err_http;
	/* The keys the other bastions of the database have, or none. */
	if (cluster_start(app) == -1)
		goto err_cluster;
	if (privsep_up(app) == -1)
		goto err_up;
	/* Jobs made on other bastions of the database wake polls here; and
	 * dnsmasq runs on the one that leads DHCP on the interface (after
	 * "up": the parent hears of the lead in its main loop). */
	config_node_url(c, url);
	lead.interface = c->interface;
	lead.url = url;
	lead.fn = dhcp_lead;
	lead.arg = app;
	db_listen_streams(app->db, routes_stream_unreached, NULL);
	if (db_listen_start(app->db, routes_agent_wake, NULL, &lead) == -1) {
		log_warnx("cannot listen for other bastions");
		goto err_listen;
	}
	worker_loop(app);
	rc = 0;
	atomic_store(&app->ready, 0);
	db_listen_stop(app->db);
err_listen:
err_up:
	cluster_stop();
err_cluster:
	http_stop(app);
err_http:
	alerts_stop();
err_alerts:
	templates_close(app->templates);
err_templates:
	auth_close(app);
err_auth:
	db_close(app->db);
err_db:
	ca_close(app->ca);
	config_free(app->cfg);
	return rc;
}
