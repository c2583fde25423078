/* main.c — bastion's privileged parent: start-up, the CA and its signer,
 * dnsmasq's supervision, reload and graceful stop. Everything that parses
 * the network runs in the HTTP worker (worker.c) as an unprivileged user;
 * the two talk through privsep.c. */
#define LOG_SUBSYS "main"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "bastion.h"
#include "ca.h"
#include "db.h"
#include "dnsmasq.h"
#include "file.h"
#include "http.h"
#include "log.h"
#include "path.h"
#include "signer.h"
#include "templates.h"
#include "privsep.h"
#include "respawn.h"
#include "sdnotify.h"
#include "worker.h"

static void
usage(void)
{
	fprintf(stderr, "usage: bastion [-dFnV] [-f config]\n"
	    "  -f FILE  configuration (default " CONFIG_DEFAULT_PATH ")\n"
	    "  -d       foreground, debug log on stderr\n"
	    "  -F       foreground, log on stderr (for systemd)\n"
	    "  -n       check the configuration and exit\n"
	    "  -V       print the version and exit\n");
	exit(2);
}

static int
load_config(const char *path, struct config *out)
{
	struct buf errors;
	int rc;

	buf_init(&errors, 1 << 20);
	rc = config_load(path, out, &errors);
	if (errors.len)
		fputs(errors.data, stderr);
	buf_free(&errors);
	return rc;
}

/*
 * What the file system must provide, beyond what the file says: the
 * built-in templates and the panel in share_dir, and a state dir dnsmasq
 * can reach. Each problem is printed as "file: message"; -1 if any.
 * bastion -n checks this too, so that it is not first found by a boot.
 */
static int
check_paths(const char *path, const struct config *c)
{
	char why[1024], index[PATH_MAX];
	const char *missing;
	struct stat st;
	int rc = 0;

	if ((missing = templates_missing(c->share_dir)) == NULL &&
	    (path_join(index, sizeof index, c->share_dir,
	    "webroot/index.html") == -1 || stat(index, &st) == -1 ||
	    !S_ISREG(st.st_mode)))
		missing = "webroot/index.html";
	if (missing) {
		fprintf(stderr, "%s: share_dir %s has no %s: it holds the "
		    "templates (ipxe/, kickstart/) and the panel (webroot/) "
		    "that make install puts in " BASTION_DATADIR "; run make "
		    "install, or set [bastion] share_dir to the source tree\n",
		    path, c->share_dir, missing);
		rc = -1;
	}
	if (dnsmasq_check_state_dir(c, why, sizeof why) == -1) {
		fprintf(stderr, "%s: %s\n", path, why);
		rc = -1;
	}
	return rc;
}

/* The state dir: the worker's user's, group root's (prepare_state_dir);
 * o+x only, so that dnsmasq (nobody) reaches STATE/tftp without listing. */
#define STATE_DIR_MODE	0771

/* The pid file doubles as the single-instance lock. */
static int
pidfile_lock(const char *state_dir)
{
	char path[PATH_MAX], pid[32];
	int fd, n;

	if (path_join(path, sizeof path, state_dir, "bastion.pid") == -1) {
		log_warn("%s", state_dir);
		return -1;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644))
	    == -1) {
		log_warn("%s", path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		log_warnx("another bastion is running with state dir %s",
		    state_dir);
		close(fd);
		return -1;
	}
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (fchmod(fd, 0644) == -1 || ftruncate(fd, 0) == -1 || write(fd, pid, (size_t)n) != n) {
		log_warn("%s", path);
		close(fd);
		return -1;
	}
	return fd;
}

static void
reload(struct bastion *app)
{
	struct config *next, *old;
	int listeners_changed;

	if ((next = malloc(sizeof *next)) == NULL) {
		log_warnx("reload: out of memory");
		return;
	}
	if (load_config(app->cfg->path, next) == -1) {
		log_warnx("reload: %s has errors; keeping the running config",
		    app->cfg->path);
		config_free(next);
		return;
	}
	listeners_changed = strcmp(next->state_dir, app->cfg->state_dir) ||
	    strcmp(next->share_dir, app->cfg->share_dir) ||
	    memcmp(&next->boot_listen, &app->cfg->boot_listen,
	    sizeof next->boot_listen) ||
	    memcmp(&next->control_listen, &app->cfg->control_listen,
	    sizeof next->control_listen) ||
	    memcmp(next->names, app->cfg->names, sizeof next->names) ||
	    strcmp(next->user, app->cfg->user) ||
	    next->control_max_conns != app->cfg->control_max_conns ||
	    next->control_max_conns_per_addr !=
	    app->cfg->control_max_conns_per_addr;
	if (listeners_changed)
		log_warnx("reload: listener addresses, names, the control "
		    "listener's connection caps, the user and the state dir "
		    "change only at restart");
	pthread_rwlock_wrlock(&app->cfg_lock);
	old = app->cfg;
	/* Keep what only a restart can change. */
	strcpy(next->state_dir, old->state_dir);
	strcpy(next->share_dir, old->share_dir);
	strcpy(next->user, old->user);
	next->boot_listen = old->boot_listen;
	next->control_listen = old->control_listen;
	memcpy(next->names, old->names, sizeof next->names);
	next->nnames = old->nnames;
	/* The listener took its caps at start (http_start). */
	next->control_max_conns = old->control_max_conns;
	next->control_max_conns_per_addr = old->control_max_conns_per_addr;
	app->cfg = next;
	pthread_rwlock_unlock(&app->cfg_lock);
	config_free(old);
	log_set_debug(app->cfg->debug || log_is_debug());
	if (dnsmasq_reload(app) == -1)
		log_warnx("reload: dnsmasq keeps its previous configuration");
	if (privsep_send_config(app) == -1)
		log_warn("reload: cannot tell the HTTP worker");
	log_info("configuration reloaded from %s", app->cfg->path);
}

/* The worker is gone: what it was says why. */
static void
worker_lost(struct bastion *app, int status)
{
	char why[96];

	respawn_describe_exit(status, why, sizeof why);
	log_warnx("the HTTP worker %ld %s; stopping", (long)privsep_worker_pid(app),
	    why);
}

/* Until SIGTERM/SIGINT (0) or the worker is lost (-1). */
static int
main_loop(struct bastion *app)
{
	sigset_t set;
	struct pollfd pfd[2];
	struct signalfd_siginfo si;
	int sfd, status, rc = -1;
	pid_t worker = privsep_worker_pid(app);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	if ((sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) == -1) {
		log_warn("signalfd");
		return -1;
	}
	pfd[0].fd = sfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = privsep_request_fd(app);
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, 100) == -1 && errno != EINTR) {
			log_warn("poll");
			break;
		}
		while (read(sfd, &si, sizeof si) == sizeof si) {
			switch (si.ssi_signo) {
			case SIGTERM:
			case SIGINT:
				log_info("signal %d: stopping", si.ssi_signo);
				rc = 0;
				goto out;
			case SIGHUP:
				reload(app);
				break;
			case SIGCHLD:
				break;	/* the ticks reap */
			}
		}
		if (waitpid(worker, &status, WNOHANG) == worker) {
			worker_lost(app, status);
			privsep_forget_worker(app);
			goto out;
		}
		if ((pfd[1].revents & (POLLIN | POLLHUP)) &&
		    privsep_serve(app, reload) == -1) {
			/* Its end closed: it died, or it broke the protocol
			 * and is not to be trusted further. Either way it is
			 * reaped here, and its end said why. */
			privsep_signal_worker(app, SIGKILL);
			while (waitpid(worker, &status, 0) == -1 &&
			    errno == EINTR)
				;
			worker_lost(app, status);
			privsep_forget_worker(app);
			goto out;
		}
		dnsmasq_tick(app);
		signer_tick(ca_signer(app->ca));
	}
out:
	close(sfd);
	return rc;
}

/* The worker (another uid) creates the database and the admin socket in
 * the state dir and reads templates from it; ca/ stays root's alone. An
 * older bastion ran entirely as root: its database becomes the worker's.
 * The directory is the worker's user's and group root's, mode 0771: under
 * systemd (bastion.service) this process is root without CAP_DAC_OVERRIDE
 * or CAP_FOWNER, and it still makes ca/, dnsmasq/, tftp/ and the pid file
 * in it through the group. Its mode is set while root still owns it, and
 * neither is touched when already right (the package makes it so). */
static int
prepare_state_dir(const struct config *c, uid_t uid, gid_t gid)
{
	static const char *const owned[] = { "bastion.db", "bastion.db-wal",
	    "bastion.db-shm", "audit.head", "templates", NULL };
	char path[PATH_MAX];
	struct stat st;
	int i;

	if (getuid() != 0)
		return 0;
	if (stat(c->state_dir, &st) == -1 ||
	    ((st.st_mode & 07777) != STATE_DIR_MODE &&
	    chmod(c->state_dir, STATE_DIR_MODE) == -1) ||
	    ((st.st_uid != uid || st.st_gid != 0) &&
	    chown(c->state_dir, uid, 0) == -1)) {
		log_warn("%s", c->state_dir);
		return -1;
	}
	for (i = 0; owned[i]; i++) {
		if (path_join(path, sizeof path, c->state_dir, owned[i]) == -1)
			return -1;
		if (lchown(path, uid, gid) == -1 && errno != ENOENT) {
			log_warn("%s", path);
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	const char *path = CONFIG_DEFAULT_PATH;
	struct bastion app;
	sigset_t set;
	char why[256];
	uid_t uid;
	gid_t gid;
	int ch, debug = 0, foreground = 0, check = 0, lockfd, rc = 1;

	/* A restarted signer (signer.c), started by bastion itself. */
	if (argc == 3 && strcmp(argv[1], "--signer") == 0)
		return signer_exec_main(argv[2]);
	while ((ch = getopt(argc, argv, "dFf:nV")) != -1) {
		switch (ch) {
		case 'd':
			debug = foreground = 1;
			break;
		case 'F':
			foreground = 1;
			break;
		case 'f':
			path = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'V':
			printf("bastion %s\n", BASTION_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	memset(&app, 0, sizeof app);
	if ((app.cfg = malloc(sizeof *app.cfg)) == NULL)
		return 1;
	if (load_config(path, app.cfg) == -1 ||
	    check_paths(path, app.cfg) == -1) {
		config_free(app.cfg);
		return 1;
	}
	if (privsep_user(app.cfg->user, &uid, &gid, why, sizeof why) == -1) {
		fprintf(stderr, "%s: bastion.user: %s\n", path, why);
		config_free(app.cfg);
		return 1;
	}
	if (check) {
		printf("%s: configuration OK\n", path);
		config_free(app.cfg);
		return 0;
	}
	log_init(1, debug || app.cfg->debug, "bastion");
	/* dnsmasq (as nobody) must reach STATE_DIR/tftp, nobody may list
	 * the directory, and every private file in it is 0600. */
	if (file_mkdirs(app.cfg->state_dir, STATE_DIR_MODE) == -1)
		fatal("state dir %s", app.cfg->state_dir);
	if (!foreground && daemon(0, 0) == -1)
		fatal("daemon");
	if (!foreground)
		log_init(0, debug || app.cfg->debug, "bastion");
	/* State files (database, keys) are private unless made otherwise. */
	umask(077);

	/* Every thread and child inherits this mask, so signals reach only
	 * the signalfds of the main loops. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* First: the pid file is made through the directory's group. */
	if (prepare_state_dir(app.cfg, uid, gid) == -1)
		fatalx("cannot prepare the state dir %s for user %s",
		    app.cfg->state_dir, app.cfg->user);
	if ((lockfd = pidfile_lock(app.cfg->state_dir)) == -1)
		return 1;
	pthread_rwlock_init(&app.cfg_lock, NULL);
	app.started = time(NULL);
	/* The worker first, while this process holds no key at all: not even
	 * a freed copy of one can be in its memory. */
	if (privsep_fork(&app, uid, worker_main) == -1)
		fatalx("cannot start the HTTP worker");
	if (ca_open(app.cfg->state_dir, app.cfg->names, app.cfg->nnames,
	    &app.ca) == -1) {
		log_warnx("cannot set up the CA in %s/ca", app.cfg->state_dir);
		goto err_worker;
	}
	/* Still one thread: the CA and job keys move to their own process
	 * (signer.c); the worker gets the public part and the signer's
	 * socket, and so will every later signer's. */
	if (ca_privsep(app.ca) == -1) {
		log_warnx("cannot start the CA's signer process");
		goto err_worker;
	}
	if (privsep_send_ca(&app) == -1 || signer_give_away(ca_signer(app.ca),
	    privsep_send_signer, &app) == -1) {
		log_warnx("the HTTP worker did not take the CA");
		goto err_worker;
	}
	if (privsep_serve(&app, reload) == -1) {
		log_warnx("the HTTP worker did not start");
		goto err_worker;
	}
	/* On a shared database (PostgreSQL) dnsmasq runs only on the bastion
	 * that leads DHCP on the interface: the worker competes for the lead
	 * and tells (privsep_dhcp_lead). */
	if ((app.cfg->database_url[0] != '\0' ? dnsmasq_standby(&app) :
	    dnsmasq_start(&app)) == -1)
		goto err_worker;
	if (privsep_send_ready(&app) == -1)
		log_warn("cannot tell the HTTP worker that all is ready");
	{
		char fp[CA_FINGERPRINT_LEN];

		ca_fingerprint(app.ca, fp);
		log_info("bastion %s ready (CA %s)", BASTION_VERSION, fp);
	}
	/* bastion.service is Type=notify: units ordered after it (the
	 * appliance's console) start only now, when the admin socket and
	 * the listeners answer. */
	(void)sdnotify_send("READY=1");
	rc = main_loop(&app) == 0 ? 0 : 1;
	(void)sdnotify_send("STOPPING=1");
	privsep_stop(&app, 5000);
	dnsmasq_stop(&app);
	goto out;

err_worker:
	privsep_stop(&app, 5000);
out:
	ca_close(app.ca);
	{
		char pidpath[PATH_MAX];

		if (path_join(pidpath, sizeof pidpath, app.cfg->state_dir,
		    "bastion.pid") == 0)
			unlink(pidpath);
	}
	close(lockfd);
	config_free(app.cfg);
	pthread_rwlock_destroy(&app.cfg_lock);
	log_info("stopped");
	return rc;
}
