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
	if (file == NULL || strlen(file) >= sizeof img->file || file[0] == '.' ||
	    strspn(file, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") != strlen(file)) {
		snprintf(why, whylen, "manifest image must be a file name");
		return -1;
	}
	if (sum == NULL || strlen(sum) != 64 || strspn(sum, "0123456789abcdef")
	    != 64 || size <= 0) {
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
