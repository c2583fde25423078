/* oscatalog.h — the operating systems bastion can install (DESIGN §11):
 * image OSes, each a directory STATE_DIR/images/os/NAME/ with a
 * manifest.json (what `make image` builds, or an operator drops there),
 * and kickstart OSes, named by [install] kickstart_os and installed from
 * [install] repo. Manifests are read when asked for: adding or replacing
 * an image needs no reload. */
#ifndef BASTION_OSCATALOG_H
#define BASTION_OSCATALOG_H

#include <limits.h>

#include <jansson.h>

#include "config.h"

#define OS_MANIFEST_MAX	(4 * 1024 * 1024)

enum os_method { OS_UNKNOWN, OS_IMAGE, OS_KICKSTART };

#define OS_MOUNTABLE_MAX	32

/* The root as a filesystem image (manifest "root_image", image/os-fs.sh):
 * written onto the root volume in one stream and grown; /boot and /var
 * come from a small tar. Optional: the archive above is the fallback. */
struct os_root_image {
	char		file[64];
	char		sha256[65];
	long long	size;		/* compressed, as served */
	long long	bytes;		/* the filesystem's size */
	char		fstype[8];
	char		rest[64];	/* /boot and /var */
	char		rest_sha256[65];
	long long	rest_size;
	/* Directories empty in the image: other volumes go on or below. */
	char		mountable[OS_MOUNTABLE_MAX][64];
	int		nmountable;
};

struct os_image {
	char		name[32];
	char		file[64];	/* the root filesystem archive */
	char		path[PATH_MAX];	/* its full path */
	char		sha256[65];
	long long	size;
	int		has_root;	/* root below is there and valid */
	struct os_root_image root;
};

/* How name is installed. */
enum os_method os_method(const struct config *, const char *name);
/* An image OS whose manifest is valid and whose archive is there with
 * the manifest's size. 0, or -1 with why. */
int	os_image_find(const struct config *, const char *name,
	    struct os_image *, char *why, size_t whylen);
/* 1 if the image's root filesystem image can install a layout of these
 * volumes (the plan's storage.volumes): its root has the image's
 * filesystem and every other volume is mounted where the image has no
 * files. Else the archive is unpacked. */
int	os_image_root_fits(const struct os_image *, const json_t *volumes);
/* The path of file name in img's directory if the manifest names it
 * (archive, root image or rest). 0 or -1. */
int	os_image_file(const struct os_image *, const char *name, char *path,
	    size_t len);
/* Every OS: [{"name", "method", "available", ...}], sorted by name. */
json_t	*os_catalog_json(const struct config *);
/* 1 if s is a valid OS name ([a-z0-9._-], 1-31). */
int	os_valid_name(const char *s);

#endif
