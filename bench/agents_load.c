/* agents_load.c — load generator for bench/agents: simulated agents over
 * mutual TLS with keep-alive, on libcurl's multi interface (one thread).
 *
 *   agents_load heartbeat URL CERT KEY CA CONNECTIONS SECONDS [SOURCE]
 *       every connection POSTs /agent/v1/heartbeat back to back (made
 *       RAMP at a time; counted from when all are made); prints
 *       "heartbeats N seconds S rate R errors E identities K"
 *   agents_load heartbeat-health URL CERT KEY CA CONNECTIONS SECONDS [SOURCE]
 *       the same with the body agentd sends since health.c (mounts,
 *       temperatures, SMART: bench/attention)
 *   agents_load poll URL CERT KEY CA CONNECTIONS SECONDS [SOURCE]
 *       opens CONNECTIONS long polls (GET /agent/v1/jobs?wait=30), keeps
 *       them open for SECONDS or until SIGTERM (re-polling on the same
 *       connection when one is answered) and prints
 *       "polls_sent N after S s answered A min_per_connection M
 *        connects C errors E"
 *       (every poll answered at least once when M >= 1; C == N when no
 *       connection had to be made again).
 * SOURCE is the local address to connect from (127.0.0.2, ...): a
 * process holds at most its open-file limit and bastion caps connections
 * per address, so bench/agents spreads big runs over several.
 * CERT and KEY may hold one "%d": connection i is then agent identity
 * i mod K (CERT with 0 .. K-1 in place of %d exist), so that K agents'
 * rows are written, not one's.
 *
 *   agents_load identities CADIR OUTDIR FIRST COUNT PREFIX
 *       makes COUNT agent identities signed by CADIR/ca.{pem,key} (as
 *       bastion's CA signs them: CN the agent id PREFIX-NNNNNN, clientAuth)
 *       in OUTDIR/N.pem, N.key (N = FIRST ...) and prints the SQL that
 *       enrolls them (agents and certificates rows) for psql: enrollment
 *       over HTTP is rate-limited per address, which a bench of thousands
 *       of agents from one address would only measure.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "nofile.h"

#define RAMP	32	/* connections being made at once */
#define WARM_MAX 60	/* heartbeat: seconds to make them, at most */

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	stop = 1;
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	return size * n;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What agentd's heartbeat carries with health.c: a typical node. */
static const char health_body[] = "{\"version\":\"0.1.0\","
    "\"load\":[0.41,0.35,0.3],\"cpus\":8,\"running_jobs\":0,"
    "\"uptime_s\":123456,\"memory\":{\"total_bytes\":16777216000,"
    "\"available_bytes\":9663676416},\"disks\":[{\"mount\":\"/\","
    "\"size_bytes\":53687091200,\"free_bytes\":21474836480}],"
    "\"mounts\":[{\"mount\":\"/\",\"device\":\"/dev/mapper/vg-root\","
    "\"fstype\":\"xfs\",\"size_bytes\":53687091200,\"free_bytes\":"
    "21474836480},{\"mount\":\"/boot\",\"device\":\"/dev/sda2\","
    "\"fstype\":\"ext4\",\"size_bytes\":1063256064,\"free_bytes\":"
    "700000000},{\"mount\":\"/var/lib/longhorn\",\"device\":"
    "\"/dev/mapper/vg-longhorn\",\"fstype\":\"xfs\",\"size_bytes\":"
    "900000000000,\"free_bytes\":400000000000}],\"temperatures\":["
    "{\"sensor\":\"coretemp/Package id 0\",\"celsius\":52.0,"
    "\"critical_celsius\":100.0},{\"sensor\":\"coretemp/Core 0\","
    "\"celsius\":50.0,\"critical_celsius\":100.0},{\"sensor\":"
    "\"nvme/Composite\",\"celsius\":41.85},{\"sensor\":"
    "\"thermal_zone0/x86_pkg_temp\",\"celsius\":52.0}],\"smart\":["
    "{\"device\":\"sda\",\"passed\":true,\"celsius\":34,\"model\":"
    "\"WDC WD40EFRX-68N32N0\"},{\"device\":\"nvme0n1\",\"passed\":true,"
    "\"celsius\":41,\"model\":\"Samsung SSD 980 PRO 1TB\"}]}";
static int with_health;
static long ids;	/* CERT holds %d: so many identities, else 0 */

/* pat with its "%d" (if any) replaced by i. */
static void
subst(char *out, size_t size, const char *pat, long i)
{
	const char *d = strstr(pat, "%d");

	if (d == NULL)
		snprintf(out, size, "%s", pat);
	else
		snprintf(out, size, "%.*s%ld%s", (int)(d - pat), pat, i, d + 2);
}

static CURL *
handle(const char *url, char **av, int post, struct curl_slist *hdr,
    const char *source, long *answers, long idx)
{
	CURL *c = curl_easy_init();

	curl_easy_setopt(c, CURLOPT_PRIVATE, answers);
	if (source)
		curl_easy_setopt(c, CURLOPT_INTERFACE, source);

	curl_easy_setopt(c, CURLOPT_URL, url);
	if (ids > 0) {		/* this connection's own agent (curl copies) */
		char cert[4096], key[4096];

		subst(cert, sizeof cert, av[3], idx % ids);
		subst(key, sizeof key, av[4], idx % ids);
		curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, key);
	} else {
		curl_easy_setopt(c, CURLOPT_SSLCERT, av[3]);
		curl_easy_setopt(c, CURLOPT_SSLKEY, av[4]);
	}
	curl_easy_setopt(c, CURLOPT_CAINFO, av[5]);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	if (post) {
		static const char body[] = "{\"load\":[0.01,0.02,0.03],"
		    "\"memory\":{\"total_bytes\":1073741824,\"free_bytes\":"
		    "536870912},\"running_jobs\":0,\"uptime_s\":1234}";

		const char *b = with_health ? health_body : body;

		curl_easy_setopt(c, CURLOPT_POSTFIELDS, b);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(b));
	}
	return c;
}

/* The certificate (key 0) or private key (key 1) in PEM file path, or
 * NULL. */
static void *
load_pem(const char *path, int key)
{
	FILE *f = fopen(path, "r");
	void *v;

	if (f == NULL)
		return NULL;
	v = key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL) :
	    (void *)PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return v;
}

static int
add_ext(X509 *ca, X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;
	int rc;

	X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return -1;
	rc = X509_add_ext(x, e, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(e);
	return rc;
}

static int
write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = x ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, k, NULL, NULL,
	    0, NULL, NULL);
	return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

/* agents_load identities CADIR OUTDIR FIRST COUNT PREFIX */
static int
identities(char **av)
{
	char path[4096], id[64], serial[64], *h;
	long first = strtol(av[4], NULL, 10), count = strtol(av[5], NULL, 10), i;
	int64_t now = (int64_t)time(NULL) * 1000, nb = now - 3600000,
	    na = now + 30LL * 86400000;
	unsigned char rnd[16];
	EVP_PKEY *cakey, *k;
	X509 *ca, *x;
	BIGNUM *bn;
	size_t j;

	snprintf(path, sizeof path, "%s/ca.pem", av[2]);
	ca = load_pem(path, 0);
	snprintf(path, sizeof path, "%s/ca.key", av[2]);
	cakey = load_pem(path, 1);
	if (ca == NULL || cakey == NULL || first < 0 || count < 1 ||
	    strlen(av[6]) > 20) {
		fprintf(stderr, "agents_load identities: no CA in %s, or a bad"
		    " FIRST/COUNT/PREFIX\n", av[2]);
		return 1;
	}
	printf("BEGIN;\n");
	for (i = first; i < first + count; i++) {
		snprintf(id, sizeof id, "%s-%06ld", av[6], i);
		if ((k = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL)
			return 1;
		RAND_bytes(rnd, sizeof rnd);
		rnd[0] &= 0x7f;
		rnd[0] |= 0x10;		/* positive, 16 bytes: no leading 0 */
		bn = BN_bin2bn(rnd, sizeof rnd, NULL);
		BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
		h = BN_bn2hex(bn);
		snprintf(serial, sizeof serial, "%s", h);
		for (j = 0; serial[j]; j++)
			if (serial[j] >= 'A' && serial[j] <= 'F')
				serial[j] = (char)(serial[j] - 'A' + 'a');
		OPENSSL_free(h);
		BN_free(bn);
		X509_set_version(x, 2);
		X509_time_adj_ex(X509_getm_notBefore(x), 0, -3600, NULL);
		X509_time_adj_ex(X509_getm_notAfter(x), 30, 0, NULL);
		X509_NAME_add_entry_by_NID(X509_get_subject_name(x),
		    NID_commonName, MBSTRING_ASC, (unsigned char *)id, -1, -1, 0);
		X509_NAME_add_entry_by_NID(X509_get_subject_name(x),
		    NID_organizationName, MBSTRING_ASC,
		    (unsigned char *)"Bastion agents", -1, -1, 0);
		X509_set_issuer_name(x, X509_get_subject_name(ca));
		X509_set_pubkey(x, k);
		if (add_ext(ca, x, NID_basic_constraints, "critical,CA:FALSE") ||
		    add_ext(ca, x, NID_key_usage, "critical,digitalSignature") ||
		    add_ext(ca, x, NID_ext_key_usage, "clientAuth") ||
		    X509_sign(x, cakey, EVP_sha256()) == 0)
			return 1;
		snprintf(path, sizeof path, "%s/%ld.pem", av[3], i);
		if (write_pem(path, x, NULL) == -1)
			return 1;
		snprintf(path, sizeof path, "%s/%ld.key", av[3], i);
		if (write_pem(path, NULL, k) == -1)
			return 1;
		printf("INSERT INTO agents (id, hostname, enrolled_ms,"
		    " cert_serial, cert_not_after_ms) VALUES ('%s', '%s', %lld,"
		    " '%s', %lld);\n", id, id, (long long)now, serial,
		    (long long)na);
		printf("INSERT INTO certificates (serial, agent_id,"
		    " not_before_ms, not_after_ms, created_ms) VALUES ('%s',"
		    " '%s', %lld, %lld, %lld);\n", serial, id, (long long)nb,
		    (long long)na, (long long)now);
		X509_free(x);
		EVP_PKEY_free(k);
	}
	printf("COMMIT;\n");
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return fflush(stdout) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct curl_slist *hdr = NULL;
	char url[512];
	CURLM *m;
	CURL **hs;
	CURLMsg *msg;
	rlim_t cur;
	long code, n, secs, done = 0, errors = 0, open = 0, connects = 0;
	long *answers, min_answers, added, made = 0;
	int running, left, poll, i, warm;
	double start, end, sent_at = 0;

	if (argc == 7 && strcmp(argv[1], "identities") == 0)
		return identities(argv);
	if (argc != 8 && argc != 9) {
		fprintf(stderr, "usage: agents_load heartbeat|heartbeat-health|poll"
		    " URL CERT KEY CA CONNECTIONS SECONDS [SOURCE]\n"
		    "       agents_load identities CADIR OUTDIR FIRST COUNT"
		    " PREFIX\n");
		return 2;
	}
	poll = strcmp(argv[1], "poll") == 0;
	with_health = strcmp(argv[1], "heartbeat-health") == 0;
	n = strtol(argv[6], NULL, 10);
	secs = strtol(argv[7], NULL, 10);
	if (n < 1 || secs < 1) {
		fprintf(stderr, "agents_load: CONNECTIONS and SECONDS must be "
		    "positive\n");
		return 2;
	}
	if (strstr(argv[3], "%d") != NULL) {	/* the identities there */
		char path[4096];

		if (strstr(argv[4], "%d") == NULL) {
			fprintf(stderr, "agents_load: CERT and KEY both hold"
			    " %%d, or neither\n");
			return 2;
		}
		for (ids = 0; ids < n; ids++) {
			subst(path, sizeof path, argv[3], ids);
			if (access(path, R_OK) == -1)
				break;
		}
		if (ids == 0) {
			fprintf(stderr, "agents_load: no %s\n", argv[3]);
			return 1;
		}
	}
	/* One descriptor per connection, and a few for curl. */
	(void)nofile_raise(&cur);
	if (cur != RLIM_INFINITY && (rlim_t)n + 32 > cur) {
		fprintf(stderr, "agents_load: %ld connections need more than the "
		    "%llu open files allowed: use several processes\n", n,
		    (unsigned long long)cur);
		return 1;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	snprintf(url, sizeof url, "%s%s", argv[2], poll ?
	    "/agent/v1/jobs?wait=30" : "/agent/v1/heartbeat");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, n + 16);
	if ((hs = calloc((size_t)n, sizeof *hs)) == NULL ||
	    (answers = calloc((size_t)n, sizeof *answers)) == NULL)
		return 1;
	for (i = 0; i < n; i++)
		hs[i] = handle(url, argv, !poll, hdr, argc == 9 ? argv[8] : NULL,
		    &answers[i], i);
	/* heartbeat: RAMP connections at first, one more as each is made;
	 * counted from when all are (at most WARM_MAX s). */
	added = poll ? 0 : n < RAMP ? n : RAMP;
	for (i = 0; i < added; i++)
		curl_multi_add_handle(m, hs[i]);
	start = now_s();
	end = start + (double)secs + (poll ? 0 : WARM_MAX);
	warm = poll;
	for (;;) {
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			long *mine = NULL, nc = 0;

			code = 0;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
			    &code);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &mine);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_NUM_CONNECTS,
			    &nc);
			connects += nc;
			if (msg->data.result != CURLE_OK ||
			    (code != 200 && code != 204)) {
				if (errors++ < 5)
					fprintf(stderr, "agents_load: %s (HTTP %ld)\n",
					    curl_easy_strerror(msg->data.result),
					    code);
			} else {
				done++;
				if (mine && ++*mine == 1 && !poll)
					made++;
				if (mine && *mine == 1 && !poll && added < n)
					curl_multi_add_handle(m, hs[added++]);
			}
			curl_multi_remove_handle(m, msg->easy_handle);
			if (now_s() < end && !stop)
				curl_multi_add_handle(m, msg->easy_handle);
		}
		if (!warm && (made == n || now_s() >= start + WARM_MAX)) {
			warm = 1;
			fprintf(stderr, "%ld of %ld connections made after %.1f s\n",
			    made, n, now_s() - start);
			start = now_s();
			end = start + (double)secs;
			done = 0;
		}
		if (now_s() >= end || stop)
			break;
		if (poll && open < n) {
			long k = 0;

			/* Connected and waiting: the request went out. At most
			 * RAMP handshakes at a time, as agents coming back one
			 * by one would: a storm of thousands only times out. */
			for (i = 0; i < added; i++) {
				curl_off_t up = 0;

				curl_easy_getinfo(hs[i], CURLINFO_REQUEST_SIZE, &up);
				k += up > 0;
			}
			if (k > open) {
				open = k;
				sent_at = now_s() - start;
				if (open == n)
					fprintf(stderr, "all %ld polls sent after "
					    "%.1f s\n", n, sent_at);
			}
			while (added < n && added - k < RAMP)
				curl_multi_add_handle(m, hs[added++]);
		}
		curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	for (min_answers = -1, i = 0; i < n; i++)
		if (min_answers == -1 || answers[i] < min_answers)
			min_answers = answers[i];
	/* Connections still open were made too. */
	for (i = 0; i < n; i++) {
		long nc = 0;

		curl_easy_getinfo(hs[i], CURLINFO_NUM_CONNECTS, &nc);
		connects += nc;
	}
	if (poll)
		printf("polls_sent %ld after %.1f s answered %ld "
		    "min_per_connection %ld connects %ld errors %ld\n", open,
		    sent_at, done, min_answers, connects, errors);
	else
		printf("heartbeats %ld seconds %.1f rate %.0f errors %ld"
		    " identities %ld\n", done, now_s() - start,
		    (double)done / (now_s() - start), errors, ids ? ids : 1);
	fflush(stdout);
	for (i = 0; i < n; i++) {
		curl_multi_remove_handle(m, hs[i]);
		curl_easy_cleanup(hs[i]);
	}
	free(hs);
	free(answers);
	curl_multi_cleanup(m);
	curl_slist_free_all(hdr);
	curl_global_cleanup();
	return 0;
}
