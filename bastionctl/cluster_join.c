/* cluster_join.c — bastionctl cluster join URL (DESIGN §16): a new bastion
 * takes the CA and job keys of the cluster it joins, on the new machine,
 * before its first start on the shared database.
 *
 *   1. The CA of URL is fetched (GET /ca.pem, not yet verifiable) and
 *      kept only if its fingerprint is the one the operator pinned.
 *   2. With that CA as the only trust anchor, a one-time X25519 public
 *      key goes to POST /api/v1/cluster/join with an admin token; the
 *      answer is the keys, signed with the CA key for this public key and
 *      sealed to it by the signer of URL's bastion (keybundle.h).
 *   3. Opened, checked (the pinned CA, its signature, ca.key is the CA's,
 *      jobs.key is Ed25519) and written to STATE_DIR/ca/ as bastion
 *      makes them: directory 0700, ca.pem 0644, keys 0600, each through
 *      a temporary file and rename. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <ini.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "b64.h"
#include "bio.h"
#include "ctl.h"
#include "file.h"
#include "hostname.h"
#include "keybundle.h"
#include "path.h"
#include "seal.h"

#define JOIN_CONFIG	"/etc/bastion/bastion.conf"
#define JOIN_STATE_DIR	"/var/lib/bastion"	/* bastion's default */
#define JOIN_CA_MAX	(64 * 1024)
#define JOIN_TOKEN_MAX	4096
#define JOIN_BOX_MAX	(256 * 1024)

/* The files of STATE_DIR/ca/ that join writes, in that order: a bastion
 * started after an interrupted join finds ca.pem without its key and
 * refuses to make a CA of its own. */
static const struct {
	const char	*name;
	mode_t		 mode;
} files[] = {
	{ "ca.pem", 0644 },
	{ "ca.key", 0600 },
	{ "jobs.key", 0600 },
};
#define NFILES	(sizeof files / sizeof files[0])

/* "sha256:HEX", "HEX" or "AA:BB:…" (as openssl x509 -fingerprint
 * prints it), any case, into "sha256:" + 64 lower-case hex. */
static int
pin_parse(const char *in, char out[KEYBUNDLE_FP_LEN])
{
	size_t n = 7;

	if (strncasecmp(in, "sha256:", 7) == 0)
		in += 7;
	memcpy(out, "sha256:", 7);
	for (; *in; in++) {
		if (*in == ':')
			continue;
		if (!isxdigit((unsigned char)*in) || n == 7 + 64)
			return -1;
		out[n++] = (char)tolower((unsigned char)*in);
	}
	out[n] = '\0';
	return n == 7 + 64 ? 0 : -1;
}

/* --- the state dir from bastion.conf -------------------------------------- */

struct conf_scan {
	char	dir[PATH_MAX];
	int	found;
	int	too_long;
};

static int
on_conf(void *arg, const char *section, const char *name, const char *value)
{
	struct conf_scan *s = arg;

	if (strcmp(section, "bastion") == 0 && strcmp(name, "state_dir") == 0) {
		if (snprintf(s->dir, sizeof s->dir, "%s", value) >=
		    (int)sizeof s->dir)
			s->too_long = 1;
		s->found = 1;
	}
	return 1;
}

static int
state_dir_from_config(const char *path, char out[PATH_MAX])
{
	struct conf_scan s;
	FILE *fp;
	int rc;

	memset(&s, 0, sizeof s);
	if ((fp = fopen(path, "re")) == NULL) {
		ctl_error("cannot read %s: %s (name the state dir with "
		    "--state-dir DIR, or the configuration with --config FILE)",
		    path, strerror(errno));
		return -1;
	}
	rc = ini_parse_file(fp, on_conf, &s);
	fclose(fp);
	if (rc != 0) {
		ctl_error("%s: line %d: not a valid bastion.conf (check it with "
		    "bastion -n -f %s)", path, rc, path);
		return -1;
	}
	if (s.too_long) {
		ctl_error("%s: [bastion] state_dir is too long", path);
		return -1;
	}
	snprintf(out, PATH_MAX, "%s", s.found ? s.dir : JOIN_STATE_DIR);
	return 0;
}

/* --- step 1: the pinned CA ---------------------------------------------- */

static size_t
on_ca_data(char *p, size_t size, size_t n, void *arg)
{
	return buf_add(arg, p, size * n) == 0 ? size * n : 0;
}

/* GET url/ca.pem without verifying the server (there is nothing to verify
 * it with yet) and without the token; the answer is kept only if the
 * first certificate in it has the pinned fingerprint: that certificate,
 * re-encoded alone, into *pem. */
static int
fetch_ca(const char *url, const char *pin, char **pem)
{
	char err[CURL_ERROR_SIZE] = "", fp[KEYBUNDLE_FP_LEN] = "", *u = NULL;
	struct buf b;
	CURL *curl;
	CURLcode rc;
	long code = 0;
	X509 *x = NULL;
	BIO *in = NULL, *out = NULL;
	int ret = -1;

	buf_init(&b, JOIN_CA_MAX);
	if ((curl = curl_easy_init()) == NULL ||
	    asprintf(&u, "%s/ca.pem", url) == -1) {
		u = NULL;
		ctl_error("out of memory");
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, u);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
#else
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_ca_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "bastionctl/" BASTION_VERSION);
	if ((rc = curl_easy_perform(curl)) != CURLE_OK) {
		char clean[CURL_ERROR_SIZE + 8];

		ctl_error("cannot fetch the CA of %s: %s (is that bastion's "
		    "control listener, https://HOST:PORT?)", url, ctl_clean(
		    err[0] ? err : curl_easy_strerror(rc), clean, sizeof clean, 0));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200 || b.len == 0) {
		ctl_error("%s/ca.pem answered HTTP %ld: is that a bastion?", url,
		    code);
		goto out;
	}
	if ((in = BIO_new_mem_buf(b.data, (int)b.len)) == NULL ||
	    (x = PEM_read_bio_X509(in, NULL, NULL, NULL)) == NULL ||
	    keybundle_fingerprint(x, fp) == -1) {
		ctl_error("%s/ca.pem is not a certificate: is that a bastion?",
		    url);
		goto out;
	}
	if (strlen(fp) != strlen(pin) ||
	    CRYPTO_memcmp(fp, pin, strlen(pin)) != 0) {
		ctl_error("the CA of %s is %s, not the pinned %s: refusing to "
		    "join (check the fingerprint that bastion printed at start, "
		    "or `bastionctl cluster status` there; another host may be "
		    "answering at that address)", url, fp, pin);
		goto out;
	}
	if ((out = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_X509(out, x) ||
	    (*pem = bio_string(out, NULL)) == NULL) {
		ctl_error("out of memory");
		goto out;
	}
	ret = 0;
out:
	BIO_free(in);
	BIO_free(out);
	X509_free(x);
	free(u);
	buf_free(&b);
	if (curl)
		curl_easy_cleanup(curl);
	ERR_clear_error();
	return ret;
}

/* --- step 2: the sealed keys ------------------------------------------- */

/* POST /api/v1/cluster/join over TLS verified against the pinned CA
 * alone; the keys opened and checked into *kb. */
static int
request_keys(const char *url, const char *token, const char *ca_pem,
    const char *pin, struct keybundle *kb)
{
	unsigned char pub[SEAL_KEY_LEN], *box = NULL;
	char host[256], why[256], *pub_b64 = NULL;
	const char *sealed;
	struct ctl c;
	EVP_PKEY *priv = NULL;
	json_t *body = NULL, *reply = NULL;
	size_t blen = 0;
	int rc = -1;

	memset(&c, 0, sizeof c);
	c.server = url;
	c.token = token;
	c.ca_pem = ca_pem;
	if (seal_keypair(&priv, pub) == -1 ||
	    (pub_b64 = b64_encode(pub, sizeof pub)) == NULL ||
	    (body = json_pack("{s:s}", "public_key", pub_b64)) == NULL) {
		ctl_error("cannot make a key pair");
		goto out;
	}
	/* Who is asking, for the other bastion's audit log. */
	if (gethostname(host, sizeof host) == 0 && (host[sizeof host - 1] =
	    '\0', hostname_valid(host, 0)))
		json_object_set_new(body, "name", json_string(host));
	if (ctl_request(&c, "POST", "/api/v1/cluster/join", body, &reply, NULL,
	    NULL) == -1)
		goto out;
	if ((sealed = json_string_value(json_object_get(reply, "sealed"))) ==
	    NULL || strlen(sealed) > JOIN_BOX_MAX ||
	    (box = b64_decode(sealed, JOIN_BOX_MAX, &blen)) == NULL) {
		ctl_bad_answer("the cluster's keys");
		goto out;
	}
	if (keybundle_open(priv, box, blen, pin, kb, why, sizeof why) == -1) {
		ctl_error("%s: refusing the keys: %s", url, why);
		goto out;
	}
	rc = 0;
out:
	ctl_http_free(&c);
	EVP_PKEY_free(priv);
	json_decref(body);
	json_decref(reply);
	free(pub_b64);
	free(box);
	return rc;
}

/* --- step 3: STATE_DIR/ca/ --------------------------------------------- */

static int
read_small(const char *path, struct buf *b)
{
	char chunk[4096];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	while ((n = read(fd, chunk, sizeof chunk)) > 0)
		if (buf_add(b, chunk, (size_t)n) == -1) {
			n = -1;
			errno = EFBIG;
			break;
		}
	OPENSSL_cleanse(chunk, sizeof chunk);
	close(fd);
	return n < 0 ? -1 : 0;
}

/* Whether the file dir/name holds what want holds: the same certificate
 * (ca.pem) or the same key (the others), whatever the encoding. 1 same,
 * 0 different (or not a certificate or key), -1 absent, -2 unreadable
 * (said why). */
static int
same_content(const char *dir, const char *name, const char *want)
{
	char path[PATH_MAX];
	struct buf b;
	BIO *have_bio = NULL, *want_bio = NULL;
	int rc = 0, is_cert = strcmp(name, "ca.pem") == 0;

	buf_init(&b, JOIN_CA_MAX);
	if (path_join(path, sizeof path, dir, name) == -1)
		goto out;
	if (read_small(path, &b) == -1) {
		if (errno == ENOENT)
			rc = -1;
		else {
			ctl_error("cannot read %s: %s", path, strerror(errno));
			rc = -2;
		}
		goto out;
	}
	if (b.len == 0 || (have_bio = BIO_new_mem_buf(b.data, (int)b.len)) ==
	    NULL || (want_bio = BIO_new_mem_buf(want, -1)) == NULL)
		goto out;
	if (is_cert) {
		X509 *h = PEM_read_bio_X509(have_bio, NULL, NULL, NULL);
		X509 *w = PEM_read_bio_X509(want_bio, NULL, NULL, NULL);

		rc = h && w && X509_cmp(h, w) == 0;
		X509_free(h);
		X509_free(w);
	} else {
		EVP_PKEY *h = PEM_read_bio_PrivateKey(have_bio, NULL, NULL, "");
		EVP_PKEY *w = PEM_read_bio_PrivateKey(want_bio, NULL, NULL, "");

		rc = h && w && EVP_PKEY_eq(h, w) == 1;
		EVP_PKEY_free(h);
		EVP_PKEY_free(w);
	}
out:
	BIO_free(have_bio);
	BIO_free(want_bio);
	if (b.data)
		OPENSSL_cleanse(b.data, b.len);
	buf_free(&b);
	ERR_clear_error();
	return rc;
}

/* A bastion running with this state dir holds the pid file's lock. */
static int
bastion_running(const char *state_dir)
{
	char path[PATH_MAX];
	int fd, running = 0;

	if (path_join(path, sizeof path, state_dir, "bastion.pid") == -1)
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK)
		running = 1;
	close(fd);
	return running;
}

/* Write the keys into state_dir/ca. 1 when they were there already. */
static int
write_keys(const char *state_dir, const struct keybundle *kb, int force)
{
	const char *data[NFILES] = { kb->ca_pem, kb->ca_key, kb->jobs_key };
	const size_t lens[NFILES] = { kb->ca_pem_len, kb->ca_key_len,
	    kb->jobs_key_len };
	char cadir[PATH_MAX], from[PATH_MAX], to[PATH_MAX], old[64];
	int same[NFILES], present = 0, differ = 0;
	size_t i;
	int fd;

	if (path_join(cadir, sizeof cadir, state_dir, "ca") == -1) {
		ctl_error("%s: path too long", state_dir);
		return -1;
	}
	for (i = 0; i < NFILES; i++) {
		if ((same[i] = same_content(cadir, files[i].name, data[i])) == -2)
			return -1;
		present += same[i] != -1;
		differ += same[i] == 0;
	}
	if (present == (int)NFILES && differ == 0)
		return 1;
	if (differ && !force) {
		ctl_error("%s holds other keys than the cluster's (a CA of this "
		    "bastion's own, or of another cluster): refusing to replace "
		    "them; --force replaces them (the old files are kept as "
		    "*.old)", cadir);
		return -1;
	}
	if (file_mkdirs(cadir, 0700) == -1 || chmod(cadir, 0700) == -1) {
		ctl_error("%s: %s", cadir, strerror(errno));
		return -1;
	}
	for (i = 0; i < NFILES; i++) {
		if (same[i] != 0)
			continue;
		snprintf(old, sizeof old, "%s.old", files[i].name);
		if (path_join(from, sizeof from, cadir, files[i].name) == -1 ||
		    path_join(to, sizeof to, cadir, old) == -1 ||
		    rename(from, to) == -1) {
			ctl_error("%s: %s", from, strerror(errno));
			return -1;
		}
		fprintf(stderr, "bastionctl: the old %s is kept as %s\n", from,
		    to);
	}
	for (i = 0; i < NFILES; i++) {
		if (same[i] == 1)
			continue;
		/* file_write_atomic says why on stderr */
		if (path_join(to, sizeof to, cadir, files[i].name) == -1 ||
		    file_write_atomic(to, data[i], lens[i], files[i].mode) == -1) {
			ctl_error("cannot write %s in %s", files[i].name, cadir);
			return -1;
		}
	}
	if ((fd = open(cadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		fsync(fd);
		close(fd);
	}
	return 0;
}

/* --- the command -------------------------------------------------------- */

static int
read_token_file(const char *path, char **out)
{
	struct buf b;
	size_t n;

	buf_init(&b, JOIN_TOKEN_MAX);
	if (ctl_read_file(path, JOIN_TOKEN_MAX, &b) == -1)
		return -1;
	n = b.len;
	while (n > 0 && isspace((unsigned char)b.data[n - 1]))
		b.data[--n] = '\0';
	b.len = n;
	*out = buf_take(&b);
	return 0;
}

static int
cluster_join(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *pin_arg = NULL, *token_file = NULL, *state_arg = NULL;
	const char *conf_arg = NULL, *conf, *url;
	char pin[KEYBUNDLE_FP_LEN], state_dir[PATH_MAX], *token = NULL;
	char *ca_pem = NULL, *base = NULL;
	int force = 0, rc = CTL_ERR, w;
	const struct ctl_opt opts[] = {
		{ "ca-sha256", &pin_arg, NULL },
		{ "token-file", &token_file, NULL },
		{ "state-dir", &state_arg, NULL },
		{ "config", &conf_arg, NULL },
		{ "force", NULL, &force },
		{ NULL, NULL, NULL },
	};
	struct keybundle kb;
	struct ctl_args a;

	memset(&kb, 0, sizeof kb);
	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	url = a.pos[0];
	if (strncmp(url, "https://", 8) != 0 || url[8] == '\0' ||
	    strpbrk(url, " \t\r\n?#") != NULL)
		return ctl_usage_error(cmd, "URL must be the other bastion's "
		    "control listener, https://HOST:PORT");
	if (state_arg && conf_arg)
		return ctl_usage_error(cmd, "--state-dir and --config exclude "
		    "each other");
	conf = conf_arg ? conf_arg : JOIN_CONFIG;
	if (pin_arg == NULL)
		return ctl_usage_error(cmd, "--ca-sha256 is required: the "
		    "fingerprint of the cluster's CA (bastion prints it at start: "
		    "\"CA sha256:…\"; `bastionctl cluster status` shows it)");
	if (pin_parse(pin_arg, pin) == -1)
		return ctl_usage_error(cmd, "--ca-sha256: not a SHA-256 "
		    "fingerprint (sha256: and 64 hex digits)");
	if (token_file && read_token_file(token_file, &token) == -1)
		return CTL_ERR;
	if (token == NULL && c->token && (token = strdup(c->token)) == NULL)
		return ctl_error("out of memory");
	if (token == NULL || *token == '\0') {
		free(token);
		return ctl_usage_error(cmd, "an admin API token of the other "
		    "bastion is required: --token-file FILE or BASTION_TOKEN");
	}
	if (state_arg) {
		if (state_arg[0] != '/' || (w = snprintf(state_dir,
		    sizeof state_dir, "%s", state_arg)) >= (int)sizeof state_dir) {
			free(token);
			return ctl_usage_error(cmd, "--state-dir must be an "
			    "absolute path");
		}
	} else if (state_dir_from_config(conf, state_dir) == -1)
		goto out;
	if (state_dir[0] != '/') {
		ctl_error("%s: [bastion] state_dir is not an absolute path", conf);
		goto out;
	}
	if (bastion_running(state_dir)) {
		ctl_error("bastion is running with the state dir %s: stop it "
		    "first (its keys are loaded)", state_dir);
		goto out;
	}
	if ((base = strdup(url)) == NULL) {
		ctl_error("out of memory");
		goto out;
	}
	for (w = (int)strlen(base); w > 8 && base[w - 1] == '/'; w--)
		base[w - 1] = '\0';
	if (fetch_ca(base, pin, &ca_pem) == -1 ||
	    request_keys(base, token, ca_pem, pin, &kb) == -1)
		goto out;
	switch (write_keys(state_dir, &kb, force)) {
	case 1:
		ctl_line("%s/ca already holds the keys of the cluster of %s (CA "
		    "%s): nothing to do", state_dir, base, kb.fingerprint);
		rc = CTL_OK;
		break;
	case 0:
		ctl_line("joined the cluster of %s: its CA (%s), CA key and job "
		    "key are in %s/ca", base, kb.fingerprint, state_dir);
		ctl_line("next: the same [database] url as the other bastions in "
		    "%s, this bastion's address in every bastion's [control] "
		    "names, then start bastion", state_arg ? "bastion.conf" :
		    conf);
		rc = CTL_OK;
		break;
	}
out:
	keybundle_free(&kb);
	if (token) {
		OPENSSL_cleanse(token, strlen(token));
		free(token);
	}
	free(ca_pem);
	free(base);
	return rc;
}

const struct ctl_command ctl_cluster_join_commands[] = {
	{ "cluster", "join", "URL --ca-sha256 FINGERPRINT [--token-file FILE] "
	    "[--state-dir DIR | --config FILE] [--force]",
	    "take the CA and job key of the cluster of the bastion at URL "
	    "(run on the new bastion, before its first start)", cluster_join,
	    1, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
