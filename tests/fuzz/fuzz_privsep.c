/* fuzz_privsep.c — bastion/privsep.c's parent side: whatever a broken or
 * hostile HTTP worker writes on its request channel (framing, types,
 * config changes), the parent answers or gives up on it, never crashes,
 * and only ever writes a config file that parses. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bastion.h"
#include "buf.h"
#include "config.h"
#include "privsep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int privsep_fuzz_attach(struct bastion *, int req);

static int reloads;

static void
count_reload(struct bastion *app)
{
	reloads++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char conf[] = "/tmp/fuzz-privsep-XXXXXX";
	static struct config cfg;
	static int ready;
	struct bastion app;
	struct buf errors;
	char drain[4096];
	int sv[2], fd, n = 0;

	if (size > 256 * 1024)
		return 0;
	if (!ready) {
		if ((fd = mkstemp(conf)) == -1)
			abort();
		close(fd);
		ready = 1;
	}
	if ((fd = open(conf, O_WRONLY | O_TRUNC)) == -1)
		abort();
	close(fd);
	buf_init(&errors, 65536);
	if (config_load(conf, &cfg, &errors) == -1)
		abort();
	buf_free(&errors);
	memset(&app, 0, sizeof app);
	app.cfg = &cfg;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		abort();
	if (privsep_fuzz_attach(&app, sv[0]) == -1)
		abort();
	/* The worker's side: everything it says, then silence. */
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	if (size && write(sv[1], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[1], SHUT_WR);
	while (privsep_serve(&app, count_reload) == 0 && n++ < 10000)
		while (read(sv[1], drain, sizeof drain) > 0)
			;
	privsep_stop(&app, 0);
	close(sv[1]);
	/* What the parent wrote must still be a config it can load. */
	buf_init(&errors, 65536);
	if (config_load(conf, &cfg, &errors) == -1) {
		fputs(errors.data ? errors.data : "", stderr);
		abort();
	}
	buf_free(&errors);
	return 0;
}
