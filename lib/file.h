/* file.h — files written safely. */
#ifndef BASTION_FILE_H
#define BASTION_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Replace path by data: a dot-temp file in the same directory (so the
 * rename is atomic), written, chmod'ed to mode and fsync'ed first. Logs
 * why on failure. 0 or -1. */
int	file_write_atomic(const char *path, const void *data, size_t len,
	    mode_t mode);

/* mkdir -p: the missing parents 0755, path itself mode (an existing
 * one is left as it is). 0, or -1 with errno (ENAMETOOLONG: path too
 * long). */
int	file_mkdirs(const char *path, mode_t mode);

#endif
