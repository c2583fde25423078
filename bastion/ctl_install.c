/* ctl_install.c — bastionctl machines install|reprovision: queue an
 * install (or a reinstall that keeps the role's preserved volumes) with SSH
 * public keys read from OpenSSH .pub / authorized_keys-style files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "mac.h"

#define KEY_FILES_MAX	32		/* --ssh-key options */
#define KEY_FILE_MAX	(64 * 1024)	/* bytes per file */

int
ctl_mac_arg(const char *in, char out[MAC_STRLEN])
{
	char clean[64];

	if (mac_normalize(in, out) == -1) {
		ctl_error("'%s' is not a MAC address (e.g. 52:54:00:12:34:56, "
		    "52-54-00-12-34-56 or 5254.0012.3456)",
		    ctl_clean(in, clean, sizeof clean, 0));
		return -1;
	}
	return 0;
}

/*
 * One line of a key file into keys. Blank lines and # comments are
 * skipped; the fields are re-joined with single spaces (the server wants
 * "TYPE BASE64 [COMMENT]"). A private key is refused here: it must never
 * leave this machine. cfile is the file's name, cleaned for messages.
 * 0, or -1 with a message.
 */
static int
add_key_line(json_t *keys, const char *cfile, unsigned long line, char *s,
    size_t len)
{
	size_t i, o = 0;
	int space = 0;
	json_t *v;

	if (memchr(s, '\0', len) != NULL) {
		ctl_error("%s:%lu: a NUL byte: not an OpenSSH public key file",
		    cfile, line);
		return -1;
	}
	/* In place: squeeze runs of blanks, drop leading and trailing ones
	 * (and the \r of CRLF files). */
	for (i = 0; i < len; i++) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
			space = o > 0;
			continue;
		}
		if (space)
			s[o++] = ' ';
		space = 0;
		s[o++] = s[i];
	}
	s[o] = '\0';
	if (o == 0 || s[0] == '#')
		return 0;
	if (strncmp(s, "-----BEGIN", 10) == 0 || strstr(s, "PRIVATE KEY") ||
	    strncmp(s, "PuTTY-User-Key-File", 19) == 0) {
		ctl_error("%s:%lu: this is a private key; pass the public key "
		    "(the .pub file) instead", cfile, line);
		return -1;
	}
	if ((v = json_string(s)) == NULL) {
		ctl_error("%s:%lu: not UTF-8 text", cfile, line);
		return -1;
	}
	if (json_array_append_new(keys, v) == -1) {
		ctl_error("out of memory");
		return -1;
	}
	return 0;
}

/* Every key of every file, in order, into a new array *out. */
static int
read_keys(const char *const *files, int nfiles, json_t **out)
{
	struct buf b;
	json_t *keys;
	char *p, *nl, cfile[256];
	unsigned long line;
	size_t before;
	int i, stdin_used = 0;

	if ((keys = json_array()) == NULL) {
		ctl_error("out of memory");
		return -1;
	}
	for (i = 0; i < nfiles; i++)
		if (strcmp(files[i], "-") == 0 && stdin_used++) {
			ctl_error("--ssh-key -: standard input can be read only "
			    "once");
			goto err_keys;
		}
	for (i = 0; i < nfiles; i++) {
		ctl_clean(strcmp(files[i], "-") == 0 ? "(standard input)" :
		    files[i], cfile, sizeof cfile, 0);
		if (ctl_read_file(files[i], KEY_FILE_MAX, &b) == -1)
			goto err_keys;
		before = json_array_size(keys);
		for (p = b.data, line = 1; p < b.data + b.len; p = nl + 1,
		    line++) {
			if ((nl = memchr(p, '\n', (size_t)(b.data + b.len - p))) ==
			    NULL)
				nl = b.data + b.len;
			*nl = '\0';
			if (add_key_line(keys, cfile, line, p,
			    (size_t)(nl - p)) == -1) {
				buf_free(&b);
				goto err_keys;
			}
		}
		buf_free(&b);
		if (json_array_size(keys) == before) {
			ctl_error("%s: no SSH public key in it", cfile);
			goto err_keys;
		}
	}
	*out = keys;
	return 0;

err_keys:
	json_decref(keys);
	return -1;
}

/* Add "key": value to body unless value is NULL. */
static int
set_opt_string(json_t *body, const char *key, const char *value)
{
	json_t *v;

	if (value == NULL)
		return 0;
	if ((v = json_string(value)) == NULL) {
		ctl_error("--%s must be UTF-8 text", key);
		return -1;
	}
	if (json_object_set_new(body, key, v) == -1) {
		ctl_error("out of memory");
		return -1;
	}
	return 0;
}

/* "queued install of MAC: HOST as ROLE, OS on DISK, N SSH keys". */
static void
print_queued(const char *what, const char *mac, const json_t *m)
{
	const json_t *in = json_object_get(m, "install");
	char host[300], role[64], os[64], disk[64];
	size_t n = json_array_size(json_object_get(in, "ssh_keys"));

	ctl_clean(ctl_jstr(in, "hostname"), host, sizeof host, 1);
	ctl_clean(ctl_jstr(in, "role"), role, sizeof role, 1);
	ctl_clean(ctl_jstr(in, "os"), os, sizeof os, 1);
	ctl_clean(ctl_jstr(in, "disk"), disk, sizeof disk, 1);
	printf("queued %s of %s: %s as %s, %s on %s, %zu SSH key%s%s\n", what,
	    mac, host, role, os, disk, n, n == 1 ? "" : "s",
	    json_is_true(json_object_get(in, "reprovision")) ?
	    "; preserved volumes are kept" : "");
}

/* What install and reprovision send; NULL members are left out. */
struct queue_req {
	const char	*hostname, *role, *os, *disk;
	const char	*files[KEY_FILES_MAX];	/* --ssh-key */
	int		 nfiles;
	int		 json;
	int		 reboot, detach;	/* reprovision --reboot */
};

/* POST the install or reprovision of mac; print what was queued and,
 * with a reboot job, wait for the agent's answer unless detach. */
static int
post_queue(struct ctl *c, const char *mac, json_t *body, int reprovision,
    int json, int detach)
{
	char path[80];
	const json_t *job;
	json_t *m, *done;
	int rc;

	snprintf(path, sizeof path, "/api/v1/machines/%s/%s", mac,
	    reprovision ? "reprovision" : "install");
	if (ctl_request(c, "POST", path, body, &m, NULL, NULL) == -1)
		return CTL_ERR;
	job = json_object_get(m, "job");
	if (!json_is_object(m) || !json_is_object(json_object_get(m,
	    "install")) || (json_is_true(json_object_get(body, "reboot")) &&
	    !json_is_object(job)))
		rc = ctl_error("unexpected answer from the server for %s", mac);
	else if (json)
		rc = ctl_print_json(m) == 0 ? CTL_OK : CTL_ERR;
	else {
		print_queued(reprovision ? "reprovision" : "install", mac, m);
		rc = CTL_OK;
		if (job && detach)
			printf("%lld\n", ctl_jint(job, "id", 0));
		else if (job && (rc = ctl_job_wait(c, ctl_jint(job, "id", 0),
		    &done)) == CTL_OK) {
			rc = ctl_job_report(mac, done);
			json_decref(done);
		}
	}
	json_decref(m);
	return rc;
}

int
ctl_reprovision(struct ctl *c, const char *mac, json_t *body, int json,
    int detach)
{
	if (json_object_set_new(body, "reboot", json_true()) == -1)
		return ctl_error("out of memory");
	return post_queue(c, mac, body, 1, json, detach);
}

static int
queue(struct ctl *c, const char *macarg, const struct queue_req *q,
    int reprovision)
{
	char mac[MAC_STRLEN];
	json_t *body, *keys;
	int rc = CTL_ERR;

	if (ctl_mac_arg(macarg, mac) == -1)
		return CTL_ERR;
	if ((body = json_object()) == NULL)
		return ctl_error("out of memory");
	if (set_opt_string(body, "hostname", q->hostname) == -1 ||
	    set_opt_string(body, "role", q->role) == -1 ||
	    set_opt_string(body, "os", q->os) == -1 ||
	    set_opt_string(body, "disk", q->disk) == -1)
		goto out;
	/* A reprovision without --ssh-key keeps the install's keys. */
	if (q->nfiles > 0 || !reprovision) {
		if (read_keys(q->files, q->nfiles, &keys) == -1)
			goto out;
		if (json_object_set_new(body, "ssh_keys", keys) == -1) {
			ctl_error("out of memory");
			goto out;
		}
	}
	if (q->reboot)
		rc = ctl_reprovision(c, mac, body, q->json, q->detach);
	else
		rc = post_queue(c, mac, body, reprovision, q->json, 0);
out:
	json_decref(body);
	return rc;
}

static int
machines_install(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	struct queue_req q;
	const struct ctl_opt opts[] = {
		{ "hostname", &q.hostname, NULL },
		{ "role", &q.role, NULL },
		{ "os", &q.os, NULL },
		{ "disk", &q.disk, NULL },
		{ "json", NULL, &q.json },
		{ NULL, NULL, NULL },
	};
	const struct ctl_multi multi[] = {
		{ "ssh-key", q.files, KEY_FILES_MAX, &q.nfiles },
		{ NULL, NULL, 0, NULL },
	};
	struct ctl_args a;

	memset(&q, 0, sizeof q);
	if (ctl_parse_args_multi(cmd, argc, argv, opts, multi, &a) == -1)
		return a.rc;
	if (q.hostname == NULL)
		return ctl_usage_error(cmd, "--hostname is required");
	if (q.role == NULL)
		return ctl_usage_error(cmd, "--role is required");
	return queue(c, a.pos[0], &q, 0);
}

static int
machines_reprovision(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	struct queue_req q;
	const struct ctl_opt opts[] = {
		{ "hostname", &q.hostname, NULL },
		{ "role", &q.role, NULL },
		{ "reboot", NULL, &q.reboot },
		{ "detach", NULL, &q.detach },
		{ "json", NULL, &q.json },
		{ NULL, NULL, NULL },
	};
	const struct ctl_multi multi[] = {
		{ "ssh-key", q.files, KEY_FILES_MAX, &q.nfiles },
		{ NULL, NULL, 0, NULL },
	};
	struct ctl_args a;

	memset(&q, 0, sizeof q);
	if (ctl_parse_args_multi(cmd, argc, argv, opts, multi, &a) == -1)
		return a.rc;
	if (q.detach && !q.reboot)
		return ctl_usage_error(cmd, "--detach goes with --reboot");
	return queue(c, a.pos[0], &q, 1);
}

const struct ctl_command ctl_install_commands[] = {
	{ "machines", "install", "MAC --hostname H --role R [--ssh-key FILE]... "
	    "[--os OS] [--disk DISK] [--json]",
	    "queue an OS install for its next network boot", machines_install,
	    1, 1, 0 },
	{ "machines", "reprovision", "MAC [--role R] [--hostname H] "
	    "[--ssh-key FILE]... [--reboot [--detach]] [--json]",
	    "reinstall, keeping the role's preserved volumes (--reboot: its "
	    "agent reboots it into network boot)",
	    machines_reprovision, 1, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
