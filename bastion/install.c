/* install.c — install requests and template data. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "agentfiles.h"
#include "hostname.h"
#include "install.h"
#include "mac.h"
#include "oscatalog.h"
#include "roles.h"
#include "templates.h"

int
install_valid_hostname(const char *s)
{
	return hostname_valid(s, 1);
}

static const char *const key_types[] = {
	"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
	"sk-ecdsa-sha2-nistp256@openssh.com", NULL
};

int
install_valid_ssh_key(const char *key, const char **why)
{
	char type[64], blob[8192];
	unsigned char raw[6144];
	const char *p, *comment;
	size_t tlen, blen, i;
	int n, known = 0;
	uint32_t inner;

	if (strlen(key) > 8192) {
		*why = "longer than 8 KiB";
		return -1;
	}
	p = strchr(key, ' ');
	if (p == NULL || (tlen = (size_t)(p - key)) >= sizeof type) {
		*why = "expected: TYPE BASE64 [COMMENT]";
		return -1;
	}
	memcpy(type, key, tlen);
	type[tlen] = '\0';
	for (i = 0; key_types[i]; i++)
		known |= strcmp(type, key_types[i]) == 0;
	if (!known) {
		*why = "unknown key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-*, sk-*)";
		return -1;
	}
	p++;
	blen = strcspn(p, " ");
	if (blen == 0 || blen >= sizeof blob || blen % 4 != 0) {
		*why = "the key data is not base64";
		return -1;
	}
	memcpy(blob, p, blen);
	blob[blen] = '\0';
	for (i = 0; i < blen; i++)
		if (!isalnum((unsigned char)blob[i]) && !strchr("+/=", blob[i])) {
			*why = "the key data is not base64";
			return -1;
		}
	if ((n = EVP_DecodeBlock(raw, (unsigned char *)blob, (int)blen)) < 4 + (int)tlen) {
		*why = "the key data is not base64";
		return -1;
	}
	inner = (uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 |
	    (uint32_t)raw[2] << 8 | raw[3];
	if (inner != tlen || memcmp(raw + 4, type, tlen) != 0) {
		*why = "the key data does not match its type";
		return -1;
	}
	comment = p + blen;
	if (*comment == ' ')
		comment++;
	if (strlen(comment) > 128) {
		*why = "comment longer than 128 characters";
		return -1;
	}
	for (i = 0; comment[i]; i++)
		if (!isalnum((unsigned char)comment[i]) &&
		    !strchr("@._+=:- ", comment[i])) {
			*why = "comment may only hold letters, digits and @._+=:- "
			    "and spaces";
			return -1;
		}
	return 0;
}

static int
valid_disk_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 31)
		return 0;
	for (i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) &&
		    s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

int
install_pick_disk(const json_t *hardware, char *out, size_t len)
{
	const json_t *disks = json_object_get(hardware, "disks"), *d;
	const char *best = NULL, *name;
	size_t i;

	json_array_foreach(disks, i, d) {
		name = json_string_value(json_object_get(d, "name"));
		if (name == NULL || !valid_disk_name(name) ||
		    json_is_true(json_object_get(d, "removable")) ||
		    json_integer_value(json_object_get(d, "size_bytes")) <
		    4LL * 1024 * 1024 * 1024)
			continue;
		if (best == NULL || strcmp(name, best) < 0)
			best = name;
	}
	if (best == NULL || strlen(best) >= len)
		return -1;
	strcpy(out, best);
	return 0;
}

static int
parse_keys(const json_t *keys, struct install *out, char *why, size_t whylen)
{
	const char *kwhy;
	json_t *v;
	char *text;
	size_t i;

	if (!json_is_array(keys)) {
		snprintf(why, whylen, "ssh_keys must be an array of strings");
		return -1;
	}
	if (json_array_size(keys) > INSTALL_MAX_KEYS) {
		snprintf(why, whylen, "at most %d ssh_keys", INSTALL_MAX_KEYS);
		return -1;
	}
	json_array_foreach(keys, i, v) {
		if (!json_is_string(v)) {
			snprintf(why, whylen, "ssh_keys[%zu] must be a string", i);
			return -1;
		}
		if (install_valid_ssh_key(json_string_value(v), &kwhy) == -1) {
			snprintf(why, whylen, "ssh_keys[%zu]: %s", i, kwhy);
			return -1;
		}
	}
	if ((text = json_dumps(keys, JSON_COMPACT)) == NULL ||
	    strlen(text) >= sizeof out->ssh_keys) {
		free(text);
		snprintf(why, whylen, "ssh_keys are too long together");
		return -1;
	}
	strcpy(out->ssh_keys, text);
	free(text);
	return 0;
}

/* An optional string field: NULL when absent, else must be a string. */
static int
opt_string(const json_t *body, const char *key, const char **out, char *why,
    size_t whylen)
{
	const json_t *v = json_object_get(body, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		snprintf(why, whylen, "%s must be a string", key);
		return -1;
	}
	*out = json_string_value(v);
	return 0;
}

int
install_parse(const json_t *body, const struct config *c,
    const json_t *hardware, const struct install *prev, struct install *out,
    char *why, size_t whylen)
{
	const char *hostname, *role, *os, *disk;
	const json_t *keys;
	struct install in;
	const char *key;
	void *iter;

	for (iter = json_object_iter((json_t *)body); iter;
	    iter = json_object_iter_next((json_t *)body, iter)) {
		key = json_object_iter_key(iter);
		if (strcmp(key, "hostname") && strcmp(key, "role") &&
		    strcmp(key, "ssh_keys") && strcmp(key, "os") &&
		    strcmp(key, "disk")) {
			snprintf(why, whylen, "unknown field '%.40s'", key);
			return -1;
		}
	}
	if (opt_string(body, "hostname", &hostname, why, whylen) == -1 ||
	    opt_string(body, "role", &role, why, whylen) == -1 ||
	    opt_string(body, "os", &os, why, whylen) == -1 ||
	    opt_string(body, "disk", &disk, why, whylen) == -1)
		return -1;
	memset(&in, 0, sizeof in);
	if (prev) {
		in = *prev;
		in.id = 0;
		in.boots = in.progress = 0;
		in.key_hash[0] = in.stage[0] = in.message[0] = '\0';
	} else {
		strcpy(in.ssh_keys, "[]");
	}
	if (hostname == NULL && prev == NULL) {
		snprintf(why, whylen, "hostname is required");
		return -1;
	}
	if (hostname) {
		if (!install_valid_hostname(hostname)) {
			snprintf(why, whylen, "hostname '%.64s' is not a valid RFC 1123 "
			    "host name (lower-case letters, digits, '-', '.')", hostname);
			return -1;
		}
		snprintf(in.hostname, sizeof in.hostname, "%s", hostname);
	}
	if (role == NULL && prev == NULL) {
		snprintf(why, whylen, "role is required");
		return -1;
	}
	if (role) {
		if (roles_find(&c->roles, role) == NULL) {
			snprintf(why, whylen, "unknown role '%.32s'", role);
			return -1;
		}
		snprintf(in.role, sizeof in.role, "%s", role);
	}
	if ((keys = json_object_get(body, "ssh_keys")) != NULL &&
	    !json_is_null(keys) && parse_keys(keys, &in, why, whylen) == -1)
		return -1;
	if (os) {
		if (strlen(os) == 0 || strlen(os) >= sizeof in.os ||
		    strspn(os, "abcdefghijklmnopqrstuvwxyz0123456789.-_") !=
		    strlen(os)) {
			snprintf(why, whylen, "os must be 1-31 of [a-z0-9._-]");
			return -1;
		}
		snprintf(in.os, sizeof in.os, "%s", os);
	} else if (prev == NULL) {
		snprintf(in.os, sizeof in.os, "%s", c->install_os);
	}
	switch (os_method(c, in.os)) {
	case OS_UNKNOWN:
		snprintf(why, whylen, "unknown OS '%.31s' (bastionctl os list "
		    "shows what can be installed)", in.os);
		return -1;
	case OS_IMAGE: {
		struct os_image img;
		char iwhy[160];

		if (os_image_find(c, in.os, &img, iwhy, sizeof iwhy) == -1) {
			snprintf(why, whylen, "the image of %.31s cannot be "
			    "installed: %s", in.os, iwhy);
			return -1;
		}
		break;
	}
	case OS_KICKSTART:
		break;
	}
	if (disk) {
		if (!valid_disk_name(disk)) {
			snprintf(why, whylen, "disk must be a device name like sda, "
			    "vda or nvme0n1");
			return -1;
		}
		snprintf(in.disk, sizeof in.disk, "%s", disk);
	} else if (prev == NULL &&
	    install_pick_disk(hardware, in.disk, sizeof in.disk) == -1) {
		snprintf(why, whylen, "no disk given and none found in the hardware "
		    "report (a non-removable disk of at least 4 GiB)");
		return -1;
	}
	*out = in;
	return 0;
}

static const char *
firmware_of(const struct machine *m, const json_t *hardware)
{
	const char *fw = json_string_value(json_object_get(hardware, "firmware"));

	if (fw)
		return fw;
	return strcmp(m->platform, "efi") == 0 ? "uefi" : "bios";
}

json_t *
install_context(const struct config *c, const struct machine *m,
    const struct install *in, const json_t *hardware, const char *key,
    int boot_number)
{
	json_t *ctx, *keys;
	const struct role *r;
	char url[1024];
	int image;

	ctx = json_pack("{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s, s:s, s:s, s:s}}",
	    "bastion", "version", BASTION_VERSION, "boot_url", c->boot_url,
	    "discovery_dir", c->discovery_dir,
	    "machine", "mac", m->mac, "hostname", in ? in->hostname : m->hostname,
	    "state", machine_state_name(m->state), "ip", m->ip,
	    "platform", m->platform, "firmware", firmware_of(m, hardware));
	if (ctx == NULL || in == NULL)
		return ctx;
	r = roles_find(&c->roles, in->role);
	snprintf(url, sizeof url, "%s/ks/%s?k=%s", c->boot_url, m->mac, key);
	json_object_set_new(ctx, "install", json_pack("{s:s, s:s, s:s, s:b,"
	    " s:s, s:i, s:i}", "role", in->role, "os", in->os,
	    "repo", c->install_repo, "reprovision", in->reprovision,
	    "ks_url", url, "boot_number", boot_number,
	    "max_boots", c->install_max_boots));
	snprintf(url, sizeof url, "%s/api/v1/progress/%s?k=%s", c->boot_url,
	    m->mac, key);
	json_object_set_new(json_object_get(ctx, "install"), "progress_url",
	    json_string(url));
	snprintf(url, sizeof url, "%s/install/%s/plan?k=%s", c->boot_url,
	    m->mac, key);
	json_object_set_new(json_object_get(ctx, "install"), "plan_url",
	    json_string(url));
	image = os_method(c, in->os) == OS_IMAGE;
	json_object_set_new(json_object_get(ctx, "install"), "method",
	    json_string(image ? "image" : "kickstart"));
	if ((keys = json_loads(in->ssh_keys, 0, NULL)) == NULL)
		keys = json_array();
	json_object_set_new(ctx, "ssh_keys", keys);
	json_object_set_new(ctx, "storage", json_pack("{s:s, s:s, s:i, s:i, s:o}",
	    "vg", INSTALL_VG, "disk", in->disk, "boot_size_mb", 1024,
	    "efi_size_mb", 600, "volumes",
	    r ? role_volumes_json(r) : json_array()));
	/* The node agent the installer puts on the machine (token and CA
	 * fingerprint are added by install_set_agent): the dynamically
	 * linked agentd for image OSes, built from this machine's own
	 * Debian release (it can load libvirt and liblxc for guests),
	 * agentd-static for kickstart OSes, whose libraries are not ours. */
	{
		const char *bin = image ? "agentd-dynamic" : "agentd";
		char server[CONFIG_URL_LEN], agentd[1024], unit[1024];
		char agentd_sum[AGENTFILE_HEXLEN], unit_sum[AGENTFILE_HEXLEN];

		config_node_url(c, server);
		snprintf(agentd, sizeof agentd, "%s/boot/agent/%s",
		    c->boot_url, bin);
		snprintf(unit, sizeof unit, "%s/boot/agent/agentd.service",
		    c->boot_url);
		/* Their digests, for %post to check what the provisioning
		 * network delivered ("" when unreadable: %post then refuses). */
		if (agentfile_sha256(c, bin, agentd_sum) == -1)
			agentd_sum[0] = '\0';
		if (agentfile_sha256(c, "agentd.service", unit_sum) == -1)
			unit_sum[0] = '\0';
		json_object_set_new(ctx, "agent", json_pack("{s:s, s:s, s:s, s:s,"
		    " s:s, s:s}", "server", server, "agentd_url", agentd,
		    "unit_url", unit, "agentd_sha256", agentd_sum, "unit_sha256",
		    unit_sum, "agentd_build", image ? "dynamic" : "static"));
	}
	return ctx;
}

json_t *
install_plan(const struct config *c, const json_t *ctx,
    const struct os_image *img)
{
	const json_t *m = json_object_get(ctx, "machine"),
	    *in = json_object_get(ctx, "install");
	char url[1024];

	json_t *plan, *root;
	char rest[1024];

	snprintf(url, sizeof url, "%s/boot/os/%s/%s", c->boot_url, img->name,
	    img->file);
	plan = json_pack("{s:s, s:O, s:O, s:O, s:O, s:O, s:O, s:O,"
	    " s:{s:s, s:s, s:I, s:s}, s:O, s:O}", "version", BASTION_VERSION,
	    "mac", json_object_get(m, "mac"),
	    "hostname", json_object_get(m, "hostname"),
	    "os", json_object_get(in, "os"), "role", json_object_get(in, "role"),
	    "reprovision", json_object_get(in, "reprovision"),
	    "progress_url", json_object_get(in, "progress_url"),
	    "storage", json_object_get(ctx, "storage"),
	    "image", "url", url, "sha256", img->sha256, "size",
	    (json_int_t)img->size, "format", "tar.zst",
	    "ssh_keys", json_object_get(ctx, "ssh_keys"),
	    "agent", json_object_get(ctx, "agent"));
	/* The root as a filesystem image when the role's layout can take
	 * it: one stream onto the root volume instead of ~13,000 files.
	 * Additive: the archive above stays the fallback. */
	if (plan == NULL || !os_image_root_fits(img, json_object_get(
	    json_object_get(ctx, "storage"), "volumes")))
		return plan;
	snprintf(url, sizeof url, "%s/boot/os/%s/%s", c->boot_url, img->name,
	    img->root.file);
	snprintf(rest, sizeof rest, "%s/boot/os/%s/%s", c->boot_url, img->name,
	    img->root.rest);
	root = json_pack("{s:s, s:s, s:I, s:I, s:s, s:{s:s, s:s, s:I}}",
	    "url", url, "sha256", img->root.sha256, "size",
	    (json_int_t)img->root.size, "bytes", (json_int_t)img->root.bytes,
	    "fstype", img->root.fstype, "rest", "url", rest, "sha256",
	    img->root.rest_sha256, "size", (json_int_t)img->root.rest_size);
	json_object_set_new(json_object_get(plan, "image"), "root", root);
	return plan;
}

void
install_set_agent(json_t *ctx, const char *ca_fingerprint, const char *token)
{
	json_t *a = json_object_get(ctx, "agent");

	if (a == NULL)
		return;
	json_object_set_new(a, "ca_fingerprint", json_string(ca_fingerprint));
	json_object_set_new(a, "token", json_string(token));
}

const char *
install_template_for(enum boot_action a)
{
	switch (a) {
	case BOOT_DISCOVERY:
		return "discovery.ipxe";
	case BOOT_DISCOVERY_MISSING:
		return "discovery-missing.ipxe";
	case BOOT_IDLE:
		return "idle.ipxe";
	case BOOT_IDLE_POWEROFF:
		return "poweroff.ipxe";
	case BOOT_INSTALLER:
		return "installer.ipxe";
	case BOOT_LOCAL:
		return "local.ipxe";
	}
	return "idle.ipxe";
}

int
install_render_boot(struct templates *t, const struct config *c,
    const struct machine *m, const struct install *in, const json_t *hardware,
    enum boot_action a, const char *key, int boot_number, char **out,
    size_t *outlen, char *err, size_t errlen)
{
	json_t *ctx;
	int rc;

	ctx = install_context(c, m, a == BOOT_INSTALLER ? in : NULL, hardware,
	    key, boot_number);
	if (ctx == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = templates_render(t, a == BOOT_INSTALLER && in &&
	    os_method(c, in->os) == OS_IMAGE ? "installer-image.ipxe" :
	    install_template_for(a), ctx, out, outlen, err, errlen);
	json_decref(ctx);
	return rc;
}
