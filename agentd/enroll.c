/* enroll.c — first contact and the agent's identity: pin the CA by the
 * fingerprint the kickstart carried, make the key (EC P-256, 0600, never
 * sent anywhere), send a CSR with the one-time token, keep the
 * certificate and the job-verification keys; renew later. */
#ifndef AGENTD_NO_CURL	/* the discovery image has no libcurl, OpenSSL or inih */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#define LOG_SUBSYS "enroll"
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "buf.h"
#include "file.h"
#include "http1.h"
#include "inventory.h"
#include "log.h"

/* Whether a "sha256:hex" fingerprint is the pinned one (constant time). */
static int
pin_match(const char *fp, const char *want)
{
	size_t n = strlen(want);

	return n > 7 && strlen(fp) == n && agent_equal(fp, want, n);
}

/* The pin as written in the config, without colons. */
static void
pin_normalize(const char *in, char out[80])
{
	size_t o = 0;

	for (; *in && o < 79; in++)
		if (*in != ':' || o < 7)
			out[o++] = *in;
	out[o] = '\0';
}

static int
read_file(const char *path, size_t max, char **out)
{
	struct buf b;
	char chunk[4096];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	buf_init(&b, max);
	while ((n = read(fd, chunk, sizeof chunk)) > 0)
		if (buf_add(&b, chunk, (size_t)n) == -1) {
			n = -1;
			break;
		}
	close(fd);
	if (n < 0) {
		buf_free(&b);
		return -1;
	}
	*out = buf_take(&b);
	return 0;
}

static int
write_state(const struct agent_conf *c, const char *name, const char *data,
    mode_t mode)
{
	char path[PATH_MAX];

	if (agent_path(c, name, path, sizeof path) == -1)
		return -1;
	return file_write_atomic(path, data, strlen(data), mode);
}

int
agent_enrolled(const struct agent_conf *c)
{
	char path[PATH_MAX];

	return agent_path(c, "cert.pem", path, sizeof path) == 0 &&
	    access(path, R_OK) == 0 &&
	    agent_path(c, "agent.json", path, sizeof path) == 0 &&
	    access(path, R_OK) == 0 &&
	    agent_path(c, "key.pem", path, sizeof path) == 0 &&
	    access(path, R_OK) == 0;
}

/*
 * First contact: the CA certificate from the server, accepted only if
 * its fingerprint is the pinned one; it is then the only trust anchor.
 * The fetch itself cannot verify anything yet; the pin does.
 */
static int
pin_ca(const struct agent_conf *c, int *retry)
{
	char fp[80] = "", want[80], err[512], *pem = NULL, *ca = NULL;
	long code;
	int rc = -1;

	if (c->ca_fingerprint[0] == '\0') {
		log_warnx("%s: no ca_fingerprint to pin the server's CA with",
		    c->path);
		return -1;
	}
	code = aclient_fetch_unverified(c, "/ca.pem", 64 * 1024, &pem, err,
	    sizeof err);
	if (code == 0) {
		log_warnx("cannot reach %s/ca.pem: %s", agent_server(c),
		    err);
		*retry = 1;
		goto out;
	}
	if (code != 200 || pem == NULL) {
		log_warnx("%s/ca.pem answered HTTP %ld", agent_server(c),
		    code);
		*retry = code >= 500 || code == 429;
		goto out;
	}
	pin_normalize(c->ca_fingerprint, want);
	/* The first certificate alone, re-encoded: what the fetch brought
	 * besides it (more certificates, CRLs) must not become a trust
	 * anchor, since the file is loaded whole as the only CA. */
	if (agent_first_cert_pem(pem, &ca) == -1 ||
	    agent_fingerprint(ca, fp) == -1 ||
	    !pin_match(fp, want)) {
		log_warnx("the server's CA is %s but %s pins %s: refusing to "
		    "enroll", fp[0] ? fp : "unreadable", c->path, want);
		goto out;
	}
	if (write_state(c, "ca.pem", ca, 0644) == -1)
		goto out;
	log_info("pinned the CA %s", fp);
	rc = 0;
out:
	free(ca);
	free(pem);
	return rc;
}

/* A new EC P-256 key in state_dir/name (0600) and a CSR for it. */
static int
make_key_csr(const struct agent_conf *c, const char *name, const char *cn,
    char **csr_out)
{
	char *kpem, *csr;
	int rc = -1;

	if (agent_key_csr(cn, &kpem, &csr) == -1)
		return -1;
	if (write_state(c, name, kpem, 0600) == 0) {
		*csr_out = csr;
		csr = NULL;
		rc = 0;
	}
	explicit_bzero(kpem, strlen(kpem));
	free(kpem);
	free(csr);
	return rc;
}

/* The MAC of the interface that holds addr, from /sys/class/net. */
static int
iface_mac(const struct sockaddr *addr, char out[MAC_STRLEN])
{
	struct ifaddrs *ifs, *i;
	char rel[IF_NAMESIZE + 32], v[64], mac[MAC_STRLEN];
	int rc = -1;

	if (getifaddrs(&ifs) == -1)
		return -1;
	for (i = ifs; i && rc == -1; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family !=
		    addr->sa_family)
			continue;
		if (addr->sa_family == AF_INET ? memcmp(
		    &((const struct sockaddr_in *)i->ifa_addr)->sin_addr,
		    &((const struct sockaddr_in *)addr)->sin_addr,
		    sizeof(struct in_addr)) : memcmp(
		    &((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
		    &((const struct sockaddr_in6 *)addr)->sin6_addr,
		    sizeof(struct in6_addr)))
			continue;
		snprintf(rel, sizeof rel, "sys/class/net/%s/address",
		    i->ifa_name);
		/* lo (all zeroes) has no MAC to speak of. */
		if (inventory_read_str("/", rel, v, sizeof v) == 0 &&
		    mac_normalize(v, mac) == 0 &&
		    strcmp(mac, "00:00:00:00:00:00") != 0) {
			memcpy(out, mac, MAC_STRLEN);
			rc = 0;
		}
	}
	freeifaddrs(ifs);
	return rc;
}

int
agent_route_mac(const struct agent_conf *c, char out[MAC_STRLEN])
{
	struct addrinfo hints, *res, *ai;
	struct sockaddr_storage ss;
	socklen_t sl;
	struct h1_url u;
	int fd, rc = -1;

	if (h1_url_parse(agent_server(c), &u) == -1)
		return -1;
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_DGRAM;
	/* An address (what kickstarts write) needs no resolver. */
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(u.host, u.port, &hints, &res) != 0) {
		hints.ai_flags = 0;
		if (getaddrinfo(u.host, u.port, &hints, &res) != 0)
			return -1;
	}
	/* connect() on a UDP socket sends nothing: it picks the route and
	 * with it the source address, which names the interface. */
	for (ai = res; ai && rc == -1; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0))
		    == -1)
			continue;
		sl = sizeof ss;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			rc = iface_mac((struct sockaddr *)&ss, out);
		close(fd);
	}
	freeaddrinfo(res);
	return rc;
}

static int
save_answer(const struct agent_conf *c, const json_t *a)
{
	const char *cert = json_string_value(json_object_get(a, "certificate"));
	const char *ca = json_string_value(json_object_get(a, "ca"));
	const char *id = json_string_value(json_object_get(a, "agent_id"));
	json_t *keys = json_object_get(a, "job_keys"), *st;
	char fp[80] = "", want[80], *text;
	int rc;

	pin_normalize(c->ca_fingerprint, want);
	if (cert == NULL || ca == NULL || id == NULL || !json_is_array(keys) ||
	    json_array_size(keys) == 0) {
		log_warnx("the enrollment answer is incomplete");
		return -1;
	}
	if (want[0] && (agent_fingerprint(ca, fp) == -1 ||
	    !pin_match(fp, want))) {
		log_warnx("the enrollment answer names another CA (%s)", fp);
		return -1;
	}
	st = json_pack("{s:s, s:O, s:O, s:O}", "agent_id", id,
	    "not_before", json_object_get(a, "not_before"),
	    "not_after", json_object_get(a, "not_after"), "job_keys", keys);
	if (st == NULL || (text = json_dumps(st, JSON_INDENT(2))) == NULL) {
		json_decref(st);
		return -1;
	}
	json_decref(st);
	rc = write_state(c, "cert.pem", cert, 0644) == 0 &&
	    write_state(c, "agent.json", text, 0644) == 0 ? 0 : -1;
	free(text);
	return rc;
}

int
agent_enroll(const struct agent_conf *c, int *retry)
{
	struct inventory_opts io = { c->inventory_root, NULL, 0 };
	char host[254], mac[MAC_STRLEN], err[512], *csr = NULL;
	struct aclient *a = NULL;
	json_t *body = NULL, *reply = NULL, *inv = NULL;
	long code;
	int rc = -1;

	*retry = 0;
	if (c->token[0] == '\0') {
		log_warnx("%s: not enrolled and no token to enroll with", c->path);
		return -1;
	}
	if (mkdir(c->state_dir, 0700) == -1 && errno != EEXIST) {
		log_warn("%s", c->state_dir);
		return -1;
	}
	if (c->hostname[0])
		snprintf(host, sizeof host, "%s", c->hostname);
	else if (gethostname(host, sizeof host) == -1)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	/* The MAC: the config's, else that of the interface that routes to
	 * bastion, else the inventory's boot NIC rule. */
	if (c->mac[0])
		snprintf(mac, sizeof mac, "%s", c->mac);
	else if (agent_route_mac(c, mac) == -1)
		mac[0] = '\0';
	io.boot_mac = mac[0] ? mac : NULL;
	if (inventory_collect(&io, &inv) == -1)
		inv = json_object();
	if (mac[0] == '\0') {
		if (json_string_value(json_object_get(inv, "boot_mac")) == NULL) {
			log_warnx("cannot tell this machine's MAC: no interface "
			    "with one routes to %s and no network interface is "
			    "seen; set mac = in %s", agent_server(c), c->path);
			json_decref(inv);
			return -1;
		}
		snprintf(mac, sizeof mac, "%s", json_string_value(
		    json_object_get(inv, "boot_mac")));
	}
	if (pin_ca(c, retry) == -1)
		goto out;
	if (make_key_csr(c, "key.pem", host, &csr) == -1) {
		log_warnx("cannot make the key and the CSR");
		goto out;
	}
	/* "o" takes inv, even when the pack fails. */
	body = json_pack("{s:s, s:s, s:s, s:s, s:o}", "token", c->token,
	    "csr", csr, "hostname", host, "mac", mac, "inventory", inv);
	inv = NULL;
	if (body == NULL || (a = aclient_new(c, 0)) == NULL)
		goto out;
	code = aclient_call(a, "POST", "/api/v1/enroll", body, 60000, &reply,
	    err, sizeof err);
	if (code == 201) {
		if (save_answer(c, reply) == 0) {
			log_info("enrolled as agent %s (%s, %s)",
			    json_string_value(json_object_get(reply, "agent_id")),
			    host, mac);
			rc = 0;
		}
	} else if (code == 0) {
		log_warnx("enrollment: %s", err);
		*retry = 1;
	} else {
		log_warnx("enrollment refused (HTTP %ld): %s", code,
		    aclient_error_message(reply));
		*retry = code == 429 || code >= 500;
	}
out:
	aclient_free(a);
	json_decref(reply);
	json_decref(body);
	json_decref(inv);
	free(csr);
	return rc;
}

static int64_t
iso_seconds(const char *s)
{
	struct tm tm;

	memset(&tm, 0, sizeof tm);
	if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
		return 0;
	return (int64_t)timegm(&tm);
}

void
agent_state_free(struct agent_state *s)
{
	memset(s->keys, 0, sizeof s->keys);	/* raw public keys: nothing to free */
	s->nkeys = 0;
}

int
agent_state_load(const struct agent_conf *c, struct agent_state *s)
{
	char path[PATH_MAX], *text = NULL;
	const json_t *k;
	json_t *j = NULL;
	const char *id, *pem;
	size_t i;

	memset(s, 0, sizeof *s);
	if (agent_path(c, "agent.json", path, sizeof path) == -1 ||
	    read_file(path, 1 << 20, &text) == -1 ||
	    (j = json_loads(text, 0, NULL)) == NULL) {
		log_warnx("%s is missing or unreadable", path);
		free(text);
		return -1;
	}
	free(text);
	id = json_string_value(json_object_get(j, "agent_id"));
	if (id == NULL || strlen(id) >= sizeof s->agent_id)
		goto err;
	snprintf(s->agent_id, sizeof s->agent_id, "%s", id);
	s->not_before = iso_seconds(json_string_value(json_object_get(j,
	    "not_before")));
	s->not_after = iso_seconds(json_string_value(json_object_get(j,
	    "not_after")));
	json_array_foreach(json_object_get(j, "job_keys"), i, k) {
		if (s->nkeys == AGENT_MAX_KEYS)
			break;
		pem = json_string_value(json_object_get(k, "public_key"));
		if (pem == NULL || agent_ed25519_pem(pem,
		    s->keys[s->nkeys].pub) == -1 ||
		    envelope_key_id_raw(s->keys[s->nkeys].pub,
		    s->keys[s->nkeys].id) == -1)
			continue;
		s->nkeys++;
	}
	if (s->nkeys == 0)
		goto err;
	json_decref(j);
	return 0;
err:
	log_warnx("%s is not a usable agent state", path);
	agent_state_free(s);
	json_decref(j);
	return -1;
}

/* The public keys of a job_keys array, in order, are those of pinned. */
static int
same_keys(const json_t *pinned, const json_t *keys)
{
	size_t i;
	const char *a, *b;

	if (json_array_size(pinned) != json_array_size(keys))
		return 0;
	for (i = 0; i < json_array_size(pinned); i++) {
		a = json_string_value(json_object_get(json_array_get(pinned, i),
		    "public_key"));
		b = json_string_value(json_object_get(json_array_get(keys, i),
		    "public_key"));
		if (a == NULL || b == NULL || strcmp(a, b) != 0)
			return 0;
	}
	return 1;
}

/* The job keys agent.json pinned at enrollment (a new reference), or
 * NULL. */
static json_t *
pinned_keys(const struct agent_conf *c)
{
	char path[PATH_MAX], *text = NULL;
	json_t *j, *keys = NULL;

	if (agent_path(c, "agent.json", path, sizeof path) == -1 ||
	    read_file(path, 1 << 20, &text) == -1)
		return NULL;
	if ((j = json_loads(text, 0, NULL)) != NULL &&
	    json_array_size(json_object_get(j, "job_keys")) > 0)
		keys = json_incref(json_object_get(j, "job_keys"));
	json_decref(j);
	free(text);
	return keys;
}

int
agent_renew(const struct agent_conf *c, struct agent_state *s)
{
	char err[512], *csr = NULL, path[PATH_MAX], next[PATH_MAX];
	const char *cert;
	struct aclient *a;
	json_t *body = NULL, *reply = NULL, *st = NULL, *keys, *offered;
	char *text = NULL;
	long code;
	int rc = -1;

	/* The job keys stay those pinned at enrollment, whatever a renewal
	 * answer says: whoever holds the control listener's TLS (or the
	 * database) must not get to choose what the node runs. A rotation
	 * would be a signed operation of its own. */
	if ((keys = pinned_keys(c)) == NULL) {
		log_warnx("renewal: no pinned job keys in agent.json");
		return -1;
	}
	/* The new key waits beside the old one until bastion signed it. */
	if (make_key_csr(c, "key.pem.next", s->agent_id, &csr) == -1) {
		json_decref(keys);
		return -1;
	}
	if ((a = aclient_new(c, 1)) == NULL)
		goto out;
	body = json_pack("{s:s}", "csr", csr);
	code = aclient_call(a, "POST", "/agent/v1/renew", body, 30000, &reply,
	    err, sizeof err);
	aclient_free(a);
	if (code != 200 || (cert = json_string_value(json_object_get(reply,
	    "certificate"))) == NULL) {
		log_warnx("renewal failed (HTTP %ld): %s", code, code ? 
		    aclient_error_message(reply) : err);
		goto out;
	}
	offered = json_object_get(reply, "job_keys");
	if (offered != NULL && !same_keys(keys, offered))
		log_warnx("renewal: the answer carries other job keys than those "
		    "pinned at enrollment: kept the pinned ones (job keys do not "
		    "change by renewal)");
	if (agent_path(c, "key.pem.next", next, sizeof next) == -1 ||
	    agent_path(c, "key.pem", path, sizeof path) == -1 ||
	    write_state(c, "cert.pem.next", cert, 0644) == -1)
		goto out;
	/* Key first: a crash between the renames leaves a new key with the
	 * old certificate, which the next start repairs from cert.pem.next. */
	if (rename(next, path) == -1 ||
	    agent_path(c, "cert.pem.next", next, sizeof next) == -1 ||
	    agent_path(c, "cert.pem", path, sizeof path) == -1 ||
	    rename(next, path) == -1) {
		log_warn("installing the renewed certificate");
		goto out;
	}
	aclient_credentials_changed();
	st = json_pack("{s:s, s:O, s:O, s:O}", "agent_id", s->agent_id,
	    "not_before", json_object_get(reply, "not_before"),
	    "not_after", json_object_get(reply, "not_after"),
	    "job_keys", keys);
	if (st && (text = json_dumps(st, JSON_INDENT(2))) != NULL &&
	    write_state(c, "agent.json", text, 0644) == 0) {
		s->not_before = iso_seconds(json_string_value(json_object_get(
		    reply, "not_before")));
		s->not_after = iso_seconds(json_string_value(json_object_get(
		    reply, "not_after")));
		log_info("certificate renewed until %s", json_string_value(
		    json_object_get(reply, "not_after")));
		rc = 0;
	}
out:
	free(text);
	json_decref(st);
	json_decref(keys);
	json_decref(body);
	json_decref(reply);
	free(csr);
	return rc;
}
#endif /* AGENTD_NO_CURL */
