/* routes_install.c — the install queue, reprovision, kickstarts, install
 * progress and template previews. */
#define LOG_SUBSYS "install"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "binding.h"
#include "ca.h"
#include "clock.h"
#include "db.h"
#include "db_agent.h"
#include "dispatch.h"
#include "http.h"
#include "install.h"
#include "log.h"
#include "mac.h"
#include "oscatalog.h"
#include "routes.h"
#include "secret.h"
#include "templates.h"

#define L_API (L_CONTROL | L_ADMIN)
#define ST(s) (1u << (s))

/*
 * The install's join token for agentd: bound to the MAC, one use, dead at
 * enrollment or 24 h after the install was queued — a lifetime fixed now
 * and never extended. Only hashes are stored, so the clear token cannot
 * be read back when a kickstart is rendered: the token made here has a
 * secret nobody knows, and each installer boot's kickstart (get_kickstart)
 * gives it a new one, which kills the one before. So exactly one secret
 * is alive, the one in the last kickstart sent, and it was sent once, to
 * the address the install is bound to. A re-boot of the installer within
 * the install (anaconda fetches its kickstart once per boot) gets a new
 * key and so a new kickstart with a new secret, and can still enroll.
 */
static int
install_join_token(struct request *r, const char *mac)
{
	struct install *in;
	char s[SECRET_HEXLEN], hash[SECRET_HEXLEN];
	int rc = -1;

	if ((in = malloc(sizeof *in)) == NULL)
		return -1;
	if (db_install_current(r->app->db, mac, in) == DB_OK &&
	    secret_random_hex(s) == 0) {
		secret_sha256_hex(s, strlen(s), hash);
		if (db_token_install_create(r->app->db, in->id, mac, hash,
		    clock_wall_ms() + INSTALL_TOKEN_TTL_MS) == DB_OK)
			rc = 0;
	}
	OPENSSL_cleanse(s, sizeof s);
	free(in);
	return rc;
}

/*
 * reprovision's "reboot": true — the machine's agent gets a signed
 * reprovision job (network boot next), so the reinstall starts without
 * anyone at the console. Checked before anything is queued: the right to
 * send jobs, an agent that can take it, and a signer that can sign it.
 * -1 after a reply.
 */
static int
reboot_agent(struct request *r, const char *mac, char id[AGENT_ID_LEN])
{
	struct agent a;

	/* The job is exec's business and the route provision's: a token
	 * needs both, which only scope admin covers. */
	if (r->who.kind == AUTH_TOKEN &&
	    !auth_scope_covers(r->who.scope, SCOPE_EXEC)) {
		http_reply_error(r, 403, "insufficient_scope", "reprovision "
		    "with reboot queues an install and sends a job: it needs a "
		    "token with scope admin (this one has %s)",
		    auth_scope_name(r->who.scope));
		return -1;
	}
	if (db_agent_resolve(r->app->db, mac, id) != DB_OK ||
	    db_agent_get(r->app->db, id, &a) != DB_OK || a.revoked_ms) {
		http_reply_error(r, 409, "no_agent", "%s has no enrolled agent to "
		    "reboot it: reprovision without reboot and boot it from the "
		    "network", mac);
		return -1;
	}
	if (!ca_can_sign(r->app->ca)) {
		http_reply_error(r, 503, "signer_unavailable", "cannot sign the "
		    "reboot job now: the signer process is restarting; try "
		    "again shortly");
		return -1;
	}
	return 0;
}

/* Queue an install (reprovision = 0) or a reinstall keeping data. */
static void
queue_install(struct request *r, int reprovision)
{
	const struct config *c;
	struct install *prev = NULL, *in = NULL;
	struct machine m;
	json_t *body = NULL, *hw = NULL, *out, *args, *job = NULL;
	const json_t *v;
	char mac[MAC_STRLEN], why[300], event[480], agent[AGENT_ID_LEN];
	unsigned from;
	int rc, reboot = 0;

	if (route_mac_param(r, mac) == -1 || (body = http_body_json(r)) == NULL)
		return;
	if (reprovision && (v = json_object_get(body, "reboot")) != NULL) {
		if (!json_is_boolean(v)) {
			http_reply_error(r, 422, "invalid", "reboot must be true or "
			    "false");
			json_decref(body);
			return;
		}
		reboot = json_is_true(v);
		json_object_del(body, "reboot");
	}
	c = bastion_config_acquire(r->app);
	if ((rc = db_machine_get(r->app->db, mac, &m)) != DB_OK) {
		if (rc == DB_NOTFOUND)
			http_reply_error(r, 404, "not_found", "no machine %s", mac);
		else
			http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	if (c->install_repo[0] == '\0') {
		http_reply_error(r, 409, "no_repo", "install.repo is not set in %s",
		    c->path);
		goto out;
	}
	if ((prev = calloc(1, sizeof *prev)) == NULL ||
	    (in = calloc(1, sizeof *in)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		goto out;
	}
	if (reprovision) {
		from = ST(MS_INSTALLED) | ST(MS_ACTIVE) | ST(MS_FAILED);
		if (db_install_current(r->app->db, mac, prev) != DB_OK) {
			http_reply_error(r, 409, "never_installed", "%s was never "
			    "installed by bastion: use install", mac);
			goto out;
		}
	} else {
		from = ST(MS_DISCOVERED) | ST(MS_FAILED) | ST(MS_QUEUED);
		free(prev);
		prev = NULL;
	}
	if (!(from & ST(m.state))) {
		http_reply_error(r, 409, "wrong_state", "%s is %s; %s needs %s", mac,
		    machine_state_name(m.state), reprovision ? "reprovision" :
		    "install", reprovision ? "installed, active or failed" :
		    m.state == MS_INSTALLED || m.state == MS_ACTIVE ?
		    "discovered or failed (use reprovision to reinstall and keep "
		    "data)" : "discovered or failed");
		goto out;
	}
	if (db_hardware_get(r->app->db, mac, &hw) != DB_OK)
		hw = NULL;
	if (install_parse(body, c, hw, prev, in, why, sizeof why) == -1) {
		http_reply_error(r, 422, "invalid", "%s", why);
		goto out;
	}
	if (reboot && reboot_agent(r, mac, agent) == -1)
		goto out;
	snprintf(in->mac, sizeof in->mac, "%s", mac);
	in->reprovision = reprovision;
	snprintf(event, sizeof event, "%s queued: %s as %s on %s%s%s",
	    reprovision ? "reprovision" : "install", in->hostname, in->role,
	    in->disk, reprovision ? ", preserved volumes kept" : "",
	    reboot ? "; its agent reboots it into network boot" : "");
	AUDIT_SET(&r->audit, detail, "%s", event);
	rc = db_install_queue(r->app->db, in, from, event);
	if (rc == DB_CONFLICT) {
		http_reply_error(r, 409, "wrong_state", "%s changed state; try again",
		    mac);
		goto out;
	}
	if (rc != DB_OK || install_join_token(r, mac) == -1) {
		http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	log_info("req %s: %s by %s", r->id, event, r->client);
	if (reboot) {
		args = json_object();
		rc = routes_job_submit(r, agent, "reprovision", args,
		    ROUTES_JOB_TTL, &job);
		json_decref(args);
		if (rc == -1)
			goto out;
	}
	if (db_machine_json(r->app->db, mac, &out) != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		json_decref(job);
		goto out;
	}
	if (job)
		json_object_set_new(out, "job", job);
	http_reply_json(r, 202, out);
out:
	bastion_config_release(r->app);
	json_decref(hw);
	json_decref(body);
	free(prev);
	free(in);
}

static void
post_install(struct request *r)
{
	queue_install(r, 0);
}

static void
post_reprovision(struct request *r)
{
	queue_install(r, 1);
}

/* The machine's current install if k is its key and the request comes
 * from the address the install is bound to (binding.h); replies 403 if
 * not. Only while the machine is in one of the states in `states`. */
static int
check_install_key(struct request *r, const char *mac, unsigned states,
    struct machine *m, struct install *in)
{
	const struct config *c;
	const char *k = http_query(r, "k");
	char hash[SECRET_HEXLEN], why[160];
	enum binding bind;

	if (db_machine_get(r->app->db, mac, m) != DB_OK ||
	    db_install_current(r->app->db, mac, in) != DB_OK ||
	    !(states & ST(m->state))) {
		/* The same answer whether or not the machine exists. */
		http_reply_error(r, 403, "forbidden", "no install in progress for "
		    "%s with that key", mac);
		return -1;
	}
	if (k == NULL || strlen(k) != SECRET_HEXLEN - 1 ||
	    in->key_hash[0] == '\0') {
		http_reply_error(r, 403, "forbidden", "no install in progress for "
		    "%s with that key", mac);
		return -1;
	}
	secret_sha256_hex(k, strlen(k), hash);
	if (!secret_equal(hash, in->key_hash)) {
		log_warnx("req %s: wrong install key for %s from %s", r->id, mac,
		    r->client);
		http_reply_error(r, 403, "forbidden", "no install in progress for "
		    "%s with that key", mac);
		return -1;
	}
	/* A key minted before the install was bound anywhere (an upgrade
	 * during an install) is bound nowhere: refused as well; the next
	 * installer boot binds. */
	c = bastion_config_acquire(r->app);
	bind = binding_check(r->app->db, c->dhcp_mode, mac, in->bound_addr,
	    r->client, why, sizeof why);
	bastion_config_release(r->app);
	if (bind == BINDING_FIRST)
		snprintf(why, sizeof why, "the install is bound nowhere yet");
	if (bind == BINDING_REFUSED || bind == BINDING_FIRST) {
		binding_refuse(r, mac, r->route && r->route->action ?
		    r->route->action : "install request", why);
		http_reply_error(r, 403, "forbidden", "the install of %s is "
		    "bound to another address", mac);
		return -1;
	}
	return 0;
}

/* 1 if the context names the agent by its digest (the file is there). */
static int
has_agent(const json_t *ctx)
{
	const char *sum = json_string_value(json_object_get(json_object_get(ctx,
	    "agent"), "agentd_sha256"));

	return sum != NULL && *sum != '\0';
}

/*
 * The installer's instructions for this boot: the kickstart (Fedora/RHEL)
 * or the plan `agentd install` fetches (image OSes), each once per
 * installer boot and with that boot's join token.
 */
static void
hand_out(struct request *r, int plan)
{
	const struct config *c;
	struct machine m;
	struct install *in;
	struct os_image img;
	char mac[MAC_STRLEN], *out = NULL, err[512];
	char token[SECRET_HEXLEN] = "", hash[SECRET_HEXLEN];
	char fp[CA_FINGERPRINT_LEN];
	json_t *hw = NULL, *ctx = NULL, *pj;
	size_t len = 0;
	int rc, image;

	if (route_mac_param(r, mac) == -1)
		return;
	if ((in = malloc(sizeof *in)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	if (check_install_key(r, mac, ST(MS_QUEUED) | ST(MS_INSTALLING), &m,
	    in) == -1)
		goto out;
	c = bastion_config_acquire(r->app);
	image = os_method(c, in->os) == OS_IMAGE;
	if (image != plan) {
		bastion_config_release(r->app);
		http_reply_error(r, 409, "wrong_installer", "%s installs %s by %s",
		    mac, in->os, image ? "image: its installer fetches "
		    "/install/MAC/plan" : "kickstart: its installer fetches "
		    "/ks/MAC");
		goto out;
	}
	if (plan && os_image_find(c, in->os, &img, err, sizeof err) == -1) {
		bastion_config_release(r->app);
		http_reply_error(r, 409, "no_image", "the image of %s cannot be "
		    "installed: %s", in->os, err);
		goto out;
	}
	if (db_hardware_get(r->app->db, mac, &hw) != DB_OK)
		hw = NULL;
	/* This boot's join token secret (install_join_token says why one
	 * per installer boot), stored only once the instructions are made. */
	if (secret_random_hex(token) == -1) {
		bastion_config_release(r->app);
		http_reply_error(r, 500, "internal", "cannot make the join token");
		goto out;
	}
	secret_sha256_hex(token, strlen(token), hash);
	ca_fingerprint(r->app->ca, fp);
	ctx = install_context(c, &m, in, hw, http_query(r, "k"), in->boots);
	if (ctx)
		install_set_agent(ctx, fp, token);
	/* An image install's agent is the dynamically linked agentd beside
	 * bastion (agentfiles.h): without it the plan would name a file
	 * that cannot be served, so say so now. */
	if (ctx && plan && !has_agent(ctx)) {
		bastion_config_release(r->app);
		http_reply_error(r, 503, "agent_missing", "the node agent for "
		    "image installs (agentd, dynamically linked) is not "
		    "installed beside bastion");
		goto out;
	}
	if (ctx && plan) {
		pj = install_plan(c, ctx, &img);
		if (pj && (out = json_dumps(pj, JSON_COMPACT)) != NULL)
			len = strlen(out);
		json_decref(pj);
		snprintf(err, sizeof err, "out of memory");
	}
	if (ctx == NULL || (plan ? out == NULL : templates_render(
	    r->app->templates, "install.ks", ctx, &out, &len, err,
	    sizeof err) == -1)) {
		http_reply_error(r, 500, "template", "%s", ctx ? err :
		    "out of memory");
		bastion_config_release(r->app);
		goto out;
	}
	bastion_config_release(r->app);
	rc = db_install_kickstart(r->app->db, mac, in->id, in->boots, hash);
	if (rc == DB_CONFLICT) {
		http_reply_error(r, 409, "kickstart_sent", "the %s of this "
		    "installer boot of %s was sent already (one per boot, with "
		    "its join token); network-boot the machine again for a new "
		    "one", plan ? "plan" : "kickstart", mac);
		goto out;
	}
	if (rc == DB_DENIED) {
		http_reply_error(r, 409, "no_join_token", "the join token of this "
		    "install of %s was used, revoked or expired (24 h after the "
		    "install was queued); queue the install again", mac);
		goto out;
	}
	if (rc != DB_OK) {
		http_reply_error(r, 500, "internal", "cannot record the %s",
		    plan ? "plan" : "kickstart");
		goto out;
	}
	log_info("req %s: %s for %s (installer boot %d) sent to %s", r->id,
	    plan ? "plan" : "kickstart", mac, in->boots, r->client);
	http_reply_text(r, 200, plan ? "application/json" :
	    "text/plain; charset=utf-8", out, len);
out:
	OPENSSL_cleanse(token, sizeof token);
	json_decref(ctx);
	if (out)
		OPENSSL_cleanse(out, len);
	free(out);
	json_decref(hw);
	free(in);
}

static void
get_kickstart(struct request *r)
{
	hand_out(r, 0);
}

static void
get_plan(struct request *r)
{
	hand_out(r, 1);
}

static void
post_progress(struct request *r)
{
	static const char *const stages[] = { "pre", "partition", "packages",
	    "post", "done", "error", NULL };
	const json_t *stage, *percent, *message;
	struct machine m;
	struct install *in;
	json_t *body = NULL;
	char mac[MAC_STRLEN];
	int i, rc;

	if (route_mac_param(r, mac) == -1)
		return;
	if ((in = malloc(sizeof *in)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	if (check_install_key(r, mac, ST(MS_INSTALLING), &m, in) == -1 ||
	    (body = http_body_json(r)) == NULL)
		goto out;
	stage = json_object_get(body, "stage");
	percent = json_object_get(body, "percent");
	message = json_object_get(body, "message");
	for (i = 0; stages[i] && json_is_string(stage); i++)
		if (strcmp(stages[i], json_string_value(stage)) == 0)
			break;
	if (!json_is_string(stage) || stages[i] == NULL) {
		http_reply_error(r, 422, "invalid", "stage must be one of pre, "
		    "partition, packages, post, done, error");
		goto out;
	}
	if (!json_is_integer(percent) || json_integer_value(percent) < 0 ||
	    json_integer_value(percent) > 100) {
		http_reply_error(r, 422, "invalid", "percent must be 0-100");
		goto out;
	}
	if (message && !json_is_null(message) && (!json_is_string(message) ||
	    json_string_length(message) > 200 ||
	    strlen(json_string_value(message)) != json_string_length(message))) {
		http_reply_error(r, 422, "invalid", "message must be a string of "
		    "at most 200 bytes");
		goto out;
	}
	AUDIT_SET(&r->audit, detail, "%s %lld%%", stages[i],
	    (long long)json_integer_value(percent));
	rc = db_install_progress(r->app->db, mac, stages[i],
	    (int)json_integer_value(percent),
	    json_is_string(message) ? json_string_value(message) : "");
	if (rc != DB_OK) {
		http_reply_error(r, rc == DB_CONFLICT ? 409 : 500, rc == DB_CONFLICT ?
		    "wrong_state" : "internal", "cannot record progress for %s",
		    mac);
		goto out;
	}
	log_info("req %s: %s install %s %lld%%", r->id, mac, stages[i],
	    (long long)json_integer_value(percent));
	http_reply_json(r, 200, json_pack("{s:s, s:s}", "mac", mac, "stage",
	    stages[i]));
out:
	json_decref(body);
	free(in);
}

/* What the machine would get now, without changing anything. */
static void
post_render(struct request *r)
{
	const struct config *c;
	struct machine m;
	struct install *in = NULL;
	json_t *body, *hw = NULL, *ctx = NULL, *res;
	const char *macs;
	char mac[MAC_STRLEN], *ipxe = NULL, *ks = NULL, err[512];
	enum boot_action a;
	size_t len;
	int have_install;

	if ((body = http_body_json(r)) == NULL)
		return;
	macs = json_string_value(json_object_get(body, "mac"));
	if (macs == NULL || mac_normalize(macs, mac) == -1) {
		http_reply_error(r, 400, "bad_mac", "the body must be {\"mac\": MAC}");
		json_decref(body);
		return;
	}
	json_decref(body);
	if (db_machine_get(r->app->db, mac, &m) != DB_OK) {
		http_reply_error(r, 404, "not_found", "no machine %s", mac);
		return;
	}
	if ((in = malloc(sizeof *in)) == NULL) {
		http_reply_error(r, 500, "internal", "out of memory");
		return;
	}
	have_install = db_install_current(r->app->db, mac, in) == DB_OK;
	if (db_hardware_get(r->app->db, mac, &hw) != DB_OK)
		hw = NULL;
	c = bastion_config_acquire(r->app);
	a = dispatch_decide(m.state, c->idle_action, 1);
	if (a == BOOT_INSTALLER && !have_install)
		a = BOOT_IDLE;
	if (install_render_boot(r->app->templates, c, &m, have_install ? in :
	    NULL, hw, a, INSTALL_KEY_PLACEHOLDER, have_install ? in->boots + 1 : 0,
	    &ipxe, &len, err, sizeof err) == -1) {
		http_reply_error(r, 500, "template", "%s", err);
		goto out;
	}
	if (have_install && (m.state == MS_QUEUED || m.state == MS_INSTALLING)) {
		ctx = install_context(c, &m, in, hw, INSTALL_KEY_PLACEHOLDER,
		    in->boots);
		if (ctx) {
			char fp[CA_FINGERPRINT_LEN];

			ca_fingerprint(r->app->ca, fp);
			install_set_agent(ctx, fp, INSTALL_TOKEN_PLACEHOLDER);
		}
		if (ctx == NULL || templates_render(r->app->templates, "install.ks",
		    ctx, &ks, &len, err, sizeof err) == -1) {
			http_reply_error(r, 500, "template", "%s", ctx ? err :
			    "out of memory");
			goto out;
		}
	}
	res = json_pack("{s:s, s:s, s:s, s:s}", "mac", mac, "state",
	    machine_state_name(m.state), "action", dispatch_action_name(a),
	    "ipxe", ipxe);
	json_object_set_new(res, "kickstart", ks ? json_string(ks) : json_null());
	http_reply_json(r, 200, res);
out:
	bastion_config_release(r->app);
	json_decref(ctx);
	json_decref(hw);
	free(ipxe);
	free(ks);
	free(in);
}

static void
get_templates(struct request *r)
{
	http_reply_json(r, 200, templates_list(r->app->templates));
}

static void
get_roles(struct request *r)
{
	const struct config *c = bastion_config_acquire(r->app);

	http_reply_json(r, 200, roles_json(&c->roles));
	bastion_config_release(r->app);
}

static void
get_os(struct request *r)
{
	const struct config *c = bastion_config_acquire(r->app);

	http_reply_json(r, 200, os_catalog_json(c));
	bastion_config_release(r->app);
}

/* Who may do what: see struct route in http.h and docs/api.md. The
 * boot listener's routes are open: the install key is their credential. */
const struct route routes_install[] = {
	{ L_API, "POST", "/api/v1/machines/{mac}/install", post_install, 0,
	    ROLE_OPERATOR, SCOPE_PROVISION, RF_MUTATES, "machine.install" },
	{ L_API, "POST", "/api/v1/machines/{mac}/reprovision", post_reprovision,
	    0, ROLE_OPERATOR, SCOPE_PROVISION, RF_MUTATES | RF_DESTRUCTIVE,
	    "machine.reprovision" },
	{ L_BOOT, "GET", "/ks/{mac}", get_kickstart, 0,
	    ROLE_NONE, SCOPE_READ, RF_AUDIT, "install.kickstart" },
	{ L_BOOT, "GET", "/install/{mac}/plan", get_plan, 0,
	    ROLE_NONE, SCOPE_READ, RF_AUDIT, "install.plan" },
	{ L_BOOT, "POST", "/api/v1/progress/{mac}", post_progress, 4096,
	    ROLE_NONE, SCOPE_READ, RF_MUTATES, "install.progress" },
	{ L_API, "POST", "/api/v1/templates/render", post_render, 0,
	    ROLE_OPERATOR, SCOPE_PROVISION, 0, NULL },
	{ L_API, "GET", "/api/v1/templates", get_templates, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/os", get_os, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ L_API, "GET", "/api/v1/roles", get_roles, 0,
	    ROLE_VIEWER, SCOPE_READ, 0, NULL },
	{ 0, NULL, NULL, NULL, 0, ROLE_NONE, SCOPE_READ, 0, NULL },
};
