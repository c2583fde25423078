/* render.h — mustache templates over jansson values.
 *
 * Implements the non-optional parts of the mustache spec (v1.3):
 * interpolation, sections, inverted sections, comments, partials and
 * set-delimiter tags, with the standalone-line rules. No lambdas, dynamic
 * names or inheritance.
 *
 * A template is compiled once into an immutable token list and rendered any
 * number of times, from any number of threads at once. Values: strings as
 * they are, integers plainly, reals in the shortest form that reads back
 * exactly (1.5 -> "1.5"), true/false as words, null and misses as nothing,
 * objects and arrays as compact JSON. {{x}} escapes & < > " for HTML;
 * {{{x}}} and {{&x}} do not. A section is skipped for false, null, "", 0,
 * 0.0 and the empty list (the spec's "!!data"), repeated for each item of a
 * list, and rendered once with the value on top of the context stack
 * otherwise; an inverted section is rendered exactly when a section would
 * not be.
 *
 * Errors are written as "NAME:LINE: message" into the caller's err buffer
 * (truncated to errlen; err may be NULL), which is left untouched on
 * success. Other out-parameters are written only on success.
 */
#ifndef BASTION_RENDER_H
#define BASTION_RENDER_H

#include <stddef.h>

#include <jansson.h>

#define RENDER_MAX_OUTPUT	(1024 * 1024)	/* default output cap */
#define RENDER_MAX_DEPTH	64	/* default section + partial nesting */
#define RENDER_DEPTH_LIMIT	256	/* max_depth is clamped to this */
#define RENDER_MAX_SOURCE	(16 * 1024 * 1024) /* largest template */

struct render_tmpl;	/* compiled template; immutable once compiled */

/*
 * Partials are looked up through the hooks below, each name at most once per
 * render (the answer, found or not, holds for the rest of that render).
 */
struct render_opts {
	/*
	 * Compiled lookup, tried first: returns a template the caller keeps
	 * alive until render_exec() returns, or NULL to fall through to the
	 * text lookup.
	 */
	const struct render_tmpl *(*partial_tmpl)(void *cls, const char *name);
	/*
	 * Text lookup: returns malloc'd NUL-terminated text, which the
	 * renderer owns and frees, or NULL if there is no such partial (it
	 * then renders as nothing, per the spec). The text is compiled under
	 * the partial's name; a compile error fails the render.
	 */
	char	*(*partial)(void *cls, const char *name);
	void	*cls;
	size_t	 max_output;	/* output cap in bytes; 0 = RENDER_MAX_OUTPUT */
	int	 max_depth;	/* nesting cap; <= 0 = RENDER_MAX_DEPTH */
};

/*
 * Compiles len bytes of text; name is used in error messages ("NAME:LINE:").
 * Errors: unclosed tag or section, mismatched or unexpected closing tag,
 * empty or invalid tag name, bad set-delimiter tag, sections nested deeper
 * than RENDER_DEPTH_LIMIT, template over RENDER_MAX_SOURCE, out of memory.
 * On success *out is a new template for render_free().
 */
int	 render_compile(const char *name, const char *text, size_t len,
	    struct render_tmpl **out, char *err, size_t errlen);

/*
 * Renders a compiled template with data (may be NULL: every lookup misses)
 * and opts (may be NULL: defaults, no partials). On success *out is a
 * malloc'd NUL-terminated string and *outlen (if outlen is not NULL) its
 * length, never more than the cap. Errors: output over the cap, nesting
 * deeper than max_depth (recursive partials), a partial that fails to
 * compile, out of memory.
 */
int	 render_exec(const struct render_tmpl *, const json_t *data,
	    const struct render_opts *, char **out, size_t *outlen,
	    char *err, size_t errlen);

void	 render_free(struct render_tmpl *);

/* The name given to render_compile(). */
const char *render_name(const struct render_tmpl *);

/* render_compile() + render_exec() + render_free() for a NUL-terminated
 * template. */
int	 render_template(const char *name, const char *tmpl,
	    const json_t *data, const struct render_opts *, char **out,
	    size_t *outlen, char *err, size_t errlen);

#endif
