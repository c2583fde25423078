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

struct os_image {
	char		name[32];
	char		file[64];	/* the root filesystem archive */
	char		path[PATH_MAX];	/* its full path */
	char		sha256[65];
	long long	size;
};

/* How name is installed. */
enum os_method os_method(const struct config *, const char *name);
/* An image OS whose manifest is valid and whose archive is there with
 * the manifest's size. 0, or -1 with why. */
int	os_image_find(const struct config *, const char *name,
	    struct os_image *, char *why, size_t whylen);
/* Every OS: [{"name", "method", "available", ...}], sorted by name. */
json_t	*os_catalog_json(const struct config *);
/* 1 if s is a valid OS name ([a-z0-9._-], 1-31). */
int	os_valid_name(const char *s);

#endif
