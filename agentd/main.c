/* main.c — agentd, the node agent:
 *   agentd discover        inventory -> POST /api/v1/discover -> power off
 *                          (inside the RAM-only discovery image)
 *   agentd -f FILE enroll  CSR + one-time token -> certificate (run.c)
 *   agentd -f FILE run     the daemon: heartbeats, signed jobs (run.c)
 *   agentd -f FILE renew   renew the certificate now
 * See agentd(8). */
#define LOG_SUBSYS "agentd"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>

#include "http1.h"	/* first: says whether this build has libcurl */
#ifdef AGENTD_HAVE_CURL
#include <curl/curl.h>
#endif

#include "agent.h"
#include "installer.h"
#include "inventory.h"
#include "log.h"

#define AGENTD_DEFAULT_CONF	"/etc/agentd/agentd.conf"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: agentd discover [--report URL] [--mac MAC]\n"
	    "           [--after poweroff|reboot|wait|exit] [--dry-run]\n"
	    "           [--deadline SECONDS] [--no-probe] [--root DIR] [-d]\n"
	    "       agentd install [--plan URL] [--dry-run] [-d]\n"
	    "       agentd [-d] [-f FILE] run|enroll|renew\n"
	    "       agentd -V\n"
	    "discover defaults come from the kernel command line:\n"
	    "  bastion.url, bastion.mac (or BOOTIF), bastion.after;\n"
	    "install's plan from bastion.plan\n");
	exit(2);
}

static void
after_do(enum after_action a)
{
	switch (a) {
	case AFTER_POWEROFF:
	case AFTER_REBOOT:
		log_info("%s now", cmdline_after_name(a));
		fflush(NULL);
		sync();		/* nothing of ours is on a disk; harmless */
		if (reboot(a == AFTER_POWEROFF ? RB_POWER_OFF : RB_AUTOBOOT)
		    == -1)
			log_warn("%s", cmdline_after_name(a));
		break;
	case AFTER_WAIT:
		log_info("discovery finished; waiting (bastion.after=wait)");
		for (;;)
			pause();
	default:
		break;
	}
}

static void
summary(const json_t *r)
{
	const json_t *cpu = json_object_get(r, "cpu");

	log_info("%s: %s, %lld threads, %.1f GiB, %zu disk(s), %zu NIC(s), "
	    "%s", json_string_value(json_object_get(r, "mac")),
	    json_string_value(json_object_get(cpu, "model")),
	    (long long)json_integer_value(json_object_get(cpu, "threads")),
	    (double)json_integer_value(json_object_get(json_object_get(r,
	    "memory"), "total_bytes")) / (1 << 30),
	    json_array_size(json_object_get(r, "disks")),
	    json_array_size(json_object_get(r, "nics")),
	    json_string_value(json_object_get(r, "firmware")));
}

static int
cmd_discover(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "report", required_argument, NULL, 'r' },
		{ "mac", required_argument, NULL, 'm' },
		{ "after", required_argument, NULL, 'a' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "deadline", required_argument, NULL, 't' },
		{ "no-probe", no_argument, NULL, 'P' },
		{ "root", required_argument, NULL, 'R' },
		{ "debug", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 }
	};
	struct inventory_opts io = { "/", NULL, 1 };
	struct report_opts ro;
	struct cmdline cl;
	enum after_action after = AFTER_NONE;
	const char *report = NULL;
	char mac[MAC_STRLEN], url[CMDLINE_URLMAX + 32], *json, *reply = NULL;
	long status, secs;
	int ch, dry = 0, rc;
	struct timespec ts;
	json_t *r;

	report_opts_default(&ro);
	mac[0] = '\0';
	optind = 0;	/* GNU: a full re-initialisation after main's getopt */
	while ((ch = getopt_long(argc, argv, "a:dm:nr:R:t:", longopts, NULL))
	    != -1) {
		switch (ch) {
		case 'r':
			report = optarg;
			break;
		case 'm':
			if (mac_normalize(optarg, mac) == -1) {
				fprintf(stderr, "agentd: --mac %s: not a MAC "
				    "address\n", optarg);
				return 2;
			}
			break;
		case 'a':
			if (cmdline_after_parse(optarg, &after) == -1) {
				fprintf(stderr, "agentd: --after: poweroff, "
				    "reboot, wait or exit\n");
				return 2;
			}
			break;
		case 'n':
			dry = 1;
			break;
		case 't':
			secs = strtol(optarg, NULL, 10);
			if (secs < 1 || secs > 86400) {
				fprintf(stderr, "agentd: --deadline: 1..86400 "
				    "seconds\n");
				return 2;
			}
			ro.deadline_ms = secs * 1000;
			break;
		case 'P':
			io.probe = 0;
			break;
		case 'R':
			io.root = optarg;
			break;
		case 'd':
			log_set_debug(1);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	if (cmdline_read(io.root, &cl) == -1)
		memset(&cl, 0, sizeof cl);
	if (mac[0] == '\0')
		memcpy(mac, cl.mac, sizeof mac);
	if (report == NULL && cl.url[0] != '\0')
		report = cl.url;
	if (after == AFTER_NONE)
		after = cl.after != AFTER_NONE ? cl.after : AFTER_EXIT;
	if (!dry && report == NULL) {
		fprintf(stderr, "agentd: discover: no --report URL and no "
		    "bastion.url= on the kernel command line\n");
		return 2;
	}
	if (!dry && report_url(report, url, sizeof url) == -1) {
		fprintf(stderr, "agentd: discover: %s: not an http(s) URL\n",
		    report);
		return 2;
	}

	/* jansson seeds its hash function from /dev/urandom, which early in
	 * a boot makes the kernel gather entropy for a second (6.x kernels).
	 * agentd parses nothing untrusted here: a cheap seed will do. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	json_object_seed((size_t)ts.tv_nsec ^ (size_t)getpid() << 16 ^
	    (size_t)time(NULL));

	io.boot_mac = mac[0] ? mac : NULL;
	if (inventory_collect(&io, &r) == -1) {
		log_warnx("cannot collect the inventory");
		if (!dry)
			after_do(after);
		return 1;
	}
	summary(r);
	if (dry) {
		json_dumpf(r, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(r);
		return 0;
	}
	json = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	if (json == NULL) {
		log_warnx("out of memory");
		return 1;
	}
#ifdef AGENTD_HAVE_CURL
	curl_global_init(CURL_GLOBAL_DEFAULT);
#endif
	rc = report_post(url, json, &ro, &status, &reply);
#ifdef AGENTD_HAVE_CURL
	curl_global_cleanup();
#endif
	free(json);
	if (rc == 0)
		log_info("bastion says: %s", reply);
	else
		log_warnx("the report did not reach bastion (last status %ld)",
		    status);
	free(reply);
	after_do(after);
	return rc == 0 ? 0 : 1;
}

/* The installer of image OSes (installer.h), in bastion's RAM image. */
static int
cmd_install(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "plan", required_argument, NULL, 'p' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "debug", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 }
	};
	const char *plan = NULL;
	struct cmdline cl;
	int ch, dry = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "dnp:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			log_init(1, 1, "agentd");
			break;
		case 'n':
			dry = 1;
			break;
		case 'p':
			plan = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (plan == NULL && cmdline_read("/", &cl) == 0 && cl.plan[0])
		plan = cl.plan;
	if (plan == NULL) {
		fprintf(stderr, "agentd: install: no --plan URL and no "
		    "bastion.plan= on the kernel command line\n");
		return 2;
	}
	return install_main(plan, dry);
}

/* enroll (once), renew (now) or run (the daemon). */
static int
cmd_agent(const char *path, const char *mode)
{
#ifdef AGENTD_NO_CURL
	fprintf(stderr, "agentd: %s: this build only discovers (%s)\n", mode,
	    path);
	return 2;
#else
	struct agent_conf c;
	struct agent_state st;
	int retry, rc;

	if (agent_conf_load(path, &c) == -1)
		return 2;
	if (strcmp(mode, "run") == 0)
		return agent_run(&c);
	if (aclient_global_init() == -1) {
		log_warnx("cannot initialise the TLS library");
		return 1;
	}
	if (strcmp(mode, "enroll") == 0) {
		if (agent_enrolled(&c)) {
			log_info("already enrolled (%s holds a certificate)",
			    c.state_dir);
			rc = 0;
		} else {
			rc = agent_enroll(&c, &retry) == 0 ? 0 : 1;
		}
	} else {
		rc = 1;
		if (agent_state_load(&c, &st) == 0) {
			rc = agent_renew(&c, &st) == 0 ? 0 : 1;
			agent_state_free(&st);
		}
	}
	aclient_global_cleanup();
	return rc;
#endif
}

/* What the confined agentd runs in transient units (helper.c). */
static int
cmd_helper(const char *path, int argc, char **argv)
{
#ifdef AGENTD_NO_CURL
	fprintf(stderr, "agentd: helper: this build only discovers (%s)\n",
	    path);
	return 2;
#else
	struct agent_conf c;

	if (agent_conf_load(path, &c) == -1)
		return 2;
	return helper_main(&c, argc, argv);
#endif
}

int
main(int argc, char *argv[])
{
	const char *conf = NULL;
	int ch;

	log_init(1, 0, "agentd");
	if (argc >= 2 && strcmp(argv[1], "discover") == 0)
		return cmd_discover(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "install") == 0)
		return cmd_install(argc - 1, argv + 1);
	while ((ch = getopt(argc, argv, "+df:V")) != -1) {
		switch (ch) {
		case 'd':
			log_set_debug(1);
			break;
		case 'f':
			conf = optarg;
			break;
		case 'V':
			printf("agentd %s\n", BASTION_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	if (strcmp(argv[optind], "discover") == 0)	/* agentd -d discover */
		return cmd_discover(argc - optind, argv + optind);
	if (strcmp(argv[optind], "install") == 0)
		return cmd_install(argc - optind, argv + optind);
	if (strcmp(argv[optind], "helper") == 0)
		return cmd_helper(conf ? conf : AGENTD_DEFAULT_CONF,
		    argc - optind - 1, argv + optind + 1);
	if (optind != argc - 1)
		usage();
	if (strcmp(argv[optind], "run") == 0 ||
	    strcmp(argv[optind], "enroll") == 0 ||
	    strcmp(argv[optind], "renew") == 0)
		return cmd_agent(conf ? conf : AGENTD_DEFAULT_CONF, argv[optind]);
	usage();
}
