/* fuzz_plan.c — agentd/install.c's plan check, as `agentd install` meets
 * an answer from the provisioning network. Nothing may crash, and what is
 * accepted holds only what may reach a path or a command line: device
 * and volume names of [a-z0-9_-], absolute mount points without "..",
 * http:// URLs without quotes or blanks, one-line SSH keys. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "installer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
plain(const char *s, const char *set)
{
	return strspn(s, set) == strlen(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inst_plan p;
	char why[INST_ERRLEN];
	json_t *j;
	int i;

	j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (j == NULL)
		return 0;
	if (install_plan_parse(j, &p, why, sizeof why) == 0) {
		if (!plain(p.disk, "abcdefghijklmnopqrstuvwxyz0123456789_-") ||
		    !plain(p.vg, "abcdefghijklmnopqrstuvwxyz0123456789_") ||
		    strncmp(p.image_url, "http://", 7) != 0 ||
		    strpbrk(p.image_url, " '\"\\\n") != NULL ||
		    strpbrk(p.token, "\n") != NULL || p.nvol < 1 ||
		    p.nvol > INST_MAX_VOLUMES)
			abort();
		for (i = 0; i < p.nvol; i++)
			if (strstr(p.vol[i].mount, "..") != NULL ||
			    (p.vol[i].mount[0] != '/' &&
			    strcmp(p.vol[i].mount, "swap") != 0) ||
			    !plain(p.vol[i].name, "abcdefghijklmnopqrstuvwxyz0123456789_"))
				abort();
		for (i = 0; i < p.nkeys; i++)
			if (strpbrk(p.keys[i], "\r\n") != NULL)
				abort();
		install_plan_free(&p);
	} else if (why[0] == '\0') {
		abort();	/* a refusal always says why */
	}
	json_decref(j);
	return 0;
}
