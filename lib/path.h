/* path.h — joining paths without silent truncation. */
#ifndef BASTION_PATH_H
#define BASTION_PATH_H

#include <stddef.h>

/* out = dir "/" name; -1 (out undefined) if it does not fit. */
int	path_join(char *out, size_t len, const char *dir, const char *name);

#endif
