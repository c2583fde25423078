/* fuzz_config.c — bastion/config.c: config_load_string on any text.
 * Must never crash; errors stay within their cap and say file:line;
 * a config that loads can be written out with config_get and loads back
 * to the same values. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define NAME		"fuzz.conf"
#define ERRORS_MAX	4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "[section]\nkey=value\n" for every key, from config_get. */
static char *
dump(const struct config *c)
{
	struct buf text, v;
	const char *key;
	size_t i;

	buf_init(&text, 1 << 20);
	buf_init(&v, 4096);
	for (i = 0; (key = config_key_at(i)) != NULL; i++) {
		const char *dot = strchr(key, '.');

		buf_reset(&v);
		if (dot == NULL || config_get(c, key, &v) != 0)
			abort();
		if (buf_printf(&text, "[%.*s]\n%s=%s\n", (int)(dot - key), key,
		    dot + 1, v.data ? v.data : "") != 0)
			abort();
	}
	buf_free(&v);
	return buf_take(&text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c, *c2;
	struct buf errors;
	char *text, *out, *out2;
	int rc;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	c = malloc(sizeof *c);
	c2 = malloc(sizeof *c2);
	if (c == NULL || c2 == NULL)
		abort();
	buf_init(&errors, ERRORS_MAX);

	rc = config_load_string(NAME, text, c, &errors);
	if (errors.len > ERRORS_MAX)
		abort();
	if (rc == 0 && errors.len != 0)
		abort();		/* success with errors */
	if (rc != 0 && (errors.len == 0 ||
	    strncmp(errors.data, NAME ":", strlen(NAME ":")) != 0))
		abort();		/* failure without a file:line error */
	if (rc == 0) {
		out = dump(c);
		buf_reset(&errors);
		if (config_load_string(NAME, out, c2, &errors) != 0) {
			fprintf(stderr, "config_get output does not load:\n%s\n"
			    "errors:\n%s\n", out, errors.data);
			abort();
		}
		out2 = dump(c2);
		if (strcmp(out, out2) != 0) {
			fprintf(stderr, "round trip changed the config:\n%s\n"
			    "became:\n%s\n", out, out2);
			abort();
		}
		free(out);
		free(out2);
	}
	buf_free(&errors);
	free(c);
	free(c2);
	free(text);
	return 0;
}
