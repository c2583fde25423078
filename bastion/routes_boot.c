/* routes_boot.c — the plain-HTTP boot listener: iPXE scripts, boot
 * artifacts and the discovery report. Nothing here is an operator API. */
#define LOG_SUBSYS "boot"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>

#include "binding.h"
#include "ca.h"
#include "db.h"
#include "discover.h"
#include "dispatch.h"
#include "http.h"
#include "log.h"
#include "path.h"
#include "secret.h"
#include "templates.h"
#include "install.h"
#include "oscatalog.h"

static int	discovery_files_present(const struct config *);

static void
reply_script(struct request *r, const char *text, size_t len)
{
	http_reply_text(r, 200, "text/plain; charset=utf-8", text, len);
}

static void
get_boot_ipxe(struct request *r)
{
	const struct config *c = bastion_config_acquire(r->app);
	json_t *ctx = json_pack("{s:{s:s}}", "bastion", "boot_url", c->boot_url);
	char *out = NULL, err[256];
	size_t len;

	if (templates_render(r->app->templates, "boot.ipxe", ctx, &out, &len, err,
	    sizeof err) == 0)
		reply_script(r, out, len);
	else
		http_reply_error(r, 500, "template", "%s", err);
	bastion_config_release(r->app);
	json_decref(ctx);
	free(out);
}

/* Whether the image is installed, looked at most once a second: a boot
 * storm of new machines need not stat two files per request. */
static int
discovery_present(const struct config *c)
{
	static atomic_llong checked_s;
	static atomic_int present;
	struct timespec ts;
	long long now;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	now = (long long)ts.tv_sec;
	if (atomic_load(&checked_s) != now) {
		atomic_store(&present, discovery_files_present(c));
		atomic_store(&checked_s, now);
	}
	return atomic_load(&present);
}

static int
discovery_files_present(const struct config *c)
{
	char path[PATH_MAX];
	struct stat st;

	if (path_join(path, sizeof path, c->discovery_dir, "vmlinuz") == -1 ||
	    stat(path, &st) == -1 || !S_ISREG(st.st_mode))
		return 0;
	if (path_join(path, sizeof path, c->discovery_dir, "initrd.img") == -1)
		return 0;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A queued or installing machine boots from where it may (bind): count
 * the boot and mint the key this installer run will use. Returns the
 * action to take (the machine may have just failed, or lost a race to
 * another address: idle) and fills in, key and boot number. */
static enum boot_action
installer_boot(struct request *r, const struct config *c, struct machine *m,
    enum binding bind, struct install *in, char key[SECRET_HEXLEN],
    int *boots)
{
	char hash[SECRET_HEXLEN];
	int rc, failed = 0;

	if (c->install_repo[0] == '\0') {
		log_warnx("req %s: %s is %s but install.repo is not set", r->id,
		    m->mac, machine_state_name(m->state));
		return BOOT_IDLE;
	}
	if (db_install_current(r->app->db, m->mac, in) != DB_OK ||
	    secret_random_hex(key) == -1)
		return BOOT_IDLE;
	secret_sha256_hex(key, strlen(key), hash);
	rc = db_install_boot(r->app->db, m->mac, hash, r->client,
	    bind == BINDING_LEASE, c->install_max_boots, boots, &failed);
	if (rc == DB_DENIED) {
		binding_refuse(r, m->mac, "installer boot", "another address "
		    "booted the installer first");
		return dispatch_decide(MS_FAILED, c->idle_action, 0);
	}
	if (rc != DB_OK)
		return BOOT_IDLE;
	if (failed) {
		log_warnx("req %s: %s failed: too many network boots", r->id,
		    m->mac);
		m->state = MS_FAILED;
		return dispatch_decide(MS_FAILED, c->idle_action, 0);
	}
	return BOOT_INSTALLER;
}

/*
 * Whether this boot of m (state known, or *m zeroed but for the MAC when
 * it is new) comes from where the machine is bound (binding.h). Only
 * discovering, queued and installing machines are: a discovery report
 * and an installer's key, kickstart and join token are at stake; the
 * answers to the other states are the same for everyone.
 * BINDING_REFUSED after logging and auditing the refusal.
 */
static enum binding
dispatch_binding(struct request *r, const struct config *c,
    const struct machine *m, int known)
{
	struct install *in;
	enum binding b = BINDING_OK;
	char why[160];

	if (!known || m->state == MS_DISCOVERING)
		b = binding_check(r->app->db, c->dhcp_mode, m->mac,
		    known ? m->discovery_addr : "", r->client, why, sizeof why);
	else if (m->state == MS_QUEUED || m->state == MS_INSTALLING) {
		if ((in = malloc(sizeof *in)) == NULL)
			return BINDING_REFUSED;
		b = binding_check(r->app->db, c->dhcp_mode, m->mac,
		    db_install_current(r->app->db, m->mac, in) == DB_OK ?
		    in->bound_addr : "", r->client, why, sizeof why);
		free(in);
	}
	if (b == BINDING_REFUSED)
		binding_refuse(r, m->mac, "network boot", why);
	return b;
}

static void
get_dispatch(struct request *r)
{
	const struct config *c;
	struct boot_info bi;
	struct machine m, seen;
	struct install *in = NULL;
	enum boot_action a;
	enum binding bind;
	const char *why;
	char key[SECRET_HEXLEN] = "", *out = NULL, err[512];
	json_t *hw = NULL;
	size_t len;
	int created, known, rc, boots = 0;

	if (dispatch_parse(http_query(r, "mac"), http_query(r, "uuid"),
	    http_query(r, "serial"), http_query(r, "arch"),
	    http_query(r, "platform"), http_query(r, "ip"), &bi, &why) == -1) {
		http_reply_error(r, 400, "bad_request", "%s", why);
		return;
	}
	c = bastion_config_acquire(r->app);
	/* Where the machine is bound is checked before anything is
	 * recorded: a boot from elsewhere neither counts nor changes the
	 * machine's boot data, nor rotates its install key. */
	if ((rc = db_machine_lookup(r->app->db, bi.mac, &seen)) != DB_OK &&
	    rc != DB_NOTFOUND) {
		http_reply_error(r, 500, "internal", "cannot read the machine");
		goto out;
	}
	if ((known = rc == DB_OK) == 0) {
		memset(&seen, 0, sizeof seen);
		snprintf(seen.mac, sizeof seen.mac, "%s", bi.mac);
		seen.state = MS_DISCOVERING;
	}
	m = seen;
	if ((bind = dispatch_binding(r, c, &seen, known)) == BINDING_REFUSED)
		goto idle;
	if (db_machine_boot(r->app->db, &bi, &m, &created) != DB_OK) {
		http_reply_error(r, 500, "internal", "cannot record the boot");
		goto out;
	}
	/* Its state changed meanwhile (queued, say): bound elsewhere? */
	if ((m.state != seen.state || created != !known) &&
	    (bind = dispatch_binding(r, c, &m, 1)) == BINDING_REFUSED)
		goto idle;
	atomic_fetch_add(&r->app->metrics.dispatches, 1);
	a = dispatch_decide(m.state, c->idle_action,
	    m.state == MS_DISCOVERING ? discovery_present(c) : 0);
	/* The address that gets the discovery image is the one whose report
	 * is taken (post_discover). Told that the image is missing counts
	 * the same: the machine that asks again once it is installed is the
	 * one that booted first. */
	if ((a == BOOT_DISCOVERY || a == BOOT_DISCOVERY_MISSING) &&
	    (bind == BINDING_FIRST ||
	    bind == BINDING_LEASE) && (rc = db_machine_discovery_bind(
	    r->app->db, m.mac, r->client, bind == BINDING_LEASE)) != DB_OK) {
		if (rc != DB_DENIED) {
			http_reply_error(r, 500, "internal", "cannot record the "
			    "boot");
			goto out;
		}
		binding_refuse(r, m.mac, "network boot", "another address was "
		    "sent the discovery image first");
		goto idle;
	}
	if (a == BOOT_INSTALLER) {
		if ((in = malloc(sizeof *in)) == NULL) {
			http_reply_error(r, 500, "internal", "out of memory");
			goto out;
		}
		a = installer_boot(r, c, &m, bind, in, key, &boots);
		if (a == BOOT_INSTALLER && db_hardware_get(r->app->db, m.mac, &hw)
		    != DB_OK)
			hw = NULL;
	}
	if (created) {
		log_info("req %s: new machine %s (%s, %s) from %s", r->id, m.mac,
		    bi.platform, bi.arch, r->client);
		r->audit.wanted = 1;
		AUDIT_SET(&r->audit, detail, "first network boot (%s, %s)",
		    bi.platform, bi.arch);
	}
	if (created || m.state == MS_FAILED || a == BOOT_INSTALLER) {
		AUDIT_SET(&r->audit, target, "%s", m.mac);
		AUDIT_SET(&r->audit, actor, "%s", m.mac);
	}
	if (a != BOOT_INSTALLER && in != NULL && m.state == MS_FAILED) {
		/* installer_boot just failed the machine */
		r->audit.wanted = 1;
		AUDIT_SET(&r->audit, detail, "too many network boots: install "
		    "failed");
	}
	log_debug("req %s: %s is %s -> %s", r->id, m.mac,
	    machine_state_name(m.state), dispatch_action_name(a));
	goto render;
idle:
	/*
	 * From an address the machine is not bound to: the answer of a
	 * machine with nothing to do (next boot device, or power off with
	 * idle_action = poweroff), not an error page. That is the safest
	 * answer for a real machine whose address changed (its lease moved
	 * in proxy/off mode, or in full mode before the lease hook told
	 * us): it never gets an installer it could not report from and does
	 * not loop on refusals; an error would end in the same next boot
	 * device after boot.ipxe's 10 s wait, with no poweroff. The operator
	 * sees the refusal in the log and the audit trail and queues the
	 * install again, which binds anew. Whoever sent it learns nothing
	 * a discovered machine's answer does not say.
	 */
	a = dispatch_decide(MS_FAILED, c->idle_action, 0);
	AUDIT_SET(&r->audit, detail, "answered %s", dispatch_action_name(a));
render:
	if (install_render_boot(r->app->templates, c, &m, in, hw, a, key, boots,
	    &out, &len, err, sizeof err) == 0)
		reply_script(r, out, len);
	else
		http_reply_error(r, 500, "template", "%s", err);
out:
	bastion_config_release(r->app);
	OPENSSL_cleanse(key, sizeof key);
	json_decref(hw);
	free(in);
	free(out);
}

static void
get_discovery_file(struct request *r)
{
	const char *name = r->params[0];
	const struct config *c;
	char path[PATH_MAX];
	int rc;

	/* Only these two names: nothing from the URL reaches the path. */
	if (strcmp(name, "vmlinuz") != 0 && strcmp(name, "initrd.img") != 0) {
		http_reply_error(r, 404, "not_found", "no such boot file");
		return;
	}
	c = bastion_config_acquire(r->app);
	rc = path_join(path, sizeof path, c->discovery_dir,
	    name[0] == 'v' ? "vmlinuz" : "initrd.img");
	bastion_config_release(r->app);
	if (rc == -1)
		http_reply_error(r, 500, "internal", "discovery_dir is too long");
	else
		http_reply_file(r, path, "application/octet-stream");
}

/* An image OS's root filesystem archive (or root image, or its rest),
 * named by its manifest: nothing from the URL reaches the path but a name
 * the catalog knows. OS images are not secret (DESIGN §11): they hold no
 * host keys or credentials. */
static void
get_os_file(struct request *r)
{
	const struct config *c;
	struct os_image img;
	char why[256], path[PATH_MAX];
	int rc;

	c = bastion_config_acquire(r->app);
	rc = os_image_find(c, r->params[0], &img, why, sizeof why);
	bastion_config_release(r->app);
	if (rc == -1 || os_image_file(&img, r->params[1], path,
	    sizeof path) == -1) {
		http_reply_error(r, 404, "not_found", "no such OS image file");
		return;
	}
	http_reply_file(r, path, "application/zstd");
}

static void
get_installer_file(struct request *r)
{
	const struct config *c;
	char path[PATH_MAX];
	int rc;

	if (strcmp(r->params[0], "tools.img") != 0) {
		http_reply_error(r, 404, "not_found", "no such boot file");
		return;
	}
	c = bastion_config_acquire(r->app);
	rc = path_join(path, sizeof path, c->installer_dir, "tools.img");
	bastion_config_release(r->app);
	if (rc == -1)
		http_reply_error(r, 500, "internal", "installer_dir is too long");
	else
		http_reply_file(r, path, "application/octet-stream");
}

static void
get_ipxe_file(struct request *r)
{
	static const char *const allowed[] = { "ipxe.efi", "snponly.efi",
	    "undionly.kpxe", NULL };
	const struct config *c;
	char path[PATH_MAX];
	int i, rc;

	for (i = 0; allowed[i]; i++)
		if (strcmp(r->params[0], allowed[i]) == 0)
			break;
	if (allowed[i] == NULL) {
		http_reply_error(r, 404, "not_found", "no such boot file");
		return;
	}
	c = bastion_config_acquire(r->app);
	rc = path_join(path, sizeof path, c->ipxe_dir, allowed[i]);
	bastion_config_release(r->app);
	if (rc == -1)
		http_reply_error(r, 500, "internal", "ipxe_dir is too long");
	else
		http_reply_file(r, path, "application/efi");
}

static void
post_discover(struct request *r)
{
	json_t *body, *report = NULL, *old = NULL;
	const struct config *c;
	const char *mac;
	struct machine m;
	struct buf diff;
	enum binding bind;
	char why[256], other[MAC_STRLEN], nic[MAC_STRLEN];
	int rc;

	if ((body = http_body_json(r)) == NULL)
		return;
	if (discover_validate(body, &report, why, sizeof why) == -1) {
		http_reply_error(r, 422, "invalid_report", "%s", why);
		goto out;
	}
	mac = json_string_value(json_object_get(report, "mac"));
	AUDIT_SET(&r->audit, target, "%s", mac);
	AUDIT_SET(&r->audit, actor, "%s", mac);
	if (db_machine_get(r->app->db, mac, &m) != DB_OK) {
		http_reply_error(r, 404, "unknown_machine", "%s never network-"
		    "booted here; a report must follow a boot", mac);
		goto out;
	}
	/* The inventory an install trusts (its disk, its firmware) is the
	 * one taken while the machine ran the discovery image, from where
	 * that image was sent: never a later one, never from elsewhere. */
	if (m.state != MS_DISCOVERING) {
		http_reply_error(r, 409, "wrong_state", "%s is %s; a hardware "
		    "report is taken only from a machine in discovering", mac,
		    machine_state_name(m.state));
		goto out;
	}
	c = bastion_config_acquire(r->app);
	bind = binding_check(r->app->db, c->dhcp_mode, mac, m.discovery_addr,
	    r->client, why, sizeof why);
	bastion_config_release(r->app);
	if (bind == BINDING_FIRST)
		snprintf(why, sizeof why, "%s was not sent the discovery image",
		    mac);
	if (bind == BINDING_REFUSED || bind == BINDING_FIRST) {
		binding_refuse(r, mac, "hardware report", why);
		http_reply_error(r, 403, "forbidden", "a report for %s is taken "
		    "only from the address that was sent its discovery image",
		    mac);
		goto out;
	}
	rc = db_hardware_conflict(r->app->db, mac, report, other, nic);
	if (rc == DB_CONFLICT) {
		http_reply_error(r, 409, "duplicate_mac", "NIC %s of this report "
		    "belongs to machine %s; two machines cannot share a MAC", nic,
		    other);
		goto out;
	}
	if (rc != DB_OK) {
		http_reply_error(r, 500, "internal", "database error");
		goto out;
	}
	buf_init(&diff, 1024);
	if (db_hardware_get(r->app->db, mac, &old) == DB_OK)
		discover_diff(old, report, &diff);
	AUDIT_SET(&r->audit, detail, "%s", old == NULL ? "hardware reported" :
	    diff.len ? diff.data : "hardware re-reported, unchanged");
	rc = db_hardware_store(r->app->db, mac, report,
	    old == NULL ? "hardware reported" : diff.len ? diff.data :
	    "hardware re-reported, unchanged");
	buf_free(&diff);
	if (rc == DB_CONFLICT) {
		http_reply_error(r, 409, "wrong_state", "%s is no longer "
		    "discovering", mac);
		goto out;
	}
	if (rc != DB_OK) {
		http_reply_error(r, 500, "internal", "cannot store the report");
		goto out;
	}
	atomic_fetch_add(&r->app->metrics.discover_reports, 1);
	log_info("req %s: hardware report for %s from %s", r->id, mac, r->client);
	http_reply_json(r, 200, json_pack("{s:s, s:s}", "mac", mac, "state",
	    "discovered"));
out:
	json_decref(old);
	json_decref(report);
	json_decref(body);
}

static void
get_ca_pem(struct request *r)
{
	const char *pem = ca_cert_pem(r->app->ca);

	http_reply_text(r, 200, "application/x-pem-file", pem, strlen(pem));
}

/* Open by design: firmware and installers cannot log in. What they may
 * change (a discovery report, a first boot) is audited as the machine. */
const struct route routes_boot[] = {
	{ L_BOOT, "GET", "/boot.ipxe", get_boot_ipxe, 0,
	    ROLE_NONE, SCOPE_READ, 0, NULL },
	{ L_BOOT, "GET", "/dispatch", get_dispatch, 0,
	    ROLE_NONE, SCOPE_READ, 0, "machine.boot" },
	{ L_BOOT, "GET", "/boot/discovery/{name}", get_discovery_file, 0,
	    ROLE_NONE, SCOPE_READ, 0, NULL },
	{ L_BOOT, "GET", "/boot/os/{name}/{file}", get_os_file, 0,
	    ROLE_NONE, SCOPE_READ, 0, NULL },
	{ L_BOOT, "GET", "/boot/installer/{name}", get_installer_file, 0,
	    ROLE_NONE, SCOPE_READ, 0, NULL },
	{ L_BOOT, "GET", "/boot/{name}", get_ipxe_file, 0,
	    ROLE_NONE, SCOPE_READ, 0, NULL },
	{ L_BOOT, "POST", "/api/v1/discover", post_discover, DISCOVER_MAX_BODY,
	    ROLE_NONE, SCOPE_READ, RF_MUTATES, "machine.discover" },
	{ L_BOOT | L_CONTROL | L_ADMIN, "GET", "/ca.pem", get_ca_pem, 0,
	    ROLE_NONE, SCOPE_READ, 0, NULL },
	{ 0, NULL, NULL, NULL, 0, ROLE_NONE, SCOPE_READ, 0, NULL },
};
