/* fuzz_render.c — libFuzzer target for the mustache renderer.
 *
 * Input: TEMPLATE NUL JSON-DATA NUL PARTIAL. A partial named "self" is the
 * template itself (recursion), "none" does not exist, and every other name
 * is the PARTIAL text. Renders under a small output cap; the output must
 * respect it and the error buffer must be a terminated string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "render.h"

#define FUZZ_MAX_OUTPUT	(64 * 1024)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct input {
	const char	*tmpl;
	const char	*partial;
};

static char *
fuzz_partial(void *cls, const char *name)
{
	const struct input *in = cls;

	if (strcmp(name, "none") == 0)
		return NULL;
	return strdup(strcmp(name, "self") == 0 ? in->tmpl : in->partial);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct render_opts o;
	struct render_tmpl *t;
	struct input in;
	json_t *json = NULL;
	const char *part[3] = { "", "", "" };
	char *copy, *p, *end, *out = NULL, *out2 = NULL, err[256];
	size_t outlen = 0, outlen2 = 0, tlen;
	int i, rc, rc2;

	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	end = copy + size;
	for (i = 0, p = copy; i < 3 && p <= end; i++) {
		part[i] = p;
		p += strlen(p) + 1;
	}
	tlen = strlen(part[0]);
	if (part[1][0] != '\0')
		json = json_loads(part[1], JSON_DECODE_ANY, NULL);

	in.tmpl = part[0];
	in.partial = part[2];
	memset(&o, 0, sizeof(o));
	o.partial = fuzz_partial;
	o.cls = &in;
	o.max_output = FUZZ_MAX_OUTPUT;
	o.max_depth = 32;

	if (render_compile("fuzz", part[0], tlen, &t, err, sizeof(err)) == 0) {
		rc = render_exec(t, json, &o, &out, &outlen, err, sizeof(err));
		if (rc == 0 && (outlen > FUZZ_MAX_OUTPUT || out[outlen] != '\0'))
			abort();
		if (rc == -1 && memchr(err, '\0', sizeof(err)) == NULL)
			abort();
		/* A compiled template renders the same way every time. */
		rc2 = render_exec(t, json, &o, &out2, &outlen2, err,
		    sizeof(err));
		if (rc2 != rc || (rc == 0 && (outlen2 != outlen ||
		    memcmp(out, out2, outlen) != 0)))
			abort();
		if (rc == 0) {
			free(out);
			free(out2);
		}
		render_free(t);
	} else if (memchr(err, '\0', sizeof(err)) == NULL)
		abort();

	json_decref(json);
	free(copy);
	return 0;
}
