/* cluster.c — this bastion among those that share its database (DESIGN
 * §16): it serves only with the database's CA and job key (a bastion with
 * keys of its own would sign what the agents of the others refuse), and
 * says every CLUSTER_SEEN_S that it is up, for `bastionctl cluster
 * status`. */
#define LOG_SUBSYS "cluster"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bastion.h"
#include "ca.h"
#include "clock.h"
#include "cluster.h"
#include "db_cluster.h"
#include "log.h"

static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	pthread_t	 t;
	int		 running;
	int		 stop;
	char		 url[CONFIG_URL_LEN];
	char		 interface[IF_NAMESIZE];
	int64_t		 started_ms;
	struct db	*db;
} C = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void *
seen_thread(void *arg)
{
	struct timespec until;

	(void)arg;
	pthread_mutex_lock(&C.mu);
	while (!C.stop) {
		pthread_mutex_unlock(&C.mu);
		if (db_cluster_seen(C.db, C.url, BASTION_VERSION, C.interface,
		    C.started_ms, clock_wall_ms()) != DB_OK)
			log_debug("cannot say that this bastion is up");
		pthread_mutex_lock(&C.mu);
		until = clock_wall_after(CLUSTER_SEEN_S * 1000);
		while (!C.stop && pthread_cond_timedwait(&C.cv, &C.mu,
		    &until) == 0)
			;
	}
	pthread_mutex_unlock(&C.mu);
	return NULL;
}

/* The keys must be the database's (the first bastion records its own). */
static int
keys_check(struct bastion *app)
{
	char fp[CA_FINGERPRINT_LEN], key_id[CA_KEYID_LEN], *pem = NULL;
	char db_fp[CA_FINGERPRINT_LEN], db_key[CA_KEYID_LEN];
	int rc;

	ca_fingerprint(app->ca, fp);
	if (ca_job_pubkey(app->ca, &pem, key_id) == -1) {
		log_warnx("cannot read the job key");
		return -1;
	}
	free(pem);
	rc = db_cluster_keys(app->db, fp, key_id, db_fp, sizeof db_fp, db_key,
	    sizeof db_key);
	if (rc == DB_CONFLICT)
		log_warnx("this bastion's keys are not those of the database's "
		    "other bastions (CA %s, job key %s here; %s and %s in the "
		    "database): copy STATE_DIR/ca/ (ca.pem, ca.key, jobs.key) "
		    "from one of them", fp, key_id, db_fp, db_key);
	else if (rc != DB_OK)
		log_warnx("cannot check the keys against the database");
	return rc == DB_OK ? 0 : -1;
}

int
cluster_start(struct bastion *app)
{
	const struct config *c;

	/* SQLite: the one bastion of its database. */
	if (db_shared(app->db) && keys_check(app) == -1)
		return -1;
	c = bastion_config_acquire(app);
	pthread_mutex_lock(&C.mu);
	config_node_url(c, C.url);
	pthread_mutex_unlock(&C.mu);
	snprintf(C.interface, sizeof C.interface, "%s", c->interface);
	bastion_config_release(app);
	C.db = app->db;
	C.started_ms = clock_wall_ms();
	C.stop = 0;
	/* Signals stay with the worker's signalfd: main.c blocked them for
	 * every thread. */
	if (pthread_create(&C.t, NULL, seen_thread, NULL) != 0) {
		log_warnx("cannot start the cluster thread");
		return -1;
	}
	C.running = 1;
	return 0;
}

void
cluster_stop(void)
{
	if (!C.running)
		return;
	pthread_mutex_lock(&C.mu);
	C.stop = 1;
	pthread_cond_signal(&C.cv);
	pthread_mutex_unlock(&C.mu);
	pthread_join(C.t, NULL);
	C.running = 0;
}

void
cluster_url(char out[CONFIG_URL_LEN])
{
	pthread_mutex_lock(&C.mu);
	snprintf(out, CONFIG_URL_LEN, "%s", C.url);
	pthread_mutex_unlock(&C.mu);
}
