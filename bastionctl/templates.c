/* templates.c — bastionctl templates list|render and roles list.
 * "templates render --mac" is the server's dry run; "templates render
 * --template" renders any file locally with lib/render.c, for template
 * authors, without a server. */
#define _GNU_SOURCE	/* memmem */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "path.h"
#include "render.h"

#define TEMPLATE_MAX	(1024 * 1024)	/* template, each partial, data */
#define PARTIALS_MAX	(16 * 1024 * 1024) /* all partials of one render */
#define OUTPUT_MAX	(1024 * 1024)
#define READ_CHUNK	65536

/* ctl_read_file; with quiet_enoent a missing file is -2 and no message. */
static int
read_input(const char *path, size_t max, struct buf *out, int quiet_enoent)
{
	char cpath[256], chunk[READ_CHUNK];
	struct stat st;
	struct buf b;
	ssize_t n;
	int fd, is_stdin = strcmp(path, "-") == 0;

	ctl_clean(is_stdin ? "(standard input)" : path, cpath, sizeof cpath, 0);
	if (is_stdin)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		if (quiet_enoent && errno == ENOENT)
			return -2;
		ctl_error("%s: %s", cpath, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		ctl_error("%s: %s", cpath, strerror(errno));
		goto err_open;
	}
	if (S_ISDIR(st.st_mode)) {
		ctl_error("%s: %s", cpath, strerror(EISDIR));
		goto err_open;
	}
	buf_init(&b, max);
	if (buf_add(&b, "", 0) == -1) {
		ctl_error("out of memory");
		goto err_read;
	}
	for (;;) {
		if ((n = read(fd, chunk, sizeof chunk)) == -1) {
			if (errno == EINTR)
				continue;
			ctl_error("%s: %s", cpath, strerror(errno));
			goto err_read;
		}
		if (n == 0)
			break;
		if (buf_add(&b, chunk, (size_t)n) == -1) {
			if ((size_t)n > b.max - b.len)
				ctl_error("%s: larger than %zu KiB", cpath,
				    max / 1024);
			else
				ctl_error("out of memory");
			goto err_read;
		}
	}
	if (!is_stdin)
		close(fd);
	*out = b;
	return 0;

err_read:
	buf_free(&b);
err_open:
	if (!is_stdin)
		close(fd);
	return -1;
}

int
ctl_read_file(const char *path, size_t max, struct buf *out)
{
	return read_input(path, max, out, 0) == 0 ? 0 : -1;
}

/* --- templates list ----------------------------------------------------- */

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(ctl_jstr(*(json_t *const *)a, "name"),
	    ctl_jstr(*(json_t *const *)b, "name"));
}

static int
print_templates(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json = 0, rc = CTL_ERR;
	const struct ctl_opt opts[] = {
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_table *t = NULL;
	struct ctl_args a;
	json_t *list, **v = NULL;
	size_t i, n;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (ctl_request(c, "GET", "/api/v1/templates", NULL, &list, NULL,
	    NULL) == -1)
		return CTL_ERR;
	if (!json_is_array(list)) {
		rc = ctl_error("unexpected answer from the server for the "
		    "templates");
		goto out;
	}
	if (json) {
		rc = ctl_print_json(list) == 0 ? CTL_OK : CTL_ERR;
		goto out;
	}
	n = json_array_size(list);
	if ((v = calloc(n ? n : 1, sizeof *v)) == NULL ||
	    (t = ctl_table_new(3, "NAME", "SOURCE", "PATH")) == NULL)
		goto err_mem;
	for (i = 0; i < n; i++)
		v[i] = json_array_get(list, i);
	qsort(v, n, sizeof *v, cmp_name);
	for (i = 0; i < n; i++)
		if (ctl_table_row(t, ctl_jstr(v[i], "name"),
		    ctl_jstr(v[i], "source"), ctl_jstr(v[i], "path")) == -1)
			goto err_mem;
	ctl_table_print(t, stdout, 0);
	rc = CTL_OK;
	goto out;

err_mem:
	rc = ctl_error("out of memory");
out:
	ctl_table_free(t);
	free(v);
	json_decref(list);
	return rc;
}

/* --- templates render --mac: the server's dry run ----------------------- */

/* Text for a terminal: lines and tabs as they are, every other control
 * character and invalid UTF-8 as '?' (ctl_clean, one piece at a time). */
static int
print_text(const char *s)
{
	size_t n, len = strlen(s) + 1;
	char *piece, *clean;

	if ((piece = malloc(len)) == NULL)
		return -1;
	if ((clean = malloc(len)) == NULL) {
		free(piece);
		return -1;
	}
	while (*s) {
		n = strcspn(s, "\n\t");
		memcpy(piece, s, n);
		piece[n] = '\0';
		fputs(ctl_clean(piece, clean, n + 1, 0), stdout);
		s += n;
		if (*s)
			putchar(*s++);
	}
	free(clean);
	free(piece);
	return 0;
}

static int
render_mac(struct ctl *c, const char *macarg, int want_ipxe, int want_ks,
    int json)
{
	char mac[MAC_STRLEN], state[32];
	const char *ipxe, *ks;
	json_t *body, *res;
	int rc = CTL_ERR;

	if (ctl_mac_arg(macarg, mac) == -1)
		return CTL_ERR;
	if ((body = json_pack("{s:s}", "mac", mac)) == NULL)
		return ctl_error("out of memory");
	if (ctl_request(c, "POST", "/api/v1/templates/render", body, &res, NULL,
	    NULL) == -1)
		goto out;
	ipxe = json_string_value(json_object_get(res, "ipxe"));
	ks = json_string_value(json_object_get(res, "kickstart"));
	if (!json_is_object(res) || ipxe == NULL || (ks == NULL &&
	    !json_is_null(json_object_get(res, "kickstart")))) {
		rc = ctl_error("unexpected answer from the server for %s", mac);
		goto out_res;
	}
	if (json)
		rc = ctl_print_json(res) == 0 ? CTL_OK : CTL_ERR;
	else if (want_ks && ks == NULL)
		rc = ctl_error("%s is %s: it gets no kickstart now (only while "
		    "queued or installing)", mac, ctl_clean(ctl_jstr(res,
		    "state"), state, sizeof state, 1));
	else if (want_ipxe || want_ks) {
		/* Exactly what the machine would get, for pipes. */
		const json_t *v = json_object_get(res, want_ks ? "kickstart" :
		    "ipxe");

		fwrite(json_string_value(v), 1, json_string_length(v), stdout);
		rc = CTL_OK;
	} else {
		rc = CTL_OK;
		if (print_text(ipxe) == -1)
			rc = ctl_error("out of memory");
		else if (ks) {
			if (*ipxe && ipxe[strlen(ipxe) - 1] != '\n')
				putchar('\n');
			printf("# ---- kickstart ----\n");
			if (print_text(ks) == -1)
				rc = ctl_error("out of memory");
		}
	}
out_res:
	json_decref(res);
out:
	json_decref(body);
	return rc;
}

/* --- templates render --template: locally ------------------------------- */

struct partial {
	struct partial		*next;
	char			*path;	/* DIR/NAME.mustache */
	struct buf		 src;
	struct render_tmpl	*t;
};

/* The partials of one render, compiled here so that errors name their
 * files; freed after render_exec(). */
struct partials {
	const char	*dir;
	const char	*file;		/* the template, for messages */
	const struct buf *src;		/* its text */
	struct partial	*list;
	size_t		 total;		/* bytes read */
	int		 failed;	/* the render must fail */
	char		 err[1024];	/* why, unless already printed */
};

/* Best effort for messages: "FILE:LINE" of the first {{> name}} in the
 * template or a partial read so far (the renderer does not tell the hook
 * where it is); just "FILE" when not found (e.g. other delimiters). */
static void
tag_where(const struct partials *ps, const char *name, char *out, size_t len)
{
	const struct partial *p = NULL;
	const struct buf *src = ps->src;
	const char *file = ps->file, *s, *q, *end;
	size_t n = strlen(name);
	unsigned long line;

	for (;;) {
		end = src->data + src->len;
		for (s = src->data; (s = memmem(s, (size_t)(end - s), name,
		    n)) != NULL; s++) {
			for (q = s; q > src->data && (q[-1] == ' ' ||
			    q[-1] == '\t'); q--)
				;
			if (q == src->data || q[-1] != '>' || (s + n < end &&
			    strchr(" \t}", s[n]) == NULL))
				continue;
			for (line = 1, q = src->data; q < s; q++)
				line += *q == '\n';
			snprintf(out, len, "%s:%lu", file, line);
			return;
		}
		if ((p = p ? p->next : ps->list) == NULL)
			break;
		src = &p->src;
		file = p->path;
	}
	snprintf(out, len, "%s", ps->file);
}

/* Fail the render with "WHERE: partial 'NAME' MESSAGE". */
static void
partial_refuse(struct partials *ps, const char *name, const char *msg)
{
	char where[4400], cwhere[512], cname[128];

	tag_where(ps, name, where, sizeof where);
	snprintf(ps->err, sizeof ps->err, "%s: partial '%s' %s",
	    ctl_clean(where, cwhere, sizeof cwhere, 0),
	    ctl_clean(name, cname, sizeof cname, 0), msg);
	ps->failed = 1;
}

/* render_opts.partial_tmpl: NAME -> DIR/NAME.mustache, compiled. NULL
 * renders as nothing (a missing partial, per the spec); a failure sets
 * ps->failed, and the render fails afterwards. */
static const struct render_tmpl *
local_partial(void *cls, const char *name)
{
	struct partials *ps = cls;
	struct partial *p;
	char base[4096], file[4096], where[4400], cwhere[512], cname[128];
	char cfile[512];
	int rc;

	if (ps->failed)
		return NULL;
	if (strchr(name, '/') != NULL || strstr(name, "..") != NULL) {
		partial_refuse(ps, name, "refused: partial names may not hold "
		    "'/' or '..'");
		return NULL;
	}
	if (snprintf(base, sizeof base, "%s.mustache", name) >=
	    (int)sizeof base || path_join(file, sizeof file, ps->dir,
	    base) == -1) {
		partial_refuse(ps, name, "refused: path too long");
		return NULL;
	}
	if ((p = calloc(1, sizeof *p)) == NULL)
		goto err_alloc;
	if ((p->path = strdup(file)) == NULL)
		goto err_path;
	/* ctl_read_file's messages go out at once. */
	if ((rc = read_input(file, TEMPLATE_MAX, &p->src, 1)) == -2) {
		tag_where(ps, name, where, sizeof where);
		ctl_warn("%s: warning: partial '%s' not found (%s): rendered "
		    "as nothing", ctl_clean(where, cwhere, sizeof cwhere, 0),
		    ctl_clean(name, cname, sizeof cname, 0),
		    ctl_clean(file, cfile, sizeof cfile, 0));
		free(p->path);
		free(p);
		return NULL;
	}
	if (rc == -1) {
		ps->failed = 1;
		goto err_read;
	}
	if (p->src.len > PARTIALS_MAX - ps->total) {
		partial_refuse(ps, name, "refused: the partials are larger "
		    "than 16 MiB together");
		goto err_size;
	}
	ps->total += p->src.len;
	if (render_compile(p->path, p->src.data, p->src.len, &p->t, ps->err,
	    sizeof ps->err) == -1) {
		ps->failed = 1;
		goto err_size;
	}
	p->next = ps->list;
	ps->list = p;
	return p->t;

err_size:
	buf_free(&p->src);
err_read:
	free(p->path);
err_path:
	free(p);
err_alloc:
	if (!ps->failed) {
		snprintf(ps->err, sizeof ps->err, "out of memory");
		ps->failed = 1;
	}
	return NULL;
}

static void
partials_free(struct partials *ps)
{
	struct partial *p;

	while ((p = ps->list) != NULL) {
		ps->list = p->next;
		render_free(p->t);
		buf_free(&p->src);
		free(p->path);
		free(p);
	}
}

/* "dir" of "dir/file", "." of "file", "/" of "/file". */
static char *
dir_of(const char *file)
{
	const char *slash = strrchr(file, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == file)
		return strdup("/");
	return strndup(file, (size_t)(slash - file));
}

static int
render_file(const char *file, const char *datafile, const char *dir)
{
	char cfile[256], err[1024], cerr[1024];
	struct render_tmpl *t = NULL;
	struct render_opts opts;
	struct partials ps;
	struct buf src, data;
	json_error_t jerr;
	json_t *j = NULL;
	char *owned = NULL, *out = NULL;
	size_t outlen;
	int rc = CTL_ERR;

	memset(&ps, 0, sizeof ps);
	if (ctl_read_file(file, TEMPLATE_MAX, &src) == -1)
		return CTL_ERR;
	if (ctl_read_file(datafile, TEMPLATE_MAX, &data) == -1)
		goto err_data;
	if ((j = json_loadb(data.data, data.len, JSON_DECODE_ANY, &jerr)) ==
	    NULL) {
		ctl_error("%s:%d: %s", ctl_clean(datafile, cfile, sizeof cfile,
		    0), jerr.line, ctl_clean(jerr.text, cerr, sizeof cerr, 0));
		goto err_json;
	}
	if (dir == NULL && (dir = owned = dir_of(file)) == NULL) {
		ctl_error("out of memory");
		goto err_json;
	}
	err[0] = '\0';
	if (render_compile(file, src.data, src.len, &t, err, sizeof err) == -1)
		goto err_render;
	ps.dir = dir;
	ps.file = file;
	ps.src = &src;
	memset(&opts, 0, sizeof opts);
	opts.partial_tmpl = local_partial;
	opts.cls = &ps;
	opts.max_output = OUTPUT_MAX;
	if (render_exec(t, j, &opts, &out, &outlen, err, sizeof err) == -1 ||
	    ps.failed)
		goto err_render;
	/* Exactly the rendered bytes: nothing added. */
	fwrite(out, 1, outlen, stdout);
	rc = CTL_OK;
	goto out;

err_render:
	/* A partial's failure came first; an empty message was printed
	 * already (by ctl_read_file). */
	if (ps.failed) {
		if (ps.err[0] != '\0')
			ctl_error("%s", ctl_clean(ps.err, cerr, sizeof cerr, 0));
	} else
		ctl_error("%s", ctl_clean(err[0] ? err : "cannot render", cerr,
		    sizeof cerr, 0));
out:
	free(out);
	partials_free(&ps);
	render_free(t);
	free(owned);
err_json:
	json_decref(j);
	buf_free(&data);
err_data:
	buf_free(&src);
	return rc;
}

static int
render_preview(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	const char *mac = NULL, *file = NULL, *data = NULL, *dir = NULL;
	int json = 0, ipxe = 0, ks = 0;
	const struct ctl_opt opts[] = {
		{ "mac", &mac, NULL },
		{ "ipxe", NULL, &ipxe },
		{ "kickstart", NULL, &ks },
		{ "json", NULL, &json },
		{ "template", &file, NULL },
		{ "data", &data, NULL },
		{ "partials", &dir, NULL },
		{ NULL, NULL, NULL },
	};
	struct ctl_args a;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if ((mac == NULL) == (file == NULL))
		return ctl_usage_error(cmd, "give either --mac MAC or "
		    "--template FILE --data JSONFILE");
	if (mac) {
		if (data || dir)
			return ctl_usage_error(cmd, "--data and --partials go "
			    "with --template");
		if (ipxe + ks + json > 1)
			return ctl_usage_error(cmd, "--ipxe, --kickstart and "
			    "--json exclude each other");
		return render_mac(c, mac, ipxe, ks, json);
	}
	if (ipxe || ks || json)
		return ctl_usage_error(cmd, "--ipxe, --kickstart and --json go "
		    "with --mac");
	if (data == NULL)
		return ctl_usage_error(cmd, "--template needs --data JSONFILE");
	return render_file(file, data, dir);
}

/* --- roles list --------------------------------------------------------- */

/* The API says true/false or "yes"/"no". */
static int
jflag(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_true(v) || (json_is_string(v) &&
	    strcmp(json_string_value(v), "yes") == 0);
}

/* "/ 20G xfs, /home 10G xfs preserve, /var/lib/x grow xfs preserve":
 * the volume lines of bastion.conf, without reformat. */
static int
volumes_text(const json_t *vols, struct buf *b)
{
	const json_t *v;
	long long mb;
	char size[32];
	size_t i;

	if (buf_add(b, "", 0) == -1)
		return -1;
	json_array_foreach(vols, i, v) {
		mb = ctl_jint(v, "size_mb", -1);
		if (jflag(v, "grow"))
			snprintf(size, sizeof size, "grow");
		else if (mb > 0 && mb % 1024 == 0)
			snprintf(size, sizeof size, "%lldG", mb / 1024);
		else
			snprintf(size, sizeof size, "%lldM", mb);
		if (buf_printf(b, "%s%s %s %s%s", i ? ", " : "",
		    ctl_jstr(v, "mount"), size, ctl_jstr(v, "fstype"),
		    jflag(v, "preserve") ? " preserve" : "") == -1)
			return -1;
	}
	return 0;
}

static int
roles_list(struct ctl *c, const struct ctl_command *cmd, int argc,
    char *argv[])
{
	int json = 0, rc = CTL_ERR;
	const struct ctl_opt opts[] = {
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ctl_table *t = NULL;
	struct ctl_args a;
	const json_t *r;
	struct buf b;
	json_t *list;
	size_t i;

	if (ctl_parse_args(cmd, argc, argv, opts, &a) == -1)
		return a.rc;
	if (ctl_request(c, "GET", "/api/v1/roles", NULL, &list, NULL,
	    NULL) == -1)
		return CTL_ERR;
	if (!json_is_array(list)) {
		rc = ctl_error("unexpected answer from the server for the roles");
		goto out;
	}
	if (json) {
		rc = ctl_print_json(list) == 0 ? CTL_OK : CTL_ERR;
		goto out;
	}
	buf_init(&b, 64 * 1024);
	if ((t = ctl_table_new(3, "NAME", "BUILTIN", "VOLUMES")) == NULL)
		goto err_mem;
	json_array_foreach(list, i, r) {
		buf_reset(&b);
		if (volumes_text(json_object_get(r, "volumes"), &b) == -1 ||
		    ctl_table_row(t, ctl_jstr(r, "name"), jflag(r, "builtin") ?
		    "yes" : "no", b.data) == -1)
			goto err_mem;
	}
	ctl_table_print(t, stdout, 0);
	rc = CTL_OK;
	goto out_buf;

err_mem:
	rc = ctl_error("out of memory");
out_buf:
	buf_free(&b);
out:
	ctl_table_free(t);
	json_decref(list);
	return rc;
}

const struct ctl_command ctl_templates_commands[] = {
	{ "templates", "list", "[--json]",
	    "every template and whether an override is in effect",
	    print_templates, 0, 0, 0 },
	{ "templates", "render", "--mac MAC [--ipxe | --kickstart | --json] | "
	    "--template FILE --data JSONFILE [--partials DIR]",
	    "what a machine would get now (dry run), or render a template "
	    "file locally", render_preview, 0, 0, 0 },
	{ "roles", "list", "[--json]", "roles and their LVM layouts",
	    roles_list, 0, 0, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
