/* file.c — files written safely, and the directories they go in. */
#define _GNU_SOURCE	/* mkostemp */
#define LOG_SUBSYS "file"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "log.h"

int
file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	const char *base, *p = data;
	ssize_t w;
	int fd, n;

	base = strrchr(path, '/');
	n = snprintf(tmp, sizeof tmp, "%.*s/.%s.XXXXXX",
	    base ? (int)(base - path) : 1, base ? path : ".",
	    base ? base + 1 : path);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		log_warnx("%s: path too long", path);
		return -1;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		log_warn("%s", tmp);
		return -1;
	}
	while (len > 0) {
		if ((w = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("write %s", tmp);
			goto err_write;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fchmod(fd, mode) == -1) {
		log_warn("chmod %s", tmp);
		goto err_write;
	}
	if (fsync(fd) == -1) {
		log_warn("fsync %s", tmp);
		goto err_write;
	}
	if (close(fd) == -1) {
		log_warn("close %s", tmp);
		fd = -1;
		goto err_write;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		log_warn("rename %s", path);
		goto err_write;
	}
	return 0;
err_write:
	if (fd != -1)
		close(fd);
	unlink(tmp);
	return -1;
}

int
file_mkdirs(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	char *p;

	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}
