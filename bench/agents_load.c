/* agents_load.c — load generator for bench/agents: simulated agents over
 * mutual TLS with keep-alive, on libcurl's multi interface (one thread).
 *
 *   agents_load heartbeat URL CERT KEY CA CONNECTIONS SECONDS
 *       every connection POSTs /agent/v1/heartbeat back to back; prints
 *       "heartbeats N seconds S rate R errors E"
 *   agents_load poll URL CERT KEY CA CONNECTIONS SECONDS
 *       opens CONNECTIONS long polls (GET /agent/v1/jobs?wait=30), keeps
 *       them open for SECONDS (re-polling when one returns) and prints
 *       "polls_open N answered A errors E"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

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

static CURL *
handle(const char *url, char **av, int post, struct curl_slist *hdr)
{
	CURL *c = curl_easy_init();

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_SSLCERT, av[3]);
	curl_easy_setopt(c, CURLOPT_SSLKEY, av[4]);
	curl_easy_setopt(c, CURLOPT_CAINFO, av[5]);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	if (post) {
		static const char body[] = "{\"load\":[0.01,0.02,0.03],"
		    "\"memory\":{\"total_bytes\":1073741824,\"free_bytes\":"
		    "536870912},\"running_jobs\":0,\"uptime_s\":1234}";

		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	return c;
}

int
main(int argc, char **argv)
{
	struct curl_slist *hdr = NULL;
	char url[512];
	CURLM *m;
	CURL **hs;
	CURLMsg *msg;
	long code, n, secs, done = 0, errors = 0, open = 0;
	int running, left, poll, i;
	double start, end;

	if (argc != 8) {
		fprintf(stderr, "usage: agents_load heartbeat|poll URL CERT KEY CA "
		    "CONNECTIONS SECONDS\n");
		return 2;
	}
	poll = strcmp(argv[1], "poll") == 0;
	n = strtol(argv[6], NULL, 10);
	secs = strtol(argv[7], NULL, 10);
	snprintf(url, sizeof url, "%s%s", argv[2], poll ?
	    "/agent/v1/jobs?wait=30" : "/agent/v1/heartbeat");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, n + 16);
	if ((hs = calloc((size_t)n, sizeof *hs)) == NULL)
		return 1;
	for (i = 0; i < n; i++) {
		hs[i] = handle(url, argv, !poll, hdr);
		curl_multi_add_handle(m, hs[i]);
	}
	start = now_s();
	end = start + (double)secs;
	for (;;) {
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			code = 0;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
			    &code);
			if (msg->data.result != CURLE_OK ||
			    (code != 200 && code != 204))
				errors++;
			else
				done++;
			curl_multi_remove_handle(m, msg->easy_handle);
			if (now_s() < end)
				curl_multi_add_handle(m, msg->easy_handle);
		}
		if (now_s() >= end)
			break;
		if (poll && open < n) {
			long k = 0;

			/* Connected and waiting: the request went out. */
			for (i = 0; i < n; i++) {
				curl_off_t up = 0;

				curl_easy_getinfo(hs[i], CURLINFO_REQUEST_SIZE, &up);
				k += up > 0;
			}
			if (k > open) {
				open = k;
				if (open == n)
					fprintf(stderr, "all %ld polls sent after "
					    "%.1f s\n", n, now_s() - start);
			}
		}
		curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	if (poll)
		printf("polls_open %ld answered %ld errors %ld\n", open, done,
		    errors);
	else
		printf("heartbeats %ld seconds %.1f rate %.0f errors %ld\n", done,
		    now_s() - start, (double)done / (now_s() - start), errors);
	fflush(stdout);
	for (i = 0; i < n; i++) {
		curl_multi_remove_handle(m, hs[i]);
		curl_easy_cleanup(hs[i]);
	}
	free(hs);
	curl_multi_cleanup(m);
	curl_slist_free_all(hdr);
	curl_global_cleanup();
	return 0;
}
