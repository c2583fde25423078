/* oscatalog.c — image and kickstart OSes (oscatalog.h). */
#define LOG_SUBSYS "os"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "oscatalog.h"
#include "path.h"

int
os_valid_name(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 31 && strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == n && s[0] != '.';
}

static int
images_dir(const struct config *c, char *out, size_t len)
{
	return path_join(out, len, c->state_dir, "images/os");
}

/* Is name in the kickstart_os list? */
static int
kickstart_listed(const struct config *c, const char *name)
{
	const char *p = c->install_kickstart_os;
	size_t n = strlen(name), w;

	while (*p) {
		p += strspn(p, ", ");
		w = strcspn(p, ", ");
		if (w == n && strncmp(p, name, n) == 0)
			return 1;
		p += w;
	}
	return 0;
}

/* dir/NAME/manifest.json, parsed (at most OS_MANIFEST_MAX bytes). */
static json_t *
manifest_load(const char *dir, const char *name, char *why, size_t whylen)
{
	char path[PATH_MAX], *text = NULL;
	struct stat st;
	json_error_t je;
	json_t *j = NULL;
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof path, "%s/%s/manifest.json", dir, name) >=
	    (int)sizeof path) {
		snprintf(why, whylen, "path too long");
		return NULL;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > OS_MANIFEST_MAX) {
		snprintf(why, whylen, "%s: not a file of at most %d bytes", path,
		    OS_MANIFEST_MAX);
		goto out;
	}
	if ((text = malloc((size_t)st.st_size + 1)) == NULL ||
	    (n = read(fd, text, (size_t)st.st_size)) != st.st_size) {
		snprintf(why, whylen, "%s: cannot read it", path);
		goto out;
	}
	if ((j = json_loadb(text, (size_t)n, JSON_REJECT_DUPLICATES, &je)) ==
	    NULL || !json_is_object(j)) {
		snprintf(why, whylen, "%s: not a JSON object (%s)", path, je.text);
		json_decref(j);
		j = NULL;
	}
out:
	free(text);
	close(fd);
	return j;
}

static int
file_name_ok(const char *file, size_t max)
{
	return file && strlen(file) < max && file[0] != '.' &&
	    strspn(file, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") == strlen(file);
}

static int
sha_ok(const char *sum)
{
	return sum && strlen(sum) == 64 && strspn(sum, "0123456789abcdef") == 64;
}

/* dir/name/file is a regular file of size bytes. */
static int
file_is(const char *dir, const char *name, const char *file, long long size)
{
	char path[PATH_MAX];
	struct stat st;

	return snprintf(path, sizeof path, "%s/%s/%s", dir, name, file) <
	    (int)sizeof path && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size == (off_t)size;
}

/* The manifest's optional root_image into img->root; img->has_root is 1
 * only when all of it is valid and both files are there. */
static void
root_image_check(const char *dir, const char *name, const json_t *j,
    struct os_image *img)
{
	const json_t *r = json_object_get(j, "root_image"), *m;
	struct os_root_image *x = &img->root;
	const char *file = json_string_value(json_object_get(r, "file"));
	const char *rest = json_string_value(json_object_get(r, "rest"));
	const char *sum = json_string_value(json_object_get(r, "sha256"));
	const char *rsum = json_string_value(json_object_get(r,
	    "rest_sha256"));
	const char *fs = json_string_value(json_object_get(r, "fstype"));
	size_t i;

	img->has_root = 0;
	if (!json_is_object(r) || !file_name_ok(file, sizeof x->file) ||
	    !file_name_ok(rest, sizeof x->rest) || !sha_ok(sum) ||
	    !sha_ok(rsum) || fs == NULL || strcmp(fs, "xfs") != 0)
		return;		/* the installer grows XFS only */
	snprintf(x->file, sizeof x->file, "%s", file);
	snprintf(x->rest, sizeof x->rest, "%s", rest);
	memcpy(x->sha256, sum, 65);
	memcpy(x->rest_sha256, rsum, 65);
	snprintf(x->fstype, sizeof x->fstype, "%s", fs);
	x->size = json_integer_value(json_object_get(r, "size"));
	x->rest_size = json_integer_value(json_object_get(r, "rest_size"));
	x->bytes = json_integer_value(json_object_get(r, "bytes"));
	if (x->size <= 0 || x->rest_size <= 0 || x->bytes < x->size ||
	    x->bytes > (64LL << 30) || !file_is(dir, name, file, x->size) ||
	    !file_is(dir, name, rest, x->rest_size))
		return;
	x->nmountable = 0;
	json_array_foreach(json_object_get(r, "mountable"), i, m) {
		const char *d = json_string_value(m);

		if (d == NULL || d[0] != '/' || strlen(d) >= sizeof
		    x->mountable[0] || x->nmountable == OS_MOUNTABLE_MAX)
			return;
		snprintf(x->mountable[x->nmountable++], sizeof x->mountable[0],
		    "%s", d);
	}
	img->has_root = 1;
}

int
os_image_root_fits(const struct os_image *img, const json_t *volumes)
{
	const json_t *v;
	size_t i;
	int j, ok = 0;

	if (!img->has_root)
		return 0;
	json_array_foreach(volumes, i, v) {
		const char *mnt = json_string_value(json_object_get(v, "mount"));
		const char *fs = json_string_value(json_object_get(v, "fstype"));

		if (mnt == NULL || fs == NULL)
			return 0;
		if (strcmp(mnt, "/") == 0) {
			if (strcmp(fs, img->root.fstype) != 0)
				return 0;
			ok = 1;
			continue;
		}
		if (strcmp(mnt, "swap") == 0)
			continue;
		for (j = 0; j < img->root.nmountable; j++) {
			size_t n = strlen(img->root.mountable[j]);

			if (strncmp(mnt, img->root.mountable[j], n) == 0 &&
			    (mnt[n] == '\0' || mnt[n] == '/'))
				break;
		}
		if (j == img->root.nmountable)
			return 0;	/* it would hide the image's files */
	}
	return ok;
}

int
os_image_file(const struct os_image *img, const char *name, char *path,
    size_t len)
{
	const char *slash = strrchr(img->path, '/');

	if (slash == NULL || (strcmp(name, img->file) != 0 && (!img->has_root ||
	    (strcmp(name, img->root.file) != 0 && strcmp(name, img->root.rest)
	    != 0))))
		return -1;
	return snprintf(path, len, "%.*s/%s", (int)(slash - img->path),
	    img->path, name) < (int)len ? 0 : -1;
}

/* The manifest's facts into img (j's members checked). 0 or -1. */
static int
manifest_check(const char *dir, const char *name, const json_t *j,
    struct os_image *img, char *why, size_t whylen)
{
	const char *mname = json_string_value(json_object_get(j, "name"));
	const char *file = json_string_value(json_object_get(j, "image"));
	const char *sum = json_string_value(json_object_get(j, "sha256"));
	const char *method = json_string_value(json_object_get(j, "method"));
	json_int_t size = json_integer_value(json_object_get(j, "size"));
	struct stat st;

	memset(img, 0, sizeof *img);
	if (mname == NULL || strcmp(mname, name) != 0) {
		snprintf(why, whylen, "manifest name is not %s", name);
		return -1;
	}
	if (method && strcmp(method, "image") != 0) {
		snprintf(why, whylen, "manifest method is not image");
		return -1;
	}
	/* One file name in the OS's own directory: no path from a manifest. */
	if (!file_name_ok(file, sizeof img->file)) {
		snprintf(why, whylen, "manifest image must be a file name");
		return -1;
	}
	if (!sha_ok(sum) || size <= 0) {
		snprintf(why, whylen, "manifest needs sha256 (64 lower-case hex) "
		    "and size");
		return -1;
	}
	if (snprintf(img->path, sizeof img->path, "%s/%s/%s", dir, name, file)
	    >= (int)sizeof img->path) {
		snprintf(why, whylen, "path too long");
		return -1;
	}
	if (stat(img->path, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size != (off_t)size) {
		snprintf(why, whylen, "%s is missing or not %lld bytes as the "
		    "manifest says", file, (long long)size);
		return -1;
	}
	snprintf(img->name, sizeof img->name, "%s", name);
	snprintf(img->file, sizeof img->file, "%s", file);
	memcpy(img->sha256, sum, 65);
	img->size = (long long)size;
	root_image_check(dir, name, j, img);
	return 0;
}

int
os_image_find(const struct config *c, const char *name, struct os_image *img,
    char *why, size_t whylen)
{
	char dir[PATH_MAX];
	json_t *j;
	int rc;

	if (!os_valid_name(name) || images_dir(c, dir, sizeof dir) == -1) {
		snprintf(why, whylen, "no such OS");
		return -1;
	}
	if ((j = manifest_load(dir, name, why, whylen)) == NULL)
		return -1;
	rc = manifest_check(dir, name, j, img, why, whylen);
	json_decref(j);
	return rc;
}

enum os_method
os_method(const struct config *c, const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct stat st;

	if (!os_valid_name(name))
		return OS_UNKNOWN;
	if (images_dir(c, dir, sizeof dir) == 0 &&
	    snprintf(path, sizeof path, "%s/%s/manifest.json", dir, name) <
	    (int)sizeof path && stat(path, &st) == 0)
		return OS_IMAGE;
	return kickstart_listed(c, name) ? OS_KICKSTART : OS_UNKNOWN;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a,
	    "name")), json_string_value(json_object_get(*(json_t *const *)b,
	    "name")));
}

json_t *
os_catalog_json(const struct config *c)
{
	char dir[PATH_MAX], why[256], name[32];
	json_t *arr = json_array(), *items[256], *j, *e;
	struct os_image img;
	struct dirent *de;
	const char *p;
	size_t n = 0, i, w;
	DIR *d;

	if (images_dir(c, dir, sizeof dir) == 0 && (d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL && n < 200) {
			if (!os_valid_name(de->d_name))
				continue;
			if ((j = manifest_load(dir, de->d_name, why, sizeof why))
			    == NULL)
				continue;	/* not an OS directory */
			e = json_pack("{s:s, s:s}", "name", de->d_name, "method",
			    "image");
			if (manifest_check(dir, de->d_name, j, &img, why,
			    sizeof why) == 0) {
				json_object_set_new(e, "available", json_true());
				json_object_set_new(e, "size", json_integer(
				    img.size));
				json_object_set_new(e, "sha256",
				    json_string(img.sha256));
				if (img.has_root)
					json_object_set_new(e, "root_image",
					    json_string(img.root.fstype));
			} else {
				json_object_set_new(e, "available", json_false());
				json_object_set_new(e, "problem", json_string(why));
			}
			p = json_string_value(json_object_get(j, "description"));
			json_object_set_new(e, "description", json_string(p ? p :
			    ""));
			if (json_object_get(j, "kernel_version"))
				json_object_set(e, "kernel_version",
				    json_object_get(j, "kernel_version"));
			if (json_object_get(j, "built"))
				json_object_set(e, "built", json_object_get(j,
				    "built"));
			json_object_set_new(e, "packages", json_integer(
			    (json_int_t)json_array_size(json_object_get(j,
			    "packages"))));
			json_decref(j);
			items[n++] = e;
		}
		closedir(d);
	}
	for (p = c->install_kickstart_os; *p && n < 256;) {
		p += strspn(p, ", ");
		w = strcspn(p, ", ");
		if (w == 0 || w >= sizeof name)
			break;
		snprintf(name, sizeof name, "%.*s", (int)w, p);
		p += w;
		if (os_method(c, name) != OS_KICKSTART)
			continue;	/* an image of the name wins */
		items[n++] = json_pack("{s:s, s:s, s:b, s:s}", "name", name,
		    "method", "kickstart", "available", c->install_repo[0] != 0,
		    "repo", c->install_repo);
	}
	qsort(items, n, sizeof items[0], by_name);
	for (i = 0; i < n; i++) {
		json_object_set_new(items[i], "default", json_boolean(
		    strcmp(json_string_value(json_object_get(items[i], "name")),
		    c->install_os) == 0));
		json_array_append_new(arr, items[i]);
	}
	return arr;
}
