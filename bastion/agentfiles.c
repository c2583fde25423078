/* agentfiles.c — the node agent's files for installs and their digests
 * (agentfiles.h). */
#define LOG_SUBSYS "agent"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "agentfiles.h"
#include "hex.h"
#include "log.h"
#include "path.h"

/* What /boot/agent/{name} serves: a file beside bastion's own executable
 * (make install puts both agent builds there) or in the share dir. */
static const struct agentfile {
	const char	*name;
	const char	*file;
	int		 beside_self;	/* else under share_dir */
	int		 binary;
} files[] = {
	/* Linked statically: runs on the installed distribution whatever
	 * its libraries are (kickstart installs), but cannot dlopen() the
	 * guest drivers' libraries. */
	{ "agentd", "agentd-static", 1, 1 },
	/* Linked against this machine's libraries: only for the image
	 * installs, which are built from the same Debian release. */
	{ "agentd-dynamic", "agentd", 1, 1 },
	{ "agentd.service", "appliance/agentd.service", 0, 0 },
};
#define NFILES	(sizeof files / sizeof files[0])

static const struct agentfile *
agentfile_find(const char *name)
{
	size_t i;

	for (i = 0; i < NFILES; i++)
		if (strcmp(files[i].name, name) == 0)
			return &files[i];
	return NULL;
}

int
agentfile_is_binary(const char *name)
{
	const struct agentfile *f = agentfile_find(name);

	return f != NULL && f->binary;
}

int
agentfile_path(const struct config *c, const char *name, char *path,
    size_t len)
{
	const struct agentfile *f;
	char self[PATH_MAX], *slash;
	ssize_t n;

	if ((f = agentfile_find(name)) == NULL)
		return -1;
	if (!f->beside_self)
		return path_join(path, len, c->share_dir, f->file);
	if ((n = readlink("/proc/self/exe", self, sizeof self - 1)) < 0)
		return -1;
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) != NULL)
		*slash = '\0';
	return path_join(path, len, self, f->file);
}

static int
sha256_fd(int fd, char hex[AGENTFILE_HEXLEN])
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	ssize_t n;
	int rc = -1;

	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			goto out;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		goto out;
	hex_encode(md, mdlen, hex);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* One entry per file name; a file's identity is all of these. */
static struct cached {
	char		 path[PATH_MAX];
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
	char		 hex[AGENTFILE_HEXLEN];
} cache[NFILES];
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

static int
same_file(const struct cached *e, const char *path, const struct stat *st)
{
	return e->hex[0] && strcmp(e->path, path) == 0 &&
	    e->dev == st->st_dev && e->ino == st->st_ino &&
	    e->size == st->st_size && e->mtime.tv_sec == st->st_mtim.tv_sec &&
	    e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

int
agentfile_sha256(const struct config *c, const char *name,
    char hex[AGENTFILE_HEXLEN])
{
	const struct agentfile *f = agentfile_find(name);
	char path[PATH_MAX], out[AGENTFILE_HEXLEN];
	struct stat st, after;
	struct cached *e;
	int fd, rc = -1;

	if (f == NULL || agentfile_path(c, name, path, sizeof path) == -1)
		return -1;
	e = &cache[f - files];
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("%s", path);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_warnx("%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > AGENTFILE_MAX) {
		log_warnx("%s: larger than %lld bytes", path, AGENTFILE_MAX);
		goto out;
	}
	pthread_mutex_lock(&cache_mu);
	if (same_file(e, path, &st)) {
		memcpy(hex, e->hex, AGENTFILE_HEXLEN);
		pthread_mutex_unlock(&cache_mu);
		rc = 0;
		goto out;
	}
	pthread_mutex_unlock(&cache_mu);
	if (sha256_fd(fd, out) == -1 || fstat(fd, &after) == -1) {
		log_warn("%s: cannot hash it", path);
		goto out;
	}
	memcpy(hex, out, AGENTFILE_HEXLEN);
	rc = 0;
	/* Changed while it was read (a make or an upgrade): good for this
	 * render at best, not to be remembered. */
	if (after.st_size != st.st_size ||
	    after.st_mtim.tv_sec != st.st_mtim.tv_sec ||
	    after.st_mtim.tv_nsec != st.st_mtim.tv_nsec)
		goto out;
	pthread_mutex_lock(&cache_mu);
	snprintf(e->path, sizeof e->path, "%s", path);
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->size = st.st_size;
	e->mtime = st.st_mtim;
	memcpy(e->hex, out, AGENTFILE_HEXLEN);
	pthread_mutex_unlock(&cache_mu);
	log_debug("%s: sha256 %s", path, out);
out:
	close(fd);
	return rc;
}
