/* fuzz_cmdline.c — agentd/cmdline.c: the kernel command line the
 * discovery image reads (bastion.url=, bastion.mac=, bastion.after=,
 * BOOTIF=). Whatever it accepts must be well-formed: an http(s) URL of
 * printable characters without spaces, double quotes or backslashes, a
 * canonical MAC, a known after-action. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"
#include "mac.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmdline c;
	char *text, canon[MAC_STRLEN];

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&c, 0, sizeof c);
	if (cmdline_parse(text, &c) == 0) {
		if (memchr(c.url, '\0', sizeof c.url) == NULL ||
		    memchr(c.mac, '\0', sizeof c.mac) == NULL)
			abort();	/* unterminated */
		if (c.url[0] && (strncmp(c.url, "http", 4) != 0 ||
		    strpbrk(c.url, " \t\n\r\"\\") != NULL))
			abort();
		if (c.mac[0] && (mac_normalize(c.mac, canon) != 0 ||
		    strcmp(canon, c.mac) != 0))
			abort();
		if (cmdline_after_name(c.after) == NULL)
			abort();
	}
	free(text);
	return 0;
}
