/* ca.c — the CA with OpenSSL. Key files are created 0600 through a
 * temporary file and rename, and key material is wiped after use. */
#define LOG_SUBSYS "ca"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bio.h"
#include "buf.h"
#include "ca.h"
#include "file.h"
#include "log.h"
#include "path.h"
#include "signer.h"

#define CA_DAYS		3650
#define SERVER_DAYS	397
#define RENEW_BEFORE	(30L * 86400)

struct ca {
	char		 dir[PATH_MAX];
	EVP_PKEY	*ca_key;
	X509		*ca_cert;
	char		*ca_pem;
	EVP_PKEY	*srv_key;
	X509		*srv_cert;
	EVP_PKEY	*jobs_key;	/* Ed25519, ca/jobs.key (ca_sign.c);
					   public only after ca_privsep */
	struct signer	*signer;	/* signer.c, after ca_privsep */
};

static EVP_PKEY *
new_p256_key(void)
{
	return EVP_EC_gen("P-256");
}

static int
set_serial(X509 *x)
{
	unsigned char r[16];
	BIGNUM *bn;
	int rc = -1;

	if (RAND_bytes(r, sizeof r) != 1)
		return -1;
	r[0] &= 0x7f;	/* positive */
	if ((bn = BN_bin2bn(r, sizeof r, NULL)) == NULL)
		return -1;
	if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
		rc = 0;
	BN_free(bn);
	return rc;
}

int
ca_add_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int rc;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	rc = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return rc;
}

static void
wipe_free(char *s, size_t len)
{
	if (s) {
		OPENSSL_cleanse(s, len);
		free(s);
	}
}

static int
save_pair(const char *dir, const char *name, EVP_PKEY *k, X509 *x)
{
	char path[PATH_MAX];
	char *kp = NULL, *cp = NULL;
	size_t klen = 0, clen = 0;
	int rc = -1;

	if ((kp = bio_key_pem(k, &klen)) == NULL ||
	    (cp = bio_cert_pem(x, &clen)) == NULL)
		goto out;
	snprintf(path, sizeof path, "%s/%s.key", dir, name);
	if (file_write_atomic(path, kp, klen, 0600) == -1) {
		goto out;
	}
	snprintf(path, sizeof path, "%s/%s.pem", dir, name);
	if (file_write_atomic(path, cp, clen, 0644) == -1) {
		goto out;
	}
	rc = 0;
out:
	wipe_free(kp, klen);
	free(cp);
	return rc;
}

static int
load_pair(const char *dir, const char *name, EVP_PKEY **k, X509 **x)
{
	char path[PATH_MAX];
	FILE *fp;
	struct stat st;

	snprintf(path, sizeof path, "%s/%s.key", dir, name);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	if (fstat(fileno(fp), &st) == 0 && (st.st_mode & 077)) {
		log_warnx("%s is readable by others; fixing its mode to 0600", path);
		fchmod(fileno(fp), 0600);
	}
	*k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	snprintf(path, sizeof path, "%s/%s.pem", dir, name);
	if ((fp = fopen(path, "r")) == NULL) {
		EVP_PKEY_free(*k);
		return -1;
	}
	*x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (*k == NULL || *x == NULL || X509_check_private_key(*x, *k) != 1) {
		log_warnx("%s/%s.{key,pem} are unreadable or do not match", dir,
		    name);
		EVP_PKEY_free(*k);
		X509_free(*x);
		*k = NULL;
		*x = NULL;
		return -1;
	}
	return 0;
}

static int
create_ca(struct ca *ca)
{
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	X509_NAME *name;
	char host[256] = "bastion", cn[300];

	gethostname(host, sizeof host - 1);
	snprintf(cn, sizeof cn, "Bastion CA (%s)", host);
	if ((k = new_p256_key()) == NULL || (x = X509_new()) == NULL)
		goto err;
	if (X509_set_version(x, 2) != 1 || set_serial(x) == -1)
		goto err;
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)CA_DAYS * 86400);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"Bastion", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, k);
	if (ca_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    ca_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    ca_add_ext(x, x, NID_subject_key_identifier, "hash"))
		goto err;
	if (X509_sign(x, k, EVP_sha256()) == 0)
		goto err;
	if (save_pair(ca->dir, "ca", k, x) == -1)
		goto err;
	ca->ca_key = k;
	ca->ca_cert = x;
	log_info("created CA \"%s\" in %s", cn, ca->dir);
	return 0;
err:
	log_warnx("cannot create the CA");
	EVP_PKEY_free(k);
	X509_free(x);
	return -1;
}

static int
san_string(const char names[][CONFIG_NAME_LEN], int n, char *out, size_t len)
{
	unsigned char tmp[16];
	size_t used = 0;
	int i, w;

	out[0] = '\0';
	for (i = 0; i < n; i++) {
		int ip = inet_pton(AF_INET, names[i], tmp) == 1 ||
		    inet_pton(AF_INET6, names[i], tmp) == 1;

		w = snprintf(out + used, len - used, "%s%s:%s", i ? "," : "",
		    ip ? "IP" : "DNS", names[i]);
		if (w < 0 || (size_t)w >= len - used)
			return -1;
		used += (size_t)w;
	}
	return 0;
}

/* The SANs in the certificate, in the same "DNS:a,IP:b" form. */
static void
cert_sans(X509 *x, char *out, size_t len)
{
	GENERAL_NAMES *gens;
	size_t used = 0;
	int i;

	out[0] = '\0';
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char v[INET6_ADDRSTRLEN + 1] = "";
		const char *kind = "?";
		int w;

		if (g->type == GEN_DNS) {
			kind = "DNS";
			snprintf(v, sizeof v, "%.*s", ASN1_STRING_length(g->d.dNSName),
			    (const char *)ASN1_STRING_get0_data(g->d.dNSName));
		} else if (g->type == GEN_IPADD) {
			int l = ASN1_STRING_length(g->d.iPAddress);

			kind = "IP";
			inet_ntop(l == 4 ? AF_INET : AF_INET6,
			    ASN1_STRING_get0_data(g->d.iPAddress), v, sizeof v);
		}
		w = snprintf(out + used, len - used, "%s%s:%s", i ? "," : "",
		    kind, v);
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
	GENERAL_NAMES_free(gens);
}

static int
issue_server(struct ca *ca, const char *sans, const char *cn)
{
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	X509_NAME *name;

	if ((k = new_p256_key()) == NULL || (x = X509_new()) == NULL)
		goto err;
	if (X509_set_version(x, 2) != 1 || set_serial(x) == -1)
		goto err;
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)SERVER_DAYS * 86400);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"Bastion", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(ca->ca_cert));
	X509_set_pubkey(x, k);
	if (ca_add_ext(ca->ca_cert, x, NID_basic_constraints, "critical,CA:FALSE") ||
	    ca_add_ext(ca->ca_cert, x, NID_key_usage,
	    "critical,digitalSignature,keyEncipherment") ||
	    ca_add_ext(ca->ca_cert, x, NID_ext_key_usage, "serverAuth") ||
	    ca_add_ext(ca->ca_cert, x, NID_subject_alt_name, sans) ||
	    ca_add_ext(ca->ca_cert, x, NID_authority_key_identifier, "keyid:always"))
		goto err;
	if (X509_sign(x, ca->ca_key, EVP_sha256()) == 0)
		goto err;
	if (save_pair(ca->dir, "server", k, x) == -1)
		goto err;
	EVP_PKEY_free(ca->srv_key);
	X509_free(ca->srv_cert);
	ca->srv_key = k;
	ca->srv_cert = x;
	log_info("issued the control listener's certificate for %s", sans);
	return 0;
err:
	log_warnx("cannot issue the server certificate");
	EVP_PKEY_free(k);
	X509_free(x);
	return -1;
}

long
ca_server_expires_in(struct ca *ca)
{
	int days = 0, secs = 0;

	if (ca->srv_cert == NULL || ASN1_TIME_diff(&days, &secs, NULL,
	    X509_get0_notAfter(ca->srv_cert)) != 1)
		return -1;
	return (long)days * 86400 + secs;
}

int
ca_open(const char *state_dir, const char names[][CONFIG_NAME_LEN], int nnames,
    struct ca **out)
{
	struct ca *ca;
	char want[4096], have[4096];
	size_t len;

	if ((ca = calloc(1, sizeof *ca)) == NULL)
		return -1;
	snprintf(ca->dir, sizeof ca->dir, "%s/ca", state_dir);
	if (mkdir(ca->dir, 0700) == -1 && errno != EEXIST) {
		log_warn("%s", ca->dir);
		goto err;
	}
	chmod(ca->dir, 0700);
	if (load_pair(ca->dir, "ca", &ca->ca_key, &ca->ca_cert) == -1) {
		char path[PATH_MAX];

		if (path_join(path, sizeof path, ca->dir, "ca.pem") == 0 &&
		    access(path, F_OK) == 0) {
			log_warnx("%s exists but cannot be used; refusing to "
			    "replace a CA", path);
			goto err;
		}
		if (create_ca(ca) == -1)
			goto err;
	}
	if ((ca->ca_pem = bio_cert_pem(ca->ca_cert, &len)) == NULL)
		goto err;
	if (san_string(names, nnames, want, sizeof want) == -1)
		goto err;
	if (load_pair(ca->dir, "server", &ca->srv_key, &ca->srv_cert) == 0)
		cert_sans(ca->srv_cert, have, sizeof have);
	else
		have[0] = '\0';
	if (ca->srv_cert == NULL || strcmp(want, have) != 0 ||
	    ca_server_expires_in(ca) < RENEW_BEFORE ||
	    X509_verify(ca->srv_cert, ca->ca_key) != 1) {
		if (issue_server(ca, want, names[0]) == -1)
			goto err;
	}
	if (ca_jobs_key_load(ca->dir, &ca->jobs_key) == -1)
		goto err;
	*out = ca;
	return 0;
err:
	ca_close(ca);
	return -1;
}

void
ca_close(struct ca *ca)
{
	if (ca == NULL)
		return;
	EVP_PKEY_free(ca->ca_key);
	X509_free(ca->ca_cert);
	EVP_PKEY_free(ca->srv_key);
	X509_free(ca->srv_cert);
	EVP_PKEY_free(ca->jobs_key);
	signer_close(ca->signer);
	free(ca->ca_pem);
	free(ca);
}

/*
 * The worker's copy: what it may hold. Four fields, each a uint32 length
 * and its bytes: the CA certificate (PEM), the server certificate (PEM),
 * the server key (PEM; the control listener's TLS needs it) and the raw
 * Ed25519 job public key.
 */
static int
put_field(struct buf *b, const void *p, size_t len)
{
	uint32_t n = (uint32_t)len;

	return buf_add(b, &n, sizeof n) == 0 && buf_add(b, p, len) == 0 ?
	    0 : -1;
}

int
ca_public_export(struct ca *ca, struct buf *out)
{
	unsigned char raw[32];
	size_t rawlen = sizeof raw, clen, klen;
	char *cert = NULL, *key = NULL;
	int rc = -1;

	if (EVP_PKEY_get_raw_public_key(ca->jobs_key, raw, &rawlen) != 1 ||
	    (cert = bio_cert_pem(ca->srv_cert, &clen)) == NULL ||
	    (key = bio_key_pem(ca->srv_key, &klen)) == NULL)
		goto out;
	if (put_field(out, ca->ca_pem, strlen(ca->ca_pem)) == 0 &&
	    put_field(out, cert, clen) == 0 && put_field(out, key, klen) == 0 &&
	    put_field(out, raw, rawlen) == 0)
		rc = 0;
out:
	free(cert);
	if (key)
		wipe_free(key, klen);
	return rc;
}

/* Field i of an export: a pointer into p and its length. */
static int
get_field(const char **p, size_t *left, const char **f, size_t *flen)
{
	uint32_t n;

	if (*left < sizeof n)
		return -1;
	memcpy(&n, *p, sizeof n);
	if (n > *left - sizeof n)
		return -1;
	*f = *p + sizeof n;
	*flen = n;
	*p += sizeof n + n;
	*left -= sizeof n + n;
	return 0;
}

static X509 *
pem_cert(const char *p, size_t len)
{
	BIO *b = BIO_new_mem_buf(p, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

int
ca_public_import(const char *state_dir, const char *p, size_t len,
    struct ca **out)
{
	const char *f[4];
	size_t flen[4];
	struct ca *ca;
	BIO *b;
	int i;

	for (i = 0; i < 4; i++)
		if (get_field(&p, &len, &f[i], &flen[i]) == -1)
			return -1;
	if (len != 0 || flen[3] != 32 || (ca = calloc(1, sizeof *ca)) == NULL)
		return -1;
	snprintf(ca->dir, sizeof ca->dir, "%s/ca", state_dir);
	if ((ca->ca_pem = strndup(f[0], flen[0])) == NULL ||
	    (ca->ca_cert = pem_cert(f[0], flen[0])) == NULL ||
	    (ca->srv_cert = pem_cert(f[1], flen[1])) == NULL ||
	    (ca->jobs_key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
	    (const unsigned char *)f[3], flen[3])) == NULL)
		goto err;
	if ((b = BIO_new_mem_buf(f[2], (int)flen[2])) == NULL)
		goto err;
	ca->srv_key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (ca->srv_key == NULL)
		goto err;
	*out = ca;
	return 0;
err:
	ca_close(ca);
	return -1;
}

void
ca_set_signer(struct ca *ca, struct signer *s)
{
	signer_close(ca->signer);
	ca->signer = s;
}

int
ca_privsep(struct ca *ca)
{
	unsigned char raw[32];
	size_t len = sizeof raw;
	EVP_PKEY *pub;

	if (ca->signer)
		return 0;
	if (EVP_PKEY_get_raw_public_key(ca->jobs_key, raw, &len) != 1 ||
	    (pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw,
	    len)) == NULL)
		return -1;
	if ((ca->signer = signer_start(ca->ca_cert, ca->ca_key,
	    ca->jobs_key, ca->dir)) == NULL) {
		EVP_PKEY_free(pub);
		return -1;
	}
	/* From here on this process cannot sign by itself. */
	EVP_PKEY_free(ca->ca_key);
	ca->ca_key = NULL;
	EVP_PKEY_free(ca->jobs_key);
	ca->jobs_key = pub;
	return 0;
}

struct signer *
ca_signer(struct ca *ca)
{
	return ca->signer;
}

int
ca_can_sign(struct ca *ca)
{
	return ca->signer == NULL || signer_up(ca->signer);
}

int
ca_signer_keys(const char *cadir, X509 **cacert, EVP_PKEY **cakey,
    EVP_PKEY **jobkey)
{
	char path[PATH_MAX];
	EVP_PKEY *k;
	X509 *x;

	/* ca_jobs_key_load would make a key that no agent trusts. */
	if (path_join(path, sizeof path, cadir, "jobs.key") == -1 ||
	    access(path, R_OK) == -1 || load_pair(cadir, "ca", &k, &x) == -1)
		return -1;
	if (ca_jobs_key_load(cadir, jobkey) == -1) {
		EVP_PKEY_free(k);
		X509_free(x);
		return -1;
	}
	*cacert = x;
	*cakey = k;
	return 0;
}

/* Borrowed by ca_sign.c, which signs agent certificates, the CRL and
 * jobs with them. */
EVP_PKEY *
ca_private_key(struct ca *ca)
{
	return ca->ca_key;
}

X509 *
ca_certificate(struct ca *ca)
{
	return ca->ca_cert;
}

EVP_PKEY *
ca_jobs_key(struct ca *ca)
{
	return ca->jobs_key;
}

int
ca_server_pem(struct ca *ca, char **cert, char **key)
{
	char *leaf, *k, *chain;
	size_t llen, clen = strlen(ca->ca_pem), klen;

	if ((leaf = bio_cert_pem(ca->srv_cert, &llen)) == NULL)
		return -1;
	if ((k = bio_key_pem(ca->srv_key, &klen)) == NULL) {
		free(leaf);
		return -1;
	}
	if ((chain = malloc(llen + clen + 1)) == NULL) {
		free(leaf);
		wipe_free(k, klen);
		return -1;
	}
	memcpy(chain, leaf, llen);
	memcpy(chain + llen, ca->ca_pem, clen + 1);
	free(leaf);
	*cert = chain;
	*key = k;
	return 0;
}

void
ca_pem_free(char *cert, char *key)
{
	free(cert);
	if (key)
		wipe_free(key, strlen(key));
}

void
ca_fingerprint(struct ca *ca, char out[CA_FINGERPRINT_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	X509_digest(ca->ca_cert, EVP_sha256(), md, &n);
	strcpy(out, "sha256:");
	for (i = 0; i < n && i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

const char *
ca_cert_pem(struct ca *ca)
{
	return ca->ca_pem;
}
