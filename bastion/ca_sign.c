/* ca_sign.c — what bastion's CA does for agents: check and sign CSRs
 * (the subject is bastion's, not the node's), verify the client
 * certificates agents present, publish the revocation list, and sign jobs
 * with the Ed25519 key in STATE_DIR/ca/jobs.key. */
#define LOG_SUBSYS "ca"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "b64.h"
#include "bio.h"
#include "ca.h"
#include "envelope.h"
#include "file.h"
#include "keybundle.h"
#include "log.h"
#include "path.h"
#include "signer.h"

#define CSR_MAX	(16 * 1024)

int
ca_jobs_key_load(const char *dir, EVP_PKEY **out)
{
	char path[PATH_MAX], *pem = NULL;
	EVP_PKEY *k = NULL;
	struct stat st;
	FILE *fp;

	if (path_join(path, sizeof path, dir, "jobs.key") == -1)
		return -1;
	if ((fp = fopen(path, "re")) != NULL) {
		if (fstat(fileno(fp), &st) == 0 && (st.st_mode & 077)) {
			log_warnx("%s is readable by others; fixing its mode to "
			    "0600", path);
			fchmod(fileno(fp), 0600);
		}
		k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
		fclose(fp);
		if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
			log_warnx("%s is not an Ed25519 private key; refusing to "
			    "replace it", path);
			EVP_PKEY_free(k);
			return -1;
		}
		*out = k;
		return 0;
	}
	if (errno != ENOENT) {
		log_warn("%s", path);
		return -1;
	}
	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    (pem = bio_key_pem(k, NULL)) == NULL ||
	    file_write_atomic(path, pem, strlen(pem), 0600) == -1) {
		log_warnx("cannot create the job-signing key %s", path);
		goto err;
	}
	OPENSSL_cleanse(pem, strlen(pem));
	free(pem);
	log_info("created the job-signing key %s", path);
	*out = k;
	return 0;
err:
	if (pem) {
		OPENSSL_cleanse(pem, strlen(pem));
		free(pem);
	}
	EVP_PKEY_free(k);
	return -1;
}

int
ca_check_csr(const char *pem, size_t len, EVP_PKEY **pub, char *why,
    size_t whylen)
{
	X509_REQ *req = NULL;
	EVP_PKEY *k;
	BIO *bio;
	char group[64] = "";
	size_t glen = 0;
	int rc = -1;

	if (len == 0 || len > CSR_MAX || memchr(pem, '\0', len) != NULL) {
		snprintf(why, whylen, "the CSR must be 1-%d bytes of PEM text",
		    CSR_MAX);
		return -1;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (req == NULL) {
		snprintf(why, whylen, "not a PEM certificate signing request");
		return -1;
	}
	if ((k = X509_REQ_get0_pubkey(req)) == NULL) {
		snprintf(why, whylen, "the CSR carries no usable public key");
		goto out;
	}
	if (EVP_PKEY_get_id(k) != EVP_PKEY_EC ||
	    EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
	    sizeof group, &glen) != 1 || strcmp(group, "prime256v1") != 0) {
		snprintf(why, whylen, "the CSR key must be EC P-256 (got %s%s%s)",
		    OBJ_nid2sn(EVP_PKEY_get_base_id(k)), group[0] ? " " : "",
		    group);
		goto out;
	}
	{
		EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(k, NULL);
		int ok = pc != NULL && EVP_PKEY_public_check(pc) == 1;

		EVP_PKEY_CTX_free(pc);
		if (!ok) {
			ERR_clear_error();
			snprintf(why, whylen, "the CSR's public key is not a valid "
			    "point");
			goto out;
		}
	}
	if (X509_REQ_verify(req, k) != 1) {
		ERR_clear_error();
		snprintf(why, whylen, "the CSR's signature does not verify");
		goto out;
	}
	if (!EVP_PKEY_up_ref(k)) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	*pub = k;
	rc = 0;
out:
	X509_REQ_free(req);
	return rc;
}

static void
serial_hex(const ASN1_INTEGER *ai, char out[CA_SERIAL_LEN])
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	char *h = bn ? BN_bn2hex(bn) : NULL;
	size_t i;

	snprintf(out, CA_SERIAL_LEN, "%s", h ? h : "");
	for (i = 0; out[i]; i++)
		if (out[i] >= 'A' && out[i] <= 'F')
			out[i] = (char)(out[i] - 'A' + 'a');
	OPENSSL_free(h);
	BN_free(bn);
}

static int64_t
asn1_time_ms(const ASN1_TIME *t)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm) * 1000;
}

int
ca_build_client_cert(X509 *cacert, EVP_PKEY *cakey, EVP_PKEY *pub,
    const char *agent_id, int days, char **pem)
{
	X509 *x = NULL;
	X509_NAME *name;
	unsigned char r[16];
	BIGNUM *bn = NULL;
	char *s;
	int rc = -1;

	if ((x = X509_new()) == NULL || X509_set_version(x, 2) != 1)
		goto out;
	if (RAND_bytes(r, sizeof r) != 1)
		goto out;
	r[0] = (unsigned char)((r[0] & 0x7f) | 0x40);	/* positive, 16 bytes */
	if ((bn = BN_bin2bn(r, sizeof r, NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto out;
	X509_gmtime_adj(X509_getm_notBefore(x), -300);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"Bastion agents", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)agent_id, -1, -1, 0))
		goto out;
	if (X509_set_issuer_name(x, X509_get_subject_name(cacert)) != 1 ||
	    X509_set_pubkey(x, pub) != 1)
		goto out;
	if (ca_add_ext(cacert, x, NID_basic_constraints, "critical,CA:FALSE") ||
	    ca_add_ext(cacert, x, NID_key_usage, "critical,digitalSignature") ||
	    ca_add_ext(cacert, x, NID_ext_key_usage, "clientAuth") ||
	    ca_add_ext(cacert, x, NID_subject_key_identifier, "hash") ||
	    ca_add_ext(cacert, x, NID_authority_key_identifier, "keyid:always"))
		goto out;
	if (X509_sign(x, cakey, EVP_sha256()) == 0)
		goto out;
	if ((s = bio_cert_pem(x, NULL)) == NULL)
		goto out;
	*pem = s;
	rc = 0;
out:
	ERR_clear_error();
	BN_free(bn);
	X509_free(x);
	return rc;
}

int
ca_sign_csr(struct ca *ca, const char *pem, size_t len, const char *agent_id,
    int days, struct ca_issued *out, char *why, size_t whylen)
{
	EVP_PKEY *pub = NULL;
	X509 *x = NULL;
	BIO *bio = NULL;
	char *cert = NULL;
	int rc = -1;

	if (ca_check_csr(pem, len, &pub, why, whylen) == -1)
		return -1;
	snprintf(why, whylen, "cannot sign the certificate");
	if (ca_signer(ca) ? signer_cert(ca_signer(ca), pub, agent_id, days,
	    &cert) == -1 : ca_build_client_cert(ca_certificate(ca),
	    ca_private_key(ca), pub, agent_id, days, &cert) == -1)
		goto out;
	/* What was issued, read back from the certificate itself. */
	if ((bio = BIO_new_mem_buf(cert, -1)) == NULL ||
	    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL ||
	    X509_check_issued(ca_certificate(ca), x) != X509_V_OK)
		goto out;
	serial_hex(X509_get0_serialNumber(x), out->serial);
	out->not_before_ms = asn1_time_ms(X509_get0_notBefore(x));
	out->not_after_ms = asn1_time_ms(X509_get0_notAfter(x));
	out->pem = cert;
	cert = NULL;
	why[0] = '\0';
	rc = 0;
out:
	ERR_clear_error();
	free(cert);
	X509_free(x);
	BIO_free(bio);
	EVP_PKEY_free(pub);
	return rc;
}

/*
 * Certificates that verified, by the SHA-256 of their DER, until their
 * notAfter: an agent presents the same certificate on every request, and
 * its signature need not be checked again each time. Revocation is not
 * cached here: the caller asks the database every time.
 * 4-way sets, room for a bastion's agents: direct-mapped in 4,096 slots,
 * a fifth of 1,000 agents and nearly all of 20,000 missed, each miss a
 * full chain verification (most of a heartbeat's CPU, issue 17).
 */
#define VERIFIED_SLOTS	32768
#define VERIFIED_WAYS	4

static struct {
	pthread_mutex_t	mu;
	unsigned long	clock;		/* use order, for eviction */
	struct verified {
		unsigned char	md[32];
		time_t		not_after;
		unsigned long	used;
		char		agent_id[64];
		char		serial[CA_SERIAL_LEN];
	}		v[VERIFIED_SLOTS];
} verified = { .mu = PTHREAD_MUTEX_INITIALIZER };

static struct verified *
verified_set(const unsigned char md[32])
{
	unsigned h = md[0] | md[1] << 8 | (unsigned)md[2] << 16;

	return &verified.v[h % (VERIFIED_SLOTS / VERIFIED_WAYS) *
	    VERIFIED_WAYS];
}

static int
verified_get(const unsigned char md[32], char *agent_id, size_t idlen,
    char serial[CA_SERIAL_LEN])
{
	struct verified *v;
	time_t now = time(NULL);
	int hit = 0, i;

	pthread_mutex_lock(&verified.mu);
	v = verified_set(md);
	for (i = 0; i < VERIFIED_WAYS && !hit; i++)
		if (CRYPTO_memcmp(v[i].md, md, 32) == 0 &&
		    v[i].not_after > now && strlen(v[i].agent_id) < idlen) {
			memcpy(agent_id, v[i].agent_id,
			    strlen(v[i].agent_id) + 1);
			memcpy(serial, v[i].serial, CA_SERIAL_LEN);
			v[i].used = ++verified.clock;
			hit = 1;
		}
	pthread_mutex_unlock(&verified.mu);
	return hit;
}

static void
verified_put(const unsigned char md[32], X509 *x, const char *agent_id,
    const char *serial)
{
	struct verified *v;
	struct tm tm;
	int i, pick = 0;

	if (strlen(agent_id) >= sizeof v->agent_id ||
	    ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return;
	pthread_mutex_lock(&verified.mu);
	v = verified_set(md);
	for (i = 1; i < VERIFIED_WAYS; i++)	/* the least recently used */
		if (v[i].used < v[pick].used)
			pick = i;
	memcpy(v[pick].md, md, 32);
	v[pick].not_after = timegm(&tm);
	v[pick].used = ++verified.clock;
	snprintf(v[pick].agent_id, sizeof v[pick].agent_id, "%s", agent_id);
	snprintf(v[pick].serial, sizeof v[pick].serial, "%s", serial);
	pthread_mutex_unlock(&verified.mu);
}

/* SHA-256, fetched once: OpenSSL 3 looks EVP_sha256() up in its provider
 * store (under a lock) at every EVP_Digest. */
static const EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	if ((sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		sha256 = EVP_sha256();
}

int
ca_verify_client(struct ca *ca, const unsigned char *der, size_t len,
    char *agent_id, size_t idlen, char serial[CA_SERIAL_LEN], char *why,
    size_t whylen)
{
	const unsigned char *p = der;
	X509_STORE_CTX *ctx = NULL;
	X509_STORE *store = NULL;
	X509 *x = NULL;
	unsigned char md[32];
	unsigned int mdlen = 0;
	char cn[256];
	int rc = -1, n;

	pthread_once(&sha256_once, sha256_fetch);
	if (len > 0 && len <= 16384 &&
	    EVP_Digest(der, len, md, &mdlen, sha256, NULL) == 1 &&
	    verified_get(md, agent_id, idlen, serial))
		return 0;
	if (len == 0 || len > 16384 ||
	    (x = d2i_X509(NULL, &p, (long)len)) == NULL || p != der + len) {
		snprintf(why, whylen, "the client certificate cannot be parsed");
		goto out;
	}
	if ((store = X509_STORE_new()) == NULL ||
	    X509_STORE_add_cert(store, ca_certificate(ca)) != 1 ||
	    (ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, x, NULL) != 1) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	if (X509_verify_cert(ctx) != 1) {
		snprintf(why, whylen, "the client certificate is not valid: %s",
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
	    cn, sizeof cn);
	if (n <= 0 || (size_t)n >= idlen || strlen(cn) != (size_t)n) {
		snprintf(why, whylen, "the client certificate names no agent");
		goto out;
	}
	memcpy(agent_id, cn, (size_t)n + 1);
	serial_hex(X509_get0_serialNumber(x), serial);
	if (mdlen == 32)
		verified_put(md, x, agent_id, serial);
	rc = 0;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(x);
	return rc;
}

int
ca_crl_pem(struct ca *ca, const struct ca_revoked *list, size_t n, int hours,
    char **out)
{
	if (ca_signer(ca))
		return signer_crl(ca_signer(ca), list, n, hours, out);
	return ca_build_crl(ca_certificate(ca), ca_private_key(ca), list, n,
	    hours, out);
}

int
ca_build_crl(X509 *cacert, EVP_PKEY *cakey, const struct ca_revoked *list,
    size_t n, int hours, char **out)
{
	X509_CRL *crl = NULL;
	X509_REVOKED *rev = NULL;
	ASN1_TIME *t = NULL;
	ASN1_INTEGER *ai = NULL;
	BIGNUM *bn = NULL;
	BIO *bio = NULL;
	size_t i;
	char *s;
	int rc = -1;

	if ((crl = X509_CRL_new()) == NULL || X509_CRL_set_version(crl, 1) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(cacert)) != 1 ||
	    (t = ASN1_TIME_new()) == NULL)
		goto out;
	X509_gmtime_adj(t, 0);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_gmtime_adj(t, (long)hours * 3600);
	X509_CRL_set1_nextUpdate(crl, t);
	for (i = 0; i < n; i++) {
		if ((rev = X509_REVOKED_new()) == NULL ||
		    BN_hex2bn(&bn, list[i].serial) == 0 ||
		    (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
		    X509_REVOKED_set_serialNumber(rev, ai) != 1 ||
		    ASN1_TIME_set(t, (time_t)(list[i].revoked_ms / 1000)) == NULL ||
		    X509_REVOKED_set_revocationDate(rev, t) != 1 ||
		    X509_CRL_add0_revoked(crl, rev) != 1)
			goto out;
		rev = NULL;
		ASN1_INTEGER_free(ai);
		ai = NULL;
		BN_free(bn);
		bn = NULL;
	}
	X509_CRL_sort(crl);
	if (X509_CRL_sign(crl, cakey, EVP_sha256()) == 0)
		goto out;
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_X509_CRL(bio, crl) || (s = bio_string(bio, NULL)) == NULL)
		goto out;
	*out = s;
	rc = 0;
out:
	ERR_clear_error();
	BIO_free(bio);
	BN_free(bn);
	ASN1_INTEGER_free(ai);
	X509_REVOKED_free(rev);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return rc;
}

int
ca_job_sign(struct ca *ca, const char *text, size_t len, char **sig_b64,
    char key_id[CA_KEYID_LEN])
{
	if (envelope_key_id(ca_jobs_key(ca), key_id) == -1)
		return -1;
	if (ca_signer(ca))
		return signer_job(ca_signer(ca), text, len, sig_b64);
	return envelope_sign(ca_jobs_key(ca), text, len, sig_b64);
}

int
ca_join_seal(struct ca *ca, const unsigned char joiner[SEAL_KEY_LEN],
    char **box_b64)
{
	unsigned char *box;
	size_t len;

	if (ca_signer(ca))
		return signer_join(ca_signer(ca), joiner, box_b64);
	/* No signer process (unit tests): the keys are here. */
	if (ca_private_key(ca) == NULL || keybundle_seal(ca_certificate(ca),
	    ca_private_key(ca), ca_jobs_key(ca), joiner, &box, &len) == -1)
		return -1;
	*box_b64 = b64_encode(box, len);
	free(box);
	return *box_b64 ? 0 : -1;
}

int
ca_job_pubkey(struct ca *ca, char **pem, char key_id[CA_KEYID_LEN])
{
	BIO *bio;
	char *s = NULL;

	if (envelope_key_id(ca_jobs_key(ca), key_id) == -1 ||
	    (bio = BIO_new(BIO_s_mem())) == NULL)
		return -1;
	if (PEM_write_bio_PUBKEY(bio, ca_jobs_key(ca)))
		s = bio_string(bio, NULL);
	BIO_free(bio);
	if (s == NULL)
		return -1;
	*pem = s;
	return 0;
}
