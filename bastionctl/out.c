/* out.c — bastionctl's output: messages, JSON, aligned tables, sizes,
 * times and progress bars. Everything the server (or a machine on the
 * provisioning network) chose is cleaned of control characters before it
 * reaches a terminal. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "utf8.h"

#define TABLE_MAX_CELL	512

struct ctl_table {
	int	  ncols;
	size_t	  nrows;	/* including the header row */
	size_t	  alloc;
	char	**cells;	/* nrows * ncols, each cleaned and owned */
};

static void	vline(FILE *, const char *, const char *, va_list)
		    __attribute__((format(printf, 3, 0)));

/* prefix, then fmt formatted and cleaned (ctl_clean: whatever a server
 * string carried, a newline included, cannot start a line of its own or
 * reach the terminal as a control sequence), then a newline. */
static void
vline(FILE *fp, const char *prefix, const char *fmt, va_list ap)
{
	char small[1024], *text = small, *big = NULL, *clean;
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(small, sizeof small, fmt, aq);
	va_end(aq);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof small) {
		if ((big = malloc((size_t)n + 1)) == NULL)
			return;
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		text = big;
	}
	if ((clean = malloc((size_t)n + 1)) != NULL) {
		fputs(prefix, fp);
		fputs(ctl_clean(text, clean, (size_t)n + 1, 0), fp);
		fputc('\n', fp);
		free(clean);
	}
	free(big);
}

static void	vmessage(const char *, va_list)
		    __attribute__((format(printf, 1, 0)));

static void
vmessage(const char *fmt, va_list ap)
{
	fflush(stdout);
	vline(stderr, "bastionctl: ", fmt, ap);
}

void
ctl_line(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vline(stdout, "", fmt, ap);
	va_end(ap);
}

int
ctl_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	return CTL_ERR;
}

void
ctl_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
}

int
ctl_print_json(const json_t *j)
{
	if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY |
	    JSON_ENSURE_ASCII) == -1)
		return -1;
	return fputc('\n', stdout) == EOF ? -1 : 0;
}

const char *
ctl_jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

long long
ctl_jint(const json_t *o, const char *key, long long def)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

void
ctl_fmt_size(char *out, size_t len, long long bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
	    "PiB", "EiB" };
	double v;
	int u;

	if (bytes < 0) {
		snprintf(out, len, "-");
		return;
	}
	if (bytes < 1024) {
		snprintf(out, len, "%lld B", bytes);
		return;
	}
	v = (double)bytes / 1024.0;
	for (u = 0; v >= 1024.0 && u < 5; u++)
		v /= 1024.0;
	/* 1023.96 GiB would print as "1024.0 GiB": go up one unit. */
	if (v >= 1023.95 && u < 5) {
		v /= 1024.0;
		u++;
	}
	snprintf(out, len, "%.1f %s", v, units[u]);
}

void
ctl_fmt_time(char *out, size_t len, const char *iso)
{
	struct tm tm;
	time_t t;
	int n = 0;

	memset(&tm, 0, sizeof tm);
	if (iso == NULL || sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%n",
	    &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	    &tm.tm_sec, &n) != 6 || n == 0) {
		snprintf(out, len, "-");
		return;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1 || localtime_r(&t, &tm) == NULL ||
	    strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(out, len, "-");
}

void
ctl_print_time(const char *label, const json_t *o, const char *key)
{
	char t[64];

	ctl_fmt_time(t, sizeof t, json_string_value(json_object_get(o, key)));
	ctl_line("%-16s %s", label, t);
}

void
ctl_fmt_progress(char *out, size_t len, long long percent)
{
	char bar[11];
	int i, fill;

	if (percent < 0)
		percent = 0;
	if (percent > 100)
		percent = 100;
	fill = (int)(percent / 10);
	for (i = 0; i < 10; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[10] = '\0';
	snprintf(out, len, "[%s] %lld%%", bar, percent);
}

char *
ctl_clean(const char *s, char *out, size_t len, int dash)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t o = 0, n;

	if (len == 0)
		return out;
	if (*p == '\0' && dash) {
		snprintf(out, len, "-");
		return out;
	}
	while (*p && o + 1 < len) {
		if (*p < 0x20 || *p == 0x7f) {
			out[o++] = '?';
			p++;
		} else if ((n = utf8_char_len(p)) == 0) {
			out[o++] = '?';
			p++;
		} else if (o + n < len) {
			memcpy(out + o, p, n);
			o += n;
			p += n;
		} else
			break;
	}
	out[o] = '\0';
	return out;
}

/* Display width: one column per code point (good enough for names). */
static size_t
width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* gcc 12's analyzer loses track of strings stored through t->cells and
 * reports them as leaked; ctl_table_free() frees every cell. */
#if !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
#endif
static int
table_add(struct ctl_table *t, va_list ap)
{
	char clean[TABLE_MAX_CELL];
	char **cells;
	size_t need;
	int i;

	if (t->nrows == t->alloc) {
		need = t->alloc ? t->alloc * 2 : 16;
		if ((cells = reallocarray(t->cells, need * (size_t)t->ncols,
		    sizeof *cells)) == NULL)
			return -1;
		t->cells = cells;
		t->alloc = need;
	}
	cells = t->cells + t->nrows * (size_t)t->ncols;
	for (i = 0; i < t->ncols; i++) {
		const char *v = va_arg(ap, const char *);

		if ((cells[i] = strdup(ctl_clean(v, clean, sizeof clean,
		    1))) == NULL) {
			while (i-- > 0)
				free(cells[i]);
			return -1;
		}
	}
	t->nrows++;
	return 0;
}
#if !defined(__clang__)
#pragma GCC diagnostic pop
#endif

struct ctl_table *
ctl_table_new(int ncols, ...)
{
	struct ctl_table *t;
	va_list ap;
	int rc;

	if (ncols < 1 || ncols > CTL_TABLE_MAX_COLS ||
	    (t = calloc(1, sizeof *t)) == NULL)
		return NULL;
	t->ncols = ncols;
	va_start(ap, ncols);
	rc = table_add(t, ap);
	va_end(ap);
	if (rc == -1) {
		ctl_table_free(t);
		return NULL;
	}
	return t;
}

int
ctl_table_row(struct ctl_table *t, ...)
{
	va_list ap;
	int rc;

	va_start(ap, t);
	rc = table_add(t, ap);
	va_end(ap);
	return rc;
}

void
ctl_table_print(struct ctl_table *t, FILE *fp, int indent)
{
	size_t r, w[CTL_TABLE_MAX_COLS];
	int c;

	for (c = 0; c < t->ncols; c++)
		w[c] = 0;
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			if (width(t->cells[r * t->ncols + c]) > w[c])
				w[c] = width(t->cells[r * t->ncols + c]);
	for (r = 0; r < t->nrows; r++) {
		fprintf(fp, "%*s", indent, "");
		for (c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];

			fputs(s, fp);
			if (c < t->ncols - 1)
				fprintf(fp, "%*s", (int)(w[c] - width(s) + 2), "");
		}
		fputc('\n', fp);
	}
}

void
ctl_table_free(struct ctl_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

int
ctl_finish_output(int rc)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		if (errno == EPIPE)
			return rc;
		ctl_error("writing the output: %s", strerror(errno));
		return CTL_ERR;
	}
	return rc;
}

int
ctl_bad_answer(const char *what)
{
	return ctl_error("unexpected answer from the server for %s", what);
}

int
ctl_list(struct ctl *c, const char *path, const char *what, int json,
    struct ctl_table *t, int (*row)(struct ctl_table *, const json_t *))
{
	const json_t *e;
	json_t *list;
	size_t i;
	int rc = CTL_ERR;

	if (ctl_request(c, "GET", path, NULL, &list, NULL, NULL) == -1)
		goto out;
	if (!json_is_array(list))
		rc = ctl_bad_answer(what);
	else if (json)
		rc = ctl_print_json(list) == 0 ? CTL_OK : CTL_ERR;
	else if (t == NULL)
		rc = ctl_error("out of memory");
	else {
		rc = CTL_OK;
		json_array_foreach(list, i, e)
			if (row(t, e) == -1) {
				rc = ctl_error("out of memory");
				break;
			}
		if (rc == CTL_OK)
			ctl_table_print(t, stdout, 0);
	}
	json_decref(list);
out:
	ctl_table_free(t);
	return rc;
}

int
ctl_node_list(struct ctl *c, const char *path, int one_node, int json,
    struct ctl_table *t, const struct ctl_node_list *l)
{
	json_t *o = NULL, *nodes = NULL, *flat = NULL, *x, *v;
	const json_t *node, *item;
	const char *const *k;
	size_t i, j;
	int rc = CTL_ERR;

	if (ctl_request(c, "GET", path, NULL, &o, NULL, NULL) == -1)
		goto out;
	if (one_node)
		nodes = json_pack("[O]", o);
	else
		nodes = json_incref(l->nodes_key ? json_object_get(o,
		    l->nodes_key) : o);
	if (!json_is_array(nodes)) {
		rc = ctl_bad_answer(l->what);
		goto out;
	}
	if (t == NULL || (flat = json_array()) == NULL) {
		rc = ctl_error("out of memory");
		goto out;
	}
	json_array_foreach(nodes, i, node) {
		if (!json && l->notes)
			l->notes(node);
		json_array_foreach(json_object_get(node, l->items_key), j,
		    item) {
			if (!json) {
				if (l->row(t, node, item) == -1)
					goto oom;
				continue;
			}
			if ((x = json_deep_copy(item)) == NULL ||
			    json_array_append_new(flat, x) == -1)
				goto oom;
			for (k = l->carry; *k; k++)
				if ((v = json_object_get(node, *k)) != NULL &&
				    json_object_set(x, *k, v) == -1)
					goto oom;
		}
	}
	if (json)
		rc = ctl_print_json(flat) == 0 ? CTL_OK : CTL_ERR;
	else {
		ctl_table_print(t, stdout, 0);
		rc = CTL_OK;
	}
	rc = ctl_finish_output(rc);
	goto out;
oom:
	rc = ctl_error("out of memory");
out:
	ctl_table_free(t);
	json_decref(flat);
	json_decref(nodes);
	json_decref(o);
	return rc;
}

int
ctl_show(struct ctl *c, const char *path, const char *what, int json,
    void (*print)(const json_t *))
{
	json_t *o;
	int rc;

	if (ctl_request(c, "GET", path, NULL, &o, NULL, NULL) == -1)
		return CTL_ERR;
	if (!json_is_object(o))
		rc = ctl_bad_answer(what);
	else if (json)
		rc = ctl_print_json(o) == 0 ? CTL_OK : CTL_ERR;
	else {
		print(o);
		rc = CTL_OK;
	}
	json_decref(o);
	return rc;
}
