/* test_seal.c — lib/seal.c and lib/keybundle.c: a box opens only with
 * its recipient's key and not after any change; the key bundle of
 * `cluster join` is accepted only with the pinned CA, its signature for
 * this joiner, and keys that belong together. */
#define _GNU_SOURCE	/* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "keybundle.h"
#include "seal.h"

static const char msg[] = "ca.key: -----BEGIN PRIVATE KEY----- not really";

static void
test_seal_open(void **state)
{
	unsigned char pub[SEAL_KEY_LEN], *box, *out;
	size_t blen, olen;
	EVP_PKEY *priv;

	assert_int_equal(seal_keypair(&priv, pub), 0);
	assert_int_equal(seal_to(pub, msg, sizeof msg, &box, &blen), 0);
	assert_int_equal(blen, sizeof msg + SEAL_OVERHEAD);
	/* The message is nowhere in the box. */
	assert_null(memmem(box, blen, "BEGIN", 5));
	assert_int_equal(seal_open(priv, box, blen, &out, &olen), 0);
	assert_int_equal(olen, sizeof msg);
	assert_memory_equal(out, msg, sizeof msg);
	seal_wipe(out, olen);
	free(box);

	/* Two boxes of one message differ (a fresh ephemeral key each). */
	{
		unsigned char *b1, *b2;
		size_t l1, l2;

		assert_int_equal(seal_to(pub, msg, sizeof msg, &b1, &l1), 0);
		assert_int_equal(seal_to(pub, msg, sizeof msg, &b2, &l2), 0);
		assert_int_equal(l1, l2);
		assert_memory_not_equal(b1, b2, l1);
		free(b1);
		free(b2);
	}
	/* An empty message seals and opens too. */
	assert_int_equal(seal_to(pub, "", 0, &box, &blen), 0);
	assert_int_equal(blen, SEAL_OVERHEAD);
	assert_int_equal(seal_open(priv, box, blen, &out, &olen), 0);
	assert_int_equal(olen, 0);
	seal_wipe(out, olen);
	free(box);
	EVP_PKEY_free(priv);
}

static void
test_tamper_fails(void **state)
{
	unsigned char pub[SEAL_KEY_LEN], *box, *out = NULL;
	size_t blen, olen, i;
	EVP_PKEY *priv;

	assert_int_equal(seal_keypair(&priv, pub), 0);
	assert_int_equal(seal_to(pub, msg, sizeof msg, &box, &blen), 0);
	/* One flipped bit anywhere — ephemeral key, ciphertext, tag. */
	for (i = 0; i < blen; i++) {
		box[i] ^= 0x01;
		assert_int_equal(seal_open(priv, box, blen, &out, &olen), -1);
		box[i] ^= 0x01;
	}
	/* Cut short, or longer. */
	for (i = 0; i < blen; i++)
		assert_int_equal(seal_open(priv, box, i, &out, &olen), -1);
	{
		unsigned char *longer = malloc(blen + 1);

		memcpy(longer, box, blen);
		longer[blen] = 0;
		assert_int_equal(seal_open(priv, longer, blen + 1, &out, &olen),
		    -1);
		free(longer);
	}
	assert_null(out);
	/* Untouched, it still opens. */
	assert_int_equal(seal_open(priv, box, blen, &out, &olen), 0);
	seal_wipe(out, olen);
	free(box);
	EVP_PKEY_free(priv);
}

static void
test_wrong_key_fails(void **state)
{
	unsigned char pub[SEAL_KEY_LEN], other_pub[SEAL_KEY_LEN], *box, *out;
	size_t blen, olen;
	EVP_PKEY *priv, *other, *ed;

	assert_int_equal(seal_keypair(&priv, pub), 0);
	assert_int_equal(seal_keypair(&other, other_pub), 0);
	assert_int_equal(seal_to(pub, msg, sizeof msg, &box, &blen), 0);
	assert_int_equal(seal_open(other, box, blen, &out, &olen), -1);
	/* Not an X25519 key at all. */
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(ed);
	assert_int_equal(seal_open(ed, box, blen, &out, &olen), -1);
	EVP_PKEY_free(ed);
	free(box);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(other);
}

static void
test_small_order_key_refused(void **state)
{
	/* Points of small order give an all-zero shared secret: 0, 1 and
	 * the order-8 point of curve25519. */
	static const unsigned char bad[3][SEAL_KEY_LEN] = {
		{ 0 },
		{ 1 },
		{ 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56,
		  0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb,
		  0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
		  0xb8, 0x00 },
	};
	unsigned char *box = NULL;
	size_t blen, i;

	for (i = 0; i < 3; i++)
		assert_int_equal(seal_to(bad[i], msg, sizeof msg, &box, &blen),
		    -1);
	assert_null(box);
	/* Too long a message. */
	{
		unsigned char pub[SEAL_KEY_LEN];
		EVP_PKEY *priv;

		assert_int_equal(seal_keypair(&priv, pub), 0);
		assert_int_equal(seal_to(pub, msg, SEAL_MAX + 1, &box, &blen),
		    -1);
		EVP_PKEY_free(priv);
	}
}

/* --- the key bundle -------------------------------------------------- */

struct ca_fixture {
	X509		*cert;
	EVP_PKEY	*key;
	EVP_PKEY	*jobs;
	char		 fp[KEYBUNDLE_FP_LEN];
};

static void
make_ca(struct ca_fixture *f)
{
	X509_NAME *name;

	f->key = EVP_EC_gen("P-256");
	f->jobs = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	f->cert = X509_new();
	assert_non_null(f->key);
	assert_non_null(f->jobs);
	assert_non_null(f->cert);
	X509_set_version(f->cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(f->cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(f->cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(f->cert), 86400);
	name = X509_get_subject_name(f->cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"test CA", -1, -1, 0);
	X509_set_issuer_name(f->cert, name);
	X509_set_pubkey(f->cert, f->key);
	assert_true(X509_sign(f->cert, f->key, EVP_sha256()) > 0);
	assert_int_equal(keybundle_fingerprint(f->cert, f->fp), 0);
	assert_int_equal(strlen(f->fp), 71);
}

static void
free_ca(struct ca_fixture *f)
{
	X509_free(f->cert);
	EVP_PKEY_free(f->key);
	EVP_PKEY_free(f->jobs);
}

static void
test_bundle_round_trip(void **state)
{
	unsigned char pub[SEAL_KEY_LEN], *box;
	struct ca_fixture ca;
	struct keybundle kb;
	char why[256];
	size_t blen;
	EVP_PKEY *priv;

	make_ca(&ca);
	assert_int_equal(seal_keypair(&priv, pub), 0);
	assert_int_equal(keybundle_seal(ca.cert, ca.key, ca.jobs, pub, &box,
	    &blen), 0);
	assert_null(memmem(box, blen, "PRIVATE", 7));
	assert_int_equal(keybundle_open(priv, box, blen, ca.fp, &kb, why,
	    sizeof why), 0);
	assert_string_equal(kb.fingerprint, ca.fp);
	assert_non_null(strstr(kb.ca_pem, "BEGIN CERTIFICATE"));
	assert_non_null(strstr(kb.ca_key, "BEGIN PRIVATE KEY"));
	assert_non_null(strstr(kb.jobs_key, "BEGIN PRIVATE KEY"));
	assert_int_equal(strlen(kb.ca_pem), kb.ca_pem_len);
	assert_int_equal(strlen(kb.ca_key), kb.ca_key_len);
	assert_int_equal(strlen(kb.jobs_key), kb.jobs_key_len);
	keybundle_free(&kb);
	free(box);
	EVP_PKEY_free(priv);
	free_ca(&ca);
}

static void
test_bundle_refusals(void **state)
{
	unsigned char pub[SEAL_KEY_LEN], pub2[SEAL_KEY_LEN], *box;
	struct ca_fixture ca, other;
	struct keybundle kb;
	char why[256], wrong[KEYBUNDLE_FP_LEN];
	size_t blen, i;
	EVP_PKEY *priv, *priv2;

	make_ca(&ca);
	make_ca(&other);
	assert_int_equal(seal_keypair(&priv, pub), 0);
	assert_int_equal(seal_keypair(&priv2, pub2), 0);
	memset(&kb, 0, sizeof kb);

	/* Another CA than the pinned one. */
	assert_int_equal(keybundle_seal(ca.cert, ca.key, ca.jobs, pub, &box,
	    &blen), 0);
	assert_int_equal(keybundle_open(priv, box, blen, other.fp, &kb, why,
	    sizeof why), -1);
	assert_non_null(strstr(why, "not the pinned"));
	snprintf(wrong, sizeof wrong, "%s", ca.fp);
	wrong[70] = wrong[70] == '0' ? '1' : '0';
	assert_int_equal(keybundle_open(priv, box, blen, wrong, &kb, why,
	    sizeof why), -1);
	assert_int_equal(keybundle_open(priv, box, blen, "sha256:", &kb, why,
	    sizeof why), -1);
	/* Sealed to someone else. */
	assert_int_equal(keybundle_open(priv2, box, blen, ca.fp, &kb, why,
	    sizeof why), -1);
	/* Tampered with anywhere. */
	for (i = 0; i < blen; i += 7) {
		box[i] ^= 0x80;
		assert_int_equal(keybundle_open(priv, box, blen, ca.fp, &kb, why,
		    sizeof why), -1);
		box[i] ^= 0x80;
	}
	free(box);

	/* A CA key that is not the certificate's: what it signs does not
	 * verify with the certificate. */
	assert_int_equal(keybundle_seal(ca.cert, other.key, ca.jobs, pub, &box,
	    &blen), 0);
	assert_int_equal(keybundle_open(priv, box, blen, ca.fp, &kb, why,
	    sizeof why), -1);
	assert_non_null(strstr(why, "not signed"));
	free(box);
	/* A job key that is not Ed25519. */
	assert_int_equal(keybundle_seal(ca.cert, ca.key, other.key, pub, &box,
	    &blen), 0);
	assert_int_equal(keybundle_open(priv, box, blen, ca.fp, &kb, why,
	    sizeof why), -1);
	assert_non_null(strstr(why, "Ed25519"));
	free(box);
	/* A bundle made for another joiner, sealed again to this one (what
	 * a worker that kept it could try): the signature names the other. */
	{
		unsigned char *inner, *box2;
		size_t ilen, blen2;

		assert_int_equal(keybundle_seal(ca.cert, ca.key, ca.jobs, pub2,
		    &box, &blen), 0);
		assert_int_equal(seal_open(priv2, box, blen, &inner, &ilen), 0);
		assert_int_equal(seal_to(pub, inner, ilen, &box2, &blen2), 0);
		assert_int_equal(keybundle_open(priv, box2, blen2, ca.fp, &kb,
		    why, sizeof why), -1);
		assert_non_null(strstr(why, "not signed"));
		seal_wipe(inner, ilen);
		free(box);
		free(box2);
	}
	/* Something sealed to the joiner that is no bundle at all. */
	assert_int_equal(seal_to(pub, msg, sizeof msg, &box, &blen), 0);
	assert_int_equal(keybundle_open(priv, box, blen, ca.fp, &kb, why,
	    sizeof why), -1);
	assert_non_null(strstr(why, "malformed"));
	free(box);
	assert_null(kb.ca_pem);
	assert_null(kb.ca_key);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(priv2);
	free_ca(&ca);
	free_ca(&other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_open),
		cmocka_unit_test(test_tamper_fails),
		cmocka_unit_test(test_wrong_key_fails),
		cmocka_unit_test(test_small_order_key_refused),
		cmocka_unit_test(test_bundle_round_trip),
		cmocka_unit_test(test_bundle_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
