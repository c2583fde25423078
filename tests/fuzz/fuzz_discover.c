/* fuzz_discover.c — bastion/discover.c: the discovery report as it
 * arrives over the network. json_loadb, discover_validate, and
 * discover_diff against a fixed valid report, both ways round.
 * Properties: a validated report validates again to itself; the reason
 * for a rejection is a terminated, non-empty string. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "discover.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const FIXED =
	"{\"mac\": \"52:54:00:ab:cd:ef\", \"boot_mac\": \"52:54:00:ab:cd:ef\","
	" \"firmware\": \"bios\","
	" \"cpu\": {\"model\": \"QEMU Virtual CPU\", \"sockets\": 1,"
	"  \"cores\": 2, \"threads\": 2},"
	" \"memory\": {\"total_bytes\": 2147483648},"
	" \"disks\": [{\"name\": \"vda\", \"size_bytes\": 21474836480,"
	"  \"model\": \"\", \"serial\": \"d0\", \"rotational\": true}],"
	" \"nics\": [{\"name\": \"eth0\", \"mac\": \"52:54:00:ab:cd:ef\","
	"  \"driver\": \"virtio_net\", \"speed_mbps\": -1, \"carrier\": true}],"
	" \"dmi\": {\"vendor\": \"QEMU\", \"product\": \"Standard PC\","
	"  \"serial\": \"\", \"uuid\": \"9b2f3c1e-6f0d-4a6c-9e1a-2b3c4d5e6f70\"}}";

static json_t *fixed;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *report, *out = NULL, *again = NULL;
	char why[256];
	struct buf d;

	if (fixed == NULL) {
		json_t *raw = json_loads(FIXED, 0, NULL);

		if (raw == NULL ||
		    discover_validate(raw, &fixed, why, sizeof why) != 0)
			abort();
		json_decref(raw);
	}
	if (size > DISCOVER_MAX_BODY)
		return 0;
	if ((report = json_loadb((const char *)data, size, 0, NULL)) == NULL)
		return 0;
	memset(why, 'X', sizeof why);
	if (discover_validate(report, &out, why, sizeof why) != 0) {
		if (out != NULL || memchr(why, '\0', sizeof why) == NULL ||
		    why[0] == '\0')
			abort();
		json_decref(report);
		return 0;
	}
	if (out == NULL || out == report)
		abort();
	/* Normalised output is a fixed point. */
	if (discover_validate(out, &again, why, sizeof why) != 0) {
		fprintf(stderr, "validated report fails again: %s\n", why);
		abort();
	}
	if (!json_equal(out, again))
		abort();
	buf_init(&d, 4096);
	discover_diff(out, fixed, &d);
	buf_reset(&d);
	discover_diff(fixed, out, &d);
	buf_reset(&d);
	discover_diff(out, again, &d);
	if (d.len != 0) {
		fprintf(stderr, "a report differs from itself: %s\n", d.data);
		abort();
	}
	buf_free(&d);
	json_decref(again);
	json_decref(out);
	json_decref(report);
	return 0;
}
