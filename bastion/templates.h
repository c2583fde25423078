/* templates.h — kickstart and iPXE templates as files. A template NAME
 * ("install.ks", "discovery.ipxe") is the file NAME.mustache, looked up
 * first in STATE_DIR/templates/ (operator overrides), then in the built-in
 * SHARE_DIR/kickstart/ (*.ks) or SHARE_DIR/ipxe/ (*.ipxe). Partials are
 * templates too: {{> progress.ks}}. Compiled templates are cached and
 * recompiled when their file changes. */
#ifndef BASTION_TEMPLATES_H
#define BASTION_TEMPLATES_H

#include <stddef.h>

#include <jansson.h>

struct templates;

#define TEMPLATES_MAX_OUTPUT	(1024 * 1024)

int	templates_open(const char *override_dir, const char *share_dir,
	    struct templates **out);
void	templates_close(struct templates *);
/* Render NAME with data. *out is malloc'd. On error -1 and err says which
 * file and line. */
int	templates_render(struct templates *, const char *name,
	    const json_t *data, char **out, size_t *outlen, char *err,
	    size_t errlen);
/* [{"name", "path", "source": "override"|"builtin"}] for every template
 * either directory holds. */
json_t	*templates_list(struct templates *);
/* The first built-in template (relative to share_dir, e.g.
 * "ipxe/boot.ipxe.mustache") that share_dir lacks, or NULL when it has
 * them all. Overrides in the state dir do not count: they are optional. */
const char *templates_missing(const char *share_dir);
/* Is NAME a well-formed template name? */
int	templates_valid_name(const char *name);

#endif
