/* bench/render.c — full install kickstarts rendered for 1000 distinct
 * machines, through the same path /ks/{mac} uses (install_context +
 * templates_render with every partial), on one thread. The reference,
 * measured in the same run, is copying the same bytes (memcpy): the
 * floor any renderer pays to produce them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "install.h"
#include "templates.h"

#define MACHINES 1000

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char *argv[])
{
	static struct install in[MACHINES];
	static struct machine m[MACHINES];
	static char *out[MACHINES];
	static size_t outlen[MACHINES];
	struct config *c = calloc(1, sizeof *c);
	struct templates *t;
	struct buf e;
	json_t *ctx, *hw;
	char err[512], *copy;
	double secs = argc > 2 ? atof(argv[2]) : 3, t0, t1, render_s, copy_s;
	long rounds = 0, copies = 0, i;
	size_t total = 0;

	buf_init(&e, 4096);
	if (c == NULL || config_load_string("bench.conf",
	    "[install]\nrepo = http://mirror/fedora/40/os\n", c, &e) != 0 ||
	    templates_open("/nonexistent", argc > 1 ? argv[1] : ".", &t) != 0) {
		fprintf(stderr, "bench/render: setup failed: %s\n", e.data);
		return 1;
	}
	hw = json_pack("{s:s}", "firmware", "uefi");
	for (i = 0; i < MACHINES; i++) {
		snprintf(m[i].mac, sizeof m[i].mac, "52:54:00:%02lx:%02lx:%02lx",
		    (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
		m[i].state = MS_INSTALLING;
		snprintf(in[i].hostname, sizeof in[i].hostname,
		    "node%04ld.rack%ld.lab", i, i % 40);
		snprintf(in[i].role, sizeof in[i].role, "%s", i % 2 ? "infra" :
		    "worker");
		snprintf(in[i].disk, sizeof in[i].disk, "%s", i % 3 ? "sda" :
		    "nvme0n1");
		snprintf(in[i].ssh_keys, sizeof in[i].ssh_keys, "[\"ssh-ed25519 "
		    "AAAAC3NzaC1lZDI1NTE5AAAAIGmiGf1hhbxbcvYOUcw0WlcRbFhRLfP0uj9d"
		    "CkpWxrJ9 ops%ld@lab\"]", i);
		in[i].reprovision = i % 4 == 0;
	}
	/* Warm the template cache and keep one output per machine. */
	for (i = 0; i < MACHINES; i++) {
		ctx = install_context(c, &m[i], &in[i], hw,
		    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		    1);
		if (templates_render(t, "install.ks", ctx, &out[i], &outlen[i], err,
		    sizeof err) != 0) {
			fprintf(stderr, "bench/render: %s\n", err);
			return 1;
		}
		total += outlen[i];
		json_decref(ctx);
	}
	t0 = now();
	do {
		for (i = 0; i < MACHINES; i++) {
			char *o;
			size_t n;

			ctx = install_context(c, &m[i], &in[i], hw,
			    "0123456789abcdef0123456789abcdef0123456789abcdef01234"
			    "56789abcdef", 1);
			if (templates_render(t, "install.ks", ctx, &o, &n, err,
			    sizeof err) != 0)
				return 1;
			free(o);
			json_decref(ctx);
		}
		rounds++;
	} while ((t1 = now()) - t0 < secs);
	render_s = (t1 - t0) / (double)(rounds * MACHINES);
	t0 = now();
	do {
		for (i = 0; i < MACHINES; i++) {
			if ((copy = malloc(outlen[i] + 1)) == NULL)
				return 1;
			memcpy(copy, out[i], outlen[i] + 1);
			__asm__ volatile("" : : "r"(copy) : "memory");
			free(copy);
		}
		copies++;
	} while ((t1 = now()) - t0 < secs / 3);
	copy_s = (t1 - t0) / (double)(copies * MACHINES);
	printf("bench/render: %d machines, %zu-byte kickstarts on average, one thread\n",
	    MACHINES, total / MACHINES);
	printf("render (context + template): %8.1f us/render  %10.0f renders/s\n",
	    render_s * 1e6, 1 / render_s);
	printf("reference (copy same bytes): %8.3f us/copy    %10.0f copies/s\n",
	    copy_s * 1e6, 1 / copy_s);
	printf("ratio render/copy: %.0fx; goal <= 100 us/render: %s (Cobbler publishes ~4000 us)\n",
	    render_s / copy_s, render_s <= 100e-6 ? "met" : "NOT met");
	for (i = 0; i < MACHINES; i++)
		free(out[i]);
	json_decref(hw);
	templates_close(t);
	free(c);
	buf_free(&e);
	return 0;
}
