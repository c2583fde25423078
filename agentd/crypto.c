/* crypto.c — the node agent's own cryptography, on mbedTLS (its TLS is
 * client_tls.c; job signatures are checked by lib/envelope.c): the key
 * and CSR of an enrollment or renewal, the CA's fingerprint and pinned
 * copy, the job keys' raw form, SHA-256 for the reporters. Not OpenSSL:
 * OpenSSL 3 sets up its providers and method store at the first use,
 * about 300 KB of heap and its code kept resident for good in an agent
 * whose goal is a quarter of node-exporter's memory (issue 13). */
#ifndef AGENTD_NO_CURL	/* the discovery image has no mbedTLS */
#include <sys/random.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#include "agent.h"
#include "hex.h"

/* The kernel's generator for every random byte: no DRBG state to seed,
 * lock between threads or share with a forked child. */
int
agent_random(void *unused, unsigned char *p, size_t n)
{
	ssize_t got;

	while (n > 0) {
		if ((got = getrandom(p, n, 0)) == -1) {
			if (errno == EINTR)
				continue;
			return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
		}
		p += got;
		n -= (size_t)got;
	}
	return 0;
}

void
agent_sha256_hex(const char *s, size_t len, char out[SECRET_HEXLEN])
{
	unsigned char md[32];

	/* Only a bad input length fails, which a size_t cannot be. */
	(void)mbedtls_sha256_ret((const unsigned char *)s, len, md, 0);
	hex_encode(md, sizeof md, out);
}

int
agent_equal(const char *a, const char *b, size_t n)
{
	volatile unsigned char d = 0;
	size_t i;

	for (i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* The first certificate of pem (NUL-terminated), parsed. */
static int
first_crt(const char *pem, mbedtls_x509_crt *crt)
{
	mbedtls_x509_crt_init(crt);
	/* parse() takes every certificate it can read; only the first
	 * counts, so one that failed after it does not matter. */
	(void)mbedtls_x509_crt_parse(crt, (const unsigned char *)pem,
	    strlen(pem) + 1);
	if (crt->raw.p == NULL) {
		mbedtls_x509_crt_free(crt);
		return -1;
	}
	return 0;
}

int
agent_fingerprint(const char *pem, char out[80])
{
	mbedtls_x509_crt crt;
	unsigned char md[32];

	if (first_crt(pem, &crt) == -1)
		return -1;
	(void)mbedtls_sha256_ret(crt.raw.p, crt.raw.len, md, 0);
	mbedtls_x509_crt_free(&crt);
	memcpy(out, "sha256:", 7);
	hex_encode(md, sizeof md, out + 7);
	return 0;
}

int
agent_first_cert_pem(const char *pem, char **out)
{
	mbedtls_x509_crt crt;
	unsigned char *buf;
	size_t size, olen = 0;
	int rc;

	if (first_crt(pem, &crt) == -1)
		return -1;
	/* base64 (4/3) in 64-column lines, the two marker lines */
	size = crt.raw.len * 4 / 3 + crt.raw.len / 48 + 128;
	if ((buf = malloc(size)) == NULL) {
		mbedtls_x509_crt_free(&crt);
		return -1;
	}
	rc = mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n",
	    "-----END CERTIFICATE-----\n", crt.raw.p, crt.raw.len, buf, size,
	    &olen);
	mbedtls_x509_crt_free(&crt);
	if (rc != 0) {
		free(buf);
		return -1;
	}
	*out = (char *)buf;
	return 0;
}

/* SubjectPublicKeyInfo of an Ed25519 key (RFC 8410), before its 32
 * bytes: mbedTLS 2.28 has no Ed25519, so this exact DER is all that is
 * accepted. */
static const unsigned char ed25519_spki[] = {
	0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00
};

int
agent_ed25519_pem(const char *pem, unsigned char pub[ENVELOPE_PUBLEN])
{
	mbedtls_pem_context ctx;
	size_t used;
	int rc = -1;

	mbedtls_pem_init(&ctx);
	if (mbedtls_pem_read_buffer(&ctx, "-----BEGIN PUBLIC KEY-----",
	    "-----END PUBLIC KEY-----", (const unsigned char *)pem, NULL, 0,
	    &used) == 0 &&
	    ctx.buflen == sizeof ed25519_spki + ENVELOPE_PUBLEN &&
	    memcmp(ctx.buf, ed25519_spki, sizeof ed25519_spki) == 0) {
		memcpy(pub, ctx.buf + sizeof ed25519_spki, ENVELOPE_PUBLEN);
		rc = 0;
	}
	mbedtls_pem_free(&ctx);
	return rc;
}

int
agent_key_csr(const char *cn, char **key_pem, char **csr_pem)
{
	mbedtls_pk_context pk;
	mbedtls_x509write_csr req;
	unsigned char kbuf[1024], cbuf[4096];
	char subject[8 + AGENT_CN_LEN];
	size_t i;
	int rc = -1;

	/* Bastion takes only the CSR's key (and checks its signature); the
	 * name is for people reading it. mbedTLS parses the subject as
	 * "CN=..." with its own escapes: a character outside a hostname's
	 * becomes '-'. */
	snprintf(subject, sizeof subject, "CN=%s", cn);
	for (i = 3; subject[i]; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789.-_", subject[i]))
			subject[i] = '-';
	mbedtls_pk_init(&pk);
	mbedtls_x509write_csr_init(&req);
	*key_pem = *csr_pem = NULL;
	if (mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY))
	    != 0 || mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1,
	    mbedtls_pk_ec(pk), agent_random, NULL) != 0)
		goto out;
	mbedtls_x509write_csr_set_md_alg(&req, MBEDTLS_MD_SHA256);
	mbedtls_x509write_csr_set_key(&req, &pk);
	if (mbedtls_x509write_csr_set_subject_name(&req, subject) != 0 ||
	    mbedtls_x509write_csr_pem(&req, cbuf, sizeof cbuf, agent_random,
	    NULL) != 0 ||
	    mbedtls_pk_write_key_pem(&pk, kbuf, sizeof kbuf) != 0 ||
	    (*key_pem = strdup((char *)kbuf)) == NULL ||
	    (*csr_pem = strdup((char *)cbuf)) == NULL)
		goto out;
	rc = 0;
out:
	if (rc == -1 && *key_pem) {
		mbedtls_platform_zeroize(*key_pem, strlen(*key_pem));
		free(*key_pem);
		*key_pem = NULL;
	}
	mbedtls_platform_zeroize(kbuf, sizeof kbuf);
	mbedtls_x509write_csr_free(&req);
	mbedtls_pk_free(&pk);	/* zeroes the private key */
	return rc;
}
#endif /* AGENTD_NO_CURL */
