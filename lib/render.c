/* render.c — mustache renderer over jansson values.
 *
 * render_compile() turns the source into a flat token list; a section token
 * records the index just past its body, so rendering is a walk over index
 * ranges. Standalone lines are resolved at compile time: the whitespace and
 * line ending around a standalone tag are simply not copied. Text and names
 * live in one arena per template; tokens hold offsets into it.
 *
 * Partial indentation follows the spec literally ("prepended to each line of
 * the partial"): a token that begins a source line carries a flag, and a
 * text token is indented after each of its newlines that has more text
 * behind it. A standalone partial inherits the indentation of the partial
 * it sits in.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "render.h"

#define DELIM_MAX	32	/* longest delimiter a template may set */
#define ERRNAME_MAX	64	/* longest tag name quoted in an error */

enum tok_type {
	TOK_TEXT,
	TOK_VAR,	/* {{x}}: escaped */
	TOK_RAW,	/* {{{x}}}, {{&x}} */
	TOK_SECTION,	/* {{#x}} */
	TOK_INVERTED,	/* {{^x}} */
	TOK_PARTIAL	/* {{>x}} */
};

struct tok {
	enum tok_type	 type;
	int		 bol;		/* begins a source line (indentation) */
	int		 standalone;	/* partials: indent the partial's lines */
	unsigned long	 line;
	size_t		 off;		/* TEXT: bytes; others: name + NUL */
	size_t		 len;		/* TEXT: byte count; others: name length */
	size_t		 path;		/* name split on '.', each part + NUL */
	size_t		 nparts;	/* 0: the implicit iterator "." */
	size_t		 end;		/* sections: index just past the body */
	size_t		 ioff, ilen;	/* standalone partials: indentation */
};

struct render_tmpl {
	char		*name;
	char		*arena;
	struct tok	*toks;
	size_t		 ntoks;
};

/* --- errors ------------------------------------------------------------ */

static void
verr(char *err, size_t errlen, const char *name, unsigned long line,
    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void
verr(char *err, size_t errlen, const char *name, unsigned long line,
    const char *fmt, va_list ap)
{
	int n;

	if (err == NULL || errlen == 0)
		return;
	n = snprintf(err, errlen, "%s:%lu: ", name, line);
	if (n < 0 || (size_t)n >= errlen)
		return;
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

/* --- compiling ----------------------------------------------------------- */

struct parser {
	const char	*name;
	const char	*src;
	size_t		 len;
	size_t		 lpos;		/* newlines counted up to here */
	unsigned long	 line;		/* line number at lpos */
	size_t		 linestart;	/* offset of the current source line */
	int		 tag_on_line;	/* a non-standalone tag is on it */
	char		 otag[DELIM_MAX + 1];
	char		 ctag[DELIM_MAX + 1];
	size_t		 olen, clen;
	struct buf	 arena;
	struct tok	*toks;
	size_t		 ntoks, atoks;
	size_t		 open[RENDER_DEPTH_LIMIT];	/* open sections */
	size_t		 nopen;
	char		*err;
	size_t		 errlen;
};

static int
perr(struct parser *p, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
perr(struct parser *p, unsigned long line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(p->err, p->errlen, p->name, line, fmt, ap);
	va_end(ap);
	return -1;
}

static unsigned long
p_line(struct parser *p, size_t at)
{
	const char *nl;

	while (p->lpos < at &&
	    (nl = memchr(p->src + p->lpos, '\n', at - p->lpos)) != NULL) {
		p->line++;
		p->lpos = (size_t)(nl - p->src) + 1;
	}
	if (p->lpos < at)
		p->lpos = at;
	return p->line;
}

/* Offset of the first needle in src[from, len), or (size_t)-1. */
static size_t
p_find(const struct parser *p, size_t from, const char *needle, size_t n)
{
	const char *s, *end;

	if (n == 0 || from > p->len || p->len - from < n)
		return (size_t)-1;
	s = p->src + from;
	end = p->src + p->len - n;
	while (s <= end) {
		s = memchr(s, needle[0], (size_t)(end - s) + 1);
		if (s == NULL)
			break;
		if (memcmp(s, needle, n) == 0)
			return (size_t)(s - p->src);
		s++;
	}
	return (size_t)-1;
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	    c == '\f';
}

static void
trim(const char **s, size_t *n)
{
	while (*n > 0 && is_space(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_space((*s)[*n - 1]))
		(*n)--;
}

/* Appends n bytes (and a NUL if nul) to the arena; *off is where. */
static int
p_store(struct parser *p, const char *s, size_t n, int nul, size_t *off)
{
	size_t at = p->arena.len;

	if (buf_add(&p->arena, s, n) == -1 ||
	    (nul && buf_add(&p->arena, "", 1) == -1))
		return perr(p, p->line, "template too large or out of memory");
	*off = at;
	return 0;
}

static int
p_push(struct parser *p, const struct tok *tok)
{
	struct tok *nt;
	size_t na;

	if (p->ntoks == p->atoks) {
		na = p->atoks ? p->atoks * 2 : 64;
		if (na < p->atoks ||
		    (nt = reallocarray(p->toks, na, sizeof(*nt))) == NULL)
			return perr(p, p->line, "out of memory");
		p->toks = nt;
		p->atoks = na;
	}
	p->toks[p->ntoks++] = *tok;
	return 0;
}

/* Stores a tag name: checked, kept whole and split on '.'. */
static int
p_name(struct parser *p, const char *s, size_t n, int partial,
    unsigned long line, struct tok *tok)
{
	size_t i, start, off = 0, path;

	trim(&s, &n);
	if (n == 0)
		return perr(p, line, "empty tag");
	for (i = 0; i < n; i++)
		if (is_space(s[i]) || s[i] == '\0')
			return perr(p, line, "invalid name '%.*s'",
			    (int)(n < ERRNAME_MAX ? n : ERRNAME_MAX), s);
	tok->nparts = 0;
	if (!partial && !(n == 1 && s[0] == '.')) {
		for (i = 0, start = 0; i <= n; i++) {
			if (i < n && s[i] != '.')
				continue;
			if (i == start)
				return perr(p, line, "invalid name '%.*s'",
				    (int)(n < ERRNAME_MAX ? n : ERRNAME_MAX),
				    s);
			tok->nparts++;
			start = i + 1;
		}
	}
	if (p_store(p, s, n, 1, &off) == -1)
		return -1;
	path = off;
	if (tok->nparts > 0) {
		if (p_store(p, s, n, 1, &path) == -1)
			return -1;
		for (i = 0; i < n; i++)
			if (p->arena.data[path + i] == '.')
				p->arena.data[path + i] = '\0';
	}
	tok->off = off;
	tok->len = n;
	tok->path = path;
	return 0;
}

/* {{=<% %>=}}: s is "<% %>", two runs of non-space. */
static int
p_delims(struct parser *p, const char *s, size_t n, unsigned long line)
{
	size_t a, b, c;

	trim(&s, &n);
	for (a = 0; a < n && !is_space(s[a]); a++)
		;
	for (b = a; b < n && is_space(s[b]); b++)
		;
	for (c = b; c < n && !is_space(s[c]); c++)
		;
	if (a == 0 || b == n || c != n || a > DELIM_MAX ||
	    n - b > DELIM_MAX || memchr(s, '\0', n) != NULL)
		return perr(p, line, "bad delimiter tag");
	memcpy(p->otag, s, a);
	p->otag[a] = '\0';
	p->olen = a;
	memcpy(p->ctag, s + b, n - b);
	p->ctag[n - b] = '\0';
	p->clen = n - b;
	return 0;
}

static int
p_close(struct parser *p, const char *s, size_t n, unsigned long line)
{
	struct tok *open;
	size_t i;
	const char *name;

	trim(&s, &n);
	if (p->nopen == 0)
		return perr(p, line, "unexpected closing tag '%.*s'",
		    (int)(n < ERRNAME_MAX ? n : ERRNAME_MAX), s);
	open = &p->toks[p->open[p->nopen - 1]];
	name = p->arena.data + open->off;
	if (n != open->len || memcmp(name, s, n) != 0) {
		i = open->len < ERRNAME_MAX ? open->len : ERRNAME_MAX;
		return perr(p, line, "closing tag '%.*s' does not match "
		    "section '%.*s' opened at line %lu",
		    (int)(n < ERRNAME_MAX ? n : ERRNAME_MAX), s, (int)i, name,
		    open->line);
	}
	open->end = p->ntoks;
	p->nopen--;
	return 0;
}

static int
p_text(struct parser *p, size_t from, size_t to, unsigned long line, int bol)
{
	struct tok tok;

	if (from >= to)
		return 0;
	memset(&tok, 0, sizeof(tok));
	tok.type = TOK_TEXT;
	tok.bol = bol;
	tok.line = line;
	tok.len = to - from;
	if (p_store(p, p->src + from, to - from, 0, &tok.off) == -1)
		return -1;
	return p_push(p, &tok);
}

/* Moves linestart past the last newline in src[from, to). */
static void
p_lines(struct parser *p, size_t from, size_t to)
{
	size_t i;

	for (i = to; i > from; i--) {
		if (p->src[i - 1] == '\n') {
			p->linestart = i;
			p->tag_on_line = 0;
			break;
		}
	}
}

/*
 * If the tag at src[tagpos, tagend) is alone on its line, with only spaces
 * and tabs around it, returns the offset just past the line's end (after
 * "\n" or "\r\n", or the end of the source); otherwise 0.
 */
static size_t
p_standalone(const struct parser *p, size_t tagpos, size_t tagend)
{
	size_t i;

	if (p->tag_on_line)
		return 0;
	for (i = p->linestart; i < tagpos; i++)
		if (p->src[i] != ' ' && p->src[i] != '\t')
			return 0;
	for (i = tagend; i < p->len; i++)
		if (p->src[i] != ' ' && p->src[i] != '\t')
			break;
	if (i == p->len)
		return i;
	if (p->src[i] == '\n')
		return i + 1;
	if (p->src[i] == '\r' && i + 1 < p->len && p->src[i + 1] == '\n')
		return i + 2;
	return 0;
}

static int
p_tag(struct parser *p, char type, const char *s, size_t n,
    unsigned long line, int bol, int standalone, size_t tagpos)
{
	struct tok tok;

	memset(&tok, 0, sizeof(tok));
	tok.line = line;
	tok.bol = bol && !standalone;
	switch (type) {
	case '!':
	case '=':
		if (type == '=' && p_delims(p, s, n, line) == -1)
			return -1;
		if (!tok.bol)
			return 0;
		/* Empty text: carries the indentation of its line. */
		tok.type = TOK_TEXT;
		tok.off = 0;
		return p_push(p, &tok);
	case '/':
		/* Indentation before an inline close belongs to the body. */
		if (tok.bol) {
			tok.type = TOK_TEXT;
			if (p_push(p, &tok) == -1)
				return -1;
		}
		return p_close(p, s, n, line);
	case '#':
	case '^':
		if (p->nopen == RENDER_DEPTH_LIMIT)
			return perr(p, line, "sections nested deeper than %d",
			    RENDER_DEPTH_LIMIT);
		tok.type = type == '#' ? TOK_SECTION : TOK_INVERTED;
		if (p_name(p, s, n, 0, line, &tok) == -1)
			return -1;
		p->open[p->nopen++] = p->ntoks;
		return p_push(p, &tok);
	case '>':
		tok.type = TOK_PARTIAL;
		tok.standalone = standalone;
		if (p_name(p, s, n, 1, line, &tok) == -1)
			return -1;
		if (standalone) {
			tok.ilen = tagpos - p->linestart;
			if (p_store(p, p->src + p->linestart, tok.ilen, 0,
			    &tok.ioff) == -1)
				return -1;
		}
		return p_push(p, &tok);
	case '{':
	case '&':
		tok.type = TOK_RAW;
		break;
	default:
		tok.type = TOK_VAR;
		break;
	}
	if (p_name(p, s, n, 0, line, &tok) == -1)
		return -1;
	return p_push(p, &tok);
}

static int
p_parse(struct parser *p)
{
	char close[DELIM_MAX + 2], type;
	size_t pos = 0, tagpos, q, cpos, cl, next, e;
	unsigned long line, textline;
	int standalone, textbol;

	while (pos < p->len) {
		textline = p_line(p, pos);
		textbol = pos == p->linestart;
		tagpos = p_find(p, pos, p->otag, p->olen);
		if (tagpos == (size_t)-1)
			return p_text(p, pos, p->len, textline, textbol);
		line = p_line(p, tagpos);
		q = tagpos + p->olen;
		type = q < p->len ? p->src[q] : 'v';
		switch (type) {
		case '{':
		case '=':
			close[0] = type == '{' ? '}' : '=';
			memcpy(close + 1, p->ctag, p->clen);
			cl = p->clen + 1;
			q++;
			break;
		case '&':
		case '#':
		case '^':
		case '/':
		case '!':
		case '>':
			memcpy(close, p->ctag, p->clen);
			cl = p->clen;
			q++;
			break;
		default:
			memcpy(close, p->ctag, p->clen);
			cl = p->clen;
			type = 'v';
			break;
		}
		if ((cpos = p_find(p, q, close, cl)) == (size_t)-1)
			return perr(p, line, "unclosed tag");
		next = cpos + cl;

		/* A standalone tag takes its whole line with it. */
		p_lines(p, pos, tagpos);
		standalone = 0;
		if (strchr("#^/!>=", type) != NULL &&
		    (e = p_standalone(p, tagpos, next)) > 0) {
			standalone = 1;
			next = e;
		}
		if (p_text(p, pos, standalone ? p->linestart : tagpos,
		    textline, textbol) == -1)
			return -1;
		if (p_tag(p, type, p->src + q, cpos - q, line,
		    tagpos == p->linestart && !p->tag_on_line, standalone,
		    tagpos) == -1)
			return -1;
		if (standalone) {
			p->linestart = next;
			p->tag_on_line = 0;
		} else
			p->tag_on_line = 1;
		pos = next;
	}
	return 0;
}

int
render_compile(const char *name, const char *text, size_t len,
    struct render_tmpl **out, char *err, size_t errlen)
{
	struct parser p;
	struct render_tmpl *t;
	struct tok *open;

	memset(&p, 0, sizeof(p));
	p.name = name != NULL ? name : "(template)";
	p.src = text;
	p.len = len;
	p.line = 1;
	p.err = err;
	p.errlen = errlen;
	memcpy(p.otag, "{{", 3);
	memcpy(p.ctag, "}}", 3);
	p.olen = p.clen = 2;
	/* Text, names twice, indentation: never more than 8x the source. */
	buf_init(&p.arena, len > RENDER_MAX_SOURCE ? 0 : len * 8 + 64);
	if (len > RENDER_MAX_SOURCE) {
		perr(&p, 1, "template larger than %d bytes", RENDER_MAX_SOURCE);
		goto err_parse;
	}
	if (p_parse(&p) == -1)
		goto err_parse;
	if (p.nopen > 0) {
		open = &p.toks[p.open[p.nopen - 1]];
		perr(&p, open->line, "unclosed section '%.*s'",
		    (int)(open->len < ERRNAME_MAX ? open->len : ERRNAME_MAX),
		    p.arena.data + open->off);
		goto err_parse;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto err_alloc;
	if ((t->name = strdup(p.name)) == NULL)
		goto err_name;
	if ((t->arena = buf_take(&p.arena)) == NULL)
		goto err_arena;
	t->toks = p.toks;
	t->ntoks = p.ntoks;
	*out = t;
	return 0;

err_arena:
	free(t->name);
err_name:
	free(t);
err_alloc:
	perr(&p, 1, "out of memory");
err_parse:
	buf_free(&p.arena);
	free(p.toks);
	return -1;
}

void
render_free(struct render_tmpl *t)
{
	if (t == NULL)
		return;
	free(t->name);
	free(t->arena);
	free(t->toks);
	free(t);
}

const char *
render_name(const struct render_tmpl *t)
{
	return t->name;
}

/* --- rendering ----------------------------------------------------------- */

struct ctx {			/* context stack, on the C stack */
	const json_t		*v;
	const struct ctx	*up;
};

struct frame {			/* a template being rendered */
	const struct render_tmpl *t;
	const struct frame	*iup;	/* whose indentation comes first */
	const char		*indent;
	size_t			 ilen;
	size_t			 itotal;	/* with all of iup's */
};

struct pcache {			/* partials looked up during one render */
	struct pcache		*next;
	char			*name;
	const struct render_tmpl *t;	/* NULL: no such partial */
	struct render_tmpl	*owned;	/* compiled from text here */
};

struct exec {
	struct buf		 out;
	const struct render_opts *o;
	int			 depth, max_depth;
	struct pcache		*cache;
	const struct render_tmpl *t;	/* where we are, for errors */
	const struct tok	*tok;
	int			 reported;	/* err has been written */
	char			*err;
	size_t			 errlen;
};

static int
xerr(struct exec *ex, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
xerr(struct exec *ex, const char *fmt, ...)
{
	va_list ap;

	ex->reported = 1;
	va_start(ap, fmt);
	verr(ex->err, ex->errlen, ex->t->name,
	    ex->tok != NULL ? ex->tok->line : 1, fmt, ap);
	va_end(ap);
	return -1;
}

static int
out_add(struct exec *ex, const char *s, size_t n)
{
	if (n == 0)
		return 0;
	if (buf_add(&ex->out, s, n) == 0)
		return 0;
	if (n > ex->out.max - ex->out.len)
		return xerr(ex, "output exceeds %zu bytes", ex->out.max);
	return xerr(ex, "out of memory");
}

static int
out_esc(struct exec *ex, const char *s, size_t n)
{
	const char *rep;
	size_t i, run;

	for (i = run = 0; i < n; i++) {
		switch (s[i]) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		default:
			continue;
		}
		if (out_add(ex, s + run, i - run) == -1 ||
		    out_add(ex, rep, strlen(rep)) == -1)
			return -1;
		run = i + 1;
	}
	return out_add(ex, s + run, n - run);
}

struct dumpctx {
	struct exec	*ex;
	int		 escape;
};

static int
dump_cb(const char *s, size_t n, void *arg)
{
	struct dumpctx *dc = arg;

	return dc->escape ? out_esc(dc->ex, s, n) : out_add(dc->ex, s, n);
}

/* Shortest %g form that reads back as the same double. */
static void
fmt_real(double d, char *s, size_t n)
{
	int prec;

	for (prec = 15; prec < 17; prec++) {
		snprintf(s, n, "%.*g", prec, d);
		if (strtod(s, NULL) == d)
			return;
	}
	snprintf(s, n, "%.17g", d);
}

static int
emit_value(struct exec *ex, const json_t *v, int escape)
{
	struct dumpctx dc;
	char num[64];
	int n;

	if (v == NULL)
		return 0;
	switch (json_typeof(v)) {
	case JSON_STRING:
		if (escape)
			return out_esc(ex, json_string_value(v),
			    json_string_length(v));
		return out_add(ex, json_string_value(v),
		    json_string_length(v));
	case JSON_INTEGER:
		n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return out_add(ex, num, (size_t)n);
	case JSON_REAL:
		fmt_real(json_real_value(v), num, sizeof(num));
		return out_add(ex, num, strlen(num));
	case JSON_TRUE:
		return out_add(ex, "true", 4);
	case JSON_FALSE:
		return out_add(ex, "false", 5);
	case JSON_NULL:
		return 0;
	case JSON_OBJECT:
	case JSON_ARRAY:
		dc.ex = ex;
		dc.escape = escape;
		if (json_dump_callback(v, dump_cb, &dc, JSON_COMPACT) == -1) {
			/* dump_cb may have reported a full buffer. */
			if (!ex->reported)
				return xerr(ex, "cannot encode value");
			return -1;
		}
		return 0;
	}
	return 0;
}

static int
truthy(const json_t *v)
{
	if (v == NULL)
		return 0;
	switch (json_typeof(v)) {
	case JSON_NULL:
	case JSON_FALSE:
		return 0;
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0.0;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	default:
		return 1;
	}
}

static const json_t *
lookup(const struct render_tmpl *t, const struct tok *tok,
    const struct ctx *c)
{
	const char *part = t->arena + tok->path;
	const json_t *v = NULL;
	size_t i;

	if (tok->nparts == 0)
		return c->v;
	for (; c != NULL; c = c->up)
		if (json_is_object(c->v) &&
		    (v = json_object_get(c->v, part)) != NULL)
			break;
	for (i = 1; v != NULL && i < tok->nparts; i++) {
		part += strlen(part) + 1;
		v = json_is_object(v) ? json_object_get(v, part) : NULL;
	}
	return v;
}

static int
emit_indent(struct exec *ex, const struct frame *fr)
{
	if (fr->iup != NULL && emit_indent(ex, fr->iup) == -1)
		return -1;
	return out_add(ex, fr->indent, fr->ilen);
}

static int
emit_text(struct exec *ex, const struct frame *fr, const char *s, size_t n)
{
	const char *nl;
	size_t k;

	if (fr->itotal == 0)
		return out_add(ex, s, n);
	while ((nl = memchr(s, '\n', n)) != NULL &&
	    (k = (size_t)(nl - s) + 1) < n) {
		if (out_add(ex, s, k) == -1 || emit_indent(ex, fr) == -1)
			return -1;
		s += k;
		n -= k;
	}
	return out_add(ex, s, n);
}

static int
enter(struct exec *ex)
{
	if (ex->depth >= ex->max_depth)
		return xerr(ex, "nesting deeper than %d", ex->max_depth);
	ex->depth++;
	return 0;
}

static void
cache_free(struct pcache *pc)
{
	struct pcache *next;

	for (; pc != NULL; pc = next) {
		next = pc->next;
		render_free(pc->owned);
		free(pc->name);
		free(pc);
	}
}

/* *out: the partial, or NULL if there is none. Each name is looked up
 * once per render, so a render sees one version of every partial. */
static int
get_partial(struct exec *ex, const char *name,
    const struct render_tmpl **out)
{
	const struct render_opts *o = ex->o;
	struct pcache *pc;
	char *text = NULL;

	for (pc = ex->cache; pc != NULL; pc = pc->next) {
		if (strcmp(pc->name, name) == 0) {
			*out = pc->t;
			return 0;
		}
	}
	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		goto err_alloc;
	if ((pc->name = strdup(name)) == NULL)
		goto err_name;
	if (o->partial_tmpl != NULL)
		pc->t = o->partial_tmpl(o->cls, name);
	if (pc->t == NULL && o->partial != NULL &&
	    (text = o->partial(o->cls, name)) != NULL) {
		if (render_compile(name, text, strlen(text), &pc->owned,
		    ex->err, ex->errlen) == -1)
			goto err_compile;
		pc->t = pc->owned;
	}
	free(text);
	pc->next = ex->cache;
	ex->cache = pc;
	*out = pc->t;
	return 0;

err_compile:
	ex->reported = 1;
	free(text);
	free(pc->name);
	free(pc);
	return -1;
err_name:
	free(pc);
err_alloc:
	return xerr(ex, "out of memory");
}

static int render_range(struct exec *, const struct frame *, size_t, size_t,
    const struct ctx *);

static int
render_partial(struct exec *ex, const struct frame *fr, const struct tok *tok,
    const struct ctx *c)
{
	const struct render_tmpl *pt = NULL;
	struct frame nf;
	int rc;

	if (get_partial(ex, fr->t->arena + tok->off, &pt) == -1)
		return -1;
	if (pt == NULL)
		return 0;
	if (enter(ex) == -1)
		return -1;
	memset(&nf, 0, sizeof(nf));
	nf.t = pt;
	if (tok->standalone) {
		nf.iup = fr->itotal > 0 ? fr : NULL;
		nf.indent = fr->t->arena + tok->ioff;
		nf.ilen = tok->ilen;
		nf.itotal = fr->itotal + tok->ilen;
	}
	rc = render_range(ex, &nf, 0, pt->ntoks, c);
	ex->depth--;
	return rc;
}

/* Renders a section body once with v on top of the context stack. */
static int
render_body(struct exec *ex, const struct frame *fr, size_t i,
    const json_t *v, const struct ctx *c)
{
	const struct tok *tok = &fr->t->toks[i];
	struct ctx top;
	int rc;

	ex->t = fr->t;
	ex->tok = tok;
	if (enter(ex) == -1)
		return -1;
	top.v = v;
	top.up = c;
	rc = render_range(ex, fr, i + 1, tok->end, v != NULL ? &top : c);
	ex->depth--;
	return rc;
}

static int
render_range(struct exec *ex, const struct frame *fr, size_t from, size_t to,
    const struct ctx *c)
{
	const struct render_tmpl *t = fr->t;
	const struct tok *tok;
	const json_t *v;
	size_t i, j;

	for (i = from; i < to; i++) {
		tok = &t->toks[i];
		ex->t = t;
		ex->tok = tok;
		if (tok->bol && fr->itotal > 0 && emit_indent(ex, fr) == -1)
			return -1;
		switch (tok->type) {
		case TOK_TEXT:
			if (emit_text(ex, fr, t->arena + tok->off,
			    tok->len) == -1)
				return -1;
			break;
		case TOK_VAR:
		case TOK_RAW:
			if (emit_value(ex, lookup(t, tok, c),
			    tok->type == TOK_VAR) == -1)
				return -1;
			break;
		case TOK_SECTION:
			v = lookup(t, tok, c);
			if (json_is_array(v)) {
				for (j = 0; j < json_array_size(v); j++)
					if (render_body(ex, fr, i,
					    json_array_get(v, j), c) == -1)
						return -1;
			} else if (truthy(v) &&
			    render_body(ex, fr, i, v, c) == -1)
				return -1;
			i = tok->end - 1;
			break;
		case TOK_INVERTED:
			if (!truthy(lookup(t, tok, c)) &&
			    render_body(ex, fr, i, NULL, c) == -1)
				return -1;
			i = tok->end - 1;
			break;
		case TOK_PARTIAL:
			if (render_partial(ex, fr, tok, c) == -1)
				return -1;
			break;
		}
	}
	return 0;
}

int
render_exec(const struct render_tmpl *t, const json_t *data,
    const struct render_opts *o, char **out, size_t *outlen, char *err,
    size_t errlen)
{
	static const struct render_opts defaults;
	struct exec ex;
	struct frame fr;
	struct ctx root;
	size_t n;
	char *s;

	if (o == NULL)
		o = &defaults;
	memset(&ex, 0, sizeof(ex));
	ex.o = o;
	ex.t = t;
	ex.err = err;
	ex.errlen = errlen;
	ex.max_depth = o->max_depth > 0 ? o->max_depth : RENDER_MAX_DEPTH;
	if (ex.max_depth > RENDER_DEPTH_LIMIT)
		ex.max_depth = RENDER_DEPTH_LIMIT;
	buf_init(&ex.out, o->max_output > 0 ? o->max_output :
	    RENDER_MAX_OUTPUT);
	memset(&fr, 0, sizeof(fr));
	fr.t = t;
	root.v = data;
	root.up = NULL;
	if (render_range(&ex, &fr, 0, t->ntoks, &root) == -1)
		goto err_render;
	n = ex.out.len;
	if ((s = buf_take(&ex.out)) == NULL) {
		xerr(&ex, "out of memory");
		goto err_render;
	}
	cache_free(ex.cache);
	*out = s;
	if (outlen != NULL)
		*outlen = n;
	return 0;

err_render:
	buf_free(&ex.out);
	cache_free(ex.cache);
	return -1;
}

int
render_template(const char *name, const char *tmpl, const json_t *data,
    const struct render_opts *o, char **out, size_t *outlen, char *err,
    size_t errlen)
{
	struct render_tmpl *t;
	int rc;

	if (render_compile(name, tmpl, strlen(tmpl), &t, err, errlen) == -1)
		return -1;
	rc = render_exec(t, data, o, out, outlen, err, errlen);
	render_free(t);
	return rc;
}
