/* templates.c — template files, overrides and the compiled cache. */
#define LOG_SUBSYS "templates"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "path.h"
#include "render.h"
#include "templates.h"

#define MAX_ENTRIES	128
#define RECHECK_NS	(1000L * 1000 * 1000)	/* stat a file at most 1/s */
#define MAX_PARTIALS	32

/* One compiled file. Shared by renders in flight: refcounted. */
struct compiled {
	struct render_tmpl	*tmpl;
	atomic_int		 refs;
};

struct entry {
	char		 name[64];
	char		 path[PATH_MAX];
	struct timespec	 mtime;
	off_t		 size;
	ino_t		 ino;
	struct compiled	*c;
	long long	 checked_ns;
	int		 missing;
};

struct templates {
	char		 override_dir[PATH_MAX];
	char		 share_dir[PATH_MAX];
	/* Readers take a reference to a fresh compiled template under the
	 * read lock; checking files and compiling takes the write lock. */
	pthread_rwlock_t mu;
	struct entry	 entries[MAX_ENTRIES];
	int		 nentries;
};

/* Per render: the partials it borrowed, released at the end. */
struct render_ctx {
	struct templates	*t;
	struct compiled		*held[MAX_PARTIALS];
	int			 nheld;
	char			*err;
	size_t			 errlen;
};

int
templates_valid_name(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > 48 || name[0] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '-' ||
		    name[i] == '_' || name[i] == '.'))
			return 0;
	if (strstr(name, ".."))
		return 0;
	return (n > 3 && strcmp(name + n - 3, ".ks") == 0) ||
	    (n > 5 && strcmp(name + n - 5, ".ipxe") == 0);
}

static const char *
builtin_subdir(const char *name)
{
	size_t n = strlen(name);

	return n > 3 && strcmp(name + n - 3, ".ks") == 0 ? "kickstart" : "ipxe";
}

/* What bastion renders itself (install.c, routes_boot.c) and the partials
 * install.ks includes: without them every boot would be a 500. */
static const char *const builtin_files[] = {
	"ipxe/boot.ipxe.mustache", "ipxe/discovery.ipxe.mustache",
	"ipxe/discovery-missing.ipxe.mustache", "ipxe/idle.ipxe.mustache",
	"ipxe/installer.ipxe.mustache", "ipxe/installer-image.ipxe.mustache",
	"ipxe/local.ipxe.mustache",
	"ipxe/poweroff.ipxe.mustache", "kickstart/install.ks.mustache",
	"kickstart/post.ks.mustache", "kickstart/pre-storage.ks.mustache",
	"kickstart/progress.ks.mustache", "kickstart/ssh-keys.ks.mustache",
};

const char *
templates_missing(const char *share_dir)
{
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof builtin_files / sizeof builtin_files[0]; i++)
		if (path_join(path, sizeof path, share_dir, builtin_files[i]) ==
		    -1 || stat(path, &st) == -1 || !S_ISREG(st.st_mode))
			return builtin_files[i];
	return NULL;
}

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int
templates_open(const char *override_dir, const char *share_dir,
    struct templates **out)
{
	struct templates *t;

	if ((t = calloc(1, sizeof *t)) == NULL)
		return -1;
	snprintf(t->override_dir, sizeof t->override_dir, "%s", override_dir);
	snprintf(t->share_dir, sizeof t->share_dir, "%s", share_dir);
	pthread_rwlock_init(&t->mu, NULL);
	*out = t;
	return 0;
}

static void
compiled_put(struct compiled *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
		render_free(c->tmpl);
		free(c);
	}
}

void
templates_close(struct templates *t)
{
	int i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nentries; i++)
		compiled_put(t->entries[i].c);
	pthread_rwlock_destroy(&t->mu);
	free(t);
}

/* Where NAME lives now: the override if present, else the built-in. */
static int
resolve(struct templates *t, const char *name, char *path, size_t len,
    struct stat *st, int *override)
{
	char file[80], rel[128];

	snprintf(file, sizeof file, "%s.mustache", name);
	if (path_join(path, len, t->override_dir, file) == 0 &&
	    stat(path, st) == 0 && S_ISREG(st->st_mode)) {
		*override = 1;
		return 0;
	}
	snprintf(rel, sizeof rel, "%s/%s", builtin_subdir(name), file);
	if (path_join(path, len, t->share_dir, rel) == 0 &&
	    stat(path, st) == 0 && S_ISREG(st->st_mode)) {
		*override = 0;
		return 0;
	}
	return -1;
}

static char *
read_file(const char *path, size_t *len)
{
	struct stat st;
	char *text = NULL;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || st.st_size > RENDER_MAX_SOURCE)
		goto out;
	if ((text = malloc((size_t)st.st_size + 1)) == NULL)
		goto out;
	n = read(fd, text, (size_t)st.st_size);
	if (n != st.st_size) {
		free(text);
		text = NULL;
		goto out;
	}
	text[n] = '\0';
	*len = (size_t)n;
out:
	close(fd);
	return text;
}

static struct entry *
entry_get(struct templates *t, const char *name)
{
	struct entry *e;
	int i;

	for (i = 0; i < t->nentries; i++)
		if (strcmp(t->entries[i].name, name) == 0)
			return &t->entries[i];
	if (t->nentries == MAX_ENTRIES)
		return NULL;
	e = &t->entries[t->nentries++];
	memset(e, 0, sizeof *e);
	snprintf(e->name, sizeof e->name, "%s", name);
	return e;
}

/* The compiled template for NAME with a reference for the caller, or
 * NULL (err set when the file exists but does not compile). Caller holds
 * t->mu. */
static struct compiled *
lookup_locked(struct templates *t, const char *name, char *err, size_t errlen)
{
	struct entry *e;
	struct stat st;
	char path[PATH_MAX], *text;
	struct compiled *c;
	size_t len = 0;
	int override;
	long long now = now_ns();

	if (!templates_valid_name(name) || (e = entry_get(t, name)) == NULL) {
		snprintf(err, errlen, "%s: not a template name", name);
		return NULL;
	}
	if (e->checked_ns && now - e->checked_ns < RECHECK_NS) {
		if (e->missing) {
			snprintf(err, errlen, "%s: no such template", name);
			return NULL;
		}
		atomic_fetch_add(&e->c->refs, 1);
		return e->c;
	}
	e->checked_ns = now;
	if (resolve(t, name, path, sizeof path, &st, &override) == -1) {
		e->missing = 1;
		snprintf(err, errlen, "%s: no such template", name);
		return NULL;
	}
	e->missing = 0;
	if (e->c && strcmp(path, e->path) == 0 && st.st_ino == e->ino &&
	    st.st_size == e->size && st.st_mtim.tv_sec == e->mtime.tv_sec &&
	    st.st_mtim.tv_nsec == e->mtime.tv_nsec) {
		atomic_fetch_add(&e->c->refs, 1);
		return e->c;
	}
	if ((text = read_file(path, &len)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		e->checked_ns = 0;
		return NULL;
	}
	if ((c = calloc(1, sizeof *c)) == NULL) {
		free(text);
		return NULL;
	}
	if (render_compile(path, text, len, &c->tmpl, err, errlen) == -1) {
		free(text);
		free(c);
		e->checked_ns = 0;	/* try again next time */
		return NULL;
	}
	free(text);
	atomic_init(&c->refs, 1);	/* the cache's own */
	compiled_put(e->c);
	e->c = c;
	snprintf(e->path, sizeof e->path, "%s", path);
	e->mtime = st.st_mtim;
	e->size = st.st_size;
	e->ino = st.st_ino;
	if (override)
		log_debug("using override %s", path);
	atomic_fetch_add(&c->refs, 1);
	return c;
}

/* A reference to NAME's compiled template: from the cache under the read
 * lock while it is fresh, else checked and compiled under the write lock. */
static struct compiled *
lookup(struct templates *t, const char *name, char *err, size_t errlen)
{
	struct compiled *c = NULL;
	long long now = now_ns();
	int i;

	pthread_rwlock_rdlock(&t->mu);
	for (i = 0; i < t->nentries; i++) {
		struct entry *e = &t->entries[i];

		if (strcmp(e->name, name) != 0)
			continue;
		if (e->c && !e->missing && now - e->checked_ns < RECHECK_NS) {
			c = e->c;
			atomic_fetch_add(&c->refs, 1);
		}
		break;
	}
	pthread_rwlock_unlock(&t->mu);
	if (c)
		return c;
	pthread_rwlock_wrlock(&t->mu);
	c = lookup_locked(t, name, err, errlen);
	pthread_rwlock_unlock(&t->mu);
	return c;
}

static const struct render_tmpl *
partial_lookup(void *cls, const char *name)
{
	struct render_ctx *rc = cls;
	struct compiled *c;
	char err[256];

	if (rc->nheld == MAX_PARTIALS)
		return NULL;
	c = lookup(rc->t, name, err, sizeof err);
	if (c == NULL) {
		/* A partial that exists but is broken is an error worth
		 * seeing; a missing one renders as nothing (the spec). */
		if (strstr(err, "no such template") == NULL)
			snprintf(rc->err, rc->errlen, "%s", err);
		return NULL;
	}
	rc->held[rc->nheld++] = c;
	return c->tmpl;
}

int
templates_render(struct templates *t, const char *name, const json_t *data,
    char **out, size_t *outlen, char *err, size_t errlen)
{
	struct render_ctx rc = { t, { NULL }, 0, err, errlen };
	struct render_opts opts;
	struct compiled *c;
	int i, rv;

	err[0] = '\0';
	c = lookup(t, name, err, errlen);
	if (c == NULL)
		return -1;
	memset(&opts, 0, sizeof opts);
	opts.partial_tmpl = partial_lookup;
	opts.cls = &rc;
	opts.max_output = TEMPLATES_MAX_OUTPUT;
	rv = render_exec(c->tmpl, data, &opts, out, outlen, err, errlen);
	if (rv == 0 && err[0] != '\0') {	/* a broken partial */
		free(*out);
		rv = -1;
	}
	/* The cache holds its own reference to every current template, so
	 * these never free one that the cache still points to. */
	compiled_put(c);
	for (i = 0; i < rc.nheld; i++)
		compiled_put(rc.held[i]);
	return rv;
}

static void
list_dir(json_t *seen, const char *dir, const char *source)
{
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char name[256], path[PATH_MAX];
		size_t n = strlen(de->d_name);

		if (n <= 9 || strcmp(de->d_name + n - 9, ".mustache") != 0 ||
		    n - 9 >= sizeof name)
			continue;
		memcpy(name, de->d_name, n - 9);
		name[n - 9] = '\0';
		if (!templates_valid_name(name) || json_object_get(seen, name))
			continue;
		if (path_join(path, sizeof path, dir, de->d_name) == -1)
			continue;
		json_object_set_new(seen, name, json_pack("{s:s, s:s, s:s}",
		    "name", name, "path", path, "source", source));
	}
	closedir(d);
}

json_t *
templates_list(struct templates *t)
{
	json_t *seen = json_object(), *arr = json_array(), *v;
	char dir[PATH_MAX];
	const char *key;
	void *tmp;

	/* Overrides first: they shadow the built-in file of the same name. */
	list_dir(seen, t->override_dir, "override");
	if (path_join(dir, sizeof dir, t->share_dir, "kickstart") == 0)
		list_dir(seen, dir, "builtin");
	if (path_join(dir, sizeof dir, t->share_dir, "ipxe") == 0)
		list_dir(seen, dir, "builtin");
	json_object_foreach_safe(seen, tmp, key, v)
		json_array_append(arr, v);
	json_decref(seen);
	return arr;
}
